//! The API log in the main file: appended in batches by the gateway's writer, read by
//! participant (newest first, or after an id to follow it), pruned by age.
//!
//! Every read names the participant, and each is served by an index that starts with its
//! client id (`api_log_by_client` for pages, `api_log_by_client_api` and
//! `api_log_by_client_result` for pages of one API or result code, `api_log_by_client_time` for
//! the daily counts), so no read scans another participant's rows. The bound on unverified
//! entries reads a partial index of those alone; pruning reads one by time.

use std::collections::BTreeSet;

use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;

use super::rows::{self, millis, time};
use super::{Db, Dialect, Engine, Isolation, Row, SqlStore, params};
use crate::{ApiLogEntry, ApiLogFilter, ApiLogStore, StoreError};
use async_trait::async_trait;

macro_rules! log_columns {
    () => {
        "log_id, request_id, client_id, at_ms, api, path, verified, key_version, agent_client_id, result_status, \
         result_code, http_status, latency_micros, request_headers, request_body, response_headers, \
         response_body, diagnosis"
    };
}

/// A day's length in milliseconds: the daily counts' day number is `at_ms / DAY_MS`.
const DAY_MS: i64 = 86_400_000;

fn entry(row: &Row) -> Result<ApiLogEntry, StoreError> {
    let corrupt = |column: &str, value: i64| StoreError::Corrupt(format!("api_log.{column} {value}"));
    let key_version: Option<i64> = row.get("key_version")?;
    let http_status: i64 = row.get("http_status")?;
    Ok(ApiLogEntry {
        id: row.get("log_id")?,
        request_id: row.get("request_id")?,
        client_id: rows::client_id(row, "client_id")?,
        at: time(row, "at_ms")?,
        api: row.get("api")?,
        path: row.get("path")?,
        verified: row.get("verified")?,
        key_version: key_version
            .map(|version| u32::try_from(version).map_err(|_| corrupt("key_version", version)))
            .transpose()?,
        agent: rows::optional_client_id(row, "agent_client_id")?,
        result_status: row.get("result_status")?,
        result_code: row.get("result_code")?,
        http_status: u16::try_from(http_status).map_err(|_| corrupt("http_status", http_status))?,
        latency_micros: row.get("latency_micros")?,
        request_headers: row.get("request_headers")?,
        request_body: row.get("request_body")?,
        response_headers: row.get("response_headers")?,
        response_body: row.get("response_body")?,
        diagnosis: row.get("diagnosis")?,
    })
}

pub(super) fn record(
    db: &mut dyn Db,
    entries: &[ApiLogEntry],
    unverified_max: u32,
) -> Result<(), StoreError> {
    // Participants whose unverified entries this batch adds to: only their bound can be exceeded.
    let mut bounded = BTreeSet::new();
    for entry in entries {
        if !entry.verified {
            bounded.insert(entry.client_id.as_str());
            if unverified_max == 0 {
                continue;
            }
        }
        db.execute(
            "INSERT INTO api_log (client_id, at_ms, api, path, verified, key_version, agent_client_id, \
             result_status, result_code, http_status, latency_micros, request_headers, request_body, \
             response_headers, response_body, diagnosis, request_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            params![
                entry.client_id.as_str(),
                millis(entry.at),
                entry.api,
                entry.path,
                entry.verified,
                entry.key_version,
                entry.agent.as_ref().map(ClientId::as_str),
                entry.result_status,
                entry.result_code,
                entry.http_status,
                entry.latency_micros,
                entry.request_headers,
                entry.request_body,
                entry.response_headers,
                entry.response_body,
                entry.diagnosis,
                entry.request_id,
            ],
        )?;
    }
    for client_id in bounded {
        if unverified_max == 0 {
            db.execute("DELETE FROM api_log WHERE client_id = ?1 AND verified = 0", params![client_id])?;
            continue;
        }
        // Everything older than the participant's `unverified_max`-th newest unverified entry;
        // nothing while it has fewer (the comparison with NULL holds for no row).
        db.execute(
            "DELETE FROM api_log WHERE client_id = ?1 AND verified = 0 AND log_id < ( \
               SELECT log_id FROM api_log WHERE client_id = ?1 AND verified = 0 \
               ORDER BY log_id DESC LIMIT 1 OFFSET ?2)",
            params![client_id, i64::from(unverified_max) - 1],
        )?;
    }
    Ok(())
}

