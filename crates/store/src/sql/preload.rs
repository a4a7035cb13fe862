//! History in bulk (`ocpay bench --preload`): each table's rows of a chunk of payments written
//! by one set-based statement over a counter (a recursive common table expression, which both
//! engines run), never row by row in Rust.
//!
//! What the rows hold is what the business writes hold: the postings are made by core's own
//! constructors (`ledger::top_up`, `ledger::payment`, `ledger::refund`) and the fee's by the
//! settlement module's, with the fee worked out by the merchant's schedule (or the platform's)
//! and a full refund's share of it as a refund's success works it out; the statements only
//! repeat each posting's entries over the chunk. Every posting balances, and each chunk's payer
//! holds exactly the sum of its entries, so the ledger check passes on a preloaded store.

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::fees::{self, Fee, FeeRefund};
use ocpay_core::ids::ClientId;
use ocpay_core::ledger::{self, Account, AccountOwner, Entry, Posting, WalletLimit};
use ocpay_core::money::Money;
use ocpay_core::participant::Environment;
use ocpay_core::payer::PayerId;

use super::rows::millis;
use super::settlement::{fee_entries, terms};
use super::{Db, Dialect, Engine, Isolation, SqlStore, params};
use crate::{PreloadPlan, PreloadRows, PreloadStore, StoreError};

/// A statement over the payments `?1` (first index) to `?2` (exclusive), each `i`. Every
/// statement's next parameters are the same: `?3` the ids' prefix, `?4` the first payment's
/// creation (ms), `?5` the span of the whole history (ms), `?6` its payments, `?7` which of them
/// the statement covers, `?8` and `?9` its postings' ids. The counter names each of them once,
/// so that PostgreSQL knows every parameter's type even where a statement has no other use
/// for it.
macro_rules! over_chunk {
    ($($sql:expr),+ $(,)?) => {
        concat!(
            "WITH RECURSIVE n(i) AS (SELECT CAST(?1 AS BIGINT) + 0 * (CAST(?4 AS BIGINT) + CAST(?5 AS BIGINT) \
             + CAST(?6 AS BIGINT) + CAST(?8 AS BIGINT) + CAST(?9 AS BIGINT) + LENGTH(CAST(?3 AS TEXT))) UNION ALL SELECT i + 1 FROM n WHERE i + 1 < CAST(?2 AS BIGINT)) ",
            $($sql),+
        )
    };
}

/// A payment's creation time, in ms.
macro_rules! created {
    () => {
        "(CAST(?4 AS BIGINT) + i * CAST(?5 AS BIGINT) / CAST(?6 AS BIGINT))"
    };
}

/// When a payment was paid: 4 s after its creation.
const PAID_AFTER_MS: i64 = 4_000;
/// When an unpaid payment's code expires: 15 minutes after its creation.
const EXPIRES_AFTER_MS: i64 = 900_000;
/// When a refunded payment was refunded: an hour after it was paid.
const REFUNDED_AFTER_MS: i64 = 3_600_000;

/// Which payments a statement covers, as its parameter `?7`.
const PAID: i64 = 0;
const REFUNDED: i64 = 1;
const FAILED: i64 = 2;
const ALL: i64 = 3;

/// `?7`'s payments: paid, refunded (every tenth), failed (the twentieth of every twenty), all.
macro_rules! which {
    () => {
        "((CAST(?7 AS BIGINT) = 0 AND i % 20 <> 19) OR (CAST(?7 AS BIGINT) = 1 AND i % 10 = 0) \
          OR (CAST(?7 AS BIGINT) = 2 AND i % 20 = 19) OR CAST(?7 AS BIGINT) = 3)"
    };
}

/// A payment's posting id: `?8` plus four per payment of the chunk, plus `?9` (0 payment, 1
/// its fee, 2 its refund, 3 the refund's fee return).
macro_rules! posting_id {
    () => {
        "(CAST(?8 AS BIGINT) + 4 * (i - CAST(?1 AS BIGINT)) + CAST(?9 AS BIGINT))"
    };
}

