//! The timer job: moves payments, refunds and registrations on with time. It closes unpaid
//! payments whose code expired, completes asynchronous refunds that are due, and takes the
//! sandbox's due registration decisions, each with its notification; it prunes the API log
//! of entries older than its retention, and forgets the Agent-Tokens held for ISVs' owners whose
//! hold ended.
//! "Now" is the injectable clock's; the loop polls on the real clock.

use std::sync::Arc;
use std::time::Duration;

use ocpay_store::StoreError;
use tokio::sync::{Notify, watch};

use crate::rounds::Rounds;
use crate::service::Context;

/// Runs every timer in batches, each round until nothing more is due, until `stop` turns true.
pub(crate) async fn timers(context: Arc<Context>, rounds: Arc<Rounds>, mut stop: watch::Receiver<bool>) {
    let (poll, batch) = (context.settings.timers.poll, context.settings.timers.batch_max);
    while !*stop.borrow() {
        drain(&context, "closed expired order codes", batch, |now| context.store.expire_payments(now, batch))
            .await;
        drain(&context, "completed asynchronous refunds", batch, |now| {
            context.store.complete_refunds(now, batch)
        })
        .await;
        drain(&context, "decided sandbox registrations", batch, |now| {
            context.store.decide_due_registrations(now, batch)
        })
        .await;
        if let Some(api_log) = &context.settings.api_log {
            prune_api_log(&context, api_log.retention, batch).await;
        }
        forget_held_tokens(&context).await;
        rounds.timers.finished();
        if !idle(&mut stop, poll, None).await {
            return;
        }
    }
}

