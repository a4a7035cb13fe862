//! Use cases, one file per verb. A service takes domain types (already parsed by the gateway),
//! asks core what is allowed, asks the store to commit it, and returns domain types. Services
//! know nothing about HTTP or JSON.

pub(crate) mod cancel;
pub mod grants;
pub(crate) mod inquiry;
pub mod participants;
pub(crate) mod pay;
pub(crate) mod refund;
pub mod registrations;
pub mod wallet;

use ocpay_core::participant::ParticipantKind;
use ocpay_core::payment::{CancelRefusal, ExpiryError};
use ocpay_core::refund::RefundRefusal;
use ocpay_core::registration::RegistrationRefusal;
use ocpay_store::StoreError;

/// Why a use case did not happen. The gateway maps each to an AMS result in one place.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    #[error("payment expiry: {0}")]
    Expiry(ExpiryError),
    #[error("no notify URL in the request and none configured for the participant")]
    NotifyUrlRequired,
    #[error("{of:?} notify URL: {reason}")]
    NotifyUrlRefused { of: NotifyUrlOf, reason: &'static str },
    #[error("a payment with this paymentRequestId exists and differs from this request")]
    RepeatInconsistent,
    #[error("a refund with this refundRequestId exists and differs from this request")]
    RefundRepeatInconsistent,
    #[error("payment not found")]
    PaymentNotFound,
    #[error("refund not found")]
    RefundNotFound,
    #[error("cancel refused: {0}")]
    CancelRefused(CancelRefusal),
    #[error("refund refused: {0}")]
    RefundRefused(RefundRefusal),
    /// Only acquirers register merchants.
    #[error("a {0:?} may not call the registration APIs")]
    NotAcquirer(ParticipantKind),
    #[error("registration refused: {0}")]
    RegistrationRefused(RegistrationRefusal),
    #[error("registration not found")]
    RegistrationNotFound,
    /// An acquirer's pay names a merchant and store without an approved registration.
    #[error("{0}")]
    MerchantNotRegistered(NotRegistered),
    /// The amount is more than any wallet may hold (`wallet_balance_max_major`), so no payer
    /// could ever pay it.
    #[error("amount: more than a wallet may hold ({max})")]
    AmountAboveWalletLimit { max: ocpay_core::money::Money },
    /// A sandbox magic amount asked for an unknown outcome.
    #[error("sandbox magic amount: unknown outcome")]
    SandboxUnknown,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whose notify URL a request names; the gateway says which field of its request that is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotifyUrlOf {
    Payment,
    Refund,
    Registration,
}

/// Why an acquirer may not take a payment for a merchant's store: what its registrations say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotRegistered {
    #[error("the registration of merchant {merchant} with store {store} is under review")]
    UnderReview { merchant: String, store: String },
    #[error("the registration of merchant {merchant} with store {store} was rejected")]
    Rejected { merchant: String, store: String },
    /// The merchant is registered, but not with this store.
    #[error("store {store} of merchant {merchant} is not registered by this acquirer")]
    Store { merchant: String, store: String },
    #[error("merchant {merchant} is not registered by this acquirer")]
    Merchant { merchant: String },
}
