//! `ocpay bench`: how close does the platform get to the machine's RSA ceiling?
//!
//! It measures, in one run:
//! (a) the crypto ceiling: RSA-2048 sign + verify operations per second on the CPUs the server
//!     gets, which is the unavoidable cost of one signed request and its signed answer;
//! (b) sustained `pay` requests per second through real HTTP into a real `ocpay serve` process
//!     with durable SQLite commits, closed-loop with concurrent connections, with latency
//!     percentiles; then latency at half that rate, open-loop (latency counted from each
//!     request's scheduled send time, so a stall is not hidden);
//! (c) complete payments per second: `pay`, the payer paying through the wallet API, and the
//!     signed notification delivered to (and acknowledged by) a receiver in the load
//!     generator, with the latency from sending `pay` to receiving the notification. A complete
//!     payment costs two signatures and one verification, so its ceiling is about (a) / 2.
//!
//! Only verified work counts. Every `pay` answer must carry the platform's signature over its
//! exact bytes (checked with the platform's public key) and say `S`; every wallet payment must
//! answer `SUCCESS` for its payment; every notification must carry the platform's signature
//! and report success. Anything else is an error, and a run with errors exits non-zero, so a
//! server that skipped or reused its signatures cannot score.
//!
//! The primary figure is the CPU-time ratio: the CPU time of the RSA operations a `pay` needs
//! (measured as CPU time while the ceiling runs) against the server's CPU time per `pay`.
//! Unlike the throughput ratio, it hardly depends on what the machine's neighbours did while
//! the ceiling ran; the ceiling is measured before and after the closed-loop phase, and a run
//! whose two measurements differ by more than 15 % is flagged.
//!
//! The server and the load generator run as separate processes pinned to separate CPUs
//! (`taskset`; a warning says when that is impossible), and the generator signs each phase's
//! requests before the phase, so it never competes with the server for the CPU or the
//! crypto. Its verifications (tens of thousands per second per core) run on its own CPU.
//! The report names the data directory's file system: on a tmpfs, `fsync` is free.

// Rates and percentiles of a benchmark, never money: floating point is right here.
#![allow(clippy::float_arithmetic)]

mod drain;
mod flood;
mod plot;
mod preload;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::http::{HeaderMap, StatusCode, Uri};
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_protocol::api::header;
use ocpay_protocol::payments::NOTIFY_TYPE_PAYMENT_RESULT;
use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{Api, ResultCode, ResultStatus, SigningKey, VerifyingKey};
use ocpay_sdk::webhook::{self, Delivery};
use ocpay_server::HttpUrl;
use ocpay_server::config::Config;
use ocpay_server::data_dir::DataDir;
use ocpay_server::service::participants::NewParticipant;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::oneshot;

/// Longest phase: requests are signed before their phase, and must still be within the
/// server's five-minute `Request-Time` window when they are sent.
const PHASE_SECONDS_MAX: u64 = 120;

/// Longest measurement of the crypto ceiling (shorter when the phases are).
const CEILING_SECONDS_MAX: u64 = 4;

/// How far apart the two ceiling measurements may be, as a fraction of their mean, before the
/// run is flagged as noisy.
const CEILING_DRIFT_MAX: f64 = 0.15;

/// The benchmark merchant's notify URL, which no phase delivers to (the complete payments name
/// the load generator's own receiver in each `pay`).
const BENCH_NOTIFY_URL: &str = "https://merchant.example/notify";

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    part: Option<BenchPart>,
    /// Seconds of each timed phase (at most 120).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent connections of the closed-loop phases.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// CPUs for the server, as taskset takes them [default: all but the last].
    #[arg(long)]
    server_cpus: Option<String>,
    /// CPUs for the load generator [default: the last].
    #[arg(long)]
    client_cpus: Option<String>,
    /// Run the servers on this PostgreSQL database instead of SQLite files (it must exist; the
    /// benchmark adds a participant and payments to it).
    #[arg(long, env = "OCPAY_DATABASE_URL")]
    database_url: Option<String>,
    /// Servers sharing the database, all on the server CPUs; the load goes round-robin.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// First fill the store with this many payments' worth of history (payments, refunds,
    /// notifications, audit events, API log, settled batches), as BENCHMARKS.md describes.
    #[arg(long, default_value_t = 0)]
    preload: u64,
    /// Keep the data directory after the run (the summary's `data_dir` names it).
    #[arg(long)]
    keep_data: bool,
    /// Run on this data directory (SQLite files and keys), created when missing and always
    /// kept, instead of a new one: a store preloaded once (`--preload N --data-dir DIR`) is then
    /// measured again by later runs (`--data-dir DIR`), each with a benchmark merchant of its own.
    /// Every run adds its merchant and payments to that store, so a store holding a participant
    /// no benchmark created is refused.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The directory to write the summary (summary.json) and its plots (latency.svg,
    /// throughput.svg) into [default: ocpay-bench-<UTC time> in the current directory].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum BenchPart {
    /// Measure RSA-2048 sign + verify operations per second.
    #[command(hide = true)]
    Crypto {
        #[arg(long)]
        seconds: u64,
        #[arg(long)]
        threads: usize,
        /// Sign only, as a notification costs (no verification).
        #[arg(long)]
        sign_only: bool,
    },
    /// Generate load against a server.
    #[command(hide = true)]
    Load(LoadArgs),
    /// What a flood of forged requests, and a client holding thousands of sockets, do to a
    /// legitimate merchant's `pay`, with the server's limits (or with them off).
    Flood(flood::FloodArgs),
    /// Generate the flood benchmark's load against a server.
    #[command(hide = true)]
    FloodLoad(flood::FloodLoadArgs),
    /// Send the flood benchmark's forged requests, in a process of their own.
    #[command(hide = true)]
    FloodForge(flood::FloodForgeArgs),
    /// How fast the notifier delivers a backlog of due notifications, against the machine's
    /// RSA signing ceiling.
    Drain(drain::DrainArgs),
    /// Receive the drain benchmark's notifications.
    #[command(hide = true)]
    DrainReceive(drain::DrainReceiveArgs),
}

