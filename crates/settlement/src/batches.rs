//! Settling: the batches of every day that has ended, chunk by chunk, and their files.
//!
//! Exactly-once is the store's (each completed transaction has one settlement item, made in
//! the transaction that takes it off the queue); this module decides which days and which
//! participants to settle, and writes the files of what closed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::civil::Date;
use ocpay_core::Timestamp;
use ocpay_core::fees::SettlementCycle;
use ocpay_core::fx::Rate;
use ocpay_core::ids::ClientId;
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::Environment;
use ocpay_store::settlement::{
    BatchStatus, ItemCursor, SettleChunk, SettlementBatch, SettlementItemRecord, SettlementKind,
};
use ocpay_store::{Store, StoreError};

use crate::files::{
    self, BatchFiles, FileFormat, SettlementBatchWriter, SettlementItem, TransactionItem,
    TransactionItemsWriter, TransactionType, Written, WrittenBatch,
};

/// Most batches of one day a run looks at for files a dead run left unwritten: one per
/// participant and currency, and one per on-demand run of a sandbox participant.
const BATCHES_OF_A_DAY_MAX: u32 = 100_000;

/// How settlement runs. Every limit is explicit.
#[derive(Debug, Clone)]
pub struct SettlementSettings {
    pub cycle: SettlementCycle,
    /// Settlement rates of live and of sandbox participants (`BASE/QUOTE`: a transaction in
    /// BASE settles in QUOTE at that price).
    pub live_rates: Vec<Rate>,
    pub sandbox_rates: Vec<Rate>,
    /// Most transactions one chunk adds to a batch, in one write transaction.
    pub chunk_max: u32,
    /// Most items read from the store per page while writing a file.
    pub page_max: u32,
    pub format: FileFormat,
}

impl Default for SettlementSettings {
    fn default() -> SettlementSettings {
        let cycle = SettlementCycle::default();
        let format = FileFormat { zone: cycle.zone.clone(), ..FileFormat::default() };
        SettlementSettings {
            cycle,
            live_rates: Vec::new(),
            sandbox_rates: Vec::new(),
            chunk_max: 250,
            page_max: 5_000,
            format,
        }
    }
}

/// Why settling or writing files failed.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Files(#[from] files::Error),
    #[error("{0}")]
    Refused(String),
}

/// A closed batch and the files written for it.
#[derive(Debug, Clone)]
pub struct SettledBatch {
    pub batch: SettlementBatch,
    pub files: WrittenBatch,
}

/// What one run settled and wrote.
#[derive(Debug, Clone, Default)]
pub struct SettleRun {
    pub batches: Vec<SettledBatch>,
    /// Transaction details written, one per participant and day.
    pub days: Vec<(ClientId, Date, Written)>,
}

/// Settles batches and writes their files under `root` (the reports root).
pub struct Settler {
    store: Arc<dyn Store>,
    settings: SettlementSettings,
    root: PathBuf,
    /// Told how many more rows were written, after each page (a terminal's progress bar).
    progress: Option<Box<dyn Fn(u64) + Send + Sync>>,
}

impl Settler {
    pub fn new(store: Arc<dyn Store>, settings: SettlementSettings, root: PathBuf) -> Settler {
        Settler { store, settings, root, progress: None }
    }

    /// The settler, telling `progress` after each page how many more rows it has written.
    pub fn with_progress(mut self, progress: impl Fn(u64) + Send + Sync + 'static) -> Settler {
        self.progress = Some(Box::new(progress));
        self
    }

