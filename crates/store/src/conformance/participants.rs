//! Participants and their keys: versions, scopes, revocation.

use std::sync::Arc;

use ocpay_core::Timestamp;
use ocpay_core::access::Scopes;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Participant, ParticipantKey, ParticipantKind};

use crate::{AuditEvent, NewKey, ParticipantChange, Store, StoreError};

use super::{at, client, key, merchant};

pub async fn participants_and_keys(store: Arc<dyn Store>) {
    let alice = merchant(&*store, "SANDBOX_ALICE").await;
    let found = store.participant(&alice).await.unwrap().expect("participant is found");
    assert_eq!(found.kind, ParticipantKind::Merchant);
    assert_eq!(found.notify_url.as_deref(), Some("https://merchant.example/notify"));
    assert!(store.participant(&client("NOBODY")).await.unwrap().is_none());

    let duplicate = Participant { name: "Other".parse().expect("a name"), ..found.clone() };
    let conflict = store.create_participant(&duplicate, &key(9)).await;
    assert_eq!(conflict, Err(StoreError::Conflict("client id")), "client ids are unique");

    let key_of = |version: Option<u32>| {
        let store = store.clone();
        let alice = alice.clone();
        async move {
            let signer = store.participant_with_key(&alice, version).await.unwrap().expect("alice");
            assert_eq!(signer.participant.client_id, alice);
            signer.key
        }
    };
    let first = key_of(Some(1)).await.expect("the first key is version 1");
    assert_eq!(first.public_key_der, vec![1; 8]);
    assert_eq!(key_of(None).await, Some(first.clone()), "with one key, the newest is the first");
    let version = store.add_participant_key(&alice, &key(2)).await.unwrap();
    assert_eq!(version, 2, "key versions count up");
    let newest = key_of(None).await.expect("newest key");
    assert_eq!((newest.key_version, newest.public_key_der), (2, vec![2; 8]));
    assert_eq!(key_of(Some(1)).await, Some(first), "older versions stay");
    assert!(key_of(Some(3)).await.is_none());
    assert!(store.participant_with_key(&client("NOBODY"), None).await.unwrap().is_none());
    let missing = store.add_participant_key(&client("NOBODY"), &key(3)).await;
    assert_eq!(missing, Err(StoreError::NotFound("participant")));

    let renamed =
        ParticipantChange { name: Some("Alice's".parse().expect("a name")), ..ParticipantChange::default() };
    let changed = store.update_participant(&alice, &renamed).await.unwrap();
    assert_eq!(changed.name.as_str(), "Alice's");
    assert_eq!(changed.notify_url, found.notify_url, "a field not named stays");
    let moved =
        ParticipantChange { notify_url: Some(Some("https://alice.example/n".into())), ..Default::default() };
    store.update_participant(&alice, &moved).await.unwrap();
    let cleared = ParticipantChange { notify_url: Some(None), ..Default::default() };
    let changed = store.update_participant(&alice, &cleared).await.unwrap();
    assert_eq!((changed.name.as_str(), changed.notify_url.as_deref()), ("Alice's", None));
    assert_eq!(store.participant(&alice).await.unwrap(), Some(changed), "stored as returned");
    let missing = store.update_participant(&client("NOBODY"), &renamed).await;
    assert_eq!(missing, Err(StoreError::NotFound("participant")));

    merchant(&*store, "BOB").await;
    let listed = store.participants(10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(store.participants(1).await.unwrap().len(), 1, "the limit holds");
}

pub async fn scoped_keys_and_revocation(store: Arc<dyn Store>) {
    let alice = merchant(&*store, "ALICE").await;
    let integrator = NewKey {
        label: Some("Integrator: Acme POS".parse().expect("a label")),
        scopes: Scopes::parse("pay,inquiry").unwrap(),
        expires_at: Some(at(1000)),
        ..key(2)
    };
    assert_eq!(store.add_participant_key(&alice, &integrator).await.unwrap(), 2);
    let found = store.participant_with_key(&alice, Some(2)).await.unwrap().unwrap().key;
    let found = found.expect("the integrator's key");
    assert_eq!((found.scopes, found.label.as_deref()), (integrator.scopes, Some("Integrator: Acme POS")));
    assert_eq!(found.expires_at, Some(at(1000)));
    let default = store.participant_with_key(&alice, None).await.unwrap().unwrap().key;
    assert_eq!(default.map(|key| key.key_version), Some(1), "no key version means the newest full key");

    let revoked = store.revoke_participant_key(&alice, 2, at(50)).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(at(50)));
    let again = store.revoke_participant_key(&alice, 2, at(60)).await.unwrap();
    assert_eq!(again.revoked_at, Some(at(50)), "a second revocation keeps the first time");
    let first = store.participant_with_key(&alice, Some(1)).await.unwrap().unwrap().key;
    assert_eq!(first.and_then(|key| key.revoked_at), None, "the other keys are untouched");
    assert_eq!(
        store.revoke_participant_key(&alice, 9, at(50)).await,
        Err(StoreError::NotFound("key version"))
    );
    let keys = store.participant_keys(&alice).await.unwrap();
    assert_eq!(keys.iter().map(|key| key.key_version).collect::<Vec<_>>(), [1, 2]);
    store.add_participant_key(&alice, &key(3)).await.unwrap();
    store.revoke_participant_key(&alice, 3, at(70)).await.unwrap();
    let default = store.participant_with_key(&alice, None).await.unwrap().unwrap().key;
    assert_eq!(default.map(|key| key.key_version), Some(1), "a revoked key is never the default");
    let everything = NewKey { label: Some("Integrator: Full service".parse().expect("a label")), ..key(4) };
    assert_eq!(store.add_participant_key(&alice, &everything).await.unwrap(), 4);
    let default = store.participant_with_key(&alice, None).await.unwrap().unwrap().key;
    assert_eq!(default.map(|key| key.key_version), Some(1), "an integrator's key is never the default");
    let own = store.participant_with_key(&alice, Some(4)).await.unwrap().unwrap().key;
    assert_eq!(own.map(|key| key.scopes), Some(Scopes::ALL));
}

