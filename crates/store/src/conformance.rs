//! The conformance suite every [`Store`] implementation must pass.
//!
//! Each check gets a fresh, empty store from the caller's factory and drives it only through
//! the trait, so the SQLite and PostgreSQL backends are held to exactly the same behaviour.
//! A failed check panics with a message that says which rule broke.

use std::future::Future;
use std::sync::Arc;

use jiff::SignedDuration;
use ocpay_core::Timestamp;
use ocpay_core::access::{Grant, Scopes};
use ocpay_core::fx::Rate;
use ocpay_core::ids::{
    ClientId, CodeToken, PaymentId, PaymentRequestId, RefundId, RefundRequestId, RegistrationId,
    RegistrationRequestId,
};
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::{Environment, Participant, ParticipantKind};
use ocpay_core::payer::{Payer, PayerId};
use ocpay_core::payment::{
    CancelRefusal, CancelWindow, Charge, FailReason, MerchantRef, NotPayable, Order, PaymentState,
    PaymentStatus, PaymentTerms, Quote, StoreRef,
};
use ocpay_core::refund::{Refund, RefundPolicy, RefundRefusal, RefundState, RefundTerms};
use ocpay_core::registration::{
    AutomaticDecision, Decision, Registration, RegistrationRefusal, RegistrationState, RegistrationTerms,
};

use crate::sql::StatementFaults;
use crate::{
    AfterAttempt, Attempt, AttemptOutcome, AuditEvent, CancelPayment, CreatePayment, CreateRefund,
    CreateRegistration, DecideRegistration, DeliveryStatus, FailPayment, NewGrant, NewKey, NewRefund,
    NotificationKind, PaymentLookup, RefundCompletion, RefundLookup, RegistrationLookup, SandboxFault,
    Secret, SettlePayment, Settlement, Store, StoreError,
};

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
    payers_and_top_ups(new_store().await).await;
    paying_moves_money_and_queues_one_notification(new_store().await).await;
    paying_across_currencies_balances_each_currency(new_store().await).await;
    only_payable_payments_are_paid(new_store().await).await;
    failing_and_expiring_are_final_and_notified(new_store().await).await;
    cancelling_a_paid_payment_reverses_it(new_store().await).await;
    racing_payers_and_cancels_have_one_winner(new_store().await).await;
    the_outbox_claims_retries_and_resends(new_store().await).await;
    a_resend_waits_for_the_attempt_in_flight(new_store().await).await;
    the_inquiry_fault_is_taken_once(new_store().await).await;
    refunds_are_idempotent_and_bounded_by_the_payment(new_store().await).await;
    refunds_across_currencies_return_the_charge_exactly(new_store().await).await;
    asynchronous_refunds_complete_when_due(new_store().await).await;
    concurrent_refunds_never_exceed_the_payment(new_store().await).await;
    scoped_keys_and_revocation(new_store().await).await;
    grants_hold_only_the_tokens_hash(new_store().await).await;
    the_audit_trail_is_kept_per_participant(new_store().await).await;
    registrations_are_idempotent_and_one_per_store(new_store().await).await;
    concurrent_duplicate_registrations_create_one(new_store().await).await;
    registrations_are_decided_once_and_notified(new_store().await).await;
    due_registrations_are_decided_automatically(new_store().await).await;
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).expect("a valid test instant")
}

fn client(name: &str) -> ClientId {
    ClientId::parse(name).expect("a valid test client id")
}

fn key(byte: u8) -> NewKey {
    NewKey {
        public_key_der: vec![byte; 8],
        label: None,
        scopes: Scopes::ALL,
        created_at: at(0),
        expires_at: None,
    }
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
        notify_url: "https://merchant.example/notify".into(),
        redirect_url: None,
        settlement_currency: None,
        merchant_region: Some("SG".into()),
        extend_info: None,
        created_at: at(10),
        expires_at: at(910),
        agent: None,
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

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("USD").expect("USD"))
}

fn sgd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("SGD").expect("SGD"))
}

/// A live payer with `balance` in its wallet (in the balance's currency).
async fn payer_with(store: &dyn Store, id: &str, balance: Money) -> PayerId {
    let payer = Payer::new(
        PayerId::parse(id).expect("payer id"),
        Environment::Live,
        balance.currency(),
        Some("hash".into()),
        at(0),
    );
    store.create_payer(&payer).await.expect("create a payer");
    if balance.minor() > 0 {
        store.top_up(&payer.id, balance, at(1)).await.expect("top up");
    }
    payer.id
}

async fn paid_ready(store: &dyn Store, request_id: &str, amount_minor: i64) -> (ClientId, PaymentTerms) {
    let owner = match store.participant(&client("ALICE")).await.unwrap() {
        Some(participant) => participant.client_id,
        None => merchant(store, "ALICE").await,
    };
    let terms = sample_terms(&owner, request_id, amount_minor);
    store.create_payment(&terms).await.expect("create a payment");
    (owner, terms)
}

fn settlement(terms: &PaymentTerms, payer: &PayerId, now: Timestamp) -> Settlement {
    Settlement {
        code: terms.code_token.clone(),
        charge: Charge { payer: payer.clone(), amount: terms.amount, quote: None },
        now,
        sandbox_top_up: None,
    }
}

async fn wallet(store: &dyn Store, payer: &PayerId, currency: Currency) -> Money {
    store.balance(&Account::new(AccountOwner::Wallet(payer.clone()), currency)).await.unwrap()
}

async fn pending(store: &dyn Store, owner: &ClientId, currency: Currency) -> Money {
    store.balance(&Account::new(AccountOwner::MerchantPending(owner.clone()), currency)).await.unwrap()
}

async fn assert_sound(store: &dyn Store) {
    let check = store.ledger_check().await.unwrap();
    assert!(check.is_sound(), "the ledger is sound: {check:?}");
}

