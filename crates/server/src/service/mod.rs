//! Use cases, one file per verb. A service takes domain types (already parsed by the gateway),
//! asks core what is allowed, asks the store to commit it, and returns domain types. Services
//! know nothing about HTTP or JSON.

pub(crate) mod cancel;
pub(crate) mod inquiry;
pub mod participants;
pub(crate) mod pay;
pub mod wallet;

use ocpay_core::payment::{CancelRefusal, ExpiryError};
use ocpay_store::StoreError;

/// Why a use case did not happen. The gateway maps each to an AMS result in one place.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    #[error("payment expiry: {0}")]
    Expiry(ExpiryError),
    #[error("no notify URL in the request and none configured for the participant")]
    NotifyUrlRequired,
    #[error("the notify URL names a private address")]
    NotifyUrlPrivate,
    #[error("a payment with this paymentRequestId exists and differs from this request")]
    RepeatInconsistent,
    #[error("payment not found")]
    PaymentNotFound,
    #[error("cancel refused: {0}")]
    CancelRefused(CancelRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}
