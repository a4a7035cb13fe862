//! Creating participants and adding keys to them. Used by the CLI, which may run while the
//! server does: both go through the store, whose writes are transactions.

use jiff::Timestamp;
use ocpay_core::access::Scopes;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{
    Environment, KeyLabel, KeyVersion, Participant, ParticipantKey, ParticipantKind, SANDBOX_CLIENT_ID_PREFIX,
};
use ocpay_core::text::{self, Name};
use ocpay_protocol::VerifyingKey;
use ocpay_store::{NewKey, NewPortalUser, ParticipantChange, Store, StoreError};

use crate::settings::NotifySettings;
use crate::{HttpUrl, random};

/// Longest participant name.
pub const NAME_CHARS_MAX: usize = text::NAME_CHARS_MAX;
/// Longest key label.
pub const LABEL_CHARS_MAX: usize = ocpay_core::participant::LABEL_CHARS_MAX;

#[derive(Debug, thiserror::Error)]
pub enum ParticipantError {
    #[error("{field}: {reason}")]
    Invalid { field: ParticipantField, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which value given for a participant, a key or a grant was refused. The CLI and the admin
/// API name it as their callers gave it (a flag, a JSON field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantField {
    ClientId,
    NotifyUrl,
    KeyVersion,
    /// How long a key or a grant lasts.
    Lifetime,
    Merchant,
    Isv,
    Grant,
}

impl std::fmt::Display for ParticipantField {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            ParticipantField::ClientId => "client id",
            ParticipantField::NotifyUrl => "notify URL",
            ParticipantField::KeyVersion => "key version",
            ParticipantField::Lifetime => "lifetime",
            ParticipantField::Merchant => "merchant",
            ParticipantField::Isv => "ISV",
            ParticipantField::Grant => "grant",
        })
    }
}

pub(crate) fn invalid(field: ParticipantField, reason: impl ToString) -> ParticipantError {
    ParticipantError::Invalid { field, reason: reason.to_string() }
}

/// What it takes to create a participant.
#[derive(Debug, Clone)]
pub struct NewParticipant {
    pub kind: ParticipantKind,
    pub environment: Environment,
    pub name: Name,
    pub public_key: VerifyingKey,
    pub notify_url: Option<HttpUrl>,
}

/// Creates a participant with a fresh client id and the given key as version 1. Its notify URL
/// may name a loopback or private address only where `config` allows it for its environment,
/// and never a link-local or metadata address or the platform's own listeners.
pub async fn create(
    store: &dyn Store,
    notify: &NotifySettings,
    now: Timestamp,
    new: NewParticipant,
) -> Result<Participant, ParticipantError> {
    create_as(store, notify, now, new, None, None).await
}

/// As [`create`], with the client id an operator chose (a participant moving to ocpay keeps
/// its own): it must say the participant's environment (`SANDBOX_...` for the sandbox, and
/// only there) and no participant may have it yet.
pub async fn create_with_client_id(
    store: &dyn Store,
    notify: &NotifySettings,
    now: Timestamp,
    new: NewParticipant,
    client_id: ClientId,
) -> Result<Participant, ParticipantError> {
    if ocpay_core::participant::is_reserved_client_id(&client_id) {
        return Err(invalid(
            ParticipantField::ClientId,
            format!("{client_id} names an audit trail of the platform"),
        ));
    }
    if Environment::of_client_id(&client_id) != new.environment {
        let reason = match new.environment {
            Environment::Sandbox => format!("a sandbox participant's starts with {SANDBOX_CLIENT_ID_PREFIX}"),
            Environment::Live => {
                format!("a live participant's does not start with {SANDBOX_CLIENT_ID_PREFIX}")
            }
        };
        return Err(invalid(ParticipantField::ClientId, reason));
    }
    create_as(store, notify, now, new, Some(client_id), None).await
}

/// As [`create`], with the participant's first developer-center user (made for the client id
/// the participant gets) created in the same transaction: a sign-up leaves both or neither.
pub async fn sign_up(
    store: &dyn Store,
    notify: &NotifySettings,
    now: Timestamp,
    new: NewParticipant,
    owner: &(dyn Fn(&ClientId) -> NewPortalUser + Sync),
) -> Result<Participant, ParticipantError> {
    create_as(store, notify, now, new, None, Some(owner)).await
}

