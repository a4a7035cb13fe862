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
//! The server and the load generator run as separate processes pinned to separate CPUs
//! (`taskset`), and the generator signs each phase's requests before the phase, so it never
//! competes with the server for the CPU or the crypto.

// Rates and percentiles of a benchmark, never money: floating point is right here.
#![allow(clippy::float_arithmetic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{Api, SigningKey};
use ocpay_server::config::Config;
use ocpay_server::data_dir::DataDir;
use ocpay_server::service::participants::{self, NewParticipant};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::oneshot;

/// Longest phase: requests are signed before their phase, and must still be within the
/// server's five-minute `Request-Time` window when they are sent.
const PHASE_SECONDS_MAX: u64 = 120;

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
    },
    /// Generate load against a server.
    #[command(hide = true)]
    Load(LoadArgs),
}

#[derive(clap::Args, Clone)]
struct LoadArgs {
    /// The servers' base URLs, separated by commas; requests go round-robin.
    #[arg(long)]
    url: String,
    #[arg(long)]
    client_id: String,
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
}

#[derive(Debug, Serialize, Deserialize)]
struct LoadResult {
    completed: usize,
    errors: usize,
    seconds: f64,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    ran_out_of_requests: bool,
}

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.part {
        Some(BenchPart::Crypto { seconds, threads }) => {
            println!("{}", serde_json::to_string(&crypto(Duration::from_secs(seconds), threads)?)?);
            Ok(())
        }
        Some(BenchPart::Load(load_args)) => {
            println!("{}", serde_json::to_string(&load(load_args).await?)?);
            Ok(())
        }
        None if args.seconds > PHASE_SECONDS_MAX => bail!("--seconds is at most {PHASE_SECONDS_MAX}"),
        None if args.nodes == 0 => bail!("--nodes is at least 1"),
        None if args.nodes > 1 && args.database_url.is_none() => {
            bail!("several nodes share a PostgreSQL database: give --database-url")
        }
        None => orchestrate(&args).await,
    }
}

