//! Payments in the main file: creation under the idempotency key, and every transition, each
//! decided by core inside the writer's transaction and saved with its postings and its
//! notification.

use ocpay_core::Timestamp;
use ocpay_core::ids::{ClientId, CodeToken, PaymentId};
use ocpay_core::ledger::{self, Account, AccountOwner, WalletLimit};
use ocpay_core::money::{Currency, Money};
use ocpay_core::payment::{
    CancelDecision, CancelWindow, FailReason, Payment, PaymentState, PaymentStatus, PaymentTerms,
    decide_cancel,
};

use super::rows::{self, millis};
use super::{Db, Engine, Isolation, SqlStore, ToValue, Value, params};
use super::{ledger as stored_ledger, outbox, settlement};
use crate::pages::{PageCursor, PaymentFilter};
use crate::{AuditEvent, PaymentStore, SandboxFault};
use crate::{
    CancelPayment, CreatePayment, FailPayment, PaymentLookup, SettlePayment, Settlement, StoreError,
};
use async_trait::async_trait;
use ocpay_core::fees::FeeRules;

/// A payment by its owner and id.
const BY_ID: &str =
    concat!("SELECT ", payment_columns!(), " FROM payment WHERE owner_client_id = ?1 AND payment_id = ?2");

pub(super) fn find(
    db: &mut dyn Db,
    owner: &ClientId,
    lookup: &PaymentLookup,
) -> Result<Option<Payment>, StoreError> {
    match lookup {
        PaymentLookup::ById(id) => db.query_opt(BY_ID, params![owner.as_str(), id.as_str()], rows::payment),
        PaymentLookup::ByRequestId(id) => db.query_opt(
            concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payment WHERE owner_client_id = ?1 AND payment_request_id = ?2"
            ),
            params![owner.as_str(), id.as_str()],
            rows::payment,
        ),
    }
}

pub(super) fn find_by_code(db: &mut dyn Db, code: &CodeToken) -> Result<Option<Payment>, StoreError> {
    db.query_opt(
        concat!("SELECT ", payment_columns!(), " FROM payment WHERE code_token = ?1"),
        params![code.as_str()],
        rows::payment,
    )
}

pub(super) fn create(db: &mut dyn Db, terms: &PaymentTerms) -> Result<CreatePayment, StoreError> {
    if insert(db, terms)? {
        return Ok(CreatePayment::Created(Payment {
            terms: terms.clone(),
            state: PaymentState::Processing,
            charge: None,
        }));
    }
    let existing = find(db, &terms.owner, &PaymentLookup::ByRequestId(terms.request_id.clone()))?
        .ok_or_else(|| StoreError::Corrupt("a conflicting payment is missing".into()))?;
    Ok(CreatePayment::Existing(existing))
}

/// Inserts a payment in `PROCESSING` unless its idempotency key exists; says whether it did.
fn insert(db: &mut dyn Db, terms: &PaymentTerms) -> Result<bool, StoreError> {
    let order = &terms.order;
    let merchant = &order.merchant;
    let inserted = db.execute(
        "INSERT INTO payment (payment_id, owner_client_id, payment_request_id, amount_minor, currency, \
         order_amount_minor, order_currency, reference_order_id, order_description, reference_merchant_id, \
         merchant_name, merchant_mcc, merchant_display_name, reference_store_id, store_name, store_mcc, \
         code_token, notify_url, redirect_url, settlement_currency, merchant_region, extend_info, status, \
         created_at_ms, expires_at_ms, agent_client_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
         ?21, ?22, 'PROCESSING', ?23, ?24, ?25) \
         ON CONFLICT (owner_client_id, payment_request_id) DO NOTHING",
        params![
            terms.id.as_str(),
            terms.owner.as_str(),
            terms.request_id.as_str(),
            terms.amount.minor(),
            terms.amount.currency().code(),
            order.amount.minor(),
            order.amount.currency().code(),
            order.reference_order_id,
            order.description,
            merchant.reference_merchant_id,
            merchant.name,
            merchant.mcc,
            merchant.display_name,
            merchant.store.reference_store_id,
            merchant.store.name,
            merchant.store.mcc,
            terms.code_token.as_str(),
            terms.notify_url,
            terms.redirect_url,
            terms.settlement_currency.map(|currency| currency.code()),
            terms.merchant_region,
            terms.extend_info,
            millis(terms.created_at),
            millis(terms.expires_at),
            terms.agent.as_ref().map(ClientId::as_str),
        ],
    )?;
    Ok(inserted == 1)
}

