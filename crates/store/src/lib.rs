//! Durable storage of ocpay behind one [`Store`] trait.
//!
//! The trait is named after business writes (`create_payment`, `cancel_payment`, ...). Each
//! write is one transaction that holds everything the business step changes, so a crash never
//! leaves a step half-done. Idempotency lives in unique constraints, not in memory: two
//! concurrent `pay` requests with one `paymentRequestId` create exactly one payment.
//!
//! Decisions are core's: a write loads the rows, asks `ocpay-core` what to do with them at
//! `now`, and commits the answer. The store never invents a business rule of its own.
//!
//! [`sqlite::SqliteStore`] is the embedded default. [`conformance`] checks any implementation.

pub mod conformance;
pub mod sqlite;

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ids::{ClientId, PaymentId, PaymentRequestId};
use ocpay_core::participant::{KeyVersion, Participant, ParticipantKey};
use ocpay_core::payment::{CancelRefusal, CancelWindow, Payment, PaymentTerms};

/// Why the store could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A unique thing (a client id) exists already.
    #[error("{0} exists already")]
    Conflict(&'static str),
    /// The thing a write refers to does not exist.
    #[error("{0} does not exist")]
    NotFound(&'static str),
    /// A stored row does not map back to the domain: a bug or a damaged database.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// The database failed or is unreachable; the write did not happen.
    #[error("database error: {0}")]
    Database(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}

/// A public key to add to a participant; the store assigns the next key version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub public_key_der: Vec<u8>,
    pub label: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// How a client names one of its payments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentLookup {
    ById(PaymentId),
    ByRequestId(PaymentRequestId),
}

/// What `create_payment` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreatePayment {
    Created(Payment),
    /// A payment with this owner and `paymentRequestId` existed; here it is, unchanged.
    Existing(Payment),
}

/// What `cancel_payment` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelPayment {
    /// The payment is cancelled now, or was already final and stays as it was.
    Done(Payment),
    Refused(Payment, CancelRefusal),
    NotFound,
}

/// Everything ocpay keeps. Every method is one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a participant with its first key (version 1).
    async fn create_participant(&self, participant: &Participant, key: &NewKey) -> Result<(), StoreError>;

    /// Adds a key to a participant and returns the key version it got.
    async fn add_participant_key(&self, client_id: &ClientId, key: &NewKey)
    -> Result<KeyVersion, StoreError>;

    async fn participant(&self, client_id: &ClientId) -> Result<Option<Participant>, StoreError>;

    /// Participants in order of creation, at most `limit`.
    async fn participants(&self, limit: u32) -> Result<Vec<Participant>, StoreError>;

    /// A participant with one of its keys (`None` asks for the newest) in one read: what the
    /// gateway needs to authenticate a request. The key is `None` when no such version exists.
    async fn participant_with_key(
        &self,
        client_id: &ClientId,
        key_version: Option<KeyVersion>,
    ) -> Result<Option<(Participant, Option<ParticipantKey>)>, StoreError>;

    /// Creates a payment in `PROCESSING`, or returns the one that has its idempotency key.
    async fn create_payment(&self, terms: &PaymentTerms) -> Result<CreatePayment, StoreError>;

    /// One of `owner`'s payments. Other participants' payments are never found.
    async fn payment(&self, owner: &ClientId, lookup: &PaymentLookup) -> Result<Option<Payment>, StoreError>;

    /// Cancels one of `owner`'s payments as core decides at `now`.
    async fn cancel_payment(
        &self,
        owner: &ClientId,
        lookup: &PaymentLookup,
        window: &CancelWindow,
        now: Timestamp,
    ) -> Result<CancelPayment, StoreError>;
}
