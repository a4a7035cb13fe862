//! Refunds in the main file: created under their idempotency key after core has decided them
//! against the payment and its earlier refunds, all in the writer's one transaction, with the
//! money posted back and the notification queued as soon as the refund succeeds.

use ocpay_core::Timestamp;
use ocpay_core::ids::{ClientId, PaymentId};
use ocpay_core::ledger::{self, Account, AccountOwner, WalletLimit};
use ocpay_core::payer::PayerId;
use ocpay_core::refund::{Refund, RefundState, decide_refund};

use super::rows::{self, millis};
use super::{Db, Engine, Isolation, SqlStore, params};
use super::{ledger as stored_ledger, outbox, payments, settlement};
use crate::pages::PageCursor;
use crate::{
    AuditEvent, CreateRefund, NewRefund, PaymentLookup, RefundCompletion, RefundLookup, RefundStore,
    StoreError,
};
use async_trait::async_trait;
use ocpay_core::fees::FeeRules;
use ocpay_core::payment::Payment;

macro_rules! refund_columns {
    () => {
        "refund_id, owner_client_id, refund_request_id, payment_id, amount_minor, currency, returned_minor, \
         returned_currency, reference_refund_id, reason, notify_url, async_requested, status, completes_at_ms, \
         fails_on_completion, finished_at_ms, created_at_ms, agent_client_id"
    };
}

pub(super) fn find(
    db: &mut dyn Db,
    owner: &ClientId,
    lookup: &RefundLookup,
) -> Result<Option<Refund>, StoreError> {
    match lookup {
        RefundLookup::ById(id) => db.query_opt(
            concat!(
                "SELECT ",
                refund_columns!(),
                " FROM refund WHERE owner_client_id = ?1 AND refund_id = ?2"
            ),
            params![owner.as_str(), id.as_str()],
            rows::refund,
        ),
        RefundLookup::ByRequestId(id) => db.query_opt(
            concat!(
                "SELECT ",
                refund_columns!(),
                " FROM refund WHERE owner_client_id = ?1 AND refund_request_id = ?2"
            ),
            params![owner.as_str(), id.as_str()],
            rows::refund,
        ),
    }
}

pub(super) fn of_payment(
    db: &mut dyn Db,
    owner: &ClientId,
    payment_id: &PaymentId,
) -> Result<Vec<Refund>, StoreError> {
    db.query_all(
        concat!(
            "SELECT ",
            refund_columns!(),
            " FROM refund WHERE owner_client_id = ?1 AND payment_id = ?2 ORDER BY created_at_ms, rowid"
        ),
        params![owner.as_str(), payment_id.as_str()],
        rows::refund,
    )
}

pub(super) fn create(
    db: &mut dyn Db,
    new: &NewRefund,
    limit: WalletLimit,
    fee_rules: &FeeRules,
) -> Result<CreateRefund, StoreError> {
    let terms = &new.terms;
    if let Some(existing) = find(db, &terms.owner, &RefundLookup::ByRequestId(terms.request_id.clone()))? {
        return Ok(CreateRefund::Existing(existing));
    }
    let lookup = PaymentLookup::ById(terms.payment_id.clone());
    let Some(payment) = payments::find(db, &terms.owner, &lookup)? else {
        return Ok(CreateRefund::PaymentNotFound);
    };
    let earlier = of_payment(db, &terms.owner, &terms.payment_id)?;
    let returned = match decide_refund(&payment, &earlier, terms.amount, &new.policy, terms.created_at) {
        Ok(returned) => returned,
        Err(refusal) => return Ok(CreateRefund::Refused(refusal)),
    };
    let (state, fails) = match new.completion {
        RefundCompletion::Now => (RefundState::Success { refunded_at: terms.created_at }, false),
        RefundCompletion::SucceedsAt(completes_at) => (RefundState::Processing { completes_at }, false),
        RefundCompletion::FailsAt(completes_at) => (RefundState::Processing { completes_at }, true),
    };
    let refund = Refund { terms: terms.clone(), state, returned };
    insert(db, &refund, fails)?;
    if let RefundState::Success { refunded_at } = state {
        // A wallet that cannot take the money back without going over its maximum balance
        // fails the write: the refund is refused and nothing of it is kept.
        finish(db, &refund, refunded_at, limit, fee_rules)?;
    }
    Ok(CreateRefund::Created(refund))
}

