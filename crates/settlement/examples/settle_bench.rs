//! Settles one day of N completed payments of one sandbox merchant on a fresh SQLite store while
//! other payments keep being written, and reports how long settlement takes, how much memory it
//! needs, and what it does to the latency of the concurrent writes; then checks what it settled.
//!
//! `cargo run --release -p ocpay-settlement --example settle_bench -- --transactions 1000000 [--chunk 1000]`
//!
//! Other options: `--page` (items per page read while writing files, 5000), `--preload-tasks`
//! (256), `--load-tasks` (concurrent writers during the timed phases, 16), `--baseline-seconds`
//! (the window measured before settlement, 15). The store and the reports are made under the
//! system's temporary directory (set `TMPDIR` to measure another disk) and removed at the end.
//!
//! 1. Preload, through the `Store` API only: N payments (`create_payment` + `settle_payment`),
//!    paid between 01:00 and 21:00 (UTC+8) of 2026-11-30, one settlement day of the default
//!    cycle, by 256 concurrent tasks so that the writer's group commit fills its batches of 256
//!    writes (32 tasks preload about 2,100 payments per second, 256 about 3,600, on 2 cores).
//! 2. A load of `--load-tasks` closed-loop writers, each a new payment created and paid (the
//!    pair timed together), paid after the day's cutoff so that none of it is in the batch: a
//!    baseline window first, then `Settler::run_due` at 02:00 of the next day (chunks, then the
//!    three files), then a window of the same length as settlement after it.
//! 3. Checks: one batch of N items, the summary's TOTAL (in the returned rows and read back from
//!    the file) equal to the sums computed here from the same fee schedule, `ledger_check`
//!    sound, and `reconcile_day` without discrepancy. Any failure exits non-zero.
//! 4. One JSON line on stdout; progress and a readable report on stderr.
//!
//! Peak memory: `VmHWM` is reset (`/proc/self/clear_refs`) just before settlement, so the growth
//! is settlement's own and not hidden under the preload's peak. Read connections map up to
//! 256 MiB of the database file each (`mmap_size`), and mapped file pages count in RSS: a
//! sampler thread therefore also reports the peaks of `RssAnon` (heap) and `RssFile` (the map).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use jiff::SignedDuration;
use jiff::civil::{Date, date};
use ocpay_core::Timestamp;
use ocpay_core::access::Scopes;
use ocpay_core::fees::{FeeSchedule, SettlementCycle};
use ocpay_core::ids::{ClientId, CodeToken, PaymentId, PaymentRequestId};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::{Environment, Participant, ParticipantKind};
use ocpay_core::payer::{Payer, PayerId};
use ocpay_core::payment::{Charge, MerchantRef, Order, PaymentTerms, StoreRef};
use ocpay_settlement::batches::{SettleRun, SettlementSettings, Settler};
use ocpay_settlement::files::{self, SummaryType};
use ocpay_settlement::reconcile;
use ocpay_store::settlement::{BatchStatus, SettlementTerms};
use ocpay_store::sqlite::{SqliteSettings, SqliteStore};
use ocpay_store::{CreatePayment, NewKey, SettlePayment, Settlement, Store};

const MERCHANT: &str = "SANDBOX_BENCH0SETTLE0000001";
/// The merchant's fee schedule: 0.60 % plus USD 0.30, and 9 % tax on the fee.
const FEE_RATE_BPS: u32 = 60;
const FEE_FIXED_USD_MINOR: i64 = 30;
const TAX_RATE_BPS: u32 = 900;
/// Each payer's stored value: USD 1,000,000,000.00, far more than any run pays.
const TOP_UP_MINOR: i64 = 100_000_000_000;

struct Options {
    transactions: u64,
    chunk: u32,
    page: u32,
    preload_tasks: u64,
    load_tasks: u64,
    baseline: Duration,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        transactions: 100_000,
        chunk: 1_000,
        page: 5_000,
        preload_tasks: 256,
        load_tasks: 16,
        baseline: Duration::from_secs(15),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--transactions" => options.transactions = value()?.parse().context("--transactions")?,
            "--chunk" => options.chunk = value()?.parse().context("--chunk")?,
            "--page" => options.page = value()?.parse().context("--page")?,
            "--preload-tasks" => options.preload_tasks = value()?.parse().context("--preload-tasks")?,
            "--load-tasks" => options.load_tasks = value()?.parse().context("--load-tasks")?,
            "--baseline-seconds" => {
                options.baseline = Duration::from_secs(value()?.parse().context("--baseline-seconds")?);
            }
            other => bail!(
                "unknown option {other}; use --transactions N [--chunk 1000] [--page 5000] \
                 [--preload-tasks 256] [--load-tasks 16] [--baseline-seconds 15]"
            ),
        }
    }
    if options.transactions == 0 || options.chunk == 0 || options.page == 0 {
        bail!("--transactions, --chunk and --page must be at least 1");
    }
    options.preload_tasks = options.preload_tasks.max(1);
    options.load_tasks = options.load_tasks.max(1);
    Ok(options)
}

