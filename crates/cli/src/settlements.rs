//! Settlement from the shell: settle now (sandbox), list and pay out batches, write the
//! reconciliation files again, and reconcile them against the ledger and the records.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use jiff::civil::Date;
use ocpay_core::ids::ClientId;
use ocpay_settlement::batches::{SettleRun, Settler};
use ocpay_settlement::files::{AmountUnit, format_amount};
use ocpay_settlement::{orders, reconcile, reports_root};
use ocpay_store::Store;
use ocpay_store::settlement::{MarkPaid, SettlementBatch};
use serde_json::json;

use crate::data::DataArgs;
use crate::participant::parse_client_id;

#[derive(clap::Args)]
pub(crate) struct SettleArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The participant to settle (with --now).
    #[arg(long, value_parser = parse_client_id, requires = "now")]
    client_id: Option<ClientId>,
    /// Settle everything the sandbox participant completed so far, in batches that settle
    /// today, and write the files at once. Without it: settle every day that has ended, as
    /// the server's job does.
    #[arg(long, requires = "client_id")]
    now: bool,
}

#[derive(clap::Subcommand)]
pub(crate) enum SettlementsCommand {
    /// List batches, newest first.
    List {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, value_parser = parse_client_id)]
        client_id: Option<ClientId>,
        /// Only the batches of this settlement day (YYYYMMDD).
        #[arg(long, value_parser = parse_date)]
        date: Option<Date>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one batch.
    Show {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        batch_id: String,
    },
    /// Record that the participant's settled balance was paid out, up to and including this
    /// batch: the ledger moves it from settled to payout.
    MarkPaid {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        batch_id: String,
        /// The bank transfer's reference, kept with the batches it paid.
        #[arg(long)]
        reference: Option<String>,
    },
}

#[derive(clap::Subcommand)]
pub(crate) enum ReportsCommand {
    /// Write (again) a participant's transaction details of a day and the files of that day's
    /// closed batches; the same day gives the same bytes.
    Generate {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, value_parser = parse_client_id)]
        client_id: ClientId,
        /// The settlement day (YYYYMMDD).
        #[arg(long, value_parser = parse_date)]
        date: Date,
    },
}

#[derive(clap::Args)]
pub(crate) struct ReconcileArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Prove that the files, the ledger and the records of this settlement day agree
    /// (YYYYMMDD).
    #[arg(long, value_parser = parse_date, required_unless_present = "report", conflicts_with_all = ["report", "orders"])]
    date: Option<Date>,
    #[arg(long, value_parser = parse_client_id, requires = "date")]
    client_id: Option<ClientId>,
    /// A transaction or settlement details file (several parts: repeat the flag) to match
    /// against --orders.
    #[arg(long, requires = "orders")]
    report: Vec<PathBuf>,
    /// Your own order list: a CSV file with the header paymentRequestId,amount,currency and
    /// amounts in major units.
    #[arg(long, requires = "report")]
    orders: Option<PathBuf>,
}

/// A settlement day as the files name it: `20261130`.
fn parse_date(text: &str) -> Result<Date, String> {
    Date::strptime("%Y%m%d", text)
        .map_err(|_| format!("a date is written YYYYMMDD, like 20261130, not {text:?}"))
}

/// A settler over the data directory's store and reports, with a progress bar on a terminal.
async fn settler(
    data: &DataArgs,
    what: &'static str,
) -> anyhow::Result<(Settler, Arc<dyn Store>, ProgressBar)> {
    let (settings, dir, store) = data.open().await?;
    // Hidden unless stderr is a terminal, so that pipes and logs stay quiet.
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} {human_pos} rows ({per_sec})")?);
    bar.set_message(what);
    let progress = bar.clone();
    let settler = Settler::new(store.clone(), settings.settlement, reports_root(dir.root()))
        .with_progress(move |rows| progress.inc(rows));
    Ok((settler, store, bar))
}

fn batch_json(batch: &SettlementBatch) -> serde_json::Value {
    json!({
        "settlementBatchId": batch.id,
        "clientId": batch.owner.as_str(),
        "settlementCurrency": batch.currency.code(),
        "day": batch.day.strftime("%Y%m%d").to_string(),
        "settlementDate": batch.settlement_date.strftime("%Y%m%d").to_string(),
        "cutoff": batch.cutoff.to_string(),
        "status": batch.status.as_str(),
        "count": batch.count,
        "settlementAmount": format_amount(batch.amount, AmountUnit::Major),
        "fee": format_amount(batch.fee, AmountUnit::Major),
        "taxFee": format_amount(batch.tax, AmountUnit::Major),
        "settledAt": batch.closed_at.map(|at| at.to_string()),
        "paidAt": batch.paid_at.map(|at| at.to_string()),
        "payoutReference": batch.payout_reference,
    })
}

