//! `ocpay participant ...`: works on the data directory directly, so it runs with or without
//! the server (SQLite lets both write the one file; each write is a transaction).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ocpay_core::access::Scopes;
use ocpay_core::fees::FeeSchedule;
use ocpay_core::ids::ClientId;
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::{Environment, KeyLabel, Participant, ParticipantKey, ParticipantKind};
use ocpay_core::text::Name;
use ocpay_protocol::{SigningKey, VerifyingKey};
use ocpay_server::HttpUrl;
use ocpay_server::data_dir::DataDir;
use ocpay_server::service::participants::{
    self, AddedKey, NewParticipant, ParticipantError, ParticipantField, ParticipantUpdate,
};
use ocpay_settlement::files::{AmountUnit, format_amount, parse_amount};
use ocpay_store::settlement::SettlementTerms;
use serde_json::json;

use crate::calls::Profile;
use crate::data::DataArgs;

#[derive(clap::Subcommand)]
pub(crate) enum ParticipantCommand {
    /// Create a participant; prints its clientId and keyVersion.
    Create(CreateArgs),
    /// List participants.
    List {
        #[command(flatten)]
        data: DataArgs,
        /// Most participants to print.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Change a participant's name or default notify URL.
    Update(UpdateArgs),
    /// Add a key version to a participant (key rotation, or a system integrator's own key).
    AddKey(AddKeyArgs),
    /// Revoke one key version at once; the participant's other keys keep working.
    RevokeKey {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        key_version: u32,
    },
    /// List a participant's keys with their labels, scopes, expiry and revocation.
    Keys {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        client_id: String,
    },
    /// Suspend a participant: its signed API requests (and an ISV's for it) answer
    /// ACCESS_DENIED until it is resumed.
    Suspend {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, value_parser = parse_client_id)]
        client_id: ClientId,
    },
    /// Resume a suspended participant.
    Resume {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, value_parser = parse_client_id)]
        client_id: ClientId,
    },
}

/// Where the participant's public key comes from.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct KeySource {
    /// A public key file: PEM or base64, SubjectPublicKeyInfo or PKCS#1.
    #[arg(long)]
    public_key: Option<PathBuf>,
    /// Generate a key pair into this directory, with a profile for the API commands.
    #[arg(long)]
    generate_keys: Option<PathBuf>,
}

#[derive(clap::Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, value_parser = parse_kind)]
    kind: ParticipantKind,
    #[arg(long = "env", value_parser = parse_environment)]
    environment: Environment,
    #[arg(long)]
    name: String,
    #[command(flatten)]
    key: KeySource,
    /// Default URL for this participant's notifications.
    #[arg(long)]
    notify_url: Option<String>,
    /// Server URL to write into the generated profile.
    #[arg(long, env = "OCPAY_SERVER_URL", default_value = "http://127.0.0.1:8080")]
    server_url: String,
}

#[derive(clap::Args)]
#[group(id = "change", required = true, multiple = true)]
pub(crate) struct UpdateArgs {
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, value_parser = parse_client_id)]
    client_id: ClientId,
    #[arg(long, group = "change")]
    name: Option<String>,
    /// The default URL for this participant's notifications.
    #[arg(long, group = "change", conflicts_with = "no_notify_url")]
    notify_url: Option<String>,
    /// Remove the default notify URL: every payment must then name its own.
    #[arg(long, group = "change")]
    no_notify_url: bool,
    /// The participant's own fee rate, in basis points of each payment (0 to 10000).
    #[arg(long, group = "change")]
    fee_rate_bps: Option<u32>,
    /// A fixed fee per payment in `--fee-currency`, in major units (`0.30`); other
    /// currencies' fixed fees stay as they are. 0 removes it.
    #[arg(long, group = "change", requires = "fee_currency")]
    fee_fixed: Option<String>,
    #[arg(long, requires = "fee_fixed")]
    fee_currency: Option<String>,
    /// The tax on the fee, in basis points of the fee.
    #[arg(long, group = "change")]
    fee_tax_rate_bps: Option<u32>,
    /// Drop the participant's own fee schedule: the platform's default applies again.
    #[arg(long, group = "change", conflicts_with_all = ["fee_rate_bps", "fee_fixed", "fee_tax_rate_bps"])]
    default_fees: bool,
    /// The currency its batches settle in; `none` settles each transaction in its own.
    #[arg(long, group = "change")]
    settlement_currency: Option<String>,
}

