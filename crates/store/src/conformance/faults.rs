//! Writes that fail inside their transaction leave nothing of themselves, and the store works on.
//!
//! Each check gets its store with [`StatementFaults`] installed
//! ([`SqlStore::with_statement_faults`](crate::sql::SqlStore::with_statement_faults)). A
//! statement fails after the ones before it in the same business write have run; the checks
//! then find nothing of that write (state, postings, balances, outbox rows) and the store
//! working on, the next write included.

use std::sync::Arc;

use ocpay_core::fx::Rate;
use ocpay_core::ids::{ClientId, PaymentRequestId};
use ocpay_core::ledger::AccountOwner;
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::Environment;
use ocpay_core::payer::PayerId;
use ocpay_core::payment::{CancelWindow, Charge, FailReason, PaymentState, PaymentTerms};
use ocpay_core::refund::RefundState;

use crate::sql::{INJECTED, StatementFaults};
use crate::{
    AfterAttempt, Attempt, AttemptOutcome, CancelPayment, CreatePayment, CreateRefund, DeliveryStatus,
    LedgerCheck, PaymentLookup, RefundCompletion, RefundLookup, SettlePayment, Settlement, Store, StoreError,
};

use super::{
    assert_sound, at, attempt, created, merchant, paid_by, paid_ready, payer_with, pending, refund_of,
    sample_terms, settlement, sgd, usd, wallet,
};

/// What a failed write must leave as it was: the ledger and every balance of the accounts the
/// checks use, wallets' kept balances included.
#[derive(Debug, PartialEq)]
struct Books {
    check: LedgerCheck,
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
            message.contains(INJECTED),
            "the write failed on the planned statement, not otherwise: {message}"
        ),
        other => panic!("the planned failure fails the write, but it gave {other:?}"),
    }
    assert_eq!(faults.fired(), fired, "the planned statement was reached and failed");
}