async fn payers_and_top_ups(store: Arc<dyn Store>) {
    let payer = payer_with(&*store, "PAYER-1", usd(0)).await;
    let duplicate =
        Payer::new(payer.clone(), Environment::Sandbox, Currency::parse("USD").unwrap(), None, at(0));
    assert_eq!(store.create_payer(&duplicate).await, Err(StoreError::Conflict("payer")));
    assert_eq!(store.payer(&payer).await.unwrap().unwrap().environment, Environment::Live);
    assert_eq!(store.top_up(&payer, usd(500), at(2)).await.unwrap(), usd(500));
    assert_eq!(store.top_up(&payer, usd(250), at(3)).await.unwrap(), usd(750), "balances add up");
    store.top_up(&payer, sgd(100), at(4)).await.unwrap();
    assert_eq!(store.balances(&AccountOwner::Wallet(payer.clone())).await.unwrap(), vec![sgd(100), usd(750)]);
    let lookalike = payer_with(&*store, "PAYER-1:USD", usd(99)).await;
    assert_eq!(store.balances(&AccountOwner::Wallet(lookalike)).await.unwrap(), vec![usd(99)]);
    assert_eq!(
        store.balances(&AccountOwner::Wallet(payer.clone())).await.unwrap(),
        vec![sgd(100), usd(750)],
        "another payer's wallet is not counted, however its id looks"
    );
    let missing = PayerId::parse("NOBODY").unwrap();
    assert_eq!(store.top_up(&missing, usd(1), at(5)).await, Err(StoreError::NotFound("payer")));
    for _ in 0..2 {
        assert!(store.pin_attempt(&payer, 3, at(900), at(10)).await.unwrap());
    }
    let counted = store.payer(&payer).await.unwrap().unwrap();
    assert_eq!((counted.pin_failures, counted.locked_until), (2, None));
    assert!(store.pin_attempt(&payer, 3, at(900), at(10)).await.unwrap(), "the third may still be checked");
    let locked = store.payer(&payer).await.unwrap().unwrap();
    assert!(locked.is_locked(at(899)) && !locked.is_locked(at(900)), "the third wrong PIN locks until then");
    assert!(!store.pin_attempt(&payer, 3, at(1900), at(899)).await.unwrap(), "no check while locked");
    assert_eq!(store.payer(&payer).await.unwrap().unwrap().locked_until, Some(at(900)), "and no longer lock");
    assert!(
        store.pin_attempt(&payer, 3, at(1900), at(900)).await.unwrap(),
        "checked once the lock has ended"
    );
    let afresh = store.payer(&payer).await.unwrap().unwrap();
    assert_eq!(
        (afresh.pin_failures, afresh.locked_until),
        (1, None),
        "a new run of wrong PINs starts at one"
    );
    store.pin_succeeded(&payer).await.unwrap();
    assert_eq!(store.payer(&payer).await.unwrap().unwrap().pin_failures, 0);

    // Guesses at once: exactly as many are checked as the limit allows.
    let guesser = payer_with(&*store, "PAYER-GUESSED", usd(0)).await;
    let mut guesses = Vec::new();
    for _ in 0..20 {
        let (store, guesser) = (store.clone(), guesser.clone());
        guesses.push(tokio::spawn(
            async move { store.pin_attempt(&guesser, 3, at(900), at(10)).await.unwrap() },
        ));
    }
    let mut checked = 0;
    for guess in guesses {
        checked += usize::from(guess.await.unwrap());
    }
    assert_eq!(checked, 3, "parallel guesses do not get past the limit");
    let funding = store
        .balance(&Account::new(AccountOwner::Funding(Environment::Live), Currency::parse("USD").unwrap()))
        .await
        .unwrap();
    assert_eq!(funding, usd(-750 - 99), "issued value is owed by the funding account");
    assert_sound(&*store).await;
}

async fn paying_moves_money_and_queues_one_notification(store: Arc<dyn Store>) {
    let (owner, terms) = paid_ready(&*store, "PR-PAY", 1250).await;
    let payer = payer_with(&*store, "PAYER-1", usd(2000)).await;
    let SettlePayment::Paid(paid) = store.settle_payment(&settlement(&terms, &payer, at(100))).await.unwrap()
    else {
        panic!("a funded payer pays a processing payment");
    };
    assert_eq!(paid.state, PaymentState::Success { paid_at: at(100) });
    let stored = store.payment(&owner, &PaymentLookup::ById(terms.id.clone())).await.unwrap().unwrap();
    assert_eq!(stored, paid, "the payment, its payer and its charge are stored");
    let currency = terms.amount.currency();
    assert_eq!(wallet(&*store, &payer, currency).await, usd(750));
    assert_eq!(pending(&*store, &owner, currency).await, usd(1250));
    let notifications = store.notifications(terms.id.as_str()).await.unwrap();
    assert_eq!(notifications.len(), 1, "exactly one notification for the success");
    let (notification, attempts) = &notifications[0];
    assert_eq!(
        (notification.event_status.as_str(), notification.event_code.as_str()),
        ("SUCCESS", "SUCCESS")
    );
    assert_eq!(notification.status, DeliveryStatus::Pending);
    assert_eq!(notification.next_attempt_at, Some(at(100)), "the first attempt is due at once");
    assert!(attempts.is_empty());
    assert_eq!(notification.url, terms.notify_url);
    let again = store.settle_payment(&settlement(&terms, &payer, at(101))).await.unwrap();
    assert!(matches!(again, SettlePayment::NotPayable(_, NotPayable::AlreadyPaid)), "{again:?}");
    assert_eq!(wallet(&*store, &payer, currency).await, usd(750), "paying twice charges once");
    assert_sound(&*store).await;
}

async fn paying_across_currencies_balances_each_currency(store: Arc<dyn Store>) {
    let (owner, terms) = paid_ready(&*store, "PR-FX", 1250).await;
    let payer = payer_with(&*store, "PAYER-SGD", sgd(5000)).await;
    let rate = Rate::parse("USD/SGD", "1.3450").unwrap();
    let charge =
        Charge::for_payment(payer.clone(), terms.amount, sgd(0).currency(), Some(rate), at(100)).unwrap();
    assert_eq!(charge.amount, sgd(1682));
    let mut settle = settlement(&terms, &payer, at(100));
    settle.charge = charge.clone();
    let SettlePayment::Paid(paid) = store.settle_payment(&settle).await.unwrap() else { panic!("paid") };
    assert_eq!(paid.charge, Some(charge));
    let stored = store.payment(&owner, &PaymentLookup::ById(terms.id.clone())).await.unwrap().unwrap();
    assert_eq!(stored.charge.unwrap().quote, Some(Quote { rate, quoted_at: at(100) }), "the quote is kept");
    assert_eq!(wallet(&*store, &payer, sgd(0).currency()).await, sgd(5000 - 1682));
    assert_eq!(pending(&*store, &owner, usd(0).currency()).await, usd(1250));
    assert_sound(&*store).await;
}

async fn only_payable_payments_are_paid(store: Arc<dyn Store>) {
    let (owner, terms) = paid_ready(&*store, "PR-POOR", 1250).await;
    let poor = payer_with(&*store, "PAYER-POOR", usd(1000)).await;
    let refused = store.settle_payment(&settlement(&terms, &poor, at(100))).await.unwrap();
    assert_eq!(refused, SettlePayment::InsufficientBalance { balance: usd(1000) });
    let unknown = PayerId::parse("NOBODY").unwrap();
    assert_eq!(
        store.settle_payment(&settlement(&terms, &unknown, at(100))).await.unwrap(),
        SettlePayment::UnknownPayer
    );

    // The sandbox issues stored value when a sandbox wallet would not cover the charge, and
    // only together with the payment it makes possible.
    let mut short = settlement(&terms, &poor, at(100));
    short.sandbox_top_up = Some(usd(200));
    assert_eq!(
        store.settle_payment(&short).await.unwrap(),
        SettlePayment::InsufficientBalance { balance: usd(1000) }
    );
    assert_eq!(wallet(&*store, &poor, usd(0).currency()).await, usd(1000), "no top-up stands alone");
    let mut topped = settlement(&terms, &poor, at(100));
    topped.sandbox_top_up = Some(usd(100_000));
    assert!(matches!(store.settle_payment(&topped).await.unwrap(), SettlePayment::Paid(_)));
    assert_eq!(wallet(&*store, &poor, usd(0).currency()).await, usd(1000 + 100_000 - 1250));

    let (_, expiring) = paid_ready(&*store, "PR-LATE", 100).await;
    let late = store.settle_payment(&settlement(&expiring, &poor, expiring.expires_at)).await.unwrap();
    assert!(
        matches!(late, SettlePayment::NotPayable(_, NotPayable::Expired)),
        "expired before the job ran: {late:?}"
    );

    let (_, cancelled) = paid_ready(&*store, "PR-GONE", 100).await;
    let lookup = PaymentLookup::ById(cancelled.id.clone());
    store.cancel_payment(&owner, &lookup, &CancelWindow::default(), at(50)).await.unwrap();
    let gone = store.settle_payment(&settlement(&cancelled, &poor, at(60))).await.unwrap();
    assert!(matches!(gone, SettlePayment::NotPayable(_, NotPayable::Cancelled)), "{gone:?}");
    let missing =
        Settlement { code: CodeToken::parse("T-NONE").unwrap(), ..settlement(&terms, &poor, at(60)) };
    assert_eq!(store.settle_payment(&missing).await.unwrap(), SettlePayment::NotFound);
    assert_sound(&*store).await;
}

