//! Fees and settlement in the main file.
//!
//! A payment's fee is posted in the transaction that pays it, and every completed transaction
//! (a payment's success, a refund's success, a cancel of a paid payment) enters
//! `settlement_queue` in the transaction that completes it. A batch takes queued rows chunk by
//! chunk: each row becomes a `settlement_item` (whose primary key is the transaction, so no
//! transaction settles twice) and leaves the queue in the same transaction that posts its
//! share of pending → settled. A job that dies between chunks leaves every row either whole in
//! a batch or still queued.

use std::collections::BTreeMap;

use jiff::civil::Date;
use ocpay_core::Timestamp;
use ocpay_core::fees::{self, Fee, FeeRefund, FeeRules, FeeSchedule};
use ocpay_core::fx::Rate;
use ocpay_core::ids::ClientId;
use ocpay_core::ledger::{Account, AccountOwner, Entry, Posting, PostingKind, WalletLimit};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::Environment;
use ocpay_core::payment::Payment;
use ocpay_core::refund::Refund;

use super::rows::{self, millis};
use super::{Db, Engine, Isolation, Row, SqlStore, ToValue, Value, ledger as stored_ledger, params};
use crate::settlement::{
    BatchCursor, BatchStatus, ItemCursor, MarkPaid, SettleChunk, SettledChunk, SettlementBatch,
    SettlementCounts, SettlementItemRecord, SettlementKind, SettlementTerms,
};
use crate::{SettlementStore, StoreError};
use async_trait::async_trait;

fn corrupt(what: &str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {value}"))
}

pub(super) fn terms(db: &mut dyn Db, client_id: &ClientId) -> Result<Option<SettlementTerms>, StoreError> {
    db.query_opt(
        "SELECT fee_rate_bps, fee_fixed, fee_tax_rate_bps, settlement_currency FROM participant WHERE client_id = ?1",
        params![client_id.as_str()],
        |row| {
            let rate: Option<i64> = row.get("fee_rate_bps")?;
            let fixed: Option<String> = row.get("fee_fixed")?;
            let tax: Option<i64> = row.get("fee_tax_rate_bps")?;
            let fees = match rate {
                None => None,
                Some(rate) => {
                    let bps = |value: i64| u32::try_from(value).map_err(|_| corrupt("fee rate", value));
                    let fixed = FeeSchedule::parse_fixed(fixed.as_deref().unwrap_or_default())
                        .map_err(|error| corrupt("fee_fixed", error))?;
                    let schedule = FeeSchedule::new(bps(rate)?, fixed, bps(tax.unwrap_or(0))?)
                        .map_err(|error| corrupt("fee schedule", error))?;
                    Some(schedule)
                }
            };
            let currency: Option<String> = row.get("settlement_currency")?;
            let settlement_currency = currency
                .map(|code| Currency::parse(&code).map_err(|_| corrupt("settlement_currency", code)))
                .transpose()?;
            Ok(SettlementTerms { fees, settlement_currency })
        },
    )
}

pub(super) fn set_terms(
    db: &mut dyn Db,
    client_id: &ClientId,
    terms: &SettlementTerms,
) -> Result<(), StoreError> {
    let fees = terms.fees.as_ref();
    let updated = db.execute(
        "UPDATE participant SET fee_rate_bps = ?2, fee_fixed = ?3, fee_tax_rate_bps = ?4, settlement_currency = ?5 \
         WHERE client_id = ?1",
        params![
            client_id.as_str(),
            fees.map(|fees| i64::from(fees.rate_bps)),
            fees.map(FeeSchedule::fixed_text),
            fees.map(|fees| i64::from(fees.tax_rate_bps)),
            terms.settlement_currency.map(Currency::code),
        ],
    )?;
    if updated == 0 {
        return Err(StoreError::NotFound("participant"));
    }
    Ok(())
}

pub(super) fn set_currency(
    db: &mut dyn Db,
    client_id: &ClientId,
    currency: Option<Currency>,
) -> Result<(), StoreError> {
    let updated = db.execute(
        "UPDATE participant SET settlement_currency = ?2 WHERE client_id = ?1",
        params![client_id.as_str(), currency.map(Currency::code)],
    )?;
    if updated == 0 {
        return Err(StoreError::NotFound("participant"));
    }
    Ok(())
}

/// The settlement currency of a participant's transactions in `currency`.
fn settlement_currency_of(
    db: &mut dyn Db,
    owner: &ClientId,
    currency: Currency,
) -> Result<Currency, StoreError> {
    Ok(terms(db, owner)?.and_then(|terms| terms.settlement_currency).unwrap_or(currency))
}

fn enqueue(
    db: &mut dyn Db,
    kind: SettlementKind,
    transaction_id: &str,
    owner: &ClientId,
    currency: Currency,
    completed_at: Timestamp,
) -> Result<(), StoreError> {
    db.execute_later(
        "INSERT INTO settlement_queue (kind, transaction_id, owner_client_id, settlement_currency, completed_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![kind.as_str(), transaction_id, owner.as_str(), currency.code(), millis(completed_at)],
    )
}