/// The filter's values as parameters `?2` to `?5`.
fn filter_params(filter: &ApiLogFilter) -> (Option<&str>, Option<&str>, Option<i64>, Option<i64>) {
    (filter.api.as_deref(), filter.result_code.as_deref(), filter.from.map(millis), filter.to.map(millis))
}

pub(super) fn page(
    db: &mut dyn Db,
    client_id: &ClientId,
    filter: &ApiLogFilter,
    before_id: Option<i64>,
    limit: u32,
) -> Result<Vec<ApiLogEntry>, StoreError> {
    let (api, result_code, from, to) = filter_params(filter);
    let (before_id, limit) = (before_id.unwrap_or(i64::MAX), i64::from(limit));
    // A filter by API or by result code reads its own index (`api_log_by_client_api`,
    // `api_log_by_client_result`) in id order, so a rare one costs no walk through the rest.
    if let Some(api) = api {
        return db.query_all(
            concat!(
                "SELECT ",
                log_columns!(),
                " FROM api_log WHERE client_id = ?1 AND api = ?2 \
                  AND (CAST(?3 AS TEXT) IS NULL OR result_code = ?3) \
                  AND (CAST(?4 AS BIGINT) IS NULL OR at_ms >= ?4) \
                  AND (CAST(?5 AS BIGINT) IS NULL OR at_ms < ?5) \
                  AND log_id < ?6 ORDER BY log_id DESC LIMIT ?7"
            ),
            params![client_id.as_str(), api, result_code, from, to, before_id, limit],
            entry,
        );
    }
    if let Some(result_code) = result_code {
        return db.query_all(
            concat!(
                "SELECT ",
                log_columns!(),
                " FROM api_log WHERE client_id = ?1 AND result_code = ?2 \
                  AND (CAST(?3 AS BIGINT) IS NULL OR at_ms >= ?3) \
                  AND (CAST(?4 AS BIGINT) IS NULL OR at_ms < ?4) \
                  AND log_id < ?5 ORDER BY log_id DESC LIMIT ?6"
            ),
            params![client_id.as_str(), result_code, from, to, before_id, limit],
            entry,
        );
    }
    db.query_all(
        concat!(
            "SELECT ",
            log_columns!(),
            " FROM api_log WHERE client_id = ?1 \
              AND (CAST(?2 AS BIGINT) IS NULL OR at_ms >= ?2) \
              AND (CAST(?3 AS BIGINT) IS NULL OR at_ms < ?3) \
              AND log_id < ?4 ORDER BY log_id DESC LIMIT ?5"
        ),
        params![client_id.as_str(), from, to, before_id, limit],
        entry,
    )
}

pub(super) fn after(
    db: &mut dyn Db,
    client_id: &ClientId,
    filter: &ApiLogFilter,
    after_id: i64,
    limit: u32,
) -> Result<Vec<ApiLogEntry>, StoreError> {
    let (api, result_code, from, to) = filter_params(filter);
    db.query_all(
        concat!(
            "SELECT ",
            log_columns!(),
            " FROM api_log WHERE client_id = ?1 \
              AND (CAST(?2 AS TEXT) IS NULL OR api = ?2) \
              AND (CAST(?3 AS TEXT) IS NULL OR result_code = ?3) \
              AND (CAST(?4 AS BIGINT) IS NULL OR at_ms >= ?4) \
              AND (CAST(?5 AS BIGINT) IS NULL OR at_ms < ?5) \
              AND log_id > ?6 ORDER BY log_id LIMIT ?7"
        ),
        params![client_id.as_str(), api, result_code, from, to, after_id, i64::from(limit)],
        entry,
    )
}