async fn failing_and_expiring_are_final_and_notified(store: Arc<dyn Store>) {
    let (_, risky) = paid_ready(&*store, "PR-RISK", 100).await;
    let FailPayment::Failed(failed) =
        store.fail_payment(&risky.code_token, FailReason::RiskReject, at(100)).await.unwrap()
    else {
        panic!("a processing payment can fail");
    };
    assert_eq!(failed.state, PaymentState::Fail { reason: FailReason::RiskReject, failed_at: at(100) });
    let twice = store.fail_payment(&risky.code_token, FailReason::RiskReject, at(101)).await.unwrap();
    assert!(matches!(twice, FailPayment::NotPayable(_, NotPayable::Failed)));
    let payer = payer_with(&*store, "PAYER-1", usd(1000)).await;
    let after = store.settle_payment(&settlement(&risky, &payer, at(102))).await.unwrap();
    assert!(matches!(after, SettlePayment::NotPayable(_, NotPayable::Failed)));

    let (_, first) = paid_ready(&*store, "PR-EXP-1", 100).await;
    let (_, second) = paid_ready(&*store, "PR-EXP-2", 100).await;
    let expires = first.expires_at;
    assert!(store.expire_payments(expires - SignedDuration::from_secs(1), 10).await.unwrap().is_empty());
    let later = expires + SignedDuration::from_mins(5);
    let expired = store.expire_payments(later, 1).await.unwrap();
    assert_eq!(expired.len(), 1, "the limit holds");
    let expired = [expired, store.expire_payments(later, 10).await.unwrap()].concat();
    assert_eq!(expired.len(), 2);
    for payment in &expired {
        assert_eq!(
            payment.state,
            PaymentState::Fail { reason: FailReason::OrderIsClosed, failed_at: expires }
        );
    }
    assert!(store.expire_payments(later, 10).await.unwrap().is_empty(), "expiring twice closes nothing more");
    for terms in [&risky, &first, &second] {
        let notifications = store.notifications(terms.id.as_str()).await.unwrap();
        assert_eq!(notifications.len(), 1, "one notification per failure");
        assert_eq!(notifications[0].0.event_status, "FAIL");
    }
    assert_eq!(store.notifications(second.id.as_str()).await.unwrap()[0].0.event_code, "ORDER_IS_CLOSED");
}

async fn cancelling_a_paid_payment_reverses_it(store: Arc<dyn Store>) {
    let (owner, terms) = paid_ready(&*store, "PR-REV", 1250).await;
    let payer = payer_with(&*store, "PAYER-SGD", sgd(5000)).await;
    let rate = Rate::parse("USD/SGD", "1.3450").unwrap();
    let charge =
        Charge::for_payment(payer.clone(), terms.amount, sgd(0).currency(), Some(rate), at(100)).unwrap();
    let settle = Settlement { charge, ..settlement(&terms, &payer, at(100)) };
    store.settle_payment(&settle).await.unwrap();
    let lookup = PaymentLookup::ById(terms.id.clone());
    let CancelPayment::Done(cancelled) =
        store.cancel_payment(&owner, &lookup, &CancelWindow::default(), at(200)).await.unwrap()
    else {
        panic!("a paid payment inside its window can be cancelled");
    };
    assert_eq!(cancelled.state, PaymentState::Cancelled { cancelled_at: at(200), paid_at: Some(at(100)) });
    assert!(cancelled.charge.is_some(), "who paid is kept");
    assert_eq!(wallet(&*store, &payer, sgd(0).currency()).await, sgd(5000), "the payer has every cent back");
    assert_eq!(pending(&*store, &owner, usd(0).currency()).await, usd(0));
    assert_eq!(
        store.notifications(terms.id.as_str()).await.unwrap().len(),
        1,
        "a merchant's cancel is not notified"
    );
    assert_sound(&*store).await;

    let (_, late) = paid_ready(&*store, "PR-LATE-CANCEL", 100).await;
    store
        .settle_payment(&settlement(&late, &payer_with(&*store, "PAYER-USD", usd(100)).await, at(100)))
        .await
        .unwrap();
    let lookup = PaymentLookup::ById(late.id.clone());
    let window_closed = at(100) + SignedDuration::from_hours(48);
    let refused =
        store.cancel_payment(&owner, &lookup, &CancelWindow::default(), window_closed).await.unwrap();
    assert!(matches!(refused, CancelPayment::Refused(_, ocpay_core::payment::CancelRefusal::WindowExceeded)));
}

async fn racing_payers_and_cancels_have_one_winner(store: Arc<dyn Store>) {
    let (owner, terms) = paid_ready(&*store, "PR-RACE", 500).await;
    let mut racers = Vec::new();
    for n in 0..8 {
        let payer = payer_with(&*store, &format!("RACER-{n}"), usd(500)).await;
        let store = store.clone();
        let settle = settlement(&terms, &payer, at(100));
        racers.push(tokio::spawn(async move { store.settle_payment(&settle).await.unwrap() }));
    }
    let mut winners = 0;
    for racer in racers {
        match racer.await.unwrap() {
            SettlePayment::Paid(_) => winners += 1,
            SettlePayment::NotPayable(_, NotPayable::AlreadyPaid) => {}
            other => panic!("a racer saw {other:?}"),
        }
    }
    assert_eq!(winners, 1, "exactly one payer pays");
    assert_eq!(pending(&*store, &owner, usd(0).currency()).await, usd(500), "the merchant is paid once");

    let (_, contested) = paid_ready(&*store, "PR-CONTEST", 500).await;
    let payer = payer_with(&*store, "CONTESTANT", usd(500)).await;
    let settle = settlement(&contested, &payer, at(100));
    let (paying, cancelling) = tokio::join!(
        {
            let store = store.clone();
            async move { store.settle_payment(&settle).await.unwrap() }
        },
        {
            let store = store.clone();
            let owner = owner.clone();
            let lookup = PaymentLookup::ById(contested.id.clone());
            async move { store.cancel_payment(&owner, &lookup, &CancelWindow::default(), at(100)).await.unwrap() }
        },
    );
    let stored = store.payment(&owner, &PaymentLookup::ById(contested.id.clone())).await.unwrap().unwrap();
    match paying {
        // Paid first: the cancel reversed it.
        SettlePayment::Paid(_) => {
            assert!(matches!(stored.state, PaymentState::Cancelled { paid_at: Some(_), .. }));
            assert_eq!(wallet(&*store, &payer, usd(0).currency()).await, usd(500));
        }
        SettlePayment::NotPayable(_, NotPayable::Cancelled) => {
            assert!(matches!(stored.state, PaymentState::Cancelled { paid_at: None, .. }));
        }
        other => panic!("the payer saw {other:?}"),
    }
    assert!(matches!(cancelling, CancelPayment::Done(_)));
    assert_sound(&*store).await;
}

async fn the_outbox_claims_retries_and_resends(store: Arc<dyn Store>) {
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

async fn a_resend_waits_for_the_attempt_in_flight(store: Arc<dyn Store>) {
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
    };
    store.record_attempt(&attempt, AfterAttempt::RetryAt(at(220))).await.unwrap();
    let resent = store.claim_notifications(at(109), lease, 10).await.unwrap();
    assert_eq!(resent.len(), 1, "the resend goes out as soon as the attempt is recorded");
    assert!(resent[0].manual);
    assert_eq!(resent[0].attempts, 1);
}

