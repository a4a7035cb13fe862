//! pay, inquiryPayment and cancel through the SDK, as a merchant's till would call them.

use jiff::SignedDuration;
use ocpay_protocol::datetime;
use ocpay_protocol::model::Amount;
use ocpay_protocol::payments::{CancelRequest, InquiryPaymentRequest, PayResponse};
use ocpay_testkit::{Clock, TestApp, pay_request, unique_id};

fn by_request_id(id: &str) -> InquiryPaymentRequest {
    InquiryPaymentRequest { payment_id: None, payment_request_id: Some(id.into()) }
}

fn code_value(response: &PayResponse) -> String {
    response.order_code_form.as_ref().unwrap().text_code().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_issues_an_order_code_that_can_be_inquired_and_cancelled() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let request_id = unique_id("PR");
    let paid = merchant.client.pay(&pay_request(&request_id, "USD", 1250)).await.unwrap();

    assert_eq!(paid.result.result_code, "SUCCESS");
    assert_eq!(paid.payment_request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(paid.payment_amount, Some(Amount::new("USD", 1250)));
    let form = paid.order_code_form.as_ref().unwrap();
    let created = datetime::parse(paid.payment_create_time.as_deref().unwrap()).unwrap();
    let expires = datetime::parse(form.expire_time.as_deref().unwrap()).unwrap();
    assert_eq!(expires.duration_since(created), SignedDuration::from_mins(15), "the default expiry");
    let code = code_value(&paid);
    let token = code.strip_prefix(&format!("{}/c/", app.base_url)).expect("the code is under the public URL");
    assert!(token.len() >= 22, "at least 128 random bits: {token}");
    let display_types: Vec<&str> =
        form.code_details.iter().map(|detail| detail.display_type.as_str()).collect();
    assert_eq!(display_types, ["TEXT", "SMALLIMAGE", "MIDDLEIMAGE", "BIGIMAGE"]);
    for detail in &form.code_details[1..] {
        assert!(detail.code_value.starts_with(&code) && detail.code_value.ends_with(".png"), "{detail:?}");
    }

    let payment_id = paid.payment_id.clone().unwrap();
    for request in [
        InquiryPaymentRequest { payment_id: Some(payment_id.clone()), payment_request_id: None },
        by_request_id(&request_id),
    ] {
        let inquiry = merchant.client.inquire_payment(&request).await.unwrap();
        assert_eq!(inquiry.result.result_code, "SUCCESS");
        assert_eq!(inquiry.payment_status.as_deref(), Some("PROCESSING"));
        assert_eq!(inquiry.payment_result_code.as_deref(), Some("PAYMENT_IN_PROCESS"));
        assert_eq!(inquiry.payment_id.as_deref(), Some(payment_id.as_str()));
        assert_eq!(inquiry.payment_amount, Some(Amount::new("USD", 1250)));
        assert_eq!(inquiry.payment_create_time, paid.payment_create_time);
        assert_eq!(inquiry.payment_time, None, "only a paid payment has a payment time");
    }

    let cancel = CancelRequest { payment_id: None, payment_request_id: Some(request_id.clone()) };
    let cancelled = merchant.client.cancel(&cancel).await.unwrap();
    assert_eq!(cancelled.result.result_code, "SUCCESS");
    assert_eq!(cancelled.payment_id.as_deref(), Some(payment_id.as_str()));
    assert!(cancelled.cancel_time.is_some());

    app.clock.advance(SignedDuration::from_secs(30));
    let again = merchant.client.cancel(&cancel).await.unwrap();
    assert_eq!(again.result.result_code, "SUCCESS", "cancelling twice gives the same answer");
    assert_eq!(again.cancel_time, cancelled.cancel_time);

    let inquiry = merchant.client.inquire_payment(&by_request_id(&request_id)).await.unwrap();
    assert_eq!(inquiry.payment_status.as_deref(), Some("CANCELLED"));
    assert_eq!(inquiry.payment_result_code.as_deref(), Some("ORDER_IS_CANCELED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_pay_returns_the_original_order_code() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let request_id = unique_id("PR");
    let mut request = pay_request(&request_id, "JPY", 599);
    request.payment_expiry_time = Some(datetime::format(app.clock.now() + SignedDuration::from_mins(5)));
    let first = merchant.client.pay(&request).await.unwrap();

    // Later, after the requested expiry time has passed, the identical request (a retry after
    // a lost answer) still gets the original answer.
    app.clock.advance(SignedDuration::from_mins(10));
    let mut retry = request.clone();
    retry.payment_notify_url = Some("https://other.example/notify".into());
    let second = merchant.client.pay(&retry).await.unwrap();
    assert_eq!(second.result.result_code, "SUCCESS");
    assert_eq!(second.payment_id, first.payment_id);
    assert_eq!(code_value(&second), code_value(&first));
    assert_eq!(second.order_code_form.unwrap().expire_time, first.order_code_form.unwrap().expire_time);

    let mut changed = request.clone();
    changed.payment_amount = Some(Amount::new("JPY", 600));
    changed.order.as_mut().unwrap().order_amount = Some(Amount::new("JPY", 600));
    let refused = merchant.client.pay(&changed).await.unwrap();
    assert_eq!(refused.result.result_code, "REPEAT_REQ_INCONSISTENT");
    assert_eq!(refused.result.result_status, ocpay_protocol::ResultStatus::F);
    assert!(refused.payment_id.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_create_one_payment() {
    let app = TestApp::spawn().await;
    let merchant = std::sync::Arc::new(app.merchant().await);
    let request = pay_request(&unique_id("PR"), "USD", 990);
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let merchant = merchant.clone();
        let request = request.clone();
        tasks.push(tokio::spawn(async move { merchant.client.pay(&request).await.unwrap() }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert!(answers.iter().all(|answer| answer.result.result_code == "SUCCESS"));
    let first = &answers[0];
    for answer in &answers {
        assert_eq!(answer.payment_id, first.payment_id);
        assert_eq!(code_value(answer), code_value(first));
        assert_eq!(answer.order_code_form, first.order_code_form);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_invisible_to_other_merchants() {
    let app = TestApp::spawn().await;
    let alice = app.merchant().await;
    let bob = app.merchant().await;
    let request_id = unique_id("PR");
    let paid = alice.client.pay(&pay_request(&request_id, "USD", 100)).await.unwrap();
    let payment_id = paid.payment_id.unwrap();

    let nonexistent = bob.client.inquire_payment(&by_request_id("NO-SUCH-ID")).await.unwrap();
    assert_eq!(nonexistent.result.result_code, "ORDER_NOT_EXIST");
    let by_id = InquiryPaymentRequest { payment_id: Some(payment_id.clone()), payment_request_id: None };
    for answer in [
        bob.client.inquire_payment(&by_id).await.unwrap(),
        bob.client.inquire_payment(&by_request_id(&request_id)).await.unwrap(),
    ] {
        assert_eq!(answer.result, nonexistent.result, "exactly the answer for a payment that does not exist");
        assert_eq!(answer.payment_status, None);
    }
    for cancel in [
        CancelRequest { payment_id: Some(payment_id.clone()), payment_request_id: None },
        CancelRequest { payment_id: None, payment_request_id: Some(request_id.clone()) },
    ] {
        let answer = bob.client.cancel(&cancel).await.unwrap();
        assert_eq!(answer.result, nonexistent.result);
    }
    let still = alice.client.inquire_payment(&by_id).await.unwrap();
    assert_eq!(still.payment_status.as_deref(), Some("PROCESSING"), "bob's cancels changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_time_is_bounded() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let now = app.clock.now();
    let cases = [
        (SignedDuration::from_mins(30), "SUCCESS"),
        (SignedDuration::from_mins(31), "PARAM_ILLEGAL"),
        (SignedDuration::from_secs(-1), "PARAM_ILLEGAL"),
    ];
    for (after, expected) in cases {
        let mut request = pay_request(&unique_id("PR"), "USD", 100);
        let expiry = datetime::format(now + after);
        request.payment_expiry_time = Some(expiry.clone());
        let answer = merchant.client.pay(&request).await.unwrap();
        assert_eq!(answer.result.result_code, expected, "expiry {after:?} after now");
        if expected == "SUCCESS" {
            assert_eq!(answer.order_code_form.unwrap().expire_time, Some(expiry));
        } else {
            assert!(
                answer.result.result_message.starts_with("paymentExpiryTime:"),
                "{}",
                answer.result.result_message
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inquiry_and_cancel_need_an_id() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let answer = merchant.client.inquire_payment(&InquiryPaymentRequest::default()).await.unwrap();
    assert_eq!(answer.result.result_code, "PARAM_ILLEGAL");
    assert!(answer.result.result_message.contains("paymentId"), "{}", answer.result.result_message);
    let answer = merchant.client.cancel(&CancelRequest::default()).await.unwrap();
    assert_eq!(answer.result.result_code, "PARAM_ILLEGAL");
    let unknown = CancelRequest { payment_id: Some("20260101000000123".into()), payment_request_id: None };
    assert_eq!(merchant.client.cancel(&unknown).await.unwrap().result.result_code, "ORDER_NOT_EXIST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_id_wins_over_payment_request_id() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let (first_request, second_request) = (unique_id("PR"), unique_id("PR"));
    let first = merchant.client.pay(&pay_request(&first_request, "USD", 100)).await.unwrap();
    let second = merchant.client.pay(&pay_request(&second_request, "USD", 200)).await.unwrap();
    let first_id = first.payment_id.clone().unwrap();

    let both = InquiryPaymentRequest {
        payment_id: Some(first_id.clone()),
        payment_request_id: Some(second_request.clone()),
    };
    let answer = merchant.client.inquire_payment(&both).await.unwrap();
    assert_eq!(answer.result.result_code, "SUCCESS", "{:?}", answer.result);
    assert_eq!(answer.payment_id.as_deref(), Some(first_id.as_str()), "the paymentId's payment answers");
    assert_eq!(answer.payment_request_id.as_deref(), Some(first_request.as_str()));
    assert_eq!(answer.payment_amount, Some(Amount::new("USD", 100)));

    let cancel = CancelRequest {
        payment_id: Some(first_id.clone()),
        payment_request_id: Some(second_request.clone()),
    };
    let cancelled = merchant.client.cancel(&cancel).await.unwrap();
    assert_eq!(cancelled.result.result_code, "SUCCESS", "{:?}", cancelled.result);
    assert_eq!(cancelled.payment_id.as_deref(), Some(first_id.as_str()));
    assert_eq!(cancelled.payment_request_id.as_deref(), Some(first_request.as_str()));
    let statuses = [
        merchant.client.inquire_payment(&by_request_id(&first_request)).await.unwrap().payment_status,
        merchant.client.inquire_payment(&by_request_id(&second_request)).await.unwrap().payment_status,
    ];
    assert_eq!(
        statuses.map(|status| status.unwrap_or_default()),
        ["CANCELLED".to_owned(), "PROCESSING".to_owned()],
        "the cancel reached the paymentId's payment, not the paymentRequestId's"
    );
    assert_eq!(second.result.result_code, "SUCCESS");
}
