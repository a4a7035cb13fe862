//! Slow and abusive clients cannot hold the server: header-read timeout, request timeout,
//! connection cap. Each test configures short limits and measures what the server does.

use std::time::{Duration, Instant};

use ocpay_testkit::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `limit` passes); returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut received)).await;
    read.ok().map(|_| String::from_utf8_lossy(&received).into_owned())
}

async fn healthz(app: &TestApp) -> Result<reqwest::StatusCode, reqwest::Error> {
    let client = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    client.get(format!("{}/healthz", app.base_url)).send().await.map(|response| response.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_headers_is_cut_off() {
    let app = TestApp::spawn_with(|config| config.header_read_timeout_ms = 400).await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    let started = Instant::now();
    let trickle = async {
        for byte in b"POST /ams/api/v1/payments/pay HTTP/1.1\r\nhost: x\r\n".iter().cycle().take(200) {
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        read_until_closed(&mut stream, Duration::from_secs(1)).await
    };
    let (_, health) = tokio::join!(trickle, healthz(&app));
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "the trickling connection lived {elapsed:?}");
    assert_eq!(health.unwrap(), 200, "others are served meanwhile");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::spawn_with(|config| config.header_read_timeout_ms = 300).await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let started = Instant::now();
    let received =
        read_until_closed(&mut stream, Duration::from_secs(3)).await.expect("closed by the server");
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_too_slowly_gets_a_signed_unknown_result() {
    let app = TestApp::spawn_with(|config| config.request_timeout_ms = 500).await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    // Headers good enough to get the server to read the body, which then never completes.
    let head = format!(
        "POST /ams/api/v1/payments/pay HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         client-id: C\r\nrequest-time: {}\r\nsignature: s\r\ncontent-length: 1000\r\n\r\n",
        ocpay_testkit::Clock::now(&*app.clock).as_millisecond()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"{").await.unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut stream, Duration::from_secs(3)).await.expect("answered and closed");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("signature: algorithm=RSA256"), "signed: {answer}");
    assert!(answer.contains("\"resultCode\":\"UNKNOWN_EXCEPTION\""), "{answer}");
    assert!(answer.contains("not answered within 500 ms"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let app = TestApp::spawn_with(|config| {
        config.connections_max = 2;
        config.header_read_timeout_ms = 5_000;
    })
    .await;
    // Two keep-alive connections, each answered once, so the server has accepted both and
    // holds a slot for each.
    let mut first = TcpStream::connect(app.address).await.unwrap();
    let mut second = TcpStream::connect(app.address).await.unwrap();
    for stream in [&mut first, &mut second] {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut answer = [0u8; 12];
        stream.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200");
    }
    assert!(healthz(&app).await.is_err(), "a third connection is not served while two are open");
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    while healthz(&app).await.is_err() {
        assert!(Instant::now() < deadline, "a freed slot serves the next connection");
    }
}

// Floods: connections per source address, and the rate limits per address and per client id.
// The whole of 127/8 is loopback on Linux, so a test's "other client" binds 127.0.0.2 as its
// source; the clock is the test server's own, moved by the test, so no test sleeps.

/// The address a flooding or hoarding client sends from in these tests.
const ELSEWHERE: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// A TCP connection to the server from `source`.
async fn connect_from(app: &TestApp, source: std::net::IpAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(source, 0)).expect("127.0.0.2 is loopback");
    socket.connect(app.address).await.unwrap()
}

/// A plain HTTP client whose requests come from `source`.
fn http_from(source: std::net::IpAddr) -> reqwest::Client {
    reqwest::Client::builder().local_address(source).timeout(Duration::from_secs(5)).build().unwrap()
}

/// Sends a `pay` under `client_id` with a signature nobody made, from `source`.
async fn forged_pay(app: &TestApp, source: std::net::IpAddr, client_id: &str) -> reqwest::Response {
    http_from(source)
        .post(format!("{}/ams/api/v1/payments/pay", app.base_url))
        .header("content-type", "application/json; charset=UTF-8")
        .header("client-id", client_id)
        .header("request-time", ocpay_testkit::Clock::now(&*app.clock).as_millisecond().to_string())
        .header("signature", "algorithm=RSA256,keyVersion=1,signature=Zm9yZ2Vk")
        .body(r#"{"paymentRequestId":"forged"}"#)
        .send()
        .await
        .unwrap()
}

/// The result of one `pay` of `merchant`'s, whose signature the SDK verified.
async fn pay_result(merchant: &ocpay_testkit::TestParticipant) -> ocpay_protocol::AmsResult {
    let request = ocpay_testkit::pay_request(&ocpay_testkit::unique_id("PR"), "USD", 100);
    merchant.client.pay(&request).await.expect("a signed answer that verifies").result
}

async fn result_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (status, body["result"]["resultCode"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_over_its_rate_gets_an_unsigned_429_at_once_and_others_are_served() {
    let app = TestApp::spawn_with(|config| {
        config.rate_limit_address_per_second = 1;
        config.rate_limit_address_burst = 3;
        config.rate_limit_unverified_cost = 1;
        config.request_timeout_ms = 10_000;
    })
    .await;
    let merchant = app.merchant().await;
    for _ in 0..3 {
        let answered = forged_pay(&app, ELSEWHERE, &merchant.client_id).await;
        assert!(answered.headers().contains_key("signature"), "within its rate: signed");
        assert_eq!(result_code(answered).await, (200, "SIGNATURE_INVALID".to_owned()));
    }
    // Over the rate: refused before the body is read. This body never comes, yet the answer
    // does, at once, unsigned.
    let mut stream = connect_from(&app, ELSEWHERE).await;
    let head = format!(
        "POST /ams/api/v1/payments/pay HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         client-id: {}\r\nrequest-time: {}\r\nsignature: s\r\ncontent-length: 1000\r\n\r\n{{",
        merchant.client_id,
        ocpay_testkit::Clock::now(&*app.clock).as_millisecond()
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).to_ascii_lowercase();
    assert!(started.elapsed() < Duration::from_secs(1), "answered in {:?}", started.elapsed());
    assert!(answer.starts_with("http/1.1 429"), "{answer}");
    assert!(answer.contains("retry-after: 1\r\n"), "{answer}");
    assert!(!answer.contains("signature:"), "no RSA work for a refusal: {answer}");
    assert!(answer.contains(r#""resultcode":"request_traffic_exceed_limit""#), "{answer}");
    assert!(answer.contains(r#""resultstatus":"u""#), "{answer}");

    // Another address (the merchant's own, 127.0.0.1) is served meanwhile.
    assert_eq!(pay_result(&merchant).await.result_code, "SUCCESS");
    // A second later the address has a token again.
    assert_eq!(result_code(forged_pay(&app, ELSEWHERE, &merchant.client_id).await).await.0, 429);
    app.clock.advance(jiff::SignedDuration::from_secs(1));
    assert_eq!(
        result_code(forged_pay(&app, ELSEWHERE, &merchant.client_id).await).await,
        (200, "SIGNATURE_INVALID".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_requests_drain_their_address_faster_than_verified_ones() {
    let app = TestApp::spawn_with(|config| {
        config.rate_limit_address_per_second = 1;
        config.rate_limit_address_burst = 10;
        config.rate_limit_unverified_cost = 5;
    })
    .await;
    let merchant = app.merchant().await;
    // Verified requests take one token each: ten from the merchant's address are all served.
    for _ in 0..10 {
        assert_eq!(pay_result(&merchant).await.result_code, "SUCCESS");
    }
    // Forged ones take five: the third from another address is refused.
    for expected in [200, 200, 429] {
        assert_eq!(result_code(forged_pay(&app, ELSEWHERE, &merchant.client_id).await).await.0, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_over_its_rate_gets_a_signed_refusal_and_others_are_served() {
    let app = TestApp::spawn_with(|config| {
        config.rate_limit_client_per_second = 1;
        config.rate_limit_client_burst = 2;
    })
    .await;
    let (busy, other) = (app.merchant().await, app.merchant().await);
    let pay = pay_result;
    for _ in 0..2 {
        assert_eq!(pay(&busy).await.result_code, "SUCCESS");
    }
    // The SDK verified the refusal's signature, as it does every answer's.
    let refused = pay(&busy).await;
    assert_eq!(
        (refused.result_code.as_str(), refused.result_status.as_str()),
        ("REQUEST_TRAFFIC_EXCEED_LIMIT", "U")
    );
    assert_eq!(pay(&other).await.result_code, "SUCCESS", "another client id has its own budget");

    // Raw: HTTP 200 (what the official SDKs read an AMS result from), signed, with Retry-After.
    let request = crate::helpers::RawRequest::new(
        &app,
        &busy.client_id,
        "/ams/api/v1/payments/inquiryPayment",
        r#"{"paymentRequestId":"none"}"#,
    );
    let signature = crate::helpers::signature_for(&busy.key, &request);
    let response = reqwest::Client::new()
        .post(format!("{}{}", app.base_url, request.path))
        .header("content-type", "application/json; charset=UTF-8")
        .header("client-id", &busy.client_id)
        .header("request-time", request.request_time.clone().unwrap())
        .header("signature", signature)
        .body(request.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["retry-after"], "1");
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    crate::helpers::verify_platform_signature(&app.platform_key, &request.path, &headers, &body);
    assert!(body.contains("REQUEST_TRAFFIC_EXCEED_LIMIT"), "{body}");

    // The refusals are audited as the merchant's requests.
    let client_id = ocpay_core::ids::ClientId::parse(&busy.client_id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let trail = app.state.store.audit_events(&client_id, 100).await.unwrap();
        let refused = trail.iter().filter(|event| event.result_code == "REQUEST_TRAFFIC_EXCEED_LIMIT");
        if refused.count() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the refusals reach the audit trail: {trail:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    app.clock.advance(jiff::SignedDuration::from_secs(1));
    assert_eq!(pay(&busy).await.result_code, "SUCCESS", "a second later it has a token again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forger_cannot_spend_a_merchants_budget() {
    let app = TestApp::spawn_with(|config| {
        config.rate_limit_client_per_second = 1;
        config.rate_limit_client_burst = 2;
        config.rate_limit_address_per_second = 0;
    })
    .await;
    let merchant = app.merchant().await;
    for _ in 0..20 {
        let forged = forged_pay(&app, ELSEWHERE, &merchant.client_id).await;
        assert_eq!(result_code(forged).await, (200, "SIGNATURE_INVALID".to_owned()));
    }
    for _ in 0..2 {
        assert_eq!(pay_result(&merchant).await.result_code, "SUCCESS", "the merchant's budget is whole");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_an_address_cap_are_closed_unread_while_others_are_served() {
    let app = TestApp::spawn_with(|config| {
        config.connections_per_address_max = 3;
        config.header_read_timeout_ms = 10_000;
    })
    .await;
    // Three keep-alive connections from one address, each answered once, so the server holds
    // all three.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from(&app, ELSEWHERE).await;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut answer = [0u8; 12];
        stream.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200");
        held.push(stream);
    }
    // A fourth from that address is closed at once, before its request is read.
    let mut fourth = connect_from(&app, ELSEWHERE).await;
    let _ = fourth.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let answer = read_until_closed(&mut fourth, Duration::from_secs(2)).await;
    assert_eq!(answer.as_deref(), Some(""), "closed with no answer");
    // Another address is served meanwhile.
    assert_eq!(healthz(&app).await.unwrap(), 200);
    // Once one of the three closes, the address may open another.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answered = http_from(ELSEWHERE).get(format!("{}/healthz", app.base_url)).send().await;
        if answered.is_ok_and(|response| response.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "a freed slot serves the address's next connection");
    }
}
