//! What the configuration says, resolved and checked once, at start: durations, policies,
//! exchange-rate tables, the retry schedule and limits, each in the type its users want.
//!
//! [`Config`] is what the user wrote, layer by layer; [`Settings::resolve`] turns it into this,
//! or stops the start with an error that names the key and where its value came from (a file,
//! an environment variable, a flag or the defaults). Nothing downstream clamps or converts a
//! setting again.

use std::time::Duration;

use jiff::SignedDuration;
use ocpay_core::fx::Rate;
use ocpay_core::ledger::WalletLimit;
use ocpay_core::participant::Environment;
use ocpay_core::payment::{CancelWindow, ExpiryPolicy};
use ocpay_core::refund::RefundPolicy;
use ocpay_core::schedule::RetrySchedule;

use ocpay_core::fees::{FeeRules, SettlementCycle};
use ocpay_settlement::batches::SettlementSettings;
use ocpay_settlement::files::{AmountUnit, FileFormat};

use crate::config::Config;
use crate::urls::{OwnListeners, Reach};

/// Why a setting cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} in {origin}: {reason}")]
pub struct SettingError {
    pub key: String,
    /// Where the value came from, as [`Config::source_of`] says.
    pub origin: String,
    pub reason: String,
}

/// The serving limits of HTTP connections and requests.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub request_body_bytes_max: usize,
    pub request_time_skew_max: SignedDuration,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub connections_max: usize,
    pub shutdown_grace: Duration,
    /// HTTPS on the listener, when `tls_cert_file` and `tls_key_file` are set.
    pub tls: Option<TlsSettings>,
}

/// The PEM files of the listener's certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
}

/// The notifier's settings.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub poll: Duration,
    pub concurrency_max: usize,
    pub batch_max: u32,
    pub timeout: Duration,
    pub claim_lease: SignedDuration,
    pub schedule: RetrySchedule,
    pub response_bytes_max: usize,
    /// Which addresses outside the public internet live and sandbox participants' notifications
    /// may reach.
    pub(crate) live_reach: Reach,
    pub(crate) sandbox_reach: Reach,
    /// The platform's own listeners, which no notification reaches.
    pub(crate) own_listeners: OwnListeners,
}

impl NotifySettings {
    /// Which addresses outside the public internet notifications to a participant in
    /// `environment` may reach.
    pub(crate) fn reach(&self, environment: Environment) -> Reach {
        match environment {
            Environment::Live => self.live_reach,
            Environment::Sandbox => self.sandbox_reach,
        }
    }

    /// Checks what a notify URL of a participant in `environment` names outright (an address
    /// it may not reach, or the platform itself); names are checked again as they resolve.
    pub fn check_url(&self, environment: Environment, url: &crate::HttpUrl) -> Result<(), &'static str> {
        crate::urls::check_notify_url(url, self.reach(environment), &self.own_listeners)
            .map_err(crate::urls::Refusal::reason)
    }
}

/// The background timer job's settings.
#[derive(Debug, Clone)]
pub struct TimerSettings {
    pub poll: Duration,
    pub batch_max: u32,
}

/// The audit trail's settings.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub page_max: u32,
    pub queue_max: usize,
    pub batch_max: usize,
    pub flush_interval: Duration,
    /// How long events are kept; `None` keeps them forever.
    pub retention: Option<SignedDuration>,
}

/// The retention job's settings: it prunes the audit trail and the API log by age.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    pub poll: Duration,
    /// Most rows deleted in one transaction.
    pub batch_max: u32,
    /// The pause between two batches.
    pub pause: Duration,
}

/// The API log's settings: `None` in [`Settings::api_log`] when it is off.
#[derive(Debug, Clone)]
pub struct ApiLogSettings {
    pub body_max_bytes: usize,
    pub unverified_max: u32,
    pub retention: SignedDuration,
    pub queue_max: usize,
    pub batch_max: usize,
    pub flush_interval: Duration,
}

/// Payer PINs.
#[derive(Debug, Clone)]
pub struct PinSettings {
    pub hash_iterations: u32,
    pub failures_max: u32,
    pub lockout: SignedDuration,
}

