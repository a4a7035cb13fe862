//! `ocpay serve` stopped with SIGTERM: it stops accepting at once, lets the request in flight
//! finish, lets a notification attempt run until `shutdown_grace_ms` and cuts it off there,
//! releases that attempt's claim, and exits 0; on the next start the notification is due at
//! once, not when its claim's lease would have ended. On SQLite and on PostgreSQL, where a
//! starting server releases no claims (another node might hold them), so only the stopping
//! server's own release can make the notification due again.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ocpay_protocol::api::{Api, header};
use ocpay_protocol::payments::NOTIFICATION_ACK;
use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{ResultStatus, SigningKey};
use ocpay_sdk::Client;
use ocpay_server::config::{Config, Overrides};
use ocpay_server::data_dir::DataDir;
use ocpay_store::DeliveryStatus;
use ocpay_store::conformance;
use ocpay_testkit::pay_request;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;

use super::{OCPAY, merchant_made_offline, wait_healthy};

/// The grace the server is given, and the lease of its claims: far longer than the test.
const GRACE_MS: u64 = 2_000;
const LEASE_MS: u64 = 120_000;

/// A notification receiver that reports each request as it arrives; it never answers the
/// first one (an attempt only the grace ends), and acknowledges every later one at once.
async fn receiver() -> (String, mpsc::UnboundedReceiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    let (arrived, arrivals) = mpsc::unbounded_channel();
    let seen = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let (arrived, seen) = (arrived.clone(), seen.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Enough of the request to know one arrived: its headers.
                while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&buffer[..read]),
                    }
                }
                let _ = arrived.send(());
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Held open until the sender gives up.
                    let _ = stream.read_to_end(&mut Vec::new()).await;
                    return;
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{NOTIFICATION_ACK}",
                    NOTIFICATION_ACK.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, arrivals)
}

async fn next_arrival(arrivals: &mut mpsc::UnboundedReceiver<()>, within: Duration, what: &str) {
    tokio::time::timeout(within, arrivals.recv())
        .await
        .unwrap_or_else(|_| panic!("{what} within {within:?}"));
}

