//! `ocpay acceptance`: the go-live report as JSON, and the exit code that says whether a case is
//! open, against a real `ocpay serve` and traffic made with the CLI's own API commands.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{json, ocpay, sandbox_merchant};

/// The case named `name` of a report.
fn case<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["cases"].as_array().unwrap().iter().find(|case| case["case"] == name).unwrap()
}

#[test]
fn acceptance_prints_the_go_live_report_and_exits_non_zero_while_a_case_is_open() {
    let (_dir, data, _server, merchant) = sandbox_merchant();
    let sandbox = merchant["clientId"].as_str().unwrap().to_owned();
    let live = sandbox.strip_prefix("SANDBOX_").unwrap().to_owned();
    let profile = merchant["profile"].as_str().unwrap().to_owned();

    let fresh = ocpay(&["acceptance", "--data-dir", &data, "--client-id", &live]);
    assert_eq!(fresh.status.code(), Some(5), "a case is open: {}", String::from_utf8_lossy(&fresh.stderr));
    let report = json(&fresh);
    assert_eq!(
        (report["sandbox_client_id"].as_str(), report["live_client_id"].as_str()),
        (Some(&*sandbox), Some(&*live))
    );
    assert_eq!(report["cases"].as_array().unwrap().len(), 11);
    assert_eq!((report["cases_passed"].as_bool(), report["ready"].as_bool()), (Some(false), Some(false)));
    let retried = case(&report, "pay-unknown-retried");
    assert_eq!(retried["passed"], false);
    assert!(retried["how_to_provoke"].as_str().unwrap().contains("9901"));
    let key = &report["checklist"][1];
    assert_eq!(key["item"], "live-key");
    assert!(key["detail"].as_str().unwrap().contains(&format!("ask the operator to create {live}")), "{key}");

    // A U answer retried with the same paymentRequestId, as a till would: the case passes once
    // the API log has both requests.
    let pay = ["pay", "--profile", &profile, "--amount", "9901", "--currency", "USD"];
    let first = ocpay(&[&pay[..], &["--payment-request-id", "till-u", "--attempts", "1"]].concat());
    assert_eq!(first.status.code(), Some(3), "U");
    let again = ocpay(&[&pay[..], &["--payment-request-id", "till-u", "--attempts", "1"]].concat());
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let started = Instant::now();
    let report = loop {
        let output = ocpay(&["acceptance", "--data-dir", &data, "--client-id", &sandbox]);
        assert_eq!(output.status.code(), Some(5), "other cases are still open");
        let report = json(&output);
        if case(&report, "pay-unknown-retried")["passed"] == true {
            break report;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the retry was not seen: {report}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let evidence = case(&report, "pay-unknown-retried")["evidence"].as_array().unwrap().len();
    assert_eq!(evidence, 2, "the U and its retry");
    assert!(case(&report, "pay-unknown-retried")["missing"].is_null());

    let unknown = ocpay(&["acceptance", "--data-dir", &data, "--client-id", "NOBODY"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("there is no participant SANDBOX_NOBODY or NOBODY")
    );
}