#[derive(clap::Args, Clone)]
struct LoadArgs {
    /// The servers' base URLs, separated by commas; requests go round-robin.
    #[arg(long)]
    url: String,
    #[arg(long)]
    client_id: String,
    /// The platform's public key (PEM), which every answer and notification must verify with.
    #[arg(long)]
    platform_key: PathBuf,
    /// Pre-signed requests, one JSON object per line.
    #[arg(long)]
    requests: PathBuf,
    #[arg(long)]
    seconds: u64,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Open loop at this many requests per second; closed loop without it.
    #[arg(long)]
    rate: Option<f64>,
    /// Complete each payment (wallet pay, notification) and receive notifications on this port.
    #[arg(long)]
    notify_port: Option<u16>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CryptoResult {
    threads: usize,
    operations_per_second: f64,
    /// The CPU time one sign + verify took, whatever else ran on those CPUs meanwhile.
    #[serde(default)]
    cpu_ms_per_operation: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct LoadResult {
    /// Requests (or whole payments) that verified.
    completed: usize,
    /// Requests (or whole payments) that did not, each counted once.
    errors: usize,
    /// The errors by what went wrong.
    #[serde(default)]
    error_kinds: BTreeMap<String, usize>,
    seconds: f64,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    ran_out_of_requests: bool,
    /// The latency distribution: `(q, ms)` for the quantiles of [`QUANTILES`] that the
    /// completed count resolves, then the maximum.
    #[serde(default)]
    latency_quantiles_ms: Vec<(f64, f64)>,
    /// Completions per second in each whole [`THROUGHPUT_STEP_SECONDS`] of the phase.
    #[serde(default)]
    throughput_per_second: Vec<f64>,
}

/// The quantiles of the latency distribution: ten steps per nine, from 0 to 99.999 %.
fn quantiles() -> impl Iterator<Item = f64> {
    (0..=50).map(|step| 1.0 - 10f64.powf(-f64::from(step) / 10.0))
}

/// The width of the steps the throughput over time is counted in.
const THROUGHPUT_STEP_SECONDS: f64 = 0.25;

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.part {
        Some(BenchPart::Crypto { seconds, threads, sign_only }) => {
            let result = crypto(Duration::from_secs(seconds), threads, !sign_only)?;
            crate::print_stdout(&(serde_json::to_string(&result)? + "\n"))?;
            Ok(())
        }
        Some(BenchPart::Load(load_args)) => {
            crate::print_stdout(&(serde_json::to_string(&load(load_args).await?)? + "\n"))?;
            Ok(())
        }
        Some(BenchPart::Flood(flood_args)) => flood::run(flood_args).await,
        Some(BenchPart::FloodLoad(load_args)) => flood::load(load_args).await,
        Some(BenchPart::FloodForge(forge_args)) => flood::forge(forge_args).await,
        Some(BenchPart::Drain(drain_args)) => drain::run(drain_args).await,
        Some(BenchPart::DrainReceive(receive_args)) => drain::receive(receive_args).await,
        None if args.seconds > PHASE_SECONDS_MAX => bail!("--seconds is at most {PHASE_SECONDS_MAX}"),
        None if args.nodes == 0 => bail!("--nodes is at least 1"),
        None if args.nodes > 1 && args.database_url.is_none() => {
            bail!("several nodes share a PostgreSQL database: give --database-url")
        }
        None => orchestrate(&args).await,
    }
}

/// (a): every thread signs a response-sized message and verifies a signature, in a loop.
fn crypto(duration: Duration, threads: usize, verify: bool) -> anyhow::Result<CryptoResult> {
    let key = SigningKey::generate()?;
    let public = key.verifying_key();
    let message = vec![b'x'; 900];
    let signature = key.sign(&message)?;
    let cpu_before = process_cpu_seconds(std::process::id());
    let started = Instant::now();
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (key, public, message, signature) =
                (key.clone(), public.clone(), message.clone(), signature.clone());
            std::thread::spawn(move || {
                let mut operations = 0u64;
                while started.elapsed() < duration {
                    let _ = key.sign(&message);
                    if verify {
                        let _ = public.verify(&message, &signature);
                    }
                    operations += 1;
                }
                operations
            })
        })
        .collect();
    let mut operations = 0u64;
    for handle in handles {
        operations += handle.join().map_err(|_| anyhow::anyhow!("a crypto thread panicked"))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, process_cpu_seconds(std::process::id())) {
        (Some(before), Some(after)) if operations > 0 => Some((after - before) * 1000.0 / operations as f64),
        _ => None,
    };
    Ok(CryptoResult {
        threads: threads.max(1),
        operations_per_second: operations as f64 / seconds,
        cpu_ms_per_operation: cpu,
    })
}

#[derive(Serialize, Deserialize)]
struct Signed {
    /// The request's `paymentRequestId`, which its answer must name.
    payment_request_id: String,
    request_time: String,
    signature: String,
    body: String,
}

