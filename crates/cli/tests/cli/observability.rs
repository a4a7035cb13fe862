//! What `ocpay serve` gives an operator to watch: JSON log lines (`log_format = "json"`) that
//! carry the id each answer's `X-Request-Id` header gave, a settings error naming `log_format`
//! for a format it does not know, and Prometheus metrics on `metrics_listen`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{OCPAY, Server, wait_healthy};

/// A free port on the loopback address.
fn free_address() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("127.0.0.1:{port}")
}

/// Sends one HTTP/1.1 request and returns the whole answer, head and body.
fn http(address: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("the server accepts");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The value of header `name` in an answer's head.
fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next()?;
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[test]
fn json_log_lines_carry_the_request_id_that_the_answer_gave() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let (address, metrics) = (free_address(), free_address());
    let data = dir.path().join("data");
    let child = Command::new(OCPAY)
        .args(["serve", "--data-dir", data.to_str().unwrap(), "--listen", &address])
        .env("OCPAY_LOG_FORMAT", "json")
        .env("OCPAY_METRICS_LISTEN", &metrics)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("ocpay serve starts");
    let _server = Server { child, url: format!("http://{address}") };
    wait_healthy(&address);

    // A request the gateway refuses is logged (at info) inside its request's span.
    let answer = http(
        &address,
        "POST /ams/api/v1/payments/pay HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: 2\r\nconnection: close\r\n\r\n{}",
    );
    let id = header(&answer, "x-request-id").expect("an X-Request-Id header").to_owned();
    assert!(id.len() == 16 && id.bytes().all(|byte| byte.is_ascii_hexdigit()), "{id}");

    let started = Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|error| panic!("a JSON line ({error}): {line}"))
            })
            .collect();
        if lines.iter().any(|line| line["span"]["request_id"] == id.as_str()) {
            break lines;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no line with request id {id}:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let refused = lines.iter().find(|line| line["span"]["request_id"] == id.as_str()).unwrap();
    assert_eq!(refused["fields"]["result"], "PARAM_ILLEGAL", "{refused}");
    assert_eq!(refused["fields"]["message"], "header Client-Id: is required", "{refused}");
    assert_eq!(refused["level"], "INFO");
    assert!(lines.iter().any(|line| line.get("span").is_none()), "lines outside any request (the start) too");

    // The metrics listener counted the refusal.
    let scraped = http(&metrics, "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
    assert!(
        scraped.lines().any(|line| line.starts_with("ocpay_requests_total{") && line.contains("api=\"pay\"")),
        "{scraped}"
    );
}

#[test]
fn an_unknown_log_format_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(OCPAY)
        .args(["serve", "--data-dir", dir.path().join("data").to_str().unwrap(), "--listen", &free_address()])
        .env("OCPAY_LOG_FORMAT", "yaml")
        .output()
        .expect("ocpay serve runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "log_format in environment variable OCPAY_LOG_FORMAT: is \"text\" or \"json\", not \"yaml\""
        ),
        "{stderr}"
    );
}