pub async fn keys_page_with_their_last_use(store: Arc<dyn Store>) {
    let alice = merchant(&*store, "ALICE").await;
    let bob = merchant(&*store, "BOB").await;
    let isv = merchant(&*store, "ISV1").await;
    store.add_participant_key(&alice, &key(2)).await.unwrap();
    store.add_participant_key(&alice, &key(3)).await.unwrap();
    store.add_participant_key(&isv, &key(2)).await.unwrap();
    let event = |second: i64, signer: &ClientId, key_version: Option<u32>, merchant: &ClientId| AuditEvent {
        at: at(second),
        client_id: signer.clone(),
        key_version,
        agent: (signer != merchant).then(|| signer.clone()),
        merchant: merchant.clone(),
        api: "pay".into(),
        idempotency_key: None,
        result_status: "S".into(),
        result_code: "SUCCESS".into(),
    };
    store
        .record_audit(&[
            event(10, &alice, Some(1), &alice),
            event(20, &alice, Some(2), &alice),
            event(30, &alice, Some(1), &alice),
            // Someone else's key of the same version, an ISV's key acting for alice, and an
            // event without a key (a developer-center change) are not uses of alice's keys.
            event(40, &bob, Some(1), &bob),
            event(50, &isv, Some(2), &alice),
            event(60, &alice, None, &alice),
        ])
        .await
        .unwrap();
    let uses = |page: Vec<(ParticipantKey, Option<Timestamp>)>| {
        page.into_iter().map(|(key, used)| (key.key_version, used)).collect::<Vec<_>>()
    };
    let all = store.keys_with_last_use(&alice, None, 10).await.unwrap();
    assert_eq!(uses(all), [(3, None), (2, Some(at(20))), (1, Some(at(30)))], "newest version first");
    let first = store.keys_with_last_use(&alice, None, 2).await.unwrap();
    assert_eq!(uses(first), [(3, None), (2, Some(at(20)))], "cut to the limit");
    let rest = store.keys_with_last_use(&alice, Some(2), 2).await.unwrap();
    assert_eq!(uses(rest), [(1, Some(at(30)))], "below the last version of the page before");
    assert_eq!(uses(store.keys_with_last_use(&bob, None, 10).await.unwrap()), [(1, Some(at(40)))]);
    assert!(store.keys_with_last_use(&client("NOBODY"), None, 10).await.unwrap().is_empty());
}

