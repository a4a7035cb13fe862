//! Refunds: idempotent, bounded by the payment, across currencies, asynchronous.

use std::sync::Arc;

use jiff::SignedDuration;
use ocpay_core::fx::Rate;
use ocpay_core::ids::RefundRequestId;
use ocpay_core::payment::{CancelRefusal, CancelWindow, Charge};
use ocpay_core::refund::{RefundRefusal, RefundState};

use crate::{
    CancelPayment, CreateRefund, NotificationEvent, NotificationKind, PaymentLookup, RefundCompletion,
    RefundLookup, Settlement, Store,
};

use super::{
    assert_sound, at, created, merchant, paid_by, paid_ready, payer_with, pending, refund_of, refund_policy,
    settlement, sgd, usd, wallet,
};

pub async fn refunds_are_idempotent_and_bounded_by_the_payment(store: Arc<dyn Store>) {
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

pub async fn refunds_across_currencies_return_the_charge_exactly(store: Arc<dyn Store>) {
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

pub async fn asynchronous_refunds_complete_when_due(store: Arc<dyn Store>) {
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
    assert_eq!(failure.event, NotificationEvent::RefundFailed);

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

pub async fn concurrent_refunds_never_exceed_the_payment(store: Arc<dyn Store>) {
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
