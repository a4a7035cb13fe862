//! `ocpay sftp ...`: the accounts participants fetch their reconciliation files with over SFTP,
//! and the host key clients pin. Like `ocpay participant`, they work on the data directory (and
//! its database) directly, so they work while the server runs.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use ocpay_core::ids::ClientId;
use ocpay_server::service::sftp as accounts;
use ocpay_server::settings::Settings;
use ocpay_store::{SftpAccount, SftpAccountChange};
use serde_json::{Value, json};

use crate::NotFound;
use crate::data::DataArgs;
use crate::grants::ensure_participant;
use crate::participant::parse_client_id;

#[derive(clap::Subcommand)]
pub(crate) enum SftpCommand {
    /// Give a participant an SFTP account (login name = client id), or add a public key to its
    /// account or replace its password.
    AddUser(AddUserArgs),
    /// List the SFTP accounts (never their passwords).
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Remove a participant's SFTP account.
    RemoveUser {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, value_parser = parse_client_id)]
        client_id: ClientId,
    },
    /// Print the server's host key as a known_hosts line, for clients to pin (made now if the
    /// server has not made it yet).
    HostKey {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(clap::Args)]
pub(crate) struct AddUserArgs {
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, value_parser = parse_client_id)]
    client_id: ClientId,
    /// An OpenSSH public key file (`ssh-ed25519 AAAA...`; Ed25519 or ECDSA): added to the
    /// account's keys.
    #[arg(long, conflicts_with = "password_stdin", required_unless_present = "password_stdin")]
    public_key: Option<PathBuf>,
    /// Read the password from standard input (one line): it replaces the account's password.
    #[arg(long)]
    password_stdin: bool,
    /// An address or CIDR network the account may connect from (repeatable). Given, the list
    /// replaces the account's; never given on a new account, any address may connect.
    #[arg(long = "allow-ip", value_name = "CIDR")]
    allow_ip: Vec<String>,
}

fn account_json(account: &SftpAccount) -> Value {
    json!({
        "clientId": account.client_id.as_str(),
        "publicKeys": account.public_keys,
        "password": account.password_hash.is_some(),
        "allowedNetworks": account.allowed_networks,
        "createdAt": account.created_at.to_string(),
        "lastLoginAt": account.last_login_at.map(|at| at.to_string()),
        "failures": account.failures,
        "lockedUntil": account.locked_until.map(|at| at.to_string()),
    })
}

pub(crate) async fn run(command: SftpCommand) -> anyhow::Result<()> {
    match command {
        SftpCommand::AddUser(args) => add_user(args).await,
        SftpCommand::List { data } => {
            let (_, _, store) = data.open().await?;
            let accounts = store.sftp_accounts().await?;
            crate::print_json(&json!({ "accounts": accounts.iter().map(account_json).collect::<Vec<_>>() }))
        }
        SftpCommand::RemoveUser { data, client_id } => {
            let (_, _, store) = data.open().await?;
            if !store.remove_sftp_account(&client_id).await? {
                return Err(NotFound(format!("{client_id} has no SFTP account")).into());
            }
            crate::print_json(&json!({ "clientId": client_id.as_str(), "removed": true }))
        }
        SftpCommand::HostKey { data } => {
            let config = data.config()?;
            let settings = Settings::resolve(&config)?;
            let data_dir = data.data_dir(&config)?;
            let key = ocpay_sftp::host_key::load_or_create(data_dir.root())?;
            let line = ocpay_sftp::host_key::known_hosts_line(key.public_key(), settings.sftp.listen)?;
            crate::print_stdout(&format!("{line}\n"))
        }
    }
}

async fn add_user(args: AddUserArgs) -> anyhow::Result<()> {
    let add_public_key = match &args.public_key {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
            Some(accounts::normalize_public_key(&text).context("--public-key")?)
        }
        None => None,
    };
    let password_hash = if args.password_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("read the password from stdin")?;
        let password = text.strip_suffix('\n').unwrap_or(&text);
        let password = password.strip_suffix('\r').unwrap_or(password);
        Some(accounts::hash_password(password).context("--password-stdin")?)
    } else {
        None
    };
    let allowed_networks = if args.allow_ip.is_empty() {
        None
    } else {
        let parsed: Result<Vec<String>, _> =
            args.allow_ip.iter().map(|text| accounts::parse_network(text)).collect();
        Some(parsed.context("--allow-ip")?)
    };
    let (_, _, store) = args.data.open().await?;
    ensure_participant(&*store, &args.client_id).await?;
    let change =
        SftpAccountChange { client_id: args.client_id, add_public_key, password_hash, allowed_networks };
    let (account, created) = store.upsert_sftp_account(&change, jiff::Timestamp::now()).await?;
    let mut output = account_json(&account);
    output["created"] = json!(created);
    crate::print_json(&output)
}
