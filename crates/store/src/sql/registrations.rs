//! Merchant registrations in the main file: created under their idempotency key after core has
//! decided them against the owner's earlier registrations, and decided (by an operator or the
//! sandbox's review) with their notification queued in the same transaction.

use ocpay_core::Timestamp;
use ocpay_core::ids::{ClientId, RegistrationId};
use ocpay_core::registration::{
    Decision, Registration, RegistrationOutcome, RegistrationState, RegistrationTerms, decide_registration,
};

use super::rows::{self, millis};
use super::{Db, params};
use super::{Engine, Isolation, SqlStore, outbox};
use crate::pages::PageCursor;
use crate::{
    AuditEvent, CreateRegistration, DecideRegistration, RegistrationLookup, RegistrationStore, StoreError,
};
use async_trait::async_trait;

macro_rules! registration_columns {
    () => {
        "registration_id, owner_client_id, registration_request_id, reference_merchant_id, reference_store_id, \
         content, notify_url, status, reject_reason, created_at_ms, decided_at_ms, auto_decide_at_ms, \
         auto_decision, auto_reject_reason"
    };
}

pub(super) fn find(
    db: &mut dyn Db,
    owner: &ClientId,
    lookup: &RegistrationLookup,
) -> Result<Option<Registration>, StoreError> {
    match lookup {
        RegistrationLookup::ById(id) => db.query_opt(
            concat!(
                "SELECT ",
                registration_columns!(),
                " FROM registration WHERE owner_client_id = ?1 AND registration_id = ?2"
            ),
            params![owner.as_str(), id.as_str()],
            rows::registration,
        ),
        RegistrationLookup::ByRequestId(id) => db.query_opt(
            concat!(
                "SELECT ",
                registration_columns!(),
                " FROM registration WHERE owner_client_id = ?1 AND registration_request_id = ?2"
            ),
            params![owner.as_str(), id.as_str()],
            rows::registration,
        ),
        RegistrationLookup::ByMerchant { reference_merchant_id, reference_store_id } => db.query_opt(
            concat!(
                "SELECT ",
                registration_columns!(),
                " FROM registration WHERE owner_client_id = ?1 AND reference_merchant_id = ?2 \
                  AND (CAST(?3 AS TEXT) IS NULL OR reference_store_id = ?3) \
                  ORDER BY created_at_ms DESC, rowid DESC LIMIT 1"
            ),
            params![owner.as_str(), reference_merchant_id, reference_store_id],
            rows::registration,
        ),
    }
}

pub(super) fn list(
    db: &mut dyn Db,
    owner: Option<&ClientId>,
    reference: Option<&str>,
    limit: u32,
) -> Result<Vec<Registration>, StoreError> {
    db.query_all(
        concat!(
            "SELECT ",
            registration_columns!(),
            " FROM registration WHERE (CAST(?1 AS TEXT) IS NULL OR owner_client_id = ?1) \
              AND (CAST(?2 AS TEXT) IS NULL OR registration_id = ?2 OR registration_request_id = ?2) \
              ORDER BY created_at_ms DESC, rowid DESC LIMIT ?3"
        ),
        params![owner.map(ClientId::as_str), reference, i64::from(limit)],
        rows::registration,
    )
}

/// The owner's live (processing or approved) registration of a merchant's store.
fn live(
    db: &mut dyn Db,
    owner: &ClientId,
    reference_merchant_id: &str,
    reference_store_id: &str,
) -> Result<Option<Registration>, StoreError> {
    db.query_opt(
        concat!(
            "SELECT ",
            registration_columns!(),
            " FROM registration WHERE owner_client_id = ?1 AND reference_merchant_id = ?2 \
              AND reference_store_id = ?3 AND status <> 'REJECTED'"
        ),
        params![owner.as_str(), reference_merchant_id, reference_store_id],
        rows::registration,
    )
}

pub(super) fn approved_store(
    db: &mut dyn Db,
    owner: &ClientId,
    reference_merchant_id: &str,
    reference_store_id: &str,
) -> Result<Option<Registration>, StoreError> {
    Ok(live(db, owner, reference_merchant_id, reference_store_id)?
        .filter(|registration| matches!(registration.state, RegistrationState::Approved { .. })))
}

