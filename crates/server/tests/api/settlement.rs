//! Fees and settlement through the real server: payments made with the SDK and paid from the
//! wallet, the settlement job settling each day after its cutoff on the test clock, and after
//! each scenario the ledger check and the reconciliation of files, ledger and records.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use ocpay_core::fees::FeeSchedule;
use ocpay_core::ids::ClientId;
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::Environment;
use ocpay_protocol::ResultStatus;
use ocpay_protocol::model::Amount;
use ocpay_protocol::payments::PayResponse;
use ocpay_protocol::refunds::RefundRequest;
use ocpay_settlement::batches::Settler;
use ocpay_settlement::reconcile::reconcile_day;
use ocpay_store::settlement::{BatchStatus, MarkPaid, SettlementBatch, SettlementKind, SettlementTerms};
use ocpay_testkit::{Clock, TestApp, TestParticipant, unique_id};
use serde_json::json;

use crate::helpers::{assert_ledger_sound, code_value, order_code, wallet_pay};

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("USD").unwrap())
}

fn client_id(merchant: &TestParticipant) -> ClientId {
    ClientId::parse(&merchant.client_id).unwrap()
}

/// A paid order code of `minor` US cents.
async fn paid(app: &TestApp, merchant: &TestParticipant, minor: i64) -> PayResponse {
    let response = order_code(merchant, "USD", minor).await;
    let (status, answer) = wallet_pay(app, &code_value(&response), json!({})).await;
    assert_eq!(status, 200, "{answer}");
    response
}

async fn refund(merchant: &TestParticipant, payment: &PayResponse, minor: i64) {
    let request = RefundRequest {
        refund_request_id: Some(unique_id("RF")),
        payment_id: payment.payment_id.clone(),
        refund_amount: Some(Amount::new("USD", minor)),
        ..RefundRequest::default()
    };
    let answer = merchant.client.refund(&request).await.expect("refund answers");
    assert_eq!(answer.result.result_status, ResultStatus::S, "{:?}", answer.result);
}

/// Waits until the settlement job has finished a whole round that started after this call.
async fn settlement_round(app: &TestApp) {
    tokio::time::timeout(std::time::Duration::from_secs(10), app.state.rounds.settlement.next_whole())
        .await
        .expect("the settlement job finishes a round within ten seconds");
}

fn settler(app: &TestApp) -> Settler {
    let root = ocpay_settlement::reports_root(&app.state.config.data_dir);
    Settler::new(app.state.store.clone(), app.state.settings.settlement.clone(), root)
}

/// The batches of a participant's settlement day.
async fn batches(app: &TestApp, owner: &ClientId, day: Date) -> Vec<SettlementBatch> {
    app.state.store.settlement_batches(Some(owner), Some(day), 100).await.unwrap()
}

/// The ledger balances, and the files, the ledger and the records of `day` agree.
async fn assert_reconciled(app: &TestApp, day: Date) {
    assert_ledger_sound(app).await;
    let found = reconcile_day(&settler(app), day, None, app.clock.now(), &|_| {}).await.unwrap();
    assert!(found.discrepancies.is_empty(), "{:#?}", found.discrepancies);
}

async fn balance(app: &TestApp, owner: AccountOwner, currency: &str) -> i64 {
    let account = Account::new(owner, Currency::parse(currency).unwrap());
    app.state.store.balance(&account).await.unwrap().minor()
}

