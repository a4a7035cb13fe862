//! A background writer of records the gateway queues and answers without waiting for: a task
//! lets a batch gather for the flush interval, writes it in one transaction, then the next. The
//! audit trail (`audit.rs`) and the API log (`api_log.rs`) are two of them.
//!
//! Invariants: records are written in the order they were queued; the queue is bounded; at
//! shutdown the task drains the queue after the last connection has finished. A crash loses at
//! most the records queued but not yet written (the answers they record were already sent).

use std::time::Duration;

use ocpay_store::StoreError;
use tokio::sync::{mpsc, watch};

/// How a writer writes one batch of its records.
pub(crate) trait Batches: Send + Sync + 'static {
    type Record: Send + 'static;
    /// What the records are, in log lines: `audit events`.
    const WHAT: &'static str;

    fn write(&self, batch: &[Self::Record]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Where records are queued for a writer.
pub(crate) struct Sink<T> {
    sender: mpsc::Sender<T>,
    what: &'static str,
}

/// The queue a writer drains: the receiving end, handed to [`run`].
pub(crate) type Queue<T> = mpsc::Receiver<T>;

/// A queue of at most `queue_max` records of `B`: the queueing end and the writer's.
pub(crate) fn channel<B: Batches>(queue_max: usize) -> (Sink<B::Record>, Queue<B::Record>) {
    let (sender, receiver) = mpsc::channel(queue_max);
    (Sink { sender, what: B::WHAT }, receiver)
}

impl<T> Sink<T> {
    /// Queues a record, waiting for room when the writer is behind: none is lost.
    pub(crate) async fn record(&self, record: T) {
        if self.sender.send(record).await.is_err() {
            metrics::counter!("ocpay_queue_dropped_total", "queue" => queue_label(self.what)).increment(1);
            tracing::error!(what = self.what, "the writer has stopped; a record is lost");
        }
    }

    /// How many records wait for the writer now.
    pub(crate) fn depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    /// Queues a record if there is room, or drops it and says so (false): for records that must
    /// never make a request wait.
    pub(crate) fn offer(&self, record: T) -> bool {
        let offered = self.sender.try_send(record).is_ok();
        if !offered {
            metrics::counter!("ocpay_queue_dropped_total", "queue" => queue_label(self.what)).increment(1);
        }
        offered
    }
}

/// A queue's name in metrics (`ocpay_queue_dropped_total{queue="audit"}`), from what its
/// records are.
fn queue_label(what: &'static str) -> &'static str {
    match what {
        "audit events" => "audit",
        "API log entries" => "api_log",
        other => other,
    }
}

/// How a writer batches: at most `batch_max` records a transaction, each batch gathered for
/// `flush_interval` after its first record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batching {
    pub(crate) batch_max: usize,
    pub(crate) flush_interval: Duration,
}

/// Writes queued records in batches until `stop` turns true (or its sender is gone); then
/// writes what is left.
pub(crate) async fn run<B: Batches>(
    writer: B,
    batching: Batching,
    mut receiver: Queue<B::Record>,
    mut stop: watch::Receiver<bool>,
) {
    let Batching { batch_max, flush_interval } = batching;
    let mut batch = Vec::with_capacity(batch_max);
    loop {
        let received = tokio::select! {
            received = receiver.recv_many(&mut batch, batch_max) => received,
            // The only change is to stopped (or the sender is gone): drain and end.
            _ = stop.changed() => {
                receiver.close();
                while receiver.recv_many(&mut batch, batch_max).await > 0 {
                    write(&writer, &mut batch).await;
                }
                return;
            }
        };
        if received == 0 {
            return;
        }
        // Let a batch gather for a moment: one write per interval instead of one per request
        // or two keeps the cost per request small.
        tokio::time::sleep(flush_interval).await;
        while batch.len() < batch_max {
            match receiver.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        write(&writer, &mut batch).await;
    }
}

async fn write<B: Batches>(writer: &B, batch: &mut Vec<B::Record>) {
    if let Err(error) = writer.write(batch).await {
        tracing::error!(%error, records = batch.len(), "writing {} failed; they are lost", B::WHAT);
    }
    batch.clear();
}