/// The entries that move `fee` from the merchant's pending balance to the platform (or back,
/// with `sign` -1), zero entries left out.
pub(super) fn fee_entries(owner: &ClientId, fee: Fee, sign: i64) -> Result<Vec<Entry>, StoreError> {
    let environment = Environment::of_client_id(owner);
    let currency = fee.fee.currency();
    let signed = |money: Money| Money::new(money.minor().saturating_mul(sign), money.currency());
    let total = fee.total()?;
    let entries = [
        (AccountOwner::MerchantPending(owner.clone()), signed(total).checked_neg()?),
        (AccountOwner::FeeRevenue(environment), signed(fee.fee)),
        (AccountOwner::FeeTax(environment), signed(fee.tax)),
    ];
    Ok(entries
        .into_iter()
        .filter(|(_, amount)| amount.minor() != 0)
        .map(|(owner, amount)| Entry { account: Account::new(owner, currency), amount })
        .collect())
}

/// At a payment's success, in its transaction: fixes its fee by the owner's schedule (or the
/// platform's), posts it, and queues the payment for settlement.
pub(super) fn charge_fee(
    db: &mut dyn Db,
    payment: &Payment,
    rules: &FeeRules,
    now: Timestamp,
    limit: WalletLimit,
) -> Result<(), StoreError> {
    let owner = &payment.terms.owner;
    let terms = terms(db, owner)?.unwrap_or_default();
    let schedule = terms.fees.as_ref().unwrap_or(&rules.default);
    let fee = schedule.fee_for(payment.terms.amount)?;
    let entries = fee_entries(owner, fee, 1)?;
    if !entries.is_empty() {
        let posting = Posting::new(PostingKind::Fee, entries)?;
        stored_ledger::write(db, &posting, Some(&payment.terms.id), now, limit)?;
    }
    db.execute(
        "UPDATE payment SET fee_minor = ?2, fee_tax_minor = ?3 WHERE payment_id = ?1",
        params![payment.terms.id.as_str(), fee.fee.minor(), fee.tax.minor()],
    )?;
    let currency = terms.settlement_currency.unwrap_or(payment.terms.amount.currency());
    enqueue(db, SettlementKind::Payment, payment.terms.id.as_str(), owner, currency, now)
}

/// The settlement currency a payment settles in, as queued or itemized at its success.
fn payment_settlement_currency(db: &mut dyn Db, payment: &Payment) -> Result<Currency, StoreError> {
    let id = payment.terms.id.as_str();
    let code: Option<String> = db.query_opt(
        "SELECT settlement_currency FROM settlement_queue WHERE kind = 'PAYMENT' AND transaction_id = ?1 \
         UNION ALL SELECT settlement_currency FROM settlement_item WHERE kind = 'PAYMENT' AND transaction_id = ?1",
        params![id],
        |row| row.get(0),
    )?;
    match code {
        Some(code) => Currency::parse(&code).map_err(|_| corrupt("settlement_currency", code)),
        None => settlement_currency_of(db, &payment.terms.owner, payment.terms.amount.currency()),
    }
}

/// At the cancel of a paid payment (whose reversal gave the fee back), in its transaction:
/// queues the cancel for settlement.
pub(super) fn enqueue_cancel(db: &mut dyn Db, payment: &Payment, now: Timestamp) -> Result<(), StoreError> {
    let currency = payment_settlement_currency(db, payment)?;
    enqueue(db, SettlementKind::Cancel, payment.terms.id.as_str(), &payment.terms.owner, currency, now)
}