/// Signs `count` distinct pay requests on all CPUs and writes them to `path`, one per line.
fn presign(
    client_id: &str,
    key: &SigningKey,
    count: usize,
    notify_url: &str,
    path: &Path,
) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = count.div_ceil(threads);
    let run = format!("{}", jiff::Timestamp::now().as_microsecond());
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let (key, client_id, run, notify_url) =
                (key.clone(), client_id.to_owned(), run.clone(), notify_url.to_owned());
            std::thread::spawn(move || {
                let path = Api::Pay.path_for(&client_id);
                (thread * chunk..((thread + 1) * chunk).min(count))
                    .map(|index| {
                        let payment_request_id = format!("bench-{run}-{index}");
                        let body = pay_body(&payment_request_id, &notify_url);
                        let request_time = jiff::Timestamp::now().as_millisecond().to_string();
                        let content =
                            content_to_sign("POST", &path, &client_id, &request_time, body.as_bytes());
                        let signature = key.sign_header(1, &content).expect("signing works");
                        Signed { payment_request_id, request_time, signature, body }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut lines = String::new();
    for signed in handles.into_iter().flat_map(|handle| handle.join().unwrap_or_default()) {
        lines.push_str(&serde_json::to_string(&signed)?);
        lines.push('\n');
    }
    std::fs::write(path, lines).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

fn pay_body(request_id: &str, notify_url: &str) -> String {
    serde_json::to_string(&json!({
        "productCode": "IN_STORE_PAYMENT",
        "paymentRequestId": request_id,
        "paymentFactor": {"inStorePaymentScenario": "OrderCode"},
        "paymentMethod": {"paymentMethodType": "CONNECT_WALLET"},
        "paymentAmount": {"currency": "USD", "value": "1250"},
        "order": {
            "referenceOrderId": request_id,
            "orderDescription": "Two flat whites",
            "orderAmount": {"currency": "USD", "value": "1250"},
            "merchant": {
                "referenceMerchantId": "M0001", "merchantName": "Demo Cafe", "merchantMCC": "5812",
                "store": {"referenceStoreId": "S0001", "storeName": "Demo Cafe Orchard", "storeMCC": "5812"}
            }
        },
        "paymentNotifyUrl": notify_url
    }))
    .unwrap_or_default()
}

/// Why a request or a payment counts as an error: a kind for the summary, and the detail.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    kind: &'static str,
    detail: String,
}

impl Failure {
    fn new(kind: &'static str, detail: impl std::fmt::Display) -> Failure {
        Failure { kind, detail: detail.to_string() }
    }
}

const TRANSPORT: &str = "transport";
const ANSWER_SIGNATURE: &str = "answer signature";
const ANSWER_RESULT: &str = "answer result";
const WALLET: &str = "wallet";
const NOTIFICATION_SIGNATURE: &str = "notification signature";
const NOTIFICATION_RESULT: &str = "notification result";
const NOTIFICATION_MISSING: &str = "notification missing";

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, String> {
    headers.get(name).and_then(|value| value.to_str().ok()).ok_or_else(|| format!("no {name} header"))
}

/// What a `pay` answer says once it is verified.
#[derive(Debug, PartialEq, Eq)]
struct PayAnswer {
    payment_id: String,
    /// The order code's token, which the wallet pays.
    token: String,
}

/// Checks a `pay` answer as the SDK does: the platform signed exactly these bytes for this
/// client and path, and the result is `S` with a payment and its order code.
fn check_pay_answer(
    platform_key: &VerifyingKey,
    path: &str,
    client_id: &str,
    payment_request_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<PayAnswer, Failure> {
    let signed = || -> Result<(), String> {
        let answered_for = header_text(headers, header::CLIENT_ID)?;
        if answered_for != client_id {
            return Err(format!("the answer is for client {answered_for:?}"));
        }
        // An answer is signed as a notification is: `POST <path>\n<client-id>.<time>.<body>`,
        // with the response time in place of the request time.
        let delivery = Delivery {
            path,
            client_id,
            request_time: header_text(headers, header::RESPONSE_TIME)?,
            signature: header_text(headers, header::SIGNATURE)?,
            body,
        };
        webhook::verify(platform_key, &delivery).map_err(|error| error.to_string())
    };
    signed().map_err(|detail| Failure::new(ANSWER_SIGNATURE, detail))?;
    let answer: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| Failure::new(ANSWER_RESULT, error))?;
    if answer["result"]["resultStatus"] != ResultStatus::S.as_str() {
        return Err(Failure::new(ANSWER_RESULT, &answer["result"]));
    }
    // A signed answer replayed for another request is the answer to that request, not this one.
    if answer["paymentRequestId"] != payment_request_id {
        return Err(Failure::new(ANSWER_RESULT, format!("an answer to {}", answer["paymentRequestId"])));
    }
    let payment_id =
        answer["paymentId"].as_str().ok_or_else(|| Failure::new(ANSWER_RESULT, "no paymentId"))?;
    let token = answer["orderCodeForm"]["codeDetails"][0]["codeValue"]
        .as_str()
        .and_then(|code| code.rsplit('/').next())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| Failure::new(ANSWER_RESULT, "no order code"))?;
    Ok(PayAnswer { payment_id: payment_id.to_owned(), token: token.to_owned() })
}

/// Checks the wallet's answer: the payment it paid is ours, and it says `SUCCESS`.
fn check_wallet_answer(status: u16, body: &[u8], payment_id: &str) -> Result<(), Failure> {
    let answer: serde_json::Value = serde_json::from_slice(body)
        .map_err(|error| Failure::new(WALLET, format!("HTTP {status}, not JSON: {error}")))?;
    if status != 200 || answer["status"] != "SUCCESS" || answer["paymentId"] != payment_id {
        return Err(Failure::new(WALLET, format!("HTTP {status}: {answer}")));
    }
    Ok(())
}

/// Checks a notification as a merchant does (`ocpay_sdk::webhook`): the platform signed it for
/// this client and path, and it reports a successful payment. Returns the payment's id.
///
/// A failure comes with the payment id the body names, unverified, so that the payment it
/// claims to be about counts the error.
fn check_notification(
    platform_key: &VerifyingKey,
    client_id: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, (Option<String>, Failure)> {
    let notification = verified_notification(platform_key, client_id, path, headers, body)?;
    let result = &notification.result;
    if notification.notify_type != NOTIFY_TYPE_PAYMENT_RESULT
        || result.result_status != ResultStatus::S
        || result.code() != Some(ResultCode::SUCCESS)
    {
        let detail = format!("{} {}: {:?}", notification.notify_type, notification.payment_id, result);
        return Err((Some(notification.payment_id), Failure::new(NOTIFICATION_RESULT, detail)));
    }
    Ok(notification.payment_id)
}

/// A payment notification the platform signed for this client and path, whatever it reports.
fn verified_notification(
    platform_key: &VerifyingKey,
    client_id: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ocpay_protocol::payments::PaymentNotification, (Option<String>, Failure)> {
    let claimed = || {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|body| body["paymentId"].as_str().map(str::to_owned))
    };
    (|| -> Result<_, String> {
        let sent_for = header_text(headers, header::CLIENT_ID)?;
        if sent_for != client_id {
            return Err(format!("the notification is for client {sent_for:?}"));
        }
        let delivery = Delivery {
            path,
            client_id,
            request_time: header_text(headers, header::REQUEST_TIME)?,
            signature: header_text(headers, header::SIGNATURE)?,
            body,
        };
        webhook::payment_notification(platform_key, &delivery).map_err(|error| error.to_string())
    })()
    .map_err(|detail| (claimed(), Failure::new(NOTIFICATION_SIGNATURE, detail)))
}

/// Where each payment's notification is, for the load generator's workers; `stray` keeps the
/// failed notifications that name no payment.
#[derive(Default)]
struct Arrivals {
    payments: Mutex<HashMap<String, Arrival>>,
    stray: Mutex<Vec<Failure>>,
}

type Arrived = Result<Instant, Failure>;

enum Arrival {
    Awaited(oneshot::Sender<Arrived>),
    Arrived(Arrived),
}

impl Arrivals {
    /// Waits for `payment_id`'s notification (which may have arrived already).
    async fn wait(&self, payment_id: &str) -> Arrived {
        let missing = || Failure::new(NOTIFICATION_MISSING, format!("none for {payment_id} in 30 s"));
        let receiver = {
            let Ok(mut arrivals) = self.payments.lock() else { return Err(missing()) };
            if let Some(Arrival::Arrived(arrived)) = arrivals.remove(payment_id) {
                return arrived;
            }
            let (sender, receiver) = oneshot::channel();
            arrivals.insert(payment_id.to_owned(), Arrival::Awaited(sender));
            receiver
        };
        match tokio::time::timeout(Duration::from_secs(30), receiver).await {
            Ok(Ok(arrived)) => arrived,
            _ => Err(missing()),
        }
    }

    /// Notes a delivery. Before the payment's worker waits, a failed delivery outweighs any
    /// verified one, and a repeated verified one changes nothing.
    fn arrived(&self, payment_id: String, arrived: Arrived) {
        let Ok(mut arrivals) = self.payments.lock() else { return };
        let noted = match (arrivals.remove(&payment_id), arrived) {
            (Some(Arrival::Awaited(sender)), arrived) => {
                let _ = sender.send(arrived);
                return;
            }
            (Some(Arrival::Arrived(Err(failure))), _) | (_, Err(failure)) => Err(failure),
            (Some(Arrival::Arrived(Ok(at))), Ok(_)) | (None, Ok(at)) => Ok(at),
        };
        arrivals.insert(payment_id, Arrival::Arrived(noted));
    }

    fn stray(&self, failure: Failure) {
        if let Ok(mut stray) = self.stray.lock() {
            stray.push(failure);
        }
    }
}

/// A notify endpoint that verifies each notification, acknowledges it when it verifies and
/// reports success, and notes its arrival either way.
async fn receive_notifications(
    port: u16,
    platform_key: VerifyingKey,
    client_id: String,
) -> anyhow::Result<Arc<Arrivals>> {
    let arrivals = Arc::new(Arrivals::default());
    let noted = arrivals.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
        let (noted, platform_key, client_id) = (noted.clone(), platform_key.clone(), client_id.clone());
        async move {
            let path = uri.path_and_query().map_or(uri.path(), |path| path.as_str());
            match check_notification(&platform_key, &client_id, path, &headers, &body) {
                Ok(payment_id) => {
                    noted.arrived(payment_id, Ok(Instant::now()));
                    (StatusCode::OK, [("content-type", "application/json")], ocpay_sdk::webhook::ACK)
                }
                Err((payment_id, failure)) => {
                    match payment_id {
                        Some(payment_id) => noted.arrived(payment_id, Err(failure)),
                        None => noted.stray(failure),
                    }
                    (StatusCode::BAD_REQUEST, [("content-type", "text/plain")], "not verified")
                }
            }
        }
    });
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.1", port)).await.context("bind the notify endpoint")?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(arrivals)
}

/// What every request of a phase needs.
struct Target {
    http: reqwest::Client,
    client_id: String,
    path: String,
    platform_key: VerifyingKey,
}

/// One pre-signed `pay`, its answer verified.
async fn pay(target: &Target, base: &str, signed: &Signed) -> Result<PayAnswer, Failure> {
    let response = target
        .http
        .post(format!("{base}{}", target.path))
        .header("content-type", "application/json; charset=UTF-8")
        .header(header::CLIENT_ID, &target.client_id)
        .header(header::REQUEST_TIME, &signed.request_time)
        .header(header::SIGNATURE, &signed.signature)
        .body(signed.body.clone())
        .send()
        .await
        .map_err(|error| Failure::new(TRANSPORT, error))?;
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(|error| Failure::new(TRANSPORT, error))?;
    let (key, path, client_id) = (&target.platform_key, &target.path, &target.client_id);
    check_pay_answer(key, path, client_id, &signed.payment_request_id, &headers, &body)
}

/// Sandbox payers of the complete payments, taken in turn: many payers, as in a shop, rather
/// than one wallet whose balance every payment changes.
const PAYERS: usize = 1_000;

/// A whole payment: pay, the wallet pays, the notification arrives, each verified. Returns
/// when the notification arrived.
async fn complete(
    target: &Target,
    base: &str,
    (index, signed): (usize, &Signed),
    arrivals: &Arrivals,
) -> Result<Instant, Failure> {
    let answer = pay(target, base, signed).await?;
    let payer = json!({ "payerId": format!("bench-payer-{}", index % PAYERS) }).to_string();
    let paid = target
        .http
        .post(format!("{base}/wallet/api/codes/{}/pay", answer.token))
        .header("content-type", "application/json")
        .body(payer)
        .send()
        .await
        .map_err(|error| Failure::new(TRANSPORT, error))?;
    let status = paid.status().as_u16();
    let body = paid.bytes().await.map_err(|error| Failure::new(TRANSPORT, error))?;
    check_wallet_answer(status, &body, &answer.payment_id)?;
    arrivals.wait(&answer.payment_id).await
}

async fn load(args: LoadArgs) -> anyhow::Result<LoadResult> {
    let requests: Vec<Signed> = std::fs::read_to_string(&args.requests)
        .with_context(|| format!("read {}", args.requests.display()))?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let requests = Arc::new(requests);
    let bases: Arc<Vec<String>> = Arc::new(args.url.split(',').map(str::to_owned).collect());
    let platform_key = std::fs::read_to_string(&args.platform_key)
        .with_context(|| format!("read the platform key {}", args.platform_key.display()))
        .and_then(|text| Ok(VerifyingKey::from_text(&text)?))?;
    let target = Arc::new(Target {
        http: reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(args.concurrency.max(1024))
            .timeout(Duration::from_secs(30))
            .build()?,
        path: Api::Pay.path_for(&args.client_id),
        client_id: args.client_id.clone(),
        platform_key: platform_key.clone(),
    });
    let arrivals = match args.notify_port {
        Some(port) => Some(receive_notifications(port, platform_key, args.client_id.clone()).await?),
        None => None,
    };
    let next = Arc::new(AtomicUsize::new(0));
    let duration = Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let one = {
        let (target, bases, requests, arrivals) =
            (target.clone(), bases.clone(), requests.clone(), arrivals.clone());
        move |index: usize, from: Instant| {
            let (target, requests, arrivals) = (target.clone(), requests.clone(), arrivals.clone());
            let base = bases[index % bases.len()].clone();
            async move {
                let signed = &requests[index];
                let outcome = match &arrivals {
                    Some(arrivals) => complete(&target, &base, (index, signed), arrivals).await.map(drop),
                    None => pay(&target, &base, signed).await.map(drop),
                };
                (from.elapsed(), started.elapsed(), outcome)
            }
        }
    };
    match args.rate {
        None => {
            for _ in 0..args.concurrency.max(1) {
                let (next, requests, one) = (next.clone(), requests.clone(), one.clone());
                tasks.spawn(async move {
                    let mut samples = Vec::new();
                    while started.elapsed() < duration {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= requests.len() {
                            break;
                        }
                        samples.push(one(index, Instant::now()).await);
                    }
                    samples
                });
            }
        }
        Some(rate) => {
            let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
            let mut index = 0;
            while started.elapsed() < duration && index < requests.len() {
                let scheduled = started + interval.mul_f64(index as f64);
                tokio::time::sleep_until(scheduled.into()).await;
                let one = one.clone();
                tasks.spawn(async move { vec![one(index, scheduled).await] });
                index += 1;
            }
            next.store(index, Ordering::Relaxed);
        }
    }
    let mut latencies = Vec::new();
    let mut finished = Vec::new();
    let mut failures = Vec::new();
    while let Some(samples) = tasks.join_next().await {
        for (latency, at, outcome) in samples? {
            match outcome {
                Ok(()) => {
                    latencies.push(latency);
                    finished.push(at);
                }
                Err(failure) => failures.push(failure),
            }
        }
    }
    if let Some(arrivals) = &arrivals {
        if let Ok(mut stray) = arrivals.stray.lock() {
            failures.append(&mut stray);
        }
        // Failed deliveries that came after their payment's worker had its answer.
        if let Ok(mut payments) = arrivals.payments.lock() {
            failures.extend(payments.drain().filter_map(|(_, arrival)| match arrival {
                Arrival::Arrived(Err(failure)) => Some(failure),
                _ => None,
            }));
        }
    }
    let mut error_kinds = BTreeMap::new();
    for failure in &failures {
        let count = error_kinds.entry(failure.kind.to_owned()).or_insert(0);
        if *count == 0 {
            eprintln!("error ({}): {}", failure.kind, failure.detail);
        }
        *count += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let millis = |latency: &Duration| latency.as_secs_f64() * 1000.0;
    let percentile = |fraction: f64| {
        let index = ((latencies.len() as f64 * fraction) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(index).map_or(0.0, millis)
    };
    // Only quantiles that the sample resolves (q below 1 - 1/n), then the slowest.
    let n = latencies.len() as f64;
    let mut latency_quantiles_ms: Vec<(f64, f64)> =
        quantiles().take_while(|q| *q < 1.0 - 1.0 / n).map(|q| (q, percentile(q))).collect();
    if let Some(max) = latencies.last() {
        latency_quantiles_ms.push((1.0 - 1.0 / n.max(2.0), millis(max)));
    }
    // Whole steps only: the requests that finish after the phase's last whole step are its
    // drain, which would show as a spike over a sliver of time.
    let mut throughput_per_second = vec![0.0; (seconds / THROUGHPUT_STEP_SECONDS).floor().max(1.0) as usize];
    for at in &finished {
        if let Some(rate) =
            throughput_per_second.get_mut((at.as_secs_f64() / THROUGHPUT_STEP_SECONDS) as usize)
        {
            *rate += 1.0 / THROUGHPUT_STEP_SECONDS;
        }
    }
    Ok(LoadResult {
        completed: latencies.len(),
        errors: failures.len(),
        error_kinds,
        seconds,
        requests_per_second: latencies.len() as f64 / seconds,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        max_ms: latencies.last().map_or(0.0, millis),
        ran_out_of_requests: next.load(Ordering::Relaxed) >= requests.len(),
        latency_quantiles_ms,
        throughput_per_second,
    })
}

/// This `ocpay` executable as a command, pinned to `cpus` when given.
fn ocpay_on(cpus: Option<&str>) -> anyhow::Result<Command> {
    let exe = std::env::current_exe()?;
    Ok(match cpus {
        Some(cpus) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpus).arg(exe);
            command
        }
        None => Command::new(exe),
    })
}

/// Runs `ocpay <args>` pinned to `cpus` and parses the JSON it prints.
fn pinned<T: serde::de::DeserializeOwned>(cpus: Option<&str>, args: &[String]) -> anyhow::Result<T> {
    let output =
        ocpay_on(cpus)?.args(args).stderr(Stdio::inherit()).output().context("run a benchmark part")?;
    if !output.status.success() {
        bail!("benchmark part {args:?} failed");
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server's CPUs, the load generator's, and how many the server has; without `taskset`
/// or a second CPU, nothing is pinned and a warning says so.
fn cpu_split(
    server_cpus: Option<&str>,
    client_cpus: Option<&str>,
) -> (Option<String>, Option<String>, usize) {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let has_taskset = Command::new("taskset").arg("-V").output().is_ok_and(|output| output.status.success());
    if cpus < 2 || !has_taskset {
        let why = if has_taskset { format!("only {cpus} CPU") } else { "no taskset command".to_owned() };
        eprintln!(
            "warning: cannot pin the server and the load generator to separate CPUs ({why}): they \
             compete for the CPU, and the ratios are not comparable with pinned runs"
        );
        return (None, None, cpus);
    }
    let server = server_cpus.map_or_else(|| format!("0-{}", cpus - 2), str::to_owned);
    let client = client_cpus.map_or_else(|| format!("{}", cpus - 1), str::to_owned);
    let n_server = server
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((from, to)) => {
                to.parse::<usize>().unwrap_or(0).saturating_sub(from.parse().unwrap_or(0)) + 1
            }
            None => 1,
        })
        .sum();
    (Some(server), Some(client), n_server)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The type of the file system holding `path`: that of the longest mount point above it in
/// `/proc/mounts` (the last one mounted there, when several are), or `unknown`.
fn filesystem_of(path: &Path) -> String {
    let (Ok(path), Ok(mounts)) = (path.canonicalize(), std::fs::read_to_string("/proc/mounts")) else {
        return "unknown".to_owned();
    };
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            // Mount points escape a space as \040 (and tabs, newlines and backslashes alike).
            let point = fields.next()?.replace("\\040", " ");
            Some((PathBuf::from(point), fields.next()?))
        })
        .filter(|(point, _)| path.starts_with(point))
        .max_by_key(|(point, _)| point.components().count())
        .map_or_else(|| "unknown".to_owned(), |(_, kind)| kind.to_owned())
}