/// A background loop's pause between rounds: waits for `poll` to pass, for `wake` (if any) or
/// for `stop` to change, then says whether the loop goes on. It ends once `stop` is true or its
/// sender is gone: a closed channel is ready at once, so taking it for a wake-up would spin.
pub(crate) async fn idle(stop: &mut watch::Receiver<bool>, poll: Duration, wake: Option<&Notify>) -> bool {
    let woken = async {
        match wake {
            Some(wake) => wake.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = tokio::time::sleep(poll) => {}
        () = woken => {}
        changed = stop.changed() => if changed.is_err() { return false },
    }
    !*stop.borrow()
}

/// Calls `step` until it does less than a full batch, and wakes the notifier if it did anything.
async fn drain<T, F, Fut>(context: &Context, what: &'static str, batch: u32, step: F)
where
    F: Fn(jiff::Timestamp) -> Fut,
    Fut: Future<Output = Result<Vec<T>, StoreError>>,
{
    loop {
        match step(context.clock.now()).await {
            Ok(done) => {
                if !done.is_empty() {
                    tracing::info!(n = done.len(), "{what}");
                    context.notify_wake.wake();
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

/// Deletes API log entries older than `retention`, `batch` at a time (so that no write holds
/// the store for long), until fewer than a batch were left.
async fn prune_api_log(context: &Context, retention: jiff::SignedDuration, batch: u32) {
    loop {
        let older_than = context.clock.now().checked_sub(retention).unwrap_or(jiff::Timestamp::MIN);
        match context.store.prune_api_log(older_than, batch).await {
            Ok(pruned) => {
                if pruned > 0 {
                    tracing::debug!(n = pruned, "pruned the API log");
                }
                if pruned < u64::from(batch) {
                    return;
                }
            }
            Err(error) => {
                tracing::error!(%error, "pruning the API log: failed");
                return;
            }
        }
    }
}

/// Forgets the Agent-Tokens held for ISVs' owners whose hold ended, so that none outstays it.
async fn forget_held_tokens(context: &Context) {
    match context.store.forget_held_tokens(context.clock.now()).await {
        Ok(0) => {}
        Ok(forgotten) => tracing::debug!(n = forgotten, "forgot held Agent-Tokens whose hold ended"),
        Err(error) => tracing::error!(%error, "forgetting held Agent-Tokens: failed"),
    }
}

/// Settles every day that has ended, chunk by chunk, and writes its files under `root`, until
/// `stop` turns true. Several nodes may run it at once: a transaction settles once whichever
/// node takes it, and both write the same files.
pub(crate) async fn settlement(
    context: Arc<Context>,
    root: std::path::PathBuf,
    rounds: Arc<Rounds>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(poll) = context.settings.settlement_job else { return };
    let settler = ocpay_settlement::batches::Settler::new(
        context.store.clone(),
        context.settings.settlement.clone(),
        root,
    );
    while !*stop.borrow() {
        match settler.run_due(context.clock.now()).await {
            Ok(run) => {
                metrics::counter!("ocpay_job_runs_total", "job" => "settlement", "outcome" => "ok").increment(1);
                metrics::counter!("ocpay_settlement_batches_total").increment(run.batches.len() as u64);
                for settled in &run.batches {
                    let batch = &settled.batch;
                    tracing::info!(batch = %batch.id, owner = %batch.owner, count = batch.count, "settled");
                }
            }
            // Retried at the next round; what closed stays closed, what did not stays queued.
            Err(error) => {
                metrics::counter!("ocpay_job_runs_total", "job" => "settlement", "outcome" => "error").increment(1);
                tracing::error!(%error, "settlement failed");
            }
        }
        rounds.settlement.finished();
        if !idle(&mut stop, poll, None).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    async fn within_a_second(idle: impl Future<Output = bool>) -> bool {
        tokio::time::timeout(Duration::from_secs(1), idle).await.expect("the pause ends at once")
    }

    #[tokio::test]
    async fn a_loop_ends_when_stopped_or_when_its_stop_sender_is_gone() {
        let (stop, mut stopped) = watch::channel(false);
        drop(stop);
        assert!(!within_a_second(idle(&mut stopped, LONG, None)).await, "a closed channel ends the loop");

        let (stop, mut stopped) = watch::channel(false);
        stop.send(true).unwrap();
        assert!(!within_a_second(idle(&mut stopped, LONG, None)).await);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_timer_job_closes_an_expired_code_with_its_notification_given_only_a_context() {
        use crate::service::tests::{command, fixture, live_merchant, usd};
        let fixture = fixture().await;
        let context = fixture.context.clone();
        let merchant = live_merchant(&context).await;
        let payment =
            crate::service::pay::pay(&context, &merchant, command("order-1", usd(500))).await.unwrap();
        let id = payment.terms.id.as_str();
        assert!(context.store.notifications(id).await.unwrap().is_empty());

        fixture.clock.set(payment.terms.expires_at + jiff::SignedDuration::from_secs(1));
        let rounds = Arc::new(Rounds::default());
        let (stop, stopped) = watch::channel(false);
        let job = tokio::spawn(timers(context.clone(), rounds.clone(), stopped));
        tokio::time::timeout(Duration::from_secs(10), rounds.timers.next_whole())
            .await
            .expect("a round ends");
        let woken = tokio::time::timeout(Duration::from_secs(1), context.notify_wake.0.notified()).await;
        assert!(woken.is_ok(), "closing a code wakes the notifier");
        let notifications = context.store.notifications(id).await.unwrap();
        assert_eq!(notifications.len(), 1, "the closed code's notification is queued: {notifications:?}");
        stop.send(true).unwrap();
        assert!(within_a_second(async { job.await.is_ok() }).await, "the job ends when stopped");
    }

    #[tokio::test]
    async fn a_loop_goes_on_after_its_poll_interval_or_a_wake_up() {
        let (_stop, mut stopped) = watch::channel(false);
        assert!(within_a_second(idle(&mut stopped, Duration::from_millis(1), None)).await);
        let wake = Notify::new();
        wake.notify_one();
        assert!(within_a_second(idle(&mut stopped, LONG, Some(&wake))).await);
    }
}
