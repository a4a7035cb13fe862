//! Configuration of a running platform: every limit is a named setting with a default.
//!
//! Layers, later ones winning: defaults < TOML file < `OCPAY_*` environment variables <
//! command-line flags. A key the file does not know is an error, so a typo never silently
//! leaves a limit at its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Prefix of the environment variables that set configuration keys (`OCPAY_LISTEN`, ...).
pub const ENV_PREFIX: &str = "OCPAY_";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database and the platform key live.
    pub data_dir: PathBuf,
    /// Address the HTTP server binds; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Base URL payers and merchants reach the server at; order codes point under it.
    /// Defaults to `http://<listen>` once bound.
    pub public_url: Option<String>,
    /// The listener speaks HTTPS with this PEM certificate chain (end-entity certificate first)
    /// and the private key in `tls_key_file`; both or neither. Reloaded on SIGHUP.
    pub tls_cert_file: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert_file`'s certificate.
    pub tls_key_file: Option<PathBuf>,

    /// Largest request body accepted; larger ones get HTTP 413 before being read.
    pub request_body_bytes_max: usize,
    /// How far `Request-Time` may be from the server's clock, either way.
    pub request_time_skew_seconds_max: u64,
    /// A client must send a request's headers within this time (also the keep-alive idle limit).
    pub header_read_timeout_ms: u64,
    /// A request, body included, must be answered within this time.
    pub request_timeout_ms: u64,
    /// Most open client connections; beyond it new connections wait in the listen backlog.
    pub connections_max: usize,
    /// Most open connections from one source address (IPv6: one /64); a connection beyond it
    /// is closed unread. Keep it well below `connections_max`, so that one client cannot fill it.
    pub connections_per_address_max: usize,
    /// Gateway requests one source address may make per second, on average (a token bucket);
    /// beyond it they get HTTP 429, unsigned, before their body is read. 0 turns it off.
    pub rate_limit_address_per_second: u32,
    /// ... and at once, after a quiet spell.
    pub rate_limit_address_burst: u32,
    /// Tokens of its address's bucket a request takes in all when its signature does not verify
    /// (or it is refused before that): its signed answer costs the platform an RSA signature.
    pub rate_limit_unverified_cost: u32,
    /// Verified requests one client id (the signer's) may make per second, on average; beyond
    /// it they get a signed `REQUEST_TRAFFIC_EXCEED_LIMIT`. 0 turns it off.
    pub rate_limit_client_per_second: u32,
    /// ... and at once, after a quiet spell.
    pub rate_limit_client_burst: u32,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_grace_ms: u64,
    /// Address of a listener of its own that serves Prometheus metrics at `/metrics`; none
    /// (the default) serves none and records none.
    pub metrics_listen: Option<SocketAddr>,
    /// How `ocpay serve` writes its log lines (on standard error): `text`, or `json`, one
    /// object a line.
    pub log_format: String,

    /// Lifetime of an order code when the request gives no `paymentExpiryTime`.
    pub payment_expiry_default_seconds: u64,
    /// Longest `paymentExpiryTime` accepted, counted from the request.
    pub payment_expiry_max_seconds: u64,
    /// The cancel window closes this many days after the payment's local date ...
    pub cancel_window_days_after_payment: i32,
    /// ... at this many minutes after local midnight ...
    pub cancel_window_closes_at_minute: i32,
    /// ... in the time zone this many minutes east of UTC.
    pub cancel_window_zone_offset_minutes: i32,

    /// The PostgreSQL database shared by several servers (`postgres://user@host:port/db`, or
    /// `OCPAY_DATABASE_URL`). Without it the server keeps its data in embedded SQLite files in
    /// the data directory.
    pub database_url: Option<String>,
    /// Most PostgreSQL connections this server opens; requests beyond it wait for one.
    pub postgres_pool_max: usize,
    /// How long a request waits for a free PostgreSQL connection before failing.
    pub postgres_pool_wait_ms: u64,
    /// How long opening a PostgreSQL connection may take.
    pub postgres_connect_timeout_ms: u64,
    /// How long one SQL statement may run before PostgreSQL cancels it.
    pub postgres_statement_timeout_ms: u64,
    /// How often a write that PostgreSQL aborted to keep transactions serialisable (two servers
    /// changed the same rows at once) is run again before the request fails.
    pub postgres_serialization_retries: u32,
    /// With `sslmode=require` in `database_url`: the certificates (PEM) the database server's
    /// certificate must chain to; without it, the system's trusted roots.
    pub postgres_ca_file: Option<PathBuf>,

    /// Read connections of the embedded SQLite database.
    pub sqlite_read_connections_max: u32,
    /// Most writes committed together in one SQLite transaction.
    pub sqlite_write_batch_max: usize,
    /// Most writes queued for the SQLite writer before callers wait.
    pub sqlite_write_queue_max: usize,
    /// Most times the SQLite writer yields its CPU to gather more writes before a commit
    /// (0: commit what is queued at once).
    pub sqlite_write_gather_yields: u32,
    /// How long SQLite waits for a lock held by another process.
    pub sqlite_busy_timeout_ms: u64,
    /// How often a background thread checkpoints SQLite's write-ahead log.
    pub sqlite_checkpoint_interval_ms: u64,

    /// Parsed participant public keys kept in memory.
    pub key_cache_entries_max: usize,

    /// How often the notifier looks for due notifications (new ones wake it at once).
    pub notify_poll_interval_ms: u64,
    /// Notifications sent at the same time, at most.
    pub notify_concurrency_max: usize,
    /// Notifications claimed per round, at most.
    pub notify_batch_max: u32,
    /// Time allowed for one delivery attempt, connection included.
    pub notify_timeout_ms: u64,
    /// How long a claimed notification is reserved for its sender before another may take it.
    pub notify_claim_lease_ms: u64,
    /// Seconds between attempts after the first (which is immediate); one entry per retry.
    pub notify_retry_intervals_seconds: Vec<u64>,
    /// Largest acknowledgement body read from a receiver.
    pub notify_response_bytes_max: usize,
    /// Whether live participants may have notifications sent to private or loopback addresses.
    /// Link-local and metadata addresses and the platform's own listeners are never reached.
    pub notify_allow_private_addresses: bool,
    /// Whether sandbox participants may have notifications sent to loopback addresses (the
    /// developer's own machine, when the platform runs there too).
    pub sandbox_notify_allow_loopback: bool,
    /// Whether sandbox participants may have notifications sent to private addresses.
    pub sandbox_notify_allow_private: bool,

    /// How often the timer job closes unpaid payments whose code expired and completes
    /// asynchronous refunds that are due.
    pub timers_poll_interval_ms: u64,
    /// Payments closed, or refunds completed, per round at most.
    pub timers_batch_max: u32,

    /// How long after payment a refund is accepted, in days.
    pub refund_window_days: u32,
    /// Whether a payment may be refunded more than once (some wallets refuse).
    pub refund_multiple_allowed: bool,
    /// Whether the wallet completes every refund later rather than at once. A merchant may
    /// also ask for that per refund with `isAsyncRefund`.
    pub refund_async: bool,
    /// How long an asynchronous refund stays `PROCESSING`.
    pub refund_async_delay_seconds: u64,

    /// How long a merchant's authorisation of an ISV lasts when none is asked for.
    pub grant_lifetime_days: u32,
    /// Most audit events `ocpay audit` and the admin API list at once.
    pub audit_page_max: u32,
    /// Audit events waiting to be written before requests wait for room.
    pub audit_queue_max: usize,
    /// Most audit events written in one transaction.
    pub audit_batch_max: usize,
    /// How long a batch of queued audit events (reads, refusals) gathers after its first event
    /// before it is written: also the most of them a crash can lose. A state change's event
    /// commits with the change and is never queued.
    pub audit_flush_interval_ms: u64,
    /// Audit events older than this are pruned by the retention job; 0 keeps them forever.
    pub audit_retention_days: u32,
    /// Most rows the retention job deletes in one transaction (audit trail and API log).
    pub retention_batch_max: u32,
    /// The retention job's pause between two batches, so that payments never wait behind it.
    pub retention_pause_ms: u64,
    /// How often the retention job looks for rows past their retention.
    pub retention_poll_interval_ms: u64,

    /// Whether the gateway keeps the API log: every request under a participant's client id,
    /// verified or not, with its headers, bodies and answer.
    pub api_log_enabled: bool,
    /// Each body the API log keeps is cut to this many bytes (saying so where it was cut).
    pub api_log_body_max_bytes: usize,
    /// The most unverified requests the API log keeps per participant (its newest), so that
    /// requests nobody could sign cannot flood a participant's log.
    pub api_log_unverified_max: u32,
    /// Entries older than this are pruned by the retention job.
    pub api_log_retention_days: u32,
    /// Entries waiting to be written; beyond it entries are dropped, never a request delayed.
    pub api_log_queue_max: usize,
    /// Most entries written in one transaction.
    pub api_log_batch_max: usize,
    /// How long a batch of entries gathers after its first before it is written.
    pub api_log_flush_interval_ms: u64,

    /// Stored value (in major units of the payment's currency) issued to a sandbox payer whose
    /// wallet would not cover a payment; never more than takes the wallet to its maximum.
    pub sandbox_top_up_major: i64,
    /// The most a payer's wallet may hold, in major units of its currency (the same number for
    /// every currency). A top-up, cancel or refund that would take a wallet above it is refused,
    /// and `pay` refuses an amount above it, since no wallet could pay it.
    pub wallet_balance_max_major: i64,
    /// How long `pay` with the sandbox magic amount 9902 waits before answering.
    pub sandbox_slow_answer_ms: u64,
    /// How long a sandbox acquirer's merchant registration stays `PROCESSING` before the
    /// sandbox's review decides it.
    pub sandbox_registration_review_seconds: u64,
    /// Most API-log entries of a sandbox participant (its newest) a go-live check reads
    /// (`ocpay acceptance`, the developer center's Go live page); also the most payments, refunds
    /// and audit events it reads.
    pub acceptance_log_entries_max: u32,
    /// How long after a moment an integration is given to act (retry after `U`, inquire after a
    /// timeout, stop polling after a code's expiry) before an acceptance case judges it.
    pub acceptance_poll_grace_seconds: u64,
    /// Most notifications (of the newest payments and refunds the cases ask about) a go-live
    /// check reads.
    pub acceptance_notification_reads_max: u32,
    /// Most registrations `ocpay registrations list` prints.
    pub registrations_list_max: u32,

    /// PBKDF2-HMAC-SHA256 iterations for new payer PINs.
    pub pin_hash_iterations: u32,
    /// Wrong PINs in a row after which a payer is locked out ...
    pub pin_failures_max: u32,
    /// ... for this long.
    pub pin_lockout_seconds: u64,

    /// Whether `ocpay serve` also serves participants their reconciliation files over SFTP.
    pub sftp_enabled: bool,
    /// Address the SFTP server binds. When it cannot be bound and was left at its default, the
    /// server logs it and serves HTTP alone; an address set on purpose must bind.
    pub sftp_listen: SocketAddr,
    /// An SFTP account with no successful login (or, never used, no creation) in this many
    /// days is disabled.
    pub sftp_unused_days_max: u32,
    /// Failed SFTP logins in a row after which the account is locked ...
    pub sftp_login_failures_max: u32,
    /// ... for this long.
    pub sftp_lockout_seconds: u64,
    /// An SFTP client must log in within this time after connecting.
    pub sftp_auth_timeout_ms: u64,
    /// An SFTP connection that sends nothing for this long is closed.
    pub sftp_idle_timeout_ms: u64,
    /// Open SFTP sessions of one account, on one server.
    pub sftp_sessions_per_account_max: u32,
    /// Open SFTP connections from one IP address, on one server.
    pub sftp_connections_per_ip_max: u32,

    /// Who may sign up to the developer center on their own: `"off"`, or `"sandbox"` (a new
    /// user gets a sandbox merchant at once).
    pub portal_signup: String,
    /// A developer-center session unused for this long ends ...
    pub portal_session_idle_minutes: u64,
    /// ... and every session ends this long after sign-in.
    pub portal_session_absolute_hours: u64,
    /// Failed sign-ins in a row after which a user is locked out ...
    pub portal_sign_in_failures_max: u32,
    /// ... for this long.
    pub portal_lockout_seconds: u64,
    /// Whether owners of live participants must use a TOTP second factor.
    pub portal_totp_required_for_live_owners: bool,
    /// argon2id memory (KiB) and passes for new passwords.
    pub portal_argon2_memory_kib: u32,
    pub portal_argon2_iterations: u32,
    /// How long a one-time link that sets a password works.
    pub portal_setup_link_hours: u64,
    /// Rows on one page of a list.
    pub portal_page_size: u32,
    /// How long an Agent-Token made in the developer center waits (sealed) for the ISV's owner
    /// to see it once there, at most until the grant expires.
    pub portal_agent_token_hold_hours: u64,

    /// Exchange rates for live payers whose wallet currency differs from the payment's, as
    /// `"USD/SGD" = "1.3450"`: one unit of the first currency in the second. None by default:
    /// the operator sets the rates real money moves at.
    pub fx_rates: std::collections::BTreeMap<String, String>,
    /// The same for sandbox payers; a few sample pairs by default, to try cross-currency
    /// payments with.
    pub sandbox_fx_rates: std::collections::BTreeMap<String, String>,

    /// The fee on each payment of a participant without a schedule of its own, in basis points
    /// of the amount (0 to 10000), rounded half up to the minor unit.
    pub fee_rate_bps: u32,
    /// A fixed fee per payment in some currencies, in minor units: `{ USD = 30, SGD = 40 }`.
    pub fee_fixed_minor: std::collections::BTreeMap<String, i64>,
    /// The tax on fees, in basis points of the fee.
    pub fee_tax_rate_bps: u32,
    /// What a refund does with its payment's fee: `pro_rata` returns the refunded share, `none`
    /// keeps it. A cancel of a paid payment always returns the whole fee.
    pub fee_refund: String,
    /// The settlement day ends at this time of day (`HH:MM`) ...
    pub settlement_cutoff: String,
    /// ... in this time zone: an offset such as `+08:00` or a zone name such as `Asia/Shanghai`.
    /// Reports show times with its offset.
    pub settlement_time_zone: String,
    /// A day's batch settles this many days after the day (T+N).
    pub settlement_delay_days: u32,
    /// Settlement rates where a participant's settlement currency differs from the
    /// transaction's, as `"SGD/USD" = "0.7400"`. None by default.
    pub settlement_fx_rates: std::collections::BTreeMap<String, String>,
    /// The same for sandbox participants; a few sample pairs by default.
    pub sandbox_settlement_fx_rates: std::collections::BTreeMap<String, String>,
    /// Whether `ocpay serve` settles each day after its cutoff and writes the files.
    pub settlement_enabled: bool,
    /// How often the settlement job looks for a day to settle.
    pub settlement_poll_interval_ms: u64,
    /// Most transactions one write transaction adds to a batch, so that payments never wait
    /// long for the writer while a large day settles.
    pub settlement_chunk_max: u32,
    /// Amounts in the files: `major` (`10.00` for USD 10) or `minor` (`1000`).
    pub report_amounts: String,
    /// Rows per file before it splits into `_000`, `_001`, ...
    pub report_rows_per_file: usize,
    /// Rows read from the store per page while a file is written.
    pub report_page_max: u32,

    /// Where the layers came from, to say where a value was set (filled by [`Config::load`]):
    /// not a setting.
    #[serde(skip)]
    pub layers: Layers,
}