/// The CPU time (user + system) of a process so far, from Linux's `/proc`, in seconds.
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    process_cpu_times(pid).map(|times| times.user + times.kernel)
}

/// A process's CPU time so far, in seconds: in user space and in the kernel on its behalf.
#[derive(Clone, Copy)]
struct CpuTimes {
    user: f64,
    kernel: f64,
}

/// The most memory a process has had resident so far (`VmHWM`), in MiB.
fn peak_resident_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn process_cpu_times(pid: u32) -> Option<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index)?.parse::<f64>().ok();
    // Linux reports these in USER_HZ, 100 per second on every architecture it supports.
    Some(CpuTimes { user: ticks(11)? / 100.0, kernel: ticks(12)? / 100.0 })
}

/// The servers' CPU per completed request during a phase, and the share of it spent in the
/// kernel (sockets, fsync, wake-ups) rather than in ocpay's own code and its libraries.
#[derive(Clone, Copy)]
struct CpuPer {
    ms: f64,
    kernel_share: f64,
}

/// The CPU the servers spent per completed request while `phase` ran.
fn cpu_ms_per(
    pids: &[u32],
    phase: impl FnOnce() -> anyhow::Result<LoadResult>,
) -> anyhow::Result<(LoadResult, Option<CpuPer>)> {
    let cpu = || {
        pids.iter().map(|pid| process_cpu_times(*pid)).try_fold((0.0, 0.0), |(user, kernel), times| {
            times.map(|times| (user + times.user, kernel + times.kernel))
        })
    };
    let before = cpu();
    let result = phase()?;
    let per = match (before, cpu()) {
        (Some(before), Some(after)) if result.completed > 0 => {
            let (user, kernel) = (after.0 - before.0, after.1 - before.1);
            let total = user + kernel;
            Some(CpuPer {
                ms: total * 1000.0 / result.completed as f64,
                kernel_share: if total > 0.0 { kernel / total } else { 0.0 },
            })
        }
        _ => None,
    };
    Ok((result, per))
}

