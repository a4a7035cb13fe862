//! `ocpay bench flood`: what floods do to a legitimate merchant, with the server's limits
//! (`ocpay_server::limits`) as configured, or off (`--no-limits`) to see what they prevent.
//!
//! One `ocpay serve` process (pinned to the server CPUs, as in `ocpay bench`) and one load
//! generator process (pinned to the client CPUs) run three phases of `--seconds` each:
//!
//! 1. **quiet**: the merchant's `pay`, open loop at `--legit-rate` from 127.0.0.1, each answer
//!    verified as `ocpay bench` verifies it;
//! 2. **forged flood**: the same, while `--flood-rate` forged `pay` requests a second (the
//!    merchant's own client id, a well-formed RSA signature by another key) come from
//!    127.0.0.2 over keep-alive connections, open loop;
//! 3. **held sockets**: `--sockets` connections opened from 127.0.0.3 and held, sending
//!    nothing; meanwhile the merchant's `pay` at `--legit-rate`, each on a new connection (so
//!    that a wait for a connection slot would show).
//!
//! The whole of 127/8 is loopback on Linux: the generator binds each client's source address.
//! Latency runs from each request's scheduled send time. A legitimate request that fails
//! verification is an error, and a run with errors exits non-zero.

// Rates and percentiles of a benchmark, never money: floating point is right here.
#![allow(clippy::float_arithmetic)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{Api, SigningKey, VerifyingKey};
use ocpay_server::data_dir::DataDir;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use super::{Failure, Signed, Target, pay, pinned, presign, process_cpu_seconds, start_server, strings};

/// Where each client sends from.
const LEGIT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const FLOODER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const HOARDER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// Connections the forged flood is sent over.
const FLOOD_CONNECTIONS: usize = 64;

/// Longest phase: the legitimate requests are signed before the run, and the last phase's must
/// still be within the server's five-minute `Request-Time` window.
const PHASE_SECONDS_MAX: u64 = 60;

#[derive(clap::Args)]
pub(crate) struct FloodArgs {
    /// Seconds of each phase (at most 60).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Forged requests per second from 127.0.0.2 in the flood phase.
    #[arg(long, default_value_t = 4_000)]
    flood_rate: u64,
    /// The legitimate merchant's `pay` requests per second, open loop, in every phase.
    #[arg(long, default_value_t = 100)]
    legit_rate: u64,
    /// Connections held from 127.0.0.3 in the held-sockets phase.
    #[arg(long, default_value_t = 4_000)]
    sockets: usize,
    /// Serve with the rate limits and the per-address connection cap off.
    #[arg(long)]
    no_limits: bool,
    /// CPUs for the server, as taskset takes them [default: all but the last].
    #[arg(long)]
    server_cpus: Option<String>,
    /// CPUs for the load generator [default: the last].
    #[arg(long)]
    client_cpus: Option<String>,
}

/// The generator's part, run pinned by [`run`].
#[derive(clap::Args, Clone)]
pub(crate) struct FloodLoadArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    platform_key: PathBuf,
    /// Pre-signed legitimate requests, one JSON object per line, enough for three phases.
    #[arg(long)]
    requests: PathBuf,
    #[arg(long)]
    seconds: u64,
    #[arg(long)]
    flood_rate: u64,
    #[arg(long)]
    legit_rate: u64,
    #[arg(long)]
    sockets: usize,
}

#[derive(clap::Args)]
pub(crate) struct FloodForgeArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    seconds: u64,
    #[arg(long)]
    flood_rate: u64,
}

/// The legitimate merchant's requests in one phase.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Legit {
    completed: usize,
    errors: usize,
    error_kinds: BTreeMap<String, usize>,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// What the forged flood got.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Flood {
    sent: u64,
    per_second: f64,
    /// Refused for the address's rate: HTTP 429, unsigned.
    refused_unsigned: u64,
    /// Answered with a signed result (`SIGNATURE_INVALID`): an RSA signature each.
    answered_signed: u64,
    other_answers: u64,
    transport_errors: u64,
    /// Requests sent more than 100 ms after their scheduled time (the generator fell behind).
    late: u64,
}

