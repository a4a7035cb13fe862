//! Participants and their keys, in the participants file (attached as `auth`).

use ocpay_core::Timestamp;
use ocpay_core::access::Scopes;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{KeyVersion, Participant, ParticipantKey};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{self, millis};
use crate::{NewKey, StoreError};

macro_rules! participant_columns {
    () => {
        "client_id, kind, name, notify_url, created_at_ms"
    };
}

macro_rules! key_columns {
    () => {
        "client_id, key_version, public_key_der, label, created_at_ms, expires_at_ms, revoked_at_ms, scopes"
    };
}

pub(super) fn create(
    connection: &Connection,
    participant: &Participant,
    key: &NewKey,
) -> Result<(), StoreError> {
    let inserted = connection
        .prepare_cached(concat!(
            "INSERT INTO participant (",
            participant_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5)"
        ))?
        .execute(params![
            participant.client_id.as_str(),
            participant.kind.as_str(),
            participant.name,
            participant.notify_url,
            millis(participant.created_at)
        ]);
    match inserted {
        Err(error) if super::is_unique_violation(&error) => return Err(StoreError::Conflict("client id")),
        other => other?,
    };
    insert_key(connection, participant.client_id.as_str(), 1, key)
}

pub(super) fn add_key(
    connection: &Connection,
    client_id: &ClientId,
    key: &NewKey,
) -> Result<KeyVersion, StoreError> {
    let latest: Option<i64> = connection
        .prepare_cached("SELECT MAX(key_version) FROM participant_key WHERE client_id = ?1")?
        .query_row(params![client_id.as_str()], |row| row.get(0))?;
    let version = latest.ok_or(StoreError::NotFound("participant"))? + 1;
    insert_key(connection, client_id.as_str(), version, key)?;
    KeyVersion::try_from(version).map_err(|_| StoreError::Corrupt("key version overflow".into()))
}

fn insert_key(
    connection: &Connection,
    client_id: &str,
    version: i64,
    key: &NewKey,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(concat!(
            "INSERT INTO participant_key (",
            key_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)"
        ))?
        .execute(params![
            client_id,
            version,
            key.public_key_der,
            key.label,
            millis(key.created_at),
            key.expires_at.map(millis),
            // A participant's own key (every scope, no label) is stored as NULL, so that scopes
            // added later reach it too; an integrator's key keeps exactly the scopes it was given.
            (key.scopes != Scopes::ALL || key.label.is_some()).then(|| key.scopes.to_string())
        ])?;
    Ok(())
}

/// Revokes a key from `now` on; a key revoked earlier keeps its time.
pub(super) fn revoke_key(
    connection: &Connection,
    client_id: &ClientId,
    version: KeyVersion,
    now: Timestamp,
) -> Result<ParticipantKey, StoreError> {
    connection
        .prepare_cached(
            "UPDATE participant_key SET revoked_at_ms = COALESCE(revoked_at_ms, ?3) \
             WHERE client_id = ?1 AND key_version = ?2",
        )?
        .execute(params![client_id.as_str(), i64::from(version), millis(now)])?;
    connection
        .prepare_cached(concat!(
            "SELECT ",
            key_columns!(),
            " FROM participant_key WHERE client_id = ?1 AND key_version = ?2"
        ))?
        .query_row(params![client_id.as_str(), i64::from(version)], |row| Ok(rows::participant_key(row)))
        .optional()?
        .ok_or(StoreError::NotFound("key version"))?
}

/// Every key of a participant, oldest first.
pub(super) fn keys(connection: &Connection, client_id: &ClientId) -> Result<Vec<ParticipantKey>, StoreError> {
    let mut statement = connection.prepare_cached(concat!(
        "SELECT ",
        key_columns!(),
        " FROM participant_key WHERE client_id = ?1 ORDER BY key_version"
    ))?;
    let mut rows = statement.query(params![client_id.as_str()])?;
    let mut keys = Vec::new();
    while let Some(row) = rows.next()? {
        keys.push(rows::participant_key(row)?);
    }
    Ok(keys)
}

pub(super) fn find(connection: &Connection, client_id: &ClientId) -> Result<Option<Participant>, StoreError> {
    let mut statement = connection.prepare_cached(concat!(
        "SELECT ",
        participant_columns!(),
        " FROM participant WHERE client_id = ?1"
    ))?;
    let mut rows = statement.query(params![client_id.as_str()])?;
    rows.next()?.map(rows::participant).transpose()
}

pub(super) fn list(connection: &Connection, limit: u32) -> Result<Vec<Participant>, StoreError> {
    let mut statement = connection.prepare_cached(concat!(
        "SELECT ",
        participant_columns!(),
        " FROM participant ORDER BY created_at_ms, client_id LIMIT ?1"
    ))?;
    let mut rows = statement.query(params![i64::from(limit)])?;
    let mut participants = Vec::new();
    while let Some(row) = rows.next()? {
        participants.push(rows::participant(row)?);
    }
    Ok(participants)
}

/// Two keyed lookups: measured several times faster than one join whose key version is chosen
/// by a correlated subquery.
pub(super) fn find_with_key(
    connection: &Connection,
    client_id: &ClientId,
    key_version: Option<KeyVersion>,
) -> Result<Option<(Participant, Option<ParticipantKey>)>, StoreError> {
    let Some(participant) = find(connection, client_id)? else { return Ok(None) };
    let key = match key_version {
        Some(version) => connection
            .prepare_cached(concat!(
                "SELECT ",
                key_columns!(),
                " FROM participant_key WHERE client_id = ?1 AND key_version = ?2"
            ))?
            .query_row(params![client_id.as_str(), i64::from(version)], |row| Ok(rows::participant_key(row)))
            .optional()?,
        None => connection
            .prepare_cached(concat!(
                "SELECT ",
                key_columns!(),
                " FROM participant_key WHERE client_id = ?1 AND scopes IS NULL AND label IS NULL AND revoked_at_ms IS NULL \
                 ORDER BY key_version DESC LIMIT 1"
            ))?
            .query_row(params![client_id.as_str()], |row| Ok(rows::participant_key(row)))
            .optional()?,
    };
    Ok(Some((participant, key.transpose()?)))
}
