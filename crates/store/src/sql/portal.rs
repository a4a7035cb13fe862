//! The developer center's users and sessions, in the participants file (attached as `auth`),
//! beside the participants they belong to, and the operator's console's in tables of their own
//! (`operator_user`, `operator_session`): one code for both, by [`Realm`].
//!
//! Counting a failed sign-in is one `UPDATE` that reads the count it changes (as an SFTP
//! login's), so that failures on several nodes at once all count; it is counted before the
//! password is checked, so that parallel guesses stop at the limit.

use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::portal::Role;

use super::rows::{self, millis, optional_time, time};
use super::{Db, Engine, Isolation, Row, SqlStore, params};
use crate::portal::Realm;
use crate::{NewKey, OperatorStore, PortalStore, SessionStore};
use crate::{
    NewOperator, NewPortalUser, OperatorUser, PortalSession, PortalUser, PortalUserChange, StoreError,
};
use async_trait::async_trait;
use ocpay_core::participant::Participant;

/// A statement on the realm's tables: `$sql` is a macro that takes the users' and the
/// sessions' table names and writes the statement (the statement cache wants `&'static str`).
macro_rules! in_realm {
    ($realm:expr, $sql:ident) => {
        match $realm {
            Realm::Portal => $sql!("portal_user", "portal_session"),
            Realm::Console => $sql!("operator_user", "operator_session"),
        }
    };
}

// The statements written for both realms ([`in_realm`]).
macro_rules! set_password_sql {
    ($users:literal, $sessions:literal) => {
        concat!("UPDATE ", $users, " SET password_hash = ?2, setup_token_sha256 = NULL, setup_expires_at_ms = NULL, failures = 0, locked_until_ms = NULL WHERE user_id = ?1")
    };
}

macro_rules! set_setup_sql {
    ($users:literal, $sessions:literal) => {
        concat!(
            "UPDATE ",
            $users,
            " SET setup_token_sha256 = ?2, setup_expires_at_ms = ?3 WHERE user_id = ?1"
        )
    };
}

macro_rules! set_totp_sql {
    ($users:literal, $sessions:literal) => {
        concat!("UPDATE ", $users, " SET totp_secret = ?2, totp_last_step = NULL WHERE user_id = ?1")
    };
}

macro_rules! disable_user_sql {
    ($users:literal, $sessions:literal) => {
        concat!("UPDATE ", $users, " SET disabled_at_ms = ?2 WHERE user_id = ?1 AND disabled_at_ms IS NULL")
    };
}

macro_rules! end_user_sessions_sql {
    ($users:literal, $sessions:literal) => {
        concat!("DELETE FROM ", $sessions, " WHERE user_id = ?1")
    };
}

macro_rules! count_failure_sql {
    ($users:literal, $sessions:literal) => {
        concat!(
            "UPDATE ",
            $users,
            " SET \
             failures = CASE WHEN locked_until_ms IS NULL THEN failures + 1 ELSE 1 END, \
             locked_until_ms = CASE \
               WHEN (CASE WHEN locked_until_ms IS NULL THEN failures + 1 ELSE 1 END) >= ?2 \
                 THEN CAST(?3 AS BIGINT) \
               ELSE NULL END \
             WHERE user_id = ?1 AND (locked_until_ms IS NULL OR locked_until_ms <= ?4)"
        )
    };
}

macro_rules! record_sign_in_sql {
    ($users:literal, $sessions:literal) => {
        concat!("UPDATE ", $users, " SET failures = 0, locked_until_ms = NULL, last_sign_in_at_ms = ?2, \
             totp_last_step = COALESCE(CAST(?3 AS BIGINT), totp_last_step) \
             WHERE user_id = ?1 AND (CAST(?3 AS BIGINT) IS NULL OR totp_last_step IS NULL OR totp_last_step < ?3)")
    };
}

macro_rules! insert_session_sql {
    ($users:literal, $sessions:literal) => {
        concat!("INSERT INTO ", $sessions, " (session_sha256, user_id, csrf_token, created_at_ms, last_seen_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)")
    };
}

macro_rules! select_session_sql {
    ($users:literal, $sessions:literal) => {
        concat!(
            "SELECT session_sha256, user_id, csrf_token, created_at_ms, last_seen_at_ms FROM ",
            $sessions,
            " WHERE session_sha256 = ?1"
        )
    };
}