/// Saves a payment's new state over the one it had when read. The status in the WHERE clause
/// makes a lost update impossible: a payment changed since it was read fails the write.
///
/// The row is found by its random code token, not by its time-ordered id: on PostgreSQL a
/// serialisable update reads the index pages it searches, and every new payment writes into
/// the id index's last page, so concurrent payments searching that page failed to serialise
/// (measured: a fifth fewer complete payments per second, and failures past every retry).
fn save_state(db: &mut dyn Db, payment: &Payment, previous: PaymentStatus) -> Result<(), StoreError> {
    let (fail_reason, failed_at, cancelled_at) = match payment.state {
        PaymentState::Fail { reason, failed_at } => (Some(reason.as_str()), Some(millis(failed_at)), None),
        PaymentState::Cancelled { cancelled_at, .. } => (None, None, Some(millis(cancelled_at))),
        PaymentState::Processing | PaymentState::Success { .. } => (None, None, None),
    };
    let charge = payment.charge.as_ref();
    let quote = charge.and_then(|charge| charge.quote.as_ref());
    let updated = db.execute(
        "UPDATE payment SET status = ?1, fail_reason = ?2, paid_at_ms = ?3, failed_at_ms = ?4, \
         cancelled_at_ms = ?5, payer_id = ?6, charged_minor = ?7, charged_currency = ?8, quote_pair = ?9, \
         quote_price = ?10, quoted_at_ms = ?11 WHERE code_token = ?12 AND status = ?13",
        params![
            payment.state.status().as_str(),
            fail_reason,
            payment.state.paid_at().map(millis),
            failed_at,
            cancelled_at,
            charge.map(|charge| charge.payer.as_str()),
            charge.map(|charge| charge.amount.minor()),
            charge.map(|charge| charge.amount.currency().code()),
            quote.map(|quote| quote.rate.pair()),
            quote.map(|quote| quote.rate.price()),
            quote.map(|quote| millis(quote.quoted_at)),
            payment.terms.code_token.as_str(),
            previous.as_str(),
        ],
    )?;
    if updated == 1 {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!("payment {} changed under its writer", payment.terms.id)))
    }
}

pub(super) fn cancel(
    db: &mut dyn Db,
    owner: &ClientId,
    lookup: &PaymentLookup,
    window: &CancelWindow,
    now: Timestamp,
    limit: WalletLimit,
) -> Result<CancelPayment, StoreError> {
    let Some(mut payment) = find(db, owner, lookup)? else { return Ok(CancelPayment::NotFound) };
    let previous = payment.state.status();
    let has_refunds: bool = db.query_one(
        "SELECT EXISTS (SELECT 1 FROM refund WHERE payment_id = ?1 AND status <> 'FAIL')",
        params![payment.terms.id.as_str()],
        |row| row.get(0),
    )?;
    let decision = match decide_cancel(&payment, has_refunds, window, now) {
        Ok(decision) => decision,
        Err(refusal) => return Ok(CancelPayment::Refused(payment, refusal)),
    };
    match decision {
        CancelDecision::Unchanged => return Ok(CancelPayment::Done(payment)),
        CancelDecision::Expire => {
            payment.state = payment.closed_state();
            save_state(db, &payment, previous)?;
            outbox::enqueue_payment_result(db, &payment, now)?;
            return Ok(CancelPayment::Done(payment));
        }
        CancelDecision::Close => {}
        // Money goes back exactly as it came: the payment's own posting, negated. A wallet that
        // cannot take it back without going over its maximum balance fails the whole cancel.
        // The fee comes back with it, and the cancel settles like any completed transaction.
        CancelDecision::Reverse => {
            stored_ledger::reverse_payment(db, &payment.terms.id, now, limit)?;
            settlement::enqueue_cancel(db, &payment, now)?;
        }
    }
    payment.state = PaymentState::Cancelled { cancelled_at: now, paid_at: payment.state.paid_at() };
    save_state(db, &payment, previous)?;
    Ok(CancelPayment::Done(payment))
}

