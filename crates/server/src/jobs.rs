//! Background jobs that move payments on with time: the expiry of unpaid order codes.
//! "Now" is the injectable clock's; the loop polls on the real clock.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::state::AppState;

/// Closes unpaid payments whose code expired (`FAIL` / `ORDER_IS_CLOSED`, notified), in
/// batches, until `stop` turns true.
pub(crate) async fn expire(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let poll = Duration::from_millis(state.config.expiry_poll_interval_ms.max(1));
    let batch = state.config.expiry_batch_max.max(1);
    while !*stop.borrow() {
        loop {
            match state.store.expire_payments(state.clock.now(), batch).await {
                Ok(expired) => {
                    if !expired.is_empty() {
                        tracing::info!(n_expired = expired.len(), "closed expired order codes");
                        state.notify_wake.wake();
                    }
                    if (expired.len() as u32) < batch {
                        break;
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "expiring payments failed");
                    break;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
}
