//! The operator's console's reads and changes across participants: suspension, the list of
//! participants by keyset, the registrations and the audit trail searched across participants.

use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Environment, KeyVersion, SANDBOX_CLIENT_ID_PREFIX};

use super::rows::{self, millis, optional_time};
use super::{Db, Engine, Isolation, Row, SqlStore, access, params, participants};
use crate::oversight::{AuditFilter, AuditRecord, ParticipantFilter, ParticipantListing, Signer};
use crate::{OversightStore, StoreError};
use async_trait::async_trait;

/// The gateway's one read of a signer: the participant with its suspension, and its key, read
/// together (on PostgreSQL, in one round trip).
pub(super) fn signer(
    db: &mut dyn Db,
    client_id: &ClientId,
    key_version: Option<KeyVersion>,
) -> Result<Option<Signer>, StoreError> {
    let (key_sql, key_params) = participants::key_lookup(client_id, key_version);
    let answers = db.query_batch(&[(LISTING, params![client_id.as_str()]), (key_sql, &key_params)])?;
    let [listing, key] = <[Vec<Row>; 2]>::try_from(answers)
        .map_err(|_| StoreError::Database("a read of two queries did not answer two".into()))?;
    let Some(listing) = listing.first().map(listing_row).transpose()? else { return Ok(None) };
    let key = key.first().map(rows::participant_key).transpose()?;
    Ok(Some(Signer { participant: listing.participant, key, suspended_at: listing.suspended_at }))
}

macro_rules! listing_columns {
    () => {
        "client_id, kind, name, notify_url, created_at_ms, suspended_at_ms"
    };
}

fn listing_row(row: &Row) -> Result<ParticipantListing, StoreError> {
    Ok(ParticipantListing {
        participant: rows::participant(row)?,
        suspended_at: optional_time(row, "suspended_at_ms")?,
    })
}

/// A participant with its suspension.
const LISTING: &str = concat!("SELECT ", listing_columns!(), " FROM participant WHERE client_id = ?1");

pub(super) fn listing(
    db: &mut dyn Db,
    client_id: &ClientId,
) -> Result<Option<ParticipantListing>, StoreError> {
    db.query_opt(LISTING, params![client_id.as_str()], listing_row)
}

/// Suspends a participant from `at` on (one suspended earlier keeps its time), or resumes it
/// (`None`); the participant as it stands then, `NotFound` when there is none.
pub(super) fn set_suspended(
    db: &mut dyn Db,
    client_id: &ClientId,
    at: Option<Timestamp>,
) -> Result<ParticipantListing, StoreError> {
    db.execute(
        "UPDATE participant SET suspended_at_ms = CASE WHEN CAST(?2 AS BIGINT) IS NULL THEN NULL \
         ELSE COALESCE(suspended_at_ms, CAST(?2 AS BIGINT)) END WHERE client_id = ?1",
        params![client_id.as_str(), at.map(millis)],
    )?;
    listing(db, client_id)?.ok_or(StoreError::NotFound("participant"))
}

/// `%text%` for `LIKE ... ESCAPE '\'`, lower-case, with the pattern's own characters escaped.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A page of participants by client id, after `after`, as the filter asks.
pub(super) fn page(
    db: &mut dyn Db,
    filter: &ParticipantFilter,
    after: Option<&ClientId>,
    limit: u32,
) -> Result<Vec<ParticipantListing>, StoreError> {
    let environment = filter.environment.map(|environment| match environment {
        Environment::Sandbox => 1_i64,
        Environment::Live => 0,
    });
    let sandbox_prefix = format!("{SANDBOX_CLIENT_ID_PREFIX}%");
    let text = filter.text.as_deref().map(contains_pattern);
    let suspended = filter.suspended.map(i64::from);
    db.query_all(
        concat!(
            "SELECT ",
            listing_columns!(),
            " FROM participant WHERE client_id > ?1 \
             AND (CAST(?2 AS TEXT) IS NULL OR kind = ?2) \
             AND (CAST(?3 AS BIGINT) IS NULL OR (CASE WHEN client_id LIKE ?4 THEN 1 ELSE 0 END) = ?3) \
             AND (CAST(?5 AS TEXT) IS NULL OR LOWER(client_id) LIKE ?5 ESCAPE '\\' OR LOWER(name) LIKE ?5 ESCAPE '\\') \
             AND (CAST(?6 AS BIGINT) IS NULL OR (CASE WHEN suspended_at_ms IS NULL THEN 0 ELSE 1 END) = ?6) \
             ORDER BY client_id LIMIT ?7"
        ),
        params![
            after.map_or("", ClientId::as_str),
            filter.kind.map(|kind| kind.as_str()),
            environment,
            sandbox_prefix,
            text,
            suspended,
            i64::from(limit)
        ],
        listing_row,
    )
}

