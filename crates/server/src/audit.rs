//! The audit trail's writer. The event of an API call that changed state is appended by the
//! store in the change's own transaction ([`in_call`], [`with_change`]), so a crash keeps both
//! or neither. Every other verified request's event (reads, refusals, replays) is queued and the
//! request answered at once; a [`batch_writer`](crate::batch_writer) commits them in batches,
//! in order, and drains the queue at shutdown. The queue is bounded and a request waits for
//! room rather than an event being dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use ocpay_protocol::AmsResult;
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

/// The audit event of the API call a task is answering, for the write that changes state to
/// append in its own transaction: then a crash keeps both or neither, where a queued event
/// could be lost after its change had committed and been acknowledged.
///
/// The gateway sets it around an API's handler ([`in_call`]); the use case whose write changes
/// state takes the event with the result its answer will carry ([`with_change`]), passes it to
/// the store, and says so once the store wrote it ([`committed`]); the gateway then queues
/// nothing more. Outside an API call (the developer center, the console) there is none.
pub(crate) struct Call {
    /// The event as the gateway knows it before the handler: who, which key, for whom, which
    /// API and key; its time and result are set by [`with_change`].
    template: AuditEvent,
    committed: AtomicBool,
}

tokio::task_local! {
    static CALL: Arc<Call>;
}

/// Runs `handler` with `template` as its call's event; also says whether a write committed
/// the event with its change.
pub(crate) async fn in_call<F: Future>(template: AuditEvent, handler: F) -> (F::Output, bool) {
    let call = Arc::new(Call { template, committed: AtomicBool::new(false) });
    let output = CALL.scope(call.clone(), handler).await;
    (output, call.committed.load(Ordering::Acquire))
}

/// The event to append in the transaction of a change that will be answered with `result`, if
/// this task answers an API call.
pub(crate) fn with_change(at: Timestamp, result: &AmsResult) -> Option<AuditEvent> {
    CALL.try_with(|call| AuditEvent {
        at,
        result_status: result.result_status.as_str().to_owned(),
        result_code: result.result_code.clone(),
        ..call.template.clone()
    })
    .ok()
}

/// Says that the store committed the event [`with_change`] gave, with its change.
pub(crate) fn committed() {
    let _ = CALL.try_with(|call| call.committed.store(true, Ordering::Release));
}