async fn the_inquiry_fault_is_taken_once(store: Arc<dyn Store>) {
    let (_, terms) = paid_ready(&*store, "PR-FAULT", 9903).await;
    let fault = SandboxFault::InquiryUnknown(terms.id.clone());
    assert!(store.take_sandbox_fault(&fault, at(10)).await.unwrap());
    assert!(!store.take_sandbox_fault(&fault, at(11)).await.unwrap());
    let refund =
        SandboxFault::RefundUnknown(terms.owner.clone(), RefundRequestId::parse(terms.id.as_str()).unwrap());
    assert!(
        store.take_sandbox_fault(&refund, at(12)).await.unwrap(),
        "each fault happens once for its own key"
    );
    let pay = SandboxFault::PayUnknown(terms.owner.clone(), terms.request_id.clone());
    assert!(store.take_sandbox_fault(&pay, at(13)).await.unwrap(), "a pay fault has a key of its own");
    assert!(!store.take_sandbox_fault(&pay, at(14)).await.unwrap());
}

fn refund_policy() -> RefundPolicy {
    RefundPolicy { window: SignedDuration::from_hours(24 * 365), multiple_allowed: true }
}

/// A refund of `amount` of `payment`, requested at `now` and completed at once.
fn refund_of(payment: &PaymentTerms, request_id: &str, amount: Money, now: Timestamp) -> NewRefund {
    let unique = format!("{}-{request_id}", payment.owner.as_str());
    NewRefund {
        terms: RefundTerms {
            id: RefundId::parse(&format!("R-{unique}")).expect("refund id"),
            owner: payment.owner.clone(),
            request_id: RefundRequestId::parse(request_id).expect("refund request id"),
            payment_id: payment.id.clone(),
            amount,
            reference_refund_id: Some(format!("REF-{request_id}")),
            reason: Some("returned goods".into()),
            notify_url: Some("https://merchant.example/refunds".into()),
            async_requested: false,
            created_at: now,
            // Kept and read back like every term (refunds compare their terms whole).
            agent: Some(client("ISV-REFUNDS")),
        },
        policy: refund_policy(),
        completion: RefundCompletion::Now,
    }
}

async fn paid_by(
    store: &dyn Store,
    request_id: &str,
    amount_minor: i64,
    payer: &PayerId,
) -> (ClientId, PaymentTerms) {
    let (owner, terms) = paid_ready(store, request_id, amount_minor).await;
    let settled = store.settle_payment(&settlement(&terms, payer, at(100))).await.unwrap();
    assert!(matches!(settled, SettlePayment::Paid(_)), "{settled:?}");
    (owner, terms)
}

fn created(outcome: CreateRefund) -> Refund {
    match outcome {
        CreateRefund::Created(refund) => refund,
        other => panic!("expected a new refund, got {other:?}"),
    }
}

async fn refunds_are_idempotent_and_bounded_by_the_payment(store: Arc<dyn Store>) {
    let payer = payer_with(&*store, "PAYER-R", usd(2000)).await;
    let (owner, terms) = paid_by(&*store, "PR-REFUND", 1250, &payer).await;
    let usd_ = usd(0).currency();

    let asked = refund_of(&terms, "RR-1", usd(500), at(200));
    let first = created(store.create_refund(&asked).await.unwrap());
    assert_eq!(first.terms, asked.terms, "every term is kept, the ISV that asked included");
    assert_eq!(first.state, RefundState::Success { refunded_at: at(200) });
    assert_eq!(first.returned, usd(500));
    assert_eq!(wallet(&*store, &payer, usd_).await, usd(750 + 500), "the payer has the refund");
    assert_eq!(pending(&*store, &owner, usd_).await, usd(750), "the merchant gave it");
    let notifications = store.notifications(first.terms.id.as_str()).await.unwrap();
    assert_eq!(notifications.len(), 1, "the refund is notified to its URL");
    assert_eq!(notifications[0].0.kind, NotificationKind::RefundResult);
    assert_eq!(notifications[0].0.url, "https://merchant.example/refunds");

    let replay = store.create_refund(&refund_of(&terms, "RR-1", usd(500), at(300))).await.unwrap();
    assert_eq!(replay, CreateRefund::Existing(first.clone()), "a replay finds the refund, unchanged");
    assert_eq!(wallet(&*store, &payer, usd_).await, usd(1250), "and refunds nothing twice");

    let rest = created(store.create_refund(&refund_of(&terms, "RR-2", usd(750), at(300))).await.unwrap());
    let excess = store.create_refund(&refund_of(&terms, "RR-3", usd(1), at(400))).await.unwrap();
    assert_eq!(excess, CreateRefund::Refused(RefundRefusal::AmountExceeded { refundable: usd(0) }));
    assert_eq!(
        store
            .refund(&owner, &RefundLookup::ByRequestId(RefundRequestId::parse("RR-3").unwrap()))
            .await
            .unwrap(),
        None,
        "a refused refund is not stored"
    );
    assert_eq!(store.refunds_of_payment(&owner, &terms.id).await.unwrap(), vec![first.clone(), rest.clone()]);
    assert_eq!(
        store.refund(&owner, &RefundLookup::ById(rest.terms.id.clone())).await.unwrap(),
        Some(rest.clone())
    );
    let by_request = RefundLookup::ByRequestId(first.terms.request_id.clone());
    assert_eq!(store.refund(&owner, &by_request).await.unwrap(), Some(first));
    let stranger = merchant(&*store, "MALLORY").await;
    assert_eq!(
        store.refund(&stranger, &by_request).await.unwrap(),
        None,
        "refunds are private to their owner"
    );
    assert!(store.refunds_of_payment(&stranger, &terms.id).await.unwrap().is_empty());
    let mut foreign = refund_of(&terms, "RR-4", usd(1), at(400));
    foreign.terms.owner = stranger;
    assert_eq!(store.create_refund(&foreign).await.unwrap(), CreateRefund::PaymentNotFound);

    let lookup = PaymentLookup::ById(terms.id.clone());
    let cancel = store.cancel_payment(&owner, &lookup, &CancelWindow::default(), at(500)).await.unwrap();
    assert!(matches!(cancel, CancelPayment::Refused(_, CancelRefusal::Refunded)), "{cancel:?}");
    assert_eq!(wallet(&*store, &payer, usd_).await, usd(2000), "the payer got all of it back, once");

    let (_, unpaid) = paid_ready(&*store, "PR-UNPAID", 100).await;
    let refused = store.create_refund(&refund_of(&unpaid, "RR-UNPAID", usd(100), at(200))).await.unwrap();
    assert_eq!(refused, CreateRefund::Refused(RefundRefusal::NotPaid));

    let (_, once) = paid_by(&*store, "PR-ONCE", 1000, &payer).await;
    let mut single = refund_of(&once, "RR-ONCE-1", usd(100), at(200));
    single.policy.multiple_allowed = false;
    created(store.create_refund(&single).await.unwrap());
    let mut second = refund_of(&once, "RR-ONCE-2", usd(100), at(200));
    second.policy.multiple_allowed = false;
    assert_eq!(
        store.create_refund(&second).await.unwrap(),
        CreateRefund::Refused(RefundRefusal::MultipleNotSupported)
    );
    let mut late = refund_of(&once, "RR-LATE", usd(100), at(100) + SignedDuration::from_hours(24 * 366));
    late.policy = refund_policy();
    assert_eq!(
        store.create_refund(&late).await.unwrap(),
        CreateRefund::Refused(RefundRefusal::WindowExceeded)
    );
    assert_sound(&*store).await;
}

