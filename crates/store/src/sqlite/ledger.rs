//! The ledger in the main file: payers, postings and their entries. Rows are only added;
//! balances are sums of entries.

use std::collections::BTreeMap;

use ocpay_core::Timestamp;
use ocpay_core::ids::PaymentId;
use ocpay_core::ledger::{self, Account, AccountOwner, Posting, PostingKind};
use ocpay_core::money::{Currency, Money};
use ocpay_core::payer::{Payer, PayerId};
use rusqlite::{Connection, params};

use super::rows::{self, millis};
use crate::{LedgerCheck, StoreError};

pub(super) fn create_payer(connection: &Connection, payer: &Payer) -> Result<(), StoreError> {
    let inserted = connection
        .prepare_cached("INSERT INTO payer (payer_id, environment, currency, pin_hash, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![
            payer.id.as_str(),
            payer.environment.as_str(),
            payer.currency.code(),
            payer.pin_hash,
            millis(payer.created_at)
        ]);
    match inserted {
        Err(error) if super::is_unique_violation(&error) => Err(StoreError::Conflict("payer")),
        other => other.map(|_| ()).map_err(StoreError::from),
    }
}

pub(super) fn find_payer(connection: &Connection, payer: &PayerId) -> Result<Option<Payer>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT payer_id, environment, currency, pin_hash, pin_failures, locked_until_ms, created_at_ms \
         FROM payer WHERE payer_id = ?1",
    )?;
    let mut rows = statement.query(params![payer.as_str()])?;
    rows.next()?.map(rows::payer).transpose()
}

/// Counts a wrong PIN; the `failures_max`-th in a row locks the payer until `locked_until`.
pub(super) fn pin_attempt(
    connection: &Connection,
    payer: &PayerId,
    failures_max: u32,
    locked_until: Timestamp,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let started = connection
        // A lockout that has ended starts the count afresh: the first attempt after it is the
        // first of a new run, not one more of the run that locked.
        .prepare_cached(
            "UPDATE payer SET \
             pin_failures = CASE WHEN locked_until_ms IS NULL THEN pin_failures + 1 ELSE 1 END, \
             locked_until_ms = CASE \
               WHEN (CASE WHEN locked_until_ms IS NULL THEN pin_failures + 1 ELSE 1 END) >= ?2 THEN ?3 \
               ELSE NULL END \
             WHERE payer_id = ?1 AND (locked_until_ms IS NULL OR locked_until_ms <= ?4)",
        )?
        .execute(params![payer.as_str(), i64::from(failures_max), millis(locked_until), millis(now)])?;
    Ok(started == 1)
}

/// Clears the count of wrong PINs after a right one.
pub(super) fn pin_succeeded(connection: &Connection, payer: &PayerId) -> Result<(), StoreError> {
    connection
        .prepare_cached("UPDATE payer SET pin_failures = 0, locked_until_ms = NULL WHERE payer_id = ?1 AND pin_failures > 0")?
        .execute(params![payer.as_str()])?;
    Ok(())
}

pub(super) fn top_up(
    connection: &Connection,
    payer: &PayerId,
    amount: Money,
    now: Timestamp,
) -> Result<Money, StoreError> {
    let Some(found) = find_payer(connection, payer)? else {
        return Err(StoreError::NotFound("payer"));
    };
    write(connection, &ledger::top_up(payer, found.environment, amount)?, None, now)?;
    balance(connection, &Account::new(AccountOwner::Wallet(payer.clone()), amount.currency()))
}

/// Appends a posting and its entries.
pub(super) fn write(
    connection: &Connection,
    posting: &Posting,
    payment_id: Option<&PaymentId>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let posting_id = insert_posting(connection, posting.kind(), payment_id, now)?;
    for entry in posting.entries() {
        let (account, amount) = (entry.account.key(), entry.amount);
        insert_entry(connection, posting_id, &account, amount.currency().code(), amount.minor())?;
    }
    Ok(())
}

const WALLET_PREFIX: &str = "wallet:";

fn insert_posting(
    connection: &Connection,
    kind: PostingKind,
    payment_id: Option<&PaymentId>,
    now: Timestamp,
) -> Result<i64, StoreError> {
    connection
        .prepare_cached("INSERT INTO posting (kind, payment_id, created_at_ms) VALUES (?1, ?2, ?3)")?
        .execute(params![kind.as_str(), payment_id.map(PaymentId::as_str), millis(now)])?;
    Ok(connection.last_insert_rowid())
}

/// Appends one entry, keeping a wallet's balance beside it; a wallet that would go below zero
/// fails the write (and so the whole business step).
fn insert_entry(
    connection: &Connection,
    posting_id: i64,
    account: &str,
    currency: &str,
    minor: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO entry (posting_id, account, currency, amount_minor) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![posting_id, account, currency, minor])?;
    if account.starts_with(WALLET_PREFIX) {
        // Not an upsert: SQLite checks the inserted row (the bare amount, maybe negative)
        // against the CHECK before it sees the conflict.
        let updated = connection
            .prepare_cached(
                "UPDATE wallet_balance SET balance_minor = balance_minor + ?2 WHERE account = ?1",
            )?
            .execute(params![account, minor])?;
        if updated == 0 {
            connection
                .prepare_cached(
                    "INSERT INTO wallet_balance (account, currency, balance_minor) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![account, currency, minor])?;
        }
    }
    Ok(())
}

