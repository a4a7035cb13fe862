//! The operator's console's reads across participants: payers with their wallets, an account's
//! entries, the ledger's balances by account, and the notifications not delivered (by kind, and
//! by the endpoint they fail at). Each runs on an index of `0016_console_reads.sql`.

use ocpay_core::ledger::{Account, PostingKind};
use ocpay_core::payer::PayerId;

use super::ledger::{joined, total_of};
use super::rows::{self, corrupt, millis};
use super::{Db, Engine, SqlStore, params};
use crate::console::{
    AccountBalance, EndpointCursor, FailingEndpoint, LedgerEntry, PayerWallets, Undelivered,
};
use crate::{ConsoleStore, DeliveryStatus, NotificationKind, StoreError};
use async_trait::async_trait;
use ocpay_core::Timestamp;

/// The upper bound of a key range: every text starting with `prefix` sorts below it (in byte
/// order, as both engines compare these columns), since its last character is raised by one.
fn after_prefix(prefix: &str) -> String {
    let mut upper = prefix.to_owned();
    match upper.pop() {
        Some(last) => {
            upper.push(char::from_u32(u32::from(last) + 1).unwrap_or(char::MAX));
            upper
        }
        None => char::MAX.to_string(),
    }
}

fn count(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(what, value))
}

/// Payers whose id starts with `prefix`, by id, after `after`, each with its wallets' kept
/// balances.
pub(super) fn payers_page(
    db: &mut dyn Db,
    prefix: &str,
    after: Option<&PayerId>,
    limit: u32,
) -> Result<Vec<PayerWallets>, StoreError> {
    let upper = after_prefix(prefix);
    let payers = db.query_all(
        "SELECT payer_id, environment, currency, pin_hash, pin_failures, locked_until_ms, created_at_ms \
         FROM payer WHERE payer_id >= ?1 AND payer_id > ?2 AND payer_id < ?3 ORDER BY payer_id LIMIT ?4",
        params![prefix, after.map_or("", PayerId::as_str), upper, i64::from(limit)],
        rows::payer,
    )?;
    let mut found = Vec::with_capacity(payers.len());
    for payer in payers {
        // A wallet's key is `wallet:<payer>:<currency>`: three letters after the payer's prefix.
        let key_prefix = format!("wallet:{}:", payer.id);
        let balances = db.query_all(
            "SELECT currency, balance_minor FROM wallet_balance WHERE account >= ?1 AND account < ?2 \
             AND length(account) = ?3 ORDER BY account",
            params![key_prefix, after_prefix(&key_prefix), i64::try_from(key_prefix.len() + 3).unwrap_or(0)],
            |row| rows::money_of(row.get("currency")?, row.get("balance_minor")?),
        )?;
        found.push(PayerWallets { payer, balances });
    }
    Ok(found)
}

