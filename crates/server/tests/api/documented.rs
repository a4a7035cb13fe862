//! Behaviour the README documents that no other test pins down: a database newer than the
//! server is refused, a live participant's notify host that resolves only to private addresses
//! is refused at sending time, and full write and audit queues make requests wait rather than
//! lose anything.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_protocol::payments::InquiryPaymentRequest;
use ocpay_server::clock::ManualClock;
use ocpay_server::{Application, Config};
use ocpay_testkit::{Receiver, TestApp, pay_request, unique_id};

use crate::helpers::name_resolving_only_to_loopback;
use serde_json::Value;

/// An empty SQLite database file whose `PRAGMA user_version` is `version`: one 4096-byte page,
/// as `sqlite3 FILE "PRAGMA user_version = N"` writes it.
fn sqlite_file_at_version(version: u32) -> Vec<u8> {
    let mut file = vec![0u8; 4096];
    file[..16].copy_from_slice(b"SQLite format 3\0");
    // Page size 4096, legacy read and write versions, no reserved bytes, the fixed fractions.
    file[16..24].copy_from_slice(&[0x10, 0x00, 1, 1, 0, 64, 32, 32]);
    file[24..28].copy_from_slice(&1u32.to_be_bytes()); // change counter
    file[28..32].copy_from_slice(&1u32.to_be_bytes()); // pages
    file[60..64].copy_from_slice(&version.to_be_bytes()); // user_version
    file[92..96].copy_from_slice(&1u32.to_be_bytes()); // version-valid-for
    file[96..100].copy_from_slice(&3_040_001u32.to_be_bytes()); // SQLITE_VERSION_NUMBER
    // Page 1's b-tree header: an empty table leaf whose content area starts at the page's end.
    file[100..108].copy_from_slice(&[0x0d, 0, 0, 0, 0, 0x10, 0x00, 0]);
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_newer_than_the_server_is_refused() {
    let (main_known, participants_known) = ocpay_store::sqlite::SCHEMA_VERSIONS;
    let cases = [("ocpay.db", main_known), ("ocpay-participants.db", participants_known)];
    for (file, known) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        std::fs::create_dir(&data_dir).unwrap();
        let newer = u32::try_from(known).unwrap() + 1;
        std::fs::write(data_dir.join(file), sqlite_file_at_version(newer)).unwrap();
        let config = Config {
            data_dir: data_dir.clone(),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        };
        let clock = Arc::new(ManualClock::new(Timestamp::now()));
        let Err(error) = Application::build(config, clock).await else {
            panic!("a server started on {file} at schema version {newer}, newer than it knows ({known})");
        };
        let message = format!("{error:#}");
        assert!(message.contains(file), "the error names the file: {message}");
        assert!(
            message.contains(&format!("schema version {newer}, newer than this ocpay knows ({known})")),
            "the error names both versions: {message}"
        );
        let header = std::fs::read(data_dir.join(file)).unwrap();
        assert_eq!(header[60..64], newer.to_be_bytes(), "the newer file is left as it was");
    }
}