fn insert(db: &mut dyn Db, refund: &Refund, fails: bool) -> Result<(), StoreError> {
    let terms = &refund.terms;
    let (completes_at, finished_at) = match refund.state {
        RefundState::Processing { completes_at } => (Some(millis(completes_at)), None),
        finished => (None, finished.finished_at().map(millis)),
    };
    db.execute(
        concat!(
            "INSERT INTO refund (",
            refund_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
        ),
        params![
            terms.id.as_str(),
            terms.owner.as_str(),
            terms.request_id.as_str(),
            terms.payment_id.as_str(),
            terms.amount.minor(),
            terms.amount.currency().code(),
            refund.returned.minor(),
            refund.returned.currency().code(),
            terms.reference_refund_id,
            terms.reason,
            terms.notify_url,
            terms.async_requested,
            refund.state.status(),
            completes_at,
            fails,
            finished_at,
            millis(terms.created_at),
            terms.agent.as_ref().map(ClientId::as_str),
        ],
    )?;
    Ok(())
}

/// Records a refund that reached its final state: a successful one moves its money back to
/// the payer; either queues its notification.
fn finish(
    db: &mut dyn Db,
    refund: &Refund,
    now: Timestamp,
    limit: WalletLimit,
    fee_rules: &FeeRules,
) -> Result<(), StoreError> {
    if let RefundState::Success { .. } = refund.state {
        let terms = &refund.terms;
        let payment = payment_of(db, refund)?;
        let payer = payer_of(&payment, refund)?;
        let posting = ledger::refund(&payer, &terms.owner, terms.amount, refund.returned)?;
        stored_ledger::write(db, &posting, Some(&terms.payment_id), now, limit)?;
        settlement::return_fee(db, refund, &payment, fee_rules, now, limit)?;
    }
    outbox::enqueue_refund_result(db, refund, now)
}

/// The payment a refund refunds.
fn payment_of(db: &mut dyn Db, refund: &Refund) -> Result<Payment, StoreError> {
    let terms = &refund.terms;
    let lookup = PaymentLookup::ById(terms.payment_id.clone());
    payments::find(db, &terms.owner, &lookup)?
        .ok_or_else(|| StoreError::Corrupt(format!("refund {} has no payment", terms.id)))
}

/// The payer whose wallet a refund returns money to.
fn payer_of(payment: &Payment, refund: &Refund) -> Result<PayerId, StoreError> {
    let charge = payment
        .charge
        .as_ref()
        .ok_or_else(|| StoreError::Corrupt(format!("refund {} of an unpaid payment", refund.terms.id)))?;
    Ok(charge.payer.clone())
}

/// Whether the payer's wallet can take a refund's money back within its maximum balance.
fn wallet_has_room(db: &mut dyn Db, refund: &Refund, limit: WalletLimit) -> Result<bool, StoreError> {
    let payer = payer_of(&payment_of(db, refund)?, refund)?;
    let wallet = Account::new(AccountOwner::Wallet(payer), refund.returned.currency());
    let balance = stored_ledger::balance(db, &wallet)?;
    Ok(refund.returned.minor() <= limit.room(balance).minor())
}