/// A payment's fee as fixed at its success.
fn fee_of(db: &mut dyn Db, payment_id: &str, currency: Currency) -> Result<Fee, StoreError> {
    let (fee, tax): (Option<i64>, Option<i64>) = db.query_one(
        "SELECT fee_minor, fee_tax_minor FROM payment WHERE payment_id = ?1",
        params![payment_id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(Fee { fee: Money::new(fee.unwrap_or(0), currency), tax: Money::new(tax.unwrap_or(0), currency) })
}

/// At a refund's success, in its transaction: returns its share of the payment's fee (by the
/// rules' refund policy), records it on the refund, and queues the refund for settlement.
pub(super) fn return_fee(
    db: &mut dyn Db,
    refund: &Refund,
    payment: &Payment,
    rules: &FeeRules,
    now: Timestamp,
    limit: WalletLimit,
) -> Result<(), StoreError> {
    let terms = &refund.terms;
    let currency = payment.terms.amount.currency();
    let share = match rules.refund {
        FeeRefund::None => Fee::zero(currency),
        FeeRefund::ProRata => {
            let fee = fee_of(db, payment.terms.id.as_str(), currency)?;
            let (refunded, fee_returned, tax_returned): (i64, i64, i64) = db.query_one(
                "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT), CAST(COALESCE(SUM(fee_returned_minor), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(tax_returned_minor), 0) AS BIGINT) FROM refund \
                 WHERE payment_id = ?1 AND status = 'SUCCESS' AND refund_id <> ?2",
                params![payment.terms.id.as_str(), terms.id.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )?;
            let returned =
                Fee { fee: Money::new(fee_returned, currency), tax: Money::new(tax_returned, currency) };
            fees::refund_share(
                fee,
                payment.terms.amount,
                Money::new(refunded, currency),
                terms.amount,
                returned,
            )?
        }
    };
    let entries = fee_entries(&terms.owner, share, -1)?;
    if !entries.is_empty() {
        let posting = Posting::new(PostingKind::FeeReturn, entries)?;
        stored_ledger::write(db, &posting, Some(&terms.payment_id), now, limit)?;
    }
    db.execute(
        "UPDATE refund SET fee_returned_minor = ?2, tax_returned_minor = ?3 WHERE refund_id = ?1",
        params![terms.id.as_str(), share.fee.minor(), share.tax.minor()],
    )?;
    let settlement_currency = payment_settlement_currency(db, payment)?;
    enqueue(db, SettlementKind::Refund, terms.id.as_str(), &terms.owner, settlement_currency, now)
}

pub(super) fn candidates(
    db: &mut dyn Db,
    cutoff: Timestamp,
    owner: Option<&ClientId>,
) -> Result<Vec<(ClientId, Currency)>, StoreError> {
    let pairs = db.query_all(
        "SELECT owner_client_id, settlement_currency FROM settlement_queue \
         WHERE completed_at_ms < ?1 AND (CAST(?2 AS TEXT) IS NULL OR owner_client_id = ?2) \
         UNION SELECT owner_client_id, settlement_currency FROM settlement_batch b \
         WHERE cutoff_at_ms < ?1 AND (CAST(?2 AS TEXT) IS NULL OR owner_client_id = ?2) \
         AND NOT EXISTS (SELECT 1 FROM settlement_batch n WHERE n.owner_client_id = b.owner_client_id \
           AND n.settlement_currency = b.settlement_currency AND n.cutoff_at_ms >= ?1) \
         ORDER BY 1, 2",
        params![millis(cutoff), owner.map(ClientId::as_str)],
        |row| {
            let code: String = row.get(1)?;
            let currency = Currency::parse(&code).map_err(|_| corrupt("settlement_currency", code))?;
            Ok((rows::client_id(row, "owner_client_id")?, currency))
        },
    )?;
    Ok(pairs)
}

pub(super) fn oldest(db: &mut dyn Db) -> Result<Option<Timestamp>, StoreError> {
    let oldest: Option<i64> =
        db.query_one("SELECT MIN(completed_at_ms) FROM settlement_queue", params![], |row| row.get(0))?;
    oldest.map(|ms| Timestamp::from_millisecond(ms).map_err(|_| corrupt("completed_at_ms", ms))).transpose()
}

/// A batch's id: its settlement date and ten digits of a hash of what makes it unique, the same
/// on every node, so that two nodes opening one batch agree.
fn batch_id(owner: &ClientId, currency: Currency, cutoff: Timestamp, settlement_date: Date) -> String {
    // FNV-1a: stable across builds and machines, unlike the standard library's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let key = format!("{owner}/{}/{}", currency.code(), millis(cutoff));
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}{:010}", settlement_date.strftime("%Y%m%d"), hash % 10_000_000_000)
}

macro_rules! batch_columns {
    () => {
        "batch_id, owner_client_id, settlement_currency, day, settlement_date, cutoff_at_ms, status, item_count, \
         amount_minor, fee_minor, tax_minor, created_at_ms, closed_at_ms, paid_at_ms, payout_reference"
    };
}

fn date(row: &Row, column: &str) -> Result<Date, StoreError> {
    let text: String = row.get(column)?;
    text.parse().map_err(|_| corrupt(column, text))
}

fn batch_row(row: &Row) -> Result<SettlementBatch, StoreError> {
    let code: String = row.get("settlement_currency")?;
    let currency = Currency::parse(&code).map_err(|_| corrupt("settlement_currency", code))?;
    let status: String = row.get("status")?;
    let count: i64 = row.get("item_count")?;
    Ok(SettlementBatch {
        id: row.get("batch_id")?,
        owner: rows::client_id(row, "owner_client_id")?,
        currency,
        day: date(row, "day")?,
        settlement_date: date(row, "settlement_date")?,
        cutoff: rows::time(row, "cutoff_at_ms")?,
        status: BatchStatus::parse(&status).ok_or_else(|| corrupt("status", status))?,
        count: u64::try_from(count).map_err(|_| corrupt("item_count", count))?,
        amount: Money::new(row.get("amount_minor")?, currency),
        fee: Money::new(row.get("fee_minor")?, currency),
        tax: Money::new(row.get("tax_minor")?, currency),
        created_at: rows::time(row, "created_at_ms")?,
        closed_at: rows::optional_time(row, "closed_at_ms")?,
        paid_at: rows::optional_time(row, "paid_at_ms")?,
        payout_reference: row.get("payout_reference")?,
    })
}

pub(super) fn batch(db: &mut dyn Db, batch_id: &str) -> Result<Option<SettlementBatch>, StoreError> {
    db.query_opt(
        concat!("SELECT ", batch_columns!(), " FROM settlement_batch WHERE batch_id = ?1"),
        params![batch_id],
        batch_row,
    )
}

pub(super) fn batches(
    db: &mut dyn Db,
    owner: Option<&ClientId>,
    day: Option<Date>,
    limit: u32,
) -> Result<Vec<SettlementBatch>, StoreError> {
    let day = day.map(|day| day.to_string());
    db.query_all(
        concat!(
            "SELECT ",
            batch_columns!(),
            " FROM settlement_batch WHERE (CAST(?1 AS TEXT) IS NULL OR owner_client_id = ?1) \
              AND (CAST(?2 AS TEXT) IS NULL OR day = ?2) ORDER BY cutoff_at_ms DESC, batch_id LIMIT ?3"
        ),
        params![owner.map(ClientId::as_str), day, i64::from(limit)],
        batch_row,
    )
}

/// A page of an owner's batches, newest day first, by keyset: the index of an owner's days
/// (`settlement_batch_day`) serves the range and the order's first column; a day's few batches
/// are sorted among themselves.
pub(super) fn batches_page(
    db: &mut dyn Db,
    owner: &ClientId,
    after: Option<&BatchCursor>,
    limit: u32,
) -> Result<Vec<SettlementBatch>, StoreError> {
    let Some(after) = after else {
        return db.query_all(
            concat!(
                "SELECT ",
                batch_columns!(),
                " FROM settlement_batch WHERE owner_client_id = ?1 \
                  ORDER BY day DESC, cutoff_at_ms DESC, batch_id DESC LIMIT ?2"
            ),
            params![owner.as_str(), i64::from(limit)],
            batch_row,
        );
    };
    db.query_all(
        concat!(
            "SELECT ",
            batch_columns!(),
            " FROM settlement_batch WHERE owner_client_id = ?1 AND day <= ?2 \
              AND (day, cutoff_at_ms, batch_id) < (?2, ?3, ?4) \
              ORDER BY day DESC, cutoff_at_ms DESC, batch_id DESC LIMIT ?5"
        ),
        params![
            owner.as_str(),
            after.day.to_string(),
            millis(after.cutoff),
            after.batch_id.as_str(),
            i64::from(limit)
        ],
        batch_row,
    )
}

/// A page of every participant's batches, newest day first (then newest cutoff, then id), after
/// `after`: the operator's console's list, over `settlement_batch_by_day`.
pub(super) fn all_batches_page(
    db: &mut dyn Db,
    after: Option<&BatchCursor>,
    limit: u32,
) -> Result<Vec<SettlementBatch>, StoreError> {
    let Some(after) = after else {
        return db.query_all(
            concat!(
                "SELECT ",
                batch_columns!(),
                " FROM settlement_batch ORDER BY day DESC, cutoff_at_ms DESC, batch_id DESC LIMIT ?1"
            ),
            params![i64::from(limit)],
            batch_row,
        );
    };
    db.query_all(
        concat!(
            "SELECT ",
            batch_columns!(),
            " FROM settlement_batch WHERE day <= ?1 AND (day, cutoff_at_ms, batch_id) < (?1, ?2, ?3) \
              ORDER BY day DESC, cutoff_at_ms DESC, batch_id DESC LIMIT ?4"
        ),
        params![after.day.to_string(), millis(after.cutoff), after.batch_id.as_str(), i64::from(limit)],
        batch_row,
    )
}

/// The query of what a queued transaction of `kind` settles as: its payment or refund, by id.
fn completed_sql(kind: SettlementKind) -> &'static str {
    if kind == SettlementKind::Refund {
        "SELECT r.owner_client_id, p.reference_merchant_id, p.reference_store_id, r.refund_request_id, \
         r.reference_refund_id, p.order_description, r.amount_minor, r.currency, r.fee_returned_minor, \
         r.tax_returned_minor, r.payment_id FROM refund r JOIN payment p ON p.payment_id = r.payment_id \
         WHERE r.refund_id = ?1"
    } else {
        "SELECT p.owner_client_id, p.reference_merchant_id, p.reference_store_id, p.payment_request_id, \
         p.reference_order_id, p.order_description, p.amount_minor, p.currency, p.fee_minor, p.fee_tax_minor \
         FROM payment p WHERE p.payment_id = ?1"
    }
}

/// What a queued transaction settles as, before conversion, from the rows of its
/// [`completed_sql`] (none: the record is missing, and the store is corrupt).
fn completed(
    found: &[Row],
    kind: SettlementKind,
    id: &str,
    completed_at: Timestamp,
) -> Result<SettlementItemRecord, StoreError> {
    let missing = || corrupt("a queued transaction has no record", format!("{} {id}", kind.as_str()));
    let row = found.first().ok_or_else(missing)?;
    let code: String = row.get(7)?;
    let currency = Currency::parse(&code).map_err(|_| corrupt("currency", code))?;
    let (amount, fee, tax): (i64, Option<i64>, Option<i64>) = (row.get(6)?, row.get(8)?, row.get(9)?);
    // A payment moves its amount in and its fee out; a refund or cancel the other way.
    let sign = if kind == SettlementKind::Payment { 1 } else { -1 };
    let money = |minor: i64| Money::new(minor, currency);
    let original = if kind == SettlementKind::Refund { Some(row.get::<_, String>(10)?) } else { None };
    Ok(SettlementItemRecord {
        kind,
        transaction_id: id.to_owned(),
        batch_id: String::new(),
        owner: rows::client_id(row, "owner_client_id")?,
        reference_merchant_id: row.get(1)?,
        reference_store_id: row.get(2)?,
        original_transaction_id: original,
        transaction_request_id: row.get(3)?,
        reference_order_id: row.get(4)?,
        order_description: row.get(5)?,
        completed_at,
        amount: money(amount * sign),
        fee: money(-fee.unwrap_or(0) * sign),
        tax: money(-tax.unwrap_or(0) * sign),
        settlement_amount: money(0),
        settlement_fee: money(0),
        settlement_tax: money(0),
        quote: None,
    })
}

/// The item of a completed transaction in `currency`, converted at `rate` when it needs one.
fn convert(
    mut record: SettlementItemRecord,
    currency: Currency,
    rates: &[Rate],
) -> Result<SettlementItemRecord, StoreError> {
    let from = record.amount.currency();
    let rate = if from == currency {
        None
    } else {
        let rate = rates.iter().find(|rate| rate.base() == from && rate.quote() == currency).ok_or_else(|| {
            StoreError::Database(format!(
                "no settlement rate from {from} to {currency}: add {from}/{currency} to settlement_fx_rates"
            ))
        })?;
        Some(rate)
    };
    let convert = |money: Money| {
        fees::convert_signed(money, rate).map_err(|_| StoreError::OutOfRange(format!("{money:?} converted")))
    };
    record.settlement_fee = convert(record.fee)?;
    record.settlement_tax = convert(record.tax)?;
    record.settlement_amount =
        convert(record.amount)?.checked_add(record.settlement_fee)?.checked_add(record.settlement_tax)?;
    record.quote = rate.map(|rate| (rate.pair(), rate.price()));
    Ok(record)
}

fn insert_item(db: &mut dyn Db, item: &SettlementItemRecord) -> Result<(), StoreError> {
    let (pair, price) = item.quote.clone().unzip();
    db.execute_later(
        "INSERT INTO settlement_item (kind, transaction_id, batch_id, owner_client_id, reference_merchant_id, \
         reference_store_id, original_transaction_id, transaction_request_id, reference_order_id, order_description, \
         completed_at_ms, amount_minor, currency, fee_minor, tax_minor, settlement_amount_minor, settlement_fee_minor, \
         settlement_tax_minor, settlement_currency, quote_pair, quote_price) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        params![
            item.kind.as_str(),
            item.transaction_id,
            item.batch_id,
            item.owner.as_str(),
            item.reference_merchant_id,
            item.reference_store_id,
            item.original_transaction_id,
            item.transaction_request_id,
            item.reference_order_id,
            item.order_description,
            millis(item.completed_at),
            item.amount.minor(),
            item.amount.currency().code(),
            item.fee.minor(),
            item.tax.minor(),
            item.settlement_amount.minor(),
            item.settlement_fee.minor(),
            item.settlement_tax.minor(),
            item.settlement_amount.currency().code(),
            pair,
            price,
        ],
    )?;
    Ok(())
}

