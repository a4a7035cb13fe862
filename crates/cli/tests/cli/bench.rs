//! `ocpay bench`, briefly: the whole benchmark runs for a second per phase and must verify
//! everything it counts, and its load generator counts an answer it cannot verify as an error.

use std::path::Path;
use std::process::{Command, Output};

use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{Api, SigningKey};
use serde_json::{Value, json};

use super::{OCPAY, json as json_of, ocpay, participant, serve};

/// `ocpay bench <args>` on SQLite, with its data in `tmp`.
fn bench(tmp: &Path, args: &[&str]) -> Output {
    Command::new(OCPAY)
        .arg("bench")
        .args(args)
        .env("TMPDIR", tmp)
        .env_remove("OCPAY_DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .expect("ocpay bench runs")
}

fn number(summary: &Value, pointer: &str) -> f64 {
    summary.pointer(pointer).and_then(Value::as_f64).unwrap_or_else(|| panic!("{pointer} in {summary:#}"))
}

#[test]
fn a_one_second_benchmark_verifies_everything_it_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let output = bench(tmp.path(), &["--seconds", "1", "--concurrency", "4", "--out", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ocpay bench failed:\n{stderr}");
    let summary = json_of(&output);
    assert_eq!(summary["errors"], 0, "{stderr}");
    for phase in ["pay_peak", "pay_at_half_peak", "complete_payments"] {
        assert_eq!(summary[phase]["errors"], 0, "{phase}: {stderr}");
        assert!(number(&summary, &format!("/{phase}/completed")) > 0.0, "{phase}: {stderr}");
        assert!(number(&summary, &format!("/{phase}/requests_per_second")) > 0.0, "{phase}: {stderr}");
    }
    for ceiling in
        ["/crypto_ceiling_before/operations_per_second", "/crypto_ceiling_after/operations_per_second"]
    {
        assert!(number(&summary, ceiling) > 10.0, "{ceiling}: {stderr}");
    }
    // The server's CPU per `pay` covers at least most of its RSA work, and a complete payment
    // costs more than a `pay`; the ratios have room for a noisy machine, not for a server
    // that skips its signatures.
    for ratio in ["/cpu_ratio_pay", "/cpu_ratio_complete_payment", "/ratio_pay_to_ceiling"] {
        let value = number(&summary, ratio);
        assert!(value > 0.0 && value < 3.0, "{ratio} = {value}: {stderr}");
    }
    assert!(
        number(&summary, "/server_cpu_ms_per_complete_payment") > number(&summary, "/server_cpu_ms_per_pay"),
        "{stderr}"
    );
    for share in ["/server_kernel_share_pay", "/server_kernel_share_complete_payment"] {
        let value = number(&summary, share);
        assert!(value > 0.0 && value < 1.0, "{share} = {value}: {stderr}");
    }
    assert!(summary["crypto_ceiling_drift_flagged"].is_boolean());
    assert!(!summary["data_filesystem"].as_str().unwrap().is_empty());

    // Beside the summary, its plots: each phase's latency distribution, rising to its maximum,
    // and its throughput over time, one line per phase.
    let written: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written, summary, "the summary written is the one printed");
    for phase in ["pay_peak", "pay_at_half_peak", "complete_payments"] {
        let quantiles = summary[phase]["latency_quantiles_ms"].as_array().unwrap();
        let latencies: Vec<f64> = quantiles.iter().map(|point| point[1].as_f64().unwrap()).collect();
        assert!(latencies.len() > 5, "{phase}: {quantiles:?}");
        assert!(latencies.windows(2).all(|pair| pair[0] <= pair[1]), "{phase}: {latencies:?}");
        assert_eq!(latencies.last(), summary[phase]["max_ms"].as_f64().as_ref(), "{phase}");
        let throughput = summary[phase]["throughput_per_second"].as_array().unwrap();
        let counted: f64 = throughput.iter().map(|rate| rate.as_f64().unwrap() * 0.25).sum();
        // Whole steps only: all but the drain after the last one.
        let completed = number(&summary, &format!("/{phase}/completed"));
        assert!(
            counted.round() <= completed && counted >= completed / 2.0,
            "{phase}: {counted} of {completed}"
        );
    }
    for plot in ["latency.svg", "throughput.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(svg.starts_with("<svg"), "{plot}");
        assert_eq!(
            svg.matches(r#"stroke-width="2" points"#).count(),
            6,
            "{plot}: a line and a legend mark per phase"
        );
        assert!(svg.contains("complete payments"), "{plot}");
    }
}

#[test]
fn the_load_generator_counts_answers_it_cannot_verify_as_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data);
    let merchant_dir = dir.path().join("merchant");
    let merchant = participant(data.to_str().unwrap(), &merchant_dir, "merchant", &server.url);
    let client_id = merchant["clientId"].as_str().unwrap();
    let key = SigningKey::from_text(&std::fs::read_to_string(merchant_dir.join("private-key.pem")).unwrap())
        .unwrap();
    let path = Api::Pay.path_for(client_id);
    let requests = dir.path().join("requests.jsonl");
    let lines: Vec<String> = (0..3)
        .map(|index| {
            let request_id = format!("bench-check-{index}");
            let mut request = ocpay_testkit::pay_request(&request_id, "USD", 1250);
            request.payment_notify_url = Some("http://127.0.0.1:9/notify".into());
            let body = serde_json::to_string(&request).unwrap();
            let request_time = jiff::Timestamp::now().as_millisecond().to_string();
            let content = content_to_sign("POST", &path, client_id, &request_time, body.as_bytes());
            let signature = key.sign_header(1, &content).unwrap();
            let signed = json!({"payment_request_id": request_id, "request_time": request_time, "signature": signature, "body": body});
            signed.to_string()
        })
        .collect();
    std::fs::write(&requests, lines.join("\n")).unwrap();
    let stranger = dir.path().join("stranger.pem");
    std::fs::write(&stranger, SigningKey::generate().unwrap().verifying_key().to_pem()).unwrap();

    let load = |platform_key: &Path| {
        let output = ocpay(&[
            "bench",
            "load",
            "--url",
            &server.url,
            "--client-id",
            client_id,
            "--platform-key",
            platform_key.to_str().unwrap(),
            "--requests",
            requests.to_str().unwrap(),
            "--seconds",
            "1",
            "--concurrency",
            "1",
        ]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        json_of(&output)
    };
    // Answers the platform signed, checked against another key: none of them counts.
    let forged = load(&stranger);
    assert_eq!((&forged["completed"], &forged["errors"]), (&json!(0), &json!(3)), "{forged}");
    assert_eq!(forged["error_kinds"], json!({"answer signature": 3}));
    // The same answers against the platform's key (the same payments, answered again).
    let genuine = load(&merchant_dir.join("platform-public-key.pem"));
    assert_eq!((&genuine["completed"], &genuine["errors"]), (&json!(3), &json!(0)), "{genuine}");
}