impl UpdateArgs {
    fn changes_terms(&self) -> bool {
        self.fee_rate_bps.is_some()
            || self.fee_fixed.is_some()
            || self.fee_tax_rate_bps.is_some()
            || self.default_fees
            || self.settlement_currency.is_some()
    }

    /// `terms` with this update's fee and settlement flags applied, or the flag that is wrong.
    fn apply(&self, mut terms: SettlementTerms, defaults: &FeeSchedule) -> anyhow::Result<SettlementTerms> {
        if self.default_fees {
            terms.fees = None;
        } else if self.fee_rate_bps.is_some() || self.fee_fixed.is_some() || self.fee_tax_rate_bps.is_some() {
            let current = terms.fees.take().unwrap_or_else(|| defaults.clone());
            let mut fixed = current.fixed;
            if let (Some(amount), Some(code)) = (&self.fee_fixed, &self.fee_currency) {
                let currency =
                    Currency::parse(code).map_err(|error| anyhow::anyhow!("--fee-currency: {error}"))?;
                let money = parse_amount(amount, currency, AmountUnit::Major)
                    .map_err(|error| anyhow::anyhow!("--fee-fixed: {error}"))?;
                if money.minor() == 0 {
                    fixed.remove(&currency);
                } else {
                    fixed.insert(currency, money.minor());
                }
            }
            let schedule = FeeSchedule::new(
                self.fee_rate_bps.unwrap_or(current.rate_bps),
                fixed,
                self.fee_tax_rate_bps.unwrap_or(current.tax_rate_bps),
            )
            .map_err(|error| anyhow::anyhow!("--fee-rate-bps or --fee-tax-rate-bps: {error}"))?;
            terms.fees = Some(schedule);
        }
        match self.settlement_currency.as_deref() {
            None => {}
            Some("none") => terms.settlement_currency = None,
            Some(code) => {
                let currency = Currency::parse(code)
                    .map_err(|error| anyhow::anyhow!("--settlement-currency: {error}"))?;
                terms.settlement_currency = Some(currency);
            }
        }
        Ok(terms)
    }
}

/// A participant's fee schedule and settlement currency as the commands print them.
pub(crate) fn terms_json(terms: &SettlementTerms, defaults: &FeeSchedule) -> serde_json::Value {
    let schedule = terms.fees.as_ref().unwrap_or(defaults);
    let fixed: serde_json::Map<String, serde_json::Value> = schedule
        .fixed
        .iter()
        .map(|(currency, minor)| {
            (
                currency.code().to_owned(),
                json!(format_amount(Money::new(*minor, *currency), AmountUnit::Major)),
            )
        })
        .collect();
    json!({
        "fees": {
            "source": if terms.fees.is_some() { "participant" } else { "platform default" },
            "rateBps": schedule.rate_bps,
            "fixed": fixed,
            "taxRateBps": schedule.tax_rate_bps,
        },
        "settlementCurrency": terms.settlement_currency.map(Currency::code),
    })
}

#[derive(clap::Args)]
pub(crate) struct AddKeyArgs {
    #[command(flatten)]
    data: DataArgs,
    #[arg(long)]
    client_id: String,
    #[command(flatten)]
    key: KeySource,
    /// Who holds the key, for example "Integrator: Acme POS".
    #[arg(long)]
    label: Option<String>,
    /// What requests signed with the key may do: a comma-separated list of pay, inquiry,
    /// cancel, refund, reports, registration, or all.
    #[arg(long, value_parser = parse_scopes, default_value = "all")]
    scopes: Scopes,
    /// The key stops working after this long: 90d, 12h, 30m or 45s.
    #[arg(long, value_parser = parse_duration)]
    expires_in: Option<jiff::SignedDuration>,
    /// Server URL to write into a generated profile.
    #[arg(long, env = "OCPAY_SERVER_URL", default_value = "http://127.0.0.1:8080")]
    server_url: String,
}

