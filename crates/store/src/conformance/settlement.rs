//! Fees and settlement: fees posted with the payment and returned with refunds, batches that
//! take each completed transaction exactly once however their chunks run, pages of items, and
//! payouts.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::civil::date;
use ocpay_core::fees::FeeSchedule;
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::participant::Environment;

use super::{assert_sound, at, merchant, paid_ready, payer_with, pending, refund_of, settlement, sgd, usd};
use crate::settlement::{BatchStatus, MarkPaid, SettleChunk, SettlementKind, SettlementTerms};
use crate::{SettlePayment, Store};

async fn pay(store: &dyn Store, request_id: &str, amount: i64) -> ocpay_core::payment::PaymentTerms {
    let payer = payer_with(store, &format!("payer-{request_id}"), usd(amount)).await;
    let (_, terms) = paid_ready(store, request_id, amount).await;
    let paid = store.settle_payment(&settlement(&terms, &payer, at(20))).await.unwrap();
    assert!(matches!(paid, SettlePayment::Paid(_)), "{paid:?}");
    terms
}

pub(super) fn chunk(owner: &ocpay_core::ids::ClientId, limit: u32) -> SettleChunk {
    SettleChunk {
        owner: owner.clone(),
        currency: usd(0).currency(),
        day: date(2027, 1, 15),
        settlement_date: date(2027, 1, 16),
        cutoff: at(100),
        now: at(200),
        limit,
        rates: Vec::new(),
    }
}

pub async fn fees_are_posted_with_the_payment_and_returned_pro_rata(store: Arc<dyn Store>) {
    let first = pay(&*store, "FEE-0", 100).await;
    let owner = first.owner.clone();
    let schedule = FeeSchedule::new(250, Default::default(), 1_000).unwrap();
    let terms = SettlementTerms { fees: Some(schedule), settlement_currency: None };
    store.set_settlement_terms(&owner, &terms).await.unwrap();
    assert_eq!(store.settlement_terms(&owner).await.unwrap(), Some(terms));

    // 2.5 % of 10.00 = 25 cents, tax 10 % = 2.5 → 3; the first payment, made before the
    // schedule, paid no fee.
    let terms = pay(&*store, "FEE-1", 1_000).await;
    let environment = Environment::of_client_id(&owner);
    let fee = Account::new(AccountOwner::FeeRevenue(environment), usd(0).currency());
    let tax = Account::new(AccountOwner::FeeTax(environment), usd(0).currency());
    assert_eq!(store.balance(&fee).await.unwrap(), usd(25));
    assert_eq!(store.balance(&tax).await.unwrap(), usd(3));
    assert_eq!(pending(&*store, &owner, usd(0).currency()).await, usd(100 + 1_000 - 28));

    // A refund of 40 % returns 10 cents of fee and 1 (1.2) of tax.
    store.create_refund(&refund_of(&terms, "FEE-R1", usd(400), at(30))).await.unwrap();
    assert_eq!(store.balance(&fee).await.unwrap(), usd(15));
    assert_eq!(store.balance(&tax).await.unwrap(), usd(2));
    // The rest returns the rest, exactly.
    store.create_refund(&refund_of(&terms, "FEE-R2", usd(600), at(31))).await.unwrap();
    assert_eq!(store.balance(&fee).await.unwrap(), usd(0));
    assert_eq!(store.balance(&tax).await.unwrap(), usd(0));
    assert_eq!(pending(&*store, &owner, usd(0).currency()).await, usd(100));
    assert_sound(&*store).await;
}

pub async fn the_settlement_currency_changes_alone(store: Arc<dyn Store>) {
    let owner = merchant(&*store, "CURRENCY").await;
    let schedule = FeeSchedule::new(250, Default::default(), 1_000).unwrap();
    let usd_terms =
        SettlementTerms { fees: Some(schedule.clone()), settlement_currency: Some(usd(1).currency()) };
    store.set_settlement_terms(&owner, &usd_terms).await.unwrap();
    store.set_settlement_currency(&owner, Some(sgd(1).currency())).await.unwrap();
    let terms = store.settlement_terms(&owner).await.unwrap().unwrap();
    assert_eq!((terms.fees, terms.settlement_currency), (Some(schedule.clone()), Some(sgd(1).currency())));
    store.set_settlement_currency(&owner, None).await.unwrap();
    let terms = store.settlement_terms(&owner).await.unwrap().unwrap();
    assert_eq!((terms.fees, terms.settlement_currency), (Some(schedule), None), "the fees stay");
    let nobody = ocpay_core::ids::ClientId::parse("NOBODY").unwrap();
    assert_eq!(
        store.set_settlement_currency(&nobody, None).await,
        Err(crate::StoreError::NotFound("participant"))
    );
}

