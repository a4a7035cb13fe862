//! `ocpay logs tail`: the participant's API log as JSON lines, from its profile, filtered by API
//! or result code, once (`--once`) or following the log as it grows.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{OCPAY, json, ocpay, sandbox_merchant};

/// The lines `ocpay logs tail --once` prints with `extra`, once `ready` says they are all there
/// (the server writes its log a moment after it answers).
fn tail_once(profile: &str, extra: &[&str], ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let mut args = vec!["logs", "tail", "--profile", profile, "--once"];
        args.extend_from_slice(extra);
        let output = ocpay(&args);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|error| panic!("a JSON line ({error}): {line}"))
            })
            .collect();
        if ready(&lines) || started.elapsed() > Duration::from_secs(10) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn logs_tail_prints_the_api_log_as_json_lines_and_follows_it() {
    let (_dir, _data, _server, merchant) = sandbox_merchant();
    let profile = merchant["profile"].as_str().unwrap().to_owned();
    let paid = json(&ocpay(&["pay", "--profile", &profile, "--amount", "1250", "--currency", "USD"]));
    let payment_id = paid["paymentId"].as_str().unwrap().to_owned();
    let inquired = ocpay(&["inquire", "--profile", &profile, "--payment-id", &payment_id]);
    assert!(inquired.status.success());

    let lines = tail_once(&profile, &[], |lines| lines.len() >= 2);
    let apis: Vec<&str> = lines.iter().map(|line| line["api"].as_str().unwrap()).collect();
    assert_eq!(apis, ["pay", "inquiryPayment"], "oldest first, and reading the log is not logged: {lines:?}");
    let pay = &lines[0];
    assert_eq!((pay["resultStatus"].as_str(), pay["resultCode"].as_str()), (Some("S"), Some("SUCCESS")));
    assert_eq!(
        (pay["httpStatus"].as_str(), pay["verified"].as_bool(), pay["keyVersion"].as_str()),
        (Some("200"), Some(true), Some("1"))
    );
    assert!(pay["time"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok(), "an ISO time: {pay}");
    assert!(pay["latencyMicros"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    let request_id = pay["requestId"].as_str().unwrap();
    assert!(request_id.len() == 16 && request_id.bytes().all(|byte| byte.is_ascii_hexdigit()), "{pay}");
    let first_id: u64 = pay["id"].as_str().unwrap().parse().unwrap();
    let second_id: u64 = lines[1]["id"].as_str().unwrap().parse().unwrap();
    assert!(second_id > first_id);

    let inquiries = tail_once(&profile, &["--api", "inquiryPayment"], |lines| !lines.is_empty());
    assert_eq!(inquiries.len(), 1, "{inquiries:?}");
    assert!(tail_once(&profile, &["--result", "ORDER_NOT_EXIST"], |_| true).is_empty());
    assert_eq!(tail_once(&profile, &["--last", "1"], |_| true).len(), 1, "only the newest");

    // Following: a request made while it runs appears as a new line.
    let mut tail = Command::new(OCPAY)
        .args(["logs", "tail", "--profile", &profile, "--interval", "100ms", "--last", "1"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ocpay logs tail starts");
    let (lines, received) = std::sync::mpsc::channel();
    let stdout = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let newest = received.recv_timeout(Duration::from_secs(10)).expect("the newest entry first");
    assert!(newest.contains("\"inquiryPayment\""), "{newest}");
    let cancelled = ocpay(&["cancel", "--profile", &profile, "--payment-id", &payment_id]);
    assert!(cancelled.status.success());
    let next = received.recv_timeout(Duration::from_secs(10)).expect("the new request, as it arrives");
    let _ = tail.kill();
    let _ = tail.wait();
    let next: Value = serde_json::from_str(&next).unwrap();
    assert_eq!((next["api"].as_str(), next["resultCode"].as_str()), (Some("cancel"), Some("SUCCESS")));
}