macro_rules! touch_session_sql {
    ($users:literal, $sessions:literal) => {
        concat!(
            "UPDATE ",
            $sessions,
            " SET last_seen_at_ms = ?2 WHERE session_sha256 = ?1 AND last_seen_at_ms < ?2"
        )
    };
}

macro_rules! end_session_sql {
    ($users:literal, $sessions:literal) => {
        concat!("DELETE FROM ", $sessions, " WHERE session_sha256 = ?1")
    };
}

macro_rules! operator_columns {
    () => {
        "user_id, email, password_hash, totp_secret, totp_last_step, failures, \
     locked_until_ms, disabled_at_ms, last_sign_in_at_ms, created_at_ms"
    };
}

fn operator(row: &Row) -> Result<OperatorUser, StoreError> {
    Ok(OperatorUser {
        user_id: row.get("user_id")?,
        email: row.get("email")?,
        password_hash: row.get("password_hash")?,
        totp_secret: row.get("totp_secret")?,
        totp_last_step: row.get("totp_last_step")?,
        failures: row.get("failures")?,
        locked_until: optional_time(row, "locked_until_ms")?,
        disabled_at: optional_time(row, "disabled_at_ms")?,
        last_sign_in_at: optional_time(row, "last_sign_in_at_ms")?,
        created_at: time(row, "created_at_ms")?,
    })
}

pub(super) fn create_operator(db: &mut dyn Db, operator: &NewOperator) -> Result<(), StoreError> {
    let inserted = db.execute(
        "INSERT INTO operator_user (user_id, email, password_hash, setup_token_sha256, setup_expires_at_ms, \
         failures, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
        params![
            operator.user_id,
            operator.email,
            operator.password_hash,
            operator.setup.as_ref().map(|setup| setup.sha256.as_slice()),
            operator.setup.as_ref().map(|setup| millis(setup.expires_at)),
            millis(operator.created_at)
        ],
    );
    match inserted {
        Err(StoreError::Conflict(_)) => Err(StoreError::Conflict("email")),
        other => other.map(drop),
    }
}

pub(super) fn operator_by_email(db: &mut dyn Db, email: &str) -> Result<Option<OperatorUser>, StoreError> {
    db.query_opt(
        concat!("SELECT ", operator_columns!(), " FROM operator_user WHERE email = ?1"),
        params![email],
        operator,
    )
}

pub(super) fn find_operator(db: &mut dyn Db, user_id: &str) -> Result<Option<OperatorUser>, StoreError> {
    db.query_opt(
        concat!("SELECT ", operator_columns!(), " FROM operator_user WHERE user_id = ?1"),
        params![user_id],
        operator,
    )
}

pub(super) fn operators(db: &mut dyn Db) -> Result<Vec<OperatorUser>, StoreError> {
    db.query_all(concat!("SELECT ", operator_columns!(), " FROM operator_user ORDER BY email"), &[], operator)
}

pub(super) fn operator_by_setup_token(
    db: &mut dyn Db,
    sha256: &[u8],
    now: Timestamp,
) -> Result<Option<OperatorUser>, StoreError> {
    db.query_opt(
        concat!(
            "SELECT ",
            operator_columns!(),
            " FROM operator_user WHERE setup_token_sha256 = ?1 AND setup_expires_at_ms > ?2 AND disabled_at_ms IS NULL"
        ),
        params![sha256, millis(now)],
        operator,
    )
}

pub(super) fn operator_session(
    db: &mut dyn Db,
    sha256: &[u8],
) -> Result<Option<(PortalSession, OperatorUser)>, StoreError> {
    let Some(session) = session_row(db, Realm::Console, sha256)? else { return Ok(None) };
    Ok(find_operator(db, &session.user_id)?.map(|user| (session, user)))
}

macro_rules! user_columns {
    () => {
        "user_id, client_id, email, role, password_hash, totp_secret, totp_last_step, failures, locked_until_ms, \
         disabled_at_ms, last_sign_in_at_ms, created_at_ms"
    };
}

