//! Merchant registrations in the main file: created under their idempotency key after core has
//! decided them against the owner's earlier registrations, and decided (by an operator or the
//! sandbox's review) with their notification queued in the same transaction.

use ocpay_core::Timestamp;
use ocpay_core::ids::{ClientId, RegistrationId};
use ocpay_core::registration::{
    Decision, Registration, RegistrationOutcome, RegistrationState, RegistrationTerms, decide_registration,
};
use rusqlite::{Connection, params};

use super::outbox;
use super::rows::{self, millis};
use crate::{CreateRegistration, DecideRegistration, RegistrationLookup, StoreError};

macro_rules! registration_columns {
    () => {
        "registration_id, owner_client_id, registration_request_id, reference_merchant_id, reference_store_id, \
         content, notify_url, status, reject_reason, created_at_ms, decided_at_ms, auto_decide_at_ms, \
         auto_decision, auto_reject_reason"
    };
}

fn query(
    connection: &Connection,
    sql: &'static str,
    params: impl rusqlite::Params,
) -> Result<Vec<Registration>, StoreError> {
    rows::all(connection, sql, params, rows::registration)
}

pub(super) fn find(
    connection: &Connection,
    owner: &ClientId,
    lookup: &RegistrationLookup,
) -> Result<Option<Registration>, StoreError> {
    let found = match lookup {
        RegistrationLookup::ById(id) => query(
            connection,
            concat!(
                "SELECT ",
                registration_columns!(),
                " FROM registration WHERE owner_client_id = ?1 AND registration_id = ?2"
            ),
            params![owner.as_str(), id.as_str()],
        )?,
        RegistrationLookup::ByRequestId(id) => query(
            connection,
            concat!(
                "SELECT ",
                registration_columns!(),
                " FROM registration WHERE owner_client_id = ?1 AND registration_request_id = ?2"
            ),
            params![owner.as_str(), id.as_str()],
        )?,
        RegistrationLookup::ByMerchant { reference_merchant_id, reference_store_id } => query(
            connection,
            concat!(
                "SELECT ",
                registration_columns!(),
                " FROM registration WHERE owner_client_id = ?1 AND reference_merchant_id = ?2 \
                  AND (?3 IS NULL OR reference_store_id = ?3) ORDER BY created_at_ms DESC, rowid DESC LIMIT 1"
            ),
            params![owner.as_str(), reference_merchant_id, reference_store_id],
        )?,
    };
    Ok(found.into_iter().next())
}

pub(super) fn list(
    connection: &Connection,
    owner: Option<&ClientId>,
    reference: Option<&str>,
    limit: u32,
) -> Result<Vec<Registration>, StoreError> {
    query(
        connection,
        concat!(
            "SELECT ",
            registration_columns!(),
            " FROM registration WHERE (?1 IS NULL OR owner_client_id = ?1) \
              AND (?2 IS NULL OR registration_id = ?2 OR registration_request_id = ?2) \
              ORDER BY created_at_ms DESC, rowid DESC LIMIT ?3"
        ),
        params![owner.map(ClientId::as_str), reference, i64::from(limit)],
    )
}

/// The owner's live (processing or approved) registration of a merchant's store.
fn live(
    connection: &Connection,
    owner: &ClientId,
    reference_merchant_id: &str,
    reference_store_id: &str,
) -> Result<Option<Registration>, StoreError> {
    let found = query(
        connection,
        concat!(
            "SELECT ",
            registration_columns!(),
            " FROM registration WHERE owner_client_id = ?1 AND reference_merchant_id = ?2 \
              AND reference_store_id = ?3 AND status <> 'REJECTED'"
        ),
        params![owner.as_str(), reference_merchant_id, reference_store_id],
    )?;
    Ok(found.into_iter().next())
}

pub(super) fn approved_store(
    connection: &Connection,
    owner: &ClientId,
    reference_merchant_id: &str,
    reference_store_id: &str,
) -> Result<Option<Registration>, StoreError> {
    Ok(live(connection, owner, reference_merchant_id, reference_store_id)?
        .filter(|registration| matches!(registration.state, RegistrationState::Approved { .. })))
}