/// The file and the flags a configuration was loaded with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layers {
    file: Option<PathBuf>,
    flags: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("ocpay-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            tls_cert_file: None,
            tls_key_file: None,
            request_body_bytes_max: 64 * 1024,
            request_time_skew_seconds_max: 300,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            connections_max: 4096,
            connections_per_address_max: 256,
            rate_limit_address_per_second: 2_000,
            rate_limit_address_burst: 4_000,
            rate_limit_unverified_cost: 20,
            rate_limit_client_per_second: 1_000,
            rate_limit_client_burst: 2_000,
            shutdown_grace_ms: 10_000,
            metrics_listen: None,
            log_format: "text".into(),
            payment_expiry_default_seconds: 15 * 60,
            payment_expiry_max_seconds: 30 * 60,
            cancel_window_days_after_payment: 1,
            cancel_window_closes_at_minute: 15,
            cancel_window_zone_offset_minutes: 8 * 60,
            database_url: None,
            postgres_pool_max: 16,
            postgres_pool_wait_ms: 5_000,
            postgres_connect_timeout_ms: 5_000,
            postgres_statement_timeout_ms: 5_000,
            postgres_serialization_retries: 20,
            postgres_ca_file: None,
            sqlite_read_connections_max: 8,
            sqlite_write_batch_max: 256,
            sqlite_write_queue_max: 4096,
            sqlite_write_gather_yields: 8,
            sqlite_busy_timeout_ms: 5_000,
            sqlite_checkpoint_interval_ms: 100,
            key_cache_entries_max: 10_000,
            notify_poll_interval_ms: 500,
            notify_concurrency_max: 32,
            notify_batch_max: 100,
            notify_timeout_ms: 10_000,
            notify_claim_lease_ms: 60_000,
            notify_retry_intervals_seconds: vec![120, 600, 600, 3_600, 7_200, 21_600, 54_000],
            notify_response_bytes_max: 64 * 1024,
            notify_allow_private_addresses: false,
            sandbox_notify_allow_loopback: true,
            sandbox_notify_allow_private: false,
            timers_poll_interval_ms: 1_000,
            timers_batch_max: 500,
            refund_window_days: 365,
            refund_multiple_allowed: true,
            refund_async: false,
            refund_async_delay_seconds: 60,
            grant_lifetime_days: 365,
            audit_page_max: 1_000,
            audit_queue_max: 65_536,
            audit_batch_max: 1_000,
            audit_flush_interval_ms: 100,
            audit_retention_days: 400,
            retention_batch_max: 500,
            retention_pause_ms: 100,
            retention_poll_interval_ms: 60_000,
            api_log_enabled: true,
            api_log_body_max_bytes: 16 * 1024,
            api_log_unverified_max: 500,
            api_log_retention_days: 30,
            api_log_queue_max: 4_096,
            api_log_batch_max: 500,
            api_log_flush_interval_ms: 100,
            sandbox_top_up_major: 1_000_000,
            wallet_balance_max_major: ocpay_core::ledger::WalletLimit::DEFAULT_MAJOR,
            sandbox_slow_answer_ms: 20_000,
            sandbox_registration_review_seconds: 30,
            acceptance_log_entries_max: 20_000,
            acceptance_poll_grace_seconds: 60,
            acceptance_notification_reads_max: 60,
            registrations_list_max: 1_000,
            pin_hash_iterations: 100_000,
            pin_failures_max: 5,
            pin_lockout_seconds: 900,
            sftp_enabled: true,
            sftp_listen: SocketAddr::from(([127, 0, 0, 1], 2222)),
            sftp_unused_days_max: 90,
            sftp_login_failures_max: 5,
            sftp_lockout_seconds: 900,
            sftp_auth_timeout_ms: 30_000,
            sftp_idle_timeout_ms: 600_000,
            sftp_sessions_per_account_max: 4,
            sftp_connections_per_ip_max: 16,
            portal_signup: "off".into(),
            portal_session_idle_minutes: 30,
            portal_session_absolute_hours: 12,
            portal_sign_in_failures_max: 5,
            portal_lockout_seconds: 900,
            portal_totp_required_for_live_owners: true,
            // OWASP's minimum for argon2id: 19 MiB, two passes.
            portal_argon2_memory_kib: 19_456,
            portal_argon2_iterations: 2,
            portal_setup_link_hours: 72,
            portal_page_size: 50,
            portal_agent_token_hold_hours: 72,
            fx_rates: std::collections::BTreeMap::new(),
            sandbox_fx_rates: sample_fx_rates(),
            fee_rate_bps: 0,
            fee_fixed_minor: std::collections::BTreeMap::new(),
            fee_tax_rate_bps: 0,
            fee_refund: "pro_rata".into(),
            settlement_cutoff: "00:00".into(),
            settlement_time_zone: "+08:00".into(),
            settlement_delay_days: 1,
            settlement_fx_rates: std::collections::BTreeMap::new(),
            sandbox_settlement_fx_rates: sample_fx_rates(),
            settlement_enabled: true,
            settlement_poll_interval_ms: 60_000,
            settlement_chunk_max: 250,
            report_amounts: "major".into(),
            report_rows_per_file: 1_000_000,
            report_page_max: 5_000,
            layers: Layers::default(),
        }
    }
}

