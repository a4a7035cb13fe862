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
