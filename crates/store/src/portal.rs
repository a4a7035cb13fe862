//! What the store keeps for the developer center and the operator's console: their users and
//! their sessions.

use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::portal::Role;

/// A person who signs in to the developer center for one participant.
#[derive(Clone, PartialEq, Eq)]
pub struct PortalUser {
    /// Random, never shown in a URL another user could guess from.
    pub user_id: String,
    pub client_id: ClientId,
    /// Lower-case.
    pub email: String,
    pub role: Role,
    /// An argon2id PHC string; `None` until the user sets a password.
    pub password_hash: Option<String>,
    /// The confirmed TOTP key (base32), when the second factor is on.
    pub totp_secret: Option<String>,
    /// The last TOTP time step a code was accepted for.
    pub totp_last_step: Option<i64>,
    /// Failed sign-ins in a row.
    pub failures: u32,
    pub locked_until: Option<Timestamp>,
    pub disabled_at: Option<Timestamp>,
    pub last_sign_in_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for PortalUser {
    /// Without the password hash and the TOTP key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalUser")
            .field("user_id", &self.user_id)
            .field("client_id", &self.client_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("totp", &self.totp_secret.is_some())
            .field("disabled_at", &self.disabled_at)
            .finish_non_exhaustive()
    }
}

/// A person who runs the platform from the operator's console. Operators belong to no
/// participant; they sign in as the developer center's users do (the same checks, lockout and
/// sessions, in tables of their own), and the console requires their second factor.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorUser {
    pub user_id: String,
    /// Lower-case.
    pub email: String,
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
    pub totp_last_step: Option<i64>,
    pub failures: u32,
    pub locked_until: Option<Timestamp>,
    pub disabled_at: Option<Timestamp>,
    pub last_sign_in_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for OperatorUser {
    /// Without the password hash and the TOTP key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorUser")
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("totp", &self.totp_secret.is_some())
            .field("disabled_at", &self.disabled_at)
            .finish_non_exhaustive()
    }
}

/// An operator to create, as [`NewPortalUser`] without a participant or a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOperator {
    pub user_id: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub setup: Option<SetupToken>,
    pub created_at: Timestamp,
}

/// A user to create: with a password hash, or with the SHA-256 of a one-time link that sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPortalUser {
    pub user_id: String,
    pub client_id: ClientId,
    pub email: String,
    pub role: Role,
    pub password_hash: Option<String>,
    pub setup: Option<SetupToken>,
    pub created_at: Timestamp,
}

/// A one-time link's token, as kept: its SHA-256 and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupToken {
    pub sha256: Vec<u8>,
    pub expires_at: Timestamp,
}

/// What [`crate::PortalStore::update_portal_user`] (and `update_operator`, where `role` means
/// nothing) changes; a field left `None` stays as it is.
/// Every change but a new TOTP key ends the user's sessions in the same transaction, so that a
/// new password, a lost role or a disabled account signs out every browser at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortalUserChange {
    /// A new password hash; it also spends the one-time link.
    pub password_hash: Option<String>,
    /// `Some(None)` turns the second factor off.
    pub totp_secret: Option<Option<String>>,
    pub role: Option<Role>,
    /// Disables the user from this time on.
    pub disabled_at: Option<Timestamp>,
    /// A new one-time link (the user's password stays until the link is used).
    pub setup: Option<SetupToken>,
}

impl PortalUserChange {
    /// Whether the change ends the user's sessions.
    pub fn ends_sessions(&self) -> bool {
        self.password_hash.is_some() || self.role.is_some() || self.disabled_at.is_some()
    }
}

/// A signed-in browser, as kept (the cookie's id only as its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    pub session_sha256: Vec<u8>,
    pub user_id: String,
    /// The token every form and state-changing request of the session must carry.
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

/// What a participant did per UTC day (`day` = days since 1970-01-01), for the developer
/// center's charts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DailyActivity {
    /// Successful payments by the day they were created, per currency.
    pub payments: Vec<DayTotal>,
    /// Successful refunds by the day they were asked for, per currency.
    pub refunds: Vec<DayTotal>,
    /// Notifications to the participant by the day they were created, by where they stand.
    pub notifications: Vec<DayDeliveries>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTotal {
    pub day: i64,
    pub count: u64,
    pub amount: ocpay_core::money::Money,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayDeliveries {
    pub day: i64,
    pub delivered: u64,
    pub failed: u64,
    pub pending: u64,
}

/// Whose users and sessions: the developer center's or the operator's console's, each in tables
/// of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    /// The developer center's users (`portal_user`, `portal_session`).
    Portal,
    /// The operator's console's operators (`operator_user`, `operator_session`).
    Console,
}
