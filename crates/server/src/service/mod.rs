//! Use cases, one file per verb. A service takes domain types (already parsed by the gateway),
//! asks core what is allowed, asks the store to commit it, and returns domain types. Services
//! know nothing about HTTP or JSON.
//!
//! Every use case gets what it needs from a [`Context`]: the store, the clock, the resolved
//! settings, the exchange rates and the notifier's wake handle. The gateway, the payer's page
//! and the admin API reach it through their `AppState`, the background jobs directly; unit tests
//! build one of their own, so a use case runs the same without an HTTP server.

pub mod acceptance;
pub(crate) mod api_log;
pub mod cancel;
pub mod grants;
pub(crate) mod inquiry;
pub mod notifications;
pub mod participants;
pub(crate) mod pay;
pub mod refund;
pub mod registrations;
pub mod sftp;
pub mod test_notification;
pub mod wallet;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

use ocpay_core::fx::Rate;
use ocpay_core::money::Currency;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_core::payment::{CancelRefusal, ExpiryError};
use ocpay_core::refund::RefundRefusal;
use ocpay_core::registration::RegistrationRefusal;
use ocpay_store::{Store, StoreError};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::settings::Settings;

/// What the use cases need, and nothing of HTTP: one is built where the application is built
/// (and by unit tests) and shared by everything that runs use cases.
pub struct Context {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// The configuration resolved and checked once, at start.
    pub settings: Settings,
    /// Wakes the notifier when a state change queued a notification.
    pub notify_wake: Wake,
    /// What a PIN is checked against when the payer does not exist, so that checking takes as
    /// long either way; made once, here.
    pub(crate) dummy_pin_hash: String,
}

impl Context {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: Settings) -> Context {
        Context {
            dummy_pin_hash: crate::pin::unmatchable_hash(settings.pin.hash_iterations),
            notify_wake: Wake::default(),
            store,
            clock,
            settings,
        }
    }

    /// The rate configured for `environment`'s payers from one currency to another, if any.
    pub(crate) fn rate(&self, environment: Environment, from: Currency, to: Currency) -> Option<Rate> {
        self.settings
            .rates(environment)
            .iter()
            .copied()
            .find(|rate| rate.base() == from && rate.quote() == to)
    }
}

/// Wakes the notifier when new notifications are committed. With no notifier running (a CLI
/// command), a wake-up is simply lost: a server's notifier also polls.
#[derive(Default)]
pub struct Wake(pub(crate) Notify);

impl Wake {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Why a use case did not happen. The gateway maps each to an AMS result in one place.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("payment expiry: {0}")]
    Expiry(ExpiryError),
    #[error("no notify URL in the request and none configured for the participant")]
    NotifyUrlRequired,
    #[error("{of:?} notify URL: {reason}")]
    NotifyUrlRefused { of: NotifyUrlOf, reason: &'static str },
    #[error("a payment with this request id exists and differs from this request")]
    RepeatInconsistent,
    #[error("a refund with this request id exists and differs from this request")]
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
pub enum NotifyUrlOf {
    Payment,
    Refund,
    Registration,
}

/// Why an acquirer may not take a payment for a merchant's store: what its registrations say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotRegistered {
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