async fn create_as(
    store: &dyn Store,
    notify: &NotifySettings,
    now: Timestamp,
    new: NewParticipant,
    chosen: Option<ClientId>,
    owner: Option<&(dyn Fn(&ClientId) -> NewPortalUser + Sync)>,
) -> Result<Participant, ParticipantError> {
    if let Some(url) = &new.notify_url {
        notify
            .check_url(new.environment, url)
            .map_err(|reason| invalid(ParticipantField::NotifyUrl, reason))?;
    }
    let notify_url = new.notify_url.map(HttpUrl::into_string);
    let key = NewKey {
        public_key_der: new.public_key.spki_der().to_vec(),
        label: None,
        scopes: Scopes::ALL,
        created_at: now,
        expires_at: None,
    };
    // A clash of 80 random bits is astronomically unlikely; retry once anyway rather than fail.
    for _ in 0..2 {
        let participant = Participant {
            client_id: chosen.clone().unwrap_or_else(|| random::client_id(new.environment)),
            kind: new.kind,
            name: new.name.clone(),
            notify_url: notify_url.clone(),
            created_at: now,
        };
        let created = match owner {
            None => store.create_participant(&participant, &key).await,
            Some(owner) => store.sign_up(&participant, &key, &owner(&participant.client_id)).await,
        };
        match created {
            Ok(()) => return Ok(participant),
            Err(StoreError::Conflict("client id")) if chosen.is_some() => {
                return Err(invalid(ParticipantField::ClientId, "another participant has it"));
            }
            Err(StoreError::Conflict("client id")) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(StoreError::Conflict("client id").into())
}

/// What to change of a participant; a field left `None` stays as it is.
#[derive(Debug, Clone, Default)]
pub struct ParticipantUpdate {
    pub name: Option<Name>,
    /// The default notify URL: `Some(None)` removes it, so that every request must name its own.
    pub notify_url: Option<Option<HttpUrl>>,
}

/// Changes a participant's name or default notify URL, checked as [`create`] checks it, and
/// returns the participant as changed. Requests read the participant afresh, so a running
/// server uses the change from its next request.
pub async fn update(
    store: &dyn Store,
    notify: &NotifySettings,
    client_id: &ClientId,
    update: ParticipantUpdate,
) -> Result<Participant, ParticipantError> {
    let notify_url = match update.notify_url {
        Some(Some(url)) => {
            notify
                .check_url(Environment::of_client_id(client_id), &url)
                .map_err(|reason| invalid(ParticipantField::NotifyUrl, reason))?;
            Some(Some(url.into_string()))
        }
        Some(None) => Some(None),
        None => None,
    };
    let change = ParticipantChange { name: update.name, notify_url };
    store.update_participant(client_id, &change).await.map_err(|error| match error {
        StoreError::NotFound(_) => {
            invalid(ParticipantField::ClientId, format!("no participant has the client id {client_id}"))
        }
        other => other.into(),
    })
}

/// Suspends a participant from `now` on (`suspend`), or resumes it: while suspended, the
/// gateway answers its signed requests, and an ISV's for it, `ACCESS_DENIED`. Returns the
/// participant as it stands then.
pub async fn set_suspended(
    store: &dyn Store,
    now: Timestamp,
    client_id: &ClientId,
    suspend: bool,
) -> Result<ocpay_store::oversight::ParticipantListing, ParticipantError> {
    store.set_participant_suspension(client_id, suspend.then_some(now)).await.map_err(|error| match error {
        StoreError::NotFound(_) => {
            invalid(ParticipantField::ClientId, format!("no participant has the client id {client_id}"))
        }
        other => other.into(),
    })
}

/// A key to add to an existing participant.
#[derive(Debug, Clone)]
pub struct AddedKey {
    pub public_key: VerifyingKey,
    pub label: Option<KeyLabel>,
    /// What the key may do: every scope for a rotated key of the participant's own, fewer
    /// for a system integrator's.
    pub scopes: Scopes,
    pub expires_at: Option<Timestamp>,
}

/// Adds a key and returns its version.
pub async fn add_key(
    store: &dyn Store,
    now: Timestamp,
    client_id: &ClientId,
    added: AddedKey,
) -> Result<KeyVersion, ParticipantError> {
    if added.expires_at.is_some_and(|at| at <= now) {
        return Err(invalid(ParticipantField::Lifetime, "must be in the future"));
    }
    let key = NewKey {
        public_key_der: added.public_key.spki_der().to_vec(),
        label: added.label,
        scopes: added.scopes,
        created_at: now,
        expires_at: added.expires_at,
    };
    Ok(store.add_participant_key(client_id, &key).await?)
}

/// Revokes one key at once; the participant's other keys keep working.
pub async fn revoke_key(
    store: &dyn Store,
    now: Timestamp,
    client_id: &ClientId,
    key_version: KeyVersion,
) -> Result<ParticipantKey, ParticipantError> {
    store.revoke_participant_key(client_id, key_version, now).await.map_err(|error| match error {
        StoreError::NotFound(_) => {
            invalid(ParticipantField::KeyVersion, format!("{client_id} has no key version {key_version}"))
        }
        other => other.into(),
    })
}