pub(super) fn create(db: &mut dyn Db, terms: &RegistrationTerms) -> Result<CreateRegistration, StoreError> {
    let same_request = find(db, &terms.owner, &RegistrationLookup::ByRequestId(terms.request_id.clone()))?;
    let same_store = live(db, &terms.owner, &terms.reference_merchant_id, &terms.reference_store_id)?;
    match decide_registration(terms, same_request.as_ref(), same_store.as_ref()) {
        RegistrationOutcome::Existing => same_request
            .map(CreateRegistration::Existing)
            .ok_or_else(|| StoreError::Corrupt("a repeat without its registration".into())),
        RegistrationOutcome::Refused(refusal) => Ok(CreateRegistration::Refused(refusal)),
        RegistrationOutcome::Create => {
            let registration = Registration { terms: terms.clone(), state: RegistrationState::Processing };
            insert(db, &registration)?;
            Ok(CreateRegistration::Created(registration))
        }
    }
}

fn insert(db: &mut dyn Db, registration: &Registration) -> Result<(), StoreError> {
    let terms = &registration.terms;
    let (auto_at, auto_decision, auto_reason) = match &terms.automatic {
        None => (None, None, None),
        Some(automatic) => {
            let (decision, reason) = match &automatic.decision {
                Decision::Approve => ("APPROVED", None),
                Decision::Reject { reason } => ("REJECTED", Some(reason.as_str())),
            };
            (Some(millis(automatic.at)), Some(decision), reason)
        }
    };
    db.execute(
        concat!(
            "INSERT INTO registration (",
            registration_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ),
        params![
            terms.id.as_str(),
            terms.owner.as_str(),
            terms.request_id.as_str(),
            terms.reference_merchant_id,
            terms.reference_store_id,
            terms.content,
            terms.notify_url,
            registration.state.status(),
            registration.state.reject_reason(),
            millis(terms.created_at),
            registration.state.decided_at().map(millis),
            auto_at,
            auto_decision,
            auto_reason,
        ],
    )?;
    Ok(())
}

/// Records a decision on a processing registration and queues its notification.
fn apply(
    db: &mut dyn Db,
    mut registration: Registration,
    decision: &Decision,
    now: Timestamp,
) -> Result<Registration, StoreError> {
    registration.state = RegistrationState::decided(decision, now);
    let updated = db.execute(
        "UPDATE registration SET status = ?1, reject_reason = ?2, decided_at_ms = ?3 \
             WHERE registration_id = ?4 AND status = 'PROCESSING'",
        params![
            registration.state.status(),
            registration.state.reject_reason(),
            millis(now),
            registration.terms.id.as_str()
        ],
    )?;
    if updated != 1 {
        return Err(StoreError::Corrupt(format!(
            "registration {} changed under its writer",
            registration.terms.id
        )));
    }
    outbox::enqueue_registration_status(db, &registration, now)?;
    Ok(registration)
}

pub(super) fn decide(
    db: &mut dyn Db,
    owner: Option<&ClientId>,
    id: &RegistrationId,
    decision: &Decision,
    now: Timestamp,
) -> Result<DecideRegistration, StoreError> {
    let found = db.query_opt(
        concat!(
            "SELECT ",
            registration_columns!(),
            " FROM registration WHERE registration_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR owner_client_id = ?2)"
        ),
        params![id.as_str(), owner.map(ClientId::as_str)],
        rows::registration,
    )?;
    let Some(registration) = found else {
        return Ok(DecideRegistration::NotFound);
    };
    if registration.state != RegistrationState::Processing {
        return Ok(DecideRegistration::AlreadyDecided(registration));
    }
    Ok(DecideRegistration::Decided(apply(db, registration, decision, now)?))
}