async fn orchestrate(args: &BenchArgs) -> anyhow::Result<()> {
    let (server_cpus, client_cpus, n_server_cpus) =
        cpu_split(args.server_cpus.as_deref(), args.client_cpus.as_deref());
    let dir = std::env::temp_dir().join(format!("ocpay-bench-{}", std::process::id()));
    let data = args.data_dir.clone().unwrap_or_else(|| dir.join("data"));
    let keep_data = args.keep_data || args.data_dir.is_some();
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let data_dir = DataDir::open(&data)?;
    let filesystem = filesystem_of(&data);
    if matches!(filesystem.as_str(), "tmpfs" | "ramfs") {
        eprintln!(
            "warning: the data directory {} is on {filesystem}, where fsync costs nothing: the \
             commits are not durable (set TMPDIR to a directory on a disk)",
            data.display()
        );
    }
    // The key the servers sign with (created here, before them), which every answer and
    // notification must verify with.
    let platform_key = dir.join("platform-public-key.pem");
    std::fs::write(&platform_key, data_dir.platform_key()?.verifying_key().to_pem())
        .with_context(|| format!("write {}", platform_key.display()))?;
    let key = SigningKey::generate()?;
    let config = bench_config(args.database_url.clone())?;
    let client_id = bench_merchant(&data_dir, &config, &key).await?;
    let preloaded = if args.preload > 0 {
        Some(preload::preload(&data_dir, &config, &client_id, BENCH_NOTIFY_URL, args.preload).await?)
    } else {
        None
    };
    let mut servers = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..args.nodes {
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        // One merchant at the platform's peak from one address: the limits would refuse it.
        // What they cost under a flood is `ocpay bench flood`'s to measure.
        servers.push(start_server(server_cpus.as_deref(), &data, args.database_url.as_deref(), port, false)?);
        wait_healthy(&url).await?;
        urls.push(url);
    }
    let url = urls.join(",");
    let server_pids: Vec<u32> = servers.iter().map(|server| server.0.id()).collect();

    let estimate = crypto(Duration::from_secs(1), n_server_cpus, true)?.operations_per_second;
    let seconds = args.seconds as f64;
    let n_requests = |rate: f64| (rate * seconds * 1.5) as usize + 1000;
    let load_args = |requests: &Path, rate: Option<f64>, notify_port: Option<u16>| {
        let mut list = strings(&[
            "bench",
            "load",
            "--url",
            &url,
            "--client-id",
            &client_id,
            "--platform-key",
            platform_key.to_str().unwrap_or_default(),
            "--requests",
            requests.to_str().unwrap_or_default(),
            "--seconds",
            &args.seconds.to_string(),
            "--concurrency",
            &args.concurrency.to_string(),
        ]);
        if let Some(rate) = rate {
            list.extend(strings(&["--rate", &format!("{rate:.0}")]));
        }
        if let Some(port) = notify_port {
            list.extend(strings(&["--notify-port", &port.to_string()]));
        }
        list
    };
    // Notifications of the pay-only phases go nowhere that answers; they do not matter there.
    let nowhere = "http://127.0.0.1:9/notify";
    let requests = dir.join("requests.jsonl");

    // The machines are shared and noisy: measure the ceiling just before and just after the
    // closed-loop phase, on the same CPUs, and compare with their mean.
    let ceiling_seconds = args.seconds.min(CEILING_SECONDS_MAX).to_string();
    let ceiling_args =
        strings(&["bench", "crypto", "--seconds", &ceiling_seconds, "--threads", &n_server_cpus.to_string()]);
    eprintln!("(a) crypto ceiling on the server's CPUs ({}) ...", server_cpus.as_deref().unwrap_or("all"));
    let before: CryptoResult = pinned(server_cpus.as_deref(), &ceiling_args)?;
    presign(&client_id, &key, n_requests(estimate), nowhere, &requests)?;
    eprintln!("(b) closed-loop pay, {} connections, {} s ...", args.concurrency, args.seconds);
    let (peak, cpu_per_pay) =
        cpu_ms_per(&server_pids, || pinned(client_cpus.as_deref(), &load_args(&requests, None, None)))?;
    let after: CryptoResult = pinned(server_cpus.as_deref(), &ceiling_args)?;
    let half_rate = peak.requests_per_second / 2.0;
    presign(&client_id, &key, n_requests(half_rate), nowhere, &requests)?;
    eprintln!("    open-loop at half the peak rate ({half_rate:.0}/s) ...");
    let half: LoadResult = pinned(client_cpus.as_deref(), &load_args(&requests, Some(half_rate), None))?;
    let notify_port = free_port()?;
    presign(
        &client_id,
        &key,
        n_requests(estimate / 2.0),
        &format!("http://127.0.0.1:{notify_port}/notify"),
        &requests,
    )?;
    eprintln!("(c) closed-loop complete payments (pay, wallet pay, notification acknowledged) ...");
    let (complete, cpu_per_complete) = cpu_ms_per(&server_pids, || {
        pinned(client_cpus.as_deref(), &load_args(&requests, None, Some(notify_port)))
    })?;
    // After every phase, so that it covers the most connections and the largest store.
    let peak_rss_mb = server_pids.iter().map(|pid| peak_resident_mb(*pid)).collect::<Option<Vec<f64>>>();
    drop(servers);
    // The run's own files, and its data unless it is kept (a given data directory is elsewhere).
    if args.data_dir.is_some() || !args.keep_data {
        let _ = std::fs::remove_dir_all(&dir);
    }

    let ceiling = (before.operations_per_second + after.operations_per_second) / 2.0;
    let (drift, drifted) = ceiling_drift(before.operations_per_second, after.operations_per_second);
    let ratio = peak.requests_per_second / ceiling;
    let complete_ratio = complete.requests_per_second / (ceiling / 2.0);
    // The CPU time of one sign + verify: measured as CPU time where /proc allows, which the
    // neighbours' load does not inflate as it does the wall-clock rate.
    let crypto_ms = match (before.cpu_ms_per_operation, after.cpu_ms_per_operation) {
        (Some(before), Some(after)) => (before + after) / 2.0,
        _ => 1000.0 * n_server_cpus as f64 / ceiling,
    };
    // The primary figures: the RSA time a `pay` (one sign + verify) or a complete payment
    // (about two) needs, against the server CPU time it took.
    let cpu_ratio = cpu_per_pay.map(|cpu| crypto_ms / cpu.ms);
    let cpu_complete_ratio = cpu_per_complete.map(|cpu| 2.0 * crypto_ms / cpu.ms);
    let errors = peak.errors + half.errors + complete.errors;
    let summary = json!({
        "cpus": {"server": server_cpus, "client": client_cpus, "pinned": server_cpus.is_some()},
        "database": if args.database_url.is_some() { "postgres" } else { "sqlite" },
        "data_filesystem": filesystem,
        "nodes": args.nodes,
        "preload": preloaded,
        "data_dir": keep_data.then(|| data.display().to_string()),
        "errors": errors,
        "crypto_ceiling_before": before,
        "crypto_ceiling_after": after,
        "crypto_ceiling_drift": drift,
        "crypto_ceiling_drift_flagged": drifted,
        "pay_peak": peak,
        "pay_at_half_peak": half,
        "complete_payments": complete,
        "server_cpu_ms_per_pay": cpu_per_pay.map(|cpu| cpu.ms),
        "server_cpu_ms_per_complete_payment": cpu_per_complete.map(|cpu| cpu.ms),
        "server_kernel_share_pay": cpu_per_pay.map(|cpu| cpu.kernel_share),
        "server_kernel_share_complete_payment": cpu_per_complete.map(|cpu| cpu.kernel_share),
        "server_peak_rss_mb": peak_rss_mb,
        "crypto_cpu_ms_per_operation": crypto_ms,
        "cpu_ratio_pay": cpu_ratio,
        "cpu_ratio_complete_payment": cpu_complete_ratio,
        "ratio_pay_to_ceiling": ratio,
        "ratio_complete_to_half_ceiling": complete_ratio,
    });
    crate::print_json(&summary)?;
    write_results(
        args.out.as_deref(),
        &summary,
        &[
            ("pay, closed loop", &peak),
            ("pay at half peak, open loop", &half),
            ("complete payments", &complete),
        ],
    )?;
    eprintln!();
    let database = if args.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    eprintln!("{database} (data directory on {filesystem}), {} node(s)", args.nodes);
    if let Some(preloaded) = &preloaded {
        eprintln!(
            "preloaded with {} payments of history in {:.1} s ({:.1} s writing, {:.1} s settling)",
            preloaded["payments"],
            preloaded["seconds"].as_f64().unwrap_or_default(),
            preloaded["write_seconds"].as_f64().unwrap_or_default(),
            preloaded["settle_seconds"].as_f64().unwrap_or_default()
        );
    }
    eprintln!("| measure | value |");
    eprintln!("|---|---|");
    eprintln!(
        "| (a) RSA-2048 sign+verify ceiling, {} thread(s), before / after | {:.0} / {:.0} per s (apart by {:.0} %), {crypto_ms:.3} ms of CPU each |",
        before.threads,
        before.operations_per_second,
        after.operations_per_second,
        drift * 100.0
    );
    eprintln!(
        "| (b) pay, closed loop, {} connections | {:.0} per s (p50 {:.1} ms, p99 {:.1} ms, {} errors) |",
        args.concurrency, peak.requests_per_second, peak.p50_ms, peak.p99_ms, peak.errors
    );
    if let (Some(cpu), Some(cpu_ratio)) = (cpu_per_pay, cpu_ratio) {
        eprintln!(
            "| **(b) CPU time: sign+verify / server CPU per pay** | **{cpu_ratio:.2}** ({crypto_ms:.3} ms / {:.3} ms, {:.0} % of it in the kernel) |",
            cpu.ms,
            cpu.kernel_share * 100.0
        );
    }
    eprintln!("| (b)/(a), throughput | {ratio:.2} |");
    eprintln!(
        "| pay at half peak ({half_rate:.0} per s), open loop | p50 {:.1} ms, p99 {:.1} ms, {} errors |",
        half.p50_ms, half.p99_ms, half.errors
    );
    eprintln!(
        "| (c) complete payments, closed loop | {:.0} per s (pay to acknowledged notification: p50 {:.1} ms, p99 {:.1} ms, {} errors) |",
        complete.requests_per_second, complete.p50_ms, complete.p99_ms, complete.errors
    );
    if let (Some(cpu), Some(cpu_ratio)) = (cpu_per_complete, cpu_complete_ratio) {
        eprintln!(
            "| **(c) CPU time: 2 × sign+verify / server CPU per complete payment** | **{cpu_ratio:.2}** ({:.3} ms / {:.3} ms, {:.0} % of it in the kernel) |",
            2.0 * crypto_ms,
            cpu.ms,
            cpu.kernel_share * 100.0
        );
    }
    eprintln!("| (c)/((a)/2), throughput | {complete_ratio:.2} |");
    if let Some(peak_rss_mb) = &peak_rss_mb {
        let each: Vec<String> = peak_rss_mb.iter().map(|mb| format!("{mb:.0} MiB")).collect();
        eprintln!("| server memory, most resident (VmHWM) | {} |", each.join(", "));
    }
    for (name, phase) in [("(b)", &peak), ("half peak", &half), ("(c)", &complete)] {
        if phase.ran_out_of_requests {
            eprintln!("warning: {name} ran out of pre-signed requests; its rate is a lower bound");
        }
    }
    if drifted {
        eprintln!(
            "warning: the two ceiling measurements differ by {:.0} % (more than {:.0} %): the machine \
             was noisy, so the throughput ratios are unreliable; the CPU-time ratios less so",
            drift * 100.0,
            CEILING_DRIFT_MAX * 100.0
        );
    }
    verdict(&[&peak, &half, &complete])
}