/// The settlement day every preloaded payment completes in, and the instants around it.
#[derive(Clone, Copy)]
struct Clock {
    day: Date,
    /// When the day starts (the previous day's cutoff).
    start: Timestamp,
    /// When it ends.
    cutoff: Timestamp,
}

impl Clock {
    fn new(cycle: &SettlementCycle) -> anyhow::Result<Clock> {
        let day = date(2026, 11, 30);
        let start = cycle.end_of(day.yesterday()?);
        let cutoff = cycle.end_of(day);
        Ok(Clock { day, start, cutoff })
    }

    /// When preloaded payment `n` of `total` is paid: spread from 01:00 to 21:00 of the day.
    fn preload_paid(&self, n: u64, total: u64) -> Timestamp {
        let spread_ms = 20 * 3_600_000;
        let offset = 3_600_000 + i64::try_from(n.saturating_mul(spread_ms) / total).unwrap_or(0);
        self.start + SignedDuration::from_millis(offset)
    }

    /// When load payment `n` is paid: from 01:00 of the next day on, one per millisecond.
    fn load_paid(&self, n: u64) -> Timestamp {
        self.cutoff + SignedDuration::from_millis(3_600_000 + i64::try_from(n).unwrap_or(0))
    }

    /// When settlement runs: 02:00 of the next day.
    fn settle_now(&self) -> Timestamp {
        self.cutoff + SignedDuration::from_hours(2)
    }
}

fn usd() -> Currency {
    Currency::parse("USD").expect("USD is a currency")
}

/// Payment `n`'s amount in USD cents: from 1.00 to 99.99, deterministic.
fn amount_minor(n: u64) -> i64 {
    100 + i64::try_from(n.wrapping_mul(7_919) % 9_900).unwrap_or(0)
}

fn terms(owner: &ClientId, prefix: &str, n: u64, paid: Timestamp) -> anyhow::Result<PaymentTerms> {
    let amount = Money::new(amount_minor(n), usd());
    Ok(PaymentTerms {
        id: PaymentId::parse(&format!("{prefix}{n:018}"))?,
        owner: owner.clone(),
        request_id: PaymentRequestId::parse(&format!("PR-{prefix}-{n}"))?,
        amount,
        order: Order {
            reference_order_id: Some(format!("ORDER-{prefix}-{n}")),
            description: "Two flat whites".parse()?,
            amount,
            merchant: MerchantRef {
                reference_merchant_id: "M0001".into(),
                name: "Bench Shop".parse()?,
                mcc: "5812".parse()?,
                display_name: None,
                store: StoreRef {
                    reference_store_id: format!("S{:04}", n % 16),
                    name: "Bench Store".parse()?,
                    mcc: None,
                },
            },
        },
        code_token: CodeToken::parse(&format!("T-{prefix}-{n}"))?,
        notify_url: "https://merchant.example/notify".into(),
        redirect_url: None,
        settlement_currency: None,
        merchant_region: Some("SG".parse()?),
        extend_info: None,
        created_at: paid - SignedDuration::from_secs(1),
        expires_at: paid + SignedDuration::from_mins(15),
        agent: None,
    })
}

/// Creates payment `n` and pays it from `payer` at `paid`.
async fn pay(
    store: &dyn Store,
    owner: &ClientId,
    payer: &PayerId,
    prefix: &str,
    n: u64,
    paid: Timestamp,
) -> anyhow::Result<()> {
    let terms = terms(owner, prefix, n, paid)?;
    match store.create_payment(&terms).await? {
        CreatePayment::Created(_) => {}
        CreatePayment::Existing(_) => bail!("payment {} existed already", terms.id),
    }
    let settlement = Settlement {
        code: terms.code_token.clone(),
        charge: Charge { payer: payer.clone(), amount: terms.amount, quote: None },
        now: paid,
        sandbox_top_up: None,
    };
    match store.settle_payment(&settlement).await? {
        SettlePayment::Paid(_) => Ok(()),
        other => bail!("payment {} was not paid: {other:?}", terms.id),
    }
}

