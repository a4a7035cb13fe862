//! The operator's console's reads across participants.

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ledger::Account;
use ocpay_core::payer::PayerId;

use crate::{StoreError, console};

/// The operator's console: reads across participants of money and notifications.
#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// How many API log entries of every participant received at or after `from` had each
    /// result code, per UTC day, by day then code (as [`ApiLogStore::api_results_by_day`]).
    ///
    /// [`ApiLogStore::api_results_by_day`]: crate::ApiLogStore::api_results_by_day
    async fn platform_api_results_by_day(
        &self,
        from: Timestamp,
    ) -> Result<Vec<(i64, String, u64)>, StoreError>;

    /// A page of the payers whose id starts with `id_prefix` (every payer for `""`), by id,
    /// after `after`, each with its wallets' kept balances.
    async fn payers_page(
        &self,
        id_prefix: &str,
        after: Option<&PayerId>,
        limit: u32,
    ) -> Result<Vec<console::PayerWallets>, StoreError>;

    /// A page of an account's entries, newest posting first, with postings below `before`.
    async fn account_entries(
        &self,
        account: &Account,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<console::LedgerEntry>, StoreError>;

    /// A page of the balances of every account but the payers' wallets, by key, after `after`
    /// (a key). Each is the sum of its entries, read through the index by account.
    async fn account_balances(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<console::AccountBalance>, StoreError>;

    /// The notifications not delivered (pending or failed), counted by status and kind, each
    /// with its oldest one's creation.
    async fn undelivered_notifications(&self) -> Result<Vec<console::Undelivered>, StoreError>;

    /// A page of the endpoints (recipient and URL) that have notifications tried and not
    /// delivered, by recipient and URL, after `after`, each with the last attempt at the newest
    /// of them.
    async fn failing_endpoints(
        &self,
        after: Option<&console::EndpointCursor>,
        limit: u32,
    ) -> Result<Vec<console::FailingEndpoint>, StoreError>;
}
