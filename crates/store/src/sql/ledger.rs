//! The ledger in the main file: payers, postings and their entries. Rows are only added;
//! balances are sums of entries.
//!
//! No arithmetic on money here can overflow silently. A wallet's kept balance changes only by
//! an update that holds it within its [`WalletLimit`] (SQLite would otherwise turn an overflowing
//! sum into a float). Sums of entries are taken in two integer parts, whole 10^9s and the rest,
//! which cannot overflow (SQLite's `SUM` fails when its `i64` accumulator overflows, even on
//! the way to a total that fits), and joined exactly; a total outside an `i64` is an error.

use std::collections::BTreeMap;

use super::{Db, Engine, Isolation, SqlStore, params};
use ocpay_core::Timestamp;
use ocpay_core::ids::PaymentId;
use ocpay_core::ledger::{self, Account, AccountOwner, Posting, PostingKind, WalletLimit};
use ocpay_core::money::{Currency, Money};
use ocpay_core::payer::{Payer, PayerId};

use super::rows::{self, millis};
use crate::{LedgerCheck, LedgerStore, StoreError};
use async_trait::async_trait;

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
    limit: WalletLimit,
) -> Result<Money, StoreError> {
    let Some(found) = find_payer(db, payer)? else {
        return Err(StoreError::NotFound("payer"));
    };
    write(db, &ledger::top_up(payer, found.environment, amount)?, None, now, limit)?;
    balance(db, &Account::new(AccountOwner::Wallet(payer.clone()), amount.currency()))
}

/// Appends a posting and its entries; an entry that would take a wallet above `limit` fails
/// the write (and so the whole business step).
pub(super) fn write(
    db: &mut dyn Db,
    posting: &Posting,
    payment_id: Option<&PaymentId>,
    now: Timestamp,
    limit: WalletLimit,
) -> Result<(), StoreError> {
    let posting_id = insert_posting(db, posting.kind(), payment_id, None, now)?;
    for entry in posting.entries() {
        insert_entry(db, posting_id, &entry.account.key(), entry.amount, limit)?;
    }
    Ok(())
}

/// Appends a posting that moves money for a settlement batch (its settlement or payout).
pub(super) fn write_for_batch(
    db: &mut dyn Db,
    posting: &Posting,
    batch_id: &str,
    now: Timestamp,
    limit: WalletLimit,
) -> Result<(), StoreError> {
    let posting_id = insert_posting(db, posting.kind(), None, Some(batch_id), now)?;
    for entry in posting.entries() {
        insert_entry(db, posting_id, &entry.account.key(), entry.amount, limit)?;
    }
    Ok(())
}

const WALLET_PREFIX: &str = "wallet:";

fn insert_posting(
    db: &mut dyn Db,
    kind: PostingKind,
    payment_id: Option<&PaymentId>,
    batch_id: Option<&str>,
    now: Timestamp,
) -> Result<i64, StoreError> {
    db.query_one(
        "INSERT INTO posting (kind, payment_id, created_at_ms, settlement_batch_id) VALUES (?1, ?2, ?3, ?4) \
         RETURNING posting_id",
        params![kind.as_str(), payment_id.map(PaymentId::as_str), millis(now), batch_id],
        |row| row.get(0),
    )
}

/// Appends one entry, keeping a wallet's balance beside it; a wallet that would go below zero
/// or above `limit` fails the write (and so the whole business step).
fn insert_entry(
    db: &mut dyn Db,
    posting_id: i64,
    account: &str,
    amount: Money,
    limit: WalletLimit,
) -> Result<(), StoreError> {
    let (currency, minor) = (amount.currency().code(), amount.minor());
    db.execute_later(
        "INSERT INTO entry (posting_id, account, currency, amount_minor) VALUES (?1, ?2, ?3, ?4)",
        params![posting_id, account, currency, minor],
    )?;
    if account.starts_with(WALLET_PREFIX) {
        let max = limit.max(amount.currency());
        let over = || StoreError::WalletLimit { account: account.to_owned(), max };
        // The most the wallet may hold before this entry, worked out here so that the update
        // compares and adds only numbers that fit: a debit never overflows a balance of zero or
        // more, and a credit is added only to a balance at most `max - minor`.
        let ceiling =
            if minor > 0 { max.minor().checked_sub(minor).filter(|c| *c >= 0) } else { Some(i64::MAX) };
        let ceiling = ceiling.ok_or_else(over)?;
        // Not an upsert: SQLite checks the inserted row (the bare amount, maybe negative)
        // against the CHECK before it sees the conflict.
        let updated = db.execute(
            "UPDATE wallet_balance SET balance_minor = balance_minor + ?2 WHERE account = ?1 AND balance_minor <= ?3",
            params![account, minor, ceiling],
        )?;
        if updated == 0 {
            let kept: bool = db.query_one(
                "SELECT EXISTS (SELECT 1 FROM wallet_balance WHERE account = ?1)",
                params![account],
                |row| row.get(0),
            )?;
            if kept {
                return Err(over());
            }
            db.execute(
                "INSERT INTO wallet_balance (account, currency, balance_minor) VALUES (?1, ?2, ?3)",
                params![account, currency, minor],
            )?;
        }
    }
    Ok(())
}

