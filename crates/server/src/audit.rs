//! The audit trail's writer: the gateway queues one event per request and answers at once; a
//! background task lets a batch gather for the flush interval, writes it in one transaction,
//! then the next.
//!
//! Invariants: events are written in the order they were queued; the queue is bounded (a
//! request waits for room rather than an event being dropped); at shutdown the task drains the
//! queue after the last connection has finished. A crash loses at most the events queued but
//! not yet written (the answers they record were already sent).

use std::sync::Arc;

use ocpay_store::{AuditEvent, Store};
use tokio::sync::{mpsc, watch};

use crate::settings::AuditSettings;

/// Where the gateway queues audit events.
pub(crate) struct Sink {
    sender: mpsc::Sender<AuditEvent>,
}

/// The queue the audit writer drains: the receiving end, handed to [`run`].
pub(crate) type Queue = mpsc::Receiver<AuditEvent>;

/// A queue of at most `queue_max` events: the gateway's end and the writer's.
pub(crate) fn channel(queue_max: usize) -> (Sink, Queue) {
    let (sender, receiver) = mpsc::channel(queue_max);
    (Sink { sender }, receiver)
}

impl Sink {
    /// Queues an event, waiting for room when the writer is behind.
    pub(crate) async fn record(&self, event: AuditEvent) {
        if self.sender.send(event).await.is_err() {
            tracing::error!("the audit writer has stopped; an audit event is lost");
        }
    }
}

/// Writes queued events in batches of at most `audit_batch_max`, each gathered for
/// `audit_flush_interval_ms` after its first event, until `stop` turns true; then writes what
/// is left.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    settings: AuditSettings,
    mut receiver: Queue,
    mut stop: watch::Receiver<bool>,
) {
    let (batch_max, flush_interval) = (settings.batch_max, settings.flush_interval);
    let mut batch = Vec::with_capacity(batch_max);
    loop {
        let received = tokio::select! {
            received = receiver.recv_many(&mut batch, batch_max) => received,
            // The only change is to stopped (or the sender is gone): drain and end.
            _ = stop.changed() => {
                receiver.close();
                while receiver.recv_many(&mut batch, batch_max).await > 0 {
                    write(&*store, &mut batch).await;
                }
                return;
            }
        };
        if received == 0 {
            return;
        }
        // Let a batch gather for a moment: one write per interval instead of one per request
        // or two keeps the audit trail's cost per request small.
        tokio::time::sleep(flush_interval).await;
        while batch.len() < batch_max {
            match receiver.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        write(&*store, &mut batch).await;
    }
}

async fn write(store: &dyn Store, batch: &mut Vec<AuditEvent>) {
    if let Err(error) = store.record_audit(batch).await {
        tracing::error!(%error, events = batch.len(), "writing audit events failed; they are lost");
    }
    batch.clear();
}
