//! Merchant registrations (spec §4.7, §13.12): an acquirer registers a secondary merchant and
//! its store (`registration`) and reads where it stands; an operator approves or rejects it, or,
//! for a sandbox acquirer, the sandbox's review does when due (run by the timer job). Until it
//! is approved, the acquirer cannot take payments for that merchant and store.
//!
//! The review functions are public: the CLI runs them on the data directory.

use jiff::Timestamp;
use ocpay_core::ids::{ClientId, RegistrationRequestId};
use ocpay_core::participant::{Environment, Participant, ParticipantKind};
use ocpay_core::payment::MerchantRef;
use ocpay_core::registration::{
    AutomaticDecision, Decision, Registration, RegistrationState, RegistrationTerms, sandbox_decision,
};
use ocpay_protocol::AmsResult;
use ocpay_store::{CreateRegistration, DecideRegistration, RegistrationLookup, Store, StoreError};

use super::Context;
use super::{NotRegistered, NotifyUrlOf, ServiceError};
use crate::{HttpUrl, audit, random};

/// A parsed, valid `registration` request.
#[derive(Debug, Clone)]
pub(crate) struct RegisterCommand {
    pub(crate) request_id: RegistrationRequestId,
    pub(crate) reference_merchant_id: String,
    pub(crate) reference_store_id: String,
    /// The significant content in canonical text: what a repeat must match.
    pub(crate) content: String,
    pub(crate) notify_url: Option<HttpUrl>,
}

/// Only acquirers register merchants (spec §13.12).
pub(crate) fn acquirer(caller: &Participant) -> Result<(), ServiceError> {
    match caller.kind {
        ParticipantKind::Acquirer => Ok(()),
        other => Err(ServiceError::NotAcquirer(other)),
    }
}

/// Registers a merchant and store for review, or returns the registration this
/// `registrationRequestId` created. A sandbox acquirer's registration is decided by the
/// sandbox's review once `sandbox_registration_review_seconds` have passed.
pub(crate) async fn register(
    cx: &Context,
    owner: &Participant,
    command: RegisterCommand,
) -> Result<Registration, ServiceError> {
    acquirer(owner)?;
    let now = cx.clock.now();
    let environment = owner.environment();
    if let Some(url) = &command.notify_url
        && let Err(reason) = cx.settings.notify.check_url(environment, url)
    {
        return Err(ServiceError::NotifyUrlRefused { of: NotifyUrlOf::Registration, reason });
    }
    let automatic = (environment == Environment::Sandbox).then(|| AutomaticDecision {
        at: now + cx.settings.sandbox.registration_review,
        decision: sandbox_decision(&command.reference_merchant_id),
    });
    let terms = RegistrationTerms {
        id: random::registration_id(now),
        owner: owner.client_id.clone(),
        request_id: command.request_id,
        reference_merchant_id: command.reference_merchant_id,
        reference_store_id: command.reference_store_id,
        content: command.content,
        notify_url: command.notify_url.map(HttpUrl::into_string),
        created_at: now,
        automatic,
    };
    // A registration created or found is answered `S`: its audit event commits with it.
    let audit = audit::with_change(now, &AmsResult::success());
    match cx.store.create_registration_audited(&terms, audit.as_ref()).await? {
        CreateRegistration::Created(registration) | CreateRegistration::Existing(registration) => {
            audit::committed();
            Ok(registration)
        }
        CreateRegistration::Refused(refusal) => Err(ServiceError::RegistrationRefused(refusal)),
    }
}

/// One of the caller's registrations.
pub(crate) async fn inquire(
    cx: &Context,
    owner: &Participant,
    lookup: &RegistrationLookup,
) -> Result<Registration, ServiceError> {
    acquirer(owner)?;
    cx.store.registration(&owner.client_id, lookup).await?.ok_or(ServiceError::RegistrationNotFound)
}

/// Refuses an acquirer's payment for a merchant and store it has no approved registration of
/// (spec §13.12), saying what the acquirer's registrations say. Merchants and ISVs describe
/// their own stores and need none.
pub(crate) async fn check_registered(
    cx: &Context,
    owner: &Participant,
    merchant: &MerchantRef,
) -> Result<(), ServiceError> {
    if owner.kind != ParticipantKind::Acquirer {
        return Ok(());
    }
    let (merchant_id, store_id) = (&merchant.reference_merchant_id, &merchant.store.reference_store_id);
    if cx.store.approved_store(&owner.client_id, merchant_id, store_id).await?.is_some() {
        return Ok(());
    }
    let of_store = RegistrationLookup::ByMerchant {
        reference_merchant_id: merchant_id.clone(),
        reference_store_id: Some(store_id.clone()),
    };
    let of_merchant = RegistrationLookup::ByMerchant {
        reference_merchant_id: merchant_id.clone(),
        reference_store_id: None,
    };
    let (merchant, store) = (merchant_id.clone(), store_id.clone());
    let refusal = match cx.store.registration(&owner.client_id, &of_store).await? {
        Some(Registration { state: RegistrationState::Processing, .. }) => {
            NotRegistered::UnderReview { merchant, store }
        }
        Some(Registration { state: RegistrationState::Rejected { .. }, .. }) => {
            NotRegistered::Rejected { merchant, store }
        }
        _ if cx.store.registration(&owner.client_id, &of_merchant).await?.is_some() => {
            NotRegistered::Store { merchant, store }
        }
        _ => NotRegistered::Merchant { merchant },
    };
    Err(ServiceError::MerchantNotRegistered(refusal))
}

/// Why an operator's review did not happen; the CLI words it for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no registration has the id or request id {0}")]
    NotFound(String),
    #[error("{reference} names {count} registrations of different acquirers")]
    Ambiguous { reference: String, count: usize },
    #[error("registration {id} was {status} already")]
    AlreadyDecided { id: String, status: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The registration an operator names by its id or its `registrationRequestId` (of one
/// acquirer when `owner` is given).
pub async fn find(
    store: &dyn Store,
    reference: &str,
    owner: Option<&ClientId>,
) -> Result<Registration, ReviewError> {
    let mut found = store.registrations(owner, Some(reference), 2).await?;
    match found.len() {
        0 => Err(ReviewError::NotFound(reference.to_owned())),
        1 => Ok(found.remove(0)),
        count => Err(ReviewError::Ambiguous { reference: reference.to_owned(), count }),
    }
}

/// An operator approves or rejects (with a reason) a `PROCESSING` registration at `now`; its
/// notification is queued in the same transaction, for a running server to send.
pub async fn review(
    store: &dyn Store,
    reference: &str,
    owner: Option<&ClientId>,
    decision: &Decision,
    now: Timestamp,
) -> Result<Registration, ReviewError> {
    let registration = find(store, reference, owner).await?;
    let id = registration.terms.id;
    match store.decide_registration(Some(&registration.terms.owner), &id, decision, now).await? {
        DecideRegistration::Decided(registration) => Ok(registration),
        DecideRegistration::AlreadyDecided(registration) => {
            Err(ReviewError::AlreadyDecided { id: id.to_string(), status: registration.state.status() })
        }
        DecideRegistration::NotFound => Err(ReviewError::NotFound(reference.to_owned())),
    }
}
