//! Acquirers' registrations of their merchants' stores and their review.

use std::sync::Arc;

use ocpay_core::ids::{ClientId, RegistrationId, RegistrationRequestId};
use ocpay_core::registration::{
    AutomaticDecision, Decision, Registration, RegistrationRefusal, RegistrationState, RegistrationTerms,
};

use crate::{
    CreateRegistration, DecideRegistration, NotificationEvent, NotificationKind, RegistrationLookup, Store,
};

use super::{at, client, merchant};

fn registration_terms(owner: &ClientId, request_id: &str, merchant: &str, store: &str) -> RegistrationTerms {
    RegistrationTerms {
        id: RegistrationId::parse(&format!("G-{owner}-{request_id}")).unwrap(),
        owner: owner.clone(),
        request_id: RegistrationRequestId::parse(request_id).unwrap(),
        reference_merchant_id: merchant.into(),
        reference_store_id: store.into(),
        content: format!(r#"{{"merchant":"{merchant}","store":"{store}"}}"#),
        notify_url: Some("https://acquirer.example/registrations".into()),
        created_at: at(0),
        automatic: None,
    }
}

fn registered(outcome: CreateRegistration) -> Registration {
    match outcome {
        CreateRegistration::Created(registration) => registration,
        other => panic!("expected a new registration, got {other:?}"),
    }
}

pub async fn registrations_are_idempotent_and_one_per_store(store: Arc<dyn Store>) {
    let acquirer = merchant(&*store, "ACQ-A").await;
    let other = merchant(&*store, "ACQ-B").await;
    let terms = registration_terms(&acquirer, "REG-1", "M1", "S1");
    let first = registered(store.create_registration(&terms).await.unwrap());
    assert_eq!(first.state, RegistrationState::Processing);
    let mut again = terms.clone();
    again.id = RegistrationId::parse("G-OTHER").unwrap();
    again.notify_url = None;
    assert_eq!(
        store.create_registration(&again).await.unwrap(),
        CreateRegistration::Existing(first.clone()),
        "the same request id and content is the same registration"
    );
    let mut changed = again.clone();
    changed.content = "{}".into();
    assert_eq!(
        store.create_registration(&changed).await.unwrap(),
        CreateRegistration::Refused(RegistrationRefusal::RepeatInconsistent)
    );
    let second = registration_terms(&acquirer, "REG-2", "M1", "S1");
    assert_eq!(
        store.create_registration(&second).await.unwrap(),
        CreateRegistration::Refused(RegistrationRefusal::UnderReview)
    );
    registered(store.create_registration(&registration_terms(&acquirer, "REG-3", "M1", "S2")).await.unwrap());
    registered(store.create_registration(&registration_terms(&other, "REG-1", "M1", "S1")).await.unwrap());
    let lookup = RegistrationLookup::ByRequestId(terms.request_id.clone());
    assert_eq!(store.registration(&acquirer, &lookup).await.unwrap(), Some(first.clone()));
    let by_store = RegistrationLookup::ByMerchant {
        reference_merchant_id: "M1".into(),
        reference_store_id: Some("S1".into()),
    };
    assert_eq!(store.registration(&acquirer, &by_store).await.unwrap(), Some(first.clone()));
    let by_id = RegistrationLookup::ById(first.terms.id.clone());
    assert_eq!(store.registration(&client("NOBODY"), &by_id).await.unwrap(), None, "private to its owner");
    assert_eq!(store.registrations(Some(&acquirer), None, 10).await.unwrap().len(), 2);
    assert_eq!(store.registrations(None, None, 10).await.unwrap().len(), 3);
    assert_eq!(store.registrations(None, None, 1).await.unwrap().len(), 1);
    assert_eq!(store.registrations(None, Some("REG-1"), 10).await.unwrap().len(), 2, "one per acquirer");
    let named = store.registrations(None, Some(first.terms.id.as_str()), 10).await.unwrap();
    assert_eq!(named, std::slice::from_ref(&first));

    assert_eq!(store.approved_store(&acquirer, "M1", "S1").await.unwrap(), None, "not before approval");
    let decided = store.decide_registration(None, &first.terms.id, &Decision::Approve, at(10)).await.unwrap();
    let DecideRegistration::Decided(approved) = decided else { panic!("decided: {decided:?}") };
    assert_eq!(approved.state, RegistrationState::Approved { decided_at: at(10) });
    assert_eq!(store.approved_store(&acquirer, "M1", "S1").await.unwrap(), Some(approved.clone()));
    assert_eq!(store.approved_store(&other, "M1", "S1").await.unwrap(), None, "another acquirer's is not");
    assert_eq!(
        store.create_registration(&second).await.unwrap(),
        CreateRegistration::Refused(RegistrationRefusal::AlreadyRegistered)
    );
    assert_eq!(store.create_registration(&again).await.unwrap(), CreateRegistration::Existing(approved));

    // A rejected registration leaves room for a new request.
    let rejected = registered(
        store.create_registration(&registration_terms(&acquirer, "REG-4", "M2", "S1")).await.unwrap(),
    );
    let reason = Decision::Reject { reason: "incomplete".parse().expect("a reason") };
    store.decide_registration(Some(&acquirer), &rejected.terms.id, &reason, at(20)).await.unwrap();
    registered(store.create_registration(&registration_terms(&acquirer, "REG-5", "M2", "S1")).await.unwrap());
}

pub async fn concurrent_duplicate_registrations_create_one(store: Arc<dyn Store>) {
    let acquirer = merchant(&*store, "ACQ-RACE").await;
    let mut tasks = Vec::new();
    for attempt in 0..32 {
        let store = store.clone();
        // Half repeat one request id; the other half use new ids for the same store.
        let request_id = if attempt % 2 == 0 { "REG-RACE".to_owned() } else { format!("REG-RACE-{attempt}") };
        let mut terms = registration_terms(&acquirer, &request_id, "M-RACE", "S-RACE");
        terms.id = RegistrationId::parse(&format!("G-RACE-{attempt}")).unwrap();
        tasks.push(tokio::spawn(async move { store.create_registration(&terms).await }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.expect("task").expect("create") {
            CreateRegistration::Created(_) => created += 1,
            CreateRegistration::Existing(_)
            | CreateRegistration::Refused(RegistrationRefusal::UnderReview) => {}
            other => panic!("a racer saw {other:?}"),
        }
    }
    assert_eq!(created, 1, "exactly one of the concurrent registrations is created");
    assert_eq!(store.registrations(Some(&acquirer), None, 100).await.unwrap().len(), 1);
}

pub async fn registrations_are_decided_once_and_notified(store: Arc<dyn Store>) {
    let acquirer = merchant(&*store, "ACQ-D").await;
    let quiet = registration_terms(&acquirer, "REG-QUIET", "M-Q", "S1");
    let quiet = RegistrationTerms { notify_url: None, ..quiet };
    let quiet = registered(store.create_registration(&quiet).await.unwrap());
    let loud = registered(
        store.create_registration(&registration_terms(&acquirer, "REG-LOUD", "M-L", "S1")).await.unwrap(),
    );
    let reject = Decision::Reject { reason: "the licence has expired".parse().expect("a reason") };
    assert_eq!(
        store.decide_registration(Some(&client("NOBODY")), &loud.terms.id, &reject, at(5)).await.unwrap(),
        DecideRegistration::NotFound,
        "an owner sees only its own"
    );
    let DecideRegistration::Decided(decided) =
        store.decide_registration(Some(&acquirer), &loud.terms.id, &reject, at(5)).await.unwrap()
    else {
        panic!("decided")
    };
    assert_eq!(decided.state.reject_reason(), Some("the licence has expired"));
    assert_eq!(
        store.decide_registration(None, &loud.terms.id, &Decision::Approve, at(6)).await.unwrap(),
        DecideRegistration::AlreadyDecided(decided.clone()),
        "a decision is final"
    );
    store.decide_registration(None, &quiet.terms.id, &Decision::Approve, at(5)).await.unwrap();
    let notifications = store.notifications(loud.terms.id.as_str()).await.unwrap();
    assert_eq!(notifications.len(), 1, "one notification, in the decision's transaction");
    let notification = &notifications[0].0;
    assert_eq!(notification.kind, NotificationKind::RegistrationStatus);
    assert_eq!((notification.event, notification.event_at), (NotificationEvent::RegistrationRejected, at(5)));
    assert_eq!(notification.recipient, acquirer);
    assert!(
        store.notifications(quiet.terms.id.as_str()).await.unwrap().is_empty(),
        "no URL, no notification"
    );
    assert_eq!(store.resend_notifications(loud.terms.id.as_str(), at(7)).await.unwrap(), 1);
}

pub async fn due_registrations_are_decided_automatically(store: Arc<dyn Store>) {
    let acquirer = merchant(&*store, "ACQ-AUTO").await;
    let mut approve = registration_terms(&acquirer, "REG-AUTO-1", "M-A", "S1");
    approve.automatic = Some(AutomaticDecision { at: at(30), decision: Decision::Approve });
    let mut reject = registration_terms(&acquirer, "REG-AUTO-2", "REJECT-M", "S1");
    let reason = Decision::Reject { reason: "sandbox".parse().expect("a reason") };
    reject.automatic = Some(AutomaticDecision { at: at(30), decision: reason });
    let manual = registration_terms(&acquirer, "REG-MANUAL", "M-M", "S1");
    for terms in [&approve, &reject, &manual] {
        registered(store.create_registration(terms).await.unwrap());
    }
    assert!(store.decide_due_registrations(at(29), 10).await.unwrap().is_empty(), "not due yet");
    let decided = store.decide_due_registrations(at(30), 10).await.unwrap();
    let statuses: Vec<_> = decided.iter().map(|registration| registration.state.status()).collect();
    assert_eq!(decided.len(), 2, "{statuses:?}");
    assert!(statuses.contains(&"APPROVED") && statuses.contains(&"REJECTED"), "{statuses:?}");
    assert!(store.decide_due_registrations(at(60), 10).await.unwrap().is_empty(), "each is decided once");
    assert!(store.approved_store(&acquirer, "M-A", "S1").await.unwrap().is_some());
    let lookup = RegistrationLookup::ByRequestId(manual.request_id.clone());
    let waiting = store.registration(&acquirer, &lookup).await.unwrap().unwrap();
    assert_eq!(waiting.state, RegistrationState::Processing, "only an operator decides the others");
    assert_eq!(store.notifications(approve.id.as_str()).await.unwrap().len(), 1);
}