pub(crate) fn parse_scopes(text: &str) -> Result<Scopes, String> {
    Scopes::parse(text).map_err(|error| error.to_string())
}

pub(crate) fn parse_client_id(text: &str) -> Result<ClientId, String> {
    ClientId::parse(text).map_err(|error| error.to_string())
}

fn parse_kind(text: &str) -> Result<ParticipantKind, String> {
    ParticipantKind::parse_any_case(text).ok_or_else(|| "must be merchant, acquirer or isv".into())
}

fn parse_environment(text: &str) -> Result<Environment, String> {
    Environment::parse_any_case(text).ok_or_else(|| "must be sandbox or live".into())
}

/// `90d`, `12h`, `30m`, `45s`.
pub(crate) fn parse_duration(text: &str) -> Result<jiff::SignedDuration, String> {
    let error = || format!("{text:?} is not a duration like 90d, 12h, 30m or 45s");
    let split = text.len().checked_sub(1).ok_or_else(error)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| error())?;
    let seconds = match unit {
        "d" => number.checked_mul(86_400),
        "h" => number.checked_mul(3_600),
        "m" => number.checked_mul(60),
        "s" => Some(number),
        _ => None,
    };
    match seconds {
        Some(seconds) if seconds > 0 => Ok(jiff::SignedDuration::from_secs(seconds)),
        _ => Err(error()),
    }
}

/// The public key to register, generating a pair (and a profile) when asked. A generated
/// pair is written only once the key is registered, so that a refused command leaves no files
/// behind for its retry to trip over.
struct ResolvedKey {
    public_key: VerifyingKey,
    generated: Option<(PathBuf, SigningKey)>,
}

impl ResolvedKey {
    /// Writes the generated pair, if any, with the platform key and a profile beside it.
    fn write(
        self,
        data_dir: &DataDir,
        participant: &Participant,
        key_version: u32,
        server_url: &str,
    ) -> anyhow::Result<Option<(crate::keys::KeyFiles, PathBuf)>> {
        let client_id = &participant.client_id;
        let Some((dir, key)) = self.generated else { return Ok(None) };
        let written = crate::keys::write(&dir, key)
            .and_then(|files| {
                let profile = write_profile(data_dir, &files, participant, key_version, server_url)?;
                Ok((files, profile))
            })
            .with_context(|| {
                format!(
                    "key version {key_version} of {client_id} is registered, but its files were not written"
                )
            })?;
        Ok(Some(written))
    }
}

fn resolve_key(source: &KeySource) -> anyhow::Result<ResolvedKey> {
    match (&source.public_key, &source.generate_keys) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
            let public_key = VerifyingKey::from_text(&text)
                .with_context(|| format!("parse the public key {}", path.display()))?;
            Ok(ResolvedKey { public_key, generated: None })
        }
        (None, Some(dir)) => {
            crate::keys::ensure_free(dir)?;
            let key = SigningKey::generate()?;
            Ok(ResolvedKey { public_key: key.verifying_key(), generated: Some((dir.clone(), key)) })
        }
        (None, None) => anyhow::bail!("give --public-key or --generate-keys"),
    }
}

