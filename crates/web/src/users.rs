//! The use cases of developer-center accounts, shared by the pages and the CLI
//! (`ocpay users create|list|disable`): creating a user with a password or a one-time link,
//! setting the password through the link, disabling a user, and a self sign-up; and the same
//! for the operator's console's operators (`ocpay users create --operator`).

use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Environment, Participant, ParticipantKind};
use ocpay_core::portal::Role;
use ocpay_core::text::Name;
use ocpay_protocol::VerifyingKey;
use ocpay_server::service::participants::{self, NewParticipant, ParticipantError};
use ocpay_server::settings::{NotifySettings, PortalSettings};
use ocpay_store::{
    NewOperator, NewPortalUser, OperatorUser, PortalUser, PortalUserChange, SetupToken, Store, StoreError,
};

use crate::auth::{PasswordError, Passwords, sha256, token};
use crate::session::{Account as _, ConsoleRealm, PortalRealm, Realm};

/// Why an account use case refused.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("email: {0}")]
    Email(&'static str),
    #[error("email: a user with this email exists already")]
    EmailTaken,
    #[error("password: {0}")]
    Password(#[from] PasswordError),
    #[error("client id: no such participant")]
    NoParticipant,
    #[error("no such user")]
    NoUser,
    #[error("the link is not valid (used, expired or mistyped); ask for a new one")]
    BadLink,
    #[error("only a user who has not set a password yet gets a new link (a disabled user gets none)")]
    NotInvited,
    #[error(transparent)]
    Participant(ParticipantError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for UserError {
    fn from(error: StoreError) -> UserError {
        match error {
            StoreError::Conflict("email") => UserError::EmailTaken,
            other => UserError::Store(other),
        }
    }
}

impl From<ParticipantError> for UserError {
    fn from(error: ParticipantError) -> UserError {
        match error {
            ParticipantError::Store(store) => store.into(),
            other => UserError::Participant(other),
        }
    }
}

/// An email as kept: trimmed, lower-case, one `@` with text either side, no spaces or
/// control characters, at most 254 bytes (RFC 5321's path limit).
pub fn normalise_email(email: &str) -> Result<String, UserError> {
    let email = email.trim().to_lowercase();
    if email.is_empty() {
        return Err(UserError::Email("is missing"));
    }
    if email.len() > 254 {
        return Err(UserError::Email("is longer than 254 characters"));
    }
    let well_formed = matches!(email.split_once('@'), Some((local, domain))
        if !local.is_empty() && !domain.is_empty() && !domain.contains('@') && domain.contains('.'));
    if !well_formed || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UserError::Email("is not an email address"));
    }
    Ok(email)
}

fn user_id() -> String {
    format!("U{}", &token()[..22])
}

/// A user made: when no password was given, the one-time link's token (shown once).
pub struct Created {
    pub user: NewPortalUser,
    pub setup_token: Option<String>,
}

/// Who to create: without a password, the user gets a one-time link to set one.
pub struct NewUser<'a> {
    pub client_id: &'a ClientId,
    pub email: &'a str,
    pub role: Role,
    pub password: Option<&'a str>,
}

/// Creates a user of an existing participant, with a password, or with a one-time link that
/// sets it (the token is returned once and kept only as its SHA-256).
pub async fn create(
    store: &dyn Store,
    passwords: &Passwords,
    settings: &PortalSettings,
    now: Timestamp,
    new: NewUser<'_>,
) -> Result<Created, UserError> {
    let NewUser { client_id, email, role, password } = new;
    let email = normalise_email(email)?;
    let password_hash = match password {
        Some(password) => Some(passwords.hash_off_runtime(password).await?),
        None => None,
    };
    if store.participant(client_id).await?.is_none() {
        return Err(UserError::NoParticipant);
    }
    let setup_token = password_hash.is_none().then(token);
    let setup = setup_token
        .as_deref()
        .map(|token| SetupToken { sha256: sha256(token), expires_at: now + settings.setup_link });
    let user = NewPortalUser {
        user_id: user_id(),
        client_id: client_id.clone(),
        email,
        role,
        password_hash,
        setup,
        created_at: now,
    };
    store.create_portal_user(&user).await?;
    Ok(Created { user, setup_token })
}

/// The one-time link's URL.
pub fn setup_link(public_url: &str, token: &str) -> String {
    setup_link_in::<PortalRealm>(public_url, token)
}

/// An operator's one-time link's URL, on the console.
pub fn operator_setup_link(public_url: &str, token: &str) -> String {
    setup_link_in::<ConsoleRealm>(public_url, token)
}

fn setup_link_in<R: Realm>(public_url: &str, token: &str) -> String {
    format!("{}{}/setup?token={token}", public_url.trim_end_matches('/'), R::PATH)
}

/// An operator made: when no password was given, the one-time link's token (shown once).
pub struct CreatedOperator {
    pub operator: NewOperator,
    pub setup_token: Option<String>,
}

