//! The conformance suite every [`Store`] implementation must pass.
//!
//! Each check gets a fresh, empty store from the caller's factory and drives it only through
//! the trait, so the SQLite and PostgreSQL backends are held to exactly the same behaviour.
//! A failed check panics with a message that says which rule broke.

use std::future::Future;
use std::sync::Arc;

use ocpay_core::Timestamp;
use ocpay_core::ids::{ClientId, CodeToken, PaymentId, PaymentRequestId};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::{Participant, ParticipantKind};
use ocpay_core::payment::{
    CancelWindow, MerchantRef, Order, PaymentState, PaymentStatus, PaymentTerms, StoreRef,
};

use crate::{CancelPayment, CreatePayment, NewKey, PaymentLookup, Store, StoreError};

/// Runs every check, each on a new store from `new_store`.
pub async fn run_all<F, Fut>(new_store: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    participants_and_keys(new_store().await).await;
    payment_idempotency(new_store().await).await;
    concurrent_duplicates_create_one_payment(new_store().await).await;
    payments_are_private_to_their_owner(new_store().await).await;
    cancel_follows_core(new_store().await).await;
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).expect("a valid test instant")
}

fn client(name: &str) -> ClientId {
    ClientId::parse(name).expect("a valid test client id")
}

fn key(byte: u8) -> NewKey {
    NewKey { public_key_der: vec![byte; 8], label: None, created_at: at(0), expires_at: None }
}

async fn merchant(store: &dyn Store, name: &str) -> ClientId {
    let participant = Participant {
        client_id: client(name),
        kind: ParticipantKind::Merchant,
        name: format!("{name} Ltd"),
        notify_url: Some("https://merchant.example/notify".into()),
        created_at: at(0),
    };
    store.create_participant(&participant, &key(1)).await.expect("create a participant");
    participant.client_id
}

/// A payment request of `owner` with the given idempotency key, amount in USD cents.
pub fn sample_terms(owner: &ClientId, request_id: &str, amount_minor: i64) -> PaymentTerms {
    let usd = Currency::parse("USD").expect("USD");
    let unique = format!("{}-{request_id}", owner.as_str());
    PaymentTerms {
        id: PaymentId::parse(&format!("P-{unique}")).expect("payment id"),
        owner: owner.clone(),
        request_id: PaymentRequestId::parse(request_id).expect("request id"),
        amount: Money::new(amount_minor, usd),
        order: Order {
            reference_order_id: Some(format!("ORDER-{request_id}")),
            description: "Two flat whites".into(),
            amount: Money::new(amount_minor, usd),
            merchant: MerchantRef {
                reference_merchant_id: "M0001".into(),
                name: "Demo Shop".into(),
                mcc: "5812".into(),
                display_name: None,
                store: StoreRef {
                    reference_store_id: "S0001".into(),
                    name: "Demo Store 1".into(),
                    mcc: None,
                },
            },
        },
        code_token: CodeToken::parse(&format!("T-{unique}")).expect("code token"),
        notify_url: None,
        redirect_url: None,
        settlement_currency: None,
        merchant_region: Some("SG".into()),
        extend_info: None,
        created_at: at(10),
        expires_at: at(910),
    }
}