/// What happened to the held sockets.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Held {
    opened: usize,
    failed_to_open: usize,
    /// Still open a second after they were all opened, and at the end of the phase.
    open_after_a_second: usize,
    open_at_the_end: usize,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FloodResult {
    quiet: Legit,
    flood: Legit,
    flood_traffic: Flood,
    held: Legit,
    held_sockets: Held,
    /// Server CPU seconds per phase (filled in by the orchestrator).
    #[serde(default)]
    server_cpu_seconds: BTreeMap<String, f64>,
}

/// `ocpay bench flood`.
pub(crate) async fn run(args: FloodArgs) -> anyhow::Result<()> {
    if args.seconds == 0 || args.seconds > PHASE_SECONDS_MAX {
        bail!("--seconds is from 1 to {PHASE_SECONDS_MAX}");
    }
    raise_open_files_limit(args.sockets + 1_000);
    let (server_cpus, client_cpus, _) =
        super::cpu_split(args.server_cpus.as_deref(), args.client_cpus.as_deref());
    let dir = std::env::temp_dir().join(format!("ocpay-bench-flood-{}", std::process::id()));
    let data = dir.join("data");
    let data_dir = DataDir::open(&data)?;
    let platform_key = dir.join("platform-public-key.pem");
    std::fs::write(&platform_key, data_dir.platform_key()?.verifying_key().to_pem())?;
    let key = SigningKey::generate()?;
    let client_id = super::bench_merchant(&data_dir, &super::bench_config(None)?, &key).await?;
    let port = super::free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let server = start_server(server_cpus.as_deref(), &data, None, port, !args.no_limits)?;
    super::wait_healthy(&url).await?;
    let requests = dir.join("requests.jsonl");
    let count = (args.legit_rate * args.seconds * 3) as usize + 100;
    presign(&client_id, &key, count, super::BENCH_NOTIFY_URL, &requests)?;
    eprintln!(
        "flood: {} s per phase, legitimate pay at {}/s from 127.0.0.1, {} forged/s from 127.0.0.2, {} \
         sockets held from 127.0.0.3, limits {}",
        args.seconds,
        args.legit_rate,
        args.flood_rate,
        args.sockets,
        if args.no_limits { "off" } else { "as configured" }
    );
    let load = strings(&[
        "bench",
        "flood-load",
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
        "--flood-rate",
        &args.flood_rate.to_string(),
        "--legit-rate",
        &args.legit_rate.to_string(),
        "--sockets",
        &args.sockets.to_string(),
    ]);
    let cpu_before = process_cpu_seconds(server.0.id());
    let mut result: FloodResult = pinned(client_cpus.as_deref(), &load)?;
    if let (Some(before), Some(after)) = (cpu_before, process_cpu_seconds(server.0.id())) {
        result.server_cpu_seconds.insert("all phases".into(), after - before);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    report(&args, &result)
}

fn report(args: &FloodArgs, result: &FloodResult) -> anyhow::Result<()> {
    let flood_ratio = ratio(result.flood.p99_ms, result.quiet.p99_ms);
    let summary = json!({
        "limits": if args.no_limits { "off" } else { "on" },
        "seconds": args.seconds,
        "legit_rate": args.legit_rate,
        "flood_rate": args.flood_rate,
        "sockets": args.sockets,
        "result": result,
        "p99_flood_over_quiet": flood_ratio,
    });
    crate::print_json(&summary)?;
    eprintln!();
    eprintln!("| phase | legitimate pay: p50 / p95 / p99 / max | errors |");
    eprintln!("|---|---|---|");
    for (name, phase) in [
        ("quiet", &result.quiet),
        ("forged flood", &result.flood),
        ("held sockets (a new connection each)", &result.held),
    ] {
        eprintln!(
            "| {name} | {:.1} / {:.1} / {:.1} / {:.1} ms ({} requests) | {} |",
            phase.p50_ms, phase.p95_ms, phase.p99_ms, phase.max_ms, phase.completed, phase.errors
        );
    }
    let flood = &result.flood_traffic;
    eprintln!(
        "forged flood: {} sent ({:.0}/s, {} late), {} refused with an unsigned 429, {} answered signed, {} \
         other answers, {} transport errors",
        flood.sent,
        flood.per_second,
        flood.late,
        flood.refused_unsigned,
        flood.answered_signed,
        flood.other_answers,
        flood.transport_errors
    );
    let held = &result.held_sockets;
    eprintln!(
        "held sockets: {} opened ({} failed), {} still open after a second, {} at the end",
        held.opened, held.failed_to_open, held.open_after_a_second, held.open_at_the_end
    );
    if let Some(cpu) = result.server_cpu_seconds.get("all phases") {
        eprintln!("server CPU over the three phases: {cpu:.2} s");
    }
    if let Some(flood_ratio) = flood_ratio {
        eprintln!("p99 under the forged flood / quiet p99: {flood_ratio:.2} (target: at most 2)");
    }
    eprintln!("held sockets: slowest legitimate request {:.1} ms (target: under 100 ms)", result.held.max_ms);
    let errors = result.quiet.errors + result.flood.errors + result.held.errors;
    if errors > 0 {
        bail!("{errors} legitimate requests did not verify");
    }
    Ok(())
}

fn ratio(over: f64, under: f64) -> Option<f64> {
    (under > 0.0).then(|| over / under)
}

/// Raises this process's soft limit of open files towards `wanted` (up to the hard limit); the
/// server, started from here, inherits it.
fn raise_open_files_limit(wanted: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = wanted as u64;
    if limit.current.is_some_and(|current| current < wanted) {
        let current = limit.maximum.map_or(wanted, |maximum| maximum.min(wanted));
        if setrlimit(Resource::Nofile, Rlimit { current: Some(current), maximum: limit.maximum }).is_err()
            || current < wanted
        {
            eprintln!("warning: at most {current} open files: fewer sockets can be held than asked");
        }
    }
}

/// The generator: the three phases, in one process pinned to the client CPUs.
pub(crate) async fn load(args: FloodLoadArgs) -> anyhow::Result<()> {
    raise_open_files_limit(args.sockets + FLOOD_CONNECTIONS + 1_000);
    let requests: Vec<Signed> = std::fs::read_to_string(&args.requests)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let requests = Arc::new(requests);
    let platform_key = std::fs::read_to_string(&args.platform_key)
        .context("read the platform key")
        .and_then(|text| Ok(VerifyingKey::from_text(&text)?))?;
    let address = socket_address(&args.url)?;
    let target = |keep_alive: bool| -> anyhow::Result<Arc<Target>> {
        let mut http =
            reqwest::Client::builder().no_proxy().local_address(LEGIT).timeout(Duration::from_secs(30));
        if !keep_alive {
            http = http.pool_max_idle_per_host(0);
        }
        Ok(Arc::new(Target {
            http: http.build()?,
            client_id: args.client_id.clone(),
            path: Api::Pay.path_for(&args.client_id),
            platform_key: platform_key.clone(),
        }))
    };
    let duration = Duration::from_secs(args.seconds);
    let next = Arc::new(AtomicUsize::new(0));
    let legit = |target: Arc<Target>| {
        legit_load(target, args.url.clone(), requests.clone(), next.clone(), args.legit_rate, duration)
    };
    let mut result = FloodResult::default();

    eprintln!("    quiet ...");
    result.quiet = legit(target(true)?).await;

    // The flood comes from a process of its own, as it would from another machine: sharing
    // this process's runtime, its thousands of answers a second would delay the merchant's
    // requests here, before they ever reach the server. The two still share the client CPU.
    eprintln!("    forged flood ...");
    let mut forger = std::process::Command::new(std::env::current_exe()?)
        .args(super::strings(&[
            "bench",
            "flood-forge",
            "--url",
            &args.url,
            "--client-id",
            &args.client_id,
            "--seconds",
            &args.seconds.to_string(),
            "--flood-rate",
            &args.flood_rate.to_string(),
        ]))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("start the forged flood")?;
    let mut forger_out = std::io::BufReader::new(forger.stdout.take().context("the forger's output")?);
    let forger_out = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        // The first line says the flood has started; the second is its tally.
        let mut started = String::new();
        forger_out.read_line(&mut started)?;
        anyhow::ensure!(started.trim() == FORGER_STARTED, "the forged flood did not start: {started:?}");
        Ok(forger_out)
    })
    .await??;
    result.flood = legit(target(true)?).await;
    result.flood_traffic = tokio::task::spawn_blocking(move || -> anyhow::Result<Flood> {
        use std::io::BufRead as _;
        let mut forger_out = forger_out;
        let mut tally = String::new();
        forger_out.read_line(&mut tally)?;
        let status = forger.wait()?;
        anyhow::ensure!(status.success(), "the forged flood failed: {status}");
        Ok(serde_json::from_str(&tally)?)
    })
    .await??;

    eprintln!("    held sockets ...");
    let (held, failed_to_open) = hold(address, args.sockets).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    result.held_sockets = Held {
        opened: held.len(),
        failed_to_open,
        open_after_a_second: count_open(&held),
        open_at_the_end: 0,
    };
    result.held = legit(target(false)?).await;
    result.held_sockets.open_at_the_end = count_open(&held);
    drop(held);
    crate::print_stdout(&(serde_json::to_string(&result)? + "\n"))
}

