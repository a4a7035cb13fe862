//! The ledger in the main file: payers, postings and their entries. Rows are only added;
//! balances are sums of entries.

use std::collections::BTreeMap;

use super::{Db, params};
use ocpay_core::Timestamp;
use ocpay_core::ids::PaymentId;
use ocpay_core::ledger::{self, Account, AccountOwner, Posting, PostingKind};
use ocpay_core::money::{Currency, Money};
use ocpay_core::payer::{Payer, PayerId};

use super::rows::{self, millis};
use crate::{LedgerCheck, StoreError};

pub(super) fn create_payer(db: &mut dyn Db, payer: &Payer) -> Result<(), StoreError> {
    let inserted = db.execute(
        "INSERT INTO payer (payer_id, environment, currency, pin_hash, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            payer.id.as_str(),
            payer.environment.as_str(),
            payer.currency.code(),
            payer.pin_hash,
            millis(payer.created_at)
        ],
    );
    match inserted {
        Err(StoreError::Conflict(_)) => return Err(StoreError::Conflict("payer")),
        other => other?,
    };
    // The wallet's kept balance exists from the start, so that paying only updates it: a
    // first payment that also inserted it would touch the index every concurrent payment reads.
    let wallet = Account::new(AccountOwner::Wallet(payer.id.clone()), payer.currency);
    db.execute(
        "INSERT INTO wallet_balance (account, currency, balance_minor) VALUES (?1, ?2, 0)",
        params![wallet.key(), payer.currency.code()],
    )?;
    Ok(())
}

pub(super) fn find_payer(db: &mut dyn Db, payer: &PayerId) -> Result<Option<Payer>, StoreError> {
    db.query_opt(
        "SELECT payer_id, environment, currency, pin_hash, pin_failures, locked_until_ms, created_at_ms \
         FROM payer WHERE payer_id = ?1",
        params![payer.as_str()],
        rows::payer,
    )
}

/// Counts a wrong PIN; the `failures_max`-th in a row locks the payer until `locked_until`.
pub(super) fn pin_attempt(
    db: &mut dyn Db,
    payer: &PayerId,
    failures_max: u32,
    locked_until: Timestamp,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let started = db
        // A lockout that has ended starts the count afresh: the first attempt after it is the
        // first of a new run, not one more of the run that locked.
        .execute(
            "UPDATE payer SET \
             pin_failures = CASE WHEN locked_until_ms IS NULL THEN pin_failures + 1 ELSE 1 END, \
             locked_until_ms = CASE \
               WHEN (CASE WHEN locked_until_ms IS NULL THEN pin_failures + 1 ELSE 1 END) >= ?2 THEN CAST(?3 AS BIGINT) \
               ELSE NULL END \
             WHERE payer_id = ?1 AND (locked_until_ms IS NULL OR locked_until_ms <= ?4)",
            params![payer.as_str(), i64::from(failures_max), millis(locked_until), millis(now)],
        )?;
    Ok(started == 1)
}

/// Clears the count of wrong PINs after a right one.
pub(super) fn pin_succeeded(db: &mut dyn Db, payer: &PayerId) -> Result<(), StoreError> {
    db.execute(
        "UPDATE payer SET pin_failures = 0, locked_until_ms = NULL WHERE payer_id = ?1 AND pin_failures > 0",
        params![payer.as_str()],
    )?;
    Ok(())
}

pub(super) fn top_up(
    db: &mut dyn Db,
    payer: &PayerId,
    amount: Money,
    now: Timestamp,
) -> Result<Money, StoreError> {
    let Some(found) = find_payer(db, payer)? else {
        return Err(StoreError::NotFound("payer"));
    };
    write(db, &ledger::top_up(payer, found.environment, amount)?, None, now)?;
    balance(db, &Account::new(AccountOwner::Wallet(payer.clone()), amount.currency()))
}

/// Appends a posting and its entries.
pub(super) fn write(
    db: &mut dyn Db,
    posting: &Posting,
    payment_id: Option<&PaymentId>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let posting_id = insert_posting(db, posting.kind(), payment_id, now)?;
    for entry in posting.entries() {
        let (account, amount) = (entry.account.key(), entry.amount);
        insert_entry(db, posting_id, &account, amount.currency().code(), amount.minor())?;
    }
    Ok(())
}

const WALLET_PREFIX: &str = "wallet:";

fn insert_posting(
    db: &mut dyn Db,
    kind: PostingKind,
    payment_id: Option<&PaymentId>,
    now: Timestamp,
) -> Result<i64, StoreError> {
    db.query_one(
        "INSERT INTO posting (kind, payment_id, created_at_ms) VALUES (?1, ?2, ?3) RETURNING posting_id",
        params![kind.as_str(), payment_id.map(PaymentId::as_str), millis(now)],
        |row| row.get(0),
    )
}

