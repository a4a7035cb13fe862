//! The console's Settlement pages: every participant's batches, a batch's items and files (a
//! file downloaded byte for byte; another batch's folder or a crafted name not found), marking
//! a batch paid out (the ledger moves the settled balance to payout, the batch shows it, a
//! second time is refused), the reconcile check of a day, and only operators reaching them.

use ocpay_core::ids::ClientId;
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::Environment;
use ocpay_core::portal::Role;
use ocpay_settlement::files::{AmountUnit, format_amount};
use ocpay_testkit::TestApp;
use reqwest::StatusCode;

use crate::console_payers::{operator, refuses_everyone_else};
use crate::payments::{audited, signed_in};
use crate::reports::{paid, settle};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_a_batch_downloads_its_files_reconciles_and_marks_it_paid() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    let owner = signed_in(&app, &merchant.client_id, "owner@shop.example", Role::Owner).await;
    paid(&owner, &merchant, 1250).await;
    paid(&owner, &merchant, 250).await;
    settle(&app, &client_id).await;
    let batch = app.state.store.settlement_batches(Some(&client_id), None, 10).await.unwrap().remove(0);

    let console = operator(&app, "ops@platform.example").await;
    let list = console.get("/console/settlement").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let path = format!("/console/settlement/{}", batch.id);
    assert!(list.body.contains(&format!("href=\"{path}\"")), "{}", list.body);
    assert!(list.body.contains(&format!("<code>{}</code>", merchant.client_id)), "{}", list.body);

    let detail = console.get(&path).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert_eq!(detail.body.matches("<td data-label=\"Kind\">PAYMENT</td>").count(), 2, "{}", detail.body);
    let folder = batch.settlement_date.strftime("%Y%m%d").to_string();
    let href_start = format!("href=\"{path}/files/{folder}/settlementSummary_");
    let start = detail.body.find(&href_start).expect("the summary's link") + "href=\"".len();
    let href = &detail.body[start..start + detail.body[start..].find('"').unwrap()];
    let file = console.get(href).await;
    assert_eq!(file.status, StatusCode::OK);
    let name = href.rsplit('/').next().unwrap();
    let on_disk = ocpay_settlement::reports_root(&app.state.config.data_dir)
        .join("v1/settlements")
        .join(&merchant.client_id)
        .join(&folder)
        .join(name);
    assert_eq!(file.body, std::fs::read_to_string(on_disk).unwrap(), "byte for byte");
    for crafted in [format!("{path}/files/20200101/{name}"), format!("{path}/files/{folder}/..%2Fsecret.csv")]
    {
        assert_eq!(console.get(&crafted).await.status, StatusCode::NOT_FOUND, "{crafted}");
    }

    let day = batch.settlement_date.to_string();
    let reconciled = console.get(&format!("/console/settlement?date={day}")).await;
    assert!(
        reconciled.body.contains(&format!("{} reconciles", batch.settlement_date)),
        "{}",
        reconciled.body
    );
    let bad_date = console.get("/console/settlement?date=yesterday").await;
    assert_eq!(bad_date.status, StatusCode::BAD_REQUEST);
    assert!(bad_date.body.contains("date: must be a date"), "{}", bad_date.body);

    let marked = console
        .post(&format!("{path}/mark-paid"), &[("csrf", &detail.csrf()), ("reference", "WIRE-77")])
        .await;
    assert_eq!(marked.status, StatusCode::SEE_OTHER, "{}", marked.body);
    let paid_page = console.get(marked.location.as_deref().unwrap()).await;
    let amount = format_amount(batch.amount, AmountUnit::Major);
    assert!(paid_page.body.contains(&format!("Paid out {amount} USD")), "{}", paid_page.body);
    assert!(paid_page.body.contains("<code>WIRE-77</code>"), "{}", paid_page.body);
    let usd = Currency::parse("USD").unwrap();
    let settled = Account::new(AccountOwner::MerchantSettled(client_id.clone()), usd);
    assert_eq!(app.state.store.balance(&settled).await.unwrap(), Money::new(0, usd));
    let payout = Account::new(AccountOwner::Payout(Environment::Sandbox), usd);
    assert_eq!(app.state.store.balance(&payout).await.unwrap(), batch.amount);
    assert!(app.state.store.ledger_check().await.unwrap().is_sound());
    let again = console.post(&format!("{path}/mark-paid"), &[("csrf", &detail.csrf())]).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert!(again.body.contains("was paid out before (reference WIRE-77)"), "{}", again.body);
    assert_eq!(audited(&app, &merchant.client_id, "console.markPaid", 2).await, ["REFUSED", "SUCCESS"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_is_the_operators_only() {
    let app = TestApp::spawn().await;
    refuses_everyone_else(
        &app,
        &[
            "/console/settlement",
            "/console/settlement/20261130000000001",
            "/console/settlement/20261130000000001/files/20261130/transactionItems_20261130_000.csv",
            "/console/settlement?date=2026-11-30",
        ],
        &["/console/settlement/20261130000000001/mark-paid"],
    )
    .await;
}
