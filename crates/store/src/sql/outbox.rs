//! The notification outbox in the main file: rows written with the state changes they report,
//! claimed by the dispatcher for a lease, and their delivery attempts.

use jiff::SignedDuration;
use ocpay_core::Timestamp;
use ocpay_core::access::Grant;
use ocpay_core::ids::ClientId;
use ocpay_core::payment::{Payment, PaymentState, is_notified};
use ocpay_core::refund::{Refund, RefundState};
use ocpay_core::registration::{Registration, RegistrationState};

use super::rows::{self, millis};
use super::{Db, Dialect, Engine, Isolation, Row, SqlStore, ToValue, Value, params};
use crate::{
    AfterAttempt, Attempt, Notification, NotificationEvent, NotificationKind, NotificationStore, Secret,
    StoreError,
};
use async_trait::async_trait;

macro_rules! notification_columns {
    () => {
        "notification_id, recipient_client_id, kind, subject_id, url, event_status, event_code, event_at_ms, \
         status, attempts, next_attempt_at_ms, manual, delivered_at_ms, created_at_ms, secret"
    };
}

/// Queues `notifyPayment` for a payment that just reached a notified state (spec §13.7).
/// The first attempt is due at once.
pub(super) fn enqueue_payment_result(
    db: &mut dyn Db,
    payment: &Payment,
    now: Timestamp,
) -> Result<(), StoreError> {
    if !is_notified(payment.state) {
        return Ok(());
    }
    let (event, at) = match payment.state {
        PaymentState::Success { paid_at } => (NotificationEvent::Paid, paid_at),
        PaymentState::Fail { reason, failed_at } => (NotificationEvent::PaymentFailed(reason), failed_at),
        PaymentState::Processing | PaymentState::Cancelled { .. } => return Ok(()),
    };
    let terms = &payment.terms;
    insert(db, &terms.owner, terms.id.as_str(), &terms.notify_url, (event, at), now)
}

/// Queues `notifyRefund` for a refund that just reached its final state, if the merchant gave
/// a URL for it.
pub(super) fn enqueue_refund_result(
    db: &mut dyn Db,
    refund: &Refund,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (Some(url), Some(at)) = (refund.terms.notify_url.as_deref(), refund.state.finished_at()) else {
        return Ok(());
    };
    let event = match refund.state {
        RefundState::Fail { .. } => NotificationEvent::RefundFailed,
        _ => NotificationEvent::RefundSucceeded,
    };
    let terms = &refund.terms;
    insert(db, &terms.owner, terms.id.as_str(), url, (event, at), now)
}

/// Queues the authorisation notification that hands an ISV its Agent-Token: the token is held
/// in the row only until the notification is delivered or given up.
pub(super) fn enqueue_grant(
    db: &mut dyn Db,
    grant: &Grant,
    url: &str,
    token: &Secret,
    now: Timestamp,
) -> Result<(), StoreError> {
    insert(db, &grant.isv, &grant.id, url, (NotificationEvent::Granted, grant.created_at), now)?;
    db.execute(
        "UPDATE notification SET secret = ?2 WHERE kind = ?1 AND subject_id = ?3",
        params![NotificationKind::AgentAuthorization.as_str(), token.expose(), grant.id],
    )?;
    Ok(())
}

/// Queues `notifyRegistrationStatus` for a registration just decided, if the acquirer gave a
/// URL for it.
pub(super) fn enqueue_registration_status(
    db: &mut dyn Db,
    registration: &Registration,
    now: Timestamp,
) -> Result<(), StoreError> {
    let terms = &registration.terms;
    let (Some(url), Some(at)) = (terms.notify_url.as_deref(), registration.state.decided_at()) else {
        return Ok(());
    };
    let event = match registration.state {
        RegistrationState::Rejected { .. } => NotificationEvent::RegistrationRejected,
        _ => NotificationEvent::RegistrationApproved,
    };
    insert(db, &terms.owner, terms.id.as_str(), url, (event, at), now)
}

/// Inserts a notification, due at once, unless its event was queued already.
fn insert(
    db: &mut dyn Db,
    recipient: &ClientId,
    subject_id: &str,
    url: &str,
    (event, at): (NotificationEvent, Timestamp),
    now: Timestamp,
) -> Result<(), StoreError> {
    let kind = event.kind();
    let (status, code) = event.stored();
    let id = format!("{}-{subject_id}-{status}", kind.as_str());
    db.execute_later(
        concat!(
            "INSERT INTO notification (",
            notification_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'PENDING', 0, ?9, 0, NULL, ?9, NULL) \
             ON CONFLICT (kind, subject_id, event_status) DO NOTHING"
        ),
        params![
            id,
            recipient.as_str(),
            kind.as_str(),
            subject_id,
            url,
            status,
            code,
            millis(at),
            millis(now)
        ],
    )?;
    Ok(())
}

