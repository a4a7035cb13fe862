//! `ocpay reconcile --date`: proof that the files, the ledger and the records agree.
//!
//! For a settlement day, and each participant (or one): every batch of the day is closed, its
//! items add up to its totals, its totals equal the ledger's movement into `settled`, and its
//! files parsed back give the same; every transaction completed before the day's cutoff is in
//! exactly one batch; the transaction details list exactly the day's settled transactions; and
//! the whole ledger balances.

use std::fmt;
use std::path::Path;

use jiff::civil::Date;
use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::money::Money;
use ocpay_store::settlement::{BatchStatus, SettlementBatch};

use crate::batches::{SettleError, Settler, sum};
use crate::files::{self, SummaryType};

/// One way the files, the ledger and the records disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    /// What it is about: a batch id, a participant and day, or `ledger`.
    pub subject: String,
    pub problem: String,
}

impl fmt::Display for Discrepancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.problem)
    }
}

/// What a reconciliation looked at and found.
#[derive(Debug, Clone, Default)]
pub struct Reconciliation {
    pub batches: u64,
    pub items: u64,
    pub files: u64,
    pub discrepancies: Vec<Discrepancy>,
}

impl Reconciliation {
    fn differ(&mut self, subject: impl Into<String>, problem: impl Into<String>) {
        self.discrepancies.push(Discrepancy { subject: subject.into(), problem: problem.into() });
    }

    fn compare<T: PartialEq + fmt::Debug>(&mut self, subject: &str, what: &str, expected: T, found: T) {
        if expected != found {
            self.differ(subject, format!("{what}: {expected:?} in the store, {found:?} found"));
        }
    }
}