async fn payers(store: &dyn Store, prefix: &str, count: u64, at: Timestamp) -> anyhow::Result<Vec<PayerId>> {
    let mut payers = Vec::new();
    for n in 0..count {
        let payer =
            Payer::new(PayerId::sandbox(&format!("{prefix}-{n}"))?, Environment::Sandbox, usd(), None, at);
        store.create_payer(&payer).await?;
        store.top_up(&payer.id, Money::new(TOP_UP_MINOR, usd()), at).await?;
        payers.push(payer.id);
    }
    Ok(payers)
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let failures = runtime.block_on(run(options))?;
    if failures.is_empty() {
        Ok(())
    } else {
        for failure in &failures {
            eprintln!("CHECK FAILED: {failure}");
        }
        std::process::exit(1);
    }
}

async fn run(options: Options) -> anyhow::Result<Vec<String>> {
    let n_total = options.transactions;
    let temporary = tempfile::tempdir()?;
    let reports = temporary.path().join("reports");
    std::fs::create_dir_all(&reports)?;
    let cycle = SettlementCycle::default();
    let clock = Clock::new(&cycle)?;
    let load_start = load_average();
    eprintln!(
        "settle_bench: {n_total} transactions, chunk {}, page {}, {} preload tasks, {} load tasks, in {} ({}), load average {}",
        options.chunk,
        options.page,
        options.preload_tasks,
        options.load_tasks,
        temporary.path().display(),
        filesystem_of(temporary.path()),
        load_start,
    );

    // The server's defaults: WAL, synchronous=FULL, group commit of up to 256 writes.
    let sqlite = SqliteSettings::new(temporary.path().join("ocpay.db"));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&sqlite).await?);
    let owner = ClientId::parse(MERCHANT)?;
    let participant = Participant {
        client_id: owner.clone(),
        kind: ParticipantKind::Merchant,
        name: "Settle Bench Ltd".parse()?,
        notify_url: Some("https://merchant.example/notify".into()),
        created_at: clock.start,
    };
    let key = NewKey {
        public_key_der: vec![1; 8],
        label: None,
        scopes: Scopes::ALL,
        created_at: clock.start,
        expires_at: None,
    };
    store.create_participant(&participant, &key).await?;
    let schedule =
        FeeSchedule::new(FEE_RATE_BPS, BTreeMap::from([(usd(), FEE_FIXED_USD_MINOR)]), TAX_RATE_BPS)
            .map_err(|error| anyhow::anyhow!("{error}"))?;
    store
        .set_settlement_terms(
            &owner,
            &SettlementTerms { fees: Some(schedule.clone()), settlement_currency: None },
        )
        .await?;

    // 1. Preload.
    let top_up_at = clock.start + SignedDuration::from_mins(30);
    let preload_payers = payers(store.as_ref(), "preload", options.preload_tasks, top_up_at).await?;
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let step = (n_total / 10).max(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for payer in preload_payers {
        let (store, owner, next, done) = (store.clone(), owner.clone(), next.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= n_total {
                    return anyhow::Ok(());
                }
                pay(store.as_ref(), &owner, &payer, "20261130", n, clock.preload_paid(n, n_total)).await?;
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if finished % step == 0 || finished == n_total {
                    let micros = elapsed_micros(started);
                    eprintln!(
                        "preload: {finished}/{n_total} ({}%) in {}, {} per s",
                        finished * 100 / n_total,
                        seconds(micros),
                        finished * 1_000_000 / micros
                    );
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let preload_micros = elapsed_micros(started);
    let preload_rate = n_total * 1_000_000 / preload_micros;
    eprintln!("preload: {n_total} payments in {}, {preload_rate} per s", seconds(preload_micros));

    // What the batch must hold, from the same fee schedule.
    let mut expected = Sums::default();
    for n in 0..n_total {
        let amount = Money::new(amount_minor(n), usd());
        let fee = schedule.fee_for(amount)?;
        expected.add(amount.minor(), fee.fee.minor(), fee.tax.minor())?;
    }

    // 2. The load, then settlement under it.
    let load_payers = payers(store.as_ref(), "load", options.load_tasks, top_up_at).await?;
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let load_next = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for payer in load_payers {
        let (store, owner, stop, load_next) = (store.clone(), owner.clone(), stop.clone(), load_next.clone());
        load.push(tokio::spawn(async move {
            let mut samples: Vec<(u64, u64)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = load_next.fetch_add(1, Ordering::Relaxed);
                let begun = elapsed_micros(t0);
                pay(store.as_ref(), &owner, &payer, "20261201", n, clock.load_paid(n)).await?;
                samples.push((begun, elapsed_micros(t0) - begun));
            }
            anyhow::Ok(samples)
        }));
    }
    eprintln!(
        "baseline: {} load tasks for {} s before settlement",
        options.load_tasks,
        options.baseline.as_secs()
    );
    tokio::time::sleep(options.baseline).await;

    let settings =
        SettlementSettings { chunk_max: options.chunk, page_max: options.page, ..Default::default() };
    let first_page = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(0));
    let settler = {
        let (first_page, written) = (first_page.clone(), written.clone());
        let files_step = (2 * n_total / 10).max(1);
        Settler::new(store.clone(), settings, reports.clone()).with_progress(move |rows| {
            let now = elapsed_micros(t0);
            let _ = first_page.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            let before = written.fetch_add(rows, Ordering::Relaxed);
            if (before + rows) / files_step > before / files_step {
                eprintln!("files: {} rows written", before + rows);
            }
        })
    };
    let settler = Arc::new(settler);
    let memory_before = Memory::read()?;
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let hwm_from = if reset { memory_before.rss } else { memory_before.hwm };
    let sampler = Sampler::start();
    let settle_start = elapsed_micros(t0);
    eprintln!("settle: run_due({}) while the load runs", clock.settle_now());
    let settled = {
        let settler = settler.clone();
        let now = clock.settle_now();
        tokio::spawn(async move { settler.run_due(now).await }).await?
    };
    let settle_end = elapsed_micros(t0);
    let peaks = sampler.stop();
    let memory_after = Memory::read()?;
    let run = settled?;
    let settle_micros = (settle_end - settle_start).max(1);
    let first_page = first_page.load(Ordering::Relaxed);
    let chunks_end = if first_page == 0 { settle_end } else { first_page };
    eprintln!("settle: done in {}; after: the load for as long again", seconds(settle_micros));
    tokio::time::sleep(Duration::from_micros(settle_micros.min(120_000_000))).await;
    let after_end = elapsed_micros(t0);
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    for task in load {
        samples.extend(task.await??);
    }
    let load_done = load_next.load(Ordering::Relaxed);

    let window = |from: u64, to: u64| -> Latency {
        Latency::of(samples.iter().filter(|(begun, _)| (from..to).contains(begun)).map(|(_, micros)| *micros))
    };
    let baseline_start =
        settle_start.saturating_sub(u64::try_from(options.baseline.as_micros()).unwrap_or(0));
    let before = window(baseline_start, settle_start);
    let during = window(settle_start, settle_end);
    let during_chunks = window(settle_start, chunks_end);
    let during_files = window(chunks_end, settle_end);
    let after = window(settle_end, after_end);

    // 3. Checks.
    let mut failures = Vec::new();
    check_run(&run, n_total, &expected, &reports, &mut failures)?;
    let ledger = store.ledger_check().await?;
    if !ledger.is_sound() {
        failures.push(format!("the ledger is not sound: {ledger:?}"));
    }
    let reconcile_started = Instant::now();
    let reconciliation =
        reconcile::reconcile_day(&settler, clock.day, None, clock.settle_now(), &|_| {}).await?;
    let reconcile_micros = elapsed_micros(reconcile_started);
    for discrepancy in &reconciliation.discrepancies {
        failures.push(format!("reconcile: {discrepancy}"));
    }
    if reconciliation.items != n_total {
        failures.push(format!("reconcile checked {} items, not {n_total}", reconciliation.items));
    }

    // 4. Report.
    let rows_per_s = n_total * 1_000_000 / settle_micros;
    let hwm_growth = memory_after.hwm.saturating_sub(hwm_from);
    eprintln!("preload:          {n_total} payments, {preload_rate} per s ({})", seconds(preload_micros));
    eprintln!(
        "settlement:       {} ({} chunks of up to {}, then files {}), {rows_per_s} transactions per s",
        seconds(settle_micros),
        seconds(chunks_end - settle_start),
        options.chunk,
        seconds(settle_end - chunks_end),
    );
    eprintln!(
        "memory:           RSS before {} KiB, peak during {} KiB (VmHWM {}), growth {} KiB; peak RssAnon {} KiB (before {}), peak RssFile {} KiB (before {})",
        memory_before.rss,
        memory_after.hwm,
        if reset { "reset before settlement" } else { "not reset: growth is over the preload's peak" },
        hwm_growth,
        peaks.anon,
        memory_before.anon,
        peaks.file,
        memory_before.file,
    );
    for (name, latency) in [
        ("before", &before),
        ("during", &during),
        ("during chunks", &during_chunks),
        ("during files", &during_files),
        ("after", &after),
    ] {
        eprintln!("latency {name:<14} {latency}");
    }
    eprintln!(
        "load:             {load_done} payments written by {} tasks over {}",
        options.load_tasks,
        seconds(after_end)
    );
    eprintln!(
        "reconcile:        {} batches, {} items, {} files, {} discrepancies, in {}",
        reconciliation.batches,
        reconciliation.items,
        reconciliation.files,
        reconciliation.discrepancies.len(),
        seconds(reconcile_micros)
    );
    println!(
        "{{\"transactions\":{n_total},\"chunk\":{},\"page\":{},\"preload_tasks\":{},\"load_tasks\":{},\
         \"load_average_start\":\"{}\",\"preload_seconds\":{},\"preload_per_s\":{preload_rate},\
         \"settle_seconds\":{},\"chunks_seconds\":{},\"files_seconds\":{},\"rows_per_s\":{rows_per_s},\
         \"rss_before_kib\":{},\"hwm_reset\":{reset},\"rss_growth_kib\":{hwm_growth},\"rss_growth_mb\":{},\
         \"peak_anon_growth_kib\":{},\"peak_file_kib\":{},\
         \"before\":{},\"during\":{},\"during_chunks\":{},\"during_files\":{},\"after\":{},\
         \"reconcile_seconds\":{},\"checks_passed\":{}}}",
        options.chunk,
        options.page,
        options.preload_tasks,
        options.load_tasks,
        load_start,
        seconds_json(preload_micros),
        seconds_json(settle_micros),
        seconds_json(chunks_end - settle_start),
        seconds_json(settle_end - chunks_end),
        memory_before.rss,
        hwm_growth / 1024,
        peaks.anon.saturating_sub(memory_before.anon),
        peaks.file,
        before.json(),
        during.json(),
        during_chunks.json(),
        during_files.json(),
        after.json(),
        seconds_json(reconcile_micros),
        failures.is_empty(),
    );
    drop(settler);
    drop(store);
    Ok(failures)
}

/// Sums of minor units (USD cents) over the preloaded payments.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    amount: i64,
    fee: i64,
    tax: i64,
}