pub async fn chunks_take_each_transaction_once_and_close_the_batch(store: Arc<dyn Store>) {
    let mut owner = None;
    for n in 0..5 {
        owner = Some(pay(&*store, &format!("SET-{n}"), 100 + n).await.owner);
    }
    let owner = owner.unwrap();
    let counts = store.settlement_counts(Some(&owner), at(100)).await.unwrap();
    assert_eq!((counts.completed, counts.queued, counts.itemized), (5, 5, 0));

    // Four settlers race, chunks of two: the batch row makes them take turns.
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let (store, chunk) = (store.clone(), chunk(&owner, 2));
            tokio::spawn(async move {
                loop {
                    let settled = store.settle_chunk(&chunk).await.unwrap();
                    if settled.batch.status == BatchStatus::Closed {
                        return settled.added;
                    }
                }
            })
        })
        .collect();
    for racer in racers {
        racer.await.unwrap();
    }
    let batch = store.settlement_batches(Some(&owner), Some(date(2027, 1, 15)), 10).await.unwrap().remove(0);
    assert_eq!((batch.status, batch.count, batch.amount), (BatchStatus::Closed, 5, usd(510)));
    let counts = store.settlement_counts(Some(&owner), at(100)).await.unwrap();
    assert_eq!((counts.completed, counts.queued, counts.itemized), (5, 0, 5));
    assert_eq!(store.batch_movement(&batch.id).await.unwrap(), Some(usd(510)));
    let closed = store.settle_chunk(&chunk(&owner, 2)).await.unwrap();
    assert_eq!((closed.added, closed.batch.count), (0, 5), "a closed batch takes nothing more");

    // Pages of two give every item once, in file order.
    let (mut seen, mut after) = (Vec::new(), None);
    loop {
        let page = store.batch_items(&batch.id, after.as_ref(), 2).await.unwrap();
        seen.extend(page.iter().map(|item| (item.completed_at, item.transaction_id.clone())));
        match page.last() {
            Some(last) if page.len() == 2 => after = Some(last.cursor()),
            _ => break,
        }
    }
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!((seen.len(), unique.len()), (5, 5));
    assert!(seen.windows(2).all(|pair| pair[0] <= pair[1]), "in file order: {seen:?}");
    let items = store.batch_items(&batch.id, None, 10).await.unwrap();
    assert!(items.iter().all(|item| item.kind == SettlementKind::Payment && item.batch_id == batch.id));

    // The payout moves the settled balance out once.
    let paid = store.mark_paid(&batch.id, Some("T1"), at(300)).await.unwrap();
    assert_eq!(paid, MarkPaid::Paid { amount: usd(510), batches: vec![batch.id.clone()] });
    let again = store.mark_paid(&batch.id, None, at(301)).await.unwrap();
    assert_eq!(again, MarkPaid::AlreadyPaid { reference: Some("T1".into()) });
    assert_sound(&*store).await;
}

pub async fn batch_pages_follow_the_keyset_newest_day_first(store: Arc<dyn Store>) {
    let alice = merchant(&*store, "ALICE").await;
    let bob = merchant(&*store, "BOB").await;
    // Empty batches (a day without transactions still gets one): Alice has four days, two
    // batches on one of them (two cutoffs, as the sandbox's settle-now makes) and one in SGD.
    let make = |owner: &ocpay_core::ids::ClientId, day: u8, cutoff: i64, currency| SettleChunk {
        owner: owner.clone(),
        currency,
        day: date(2027, 1, i8::try_from(day).unwrap()),
        settlement_date: date(2027, 1, i8::try_from(day + 1).unwrap()),
        cutoff: at(cutoff),
        now: at(cutoff),
        limit: 10,
        rates: Vec::new(),
    };
    let (usd, sgd) = (usd(0).currency(), sgd(0).currency());
    for chunk in [
        make(&alice, 3, 300, usd),
        make(&alice, 1, 100, usd),
        make(&alice, 4, 400, usd),
        make(&alice, 3, 350, usd),
        make(&alice, 2, 200, usd),
        make(&alice, 2, 200, sgd),
        make(&bob, 5, 500, usd),
    ] {
        store.settle_chunk(&chunk).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.settlement_batches_page(&alice, after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(
            page.iter().map(|batch| (batch.day.day(), batch.cutoff, batch.currency, batch.id.clone())),
        );
        match page.last() {
            Some(last) if page.len() == 2 => after = Some(last.cursor()),
            _ => break,
        }
    }
    assert!(seen.iter().all(|(_, _, _, id)| !id.is_empty()));
    let order: Vec<_> = seen.iter().map(|(day, cutoff, currency, _)| (*day, *cutoff, *currency)).collect();
    let mut expected = vec![
        (4, at(400), usd),
        (3, at(350), usd),
        (3, at(300), usd),
        (2, at(200), usd),
        (2, at(200), sgd),
        (1, at(100), usd),
    ];
    // Ties of day and cutoff go by batch id, newest (highest) first.
    let ids = |currency| seen.iter().find(|(day, _, c, _)| *day == 2 && *c == currency).unwrap().3.clone();
    if ids(usd) < ids(sgd) {
        expected.swap(3, 4);
    }
    assert_eq!(order, expected, "every batch of Alice's once, newest day first, none of Bob's");
}
