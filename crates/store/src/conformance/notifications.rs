//! The outbox: claims, attempts, retries and resends.

use std::sync::Arc;

use jiff::SignedDuration;
use ocpay_core::payment::FailReason;

use crate::{AfterAttempt, Attempt, AttemptOutcome, DeliveryStatus, Store, StoreError};

use super::{at, attempt, paid_ready};

pub async fn the_outbox_claims_retries_and_resends(store: Arc<dyn Store>) {
    let (_, terms) = paid_ready(&*store, "PR-OUTBOX", 100).await;
    store.fail_payment(&terms.code_token, FailReason::RiskReject, at(100)).await.unwrap();
    let lease = SignedDuration::from_secs(30);
    assert!(store.claim_notifications(at(99), lease, 10).await.unwrap().is_empty(), "not due yet");
    let claimed = store.claim_notifications(at(100), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(store.claim_notifications(at(101), lease, 10).await.unwrap().is_empty(), "claimed for the lease");
    assert_eq!(store.claim_notifications(at(131), lease, 10).await.unwrap().len(), 1, "a dead claim returns");
    let attempt = |number, outcome| Attempt {
        notification_id: claimed[0].id.clone(),
        number,
        scheduled_at: at(100),
        started_at: at(131),
        duration_ms: 12,
        http_status: Some(500),
        outcome,
        error: Some("HTTP 500".into()),
        manual: false,
        answer: Some("upstream down".into()),
    };
    store
        .record_attempt(&attempt(1, AttemptOutcome::Rejected), AfterAttempt::RetryAt(at(220)))
        .await
        .unwrap();
    assert!(store.claim_notifications(at(219), lease, 10).await.unwrap().is_empty(), "retried on schedule");
    assert_eq!(store.claim_notifications(at(220), lease, 10).await.unwrap().len(), 1);
    store.record_attempt(&attempt(2, AttemptOutcome::Error), AfterAttempt::GiveUp).await.unwrap();
    let (notification, attempts) = store.notifications(terms.id.as_str()).await.unwrap().remove(0);
    assert_eq!((notification.status, notification.attempts), (DeliveryStatus::Failed, 2));
    assert_eq!(attempts.iter().map(|attempt| attempt.number).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(attempts[0], attempt(1, AttemptOutcome::Rejected), "an attempt reads back as recorded");
    assert_eq!(attempts[0].answer.as_deref(), Some("upstream down"), "with the start of the answer");
    assert!(store.claim_notifications(at(10_000), lease, 10).await.unwrap().is_empty(), "given up");

    assert_eq!(store.resend_notifications("P-NOTHING", at(300)).await.unwrap(), 0);
    assert_eq!(store.resend_notifications(terms.id.as_str(), at(300)).await.unwrap(), 1);
    let resent = store.claim_notifications(at(300), lease, 10).await.unwrap();
    assert!(resent[0].manual);
    let manual = Attempt {
        manual: true,
        outcome: AttemptOutcome::Delivered,
        http_status: Some(200),
        error: None,
        answer: None,
        ..attempt(3, AttemptOutcome::Delivered)
    };
    store.record_attempt(&manual, AfterAttempt::Delivered).await.unwrap();
    let (notification, attempts) = store.notifications(terms.id.as_str()).await.unwrap().remove(0);
    assert_eq!(notification.status, DeliveryStatus::Delivered);
    assert!(attempts[2].manual);
    let stale = Attempt { manual: true, ..attempt(3, AttemptOutcome::Delivered) };
    assert_eq!(
        store.record_attempt(&stale, AfterAttempt::Delivered).await,
        Err(StoreError::Conflict("notification attempt")),
        "an attempt counts once, whoever sent it"
    );
    store.release_claims().await.unwrap();
}

pub async fn claims_take_the_earliest_due_and_never_one_row_twice(store: Arc<dyn Store>) {
    // Twelve payment results, due at 100, 110, ... 210, failed in a shuffled order.
    let mut subjects = Vec::new();
    for index in [7, 2, 11, 0, 5, 9, 1, 4, 10, 3, 8, 6] {
        let (_, terms) = paid_ready(&*store, &format!("PR-CLAIM-{index}"), 100).await;
        store.fail_payment(&terms.code_token, FailReason::RiskReject, at(100 + 10 * index)).await.unwrap();
        subjects.push((index, terms.id.as_str().to_owned()));
    }
    subjects.sort();
    let subject_of = |claimed: &[crate::Notification]| -> Vec<String> {
        claimed.iter().map(|notification| notification.subject_id.clone()).collect()
    };
    let lease = SignedDuration::from_secs(600);
    let first = store.claim_notifications(at(125), lease, 10).await.unwrap();
    assert_eq!(
        subject_of(&first),
        [subjects[0].1.as_str(), &subjects[1].1, &subjects[2].1],
        "only the due, earliest first"
    );
    let next = store.claim_notifications(at(300), lease, 2).await.unwrap();
    assert_eq!(
        subject_of(&next),
        [subjects[3].1.as_str(), &subjects[4].1],
        "at most the limit, earliest first"
    );

    // Claimers racing for the other seven share them out: none is claimed twice.
    let claimers: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_notifications(at(300), lease, 2).await.unwrap() })
        })
        .collect();
    let mut raced = Vec::new();
    for claimer in claimers {
        raced.extend(subject_of(&claimer.await.unwrap()));
    }
    raced.sort();
    let mut rest: Vec<String> = subjects[5..].iter().map(|(_, subject)| subject.clone()).collect();
    rest.sort();
    assert_eq!(raced, rest, "every due row claimed once");
}