impl Sums {
    fn add(&mut self, amount: i64, fee: i64, tax: i64) -> anyhow::Result<()> {
        let overflow = || anyhow::anyhow!("the expected sums overflow");
        self.amount = self.amount.checked_add(amount).ok_or_else(overflow)?;
        self.fee = self.fee.checked_add(fee).ok_or_else(overflow)?;
        self.tax = self.tax.checked_add(tax).ok_or_else(overflow)?;
        Ok(())
    }

    /// What the merchant is settled: the amounts less the fees and their tax.
    fn net(&self) -> Option<i64> {
        self.amount.checked_sub(self.fee)?.checked_sub(self.tax)
    }
}

fn check_run(
    run: &SettleRun,
    n_total: u64,
    expected: &Sums,
    reports: &Path,
    failures: &mut Vec<String>,
) -> anyhow::Result<()> {
    let usd = usd();
    let net = expected.net().context("the expected net overflows")?;
    let (want_amount, want_fee, want_tax) =
        (Money::new(net, usd), Money::new(-expected.fee, usd), Money::new(-expected.tax, usd));
    let [settled] = run.batches.as_slice() else {
        failures.push(format!("{} batches were settled, not 1", run.batches.len()));
        return Ok(());
    };
    let batch = &settled.batch;
    if batch.status != BatchStatus::Closed {
        failures.push(format!("batch {} is {:?}, not closed", batch.id, batch.status));
    }
    if batch.count != n_total {
        failures.push(format!("batch {} holds {} items, not {n_total}", batch.id, batch.count));
    }
    if (batch.amount, batch.fee, batch.tax) != (want_amount, want_fee, want_tax) {
        failures.push(format!(
            "batch {} totals {} (fee {}, tax {}), expected {want_amount} (fee {want_fee}, tax {want_tax})",
            batch.id, batch.amount, batch.fee, batch.tax
        ));
    }
    if settled.files.rows != n_total {
        failures.push(format!("the settlement details have {} rows, not {n_total}", settled.files.rows));
    }
    let from_file = match settled.files.summary.as_slice() {
        [summary] => files::read_summary(&reports.join(summary))?,
        parts => {
            failures.push(format!("the summary has {} parts, not 1", parts.len()));
            Vec::new()
        }
    };
    if from_file != settled.files.summary_rows {
        failures.push("the summary read back differs from the summary written".into());
    }
    match settled.files.summary_rows.iter().find(|row| row.summary_type == SummaryType::Total) {
        Some(total) => {
            if total.count != n_total
                || (total.settlement_amount, total.fee, total.tax) != (want_amount, want_fee, want_tax)
            {
                failures.push(format!(
                    "TOTAL is {} rows, {} (fee {}, tax {}); expected {n_total} rows, {want_amount} (fee {want_fee}, tax {want_tax})",
                    total.count, total.settlement_amount, total.fee, total.tax
                ));
            }
        }
        None => failures.push("the summary has no TOTAL row".into()),
    }
    match run.days.as_slice() {
        [(_, _, written)] if written.rows == n_total => {}
        [(_, _, written)] => {
            failures.push(format!("the transaction details have {} rows, not {n_total}", written.rows));
        }
        days => failures.push(format!("{} days of transaction details were written, not 1", days.len())),
    }
    Ok(())
}

