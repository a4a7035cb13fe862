//! `ocpay trigger`: every scenario against a real `ocpay serve`, through the public APIs and the
//! payer page's API; the steps on stderr, the JSON summary on stdout, the exit codes; a live
//! profile refused. The server's delays (asynchronous refunds, the sandbox's review, its timer
//! job) are set short, so that the scenarios that wait on real time wait a second or two.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use super::{Server, json, ocpay, participant, serve_with};

/// Short delays for the outcomes the platform decides later.
const QUICK: &[(&str, &str)] = &[
    ("OCPAY_REFUND_ASYNC_DELAY_SECONDS", "1"),
    ("OCPAY_SANDBOX_REGISTRATION_REVIEW_SECONDS", "2"),
    ("OCPAY_TIMERS_POLL_INTERVAL_MS", "100"),
];

fn trigger(scenario: &str, profile: &str, more: &[&str]) -> Output {
    let mut args = vec!["trigger", scenario, "--profile", profile, "--poll-every", "1s", "--wait", "30s"];
    args.extend_from_slice(more);
    ocpay(&args)
}

/// The summary of a run that must have passed, with its steps' names.
fn passed(output: &Output) -> (Value, Vec<String>) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let summary = json(output);
    assert_eq!(summary["outcome"], "PASSED", "{summary}\n{stderr}");
    let steps: Vec<String> = summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["step"].as_str().unwrap().to_owned())
        .collect();
    for step in summary["steps"].as_array().unwrap() {
        assert_eq!(step["ok"], true, "{step}");
        assert!(stderr.contains(step["said"].as_str().unwrap()), "each step is a line on stderr: {stderr}");
    }
    (summary, steps)
}

/// The answer of the step named `name`.
fn answer<'a>(summary: &'a Value, name: &str) -> &'a Value {
    let steps = summary["steps"].as_array().unwrap();
    &steps.iter().find(|step| step["step"] == name).unwrap_or_else(|| panic!("no step {name}: {summary}"))["answer"]
}