/// The merchant's `pay`, open loop at `rate` for `duration`, each answer verified.
async fn legit_load(
    target: Arc<Target>,
    base: String,
    requests: Arc<Vec<Signed>>,
    next: Arc<AtomicUsize>,
    rate: u64,
    duration: Duration,
) -> Legit {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = 0u32;
    while started.elapsed() < duration {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(_) = requests.get(index) else { break };
        let scheduled = started + interval * sent;
        tokio::time::sleep_until(scheduled.into()).await;
        let (target, base, requests) = (target.clone(), base.clone(), requests.clone());
        tasks.spawn(async move {
            let outcome = pay(&target, &base, &requests[index]).await.map(drop);
            (scheduled.elapsed(), outcome)
        });
        sent += 1;
    }
    let mut latencies = Vec::new();
    let mut failures: Vec<Failure> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((latency, Ok(()))) => latencies.push(latency),
            Ok((_, Err(failure))) => failures.push(failure),
            Err(error) => failures.push(Failure::new("task", error)),
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
    latencies.sort_unstable();
    let millis = |latency: &Duration| latency.as_secs_f64() * 1000.0;
    let percentile = |fraction: f64| {
        let index = ((latencies.len() as f64 * fraction) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(index).map_or(0.0, millis)
    };
    Legit {
        completed: latencies.len(),
        errors: failures.len(),
        error_kinds,
        p50_ms: percentile(0.50),
        p95_ms: percentile(0.95),
        p99_ms: percentile(0.99),
        max_ms: latencies.last().map_or(0.0, millis),
    }
}

/// A forged `pay`: the merchant's client id and a fresh `Request-Time`, signed by a key that is
/// not the merchant's, so that the server reads the body and verifies (and fails) the signature.
fn forged_request(client_id: &str, address: SocketAddr) -> anyhow::Result<Vec<u8>> {
    let path = Api::Pay.path_for(client_id);
    let body = super::pay_body("forged", "https://forger.example/notify");
    let request_time = jiff::Timestamp::now().as_millisecond().to_string();
    let content = content_to_sign("POST", &path, client_id, &request_time, body.as_bytes());
    let signature = SigningKey::generate()?.sign_header(1, &content)?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json; charset=UTF-8\r\n\
         client-id: {client_id}\r\nrequest-time: {request_time}\r\nsignature: {signature}\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    Ok([head.into_bytes(), body.into_bytes()].concat())
}

/// The server's address in its URL, which the benchmarks always give as an IP and a port.
fn socket_address(url: &str) -> anyhow::Result<SocketAddr> {
    url.strip_prefix("http://").and_then(|host| host.parse().ok()).context("--url is http://<ip>:<port>")
}

/// What the forger prints once its flood has begun.
const FORGER_STARTED: &str = "started";

/// `ocpay bench flood-forge`: the forged flood, then its tally as JSON on stdout.
pub(crate) async fn forge(args: FloodForgeArgs) -> anyhow::Result<()> {
    raise_open_files_limit(FLOOD_CONNECTIONS + 1_000);
    let address = socket_address(&args.url)?;
    let forged = Arc::new(forged_request(&args.client_id, address)?);
    let flood = tokio::spawn(flood_load(address, forged, args.flood_rate, Duration::from_secs(args.seconds)));
    crate::print_stdout(&format!("{FORGER_STARTED}\n"))?;
    crate::print_stdout(&(serde_json::to_string(&flood.await?)? + "\n"))
}

/// A connection to `address` from `source`.
async fn connect_from(source: IpAddr, address: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(address).await
}

/// What one forged request got.
struct Answer {
    status: u16,
    signed: bool,
    keep_alive: bool,
}

/// Sends `request` and reads its answer (headers, then `content-length` bytes of body).
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> std::io::Result<Answer> {
    let broken = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    stream.write_all(request).await?;
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let status = head.get(9..12).and_then(|code| code.parse().ok()).ok_or_else(|| broken("no status"))?;
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
            .map(str::trim)
    };
    let length: usize = header("content-length").and_then(|length| length.parse().ok()).unwrap_or(0);
    let mut body = buffer.len() - head_end;
    while body < length {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body += read;
    }
    Ok(Answer {
        status,
        signed: header("signature").is_some(),
        keep_alive: header("connection") != Some("close"),
    })
}