pub(super) fn find(
    db: &mut dyn Db,
    client_id: &ClientId,
    id: i64,
) -> Result<Option<ApiLogEntry>, StoreError> {
    db.query_opt(
        concat!("SELECT ", log_columns!(), " FROM api_log WHERE log_id = ?1 AND client_id = ?2"),
        params![id, client_id.as_str()],
        entry,
    )
}

pub(super) fn results_by_day(
    db: &mut dyn Db,
    client_id: &ClientId,
    from: Timestamp,
) -> Result<Vec<(i64, String, u64)>, StoreError> {
    db.query_all(
        "SELECT day_number, result_code, CAST(COUNT(*) AS BIGINT) AS entries FROM ( \
           SELECT CAST(at_ms / ?3 AS BIGINT) AS day_number, result_code FROM api_log \
           WHERE client_id = ?1 AND at_ms >= ?2) AS received \
         GROUP BY day_number, result_code ORDER BY day_number, result_code",
        params![client_id.as_str(), millis(from), DAY_MS],
        |row| {
            let entries: i64 = row.get("entries")?;
            let entries = u64::try_from(entries)
                .map_err(|_| StoreError::Corrupt(format!("a count of {entries} API log entries")))?;
            Ok((row.get("day_number")?, row.get("result_code")?, entries))
        },
    )
}

pub(super) fn prune(db: &mut dyn Db, older_than: Timestamp, limit: u32) -> Result<u64, StoreError> {
    // On PostgreSQL several nodes prune at once: each takes rows no other has locked.
    let sql = match db.dialect() {
        Dialect::Sqlite => {
            "DELETE FROM api_log WHERE log_id IN ( \
               SELECT log_id FROM api_log WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)"
        }
        Dialect::Postgres => {
            "DELETE FROM api_log WHERE log_id IN ( \
               SELECT log_id FROM api_log WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2 FOR UPDATE SKIP LOCKED)"
        }
    };
    db.execute(sql, params![millis(older_than), i64::from(limit)])
}

#[async_trait]
impl<E: Engine> ApiLogStore for SqlStore<E> {
    async fn record_api_log(
        &self,
        entries: &[crate::ApiLogEntry],
        unverified_max: u32,
    ) -> Result<(), StoreError> {
        let entries = entries.to_vec();
        // A log decides nothing: it appends, and trims what it appended to.
        self.engine.write(Isolation::RowLocks, move |db| record(db, &entries, unverified_max)).await
    }

    async fn api_log(
        &self,
        client_id: &ClientId,
        filter: &crate::ApiLogFilter,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::ApiLogEntry>, StoreError> {
        self.engine.read(|db| page(db, client_id, filter, before_id, limit)).await
    }

    async fn api_log_after(
        &self,
        client_id: &ClientId,
        filter: &crate::ApiLogFilter,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<crate::ApiLogEntry>, StoreError> {
        self.engine.read(|db| after(db, client_id, filter, after_id, limit)).await
    }

    async fn api_log_entry(
        &self,
        client_id: &ClientId,
        id: i64,
    ) -> Result<Option<crate::ApiLogEntry>, StoreError> {
        self.engine.read(|db| find(db, client_id, id)).await
    }

    async fn api_results_by_day(
        &self,
        client_id: &ClientId,
        from: Timestamp,
    ) -> Result<Vec<(i64, String, u64)>, StoreError> {
        self.engine.read(|db| results_by_day(db, client_id, from)).await
    }

    async fn prune_api_log(&self, older_than: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.engine.write(Isolation::RowLocks, move |db| prune(db, older_than, limit)).await
    }
}
