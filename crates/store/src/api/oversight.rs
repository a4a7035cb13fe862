//! The operator's console's oversight of participants.

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::KeyVersion;

use crate::{StoreError, oversight};

/// The operator's console's reads and changes across participants, and the gateway's one read of a signer.
#[async_trait]
pub trait OversightStore: Send + Sync {
    /// A participant with one of its keys (`None` asks for the newest) and its suspension, in
    /// one read: what the gateway needs to authenticate a request. The key is `None` when no
    /// such version exists.
    async fn participant_with_key(
        &self,
        client_id: &ClientId,
        key_version: Option<KeyVersion>,
    ) -> Result<Option<oversight::Signer>, StoreError>;

    /// Suspends a participant from `at` on (a suspended one keeps its first time), or resumes
    /// it with `None`; the participant as it stands then. `NotFound` when there is none.
    async fn set_participant_suspension(
        &self,
        client_id: &ClientId,
        at: Option<Timestamp>,
    ) -> Result<oversight::ParticipantListing, StoreError>;

    /// A participant with its suspension.
    async fn participant_listing(
        &self,
        client_id: &ClientId,
    ) -> Result<Option<oversight::ParticipantListing>, StoreError>;

    /// A page of the participants the filter takes, by client id, after `after`.
    async fn participants_page(
        &self,
        filter: &oversight::ParticipantFilter,
        after: Option<&ClientId>,
        limit: u32,
    ) -> Result<Vec<oversight::ParticipantListing>, StoreError>;

    /// How many participants are suspended.
    async fn suspended_participants(&self) -> Result<u64, StoreError>;

    /// A page of the audit trail across participants, newest first, with ids below `before`.
    async fn audit_search(
        &self,
        filter: &oversight::AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<oversight::AuditRecord>, StoreError>;
}