/// Writes the summary and its plots into `out` (or a new directory named after the time).
fn write_results(
    out: Option<&Path>,
    summary: &serde_json::Value,
    phases: &[(&str, &LoadResult)],
) -> anyhow::Result<()> {
    let out = match out {
        Some(out) => out.to_owned(),
        None => PathBuf::from(format!("ocpay-bench-{}", jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ"))),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let latency: Vec<plot::Line<'_>> = phases
        .iter()
        .map(|(name, phase)| plot::Line {
            name,
            points: phase.latency_quantiles_ms.iter().map(|(q, ms)| (plot::spectrum_x(*q), *ms)).collect(),
        })
        .collect();
    let throughput: Vec<plot::Line<'_>> = phases
        .iter()
        .map(|(name, phase)| plot::Line {
            name,
            points: phase
                .throughput_per_second
                .iter()
                .enumerate()
                .map(|(step, rate)| ((step as f64 + 0.5) * THROUGHPUT_STEP_SECONDS, *rate))
                .collect(),
        })
        .collect();
    let files = [
        ("summary.json", serde_json::to_string_pretty(summary)? + "\n"),
        ("latency.svg", plot::latency_svg("Latency distribution by phase", &latency)?),
        ("throughput.svg", plot::throughput_svg("Throughput over time by phase", &throughput)?),
    ];
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    eprintln!("summary and plots written to {}", out.display());
    Ok(())
}

/// How far apart the two ceiling measurements are, against their mean, and whether that is
/// more than a run's figures can stand.
fn ceiling_drift(before: f64, after: f64) -> (f64, bool) {
    let drift = (before - after).abs() / ((before + after) / 2.0);
    (drift, drift > CEILING_DRIFT_MAX)
}

/// A run fails, and `ocpay bench` exits non-zero, when any request or payment of any phase
/// did not verify.
fn verdict(phases: &[&LoadResult]) -> anyhow::Result<()> {
    let errors: usize = phases.iter().map(|phase| phase.errors).sum();
    if errors > 0 {
        let kinds: BTreeMap<&str, usize> = phases.iter().flat_map(|phase| phase.error_kinds.iter()).fold(
            BTreeMap::new(),
            |mut kinds, (kind, count)| {
                *kinds.entry(kind.as_str()).or_insert(0) += count;
                kinds
            },
        );
        bail!("{errors} requests or payments did not verify: {kinds:?}");
    }
    Ok(())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// The settings the benchmark's own writes use: the environment's, as the server gets them
/// (OCPAY_DATABASE_URL puts them on PostgreSQL), with the database `database_url` names.
fn bench_config(database_url: Option<String>) -> anyhow::Result<Config> {
    let overrides =
        ocpay_server::config::Overrides { database_url, ..ocpay_server::config::Overrides::default() };
    Config::load(None, &overrides)
}

/// The name of every merchant a benchmark creates: a store that holds a participant of any
/// other name is in use, and no benchmark writes into it.
const BENCH_MERCHANT_NAME: &str = "Benchmark merchant";

/// Most participants a benchmark store is checked for: more than any number of runs on one
/// kept store.
const BENCH_STORE_PARTICIPANTS_MAX: u32 = 100_000;

/// The sandbox merchant whose requests the benchmarks send, created in the store `config`
/// names. Its client id. Refused when the store holds a participant that is not an earlier
/// run's benchmark merchant: a benchmark adds a merchant and its payments, and (with
/// `--preload`) settles every due day, so it never runs on a store in use.
async fn bench_merchant(data_dir: &DataDir, config: &Config, key: &SigningKey) -> anyhow::Result<String> {
    let store = data_dir.open_store(config).await?;
    let foreign = store.participants(BENCH_STORE_PARTICIPANTS_MAX).await?.into_iter().find(|participant| {
        participant.name.as_str() != BENCH_MERCHANT_NAME
            || participant.kind != ParticipantKind::Merchant
            || participant.environment() != Environment::Sandbox
    });
    if let Some(participant) = foreign {
        anyhow::bail!(
            "the benchmark runs only on a store of its own: this one holds participant {} ({}), \
             which no benchmark created (give --data-dir or --database-url an empty or a \
             benchmark's store)",
            participant.client_id,
            participant.name.as_str()
        );
    }
    drop(store);
    let new = NewParticipant {
        kind: ParticipantKind::Merchant,
        environment: Environment::Sandbox,
        name: BENCH_MERCHANT_NAME.parse().map_err(anyhow::Error::msg)?,
        public_key: key.verifying_key(),
        notify_url: Some(HttpUrl::parse(BENCH_NOTIFY_URL).map_err(anyhow::Error::msg)?),
    };
    Ok(data_dir.create_participant(config, new).await?.client_id.to_string())
}

/// Starts `ocpay serve` on `port`, with its floods-and-limits settings on (`limits`) or off.
fn start_server(
    cpus: Option<&str>,
    data: &Path,
    database_url: Option<&str>,
    port: u16,
    limits: bool,
) -> anyhow::Result<ServerProcess> {
    let mut command = ocpay_on(cpus)?;
    command.args(["serve", "--listen", &format!("127.0.0.1:{port}")]).arg("--data-dir").arg(data);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    if !limits {
        command
            .env("OCPAY_RATE_LIMIT_ADDRESS_PER_SECOND", "0")
            .env("OCPAY_RATE_LIMIT_CLIENT_PER_SECOND", "0")
            .env("OCPAY_CONNECTIONS_PER_ADDRESS_MAX", "1000000");
    }
    let child =
        command.env("RUST_LOG", "error").stdout(Stdio::null()).spawn().context("start ocpay serve")?;
    Ok(ServerProcess(child))
}

async fn wait_healthy(url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if http
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the server did not become healthy")
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderName, HeaderValue};
    use ocpay_protocol::SignatureHeader;

    use super::*;

    #[test]
    fn a_ceiling_that_moved_more_than_15_percent_is_flagged() {
        for (before, after, flagged) in
            [(1000.0, 1000.0, false), (1000.0, 1150.0, false), (1000.0, 1170.0, true), (1170.0, 1000.0, true)]
        {
            assert_eq!(ceiling_drift(before, after).1, flagged, "{before} then {after}");
        }
    }

    #[test]
    fn any_error_of_any_phase_fails_the_run() {
        let phase = |errors: usize| LoadResult {
            completed: 10,
            errors,
            error_kinds: (errors > 0).then(|| ("unsigned answer".to_owned(), errors)).into_iter().collect(),
            seconds: 1.0,
            requests_per_second: 10.0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            max_ms: 3.0,
            ran_out_of_requests: false,
            latency_quantiles_ms: Vec::new(),
            throughput_per_second: Vec::new(),
        };
        assert!(verdict(&[&phase(0), &phase(0), &phase(0)]).is_ok());
        let failed = verdict(&[&phase(0), &phase(0), &phase(2)]).unwrap_err().to_string();
        assert!(
            failed.contains("2 requests or payments did not verify") && failed.contains("unsigned answer")
        );
    }

    const CLIENT: &str = "SANDBOX_BENCH";
    const TIME: &str = "1764000000000";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn pay_answer(status: &str) -> String {
        json!({
            "result": {"resultCode": "SUCCESS", "resultStatus": status, "resultMessage": "success"},
            "paymentRequestId": "PR1",
            "paymentId": "P1",
            "orderCodeForm": {"codeDetails": [{"codeValue": "https://pay.example/c/TOKEN1"}]}
        })
        .to_string()
    }

    /// The headers a platform sends with `body`, signed with `key` over `signed_body`.
    fn signed(key: &SigningKey, path: &str, time_header: &'static str, signed_body: &str) -> HeaderMap {
        let content = content_to_sign("POST", path, CLIENT, TIME, signed_body.as_bytes());
        let signature = key.sign_header(1, &content).unwrap();
        headers(&[(header::CLIENT_ID, CLIENT), (time_header, TIME), (header::SIGNATURE, &signature)])
    }

    #[test]
    fn only_a_signed_successful_pay_answer_counts() {
        let platform = SigningKey::generate().unwrap();
        let public = platform.verifying_key();
        let path = Api::Pay.path_for(CLIENT);
        let body = pay_answer("S");
        let good = signed(&platform, &path, header::RESPONSE_TIME, &body);
        assert_eq!(
            check_pay_answer(&public, &path, CLIENT, "PR1", &good, body.as_bytes()),
            Ok(PayAnswer { payment_id: "P1".into(), token: "TOKEN1".into() })
        );

        let kind = |headers: &HeaderMap, body: &str| {
            check_pay_answer(&public, &path, CLIENT, "PR1", headers, body.as_bytes()).unwrap_err().kind
        };
        // Tampered: one bit of the signature flipped.
        let parsed = SignatureHeader::parse(header_text(&good, header::SIGNATURE).unwrap()).unwrap();
        let mut flipped = parsed.signature.clone();
        flipped[7] ^= 1;
        let tampered = SignatureHeader { signature: flipped, ..parsed }.format();
        let mut bad = good.clone();
        bad.insert(header::SIGNATURE, HeaderValue::from_str(&tampered).unwrap());
        assert_eq!(kind(&bad, &body), ANSWER_SIGNATURE, "a tampered signature");
        // Reused: another answer's valid signature.
        let other = signed(&platform, &path, header::RESPONSE_TIME, &pay_answer("U"));
        assert_eq!(kind(&other, &body), ANSWER_SIGNATURE, "a signature of other bytes");
        // Signed by someone else, for someone else, or not at all.
        let stranger = signed(&SigningKey::generate().unwrap(), &path, header::RESPONSE_TIME, &body);
        assert_eq!(kind(&stranger, &body), ANSWER_SIGNATURE, "another key");
        let mut elsewhere = good.clone();
        elsewhere.insert(header::CLIENT_ID, HeaderValue::from_static("SANDBOX_OTHER"));
        assert_eq!(kind(&elsewhere, &body), ANSWER_SIGNATURE, "another client");
        let mut unsigned = good.clone();
        unsigned.remove(header::SIGNATURE);
        assert_eq!(kind(&unsigned, &body), ANSWER_SIGNATURE, "no signature");
        // Signed, but not a success.
        let failed = pay_answer("F");
        let failed_headers = signed(&platform, &path, header::RESPONSE_TIME, &failed);
        assert_eq!(kind(&failed_headers, &failed), ANSWER_RESULT, "resultStatus F");
        // Signed and successful, but the answer to another request, replayed.
        let replayed = check_pay_answer(&public, &path, CLIENT, "PR2", &good, body.as_bytes());
        assert_eq!(replayed.unwrap_err().kind, ANSWER_RESULT, "an answer to another request");
    }

    #[test]
    fn only_a_successful_wallet_payment_of_this_payment_counts() {
        assert_eq!(check_wallet_answer(200, br#"{"status":"SUCCESS","paymentId":"P1"}"#, "P1"), Ok(()));
        for (status, body) in [
            (200, r#"{"status":"FAIL","paymentId":"P1","resultCode":"USER_BALANCE_NOT_ENOUGH"}"#),
            (200, r#"{"status":"SUCCESS","paymentId":"P2"}"#),
            (200, r#"{"paymentId":"P1"}"#),
            (200, "OK"),
            (409, r#"{"status":"SUCCESS","paymentId":"P1"}"#),
        ] {
            let failure = check_wallet_answer(status, body.as_bytes(), "P1").unwrap_err();
            assert_eq!(failure.kind, WALLET, "{status} {body}");
        }
    }

    #[test]
    fn only_a_signed_successful_notification_counts() {
        let platform = SigningKey::generate().unwrap();
        let public = platform.verifying_key();
        let notification = |status: &str, code: &str| {
            json!({
                "notifyType": "PAYMENT_RESULT",
                "result": {"resultCode": code, "resultStatus": status, "resultMessage": ""},
                "paymentRequestId": "PR1",
                "paymentId": "P1",
                "paymentAmount": {"currency": "USD", "value": "1250"}
            })
            .to_string()
        };
        let body = notification("S", "SUCCESS");
        let good = signed(&platform, "/notify", header::REQUEST_TIME, &body);
        assert_eq!(check_notification(&public, CLIENT, "/notify", &good, body.as_bytes()), Ok("P1".into()));

        let failure = |headers: &HeaderMap, path: &str, body: &str| {
            let (payment_id, failure) =
                check_notification(&public, CLIENT, path, headers, body.as_bytes()).unwrap_err();
            (payment_id.unwrap_or_default(), failure.kind)
        };
        let mut tampered = body.clone().into_bytes();
        let at = body.find("1250").unwrap();
        tampered[at] = b'9';
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            failure(&good, "/notify", &tampered),
            ("P1".into(), NOTIFICATION_SIGNATURE),
            "a changed body"
        );
        assert_eq!(failure(&good, "/other", &body), ("P1".into(), NOTIFICATION_SIGNATURE), "another path");
        let stranger = signed(&SigningKey::generate().unwrap(), "/notify", header::REQUEST_TIME, &body);
        assert_eq!(
            failure(&stranger, "/notify", &body),
            ("P1".into(), NOTIFICATION_SIGNATURE),
            "another key"
        );
        let failed = notification("F", "PROCESS_FAIL");
        let failed_headers = signed(&platform, "/notify", header::REQUEST_TIME, &failed);
        assert_eq!(
            failure(&failed_headers, "/notify", &failed),
            ("P1".into(), NOTIFICATION_RESULT),
            "a failure"
        );
    }

    #[tokio::test]
    async fn a_failed_notification_fails_its_payment() {
        let arrivals = Arrivals::default();
        let tampered = || Err(Failure::new(NOTIFICATION_SIGNATURE, "tampered"));
        arrivals.arrived("P1".into(), tampered());
        arrivals.arrived("P1".into(), Ok(Instant::now()));
        arrivals.arrived("P2".into(), Ok(Instant::now()));
        arrivals.arrived("P2".into(), Ok(Instant::now()));
        arrivals.arrived("P3".into(), Ok(Instant::now()));
        arrivals.arrived("P3".into(), tampered());
        assert_eq!(
            arrivals.wait("P1").await.unwrap_err().kind,
            NOTIFICATION_SIGNATURE,
            "a retry does not hide it"
        );
        assert!(arrivals.wait("P2").await.is_ok(), "a repeated delivery is fine");
        assert_eq!(arrivals.wait("P3").await.unwrap_err().kind, NOTIFICATION_SIGNATURE);
    }

    #[test]
    fn the_file_system_is_named() {
        assert_eq!(filesystem_of(Path::new("/proc/self")), "proc");
        assert_ne!(filesystem_of(Path::new("/")), "unknown");
        assert_eq!(filesystem_of(Path::new("/no/such/path")), "unknown");
    }
}
