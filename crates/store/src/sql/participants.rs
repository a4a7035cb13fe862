//! Participants and their keys, in the participants file (attached as `auth`).

use ocpay_core::Timestamp;
use ocpay_core::access::Scopes;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{KeyVersion, Participant, ParticipantKey};

use super::rows::{self, millis, optional_time};
use super::{Db, Engine, Isolation, SqlStore, ToValue, Value, params};
use crate::{NewKey, ParticipantChange, ParticipantStore, StoreError};
use async_trait::async_trait;

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

pub(super) fn create(db: &mut dyn Db, participant: &Participant, key: &NewKey) -> Result<(), StoreError> {
    let inserted = db.execute(
        concat!("INSERT INTO participant (", participant_columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5)"),
        params![
            participant.client_id.as_str(),
            participant.kind.as_str(),
            participant.name,
            participant.notify_url,
            millis(participant.created_at)
        ],
    );
    match inserted {
        Err(StoreError::Conflict(_)) => return Err(StoreError::Conflict("client id")),
        other => other?,
    };
    insert_key(db, participant.client_id.as_str(), 1, key)
}

pub(super) fn add_key(db: &mut dyn Db, client_id: &ClientId, key: &NewKey) -> Result<KeyVersion, StoreError> {
    let latest: Option<i64> = db.query_one(
        "SELECT MAX(key_version) FROM participant_key WHERE client_id = ?1",
        params![client_id.as_str()],
        |row| row.get(0),
    )?;
    let version = latest.ok_or(StoreError::NotFound("participant"))? + 1;
    insert_key(db, client_id.as_str(), version, key)?;
    KeyVersion::try_from(version).map_err(|_| StoreError::Corrupt("key version overflow".into()))
}

fn insert_key(db: &mut dyn Db, client_id: &str, version: i64, key: &NewKey) -> Result<(), StoreError> {
    db.execute(
        concat!(
            "INSERT INTO participant_key (",
            key_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)"
        ),
        params![
            client_id,
            version,
            key.public_key_der,
            key.label,
            millis(key.created_at),
            key.expires_at.map(millis),
            // A participant's own key (every scope, no label) is stored as NULL, so that scopes
            // added later reach it too; an integrator's key keeps exactly the scopes it was given.
            (key.scopes != Scopes::ALL || key.label.is_some()).then(|| key.scopes.to_string())
        ],
    )?;
    Ok(())
}

/// Revokes a key from `now` on; a key revoked earlier keeps its time.
pub(super) fn revoke_key(
    db: &mut dyn Db,
    client_id: &ClientId,
    version: KeyVersion,
    now: Timestamp,
) -> Result<ParticipantKey, StoreError> {
    db.execute(
        "UPDATE participant_key SET revoked_at_ms = COALESCE(revoked_at_ms, ?3) \
             WHERE client_id = ?1 AND key_version = ?2",
        params![client_id.as_str(), i64::from(version), millis(now)],
    )?;
    db.query_opt(
        concat!("SELECT ", key_columns!(), " FROM participant_key WHERE client_id = ?1 AND key_version = ?2"),
        params![client_id.as_str(), i64::from(version)],
        rows::participant_key,
    )?
    .ok_or(StoreError::NotFound("key version"))
}

/// Every key of a participant, oldest first.
pub(super) fn keys(db: &mut dyn Db, client_id: &ClientId) -> Result<Vec<ParticipantKey>, StoreError> {
    db.query_all(
        concat!("SELECT ", key_columns!(), " FROM participant_key WHERE client_id = ?1 ORDER BY key_version"),
        params![client_id.as_str()],
        rows::participant_key,
    )
}

/// A page of a participant's keys, newest first, each with its last use: one step down
/// `audit_event_by_key` per key, so the read costs the page, not the length of the trail.
pub(super) fn keys_with_last_use(
    db: &mut dyn Db,
    client_id: &ClientId,
    before: Option<KeyVersion>,
    limit: u32,
) -> Result<Vec<(ParticipantKey, Option<Timestamp>)>, StoreError> {
    db.query_all(
        "SELECT k.client_id, k.key_version, k.public_key_der, k.label, k.created_at_ms, k.expires_at_ms, \
         k.revoked_at_ms, k.scopes, (SELECT MAX(a.at_ms) FROM audit_event AS a \
           WHERE a.client_id = k.client_id AND a.key_version = k.key_version) AS last_used_ms \
         FROM participant_key AS k WHERE k.client_id = ?1 AND k.key_version < ?2 \
         ORDER BY k.key_version DESC LIMIT ?3",
        params![client_id.as_str(), before.map_or(i64::MAX, i64::from), i64::from(limit)],
        |row| Ok((rows::participant_key(row)?, optional_time(row, "last_used_ms")?)),
    )
}