fn user(row: &Row) -> Result<PortalUser, StoreError> {
    let role: String = row.get("role")?;
    Ok(PortalUser {
        user_id: row.get("user_id")?,
        client_id: rows::client_id(row, "client_id")?,
        email: row.get("email")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("user role {role:?}")))?,
        password_hash: row.get("password_hash")?,
        totp_secret: row.get("totp_secret")?,
        totp_last_step: row.get("totp_last_step")?,
        failures: row.get("failures")?,
        locked_until: optional_time(row, "locked_until_ms")?,
        disabled_at: optional_time(row, "disabled_at_ms")?,
        last_sign_in_at: optional_time(row, "last_sign_in_at_ms")?,
        created_at: time(row, "created_at_ms")?,
    })
}

pub(super) fn create_user(db: &mut dyn Db, user: &NewPortalUser) -> Result<(), StoreError> {
    let inserted = db.execute(
        "INSERT INTO portal_user (user_id, client_id, email, role, password_hash, setup_token_sha256, \
         setup_expires_at_ms, failures, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)",
        params![
            user.user_id,
            user.client_id.as_str(),
            user.email,
            user.role.as_str(),
            user.password_hash,
            user.setup.as_ref().map(|setup| setup.sha256.as_slice()),
            user.setup.as_ref().map(|setup| millis(setup.expires_at)),
            millis(user.created_at)
        ],
    );
    match inserted {
        Err(StoreError::Conflict(_)) => Err(StoreError::Conflict("email")),
        other => other.map(drop),
    }
}

pub(super) fn by_email(db: &mut dyn Db, email: &str) -> Result<Option<PortalUser>, StoreError> {
    db.query_opt(
        concat!("SELECT ", user_columns!(), " FROM portal_user WHERE email = ?1"),
        params![email],
        user,
    )
}

pub(super) fn find(db: &mut dyn Db, user_id: &str) -> Result<Option<PortalUser>, StoreError> {
    db.query_opt(
        concat!("SELECT ", user_columns!(), " FROM portal_user WHERE user_id = ?1"),
        params![user_id],
        user,
    )
}

pub(super) fn list(db: &mut dyn Db, client_id: Option<&ClientId>) -> Result<Vec<PortalUser>, StoreError> {
    match client_id {
        Some(client_id) => db.query_all(
            concat!("SELECT ", user_columns!(), " FROM portal_user WHERE client_id = ?1 ORDER BY email"),
            params![client_id.as_str()],
            user,
        ),
        None => {
            db.query_all(concat!("SELECT ", user_columns!(), " FROM portal_user ORDER BY email"), &[], user)
        }
    }
}

