//! Payments: idempotent creation, privacy, cancel, settlement, failure, expiry and races.

use std::sync::Arc;

use jiff::SignedDuration;
use ocpay_core::fx::Rate;
use ocpay_core::ids::{CodeToken, PaymentId, RefundRequestId};
use ocpay_core::payer::PayerId;
use ocpay_core::payment::{CancelWindow, Charge, FailReason, NotPayable, PaymentState, PaymentStatus, Quote};

use crate::{
    CancelPayment, CreatePayment, DeliveryStatus, FailPayment, NotificationEvent, PaymentLookup,
    SandboxFault, SettlePayment, Settlement, Store,
};

use super::{
    assert_sound, at, merchant, paid_ready, payer_with, pending, sample_terms, settlement, sgd, usd, wallet,
};

pub async fn payment_idempotency(store: Arc<dyn Store>) {
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

pub async fn concurrent_duplicates_create_one_payment(store: Arc<dyn Store>) {
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

pub async fn payments_are_private_to_their_owner(store: Arc<dyn Store>) {
    let alice = merchant(&*store, "ALICE").await;
    let bob = merchant(&*store, "BOB").await;
    let terms = sample_terms(&alice, "PR-SAME", 700);
    store.create_payment(&terms).await.unwrap();
    let by_id = PaymentLookup::ById(terms.id.clone());
    let by_request = PaymentLookup::ByRequestId(terms.request_id.clone());
    assert!(store.payment(&bob, &by_id).await.unwrap().is_none(), "bob cannot read alice's payment by id");
    assert!(store.payment(&bob, &by_request).await.unwrap().is_none(), "nor by request id");
    let missing = PaymentId::parse("P-MISSING").unwrap();
    let wanted =
        [(bob.clone(), terms.id.clone()), (alice.clone(), terms.id.clone()), (alice.clone(), missing)];
    let batch = store.payments_by_id(&wanted).await.unwrap();
    let found: Vec<_> = batch.iter().map(|payment| payment.as_ref().map(|payment| &payment.terms)).collect();
    assert_eq!(found, [None, Some(&terms), None], "a batch read finds only each owner's own, in order");
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

pub async fn cancel_follows_core(store: Arc<dyn Store>) {
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

pub async fn paying_moves_money_and_queues_one_notification(store: Arc<dyn Store>) {
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
    assert_eq!(notification.event, NotificationEvent::Paid);
    assert_eq!(notification.status, DeliveryStatus::Pending);
    assert_eq!(notification.next_attempt_at, Some(at(100)), "the first attempt is due at once");
    assert!(attempts.is_empty());
    assert_eq!(notification.url, terms.notify_url);
    let again = store.settle_payment(&settlement(&terms, &payer, at(101))).await.unwrap();
    assert!(matches!(again, SettlePayment::NotPayable(_, NotPayable::AlreadyPaid)), "{again:?}");
    assert_eq!(wallet(&*store, &payer, currency).await, usd(750), "paying twice charges once");
    assert_sound(&*store).await;
}

pub async fn paying_across_currencies_balances_each_currency(store: Arc<dyn Store>) {
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

pub async fn only_payable_payments_are_paid(store: Arc<dyn Store>) {
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

pub async fn failing_and_expiring_are_final_and_notified(store: Arc<dyn Store>) {
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
        assert!(matches!(notifications[0].0.event, NotificationEvent::PaymentFailed(_)), "{notifications:?}");
    }
    assert_eq!(
        store.notifications(second.id.as_str()).await.unwrap()[0].0.event,
        NotificationEvent::PaymentFailed(FailReason::OrderIsClosed)
    );
}

pub async fn cancelling_a_paid_payment_reverses_it(store: Arc<dyn Store>) {
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

pub async fn racing_payers_and_cancels_have_one_winner(store: Arc<dyn Store>) {
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

pub async fn the_inquiry_fault_is_taken_once(store: Arc<dyn Store>) {
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