pub(super) fn complete(
    db: &mut dyn Db,
    now: Timestamp,
    limit: u32,
    wallet_limit: WalletLimit,
    fee_rules: &FeeRules,
) -> Result<Vec<Refund>, StoreError> {
    let sql = queue_rows!(
        db,
        concat!(
            "SELECT ",
            refund_columns!(),
            " FROM refund WHERE status = 'PROCESSING' AND completes_at_ms <= ?1 ORDER BY completes_at_ms LIMIT ?2"
        )
    );
    let due = db.query_all(sql, params![millis(now), i64::from(limit)], |row| {
        Ok((rows::refund(row)?, row.get::<_, bool>("fails_on_completion")?))
    })?;
    let mut completed = Vec::with_capacity(due.len());
    for (mut refund, fails) in due {
        // A refund the wallet can no longer take back within its maximum balance fails, moving
        // nothing, rather than failing the whole round again and again.
        let fails = fails || !wallet_has_room(db, &refund, wallet_limit)?;
        refund.state = if fails {
            RefundState::Fail { failed_at: now }
        } else {
            RefundState::Success { refunded_at: now }
        };
        let updated = db.execute(
            "UPDATE refund SET status = ?1, finished_at_ms = ?2, completes_at_ms = NULL \
                 WHERE refund_id = ?3 AND status = 'PROCESSING'",
            params![refund.state.status(), millis(now), refund.terms.id.as_str()],
        )?;
        if updated != 1 {
            return Err(StoreError::Corrupt(format!("refund {} changed under its writer", refund.terms.id)));
        }
        if !fails {
            // Queue work runs at READ COMMITTED on PostgreSQL: the payment's row is locked so
            // that two refunds of one payment completing at once on two nodes work out their
            // shares of its fee one after the other, each seeing what the other returned.
            db.query_opt(
                locked_row!(db, "SELECT payment_id FROM payment WHERE payment_id = ?1"),
                params![refund.terms.payment_id.as_str()],
                |_| Ok(()),
            )?;
        }
        finish(db, &refund, now, wallet_limit, fee_rules)?;
        completed.push(refund);
    }
    Ok(completed)
}

/// A page of a participant's refunds, newest first: of one status through
/// `refund_by_owner_status_created`, of every status through `refund_by_owner_created`.
pub(super) fn page(
    db: &mut dyn Db,
    owner: &ClientId,
    status: Option<&str>,
    after: Option<&PageCursor>,
    limit: u32,
) -> Result<Vec<Refund>, StoreError> {
    let (start_at, start_id) = after.map_or((i64::MAX, ""), |cursor| (millis(cursor.created_at), &cursor.id));
    if let Some(status) = status {
        return db.query_all(
            concat!(
                "SELECT ",
                refund_columns!(),
                " FROM refund WHERE owner_client_id = ?1 AND status = ?5 \
                  AND created_at_ms <= ?2 AND (created_at_ms, refund_id) < (?2, ?3) \
                  ORDER BY created_at_ms DESC, refund_id DESC LIMIT ?4"
            ),
            params![owner.as_str(), start_at, start_id, i64::from(limit), status],
            rows::refund,
        );
    }
    db.query_all(
        concat!(
            "SELECT ",
            refund_columns!(),
            " FROM refund WHERE owner_client_id = ?1 \
              AND created_at_ms <= ?2 AND (created_at_ms, refund_id) < (?2, ?3) \
              ORDER BY created_at_ms DESC, refund_id DESC LIMIT ?4"
        ),
        params![owner.as_str(), start_at, start_id, i64::from(limit)],
        rows::refund,
    )
}

#[async_trait]
impl<E: Engine> RefundStore for SqlStore<E> {
    async fn create_refund_audited(
        &self,
        refund: &NewRefund,
        audit: Option<&AuditEvent>,
    ) -> Result<CreateRefund, StoreError> {
        let (refund, audit) = (refund.clone(), audit.cloned());
        let (limit, rules) = (self.wallet_limit, self.fee_rules.clone());
        self.engine
            .write(Isolation::Serializable, move |db| {
                let created = create(db, &refund, limit, &rules)?;
                if matches!(created, CreateRefund::Created(_)) {
                    super::access::record_audit(db, audit.as_slice())?;
                }
                Ok(created)
            })
            .await
    }

    async fn refund(&self, owner: &ClientId, lookup: &RefundLookup) -> Result<Option<Refund>, StoreError> {
        self.engine.read(|db| find(db, owner, lookup)).await
    }

    async fn refunds_of_payment(
        &self,
        owner: &ClientId,
        payment_id: &PaymentId,
    ) -> Result<Vec<Refund>, StoreError> {
        self.engine.read(|db| of_payment(db, owner, payment_id)).await
    }

    async fn complete_refunds(&self, now: Timestamp, limit: u32) -> Result<Vec<Refund>, StoreError> {
        let (wallet_limit, rules) = (self.wallet_limit, self.fee_rules.clone());
        self.engine.write(Isolation::RowLocks, move |db| complete(db, now, limit, wallet_limit, &rules)).await
    }

    async fn refunds_page(
        &self,
        owner: &ClientId,
        status: Option<&str>,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError> {
        self.engine.read(|db| page(db, owner, status, after, limit)).await
    }
}