/// The first notification of a payment, once it has `n` recorded attempts.
async fn notification_after_attempts(app: &TestApp, payment_id: &str, n: usize) -> Value {
    let url = format!("{}/admin/api/payments/{payment_id}/notifications", app.base_url);
    let http = reqwest::Client::new();
    for _ in 0..500 {
        let listed: Value =
            http.get(&url).bearer_auth(app.admin_token()).send().await.unwrap().json().await.unwrap();
        let notification = listed["notifications"][0].clone();
        if notification["attempts"].as_array().is_some_and(|attempts| attempts.len() >= n) {
            return notification;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the notification of {payment_id} did not reach {n} attempts");
}

/// Makes a live merchant's payment whose notification goes to `http://{host}:{port}/...` of the
/// receiver, and lets it expire, which notifies `FAIL`. Returns the payment id.
async fn expired_live_payment(app: &TestApp, receiver: &Receiver, host: &str) -> String {
    let live = app
        .participant(ParticipantKind::Merchant, Environment::Live, Some("https://merchant.example/n"))
        .await;
    let port = url::Url::parse(&receiver.url).unwrap().port().unwrap();
    let mut request = pay_request(&unique_id("PR"), "USD", 100);
    request.payment_notify_url = Some(format!("http://{host}:{port}/merchant/notify"));
    let answer = live.client.pay(&request).await.unwrap();
    assert_eq!(answer.result.result_code, "SUCCESS", "a name is accepted up front: {:?}", answer.result);
    app.clock.advance(SignedDuration::from_mins(16));
    answer.payment_id.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a host name that resolves only to loopback: scripts/test runs it"]
async fn a_live_notify_url_by_a_loopback_name_is_refused_when_sending() {
    let host = name_resolving_only_to_loopback().await;
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(app.platform_key.clone()).await;
    let payment_id = expired_live_payment(&app, &receiver, &host).await;
    let notification = notification_after_attempts(&app, &payment_id, 1).await;
    let attempt = &notification["attempts"][0];
    let error = attempt["error"].as_str().unwrap_or_default();
    assert!(error.contains(&format!("{host} resolves only to private addresses")), "{notification}");
    assert_eq!(attempt["httpStatus"], Value::Null, "nothing was sent: {notification}");
    assert_eq!(notification["status"], "PENDING", "retried later, in case the name changes");
    app.background_rounds().await;
    assert!(receiver.received().is_empty(), "the receiver got nothing: {:?}", receiver.received());

    // The same name reaches the receiver when the operator allows private addresses: what
    // stopped it above was the filter, not the name.
    let permissive = TestApp::spawn_with(|config| config.notify_allow_private_addresses = true).await;
    let receiver = Receiver::start(permissive.platform_key.clone()).await;
    let payment_id = expired_live_payment(&permissive, &receiver, &host).await;
    let delivered = receiver.wait_for(1).await;
    assert_eq!(delivered[0].notification.as_ref().unwrap().payment_id, payment_id);
    assert!(delivered[0].verified);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_audit_queue_makes_requests_wait_and_loses_nothing() {
    let flush = Duration::from_millis(100);
    let app = TestApp::spawn_with(|config| {
        config.audit_queue_max = 1;
        config.audit_batch_max = 1;
        config.audit_flush_interval_ms = flush.as_millis() as u64;
    })
    .await;
    let merchant = Arc::new(app.merchant().await);
    let n = 12;
    let requests: Vec<String> = (0..n).map(|_| unique_id("PR")).collect();
    // A created payment's event commits with it; a repeated pay's is queued.
    for request_id in &requests {
        merchant.client.pay(&pay_request(request_id, "USD", 100)).await.unwrap();
    }
    let started = Instant::now();
    let calls = requests.iter().map(|request_id| {
        let (merchant, request) = (merchant.clone(), pay_request(request_id, "USD", 100));
        tokio::spawn(async move { merchant.client.pay(&request).await.unwrap() })
    });
    let answers = futures_join_all(calls).await;
    let elapsed = started.elapsed();
    for answer in &answers {
        assert_eq!(answer.result.result_code, "SUCCESS", "{:?}", answer.result);
    }
    // One event is being written (one per flush interval), one waits in the queue; every
    // other request waited for room before it was answered.
    let waited = flush * (n - 3);
    assert!(elapsed >= waited, "{n} requests answered in {elapsed:?}: they did not wait for the queue");

    let client_id = ClientId::parse(&merchant.client_id).unwrap();
    let mut events = Vec::new();
    for _ in 0..100 {
        events = app.state.store.audit_events(&client_id, 1_000).await.unwrap();
        if events.len() >= 2 * n as usize {
            break;
        }
        tokio::time::sleep(flush).await;
    }
    let mut recorded: Vec<String> = events.iter().filter_map(|event| event.idempotency_key.clone()).collect();
    recorded.sort();
    let mut expected = [requests.clone(), requests.clone()].concat();
    expected.sort();
    assert_eq!(recorded, expected, "every request's audit event is recorded, once a request");
    assert!(events.iter().all(|event| event.api == "pay" && event.result_code == "SUCCESS"), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_write_queue_makes_writers_wait_and_commits_every_write() {
    let app = TestApp::spawn_with(|config| {
        config.sqlite_write_queue_max = 1;
        config.sqlite_write_batch_max = 1;
    })
    .await;
    let merchant = Arc::new(app.merchant().await);
    let requests: Vec<String> = (0..40).map(|_| unique_id("PR")).collect();
    let calls = requests.iter().map(|request_id| {
        let (merchant, request) = (merchant.clone(), pay_request(request_id, "USD", 100));
        tokio::spawn(async move { merchant.client.pay(&request).await.unwrap() })
    });
    let answers = futures_join_all(calls).await;
    for answer in &answers {
        assert_eq!(answer.result.result_code, "SUCCESS", "{:?}", answer.result);
    }
    for (request_id, answer) in requests.iter().zip(&answers) {
        let inquiry =
            InquiryPaymentRequest { payment_id: None, payment_request_id: Some(request_id.clone()) };
        let found = merchant.client.inquire_payment(&inquiry).await.unwrap();
        assert_eq!(found.payment_id, answer.payment_id, "the payment of {request_id} was committed");
        assert_eq!(found.payment_status.as_deref(), Some("PROCESSING"));
    }
}

/// Awaits spawned tasks in order.
async fn futures_join_all<T>(tasks: impl IntoIterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let tasks: Vec<_> = tasks.into_iter().collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("the call does not panic"));
    }
    results
}