/// A server process, killed when dropped (a failed test leaves none behind).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &Path, settings: &Path, address: &str) -> Running {
    let child = Command::new(OCPAY)
        .args(["serve", "--data-dir", data.to_str().unwrap(), "--listen", address])
        .args(["--config", settings.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ocpay serve starts");
    wait_healthy(address);
    Running(child)
}

/// A signed `pay` request whose body is sent in two halves: the first now, the second by the
/// caller, so that the request is in flight meanwhile.
fn half_sent_pay(address: &str, client_id: &str, key: &SigningKey) -> (TcpStream, Vec<u8>) {
    let body = serde_json::to_vec(&pay_request("in-flight-at-sigterm", "USD", 1_000)).unwrap();
    let path = Api::Pay.path();
    let time = jiff::Timestamp::now().as_millisecond().to_string();
    let signature = key.sign_header(1, &content_to_sign("POST", &path, client_id, &time, &body)).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: {}\r\n{}: {client_id}\r\n{}: {time}\r\n{}: {signature}\r\ncontent-length: {}\r\n\r\n",
        header::CONTENT_TYPE_JSON,
        header::CLIENT_ID,
        header::REQUEST_TIME,
        header::SIGNATURE,
        body.len()
    );
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(first).unwrap();
    (stream, rest.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_and_releases_the_claim_of_an_attempt_it_cuts_off() {
    sigterm_with(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn sigterm_on_postgres_releases_the_claim_of_an_attempt_it_cuts_off() {
    let database_url = conformance::postgres_scratch_schema(&conformance::postgres_test_url());
    sigterm_with(Some(&database_url)).await;
}

async fn sigterm_with(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let settings = dir.path().join("ocpay.toml");
    let mut toml = format!(
        "shutdown_grace_ms = {GRACE_MS}\nnotify_timeout_ms = 60000\nnotify_claim_lease_ms = {LEASE_MS}\n\
         notify_poll_interval_ms = 50\n"
    );
    if let Some(url) = database_url {
        toml.push_str(&format!("database_url = {url:?}\n"));
    }
    std::fs::write(&settings, toml).unwrap();
    let (notify_url, mut arrivals) = receiver().await;
    let (client_id, key, platform_key) = merchant_made_offline(&data, database_url, &notify_url).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let mut server = start(&data, &settings, &address);
    let url = format!("http://{address}");

    // A paid payment: its notification's first attempt hangs at the receiver.
    let client = Client::builder(&url, &client_id, key.clone(), platform_key).build().unwrap();
    let payment = client.pay(&pay_request("notified", "USD", 1_000)).await.unwrap();
    assert_eq!(payment.result.result_status, ResultStatus::S, "{:?}", payment.result);
    let code = payment.order_code_form.as_ref().and_then(|form| form.text_code()).unwrap();
    let paid = reqwest::Client::new()
        .post(format!("{url}/wallet/api/codes/{}/pay", code.rsplit('/').next().unwrap()))
        .json(&serde_json::json!({ "payerId": "stopping-payer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200);
    next_arrival(&mut arrivals, Duration::from_secs(20), "the notification's first attempt arrives").await;

    // A request in flight: headers and half its body sent. The pause lets the server read them
    // and start the request before the signal.
    let (mut in_flight, rest) = half_sent_pay(&address, &client_id, &key);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let terminated = Instant::now();
    let signal = Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status().unwrap();
    assert!(signal.success());

    // New connections are refused at once.
    while TcpStream::connect(&address).is_ok() {
        assert!(terminated.elapsed() < Duration::from_secs(2), "the listener closed on SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The request in flight finishes, answered.
    in_flight.write_all(&rest).unwrap();
    let mut answer = String::new();
    let _ = in_flight.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "the request in flight is answered: {answer}");
    assert!(answer.contains(r#""resultStatus":"S""#), "{answer}");

    // The hung attempt holds the server until the grace ends, then it exits 0.
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(terminated.elapsed() < Duration::from_secs(20), "the server exits after the grace");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = terminated.elapsed();
    assert_eq!(status.code(), Some(0), "a shutdown on SIGTERM exits 0");
    assert!(took >= Duration::from_millis(GRACE_MS), "the attempt had the whole grace ({took:?})");
    eprintln!("stopped {took:?} after SIGTERM with a grace of {GRACE_MS} ms");

    // Its claim was released as the server stopped, and no attempt was recorded; the request in
    // flight was written.
    let (claimed, attempts, status, paid_in_flight) = claim_and_in_flight(&data, database_url).await;
    assert_eq!((claimed, attempts, status.as_str()), (None, 0, "PENDING"), "released, due again");
    assert_eq!(paid_in_flight, 1, "the request in flight was written");

    // Started again, the notification goes out at once, not after the lease.
    let restarted = Instant::now();
    let _server = start(&data, &settings, &address);
    next_arrival(&mut arrivals, Duration::from_secs(10), "the notification is sent again at once").await;
    assert!(restarted.elapsed() < Duration::from_millis(LEASE_MS / 4));
    let store = DataDir::open(&data).unwrap().open_store(&config_of(database_url)).await.unwrap();
    let payment_id = payment.payment_id.unwrap();
    let delivered = Instant::now();
    loop {
        let notifications =
            ocpay_store::NotificationStore::notifications(&*store, &payment_id).await.unwrap();
        if notifications.iter().all(|(notification, _)| notification.status == DeliveryStatus::Delivered) {
            break;
        }
        assert!(delivered.elapsed() < Duration::from_secs(10), "delivered: {notifications:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config_of(database_url: Option<&str>) -> Config {
    let overrides = Overrides { database_url: database_url.map(str::to_owned), ..Overrides::default() };
    Config::load(None, &overrides).unwrap()
}

const CLAIM_AND_IN_FLIGHT: &str = "SELECT claimed_until_ms, attempts, status, \
     (SELECT count(*) FROM payment WHERE payment_request_id = 'in-flight-at-sigterm') FROM notification";

/// The notification's claim, attempts and status, and how many payments the request in flight
/// made, read from the database itself.
async fn claim_and_in_flight(data: &Path, database_url: Option<&str>) -> (Option<i64>, i64, String, i64) {
    let Some(url) = database_url else {
        let connection = rusqlite::Connection::open(data.join("ocpay.db")).unwrap();
        return connection
            .query_row(CLAIM_AND_IN_FLIGHT, [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap();
    };
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let row = client.query_one(CLAIM_AND_IN_FLIGHT, &[]).unwrap();
        (row.get(0), row.get(1), row.get(2), row.get(3))
    })
    .await
    .unwrap()
}