/// Writes the platform key and a profile next to generated keys; returns the profile's path.
fn write_profile(
    data_dir: &DataDir,
    files: &crate::keys::KeyFiles,
    participant: &Participant,
    key_version: u32,
    server_url: &str,
) -> anyhow::Result<PathBuf> {
    let dir = files.private_key.parent().unwrap_or(Path::new("."));
    let platform_key = dir.join("platform-public-key.pem");
    std::fs::write(&platform_key, data_dir.platform_key()?.verifying_key().to_pem())
        .with_context(|| format!("write {}", platform_key.display()))?;
    let profile = Profile {
        server_url: Some(server_url.to_owned()),
        client_id: Some(participant.client_id.to_string()),
        name: Some(participant.name.to_string()),
        private_key: Some(PathBuf::from("private-key.pem")),
        platform_key: Some(PathBuf::from("platform-public-key.pem")),
        key_version: Some(key_version),
        agent_token: None,
    };
    let path = dir.join("profile.toml");
    std::fs::write(&path, toml::to_string(&profile)?).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

pub(crate) async fn run(command: ParticipantCommand) -> anyhow::Result<()> {
    match command {
        ParticipantCommand::Create(args) => create(args).await,
        ParticipantCommand::List { data, limit } => {
            let (_, _, store) = data.open().await?;
            let listed = store.participants(limit).await?;
            let rows: Vec<_> = listed.iter().map(participant_json).collect();
            crate::print_json(&json!({ "participants": rows }))
        }
        ParticipantCommand::Update(args) => {
            let (settings, _, store) = args.data.open().await?;
            let defaults = &settings.fees.default;
            let terms = if args.changes_terms() {
                let Some(current) = store.settlement_terms(&args.client_id).await? else {
                    return Err(
                        crate::NotFound(format!("no participant has client id {}", args.client_id)).into()
                    );
                };
                let terms = args.apply(current, defaults)?;
                store.set_settlement_terms(&args.client_id, &terms).await?;
                Some(terms)
            } else {
                None
            };
            let notify_url = match (notify_url_flag(args.notify_url.as_deref())?, args.no_notify_url) {
                (Some(url), _) => Some(Some(url)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let name = args.name.as_deref().map(name_flag).transpose()?;
            let update = ParticipantUpdate { name, notify_url };
            match participants::update(&*store, &settings.notify, &args.client_id, update).await {
                Ok(participant) => {
                    let mut printed = participant_json(&participant);
                    if let Some(terms) = terms
                        && let (Some(printed), serde_json::Value::Object(terms)) =
                            (printed.as_object_mut(), terms_json(&terms, defaults))
                    {
                        printed.extend(terms);
                    }
                    crate::print_json(&printed)
                }
                Err(ParticipantError::Invalid { field: ParticipantField::ClientId, reason }) => {
                    Err(crate::NotFound(reason).into())
                }
                Err(error) => Err(refused(error)),
            }
        }
        ParticipantCommand::AddKey(args) => add_key(args).await,
        ParticipantCommand::RevokeKey { data, client_id, key_version } => {
            let (_, _, store) = data.open().await?;
            let client_id =
                parse_client_id(&client_id).map_err(|error| anyhow::anyhow!("--client-id: {error}"))?;
            let key = participants::revoke_key(&*store, jiff::Timestamp::now(), &client_id, key_version)
                .await
                .map_err(refused)?;
            crate::print_json(&key_json(&key))
        }
        ParticipantCommand::Keys { data, client_id } => {
            let (_, _, store) = data.open().await?;
            let client_id =
                parse_client_id(&client_id).map_err(|error| anyhow::anyhow!("--client-id: {error}"))?;
            let keys = store.participant_keys(&client_id).await?;
            crate::print_json(
                &json!({ "clientId": client_id.as_str(), "keys": keys.iter().map(key_json).collect::<Vec<_>>() }),
            )
        }
        ParticipantCommand::Suspend { data, client_id } => suspend(data, &client_id, true).await,
        ParticipantCommand::Resume { data, client_id } => suspend(data, &client_id, false).await,
    }
}

/// `ocpay participant suspend|resume`: prints the participant with `suspendedAt`.
async fn suspend(data: DataArgs, client_id: &ClientId, suspend: bool) -> anyhow::Result<()> {
    let (_, _, store) = data.open().await?;
    let now = jiff::Timestamp::now();
    let listing = participants::set_suspended(&*store, now, client_id, suspend).await.map_err(refused)?;
    let mut printed = participant_json(&listing.participant);
    printed["suspendedAt"] = json!(listing.suspended_at.map(ocpay_protocol::datetime::format));
    crate::print_json(&printed)
}

/// A refusal of a participant's, key's or grant's value, naming the flag that gave it.
pub(crate) fn refused(error: ParticipantError) -> anyhow::Error {
    let ParticipantError::Invalid { field, reason } = error else { return error.into() };
    let flag = match field {
        ParticipantField::ClientId => "client-id",
        ParticipantField::NotifyUrl => "notify-url",
        ParticipantField::KeyVersion => "key-version",
        ParticipantField::Lifetime => "expires-in",
        ParticipantField::Merchant => "merchant",
        ParticipantField::Isv => "isv",
        ParticipantField::Grant => "grant",
    };
    anyhow::anyhow!("{flag}: {reason}")
}

/// The name `--name` gives.
fn name_flag(text: &str) -> anyhow::Result<Name> {
    Name::parse(text).map_err(|reason| anyhow::anyhow!("name: {reason}"))
}

/// The URL `--notify-url` gives, if it gives one.
fn notify_url_flag(text: Option<&str>) -> anyhow::Result<Option<HttpUrl>> {
    text.map(HttpUrl::parse).transpose().map_err(|reason| anyhow::anyhow!("notify-url: {reason}"))
}

fn participant_json(participant: &Participant) -> serde_json::Value {
    json!({
        "clientId": participant.client_id.as_str(),
        "kind": participant.kind.as_str(),
        "environment": participant.environment().as_str(),
        "name": participant.name.as_str(),
        "notifyUrl": participant.notify_url,
        "createdAt": ocpay_protocol::datetime::format(participant.created_at),
    })
}

fn key_json(key: &ParticipantKey) -> serde_json::Value {
    let format = ocpay_protocol::datetime::format;
    json!({
        "clientId": key.client_id.as_str(),
        "keyVersion": key.key_version,
        "label": key.label.as_deref(),
        "scopes": key.scopes.to_string(),
        "createdAt": format(key.created_at),
        "expiresAt": key.expires_at.map(format),
        "revokedAt": key.revoked_at.map(format),
    })
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let (settings, data_dir, store) = args.data.open().await?;
    let key = resolve_key(&args.key)?;
    let new = NewParticipant {
        kind: args.kind,
        environment: args.environment,
        name: name_flag(&args.name)?,
        public_key: key.public_key.clone(),
        notify_url: notify_url_flag(args.notify_url.as_deref())?,
    };
    let participant = participants::create(&*store, &settings.notify, jiff::Timestamp::now(), new)
        .await
        .map_err(refused)?;
    let mut output = json!({
        "clientId": participant.client_id.as_str(),
        "keyVersion": 1,
        "kind": participant.kind.as_str(),
        "environment": participant.environment().as_str(),
        "name": participant.name.as_str(),
        "notifyUrl": participant.notify_url,
    });
    if let Some((files, profile)) = key.write(&data_dir, &participant, 1, &args.server_url)? {
        output["privateKeyFile"] = json!(files.private_key);
        output["publicKeyFile"] = json!(files.public_key);
        output["profile"] = json!(profile);
    }
    crate::print_json(&output)
}

async fn add_key(args: AddKeyArgs) -> anyhow::Result<()> {
    let (_, data_dir, store) = args.data.open().await?;
    let client_id =
        ClientId::parse(&args.client_id).map_err(|error| anyhow::anyhow!("--client-id: {error}"))?;
    let key = resolve_key(&args.key)?;
    let now = jiff::Timestamp::now();
    let expires_at = args.expires_in.map(|duration| now + duration);
    let added = AddedKey {
        public_key: key.public_key.clone(),
        label: args
            .label
            .as_deref()
            .map(KeyLabel::parse)
            .transpose()
            .map_err(|reason| anyhow::anyhow!("label: {reason}"))?,
        scopes: args.scopes,
        expires_at,
    };
    let key_version = participants::add_key(&*store, now, &client_id, added).await.map_err(refused)?;
    let participant = store
        .participant(&client_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--client-id: no participant {client_id}"))?;
    let mut output = json!({
        "clientId": client_id.as_str(),
        "keyVersion": key_version,
        "label": args.label,
        "scopes": args.scopes.to_string(),
        "expiresAt": expires_at.map(ocpay_protocol::datetime::format),
    });
    if let Some((files, profile)) = key.write(&data_dir, &participant, key_version, &args.server_url)? {
        output["privateKeyFile"] = json!(files.private_key);
        output["profile"] = json!(profile);
    }
    crate::print_json(&output)
}
