//! The signed envelope: headers, time, size, caller, key and signature, each failure mapped to
//! its AMS result and every answer signed by the platform.

use jiff::SignedDuration;
use ocpay_protocol::SigningKey;
use ocpay_testkit::{Clock, TestApp, pay_request, unique_id};

use crate::helpers::{RawRequest, send, signature_for};

const PAY: &str = "/ams/api/v1/payments/pay";

fn pay_body() -> Vec<u8> {
    serde_json::to_vec(&pay_request(&unique_id("PR"), "USD", 1000)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_envelope_failure_has_its_result() {
    let app = TestApp::spawn_with(|config| config.request_body_bytes_max = 4096).await;
    let merchant = app.merchant().await;
    let stranger_key = SigningKey::generate().unwrap();
    let base = RawRequest::new(&app, &merchant.client_id, PAY, pay_body());
    let now = app.clock.now();
    let iso = move |offset: SignedDuration| ocpay_protocol::datetime::format(now + offset);
    // A signature over another body, sent with this one.
    let other_body = RawRequest { body: pay_body(), ..base.clone() };
    let other_signature = signature_for(&merchant.key, &other_body);

    type Change = Box<dyn Fn(&mut RawRequest)>;
    let cases: Vec<(&str, Change, &str, &str)> = vec![
        ("GET", Box::new(|r| r.method = reqwest::Method::GET), "METHOD_NOT_SUPPORTED", ""),
        ("PUT", Box::new(|r| r.method = reqwest::Method::PUT), "METHOD_NOT_SUPPORTED", ""),
        ("unknown API", Box::new(|r| r.path = "/ams/api/v1/payments/capture".into()), "NO_INTERFACE_DEF", ""),
        ("wrong version", Box::new(|r| r.path = "/ams/api/v2/payments/pay".into()), "NO_INTERFACE_DEF", ""),
        ("no content type", Box::new(|r| r.content_type = None), "MEDIA_TYPE_NOT_ACCEPTABLE", ""),
        (
            "form content",
            Box::new(|r| r.content_type = Some("application/x-www-form-urlencoded".into())),
            "MEDIA_TYPE_NOT_ACCEPTABLE",
            "",
        ),
        (
            "latin-1",
            Box::new(|r| r.content_type = Some("application/json; charset=ISO-8859-1".into())),
            "MEDIA_TYPE_NOT_ACCEPTABLE",
            "",
        ),
        ("no client id", Box::new(|r| r.client_id = None), "PARAM_ILLEGAL", "header Client-Id: is required"),
        (
            "no request time",
            Box::new(|r| r.request_time = None),
            "PARAM_ILLEGAL",
            "header Request-Time: is required",
        ),
        (
            "garbled time",
            Box::new(|r| r.request_time = Some("yesterday".into())),
            "PARAM_ILLEGAL",
            "header Request-Time: must be epoch milliseconds",
        ),
        (
            "time too old",
            Box::new(move |r| {
                r.request_time = Some((now - SignedDuration::from_secs(301)).as_millisecond().to_string())
            }),
            "PARAM_ILLEGAL",
            "header Request-Time: must be within 300 seconds",
        ),
        (
            "time too new",
            Box::new(move |r| r.request_time = Some(iso(SignedDuration::from_secs(301)))),
            "PARAM_ILLEGAL",
            "header Request-Time: must be within 300 seconds",
        ),
        (
            "no signature",
            Box::new(|r| r.signature = Some(String::new())),
            "PARAM_ILLEGAL",
            "header Signature:",
        ),
        (
            "garbled signature",
            Box::new(|r| r.signature = Some("algorithm=RSA256,keyVersion=1,signature=%%%".into())),
            "SIGNATURE_INVALID",
            "signature: malformed",
        ),
        (
            "other algorithm",
            Box::new(|r| r.signature = Some("algorithm=ECC224,keyVersion=1,signature=AAAA".into())),
            "SIGNATURE_INVALID",
            "signature: unsupported signature algorithm",
        ),
        (
            "too large",
            Box::new(|r| r.body = vec![b' '; 4097]),
            "PARAM_ILLEGAL",
            "request body: must be at most 4096 bytes",
        ),
        ("unknown client", Box::new(|r| r.client_id = Some("SANDBOX_NOBODY".into())), "CLIENT_INVALID", ""),
        ("unknown key version", Box::new(|r| r.key_version = 2), "KEY_NOT_FOUND", "keyVersion 2:"),
        (
            "body changed after signing",
            Box::new(move |r| r.signature = Some(other_signature.clone())),
            "SIGNATURE_INVALID",
            "signature: does not verify",
        ),
    ];
    for (name, change, code, message) in cases {
        let mut request = base.clone();
        change(&mut request);
        let answer = send(&app, &merchant.key, request).await;
        assert_eq!(answer.result.result_code, code, "{name}: {}", answer.body);
        assert!(
            answer.result.result_message.starts_with(message),
            "{name}: {}",
            answer.result.result_message
        );
        let expected_status = if name == "too large" { 413 } else { 200 };
        assert_eq!(answer.status, expected_status, "{name}");
    }

    // Signed with a key that is not the merchant's.
    let answer = send(&app, &stranger_key, base.clone()).await;
    assert_eq!(answer.result.result_code, "SIGNATURE_INVALID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_time_formats_and_both_path_prefixes_are_accepted() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    for path in [PAY, "/ams/sandbox/api/v1/payments/pay"] {
        for time in
            [app.clock.now().as_millisecond().to_string(), ocpay_protocol::datetime::format(app.clock.now())]
        {
            let mut request = RawRequest::new(&app, &merchant.client_id, path, pay_body());
            request.request_time = Some(time.clone());
            let answer = send(&app, &merchant.key, request).await;
            assert_eq!(answer.result.result_code, "SUCCESS", "{path} at {time}: {}", answer.body);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_time_just_inside_the_window_is_accepted() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    for offset in [-299, 299] {
        let mut request = RawRequest::new(&app, &merchant.client_id, PAY, pay_body());
        request.request_time =
            Some((app.clock.now() + SignedDuration::from_secs(offset)).as_millisecond().to_string());
        assert_eq!(
            send(&app, &merchant.key, request).await.result.result_code,
            "SUCCESS",
            "offset {offset}s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_oversized_body_is_refused_before_it_is_read() {
    let app = TestApp::spawn_with(|config| config.request_body_bytes_max = 1024).await;
    // Declare 10 GB and send nothing: the answer must come at once, not after a body timeout.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let head = format!(
        "POST {PAY} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nclient-id: C\r\nrequest-time: {}\r\nsignature: algorithm=RSA256,keyVersion=1,signature=AAAA\r\ncontent-length: 10000000000\r\n\r\n",
        app.clock.now().as_millisecond()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut answer)).await;
    let n = read.expect("answered without waiting for the body").unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("request body: must be at most 1024 bytes"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_form_request_target_is_verified_by_its_path() {
    // The official Python SDK writes `POST http://host:port/ams/api/v1/... HTTP/1.1`.
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let body = pay_body();
    let request = RawRequest::new(&app, &merchant.client_id, PAY, body.clone());
    let signature = signature_for(&merchant.key, &request);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let head = format!(
        "POST {}{PAY} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json; charset=UTF-8\r\nclient-id: {}\r\nrequest-time: {}\r\nsignature: {signature}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        app.base_url,
        app.address,
        merchant.client_id,
        request.request_time.as_deref().unwrap(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"resultCode\":\"SUCCESS\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_answers_unknown_and_leaks_nothing() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let request = pay_request(&unique_id("PR"), "USD", 1000);
    app.faults.fail_writes(true);
    let answer = merchant.client.pay(&request).await.unwrap();
    assert_eq!(
        (answer.result.result_code.as_str(), answer.result.result_status),
        ("UNKNOWN_EXCEPTION", ocpay_protocol::ResultStatus::U)
    );
    let message = answer.result.result_message.to_lowercase();
    for internal in ["disk", "database", "/var", "injected", "sqlite"] {
        assert!(!message.contains(internal), "the message leaks {internal:?}: {message}");
    }
    let health = reqwest::get(format!("{}/readyz", app.base_url)).await.unwrap();
    assert_eq!(health.status(), 503, "not ready while the store fails");
    // Nothing was stored: once the store works, the same request creates the payment.
    app.faults.fail_writes(false);
    let retried = merchant.client.pay(&request).await.unwrap();
    assert_eq!(retried.result.result_code, "SUCCESS");
    let inquiry = ocpay_protocol::payments::InquiryPaymentRequest {
        payment_id: retried.payment_id.clone(),
        payment_request_id: None,
    };
    assert_eq!(
        merchant.client.inquire_payment(&inquiry).await.unwrap().payment_status.as_deref(),
        Some("PROCESSING")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_in_another_letter_case_names_no_api_and_is_answered_signed() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    for path in
        ["/AMS/api/v1/payments/pay", "/Ams/sandbox/api/v1/payments/pay", "/ams/API/v1/payments/pay", "/AMS"]
    {
        // `send` fails the test unless the answer is signed by the platform.
        let answer =
            send(&app, &merchant.key, RawRequest::new(&app, &merchant.client_id, path, pay_body())).await;
        assert_eq!(
            (answer.status, answer.result.result_code.as_str()),
            (200, "NO_INTERFACE_DEF"),
            "{path}: {}",
            answer.body
        );
    }
    // Outside the gateway's prefix, a missing page is a plain 404.
    let missing = reqwest::get(format!("{}/amsterdam", app.base_url)).await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_time_limit_gets_a_signed_unknown_with_http_200() {
    // Sandbox magic amount 9902 answers late: later than the request timeout here.
    let app = TestApp::spawn_with(|config| {
        config.request_timeout_ms = 300;
        config.sandbox_slow_answer_ms = 5_000;
    })
    .await;
    let merchant = app.merchant().await;
    let body = serde_json::to_vec(&pay_request(&unique_id("PR"), "USD", 9902)).unwrap();
    let answer = send(&app, &merchant.key, RawRequest::new(&app, &merchant.client_id, PAY, body)).await;
    // HTTP 200, because the official SDKs read no result from any other status.
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        (answer.result.result_code.as_str(), answer.result.result_status.as_str()),
        ("UNKNOWN_EXCEPTION", "U")
    );
    assert!(answer.result.result_message.contains("retry the same request or inquire"), "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_forbids_content_sniffing() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let paid = crate::helpers::order_code(&merchant, "USD", 1250).await;
    let token = crate::helpers::token_of(&crate::helpers::code_value(&paid));
    let http = reqwest::Client::new();
    let gets = [
        format!("/wallet/api/codes/{token}"),
        format!("/c/{token}/qr-small.svg"),
        format!("/c/{token}/qr-small.png"),
        format!("/c/{token}"),
        "/healthz".to_owned(),
        "/.well-known/ocpay/platform-keys".to_owned(),
        "/no-such-page".to_owned(),
        PAY.to_owned(),
    ];
    for path in gets {
        let response = http.get(format!("{}{path}", app.base_url)).send().await.unwrap();
        let header =
            response.headers().get("x-content-type-options").map(|value| value.to_str().unwrap().to_owned());
        assert_eq!(header.as_deref(), Some("nosniff"), "GET {path}: {:?}", response.headers());
    }
}