    fn written(&self, rows: u64) {
        if let Some(progress) = &self.progress {
            progress(rows);
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn settings(&self) -> &SettlementSettings {
        &self.settings
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Settles every day that has ended by `now` and is not settled yet (a late run catches
    /// up, day by day, so that each transaction lands in its own day's batch), and writes the
    /// files of every batch it closed. Safe to run on several nodes at once.
    pub async fn run_due(&self, now: Timestamp) -> Result<SettleRun, SettleError> {
        let cycle = &self.settings.cycle;
        let last = cycle.last_closed_day(now);
        let first = match self.store.oldest_unsettled().await? {
            Some(oldest) => cycle.day_of(oldest).min(last),
            None => last,
        };
        let mut run = SettleRun::default();
        let mut day = first;
        while day <= last {
            let cutoff = cycle.end_of(day);
            self.settle(day, cutoff, cycle.settlement_date(day), None, now, &mut run).await?;
            day = day.tomorrow().map_err(|error| SettleError::Refused(error.to_string()))?;
        }
        Ok(run)
    }

    /// Settles everything `owner` completed before `now` at once, in batches of today that
    /// settle today, and writes their files and today's transaction details: a sandbox
    /// participant's rehearsal of the cycle.
    pub async fn settle_now(&self, owner: &ClientId, now: Timestamp) -> Result<SettleRun, SettleError> {
        if Environment::of_client_id(owner) != Environment::Sandbox {
            return Err(SettleError::Refused(format!(
                "{owner} is a live participant: only sandbox participants settle on demand; live ones settle at each cutoff"
            )));
        }
        let day = self.settings.cycle.day_of(now);
        let mut run = SettleRun::default();
        self.settle(day, now, day, Some(owner), now, &mut run).await?;
        Ok(run)
    }

    async fn settle(
        &self,
        day: Date,
        cutoff: Timestamp,
        settlement_date: Date,
        owner: Option<&ClientId>,
        now: Timestamp,
        run: &mut SettleRun,
    ) -> Result<(), SettleError> {
        let mut owners: Vec<ClientId> = self.finish_interrupted(day, owner, now, run).await?;
        let candidates = self.store.settlement_candidates(cutoff, owner).await?;
        for (client, currency) in candidates {
            let batch = self.close_batch(&client, currency, day, settlement_date, cutoff, now).await?;
            let files = self.write_batch_files(&batch).await?;
            run.batches.push(SettledBatch { batch, files });
            if !owners.contains(&client) {
                owners.push(client);
            }
        }
        for client in owners {
            let written = self.write_day_files(&client, day).await?;
            run.days.push((client, day, written));
        }
        Ok(())
    }

    /// Finishes the day's batches (of `owner`, or everyone's) that a run left unfinished, and
    /// returns the owners whose files it wrote, so that their day's transaction details are
    /// written again too. A run that died, or gave up, between two chunks of a batch left it
    /// open: it gets the rest of its chunks here, with its own cutoff, since a later on-demand
    /// run has a cutoff of its own and would open another batch beside it. A run that died
    /// between closing a batch and publishing its files left it without them: they are written
    /// here, since nothing else would write them (the batch takes nothing more).
    async fn finish_interrupted(
        &self,
        day: Date,
        owner: Option<&ClientId>,
        now: Timestamp,
        run: &mut SettleRun,
    ) -> Result<Vec<ClientId>, SettleError> {
        let mut owners: Vec<ClientId> = Vec::new();
        for batch in self.store.settlement_batches(owner, Some(day), BATCHES_OF_A_DAY_MAX).await? {
            if batch.status == BatchStatus::Open {
                let (owner, currency) = (&batch.owner, batch.currency);
                let closed =
                    self.close_batch(owner, currency, day, batch.settlement_date, batch.cutoff, now).await?;
                let files = self.write_batch_files(&closed).await?;
                run.batches.push(SettledBatch { batch: closed, files });
            } else {
                // The summary is published after the details: with it, the batch's files are whole.
                let summary = files::settlement_summary_path(
                    batch.owner.as_str(),
                    batch.settlement_date,
                    batch.currency,
                    &batch.id,
                    0,
                );
                if self.root.join(summary).exists() {
                    continue;
                }
                self.write_batch_files(&batch).await?;
            }
            if !owners.contains(&batch.owner) {
                owners.push(batch.owner);
            }
        }
        Ok(owners)
    }

    /// Adds chunks to the batch until it closes. Another node may be adding to it at the same
    /// time: chunks of one batch follow one another, and whichever closes it, both write the
    /// same files.
    async fn close_batch(
        &self,
        owner: &ClientId,
        currency: Currency,
        day: Date,
        settlement_date: Date,
        cutoff: Timestamp,
        now: Timestamp,
    ) -> Result<SettlementBatch, SettleError> {
        let rates = match Environment::of_client_id(owner) {
            Environment::Live => self.settings.live_rates.clone(),
            Environment::Sandbox => self.settings.sandbox_rates.clone(),
        };
        let chunk = SettleChunk {
            owner: owner.clone(),
            currency,
            day,
            settlement_date,
            cutoff,
            now,
            limit: self.settings.chunk_max,
            rates,
        };
        loop {
            let settled = self.store.settle_chunk(&chunk).await?;
            if settled.batch.status == BatchStatus::Closed {
                return Ok(settled.batch);
            }
        }
    }

    /// Writes (again) a closed batch's settlement details and summary, byte for byte as before.
    pub async fn write_batch_files(&self, batch: &SettlementBatch) -> Result<WrittenBatch, SettleError> {
        if batch.status != BatchStatus::Closed {
            return Err(SettleError::Refused(format!("batch {} is still open", batch.id)));
        }
        let settlement_time = batch.closed_at.unwrap_or(batch.cutoff);
        let names = BatchFiles {
            customer_id: batch.owner.as_str(),
            settlement_date: batch.settlement_date,
            settlement_currency: batch.currency,
            batch_id: &batch.id,
            settlement_time,
        };
        let mut writer = SettlementBatchWriter::create(&self.root, &names, &self.settings.format)?;
        self.each_batch_page(&batch.id, |page| {
            for item in page {
                writer.push(&settlement_row(item, settlement_time))?;
            }
            self.written(page.len() as u64);
            Ok(())
        })
        .await?;
        Ok(writer.finish()?)
    }

    /// Writes (again) the transaction details of `owner`'s day: every settled transaction that
    /// completed in it.
    pub async fn write_day_files(&self, owner: &ClientId, day: Date) -> Result<Written, SettleError> {
        let mut writer =
            TransactionItemsWriter::create(&self.root, owner.as_str(), day, &self.settings.format)?;
        self.each_day_page(owner, day, |page| {
            for item in page {
                writer.push(&transaction_row(item))?;
            }
            self.written(page.len() as u64);
            Ok(())
        })
        .await?;
        Ok(writer.finish()?)
    }

    /// Visits a batch's items page by page, in file order.
    pub async fn each_batch_page(
        &self,
        batch_id: &str,
        visit: impl FnMut(&[SettlementItemRecord]) -> Result<(), SettleError>,
    ) -> Result<(), SettleError> {
        self.each_page(Items::Batch(batch_id), visit).await
    }

    /// Visits page by page, in file order, the settled items of `owner` that completed on
    /// settlement day `day`.
    pub async fn each_day_page(
        &self,
        owner: &ClientId,
        day: Date,
        visit: impl FnMut(&[SettlementItemRecord]) -> Result<(), SettleError>,
    ) -> Result<(), SettleError> {
        let cycle = &self.settings.cycle;
        let from = cycle.end_of(day.yesterday().map_err(|error| SettleError::Refused(error.to_string()))?);
        self.each_page(Items::Completed { owner, from, to: cycle.end_of(day) }, visit).await
    }

    /// Fetches pages of at most `page_max` items, each after the last item of the one before,
    /// and visits each, until a page comes back short.
    async fn each_page(
        &self,
        items: Items<'_>,
        mut visit: impl FnMut(&[SettlementItemRecord]) -> Result<(), SettleError>,
    ) -> Result<(), SettleError> {
        let max = self.settings.page_max;
        let mut after: Option<ItemCursor> = None;
        loop {
            let page = match items {
                Items::Batch(id) => self.store.batch_items(id, after.as_ref(), max).await?,
                Items::Completed { owner, from, to } => {
                    self.store.items_completed_between(owner, from, to, after.as_ref(), max).await?
                }
            };
            visit(&page)?;
            match page.last() {
                Some(last) if page.len() == max as usize => after = Some(last.cursor()),
                _ => return Ok(()),
            }
        }
    }

    /// `ocpay reports generate`: the transaction details of `day` and the files of every closed
    /// batch of that day, for one participant.
    pub async fn generate(&self, owner: &ClientId, day: Date) -> Result<SettleRun, SettleError> {
        let mut run = SettleRun::default();
        for batch in self.store.settlement_batches(Some(owner), Some(day), u32::MAX).await? {
            if batch.status == BatchStatus::Closed {
                let files = self.write_batch_files(&batch).await?;
                run.batches.push(SettledBatch { batch, files });
            }
        }
        run.batches.sort_by(|a, b| a.batch.cutoff.cmp(&b.batch.cutoff).then(a.batch.id.cmp(&b.batch.id)));
        let written = self.write_day_files(owner, day).await?;
        run.days.push((owner.clone(), day, written));
        Ok(run)
    }
}

/// Which items to page through.
#[derive(Clone, Copy)]
enum Items<'a> {
    Batch(&'a str),
    /// A participant's settled items completed in `[from, to)`.
    Completed {
        owner: &'a ClientId,
        from: Timestamp,
        to: Timestamp,
    },
}

fn transaction_type(kind: SettlementKind) -> TransactionType {
    match kind {
        SettlementKind::Payment => TransactionType::Payment,
        SettlementKind::Refund => TransactionType::Refund,
        SettlementKind::Cancel => TransactionType::Cancel,
    }
}

/// A stored item as a row of the transaction details.
pub fn transaction_row(item: &SettlementItemRecord) -> TransactionItem {
    TransactionItem {
        customer_id: item.owner.as_str().to_owned(),
        reference_merchant_id: item.reference_merchant_id.clone(),
        reference_store_id: item.reference_store_id.clone(),
        transaction_id: item.transaction_id.clone(),
        original_transaction_id: item.original_transaction_id.clone(),
        transaction_request_id: item.transaction_request_id.clone(),
        reference_transaction_id: item.reference_order_id.clone(),
        order_description: item.order_description.clone(),
        transaction_type: transaction_type(item.kind),
        payment_time: item.completed_at,
        transaction_amount: item.amount,
    }
}

/// A stored item as a row of the settlement details.
pub fn settlement_row(item: &SettlementItemRecord, settlement_time: Timestamp) -> SettlementItem {
    SettlementItem {
        settlement_batch_id: item.batch_id.clone(),
        item: transaction_row(item),
        settlement_time,
        settlement_amount: item.settlement_amount,
        quote: item.quote.clone(),
        fee: item.settlement_fee,
        tax: item.settlement_tax,
    }
}

/// The sum of amounts of one currency, refused when it leaves the range of an amount.
pub(crate) fn sum(
    currency: Currency,
    amounts: impl IntoIterator<Item = Money>,
) -> Result<Money, SettleError> {
    amounts.into_iter().try_fold(Money::zero(currency), |total, amount| {
        total.checked_add(amount).map_err(|error| SettleError::Refused(error.to_string()))
    })
}