/// An account's entries, newest posting first, with postings below `before`.
pub(super) fn account_entries(
    db: &mut dyn Db,
    account: &str,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<LedgerEntry>, StoreError> {
    db.query_all(
        "SELECT e.posting_id, e.currency, e.amount_minor, p.kind, p.payment_id, p.settlement_batch_id, \
         p.created_at_ms FROM entry e JOIN posting p ON p.posting_id = e.posting_id \
         WHERE e.account = ?1 AND e.posting_id < ?2 ORDER BY e.posting_id DESC LIMIT ?3",
        params![account, before.unwrap_or(i64::MAX), i64::from(limit)],
        |row| {
            let kind: String = row.get("kind")?;
            Ok(LedgerEntry {
                posting_id: row.get("posting_id")?,
                kind: PostingKind::parse(&kind).ok_or_else(|| corrupt("kind", kind))?,
                payment_id: row.get("payment_id")?,
                batch_id: row.get("settlement_batch_id")?,
                at: rows::time(row, "created_at_ms")?,
                amount: rows::money_of(row.get("currency")?, row.get("amount_minor")?)?,
            })
        },
    )
}

/// The balances of the accounts that are not payers' wallets, by key, after `after`: the
/// platform's (funding, exchange, payout, fees, tax) and the participants' (pending, settled).
/// The keys below the wallets' and those above them are read as two ranges of the index by
/// account, grouped in its order, so that a page never walks a wallet's entries.
pub(super) fn account_balances(
    db: &mut dyn Db,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<AccountBalance>, StoreError> {
    let after = after.unwrap_or("");
    let mut found = balances_between(db, after, WALLETS.0, limit)?;
    let left = limit.saturating_sub(u32::try_from(found.len()).unwrap_or(u32::MAX));
    if left > 0 {
        let from = if after < WALLETS.1 { WALLETS.1 } else { after };
        found.extend(balances_between(db, from, &after_prefix(""), left)?);
    }
    Ok(found)
}

/// The range of the wallets' keys: from `wallet:` to just below `wallet;`.
const WALLETS: (&str, &str) = ("wallet:", "wallet;");

/// The balances of the accounts whose keys are after `after` and below `below`, at most `limit`.
fn balances_between(
    db: &mut dyn Db,
    after: &str,
    below: &str,
    limit: u32,
) -> Result<Vec<AccountBalance>, StoreError> {
    let rows = db.query_all(
        "SELECT account, MIN(currency) AS currency, \
         CAST(COALESCE(SUM(amount_minor / 1000000000), 0) AS BIGINT) AS high, \
         CAST(COALESCE(SUM(amount_minor % 1000000000), 0) AS BIGINT) AS low FROM entry \
         WHERE account > ?1 AND account < ?2 GROUP BY account ORDER BY account LIMIT ?3",
        params![after, below, i64::from(limit)],
        |row| {
            Ok((
                row.get::<_, String>("account")?,
                row.get::<_, String>("currency")?,
                joined(row.get("high")?, row.get("low")?),
            ))
        },
    )?;
    rows.into_iter()
        .map(|(account, currency, total)| {
            let balance = total_of(&account, currency, total)?;
            Ok(AccountBalance { account, balance })
        })
        .collect()
}

/// The notifications not delivered, by status and kind, with the oldest one's creation.
pub(super) fn undelivered(db: &mut dyn Db) -> Result<Vec<Undelivered>, StoreError> {
    db.query_all(
        "SELECT status, kind, CAST(COUNT(*) AS BIGINT) AS n, MIN(created_at_ms) AS oldest FROM notification \
         WHERE status <> 'DELIVERED' GROUP BY status, kind ORDER BY status, kind",
        &[],
        |row| {
            let (status, kind): (String, String) = (row.get("status")?, row.get("kind")?);
            Ok(Undelivered {
                status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status", status))?,
                kind: NotificationKind::parse(&kind).ok_or_else(|| corrupt("kind", kind))?,
                count: count(row.get("n")?, "a count of notifications")?,
                oldest: rows::time(row, "oldest")?,
            })
        },
    )
}

/// The endpoints (recipient and URL) with notifications tried and not delivered, by recipient
/// and URL after `after`, each with the last attempt at the newest of them.
pub(super) fn failing_endpoints(
    db: &mut dyn Db,
    after: Option<&EndpointCursor>,
    limit: u32,
) -> Result<Vec<FailingEndpoint>, StoreError> {
    let (recipient, url) = after.map_or(("", ""), |cursor| (cursor.recipient.as_str(), cursor.url.as_str()));
    let endpoints = db.query_all(
        "SELECT recipient_client_id, url, CAST(COUNT(*) AS BIGINT) AS undelivered, \
         CAST(SUM(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END) AS BIGINT) AS failed, \
         CAST(SUM(attempts) AS BIGINT) AS tries, MIN(created_at_ms) AS oldest FROM notification \
         WHERE status <> 'DELIVERED' AND attempts > 0 \
         AND (recipient_client_id > ?1 OR (recipient_client_id = ?1 AND url > ?2)) \
         GROUP BY recipient_client_id, url ORDER BY recipient_client_id, url LIMIT ?3",
        params![recipient, url, i64::from(limit)],
        |row| {
            Ok(FailingEndpoint {
                recipient: rows::client_id(row, "recipient_client_id")?,
                url: row.get("url")?,
                undelivered: count(row.get("undelivered")?, "a count of notifications")?,
                failed: count(row.get("failed")?, "a count of notifications")?,
                attempts: count(row.get("tries")?, "a count of attempts")?,
                oldest: rows::time(row, "oldest")?,
                last: None,
            })
        },
    )?;
    let mut found = Vec::with_capacity(endpoints.len());
    for mut endpoint in endpoints {
        endpoint.last = db.query_opt(
            "SELECT n.subject_id, a.notification_id, a.attempt, a.scheduled_at_ms, a.started_at_ms, \
             a.duration_ms, a.http_status, a.outcome, a.error, a.manual, a.answer_excerpt \
             FROM notification n JOIN delivery_attempt a \
             ON a.notification_id = n.notification_id AND a.attempt = n.attempts \
             WHERE n.status <> 'DELIVERED' AND n.attempts > 0 AND n.recipient_client_id = ?1 AND n.url = ?2 \
             ORDER BY n.created_at_ms DESC LIMIT 1",
            params![endpoint.recipient.as_str(), endpoint.url],
            |row| Ok((row.get("subject_id")?, rows::attempt(row)?)),
        )?;
        found.push(endpoint);
    }
    Ok(found)
}

/// How many API log entries received at or after `from` had each result code, per UTC day, for
/// the whole platform (the participant's read is `api_log::results_by_day`).
pub(super) fn platform_results_by_day(
    db: &mut dyn Db,
    from: ocpay_core::Timestamp,
) -> Result<Vec<(i64, String, u64)>, StoreError> {
    db.query_all(
        "SELECT day_number, result_code, CAST(COUNT(*) AS BIGINT) AS entries FROM ( \
           SELECT CAST(at_ms / ?2 AS BIGINT) AS day_number, result_code FROM api_log \
           WHERE at_ms >= ?1) AS received \
         GROUP BY day_number, result_code ORDER BY day_number, result_code",
        params![millis(from), super::activity::DAY_MS],
        |row| {
            Ok((
                row.get("day_number")?,
                row.get("result_code")?,
                count(row.get("entries")?, "a count of API log entries")?,
            ))
        },
    )
}

#[async_trait]
impl<E: Engine> ConsoleStore for SqlStore<E> {
    async fn platform_api_results_by_day(
        &self,
        from: Timestamp,
    ) -> Result<Vec<(i64, String, u64)>, StoreError> {
        self.engine.read(|db| platform_results_by_day(db, from)).await
    }

    async fn payers_page(
        &self,
        id_prefix: &str,
        after: Option<&PayerId>,
        limit: u32,
    ) -> Result<Vec<crate::console::PayerWallets>, StoreError> {
        self.engine.read(|db| payers_page(db, id_prefix, after, limit)).await
    }

    async fn account_entries(
        &self,
        account: &Account,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::console::LedgerEntry>, StoreError> {
        let key = account.key();
        self.engine.read(|db| account_entries(db, &key, before, limit)).await
    }

    async fn account_balances(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::console::AccountBalance>, StoreError> {
        self.engine.read(|db| account_balances(db, after, limit)).await
    }

    async fn undelivered_notifications(&self) -> Result<Vec<crate::console::Undelivered>, StoreError> {
        self.engine.read(undelivered).await
    }

    async fn failing_endpoints(
        &self,
        after: Option<&crate::console::EndpointCursor>,
        limit: u32,
    ) -> Result<Vec<crate::console::FailingEndpoint>, StoreError> {
        self.engine.read(|db| failing_endpoints(db, after, limit)).await
    }
}
