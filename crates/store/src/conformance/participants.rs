//! Participants and their keys: versions, scopes, revocation.

use std::sync::Arc;

use ocpay_core::access::Scopes;
use ocpay_core::participant::{Participant, ParticipantKind};

use crate::{NewKey, ParticipantChange, Store, StoreError};

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
            let (participant, key) =
                store.participant_with_key(&alice, version).await.unwrap().expect("alice");
            assert_eq!(participant.client_id, alice);
            key
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
    let (_, found) = store.participant_with_key(&alice, Some(2)).await.unwrap().unwrap();
    let found = found.expect("the integrator's key");
    assert_eq!((found.scopes, found.label.as_deref()), (integrator.scopes, Some("Integrator: Acme POS")));
    assert_eq!(found.expires_at, Some(at(1000)));
    let (_, default) = store.participant_with_key(&alice, None).await.unwrap().unwrap();
    assert_eq!(default.map(|key| key.key_version), Some(1), "no key version means the newest full key");

    let revoked = store.revoke_participant_key(&alice, 2, at(50)).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(at(50)));
    let again = store.revoke_participant_key(&alice, 2, at(60)).await.unwrap();
    assert_eq!(again.revoked_at, Some(at(50)), "a second revocation keeps the first time");
    let (_, first) = store.participant_with_key(&alice, Some(1)).await.unwrap().unwrap();
    assert_eq!(first.and_then(|key| key.revoked_at), None, "the other keys are untouched");
    assert_eq!(
        store.revoke_participant_key(&alice, 9, at(50)).await,
        Err(StoreError::NotFound("key version"))
    );
    let keys = store.participant_keys(&alice).await.unwrap();
    assert_eq!(keys.iter().map(|key| key.key_version).collect::<Vec<_>>(), [1, 2]);
    store.add_participant_key(&alice, &key(3)).await.unwrap();
    store.revoke_participant_key(&alice, 3, at(70)).await.unwrap();
    let (_, default) = store.participant_with_key(&alice, None).await.unwrap().unwrap();
    assert_eq!(default.map(|key| key.key_version), Some(1), "a revoked key is never the default");
    let everything = NewKey { label: Some("Integrator: Full service".parse().expect("a label")), ..key(4) };
    assert_eq!(store.add_participant_key(&alice, &everything).await.unwrap(), 4);
    let (_, default) = store.participant_with_key(&alice, None).await.unwrap().unwrap();
    assert_eq!(default.map(|key| key.key_version), Some(1), "an integrator's key is never the default");
    let (_, own) = store.participant_with_key(&alice, Some(4)).await.unwrap().unwrap();
    assert_eq!(own.map(|key| key.scopes), Some(Scopes::ALL));
}