pub(super) fn claim(
    db: &mut dyn Db,
    now: Timestamp,
    lease: SignedDuration,
    limit: u32,
) -> Result<Vec<Notification>, StoreError> {
    // One statement takes and returns the rows: on PostgreSQL one round trip instead of one
    // for each row claimed.
    macro_rules! claim_due {
        ($lock:literal) => {
            concat!(
                "UPDATE notification SET claimed_until_ms = ?3 WHERE notification_id IN ( \
                   SELECT notification_id FROM notification WHERE status = 'PENDING' AND next_attempt_at_ms <= ?1 \
                   AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?1) ORDER BY next_attempt_at_ms LIMIT ?2",
                $lock,
                ") RETURNING ",
                notification_columns!()
            )
        };
    }
    let sql = match db.dialect() {
        Dialect::Sqlite => claim_due!(""),
        Dialect::Postgres => claim_due!(" FOR UPDATE SKIP LOCKED"),
    };
    let until = now.checked_add(lease).unwrap_or(now);
    let mut claimed =
        db.query_all(sql, params![millis(now), i64::from(limit), millis(until)], rows::notification)?;
    // The order RETURNING gives is unspecified: the earliest due go first.
    claimed.sort_by_key(|notification| notification.next_attempt_at);
    Ok(claimed)
}

/// Records attempts and what follows each, in the order of their notifications' ids (so that
/// two transactions lock the rows they share in the same order), and answers each in its
/// place. Only the attempt that follows its notification's last recorded one is accepted (a
/// sender whose claim lapsed gets `Conflict`), so two senders can never both count; an attempt
/// of a notification that does not exist gets `NotFound`. Both are decided from the
/// notification's row before the attempt writes anything, so the others still count; any other
/// failure fails the transaction. The rows are read together (on PostgreSQL in one round trip);
/// a notification given twice is read again for its later attempt, after the earlier one.
fn record_all(
    db: &mut dyn Db,
    attempts: &[(Attempt, AfterAttempt)],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let mut order: Vec<usize> = (0..attempts.len()).collect();
    order.sort_by(|&a, &b| attempts[a].0.notification_id.cmp(&attempts[b].0.notification_id));
    let sql = locked_row!(db, "SELECT attempts, manual FROM notification WHERE notification_id = ?1");
    let ids: Vec<[Value<'_>; 1]> =
        order.iter().map(|&position| [attempts[position].0.notification_id.to_value()]).collect();
    let queries: Vec<(&'static str, &[Value<'_>])> = ids.iter().map(|id| (sql, &id[..])).collect();
    let rows = db.query_batch(&queries)?;
    let mut answers = vec![Ok(()); attempts.len()];
    let mut previous: Option<&str> = None;
    for (position, found) in order.into_iter().zip(&rows) {
        let (attempt, after) = &attempts[position];
        let id = attempt.notification_id.as_str();
        let state = if previous == Some(id) {
            db.query_opt(sql, params![id], state_of)?
        } else {
            found.first().map(state_of).transpose()?
        };
        previous = Some(id);
        match record(db, attempt, *after, state) {
            Ok(()) => {}
            Err(refused @ (StoreError::Conflict(_) | StoreError::NotFound(_))) => {
                answers[position] = Err(refused)
            }
            Err(error) => return Err(error),
        }
    }
    Ok(answers)
}

/// A notification's recorded attempts, and whether a hand resend waits for the attempt in flight.
fn state_of(row: &Row) -> Result<(u32, bool), StoreError> {
    Ok((row.get(0)?, row.get(1)?))
}

/// Records one attempt on its notification's `state` (`None`: no such notification). A hand
/// resend that arrived while the attempt was in flight still goes out.
fn record(
    db: &mut dyn Db,
    attempt: &Attempt,
    after: AfterAttempt,
    state: Option<(u32, bool)>,
) -> Result<(), StoreError> {
    let id = &attempt.notification_id;
    let number = attempt.number;
    let (recorded, manual) = state.ok_or(StoreError::NotFound("notification"))?;
    if recorded.checked_add(1) != Some(number) {
        return Err(StoreError::Conflict("notification attempt"));
    }
    db.execute_later(
        "INSERT INTO delivery_attempt (notification_id, attempt, scheduled_at_ms, started_at_ms, duration_ms, \
         http_status, outcome, error, manual, answer_excerpt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            attempt.notification_id,
            attempt.number,
            millis(attempt.scheduled_at),
            millis(attempt.started_at),
            attempt.duration_ms,
            attempt.http_status,
            attempt.outcome.as_str(),
            attempt.error,
            attempt.manual,
            attempt.answer,
        ],
    )?;
    if manual && !attempt.manual {
        let delivered_at = matches!(after, AfterAttempt::Delivered).then(|| millis(attempt.started_at));
        db.execute_later(
            "UPDATE notification SET status = 'PENDING', attempts = ?2, claimed_until_ms = NULL, \
                 delivered_at_ms = COALESCE(?3, delivered_at_ms) WHERE notification_id = ?1",
            params![id, number, delivered_at],
        )?;
        return Ok(());
    }
    match after {
        AfterAttempt::Delivered => db.execute_later(
            "UPDATE notification SET status = 'DELIVERED', attempts = ?2, next_attempt_at_ms = NULL, \
             claimed_until_ms = NULL, manual = 0, delivered_at_ms = ?3, secret = NULL WHERE notification_id = ?1",
            params![id, number, millis(attempt.started_at)],
        )?,
        // A notification stopped during the attempt (a revoked grant's) stays stopped.
        AfterAttempt::RetryAt(at) => db.execute_later(
            "UPDATE notification SET attempts = ?2, claimed_until_ms = NULL, manual = 0, \
             next_attempt_at_ms = CASE WHEN status = 'FAILED' THEN NULL ELSE CAST(?3 AS BIGINT) END, \
             status = CASE WHEN status = 'FAILED' THEN 'FAILED' ELSE 'PENDING' END \
             WHERE notification_id = ?1",
            params![id, number, millis(at)],
        )?,
        // A notification delivered before (then resent by hand) stays delivered.
        AfterAttempt::GiveUp => db.execute_later(
            "UPDATE notification SET status = CASE WHEN delivered_at_ms IS NULL THEN 'FAILED' ELSE 'DELIVERED' END, \
             attempts = ?2, next_attempt_at_ms = NULL, claimed_until_ms = NULL, manual = 0, secret = NULL \
             WHERE notification_id = ?1",
            params![id, number],
        )?,
    };
    Ok(())
}