/// The sum of `amount_minor` in two parts that cannot overflow: whole 10^9s, and the rest.
/// Each part's sum stays within an `i64` for a billion entries; [`joined`] adds them exactly.
macro_rules! split_sum {
    () => {
        "CAST(COALESCE(SUM(amount_minor / 1000000000), 0) AS BIGINT), \
         CAST(COALESCE(SUM(amount_minor % 1000000000), 0) AS BIGINT)"
    };
}

/// The exact total of a [`split_sum!`].
pub(super) fn joined(high: i64, low: i64) -> i128 {
    i128::from(high) * 1_000_000_000 + i128::from(low)
}

/// A total as an amount of `currency`, refused when it does not fit.
pub(super) fn total_of(what: &str, currency: String, total: i128) -> Result<Money, StoreError> {
    let minor = i64::try_from(total).map_err(|_| StoreError::OutOfRange(format!("the balance of {what}")))?;
    rows::money_of(currency, minor)
}

/// Posts a payment's own posting again, negated.
pub(super) fn reverse_payment(
    db: &mut dyn Db,
    payment_id: &PaymentId,
    now: Timestamp,
    limit: WalletLimit,
) -> Result<(), StoreError> {
    // The payment's own posting and its fee's: the cancel gives both back.
    let posted = db.query_all(
        "SELECT e.account, e.currency, e.amount_minor FROM entry e JOIN posting p ON p.posting_id = e.posting_id \
         WHERE p.payment_id = ?1 AND p.kind IN ('PAYMENT', 'FEE')",
        params![payment_id.as_str()],
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?)),
    )?;
    let mut entries = Vec::new();
    let mut sums: BTreeMap<String, i128> = BTreeMap::new();
    for (account, currency, amount) in posted {
        *sums.entry(currency.clone()).or_default() += i128::from(amount);
        let negated = amount.checked_neg().ok_or_else(|| {
            StoreError::Corrupt(format!("an entry of payment {payment_id} cannot be negated"))
        })?;
        entries.push((account, rows::money_of(currency, negated)?));
    }
    // A stored posting always balances; check anyway before money moves on its strength.
    if entries.len() < 2 || sums.values().any(|sum| *sum != 0) {
        return Err(StoreError::Corrupt(format!("the posting of payment {payment_id} does not balance")));
    }
    let posting_id = insert_posting(db, PostingKind::Reversal, Some(payment_id), None, now)?;
    for (account, amount) in entries {
        insert_entry(db, posting_id, &account, amount, limit)?;
    }
    Ok(())
}

