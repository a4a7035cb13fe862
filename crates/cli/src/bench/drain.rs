//! `ocpay bench drain`: how fast the notifier delivers a backlog of due notifications.
//!
//! The store is filled with `--notifications` payments' history, as `ocpay bench --preload`
//! fills it, and every payment's result notification is then made due again, addressed to a
//! local receiver: a process of its own, pinned to the client CPUs, that verifies each
//! notification with the platform key, as a merchant does, and acknowledges it. Then one
//! `ocpay serve` starts, pinned to the server CPUs, and delivers the backlog. Each notification
//! costs the platform one RSA signature, so its ceiling is the signatures a second the server's
//! CPUs can make (measured on them just before); the primary figure is the server's CPU per
//! delivered notification against one signature's.

// Rates and CPU times of a benchmark, never money: floating point is right here.
#![allow(clippy::float_arithmetic)]

use std::collections::HashSet;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::http::{HeaderMap, StatusCode, Uri};
use ocpay_core::ids::ClientId;
use ocpay_protocol::{SigningKey, VerifyingKey};
use ocpay_server::data_dir::DataDir;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Notify;

use super::{CryptoResult, ServerProcess, pinned, process_cpu_times, strings};

/// What the receiver prints once it listens.
const RECEIVER_READY: &str = "ready";

#[derive(clap::Args)]
pub(crate) struct DrainArgs {
    /// Notifications to deliver: the payments preloaded, each with its result due again.
    #[arg(long, default_value_t = 100_000)]
    notifications: u64,
    /// Run on this PostgreSQL database instead of SQLite files (it must hold no participants).
    #[arg(long, env = "OCPAY_DATABASE_URL")]
    database_url: Option<String>,
    /// CPUs for the server, as taskset takes them [default: all but the last].
    #[arg(long)]
    server_cpus: Option<String>,
    /// CPUs for the receiver [default: the last].
    #[arg(long)]
    client_cpus: Option<String>,
    /// Give up when the backlog is not delivered within this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_seconds: u64,
}

/// The receiver's part, run pinned by [`run`].
#[derive(clap::Args)]
pub(crate) struct DrainReceiveArgs {
    #[arg(long)]
    port: u16,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    platform_key: PathBuf,
    /// Distinct payments whose notification ends the run.
    #[arg(long)]
    count: u64,
    #[arg(long)]
    timeout_seconds: u64,
}

/// What the receiver saw.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Received {
    /// Distinct payments whose notification verified and was acknowledged.
    delivered: u64,
    /// Deliveries of a payment's notification after its first (a lost acknowledgement).
    repeated: u64,
    /// Deliveries that did not verify, answered 400.
    failures: u64,
    /// From the first delivery to the last.
    first_to_last_seconds: f64,
    timed_out: bool,
}