pub(super) fn create(
    connection: &Connection,
    terms: &RegistrationTerms,
) -> Result<CreateRegistration, StoreError> {
    let same_request =
        find(connection, &terms.owner, &RegistrationLookup::ByRequestId(terms.request_id.clone()))?;
    let same_store = live(connection, &terms.owner, &terms.reference_merchant_id, &terms.reference_store_id)?;
    match decide_registration(terms, same_request.as_ref(), same_store.as_ref()) {
        RegistrationOutcome::Existing => same_request
            .map(CreateRegistration::Existing)
            .ok_or_else(|| StoreError::Corrupt("a repeat without its registration".into())),
        RegistrationOutcome::Refused(refusal) => Ok(CreateRegistration::Refused(refusal)),
        RegistrationOutcome::Create => {
            let registration = Registration { terms: terms.clone(), state: RegistrationState::Processing };
            insert(connection, &registration)?;
            Ok(CreateRegistration::Created(registration))
        }
    }
}

fn insert(connection: &Connection, registration: &Registration) -> Result<(), StoreError> {
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
    connection
        .prepare_cached(concat!(
            "INSERT INTO registration (",
            registration_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ))?
        .execute(params![
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
        ])?;
    Ok(())
}

/// Records a decision on a processing registration and queues its notification.
fn apply(
    connection: &Connection,
    mut registration: Registration,
    decision: &Decision,
    now: Timestamp,
) -> Result<Registration, StoreError> {
    registration.state = RegistrationState::decided(decision, now);
    let updated = connection
        .prepare_cached(
            "UPDATE registration SET status = ?1, reject_reason = ?2, decided_at_ms = ?3 \
             WHERE registration_id = ?4 AND status = 'PROCESSING'",
        )?
        .execute(params![
            registration.state.status(),
            registration.state.reject_reason(),
            millis(now),
            registration.terms.id.as_str()
        ])?;
    if updated != 1 {
        return Err(StoreError::Corrupt(format!(
            "registration {} changed under its writer",
            registration.terms.id
        )));
    }
    outbox::enqueue_registration_status(connection, &registration, now)?;
    Ok(registration)
}

pub(super) fn decide(
    connection: &Connection,
    owner: Option<&ClientId>,
    id: &RegistrationId,
    decision: &Decision,
    now: Timestamp,
) -> Result<DecideRegistration, StoreError> {
    let found = query(
        connection,
        concat!(
            "SELECT ",
            registration_columns!(),
            " FROM registration WHERE registration_id = ?1 AND (?2 IS NULL OR owner_client_id = ?2)"
        ),
        params![id.as_str(), owner.map(ClientId::as_str)],
    )?;
    let Some(registration) = found.into_iter().next() else {
        return Ok(DecideRegistration::NotFound);
    };
    if registration.state != RegistrationState::Processing {
        return Ok(DecideRegistration::AlreadyDecided(registration));
    }
    Ok(DecideRegistration::Decided(apply(connection, registration, decision, now)?))
}

pub(super) fn decide_due(
    connection: &Connection,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<Registration>, StoreError> {
    let due = query(
        connection,
        concat!(
            "SELECT ",
            registration_columns!(),
            " FROM registration WHERE status = 'PROCESSING' AND auto_decide_at_ms <= ?1 \
              ORDER BY auto_decide_at_ms LIMIT ?2"
        ),
        params![millis(now), i64::from(limit)],
    )?;
    let mut decided = Vec::with_capacity(due.len());
    for registration in due {
        let decision =
            registration.terms.automatic.as_ref().map(|automatic| automatic.decision.clone()).ok_or_else(
                || StoreError::Corrupt(format!("registration {} has no due decision", registration.terms.id)),
            )?;
        decided.push(apply(connection, registration, &decision, now)?);
    }
    Ok(decided)
}
