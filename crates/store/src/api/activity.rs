//! Daily figures.

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;

use crate::{StoreError, portal};

/// Daily figures of one participant (the developer center's charts) or of the whole platform (the console's).
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// A participant's successful payments and refunds per UTC day and currency, and its
    /// notifications per day by outcome, from the day of `from` on (the developer center's
    /// charts). Days that ended before `final_before` can no longer change: they are computed
    /// once and kept, and later reads take them as kept.
    async fn daily_activity(
        &self,
        client_id: &ClientId,
        from: Timestamp,
        final_before: Timestamp,
    ) -> Result<portal::DailyActivity, StoreError>;

    /// Every participant's successful payments and refunds per UTC day and currency, and every
    /// notification per day by outcome, as [`ActivityStore::daily_activity`] reads one participant's
    /// (and keeps the days that can no longer change the same way).
    async fn platform_activity(
        &self,
        from: Timestamp,
        final_before: Timestamp,
    ) -> Result<portal::DailyActivity, StoreError>;
}
