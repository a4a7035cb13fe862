//! The daily figures of one participant (the developer center's) or of the whole platform (the
//! operator's console's): successful payments and refunds per day and currency, and
//! notifications per day by outcome.
//!
//! Days are UTC days (`created_at_ms / 86_400_000`). A day that can no longer change (it ended
//! before the caller's `final_before`) is computed from the rows once and kept in
//! `activity_day`; later reads take it from there, so a month of a large merchant costs 30 kept
//! rows a figure plus the live days. The grouped reads go over per-participant indexes that hold
//! every column they need (`0011_portal_reads.sql`); amounts are summed in two parts that cannot
//! overflow, as the ledger's are. The platform's figures are the same reads over indexes by
//! time alone (`0016_console_reads.sql`), kept under the client id `""`, which no participant has.

use ocpay_core::ids::ClientId;

use super::ledger::{joined, total_of};
use super::{Db, Engine, Isolation, SqlStore, params};
use crate::portal::{DailyActivity, DayDeliveries, DayTotal};
use crate::{ActivityStore, StoreError};
use async_trait::async_trait;
use ocpay_core::Timestamp;

pub(super) const DAY_MS: i64 = 86_400_000;

/// Whose figures: one participant's, or every participant's together.
#[derive(Debug, Clone)]
pub(super) enum Scope {
    Participant(ClientId),
    Platform,
}

impl Scope {
    /// The client id the scope's kept days are filed under.
    fn key(&self) -> &str {
        match self {
            Scope::Participant(client_id) => client_id.as_str(),
            Scope::Platform => "",
        }
    }
}

/// The three reads of a day range's figures, for one scope: payments, refunds, notifications.
struct Reads {
    payments: &'static str,
    refunds: &'static str,
    notifications: &'static str,
}

/// The count and sum of a table's successful rows per day and currency, of the rows `$whose`
/// names by `?1`; `?2`..`?3` is the range in milliseconds, `?4` a day's.
macro_rules! success_totals {
    ($table:literal, $whose:literal) => {
        concat!(
            "SELECT created_at_ms / ?4 AS day, currency, COUNT(*), \
             CAST(COALESCE(SUM(amount_minor / 1000000000), 0) AS BIGINT), \
             CAST(COALESCE(SUM(amount_minor % 1000000000), 0) AS BIGINT) FROM ",
            $table,
            " WHERE ",
            $whose,
            " AND created_at_ms >= ?2 AND created_at_ms < ?3 AND status = 'SUCCESS' \
             GROUP BY created_at_ms / ?4, currency ORDER BY day, currency"
        )
    };
}

/// The reads of a scope, written once: `$owner` and `$recipient` say whose rows they take.
macro_rules! reads {
    ($owner:literal, $recipient:literal) => {
        Reads {
            payments: success_totals!("payment", $owner),
            refunds: success_totals!("refund", $owner),
            notifications: concat!(
                "SELECT created_at_ms / ?4 AS day, status, COUNT(*) FROM notification WHERE ",
                $recipient,
                " AND created_at_ms >= ?2 AND created_at_ms < ?3 GROUP BY created_at_ms / ?4, status ORDER BY day"
            ),
        }
    };
}

/// A participant's rows: over the indexes that start with its client id.
const PARTICIPANT_READS: Reads = reads!("owner_client_id = ?1", "recipient_client_id = ?1");

/// Every participant's: `?1` (always `""`) only keeps the parameters numbered alike, and tells
/// PostgreSQL its type; the reads go over the indexes by time.
const PLATFORM_READS: Reads = reads!("CAST(?1 AS TEXT) = ''", "CAST(?1 AS TEXT) = ''");

