//! History written in bulk: what `ocpay bench --preload` fills a store with before it measures.

use std::collections::BTreeMap;

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::money::Money;
use ocpay_core::participant::KeyVersion;

use crate::StoreError;

/// One API call of the preloaded history, as the API log keeps it. In the texts, `{request}`
/// stands for the call's request id (`paymentRequestId`, `refundRequestId`) and `{payment}`
/// for the payment's id.
#[derive(Debug, Clone)]
pub struct PreloadCall {
    /// The API's name, as the audit trail and the API log name it.
    pub api: String,
    pub path: String,
    pub request_headers: String,
    pub request_body: String,
    pub response_headers: String,
    pub response_body: String,
}

/// A history of `total` payments of one merchant, spread evenly from `from` to `to`, written
/// in chunks of consecutive indexes. Of every 20 payments (by index), 19 are paid from a
/// wallet and one expires unpaid (`FAIL`, `ORDER_IS_CLOSED`); every tenth (index divisible by
/// 10, always a paid one) is refunded in full an hour after it was paid. Every payment and
/// refund has its `pay` or `refund` call in the audit trail and the API log, and its
/// notification delivered at the first attempt; every paid payment and every refund is
/// queued for settlement, with its fee posted (or returned) as the merchant's terms say.
/// Each chunk's payments are paid by a payer of its own, funded by one top-up (a chunk whose
/// top-up would take the wallet above the store's maximum balance fails with `WalletLimit`).
#[derive(Debug, Clone)]
pub struct PreloadPlan {
    pub owner: ClientId,
    /// The key version that signed the calls.
    pub key_version: KeyVersion,
    /// Every payment's amount (paid in the same currency).
    pub amount: Money,
    pub notify_url: String,
    pub from: Timestamp,
    pub to: Timestamp,
    pub total: u64,
    /// Distinguishes this history's ids (payments, refunds, payers) from any other's.
    pub prefix: String,
    pub pay: PreloadCall,
    pub refund: PreloadCall,
}

impl PreloadPlan {
    /// How many of the payments from index `first`, `count` of them, are paid.
    pub fn paid_in(first: u64, count: u64) -> u64 {
        let below = |end: u64| end - end / 20;
        below(first + count) - below(first)
    }

    /// How many of the payments from index `first`, `count` of them, are refunded.
    pub fn refunded_in(first: u64, count: u64) -> u64 {
        (first + count).div_ceil(10) - first.div_ceil(10)
    }
}

/// Rows written, by table.
pub type PreloadRows = BTreeMap<String, u64>;

/// History in bulk, by set-based statements.
#[async_trait]
pub trait PreloadStore: Send + Sync {
    /// Writes the payments of `plan` with indexes `first` to `first + count - 1`, with all
    /// they left behind, in one transaction; says how many rows it wrote to each table.
    async fn preload_history(
        &self,
        plan: &PreloadPlan,
        first: u64,
        count: u64,
    ) -> Result<PreloadRows, StoreError>;

    /// Makes the payment-result notifications of the history preloaded for `owner` with ids
    /// beginning `prefix` ([`PreloadPlan::prefix`]) due again at `now`, as if never sent (their
    /// attempts forgotten): the backlog that `ocpay bench drain` times the notifier on. No other
    /// notification is touched. Says how many are due.
    async fn preload_due_notifications(
        &self,
        owner: &ClientId,
        prefix: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError>;
}
