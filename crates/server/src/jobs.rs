//! The timer job: moves payments, refunds and registrations on with time. It closes unpaid
//! payments whose code expired, completes asynchronous refunds that are due, and takes the
//! sandbox's due registration decisions, each with its notification.
//! "Now" is the injectable clock's; the loop polls on the real clock.

use std::sync::Arc;
use std::time::Duration;

use ocpay_store::StoreError;
use tokio::sync::watch;

use crate::state::AppState;

/// Runs every timer in batches, each round until nothing more is due, until `stop` turns true.
pub(crate) async fn timers(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let poll = Duration::from_millis(state.config.timers_poll_interval_ms.max(1));
    let batch = state.config.timers_batch_max.max(1);
    while !*stop.borrow() {
        drain(&state, "closed expired order codes", batch, |now| state.store.expire_payments(now, batch))
            .await;
        drain(&state, "completed asynchronous refunds", batch, |now| {
            state.store.complete_refunds(now, batch)
        })
        .await;
        drain(&state, "decided sandbox registrations", batch, |now| {
            state.store.decide_due_registrations(now, batch)
        })
        .await;
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Calls `step` until it does less than a full batch, and wakes the notifier if it did anything.
async fn drain<T, F, Fut>(state: &AppState, what: &'static str, batch: u32, step: F)
where
    F: Fn(jiff::Timestamp) -> Fut,
    Fut: Future<Output = Result<Vec<T>, StoreError>>,
{
    loop {
        match step(state.clock.now()).await {
            Ok(done) => {
                if !done.is_empty() {
                    tracing::info!(n = done.len(), "{what}");
                    state.notify_wake.wake();
                }
                if done.len() < batch as usize {
                    return;
                }
            }
            Err(error) => {
                tracing::error!(%error, "{what}: failed");
                return;
            }
        }
    }
}