/// The SFTP server of reconciliation files (the `ocpay-sftp` crate runs it).
#[derive(Debug, Clone)]
pub struct SftpSettings {
    pub enabled: bool,
    pub listen: std::net::SocketAddr,
    /// Whether `listen` was set on purpose (not left at its default), so that failing to bind
    /// it stops the start.
    pub listen_configured: bool,
    pub unused_max: SignedDuration,
    pub login_failures_max: u32,
    pub lockout: SignedDuration,
    pub auth_timeout: Duration,
    pub idle_timeout: Duration,
    pub sessions_per_account_max: usize,
    pub connections_per_ip_max: usize,
}

/// The developer center (the `ocpay-web` crate serves it).
#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// Whether people may sign up on their own for a sandbox merchant.
    pub sandbox_signup: bool,
    pub session: ocpay_core::portal::SessionPolicy,
    pub sign_in_failures_max: u32,
    pub lockout: SignedDuration,
    pub totp_required_for_live_owners: bool,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub setup_link: SignedDuration,
    pub page_size: u32,
    /// The longest an Agent-Token made in the developer center is held for the ISV's owner.
    pub agent_token_hold: SignedDuration,
}

/// How `ocpay serve` writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (tracing's default format).
    Text,
    /// One JSON object a line, with the request's span (its `request_id`) in `span`.
    Json,
}

impl LogFormat {
    /// The `log_format` of `config`, or why it cannot be: read before the server is built, since
    /// logging starts first.
    pub fn of(config: &Config) -> Result<LogFormat, SettingError> {
        match config.log_format.as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(SettingError {
                key: "log_format".into(),
                origin: config.source_of("log_format"),
                reason: format!("is \"text\" or \"json\", not {other:?}"),
            }),
        }
    }
}

/// The sandbox's simulated behaviour.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    pub top_up_major: i64,
    pub slow_answer: Duration,
    pub registration_review: SignedDuration,
}

/// The go-live check's reads and grace (`service::acceptance`).
#[derive(Debug, Clone)]
pub struct AcceptanceSettings {
    pub log_entries_max: u32,
    pub poll_grace: SignedDuration,
    pub notification_reads_max: u32,
}

/// Every setting a running platform reads, resolved from a [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub http: HttpSettings,
    /// Connections per source address, and the rate limits per address and per client id.
    pub limits: crate::limits::LimitSettings,
    pub expiry: ExpiryPolicy,
    pub cancel_window: CancelWindow,
    pub refund: RefundPolicy,
    pub refund_async: bool,
    pub refund_async_delay: SignedDuration,
    pub grant_lifetime: SignedDuration,
    pub wallet_limit: WalletLimit,
    pub notify: NotifySettings,
    pub timers: TimerSettings,
    pub audit: AuditSettings,
    pub retention: RetentionSettings,
    pub pin: PinSettings,
    pub sandbox: SandboxSettings,
    pub sftp: SftpSettings,
    pub portal: PortalSettings,
    pub fees: FeeRules,
    /// The settlement cycle, rates, chunks and file format.
    pub settlement: SettlementSettings,
    /// Whether the settlement job runs, and how often it looks for a day to settle.
    pub settlement_job: Option<Duration>,
    pub key_cache_entries_max: usize,
    pub registrations_list_max: u32,
    /// Exchange rates of live and of sandbox payers.
    pub live_rates: Vec<Rate>,
    pub sandbox_rates: Vec<Rate>,
    /// The API log, when it is kept.
    pub api_log: Option<ApiLogSettings>,
    /// Where Prometheus metrics are served, when they are.
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub log_format: LogFormat,
    pub acceptance: AcceptanceSettings,
}

/// The settlement cycle of `settlement_cutoff`, `settlement_time_zone` and
/// `settlement_delay_days`, or the key that is wrong and why.
fn settlement_cycle(config: &Config) -> Result<SettlementCycle, (&'static str, String)> {
    let cutoff: jiff::civil::Time = config.settlement_cutoff.parse().map_err(|_| {
        ("settlement_cutoff", format!("is a time of day such as 00:00, not {:?}", config.settlement_cutoff))
    })?;
    let name = config.settlement_time_zone.as_str();
    let zone = match fixed_offset(name) {
        Some(offset) => jiff::tz::TimeZone::fixed(offset),
        None => jiff::tz::TimeZone::get(name).map_err(|error| {
            (
                "settlement_time_zone",
                format!("is an offset such as +08:00 or a zone such as Asia/Shanghai: {error}"),
            )
        })?,
    };
    let delay_days = i32::try_from(config.settlement_delay_days)
        .ok()
        .filter(|days| *days <= 366)
        .ok_or(("settlement_delay_days", "is at most 366".to_owned()))?;
    Ok(SettlementCycle { cutoff, zone, delay_days })
}

