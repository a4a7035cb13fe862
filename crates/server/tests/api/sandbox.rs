//! The sandbox's magic amounts (9901 to 9903 here; 9904 is a notification matter), which let
//! integrators rehearse unknown results, timeouts and retries. Live participants never get them.

use std::time::Duration;

use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_protocol::payments::InquiryPaymentRequest;
use ocpay_testkit::{TestApp, pay_request, unique_id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amount_9901_answers_unknown_once_and_the_retry_pays() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let request_id = unique_id("PR");
    let answer = merchant.client.pay(&pay_request(&request_id, "USD", 9901)).await.unwrap();
    assert_eq!(
        (answer.result.result_code.as_str(), answer.result.result_status),
        ("UNKNOWN_EXCEPTION", ocpay_protocol::ResultStatus::U)
    );
    let inquiry = InquiryPaymentRequest { payment_id: None, payment_request_id: Some(request_id.clone()) };
    assert_eq!(
        merchant.client.inquire_payment(&inquiry).await.unwrap().result.result_code,
        "ORDER_NOT_EXIST",
        "the unknown answer created nothing"
    );

    // The till's retry with the same paymentRequestId creates the payment, and a further
    // retry gets that same payment.
    let retried = merchant.client.pay(&pay_request(&request_id, "USD", 9901)).await.unwrap();
    assert_eq!(retried.result.result_code, "SUCCESS", "{:?}", retried.result);
    let again = merchant.client.pay(&pay_request(&request_id, "USD", 9901)).await.unwrap();
    assert_eq!((again.result.result_code.as_str(), &again.payment_id), ("SUCCESS", &retried.payment_id));
    let found = merchant.client.inquire_payment(&inquiry).await.unwrap();
    assert_eq!(found.payment_status.as_deref(), Some("PROCESSING"));

    // The SDK retries a U with the same body, so a till using it sees only the success.
    let retrying = app
        .client_builder(&merchant.client_id, merchant.key.clone())
        .attempts_max(2)
        .retry_delay(Duration::from_millis(5))
        .build()
        .unwrap();
    let answer = retrying.pay(&pay_request(&unique_id("PR"), "USD", 9901)).await.unwrap();
    assert_eq!(answer.result.result_code, "SUCCESS");
    // Each request id answers unknown once: a new one does too.
    let once = app.client_builder(&merchant.client_id, merchant.key.clone()).attempts_max(1).build().unwrap();
    let fresh = once.pay(&pay_request(&unique_id("PR"), "USD", 9901)).await.unwrap();
    assert_eq!(fresh.result.result_code, "UNKNOWN_EXCEPTION");

    let live = app
        .participant(ParticipantKind::Merchant, Environment::Live, Some("https://merchant.example/n"))
        .await;
    assert_eq!(
        live.client.pay(&pay_request(&unique_id("PR"), "USD", 9901)).await.unwrap().result.result_code,
        "SUCCESS",
        "not in live"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amount_9902_answers_after_the_clients_timeout_and_the_payment_exists() {
    let app = TestApp::spawn_with(|config| config.sandbox_slow_answer_ms = 1_500).await;
    let merchant = app.merchant().await;
    let impatient = app
        .client_builder(&merchant.client_id, merchant.key.clone())
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let request_id = unique_id("PR");
    let error = impatient.pay(&pay_request(&request_id, "USD", 9902)).await.unwrap_err();
    assert!(matches!(error, ocpay_sdk::SdkError::Transport(_)), "{error}");
    let inquiry = InquiryPaymentRequest { payment_id: None, payment_request_id: Some(request_id.clone()) };
    let found = merchant.client.inquire_payment(&inquiry).await.unwrap();
    assert_eq!(found.payment_status.as_deref(), Some("PROCESSING"), "the payment exists");
    // The retry a careful till makes gets the same payment.
    let patient = app
        .client_builder(&merchant.client_id, merchant.key.clone())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let retried = patient.pay(&pay_request(&request_id, "USD", 9902)).await.unwrap();
    assert_eq!(retried.payment_id, found.payment_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amount_9903_fails_the_first_inquiry_only() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let paid = merchant.client.pay(&pay_request(&unique_id("PR"), "USD", 9903)).await.unwrap();
    let inquiry = InquiryPaymentRequest { payment_id: paid.payment_id.clone(), payment_request_id: None };
    let first = merchant.client.inquire_payment(&inquiry).await.unwrap();
    assert_eq!(first.result.result_code, "UNKNOWN_EXCEPTION");
    let second = merchant.client.inquire_payment(&inquiry).await.unwrap();
    assert_eq!(
        (second.result.result_code.as_str(), second.payment_status.as_deref()),
        ("SUCCESS", Some("PROCESSING"))
    );
}
