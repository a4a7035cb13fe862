//! Participants' SFTP accounts and their login counts, in the main file.
//!
//! Keys and allow-lists are kept as lines of text: they are read whole at every login and
//! never searched by the database. Counting failures is one `UPDATE` that reads the count it
//! changes, so that failures on several nodes at once all count, and that of a password login
//! is counted before the password is checked, so that parallel guesses stop at the limit.

use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;

use super::rows::{self, millis, optional_time, time};
use super::{Db, Engine, Isolation, Row, SqlStore, params};
use crate::{SftpAccount, SftpAccountChange, SftpLoginOutcome, SftpStore, StoreError};
use async_trait::async_trait;

macro_rules! account_columns {
    () => {
        "client_id, public_keys, password_hash, allowed_networks, created_at_ms, last_login_at_ms, failures, \
         locked_until_ms"
    };
}

fn lines(text: &str) -> Vec<String> {
    text.lines().filter(|line| !line.is_empty()).map(str::to_owned).collect()
}

fn account(row: &Row) -> Result<SftpAccount, StoreError> {
    let keys: String = row.get("public_keys")?;
    let networks: String = row.get("allowed_networks")?;
    Ok(SftpAccount {
        client_id: rows::client_id(row, "client_id")?,
        public_keys: lines(&keys),
        password_hash: row.get("password_hash")?,
        allowed_networks: lines(&networks),
        created_at: time(row, "created_at_ms")?,
        last_login_at: optional_time(row, "last_login_at_ms")?,
        failures: row.get("failures")?,
        locked_until: optional_time(row, "locked_until_ms")?,
    })
}

pub(super) fn find(db: &mut dyn Db, client_id: &ClientId) -> Result<Option<SftpAccount>, StoreError> {
    db.query_opt(
        concat!("SELECT ", account_columns!(), " FROM sftp_account WHERE client_id = ?1"),
        params![client_id.as_str()],
        account,
    )
}

pub(super) fn list(db: &mut dyn Db) -> Result<Vec<SftpAccount>, StoreError> {
    db.query_all(
        concat!("SELECT ", account_columns!(), " FROM sftp_account ORDER BY client_id"),
        &[],
        account,
    )
}

pub(super) fn upsert(
    db: &mut dyn Db,
    change: &SftpAccountChange,
    now: Timestamp,
) -> Result<(SftpAccount, bool), StoreError> {
    let existing = find(db, &change.client_id)?;
    let created = existing.is_none();
    let mut account = existing.unwrap_or_else(|| SftpAccount {
        client_id: change.client_id.clone(),
        public_keys: Vec::new(),
        password_hash: None,
        allowed_networks: Vec::new(),
        created_at: now,
        last_login_at: None,
        failures: 0,
        locked_until: None,
    });
    if let Some(key) = &change.add_public_key
        && !account.public_keys.contains(key)
    {
        account.public_keys.push(key.clone());
    }
    if let Some(hash) = &change.password_hash {
        account.password_hash = Some(hash.clone());
    }
    if let Some(networks) = &change.allowed_networks {
        account.allowed_networks = networks.clone();
    }
    let (keys, networks) = (account.public_keys.join("\n"), account.allowed_networks.join("\n"));
    if created {
        db.execute(
            concat!(
                "INSERT INTO sftp_account (",
                account_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0, NULL)"
            ),
            params![account.client_id.as_str(), keys, account.password_hash, networks, millis(now)],
        )?;
    } else {
        db.execute(
            "UPDATE sftp_account SET public_keys = ?2, password_hash = ?3, allowed_networks = ?4 WHERE client_id = ?1",
            params![account.client_id.as_str(), keys, account.password_hash, networks],
        )?;
    }
    Ok((account, created))
}

pub(super) fn remove(db: &mut dyn Db, client_id: &ClientId) -> Result<bool, StoreError> {
    Ok(db.execute("DELETE FROM sftp_account WHERE client_id = ?1", params![client_id.as_str()])? == 1)
}