/// Reconciles settlement day `day` of `owner` (or of everyone) as of `now`; `progress` is
/// called with the number of rows checked so far.
pub async fn reconcile_day(
    settler: &Settler,
    day: Date,
    owner: Option<&ClientId>,
    now: Timestamp,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Reconciliation, SettleError> {
    let store = settler.store();
    let mut found = Reconciliation::default();
    let batches = store.settlement_batches(owner, Some(day), u32::MAX).await?;
    let mut owners: Vec<ClientId> = owner.into_iter().cloned().collect();
    for batch in &batches {
        found.batches += 1;
        if !owners.contains(&batch.owner) {
            owners.push(batch.owner.clone());
        }
        check_batch(settler, batch, &mut found, progress).await?;
    }

    let cutoff = settler.settings().cycle.end_of(day);
    if cutoff <= now {
        let counts = store.settlement_counts(owner, cutoff).await?;
        let subject = match owner {
            Some(owner) => format!("{owner} before {cutoff}"),
            None => format!("everyone before {cutoff}"),
        };
        if counts.queued > 0 {
            found.differ(&subject, format!("{} completed transactions are in no batch", counts.queued));
        }
        if counts.completed != counts.queued + counts.itemized {
            found.differ(
                &subject,
                format!(
                    "{} transactions completed, but {} are queued and {} in batches",
                    counts.completed, counts.queued, counts.itemized
                ),
            );
        }
    }

    for client in &owners {
        check_day_file(settler, client, day, &mut found, progress).await?;
    }

    let ledger = store.ledger_check().await?;
    if !ledger.is_sound() {
        found.differ("ledger", format!("the ledger does not balance: {ledger:?}"));
    }
    Ok(found)
}

async fn check_batch(
    settler: &Settler,
    batch: &SettlementBatch,
    found: &mut Reconciliation,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), SettleError> {
    let store = settler.store();
    let subject = format!("batch {}", batch.id);
    if batch.status != BatchStatus::Closed {
        found.differ(&subject, "still open: its settlement has not finished");
        return Ok(());
    }
    // The items against the batch's totals.
    let currency = batch.currency;
    let (mut count, mut amount, mut fee, mut tax) =
        (0u64, Money::zero(currency), Money::zero(currency), Money::zero(currency));
    settler
        .each_batch_page(&batch.id, |page| {
            count += page.len() as u64;
            amount =
                sum(currency, std::iter::once(amount).chain(page.iter().map(|item| item.settlement_amount)))?;
            fee = sum(currency, std::iter::once(fee).chain(page.iter().map(|item| item.settlement_fee)))?;
            tax = sum(currency, std::iter::once(tax).chain(page.iter().map(|item| item.settlement_tax)))?;
            found.items += page.len() as u64;
            progress(found.items);
            Ok(())
        })
        .await?;
    found.compare(&subject, "item count", batch.count, count);
    found.compare(&subject, "sum of the items' settlement amounts", batch.amount, amount);
    found.compare(&subject, "sum of the items' fees", batch.fee, fee);
    found.compare(&subject, "sum of the items' taxes", batch.tax, tax);
    let moved = store.batch_movement(&batch.id).await?.unwrap_or(Money::zero(currency));
    found.compare(&subject, "movement into settled in the ledger", batch.amount, moved);

    // The files, parsed back.
    let root = settler.root();
    let owner = batch.owner.as_str();
    let summary_path = files::settlement_summary_path(owner, batch.settlement_date, currency, &batch.id, 0);
    match read_existing(root, &summary_path, files::read_summary) {
        Ok(Some(rows)) => {
            found.files += 1;
            match rows.iter().find(|row| row.summary_type == SummaryType::Total) {
                Some(total) => {
                    found.compare(&subject, "summary TOTAL count", batch.count, total.count);
                    found.compare(
                        &subject,
                        "summary TOTAL settlement amount",
                        batch.amount,
                        total.settlement_amount,
                    );
                    found.compare(&subject, "summary TOTAL fee", batch.fee, total.fee);
                    found.compare(&subject, "summary TOTAL tax", batch.tax, total.tax);
                }
                None => found.differ(&subject, format!("{summary_path} has no TOTAL row")),
            }
        }
        Ok(None) => found.differ(&subject, format!("{summary_path} is missing")),
        Err(error) => found.differ(&subject, error.to_string()),
    }
    let (mut rows, mut file_amount) = (0u64, Money::zero(currency));
    for seq in 0.. {
        let path = files::settlement_items_path(owner, batch.settlement_date, currency, &batch.id, seq);
        match read_existing(root, &path, files::read_settlement_items) {
            Ok(Some(items)) => {
                found.files += 1;
                rows += items.len() as u64;
                file_amount = sum(
                    currency,
                    std::iter::once(file_amount).chain(items.iter().map(|row| row.settlement_amount)),
                )?;
            }
            Ok(None) if seq == 0 => {
                found.differ(&subject, format!("{path} is missing"));
                break;
            }
            Ok(None) => break,
            Err(error) => {
                found.differ(&subject, error.to_string());
                break;
            }
        }
    }
    found.compare(&subject, "rows of the settlement details", batch.count, rows);
    found.compare(&subject, "sum of the settlement details", batch.amount, file_amount);
    Ok(())
}

async fn check_day_file(
    settler: &Settler,
    owner: &ClientId,
    day: Date,
    found: &mut Reconciliation,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), SettleError> {
    let subject = format!("{owner} on {day}");
    let mut expected = 0u64;
    settler
        .each_day_page(owner, day, |page| {
            expected += page.len() as u64;
            Ok(())
        })
        .await?;
    let mut rows = 0u64;
    for seq in 0.. {
        let path = files::transaction_items_path(owner.as_str(), day, seq);
        match read_existing(settler.root(), &path, files::read_transaction_items) {
            Ok(Some(items)) => {
                found.files += 1;
                rows += items.len() as u64;
                progress(found.items + rows);
            }
            Ok(None) if seq == 0 => {
                found.differ(&subject, format!("{path} is missing"));
                return Ok(());
            }
            Ok(None) => break,
            Err(error) => {
                found.differ(&subject, error.to_string());
                return Ok(());
            }
        }
    }
    found.compare(&subject, "rows of the transaction details", expected, rows);
    Ok(())
}

/// A file's rows, or `None` when it does not exist.
fn read_existing<T>(
    root: &Path,
    relative: &str,
    read: fn(&Path) -> files::Result<Vec<T>>,
) -> Result<Option<Vec<T>>, files::Error> {
    let path = root.join(relative);
    if !path.exists() {
        return Ok(None);
    }
    read(&path).map(Some)
}