/// An operator suspends and resumes a participant; the gateway's read and the console's list
/// see it; the list filters and pages by client id; the audit search finds across participants.
pub async fn suspension_listing_and_audit_search(store: Arc<dyn Store>) {
    use crate::oversight::{AuditFilter, ParticipantFilter};
    use ocpay_core::participant::Environment;

    let alice = merchant(&*store, "SANDBOX_ALICE").await;
    let bob = merchant(&*store, "LIVE_BOB_100").await;
    let signer = store.participant_with_key(&alice, None).await.unwrap().unwrap();
    assert_eq!(signer.suspended_at, None);
    let suspended = store.set_participant_suspension(&alice, Some(at(5))).await.unwrap();
    assert_eq!(suspended.suspended_at, Some(at(5)));
    let again = store.set_participant_suspension(&alice, Some(at(9))).await.unwrap();
    assert_eq!(again.suspended_at, Some(at(5)), "a suspended participant keeps its first time");
    let signer = store.participant_with_key(&alice, None).await.unwrap().unwrap();
    assert_eq!(signer.suspended_at, Some(at(5)), "the gateway's one read sees it");
    assert_eq!(store.suspended_participants().await.unwrap(), 1);
    let missing = store.set_participant_suspension(&client("NOBODY"), Some(at(5))).await;
    assert_eq!(missing, Err(StoreError::NotFound("participant")));

    let ids = |page: Vec<crate::oversight::ParticipantListing>| {
        page.into_iter().map(|listing| listing.participant.client_id.to_string()).collect::<Vec<_>>()
    };
    let all = ParticipantFilter::default();
    assert_eq!(
        ids(store.participants_page(&all, None, 10).await.unwrap()),
        ["LIVE_BOB_100", "SANDBOX_ALICE"]
    );
    assert_eq!(
        ids(store.participants_page(&all, Some(&bob), 10).await.unwrap()),
        ["SANDBOX_ALICE"],
        "keyset"
    );
    let sandbox = ParticipantFilter { environment: Some(Environment::Sandbox), ..Default::default() };
    assert_eq!(ids(store.participants_page(&sandbox, None, 10).await.unwrap()), ["SANDBOX_ALICE"]);
    let live = ParticipantFilter { environment: Some(Environment::Live), ..Default::default() };
    assert_eq!(ids(store.participants_page(&live, None, 10).await.unwrap()), ["LIVE_BOB_100"]);
    let text = ParticipantFilter { text: Some("bob_".into()), ..Default::default() };
    assert_eq!(ids(store.participants_page(&text, None, 10).await.unwrap()), ["LIVE_BOB_100"], "any case");
    let wildcard = ParticipantFilter { text: Some("%".into()), ..Default::default() };
    assert!(store.participants_page(&wildcard, None, 10).await.unwrap().is_empty(), "% is a character");
    let only_suspended = ParticipantFilter { suspended: Some(true), ..Default::default() };
    assert_eq!(ids(store.participants_page(&only_suspended, None, 10).await.unwrap()), ["SANDBOX_ALICE"]);
    let acquirers = ParticipantFilter { kind: Some(ParticipantKind::Acquirer), ..Default::default() };
    assert!(store.participants_page(&acquirers, None, 10).await.unwrap().is_empty());

    let resumed = store.set_participant_suspension(&alice, None).await.unwrap();
    assert_eq!(resumed.suspended_at, None);
    assert_eq!(store.participant_with_key(&alice, None).await.unwrap().unwrap().suspended_at, None);

    let event = |client_id: &ClientId, api: &str, code: &str, second: i64| AuditEvent {
        at: at(second),
        client_id: client_id.clone(),
        key_version: None,
        agent: None,
        merchant: client_id.clone(),
        api: api.into(),
        idempotency_key: None,
        result_status: if code == "SUCCESS" { "S" } else { "F" }.into(),
        result_code: code.into(),
    };
    store
        .record_audit(&[
            event(&alice, "pay", "SUCCESS", 10),
            event(&bob, "pay", "ACCESS_DENIED", 20),
            event(&alice, "console.suspend", "SUCCESS", 30),
        ])
        .await
        .unwrap();
    let apis = |records: &[crate::oversight::AuditRecord]| {
        records.iter().map(|record| record.event.api.clone()).collect::<Vec<_>>()
    };
    let newest = store.audit_search(&AuditFilter::default(), None, 2).await.unwrap();
    assert_eq!(apis(&newest), ["console.suspend", "pay"], "newest first");
    let rest = store.audit_search(&AuditFilter::default(), Some(newest[1].event_id), 2).await.unwrap();
    assert_eq!(apis(&rest), ["pay"]);
    let of_alice = AuditFilter { client_id: Some(alice.clone()), ..Default::default() };
    assert_eq!(apis(&store.audit_search(&of_alice, None, 10).await.unwrap()), ["console.suspend", "pay"]);
    let denied = AuditFilter { result_code: Some("ACCESS_DENIED".into()), ..Default::default() };
    let found = store.audit_search(&denied, None, 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].event.client_id, bob);
    let window =
        AuditFilter { from: Some(at(15)), to: Some(at(30)), api: Some("pay".into()), ..Default::default() };
    assert_eq!(store.audit_search(&window, None, 10).await.unwrap().len(), 1, "from inclusive, to exclusive");
}