/// Settings given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Config {
    /// Loads the layers: defaults, then `file` if given, then the environment, then `overrides`.
    /// An error names each key that does not fit and where its value came from.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        // Only variables naming a setting are read, so that OCPAY_CLIENT_ID and friends,
        // which the CLI's API commands use, do not trip the unknown-key check.
        let known = Config::keys();
        let env = Env::prefixed(ENV_PREFIX)
            .filter(move |key| known.iter().any(|known| key.as_str().eq_ignore_ascii_case(known)));
        let flags = match serde_json::to_value(overrides) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let layers = Layers { file: file.map(Path::to_owned), flags };
        match figment.merge(env).merge(Serialized::defaults(overrides)).extract::<Config>() {
            Ok(config) => Ok(Config { layers, ..config }),
            Err(errors) => {
                let described = Config { layers, ..Config::default() };
                let lines: Vec<String> = errors
                    .into_iter()
                    .map(|error| {
                        // figment's path starts with the profile ("default"), which says nothing.
                        let key = error.path.iter().skip_while(|part| *part == "default").cloned();
                        let key = key.collect::<Vec<_>>().join(".");
                        let key = if key.is_empty() { "the configuration".to_owned() } else { key };
                        let top = key.split('.').next().unwrap_or_default().to_owned();
                        format!("{key} in {}: {}", described.source_of(&top), error.kind)
                    })
                    .collect();
                Err(anyhow::anyhow!(lines.join("; ")))
            }
        }
    }

    /// Where the value of setting `key` came from: a flag, an environment variable, the file,
    /// or the defaults.
    pub fn source_of(&self, key: &str) -> String {
        if self.layers.flags.iter().any(|flag| flag == key) {
            return format!("flag --{}", key.replace('_', "-"));
        }
        let variable = format!("{ENV_PREFIX}{}", key.to_ascii_uppercase());
        if std::env::var_os(&variable).is_some() {
            return format!("environment variable {variable}");
        }
        if let Some(file) = &self.layers.file
            && Figment::from(Toml::file_exact(file)).find_value(key).is_ok()
        {
            return file.display().to_string();
        }
        "the defaults".to_owned()
    }

    /// Every setting's key, lower case, as in the file.
    pub fn keys() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The platform's own listeners: `listen` and the host and port of the public URL.
    pub(crate) fn own_listeners(&self) -> crate::urls::OwnListeners {
        crate::urls::OwnListeners::new(self.listen, &self.public_url_or_default())
    }

    /// `public_url`, or its default: `http://<listen>`, or `https://<listen>` when the listener
    /// speaks HTTPS (without the port when it is 443).
    pub fn public_url_or_default(&self) -> String {
        match (&self.public_url, &self.tls_cert_file) {
            (Some(public_url), _) => public_url.clone(),
            (None, None) => format!("http://{}", self.listen),
            (None, Some(_)) if self.listen.port() == 443 => match self.listen {
                SocketAddr::V4(listen) => format!("https://{}", listen.ip()),
                SocketAddr::V6(listen) => format!("https://[{}]", listen.ip()),
            },
            (None, Some(_)) => format!("https://{}", self.listen),
        }
    }

    /// The platform's fee rules (`fee_*`), or why they cannot be.
    pub fn fee_rules(&self) -> Result<ocpay_core::fees::FeeRules, (&'static str, String)> {
        use ocpay_core::fees::{FeeRefund, FeeRules, FeeSchedule};
        let mut fixed = std::collections::BTreeMap::new();
        for (code, minor) in &self.fee_fixed_minor {
            let currency = ocpay_core::money::Currency::parse(code)
                .map_err(|error| ("fee_fixed_minor", format!("{code}: {error}")))?;
            fixed.insert(currency, *minor);
        }
        let default = FeeSchedule::new(self.fee_rate_bps, fixed, self.fee_tax_rate_bps)
            .map_err(|error| ("fee_rate_bps", error.to_string()))?;
        let refund = FeeRefund::parse(&self.fee_refund)
            .ok_or(("fee_refund", format!("is pro_rata or none, not {:?}", self.fee_refund)))?;
        Ok(FeeRules { default, refund })
    }

    /// The most a payer's wallet may hold (`wallet_balance_max_major`).
    pub fn wallet_limit(&self) -> anyhow::Result<ocpay_core::ledger::WalletLimit> {
        ocpay_core::ledger::WalletLimit::new(self.wallet_balance_max_major).map_err(anyhow::Error::msg)
    }
}

