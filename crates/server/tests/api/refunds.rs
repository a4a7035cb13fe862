//! Refunds, end to end through the SDK: full and partial refunds and their limit,
//! idempotency, the window, refusals by payment state, cancel after refund, 50 refunds at
//! once, asynchronous refunds with their notifications, inquiry of refunds and of a payment's
//! transactions, and the sandbox's magic refund amounts. The ledger is checked after each.

use std::sync::Arc;

use jiff::SignedDuration;
use ocpay_core::ids::ClientId;
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::money::Currency;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_core::payer::PayerId;
use ocpay_protocol::ResultStatus;
use ocpay_protocol::model::Amount;
use ocpay_protocol::payments::{CancelRequest, PayResponse};
use ocpay_protocol::refunds::{
    InquiryRefundRequest, InquiryRefundResponse, RefundNotification, RefundRequest, RefundResponse,
};
use ocpay_testkit::{Receiver, TestApp, TestParticipant, unique_id};
use serde_json::json;

use crate::helpers::{assert_ledger_sound, code_value, inquire, order_code, wallet_pay};

/// The sandbox payer the wallet pays with when the tester names none.
const PAYER: &str = "sandbox-payer-usd";

async fn balance(app: &TestApp, owner: AccountOwner) -> i64 {
    let account = Account::new(owner, Currency::parse("USD").unwrap());
    app.state.store.balance(&account).await.unwrap().minor()
}

async fn payer_balance(app: &TestApp) -> i64 {
    balance(app, AccountOwner::Wallet(PayerId::parse(PAYER).unwrap())).await
}

async fn pending(app: &TestApp, merchant: &TestParticipant) -> i64 {
    balance(app, AccountOwner::MerchantPending(ClientId::parse(&merchant.client_id).unwrap())).await
}

/// A payment of `minor` US cents, paid by the sandbox payer.
async fn paid(app: &TestApp, merchant: &TestParticipant, minor: i64) -> PayResponse {
    let payment = order_code(merchant, "USD", minor).await;
    let (status, answer) = wallet_pay(app, &code_value(&payment), json!({})).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
    payment
}

fn refund_of(payment: &PayResponse, request_id: &str, minor: i64) -> RefundRequest {
    RefundRequest {
        refund_request_id: Some(request_id.into()),
        payment_id: payment.payment_id.clone(),
        refund_amount: Some(Amount::new("USD", minor)),
        ..RefundRequest::default()
    }
}

async fn refund(merchant: &TestParticipant, request: &RefundRequest) -> RefundResponse {
    merchant.client.refund(request).await.expect("refund answers")
}

async fn inquire_refund(merchant: &TestParticipant, request_id: &str) -> InquiryRefundResponse {
    let request = InquiryRefundRequest {
        refund_request_id: Some(request_id.into()),
        ..InquiryRefundRequest::default()
    };
    merchant.client.inquire_refund(&request).await.expect("inquiryRefund answers")
}

