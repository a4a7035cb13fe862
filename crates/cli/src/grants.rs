//! `ocpay grants ...` and `ocpay audit`: merchants authorising ISVs, and the audit trail of
//! API requests. Like `ocpay participant`, they work on the data directory directly.

use anyhow::Context as _;
use ocpay_core::access::Scopes;
use ocpay_core::ids::ClientId;
use ocpay_server::admin::{audit_json, grant_json, issued_json};
use ocpay_server::service::grants::{self, NewAuthorisation};
use serde_json::{Value, json};

use crate::NotFound;
use crate::data::DataArgs;
use crate::participant::{parse_client_id, parse_duration, parse_scopes};

#[derive(clap::Subcommand)]
pub(crate) enum GrantsCommand {
    /// Authorise an ISV to act for a merchant; prints the Agent-Token once (and notifies the
    /// ISV's notify URL with it).
    Create {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, value_parser = parse_client_id)]
        merchant: ClientId,
        #[arg(long, value_parser = parse_client_id)]
        isv: ClientId,
        /// A comma-separated list of pay, inquiry, cancel, refund, reports, registration.
        #[arg(long, value_parser = parse_scopes)]
        scopes: Scopes,
        /// The grant stops working after this long: 365d, 12h [default: the grant_lifetime_days setting].
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<jiff::SignedDuration>,
    },
    /// List the grants a merchant gave or an ISV holds (never their tokens).
    List {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, value_parser = parse_client_id)]
        client_id: ClientId,
    },
    /// Revoke a grant: the ISV's next request with its token is refused.
    Revoke {
        #[command(flatten)]
        data: DataArgs,
        grant_id: String,
    },
}

pub(crate) async fn run(command: GrantsCommand) -> anyhow::Result<()> {
    match command {
        GrantsCommand::Create { data, merchant, isv, scopes, expires_in } => {
            let (settings, _, store) = data.open().await?;
            let new = NewAuthorisation { merchant, isv, scopes, expires_in };
            let issued = grants::authorise(&*store, jiff::Timestamp::now(), settings.grant_lifetime, new)
                .await
                .map_err(crate::participant::refused)?;
            crate::print_json(&issued_json(&issued))
        }
        GrantsCommand::List { data, client_id } => {
            let (_, _, store) = data.open().await?;
            ensure_participant(&*store, &client_id).await?;
            let grants = store.grants(&client_id).await?;
            crate::print_json(&json!({ "grants": grants.iter().map(grant_json).collect::<Vec<_>>() }))
        }
        GrantsCommand::Revoke { data, grant_id } => {
            let (_, _, store) = data.open().await?;
            let grant = grants::revoke(&*store, jiff::Timestamp::now(), &grant_id)
                .await
                .map_err(crate::participant::refused)?;
            crate::print_json(&grant_json(&grant))
        }
    }
}

/// `ocpay audit`: the newest requests a participant signed or that were made for it.
#[derive(clap::Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, value_parser = parse_client_id)]
    client_id: ClientId,
    /// Most events to print, newest first [at most the audit_page_max setting].
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

pub(crate) async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let (settings, _, store) = args.data.open().await?;
    // The trails of payers and operators have events but no participant.
    if !ocpay_core::participant::is_platform_trail(&args.client_id) {
        ensure_participant(&*store, &args.client_id).await?;
    }
    let limit = args.limit.min(settings.audit.page_max);
    let events = store.audit_events(&args.client_id, limit).await.context("read the audit trail")?;
    let rows: Vec<Value> = events.iter().map(audit_json).collect();
    crate::print_json(&json!({ "clientId": args.client_id.as_str(), "events": rows }))
}

/// Fails, saying so, when no participant has `client_id`: an empty list would look like one
/// that exists and has nothing to show.
pub(crate) async fn ensure_participant(
    store: &dyn ocpay_store::Store,
    client_id: &ClientId,
) -> anyhow::Result<()> {
    if store.participant(client_id).await?.is_none() {
        return Err(NotFound(format!("no participant has the client id {client_id}")).into());
    }
    Ok(())
}
