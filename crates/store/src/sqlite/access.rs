//! Merchants' grants to ISVs and the audit trail, in the main file.
//!
//! A grant is stored with its token's SHA-256 only; the notification that hands the token to
//! the ISV is queued in the same transaction.

use ocpay_core::Timestamp;
use ocpay_core::access::Grant;
use ocpay_core::ids::ClientId;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::outbox;
use super::rows::{self, millis, optional_time, time};
use crate::{AuditEvent, NewGrant, NotificationKind, StoreError};

macro_rules! grant_columns {
    () => {
        "grant_id, merchant_client_id, isv_client_id, scopes, token_sha256, created_at_ms, expires_at_ms, \
         revoked_at_ms"
    };
}

fn grant(row: &Row<'_>) -> Result<Grant, StoreError> {
    Ok(Grant {
        id: row.get("grant_id")?,
        merchant: rows::client_id(row, "merchant_client_id")?,
        isv: rows::client_id(row, "isv_client_id")?,
        scopes: rows::scopes(row, "scopes")?
            .ok_or_else(|| StoreError::Corrupt("agent_grant.scopes is NULL".into()))?,
        token_sha256: row.get("token_sha256")?,
        created_at: time(row, "created_at_ms")?,
        expires_at: optional_time(row, "expires_at_ms")?,
        revoked_at: optional_time(row, "revoked_at_ms")?,
    })
}

pub(super) fn create_grant(
    connection: &Connection,
    new: &NewGrant,
    now: Timestamp,
) -> Result<(), StoreError> {
    let grant = &new.grant;
    let inserted = connection
        .prepare_cached(concat!(
            "INSERT INTO agent_grant (",
            grant_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)"
        ))?
        .execute(params![
            grant.id,
            grant.merchant.as_str(),
            grant.isv.as_str(),
            grant.scopes.to_string(),
            grant.token_sha256,
            millis(grant.created_at),
            grant.expires_at.map(millis),
        ]);
    match inserted {
        Err(error) if super::is_unique_violation(&error) => return Err(StoreError::Conflict("grant")),
        other => other?,
    };
    if let Some((url, token)) = &new.notice {
        outbox::enqueue_grant(connection, grant, url, token, now)?;
    }
    Ok(())
}

pub(super) fn grant_by_token(
    connection: &Connection,
    token_sha256: &str,
) -> Result<Option<Grant>, StoreError> {
    connection
        .prepare_cached(concat!("SELECT ", grant_columns!(), " FROM agent_grant WHERE token_sha256 = ?1"))?
        .query_row(params![token_sha256], |row| Ok(grant(row)))
        .optional()?
        .transpose()
}

pub(super) fn grants(connection: &Connection, client_id: &ClientId) -> Result<Vec<Grant>, StoreError> {
    let mut statement = connection.prepare_cached(concat!(
        "SELECT ",
        grant_columns!(),
        " FROM agent_grant WHERE merchant_client_id = ?1 OR isv_client_id = ?1 ORDER BY created_at_ms, grant_id"
    ))?;
    let mut rows = statement.query(params![client_id.as_str()])?;
    let mut grants = Vec::new();
    while let Some(row) = rows.next()? {
        grants.push(grant(row)?);
    }
    Ok(grants)
}

pub(super) fn revoke_grant(
    connection: &Connection,
    grant_id: &str,
    now: Timestamp,
) -> Result<Grant, StoreError> {
    connection
        .prepare_cached(
            "UPDATE agent_grant SET revoked_at_ms = COALESCE(revoked_at_ms, ?2) WHERE grant_id = ?1",
        )?
        .execute(params![grant_id, millis(now)])?;
    // A revoked grant's token is not handed out any more: its notification forgets it and,
    // if not yet delivered, stops.
    connection
        .prepare_cached(
            "UPDATE notification SET secret = NULL, next_attempt_at_ms = NULL, \
             status = CASE WHEN status = 'PENDING' THEN 'FAILED' ELSE status END \
             WHERE kind = ?1 AND subject_id = ?2",
        )?
        .execute(params![NotificationKind::AgentAuthorization.as_str(), grant_id])?;
    connection
        .prepare_cached(concat!("SELECT ", grant_columns!(), " FROM agent_grant WHERE grant_id = ?1"))?
        .query_row(params![grant_id], |row| Ok(grant(row)))
        .optional()?
        .ok_or(StoreError::NotFound("grant"))?
}

pub(super) fn record_audit(connection: &Connection, events: &[AuditEvent]) -> Result<(), StoreError> {
    let mut insert = connection.prepare_cached(
        "INSERT INTO audit_event (at_ms, client_id, key_version, agent_client_id, merchant_client_id, api, \
         idempotency_key, result_status, result_code) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for event in events {
        insert.execute(params![
            millis(event.at),
            event.client_id.as_str(),
            event.key_version,
            event.agent.as_ref().map(ClientId::as_str),
            // The signer acting for itself is the common case: no second index entry.
            (event.merchant != event.client_id).then(|| event.merchant.as_str()),
            event.api,
            event.idempotency_key,
            event.result_status,
            event.result_code,
        ])?;
    }
    Ok(())
}

pub(super) fn audit_events(
    connection: &Connection,
    client_id: &ClientId,
    limit: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    // Two indexed halves, each cut to the limit before they are merged: what the participant
    // signed, and what others did for it.
    let mut statement = connection.prepare_cached(
        "SELECT at_ms, client_id, key_version, agent_client_id, merchant_client_id, api, idempotency_key, \
         result_status, result_code FROM audit_event WHERE event_id IN ( \
           SELECT event_id FROM (SELECT event_id FROM audit_event WHERE client_id = ?1 \
             ORDER BY event_id DESC LIMIT ?2) \
           UNION SELECT event_id FROM (SELECT event_id FROM audit_event WHERE merchant_client_id = ?1 \
             ORDER BY event_id DESC LIMIT ?2)) \
         ORDER BY event_id DESC LIMIT ?2",
    )?;
    let mut rows = statement.query(params![client_id.as_str(), i64::from(limit)])?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        let key_version: Option<i64> = row.get("key_version")?;
        let signer = rows::client_id(row, "client_id")?;
        events.push(AuditEvent {
            at: time(row, "at_ms")?,
            merchant: rows::optional_client_id(row, "merchant_client_id")?.unwrap_or_else(|| signer.clone()),
            client_id: signer,
            key_version: key_version
                .map(u32::try_from)
                .transpose()
                .map_err(|_| StoreError::Corrupt(format!("audit_event.key_version {key_version:?}")))?,
            agent: rows::optional_client_id(row, "agent_client_id")?,
            api: row.get("api")?,
            idempotency_key: row.get("idempotency_key")?,
            result_status: row.get("result_status")?,
            result_code: row.get("result_code")?,
        });
    }
    Ok(events)
}