/// A page of one participant's users by email (`portal_user_by_participant`).
pub(super) fn page(
    db: &mut dyn Db,
    client_id: &ClientId,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<PortalUser>, StoreError> {
    db.query_all(
        concat!(
            "SELECT ",
            user_columns!(),
            " FROM portal_user WHERE client_id = ?1 AND email > ?2 ORDER BY email LIMIT ?3"
        ),
        params![client_id.as_str(), after.unwrap_or(""), i64::from(limit)],
        user,
    )
}

pub(super) fn by_setup_token(
    db: &mut dyn Db,
    sha256: &[u8],
    now: Timestamp,
) -> Result<Option<PortalUser>, StoreError> {
    db.query_opt(
        concat!(
            "SELECT ",
            user_columns!(),
            " FROM portal_user WHERE setup_token_sha256 = ?1 AND setup_expires_at_ms > ?2 AND disabled_at_ms IS NULL"
        ),
        params![sha256, millis(now)],
        user,
    )
}

pub(super) fn update(
    db: &mut dyn Db,
    user_id: &str,
    change: &PortalUserChange,
) -> Result<Option<PortalUser>, StoreError> {
    if find(db, user_id)?.is_none() {
        return Ok(None);
    }
    if let Some(role) = change.role {
        db.execute("UPDATE portal_user SET role = ?2 WHERE user_id = ?1", params![user_id, role.as_str()])?;
    }
    apply_change(db, Realm::Portal, user_id, change)?;
    find(db, user_id)
}

pub(super) fn update_operator(
    db: &mut dyn Db,
    user_id: &str,
    change: &PortalUserChange,
) -> Result<Option<OperatorUser>, StoreError> {
    if find_operator(db, user_id)?.is_none() {
        return Ok(None);
    }
    apply_change(db, Realm::Console, user_id, change)?;
    find_operator(db, user_id)
}

/// What a change does to a user of either realm but the role.
fn apply_change(
    db: &mut dyn Db,
    realm: Realm,
    user_id: &str,
    change: &PortalUserChange,
) -> Result<(), StoreError> {
    if let Some(hash) = &change.password_hash {
        // A new password spends the one-time link and clears a lockout.
        db.execute(in_realm!(realm, set_password_sql), params![user_id, hash])?;
    }
    if let Some(setup) = &change.setup {
        db.execute(
            in_realm!(realm, set_setup_sql),
            params![user_id, setup.sha256.as_slice(), millis(setup.expires_at)],
        )?;
    }
    if let Some(secret) = &change.totp_secret {
        db.execute(in_realm!(realm, set_totp_sql), params![user_id, secret.as_deref()])?;
    }
    if let Some(at) = change.disabled_at {
        // A user disabled earlier keeps its first time.
        db.execute(in_realm!(realm, disable_user_sql), params![user_id, millis(at)])?;
    }
    if change.ends_sessions() {
        db.execute(in_realm!(realm, end_user_sessions_sql), params![user_id])?;
    }
    Ok(())
}

pub(super) fn count_failure(
    db: &mut dyn Db,
    realm: Realm,
    user_id: &str,
    failures_max: u32,
    locked_until: Timestamp,
    now: Timestamp,
) -> Result<bool, StoreError> {
    // As an SFTP login: a lockout that has ended starts the count afresh, and a failure during
    // one changes nothing, so that guessing on cannot push its end further.
    let counted = db.execute(
        in_realm!(realm, count_failure_sql),
        params![user_id, i64::from(failures_max), millis(locked_until), millis(now)],
    )?;
    Ok(counted == 1)
}

pub(super) fn record_sign_in(
    db: &mut dyn Db,
    realm: Realm,
    session: &PortalSession,
    totp_step: Option<i64>,
) -> Result<bool, StoreError> {
    let updated = db.execute(
        in_realm!(realm, record_sign_in_sql),
        params![session.user_id, millis(session.created_at), totp_step],
    )?;
    if updated == 0 {
        return Ok(false);
    }
    db.execute(
        in_realm!(realm, insert_session_sql),
        params![
            session.session_sha256.as_slice(),
            session.user_id,
            session.csrf_token,
            millis(session.created_at),
            millis(session.last_seen_at)
        ],
    )?;
    Ok(true)
}

pub(super) fn session(
    db: &mut dyn Db,
    sha256: &[u8],
) -> Result<Option<(PortalSession, PortalUser)>, StoreError> {
    let Some(session) = session_row(db, Realm::Portal, sha256)? else { return Ok(None) };
    Ok(find(db, &session.user_id)?.map(|user| (session, user)))
}

fn session_row(db: &mut dyn Db, realm: Realm, sha256: &[u8]) -> Result<Option<PortalSession>, StoreError> {
    db.query_opt(in_realm!(realm, select_session_sql), params![sha256], |row| {
        Ok(PortalSession {
            session_sha256: row.get("session_sha256")?,
            user_id: row.get("user_id")?,
            csrf_token: row.get("csrf_token")?,
            created_at: time(row, "created_at_ms")?,
            last_seen_at: time(row, "last_seen_at_ms")?,
        })
    })
}

pub(super) fn touch_session(
    db: &mut dyn Db,
    realm: Realm,
    sha256: &[u8],
    now: Timestamp,
) -> Result<(), StoreError> {
    db.execute(in_realm!(realm, touch_session_sql), params![sha256, millis(now)])?;
    Ok(())
}

pub(super) fn end_session(db: &mut dyn Db, realm: Realm, sha256: &[u8]) -> Result<(), StoreError> {
    db.execute(in_realm!(realm, end_session_sql), params![sha256])?;
    Ok(())
}

#[async_trait]
impl<E: Engine> PortalStore for SqlStore<E> {
    async fn create_portal_user(&self, user: &crate::NewPortalUser) -> Result<(), StoreError> {
        let user = user.clone();
        self.engine.write(Isolation::Serializable, move |db| create_user(db, &user)).await
    }

    async fn sign_up(
        &self,
        participant: &Participant,
        key: &NewKey,
        owner: &crate::NewPortalUser,
    ) -> Result<(), StoreError> {
        let (participant, key, owner) = (participant.clone(), key.clone(), owner.clone());
        self.engine
            .write(Isolation::Serializable, move |db| {
                super::participants::create(db, &participant, &key)?;
                create_user(db, &owner)
            })
            .await
    }

    async fn portal_user_by_email(&self, email: &str) -> Result<Option<crate::PortalUser>, StoreError> {
        self.engine.read(|db| by_email(db, email)).await
    }

    async fn portal_user(&self, user_id: &str) -> Result<Option<crate::PortalUser>, StoreError> {
        self.engine.read(|db| find(db, user_id)).await
    }

    async fn portal_users(&self, client_id: Option<&ClientId>) -> Result<Vec<crate::PortalUser>, StoreError> {
        self.engine.read(|db| list(db, client_id)).await
    }

    async fn portal_users_page(
        &self,
        client_id: &ClientId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::PortalUser>, StoreError> {
        self.engine.read(|db| page(db, client_id, after, limit)).await
    }

    async fn portal_user_by_setup_token(
        &self,
        sha256: &[u8],
        now: Timestamp,
    ) -> Result<Option<crate::PortalUser>, StoreError> {
        self.engine.read(|db| by_setup_token(db, sha256, now)).await
    }

    async fn update_portal_user(
        &self,
        user_id: &str,
        change: &crate::PortalUserChange,
    ) -> Result<Option<crate::PortalUser>, StoreError> {
        let (user_id, change) = (user_id.to_owned(), change.clone());
        self.engine.write(Isolation::Serializable, move |db| update(db, &user_id, &change)).await
    }

    async fn portal_session(
        &self,
        session_sha256: &[u8],
    ) -> Result<Option<(crate::PortalSession, crate::PortalUser)>, StoreError> {
        self.engine.read(|db| session(db, session_sha256)).await
    }
}

#[async_trait]
impl<E: Engine> OperatorStore for SqlStore<E> {
    async fn create_operator(&self, operator: &crate::NewOperator) -> Result<(), StoreError> {
        let operator = operator.clone();
        self.engine.write(Isolation::Serializable, move |db| create_operator(db, &operator)).await
    }

    async fn operator_by_email(&self, email: &str) -> Result<Option<crate::OperatorUser>, StoreError> {
        self.engine.read(|db| operator_by_email(db, email)).await
    }

    async fn operators(&self) -> Result<Vec<crate::OperatorUser>, StoreError> {
        self.engine.read(operators).await
    }

    async fn operator_by_setup_token(
        &self,
        sha256: &[u8],
        now: Timestamp,
    ) -> Result<Option<crate::OperatorUser>, StoreError> {
        self.engine.read(|db| operator_by_setup_token(db, sha256, now)).await
    }

    async fn update_operator(
        &self,
        user_id: &str,
        change: &crate::PortalUserChange,
    ) -> Result<Option<crate::OperatorUser>, StoreError> {
        let (user_id, change) = (user_id.to_owned(), change.clone());
        self.engine.write(Isolation::Serializable, move |db| update_operator(db, &user_id, &change)).await
    }

    async fn operator_session(
        &self,
        session_sha256: &[u8],
    ) -> Result<Option<(crate::PortalSession, crate::OperatorUser)>, StoreError> {
        self.engine.read(|db| operator_session(db, session_sha256)).await
    }
}

#[async_trait]
impl<E: Engine> SessionStore for SqlStore<E> {
    async fn sign_in_attempt(
        &self,
        realm: Realm,
        user_id: &str,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let user_id = user_id.to_owned();
        self.engine
            .write(Isolation::Serializable, move |db| {
                count_failure(db, realm, &user_id, failures_max, locked_until, now)
            })
            .await
    }

    async fn record_sign_in(
        &self,
        realm: Realm,
        session: &crate::PortalSession,
        totp_step: Option<i64>,
    ) -> Result<bool, StoreError> {
        let session = session.clone();
        self.engine
            .write(Isolation::Serializable, move |db| record_sign_in(db, realm, &session, totp_step))
            .await
    }

    async fn touch_session(
        &self,
        realm: Realm,
        session_sha256: &[u8],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let sha256 = session_sha256.to_vec();
        self.engine.write(Isolation::Serializable, move |db| touch_session(db, realm, &sha256, now)).await
    }

    async fn end_session(&self, realm: Realm, session_sha256: &[u8]) -> Result<(), StoreError> {
        let sha256 = session_sha256.to_vec();
        self.engine.write(Isolation::Serializable, move |db| end_session(db, realm, &sha256)).await
    }
}