async fn refunds_across_currencies_return_the_charge_exactly(store: Arc<dyn Store>) {
    let (owner, terms) = paid_ready(&*store, "PR-FX-REFUND", 1250).await;
    let payer = payer_with(&*store, "PAYER-SGD", sgd(5000)).await;
    let rate = Rate::parse("USD/SGD", "1.3450").unwrap();
    let charge =
        Charge::for_payment(payer.clone(), terms.amount, sgd(0).currency(), Some(rate), at(100)).unwrap();
    store.settle_payment(&Settlement { charge, ..settlement(&terms, &payer, at(100)) }).await.unwrap();
    assert_eq!(wallet(&*store, &payer, sgd(0).currency()).await, sgd(5000 - 1682));
    for (n, part) in [417, 417, 416].into_iter().enumerate() {
        created(
            store.create_refund(&refund_of(&terms, &format!("RR-FX-{n}"), usd(part), at(200))).await.unwrap(),
        );
    }
    assert_eq!(wallet(&*store, &payer, sgd(0).currency()).await, sgd(5000), "every cent charged came back");
    assert_eq!(pending(&*store, &owner, usd(0).currency()).await, usd(0));
    assert_sound(&*store).await;
}

async fn asynchronous_refunds_complete_when_due(store: Arc<dyn Store>) {
    let payer = payer_with(&*store, "PAYER-ASYNC", usd(1000)).await;
    let (owner, terms) = paid_by(&*store, "PR-ASYNC", 1000, &payer).await;
    let usd_ = usd(0).currency();
    let mut later = refund_of(&terms, "RR-ASYNC", usd(600), at(200));
    later.completion = RefundCompletion::SucceedsAt(at(260));
    let processing = created(store.create_refund(&later).await.unwrap());
    assert_eq!(processing.state, RefundState::Processing { completes_at: at(260) });
    assert_eq!(wallet(&*store, &payer, usd_).await, usd(0), "nothing moves before the wallet completes it");
    assert!(store.notifications(processing.terms.id.as_str()).await.unwrap().is_empty());
    let over = store.create_refund(&refund_of(&terms, "RR-OVER", usd(401), at(210))).await.unwrap();
    assert_eq!(
        over,
        CreateRefund::Refused(RefundRefusal::AmountExceeded { refundable: usd(400) }),
        "a processing refund counts"
    );
    let lookup = PaymentLookup::ById(terms.id.clone());
    let cancel = store.cancel_payment(&owner, &lookup, &CancelWindow::default(), at(210)).await.unwrap();
    assert!(matches!(cancel, CancelPayment::Refused(_, CancelRefusal::Refunded)), "{cancel:?}");

    let mut doomed = refund_of(&terms, "RR-DOOMED", usd(400), at(220));
    doomed.completion = RefundCompletion::FailsAt(at(250));
    let doomed = created(store.create_refund(&doomed).await.unwrap());

    assert!(store.complete_refunds(at(249), 10).await.unwrap().is_empty(), "nothing is due yet");
    let failed = store.complete_refunds(at(250), 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].state, RefundState::Fail { failed_at: at(250) });
    assert_eq!(
        store.refund(&owner, &RefundLookup::ById(doomed.terms.id.clone())).await.unwrap(),
        Some(failed[0].clone())
    );
    assert_eq!(wallet(&*store, &payer, usd_).await, usd(0), "a failed refund moves nothing");
    let failure = &store.notifications(doomed.terms.id.as_str()).await.unwrap()[0].0;
    assert_eq!((failure.event_status.as_str(), failure.event_code.as_str()), ("FAIL", "PROCESS_FAIL"));

    let done = store.complete_refunds(at(300), 10).await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].state, RefundState::Success { refunded_at: at(300) });
    assert_eq!(wallet(&*store, &payer, usd_).await, usd(600));
    assert_eq!(pending(&*store, &owner, usd_).await, usd(400));
    assert_eq!(store.notifications(processing.terms.id.as_str()).await.unwrap().len(), 1);
    assert!(store.complete_refunds(at(400), 10).await.unwrap().is_empty(), "each completes once");
    created(store.create_refund(&refund_of(&terms, "RR-REST", usd(400), at(400))).await.unwrap());
    assert_eq!(wallet(&*store, &payer, usd_).await, usd(1000), "what failed is refundable again");
    assert_sound(&*store).await;
}

async fn concurrent_refunds_never_exceed_the_payment(store: Arc<dyn Store>) {
    let payer = payer_with(&*store, "PAYER-RUSH", usd(1250)).await;
    let (owner, terms) = paid_by(&*store, "PR-RUSH", 1250, &payer).await;
    let mut racers = Vec::new();
    for n in 0..50 {
        let store = store.clone();
        let refund = refund_of(&terms, &format!("RR-RUSH-{n}"), usd(100), at(200));
        racers.push(tokio::spawn(async move { store.create_refund(&refund).await.unwrap() }));
    }
    let mut refunded = 0;
    for racer in racers {
        match racer.await.unwrap() {
            CreateRefund::Created(_) => refunded += 1,
            CreateRefund::Refused(RefundRefusal::AmountExceeded { .. }) => {}
            other => panic!("a racer saw {other:?}"),
        }
    }
    assert_eq!(refunded, 12, "exactly as many refunds as fit in the payment");
    assert_eq!(pending(&*store, &owner, usd(0).currency()).await, usd(50));
    assert_eq!(wallet(&*store, &payer, usd(0).currency()).await, usd(1200));
    assert_sound(&*store).await;
}