pub(super) fn resend(db: &mut dyn Db, subject_id: &str, now: Timestamp) -> Result<u32, StoreError> {
    let queued = db.execute(
        "UPDATE notification SET status = 'PENDING', next_attempt_at_ms = ?1, manual = 1, \
             claimed_until_ms = CASE WHEN claimed_until_ms > ?1 THEN claimed_until_ms END \
             WHERE subject_id = ?2 AND (kind <> ?3 OR secret IS NOT NULL)",
        params![millis(now), subject_id, NotificationKind::AgentAuthorization.as_str()],
    )?;
    Ok(u32::try_from(queued).unwrap_or(u32::MAX))
}

pub(super) fn list(
    db: &mut dyn Db,
    subject_id: &str,
) -> Result<Vec<(Notification, Vec<Attempt>)>, StoreError> {
    let notifications = db.query_all(
        concat!(
            "SELECT ",
            notification_columns!(),
            " FROM notification WHERE subject_id = ?1 ORDER BY created_at_ms, notification_id"
        ),
        params![subject_id],
        rows::notification,
    )?;
    let mut listed = Vec::with_capacity(notifications.len());
    for notification in notifications {
        let attempts = db.query_all(
            "SELECT notification_id, attempt, scheduled_at_ms, started_at_ms, duration_ms, http_status, outcome, \
             error, manual, answer_excerpt FROM delivery_attempt WHERE notification_id = ?1 ORDER BY attempt",
            params![notification.id],
            rows::attempt,
        )?;
        listed.push((notification, attempts));
    }
    Ok(listed)
}

pub(super) fn release(db: &mut dyn Db) -> Result<(), StoreError> {
    db.execute("UPDATE notification SET claimed_until_ms = NULL WHERE claimed_until_ms IS NOT NULL", &[])?;
    Ok(())
}

/// Releases each claim whose lease still ends when it was claimed to end: the claimer's own.
pub(super) fn release_these(db: &mut dyn Db, claims: &[(String, Timestamp)]) -> Result<u64, StoreError> {
    let mut released = 0;
    for (id, until) in claims {
        released += db.execute(
            "UPDATE notification SET claimed_until_ms = NULL WHERE notification_id = ?1 AND claimed_until_ms = ?2",
            params![id, millis(*until)],
        )?;
    }
    Ok(released)
}

#[async_trait]
impl<E: Engine> NotificationStore for SqlStore<E> {
    async fn claim_notifications(
        &self,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        self.engine.write(Isolation::RowLocks, move |db| claim(db, now, lease, limit)).await
    }

    async fn record_attempts(
        &self,
        attempts: &[(Attempt, AfterAttempt)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let attempts = attempts.to_vec();
        self.engine.write(Isolation::RowLocks, move |db| record_all(db, &attempts)).await
    }

    async fn resend_notifications(&self, subject_id: &str, now: Timestamp) -> Result<u32, StoreError> {
        let subject_id = subject_id.to_owned();
        self.engine.write(Isolation::Serializable, move |db| resend(db, &subject_id, now)).await
    }

    async fn notifications(&self, subject_id: &str) -> Result<Vec<(Notification, Vec<Attempt>)>, StoreError> {
        self.engine.read(|db| list(db, subject_id)).await
    }

    async fn release_claims(&self) -> Result<(), StoreError> {
        if self.engine.is_shared() {
            return Ok(());
        }
        self.engine.write(Isolation::Serializable, release).await
    }

    async fn release_notification_claims(&self, claims: &[(String, Timestamp)]) -> Result<u64, StoreError> {
        let claims = claims.to_vec();
        self.engine.write(Isolation::RowLocks, move |db| release_these(db, &claims)).await
    }
}