pub(super) fn settle(
    db: &mut dyn Db,
    settlement: &Settlement,
    limit: WalletLimit,
    fee_rules: &FeeRules,
) -> Result<SettlePayment, StoreError> {
    let Some(mut payment) = find_by_code(db, &settlement.code)? else {
        return Ok(SettlePayment::NotFound);
    };
    if let Err(reason) = payment.check_payable(settlement.now) {
        return Ok(SettlePayment::NotPayable(payment, reason));
    }
    let charge = &settlement.charge;
    if stored_ledger::find_payer(db, &charge.payer)?.is_none() {
        return Ok(SettlePayment::UnknownPayer);
    }
    let wallet = Account::new(AccountOwner::Wallet(charge.payer.clone()), charge.amount.currency());
    let balance = stored_ledger::balance(db, &wallet)?;
    if balance.minor() < charge.amount.minor() {
        // A top-up is written only with the payment it makes possible, never alone, and never
        // takes the wallet above its maximum balance: a charge beyond that is not covered.
        let room = limit.room(balance);
        let covering = settlement
            .sandbox_top_up
            .map(|top_up| Money::new(top_up.minor().min(room.minor()), top_up.currency()))
            .filter(|top_up| {
                balance.checked_add(*top_up).is_ok_and(|topped_up| topped_up.minor() >= charge.amount.minor())
            });
        let Some(top_up) = covering else { return Ok(SettlePayment::InsufficientBalance { balance }) };
        let environment = payment.terms.environment();
        let posting = ledger::top_up(&charge.payer, environment, top_up)?;
        stored_ledger::write(db, &posting, None, settlement.now, limit)?;
    }
    let posting = ledger::payment(&charge.payer, &payment.terms.owner, charge.amount, payment.terms.amount)?;
    stored_ledger::write(db, &posting, Some(&payment.terms.id), settlement.now, limit)?;
    payment.state = PaymentState::Success { paid_at: settlement.now };
    payment.charge = Some(charge.clone());
    save_state(db, &payment, PaymentStatus::Processing)?;
    settlement::charge_fee(db, &payment, fee_rules, settlement.now, limit)?;
    outbox::enqueue_payment_result(db, &payment, settlement.now)?;
    Ok(SettlePayment::Paid(payment))
}

pub(super) fn fail(
    db: &mut dyn Db,
    code: &CodeToken,
    reason: FailReason,
    now: Timestamp,
) -> Result<FailPayment, StoreError> {
    let Some(mut payment) = find_by_code(db, code)? else { return Ok(FailPayment::NotFound) };
    if let Err(not_payable) = payment.check_payable(now) {
        return Ok(FailPayment::NotPayable(payment, not_payable));
    }
    payment.state = PaymentState::Fail { reason, failed_at: now };
    save_state(db, &payment, PaymentStatus::Processing)?;
    outbox::enqueue_payment_result(db, &payment, now)?;
    Ok(FailPayment::Failed(payment))
}

pub(super) fn expire(db: &mut dyn Db, now: Timestamp, limit: u32) -> Result<Vec<Payment>, StoreError> {
    let sql = queue_rows!(
        db,
        concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payment WHERE status = 'PROCESSING' AND expires_at_ms <= ?1 ORDER BY expires_at_ms LIMIT ?2"
        )
    );
    let overdue = db.query_all(sql, params![millis(now), i64::from(limit)], rows::payment)?;
    let mut expired = Vec::with_capacity(overdue.len());
    for mut payment in overdue.into_iter().filter(|payment| payment.is_overdue(now)) {
        // The payment failed when its code expired, however late the job came round.
        payment.state = payment.closed_state();
        save_state(db, &payment, PaymentStatus::Processing)?;
        outbox::enqueue_payment_result(db, &payment, now)?;
        expired.push(payment);
    }
    Ok(expired)
}

