//! Streams N synthetic transaction items through `write_transaction_items` and reports the
//! throughput and the growth of the process's peak resident memory, to show that a day's file is
//! written at disk speed in the memory of one row, whatever the size of the day.
//!
//! `cargo run --release -p ocpay-settlement --example files_bench -- 1000000 [DIR]`
//!
//! The rows are generated on the fly, never collected; the parts split at 500,000 rows so the
//! split is measured too. Written to a temporary folder (or DIR), removed at the end.

use std::convert::Infallible;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use jiff::civil::date;
use jiff::tz::TimeZone;
use ocpay_core::Timestamp;
use ocpay_core::money::{Currency, Money};
use ocpay_settlement::files::{self, AmountUnit, FileFormat, TransactionItem, TransactionType};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rows: u64 =
        args.next().map_or(Ok(1_000_000), |text| text.parse()).context("N must be a whole number")?;
    let temporary = tempfile::tempdir()?;
    let root = args.next().map_or_else(|| temporary.path().to_path_buf(), Into::into);

    let usd = Currency::parse("USD")?;
    let jpy = Currency::parse("JPY")?;
    let start_of_day = Timestamp::from_second(1_796_000_000)?;
    let generated = (0..rows).map(move |n| {
        let transaction_type = match n % 20 {
            0 => TransactionType::Refund,
            1 => TransactionType::Cancel,
            _ => TransactionType::Payment,
        };
        let minor = i64::try_from(n % 100_000).unwrap_or(0) + 1;
        let minor = if transaction_type == TransactionType::Payment { minor } else { -minor };
        let currency = if n % 3 == 0 { jpy } else { usd };
        let second = i64::try_from(n % 86_400).unwrap_or(0);
        Ok::<_, Infallible>(TransactionItem {
            customer_id: "SANDBOX_5Y036S2Y1W4D03493".to_owned(),
            reference_merchant_id: Some("M0001".to_owned()),
            reference_store_id: Some("S0001".to_owned()),
            transaction_id: format!("2026113019000000{n:012}"),
            original_transaction_id: (transaction_type == TransactionType::Refund)
                .then(|| format!("2026113019000000{:012}", n.saturating_sub(1))),
            transaction_request_id: format!("PR-{n:012}"),
            reference_transaction_id: Some(format!("ORDER-{n}")),
            order_description: Some(format!("Coffee and cake, table {}", n % 40)),
            transaction_type,
            payment_time: start_of_day
                .checked_add(jiff::SignedDuration::from_secs(second))
                .unwrap_or(start_of_day),
            transaction_amount: Money::new(minor, currency),
        })
    });

    let format = FileFormat {
        amounts: AmountUnit::Major,
        zone: TimeZone::fixed(jiff::tz::offset(8)),
        rows_per_file: 500_000,
    };
    let before = peak_rss_kib()?;
    let started = Instant::now();
    let written = files::write_transaction_items(
        &root,
        "SANDBOX_5Y036S2Y1W4D03493",
        date(2026, 11, 30),
        &format,
        generated,
    )?;
    let elapsed = started.elapsed();
    let after = peak_rss_kib()?;

    let bytes: u64 = written.parts.iter().map(|part| file_size(&root.join(part))).sum();
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1);
    println!("rows:              {}", written.rows);
    println!("parts:             {}", written.parts.join(" "));
    println!("bytes written:     {bytes}");
    println!("elapsed:           {} ms", micros / 1000);
    println!("rows per second:   {}", written.rows.saturating_mul(1_000_000) / micros);
    println!("MB per second:     {}", bytes.saturating_mul(1_000_000) / micros / 1_000_000);
    println!("peak RSS before:   {} KiB", before);
    println!("peak RSS after:    {} KiB", after);
    println!("peak RSS growth:   {} KiB", after.saturating_sub(before));
    for total in &written.totals {
        println!(
            "total:             {} {} rows {}",
            total.transaction_type.as_str(),
            total.count,
            total.amount
        );
    }
    Ok(())
}

/// `VmHWM` of /proc/self/status: the peak resident set size so far, in KiB.
fn peak_rss_kib() -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status (Linux only)")?;
    let line =
        status.lines().find(|line| line.starts_with("VmHWM:")).context("no VmHWM in /proc/self/status")?;
    let kib = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim();
    Ok(kib.parse()?)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |metadata| metadata.len())
}
