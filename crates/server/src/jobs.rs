//! The timer job: moves payments, refunds and registrations on with time. It closes unpaid
//! payments whose code expired, completes asynchronous refunds that are due, and takes the
//! sandbox's due registration decisions, each with its notification; and forgets the
//! Agent-Tokens held for ISVs' owners whose hold ended. The retention job prunes the audit trail
//! and the API log of rows older than their retention, in small batches with a pause between
//! them, so that payments never wait behind it.
//! "Now" is the injectable clock's; the loops poll on the real clock.

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

/// Prunes the audit trail and the API log of rows older than their retention, round after
/// round, until `stop` turns true. Each batch deletes at most `retention_batch_max` rows in a
/// transaction of its own, oldest first, and the job pauses `retention_pause_ms` between
/// batches: a backlog (the first start after years, a retention shortened) is worked off
/// without holding the store's writer for more than one small batch at a time.
pub(crate) async fn retention(context: Arc<Context>, rounds: Arc<Rounds>, mut stop: watch::Receiver<bool>) {
    let settings = context.settings.retention.clone();
    while !*stop.borrow() {
        if let Some(retention) = context.settings.audit.retention {
            let pruned = prune(&context, &settings, retention, &mut stop, |older_than, limit| {
                context.store.prune_audit(older_than, limit)
            });
            if !report("audit events", pruned.await) {
                return;
            }
        }
        if let Some(api_log) = &context.settings.api_log {
            let pruned = prune(&context, &settings, api_log.retention, &mut stop, |older_than, limit| {
                context.store.prune_api_log(older_than, limit)
            });
            if !report("API log entries", pruned.await) {
                return;
            }
        }
        rounds.retention.finished();
        if !idle(&mut stop, settings.poll, None).await {
            return;
        }
    }
}

/// What one kind of row's pruning came to: how many rows went, and whether the job goes on
/// (false once stopped mid-way).
struct Pruned {
    rows: u64,
    goes_on: bool,
}

/// Logs what a pruning did and says whether the job goes on.
fn report(what: &'static str, pruned: Result<Pruned, StoreError>) -> bool {
    match pruned {
        Ok(Pruned { rows, goes_on }) => {
            if rows > 0 {
                tracing::info!(n = rows, "pruned {what} past their retention");
            }
            goes_on
        }
        Err(error) => {
            tracing::error!(%error, "pruning {what}: failed");
            true
        }
    }
}

/// Deletes rows older than `retention` with `step`, a batch at a time with a pause between
/// batches, until a batch comes back short.
async fn prune<F, Fut>(
    context: &Context,
    settings: &crate::settings::RetentionSettings,
    retention: jiff::SignedDuration,
    stop: &mut watch::Receiver<bool>,
    step: F,
) -> Result<Pruned, StoreError>
where
    F: Fn(jiff::Timestamp, u32) -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut rows = 0;
    loop {
        let older_than = context.clock.now().checked_sub(retention).unwrap_or(jiff::Timestamp::MIN);
        let pruned = step(older_than, settings.batch_max).await?;
        rows += pruned;
        if pruned < u64::from(settings.batch_max) {
            return Ok(Pruned { rows, goes_on: true });
        }
        if !idle(stop, settings.pause, None).await {
            return Ok(Pruned { rows, goes_on: false });
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
                metrics::counter!("ocpay_job_runs_total", "job" => "settlement", "outcome" => "ok")
                    .increment(1);
                metrics::counter!("ocpay_settlement_batches_total").increment(run.batches.len() as u64);
                for settled in &run.batches {
                    let batch = &settled.batch;
                    tracing::info!(batch = %batch.id, owner = %batch.owner, count = batch.count, "settled");
                }
            }
            // Retried at the next round; what closed stays closed, what did not stays queued.
            Err(error) => {
                metrics::counter!("ocpay_job_runs_total", "job" => "settlement", "outcome" => "error")
                    .increment(1);
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
