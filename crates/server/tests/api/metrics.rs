//! What an operator watches: Prometheus metrics on a listener of their own (off by default) that
//! move with a payment, its notification and the store's commits; and the request id that every
//! answer carries in `X-Request-Id`, which the request's API-log entry keeps too.
//!
//! The process has one metrics registry, which the servers of other tests share once it is
//! installed: the checks read how series moved, never their absolute values.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ocpay_core::ids::ClientId;
use ocpay_server::Config;
use ocpay_store::{ApiLogEntry, ApiLogFilter};
use ocpay_testkit::{Receiver, Reply, TestApp, pay_request, unique_id};
use serde_json::json;

use crate::helpers::{RawRequest, code_value, order_code, signature_for, wallet_pay};

/// Every sample of a scrape, by its series (name and labels, as written).
async fn scrape(app: &TestApp) -> BTreeMap<String, f64> {
    let address = app.state.config.metrics_listen.expect("the metrics listener is bound");
    let response =
        reqwest::get(format!("http://{address}/metrics")).await.expect("the metrics listener answers");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of the samples of `name` whose labels include every one of `labels`.
fn sum(samples: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            series_name == name && labels.iter().all(|label| series_labels.contains(label))
        })
        .map(|(_, value)| value)
        .sum()
}

/// Scrapes until `moved` holds of the samples (what a background task records lands a moment
/// after the answer), at most ten seconds.
async fn scrape_until(
    app: &TestApp,
    moved: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let started = Instant::now();
    loop {
        let samples = scrape(app).await;
        if moved(&samples) || started.elapsed() > Duration::from_secs(10) {
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_a_pay_its_notification_and_the_stores_commits() {
    let app =
        TestApp::spawn_with(|config| config.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let metrics_address = app.state.config.metrics_listen.unwrap();
    assert_ne!(metrics_address.port(), 0, "the address bound, not the one asked for");
    assert_ne!(metrics_address, app.address, "a listener of its own");
    // The receiver refuses, so the notification stays in the outbox, pending its next attempt.
    let receiver = Receiver::start(app.platform_key.clone()).await;
    receiver.reply_always(Reply::Status(500));
    let merchant = app.merchant_notified_at(&receiver).await;
    let before = scrape(&app).await;

    let paid = order_code(&merchant, "USD", 1_000).await;
    let (status, answer) = wallet_pay(&app, &code_value(&paid), json!({})).await;
    assert_eq!(status, 200, "{answer}");
    receiver.wait_for(1).await;

    let pay_success = ["api=\"pay\"", "status=\"S\"", "code=\"SUCCESS\""];
    let moved = |samples: &BTreeMap<String, f64>| {
        sum(samples, "ocpay_notification_deliveries_total", &["outcome=\"REJECTED\""])
            > sum(&before, "ocpay_notification_deliveries_total", &["outcome=\"REJECTED\""])
            && sum(samples, "ocpay_outbox_notifications", &["status=\"PENDING\"", "kind=\"PAYMENT_RESULT\""])
                >= 1.0
    };
    let after = scrape_until(&app, moved).await;
    let grew = |name: &str, labels: &[&str]| sum(&after, name, labels) - sum(&before, name, labels);
    assert!(grew("ocpay_requests_total", &pay_success) >= 1.0, "pay SUCCESS is counted");
    assert!(grew("ocpay_request_duration_seconds_count", &["api=\"pay\""]) >= 1.0, "pay is timed");
    assert!(
        sum(&after, "ocpay_request_duration_seconds_bucket", &["api=\"pay\"", "le=\"+Inf\""]) >= 1.0,
        "a histogram with buckets, not a summary"
    );
    assert!(
        grew("ocpay_notification_deliveries_total", &["outcome=\"REJECTED\""]) >= 1.0,
        "the refused attempt"
    );
    assert!(
        sum(&after, "ocpay_outbox_notifications", &["status=\"PENDING\"", "kind=\"PAYMENT_RESULT\""]) >= 1.0,
        "the undelivered notification is in the outbox's depth"
    );
    assert!(
        sum(&after, "ocpay_outbox_oldest_age_seconds", &["status=\"PENDING\""]) >= 0.0,
        "the age of the oldest undelivered notification is there"
    );
    assert!(grew("ocpay_store_commit_seconds_count", &[]) >= 1.0, "the payment's commit is timed");
    assert!(
        after.keys().any(|series| series.starts_with("ocpay_queue_depth{queue=\"audit\"")),
        "the audit queue"
    );
    if app.state.config.database_url.is_none() {
        assert!(grew("ocpay_store_write_batch_size_count", &[]) >= 1.0, "SQLite's group commits are sized");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_metrics_listener_unless_one_is_configured() {
    assert_eq!(Config::default().metrics_listen, None);
    let app = TestApp::spawn().await;
    assert_eq!(app.state.config.metrics_listen, None);
    let response = reqwest::get(format!("{}/metrics", app.base_url)).await.unwrap();
    assert_eq!(response.status(), 404, "the main listener serves no metrics");
}

/// A request id as the server makes them.
fn request_id_of(response: &reqwest::Response) -> String {
    let id = response.headers().get("x-request-id").expect("an X-Request-Id header");
    let id = id.to_str().unwrap().to_owned();
    assert!(id.len() == 16 && id.bytes().all(|byte| byte.is_ascii_hexdigit()), "{id}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_request_id_of_its_own_and_the_api_log_keeps_it() {
    let app = TestApp::spawn().await;
    let merchant = app.merchant().await;
    let client = reqwest::Client::new();
    let mut seen = std::collections::BTreeSet::new();
    // Pages, the admin API refusing a missing token, a path nobody serves, the gateway refusing
    // an unsigned request: each answer has an id, and no two the same.
    for (method, path) in [
        (reqwest::Method::GET, "/healthz"),
        (reqwest::Method::GET, "/admin/api/participants"),
        (reqwest::Method::GET, "/no/such/page"),
        (reqwest::Method::POST, "/ams/api/v1/payments/pay"),
    ] {
        let response = client.request(method, format!("{}{path}", app.base_url)).send().await.unwrap();
        assert!(seen.insert(request_id_of(&response)), "{path}: a new id");
    }
    // A client's own X-Request-Id is not taken (it stays in the API log's request headers).
    let body = serde_json::to_vec(&pay_request(&unique_id("PR"), "USD", 1_000)).unwrap();
    let path = "/ams/api/v1/payments/pay";
    let request = RawRequest::new(&app, &merchant.client_id, path, body.clone());
    let response = client
        .post(format!("{}{path}", app.base_url))
        .header("client-id", &merchant.client_id)
        .header("request-time", request.request_time.clone().unwrap())
        .header("content-type", "application/json; charset=UTF-8")
        .header("signature", signature_for(&merchant.key, &request))
        .header("x-request-id", "chosen-by-the-client")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = request_id_of(&response);
    assert!(seen.insert(id.clone()));

    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    let started = Instant::now();
    let entry: ApiLogEntry = loop {
        let entries = app.state.store.api_log(&client_id, &ApiLogFilter::default(), None, 10).await.unwrap();
        if let Some(entry) = entries.into_iter().find(|entry| entry.api == "pay") {
            break entry;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the pay is logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(entry.request_id, id, "the API-log entry keeps the answer's request id");
    let sent: serde_json::Value = serde_json::from_str(&entry.request_headers).unwrap();
    assert_eq!(sent["x-request-id"], "chosen-by-the-client");
    let answered: serde_json::Value = serde_json::from_str(&entry.response_headers).unwrap();
    assert!(answered.get("x-request-id").is_none() || answered["x-request-id"] == id.as_str());
}
