//! `ocpay notifications ...`: the delivery record of a payment's notifications, and resending
//! them. Works on the data directory; a running server picks resends up at its next poll.

use std::path::PathBuf;

use ocpay_server::admin::notification_json;
use ocpay_server::config::Config;
use ocpay_server::data_dir::DataDir;
use ocpay_store::Store;
use serde_json::json;

#[derive(clap::Subcommand)]
pub(crate) enum NotificationsCommand {
    /// List a payment's notifications with every delivery attempt (status, latency, error).
    List {
        payment_id: String,
        #[arg(long, env = "OCPAY_DATA_DIR", default_value = "ocpay-data")]
        data_dir: PathBuf,
    },
    /// Queue a payment's notifications to be sent again now, delivered or not.
    Resend {
        payment_id: String,
        #[arg(long, env = "OCPAY_DATA_DIR", default_value = "ocpay-data")]
        data_dir: PathBuf,
    },
}

pub(crate) async fn run(command: NotificationsCommand) -> anyhow::Result<()> {
    match command {
        NotificationsCommand::List { payment_id, data_dir } => {
            let store = DataDir::open(&data_dir)?.open_store(&Config::default()).await?;
            let notifications = store.notifications(&payment_id).await?;
            let listed: Vec<_> = notifications
                .iter()
                .map(|(notification, attempts)| notification_json(notification, attempts))
                .collect();
            crate::print_json(&json!({ "paymentId": payment_id, "notifications": listed }))
        }
        NotificationsCommand::Resend { payment_id, data_dir } => {
            let store = DataDir::open(&data_dir)?.open_store(&Config::default()).await?;
            let notifications = store.notifications(&payment_id).await?;
            let Some((first, _)) = notifications.first() else {
                anyhow::bail!("no notification about payment {payment_id}");
            };
            let queued =
                store.resend_notifications(&first.recipient, &payment_id, jiff::Timestamp::now()).await?;
            crate::print_json(&json!({ "paymentId": payment_id, "queued": queued }))
        }
    }
}