/// A kind of posting each of some payments has: which payments, its id's offset, its kind,
/// its time after the payment's creation (ms), and its entries.
type PostingsOf = (i64, i64, &'static str, i64, Vec<(String, Money)>);

fn entries(posting: &Posting) -> Vec<(String, Money)> {
    posting.entries().iter().map(|entry| (entry.account.key(), entry.amount)).collect()
}

fn fee_posting_entries(entries: Vec<Entry>) -> Vec<(String, Money)> {
    entries.into_iter().map(|entry| (entry.account.key(), entry.amount)).collect()
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange(format!("preload index {value}")))
}

pub(super) fn preload(
    db: &mut dyn Db,
    plan: &PreloadPlan,
    first: u64,
    count: u64,
    rules: &ocpay_core::fees::FeeRules,
    limit: WalletLimit,
) -> Result<PreloadRows, StoreError> {
    let mut rows = PreloadRows::new();
    if count == 0 {
        return Ok(rows);
    }
    let owner = &plan.owner;
    let amount = plan.amount;
    let currency = amount.currency();
    let code = currency.code();
    let environment = Environment::of_client_id(owner);
    let (start, end) = (to_i64(first)?, to_i64(first + count)?);
    let total = to_i64(plan.total.max(1))?;
    let from = millis(plan.from);
    let span = millis(plan.to).saturating_sub(from).max(0);
    let prefix = plan.prefix.as_str();

    // The merchant's fee for every payment, and a full refund's share of it, as the writes of
    // a success and of a refund work them out.
    let terms = terms(db, owner)?.unwrap_or_default();
    let schedule = terms.fees.as_ref().unwrap_or(&rules.default);
    let fee = schedule.fee_for(amount)?;
    let returned = match rules.refund {
        FeeRefund::None => Fee::zero(currency),
        FeeRefund::ProRata => {
            fees::refund_share(fee, amount, Money::zero(currency), amount, Fee::zero(currency))?
        }
    };
    let settlement_currency = terms.settlement_currency.unwrap_or(currency).code();

    // The chunk's payer, funded by one top-up of what its payments take.
    let payer = PayerId::parse(&format!("sandbox-{prefix}payer-{first}"))
        .map_err(|error| StoreError::Corrupt(format!("preload payer id: {error}")))?;
    let paid = to_i64(PreloadPlan::paid_in(first, count))?;
    let refunded = to_i64(PreloadPlan::refunded_in(first, count))?;
    let per = |n: i64| {
        amount
            .minor()
            .checked_mul(n)
            .map(|minor| Money::new(minor, currency))
            .ok_or_else(|| StoreError::OutOfRange("preload chunk total".into()))
    };
    let wallet = Account::new(AccountOwner::Wallet(payer.clone()), currency).key();
    // The top-up is written without the kept balance's update, so its check is made here.
    let max = limit.max(currency);
    if per(paid)?.minor() > max.minor() {
        return Err(StoreError::WalletLimit { account: wallet, max });
    }
    let start_at = from + start * span / total;
    db.execute(
        "INSERT INTO payer (payer_id, environment, currency, pin_hash, created_at_ms) VALUES (?1, ?2, ?3, NULL, ?4)",
        params![payer.as_str(), environment.as_str(), code, start_at],
    )?;
    db.execute(
        "INSERT INTO wallet_balance (account, currency, balance_minor) VALUES (?1, ?2, ?3)",
        params![wallet, code, per(refunded)?.minor()],
    )?;
    rows.insert("payer".into(), 1);
    rows.insert("wallet_balance".into(), 1);

    let base: i64 =
        db.query_one("SELECT CAST(COALESCE(MAX(posting_id), 0) AS BIGINT) FROM posting", &[], |row| {
            row.get(0)
        })?;
    let top_up_id = base + 1;
    let first_posting = base + 2;
    db.execute(
        "INSERT INTO posting (posting_id, kind, payment_id, created_at_ms, settlement_batch_id) \
         VALUES (?1, 'TOPUP', NULL, ?2, NULL)",
        params![top_up_id, start_at],
    )?;
    let mut entry_rows = 0;
    for (account, money) in entries(&ledger::top_up(&payer, environment, per(paid)?)?) {
        entry_rows += db.execute(
            "INSERT INTO entry (posting_id, account, currency, amount_minor) VALUES (?1, ?2, ?3, ?4)",
            params![top_up_id, account, money.currency().code(), money.minor()],
        )?;
    }
    let mut postings = 1;

    let chunk = |which: i64| (start, end, prefix, from, span, total, which);
    macro_rules! run {
        ($sql:expr, $which:expr $(, $extra:expr)* $(,)?) => {{
            let (a, b, c, d, e, f, g) = chunk($which);
            db.execute($sql, params![a, b, c, d, e, f, g $(, $extra)*])?
        }};
    }

    // The payments: paid ones with their charge and fee, the others closed at their expiry.
    let payments = run!(
        over_chunk!(
            "INSERT INTO payment (payment_id, owner_client_id, payment_request_id, amount_minor, currency, \
             order_amount_minor, order_currency, reference_order_id, order_description, reference_merchant_id, \
             merchant_name, merchant_mcc, merchant_display_name, reference_store_id, store_name, store_mcc, \
             code_token, notify_url, redirect_url, settlement_currency, merchant_region, extend_info, status, \
             fail_reason, created_at_ms, expires_at_ms, paid_at_ms, failed_at_ms, cancelled_at_ms, payer_id, \
             charged_minor, charged_currency, agent_client_id, fee_minor, fee_tax_minor) \
             SELECT CAST(?3 AS TEXT) || 'P' || CAST(i AS TEXT), CAST(?10 AS TEXT), CAST(?3 AS TEXT) || 'R' || CAST(i AS TEXT), \
             CAST(?11 AS BIGINT), CAST(?12 AS TEXT), CAST(?11 AS BIGINT), CAST(?12 AS TEXT), CAST(?3 AS TEXT) || 'R' || CAST(i AS TEXT), \
             'Two flat whites', 'M0001', 'Demo Cafe', '5812', NULL, 'S0001', 'Demo Cafe Orchard', '5812', \
             CAST(?3 AS TEXT) || 'C' || CAST(i AS TEXT), CAST(?13 AS TEXT), NULL, NULL, NULL, NULL, \
             CASE WHEN i % 20 = 19 THEN 'FAIL' ELSE 'SUCCESS' END, \
             CASE WHEN i % 20 = 19 THEN 'ORDER_IS_CLOSED' END, ",
            created!(),
            ", ",
            created!(),
            " + CAST(?15 AS BIGINT), \
             CASE WHEN i % 20 = 19 THEN NULL ELSE ",
            created!(),
            " + CAST(?14 AS BIGINT) END, \
             CASE WHEN i % 20 = 19 THEN ",
            created!(),
            " + CAST(?15 AS BIGINT) END, NULL, \
             CASE WHEN i % 20 = 19 THEN NULL ELSE CAST(?16 AS TEXT) END, \
             CASE WHEN i % 20 = 19 THEN NULL ELSE CAST(?11 AS BIGINT) END, \
             CASE WHEN i % 20 = 19 THEN NULL ELSE CAST(?12 AS TEXT) END, NULL, \
             CASE WHEN i % 20 = 19 THEN NULL ELSE CAST(?17 AS BIGINT) END, \
             CASE WHEN i % 20 = 19 THEN NULL ELSE CAST(?18 AS BIGINT) END \
             FROM n WHERE ",
            which!()
        ),
        ALL,
        0i64,
        0i64,
        owner.as_str(),
        amount.minor(),
        code,
        plan.notify_url.as_str(),
        PAID_AFTER_MS,
        EXPIRES_AFTER_MS,
        payer.as_str(),
        fee.fee.minor(),
        fee.tax.minor(),
    );
    rows.insert("payment".into(), payments);

    // The refunds, complete at once.
    let refunds = run!(
        over_chunk!(
            "INSERT INTO refund (refund_id, owner_client_id, refund_request_id, payment_id, amount_minor, currency, \
             returned_minor, returned_currency, reference_refund_id, reason, notify_url, async_requested, status, \
             completes_at_ms, fails_on_completion, finished_at_ms, created_at_ms, agent_client_id, \
             fee_returned_minor, tax_returned_minor) \
             SELECT CAST(?3 AS TEXT) || 'F' || CAST(i AS TEXT), CAST(?10 AS TEXT), CAST(?3 AS TEXT) || 'Q' || CAST(i AS TEXT), \
             CAST(?3 AS TEXT) || 'P' || CAST(i AS TEXT), CAST(?11 AS BIGINT), CAST(?12 AS TEXT), CAST(?11 AS BIGINT), CAST(?12 AS TEXT), \
             NULL, NULL, CAST(?13 AS TEXT), 0, 'SUCCESS', NULL, 0, ",
            created!(),
            " + CAST(?14 AS BIGINT), ",
            created!(),
            " + CAST(?14 AS BIGINT), NULL, CAST(?15 AS BIGINT), CAST(?16 AS BIGINT) FROM n WHERE ",
            which!()
        ),
        REFUNDED,
        0i64,
        0i64,
        owner.as_str(),
        amount.minor(),
        code,
        plan.notify_url.as_str(),
        PAID_AFTER_MS + REFUNDED_AFTER_MS,
        returned.fee.minor(),
        returned.tax.minor(),
    );
    rows.insert("refund".into(), refunds);

    // The postings of each paid payment and refund, and their entries, as core makes them.
    let postings_of: [PostingsOf; 4] = [
        (PAID, 0, "PAYMENT", PAID_AFTER_MS, entries(&ledger::payment(&payer, owner, amount, amount)?)),
        (PAID, 1, "FEE", PAID_AFTER_MS, fee_posting_entries(fee_entries(owner, fee, 1)?)),
        (
            REFUNDED,
            2,
            "REFUND",
            PAID_AFTER_MS + REFUNDED_AFTER_MS,
            entries(&ledger::refund(&payer, owner, amount, amount)?),
        ),
        (
            REFUNDED,
            3,
            "FEE_RETURN",
            PAID_AFTER_MS + REFUNDED_AFTER_MS,
            fee_posting_entries(fee_entries(owner, returned, -1)?),
        ),
    ];
    for (which, offset, kind, after, posting_entries) in &postings_of {
        if posting_entries.is_empty() {
            continue;
        }
        postings += run!(
            over_chunk!(
                "INSERT INTO posting (posting_id, kind, payment_id, created_at_ms, settlement_batch_id) \
                 SELECT ",
                posting_id!(),
                ", CAST(?10 AS TEXT), CAST(?3 AS TEXT) || 'P' || CAST(i AS TEXT), ",
                created!(),
                " + CAST(?11 AS BIGINT), NULL FROM n WHERE ",
                which!()
            ),
            *which,
            first_posting,
            *offset,
            *kind,
            *after,
        );
        for (account, money) in posting_entries {
            entry_rows += run!(
                over_chunk!(
                    "INSERT INTO entry (posting_id, account, currency, amount_minor) SELECT ",
                    posting_id!(),
                    ", CAST(?10 AS TEXT), CAST(?11 AS TEXT), CAST(?12 AS BIGINT) FROM n WHERE ",
                    which!()
                ),
                *which,
                first_posting,
                *offset,
                account.as_str(),
                money.currency().code(),
                money.minor(),
            );
        }
    }
    rows.insert("posting".into(), postings);
    rows.insert("entry".into(), entry_rows);

    // Paid payments and refunds wait for their day's settlement.
    let mut queued = 0;
    for (which, kind, id, after) in
        [(PAID, "PAYMENT", "P", PAID_AFTER_MS), (REFUNDED, "REFUND", "F", PAID_AFTER_MS + REFUNDED_AFTER_MS)]
    {
        queued += run!(
            over_chunk!(
                "INSERT INTO settlement_queue (kind, transaction_id, owner_client_id, settlement_currency, completed_at_ms) \
                 SELECT CAST(?10 AS TEXT), CAST(?3 AS TEXT) || CAST(?11 AS TEXT) || CAST(i AS TEXT), CAST(?12 AS TEXT), \
                 CAST(?13 AS TEXT), ",
                created!(),
                " + CAST(?14 AS BIGINT) FROM n WHERE ",
                which!()
            ),
            which,
            0i64,
            0i64,
            kind,
            id,
            owner.as_str(),
            settlement_currency,
            after,
        );
    }
    rows.insert("settlement_queue".into(), queued);

    // Each notification, delivered at its first attempt, and that attempt.
    let (mut notifications, mut attempts) = (0, 0);
    for (which, kind, id, status, result, after) in [
        (PAID, "PAYMENT_RESULT", "P", "SUCCESS", "SUCCESS", PAID_AFTER_MS),
        (FAILED, "PAYMENT_RESULT", "P", "FAIL", "ORDER_IS_CLOSED", EXPIRES_AFTER_MS),
        (REFUNDED, "REFUND_RESULT", "F", "SUCCESS", "SUCCESS", PAID_AFTER_MS + REFUNDED_AFTER_MS),
    ] {
        notifications += run!(
            over_chunk!(
                "INSERT INTO notification (notification_id, recipient_client_id, kind, subject_id, url, event_status, \
                 event_code, event_at_ms, status, attempts, next_attempt_at_ms, manual, delivered_at_ms, created_at_ms, \
                 secret) \
                 SELECT CAST(?10 AS TEXT) || '-' || CAST(?3 AS TEXT) || CAST(?11 AS TEXT) || CAST(i AS TEXT) || '-' || CAST(?12 AS TEXT), \
                 CAST(?14 AS TEXT), CAST(?10 AS TEXT), CAST(?3 AS TEXT) || CAST(?11 AS TEXT) || CAST(i AS TEXT), CAST(?15 AS TEXT), \
                 CAST(?12 AS TEXT), CAST(?13 AS TEXT), ",
                created!(),
                " + CAST(?16 AS BIGINT), 'DELIVERED', 1, NULL, 0, ",
                created!(),
                " + CAST(?16 AS BIGINT) + 150, ",
                created!(),
                " + CAST(?16 AS BIGINT), NULL FROM n WHERE ",
                which!()
            ),
            which,
            0i64,
            0i64,
            kind,
            id,
            status,
            result,
            owner.as_str(),
            plan.notify_url.as_str(),
            after,
        );
        attempts += run!(
            over_chunk!(
                "INSERT INTO delivery_attempt (notification_id, attempt, scheduled_at_ms, started_at_ms, duration_ms, \
                 http_status, outcome, error, manual, answer_excerpt) \
                 SELECT CAST(?10 AS TEXT) || '-' || CAST(?3 AS TEXT) || CAST(?11 AS TEXT) || CAST(i AS TEXT) || '-' || CAST(?12 AS TEXT), \
                 1, ",
                created!(),
                " + CAST(?13 AS BIGINT), ",
                created!(),
                " + CAST(?13 AS BIGINT), 150, 200, 'DELIVERED', NULL, 0, \
                 '{\"result\":{\"resultCode\":\"SUCCESS\",\"resultStatus\":\"S\",\"resultMessage\":\"success\"}}' \
                 FROM n WHERE ",
                which!()
            ),
            which,
            0i64,
            0i64,
            kind,
            id,
            status,
            after,
        );
    }
    rows.insert("notification".into(), notifications);
    rows.insert("delivery_attempt".into(), attempts);

    // Each call in the audit trail and the API log.
    let (mut audit, mut logged) = (0, 0);
    for (which, call, request, after) in
        [(ALL, &plan.pay, "R", 0), (REFUNDED, &plan.refund, "Q", PAID_AFTER_MS + REFUNDED_AFTER_MS)]
    {
        audit += run!(
            over_chunk!(
                "INSERT INTO audit_event (at_ms, client_id, key_version, agent_client_id, merchant_client_id, api, \
                 idempotency_key, result_status, result_code) \
                 SELECT ",
                created!(),
                " + CAST(?10 AS BIGINT), CAST(?11 AS TEXT), CAST(?12 AS BIGINT), NULL, NULL, CAST(?13 AS TEXT), \
                 CAST(?3 AS TEXT) || CAST(?14 AS TEXT) || CAST(i AS TEXT), 'S', 'SUCCESS' FROM n WHERE ",
                which!()
            ),
            which,
            0i64,
            0i64,
            after,
            owner.as_str(),
            plan.key_version,
            call.api.as_str(),
            request,
        );
        logged += run!(
            over_chunk!(
                "INSERT INTO api_log (client_id, at_ms, api, path, verified, key_version, agent_client_id, \
                 result_status, result_code, http_status, latency_micros, request_headers, request_body, \
                 response_headers, response_body, diagnosis, request_id) \
                 SELECT CAST(?11 AS TEXT), ",
                created!(),
                " + CAST(?10 AS BIGINT), CAST(?13 AS TEXT), CAST(?15 AS TEXT), 1, CAST(?12 AS BIGINT), NULL, 'S', 'SUCCESS', \
                 200, 900, CAST(?16 AS TEXT), \
                 REPLACE(REPLACE(CAST(?17 AS TEXT), '{request}', CAST(?3 AS TEXT) || CAST(?14 AS TEXT) || CAST(i AS TEXT)), \
                   '{payment}', CAST(?3 AS TEXT) || 'P' || CAST(i AS TEXT)), \
                 CAST(?18 AS TEXT), \
                 REPLACE(REPLACE(CAST(?19 AS TEXT), '{request}', CAST(?3 AS TEXT) || CAST(?14 AS TEXT) || CAST(i AS TEXT)), \
                   '{payment}', CAST(?3 AS TEXT) || 'P' || CAST(i AS TEXT)), \
                 NULL, CAST(?3 AS TEXT) || 'L' || CAST(?14 AS TEXT) || CAST(i AS TEXT) FROM n WHERE ",
                which!()
            ),
            which,
            0i64,
            0i64,
            after,
            owner.as_str(),
            plan.key_version,
            call.api.as_str(),
            request,
            call.path.as_str(),
            call.request_headers.as_str(),
            call.request_body.as_str(),
            call.response_headers.as_str(),
            call.response_body.as_str(),
        );
    }
    rows.insert("audit_event".into(), audit);
    rows.insert("api_log".into(), logged);

    // PostgreSQL's identity of postings continues after the ids given here.
    if db.dialect() == Dialect::Postgres {
        db.query(
            "SELECT setval(pg_get_serial_sequence('posting', 'posting_id'), (SELECT MAX(posting_id) FROM posting))",
            &[],
        )?;
    }
    Ok(rows)
}