/// A wallet's kept balance, or any other account's sum of entries.
pub(super) fn balance(db: &mut dyn Db, account: &Account) -> Result<Money, StoreError> {
    // A wallet's balance is kept; any other account's is the sum of its entries.
    let key = account.key();
    if matches!(account.owner, AccountOwner::Wallet(_)) {
        let minor: i64 = db.query_one(
            "SELECT CAST(COALESCE(SUM(balance_minor), 0) AS BIGINT) FROM wallet_balance WHERE account = ?1",
            params![key],
            |row| row.get(0),
        )?;
        return Ok(Money::new(minor, account.currency));
    }
    let total = db.query_one(
        concat!("SELECT ", split_sum!(), " FROM entry WHERE account = ?1"),
        params![key],
        |row| Ok(joined(row.get(0)?, row.get(1)?)),
    )?;
    total_of(&key, account.currency.code().to_owned(), total)
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
    let totals = db.query_all(
        concat!(
            "SELECT currency, ",
            split_sum!(),
            " FROM entry WHERE account >= ?1 AND account < ?2 AND length(account) = ?3 \
             GROUP BY currency ORDER BY currency"
        ),
        params![prefix, upper, i64::try_from(sample.len()).unwrap_or(i64::MAX)],
        |row| Ok((row.get::<_, String>(0)?, joined(row.get(1)?, row.get(2)?))),
    )?;
    totals
        .into_iter()
        .map(|(currency, total)| total_of(&format!("{prefix}{currency}"), currency, total))
        .collect()
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
    // Every wallet's entries, summed in parts; compared with zero and its kept balance here.
    let wallets = db.query_all(
        "SELECT e.account, e.currency, w.balance_minor, e.high, e.low FROM (SELECT account, currency, \
         CAST(SUM(amount_minor / 1000000000) AS BIGINT) AS high, CAST(SUM(amount_minor % 1000000000) AS BIGINT) AS low \
         FROM entry WHERE account >= 'wallet:' AND account < 'wallet;' GROUP BY account, currency) AS e \
         LEFT JOIN wallet_balance w ON w.account = e.account ORDER BY e.account",
        &[],
        |row| {
            let total = joined(row.get(3)?, row.get(4)?);
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, Option<i64>>(2)?, total))
        },
    )?;
    let mut negative_wallets = Vec::new();
    let mut balance_mismatches = Vec::new();
    for (account, currency, kept, total) in wallets {
        if kept.map(i128::from) != Some(total) {
            balance_mismatches.push(account.clone());
        }
        if total < 0 {
            let minor = i64::try_from(total).unwrap_or(i64::MIN);
            negative_wallets.push((account, rows::money_of(currency, minor)?));
        }
    }
    // A kept balance without entries must be zero.
    balance_mismatches.extend(db.query_all(
        "SELECT account FROM wallet_balance WHERE balance_minor <> 0 \
         AND account NOT IN (SELECT account FROM entry WHERE account >= 'wallet:' AND account < 'wallet;')",
        &[],
        |row| row.get::<_, String>(0),
    )?);
    balance_mismatches.sort();
    let totals = db.query_all(
        concat!("SELECT currency, ", split_sum!(), " FROM entry GROUP BY currency ORDER BY currency"),
        &[],
        |row| Ok((row.get::<_, String>(0)?, joined(row.get(1)?, row.get(2)?))),
    )?;
    // Every total must be zero; one that does not even fit an amount is reported as the
    // furthest amount on its side.
    let totals = totals
        .into_iter()
        .map(|(currency, total)| {
            let minor = i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX });
            rows::money_of(currency, minor)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LedgerCheck {
        postings: u64::try_from(postings).unwrap_or(0),
        unbalanced_postings: unbalanced,
        negative_wallets,
        balance_mismatches,
        totals,
    })
}

#[async_trait]
impl<E: Engine> LedgerStore for SqlStore<E> {
    async fn create_payer(&self, payer: &Payer) -> Result<(), StoreError> {
        let payer = payer.clone();
        self.engine.write(Isolation::Serializable, move |db| create_payer(db, &payer)).await
    }

    async fn payer(&self, payer: &PayerId) -> Result<Option<Payer>, StoreError> {
        self.engine.read(|db| find_payer(db, payer)).await
    }

    async fn pin_attempt(
        &self,
        payer: &PayerId,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let payer = payer.clone();
        self.engine
            .write(Isolation::Serializable, move |db| {
                pin_attempt(db, &payer, failures_max, locked_until, now)
            })
            .await
    }

    async fn pin_succeeded(&self, payer: &PayerId) -> Result<(), StoreError> {
        let payer = payer.clone();
        self.engine.write(Isolation::Serializable, move |db| pin_succeeded(db, &payer)).await
    }

    async fn top_up(&self, payer: &PayerId, amount: Money, now: Timestamp) -> Result<Money, StoreError> {
        let payer = payer.clone();
        let limit = self.wallet_limit;
        self.engine.write(Isolation::Serializable, move |db| top_up(db, &payer, amount, now, limit)).await
    }

    async fn balance(&self, account: &Account) -> Result<Money, StoreError> {
        self.engine.read(|db| balance(db, account)).await
    }

    async fn balances(&self, owner: &AccountOwner) -> Result<Vec<Money>, StoreError> {
        self.engine.read(|db| balances(db, owner)).await
    }

    async fn ledger_check(&self) -> Result<LedgerCheck, StoreError> {
        self.engine.read(check).await
    }
}