/// How many participants are suspended.
pub(super) fn suspended_count(db: &mut dyn Db) -> Result<u64, StoreError> {
    let count = db.query_opt(
        "SELECT COUNT(*) AS n FROM participant WHERE suspended_at_ms IS NOT NULL",
        &[],
        |row| row.get::<_, i64>("n"),
    )?;
    Ok(u64::try_from(count.unwrap_or(0)).unwrap_or(0))
}

// The search's filters, the same in both halves of a search by participant.
macro_rules! audit_filters {
    () => {
        " AND (CAST(?2 AS TEXT) IS NULL OR api = ?2) AND (CAST(?3 AS TEXT) IS NULL OR result_code = ?3) \
          AND at_ms >= ?4 AND at_ms < ?5 AND event_id < ?6"
    };
}

macro_rules! audit_columns {
    () => {
        "event_id, at_ms, client_id, key_version, agent_client_id, merchant_client_id, api, idempotency_key, \
         result_status, result_code"
    };
}

/// A page of audit events, newest first, with ids below `before`. With a participant, two
/// indexed halves (what it signed, what others did for it), each cut to the page before they
/// are merged; without, the newest events of all.
pub(super) fn audit_search(
    db: &mut dyn Db,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditRecord>, StoreError> {
    let (client_id, api, code) = (
        filter.client_id.as_ref().map(ClientId::as_str),
        filter.api.as_deref(),
        filter.result_code.as_deref(),
    );
    let (from, to) = (filter.from.map_or(i64::MIN, millis), filter.to.map_or(i64::MAX, millis));
    let (before, limit) = (before.unwrap_or(i64::MAX), i64::from(limit));
    let params = params![client_id, api, code, from, to, before, limit];
    let record =
        |row: &Row| Ok(AuditRecord { event_id: row.get("event_id")?, event: access::audit_event(row)? });
    match filter.client_id {
        Some(_) => db.query_all(
            concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit_event WHERE event_id IN ( \
                   SELECT event_id FROM (SELECT event_id FROM audit_event WHERE client_id = ?1",
                audit_filters!(),
                " ORDER BY event_id DESC LIMIT ?7) AS signed \
                   UNION SELECT event_id FROM (SELECT event_id FROM audit_event WHERE merchant_client_id = ?1",
                audit_filters!(),
                " ORDER BY event_id DESC LIMIT ?7) AS acted_for) \
                 ORDER BY event_id DESC LIMIT ?7"
            ),
            params,
            record,
        ),
        None => db.query_all(
            concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit_event WHERE CAST(?1 AS TEXT) IS NULL",
                audit_filters!(),
                " ORDER BY event_id DESC LIMIT ?7"
            ),
            params,
            record,
        ),
    }
}

#[async_trait]
impl<E: Engine> OversightStore for SqlStore<E> {
    async fn participant_with_key(
        &self,
        client_id: &ClientId,
        key_version: Option<KeyVersion>,
    ) -> Result<Option<crate::oversight::Signer>, StoreError> {
        self.engine.read(|db| signer(db, client_id, key_version)).await
    }

    async fn set_participant_suspension(
        &self,
        client_id: &ClientId,
        at: Option<Timestamp>,
    ) -> Result<crate::oversight::ParticipantListing, StoreError> {
        let client_id = client_id.clone();
        self.engine.write(Isolation::Serializable, move |db| set_suspended(db, &client_id, at)).await
    }

    async fn participant_listing(
        &self,
        client_id: &ClientId,
    ) -> Result<Option<crate::oversight::ParticipantListing>, StoreError> {
        self.engine.read(|db| listing(db, client_id)).await
    }

    async fn participants_page(
        &self,
        filter: &crate::oversight::ParticipantFilter,
        after: Option<&ClientId>,
        limit: u32,
    ) -> Result<Vec<crate::oversight::ParticipantListing>, StoreError> {
        self.engine.read(|db| page(db, filter, after, limit)).await
    }

    async fn suspended_participants(&self) -> Result<u64, StoreError> {
        self.engine.read(suspended_count).await
    }

    async fn audit_search(
        &self,
        filter: &crate::oversight::AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::oversight::AuditRecord>, StoreError> {
        self.engine.read(|db| audit_search(db, filter, before, limit)).await
    }
}
