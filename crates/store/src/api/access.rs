//! Grants, held Agent-Tokens and the audit trail.

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::access::Grant;
use ocpay_core::ids::ClientId;

use crate::pages::TokenHold;
use crate::{AuditEvent, NewGrant, StoreError};

/// Merchants' grants to ISVs, the Agent-Tokens held for ISVs' owners, and the audit trail.
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Stores a merchant's authorisation of an ISV and queues its notification, in one
    /// transaction.
    async fn create_grant(&self, grant: &NewGrant, now: Timestamp) -> Result<(), StoreError>;

    /// The grant whose token has this SHA-256 (hex), usable or not.
    async fn grant_by_token(&self, token_sha256: &str) -> Result<Option<Grant>, StoreError>;

    /// The grants a participant gave (as merchant) or holds (as ISV), oldest first.
    async fn grants(&self, client_id: &ClientId) -> Result<Vec<Grant>, StoreError>;

    /// Revokes a grant from `now` on (one revoked before keeps its time) and returns it.
    async fn revoke_grant(&self, grant_id: &str, now: Timestamp) -> Result<Grant, StoreError>;

    /// Appends events to the audit trail, in order, in one transaction.
    async fn record_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError>;

    /// The newest `limit` audit events that a participant signed or that were about its
    /// payments, newest first.
    async fn audit_events(&self, client_id: &ClientId, limit: u32) -> Result<Vec<AuditEvent>, StoreError>;

    /// Deletes up to `limit` audit events from before `older_than`, oldest first, and returns
    /// how many it deleted.
    async fn prune_audit(&self, older_than: Timestamp, limit: u32) -> Result<u64, StoreError>;

    /// Where the tokens held for `isv`'s owner stand at `now`, one per grant that had one.
    async fn token_holds(&self, isv: &ClientId, now: Timestamp) -> Result<Vec<TokenHold>, StoreError>;

    /// Takes the sealed token held for a grant of `isv`, once: the first call while it is held
    /// at `now` gets it and forgets it (recording when and by whom); every other gets `None`.
    async fn take_held_token(
        &self,
        grant_id: &str,
        isv: &ClientId,
        taken_by: &str,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError>;

    /// Forgets every held token whose hold ended by `now`; returns how many.
    async fn forget_held_tokens(&self, now: Timestamp) -> Result<u64, StoreError>;
}
