//! History in bulk: a preloaded store keeps the ledger's rules, and its rows read back as the
//! business writes' rows do.

use std::sync::Arc;

use jiff::SignedDuration;
use ocpay_core::fees::FeeSchedule;
use ocpay_core::ids::PaymentId;
use ocpay_core::payment::{FailReason, PaymentState};

use super::{assert_sound, at, merchant, pending, usd};
use crate::settlement::SettlementTerms;
use crate::{PaymentLookup, PreloadCall, PreloadPlan, PreloadRows, Store};

fn call(api: &str) -> PreloadCall {
    PreloadCall {
        api: api.into(),
        path: format!("/ams/sandbox/api/v1/payments/{api}"),
        request_headers: "{}".into(),
        request_body: r#"{"paymentRequestId":"{request}"}"#.into(),
        response_headers: "{}".into(),
        response_body: r#"{"paymentId":"{payment}"}"#.into(),
    }
}

pub async fn a_preloaded_history_keeps_the_ledger_and_reads_back(store: Arc<dyn Store>) {
    let owner = merchant(&*store, "SANDBOX_PRELOAD").await;
    // 2.5 % of 12.50 is 31.25 cents, 31; its tax of 10 % is 3.
    let schedule = FeeSchedule::new(250, Default::default(), 1_000).unwrap();
    let terms = SettlementTerms { fees: Some(schedule), settlement_currency: None };
    store.set_settlement_terms(&owner, &terms).await.unwrap();
    let plan = PreloadPlan {
        owner: owner.clone(),
        key_version: 1,
        amount: usd(1_250),
        notify_url: "https://merchant.example/notify".into(),
        from: at(0),
        to: at(100_000),
        total: 100,
        prefix: "pl-".into(),
        pay: call("pay"),
        refund: call("refund"),
    };
    let mut rows = PreloadRows::new();
    for (first, count) in [(0, 37), (37, 63)] {
        for (table, written) in store.preload_history(&plan, first, count).await.unwrap() {
            *rows.entry(table).or_insert(0) += written;
        }
    }
    let expected = [
        ("payment", 100),
        ("refund", 10),
        ("payer", 2),
        ("wallet_balance", 2),
        // Two top-ups; 95 payments with their fees; 10 refunds with their fees' return.
        ("posting", 2 + 95 * 2 + 10 * 2),
        // Two entries a top-up, payment and refund; three a fee and its return.
        ("entry", 2 * 2 + 95 * (2 + 3) + 10 * (2 + 3)),
        ("settlement_queue", 95 + 10),
        ("notification", 100 + 10),
        ("delivery_attempt", 110),
        ("audit_event", 110),
        ("api_log", 110),
    ];
    assert_eq!(rows, expected.iter().map(|(table, count)| ((*table).to_owned(), *count)).collect());
    assert_eq!(PreloadPlan::paid_in(0, 100), 95);
    assert_eq!(PreloadPlan::refunded_in(37, 63), 6);
    assert_sound(&*store).await;
    // 85 payments kept, each less its fee and tax.
    assert_eq!(pending(&*store, &owner, usd(0).currency()).await, usd(85 * (1_250 - 34)));

    let payment = |id: &str| {
        let store = store.clone();
        let owner = owner.clone();
        let id = PaymentId::parse(id).unwrap();
        async move { store.payment(&owner, &PaymentLookup::ById(id)).await.unwrap().expect("preloaded") }
    };
    let paid = payment("pl-P40").await;
    assert!(matches!(paid.state, PaymentState::Success { .. }), "{paid:?}");
    assert!(paid.charge.is_some());
    let failed = payment("pl-P39").await;
    assert!(
        matches!(failed.state, PaymentState::Fail { reason: FailReason::OrderIsClosed, .. }),
        "{failed:?}"
    );
    let refunds = store.refunds_of_payment(&owner, &paid.terms.id).await.unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].returned, usd(1_250));
    let notified = store.notifications("pl-P40").await.unwrap();
    assert_eq!(notified.len(), 1);
    assert_eq!(notified[0].1.len(), 1, "one attempt");

    // The drain benchmark's backlog: every payment result due again, its attempts forgotten,
    // and the refunds' results left as they were.
    assert_eq!(
        store.preload_due_notifications(&owner, "other-", at(200_000)).await.unwrap(),
        0,
        "only the history with the prefix given"
    );
    assert_eq!(store.preload_due_notifications(&owner, "pl-", at(200_000)).await.unwrap(), 100);
    let (again, attempts) = &store.notifications("pl-P40").await.unwrap()[0];
    assert!(again.delivered_at.is_none() && attempts.is_empty(), "{again:?} {attempts:?}");
    let claimed = store.claim_notifications(at(200_000), SignedDuration::from_secs(60), 1_000).await.unwrap();
    assert_eq!(claimed.len(), 100, "every payment result is due, and nothing else");
    assert!(claimed.iter().all(|notification| notification.subject_id.starts_with("pl-P")));
}