/// Rates for trying cross-currency payments in the sandbox.
fn sample_fx_rates() -> std::collections::BTreeMap<String, String> {
    [
        ("USD/SGD", "1.3450"),
        ("SGD/USD", "0.7435"),
        ("USD/CNY", "7.1200"),
        ("CNY/USD", "0.1404"),
        ("USD/JPY", "150.25"),
        ("JPY/USD", "0.006655"),
        ("USD/EUR", "0.9200"),
        ("EUR/USD", "1.0870"),
    ]
    .into_iter()
    .map(|(pair, price)| (pair.to_owned(), price.to_owned()))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's own error type, in a test.
    fn environment_variables_sit_between_the_file_and_the_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("ocpay.toml", "request_body_bytes_max = 1000\nheader_read_timeout_ms = 7\n")?;
            jail.set_env("OCPAY_REQUEST_BODY_BYTES_MAX", "10");
            jail.set_env("OCPAY_LISTEN", "127.0.0.1:9000");
            // A variable of the API commands, not a setting: ignored, not an error.
            jail.set_env("OCPAY_CLIENT_ID", "SANDBOX_X");
            let overrides =
                Overrides { listen: Some("127.0.0.1:9100".parse().unwrap()), ..Overrides::default() };
            let config = Config::load(Some(std::path::Path::new("ocpay.toml")), &overrides).unwrap();
            assert_eq!(config.request_body_bytes_max, 10, "the environment beats the file");
            assert_eq!(config.header_read_timeout_ms, 7, "the file beats the defaults");
            assert_eq!(config.listen.port(), 9100, "a flag beats the environment");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ocpay.toml");
        std::fs::write(&file, "request_body_byte_max = 1000\n").unwrap();
        let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(error.to_string().contains("request_body_byte_max"), "{error}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own error type, in a test.
    fn errors_name_the_key_and_where_its_value_came_from() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("ocpay.toml", "notify_timeout_ms = \"soon\"\ntimers_batch_max = 0\n")?;
            let file = std::path::Path::new("ocpay.toml");
            let error = Config::load(Some(file), &Overrides::default()).unwrap_err().to_string();
            assert!(error.starts_with("notify_timeout_ms in ocpay.toml: invalid type"), "{error}");
            assert!(!error.contains("default."), "{error}");

            jail.create_file("ocpay.toml", "timers_batch_max = 0\n")?;
            let config = Config::load(Some(file), &Overrides::default()).unwrap();
            let error = crate::settings::Settings::resolve(&config).unwrap_err().to_string();
            assert_eq!(error, "timers_batch_max in ocpay.toml: must be at least 1");

            jail.set_env("OCPAY_TIMERS_BATCH_MAX", "0");
            let config = Config::load(Some(file), &Overrides::default()).unwrap();
            let error = crate::settings::Settings::resolve(&config).unwrap_err().to_string();
            assert_eq!(
                error,
                "timers_batch_max in environment variable OCPAY_TIMERS_BATCH_MAX: must be at least 1"
            );

            let overrides = Overrides { public_url: Some("not a url".into()), ..Overrides::default() };
            let config = Config::load(None, &overrides).unwrap();
            assert_eq!(config.source_of("public_url"), "flag --public-url");
            assert_eq!(config.source_of("listen"), "the defaults");
            Ok(())
        });
    }
}
