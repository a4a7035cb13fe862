//! Following one's own API log: the entries after a cursor, or the newest ones, oldest first.

use ocpay_core::ids::ClientId;
use ocpay_store::{ApiLogEntry, ApiLogFilter};

use super::{Context, ServiceError};

/// At most `limit` of `client_id`'s entries matching `filter`, oldest first: those after
/// `after_id`, or without one the newest (so that following the log starts at its end).
pub(crate) async fn follow(
    cx: &Context,
    client_id: &ClientId,
    filter: &ApiLogFilter,
    after_id: Option<i64>,
    limit: u32,
) -> Result<Vec<ApiLogEntry>, ServiceError> {
    Ok(match after_id {
        Some(after_id) => cx.store.api_log_after(client_id, filter, after_id, limit).await?,
        None => {
            let mut newest = cx.store.api_log(client_id, filter, None, limit).await?;
            newest.reverse();
            newest
        }
    })
}
