//! Merchants' grants to ISVs and the audit trail, in the main file; the trail is pruned by age.
//!
//! A grant is stored with its token's SHA-256 only; the notification that hands the token to
//! the ISV is queued in the same transaction.

use ocpay_core::Timestamp;
use ocpay_core::access::Grant;
use ocpay_core::ids::ClientId;

use super::rows::{self, millis, optional_time, time};
use super::{Db, Dialect, Row, params};
use super::{Engine, Isolation, SqlStore, outbox};
use crate::pages::TokenHold;
use crate::{AccessStore, AuditEvent, NewGrant, NotificationKind, StoreError};
use async_trait::async_trait;

macro_rules! grant_columns {
    () => {
        "grant_id, merchant_client_id, isv_client_id, scopes, token_sha256, created_at_ms, expires_at_ms, \
         revoked_at_ms"
    };
}

fn grant(row: &Row) -> Result<Grant, StoreError> {
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

pub(super) fn create_grant(db: &mut dyn Db, new: &NewGrant, now: Timestamp) -> Result<(), StoreError> {
    let grant = &new.grant;
    let inserted = db.execute(
        concat!("INSERT INTO agent_grant (", grant_columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)"),
        params![
            grant.id,
            grant.merchant.as_str(),
            grant.isv.as_str(),
            grant.scopes.to_string(),
            grant.token_sha256,
            millis(grant.created_at),
            grant.expires_at.map(millis),
        ],
    );
    match inserted {
        Err(StoreError::Conflict(_)) => return Err(StoreError::Conflict("grant")),
        other => other?,
    };
    if let Some((url, token)) = &new.notice {
        outbox::enqueue_grant(db, grant, url, token, now)?;
    }
    if let Some(held) = &new.held {
        db.execute(
            "INSERT INTO agent_token_hold (grant_id, isv_client_id, sealed, hint, hold_until_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![grant.id, grant.isv.as_str(), held.sealed, held.hint, millis(held.hold_until)],
        )?;
    }
    Ok(())
}

pub(super) fn grant_by_token(db: &mut dyn Db, token_sha256: &str) -> Result<Option<Grant>, StoreError> {
    db.query_opt(
        concat!("SELECT ", grant_columns!(), " FROM agent_grant WHERE token_sha256 = ?1"),
        params![token_sha256],
        grant,
    )
}

pub(super) fn grants(db: &mut dyn Db, client_id: &ClientId) -> Result<Vec<Grant>, StoreError> {
    db.query_all(
        concat!(
            "SELECT ",
            grant_columns!(),
            " FROM agent_grant WHERE merchant_client_id = ?1 OR isv_client_id = ?1 ORDER BY created_at_ms, grant_id"
        ),
        params![client_id.as_str()],
        grant,
    )
}

pub(super) fn revoke_grant(db: &mut dyn Db, grant_id: &str, now: Timestamp) -> Result<Grant, StoreError> {
    db.execute(
        "UPDATE agent_grant SET revoked_at_ms = COALESCE(revoked_at_ms, ?2) WHERE grant_id = ?1",
        params![grant_id, millis(now)],
    )?;
    // A revoked grant's token is not handed out any more: its notification forgets it and,
    // if not yet delivered, stops.
    db.execute(
        "UPDATE notification SET secret = NULL, next_attempt_at_ms = NULL, \
             status = CASE WHEN status = 'PENDING' THEN 'FAILED' ELSE status END \
             WHERE kind = ?1 AND subject_id = ?2",
        params![NotificationKind::AgentAuthorization.as_str(), grant_id],
    )?;
    // Nor is it shown to the ISV's owner.
    db.execute("UPDATE agent_token_hold SET sealed = NULL WHERE grant_id = ?1", params![grant_id])?;
    db.query_opt(
        concat!("SELECT ", grant_columns!(), " FROM agent_grant WHERE grant_id = ?1"),
        params![grant_id],
        grant,
    )?
    .ok_or(StoreError::NotFound("grant"))
}

pub(super) fn record_audit(db: &mut dyn Db, events: &[AuditEvent]) -> Result<(), StoreError> {
    for event in events {
        db.execute_later(
            "INSERT INTO audit_event (at_ms, client_id, key_version, agent_client_id, merchant_client_id, api, \
             idempotency_key, result_status, result_code) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
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
        ],
        )?;
    }
    Ok(())
}

/// Deletes the oldest events from before `older_than`, at most `limit`, read on
/// `audit_event_by_time`.
pub(super) fn prune_audit(db: &mut dyn Db, older_than: Timestamp, limit: u32) -> Result<u64, StoreError> {
    // On PostgreSQL several nodes prune at once: each takes rows no other has locked.
    let sql = match db.dialect() {
        Dialect::Sqlite => {
            "DELETE FROM audit_event WHERE event_id IN ( \
               SELECT event_id FROM audit_event WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)"
        }
        Dialect::Postgres => {
            "DELETE FROM audit_event WHERE event_id IN ( \
               SELECT event_id FROM audit_event WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2 \
               FOR UPDATE SKIP LOCKED)"
        }
    };
    db.execute(sql, params![millis(older_than), i64::from(limit)])
}

