//! The SDK against a scripted gateway: a raw HTTP responder that answers with whatever each
//! test scripts, signed with a test platform key (or not), and records what it received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocpay_protocol::payments::InquiryPaymentRequest;
use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{SigningKey, VerifyingKey};
use ocpay_sdk::{Client, SdkError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the scripted gateway does with one request.
#[derive(Clone)]
enum Answer {
    /// A signed JSON body with this result status and code.
    Signed(&'static str, &'static str),
    /// A body signed by some other key.
    ForgedSignature,
    /// A genuine platform answer, but for another client.
    ForOtherClient,
    /// No signature headers at all, HTTP 200.
    Unsigned,
    /// Close the connection without answering.
    Hangup,
    /// An unsigned HTTP 502 from a proxy.
    BadGateway,
}

struct Received {
    path: String,
    client_id: String,
    body: Vec<u8>,
}

struct Gateway {
    url: String,
    platform_key: VerifyingKey,
    received: Arc<Mutex<Vec<Received>>>,
}

async fn gateway(script: Vec<Answer>) -> Gateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let platform = SigningKey::generate().unwrap();
    let platform_key = platform.verifying_key();
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    tokio::spawn(async move {
        let mut script = script.into_iter();
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let (path, client_id, body) = read_request(&mut stream).await;
            log.lock().unwrap().push(Received { path: path.clone(), client_id: client_id.clone(), body });
            let answer = script.next().unwrap_or(Answer::Signed("S", "SUCCESS"));
            let response = match answer {
                Answer::Hangup => continue,
                Answer::BadGateway => {
                    "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into()
                }
                Answer::Unsigned => respond(None, &path, &client_id, "S", "SUCCESS"),
                Answer::ForgedSignature => {
                    respond(Some(&SigningKey::generate().unwrap()), &path, &client_id, "S", "SUCCESS")
                }
                Answer::Signed(status, code) => respond(Some(&platform), &path, &client_id, status, code),
                Answer::ForOtherClient => respond(Some(&platform), &path, "SOMEONE_ELSE", "S", "SUCCESS"),
            };
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    Gateway { url, platform_key, received }
}

fn respond(key: Option<&SigningKey>, path: &str, client_id: &str, status: &str, code: &str) -> String {
    let body = format!(
        r#"{{"result":{{"resultCode":"{code}","resultStatus":"{status}","resultMessage":"m"}},"paymentStatus":"PROCESSING"}}"#
    );
    let time = "2026-01-01T00:00:00+00:00";
    let signature = key
        .map(|key| {
            let header =
                key.sign_header(1, &content_to_sign("POST", path, client_id, time, body.as_bytes())).unwrap();
            format!("client-id: {client_id}\r\nresponse-time: {time}\r\nsignature: {header}\r\n")
        })
        .unwrap_or_default();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{signature}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> (String, String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).await.unwrap();
        data.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let header = |name: &str| {
                head.lines()
                    .find_map(|line| line.split_once(':').filter(|(key, _)| key.eq_ignore_ascii_case(name)))
                    .map(|(_, value)| value.trim().to_owned())
                    .unwrap_or_default()
            };
            let length: usize = header("content-length").parse().unwrap_or(0);
            if data.len() >= end + 4 + length {
                let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
                return (path, header("client-id"), data[end + 4..end + 4 + length].to_vec());
            }
        }
    }
}

fn client(gateway: &Gateway, attempts: u32) -> Client {
    Client::builder(
        &gateway.url,
        "SANDBOX_TEST",
        SigningKey::generate().unwrap(),
        gateway.platform_key.clone(),
    )
    .attempts_max(attempts)
    .retry_delay(Duration::from_millis(10))
    .timeout(Duration::from_secs(2))
    .build()
    .unwrap()
}

fn inquiry() -> InquiryPaymentRequest {
    InquiryPaymentRequest { payment_id: None, payment_request_id: Some("PR-1".into()) }
}

#[tokio::test]
async fn unknown_results_and_transport_failures_are_retried_with_the_same_body() {
    let gateway = gateway(vec![
        Answer::Signed("U", "UNKNOWN_EXCEPTION"),
        Answer::Hangup,
        Answer::BadGateway,
        Answer::Signed("S", "SUCCESS"),
    ])
    .await;
    let response = client(&gateway, 4).inquire_payment(&inquiry()).await.unwrap();
    assert_eq!(response.result.result_code, "SUCCESS");
    let received = gateway.received.lock().unwrap();
    assert_eq!(received.len(), 4);
    assert!(received.iter().all(|request| request.body == received[0].body), "the same body every time");
    assert_eq!(
        received[0].path, "/ams/sandbox/api/v1/payments/inquiryPayment",
        "sandbox client ids use sandbox paths"
    );
    assert_eq!(received[0].client_id, "SANDBOX_TEST");
}

#[tokio::test]
async fn retries_stop_at_the_limit_and_a_final_u_is_returned() {
    let gateway = gateway(vec![Answer::Signed("U", "UNKNOWN_EXCEPTION"); 5]).await;
    let response = client(&gateway, 3).inquire_payment(&inquiry()).await.unwrap();
    assert_eq!(response.result.result_code, "UNKNOWN_EXCEPTION");
    assert_eq!(gateway.received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn failures_are_not_retried() {
    let gateway = gateway(vec![Answer::Signed("F", "PARAM_ILLEGAL")]).await;
    let response = client(&gateway, 3).inquire_payment(&inquiry()).await.unwrap();
    assert_eq!(response.result.result_code, "PARAM_ILLEGAL");
    assert_eq!(gateway.received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn responses_not_signed_by_the_platform_are_errors() {
    for answer in [Answer::ForgedSignature, Answer::Unsigned, Answer::ForOtherClient] {
        let gateway = gateway(vec![answer; 3]).await;
        let error = client(&gateway, 3).inquire_payment(&inquiry()).await.unwrap_err();
        assert!(matches!(error, SdkError::ResponseSignature(_)), "{error}");
        assert_eq!(gateway.received.lock().unwrap().len(), 1, "a forged answer is not retried");
    }
}

#[tokio::test]
async fn an_unreachable_gateway_is_a_transport_error_after_the_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let key = SigningKey::generate().unwrap();
    let client = Client::builder(url, "C1", key.clone(), key.verifying_key())
        .attempts_max(2)
        .retry_delay(Duration::from_millis(1))
        .build()
        .unwrap();
    let error = client.inquire_payment(&inquiry()).await.unwrap_err();
    assert!(matches!(error, SdkError::Transport(_)), "{error}");
}