pub async fn a_resend_waits_for_the_attempt_in_flight(store: Arc<dyn Store>) {
    let (_, terms) = paid_ready(&*store, "PR-IN-FLIGHT", 100).await;
    store.fail_payment(&terms.code_token, FailReason::RiskReject, at(100)).await.unwrap();
    let lease = SignedDuration::from_secs(30);
    let claimed = store.claim_notifications(at(100), lease, 10).await.unwrap();
    assert_eq!(store.resend_notifications(terms.id.as_str(), at(105)).await.unwrap(), 1);
    assert!(
        store.claim_notifications(at(106), lease, 10).await.unwrap().is_empty(),
        "a resend does not send beside the attempt in flight"
    );
    let attempt = Attempt {
        notification_id: claimed[0].id.clone(),
        number: 1,
        scheduled_at: at(100),
        started_at: at(100),
        duration_ms: 9_000,
        http_status: Some(500),
        outcome: AttemptOutcome::Rejected,
        error: Some("HTTP 500".into()),
        manual: false,
        answer: None,
    };
    store.record_attempt(&attempt, AfterAttempt::RetryAt(at(220))).await.unwrap();
    let resent = store.claim_notifications(at(109), lease, 10).await.unwrap();
    assert_eq!(resent.len(), 1, "the resend goes out as soon as the attempt is recorded");
    assert!(resent[0].manual);
    assert_eq!(resent[0].attempts, 1);
}

pub async fn attempts_recorded_together_are_answered_each_in_its_place(store: Arc<dyn Store>) {
    let lease = SignedDuration::from_secs(600);
    let mut subjects = Vec::new();
    for n in 0..3 {
        let (_, terms) = paid_ready(&*store, &format!("PR-TOGETHER-{n}"), 100).await;
        store.fail_payment(&terms.code_token, FailReason::RiskReject, at(100)).await.unwrap();
        subjects.push(terms.id.as_str().to_owned());
    }
    let claimed = store.claim_notifications(at(100), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let of = |subject: &str| claimed.iter().find(|n| n.subject_id == subject).unwrap().id.as_str();
    // Given out of the order of their ids, with a stale attempt and an unknown notification
    // between those that count, and one notification's attempts 1 and 2 and 2 again.
    let stale = Err(StoreError::Conflict("notification attempt"));
    let together = [
        (attempt(of(&subjects[2]), 1, AttemptOutcome::Rejected), AfterAttempt::RetryAt(at(110))),
        (attempt(of(&subjects[0]), 2, AttemptOutcome::Delivered), AfterAttempt::Delivered),
        (attempt("N-NOTHING", 1, AttemptOutcome::Delivered), AfterAttempt::Delivered),
        (attempt(of(&subjects[2]), 2, AttemptOutcome::Delivered), AfterAttempt::Delivered),
        (attempt(of(&subjects[1]), 1, AttemptOutcome::Rejected), AfterAttempt::RetryAt(at(220))),
        (attempt(of(&subjects[2]), 2, AttemptOutcome::Delivered), AfterAttempt::Delivered),
    ];
    assert_eq!(
        store.record_attempts(&together).await.unwrap(),
        [Ok(()), stale.clone(), Err(StoreError::NotFound("notification")), Ok(()), Ok(()), stale],
        "each answered in its place"
    );
    let state = |subject: String| {
        let store = store.clone();
        async move {
            let (notification, attempts) = store.notifications(&subject).await.unwrap().remove(0);
            (notification.status, notification.attempts, attempts.len())
        }
    };
    assert_eq!(
        state(subjects[2].clone()).await,
        (DeliveryStatus::Delivered, 2, 2),
        "its second attempt after its first"
    );
    assert_eq!(state(subjects[1].clone()).await, (DeliveryStatus::Pending, 1, 1));
    assert_eq!(
        state(subjects[0].clone()).await,
        (DeliveryStatus::Pending, 0, 0),
        "the stale one wrote nothing"
    );
    let due = store.claim_notifications(at(220), lease, 10).await.unwrap();
    assert_eq!(due.len(), 1, "the retried one is due on schedule; the stale one's claim stands: {due:?}");
    assert_eq!(due[0].subject_id, subjects[1]);
    assert_eq!(store.record_attempts(&[]).await.unwrap(), [], "nothing to record");
}