/// A latency distribution, in microseconds.
struct Latency {
    count: usize,
    p50: u64,
    p99: u64,
    max: u64,
}

impl Latency {
    fn of(samples: impl Iterator<Item = u64>) -> Latency {
        let mut sorted: Vec<u64> = samples.collect();
        sorted.sort_unstable();
        // Nearest rank: the smallest sample with at least p % of the samples at or below it.
        let rank = |percent: usize| -> u64 {
            match sorted.len() {
                0 => 0,
                len => sorted[(len * percent).div_ceil(100).max(1) - 1],
            }
        };
        Latency {
            count: sorted.len(),
            p50: rank(50),
            p99: rank(99),
            max: sorted.last().copied().unwrap_or(0),
        }
    }

    fn json(&self) -> String {
        format!(
            "{{\"count\":{},\"p50_us\":{},\"p99_us\":{},\"max_us\":{}}}",
            self.count, self.p50, self.p99, self.max
        )
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>7} pairs: p50 {} ms, p99 {} ms, max {} ms",
            self.count,
            millis(self.p50),
            millis(self.p99),
            millis(self.max)
        )
    }
}

fn elapsed_micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX).max(1)
}

fn millis(micros: u64) -> String {
    format!("{}.{}", micros / 1000, (micros % 1000) / 100)
}