fn code(response: &RefundResponse) -> (&str, ResultStatus) {
    (response.result.result_code.as_str(), response.result.result_status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_refund_returns_everything_and_shows_everywhere() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let payment = paid(&app, &merchant, 1250).await;
    let before = payer_balance(&app).await;
    assert_eq!(pending(&app, &merchant).await, 1250);

    let mut request = refund_of(&payment, "RR-FULL", 1250);
    request.reference_refund_id = Some("RETURN-0001".into());
    request.refund_reason = Some("the customer changed their mind".into());
    let refunded = refund(&merchant, &request).await;
    assert_eq!(code(&refunded), ("SUCCESS", ResultStatus::S), "{:?}", refunded.result);
    assert_eq!(refunded.refund_request_id.as_deref(), Some("RR-FULL"));
    assert_eq!(refunded.payment_id, payment.payment_id);
    assert_eq!(refunded.refund_amount, Some(Amount::new("USD", 1250)));
    let refund_id = refunded.refund_id.clone().expect("a refund id");
    let refund_time = refunded.refund_time.clone().expect("the time it succeeded");
    assert_eq!(payer_balance(&app).await, before + 1250, "the payer has it all back");
    assert_eq!(pending(&app, &merchant).await, 0);

    let by_request = inquire_refund(&merchant, "RR-FULL").await;
    let by_id =
        InquiryRefundRequest { refund_id: Some(refund_id.clone()), ..InquiryRefundRequest::default() };
    assert_eq!(merchant.client.inquire_refund(&by_id).await.unwrap(), by_request, "either id finds it");
    assert_eq!(by_request.result.result_status, ResultStatus::S);
    assert_eq!(by_request.refund_status.as_deref(), Some("SUCCESS"));
    assert_eq!(by_request.refund_time.as_deref(), Some(refund_time.as_str()));
    assert_eq!(by_request.refund_amount, Some(Amount::new("USD", 1250)));

    let inquiry = inquire(&merchant, &payment).await;
    assert_eq!(inquiry.payment_status.as_deref(), Some("SUCCESS"), "a refunded payment stays paid");
    let [transaction] = inquiry.transactions.as_slice() else {
        panic!("one transaction: {:?}", inquiry.transactions)
    };
    assert_eq!(
        (transaction.transaction_type.as_str(), transaction.transaction_status.as_str()),
        ("REFUND", "SUCCESS")
    );
    assert_eq!(transaction.transaction_id, refund_id);
    assert_eq!(transaction.transaction_request_id.as_deref(), Some("RR-FULL"));
    assert_eq!(transaction.transaction_amount, Amount::new("USD", 1250));
    assert_eq!(transaction.transaction_time.as_deref(), Some(refund_time.as_str()));
    assert_eq!(transaction.transaction_result.result_code, "SUCCESS");

    let missing = inquire_refund(&merchant, "RR-NEVER").await;
    assert_eq!((missing.result.result_code.as_str(), missing.refund_status), ("ORDER_NOT_EXIST", None));
    let stranger = app.merchant().await;
    let theirs = inquire_refund(&stranger, "RR-FULL").await;
    assert_eq!(theirs.result.result_code, "ORDER_NOT_EXIST", "refunds are private to their merchant");
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_refunds_stop_at_the_paid_amount() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let payment = paid(&app, &merchant, 1000).await;
    let before = payer_balance(&app).await;
    assert_eq!(
        code(&refund(&merchant, &refund_of(&payment, "RR-P1", 300)).await),
        ("SUCCESS", ResultStatus::S)
    );
    assert_eq!(
        code(&refund(&merchant, &refund_of(&payment, "RR-P2", 600)).await),
        ("SUCCESS", ResultStatus::S)
    );
    let excess = refund(&merchant, &refund_of(&payment, "RR-P3", 101)).await;
    assert_eq!(code(&excess), ("REFUND_AMOUNT_EXCEED", ResultStatus::F));
    assert!(
        excess.result.result_message.contains("USD 1.00"),
        "names what is left: {}",
        excess.result.result_message
    );
    assert_eq!(excess.refund_id, None);
    assert_eq!(
        inquire_refund(&merchant, "RR-P3").await.result.result_code,
        "ORDER_NOT_EXIST",
        "nothing stored"
    );
    assert_eq!(
        code(&refund(&merchant, &refund_of(&payment, "RR-P4", 100)).await),
        ("SUCCESS", ResultStatus::S)
    );
    assert_eq!(payer_balance(&app).await, before + 1000);
    assert_eq!(pending(&app, &merchant).await, 0);

    let requests: Vec<_> = inquire(&merchant, &payment)
        .await
        .transactions
        .iter()
        .map(|transaction| transaction.transaction_request_id.clone().unwrap())
        .collect();
    assert_eq!(requests, ["RR-P1", "RR-P2", "RR-P4"], "every refund, in order");

    let mut euros = refund_of(&payment, "RR-EUR", 1);
    euros.refund_amount = Some(Amount::new("EUR", 1));
    let refused = refund(&merchant, &euros).await;
    assert_eq!(code(&refused), ("PARAM_ILLEGAL", ResultStatus::F));
    assert!(
        refused.result.result_message.starts_with("refundAmount.currency:"),
        "{}",
        refused.result.result_message
    );
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_refund_request_refunds_once() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let payment = paid(&app, &merchant, 1000).await;
    let other = paid(&app, &merchant, 1000).await;
    let before = payer_balance(&app).await;
    let first = refund(&merchant, &refund_of(&payment, "RR-ONCE", 400)).await;
    assert_eq!(code(&first), ("SUCCESS", ResultStatus::S));
    app.clock.advance(SignedDuration::from_mins(5));
    let again = refund(&merchant, &refund_of(&payment, "RR-ONCE", 400)).await;
    assert_eq!(again, first, "the same answer, to the refund id and time");
    let changed = refund(&merchant, &refund_of(&payment, "RR-ONCE", 300)).await;
    assert_eq!(code(&changed), ("REPEAT_REQ_INCONSISTENT", ResultStatus::F));
    assert!(
        changed.result.result_message.starts_with("refundRequestId:"),
        "{}",
        changed.result.result_message
    );
    let elsewhere = refund(&merchant, &refund_of(&other, "RR-ONCE", 400)).await;
    assert_eq!(code(&elsewhere), ("REPEAT_REQ_INCONSISTENT", ResultStatus::F));
    assert_eq!(payer_balance(&app).await, before + 400, "refunded once");

    // Another merchant's refund request ids are its own.
    let stranger = app.merchant().await;
    let theirs = paid(&app, &stranger, 500).await;
    assert_eq!(
        code(&refund(&stranger, &refund_of(&theirs, "RR-ONCE", 500)).await),
        ("SUCCESS", ResultStatus::S)
    );
    let foreign = refund(&stranger, &refund_of(&payment, "RR-FOREIGN", 1)).await;
    assert_eq!(code(&foreign), ("ORDER_NOT_EXIST", ResultStatus::F), "nobody refunds another's payment");
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_close_with_their_window() {
    let app = TestApp::spawn_with(|config| config.refund_window_days = 30).await;
    let merchant = app.merchant().await;
    let payment = paid(&app, &merchant, 1000).await;
    app.clock.advance(SignedDuration::from_hours(30 * 24 - 1));
    assert_eq!(
        code(&refund(&merchant, &refund_of(&payment, "RR-IN", 100)).await),
        ("SUCCESS", ResultStatus::S)
    );
    app.clock.advance(SignedDuration::from_hours(2));
    let late = refund(&merchant, &refund_of(&payment, "RR-LATE", 100)).await;
    assert_eq!(code(&late), ("REFUND_WINDOW_EXCEED", ResultStatus::F));
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_paid_payments_are_refunded_and_refunded_ones_are_not_cancelled() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;

    let unpaid = order_code(&merchant, "USD", 500).await;
    let answer = refund(&merchant, &refund_of(&unpaid, "RR-UNPAID", 500)).await;
    assert_eq!(code(&answer), ("ORDER_STATUS_INVALID", ResultStatus::F));

    let failed = order_code(&merchant, "USD", 500).await;
    let (status, _) = wallet_pay(&app, &code_value(&failed), json!({ "outcome": "RISK_REJECT" })).await;
    assert_eq!(status, 200);
    let answer = refund(&merchant, &refund_of(&failed, "RR-FAILED", 500)).await;
    assert_eq!(code(&answer), ("ORDER_STATUS_INVALID", ResultStatus::F));

    let cancelled = paid(&app, &merchant, 500).await;
    let cancel = CancelRequest { payment_id: cancelled.payment_id.clone(), payment_request_id: None };
    assert_eq!(merchant.client.cancel(&cancel).await.unwrap().result.result_code, "SUCCESS");
    let answer = refund(&merchant, &refund_of(&cancelled, "RR-CANCELLED", 500)).await;
    assert_eq!(code(&answer), ("ORDER_IS_CANCELED", ResultStatus::F));

    let mut unknown = refund_of(&cancelled, "RR-UNKNOWN", 1);
    unknown.payment_id = Some("20260101000000000000000000000000".into());
    assert_eq!(code(&refund(&merchant, &unknown).await), ("ORDER_NOT_EXIST", ResultStatus::F));

    let refunded = paid(&app, &merchant, 800).await;
    let before = payer_balance(&app).await;
    assert_eq!(
        code(&refund(&merchant, &refund_of(&refunded, "RR-PART", 300)).await),
        ("SUCCESS", ResultStatus::S)
    );
    let cancel = CancelRequest { payment_id: refunded.payment_id.clone(), payment_request_id: None };
    let refused = merchant.client.cancel(&cancel).await.unwrap();
    assert_eq!(refused.result.result_code, "ORDER_STATUS_INVALID", "{:?}", refused.result);
    assert_eq!(refused.cancel_time, None);
    assert_eq!(inquire(&merchant, &refunded).await.payment_status.as_deref(), Some("SUCCESS"));
    assert_eq!(payer_balance(&app).await, before + 300, "the cancel returned nothing more");
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_payment_lists_its_cancel() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let payment = paid(&app, &merchant, 500).await;
    let cancel = CancelRequest { payment_id: payment.payment_id.clone(), payment_request_id: None };
    let cancelled = merchant.client.cancel(&cancel).await.unwrap();
    let inquiry = inquire(&merchant, &payment).await;
    let [transaction] = inquiry.transactions.as_slice() else {
        panic!("one transaction: {:?}", inquiry.transactions)
    };
    assert_eq!(
        (transaction.transaction_type.as_str(), transaction.transaction_status.as_str()),
        ("CANCEL", "SUCCESS")
    );
    assert_eq!(
        Some(transaction.transaction_id.clone()),
        payment.payment_id,
        "a cancel is named by its payment"
    );
    assert_eq!(transaction.transaction_time, cancelled.cancel_time);
    assert_eq!(transaction.transaction_amount, Amount::new("USD", 500));
    assert!(inquire(&merchant, &paid(&app, &merchant, 100).await).await.transactions.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_refunds_at_once_never_exceed_the_payment() {
    let app = TestApp::spawn().await;
    let merchant = Arc::new(app.merchant().await);
    let payment = paid(&app, &merchant, 1250).await;
    let before = payer_balance(&app).await;
    let mut racers = tokio::task::JoinSet::new();
    for n in 0..50 {
        let merchant = merchant.clone();
        let request = refund_of(&payment, &format!("RR-RUSH-{n}"), 100);
        racers.spawn(async move { merchant.client.refund(&request).await.expect("refund answers").result });
    }
    let (mut refunded, mut refused) = (0, 0);
    while let Some(result) = racers.join_next().await {
        match result.unwrap().result_code.as_str() {
            "SUCCESS" => refunded += 1,
            "REFUND_AMOUNT_EXCEED" => refused += 1,
            other => panic!("a racer got {other}"),
        }
    }
    assert_eq!((refunded, refused), (12, 38), "exactly as many as fit in USD 12.50");
    assert_eq!(payer_balance(&app).await, before + 1200);
    assert_eq!(pending(&app, &merchant).await, 50);
    assert_eq!(inquire(&merchant, &payment).await.transactions.len(), 12);
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asynchronous_wallet_refunds_later_and_notifies() {
    let app = TestApp::spawn_with(|config| {
        config.refund_async = true;
        config.refund_async_delay_seconds = 120;
    })
    .await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let merchant = app.merchant().await;
    let payment = paid(&app, &merchant, 1000).await;
    let before = payer_balance(&app).await;
    let mut request = refund_of(&payment, "RR-ASYNC", 600);
    request.refund_notify_url = Some(format!("{}/refunds", receiver.url));
    let accepted = refund(&merchant, &request).await;
    assert_eq!(code(&accepted), ("REFUND_IN_PROCESS", ResultStatus::U));
    assert!(accepted.refund_id.is_some(), "accepted: the refund has its id");
    assert_eq!(accepted.refund_time, None);
    assert_eq!(refund(&merchant, &request).await, accepted, "a retry finds it still processing");
    let processing = inquire_refund(&merchant, "RR-ASYNC").await;
    assert_eq!((processing.refund_status.as_deref(), processing.refund_time), (Some("PROCESSING"), None));
    assert_eq!(inquire(&merchant, &payment).await.transactions[0].transaction_status, "PROCESSING");
    assert_eq!(payer_balance(&app).await, before, "no money moves before the wallet completes");
    let over = refund(&merchant, &refund_of(&payment, "RR-OVER", 401)).await;
    assert_eq!(code(&over), ("REFUND_AMOUNT_EXCEED", ResultStatus::F), "a processing refund counts");

    app.clock.advance(SignedDuration::from_secs(120));
    let delivered = receiver.wait_for(1).await;
    let delivery = &delivered[0];
    assert!(delivery.verified, "signed by the platform");
    assert_eq!(delivery.path, "/merchant/notify/refunds");
    let notification: RefundNotification = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(notification.notify_type, "REFUND_RESULT");
    assert_eq!(
        (notification.refund_status.as_str(), notification.result.result_code.as_str()),
        ("SUCCESS", "SUCCESS")
    );
    assert_eq!(Some(notification.refund_id.clone()), accepted.refund_id);
    assert_eq!(notification.refund_request_id, "RR-ASYNC");
    assert_eq!(Some(notification.payment_id.clone()), payment.payment_id);
    assert_eq!(notification.refund_amount, Amount::new("USD", 600));
    let done = inquire_refund(&merchant, "RR-ASYNC").await;
    assert_eq!(done.refund_status.as_deref(), Some("SUCCESS"));
    assert_eq!(done.refund_time, notification.refund_time);
    assert!(done.refund_time.is_some());
    assert_eq!(payer_balance(&app).await, before + 600);
    let answer = refund(&merchant, &request).await;
    assert_eq!((code(&answer), answer.refund_time.clone()), (("SUCCESS", ResultStatus::S), done.refund_time));
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_may_ask_for_an_asynchronous_refund() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let payment = paid(&app, &merchant, 1000).await;
    let mut request = refund_of(&payment, "RR-ASK", 1000);
    request.is_async_refund = Some(true);
    assert_eq!(code(&refund(&merchant, &request).await), ("REFUND_IN_PROCESS", ResultStatus::U));
    app.clock.advance(SignedDuration::from_secs(app.state.config.refund_async_delay_seconds as i64));
    app.background_rounds().await;
    assert_eq!(inquire_refund(&merchant, "RR-ASK").await.refund_status.as_deref(), Some("SUCCESS"));
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_fails_refunds_on_demand() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let merchant = app.merchant().await;
    let payment = paid(&app, &merchant, 20_000).await;
    let before = payer_balance(&app).await;

    // 9901: unknown once, refunded by the retry.
    let unknown = refund(&merchant, &refund_of(&payment, "RR-9901", 9901)).await;
    assert_eq!(code(&unknown), ("UNKNOWN_EXCEPTION", ResultStatus::U));
    assert_eq!(payer_balance(&app).await, before, "nothing refunded");
    assert_eq!(inquire_refund(&merchant, "RR-9901").await.result.result_code, "ORDER_NOT_EXIST");
    let retried = refund(&merchant, &refund_of(&payment, "RR-9901", 9901)).await;
    assert_eq!(code(&retried), ("SUCCESS", ResultStatus::S));
    assert_eq!(payer_balance(&app).await, before + 9901);

    // 9902: accepted, then failed when due, moving nothing and notified as FAIL.
    let mut doomed = refund_of(&payment, "RR-9902", 9902);
    doomed.refund_notify_url = Some(receiver.url.clone());
    assert_eq!(code(&refund(&merchant, &doomed).await), ("REFUND_IN_PROCESS", ResultStatus::U));
    app.clock.advance(SignedDuration::from_secs(app.state.config.refund_async_delay_seconds as i64));
    let delivered = receiver.wait_for(1).await;
    let notification: RefundNotification = serde_json::from_str(&delivered[0].body).unwrap();
    assert_eq!(notification.refund_status, "FAIL");
    assert_eq!(notification.result.result_status, ResultStatus::F);
    assert_eq!(notification.refund_time, None);
    let failed = inquire_refund(&merchant, "RR-9902").await;
    assert_eq!((failed.refund_status.as_deref(), failed.refund_time), (Some("FAIL"), None));
    let answer = refund(&merchant, &doomed).await;
    assert_eq!(code(&answer), ("PROCESS_FAIL", ResultStatus::F), "a replay tells the failure");
    assert_eq!(payer_balance(&app).await, before + 9901, "the failed refund moved nothing");
    let rest = refund(&merchant, &refund_of(&payment, "RR-REST", 20_000 - 9901)).await;
    assert_eq!(code(&rest), ("SUCCESS", ResultStatus::S), "what failed is refundable again");
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_refund_requests_name_their_field() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let payment = paid(&app, &merchant, 1000).await;
    type Spoil = fn(&mut RefundRequest);
    let cases: Vec<(&str, Spoil)> = vec![
        ("refundRequestId:", |request| request.refund_request_id = None),
        ("paymentId:", |request| request.payment_id = None),
        ("refundAmount:", |request| request.refund_amount = None),
        ("refundAmount.value:", |request| request.refund_amount = Some(Amount::new("USD", 0))),
        ("refundAmount.value:", |request| request.refund_amount = Some(Amount::new("USD", -5))),
        ("refundAmount.currency:", |request| request.refund_amount = Some(Amount::new("XXY", 5))),
        ("refundReason:", |request| request.refund_reason = Some("x".repeat(257))),
        ("referenceRefundId:", |request| request.reference_refund_id = Some("y".repeat(65))),
        ("refundNotifyUrl:", |request| request.refund_notify_url = Some("ftp://merchant.example".into())),
    ];
    for (field, spoil) in cases {
        let mut request = refund_of(&payment, &unique_id("RR"), 100);
        spoil(&mut request);
        let answer = refund(&merchant, &request).await;
        assert_eq!(code(&answer), ("PARAM_ILLEGAL", ResultStatus::F), "{field}");
        assert!(answer.result.result_message.starts_with(field), "{field}: {}", answer.result.result_message);
    }
    let body = format!(
        r#"{{"refundRequestId":"RR-B","paymentId":"{}","refundAmount":{{"currency":"USD","value":"1"}},"isAsyncRefund":"maybe"}}"#,
        payment.payment_id.clone().unwrap()
    );
    let answer: serde_json::Value = serde_json::from_str(
        &merchant.client.call_raw(ocpay_protocol::Api::Refund, body.into_bytes()).await.unwrap(),
    )
    .unwrap();
    assert_eq!(answer["result"]["resultCode"], "PARAM_ILLEGAL");
    assert!(answer["result"]["resultMessage"].as_str().unwrap().starts_with("isAsyncRefund"), "{answer}");
    let empty = merchant.client.inquire_refund(&InquiryRefundRequest::default()).await.unwrap();
    assert_eq!(empty.result.result_code, "PARAM_ILLEGAL");
    assert!(empty.result.result_message.starts_with("refundId:"), "{}", empty.result.result_message);

    let live = app
        .participant(ParticipantKind::Merchant, Environment::Live, Some("https://merchant.example/n"))
        .await;
    let mut private = refund_of(&payment, "RR-PRIVATE", 100);
    private.refund_notify_url = Some("http://10.0.0.7/refunds".into());
    let answer = live.client.refund(&private).await.unwrap();
    assert_eq!(code(&answer), ("PARAM_ILLEGAL", ResultStatus::F));
    assert!(answer.result.result_message.starts_with("refundNotifyUrl:"), "{}", answer.result.result_message);
    assert_eq!(pending(&app, &merchant).await, 1000, "nothing was refunded by any of them");
    assert_ledger_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_id_wins_over_refund_request_id() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let payment = paid(&app, &merchant, 1000).await;
    let (first_request, second_request) = (unique_id("RR"), unique_id("RR"));
    let first = refund(&merchant, &refund_of(&payment, &first_request, 100)).await;
    let second = refund(&merchant, &refund_of(&payment, &second_request, 300)).await;
    assert_eq!((code(&first), code(&second)), (("SUCCESS", ResultStatus::S), ("SUCCESS", ResultStatus::S)));
    let first_id = first.refund_id.clone().unwrap();

    let both = InquiryRefundRequest {
        refund_id: Some(first_id.clone()),
        refund_request_id: Some(second_request.clone()),
        ..InquiryRefundRequest::default()
    };
    let answer = merchant.client.inquire_refund(&both).await.unwrap();
    assert_eq!(answer.result.result_code, "SUCCESS", "{:?}", answer.result);
    assert_eq!(answer.refund_id.as_deref(), Some(first_id.as_str()), "the refundId's refund answers");
    assert_eq!(answer.refund_request_id.as_deref(), Some(first_request.as_str()));
    assert_eq!(answer.refund_amount, Some(Amount::new("USD", 100)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_that_refuses_second_refunds_takes_only_the_first() {
    let app = TestApp::spawn_with(|config| config.refund_multiple_allowed = false).await;
    let merchant = app.merchant().await;
    let payment = paid(&app, &merchant, 1000).await;

    let first = refund(&merchant, &refund_of(&payment, &unique_id("RR"), 400)).await;
    assert_eq!(code(&first), ("SUCCESS", ResultStatus::S), "{:?}", first.result);
    let second_request = unique_id("RR");
    let second = refund(&merchant, &refund_of(&payment, &second_request, 100)).await;
    assert_eq!(code(&second), ("MULTIPLE_REFUNDS_NOT_SUPPORTED", ResultStatus::F), "{:?}", second.result);
    assert_eq!(second.refund_id, None);
    let inquiry = inquire_refund(&merchant, &second_request).await;
    assert_eq!(inquiry.result.result_code, "ORDER_NOT_EXIST", "a refused refund is not stored");
    assert_eq!(pending(&app, &merchant).await, 600, "only the first refund moved money");
    let transactions = inquire(&merchant, &payment).await.transactions;
    assert_eq!(transactions.len(), 1, "{transactions:?}");

    let other = paid(&app, &merchant, 500).await;
    let whole = refund(&merchant, &refund_of(&other, &unique_id("RR"), 500)).await;
    assert_eq!(code(&whole), ("SUCCESS", ResultStatus::S), "each payment still takes one refund");
    assert_ledger_sound(&app).await;
}