/// `ocpay bench drain`.
pub(crate) async fn run(args: DrainArgs) -> anyhow::Result<()> {
    if args.notifications == 0 {
        bail!("--notifications is at least 1");
    }
    let (server_cpus, client_cpus, n_server_cpus) =
        super::cpu_split(args.server_cpus.as_deref(), args.client_cpus.as_deref());
    let dir = std::env::temp_dir().join(format!("ocpay-bench-drain-{}", std::process::id()));
    let outcome = drain(&args, &dir, server_cpus.as_deref(), client_cpus.as_deref(), n_server_cpus).await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

async fn drain(
    args: &DrainArgs,
    dir: &std::path::Path,
    server_cpus: Option<&str>,
    client_cpus: Option<&str>,
    n_server_cpus: usize,
) -> anyhow::Result<()> {
    let data = dir.join("data");
    let data_dir = DataDir::open(&data)?;
    let platform_key = dir.join("platform-public-key.pem");
    std::fs::write(&platform_key, data_dir.platform_key()?.verifying_key().to_pem())
        .with_context(|| format!("write {}", platform_key.display()))?;
    let config = super::bench_config(args.database_url.clone())?;
    let client_id = super::bench_merchant(&data_dir, &config, &SigningKey::generate()?).await?;
    let receiver_port = super::free_port()?;
    let notify_url = format!("http://127.0.0.1:{receiver_port}/notify");
    let preloaded =
        super::preload::preload(&data_dir, &config, &client_id, &notify_url, args.notifications).await?;
    let owner = ClientId::parse(&client_id).map_err(anyhow::Error::msg)?;
    let due = data_dir
        .open_store(&config)
        .await?
        .preload_due_notifications(&owner, super::preload::PREFIX, jiff::Timestamp::now())
        .await?;
    eprintln!("{due} notifications due, to {notify_url}");

    let ceiling_args = strings(&[
        "bench",
        "crypto",
        "--seconds",
        "5",
        "--threads",
        &n_server_cpus.to_string(),
        "--sign-only",
    ]);
    eprintln!("signing ceiling on the server's CPUs ({}) ...", server_cpus.unwrap_or("all"));
    let ceiling: CryptoResult = pinned(server_cpus, &ceiling_args)?;

    let mut receiver = super::ocpay_on(client_cpus)?
        .args(strings(&[
            "bench",
            "drain-receive",
            "--port",
            &receiver_port.to_string(),
            "--client-id",
            &client_id,
            "--platform-key",
            platform_key.to_str().unwrap_or_default(),
            "--count",
            &due.to_string(),
            "--timeout-seconds",
            &args.timeout_seconds.to_string(),
        ]))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("start the receiver")?;
    let mut lines = std::io::BufReader::new(receiver.stdout.take().context("the receiver's output")?).lines();
    let ready = lines.next().transpose()?.unwrap_or_default();
    if ready.trim() != RECEIVER_READY {
        bail!("the receiver did not start: {ready:?}");
    }

    eprintln!("delivering {due} notifications ...");
    let port = super::free_port()?;
    let started = Instant::now();
    let server: ServerProcess =
        super::start_server(server_cpus, &data, args.database_url.as_deref(), port, false)?;
    let tally = tokio::task::spawn_blocking(move || lines.next().transpose()).await??;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = process_cpu_times(server.0.id());
    drop(server);
    let _ = receiver.wait();
    let received: Received = serde_json::from_str(&tally.context("the receiver ended without its tally")?)
        .context("the receiver's tally")?;

    let delivered = received.delivered as f64;
    let server_cpu_ms = cpu.map(|times| (times.user + times.kernel) * 1000.0 / delivered.max(1.0));
    let sign_ms = ceiling.cpu_ms_per_operation;
    let cpu_ratio = sign_ms.zip(server_cpu_ms).map(|(sign, server)| sign / server);
    let rate = delivered / received.first_to_last_seconds.max(f64::MIN_POSITIVE);
    let throughput_ratio = rate / ceiling.operations_per_second;
    let summary = json!({
        "database": if args.database_url.is_some() { "postgres" } else { "sqlite" },
        "cpus": {"server": server_cpus, "client": client_cpus},
        "preload": preloaded,
        "due": due,
        "received": received,
        "seconds_from_server_start": seconds,
        "delivered_per_second": rate,
        "sign_ceiling": ceiling,
        "server_cpu_ms_per_notification": server_cpu_ms,
        "server_kernel_share": cpu.map(|times| times.kernel / (times.user + times.kernel).max(f64::MIN_POSITIVE)),
        "cpu_ratio": cpu_ratio,
        "ratio_to_ceiling": throughput_ratio,
    });
    crate::print_json(&summary)?;
    eprintln!();
    eprintln!("| measure | value |");
    eprintln!("|---|---|");
    eprintln!(
        "| RSA-2048 signing ceiling, {} thread(s) | {:.0} per s, {} |",
        ceiling.threads,
        ceiling.operations_per_second,
        sign_ms.map_or("CPU time unknown".to_owned(), |ms| format!("{ms:.3} ms of CPU each"))
    );
    eprintln!(
        "| notifications delivered | {} of {due} in {:.1} s from the server's start ({rate:.0} per s from the first to the last), {} repeated, {} not verified |",
        received.delivered, seconds, received.repeated, received.failures
    );
    if let (Some(ratio), Some(server_ms)) = (cpu_ratio, server_cpu_ms) {
        eprintln!(
            "| **CPU time: signature / server CPU per notification** | **{ratio:.2}** ({:.3} ms / {server_ms:.3} ms, the server's start included) |",
            sign_ms.unwrap_or_default()
        );
    }
    eprintln!("| delivered per second / signing ceiling | {throughput_ratio:.2} |");
    if received.timed_out || received.delivered < due || received.failures > 0 {
        let within = if received.timed_out {
            format!(", not within {} s", args.timeout_seconds)
        } else {
            String::new()
        };
        bail!(
            "the backlog was not delivered: {} of {due} verified, {} not verified{within}",
            received.delivered,
            received.failures
        );
    }
    Ok(())
}

/// `ocpay bench drain-receive`: verifies and acknowledges notifications until `count`
/// distinct payments have theirs, then prints its tally as JSON.
pub(crate) async fn receive(args: DrainReceiveArgs) -> anyhow::Result<()> {
    #[derive(Default)]
    struct Seen {
        payments: HashSet<String>,
        repeated: u64,
        failures: u64,
        first: Option<Instant>,
        last: Option<Instant>,
    }
    let platform_key = std::fs::read_to_string(&args.platform_key)
        .with_context(|| format!("read {}", args.platform_key.display()))
        .and_then(|text| Ok(VerifyingKey::from_text(&text)?))?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let done = Arc::new(Notify::new());
    let (noted, finished, count) = (seen.clone(), done.clone(), args.count);
    let client_id = args.client_id.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
        let (noted, finished, platform_key, client_id) =
            (noted.clone(), finished.clone(), platform_key.clone(), client_id.clone());
        async move {
            let path = uri.path_and_query().map_or(uri.path(), |path| path.as_str());
            let verified = super::verified_notification(&platform_key, &client_id, path, &headers, &body);
            let now = Instant::now();
            let mut seen = noted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            seen.first.get_or_insert(now);
            seen.last = Some(now);
            match verified {
                Ok(notification) => {
                    if !seen.payments.insert(notification.payment_id) {
                        seen.repeated += 1;
                    }
                    if seen.payments.len() as u64 >= count {
                        finished.notify_one();
                    }
                    (StatusCode::OK, [("content-type", "application/json")], ocpay_sdk::webhook::ACK)
                }
                Err(_) => {
                    seen.failures += 1;
                    (StatusCode::BAD_REQUEST, [("content-type", "text/plain")], "not verified")
                }
            }
        }
    });
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await.context("bind the receiver")?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    crate::print_stdout(&format!("{RECEIVER_READY}\n"))?;
    let timed_out =
        tokio::time::timeout(Duration::from_secs(args.timeout_seconds), done.notified()).await.is_err();
    let seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let received = Received {
        delivered: seen.payments.len() as u64,
        repeated: seen.repeated,
        failures: seen.failures,
        first_to_last_seconds: match (seen.first, seen.last) {
            (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
            _ => 0.0,
        },
        timed_out,
    };
    crate::print_stdout(&(serde_json::to_string(&received)? + "\n"))
}