async fn scoped_keys_and_revocation(store: Arc<dyn Store>) {
    let alice = merchant(&*store, "ALICE").await;
    let integrator = NewKey {
        label: Some("Integrator: Acme POS".into()),
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
    let everything = NewKey { label: Some("Integrator: Full service".into()), ..key(4) };
    assert_eq!(store.add_participant_key(&alice, &everything).await.unwrap(), 4);
    let (_, default) = store.participant_with_key(&alice, None).await.unwrap().unwrap();
    assert_eq!(default.map(|key| key.key_version), Some(1), "an integrator's key is never the default");
    let (_, own) = store.participant_with_key(&alice, Some(4)).await.unwrap().unwrap();
    assert_eq!(own.map(|key| key.scopes), Some(Scopes::ALL));
}

async fn grants_hold_only_the_tokens_hash(store: Arc<dyn Store>) {
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
    let notice = Some(("https://isv.example/auth".to_owned(), Secret("the-token".to_owned())));
    store.create_grant(&NewGrant { grant: grant.clone(), notice }, at(5)).await.unwrap();
    let duplicate = store.create_grant(&NewGrant { grant: grant.clone(), notice: None }, at(5)).await;
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
    let notice = Some(("https://isv.example/auth".to_owned(), Secret("second-token".to_owned())));
    store.create_grant(&NewGrant { grant: pending, notice }, at(300)).await.unwrap();
    store.revoke_grant("G-2", at(301)).await.unwrap();
    let (stopped, _) = store.notifications("G-2").await.unwrap().remove(0);
    assert_eq!((stopped.status, stopped.secret), (DeliveryStatus::Failed, None));
    assert!(store.claim_notifications(at(400), lease, 10).await.unwrap().is_empty(), "never sent");
    assert_eq!(store.resend_notifications("G-2", at(401)).await.unwrap(), 0);
}

async fn the_audit_trail_is_kept_per_participant(store: Arc<dyn Store>) {
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

async fn registrations_are_idempotent_and_one_per_store(store: Arc<dyn Store>) {
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
    let reason = Decision::Reject { reason: "incomplete".into() };
    store.decide_registration(Some(&acquirer), &rejected.terms.id, &reason, at(20)).await.unwrap();
    registered(store.create_registration(&registration_terms(&acquirer, "REG-5", "M2", "S1")).await.unwrap());
}

async fn concurrent_duplicate_registrations_create_one(store: Arc<dyn Store>) {
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

async fn registrations_are_decided_once_and_notified(store: Arc<dyn Store>) {
    let acquirer = merchant(&*store, "ACQ-D").await;
    let quiet = registration_terms(&acquirer, "REG-QUIET", "M-Q", "S1");
    let quiet = RegistrationTerms { notify_url: None, ..quiet };
    let quiet = registered(store.create_registration(&quiet).await.unwrap());
    let loud = registered(
        store.create_registration(&registration_terms(&acquirer, "REG-LOUD", "M-L", "S1")).await.unwrap(),
    );
    let reject = Decision::Reject { reason: "the licence has expired".into() };
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
    assert_eq!((notification.event_status.as_str(), notification.event_at), ("REJECTED", at(5)));
    assert_eq!(notification.recipient, acquirer);
    assert!(
        store.notifications(quiet.terms.id.as_str()).await.unwrap().is_empty(),
        "no URL, no notification"
    );
    assert_eq!(store.resend_notifications(loud.terms.id.as_str(), at(7)).await.unwrap(), 1);
}

async fn due_registrations_are_decided_automatically(store: Arc<dyn Store>) {
    let acquirer = merchant(&*store, "ACQ-AUTO").await;
    let mut approve = registration_terms(&acquirer, "REG-AUTO-1", "M-A", "S1");
    approve.automatic = Some(AutomaticDecision { at: at(30), decision: Decision::Approve });
    let mut reject = registration_terms(&acquirer, "REG-AUTO-2", "REJECT-M", "S1");
    let reason = Decision::Reject { reason: "sandbox".into() };
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

/// Runs every check of failures inside a write's transaction, each on a new store from
/// `new_store` together with the faults installed in it
/// ([`SqlStore::with_statement_faults`](crate::sql::SqlStore::with_statement_faults)).
///
/// A statement fails after the ones before it in the same business write have run; the checks
/// then find nothing of that write (state, postings, balances, outbox rows) and the store
/// working on, the next write included.
pub async fn run_faults<F, Fut>(new_store: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn Store>, Arc<StatementFaults>)>,
{
    let (store, faults) = new_store().await;
    a_payment_that_fails_to_be_created_leaves_no_row(store, faults).await;
    let (store, faults) = new_store().await;
    failing_or_expiring_that_fails_midway_leaves_the_payment_processing(store, faults).await;
    let (store, faults) = new_store().await;
    a_settlement_that_fails_midway_leaves_nothing(store, faults).await;
    let (store, faults) = new_store().await;
    a_cross_currency_settlement_that_fails_midway_leaves_nothing(store, faults).await;
    let (store, faults) = new_store().await;
    a_refund_that_fails_midway_leaves_nothing(store, faults).await;
    let (store, faults) = new_store().await;
    a_reversal_that_fails_midway_leaves_nothing(store, faults).await;
    let (store, faults) = new_store().await;
    a_failing_completion_of_due_refunds_completes_none(store, faults).await;
    let (store, faults) = new_store().await;
    a_failing_write_takes_no_concurrent_write_down(store, faults).await;
}

/// What a failed write must leave as it was: the ledger and every balance of the accounts the
/// checks use, wallets' kept balances included.
#[derive(Debug, PartialEq)]
struct Books {
    check: crate::LedgerCheck,
    wallets: Vec<Money>,
    kept: Vec<Money>,
    pending: Vec<Money>,
    exchange: Vec<Money>,
    funding: Vec<Money>,
}

async fn books(store: &dyn Store, payer: &PayerId, owner: &ClientId) -> Books {
    let check = store.ledger_check().await.unwrap();
    assert!(check.is_sound(), "the ledger is sound: {check:?}");
    let mut kept = Vec::new();
    for code in ["USD", "SGD"] {
        kept.push(wallet(store, payer, Currency::parse(code).unwrap()).await);
    }
    Books {
        check,
        wallets: store.balances(&AccountOwner::Wallet(payer.clone())).await.unwrap(),
        kept,
        pending: store.balances(&AccountOwner::MerchantPending(owner.clone())).await.unwrap(),
        exchange: store.balances(&AccountOwner::Exchange(Environment::Live)).await.unwrap(),
        funding: store.balances(&AccountOwner::Funding(Environment::Live)).await.unwrap(),
    }
}

/// Asserts that the write failed because of the planned statement, and only of it.
fn failed_on_purpose<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    faults: &StatementFaults,
    fired: u64,
) {
    match result {
        Err(StoreError::Database(message)) => assert!(
            message.contains(crate::sql::INJECTED),
            "the write failed on the planned statement, not otherwise: {message}"
        ),
        other => panic!("the planned failure fails the write, but it gave {other:?}"),
    }
    assert_eq!(faults.fired(), fired, "the planned statement was reached and failed");
}

async fn a_payment_that_fails_to_be_created_leaves_no_row(
    store: Arc<dyn Store>,
    faults: Arc<StatementFaults>,
) {
    let owner = merchant(&*store, "ALICE").await;
    let terms = sample_terms(&owner, "PR-FAULT-CREATE", 1000);
    faults.fail_once("INSERT INTO payment", 0);
    failed_on_purpose(store.create_payment(&terms).await, &faults, 1);
    let lookup = PaymentLookup::ByRequestId(terms.request_id.clone());
    assert_eq!(store.payment(&owner, &lookup).await.unwrap(), None, "no payment row");
    assert_eq!(store.payment_by_code(&terms.code_token).await.unwrap(), None);
    let created = store.create_payment(&terms).await.unwrap();
    assert!(matches!(created, CreatePayment::Created(_)), "the request id is free again: {created:?}");
}

async fn failing_or_expiring_that_fails_midway_leaves_the_payment_processing(
    store: Arc<dyn Store>,
    faults: Arc<StatementFaults>,
) {
    let (owner, first) = paid_ready(&*store, "PR-FAULT-FAIL", 100).await;
    let (_, second) = paid_ready(&*store, "PR-FAULT-EXPIRE", 100).await;
    let processing = |terms: &PaymentTerms| {
        let (store, lookup) = (store.clone(), PaymentLookup::ById(terms.id.clone()));
        let owner = owner.clone();
        async move {
            let stored = store.payment(&owner, &lookup).await.unwrap().unwrap();
            stored.state == PaymentState::Processing
                && store.notifications(stored.terms.id.as_str()).await.unwrap().is_empty()
        }
    };
    faults.fail_once("INSERT INTO notification", 0);
    let failing = store.fail_payment(&first.code_token, FailReason::RiskReject, at(100)).await;
    failed_on_purpose(failing, &faults, 1);
    assert!(processing(&first).await, "failed after the payment's row, before its outbox row");
    // Both expire in one write; the second one's notification fails, and the first's goes too.
    faults.fail_once("INSERT INTO notification", 1);
    failed_on_purpose(store.expire_payments(at(1000), 10).await, &faults, 2);
    assert!(processing(&first).await && processing(&second).await, "neither expired");
    assert_eq!(store.expire_payments(at(1000), 10).await.unwrap().len(), 2, "the store works on");
    assert_eq!(store.notifications(second.id.as_str()).await.unwrap().len(), 1);
}

async fn a_settlement_that_fails_midway_leaves_nothing(store: Arc<dyn Store>, faults: Arc<StatementFaults>) {
    let payer = payer_with(&*store, "PAYER-FAULT", usd(2000)).await;
    let (owner, terms) = paid_ready(&*store, "PR-FAULT-SETTLE", 1250).await;
    let before = books(&*store, &payer, &owner).await;
    // In the order a settlement writes: its posting's wallet entry, the wallet's kept balance,
    // the merchant's entry, the payment's row, the notification's outbox row.
    let midway = [
        ("INSERT INTO entry", 0, "before the debit, after the posting's row"),
        ("UPDATE wallet_balance", 0, "after the debit, before the wallet's kept balance"),
        ("INSERT INTO entry", 1, "after the debit, before the credit"),
        ("UPDATE payment", 0, "after the posting, before the payment's row"),
        ("INSERT INTO notification", 0, "after the payment's row, before its outbox row"),
    ];
    for (n, (prefix, skip, when)) in (1..).zip(midway) {
        faults.fail_once(prefix, skip);
        failed_on_purpose(store.settle_payment(&settlement(&terms, &payer, at(100))).await, &faults, n);
        let stored = store.payment(&owner, &PaymentLookup::ById(terms.id.clone())).await.unwrap().unwrap();
        assert_eq!((stored.state, stored.charge), (PaymentState::Processing, None), "failed {when}");
        assert!(store.notifications(terms.id.as_str()).await.unwrap().is_empty(), "failed {when}");
        assert_eq!(books(&*store, &payer, &owner).await, before, "failed {when}: no money moved");
    }
    let paid = store.settle_payment(&settlement(&terms, &payer, at(100))).await.unwrap();
    assert!(matches!(paid, SettlePayment::Paid(_)), "the store works on: {paid:?}");
    assert_eq!(wallet(&*store, &payer, usd(0).currency()).await, usd(750));
    assert_eq!(pending(&*store, &owner, usd(0).currency()).await, usd(1250));
    assert_eq!(store.notifications(terms.id.as_str()).await.unwrap().len(), 1);
    assert_eq!(store.ledger_check().await.unwrap().postings, before.check.postings + 1);
    assert_sound(&*store).await;
}

async fn a_cross_currency_settlement_that_fails_midway_leaves_nothing(
    store: Arc<dyn Store>,
    faults: Arc<StatementFaults>,
) {
    let payer = payer_with(&*store, "PAYER-FAULT-SGD", sgd(1000)).await;
    let (owner, terms) = paid_ready(&*store, "PR-FAULT-FX", 1250).await;
    let rate = Rate::parse("USD/SGD", "1.3450").unwrap();
    let charge =
        Charge::for_payment(payer.clone(), terms.amount, sgd(0).currency(), Some(rate), at(100)).unwrap();
    // The wallet has too little: a sandbox top-up is written with the payment it makes possible.
    let settle =
        Settlement { charge, sandbox_top_up: Some(sgd(1000)), ..settlement(&terms, &payer, at(100)) };
    let before = books(&*store, &payer, &owner).await;
    let midway = [
        ("INSERT INTO posting", 1, "after the top-up, before the payment's posting"),
        ("INSERT INTO entry", 3, "after the payment's debit, before its credit"),
        (
            "INSERT INTO entry",
            5,
            "after the exchange took the payer's currency, before it gave the merchant's",
        ),
        ("INSERT INTO notification", 0, "after the payment's row, before its outbox row"),
    ];
    for (n, (prefix, skip, when)) in (1..).zip(midway) {
        faults.fail_once(prefix, skip);
        failed_on_purpose(store.settle_payment(&settle).await, &faults, n);
        let stored = store.payment(&owner, &PaymentLookup::ById(terms.id.clone())).await.unwrap().unwrap();
        assert_eq!((stored.state, stored.charge), (PaymentState::Processing, None), "failed {when}");
        assert_eq!(books(&*store, &payer, &owner).await, before, "failed {when}: no money moved");
    }
    let paid = store.settle_payment(&settle).await.unwrap();
    assert!(matches!(paid, SettlePayment::Paid(_)), "the store works on: {paid:?}");
    assert_eq!(wallet(&*store, &payer, sgd(0).currency()).await, sgd(2000 - 1682));
    assert_eq!(store.ledger_check().await.unwrap().postings, before.check.postings + 2);
    assert_sound(&*store).await;
}

async fn a_refund_that_fails_midway_leaves_nothing(store: Arc<dyn Store>, faults: Arc<StatementFaults>) {
    let payer = payer_with(&*store, "PAYER-FAULT-R", usd(2000)).await;
    let (owner, terms) = paid_by(&*store, "PR-FAULT-REFUND", 1250, &payer).await;
    let asked = refund_of(&terms, "RR-FAULT", usd(500), at(200));
    let before = books(&*store, &payer, &owner).await;
    // A refund writes its row, then its posting (the wallet's credit first, then the
    // merchant's debit), then its notification.
    let midway = [
        ("INSERT INTO posting", 0, "after the refund's row, before its posting"),
        ("UPDATE wallet_balance", 0, "after the wallet's entry, before its kept balance"),
        ("INSERT INTO entry", 1, "after the credit to the wallet, before the debit of the merchant"),
        ("INSERT INTO notification", 0, "after the posting, before the outbox row"),
    ];
    for (n, (prefix, skip, when)) in (1..).zip(midway) {
        faults.fail_once(prefix, skip);
        failed_on_purpose(store.create_refund(&asked).await, &faults, n);
        let lookup = RefundLookup::ByRequestId(asked.terms.request_id.clone());
        assert_eq!(store.refund(&owner, &lookup).await.unwrap(), None, "failed {when}: no refund row");
        assert!(store.refunds_of_payment(&owner, &terms.id).await.unwrap().is_empty(), "failed {when}");
        assert!(store.notifications(asked.terms.id.as_str()).await.unwrap().is_empty(), "failed {when}");
        assert_eq!(books(&*store, &payer, &owner).await, before, "failed {when}: no money moved");
    }
    let refund = created(store.create_refund(&asked).await.unwrap());
    assert_eq!(refund.returned, usd(500), "the store works on");
    assert_eq!(wallet(&*store, &payer, usd(0).currency()).await, usd(750 + 500));
    assert_eq!(pending(&*store, &owner, usd(0).currency()).await, usd(750));
    assert_eq!(store.notifications(asked.terms.id.as_str()).await.unwrap().len(), 1);
    let replay = store.create_refund(&asked).await.unwrap();
    assert_eq!(replay, CreateRefund::Existing(refund), "and the refund exists once");
    assert_sound(&*store).await;
}

async fn a_reversal_that_fails_midway_leaves_nothing(store: Arc<dyn Store>, faults: Arc<StatementFaults>) {
    let payer = payer_with(&*store, "PAYER-FAULT-C", usd(2000)).await;
    let (owner, terms) = paid_by(&*store, "PR-FAULT-CANCEL", 1250, &payer).await;
    let lookup = PaymentLookup::ById(terms.id.clone());
    let before = books(&*store, &payer, &owner).await;
    let midway = [
        ("INSERT INTO entry", 1, "after one side of the reversal, before the other"),
        ("UPDATE payment", 0, "after the reversal, before the payment's row"),
    ];
    for (n, (prefix, skip, when)) in (1..).zip(midway) {
        faults.fail_once(prefix, skip);
        let cancel = store.cancel_payment(&owner, &lookup, &CancelWindow::default(), at(200)).await;
        failed_on_purpose(cancel, &faults, n);
        let stored = store.payment(&owner, &lookup).await.unwrap().unwrap();
        assert_eq!(stored.state, PaymentState::Success { paid_at: at(100) }, "failed {when}: still paid");
        assert_eq!(books(&*store, &payer, &owner).await, before, "failed {when}: no money moved");
    }
    let cancelled = store.cancel_payment(&owner, &lookup, &CancelWindow::default(), at(200)).await.unwrap();
    assert!(matches!(cancelled, CancelPayment::Done(_)), "the store works on: {cancelled:?}");
    assert_eq!(wallet(&*store, &payer, usd(0).currency()).await, usd(2000));
    assert_eq!(pending(&*store, &owner, usd(0).currency()).await, usd(0));
    assert_sound(&*store).await;
}

async fn a_failing_completion_of_due_refunds_completes_none(
    store: Arc<dyn Store>,
    faults: Arc<StatementFaults>,
) {
    let payer = payer_with(&*store, "PAYER-FAULT-A", usd(1000)).await;
    let (owner, terms) = paid_by(&*store, "PR-FAULT-ASYNC", 1000, &payer).await;
    let mut ids = Vec::new();
    for (n, minor) in [300, 200].into_iter().enumerate() {
        let mut later = refund_of(&terms, &format!("RR-FAULT-ASYNC-{n}"), usd(minor), at(200));
        later.completion = RefundCompletion::SucceedsAt(at(260));
        ids.push(created(store.create_refund(&later).await.unwrap()).terms.id);
    }
    let before = books(&*store, &payer, &owner).await;
    // The second refund's notification fails: the first one's completion goes with it.
    faults.fail_once("INSERT INTO notification", 1);
    failed_on_purpose(store.complete_refunds(at(300), 10).await, &faults, 1);
    for id in &ids {
        let refund = store.refund(&owner, &RefundLookup::ById(id.clone())).await.unwrap().unwrap();
        assert_eq!(refund.state, RefundState::Processing { completes_at: at(260) }, "{id} is still due");
        assert!(store.notifications(id.as_str()).await.unwrap().is_empty());
    }
    assert_eq!(books(&*store, &payer, &owner).await, before, "no money moved");
    let completed = store.complete_refunds(at(300), 10).await.unwrap();
    assert_eq!(completed.len(), 2, "the next run completes both");
    assert_eq!(wallet(&*store, &payer, usd(0).currency()).await, usd(500));
    assert_sound(&*store).await;
}

/// Writes queued beside a failing one (on SQLite, committed in the same transaction) are not
/// taken down with it, and nothing of the failing one is committed with them.
async fn a_failing_write_takes_no_concurrent_write_down(store: Arc<dyn Store>, faults: Arc<StatementFaults>) {
    let payer = payer_with(&*store, "PAYER-FAULT-N", usd(2000)).await;
    let neighbour = payer_with(&*store, "PAYER-NEIGHBOUR", usd(0)).await;
    let (owner, terms) = paid_ready(&*store, "PR-FAULT-N", 1250).await;
    let before = books(&*store, &payer, &owner).await;
    // Neither top-ups nor new payments write notifications: only the settlement reaches the
    // planned statement, after its posting and its payment's row.
    faults.fail_once("INSERT INTO notification", 0);
    let mut writes = Vec::new();
    for n in 0..24 {
        let writer = store.clone();
        let (neighbour, owner) = (neighbour.clone(), owner.clone());
        writes.push(tokio::spawn(async move {
            if n % 2 == 0 {
                writer.top_up(&neighbour, usd(1), at(100)).await.map(drop)
            } else {
                let terms = sample_terms(&owner, &format!("PR-NEIGHBOUR-{n}"), 100);
                writer.create_payment(&terms).await.map(drop)
            }
        }));
        if n == 12 {
            let (store, settle) = (store.clone(), settlement(&terms, &payer, at(100)));
            writes.push(tokio::spawn(async move { store.settle_payment(&settle).await.map(drop) }));
        }
    }
    let mut results = Vec::new();
    for write in writes {
        results.push(write.await.unwrap());
    }
    let failed: Vec<_> = results.iter().filter(|result| result.is_err()).collect();
    assert_eq!(failed.len(), 1, "only the settlement failed: {results:?}");
    assert_eq!(faults.fired(), 1);
    assert_eq!(
        wallet(&*store, &neighbour, usd(0).currency()).await,
        usd(12),
        "every top-up beside it stands"
    );
    for n in (1..24).step_by(2) {
        let lookup =
            PaymentLookup::ByRequestId(PaymentRequestId::parse(&format!("PR-NEIGHBOUR-{n}")).unwrap());
        assert!(store.payment(&owner, &lookup).await.unwrap().is_some(), "payment {n} beside it stands");
    }
    let stored = store.payment(&owner, &PaymentLookup::ById(terms.id.clone())).await.unwrap().unwrap();
    assert_eq!(stored.state, PaymentState::Processing, "nothing of the settlement was committed");
    assert!(store.notifications(terms.id.as_str()).await.unwrap().is_empty());
    let after = books(&*store, &payer, &owner).await;
    assert_eq!(after.check.postings, before.check.postings + 12, "the top-ups' postings only");
    assert_eq!(
        (&after.wallets, &after.kept, &after.pending),
        (&before.wallets, &before.kept, &before.pending)
    );
    let paid = store.settle_payment(&settlement(&terms, &payer, at(100))).await.unwrap();
    assert!(matches!(paid, SettlePayment::Paid(_)), "the store works on: {paid:?}");
    assert_sound(&*store).await;
}

/// The PostgreSQL server the tests run against: `OCPAY_TEST_DATABASE_URL`, or the local server
/// on 127.0.0.1:5432. A test that needs it is `#[ignore]`d (so that a run without it shows it
/// as skipped) and asks for it only when run on purpose: then a missing server fails it.
pub fn postgres_test_url() -> String {
    let url = std::env::var("OCPAY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let reachable = {
        let url = url.clone();
        // The synchronous client runs its own runtime: keep it off the caller's.
        std::thread::spawn(move || postgres::Client::connect(&url, postgres::NoTls).map(drop))
            .join()
            .expect("the connection thread")
    };
    if let Err(error) = reachable {
        panic!("this test needs PostgreSQL at {url} (set OCPAY_TEST_DATABASE_URL): {error}");
    }
    url
}

/// A new, empty schema in the database at `url`, and a URL whose connections use it: each test
/// gets a database of its own without the cost of creating one. Schemas that earlier runs left
/// behind for over an hour are dropped.
pub fn postgres_scratch_schema(url: &str) -> String {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect to PostgreSQL");
        let now = jiff::Timestamp::now().as_second();
        let stale: Vec<String> = client
            .query("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'ocpay\\_t\\_%'", &[])
            .expect("list the scratch schemas")
            .iter()
            .map(|row| row.get::<_, String>(0))
            .filter(|name| {
                name.split('_')
                    .nth(2)
                    .and_then(|at| at.parse::<i64>().ok())
                    .is_some_and(|at| at < now - 3_600)
            })
            .collect();
        for name in stale {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"));
        }
        let schema = format!("ocpay_t_{now}_{}", random_suffix());
        client.batch_execute(&format!("CREATE SCHEMA \"{schema}\"")).expect("create a scratch schema");
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options=-csearch_path%3D{schema}")
    })
    .join()
    .expect("the schema thread")
}

fn random_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id()) % 1_000_000_000
}
