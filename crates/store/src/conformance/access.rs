//! ISVs' grants and the audit trail.

use std::sync::Arc;

use jiff::SignedDuration;
use ocpay_core::access::{Grant, Scopes};

use crate::{
    AfterAttempt, Attempt, AttemptOutcome, AuditEvent, DeliveryStatus, NewGrant, NotificationKind, Secret,
    Store, StoreError,
};

use super::{at, client, merchant};

pub async fn grants_hold_only_the_tokens_hash(store: Arc<dyn Store>) {
    let merchant_id = merchant(&*store, "ALICE").await;
    let isv = client("ISV1");
    let grant = Grant {
        id: "G-1".into(),
        merchant: merchant_id.clone(),
        isv: isv.clone(),
        scopes: Scopes::parse("pay,refund").unwrap(),
        token_sha256: "ab".repeat(32),
        created_at: at(5),
        expires_at: Some(at(500)),
        revoked_at: None,
    };
    let notice = Some(("https://isv.example/auth".to_owned(), Secret::new("the-token".to_owned())));
    store.create_grant(&NewGrant { grant: grant.clone(), notice, held: None }, at(5)).await.unwrap();
    let duplicate =
        store.create_grant(&NewGrant { grant: grant.clone(), notice: None, held: None }, at(5)).await;
    assert_eq!(duplicate, Err(StoreError::Conflict("grant")));
    assert_eq!(store.grant_by_token(&"ab".repeat(32)).await.unwrap(), Some(grant.clone()));
    assert_eq!(store.grant_by_token(&"cd".repeat(32)).await.unwrap(), None);
    assert_eq!(store.grants(&merchant_id).await.unwrap(), vec![grant.clone()], "the merchant's grants");
    assert_eq!(store.grants(&isv).await.unwrap(), vec![grant.clone()], "the ISV's grants");
    assert!(store.grants(&client("OTHER")).await.unwrap().is_empty());

    // The notification carries the token until it is delivered, then forgets it.
    let lease = SignedDuration::from_secs(30);
    let claimed = store.claim_notifications(at(5), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let notice = &claimed[0];
    assert_eq!((notice.kind, notice.recipient.clone()), (NotificationKind::AgentAuthorization, isv.clone()));
    assert_eq!(notice.secret.as_ref().map(Secret::expose), Some("the-token"));
    assert!(!format!("{notice:?}").contains("the-token"), "Debug never shows the token");
    let delivered = Attempt {
        notification_id: notice.id.clone(),
        number: 1,
        scheduled_at: at(5),
        started_at: at(5),
        duration_ms: 3,
        http_status: Some(200),
        outcome: AttemptOutcome::Delivered,
        error: None,
        manual: false,
        answer: Some(r#"{"result":{"resultStatus":"S"}}"#.into()),
    };
    store.record_attempt(&delivered, AfterAttempt::Delivered).await.unwrap();
    let (listed, _) = store.notifications("G-1").await.unwrap().remove(0);
    assert_eq!((listed.status, listed.secret), (DeliveryStatus::Delivered, None));
    assert_eq!(
        store.resend_notifications("G-1", at(6)).await.unwrap(),
        0,
        "a forgotten token cannot be resent"
    );

    let revoked = store.revoke_grant("G-1", at(100)).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(at(100)));
    assert_eq!(store.revoke_grant("G-1", at(200)).await.unwrap().revoked_at, Some(at(100)));
    assert_eq!(store.revoke_grant("G-NONE", at(100)).await, Err(StoreError::NotFound("grant")));
    assert_eq!(
        store.grant_by_token(&"ab".repeat(32)).await.unwrap().and_then(|g| g.revoked_at),
        Some(at(100))
    );

    // Revoking a grant whose token is not delivered yet stops its notification and forgets it.
    let pending = Grant { id: "G-2".into(), token_sha256: "ef".repeat(32), ..grant };
    let notice = Some(("https://isv.example/auth".to_owned(), Secret::new("second-token".to_owned())));
    store.create_grant(&NewGrant { grant: pending, notice, held: None }, at(300)).await.unwrap();
    store.revoke_grant("G-2", at(301)).await.unwrap();
    let (stopped, _) = store.notifications("G-2").await.unwrap().remove(0);
    assert_eq!((stopped.status, stopped.secret), (DeliveryStatus::Failed, None));
    assert!(store.claim_notifications(at(400), lease, 10).await.unwrap().is_empty(), "never sent");
    assert_eq!(store.resend_notifications("G-2", at(401)).await.unwrap(), 0);
}

pub async fn the_audit_trail_is_kept_per_participant(store: Arc<dyn Store>) {
    let event = |n: i64, client_id: &str, merchant: &str, agent: Option<&str>| AuditEvent {
        at: at(n),
        client_id: client(client_id),
        key_version: Some(1),
        agent: agent.map(client),
        merchant: client(merchant),
        api: "pay".into(),
        idempotency_key: Some(format!("PR-{n}")),
        result_status: "S".into(),
        result_code: "SUCCESS".into(),
    };
    let events = [
        event(1, "ALICE", "ALICE", None),
        event(2, "ISV1", "ALICE", Some("ISV1")),
        event(3, "BOB", "BOB", None),
        event(4, "ALICE", "ALICE", None),
    ];
    store.record_audit(&events[..2]).await.unwrap();
    store.record_audit(&events[2..]).await.unwrap();
    let alice = store.audit_events(&client("ALICE"), 10).await.unwrap();
    assert_eq!(
        alice,
        vec![events[3].clone(), events[1].clone(), events[0].clone()],
        "newest first, the ISV's call included"
    );
    assert_eq!(store.audit_events(&client("ISV1"), 10).await.unwrap(), vec![events[1].clone()]);
    assert_eq!(
        store.audit_events(&client("ALICE"), 1).await.unwrap(),
        vec![events[3].clone()],
        "the limit holds"
    );
}