fn totals(
    db: &mut dyn Db,
    sql: &'static str,
    scope: &Scope,
    days: (i64, i64),
) -> Result<Vec<DayTotal>, StoreError> {
    let rows = db.query_all(sql, params![scope.key(), days.0 * DAY_MS, days.1 * DAY_MS, DAY_MS], |row| {
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

/// The figures of the days `[first, end)`, computed from the rows.
pub(super) fn compute(db: &mut dyn Db, scope: &Scope, days: (i64, i64)) -> Result<DailyActivity, StoreError> {
    let reads = match scope {
        Scope::Participant(_) => &PARTICIPANT_READS,
        Scope::Platform => &PLATFORM_READS,
    };
    let payments = totals(db, reads.payments, scope, days)?;
    let refunds = totals(db, reads.refunds, scope, days)?;
    let rows = db.query_all(
        reads.notifications,
        params![scope.key(), days.0 * DAY_MS, days.1 * DAY_MS, DAY_MS],
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

/// The kept figures of the days `[first, end)`, and the first of those days that was never
/// computed (`None` when every one was).
pub(super) fn kept(
    db: &mut dyn Db,
    scope: &Scope,
    days: (i64, i64),
) -> Result<(DailyActivity, Option<i64>), StoreError> {
    let rows = db.query_all(
        "SELECT day, figure, currency, count, amount_minor, delivered, failed, pending FROM activity_day \
         WHERE client_id = ?1 AND day >= ?2 AND day < ?3 ORDER BY day, figure, currency",
        params![scope.key(), days.0, days.1],
        |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                [
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, i64>(6)?,
                    row.get::<_, i64>(7)?,
                ],
            ))
        },
    )?;
    let mut activity = DailyActivity::default();
    let mut computed = Vec::new();
    let count = |value: i64| u64::try_from(value).unwrap_or_default();
    for (day, figure, currency, [n, amount, delivered, failed, pending]) in rows {
        match figure.as_str() {
            "DAY" => computed.push(day),
            "PAYMENT" | "REFUND" => {
                let total = DayTotal {
                    day,
                    count: count(n),
                    amount: total_of("a kept day", currency, i128::from(amount))?,
                };
                if figure == "PAYMENT" { activity.payments.push(total) } else { activity.refunds.push(total) }
            }
            _ => activity.notifications.push(DayDeliveries {
                day,
                delivered: count(delivered),
                failed: count(failed),
                pending: count(pending),
            }),
        }
    }
    let missing = (days.0..days.1).find(|day| computed.binary_search(day).is_err());
    Ok((activity, missing))
}

/// Computes the days `[first, end)` (which can no longer change) and keeps them.
pub(super) fn keep(db: &mut dyn Db, scope: &Scope, days: (i64, i64)) -> Result<DailyActivity, StoreError> {
    let activity = compute(db, scope, days)?;
    let insert = "INSERT INTO activity_day (client_id, day, figure, currency, count, amount_minor, delivered, failed, \
                  pending) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING";
    let id = scope.key();
    for day in days.0..days.1 {
        db.execute(insert, params![id, day, "DAY", "", 0_i64, 0_i64, 0_i64, 0_i64, 0_i64])?;
    }
    for (figure, totals) in [("PAYMENT", &activity.payments), ("REFUND", &activity.refunds)] {
        for total in totals {
            let count = i64::try_from(total.count).unwrap_or(i64::MAX);
            let currency = total.amount.currency().code();
            db.execute(
                insert,
                params![id, total.day, figure, currency, count, total.amount.minor(), 0_i64, 0_i64, 0_i64],
            )?;
        }
    }
    for day in &activity.notifications {
        let as_int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        db.execute(
            insert,
            params![
                id,
                day.day,
                "NOTIFICATION",
                "",
                0_i64,
                0_i64,
                as_int(day.delivered),
                as_int(day.failed),
                as_int(day.pending)
            ],
        )?;
    }
    Ok(activity)
}

/// Joins figures of consecutive day ranges, in day order.
pub(super) fn join(parts: impl IntoIterator<Item = DailyActivity>) -> DailyActivity {
    let mut all = DailyActivity::default();
    for part in parts {
        all.payments.extend(part.payments);
        all.refunds.extend(part.refunds);
        all.notifications.extend(part.notifications);
    }
    all.payments.sort_by_key(|total| total.day);
    all.refunds.sort_by_key(|total| total.day);
    all.notifications.sort_by_key(|day| day.day);
    all
}

impl<E: Engine> SqlStore<E> {
    /// The daily figures of a scope from the day of `from` on: the days that ended before
    /// `final_before` from kept rows (computed and kept first when missing), the rest computed.
    async fn activity(
        &self,
        scope: Scope,
        from: Timestamp,
        final_before: Timestamp,
    ) -> Result<crate::DailyActivity, StoreError> {
        let first = from.as_millisecond().div_euclid(DAY_MS);
        let final_end = final_before.as_millisecond().div_euclid(DAY_MS).max(first);
        let (mut kept, missing) = self.engine.read(|db| kept(db, &scope, (first, final_end))).await?;
        let computed = match missing {
            None => crate::DailyActivity::default(),
            Some(day) => {
                // Days from the first one never computed are computed (again) and kept.
                kept.payments.retain(|total| total.day < day);
                kept.refunds.retain(|total| total.day < day);
                kept.notifications.retain(|deliveries| deliveries.day < day);
                let scope = scope.clone();
                self.engine
                    .write(Isolation::Serializable, move |db| keep(db, &scope, (day, final_end)))
                    .await?
            }
        };
        let live = self.engine.read(|db| compute(db, &scope, (final_end, i64::MAX / DAY_MS))).await?;
        Ok(join([kept, computed, live]))
    }
}

#[async_trait]
impl<E: Engine> ActivityStore for SqlStore<E> {
    async fn daily_activity(
        &self,
        client_id: &ClientId,
        from: Timestamp,
        final_before: Timestamp,
    ) -> Result<crate::DailyActivity, StoreError> {
        self.activity(Scope::Participant(client_id.clone()), from, final_before).await
    }

    async fn platform_activity(
        &self,
        from: Timestamp,
        final_before: Timestamp,
    ) -> Result<crate::DailyActivity, StoreError> {
        self.activity(Scope::Platform, from, final_before).await
    }
}