/// Appends one entry, keeping a wallet's balance beside it; a wallet that would go below zero
/// fails the write (and so the whole business step).
fn insert_entry(
    db: &mut dyn Db,
    posting_id: i64,
    account: &str,
    currency: &str,
    minor: i64,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO entry (posting_id, account, currency, amount_minor) VALUES (?1, ?2, ?3, ?4)",
        params![posting_id, account, currency, minor],
    )?;
    if account.starts_with(WALLET_PREFIX) {
        // Not an upsert: SQLite checks the inserted row (the bare amount, maybe negative)
        // against the CHECK before it sees the conflict.
        let updated = db.execute(
            "UPDATE wallet_balance SET balance_minor = balance_minor + ?2 WHERE account = ?1",
            params![account, minor],
        )?;
        if updated == 0 {
            db.execute(
                "INSERT INTO wallet_balance (account, currency, balance_minor) VALUES (?1, ?2, ?3)",
                params![account, currency, minor],
            )?;
        }
    }
    Ok(())
}

/// Posts a payment's own posting again, negated.
pub(super) fn reverse_payment(
    db: &mut dyn Db,
    payment_id: &PaymentId,
    now: Timestamp,
) -> Result<(), StoreError> {
    let posted = db.query_all(
        "SELECT e.account, e.currency, e.amount_minor FROM entry e JOIN posting p ON p.posting_id = e.posting_id \
         WHERE p.payment_id = ?1 AND p.kind = 'PAYMENT'",
        params![payment_id.as_str()],
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?)),
    )?;
    let mut entries = Vec::new();
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    for (account, currency, amount) in posted {
        *sums.entry(currency.clone()).or_default() += amount;
        entries.push((account, currency, -amount));
    }
    // A stored posting always balances; check anyway before money moves on its strength.
    if entries.len() < 2 || sums.values().any(|sum| *sum != 0) {
        return Err(StoreError::Corrupt(format!("the posting of payment {payment_id} does not balance")));
    }
    let posting_id = insert_posting(db, PostingKind::Reversal, Some(payment_id), now)?;
    for (account, currency, amount) in entries {
        insert_entry(db, posting_id, &account, &currency, amount)?;
    }
    Ok(())
}

/// A wallet's kept balance, or any other account's sum of entries.
pub(super) fn balance(db: &mut dyn Db, account: &Account) -> Result<Money, StoreError> {
    // A wallet's balance is kept; any other account's is the sum of its entries.
    let sql = if matches!(account.owner, AccountOwner::Wallet(_)) {
        "SELECT CAST(COALESCE(SUM(balance_minor), 0) AS BIGINT) FROM wallet_balance WHERE account = ?1"
    } else {
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM entry WHERE account = ?1"
    };
    let minor: i64 = db.query_one(sql, params![account.key()], |row| row.get(0))?;
    Ok(Money::new(minor, account.currency))
}

/// Balances of every account of `owner`: keys share the prefix before the currency.
pub(super) fn balances(db: &mut dyn Db, owner: &AccountOwner) -> Result<Vec<Money>, StoreError> {
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
    db.query_all(
        "SELECT currency, CAST(SUM(amount_minor) AS BIGINT) FROM entry \
         WHERE account >= ?1 AND account < ?2 AND length(account) = ?3 GROUP BY currency ORDER BY currency",
        params![prefix, upper, i64::try_from(sample.len()).unwrap_or(i64::MAX)],
        |row| rows::money_of(row.get(0)?, row.get(1)?),
    )
}

pub(super) fn check(db: &mut dyn Db) -> Result<LedgerCheck, StoreError> {
    let postings: i64 = db.query_one("SELECT COUNT(*) FROM posting", &[], |row| row.get(0))?;
    let unbalanced = db.query_all(
        "SELECT posting_id FROM entry GROUP BY posting_id, currency HAVING SUM(amount_minor) <> 0 \
         UNION SELECT p.posting_id FROM posting p LEFT JOIN entry e ON e.posting_id = p.posting_id \
         GROUP BY p.posting_id HAVING COUNT(e.posting_id) < 2 \
         UNION SELECT e.posting_id FROM entry e LEFT JOIN posting p ON p.posting_id = e.posting_id \
         WHERE p.posting_id IS NULL",
        &[],
        |row| row.get(0),
    )?;
    let negative_wallets = db.query_all(
        "SELECT account, currency, CAST(SUM(amount_minor) AS BIGINT) FROM entry \
         WHERE account >= 'wallet:' AND account < 'wallet;' GROUP BY account, currency HAVING SUM(amount_minor) < 0",
        &[],
        |row| Ok((row.get(0)?, rows::money_of(row.get(1)?, row.get(2)?)?)),
    )?;
    let totals = db.query_all(
        "SELECT currency, CAST(SUM(amount_minor) AS BIGINT) FROM entry GROUP BY currency ORDER BY currency",
        &[],
        |row| rows::money_of(row.get(0)?, row.get(1)?),
    )?;
    let balance_mismatches = db.query_all(
        "SELECT w.account FROM wallet_balance w LEFT JOIN (SELECT account, SUM(amount_minor) AS total FROM entry \
         WHERE account >= 'wallet:' AND account < 'wallet;' GROUP BY account) e ON e.account = w.account \
         WHERE w.balance_minor <> COALESCE(e.total, 0) \
         UNION SELECT account FROM entry WHERE account >= 'wallet:' AND account < 'wallet;' \
         AND account NOT IN (SELECT account FROM wallet_balance)",
        &[],
        |row| row.get(0),
    )?;
    Ok(LedgerCheck {
        postings: u64::try_from(postings).unwrap_or(0),
        unbalanced_postings: unbalanced,
        negative_wallets,
        balance_mismatches,
        totals,
    })
}