/// The settlement day the clock is in, and the instant it ends.
fn today(app: &TestApp) -> (Date, Timestamp) {
    let cycle = &app.state.settings.settlement.cycle;
    let day = cycle.day_of(app.clock.now());
    (day, cycle.end_of(day))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_settles_once_on_its_side_of_the_cutoff() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let owner = client_id(&merchant);
    let (day, cutoff) = today(&app);
    app.clock.set(cutoff - SignedDuration::from_mins(10));
    let before = order_code(&merchant, "USD", 100).await;
    let at = order_code(&merchant, "USD", 200).await;

    // One millisecond before the cutoff, and at the cutoff itself.
    app.clock.set(cutoff - SignedDuration::from_millis(1));
    assert_eq!(wallet_pay(&app, &code_value(&before), json!({})).await.0, 200);
    app.clock.set(cutoff);
    assert_eq!(wallet_pay(&app, &code_value(&at), json!({})).await.0, 200);
    settlement_round(&app).await;

    let first = batches(&app, &owner, day).await;
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!((first[0].status, first[0].count, first[0].amount), (BatchStatus::Closed, 1, usd(100)));
    let items = app.state.store.batch_items(&first[0].id, None, 10).await.unwrap();
    assert_eq!(items[0].transaction_id, before.payment_id.clone().unwrap());
    assert_eq!(items[0].kind, SettlementKind::Payment);
    assert_eq!(first[0].settlement_date, day.tomorrow().unwrap(), "T+1 by default");

    // The next day takes the payment made at the cutoff, and only it.
    let next = day.tomorrow().unwrap();
    app.clock.set(app.state.settings.settlement.cycle.end_of(next) + SignedDuration::from_mins(1));
    settlement_round(&app).await;
    let second = batches(&app, &owner, next).await;
    assert_eq!((second.len(), second[0].count, second[0].amount), (1, 1, usd(200)), "{second:#?}");
    assert_reconciled(&app, day).await;
    assert_reconciled(&app, next).await;
    assert_eq!(balance(&app, AccountOwner::MerchantPending(owner.clone()), "USD").await, 0);
    assert_eq!(balance(&app, AccountOwner::MerchantSettled(owner), "USD").await, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_settlement_currency_converts_each_item_through_the_exchange_account() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let owner = client_id(&merchant);
    let sgd = Currency::parse("SGD").unwrap();
    let fees = FeeSchedule::new(100, Default::default(), 0).unwrap();
    let terms = SettlementTerms { fees: Some(fees), settlement_currency: Some(sgd) };
    app.state.store.set_settlement_terms(&owner, &terms).await.unwrap();
    let (day, cutoff) = today(&app);

    // USD 12.50, fee 1 % = 12.5 cents, rounded half up to 13; refund 2.50 returns 20 % of it:
    // 2.6 → 3 cents.
    let payment = paid(&app, &merchant, 1250).await;
    refund(&merchant, &payment, 250).await;
    assert_eq!(balance(&app, AccountOwner::FeeRevenue(Environment::of_client_id(&owner)), "USD").await, 10);
    app.clock.set(cutoff + SignedDuration::from_secs(1));
    settlement_round(&app).await;

    let batch = &batches(&app, &owner, day).await[0];
    assert_eq!(batch.currency, sgd);
    let items = app.state.store.batch_items(&batch.id, None, 10).await.unwrap();
    let quote = Some(("USD/SGD".to_owned(), "1.3450".to_owned()));
    // At 1.3450, rounded down by magnitude: 1250 → 1681, fee -13 → -17 (17.485); net 1664.
    // The refund: -250 → -336, fee +3 → +4; net -332.
    let sgd_of = |minor| Money::new(minor, sgd);
    let mut got: Vec<_> =
        items.iter().map(|item| (item.kind, item.settlement_amount, item.settlement_fee)).collect();
    // Both completed at the same instant of the test clock: the file orders them by id.
    got.sort_by_key(|(kind, ..)| *kind);
    assert_eq!(
        got,
        [
            (SettlementKind::Payment, sgd_of(1664), sgd_of(-17)),
            (SettlementKind::Refund, sgd_of(-332), sgd_of(4)),
        ]
    );
    assert!(items.iter().all(|item| item.quote == quote), "{items:#?}");
    assert_eq!(batch.amount, sgd_of(1332));
    assert_eq!(balance(&app, AccountOwner::MerchantPending(owner.clone()), "USD").await, 0);
    assert_eq!(balance(&app, AccountOwner::MerchantSettled(owner.clone()), "SGD").await, 1332);
    assert_reconciled(&app, day).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_above_payments_carry_a_negative_net_into_the_next_payout() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let owner = client_id(&merchant);
    let cycle = app.state.settings.settlement.cycle.clone();
    let (day, cutoff) = today(&app);
    let payment = paid(&app, &merchant, 1000).await;
    app.clock.set(cutoff + SignedDuration::from_secs(1));
    settlement_round(&app).await;
    let first = batches(&app, &owner, day).await.remove(0);
    let store = &app.state.store;
    let payout = store.mark_paid(&first.id, Some("T1"), app.clock.now()).await.unwrap();
    assert_eq!(payout, MarkPaid::Paid { amount: usd(1000), batches: vec![first.id.clone()] });

    // The next day refunds it all: its batch is negative, and nothing can be paid out.
    let next = day.tomorrow().unwrap();
    refund(&merchant, &payment, 1000).await;
    app.clock.set(cycle.end_of(next) + SignedDuration::from_secs(1));
    settlement_round(&app).await;
    let second = batches(&app, &owner, next).await.remove(0);
    assert_eq!(second.amount, usd(-1000));
    let refused = store.mark_paid(&second.id, None, app.clock.now()).await.unwrap();
    assert_eq!(refused, MarkPaid::NothingToPay { balance: usd(-1000) });

    // The day after nets against it: 25.00 settled, 15.00 paid out, both batches paid.
    let third_day = next.tomorrow().unwrap();
    paid(&app, &merchant, 2500).await;
    app.clock.set(cycle.end_of(third_day) + SignedDuration::from_secs(1));
    settlement_round(&app).await;
    let third = batches(&app, &owner, third_day).await.remove(0);
    let paid_out = store.mark_paid(&third.id, Some("T3"), app.clock.now()).await.unwrap();
    let mut both = vec![second.id.clone(), third.id.clone()];
    both.sort();
    assert_eq!(paid_out, MarkPaid::Paid { amount: usd(1500), batches: both });
    assert_eq!(balance(&app, AccountOwner::MerchantSettled(owner.clone()), "USD").await, 0);
    assert_eq!(balance(&app, AccountOwner::Payout(Environment::of_client_id(&owner)), "USD").await, 2500);
    for settled in [day, next, third_day] {
        assert_reconciled(&app, settled).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_fails_midway_resumes_and_takes_each_transaction_once() {
    let app = TestApp::spawn_with(|config| config.settlement_chunk_max = 2).await;
    let merchant = app.merchant().await;
    let owner = client_id(&merchant);
    let (day, cutoff) = today(&app);
    for minor in [100, 200, 300, 400, 500] {
        paid(&app, &merchant, minor).await;
    }
    // The second chunk fails after taking its first transaction off the queue.
    app.faults.fail_once("DELETE FROM settlement_queue", 2);
    app.clock.set(cutoff + SignedDuration::from_secs(1));
    settlement_round(&app).await;
    settlement_round(&app).await;
    assert_eq!(app.faults.fired(), 1, "the fault fired");

    let batch = &batches(&app, &owner, day).await[0];
    assert_eq!((batch.status, batch.count, batch.amount), (BatchStatus::Closed, 5, usd(1500)), "{batch:#?}");
    let counts = app.state.store.settlement_counts(Some(&owner), cutoff).await.unwrap();
    assert_eq!((counts.completed, counts.queued, counts.itemized), (5, 0, 5));
    assert_reconciled(&app, day).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_batch_left_open_between_chunks_is_finished_by_the_next_run() {
    let app = TestApp::spawn_with(|config| {
        config.settlement_enabled = false;
        config.settlement_chunk_max = 2;
    })
    .await;
    let merchant = app.merchant().await;
    let owner = client_id(&merchant);
    for minor in [100, 200, 300, 400, 500] {
        paid(&app, &merchant, minor).await;
    }
    // The run stops in its second chunk (killed, or out of retries): its batch stays open with
    // the first chunk's two transactions.
    let first = app.clock.now() + SignedDuration::from_secs(1);
    app.faults.fail_once("DELETE FROM settlement_queue", 2);
    assert!(settler(&app).settle_now(&owner, first).await.is_err(), "the run stopped");
    assert_eq!(app.faults.fired(), 1, "the fault fired");
    let day = app.state.settings.settlement.cycle.day_of(first);
    let open = &batches(&app, &owner, day).await[0];
    assert_eq!((open.status, open.count), (BatchStatus::Open, 2), "{open:#?}");

    // The next run, with a cutoff of its own, first finishes that batch with what completed
    // before its cutoff, and then takes what came after into a batch of its own.
    app.clock.set(first + SignedDuration::from_secs(1));
    paid(&app, &merchant, 600).await;
    let second = first + SignedDuration::from_secs(2);
    let run = settler(&app).settle_now(&owner, second).await.unwrap();
    let settled: Vec<_> =
        run.batches.iter().map(|settled| (settled.batch.cutoff, settled.batch.count)).collect();
    assert_eq!(settled, vec![(first, 5), (second, 1)]);
    let found = batches(&app, &owner, day).await;
    let found: Vec<_> = found.iter().map(|batch| (batch.status, batch.count, batch.amount)).collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.contains(&(BatchStatus::Closed, 5, usd(1500))), "{found:?}");
    assert!(found.contains(&(BatchStatus::Closed, 1, usd(600))), "{found:?}");
    assert_reconciled(&app, day).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_run_died_before_its_files_gets_them_from_the_next_run() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let owner = client_id(&merchant);
    let (day, cutoff) = today(&app);
    for minor in [100, 200] {
        paid(&app, &merchant, minor).await;
    }
    app.clock.set(cutoff + SignedDuration::from_secs(1));
    settlement_round(&app).await;
    let batch = &batches(&app, &owner, day).await[0];
    assert_eq!((batch.status, batch.count), (BatchStatus::Closed, 2), "{batch:#?}");

    // The run died after the batch's commit, before it published any file: none is there.
    let folder =
        ocpay_settlement::reports_root(&app.state.config.data_dir).join(format!("v1/settlements/{owner}"));
    std::fs::remove_dir_all(&folder).unwrap();
    // The next run has nothing to settle, and writes the batch's files and the day's details.
    settlement_round(&app).await;
    settlement_round(&app).await;
    let written = std::fs::read_dir(folder.join(day.strftime("%Y%m%d").to_string())).unwrap().count();
    assert_eq!(written, 1, "the day's transaction details are written again");
    assert_eq!(batches(&app, &owner, day).await.len(), 1, "no batch is added");
    assert_reconciled(&app, day).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_jobs_racing_on_one_store_settle_each_transaction_once() {
    // The app's own job stays off: two settlers race here, as two nodes would on PostgreSQL.
    let app = TestApp::spawn_with(|config| {
        config.settlement_enabled = false;
        config.settlement_chunk_max = 3;
    })
    .await;
    let merchants = [app.merchant().await, app.merchant().await];
    let (day, cutoff) = today(&app);
    for (n, merchant) in (0..12).zip(merchants.iter().cycle()) {
        paid(&app, merchant, 100 + n).await;
    }
    let now = cutoff + SignedDuration::from_secs(1);
    let (first, second) = (settler(&app), settler(&app));
    let (a, b) = tokio::join!(first.run_due(now), second.run_due(now));
    a.unwrap();
    b.unwrap();

    let mut settled = 0;
    for merchant in &merchants {
        let owner = client_id(merchant);
        let found = batches(&app, &owner, day).await;
        assert_eq!(found.len(), 1, "one batch per participant: {found:#?}");
        assert_eq!(found[0].status, BatchStatus::Closed);
        settled += found[0].count;
    }
    assert_eq!(settled, 12);
    let counts = app.state.store.settlement_counts(None, cutoff).await.unwrap();
    assert_eq!((counts.completed, counts.queued, counts.itemized), (12, 0, 12));
    assert_reconciled(&app, day).await;
}