/// Creates an operator, with a password or with a one-time link that sets it, as [`create`]
/// does a participant's user. An operator signs in to the console only once it has turned
/// on the second factor, which the console asks for first.
pub async fn create_operator(
    store: &dyn Store,
    passwords: &Passwords,
    settings: &PortalSettings,
    now: Timestamp,
    email: &str,
    password: Option<&str>,
) -> Result<CreatedOperator, UserError> {
    let email = normalise_email(email)?;
    let password_hash = match password {
        Some(password) => Some(passwords.hash_off_runtime(password).await?),
        None => None,
    };
    let setup_token = password_hash.is_none().then(token);
    let setup = setup_token
        .as_deref()
        .map(|token| SetupToken { sha256: sha256(token), expires_at: now + settings.setup_link });
    let operator = NewOperator { user_id: user_id(), email, password_hash, setup, created_at: now };
    store.create_operator(&operator).await?;
    Ok(CreatedOperator { operator, setup_token })
}

/// Sets the password of the user (of realm `R`) the link names; the link is spent and the
/// user's sessions end.
pub async fn set_password<R: Realm>(
    store: &dyn Store,
    passwords: &Passwords,
    now: Timestamp,
    link_token: &str,
    password: &str,
) -> Result<R::User, UserError> {
    let user = R::by_setup_token(store, &sha256(link_token), now).await?.ok_or(UserError::BadLink)?;
    let change = PortalUserChange {
        password_hash: Some(passwords.hash_off_runtime(password).await?),
        ..Default::default()
    };
    R::update(store, user.user_id(), &change).await?.ok_or(UserError::NoUser)
}

/// A new one-time link for a user who has not set a password yet (the earlier link stops
/// working); returns the user and the link's token, shown once.
pub async fn new_link(
    store: &dyn Store,
    settings: &PortalSettings,
    now: Timestamp,
    user: &PortalUser,
) -> Result<(PortalUser, String), UserError> {
    new_link_in::<PortalRealm>(store, settings, now, user).await
}

/// As [`new_link`], for an operator.
pub async fn new_operator_link(
    store: &dyn Store,
    settings: &PortalSettings,
    now: Timestamp,
    operator: &OperatorUser,
) -> Result<(OperatorUser, String), UserError> {
    new_link_in::<ConsoleRealm>(store, settings, now, operator).await
}

async fn new_link_in<R: Realm>(
    store: &dyn Store,
    settings: &PortalSettings,
    now: Timestamp,
    user: &R::User,
) -> Result<(R::User, String), UserError> {
    if user.password_hash().is_some() || user.is_disabled() {
        return Err(UserError::NotInvited);
    }
    let token = token();
    let setup = SetupToken { sha256: sha256(&token), expires_at: now + settings.setup_link };
    let change = PortalUserChange { setup: Some(setup), ..Default::default() };
    let user = R::update(store, user.user_id(), &change).await?.ok_or(UserError::NoUser)?;
    Ok((user, token))
}

/// Disables the user with this email from `now` on; its sessions end at once.
pub async fn disable(store: &dyn Store, now: Timestamp, email: &str) -> Result<PortalUser, UserError> {
    disable_in::<PortalRealm>(store, now, email).await
}

/// Disables the operator with this email from `now` on; its sessions end at once.
pub async fn disable_operator(
    store: &dyn Store,
    now: Timestamp,
    email: &str,
) -> Result<OperatorUser, UserError> {
    disable_in::<ConsoleRealm>(store, now, email).await
}

async fn disable_in<R: Realm>(store: &dyn Store, now: Timestamp, email: &str) -> Result<R::User, UserError> {
    let email = normalise_email(email)?;
    let user = R::by_email(store, &email).await?.ok_or(UserError::NoUser)?;
    let change = PortalUserChange { disabled_at: Some(now), ..Default::default() };
    R::update(store, user.user_id(), &change).await?.ok_or(UserError::NoUser)
}

/// What a self sign-up asks for.
pub struct SignUp<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub merchant_name: Name,
    /// The public half of the key pair the browser generated (or the person pasted).
    pub public_key: VerifyingKey,
}

/// Creates a sandbox merchant and its owner at once (both or neither).
pub async fn sign_up(
    store: &dyn Store,
    passwords: &Passwords,
    notify: &NotifySettings,
    now: Timestamp,
    sign_up: SignUp<'_>,
) -> Result<(Participant, NewPortalUser), UserError> {
    let email = normalise_email(sign_up.email)?;
    let password_hash = passwords.hash_off_runtime(sign_up.password).await?;
    if store.portal_user_by_email(&email).await?.is_some() {
        return Err(UserError::EmailTaken);
    }
    let new = NewParticipant {
        kind: ParticipantKind::Merchant,
        environment: Environment::Sandbox,
        name: sign_up.merchant_name,
        public_key: sign_up.public_key,
        notify_url: None,
    };
    let id = user_id();
    let owner = |client_id: &ClientId| NewPortalUser {
        user_id: id.clone(),
        client_id: client_id.clone(),
        email: email.clone(),
        role: Role::Owner,
        password_hash: Some(password_hash.clone()),
        setup: None,
        created_at: now,
    };
    let participant = participants::sign_up(store, notify, now, new, &owner).await?;
    let user = owner(&participant.client_id);
    Ok((participant, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_or_refused() {
        assert_eq!(normalise_email("  Dev@Shop.Example ").unwrap(), "dev@shop.example");
        for bad in
            ["", "no-at.example", "@shop.example", "dev@", "dev@shop", "a b@shop.example", "a@b@c.example"]
        {
            assert!(normalise_email(bad).is_err(), "{bad:?}");
        }
        assert!(normalise_email(&format!("{}@x.example", "a".repeat(250))).is_err());
    }
}