pub(super) fn remove_key(db: &mut dyn Db, client_id: &ClientId, key: &str) -> Result<bool, StoreError> {
    let Some(mut account) = find(db, client_id)? else { return Ok(false) };
    let before = account.public_keys.len();
    account.public_keys.retain(|kept| kept != key);
    if account.public_keys.len() == before {
        return Ok(false);
    }
    db.execute(
        "UPDATE sftp_account SET public_keys = ?2 WHERE client_id = ?1",
        params![client_id.as_str(), account.public_keys.join("\n")],
    )?;
    Ok(true)
}

pub(super) fn record_login(
    db: &mut dyn Db,
    client_id: &ClientId,
    outcome: SftpLoginOutcome,
    now: Timestamp,
) -> Result<Option<SftpAccount>, StoreError> {
    match outcome {
        SftpLoginOutcome::Succeeded => {
            db.execute(
                "UPDATE sftp_account SET failures = 0, locked_until_ms = NULL, last_login_at_ms = ?2 \
                 WHERE client_id = ?1",
                params![client_id.as_str(), millis(now)],
            )?;
        }
        SftpLoginOutcome::Failed { failures_max, locked_until } => {
            count_failure(db, client_id, failures_max, locked_until, now)?;
        }
    }
    find(db, client_id)
}

/// Counts a failure unless the account is locked at `now`; the `failures_max`-th in a row locks
/// it until `locked_until`. False when nothing was counted: the account is locked, or there is
/// none.
pub(super) fn count_failure(
    db: &mut dyn Db,
    client_id: &ClientId,
    failures_max: u32,
    locked_until: Timestamp,
    now: Timestamp,
) -> Result<bool, StoreError> {
    // As a payer's PIN: a lockout that has ended starts the count afresh, and a failure during
    // one changes nothing, so that guessing on cannot push its end further.
    let counted = db.execute(
        "UPDATE sftp_account SET \
         failures = CASE WHEN locked_until_ms IS NULL THEN failures + 1 ELSE 1 END, \
         locked_until_ms = CASE \
           WHEN (CASE WHEN locked_until_ms IS NULL THEN failures + 1 ELSE 1 END) >= ?2 \
             THEN CAST(?3 AS BIGINT) \
           ELSE NULL END \
         WHERE client_id = ?1 AND (locked_until_ms IS NULL OR locked_until_ms <= ?4)",
        params![client_id.as_str(), i64::from(failures_max), millis(locked_until), millis(now)],
    )?;
    Ok(counted == 1)
}

#[async_trait]
impl<E: Engine> SftpStore for SqlStore<E> {
    async fn upsert_sftp_account(
        &self,
        change: &crate::SftpAccountChange,
        now: Timestamp,
    ) -> Result<(crate::SftpAccount, bool), StoreError> {
        let change = change.clone();
        self.engine.write(Isolation::Serializable, move |db| upsert(db, &change, now)).await
    }

    async fn sftp_accounts(&self) -> Result<Vec<crate::SftpAccount>, StoreError> {
        self.engine.read(list).await
    }

    async fn sftp_account(&self, client_id: &ClientId) -> Result<Option<crate::SftpAccount>, StoreError> {
        self.engine.read(|db| find(db, client_id)).await
    }

    async fn remove_sftp_account(&self, client_id: &ClientId) -> Result<bool, StoreError> {
        let client_id = client_id.clone();
        self.engine.write(Isolation::Serializable, move |db| remove(db, &client_id)).await
    }

    async fn remove_sftp_public_key(&self, client_id: &ClientId, key: &str) -> Result<bool, StoreError> {
        let (client_id, key) = (client_id.clone(), key.to_owned());
        self.engine.write(Isolation::Serializable, move |db| remove_key(db, &client_id, &key)).await
    }

    async fn record_sftp_login(
        &self,
        client_id: &ClientId,
        outcome: crate::SftpLoginOutcome,
        now: Timestamp,
    ) -> Result<Option<crate::SftpAccount>, StoreError> {
        let client_id = client_id.clone();
        self.engine.write(Isolation::Serializable, move |db| record_login(db, &client_id, outcome, now)).await
    }

    async fn sftp_login_attempt(
        &self,
        client_id: &ClientId,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let client_id = client_id.clone();
        self.engine
            .write(Isolation::Serializable, move |db| {
                count_failure(db, &client_id, failures_max, locked_until, now)
            })
            .await
    }
}