/// The filter and cursor of a page as parameters `?1` to `?8`: the owner; the creation times
/// from (inclusive) and up to the keyset start, which folds `to` (exclusive) and the cursor into
/// one bound, so that both engines walk one range of an index that starts with the owner; the
/// currency and the amount range; the limit.
fn page_params<'a>(
    owner: &'a ClientId,
    filter: &'a PaymentFilter,
    after: Option<&'a PageCursor>,
    limit: u32,
) -> (&'a str, i64, i64, &'a str, Option<&'static str>, i64, i64, i64) {
    let to = (filter.to.map_or(i64::MAX, millis), "");
    let start = match after {
        Some(cursor) if (millis(cursor.created_at), cursor.id.as_str()) < to => {
            (millis(cursor.created_at), cursor.id.as_str())
        }
        _ => to,
    };
    (
        owner.as_str(),
        filter.from.map_or(i64::MIN, millis),
        start.0,
        start.1,
        filter.currency.map(Currency::code),
        filter.amount_min.unwrap_or(i64::MIN),
        filter.amount_max.unwrap_or(i64::MAX),
        i64::from(limit),
    )
}

/// A page of a participant's payments, newest first. Each filter reads an index made for it:
/// a request id the idempotency key, a status `payment_by_owner_status_created`, anything else
/// `payment_by_owner_created`; creation times bound the range walked, and the currency and
/// amount narrow its rows.
pub(super) fn page(
    db: &mut dyn Db,
    owner: &ClientId,
    filter: &PaymentFilter,
    after: Option<&PageCursor>,
    limit: u32,
) -> Result<Vec<Payment>, StoreError> {
    let (owner, from, start_at, start_id, currency, amount_min, amount_max, limit) =
        page_params(owner, filter, after, limit);
    let status = filter.status.map(PaymentStatus::as_str);
    if let Some(request_id) = &filter.request_id {
        return db.query_all(
            concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payment WHERE owner_client_id = ?1 AND payment_request_id = ?9 \
                  AND created_at_ms >= ?2 AND created_at_ms <= ?3 AND (created_at_ms, payment_id) < (?3, ?4) \
                  AND (CAST(?5 AS TEXT) IS NULL OR currency = ?5) AND amount_minor >= ?6 AND amount_minor <= ?7 \
                  AND (CAST(?10 AS TEXT) IS NULL OR status = ?10) \
                  ORDER BY created_at_ms DESC, payment_id DESC LIMIT ?8"
            ),
            params![
                owner,
                from,
                start_at,
                start_id,
                currency,
                amount_min,
                amount_max,
                limit,
                request_id.as_str(),
                status
            ],
            rows::payment,
        );
    }
    if let Some(status) = status {
        return db.query_all(
            concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payment WHERE owner_client_id = ?1 AND status = ?9 \
                  AND created_at_ms >= ?2 AND created_at_ms <= ?3 AND (created_at_ms, payment_id) < (?3, ?4) \
                  AND (CAST(?5 AS TEXT) IS NULL OR currency = ?5) AND amount_minor >= ?6 AND amount_minor <= ?7 \
                  ORDER BY created_at_ms DESC, payment_id DESC LIMIT ?8"
            ),
            params![owner, from, start_at, start_id, currency, amount_min, amount_max, limit, status],
            rows::payment,
        );
    }
    db.query_all(
        concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payment WHERE owner_client_id = ?1 \
              AND created_at_ms >= ?2 AND created_at_ms <= ?3 AND (created_at_ms, payment_id) < (?3, ?4) \
              AND (CAST(?5 AS TEXT) IS NULL OR currency = ?5) AND amount_minor >= ?6 AND amount_minor <= ?7 \
              ORDER BY created_at_ms DESC, payment_id DESC LIMIT ?8"
        ),
        params![owner, from, start_at, start_id, currency, amount_min, amount_max, limit],
        rows::payment,
    )
}

