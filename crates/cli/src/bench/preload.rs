//! `ocpay bench --preload N`: fills the benchmark's store with N payments' worth of history
//! before the timed phases, so that the benchmark shows what a store of that size costs.
//!
//! The history is the benchmark merchant's own (the same `pay` as the phases send), spread
//! evenly over the 26 days that ended two days before the run, so that every day of it has
//! ended, none is older than the API log's default retention (30 days), and the servers' jobs
//! find nothing to do: the store writes it in chunks of [`CHUNK`] payments, one transaction each,
//! with set-based statements (`PreloadStore`, which says what a payment leaves behind and in
//! what proportions), and then the settlement `ocpay settle` runs settles every preloaded day
//! into batches and writes their files, as the server's job would have.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::SignedDuration;
use ocpay_core::ids::ClientId;
use ocpay_core::money::{Currency, Money};
use ocpay_protocol::Api;
use ocpay_server::config::Config;
use ocpay_server::data_dir::DataDir;
use ocpay_server::settings::Settings;
use ocpay_settlement::batches::Settler;
use ocpay_settlement::reports_root;
use ocpay_store::{PreloadCall, PreloadPlan};
use serde_json::{Value, json};

/// Payments per transaction.
pub(super) const CHUNK: u64 = 25_000;

/// What the preloaded history's ids begin with.
pub(super) const PREFIX: &str = "preload-";

/// The history ends this long before the run...
const ENDS_BEFORE: SignedDuration = SignedDuration::from_hours(48);
/// ... and spans this long.
const SPAN: SignedDuration = SignedDuration::from_hours(26 * 24);

/// A signature header's size, for API log rows of a realistic size.
fn signature_header(time_name: &str) -> String {
    format!(
        r#"{{"client-id":"{{client}}","{time_name}":"2026-11-30T12:00:00+00:00","signature":"algorithm=RSA256,keyVersion=1,signature={}"}}"#,
        "A".repeat(344)
    )
}

fn calls(client_id: &str, notify_url: &str) -> (PreloadCall, PreloadCall) {
    let request_headers = signature_header("request-time").replace("{client}", client_id);
    let response_headers = signature_header("response-time").replace("{client}", client_id);
    let pay = PreloadCall {
        api: Api::Pay.name().to_owned(),
        path: Api::Pay.path_for(client_id),
        request_headers: request_headers.clone(),
        request_body: super::pay_body("{request}", notify_url),
        response_headers: response_headers.clone(),
        response_body: json!({
            "result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"},
            "paymentRequestId": "{request}",
            "paymentId": "{payment}",
            "orderCodeForm": {"codeDetails": [{"codeValue": "https://pay.example/c/{payment}", "displayType": "TEXT"}]}
        })
        .to_string(),
    };
    let refund = PreloadCall {
        api: Api::Refund.name().to_owned(),
        path: Api::Refund.path_for(client_id),
        request_headers,
        request_body: json!({
            "refundRequestId": "{request}",
            "paymentId": "{payment}",
            "refundAmount": {"currency": "USD", "value": "1250"},
            "refundNotifyUrl": notify_url
        })
        .to_string(),
        response_headers,
        response_body: json!({
            "result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"},
            "refundRequestId": "{request}",
            "refundId": "{request}",
            "paymentId": "{payment}",
            "refundAmount": {"currency": "USD", "value": "1250"}
        })
        .to_string(),
    };
    (pay, refund)
}

/// A progress bar on stderr (drawn only when it is a terminal), or a line per step otherwise.
fn bar(length: Option<u64>, template: &str) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template(template)?);
    Ok(bar)
}

/// Writes `payments` payments of history for `client_id` into the store `config` names, then
/// settles their days. The summary's `preload`.
pub(super) async fn preload(
    data_dir: &DataDir,
    config: &Config,
    client_id: &str,
    notify_url: &str,
    payments: u64,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    let settings = Settings::resolve(config)?;
    let store = data_dir.open_store(config).await?;
    // The history is sandbox value and the settlement run settles every participant's due
    // days: only a store that holds nobody but the benchmark's merchant may get it.
    if store.participants(2).await?.iter().any(|participant| participant.client_id.as_str() != client_id) {
        anyhow::bail!(
            "--preload fills only a store of its own: this database holds other participants \
             (give --database-url an empty database)"
        );
    }
    let now = jiff::Timestamp::now();
    let to = now.checked_sub(ENDS_BEFORE)?;
    let (pay, refund) = calls(client_id, notify_url);
    let plan = PreloadPlan {
        owner: ClientId::parse(client_id).map_err(anyhow::Error::msg)?,
        key_version: 1,
        amount: Money::new(1250, Currency::parse("USD").map_err(anyhow::Error::msg)?),
        notify_url: notify_url.to_owned(),
        from: to.checked_sub(SPAN)?,
        to,
        total: payments,
        prefix: PREFIX.to_owned(),
        pay,
        refund,
    };

    eprintln!("preloading {payments} payments of history, {CHUNK} per transaction ...");
    let progress = bar(
        Some(payments),
        "{bar:40} {human_pos}/{human_len} payments ({per_sec}, {elapsed} elapsed, about {eta} left)",
    )?;
    let mut rows: BTreeMap<String, u64> = BTreeMap::new();
    let mut first = 0;
    while first < payments {
        let count = CHUNK.min(payments - first);
        let written = store
            .preload_history(&plan, first, count)
            .await
            .with_context(|| format!("preload payments {first} to {}", first + count - 1))?;
        for (table, count) in written {
            *rows.entry(table).or_insert(0) += count;
        }
        first += count;
        progress.set_position(first);
        if progress.is_hidden() && ((first / CHUNK).is_multiple_of(10) || first == payments) {
            eprintln!("    {first} of {payments} payments ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    progress.finish_and_clear();
    let written_seconds = started.elapsed().as_secs_f64();
    eprintln!("    {payments} payments written in {written_seconds:.1} s; settling their days ...");

    // The days settle as the server's job settles them: every day that has ended, each in its
    // batches, with their files.
    let settled = Instant::now();
    let spinner = bar(None, "{spinner} settling {human_pos} rows ({per_sec}, {elapsed} elapsed)")?;
    let counted = spinner.clone();
    let settler = Settler::new(Arc::clone(&store), settings.settlement, reports_root(data_dir.root()))
        .with_progress(move |rows| counted.inc(rows));
    let run = settler.run_due(now).await.context("settle the preloaded days")?;
    spinner.finish_and_clear();
    let settle_seconds = settled.elapsed().as_secs_f64();
    let items: u64 = run.batches.iter().map(|settled| settled.batch.count).sum();
    rows.insert("settlement_batch".into(), run.batches.len() as u64);
    rows.insert("settlement_item".into(), items);
    eprintln!("    {} batches of {items} transactions settled in {settle_seconds:.1} s", run.batches.len());
    Ok(json!({
        "payments": payments,
        "from": plan.from.to_string(),
        "to": plan.to.to_string(),
        "seconds": started.elapsed().as_secs_f64(),
        "write_seconds": written_seconds,
        "settle_seconds": settle_seconds,
        "rows": rows,
    }))
}