pub(super) fn find(db: &mut dyn Db, client_id: &ClientId) -> Result<Option<Participant>, StoreError> {
    db.query_opt(
        concat!("SELECT ", participant_columns!(), " FROM participant WHERE client_id = ?1"),
        params![client_id.as_str()],
        rows::participant,
    )
}

/// Changes a participant's name or default notify URL; the participant as changed.
pub(super) fn update(
    db: &mut dyn Db,
    client_id: &ClientId,
    change: &ParticipantChange,
) -> Result<Participant, StoreError> {
    let found = find(db, client_id)?.ok_or(StoreError::NotFound("participant"))?;
    let name = change.name.clone().unwrap_or(found.name);
    let notify_url = change.notify_url.clone().unwrap_or(found.notify_url);
    db.execute(
        "UPDATE participant SET name = ?2, notify_url = ?3 WHERE client_id = ?1",
        params![client_id.as_str(), name, notify_url],
    )?;
    find(db, client_id)?.ok_or(StoreError::NotFound("participant"))
}

pub(super) fn list(db: &mut dyn Db, limit: u32) -> Result<Vec<Participant>, StoreError> {
    db.query_all(
        concat!(
            "SELECT ",
            participant_columns!(),
            " FROM participant ORDER BY created_at_ms, client_id LIMIT ?1"
        ),
        params![i64::from(limit)],
        rows::participant,
    )
}

/// The query for one of a participant's keys: the version asked for, or (`None`) its newest
/// default key, with its parameters. With the participant's read, two keyed lookups
/// (`oversight::signer`): measured several times faster than one join whose key version is
/// chosen by a correlated subquery.
pub(super) fn key_lookup(
    client_id: &ClientId,
    key_version: Option<KeyVersion>,
) -> (&'static str, Vec<Value<'_>>) {
    match key_version {
        Some(version) => (
            concat!(
                "SELECT ",
                key_columns!(),
                " FROM participant_key WHERE client_id = ?1 AND key_version = ?2"
            ),
            vec![client_id.as_str().to_value(), Value::Int(i64::from(version))],
        ),
        None => (
            concat!(
                "SELECT ",
                key_columns!(),
                " FROM participant_key WHERE client_id = ?1 AND scopes IS NULL AND label IS NULL \
                  AND revoked_at_ms IS NULL ORDER BY key_version DESC LIMIT 1"
            ),
            vec![client_id.as_str().to_value()],
        ),
    }
}

#[async_trait]
impl<E: Engine> ParticipantStore for SqlStore<E> {
    async fn create_participant(&self, participant: &Participant, key: &NewKey) -> Result<(), StoreError> {
        let (participant, key) = (participant.clone(), key.clone());
        self.engine.write(Isolation::Serializable, move |db| create(db, &participant, &key)).await
    }

    async fn add_participant_key(
        &self,
        client_id: &ClientId,
        key: &NewKey,
    ) -> Result<KeyVersion, StoreError> {
        let (client_id, key) = (client_id.clone(), key.clone());
        self.engine.write(Isolation::Serializable, move |db| add_key(db, &client_id, &key)).await
    }

    async fn participant(&self, client_id: &ClientId) -> Result<Option<Participant>, StoreError> {
        self.engine.read(|db| find(db, client_id)).await
    }

    async fn participant_keys(&self, client_id: &ClientId) -> Result<Vec<ParticipantKey>, StoreError> {
        self.engine.read(|db| keys(db, client_id)).await
    }

    async fn keys_with_last_use(
        &self,
        client_id: &ClientId,
        before: Option<KeyVersion>,
        limit: u32,
    ) -> Result<Vec<(ParticipantKey, Option<Timestamp>)>, StoreError> {
        self.engine.read(|db| keys_with_last_use(db, client_id, before, limit)).await
    }

    async fn revoke_participant_key(
        &self,
        client_id: &ClientId,
        key_version: KeyVersion,
        now: Timestamp,
    ) -> Result<ParticipantKey, StoreError> {
        let client_id = client_id.clone();
        self.engine
            .write(Isolation::Serializable, move |db| revoke_key(db, &client_id, key_version, now))
            .await
    }

    async fn participants(&self, limit: u32) -> Result<Vec<Participant>, StoreError> {
        self.engine.read(|db| list(db, limit)).await
    }

    async fn update_participant(
        &self,
        client_id: &ClientId,
        change: &ParticipantChange,
    ) -> Result<Participant, StoreError> {
        let (client_id, change) = (client_id.clone(), change.clone());
        self.engine.write(Isolation::Serializable, move |db| update(db, &client_id, &change)).await
    }
}