/// (a): every thread signs a response-sized message and verifies a signature, in a loop.
fn crypto(duration: Duration, threads: usize) -> anyhow::Result<CryptoResult> {
    let key = SigningKey::generate()?;
    let public = key.verifying_key();
    let message = vec![b'x'; 900];
    let signature = key.sign(&message)?;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (key, public, message, signature) =
                (key.clone(), public.clone(), message.clone(), signature.clone());
            std::thread::spawn(move || {
                let mut operations = 0u64;
                while started.elapsed() < duration {
                    let _ = key.sign(&message);
                    let _ = public.verify(&message, &signature);
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
    Ok(CryptoResult {
        threads: threads.max(1),
        operations_per_second: operations as f64 / started.elapsed().as_secs_f64(),
    })
}

#[derive(Serialize, Deserialize)]
struct Signed {
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
                        let body = pay_body(&format!("bench-{run}-{index}"), &notify_url);
                        let request_time = jiff::Timestamp::now().as_millisecond().to_string();
                        let content =
                            content_to_sign("POST", &path, &client_id, &request_time, body.as_bytes());
                        let signature = key.sign_header(1, &content).expect("signing works");
                        Signed { request_time, signature, body }
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
    std::fs::write(path, lines)?;
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

/// Where each payment's notification is, for the load generator's workers.
#[derive(Default)]
struct Arrivals(Mutex<HashMap<String, Arrival>>);

enum Arrival {
    Awaited(oneshot::Sender<Instant>),
    Arrived(Instant),
}

impl Arrivals {
    /// Waits for `payment_id`'s notification (which may have arrived already).
    async fn wait(&self, payment_id: &str) -> Option<Instant> {
        let receiver = {
            let mut arrivals = self.0.lock().ok()?;
            if let Some(Arrival::Arrived(at)) = arrivals.remove(payment_id) {
                return Some(at);
            }
            let (sender, receiver) = oneshot::channel();
            arrivals.insert(payment_id.to_owned(), Arrival::Awaited(sender));
            receiver
        };
        tokio::time::timeout(Duration::from_secs(30), receiver).await.ok()?.ok()
    }

    fn arrived(&self, payment_id: String) {
        let Ok(mut arrivals) = self.0.lock() else { return };
        match arrivals.remove(&payment_id) {
            Some(Arrival::Awaited(sender)) => {
                let _ = sender.send(Instant::now());
            }
            _ => {
                arrivals.insert(payment_id, Arrival::Arrived(Instant::now()));
            }
        }
    }
}

/// A notify endpoint that acknowledges at once and notes the arrival.
async fn receive_notifications(port: u16) -> anyhow::Result<Arc<Arrivals>> {
    let arrivals = Arc::new(Arrivals::default());
    let noted = arrivals.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let noted = noted.clone();
        async move {
            if let Ok(notification) = serde_json::from_slice::<serde_json::Value>(&body)
                && let Some(payment_id) = notification["paymentId"].as_str()
            {
                noted.arrived(payment_id.to_owned());
            }
            ([("content-type", "application/json")], ocpay_sdk::webhook::ACK)
        }
    });
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.1", port)).await.context("bind the notify endpoint")?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(arrivals)
}

/// One pre-signed `pay`; its answer when the gateway answered `S`.
async fn pay(
    http: &reqwest::Client,
    url: &str,
    client_id: &str,
    signed: &Signed,
) -> Option<serde_json::Value> {
    let response = http
        .post(url)
        .header("content-type", "application/json; charset=UTF-8")
        .header("client-id", client_id)
        .header("request-time", &signed.request_time)
        .header("signature", &signed.signature)
        .body(signed.body.clone())
        .send()
        .await
        .ok()?;
    let answer: serde_json::Value = response.json().await.ok()?;
    (answer["result"]["resultStatus"] == "S").then_some(answer)
}

/// A whole payment: pay, the wallet pays, the notification arrives. Returns when it arrived.
/// Sandbox payers of the complete payments, taken in turn: many payers, as in a shop, rather
/// than one wallet whose balance every payment changes.
const PAYERS: usize = 1_000;

async fn complete(
    http: &reqwest::Client,
    base: &str,
    url: &str,
    client_id: &str,
    (index, signed): (usize, &Signed),
    arrivals: &Arrivals,
) -> Option<Instant> {
    let answer = pay(http, url, client_id, signed).await?;
    let payment_id = answer["paymentId"].as_str()?.to_owned();
    let code = answer["orderCodeForm"]["codeDetails"][0]["codeValue"].as_str()?;
    let token = code.rsplit('/').next()?;
    let payer = json!({ "payerId": format!("bench-payer-{}", index % PAYERS) }).to_string();
    let paid = http.post(format!("{base}/wallet/api/codes/{token}/pay")).body(payer).send().await.ok()?;
    if !paid.status().is_success() {
        return None;
    }
    arrivals.wait(&payment_id).await
}

async fn load(args: LoadArgs) -> anyhow::Result<LoadResult> {
    let requests: Vec<Signed> = std::fs::read_to_string(&args.requests)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let requests = Arc::new(requests);
    let bases: Arc<Vec<String>> = Arc::new(args.url.split(',').map(str::to_owned).collect());
    let path = Api::Pay.path_for(&args.client_id);
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.concurrency.max(1024))
        .timeout(Duration::from_secs(30))
        .build()?;
    let arrivals = match args.notify_port {
        Some(port) => Some(receive_notifications(port).await?),
        None => None,
    };
    let next = Arc::new(AtomicUsize::new(0));
    let duration = Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let one = {
        let (http, bases, path, client_id, requests, arrivals) = (
            http.clone(),
            bases.clone(),
            path.clone(),
            args.client_id.clone(),
            requests.clone(),
            arrivals.clone(),
        );
        move |index: usize, from: Instant| {
            let (http, client_id, requests, arrivals) =
                (http.clone(), client_id.clone(), requests.clone(), arrivals.clone());
            let base = bases[index % bases.len()].clone();
            let url = format!("{base}{path}");
            async move {
                let signed = &requests[index];
                let ok = match &arrivals {
                    Some(arrivals) => {
                        complete(&http, &base, &url, &client_id, (index, signed), arrivals).await.is_some()
                    }
                    None => pay(&http, &url, &client_id, signed).await.is_some(),
                };
                (from.elapsed(), ok)
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
    let mut errors = 0;
    while let Some(samples) = tasks.join_next().await {
        for (latency, ok) in samples? {
            if ok {
                latencies.push(latency);
            } else {
                errors += 1;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let millis = |latency: &Duration| latency.as_secs_f64() * 1000.0;
    let percentile = |fraction: f64| {
        let index = ((latencies.len() as f64 * fraction) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(index).map_or(0.0, millis)
    };
    Ok(LoadResult {
        completed: latencies.len(),
        errors,
        seconds,
        requests_per_second: latencies.len() as f64 / seconds,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        max_ms: latencies.last().map_or(0.0, millis),
        ran_out_of_requests: next.load(Ordering::Relaxed) >= requests.len(),
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

fn cpu_split(args: &BenchArgs) -> (Option<String>, Option<String>, usize) {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let has_taskset = Command::new("taskset").arg("-V").output().is_ok_and(|output| output.status.success());
    if cpus < 2 || !has_taskset {
        return (None, None, cpus);
    }
    let server = args.server_cpus.clone().unwrap_or_else(|| format!("0-{}", cpus - 2));
    let client = args.client_cpus.clone().unwrap_or_else(|| format!("{}", cpus - 1));
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

/// The CPU time (user + system) of a process so far, from Linux's `/proc`, in seconds.
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports these in USER_HZ, 100 per second on every architecture it supports.
    Some(ticks / 100.0)
}

/// The CPU milliseconds the servers spent per completed request while `phase` ran.
fn cpu_ms_per(
    pids: &[u32],
    phase: impl FnOnce() -> anyhow::Result<LoadResult>,
) -> anyhow::Result<(LoadResult, Option<f64>)> {
    let cpu = || pids.iter().map(|pid| process_cpu_seconds(*pid)).sum::<Option<f64>>();
    let before = cpu();
    let result = phase()?;
    let per = match (before, cpu()) {
        (Some(before), Some(after)) if result.completed > 0 => {
            Some((after - before) * 1000.0 / result.completed as f64)
        }
        _ => None,
    };
    Ok((result, per))
}

async fn orchestrate(args: &BenchArgs) -> anyhow::Result<()> {
    let (server_cpus, client_cpus, n_server_cpus) = cpu_split(args);
    let dir = std::env::temp_dir().join(format!("ocpay-bench-{}", std::process::id()));
    let data = dir.join("data");
    let data_dir = DataDir::open(&data)?;
    let key = SigningKey::generate()?;
    let client_id = {
        // The environment's settings, as the server gets them: OCPAY_DATABASE_URL puts both
        // on PostgreSQL.
        let overrides = ocpay_server::config::Overrides {
            database_url: args.database_url.clone(),
            ..ocpay_server::config::Overrides::default()
        };
        let config = Config::load(None, &overrides)?;
        let store = data_dir.open_store(&config).await?;
        let new = NewParticipant {
            kind: ParticipantKind::Merchant,
            environment: Environment::Sandbox,
            name: "Benchmark merchant".into(),
            public_key: key.verifying_key(),
            notify_url: Some("https://merchant.example/notify".into()),
        };
        participants::create(&*store, &config, jiff::Timestamp::now(), new).await?.client_id.to_string()
    };
    let mut servers = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..args.nodes {
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        servers.push(start_server(server_cpus.as_deref(), &data, args.database_url.as_deref(), port)?);
        // One at a time: the first creates the platform key the others read.
        wait_healthy(&url).await?;
        urls.push(url);
    }
    let url = urls.join(",");
    let server_pids: Vec<u32> = servers.iter().map(|server| server.0.id()).collect();

    let estimate = crypto(Duration::from_secs(1), n_server_cpus)?.operations_per_second;
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
    let ceiling_args =
        strings(&["bench", "crypto", "--seconds", "4", "--threads", &n_server_cpus.to_string()]);
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
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);

    let ceiling = (before.operations_per_second + after.operations_per_second) / 2.0;
    let ratio = peak.requests_per_second / ceiling;
    let complete_ratio = complete.requests_per_second / (ceiling / 2.0);
    let crypto_ms = 1000.0 * n_server_cpus as f64 / ceiling;
    let summary = json!({
        "cpus": {"server": server_cpus, "client": client_cpus},
        "database": if args.database_url.is_some() { "postgres" } else { "sqlite" },
        "nodes": args.nodes,
        "crypto_ceiling_before": before,
        "crypto_ceiling_after": after,
        "pay_peak": peak,
        "pay_at_half_peak": half,
        "complete_payments": complete,
        "server_cpu_ms_per_pay": cpu_per_pay,
        "server_cpu_ms_per_complete_payment": cpu_per_complete,
        "crypto_cpu_ms_per_operation": crypto_ms,
        "ratio_pay_to_ceiling": ratio,
        "ratio_complete_to_half_ceiling": complete_ratio,
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    eprintln!();
    let database = if args.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    eprintln!("{database}, {} node(s)", args.nodes);
    eprintln!("| measure | value |");
    eprintln!("|---|---|");
    eprintln!(
        "| (a) RSA-2048 sign+verify ceiling, {} thread(s), before / after | {:.0} / {:.0} per s |",
        before.threads, before.operations_per_second, after.operations_per_second
    );
    eprintln!(
        "| (b) pay, closed loop, {} connections | {:.0} per s (p50 {:.1} ms, p99 {:.1} ms, {} errors) |",
        args.concurrency, peak.requests_per_second, peak.p50_ms, peak.p99_ms, peak.errors
    );
    eprintln!("| (b)/(a) | {ratio:.2} |");
    if let Some(cpu) = cpu_per_pay {
        eprintln!("| server CPU per pay / per sign+verify | {cpu:.3} ms / {crypto_ms:.3} ms |");
    }
    eprintln!(
        "| pay at half peak ({half_rate:.0} per s), open loop | p50 {:.1} ms, p99 {:.1} ms, {} errors |",
        half.p50_ms, half.p99_ms, half.errors
    );
    eprintln!(
        "| (c) complete payments, closed loop | {:.0} per s (pay to acknowledged notification: p50 {:.1} ms, p99 {:.1} ms, {} errors) |",
        complete.requests_per_second, complete.p50_ms, complete.p99_ms, complete.errors
    );
    eprintln!("| (c)/((a)/2) | {complete_ratio:.2} |");
    if let Some(cpu) = cpu_per_complete {
        eprintln!("| server CPU per complete payment | {cpu:.3} ms |");
    }
    for (name, phase) in [("(b)", &peak), ("half peak", &half), ("(c)", &complete)] {
        if phase.ran_out_of_requests {
            eprintln!("warning: {name} ran out of pre-signed requests; its rate is a lower bound");
        }
    }
    Ok(())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn start_server(
    cpus: Option<&str>,
    data: &Path,
    database_url: Option<&str>,
    port: u16,
) -> anyhow::Result<ServerProcess> {
    let mut command = ocpay_on(cpus)?;
    command.args(["serve", "--listen", &format!("127.0.0.1:{port}")]).arg("--data-dir").arg(data);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
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