/// Posts a payment's own posting again, negated.
pub(super) fn reverse_payment(
    connection: &Connection,
    payment_id: &PaymentId,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT e.account, e.currency, e.amount_minor FROM entry e JOIN posting p ON p.posting_id = e.posting_id \
         WHERE p.payment_id = ?1 AND p.kind = 'PAYMENT'",
    )?;
    let mut rows = statement.query(params![payment_id.as_str()])?;
    let mut entries = Vec::new();
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let (account, currency, amount): (String, String, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        *sums.entry(currency.clone()).or_default() += amount;
        entries.push((account, currency, -amount));
    }
    // A stored posting always balances; check anyway before money moves on its strength.
    if entries.len() < 2 || sums.values().any(|sum| *sum != 0) {
        return Err(StoreError::Corrupt(format!("the posting of payment {payment_id} does not balance")));
    }
    let posting_id = insert_posting(connection, PostingKind::Reversal, Some(payment_id), now)?;
    for (account, currency, amount) in entries {
        insert_entry(connection, posting_id, &account, &currency, amount)?;
    }
    Ok(())
}

/// A wallet's kept balance, or any other account's sum of entries.
pub(super) fn balance(connection: &Connection, account: &Account) -> Result<Money, StoreError> {
    // A wallet's balance is kept; any other account's is the sum of its entries.
    let sql = if matches!(account.owner, AccountOwner::Wallet(_)) {
        "SELECT COALESCE(SUM(balance_minor), 0) FROM wallet_balance WHERE account = ?1"
    } else {
        "SELECT COALESCE(SUM(amount_minor), 0) FROM entry WHERE account = ?1"
    };
    let minor: i64 = connection.prepare_cached(sql)?.query_row(params![account.key()], |row| row.get(0))?;
    Ok(Money::new(minor, account.currency))
}

/// Balances of every account of `owner`: keys share the prefix before the currency.
pub(super) fn balances(connection: &Connection, owner: &AccountOwner) -> Result<Vec<Money>, StoreError> {
    // Any currency will do to build the key; its last three letters are cut off.
    let sample = Account::new(
        owner.clone(),
        Currency::parse("USD").map_err(|error| StoreError::Corrupt(error.to_string()))?,
    )
    .key();
    let prefix = &sample[..sample.len() - 3];
    // Every key with the prefix sorts between the prefix and the prefix with its last byte (':')
    // raised by one; a range keeps LIKE's wildcards out of payer ids. The length keeps out the
    // accounts of an owner whose id merely starts with this one's and a ':'.
    let upper = format!("{};", &prefix[..prefix.len() - 1]);
    let mut statement = connection.prepare_cached(
        "SELECT currency, SUM(amount_minor) FROM entry WHERE account >= ?1 AND account < ?2 AND length(account) = ?3 \
         GROUP BY currency ORDER BY currency",
    )?;
    let mut rows =
        statement.query(params![prefix, upper, i64::try_from(sample.len()).unwrap_or(i64::MAX)])?;
    let mut balances = Vec::new();
    while let Some(row) = rows.next()? {
        balances.push(rows::money_of(row.get(0)?, row.get(1)?)?);
    }
    Ok(balances)
}

pub(super) fn check(connection: &Connection) -> Result<LedgerCheck, StoreError> {
    let postings: i64 = connection.query_row("SELECT COUNT(*) FROM posting", [], |row| row.get(0))?;
    let mut unbalanced = Vec::new();
    let mut statement = connection.prepare_cached(
        "SELECT posting_id FROM entry GROUP BY posting_id, currency HAVING SUM(amount_minor) <> 0 \
         UNION SELECT p.posting_id FROM posting p LEFT JOIN entry e ON e.posting_id = p.posting_id \
         GROUP BY p.posting_id HAVING COUNT(e.posting_id) < 2",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        unbalanced.push(row.get(0)?);
    }
    let mut negative_wallets = Vec::new();
    let mut statement = connection.prepare_cached(
        "SELECT account, currency, SUM(amount_minor) FROM entry WHERE account >= 'wallet:' AND account < 'wallet;' \
         GROUP BY account HAVING SUM(amount_minor) < 0",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        negative_wallets.push((row.get(0)?, rows::money_of(row.get(1)?, row.get(2)?)?));
    }
    let mut totals = Vec::new();
    let mut statement = connection.prepare_cached(
        "SELECT currency, SUM(amount_minor) FROM entry GROUP BY currency ORDER BY currency",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        totals.push(rows::money_of(row.get(0)?, row.get(1)?)?);
    }
    let mut balance_mismatches = Vec::new();
    let mut statement = connection.prepare_cached(
        "SELECT w.account FROM wallet_balance w LEFT JOIN (SELECT account, SUM(amount_minor) AS total FROM entry \
         WHERE account >= 'wallet:' AND account < 'wallet;' GROUP BY account) e ON e.account = w.account \
         WHERE w.balance_minor <> COALESCE(e.total, 0) \
         UNION SELECT account FROM entry WHERE account >= 'wallet:' AND account < 'wallet;' \
         AND account NOT IN (SELECT account FROM wallet_balance)",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        balance_mismatches.push(row.get(0)?);
    }
    Ok(LedgerCheck {
        postings: u64::try_from(postings).unwrap_or(0),
        unbalanced_postings: unbalanced,
        negative_wallets,
        balance_mismatches,
        totals,
    })
}