pub(super) fn audit_events(
    db: &mut dyn Db,
    client_id: &ClientId,
    limit: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    // Two indexed halves, each cut to the limit before they are merged: what the participant
    // signed, and what others did for it.
    db.query_all(
        "SELECT at_ms, client_id, key_version, agent_client_id, merchant_client_id, api, idempotency_key, \
         result_status, result_code FROM audit_event WHERE event_id IN ( \
           SELECT event_id FROM (SELECT event_id FROM audit_event WHERE client_id = ?1 \
             ORDER BY event_id DESC LIMIT ?2) AS signed \
           UNION SELECT event_id FROM (SELECT event_id FROM audit_event WHERE merchant_client_id = ?1 \
             ORDER BY event_id DESC LIMIT ?2) AS acted_for) \
         ORDER BY event_id DESC LIMIT ?2",
        params![client_id.as_str(), i64::from(limit)],
        audit_event,
    )
}

/// An `audit_event` row (its columns as [`audit_events`] selects them).
pub(super) fn audit_event(row: &Row) -> Result<AuditEvent, StoreError> {
    let key_version: Option<i64> = row.get("key_version")?;
    let signer = rows::client_id(row, "client_id")?;
    Ok(AuditEvent {
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
    })
}

pub(super) fn token_holds(
    db: &mut dyn Db,
    isv: &ClientId,
    now: Timestamp,
) -> Result<Vec<TokenHold>, StoreError> {
    db.query_all(
        "SELECT grant_id, isv_client_id, hint, hold_until_ms, taken_at_ms, taken_by, \
         CASE WHEN sealed IS NOT NULL AND hold_until_ms > ?2 THEN 1 ELSE 0 END AS held \
         FROM agent_token_hold WHERE isv_client_id = ?1 ORDER BY grant_id",
        params![isv.as_str(), millis(now)],
        |row| {
            let held: i64 = row.get("held")?;
            Ok(TokenHold {
                grant_id: row.get("grant_id")?,
                isv: rows::client_id(row, "isv_client_id")?,
                hint: row.get("hint")?,
                held: held == 1,
                hold_until: time(row, "hold_until_ms")?,
                taken_at: optional_time(row, "taken_at_ms")?,
                taken_by: row.get("taken_by")?,
            })
        },
    )
}

/// Reads and clears the sealed token in one transaction; only the take whose update cleared it
/// returns it, so that of two takes at once exactly one gets it.
pub(super) fn take_held_token(
    db: &mut dyn Db,
    grant_id: &str,
    isv: &ClientId,
    taken_by: &str,
    now: Timestamp,
) -> Result<Option<String>, StoreError> {
    let sealed = db.query_opt(
        "SELECT sealed FROM agent_token_hold WHERE grant_id = ?1 AND isv_client_id = ?2 \
         AND sealed IS NOT NULL AND hold_until_ms > ?3",
        params![grant_id, isv.as_str(), millis(now)],
        |row| row.get::<_, String>("sealed"),
    )?;
    if sealed.is_none() {
        return Ok(None);
    }
    let taken = db.execute(
        "UPDATE agent_token_hold SET sealed = NULL, taken_at_ms = ?3, taken_by = ?4 \
         WHERE grant_id = ?1 AND isv_client_id = ?2 AND sealed IS NOT NULL",
        params![grant_id, isv.as_str(), millis(now), taken_by],
    )?;
    Ok(if taken == 1 { sealed } else { None })
}

pub(super) fn forget_held_tokens(db: &mut dyn Db, now: Timestamp) -> Result<u64, StoreError> {
    db.execute(
        "UPDATE agent_token_hold SET sealed = NULL WHERE sealed IS NOT NULL AND hold_until_ms <= ?1",
        params![millis(now)],
    )
}

#[async_trait]
impl<E: Engine> AccessStore for SqlStore<E> {
    async fn create_grant(&self, grant: &NewGrant, now: Timestamp) -> Result<(), StoreError> {
        let grant = grant.clone();
        self.engine.write(Isolation::Serializable, move |db| create_grant(db, &grant, now)).await
    }

    async fn grant_by_token(&self, token_sha256: &str) -> Result<Option<Grant>, StoreError> {
        self.engine.read(|db| grant_by_token(db, token_sha256)).await
    }

    async fn grants(&self, client_id: &ClientId) -> Result<Vec<Grant>, StoreError> {
        self.engine.read(|db| grants(db, client_id)).await
    }

    async fn revoke_grant(&self, grant_id: &str, now: Timestamp) -> Result<Grant, StoreError> {
        let grant_id = grant_id.to_owned();
        self.engine.write(Isolation::Serializable, move |db| revoke_grant(db, &grant_id, now)).await
    }

    async fn record_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let events = events.to_vec();
        self.engine.write(Isolation::Serializable, move |db| record_audit(db, &events)).await
    }

    async fn audit_events(&self, client_id: &ClientId, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        self.engine.read(|db| audit_events(db, client_id, limit)).await
    }

    async fn prune_audit(&self, older_than: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.engine.write(Isolation::RowLocks, move |db| prune_audit(db, older_than, limit)).await
    }

    async fn token_holds(&self, isv: &ClientId, now: Timestamp) -> Result<Vec<TokenHold>, StoreError> {
        self.engine.read(|db| token_holds(db, isv, now)).await
    }

    async fn take_held_token(
        &self,
        grant_id: &str,
        isv: &ClientId,
        taken_by: &str,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        let (grant_id, isv, taken_by) = (grant_id.to_owned(), isv.clone(), taken_by.to_owned());
        self.engine
            .write(Isolation::Serializable, move |db| take_held_token(db, &grant_id, &isv, &taken_by, now))
            .await
    }

    async fn forget_held_tokens(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.engine.write(Isolation::RowLocks, move |db| forget_held_tokens(db, now)).await
    }
}