/// The posting that moves a chunk's net amounts from pending to settled: per transaction
/// currency what pending held for the items, and in the settlement currency what they settle
/// as; the exchange account takes the one and gives the other when they differ.
fn settlement_posting(
    owner: &ClientId,
    items: &[SettlementItemRecord],
    currency: Currency,
) -> Result<Option<Posting>, StoreError> {
    let environment = Environment::of_client_id(owner);
    let mut sums: BTreeMap<Account, i128> = BTreeMap::new();
    for item in items {
        let held =
            i128::from(item.amount.minor()) + i128::from(item.fee.minor()) + i128::from(item.tax.minor());
        let from = item.amount.currency();
        *sums.entry(Account::new(AccountOwner::MerchantPending(owner.clone()), from)).or_default() -= held;
        *sums.entry(Account::new(AccountOwner::MerchantSettled(owner.clone()), currency)).or_default() +=
            i128::from(item.settlement_amount.minor());
        if from != currency {
            *sums.entry(Account::new(AccountOwner::Exchange(environment), from)).or_default() += held;
            *sums.entry(Account::new(AccountOwner::Exchange(environment), currency)).or_default() -=
                i128::from(item.settlement_amount.minor());
        }
    }
    let mut entries = Vec::new();
    for (account, sum) in sums {
        if sum != 0 {
            let minor = i64::try_from(sum)
                .map_err(|_| StoreError::OutOfRange(format!("the settlement of {account}")))?;
            let amount = Money::new(minor, account.currency);
            entries.push(Entry { account, amount });
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    Ok(Some(Posting::new(PostingKind::Settlement, entries)?))
}

pub(super) fn chunk(
    db: &mut dyn Db,
    chunk: &SettleChunk,
    limit: WalletLimit,
) -> Result<SettledChunk, StoreError> {
    let currency = chunk.currency;
    let id = batch_id(&chunk.owner, currency, chunk.cutoff, chunk.settlement_date);
    db.execute(
        "INSERT INTO settlement_batch (batch_id, owner_client_id, settlement_currency, day, settlement_date, cutoff_at_ms, \
         status, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'OPEN', ?7) \
         ON CONFLICT (owner_client_id, settlement_currency, cutoff_at_ms) DO NOTHING",
        params![
            id,
            chunk.owner.as_str(),
            currency.code(),
            chunk.day.to_string(),
            chunk.settlement_date.to_string(),
            millis(chunk.cutoff),
            millis(chunk.now),
        ],
    )?;
    // Chunks of one batch take its row first, so that they follow one another on every engine.
    let batch = db
        .query_opt(
            locked_row!(
                db,
                concat!(
                    "SELECT ",
                    batch_columns!(),
                    " FROM settlement_batch WHERE owner_client_id = ?1 AND settlement_currency = ?2 AND cutoff_at_ms = ?3"
                )
            ),
            params![chunk.owner.as_str(), currency.code(), millis(chunk.cutoff)],
            batch_row,
        )?
        .ok_or_else(|| corrupt("a batch just opened is missing", &id))?;
    if batch.status == BatchStatus::Closed {
        return Ok(SettledChunk { batch, added: 0 });
    }
    let queued = db.query_all(
        "SELECT kind, transaction_id, completed_at_ms FROM settlement_queue \
         WHERE owner_client_id = ?1 AND settlement_currency = ?2 AND completed_at_ms < ?3 \
         ORDER BY completed_at_ms, transaction_id, kind LIMIT ?4",
        params![chunk.owner.as_str(), currency.code(), millis(chunk.cutoff), i64::from(chunk.limit)],
        |row| {
            let kind: String = row.get(0)?;
            let kind = SettlementKind::parse(&kind).ok_or_else(|| corrupt("kind", kind))?;
            Ok((kind, row.get::<_, String>(1)?, rows::time(row, "completed_at_ms")?))
        },
    )?;
    // The chunk's records are read together, and its items written without waiting for each
    // answer: on PostgreSQL a chunk is a handful of round trips, not a few per transaction.
    let ids: Vec<[Value<'_>; 1]> = queued.iter().map(|(_, id, _)| [id.to_value()]).collect();
    let queries: Vec<(&'static str, &[Value<'_>])> =
        queued.iter().zip(&ids).map(|((kind, _, _), id)| (completed_sql(*kind), &id[..])).collect();
    let records = db.query_batch(&queries)?;
    let mut items = Vec::with_capacity(queued.len());
    for ((kind, transaction_id, completed_at), rows) in queued.iter().zip(&records) {
        let mut item =
            convert(completed(rows, *kind, transaction_id, *completed_at)?, currency, &chunk.rates)?;
        item.batch_id = batch.id.clone();
        insert_item(db, &item)?;
        db.execute_later(
            "DELETE FROM settlement_queue WHERE kind = ?1 AND transaction_id = ?2",
            params![kind.as_str(), transaction_id],
        )?;
        items.push(item);
    }
    if let Some(posting) = settlement_posting(&chunk.owner, &items, currency)? {
        stored_ledger::write_for_batch(db, &posting, &batch.id, chunk.now, limit)?;
    }
    let sum = |pick: fn(&SettlementItemRecord) -> Money| -> Result<i64, StoreError> {
        items.iter().try_fold(0i64, |total, item| {
            total
                .checked_add(pick(item).minor())
                .ok_or_else(|| StoreError::OutOfRange("a batch total".into()))
        })
    };
    let added = u32::try_from(items.len()).unwrap_or(u32::MAX);
    let close = added < chunk.limit;
    db.execute(
        "UPDATE settlement_batch SET item_count = item_count + ?2, amount_minor = amount_minor + ?3, \
         fee_minor = fee_minor + ?4, tax_minor = tax_minor + ?5, \
         status = CASE WHEN ?6 = 1 THEN 'CLOSED' ELSE status END, \
         closed_at_ms = CASE WHEN ?6 = 1 THEN ?7 ELSE closed_at_ms END WHERE batch_id = ?1",
        params![
            batch.id,
            i64::from(added),
            sum(|item| item.settlement_amount)?,
            sum(|item| item.settlement_fee)?,
            sum(|item| item.settlement_tax)?,
            i64::from(close),
            millis(chunk.now),
        ],
    )?;
    let batch = self::batch(db, &batch.id)?.ok_or_else(|| corrupt("a batch vanished", &id))?;
    Ok(SettledChunk { batch, added })
}

macro_rules! item_columns {
    () => {
        "kind, transaction_id, batch_id, owner_client_id, reference_merchant_id, reference_store_id, \
         original_transaction_id, transaction_request_id, reference_order_id, order_description, completed_at_ms, \
         amount_minor, currency, fee_minor, tax_minor, settlement_amount_minor, settlement_fee_minor, \
         settlement_tax_minor, settlement_currency, quote_pair, quote_price"
    };
}

fn item_row(row: &Row) -> Result<SettlementItemRecord, StoreError> {
    let kind: String = row.get("kind")?;
    let code: String = row.get("currency")?;
    let currency = Currency::parse(&code).map_err(|_| corrupt("currency", code))?;
    let code: String = row.get("settlement_currency")?;
    let settlement = Currency::parse(&code).map_err(|_| corrupt("settlement_currency", code))?;
    let pair: Option<String> = row.get("quote_pair")?;
    let price: Option<String> = row.get("quote_price")?;
    Ok(SettlementItemRecord {
        kind: SettlementKind::parse(&kind).ok_or_else(|| corrupt("kind", kind))?,
        transaction_id: row.get("transaction_id")?,
        batch_id: row.get("batch_id")?,
        owner: rows::client_id(row, "owner_client_id")?,
        reference_merchant_id: row.get("reference_merchant_id")?,
        reference_store_id: row.get("reference_store_id")?,
        original_transaction_id: row.get("original_transaction_id")?,
        transaction_request_id: row.get("transaction_request_id")?,
        reference_order_id: row.get("reference_order_id")?,
        order_description: row.get("order_description")?,
        completed_at: rows::time(row, "completed_at_ms")?,
        amount: Money::new(row.get("amount_minor")?, currency),
        fee: Money::new(row.get("fee_minor")?, currency),
        tax: Money::new(row.get("tax_minor")?, currency),
        settlement_amount: Money::new(row.get("settlement_amount_minor")?, settlement),
        settlement_fee: Money::new(row.get("settlement_fee_minor")?, settlement),
        settlement_tax: Money::new(row.get("settlement_tax_minor")?, settlement),
        quote: pair.zip(price),
    })
}

/// The cursor's parts as parameters: a first page starts before every row.
fn after_params(after: Option<&ItemCursor>) -> (i64, String, String) {
    match after {
        Some(cursor) => {
            (millis(cursor.completed_at), cursor.transaction_id.clone(), cursor.kind.as_str().to_owned())
        }
        None => (i64::MIN, String::new(), String::new()),
    }
}

pub(super) fn batch_items(
    db: &mut dyn Db,
    batch_id: &str,
    after: Option<&ItemCursor>,
    limit: u32,
) -> Result<Vec<SettlementItemRecord>, StoreError> {
    let (at, id, kind) = after_params(after);
    db.query_all(
        concat!(
            "SELECT ",
            item_columns!(),
            " FROM settlement_item WHERE batch_id = ?1 AND (completed_at_ms > ?2 OR (completed_at_ms = ?2 \
              AND (transaction_id > ?3 OR (transaction_id = ?3 AND kind > ?4)))) \
              ORDER BY completed_at_ms, transaction_id, kind LIMIT ?5"
        ),
        params![batch_id, at, id, kind, i64::from(limit)],
        item_row,
    )
}

pub(super) fn items_between(
    db: &mut dyn Db,
    owner: &ClientId,
    from: Timestamp,
    to: Timestamp,
    after: Option<&ItemCursor>,
    limit: u32,
) -> Result<Vec<SettlementItemRecord>, StoreError> {
    let (at, id, kind) = after_params(after);
    db.query_all(
        concat!(
            "SELECT ",
            item_columns!(),
            " FROM settlement_item WHERE owner_client_id = ?1 AND completed_at_ms >= ?2 AND completed_at_ms < ?3 \
              AND (completed_at_ms > ?4 OR (completed_at_ms = ?4 AND (transaction_id > ?5 \
              OR (transaction_id = ?5 AND kind > ?6)))) \
              ORDER BY completed_at_ms, transaction_id, kind LIMIT ?7"
        ),
        params![owner.as_str(), millis(from), millis(to), at, id, kind, i64::from(limit)],
        item_row,
    )
}

pub(super) fn mark_paid(
    db: &mut dyn Db,
    batch_id: &str,
    reference: Option<&str>,
    now: Timestamp,
    limit: WalletLimit,
) -> Result<MarkPaid, StoreError> {
    let Some(batch) = batch(db, batch_id)? else { return Ok(MarkPaid::NotFound) };
    if batch.status == BatchStatus::Open {
        return Ok(MarkPaid::Open);
    }
    if batch.paid_at.is_some() {
        return Ok(MarkPaid::AlreadyPaid { reference: batch.payout_reference });
    }
    let settled = Account::new(AccountOwner::MerchantSettled(batch.owner.clone()), batch.currency);
    let balance = stored_ledger::balance(db, &settled)?;
    if balance.minor() <= 0 {
        return Ok(MarkPaid::NothingToPay { balance });
    }
    let environment = Environment::of_client_id(&batch.owner);
    let payout = Account::new(AccountOwner::Payout(environment), batch.currency);
    let posting = Posting::new(
        PostingKind::Payout,
        vec![
            Entry { account: settled, amount: balance.checked_neg()? },
            Entry { account: payout, amount: balance },
        ],
    )?;
    stored_ledger::write_for_batch(db, &posting, &batch.id, now, limit)?;
    let paid = db.query_all(
        "UPDATE settlement_batch SET paid_at_ms = ?4, payout_reference = ?5 WHERE owner_client_id = ?1 \
         AND settlement_currency = ?2 AND status = 'CLOSED' AND paid_at_ms IS NULL AND cutoff_at_ms <= ?3 \
         RETURNING batch_id",
        params![batch.owner.as_str(), batch.currency.code(), millis(batch.cutoff), millis(now), reference],
        |row| row.get::<_, String>(0),
    )?;
    let mut batches = paid;
    batches.sort();
    Ok(MarkPaid::Paid { amount: balance, batches })
}

pub(super) fn movement(db: &mut dyn Db, batch_id: &str) -> Result<Option<Money>, StoreError> {
    let Some(batch) = batch(db, batch_id)? else { return Ok(None) };
    let settled = Account::new(AccountOwner::MerchantSettled(batch.owner.clone()), batch.currency).key();
    let moved: i64 = db.query_one(
        "SELECT CAST(COALESCE(SUM(e.amount_minor), 0) AS BIGINT) FROM entry e JOIN posting p ON p.posting_id = e.posting_id \
         WHERE p.settlement_batch_id = ?1 AND p.kind = 'SETTLEMENT' AND e.account = ?2",
        params![batch_id, settled],
        |row| row.get(0),
    )?;
    Ok(Some(Money::new(moved, batch.currency)))
}

pub(super) fn counts(
    db: &mut dyn Db,
    owner: Option<&ClientId>,
    until: Timestamp,
) -> Result<SettlementCounts, StoreError> {
    let owner = owner.map(ClientId::as_str);
    let count = |db: &mut dyn Db, sql: &'static str| -> Result<u64, StoreError> {
        let n: i64 = db.query_one(sql, params![millis(until), owner], |row| row.get(0))?;
        u64::try_from(n).map_err(|_| corrupt("a count", n))
    };
    let paid = count(
        db,
        "SELECT COUNT(*) FROM payment WHERE paid_at_ms < ?1 AND (CAST(?2 AS TEXT) IS NULL OR owner_client_id = ?2)",
    )?;
    let cancelled = count(
        db,
        "SELECT COUNT(*) FROM payment WHERE status = 'CANCELLED' AND paid_at_ms IS NOT NULL AND cancelled_at_ms < ?1 \
         AND (CAST(?2 AS TEXT) IS NULL OR owner_client_id = ?2)",
    )?;
    let refunded = count(
        db,
        "SELECT COUNT(*) FROM refund WHERE status = 'SUCCESS' AND finished_at_ms < ?1 \
         AND (CAST(?2 AS TEXT) IS NULL OR owner_client_id = ?2)",
    )?;
    let queued = count(
        db,
        "SELECT COUNT(*) FROM settlement_queue WHERE completed_at_ms < ?1 AND (CAST(?2 AS TEXT) IS NULL OR owner_client_id = ?2)",
    )?;
    let itemized = count(
        db,
        "SELECT COUNT(*) FROM settlement_item WHERE completed_at_ms < ?1 AND (CAST(?2 AS TEXT) IS NULL OR owner_client_id = ?2)",
    )?;
    Ok(SettlementCounts { completed: paid + cancelled + refunded, queued, itemized })
}

#[async_trait]
impl<E: Engine> SettlementStore for SqlStore<E> {
    async fn settlement_terms(&self, client_id: &ClientId) -> Result<Option<SettlementTerms>, StoreError> {
        self.engine.read(|db| terms(db, client_id)).await
    }

    async fn set_settlement_terms(
        &self,
        client_id: &ClientId,
        terms: &SettlementTerms,
    ) -> Result<(), StoreError> {
        let (client_id, terms) = (client_id.clone(), terms.clone());
        self.engine.write(Isolation::Serializable, move |db| set_terms(db, &client_id, &terms)).await
    }

    async fn set_settlement_currency(
        &self,
        client_id: &ClientId,
        currency: Option<Currency>,
    ) -> Result<(), StoreError> {
        let client_id = client_id.clone();
        self.engine.write(Isolation::Serializable, move |db| set_currency(db, &client_id, currency)).await
    }

    async fn settlement_candidates(
        &self,
        cutoff: Timestamp,
        owner: Option<&ClientId>,
    ) -> Result<Vec<(ClientId, Currency)>, StoreError> {
        self.engine.read(|db| candidates(db, cutoff, owner)).await
    }

    async fn oldest_unsettled(&self) -> Result<Option<Timestamp>, StoreError> {
        self.engine.read(oldest).await
    }

    async fn settle_chunk(&self, chunk: &SettleChunk) -> Result<SettledChunk, StoreError> {
        let (chunk, limit) = (chunk.clone(), self.wallet_limit);
        self.engine
            .write(Isolation::Serializable, move |db| super::settlement::chunk(db, &chunk, limit))
            .await
    }

    async fn settlement_batches(
        &self,
        owner: Option<&ClientId>,
        day: Option<Date>,
        limit: u32,
    ) -> Result<Vec<SettlementBatch>, StoreError> {
        self.engine.read(|db| batches(db, owner, day, limit)).await
    }

    async fn settlement_batch(&self, batch_id: &str) -> Result<Option<SettlementBatch>, StoreError> {
        self.engine.read(|db| batch(db, batch_id)).await
    }

    async fn settlement_batches_page(
        &self,
        owner: &ClientId,
        after: Option<&BatchCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementBatch>, StoreError> {
        self.engine.read(|db| batches_page(db, owner, after, limit)).await
    }

    async fn batch_items(
        &self,
        batch_id: &str,
        after: Option<&ItemCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementItemRecord>, StoreError> {
        self.engine.read(|db| batch_items(db, batch_id, after, limit)).await
    }

    async fn items_completed_between(
        &self,
        owner: &ClientId,
        from: Timestamp,
        to: Timestamp,
        after: Option<&ItemCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementItemRecord>, StoreError> {
        self.engine.read(|db| items_between(db, owner, from, to, after, limit)).await
    }

    async fn mark_paid(
        &self,
        batch_id: &str,
        reference: Option<&str>,
        now: Timestamp,
    ) -> Result<MarkPaid, StoreError> {
        let (batch_id, reference, limit) =
            (batch_id.to_owned(), reference.map(str::to_owned), self.wallet_limit);
        self.engine
            .write(Isolation::Serializable, move |db| {
                mark_paid(db, &batch_id, reference.as_deref(), now, limit)
            })
            .await
    }

    async fn batch_movement(&self, batch_id: &str) -> Result<Option<Money>, StoreError> {
        self.engine.read(|db| movement(db, batch_id)).await
    }

    async fn settlement_counts(
        &self,
        owner: Option<&ClientId>,
        until: Timestamp,
    ) -> Result<SettlementCounts, StoreError> {
        self.engine.read(|db| counts(db, owner, until)).await
    }

    async fn all_settlement_batches_page(
        &self,
        after: Option<&BatchCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementBatch>, StoreError> {
        self.engine.read(|db| all_batches_page(db, after, limit)).await
    }
}