pub(super) fn decide_due(
    db: &mut dyn Db,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<Registration>, StoreError> {
    let sql = queue_rows!(
        db,
        concat!(
            "SELECT ",
            registration_columns!(),
            " FROM registration WHERE status = 'PROCESSING' AND auto_decide_at_ms <= ?1 \
              ORDER BY auto_decide_at_ms LIMIT ?2"
        )
    );
    let due = db.query_all(sql, params![millis(now), i64::from(limit)], rows::registration)?;
    let mut decided = Vec::with_capacity(due.len());
    for registration in due {
        let decision =
            registration.terms.automatic.as_ref().map(|automatic| automatic.decision.clone()).ok_or_else(
                || StoreError::Corrupt(format!("registration {} has no due decision", registration.terms.id)),
            )?;
        decided.push(apply(db, registration, &decision, now)?);
    }
    Ok(decided)
}

/// A page of an acquirer's registrations, newest first: of one status through
/// `registration_by_owner_status_created`, of every status through `registration_by_owner_created`.
/// A page of every owner's registrations (of one status when given), newest first, after
/// `after`: the operator's review queue.
pub(super) fn page_of_all(
    db: &mut dyn Db,
    status: Option<&str>,
    after: Option<&PageCursor>,
    limit: u32,
) -> Result<Vec<Registration>, StoreError> {
    let (start_at, start_id) = after.map_or((i64::MAX, ""), |cursor| (millis(cursor.created_at), &cursor.id));
    if let Some(status) = status {
        return db.query_all(
            concat!(
                "SELECT ",
                registration_columns!(),
                " FROM registration WHERE status = ?4 \
                  AND created_at_ms <= ?1 AND (created_at_ms, registration_id) < (?1, ?2) \
                  ORDER BY created_at_ms DESC, registration_id DESC LIMIT ?3"
            ),
            params![start_at, start_id, i64::from(limit), status],
            rows::registration,
        );
    }
    db.query_all(
        concat!(
            "SELECT ",
            registration_columns!(),
            " FROM registration WHERE created_at_ms <= ?1 AND (created_at_ms, registration_id) < (?1, ?2) \
              ORDER BY created_at_ms DESC, registration_id DESC LIMIT ?3"
        ),
        params![start_at, start_id, i64::from(limit)],
        rows::registration,
    )
}

pub(super) fn page(
    db: &mut dyn Db,
    owner: &ClientId,
    status: Option<&str>,
    after: Option<&PageCursor>,
    limit: u32,
) -> Result<Vec<Registration>, StoreError> {
    let (start_at, start_id) = after.map_or((i64::MAX, ""), |cursor| (millis(cursor.created_at), &cursor.id));
    if let Some(status) = status {
        return db.query_all(
            concat!(
                "SELECT ",
                registration_columns!(),
                " FROM registration WHERE owner_client_id = ?1 AND status = ?5 \
                  AND created_at_ms <= ?2 AND (created_at_ms, registration_id) < (?2, ?3) \
                  ORDER BY created_at_ms DESC, registration_id DESC LIMIT ?4"
            ),
            params![owner.as_str(), start_at, start_id, i64::from(limit), status],
            rows::registration,
        );
    }
    db.query_all(
        concat!(
            "SELECT ",
            registration_columns!(),
            " FROM registration WHERE owner_client_id = ?1 \
              AND created_at_ms <= ?2 AND (created_at_ms, registration_id) < (?2, ?3) \
              ORDER BY created_at_ms DESC, registration_id DESC LIMIT ?4"
        ),
        params![owner.as_str(), start_at, start_id, i64::from(limit)],
        rows::registration,
    )
}

#[async_trait]
impl<E: Engine> RegistrationStore for SqlStore<E> {
    async fn create_registration_audited(
        &self,
        terms: &RegistrationTerms,
        audit: Option<&AuditEvent>,
    ) -> Result<CreateRegistration, StoreError> {
        let (terms, audit) = (terms.clone(), audit.cloned());
        self.engine
            .write(Isolation::Serializable, move |db| {
                let created = create(db, &terms)?;
                if matches!(created, CreateRegistration::Created(_) | CreateRegistration::Existing(_)) {
                    super::access::record_audit(db, audit.as_slice())?;
                }
                Ok(created)
            })
            .await
    }

    async fn registration(
        &self,
        owner: &ClientId,
        lookup: &RegistrationLookup,
    ) -> Result<Option<Registration>, StoreError> {
        self.engine.read(|db| find(db, owner, lookup)).await
    }

    async fn registrations(
        &self,
        owner: Option<&ClientId>,
        reference: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        self.engine.read(|db| list(db, owner, reference, limit)).await
    }

    async fn decide_registration(
        &self,
        owner: Option<&ClientId>,
        id: &RegistrationId,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<DecideRegistration, StoreError> {
        let (owner, id, decision) = (owner.cloned(), id.clone(), decision.clone());
        self.engine
            .write(Isolation::Serializable, move |db| decide(db, owner.as_ref(), &id, &decision, now))
            .await
    }

    async fn decide_due_registrations(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        self.engine.write(Isolation::RowLocks, move |db| decide_due(db, now, limit)).await
    }

    async fn approved_store(
        &self,
        owner: &ClientId,
        reference_merchant_id: &str,
        reference_store_id: &str,
    ) -> Result<Option<Registration>, StoreError> {
        self.engine.read(|db| approved_store(db, owner, reference_merchant_id, reference_store_id)).await
    }

    async fn registrations_page(
        &self,
        owner: &ClientId,
        status: Option<&str>,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        self.engine.read(|db| page(db, owner, status, after, limit)).await
    }

    async fn all_registrations_page(
        &self,
        status: Option<&str>,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        self.engine.read(|db| page_of_all(db, status, after, limit)).await
    }
}
