//! Fees and settlement.

use async_trait::async_trait;
use jiff::civil::Date;
use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::money::{Currency, Money};

use crate::StoreError;
use crate::settlement::{
    BatchCursor, ItemCursor, MarkPaid, SettleChunk, SettledChunk, SettlementBatch, SettlementCounts,
    SettlementItemRecord, SettlementTerms,
};

/// Fees, settlement batches and their items, and payouts.
#[async_trait]
pub trait SettlementStore: Send + Sync {
    /// A participant's fee schedule and settlement currency; `None` without such a participant.
    async fn settlement_terms(&self, client_id: &ClientId) -> Result<Option<SettlementTerms>, StoreError>;

    /// Replaces a participant's fee schedule and settlement currency (for what completes from
    /// now on); `NotFound` without such a participant.
    async fn set_settlement_terms(
        &self,
        client_id: &ClientId,
        terms: &SettlementTerms,
    ) -> Result<(), StoreError>;

    /// Changes only a participant's settlement currency (`None`: each transaction's own), leaving
    /// its fee schedule as it is; `NotFound` without such a participant.
    async fn set_settlement_currency(
        &self,
        client_id: &ClientId,
        currency: Option<Currency>,
    ) -> Result<(), StoreError>;

    /// Who has a batch to make at `cutoff`: every participant and settlement currency with a
    /// transaction completed before it and not yet settled, and every one that had a batch
    /// before and has none at `cutoff` (its summary is written even for a day without
    /// transactions). Restricted to `owner` when one is given.
    async fn settlement_candidates(
        &self,
        cutoff: Timestamp,
        owner: Option<&ClientId>,
    ) -> Result<Vec<(ClientId, Currency)>, StoreError>;

    /// When the oldest completed transaction not yet in a batch completed.
    async fn oldest_unsettled(&self) -> Result<Option<Timestamp>, StoreError>;

    /// Adds up to `chunk.limit` unsettled transactions completed before the cutoff to the
    /// participant's batch for it (opened when missing), each with its item and its share of
    /// the pending → settled posting, in one transaction; closes the batch when fewer were
    /// left. A closed batch takes nothing more.
    async fn settle_chunk(&self, chunk: &SettleChunk) -> Result<SettledChunk, StoreError>;

    /// Batches, newest cutoff first: of one participant and one day when given; at most `limit`.
    async fn settlement_batches(
        &self,
        owner: Option<&ClientId>,
        day: Option<Date>,
        limit: u32,
    ) -> Result<Vec<SettlementBatch>, StoreError>;

    async fn settlement_batch(&self, batch_id: &str) -> Result<Option<SettlementBatch>, StoreError>;

    /// A page of `owner`'s batches, newest day first (then newest cutoff, then id), after
    /// `after`: the developer center's list, by keyset over the index of an owner's days.
    async fn settlement_batches_page(
        &self,
        owner: &ClientId,
        after: Option<&BatchCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementBatch>, StoreError>;

    /// A page of a batch's items in file order (completion time, then id), after `after`.
    async fn batch_items(
        &self,
        batch_id: &str,
        after: Option<&ItemCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementItemRecord>, StoreError>;

    /// A page of the settled items of a participant that completed in `[from, to)`, in file
    /// order, after `after`.
    async fn items_completed_between(
        &self,
        owner: &ClientId,
        from: Timestamp,
        to: Timestamp,
        after: Option<&ItemCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementItemRecord>, StoreError>;

    /// Records the payout of a closed batch: the participant's settled balance in its currency
    /// moves to the payout account, and every closed, unpaid batch up to this one is paid.
    async fn mark_paid(
        &self,
        batch_id: &str,
        reference: Option<&str>,
        now: Timestamp,
    ) -> Result<MarkPaid, StoreError>;

    /// The amount the ledger moved into `settled` for a batch.
    async fn batch_movement(&self, batch_id: &str) -> Result<Option<Money>, StoreError>;

    /// How many transactions completed before `until` (of `owner`, or of everyone), and how
    /// many of them are queued and itemized.
    async fn settlement_counts(
        &self,
        owner: Option<&ClientId>,
        until: Timestamp,
    ) -> Result<SettlementCounts, StoreError>;

    /// A page of every participant's batches, newest day first (then newest cutoff, then id),
    /// after `after`.
    async fn all_settlement_batches_page(
        &self,
        after: Option<&BatchCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementBatch>, StoreError>;
}