fn run_json(run: &SettleRun) -> serde_json::Value {
    let mut files: Vec<&str> = Vec::new();
    for settled in &run.batches {
        files.extend(settled.files.details.iter().chain(&settled.files.summary).map(String::as_str));
    }
    for (_, _, written) in &run.days {
        files.extend(written.parts.iter().map(String::as_str));
    }
    json!({
        "batches": run.batches.iter().map(|settled| batch_json(&settled.batch)).collect::<Vec<_>>(),
        "files": files,
    })
}

pub(crate) async fn settle(args: SettleArgs) -> anyhow::Result<()> {
    let (settler, _, bar) = settler(&args.data, "writing").await?;
    let now = jiff::Timestamp::now();
    let run = match &args.client_id {
        Some(client_id) => settler.settle_now(client_id, now).await?,
        None => settler.run_due(now).await?,
    };
    bar.finish_and_clear();
    crate::print_json(&run_json(&run))
}

pub(crate) async fn settlements(command: SettlementsCommand) -> anyhow::Result<()> {
    match command {
        SettlementsCommand::List { data, client_id, date, limit } => {
            let (_, _, store) = data.open().await?;
            let batches = store.settlement_batches(client_id.as_ref(), date, limit).await?;
            crate::print_json(&json!({ "batches": batches.iter().map(batch_json).collect::<Vec<_>>() }))
        }
        SettlementsCommand::Show { data, batch_id } => {
            let (_, _, store) = data.open().await?;
            let Some(batch) = store.settlement_batch(&batch_id).await? else {
                return Err(crate::NotFound(format!("no settlement batch has the id {batch_id}")).into());
            };
            let moved = store.batch_movement(&batch.id).await?;
            let mut shown = batch_json(&batch);
            shown["ledgerMovement"] = json!(moved.map(|money| format_amount(money, AmountUnit::Major)));
            crate::print_json(&shown)
        }
        SettlementsCommand::MarkPaid { data, batch_id, reference } => {
            let (_, _, store) = data.open().await?;
            match store.mark_paid(&batch_id, reference.as_deref(), jiff::Timestamp::now()).await? {
                MarkPaid::Paid { amount, batches } => crate::print_json(&json!({
                    "paidOut": format_amount(amount, AmountUnit::Major),
                    "currency": amount.currency().code(),
                    "batches": batches,
                    "payoutReference": reference,
                })),
                MarkPaid::NothingToPay { balance } => Err(anyhow::anyhow!(
                    "nothing to pay out: the settled balance is {} {}; a negative net carries into the next batches",
                    format_amount(balance, AmountUnit::Major),
                    balance.currency().code()
                )),
                MarkPaid::Open => {
                    Err(anyhow::anyhow!("batch {batch_id} is still open: it cannot be paid yet"))
                }
                MarkPaid::AlreadyPaid { reference } => Err(anyhow::anyhow!(
                    "batch {batch_id} was paid out before (reference {})",
                    reference.as_deref().unwrap_or("none")
                )),
                MarkPaid::NotFound => {
                    Err(crate::NotFound(format!("no settlement batch has the id {batch_id}")).into())
                }
            }
        }
    }
}

pub(crate) async fn reports(command: ReportsCommand) -> anyhow::Result<()> {
    let ReportsCommand::Generate { data, client_id, date } = command;
    let (settler, store, bar) = settler(&data, "writing").await?;
    if store.participant(&client_id).await?.is_none() {
        return Err(crate::NotFound(format!("no participant has the client id {client_id}")).into());
    }
    let run = settler.generate(&client_id, date).await?;
    bar.finish_and_clear();
    crate::print_json(&run_json(&run))
}

pub(crate) async fn reconcile(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    if let Some(orders_file) = &args.orders {
        let reports: Vec<&std::path::Path> = args.report.iter().map(PathBuf::as_path).collect();
        let found = orders::match_orders_in(&reports, orders_file)?;
        for discrepancy in &found {
            crate::print_stdout(&format!("{discrepancy}\n"))?;
        }
        eprintln!("{} discrepancies", found.len());
        return Ok(if found.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    let Some(day) = args.date else { anyhow::bail!("--date or --report with --orders is needed") };
    let (settler, _, bar) = settler(&args.data, "checking").await?;
    let checked = bar.clone();
    let progress = move |rows: u64| checked.set_position(rows);
    let found =
        reconcile::reconcile_day(&settler, day, args.client_id.as_ref(), jiff::Timestamp::now(), &progress)
            .await?;
    bar.finish_and_clear();
    crate::print_json(&json!({
        "date": day.strftime("%Y%m%d").to_string(),
        "batches": found.batches,
        "items": found.items,
        "files": found.files,
        "discrepancies": found.discrepancies.iter().map(ToString::to_string).collect::<Vec<_>>(),
    }))?;
    Ok(if found.discrepancies.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
