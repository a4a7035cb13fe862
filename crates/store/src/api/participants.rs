//! Participants and their keys.

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{KeyVersion, Participant, ParticipantKey};

use crate::{NewKey, ParticipantChange, StoreError};

/// Participants and their keys.
#[async_trait]
pub trait ParticipantStore: Send + Sync {
    /// Creates a participant with its first key (version 1).
    async fn create_participant(&self, participant: &Participant, key: &NewKey) -> Result<(), StoreError>;

    /// Adds a key to a participant and returns the key version it got.
    async fn add_participant_key(&self, client_id: &ClientId, key: &NewKey)
    -> Result<KeyVersion, StoreError>;

    async fn participant(&self, client_id: &ClientId) -> Result<Option<Participant>, StoreError>;

    /// Every key of a participant, oldest first.
    async fn participant_keys(&self, client_id: &ClientId) -> Result<Vec<ParticipantKey>, StoreError>;

    /// A page of a participant's keys, newest version first: at most `limit`, with versions
    /// below `before` when given (the last version of the page before), each with when it last
    /// signed a request (its newest audit event; `None` when it has none). The developer
    /// center's key list.
    async fn keys_with_last_use(
        &self,
        client_id: &ClientId,
        before: Option<KeyVersion>,
        limit: u32,
    ) -> Result<Vec<(ParticipantKey, Option<Timestamp>)>, StoreError>;

    /// Revokes one key from `now` on (a key revoked before keeps its time) and returns it.
    async fn revoke_participant_key(
        &self,
        client_id: &ClientId,
        key_version: KeyVersion,
        now: Timestamp,
    ) -> Result<ParticipantKey, StoreError>;

    /// Participants in order of creation, at most `limit`.
    async fn participants(&self, limit: u32) -> Result<Vec<Participant>, StoreError>;

    /// Changes a participant's name or default notify URL and returns it as changed;
    /// `NotFound` when no participant has the client id.
    async fn update_participant(
        &self,
        client_id: &ClientId,
        change: &ParticipantChange,
    ) -> Result<Participant, StoreError>;
}
