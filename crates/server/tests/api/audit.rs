//! The audit trail's durability and retention: a state change's event commits with the change
//! (it is there the moment the answer is, however long the queue of other events waits); reads
//! and replays are queued; the retention job prunes events older than `audit_retention_days`,
//! a bounded batch at a time, and keeps them all when it is 0.

use jiff::SignedDuration;
use ocpay_core::ids::ClientId;
use ocpay_protocol::payments::{CancelRequest, InquiryPaymentRequest};
use ocpay_server::clock::Clock as _;
use ocpay_store::AuditEvent;
use ocpay_testkit::{TestApp, pay_request, unique_id};

/// A queue that is written only after an hour: an event found at once was not queued.
const QUEUE_HELD: u64 = 3_600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_change_s_event_is_committed_with_it_and_a_read_s_is_queued() {
    let app = TestApp::spawn_with(|config| config.audit_flush_interval_ms = QUEUE_HELD).await;
    let merchant = app.merchant().await;
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    let (paid, cancelled) = (unique_id("PR"), unique_id("PR"));
    for request_id in [&paid, &cancelled] {
        let payment = merchant.client.pay(&pay_request(request_id, "USD", 1_000)).await.unwrap();
        assert_eq!(payment.result.result_code, "SUCCESS");
    }
    let cancel = CancelRequest { payment_request_id: Some(cancelled.clone()), payment_id: None };
    assert_eq!(merchant.client.cancel(&cancel).await.unwrap().result.result_code, "SUCCESS");
    // A read and a replay change nothing: their events are queued.
    let inquiry = InquiryPaymentRequest { payment_request_id: Some(paid.clone()), ..Default::default() };
    merchant.client.inquire_payment(&inquiry).await.unwrap();
    merchant.client.pay(&pay_request(&paid, "USD", 1_000)).await.unwrap();

    let events = app.state.store.audit_events(&client_id, 100).await.unwrap();
    let named = |api: &str, key: &str| {
        events
            .iter()
            .filter(|event| event.api == api && event.idempotency_key.as_deref() == Some(key))
            .count()
    };
    assert_eq!(named("pay", &paid), 1, "the pay's event, once: {events:?}");
    assert_eq!(named("pay", &cancelled), 1, "{events:?}");
    assert_eq!(named("cancel", &cancelled), 1, "{events:?}");
    assert_eq!(events.len(), 3, "the inquiry's and the replay's events are still queued: {events:?}");
    let cancel_event = events.iter().find(|event| event.api == "cancel").unwrap();
    assert_eq!((cancel_event.result_status.as_str(), cancel_event.result_code.as_str()), ("S", "SUCCESS"));
    assert_eq!(cancel_event.key_version, Some(1));
}

fn event(client_id: &ClientId, at: jiff::Timestamp, key: &str) -> AuditEvent {
    AuditEvent {
        at,
        client_id: client_id.clone(),
        key_version: Some(1),
        agent: None,
        merchant: client_id.clone(),
        api: "inquiryPayment".into(),
        idempotency_key: Some(key.into()),
        result_status: "S".into(),
        result_code: "SUCCESS".into(),
    }
}

fn keys(events: &[AuditEvent]) -> Vec<&str> {
    let mut keys: Vec<_> = events.iter().filter_map(|event| event.idempotency_key.as_deref()).collect();
    keys.sort_unstable();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_older_than_the_retention_are_pruned_as_the_clock_moves() {
    let app = TestApp::spawn_with(|config| {
        config.audit_retention_days = 400;
        config.retention_batch_max = 2;
    })
    .await;
    let merchant = app.merchant().await;
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    let now = app.clock.now();
    let days = |n: i64| SignedDuration::from_hours(n * 24);
    // More old events than one batch holds: the job comes back for the rest.
    let old: Vec<_> = (0..5).map(|n| event(&client_id, now - days(401), &format!("old-{n}"))).collect();
    app.state.store.record_audit(&old).await.unwrap();
    app.state.store.record_audit(&[event(&client_id, now - days(399), "recent")]).await.unwrap();

    app.background_rounds().await;
    let left = app.state.store.audit_events(&client_id, 100).await.unwrap();
    assert_eq!(keys(&left), ["recent"], "what is past 400 days goes, in batches of two");

    app.clock.advance(days(2));
    app.background_rounds().await;
    let left = app.state.store.audit_events(&client_id, 100).await.unwrap();
    assert!(left.is_empty(), "401 days old now: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_of_zero_keeps_every_event_and_a_prune_deletes_at_most_its_batch() {
    let app = TestApp::spawn_with(|config| config.audit_retention_days = 0).await;
    let merchant = app.merchant().await;
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    let now = app.clock.now();
    let old: Vec<_> = (0..5)
        .map(|n| event(&client_id, now - SignedDuration::from_hours(24 * 3_650), &format!("old-{n}")))
        .collect();
    app.state.store.record_audit(&old).await.unwrap();
    app.state.store.record_audit(&[event(&client_id, now, "new")]).await.unwrap();
    app.background_rounds().await;
    assert_eq!(app.state.store.audit_events(&client_id, 100).await.unwrap().len(), 6, "kept forever");

    // The store's step deletes the oldest, no more than asked.
    let cutoff = now - SignedDuration::from_hours(24);
    let pruned: Vec<u64> = {
        let mut pruned = Vec::new();
        for _ in 0..4 {
            pruned.push(app.state.store.prune_audit(cutoff, 2).await.unwrap());
        }
        pruned
    };
    assert_eq!(pruned, [2, 2, 1, 0]);
    assert_eq!(keys(&app.state.store.audit_events(&client_id, 100).await.unwrap()), ["new"]);
}
