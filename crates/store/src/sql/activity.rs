//! The developer center's daily figures of one participant: successful payments and refunds
//! per day and currency, and its notifications per day by status. Each is one grouped read over
//! an index by participant and time (`0011_portal_reads.sql`); amounts are summed in two parts
//! that cannot overflow, as the ledger's are.

use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;

use super::ledger::{joined, total_of};
use super::rows::millis;
use super::{Db, params};
use crate::StoreError;
use crate::portal::{DailyActivity, DayDeliveries, DayTotal};

const DAY_MS: i64 = 86_400_000;

fn totals(
    db: &mut dyn Db,
    sql: &'static str,
    client_id: &ClientId,
    from: Timestamp,
) -> Result<Vec<DayTotal>, StoreError> {
    let rows = db.query_all(sql, params![client_id.as_str(), millis(from), DAY_MS], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, i64>(4)?,
        ))
    })?;
    rows.into_iter()
        .map(|(day, currency, count, high, low)| {
            Ok(DayTotal {
                day,
                count: u64::try_from(count).unwrap_or_default(),
                amount: total_of("a day's payments", currency, joined(high, low))?,
            })
        })
        .collect()
}

pub(super) fn daily(
    db: &mut dyn Db,
    client_id: &ClientId,
    from: Timestamp,
) -> Result<DailyActivity, StoreError> {
    let payments = totals(
        db,
        "SELECT created_at_ms / ?3 AS day, currency, COUNT(*), \
         CAST(COALESCE(SUM(amount_minor / 1000000000), 0) AS BIGINT), \
         CAST(COALESCE(SUM(amount_minor % 1000000000), 0) AS BIGINT) \
         FROM payment WHERE owner_client_id = ?1 AND created_at_ms >= ?2 AND status = 'SUCCESS' \
         GROUP BY created_at_ms / ?3, currency ORDER BY day, currency",
        client_id,
        from,
    )?;
    let refunds = totals(
        db,
        "SELECT created_at_ms / ?3 AS day, currency, COUNT(*), \
         CAST(COALESCE(SUM(amount_minor / 1000000000), 0) AS BIGINT), \
         CAST(COALESCE(SUM(amount_minor % 1000000000), 0) AS BIGINT) \
         FROM refund WHERE owner_client_id = ?1 AND created_at_ms >= ?2 AND status = 'SUCCESS' \
         GROUP BY created_at_ms / ?3, currency ORDER BY day, currency",
        client_id,
        from,
    )?;
    let rows = db.query_all(
        "SELECT created_at_ms / ?3 AS day, status, COUNT(*) FROM notification \
         WHERE recipient_client_id = ?1 AND created_at_ms >= ?2 GROUP BY created_at_ms / ?3, status ORDER BY day",
        params![client_id.as_str(), millis(from), DAY_MS],
        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?)),
    )?;
    let mut notifications: Vec<DayDeliveries> = Vec::new();
    for (day, status, count) in rows {
        if notifications.last().is_none_or(|last| last.day != day) {
            notifications.push(DayDeliveries { day, ..Default::default() });
        }
        let entry = notifications.last_mut().expect("pushed above");
        let count = u64::try_from(count).unwrap_or_default();
        match status.as_str() {
            "DELIVERED" => entry.delivered += count,
            "FAILED" => entry.failed += count,
            _ => entry.pending += count,
        }
    }
    Ok(DailyActivity { payments, refunds, notifications })
}