/// The URLs the notifications about `id` go to.
fn notified_urls(data: &str, id: &str) -> Vec<String> {
    let listed = json(&ocpay(&["notifications", "list", id, "--data-dir", data]));
    let notifications = listed["notifications"].as_array().unwrap_or_else(|| panic!("{listed}"));
    notifications
        .iter()
        .map(|notification| notification["url"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A server with [`QUICK`] delays and a sandbox participant of `kind`: the folder (removed when
/// dropped), the data directory, the server (stopped when dropped) and the participant's profile.
fn quick_sandbox(kind: &str) -> (tempfile::TempDir, String, Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_str().unwrap().to_owned();
    let server = serve_with(Path::new(&data), QUICK);
    let created = participant(&data, &dir.path().join(kind), kind, &server.url);
    let profile = created["profile"].as_str().unwrap().to_owned();
    (dir, data, server, profile)
}

#[test]
fn every_payment_and_refund_scenario_runs_through_the_public_apis() {
    let (_dir, data, _server, profile) = quick_sandbox("merchant");

    let listed = ocpay(&["trigger", "--list"]);
    assert!(listed.status.success());
    let listed = json(&listed);
    let names: Vec<&str> =
        listed["scenarios"].as_array().unwrap().iter().map(|s| s["scenario"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "payment.succeeded",
            "payment.failed",
            "payment.expired",
            "refund.succeeded",
            "refund.failed",
            "registration.approved",
            "registration.rejected"
        ]
    );

    let (summary, steps) = passed(&trigger("payment.succeeded", &profile, &[]));
    assert_eq!(
        steps,
        [
            "pay",
            "payer opens the code",
            "payer answers SUCCESS",
            "inquiryPayment until SUCCESS",
            "notification"
        ]
    );
    let payment_id = answer(&summary, "pay")["paymentId"].as_str().unwrap().to_owned();
    assert_eq!(answer(&summary, "inquiryPayment until SUCCESS")["paymentStatus"], "SUCCESS");
    // The notification goes to the participant's default notify URL, as a real payment's.
    assert_eq!(notified_urls(&data, &payment_id), ["https://merchant.example/notify"]);

    let (summary, _) = passed(&trigger("payment.failed", &profile, &["--failure", "risk_reject"]));
    let failed = answer(&summary, "inquiryPayment until FAIL");
    assert_eq!(
        (&failed["paymentStatus"], &failed["paymentResultCode"]),
        (&"FAIL".into(), &"RISK_REJECT".into())
    );
    assert_eq!(answer(&summary, "payer answers RISK_REJECT")["resultCode"], "RISK_REJECT");

    let (summary, steps) = passed(&trigger("payment.expired", &profile, &["--expires-in", "2s"]));
    assert_eq!(steps[1], "wait for the expiry");
    assert_eq!(answer(&summary, "inquiryPayment until FAIL")["paymentResultCode"], "ORDER_IS_CLOSED");
    let pay_time = answer(&summary, "pay")["paymentCreateTime"].as_str().unwrap().to_owned();
    assert!(!pay_time.is_empty());

    let notify = "https://till.example/ocpay/notify";
    let (summary, _) =
        passed(&trigger("refund.succeeded", &profile, &["--notify-url", notify, "--amount", "800"]));
    let refund = answer(&summary, "refund");
    assert_eq!(
        (&refund["result"]["resultCode"], &refund["refundAmount"]["value"]),
        (&"SUCCESS".into(), &"800".into())
    );
    assert_eq!(answer(&summary, "inquiryRefund until SUCCESS")["refundStatus"], "SUCCESS");
    assert_eq!(notified_urls(&data, refund["refundId"].as_str().unwrap()), [notify]);

    let (summary, _) = passed(&trigger("refund.failed", &profile, &[]));
    let refund = answer(&summary, "refund");
    assert_eq!(refund["result"]["resultCode"], "REFUND_IN_PROCESS");
    assert_eq!(refund["refundAmount"]["value"], "9902");
    assert_eq!(answer(&summary, "inquiryRefund until FAIL")["refundStatus"], "FAIL");
    assert_eq!(answer(&summary, "pay")["paymentAmount"]["value"], "20000", "enough to refund 9902 of");

    // A merchant registers nothing: the registration's refusal ends the scenario, exit code 4.
    let refused = trigger("registration.approved", &profile, &[]);
    assert_eq!(refused.status.code(), Some(4), "{}", String::from_utf8_lossy(&refused.stderr));
    let summary = json(&refused);
    assert_eq!(summary["outcome"], "UNEXPECTED");
    assert_eq!(summary["steps"][0]["ok"], false);

    // Ask the impossible and say so: a refund.failed of a payment smaller than 9902.
    let small = trigger("refund.failed", &profile, &["--amount", "500"]);
    assert_eq!(small.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&small.stderr).contains("--amount"));
    let wrong = trigger("payment.failed", &profile, &["--failure", "CARD_DECLINED"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("RISK_REJECT, USER_KYC_NOT_QUALIFIED"));
    let unknown = ocpay(&["trigger", "payment.refunded", "--profile", &profile]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("ocpay trigger --list"));
}

#[test]
fn an_acquirer_rehearses_both_reviews_and_a_wait_that_runs_out_exits_3() {
    let (_dir, data, _server, profile) = quick_sandbox("acquirer");
    let notify = "https://acquirer.example/registrations";

    let (summary, steps) = passed(&trigger("registration.approved", &profile, &["--notify-url", notify]));
    assert_eq!(steps, ["registration", "inquiryRegistrationStatus until APPROVED", "notification"]);
    let decided = answer(&summary, "inquiryRegistrationStatus until APPROVED");
    assert_eq!(decided["registrationResult"]["registrationStatus"], "APPROVED");
    // The decision is notified to --notify-url.
    let request_id = summary["steps"][0]["request"]["registrationRequestId"].as_str().unwrap();
    assert_eq!(notified_urls(&data, request_id), [notify]);

    let (summary, _) = passed(&trigger("registration.rejected", &profile, &[]));
    let decided = &answer(&summary, "inquiryRegistrationStatus until REJECTED")["registrationResult"];
    assert_eq!(decided["registrationStatus"], "REJECTED");
    assert!(decided["rejectReasons"].as_str().unwrap().contains("REJECT"), "{decided}");
    let said = summary["steps"][2]["said"].as_str().unwrap();
    assert!(said.contains("nothing is sent without --notify-url"), "{said}");

    // An acquirer pays for a store it registered: the first payment scenario registers the
    // default store, waits for its approval and pays again; the next one pays at once.
    let (_, steps) = passed(&trigger("payment.succeeded", &profile, &[]));
    assert_eq!(
        &steps[..4],
        ["pay", "registration", "inquiryRegistrationStatus until APPROVED", "notification"]
    );
    assert_eq!(steps[4], "pay");
    let (summary, steps) = passed(&trigger("refund.succeeded", &profile, &[]));
    assert_eq!(steps[0], "pay");
    assert_eq!(steps[1], "payer opens the code", "registered already");
    assert_eq!(answer(&summary, "inquiryRefund until SUCCESS")["refundStatus"], "SUCCESS");

    // The review takes two seconds; a one-second wait runs out first: exit code 3.
    let out = ocpay(&[
        "trigger",
        "registration.approved",
        "--profile",
        &profile,
        "--wait",
        "1s",
        "--poll-every",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&out)["outcome"], "TIMED_OUT");
}

#[test]
fn a_live_profile_is_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_str().unwrap().to_owned();
    let server = serve_with(Path::new(&data), &[]);
    let keys = dir.path().join("live");
    let live = json(&ocpay(&[
        "participant",
        "create",
        "--data-dir",
        &data,
        "--kind",
        "merchant",
        "--env",
        "live",
        "--name",
        "Live Cafe",
        "--notify-url",
        "https://shop.example/notify",
        "--generate-keys",
        keys.to_str().unwrap(),
        "--server-url",
        &server.url,
    ]));
    let client_id = live["clientId"].as_str().unwrap();
    assert!(!client_id.starts_with("SANDBOX_"), "{live}");
    let refused = trigger("payment.succeeded", live["profile"].as_str().unwrap(), &[]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(&format!("{client_id} is a live client id")), "{stderr}");
    assert!(refused.stdout.is_empty(), "no summary: nothing ran");
    let logged = json(&ocpay(&["audit", "--data-dir", &data, "--client-id", client_id]));
    assert_eq!(
        logged["events"].as_array().map(Vec::len),
        Some(0),
        "no request reached the gateway: {logged}"
    );
}
