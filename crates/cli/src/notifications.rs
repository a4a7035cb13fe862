//! `ocpay notifications ...`: the delivery record of a payment's, a refund's or a merchant
//! registration's notifications, and resending them. A registration may also be named by its
//! `registrationRequestId`, and with the owner's client id a payment or refund by its request
//! id. Works on the data directory; a running server picks resends up at its next poll.

use ocpay_core::ids::ClientId;
use ocpay_server::admin::notification_json;
use ocpay_server::service::notifications;
use ocpay_store::Store;
use serde_json::json;

use crate::NotFound;
use crate::data::DataArgs;
use crate::participant::parse_client_id;

#[derive(clap::Subcommand)]
pub(crate) enum NotificationsCommand {
    /// List the notifications about a payment, a refund or a registration, with every delivery attempt
    /// (status, latency, error).
    List {
        /// A paymentId, a refundId, or a registration's id or registrationRequestId; with
        /// --client-id also a paymentRequestId or refundRequestId.
        id: String,
        /// The participant the id belongs to: needed for a paymentRequestId or refundRequestId,
        /// and to list a payment or refund that has no notification.
        #[arg(long, value_parser = parse_client_id)]
        client_id: Option<ClientId>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Queue the notifications about a payment, a refund or a registration to be sent again now, delivered or not.
    Resend {
        /// A paymentId, a refundId, or a registration's id or registrationRequestId; with
        /// --client-id also a paymentRequestId or refundRequestId.
        id: String,
        /// The participant the id belongs to (needed for a paymentRequestId or refundRequestId).
        #[arg(long, value_parser = parse_client_id)]
        client_id: Option<ClientId>,
        #[command(flatten)]
        data: DataArgs,
    },
}

pub(crate) async fn run(command: NotificationsCommand) -> anyhow::Result<()> {
    match command {
        NotificationsCommand::List { id, client_id, data } => {
            let (_, _, store) = data.open().await?;
            let subject = subject(&*store, &id, client_id.as_ref()).await?;
            let notifications = store.notifications(&subject).await?;
            let listed: Vec<_> = notifications
                .iter()
                .map(|(notification, attempts)| notification_json(notification, attempts))
                .collect();
            crate::print_json(&json!({ "id": id, "notifications": listed }))
        }
        NotificationsCommand::Resend { id, client_id, data } => {
            let (_, _, store) = data.open().await?;
            let subject = subject(&*store, &id, client_id.as_ref()).await?;
            let queued = store.resend_notifications(&subject, jiff::Timestamp::now()).await?;
            if queued == 0 {
                anyhow::bail!("no notification about {id}");
            }
            crate::print_json(&json!({ "id": id, "queued": queued }))
        }
    }
}

/// What the notifications of `id` are filed under (see `notifications::subject_of`); nothing by
/// that id is an error, not an empty list.
async fn subject(store: &dyn Store, id: &str, owner: Option<&ClientId>) -> anyhow::Result<String> {
    if let Some(found) = notifications::subject_of(store, id, owner).await? {
        return Ok(found);
    }
    Err(NotFound(match owner {
        Some(owner) => format!("{owner} has no payment, refund or registration by the id {id:?}"),
        None => format!(
            "no notification is about {id:?}, and no registration has that id; a paymentRequestId or \
             refundRequestId, or a payment or refund without notifications, is found with --client-id OWNER"
        ),
    })
    .into())
}