pub async fn a_payment_that_fails_to_be_created_leaves_no_row(
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

pub async fn failing_or_expiring_that_fails_midway_leaves_the_payment_processing(
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

pub async fn a_settlement_that_fails_midway_leaves_nothing(
    store: Arc<dyn Store>,
    faults: Arc<StatementFaults>,
) {
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

pub async fn a_settlement_chunk_that_fails_midway_leaves_nothing(
    store: Arc<dyn Store>,
    faults: Arc<StatementFaults>,
) {
    let payer = payer_with(&*store, "PAYER-FAULT-CHUNK", usd(3000)).await;
    let mut paid = Vec::new();
    for n in 0..3 {
        let (_, terms) = paid_ready(&*store, &format!("PR-FAULT-CHUNK-{n}"), 500).await;
        store.settle_payment(&settlement(&terms, &payer, at(20))).await.unwrap();
        paid.push(terms);
    }
    store.create_refund(&refund_of(&paid[0], "FAULT-CHUNK-R", usd(100), at(30))).await.unwrap();
    let owner = paid[0].owner.clone();
    let chunk = super::settlement::chunk(&owner, 10);
    let queued = || {
        let (store, owner) = (store.clone(), owner.clone());
        async move {
            let counts = store.settlement_counts(Some(&owner), at(100)).await.unwrap();
            (counts.completed, counts.queued, counts.itemized)
        }
    };
    let before = books(&*store, &payer, &owner).await;
    assert_eq!(queued().await, (4, 4, 0));
    // In the order a chunk writes: its batch, each transaction's item and leaving the queue,
    // the posting and its entries, the batch's totals.
    let midway = [
        ("INSERT INTO settlement_item", 2, "after two items, before the third"),
        ("DELETE FROM settlement_queue", 3, "after the last item, before it leaves the queue"),
        ("INSERT INTO posting", 0, "after the items, before the posting"),
        ("INSERT INTO entry", 1, "after the posting's first entry"),
        ("UPDATE settlement_batch", 0, "after the posting, before the batch's totals"),
    ];
    for (n, (prefix, skip, when)) in (1..).zip(midway) {
        faults.fail_once(prefix, skip);
        failed_on_purpose(store.settle_chunk(&chunk).await, &faults, n);
        assert_eq!(queued().await, (4, 4, 0), "failed {when}: all still queued");
        let batches = store.settlement_batches(Some(&owner), Some(chunk.day), 10).await.unwrap();
        assert!(batches.is_empty(), "failed {when}: no batch, but {batches:?}");
        assert_eq!(books(&*store, &payer, &owner).await, before, "failed {when}: no money moved");
    }
    let settled = store.settle_chunk(&chunk).await.unwrap();
    assert_eq!((settled.added, settled.batch.count, settled.batch.amount), (4, 4, usd(1400)), "works on");
    assert_eq!(queued().await, (4, 0, 4));
    assert_eq!(store.ledger_check().await.unwrap().postings, before.check.postings + 1);
    assert_sound(&*store).await;
}

pub async fn a_cross_currency_settlement_that_fails_midway_leaves_nothing(
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

pub async fn a_refund_that_fails_midway_leaves_nothing(store: Arc<dyn Store>, faults: Arc<StatementFaults>) {
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

pub async fn a_reversal_that_fails_midway_leaves_nothing(
    store: Arc<dyn Store>,
    faults: Arc<StatementFaults>,
) {
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

pub async fn a_failing_completion_of_due_refunds_completes_none(
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

/// Attempts recorded together stand or fall together when the database fails under one of
/// them: none is recorded, every claim stands, and the next call records them all.
pub async fn attempts_recorded_together_that_fail_midway_record_none(
    store: Arc<dyn Store>,
    faults: Arc<StatementFaults>,
) {
    let lease = jiff::SignedDuration::from_secs(30);
    for n in 0..3 {
        let (_, terms) = paid_ready(&*store, &format!("PR-FAULT-ATTEMPTS-{n}"), 100).await;
        store.fail_payment(&terms.code_token, FailReason::RiskReject, at(100)).await.unwrap();
    }
    let claimed = store.claim_notifications(at(100), lease, 10).await.unwrap();
    let attempts: Vec<(Attempt, AfterAttempt)> = claimed
        .iter()
        .map(|notification| {
            (attempt(&notification.id, 1, AttemptOutcome::Delivered), AfterAttempt::Delivered)
        })
        .collect();
    let recorded = || async {
        let mut recorded = Vec::new();
        for notification in &claimed {
            let (stored, attempts) = store.notifications(&notification.subject_id).await.unwrap().remove(0);
            recorded.push((stored.status, attempts.len()));
        }
        recorded
    };
    let midway = [
        ("INSERT INTO delivery_attempt", 1, "at the second attempt"),
        ("UPDATE notification", 2, "at the last notification's new state"),
    ];
    for (n, (prefix, skip, when)) in (1..).zip(midway) {
        faults.fail_once(prefix, skip);
        failed_on_purpose(store.record_attempts(&attempts).await, &faults, n);
        assert_eq!(recorded().await, [(DeliveryStatus::Pending, 0); 3], "failed {when}: none recorded");
        assert!(
            store.claim_notifications(at(101), lease, 10).await.unwrap().is_empty(),
            "failed {when}: claims stand"
        );
    }
    assert_eq!(store.record_attempts(&attempts).await.unwrap(), [Ok(()), Ok(()), Ok(())], "works on");
    assert_eq!(recorded().await, [(DeliveryStatus::Delivered, 1); 3]);
}

/// Writes queued beside a failing one (on SQLite, committed in the same transaction) are not
/// taken down with it, and nothing of the failing one is committed with them.
pub async fn a_failing_write_takes_no_concurrent_write_down(
    store: Arc<dyn Store>,
    faults: Arc<StatementFaults>,
) {
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
