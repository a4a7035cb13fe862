//! The users and sessions of the developer center and of the operator's console.

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::Participant;

use crate::portal::{
    NewOperator, NewPortalUser, OperatorUser, PortalSession, PortalUser, PortalUserChange, Realm,
};
use crate::{NewKey, StoreError};

/// The developer center's users and sessions.
#[async_trait]
pub trait PortalStore: Send + Sync {
    /// Creates a user; `Conflict("email")` when the email is taken (by any participant).
    async fn create_portal_user(&self, user: &NewPortalUser) -> Result<(), StoreError>;

    /// Creates a participant with its first key and its first user, all or nothing (a sign-up).
    async fn sign_up(
        &self,
        participant: &Participant,
        key: &NewKey,
        owner: &NewPortalUser,
    ) -> Result<(), StoreError>;

    /// The user with this (lower-case) email.
    async fn portal_user_by_email(&self, email: &str) -> Result<Option<PortalUser>, StoreError>;

    async fn portal_user(&self, user_id: &str) -> Result<Option<PortalUser>, StoreError>;

    /// The users of one participant, or of all, by email.
    async fn portal_users(&self, client_id: Option<&ClientId>) -> Result<Vec<PortalUser>, StoreError>;

    /// A page of one participant's users by email: at most `limit`, with emails after `after`
    /// when given (the last email of the page before).
    async fn portal_users_page(
        &self,
        client_id: &ClientId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PortalUser>, StoreError>;

    /// The user whose one-time link has this SHA-256, while it works at `now`.
    async fn portal_user_by_setup_token(
        &self,
        sha256: &[u8],
        now: Timestamp,
    ) -> Result<Option<PortalUser>, StoreError>;

    /// Changes a user (see [`PortalUserChange`]) and returns it as changed; `None` when there
    /// is no such user.
    async fn update_portal_user(
        &self,
        user_id: &str,
        change: &PortalUserChange,
    ) -> Result<Option<PortalUser>, StoreError>;

    /// A session with its user.
    async fn portal_session(
        &self,
        session_sha256: &[u8],
    ) -> Result<Option<(PortalSession, PortalUser)>, StoreError>;
}

/// The operator's console's users and sessions: as the developer center's, in tables of their own.
#[async_trait]
pub trait OperatorStore: Send + Sync {
    /// Creates an operator; `Conflict("email")` when another operator has the email.
    async fn create_operator(&self, operator: &NewOperator) -> Result<(), StoreError>;

    /// The operator with this (lower-case) email.
    async fn operator_by_email(&self, email: &str) -> Result<Option<OperatorUser>, StoreError>;

    /// Every operator, by email.
    async fn operators(&self) -> Result<Vec<OperatorUser>, StoreError>;

    /// As [`PortalStore::portal_user_by_setup_token`], for operators.
    async fn operator_by_setup_token(
        &self,
        sha256: &[u8],
        now: Timestamp,
    ) -> Result<Option<OperatorUser>, StoreError>;

    /// As [`PortalStore::update_portal_user`], for operators (`role` is not theirs and is ignored).
    async fn update_operator(
        &self,
        user_id: &str,
        change: &PortalUserChange,
    ) -> Result<Option<OperatorUser>, StoreError>;

    /// An operator's session with its operator.
    async fn operator_session(
        &self,
        session_sha256: &[u8],
    ) -> Result<Option<(PortalSession, OperatorUser)>, StoreError>;
}

/// The sign-ins and sessions of either realm: the developer center's users or the operator's
/// console's, as `realm` says.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Starts a sign-in check as [`SftpStore::sftp_login_attempt`] does: false if the user is
    /// locked at `now`; otherwise the attempt counts as a failure until
    /// [`SessionStore::record_sign_in`] clears it, and the `failures_max`-th in a row locks the
    /// user until `locked_until`.
    ///
    /// [`SftpStore::sftp_login_attempt`]: crate::SftpStore::sftp_login_attempt
    async fn sign_in_attempt(
        &self,
        realm: Realm,
        user_id: &str,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Records a successful sign-in and creates its session: clears the failures, stamps the
    /// time and, when a TOTP code was used, its step, which must be later than the last one
    /// accepted (false, and nothing written, when it is not: a code works once).
    async fn record_sign_in(
        &self,
        realm: Realm,
        session: &PortalSession,
        totp_step: Option<i64>,
    ) -> Result<bool, StoreError>;

    /// Marks a session used at `now`.
    async fn touch_session(
        &self,
        realm: Realm,
        session_sha256: &[u8],
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Ends a session (sign-out, or found expired).
    async fn end_session(&self, realm: Realm, session_sha256: &[u8]) -> Result<(), StoreError>;
}
