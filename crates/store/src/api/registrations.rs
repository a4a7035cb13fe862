//! Merchant registrations.

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ids::{ClientId, RegistrationId};
use ocpay_core::registration::{Decision, Registration, RegistrationTerms};

use crate::pages::PageCursor;
use crate::{AuditEvent, CreateRegistration, DecideRegistration, RegistrationLookup, StoreError};

/// Acquirers' merchant registrations and their review.
#[async_trait]
pub trait RegistrationStore: Send + Sync {
    /// Creates a merchant registration in `PROCESSING`, deciding in the one transaction (by
    /// core's rules) against the owner's registration with the same `registrationRequestId` and
    /// its live registration of the same merchant and store.
    async fn create_registration(&self, terms: &RegistrationTerms) -> Result<CreateRegistration, StoreError> {
        self.create_registration_audited(terms, None).await
    }

    /// As [`RegistrationStore::create_registration`], appending `audit` to the audit trail in the same
    /// transaction when the registration is created or found (both answer success).
    async fn create_registration_audited(
        &self,
        terms: &RegistrationTerms,
        audit: Option<&AuditEvent>,
    ) -> Result<CreateRegistration, StoreError>;

    /// One of `owner`'s registrations. Other participants' registrations are never found.
    async fn registration(
        &self,
        owner: &ClientId,
        lookup: &RegistrationLookup,
    ) -> Result<Option<Registration>, StoreError>;

    /// Registrations, newest first, of one owner or of all, and only those whose id or
    /// `registrationRequestId` is `reference` when one is given; at most `limit`. For operators.
    async fn registrations(
        &self,
        owner: Option<&ClientId>,
        reference: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError>;

    /// Approves or rejects a `PROCESSING` registration at `now` (an operator's review), queueing
    /// its notification in the same transaction. With an owner, another's is not found.
    async fn decide_registration(
        &self,
        owner: Option<&ClientId>,
        id: &RegistrationId,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<DecideRegistration, StoreError>;

    /// Takes up to `limit` automatic decisions due by `now` (the sandbox's review), each with
    /// its notification, and returns the decided registrations.
    async fn decide_due_registrations(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError>;

    /// `owner`'s approved registration of this merchant and store: what a pay of an acquirer
    /// needs.
    async fn approved_store(
        &self,
        owner: &ClientId,
        reference_merchant_id: &str,
        reference_store_id: &str,
    ) -> Result<Option<Registration>, StoreError>;

    /// A page of `owner`'s registrations (of one status when given: `PROCESSING`,
    /// `APPROVED`, `REJECTED`), newest first, after `after`.
    async fn registrations_page(
        &self,
        owner: &ClientId,
        status: Option<&str>,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError>;

    /// A page of every acquirer's registrations (of one status when given), newest first,
    /// after `after`: the operator's review queue.
    async fn all_registrations_page(
        &self,
        status: Option<&str>,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError>;
}