/// Sends `request` at `rate` a second for `duration` from [`FLOODER`], open loop over
/// [`FLOOD_CONNECTIONS`] keep-alive connections (a closed one is opened again).
async fn flood_load(address: SocketAddr, request: Arc<Vec<u8>>, rate: u64, duration: Duration) -> Flood {
    #[derive(Default)]
    struct Counts {
        sent: AtomicU64,
        refused_unsigned: AtomicU64,
        answered_signed: AtomicU64,
        other_answers: AtomicU64,
        transport_errors: AtomicU64,
        late: AtomicU64,
    }
    let counts = Arc::new(Counts::default());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..FLOOD_CONNECTIONS {
        let (counts, next, request) = (counts.clone(), next.clone(), request.clone());
        workers.spawn(async move {
            let mut connection: Option<TcpStream> = None;
            loop {
                let ticket = next.fetch_add(1, Ordering::Relaxed);
                let Some(scheduled) = u32::try_from(ticket).ok().map(|ticket| started + interval * ticket)
                else {
                    break;
                };
                if scheduled.duration_since(started) >= duration {
                    break;
                }
                tokio::time::sleep_until(scheduled.into()).await;
                if scheduled.elapsed() > Duration::from_millis(100) {
                    counts.late.fetch_add(1, Ordering::Relaxed);
                }
                let mut stream = match connection.take() {
                    Some(stream) => stream,
                    None => match connect_from(FLOODER, address).await {
                        Ok(stream) => stream,
                        Err(_) => {
                            counts.transport_errors.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    },
                };
                counts.sent.fetch_add(1, Ordering::Relaxed);
                match tokio::time::timeout(Duration::from_secs(10), exchange(&mut stream, &request)).await {
                    Ok(Ok(answer)) => {
                        let count = match (answer.status, answer.signed) {
                            (429, false) => &counts.refused_unsigned,
                            (200, true) => &counts.answered_signed,
                            _ => &counts.other_answers,
                        };
                        count.fetch_add(1, Ordering::Relaxed);
                        if answer.keep_alive {
                            connection = Some(stream);
                        }
                    }
                    _ => {
                        counts.transport_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let seconds = started.elapsed().as_secs_f64();
    let sent = counts.sent.load(Ordering::Relaxed);
    Flood {
        sent,
        per_second: sent as f64 / seconds,
        refused_unsigned: counts.refused_unsigned.load(Ordering::Relaxed),
        answered_signed: counts.answered_signed.load(Ordering::Relaxed),
        other_answers: counts.other_answers.load(Ordering::Relaxed),
        transport_errors: counts.transport_errors.load(Ordering::Relaxed),
        late: counts.late.load(Ordering::Relaxed),
    }
}

/// Opens `count` connections from [`HOARDER`] (a few hundred at a time) and keeps them; says
/// how many could not be opened.
async fn hold(address: SocketAddr, count: usize) -> (Vec<TcpStream>, usize) {
    let mut held = Vec::with_capacity(count);
    let mut failed = 0;
    let mut opening = tokio::task::JoinSet::new();
    for index in 0..count {
        opening.spawn(connect_from(HOARDER, address));
        if opening.len() >= 256 || index + 1 == count {
            while let Some(opened) = opening.join_next().await {
                match opened {
                    Ok(Ok(stream)) => held.push(stream),
                    _ => failed += 1,
                }
            }
        }
    }
    (held, failed)
}

/// How many of `held` the server has not closed.
fn count_open(held: &[TcpStream]) -> usize {
    let mut byte = [0u8; 1];
    held.iter()
        .filter(|stream| matches!(stream.try_read(&mut byte), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock))
        .count()
}
