//! `ocpay registrations list | approve | reject`: the operator's review of acquirers' merchant
//! registrations. Works on the data directory; a decision's notification is queued with it,
//! and a running server sends it at its next poll.

use ocpay_core::ids::ClientId;
use ocpay_core::registration::{Decision, RejectReason};
use ocpay_server::admin::registration_json;
use ocpay_server::service::registrations::{self, ReviewError};
use serde_json::json;

use crate::data::DataArgs;

#[derive(clap::Subcommand)]
pub(crate) enum RegistrationsCommand {
    /// List registrations, newest first, with their status.
    List {
        /// Only this acquirer's.
        #[arg(long)]
        client_id: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Approve a registration under review: the acquirer may then pay for its merchant and store.
    Approve {
        /// The registration's id, or its registrationRequestId.
        id: String,
        /// The acquirer, when a registrationRequestId is used by several.
        #[arg(long)]
        client_id: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Reject a registration under review, saying why; the acquirer may register again.
    Reject {
        /// The registration's id, or its registrationRequestId.
        id: String,
        /// Why, as the acquirer reads it in `rejectReasons`.
        #[arg(long)]
        reason: String,
        #[arg(long)]
        client_id: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
}

fn client_id(value: Option<&str>) -> anyhow::Result<Option<ClientId>> {
    value
        .map(|value| ClientId::parse(value).map_err(|error| anyhow::anyhow!("--client-id: {error}")))
        .transpose()
}

pub(crate) async fn run(command: RegistrationsCommand) -> anyhow::Result<()> {
    let (reference, owner, decision, data) = match command {
        RegistrationsCommand::List { client_id: owner, data } => {
            let owner = client_id(owner.as_deref())?;
            let (settings, _, store) = data.open().await?;
            let listed = store.registrations(owner.as_ref(), None, settings.registrations_list_max).await?;
            let listed: Vec<_> = listed.iter().map(registration_json).collect();
            return crate::print_json(&json!({ "registrations": listed }));
        }
        RegistrationsCommand::Approve { id, client_id, data } => (id, client_id, Decision::Approve, data),
        RegistrationsCommand::Reject { id, reason, client_id, data } => {
            let reason = RejectReason::parse(&reason).map_err(|error| anyhow::anyhow!("reason: {error}"))?;
            (id, client_id, Decision::Reject { reason }, data)
        }
    };
    let owner = client_id(owner.as_deref())?;
    let (_, _, store) = data.open().await?;
    let decided =
        registrations::review(&*store, &reference, owner.as_ref(), &decision, jiff::Timestamp::now())
            .await
            .map_err(review_refused)?;
    crate::print_json(&registration_json(&decided))
}

/// A refused review, in the words of the command's arguments.
fn review_refused(error: ReviewError) -> anyhow::Error {
    match error {
        ReviewError::NotFound(reference) => {
            anyhow::anyhow!("no registration has the id or registrationRequestId {reference}")
        }
        ReviewError::Ambiguous { reference, count } => {
            anyhow::anyhow!(
                "{reference} names {count} registrations of different acquirers: give the client id"
            )
        }
        other => other.into(),
    }
}