fn seconds(micros: u64) -> String {
    format!("{}.{:02} s", micros / 1_000_000, (micros % 1_000_000) / 10_000)
}

fn seconds_json(micros: u64) -> String {
    format!("{}.{:03}", micros / 1_000_000, (micros % 1_000_000) / 1_000)
}

/// The process's memory, in KiB, from /proc/self/status.
#[derive(Debug, Default, Clone, Copy)]
struct Memory {
    hwm: u64,
    rss: u64,
    anon: u64,
    file: u64,
}

impl Memory {
    fn read() -> anyhow::Result<Memory> {
        let status =
            std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status (Linux only)")?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status
                .lines()
                .find(|line| line.starts_with(name))
                .with_context(|| format!("no {name} in /proc/self/status"))?;
            let kib = line.trim_start_matches(name).trim().trim_end_matches("kB").trim();
            Ok(kib.parse()?)
        };
        Ok(Memory {
            hwm: field("VmHWM:")?,
            rss: field("VmRSS:")?,
            anon: field("RssAnon:")?,
            file: field("RssFile:")?,
        })
    }
}

/// Samples the memory every 10 ms on a thread of its own (tokio's workers may be busy).
struct Sampler {
    stop: Arc<AtomicBool>,
    peaks: Arc<Mutex<Memory>>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start() -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks = Arc::new(Mutex::new(Memory::default()));
        let thread = {
            let (stop, peaks) = (stop.clone(), peaks.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(now) = Memory::read() {
                        let mut peaks = peaks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                        peaks.anon = peaks.anon.max(now.anon);
                        peaks.file = peaks.file.max(now.file);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Sampler { stop, peaks, thread }
    }

    fn stop(self) -> Memory {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        *self.peaks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The file system type of the mount holding `path`, from /proc/mounts (longest mount point).
fn filesystem_of(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point).then(|| (point.len(), kind.to_owned()))
        })
        .max()
        .map_or_else(|| "unknown".into(), |(_, kind)| kind)
}