/// `+08:00` or `-05:30` as an offset from UTC.
fn fixed_offset(text: &str) -> Option<jiff::tz::Offset> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = text.get(1..)?.split_once(':')?;
    let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 14 || !(0..60).contains(&minutes) || hours < 0 {
        return None;
    }
    jiff::tz::Offset::from_seconds(sign * (hours * 3_600 + minutes * 60)).ok()
}

impl Settings {
    /// Resolves and checks every setting of `config`.
    pub fn resolve(config: &Config) -> Result<Settings, SettingError> {
        let refuse = |key: &str, reason: String| SettingError {
            key: key.to_owned(),
            origin: config.source_of(key),
            reason,
        };
        // A count that must be at least one.
        let at_least_one = |key: &str, value: u64| {
            if value == 0 { Err(refuse(key, "must be at least 1".into())) } else { Ok(()) }
        };
        // Minutes (at most a year) as milliseconds.
        let minutes_ms = |key: &str, minutes: u64| {
            if minutes > 525_600 {
                Err(refuse(key, "must be at most a year".into()))
            } else {
                Ok(minutes as i64 * 60_000)
            }
        };
        let positive_ms =
            |key: &str, value: u64| at_least_one(key, value).map(|()| Duration::from_millis(value));
        for (key, value) in [
            ("request_body_bytes_max", config.request_body_bytes_max as u64),
            ("connections_max", config.connections_max as u64),
            ("connections_per_address_max", config.connections_per_address_max as u64),
            ("rate_limit_unverified_cost", u64::from(config.rate_limit_unverified_cost)),
            ("notify_concurrency_max", config.notify_concurrency_max as u64),
            ("notify_batch_max", u64::from(config.notify_batch_max)),
            ("notify_response_bytes_max", config.notify_response_bytes_max as u64),
            ("timers_batch_max", u64::from(config.timers_batch_max)),
            ("audit_page_max", u64::from(config.audit_page_max)),
            ("audit_queue_max", config.audit_queue_max as u64),
            ("audit_batch_max", config.audit_batch_max as u64),
            ("retention_batch_max", u64::from(config.retention_batch_max)),
            ("api_log_body_max_bytes", config.api_log_body_max_bytes as u64),
            ("api_log_retention_days", u64::from(config.api_log_retention_days)),
            ("api_log_queue_max", config.api_log_queue_max as u64),
            ("api_log_batch_max", config.api_log_batch_max as u64),
            ("pin_hash_iterations", u64::from(config.pin_hash_iterations)),
            ("pin_failures_max", u64::from(config.pin_failures_max)),
            ("key_cache_entries_max", config.key_cache_entries_max as u64),
            ("registrations_list_max", u64::from(config.registrations_list_max)),
            ("sqlite_read_connections_max", u64::from(config.sqlite_read_connections_max)),
            ("sqlite_write_batch_max", config.sqlite_write_batch_max as u64),
            ("sqlite_write_queue_max", config.sqlite_write_queue_max as u64),
            ("postgres_pool_max", config.postgres_pool_max as u64),
            ("sftp_unused_days_max", u64::from(config.sftp_unused_days_max)),
            ("sftp_login_failures_max", u64::from(config.sftp_login_failures_max)),
            ("sftp_lockout_seconds", config.sftp_lockout_seconds),
            ("sftp_sessions_per_account_max", u64::from(config.sftp_sessions_per_account_max)),
            ("sftp_connections_per_ip_max", u64::from(config.sftp_connections_per_ip_max)),
            ("portal_session_idle_minutes", config.portal_session_idle_minutes),
            ("portal_session_absolute_hours", config.portal_session_absolute_hours),
            ("portal_sign_in_failures_max", u64::from(config.portal_sign_in_failures_max)),
            ("portal_argon2_iterations", u64::from(config.portal_argon2_iterations)),
            ("portal_setup_link_hours", config.portal_setup_link_hours),
            ("portal_page_size", u64::from(config.portal_page_size)),
            ("portal_agent_token_hold_hours", config.portal_agent_token_hold_hours),
            ("settlement_poll_interval_ms", config.settlement_poll_interval_ms),
            ("settlement_chunk_max", u64::from(config.settlement_chunk_max)),
            ("report_rows_per_file", config.report_rows_per_file as u64),
            ("report_page_max", u64::from(config.report_page_max)),
            ("acceptance_log_entries_max", u64::from(config.acceptance_log_entries_max)),
            ("acceptance_notification_reads_max", u64::from(config.acceptance_notification_reads_max)),
        ] {
            at_least_one(key, value)?;
        }

        let expiry = ExpiryPolicy {
            default: seconds(config.payment_expiry_default_seconds),
            max: seconds(config.payment_expiry_max_seconds),
        };
        if expiry.default.is_zero() {
            return Err(refuse("payment_expiry_default_seconds", "must be at least 1".into()));
        }
        if expiry.default > expiry.max {
            return Err(refuse(
                "payment_expiry_default_seconds",
                format!(
                    "{} is longer than payment_expiry_max_seconds ({})",
                    config.payment_expiry_default_seconds, config.payment_expiry_max_seconds
                ),
            ));
        }
        const MINUTES_A_DAY: i32 = 24 * 60;
        if !(0..MINUTES_A_DAY).contains(&config.cancel_window_closes_at_minute) {
            return Err(refuse("cancel_window_closes_at_minute", "must be from 0 to 1439".into()));
        }
        if !(-MINUTES_A_DAY..=MINUTES_A_DAY).contains(&config.cancel_window_zone_offset_minutes) {
            return Err(refuse("cancel_window_zone_offset_minutes", "must be from -1440 to 1440".into()));
        }
        if config.cancel_window_days_after_payment < 0 {
            return Err(refuse("cancel_window_days_after_payment", "must not be negative".into()));
        }
        let cancel_window = CancelWindow {
            zone_offset_seconds: config.cancel_window_zone_offset_minutes * 60,
            days_after_payment: config.cancel_window_days_after_payment,
            closes_at_minute_of_day: config.cancel_window_closes_at_minute,
        };

        let wallet_limit = WalletLimit::new(config.wallet_balance_max_major)
            .map_err(|reason| refuse("wallet_balance_max_major", reason.to_string()))?;
        if !(1..=wallet_limit.max_major()).contains(&config.sandbox_top_up_major) {
            return Err(refuse(
                "sandbox_top_up_major",
                format!(
                    "{} must be from 1 to wallet_balance_max_major ({})",
                    config.sandbox_top_up_major,
                    wallet_limit.max_major()
                ),
            ));
        }

        let notify_timeout = positive_ms("notify_timeout_ms", config.notify_timeout_ms)?;
        if config.notify_claim_lease_ms < config.notify_timeout_ms.saturating_add(1_000) {
            return Err(refuse(
                "notify_claim_lease_ms",
                format!(
                    "{} must exceed notify_timeout_ms ({}) by at least 1000, or a slow attempt could be sent \
                     twice at once",
                    config.notify_claim_lease_ms, config.notify_timeout_ms
                ),
            ));
        }
        if let Some(position) = config.notify_retry_intervals_seconds.iter().position(|seconds| *seconds == 0)
        {
            return Err(refuse(
                "notify_retry_intervals_seconds",
                format!("entry {} is 0: each retry waits at least a second", position + 1),
            ));
        }
        let rates = |key: &str, table: &std::collections::BTreeMap<String, String>| {
            table
                .iter()
                .map(|(pair, price)| {
                    Rate::parse(pair, price).map_err(|error| refuse(key, format!("\"{pair}\": {error}")))
                })
                .collect::<Result<Vec<Rate>, SettingError>>()
        };

        // A token bucket's rate, or none when its rate is 0; a bucket needs room for a token.
        let rate = |(rate_key, per_second): (&str, u32), (burst_key, burst): (&str, u32)| match (
            per_second, burst,
        ) {
            (0, _) => Ok(None),
            (_, 0) => Err(refuse(burst_key, format!("must be at least 1 while {rate_key} is not 0"))),
            (per_second, burst) => Ok(Some(crate::limits::Rate { per_second, burst })),
        };

        let cycle = settlement_cycle(config).map_err(|(key, reason)| refuse(key, reason))?;
        let amounts = match config.report_amounts.as_str() {
            "major" => AmountUnit::Major,
            "minor" => AmountUnit::Minor,
            other => return Err(refuse("report_amounts", format!("is major or minor, not {other:?}"))),
        };

        Ok(Settings {
            http: HttpSettings {
                request_body_bytes_max: config.request_body_bytes_max,
                request_time_skew_max: seconds(config.request_time_skew_seconds_max),
                header_read_timeout: positive_ms("header_read_timeout_ms", config.header_read_timeout_ms)?,
                request_timeout: positive_ms("request_timeout_ms", config.request_timeout_ms)?,
                connections_max: config.connections_max,
                shutdown_grace: Duration::from_millis(config.shutdown_grace_ms),
                tls: match (&config.tls_cert_file, &config.tls_key_file) {
                    (Some(cert_file), Some(key_file)) => {
                        Some(TlsSettings { cert_file: cert_file.clone(), key_file: key_file.clone() })
                    }
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(refuse(
                            "tls_key_file",
                            "is not set, but tls_cert_file is: HTTPS needs both".into(),
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(refuse(
                            "tls_cert_file",
                            "is not set, but tls_key_file is: HTTPS needs both".into(),
                        ));
                    }
                },
            },
            limits: crate::limits::LimitSettings {
                connections_per_address_max: config.connections_per_address_max,
                address: rate(
                    ("rate_limit_address_per_second", config.rate_limit_address_per_second),
                    ("rate_limit_address_burst", config.rate_limit_address_burst),
                )?,
                unverified_cost: config.rate_limit_unverified_cost,
                client: rate(
                    ("rate_limit_client_per_second", config.rate_limit_client_per_second),
                    ("rate_limit_client_burst", config.rate_limit_client_burst),
                )?,
            },
            expiry,
            cancel_window,
            refund: RefundPolicy {
                window: SignedDuration::from_hours(i64::from(config.refund_window_days) * 24),
                multiple_allowed: config.refund_multiple_allowed,
            },
            refund_async: config.refund_async,
            refund_async_delay: seconds(config.refund_async_delay_seconds),
            grant_lifetime: SignedDuration::from_hours(i64::from(config.grant_lifetime_days) * 24),
            wallet_limit,
            notify: NotifySettings {
                poll: positive_ms("notify_poll_interval_ms", config.notify_poll_interval_ms)?,
                concurrency_max: config.notify_concurrency_max,
                batch_max: config.notify_batch_max,
                timeout: notify_timeout,
                claim_lease: SignedDuration::from_millis(
                    i64::try_from(config.notify_claim_lease_ms).unwrap_or(i64::MAX),
                ),
                schedule: RetrySchedule::new(
                    config.notify_retry_intervals_seconds.iter().map(|value| seconds(*value)).collect(),
                ),
                response_bytes_max: config.notify_response_bytes_max,
                live_reach: Reach {
                    loopback: config.notify_allow_private_addresses,
                    private: config.notify_allow_private_addresses,
                },
                sandbox_reach: Reach {
                    loopback: config.sandbox_notify_allow_loopback,
                    private: config.sandbox_notify_allow_private,
                },
                own_listeners: config.own_listeners(),
            },
            timers: TimerSettings {
                poll: positive_ms("timers_poll_interval_ms", config.timers_poll_interval_ms)?,
                batch_max: config.timers_batch_max,
            },
            audit: AuditSettings {
                page_max: config.audit_page_max,
                queue_max: config.audit_queue_max,
                batch_max: config.audit_batch_max,
                flush_interval: Duration::from_millis(config.audit_flush_interval_ms),
                retention: (config.audit_retention_days > 0)
                    .then(|| SignedDuration::from_hours(i64::from(config.audit_retention_days) * 24)),
            },
            retention: RetentionSettings {
                poll: positive_ms("retention_poll_interval_ms", config.retention_poll_interval_ms)?,
                batch_max: config.retention_batch_max,
                pause: Duration::from_millis(config.retention_pause_ms),
            },
            pin: PinSettings {
                hash_iterations: config.pin_hash_iterations,
                failures_max: config.pin_failures_max,
                lockout: seconds(config.pin_lockout_seconds),
            },
            sandbox: SandboxSettings {
                top_up_major: config.sandbox_top_up_major,
                slow_answer: Duration::from_millis(config.sandbox_slow_answer_ms),
                registration_review: seconds(config.sandbox_registration_review_seconds),
            },
            sftp: SftpSettings {
                enabled: config.sftp_enabled,
                listen: config.sftp_listen,
                listen_configured: config.source_of("sftp_listen") != "the defaults",
                unused_max: SignedDuration::from_hours(i64::from(config.sftp_unused_days_max) * 24),
                login_failures_max: config.sftp_login_failures_max,
                lockout: seconds(config.sftp_lockout_seconds),
                auth_timeout: positive_ms("sftp_auth_timeout_ms", config.sftp_auth_timeout_ms)?,
                idle_timeout: positive_ms("sftp_idle_timeout_ms", config.sftp_idle_timeout_ms)?,
                sessions_per_account_max: config.sftp_sessions_per_account_max as usize,
                connections_per_ip_max: config.sftp_connections_per_ip_max as usize,
            },
            portal: PortalSettings {
                sandbox_signup: match config.portal_signup.as_str() {
                    "off" => false,
                    "sandbox" => true,
                    other => {
                        return Err(refuse(
                            "portal_signup",
                            format!("{other:?} is neither \"off\" nor \"sandbox\""),
                        ));
                    }
                },
                session: ocpay_core::portal::SessionPolicy {
                    idle_ms: minutes_ms("portal_session_idle_minutes", config.portal_session_idle_minutes)?,
                    absolute_ms: minutes_ms(
                        "portal_session_absolute_hours",
                        config.portal_session_absolute_hours.saturating_mul(60),
                    )?,
                },
                sign_in_failures_max: config.portal_sign_in_failures_max,
                lockout: seconds(config.portal_lockout_seconds),
                totp_required_for_live_owners: config.portal_totp_required_for_live_owners,
                argon2_memory_kib: if config.portal_argon2_memory_kib < 8 * 1024 {
                    return Err(refuse("portal_argon2_memory_kib", "must be at least 8192 (8 MiB)".into()));
                } else {
                    config.portal_argon2_memory_kib
                },
                argon2_iterations: config.portal_argon2_iterations,
                setup_link: SignedDuration::from_mins(
                    minutes_ms("portal_setup_link_hours", config.portal_setup_link_hours.saturating_mul(60))?
                        / 60_000,
                ),
                page_size: if config.portal_page_size > 500 {
                    return Err(refuse("portal_page_size", "must be at most 500".into()));
                } else {
                    config.portal_page_size
                },
                agent_token_hold: SignedDuration::from_mins(
                    minutes_ms(
                        "portal_agent_token_hold_hours",
                        config.portal_agent_token_hold_hours.saturating_mul(60),
                    )? / 60_000,
                ),
            },
            fees: config.fee_rules().map_err(|(key, reason)| refuse(key, reason))?,
            settlement: SettlementSettings {
                cycle: cycle.clone(),
                live_rates: rates("settlement_fx_rates", &config.settlement_fx_rates)?,
                sandbox_rates: rates("sandbox_settlement_fx_rates", &config.sandbox_settlement_fx_rates)?,
                chunk_max: config.settlement_chunk_max,
                page_max: config.report_page_max,
                format: FileFormat { amounts, zone: cycle.zone, rows_per_file: config.report_rows_per_file },
            },
            settlement_job: config
                .settlement_enabled
                .then(|| Duration::from_millis(config.settlement_poll_interval_ms.max(1))),
            key_cache_entries_max: config.key_cache_entries_max,
            registrations_list_max: config.registrations_list_max,
            live_rates: rates("fx_rates", &config.fx_rates)?,
            sandbox_rates: rates("sandbox_fx_rates", &config.sandbox_fx_rates)?,
            api_log: config.api_log_enabled.then(|| ApiLogSettings {
                body_max_bytes: config.api_log_body_max_bytes,
                unverified_max: config.api_log_unverified_max,
                retention: SignedDuration::from_hours(i64::from(config.api_log_retention_days) * 24),
                queue_max: config.api_log_queue_max,
                batch_max: config.api_log_batch_max,
                flush_interval: Duration::from_millis(config.api_log_flush_interval_ms),
            }),
            metrics_listen: config.metrics_listen,
            log_format: LogFormat::of(config)?,
            acceptance: AcceptanceSettings {
                log_entries_max: config.acceptance_log_entries_max,
                poll_grace: seconds(config.acceptance_poll_grace_seconds),
                notification_reads_max: config.acceptance_notification_reads_max,
            },
        })
    }

    /// The rates of `environment`'s payers.
    pub fn rates(&self, environment: Environment) -> &[Rate] {
        match environment {
            Environment::Live => &self.live_rates,
            Environment::Sandbox => &self.sandbox_rates,
        }
    }
}

fn seconds(value: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(value).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A change that makes a configuration impossible.
    type Spoil = fn(&mut Config);

    fn refused(adjust: Spoil) -> SettingError {
        let mut config = Config::default();
        adjust(&mut config);
        Settings::resolve(&config).expect_err("an impossible setting is refused")
    }

    #[test]
    fn the_defaults_resolve() {
        let settings = Settings::resolve(&Config::default()).unwrap();
        assert_eq!(settings.notify.timeout, Duration::from_millis(Config::default().notify_timeout_ms));
        assert!(!settings.sandbox_rates.is_empty());
    }

    #[test]
    fn impossible_values_name_their_key() {
        let cases: [(&str, Spoil); 12] = [
            ("log_format", |config| config.log_format = "yaml".into()),
            ("timers_batch_max", |config| config.timers_batch_max = 0),
            ("notify_poll_interval_ms", |config| config.notify_poll_interval_ms = 0),
            ("request_timeout_ms", |config| config.request_timeout_ms = 0),
            ("pin_failures_max", |config| config.pin_failures_max = 0),
            ("sftp_login_failures_max", |config| config.sftp_login_failures_max = 0),
            ("sftp_auth_timeout_ms", |config| config.sftp_auth_timeout_ms = 0),
            ("notify_claim_lease_ms", |config| config.notify_claim_lease_ms = 10),
            ("payment_expiry_default_seconds", |config| config.payment_expiry_default_seconds = 1 << 40),
            ("cancel_window_closes_at_minute", |config| config.cancel_window_closes_at_minute = 1440),
            ("notify_retry_intervals_seconds", |config| config.notify_retry_intervals_seconds = vec![60, 0]),
            ("fx_rates", |config| {
                config.fx_rates.insert("USD/SGD".into(), "-1".into());
            }),
        ];
        for (key, adjust) in cases {
            let error = refused(adjust);
            assert_eq!(error.key, key, "{error}");
            assert_eq!(error.origin, "the defaults", "{error}");
            assert!(error.to_string().starts_with(&format!("{key} in the defaults: ")), "{error}");
        }
    }

    #[test]
    fn rate_limits_are_on_by_default_off_at_0_and_need_room_for_a_token() {
        use crate::limits::Rate;
        let limits = Settings::resolve(&Config::default()).unwrap().limits;
        assert_eq!(limits.address, Some(Rate { per_second: 2_000, burst: 4_000 }));
        assert_eq!(limits.client, Some(Rate { per_second: 1_000, burst: 2_000 }));
        assert_eq!((limits.connections_per_address_max, limits.unverified_cost), (256, 20));
        let off =
            Config { rate_limit_address_per_second: 0, rate_limit_client_per_second: 0, ..Config::default() };
        let off = Settings::resolve(&off).unwrap().limits;
        assert_eq!((off.address, off.client), (None, None));
        let cases: [(&str, Spoil); 4] = [
            ("rate_limit_address_burst", |config| config.rate_limit_address_burst = 0),
            ("rate_limit_client_burst", |config| config.rate_limit_client_burst = 0),
            ("rate_limit_unverified_cost", |config| config.rate_limit_unverified_cost = 0),
            ("connections_per_address_max", |config| config.connections_per_address_max = 0),
        ];
        for (key, adjust) in cases {
            assert_eq!(refused(adjust).key, key);
        }
    }

    #[test]
    fn the_api_log_is_kept_by_default_within_its_limits_and_can_be_turned_off() {
        let kept = Settings::resolve(&Config::default()).unwrap().api_log.expect("kept by default");
        assert_eq!((kept.body_max_bytes, kept.unverified_max), (16_384, 500));
        assert_eq!(kept.retention, SignedDuration::from_hours(30 * 24));
        let cases: [(&str, Spoil); 4] = [
            ("api_log_body_max_bytes", |config| config.api_log_body_max_bytes = 0),
            ("api_log_retention_days", |config| config.api_log_retention_days = 0),
            ("api_log_queue_max", |config| config.api_log_queue_max = 0),
            ("api_log_batch_max", |config| config.api_log_batch_max = 0),
        ];
        for (key, adjust) in cases {
            assert_eq!(refused(adjust).key, key);
        }
        let off = Config { api_log_enabled: false, ..Config::default() };
        assert!(Settings::resolve(&off).unwrap().api_log.is_none());
        let none_unverified = Config { api_log_unverified_max: 0, ..Config::default() };
        assert_eq!(Settings::resolve(&none_unverified).unwrap().api_log.unwrap().unverified_max, 0);
    }
}
