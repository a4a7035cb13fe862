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
    // A server that ran and held its store has megabytes resident, not nothing and not gigabytes.
    let resident = number(&summary, "/server_peak_rss_mb/0");
    assert!(resident > 5.0 && resident < 2_000.0, "server_peak_rss_mb = {resident}: {stderr}");
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

/// `ocpay bench --preload 5000` on SQLite or (`database_url`) PostgreSQL, keeping its data:
/// the preload writes what it says, in the proportions BENCHMARKS.md gives, the ledger check
/// passes, every preloaded transaction is settled, `ocpay reconcile` passes for every
/// preloaded day, and the benchmark runs as before.
fn a_preloaded_benchmark(database_url: Option<&str>, count: &dyn Fn(&str, &str) -> i64) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let mut args = vec!["--seconds", "1", "--concurrency", "4", "--preload", "5000", "--keep-data"];
    args.extend(["--out", out.to_str().unwrap()]);
    if let Some(url) = database_url {
        args.extend(["--database-url", url]);
    }
    let output = bench(tmp.path(), &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ocpay bench failed:\n{stderr}");
    assert!(stderr.contains("preloading 5000 payments"), "the preload shows its progress: {stderr}");
    let summary = json_of(&output);
    assert_eq!(summary["errors"], 0, "{stderr}");
    let preload = &summary["preload"];
    assert_eq!(preload["payments"], 5000, "{preload:#}");
    assert!(number(&summary, "/preload/seconds") > 0.0);
    // Of every 20 payments 19 are paid and one expires; every tenth is refunded; each payment
    // and refund is a call in the audit trail and the API log and a delivered notification.
    let expected = json!({
        "payment": 5000, "refund": 500, "payer": 1, "wallet_balance": 1,
        "posting": 1 + 4750 + 500, "entry": 2 + 4750 * 2 + 500 * 2,
        "settlement_queue": 4750 + 500, "notification": 5500, "delivery_attempt": 5500,
        "audit_event": 5500, "api_log": 5500,
        "settlement_batch": preload["rows"]["settlement_batch"], "settlement_item": 4750 + 500,
    });
    assert_eq!(preload["rows"], expected, "{preload:#}");
    assert!(number(&summary, "/preload/rows/settlement_batch") >= 26.0, "{preload:#}");
    for phase in ["pay_peak", "pay_at_half_peak", "complete_payments"] {
        assert!(number(&summary, &format!("/{phase}/completed")) > 0.0, "{phase}: {stderr}");
    }

    let data = summary["data_dir"].as_str().expect("the data directory is kept").to_owned();
    // The rows are in the store, every preloaded transaction settled.
    for (sql, rows) in [
        ("SELECT COUNT(*) FROM payment WHERE payment_id LIKE 'preload-%'", 5000),
        ("SELECT COUNT(*) FROM payment WHERE payment_id LIKE 'preload-%' AND status = 'SUCCESS'", 4750),
        ("SELECT COUNT(*) FROM refund WHERE refund_id LIKE 'preload-%'", 500),
        (
            "SELECT COUNT(*) FROM notification WHERE subject_id LIKE 'preload-%' AND status = 'DELIVERED'",
            5500,
        ),
        ("SELECT COUNT(*) FROM settlement_item WHERE transaction_id LIKE 'preload-%'", 5250),
        ("SELECT COUNT(*) FROM settlement_queue WHERE transaction_id LIKE 'preload-%'", 0),
        ("SELECT COUNT(*) FROM api_log WHERE request_id LIKE 'preload-%'", 5500),
    ] {
        assert_eq!(count(&data, sql), rows, "{sql}");
    }

    if database_url.is_none() {
        // A later run measures the same store again, with a merchant of its own, and keeps it.
        let again = tmp.path().join("again");
        let before = count(&data, "SELECT COUNT(*) FROM payment");
        let output = bench(
            tmp.path(),
            &["--seconds", "1", "--concurrency", "4", "--data-dir", &data, "--out", again.to_str().unwrap()],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "ocpay bench --data-dir failed:\n{stderr}");
        let summary = json_of(&output);
        assert_eq!((&summary["errors"], &summary["preload"]), (&json!(0), &json!(null)), "{stderr}");
        assert_eq!(summary["data_dir"], data.as_str(), "the given data directory is named and kept");
        assert!(count(&data, "SELECT COUNT(*) FROM payment") > before, "the run paid into the same store");
        assert_eq!(count(&data, "SELECT COUNT(*) FROM payment WHERE payment_id LIKE 'preload-%'"), 5000);

        // A store that holds a participant no benchmark created is in use: refused, untouched.
        let merchant = participant(&data, &tmp.path().join("merchant"), "merchant", "http://127.0.0.1:1");
        let client_id = merchant["clientId"].as_str().unwrap();
        let participants =
            || json_of(&ocpay(&["participant", "list", "--data-dir", &data]))["participants"].clone();
        let (payments, before) = (count(&data, "SELECT COUNT(*) FROM payment"), participants());
        let output = bench(tmp.path(), &["--seconds", "1", "--data-dir", &data]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "a store in use is refused: {stderr}");
        assert!(stderr.contains("only on a store of its own") && stderr.contains(client_id), "{stderr}");
        assert_eq!(count(&data, "SELECT COUNT(*) FROM payment"), payments);
        assert_eq!(participants(), before, "no benchmark merchant added");
    }

    let mut data_args = vec!["--data-dir".to_owned(), data.clone()];
    if let Some(url) = database_url {
        data_args.extend(["--database-url".to_owned(), url.to_owned()]);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let check = runtime.block_on(async {
        let config = ocpay_server::config::Config::load(
            None,
            &ocpay_server::config::Overrides {
                database_url: database_url.map(str::to_owned),
                ..ocpay_server::config::Overrides::default()
            },
        )
        .unwrap();
        let store = ocpay_server::data_dir::DataDir::open(Path::new(&data))
            .unwrap()
            .open_store(&config)
            .await
            .unwrap();
        store.ledger_check().await.unwrap()
    });
    assert!(check.is_sound(), "the ledger is sound after the preload and the run: {check:?}");

    // Every preloaded day reconciles: its batches, files, ledger and records agree.
    let mut list = vec!["settlements", "list", "--limit", "100"];
    list.extend(data_args.iter().map(String::as_str));
    let batches = json_of(&ocpay(&list));
    let days: Vec<&str> = batches["batches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|batch| batch["count"].as_u64().unwrap() > 0)
        .map(|batch| batch["day"].as_str().unwrap())
        .collect();
    assert!(days.len() >= 26, "{batches:#}");
    for day in days {
        let mut args = vec!["reconcile", "--date", day];
        args.extend(data_args.iter().map(String::as_str));
        let output = ocpay(&args);
        assert!(
            output.status.success(),
            "ocpay reconcile --date {day}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn a_benchmark_preloaded_with_history_settles_reconciles_and_keeps_the_ledger() {
    a_preloaded_benchmark(None, &|data, sql| {
        let connection = rusqlite::Connection::open(Path::new(data).join("ocpay.db")).unwrap();
        connection.query_row(sql, [], |row| row.get(0)).unwrap()
    });
}

#[test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
fn a_benchmark_preloaded_with_history_on_postgres_settles_reconciles_and_keeps_the_ledger() {
    let database_url =
        ocpay_store::conformance::postgres_scratch_schema(&ocpay_store::conformance::postgres_test_url());
    let url = database_url.clone();
    let count = move |sql: &str| {
        let (url, sql) = (url.clone(), sql.to_owned());
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            client.query_one(sql.as_str(), &[]).unwrap().get::<_, i64>(0)
        })
        .join()
        .unwrap()
    };
    a_preloaded_benchmark(Some(&database_url), &|_, sql| count(sql));

    // The database now holds that run's merchant: a second preload into it is refused before
    // it writes anything, since its history and settlement run would touch others' data.
    let payments = count("SELECT count(*) FROM payment");
    let tmp = tempfile::tempdir().unwrap();
    let again = bench(tmp.path(), &["--seconds", "1", "--preload", "100", "--database-url", &database_url]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "{stderr}");
    assert!(stderr.contains("--preload fills only a store of its own"), "{stderr}");
    assert_eq!(count("SELECT count(*) FROM payment"), payments, "nothing written");
}

/// `ocpay bench drain`, small: every preloaded payment's result is delivered once more to the
/// benchmark's receiver, which verifies each with the platform key, and the CPU per
/// notification is set against one signature's.
#[test]
fn the_drain_benchmark_delivers_every_due_notification_and_verifies_each() {
    let tmp = tempfile::tempdir().unwrap();
    let output = bench(tmp.path(), &["drain", "--notifications", "400", "--timeout-seconds", "120"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ocpay bench drain failed:\n{stderr}");
    let summary = json_of(&output);
    // Every payment has its result notification: 380 paid, 20 expired.
    assert_eq!(summary["due"], 400, "{summary:#}");
    assert_eq!(summary["received"]["delivered"], 400, "{summary:#}");
    assert_eq!(summary["received"]["failures"], 0, "{summary:#}");
    assert_eq!(summary["received"]["timed_out"], false, "{summary:#}");
    // The server signed each: its CPU per notification covers most of a signature's, and the
    // ratio has room for a noisy machine, not for a server that skips its signatures.
    let ratio = number(&summary, "/cpu_ratio");
    assert!(ratio > 0.0 && ratio < 3.0, "cpu_ratio = {ratio}: {stderr}");
    assert!(number(&summary, "/sign_ceiling/operations_per_second") > 10.0, "{stderr}");
}
