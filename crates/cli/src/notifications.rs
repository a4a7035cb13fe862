//! `ocpay notifications ...`: the delivery record of a payment's, a refund's or a merchant
//! registration's notifications, and resending them. A registration may also be named by its
//! `registrationRequestId`. Works on the data directory; a running server picks resends up at its
//! next poll.

use ocpay_server::admin::notification_json;
use ocpay_server::service::registrations;
use ocpay_store::Store;
use serde_json::json;

use crate::data::DataArgs;

#[derive(clap::Subcommand)]
pub(crate) enum NotificationsCommand {
    /// List the notifications about a payment, a refund or a registration, with every delivery attempt
    /// (status, latency, error).
    List {
        /// A paymentId, a refundId, or a registration's id or registrationRequestId.
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Queue the notifications about a payment, a refund or a registration to be sent again now, delivered or not.
    Resend {
        /// A paymentId, a refundId, or a registration's id or registrationRequestId.
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

pub(crate) async fn run(command: NotificationsCommand) -> anyhow::Result<()> {
    match command {
        NotificationsCommand::List { id, data } => {
            let (_, _, store) = data.open().await?;
            let subject = subject(&*store, &id).await?;
            let notifications = store.notifications(&subject).await?;
            let listed: Vec<_> = notifications
                .iter()
                .map(|(notification, attempts)| notification_json(notification, attempts))
                .collect();
            crate::print_json(&json!({ "id": id, "notifications": listed }))
        }
        NotificationsCommand::Resend { id, data } => {
            let (_, _, store) = data.open().await?;
            let subject = subject(&*store, &id).await?;
            let queued = store.resend_notifications(&subject, jiff::Timestamp::now()).await?;
            if queued == 0 {
                anyhow::bail!("no notification about {id}");
            }
            crate::print_json(&json!({ "id": id, "queued": queued }))
        }
    }
}

/// What the notifications of `id` are filed under: the id itself, unless it is the
/// `registrationRequestId` of one registration, whose notifications are filed under its id.
async fn subject(store: &dyn Store, id: &str) -> anyhow::Result<String> {
    if !store.notifications(id).await?.is_empty() {
        return Ok(id.to_owned());
    }
    match registrations::find(store, id, None).await {
        Ok(registration) => Ok(registration.terms.id.to_string()),
        Err(registrations::ReviewError::NotFound(_)) => Ok(id.to_owned()),
        Err(error) => Err(error.into()),
    }
}