#[async_trait]
impl<E: Engine> PaymentStore for SqlStore<E> {
    async fn create_payment_audited(
        &self,
        terms: &PaymentTerms,
        audit: Option<&AuditEvent>,
    ) -> Result<CreatePayment, StoreError> {
        let (terms, audit) = (terms.clone(), audit.cloned());
        self.engine
            .write(Isolation::Serializable, move |db| {
                let created = create(db, &terms)?;
                if matches!(created, CreatePayment::Created(_)) {
                    super::access::record_audit(db, audit.as_slice())?;
                }
                Ok(created)
            })
            .await
    }

    async fn payment(&self, owner: &ClientId, lookup: &PaymentLookup) -> Result<Option<Payment>, StoreError> {
        self.engine.read(|db| find(db, owner, lookup)).await
    }

    async fn payments_by_id(
        &self,
        wanted: &[(ClientId, PaymentId)],
    ) -> Result<Vec<Option<Payment>>, StoreError> {
        self.engine
            .read(|db| {
                let keys: Vec<[Value<'_>; 2]> = wanted
                    .iter()
                    .map(|(owner, id)| [owner.as_str().to_value(), id.as_str().to_value()])
                    .collect();
                let queries: Vec<(&'static str, &[Value<'_>])> =
                    keys.iter().map(|key| (BY_ID, &key[..])).collect();
                db.query_batch(&queries)?
                    .iter()
                    .map(|rows| rows.first().map(rows::payment).transpose())
                    .collect()
            })
            .await
    }

    async fn cancel_payment_audited(
        &self,
        owner: &ClientId,
        lookup: &PaymentLookup,
        window: &CancelWindow,
        now: Timestamp,
        audit: Option<&AuditEvent>,
    ) -> Result<CancelPayment, StoreError> {
        let (owner, lookup, window, limit) = (owner.clone(), lookup.clone(), *window, self.wallet_limit);
        let audit = audit.cloned();
        self.engine
            .write(Isolation::Serializable, move |db| {
                let cancelled = cancel(db, &owner, &lookup, &window, now, limit)?;
                if matches!(cancelled, CancelPayment::Done(_)) {
                    super::access::record_audit(db, audit.as_slice())?;
                }
                Ok(cancelled)
            })
            .await
    }

    async fn payment_by_code(&self, code: &CodeToken) -> Result<Option<Payment>, StoreError> {
        self.engine.read(|db| find_by_code(db, code)).await
    }

    async fn settle_payment(&self, settlement: &Settlement) -> Result<SettlePayment, StoreError> {
        let settlement = settlement.clone();
        let (limit, rules) = (self.wallet_limit, self.fee_rules.clone());
        self.engine.write(Isolation::Serializable, move |db| settle(db, &settlement, limit, &rules)).await
    }

    async fn fail_payment(
        &self,
        code: &CodeToken,
        reason: FailReason,
        now: Timestamp,
    ) -> Result<FailPayment, StoreError> {
        let code = code.clone();
        self.engine.write(Isolation::Serializable, move |db| fail(db, &code, reason, now)).await
    }

    async fn expire_payments(&self, now: Timestamp, limit: u32) -> Result<Vec<Payment>, StoreError> {
        self.engine.write(Isolation::RowLocks, move |db| expire(db, now, limit)).await
    }

    async fn payments_page(
        &self,
        owner: &ClientId,
        filter: &PaymentFilter,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError> {
        self.engine.read(|db| page(db, owner, filter, after, limit)).await
    }

    async fn take_sandbox_fault(&self, fault: &SandboxFault, now: Timestamp) -> Result<bool, StoreError> {
        let (kind, key) = fault.key();
        self.engine
            .write(Isolation::Serializable, move |db| {
                let taken = db.execute(
                    "INSERT INTO sandbox_fault (kind, fault_key, taken_at_ms) VALUES (?1, ?2, ?3) \
                     ON CONFLICT DO NOTHING",
                    params![kind, key, super::rows::millis(now)],
                )?;
                Ok(taken == 1)
            })
            .await
    }
}