async fn participants_and_keys(store: Arc<dyn Store>) {
    let alice = merchant(&*store, "SANDBOX_ALICE").await;
    let found = store.participant(&alice).await.unwrap().expect("participant is found");
    assert_eq!(found.kind, ParticipantKind::Merchant);
    assert_eq!(found.notify_url.as_deref(), Some("https://merchant.example/notify"));
    assert!(store.participant(&client("NOBODY")).await.unwrap().is_none());

    let duplicate = Participant { name: "Other".into(), ..found.clone() };
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

    merchant(&*store, "BOB").await;
    let listed = store.participants(10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(store.participants(1).await.unwrap().len(), 1, "the limit holds");
}

async fn payment_idempotency(store: Arc<dyn Store>) {
    let owner = merchant(&*store, "ALICE").await;
    let terms = sample_terms(&owner, "PR-1", 1000);
    let CreatePayment::Created(created) = store.create_payment(&terms).await.unwrap() else {
        panic!("the first pay creates the payment");
    };
    assert_eq!(created.terms, terms);
    assert_eq!(created.state, PaymentState::Processing);

    // A repeat (even with other ids and times generated for it) returns the original.
    let mut repeat = sample_terms(&owner, "PR-1", 1000);
    repeat.id = PaymentId::parse("P-OTHER").unwrap();
    repeat.code_token = CodeToken::parse("T-OTHER").unwrap();
    repeat.created_at = at(20);
    let CreatePayment::Existing(existing) = store.create_payment(&repeat).await.unwrap() else {
        panic!("the repeat finds the original");
    };
    assert_eq!(existing, created);

    let by_id = store.payment(&owner, &PaymentLookup::ById(terms.id.clone())).await.unwrap();
    let by_request =
        store.payment(&owner, &PaymentLookup::ByRequestId(terms.request_id.clone())).await.unwrap();
    assert_eq!(by_id.as_ref(), Some(&created));
    assert_eq!(by_request.as_ref(), Some(&created));
}

async fn concurrent_duplicates_create_one_payment(store: Arc<dyn Store>) {
    let owner = merchant(&*store, "ALICE").await;
    let mut tasks = Vec::new();
    for attempt in 0..32 {
        let store = store.clone();
        let mut terms = sample_terms(&owner, "PR-RACE", 500);
        terms.id = PaymentId::parse(&format!("P-RACE-{attempt}")).unwrap();
        terms.code_token = CodeToken::parse(&format!("T-RACE-{attempt}")).unwrap();
        tasks.push(tokio::spawn(async move { store.create_payment(&terms).await }));
    }
    let mut n_created = 0;
    let mut payment_ids = Vec::new();
    for task in tasks {
        match task.await.expect("task").expect("create") {
            CreatePayment::Created(payment) => {
                n_created += 1;
                payment_ids.push(payment.terms.id);
            }
            CreatePayment::Existing(payment) => payment_ids.push(payment.terms.id),
        }
    }
    assert_eq!(n_created, 1, "exactly one of the concurrent duplicates creates the payment");
    payment_ids.dedup();
    assert_eq!(payment_ids.len(), 1, "every duplicate sees the same payment");
}

async fn payments_are_private_to_their_owner(store: Arc<dyn Store>) {
    let alice = merchant(&*store, "ALICE").await;
    let bob = merchant(&*store, "BOB").await;
    let terms = sample_terms(&alice, "PR-SAME", 700);
    store.create_payment(&terms).await.unwrap();
    let by_id = PaymentLookup::ById(terms.id.clone());
    let by_request = PaymentLookup::ByRequestId(terms.request_id.clone());
    assert!(store.payment(&bob, &by_id).await.unwrap().is_none(), "bob cannot read alice's payment by id");
    assert!(store.payment(&bob, &by_request).await.unwrap().is_none(), "nor by request id");
    let cancel = store.cancel_payment(&bob, &by_id, &CancelWindow::default(), at(30)).await.unwrap();
    assert_eq!(cancel, CancelPayment::NotFound, "bob cannot cancel alice's payment");

    // Bob may use the same paymentRequestId for a payment of his own.
    let CreatePayment::Created(own) =
        store.create_payment(&sample_terms(&bob, "PR-SAME", 700)).await.unwrap()
    else {
        panic!("request ids are unique per client, not globally");
    };
    assert_ne!(own.terms.id, terms.id);
    let alice_view = store.payment(&alice, &by_request).await.unwrap().expect("alice's payment");
    assert_eq!(alice_view.state.status(), PaymentStatus::Processing, "bob's cancel changed nothing");
}

async fn cancel_follows_core(store: Arc<dyn Store>) {
    let owner = merchant(&*store, "ALICE").await;
    let terms = sample_terms(&owner, "PR-C", 1000);
    store.create_payment(&terms).await.unwrap();
    let lookup = PaymentLookup::ByRequestId(terms.request_id.clone());
    let window = CancelWindow::default();

    let CancelPayment::Done(cancelled) =
        store.cancel_payment(&owner, &lookup, &window, at(60)).await.unwrap()
    else {
        panic!("a processing payment can be cancelled");
    };
    assert_eq!(cancelled.state, PaymentState::Cancelled { cancelled_at: at(60), paid_at: None });
    let stored = store.payment(&owner, &lookup).await.unwrap().unwrap();
    assert_eq!(stored.state, cancelled.state, "the cancel is stored");

    let CancelPayment::Done(again) = store.cancel_payment(&owner, &lookup, &window, at(90)).await.unwrap()
    else {
        panic!("cancelling twice succeeds");
    };
    assert_eq!(again.state, cancelled.state, "the second cancel keeps the first cancel time");

    let unknown = PaymentLookup::ById(PaymentId::parse("P-NONE").unwrap());
    assert_eq!(
        store.cancel_payment(&owner, &unknown, &window, at(90)).await.unwrap(),
        CancelPayment::NotFound
    );
}
