//! `ocpay notifications ...`: the delivery record of a payment's or a refund's notifications,
//! and resending them. Works on the data directory; a running server picks resends up at its
//! next poll.

use ocpay_server::admin::notification_json;
use ocpay_store::Store;
use serde_json::json;

use crate::data::DataArgs;

#[derive(clap::Subcommand)]
pub(crate) enum NotificationsCommand {
    /// List the notifications about a payment or a refund, with every delivery attempt
    /// (status, latency, error).
    List {
        /// A paymentId or a refundId.
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Queue the notifications about a payment or a refund to be sent again now, delivered or not.
    Resend {
        /// A paymentId or a refundId.
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

pub(crate) async fn run(command: NotificationsCommand) -> anyhow::Result<()> {
    match command {
        NotificationsCommand::List { id, data } => {
            let (_, _, store) = data.open().await?;
            let notifications = store.notifications(&id).await?;
            let listed: Vec<_> = notifications
                .iter()
                .map(|(notification, attempts)| notification_json(notification, attempts))
                .collect();
            crate::print_json(&json!({ "id": id, "notifications": listed }))
        }
        NotificationsCommand::Resend { id, data } => {
            let (_, _, store) = data.open().await?;
            let queued = store.resend_notifications(&id, jiff::Timestamp::now()).await?;
            if queued == 0 {
                anyhow::bail!("no notification about {id}");
            }
            crate::print_json(&json!({ "id": id, "queued": queued }))
        }
    }
}
