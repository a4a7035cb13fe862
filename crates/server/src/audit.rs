//! The audit trail's writer: the gateway queues one event per verified request and answers at
//! once; a [`batch_writer`](crate::batch_writer) commits them in batches, in order, and drains
//! the queue at shutdown. The queue is bounded and a request waits for room rather than an
//! event being dropped.

use std::sync::Arc;

use ocpay_store::{AuditEvent, Store, StoreError};

use crate::batch_writer::{self, Batches, Batching};
use crate::settings::AuditSettings;

/// Where the gateway queues audit events.
pub(crate) type Sink = batch_writer::Sink<AuditEvent>;

/// The queue the audit writer drains: the receiving end, handed to [`Writer`]'s task.
pub(crate) type Queue = batch_writer::Queue<AuditEvent>;

/// Writes audit events with the store.
pub(crate) struct Writer(pub(crate) Arc<dyn Store>);

impl Batches for Writer {
    type Record = AuditEvent;
    const WHAT: &'static str = "audit events";

    async fn write(&self, batch: &[AuditEvent]) -> Result<(), StoreError> {
        self.0.record_audit(batch).await
    }
}

/// A queue of at most `queue_max` events: the gateway's end and the writer's.
pub(crate) fn channel(queue_max: usize) -> (Sink, Queue) {
    batch_writer::channel::<Writer>(queue_max)
}

/// How the audit settings batch.
pub(crate) fn batching(settings: &AuditSettings) -> Batching {
    Batching { batch_max: settings.batch_max, flush_interval: settings.flush_interval }
}
