//! The API log.

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;

use crate::StoreError;
use crate::api_log::{ApiLogEntry, ApiLogFilter};

/// The API log: what reached the gateway under each participant's client id.
#[async_trait]
pub trait ApiLogStore: Send + Sync {
    /// Appends entries to the API log, in order, in one transaction, and then keeps at most
    /// `unverified_max` unverified entries of each participant named (its newest), so that
    /// requests nobody could sign cannot flood a participant's log.
    async fn record_api_log(&self, entries: &[ApiLogEntry], unverified_max: u32) -> Result<(), StoreError>;

    /// A page of a participant's API log, newest first: at most `limit` entries matching
    /// `filter`, with an id below `before_id` when one is given (the last id of the page before).
    async fn api_log(
        &self,
        client_id: &ClientId,
        filter: &ApiLogFilter,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ApiLogEntry>, StoreError>;

    /// A participant's entries after `after_id`, oldest first, at most `limit`: for following
    /// the log as it grows.
    async fn api_log_after(
        &self,
        client_id: &ClientId,
        filter: &ApiLogFilter,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<ApiLogEntry>, StoreError>;

    /// One entry of a participant's API log; another participant's is never found.
    async fn api_log_entry(&self, client_id: &ClientId, id: i64) -> Result<Option<ApiLogEntry>, StoreError>;

    /// How many of a participant's entries received at or after `from` had each result code,
    /// per UTC day (the day number is `at_ms / 86_400_000`), by day then code.
    async fn api_results_by_day(
        &self,
        client_id: &ClientId,
        from: Timestamp,
    ) -> Result<Vec<(i64, String, u64)>, StoreError>;

    /// Deletes up to `limit` entries received before `older_than`, oldest first, and returns how
    /// many it deleted.
    async fn prune_api_log(&self, older_than: Timestamp, limit: u32) -> Result<u64, StoreError>;
}