#[async_trait]
impl<E: Engine> PreloadStore for SqlStore<E> {
    async fn preload_history(
        &self,
        plan: &PreloadPlan,
        first: u64,
        count: u64,
    ) -> Result<PreloadRows, StoreError> {
        let (plan, rules, limit) = (plan.clone(), self.fee_rules.clone(), self.wallet_limit);
        self.engine
            .write(Isolation::Serializable, move |db| preload(db, &plan, first, count, &rules, limit))
            .await
    }

    async fn preload_due_notifications(
        &self,
        owner: &ClientId,
        prefix: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let (owner, prefix) = (owner.as_str().to_owned(), prefix.to_owned());
        self.engine
            .write(Isolation::Serializable, move |db| {
                // The preloaded history's payment results: its own ids, never a real payment's.
                macro_rules! preloaded {
                    () => {
                        "recipient_client_id = ?1 AND kind = 'PAYMENT_RESULT' \
                         AND SUBSTR(subject_id, 1, LENGTH(CAST(?2 AS TEXT))) = CAST(?2 AS TEXT)"
                    };
                }
                db.execute(
                    concat!(
                        "DELETE FROM delivery_attempt WHERE notification_id IN \
                         (SELECT notification_id FROM notification WHERE ",
                        preloaded!(),
                        ")"
                    ),
                    params![owner, prefix],
                )?;
                db.execute(
                    concat!(
                        "UPDATE notification SET status = 'PENDING', attempts = 0, next_attempt_at_ms = ?3, \
                         delivered_at_ms = NULL, claimed_until_ms = NULL WHERE ",
                        preloaded!()
                    ),
                    params![owner, prefix, millis(now)],
                )
            })
            .await
    }
}
