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
//! [`sqlite::SqliteStore`] is the embedded default; [`postgres::PostgresStore`] serves several
//! servers sharing one database. Both are [`sql::SqlStore`]: one business SQL over an engine.
//! `conformance` (with the feature of that name) checks any implementation.

pub mod api_log;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod console;
pub mod oversight;
pub mod pages;
pub mod portal;
pub mod postgres;
pub mod settlement;
pub mod sql;
pub mod sqlite;

pub use api_log::{ApiLogEntry, ApiLogFilter};
use async_trait::async_trait;
use jiff::civil::Date;
use ocpay_core::Timestamp;
use ocpay_core::access::{Grant, Scopes};
use ocpay_core::ids::{
    ClientId, CodeToken, PaymentId, PaymentRequestId, RefundId, RefundRequestId, RegistrationId,
    RegistrationRequestId,
};
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::{KeyVersion, Participant, ParticipantKey};
use ocpay_core::payer::{Payer, PayerId};
use ocpay_core::payment::{
    CancelRefusal, CancelWindow, Charge, FailReason, NotPayable, Payment, PaymentTerms,
};
use ocpay_core::refund::{Refund, RefundPolicy, RefundRefusal, RefundTerms};
use ocpay_core::registration::{Decision, Registration, RegistrationRefusal, RegistrationTerms};
pub use pages::{HeldToken, PageCursor, PaymentFilter, TokenHold};
pub use portal::{
    DailyActivity, DayDeliveries, DayTotal, NewOperator, NewPortalUser, OperatorUser, PortalSession,
    PortalUser, PortalUserChange, SetupToken,
};
use settlement::{
    BatchCursor, ItemCursor, MarkPaid, SettleChunk, SettledChunk, SettlementBatch, SettlementCounts,
    SettlementItemRecord, SettlementTerms,
};

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
    /// The write would break a rule of the ledger (a bug in the caller); nothing was written.
    #[error("refused by the ledger: {0}")]
    Ledger(#[from] ocpay_core::ledger::LedgerError),
    /// An entry would take a payer's wallet above its maximum balance (the store's
    /// [`ocpay_core::ledger::WalletLimit`]); nothing of the write was kept.
    #[error("the wallet {account} would hold more than its maximum balance of {max}")]
    WalletLimit { account: String, max: Money },
    /// A sum of entries does not fit an amount (an `i64` of minor units): it is refused rather
    /// than rounded or wrapped.
    #[error("{0} is outside the range of an amount")]
    OutOfRange(String),
}

/// Arithmetic on amounts that left the range of an `i64` (a sum of fees, a converted total).
impl From<ocpay_core::money::MoneyError> for StoreError {
    fn from(error: ocpay_core::money::MoneyError) -> Self {
        StoreError::OutOfRange(error.to_string())
    }
}

/// A change to a participant's details; a field left `None` stays as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParticipantChange {
    pub name: Option<ocpay_core::text::Name>,
    /// The default notify URL: `Some(None)` removes it.
    pub notify_url: Option<Option<String>>,
}

/// A public key to add to a participant; the store assigns the next key version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub public_key_der: Vec<u8>,
    pub label: Option<ocpay_core::participant::KeyLabel>,
    pub scopes: Scopes,
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

/// A payer paying an order code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub code: CodeToken,
    pub charge: Charge,
    pub now: Timestamp,
    /// For sandbox payers: stored value issued when the wallet would not cover the charge, in
    /// the payment's transaction and only if it then covers it.
    pub sandbox_top_up: Option<Money>,
}

/// What `settle_payment` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettlePayment {
    /// Paid: debited, credited, `SUCCESS`, and the notification queued.
    Paid(Payment),
    NotPayable(Payment, NotPayable),
    /// The wallet does not cover the charge; nothing changed.
    InsufficientBalance {
        balance: Money,
    },
    UnknownPayer,
    NotFound,
}

/// What `fail_payment` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailPayment {
    /// Failed with the reason, and the notification queued.
    Failed(Payment),
    NotPayable(Payment, NotPayable),
    NotFound,
}

/// A refund to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub terms: RefundTerms,
    pub policy: RefundPolicy,
    pub completion: RefundCompletion,
}

/// When an accepted refund reaches its final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundCompletion {
    /// At once: the refund succeeds in the request's transaction.
    Now,
    /// It stays `PROCESSING` until then, and succeeds.
    SucceedsAt(Timestamp),
    /// It stays `PROCESSING` until then, and fails without moving money (a sandbox test path).
    FailsAt(Timestamp),
}

/// How a client names one of its refunds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundLookup {
    ById(RefundId),
    ByRequestId(RefundRequestId),
}

/// What `create_refund` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateRefund {
    /// Accepted; refunded already unless the wallet completes it later.
    Created(Refund),
    /// A refund with this owner and `refundRequestId` existed; here it is, unchanged.
    Existing(Refund),
    Refused(RefundRefusal),
    PaymentNotFound,
}

/// How an acquirer names one of its registrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationLookup {
    ById(RegistrationId),
    ByRequestId(RegistrationRequestId),
    /// The newest registration of a merchant, of one of its stores when one is named.
    ByMerchant {
        reference_merchant_id: String,
        reference_store_id: Option<String>,
    },
}

/// What `create_registration` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateRegistration {
    /// A new registration, `PROCESSING`.
    Created(Registration),
    /// A registration with this owner and `registrationRequestId` and the same content existed;
    /// here it is, as it stands.
    Existing(Registration),
    Refused(RegistrationRefusal),
}

/// What `decide_registration` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideRegistration {
    /// Decided now, and its notification queued if it has a notify URL.
    Decided(Registration),
    /// It was decided before; nothing changed.
    AlreadyDecided(Registration),
    NotFound,
}

/// A sandbox fault that happens once (spec §13.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxFault {
    /// Magic amount 9903: the first inquiry of this payment answers `UNKNOWN_EXCEPTION`.
    InquiryUnknown(PaymentId),
    /// Magic amount 9901: the first refund with this request id answers `UNKNOWN_EXCEPTION`.
    RefundUnknown(ClientId, RefundRequestId),
    /// Magic amount 9901: the first `pay` with this request id answers `UNKNOWN_EXCEPTION`.
    PayUnknown(ClientId, PaymentRequestId),
}

impl SandboxFault {
    /// The fault's kind and the key it happens once for.
    pub fn key(&self) -> (&'static str, String) {
        match self {
            Self::InquiryUnknown(payment) => ("INQUIRY_UNKNOWN", payment.to_string()),
            Self::RefundUnknown(owner, request) => ("REFUND_UNKNOWN", format!("{owner}/{request}")),
            Self::PayUnknown(owner, request) => ("PAY_UNKNOWN", format!("{owner}/{request}")),
        }
    }
}

/// The result of checking the whole ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerCheck {
    pub postings: u64,
    /// Postings whose entries do not sum to zero in some currency, have fewer than two
    /// entries, or do not exist though entries name them: must always be empty.
    pub unbalanced_postings: Vec<i64>,
    /// Payer wallets below zero: must always be empty.
    pub negative_wallets: Vec<(String, Money)>,
    /// Wallets whose kept balance differs from the sum of their entries: must always be empty.
    pub balance_mismatches: Vec<String>,
    /// The sum of every account, per currency: must always be zero.
    pub totals: Vec<Money>,
}

impl LedgerCheck {
    pub fn is_sound(&self) -> bool {
        self.unbalanced_postings.is_empty()
            && self.negative_wallets.is_empty()
            && self.balance_mismatches.is_empty()
            && self.totals.iter().all(|total| total.minor() == 0)
    }
}

ocpay_core::named_enum! {
    /// What a notification is about.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum NotificationKind {
        /// `notifyPayment`: a payment reached a final state the merchant did not cause.
        PaymentResult = "PAYMENT_RESULT",
        /// `notifyRefund`: a refund reached its final state.
        RefundResult = "REFUND_RESULT",
        /// A merchant authorised an ISV: the ISV receives its Agent-Token.
        AgentAuthorization = "AGENT_AUTHORIZATION",
        /// `notifyRegistrationStatus`: a merchant registration was approved or rejected.
        RegistrationStatus = "REGISTRATION_STATUS",
    }
}

ocpay_core::named_enum! {
    /// Where a notification stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum DeliveryStatus {
        /// Waiting for its next attempt.
        Pending = "PENDING",
        Delivered = "DELIVERED",
        /// Out of attempts; only a manual resend tries again.
        Failed = "FAILED",
    }
}

/// What a notification reports. The store keeps it as the stable text of
/// [`NotificationEvent::stored`]; how the platform words it on the wire (result codes, statuses)
/// is the server's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationEvent {
    /// A payment was paid.
    Paid,
    /// A payment failed: its code expired, or the wallet refused it.
    PaymentFailed(FailReason),
    RefundSucceeded,
    /// A refund failed without moving money.
    RefundFailed,
    /// A merchant authorised an ISV.
    Granted,
    RegistrationApproved,
    RegistrationRejected,
}

impl NotificationEvent {
    /// Every event, each reason of a failed payment included.
    pub fn all() -> impl Iterator<Item = NotificationEvent> {
        let failures = FailReason::ALL.into_iter().map(Self::PaymentFailed);
        [Self::Paid, Self::RefundSucceeded, Self::RefundFailed, Self::Granted]
            .into_iter()
            .chain([Self::RegistrationApproved, Self::RegistrationRejected])
            .chain(failures)
    }

    /// The kind of notification that reports this event.
    pub fn kind(self) -> NotificationKind {
        match self {
            Self::Paid | Self::PaymentFailed(_) => NotificationKind::PaymentResult,
            Self::RefundSucceeded | Self::RefundFailed => NotificationKind::RefundResult,
            Self::Granted => NotificationKind::AgentAuthorization,
            Self::RegistrationApproved | Self::RegistrationRejected => NotificationKind::RegistrationStatus,
        }
    }

    /// The event as the outbox stores it: its `event_status` and `event_code` columns. Every
    /// stored row holds these texts (the status is also part of the row's unique key and id), so
    /// they never change; a new event gets new text. Within a kind, each pair names one event.
    pub fn stored(self) -> (&'static str, &'static str) {
        match self {
            Self::Paid | Self::RefundSucceeded => ("SUCCESS", "SUCCESS"),
            Self::PaymentFailed(reason) => ("FAIL", reason.as_str()),
            Self::RefundFailed => ("FAIL", "PROCESS_FAIL"),
            Self::Granted => ("GRANTED", "SUCCESS"),
            Self::RegistrationApproved => ("APPROVED", "SUCCESS"),
            Self::RegistrationRejected => ("REJECTED", "SUCCESS"),
        }
    }

    /// The event a stored row of `kind` names, if any.
    pub fn from_stored(kind: NotificationKind, status: &str, code: &str) -> Option<NotificationEvent> {
        Self::all().find(|event| event.kind() == kind && event.stored() == (status, code))
    }
}

/// One message of the outbox, written in the same transaction as the state change it reports.
///
/// It holds a snapshot of the event (what happened, and when), so that every attempt
/// sends the same body even if the subject changes afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Stable across attempts: receivers can deduplicate on it.
    pub id: String,
    pub recipient: ClientId,
    pub kind: NotificationKind,
    /// The payment, refund or registration the notification is about.
    pub subject_id: String,
    pub url: String,
    /// What happened; always of the notification's `kind`.
    pub event: NotificationEvent,
    pub event_at: Timestamp,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// When pending: the scheduled time of the next attempt.
    pub next_attempt_at: Option<Timestamp>,
    /// Whether the next attempt was asked for by hand.
    pub manual: bool,
    pub delivered_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// What the body needs but the store keeps only until delivery ends: the Agent-Token of an
    /// authorisation notification.
    pub secret: Option<Secret>,
}

ocpay_core::named_enum! {
    /// How one delivery attempt went.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum AttemptOutcome {
        /// HTTP 200 with `result.resultStatus = "S"`.
        Delivered = "DELIVERED",
        /// The receiver answered, but not with the success acknowledgement.
        Rejected = "REJECTED",
        /// No answer: connection refused, timeout, reset.
        Error = "ERROR",
    }
}

/// One delivery attempt of a notification, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub notification_id: String,
    /// 1 for the first attempt.
    pub number: u32,
    pub scheduled_at: Timestamp,
    pub started_at: Timestamp,
    pub duration_ms: i64,
    pub http_status: Option<u16>,
    pub outcome: AttemptOutcome,
    pub error: Option<String>,
    pub manual: bool,
    /// The start of the receiver's answer (at most [`ANSWER_EXCERPT_CHARS`] characters), when
    /// it answered.
    pub answer: Option<String>,
}

/// How much of a receiver's answer an [`Attempt`] keeps: enough to see what it said.
pub const ANSWER_EXCERPT_CHARS: usize = 300;

/// What happens to a notification after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    RetryAt(Timestamp),
    GiveUp,
}

/// A secret the store holds for a while (an Agent-Token on its way to the ISV, the admin
/// token). `Debug` never shows it, so no log line or panic message can leak it, and its text is
/// read only through [`Secret::expose`], which a reader can search for.
///
/// Written here rather than taken from `secrecy`: the grant it travels in is compared and cloned
/// (the conformance suite compares what it stored with what it reads back), which `secrecy`'s
/// `SecretString` does not allow, and zeroising on drop buys nothing for a token that sat in a
/// database row and a request body.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: String) -> Secret {
        Secret(text)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A grant to store, with the notification that hands its token to the ISV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    pub grant: Grant,
    /// The ISV's notify URL and the token, when the ISV has a URL.
    pub notice: Option<(String, Secret)>,
    /// The token, sealed, held for the ISV's owner to see once in the developer center.
    pub held: Option<HeldToken>,
}

/// One authenticated API request, as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: Timestamp,
    /// Who signed the request.
    pub client_id: ClientId,
    pub key_version: Option<KeyVersion>,
    /// The ISV, when an ISV acted for a merchant (then `client_id` is the ISV too).
    pub agent: Option<ClientId>,
    /// Whose payments the request was about: the signer itself, or the merchant an ISV acted for.
    pub merchant: ClientId,
    pub api: String,
    pub idempotency_key: Option<String>,
    pub result_status: String,
    pub result_code: String,
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

    /// Participants in order of creation, at most `limit`.
    async fn participants(&self, limit: u32) -> Result<Vec<Participant>, StoreError>;

    /// Changes a participant's name or default notify URL and returns it as changed;
    /// `NotFound` when no participant has the client id.
    async fn update_participant(
        &self,
        client_id: &ClientId,
        change: &ParticipantChange,
    ) -> Result<Participant, StoreError>;

    /// A participant with one of its keys (`None` asks for the newest) and its suspension, in
    /// one read: what the gateway needs to authenticate a request. The key is `None` when no
    /// such version exists.
    async fn participant_with_key(
        &self,
        client_id: &ClientId,
        key_version: Option<KeyVersion>,
    ) -> Result<Option<oversight::Signer>, StoreError>;

    /// Creates a payment in `PROCESSING`, or returns the one that has its idempotency key.
    async fn create_payment(&self, terms: &PaymentTerms) -> Result<CreatePayment, StoreError> {
        self.create_payment_audited(terms, None).await
    }

    /// As [`Store::create_payment`], appending `audit` to the audit trail in the same
    /// transaction when the payment is created, so that a crash cannot keep the one without the
    /// other.
    async fn create_payment_audited(
        &self,
        terms: &PaymentTerms,
        audit: Option<&AuditEvent>,
    ) -> Result<CreatePayment, StoreError>;

    /// One of `owner`'s payments. Other participants' payments are never found.
    async fn payment(&self, owner: &ClientId, lookup: &PaymentLookup) -> Result<Option<Payment>, StoreError>;

    /// Cancels one of `owner`'s payments as core decides at `now`. A paid payment inside its
    /// window is reversed in full to the payer in the same transaction.
    async fn cancel_payment(
        &self,
        owner: &ClientId,
        lookup: &PaymentLookup,
        window: &CancelWindow,
        now: Timestamp,
    ) -> Result<CancelPayment, StoreError> {
        self.cancel_payment_audited(owner, lookup, window, now, None).await
    }

    /// As [`Store::cancel_payment`], appending `audit` to the audit trail in the same
    /// transaction when the answer is [`CancelPayment::Done`].
    async fn cancel_payment_audited(
        &self,
        owner: &ClientId,
        lookup: &PaymentLookup,
        window: &CancelWindow,
        now: Timestamp,
        audit: Option<&AuditEvent>,
    ) -> Result<CancelPayment, StoreError>;

    /// Refunds part or all of one of `owner`'s payments, deciding in the one transaction (by
    /// core's rules) that the payment is paid, inside the window, and not refunded beyond what
    /// was paid, counting every earlier refund. A synchronous refund posts the money back and
    /// queues its notification in the same transaction.
    async fn create_refund(&self, refund: &NewRefund) -> Result<CreateRefund, StoreError> {
        self.create_refund_audited(refund, None).await
    }

    /// As [`Store::create_refund`], appending `audit` to the audit trail in the same
    /// transaction when the refund is created.
    async fn create_refund_audited(
        &self,
        refund: &NewRefund,
        audit: Option<&AuditEvent>,
    ) -> Result<CreateRefund, StoreError>;

    /// One of `owner`'s refunds. Other participants' refunds are never found.
    async fn refund(&self, owner: &ClientId, lookup: &RefundLookup) -> Result<Option<Refund>, StoreError>;

    /// The refunds of one of `owner`'s payments, oldest first.
    async fn refunds_of_payment(
        &self,
        owner: &ClientId,
        payment_id: &PaymentId,
    ) -> Result<Vec<Refund>, StoreError>;

    /// Completes up to `limit` asynchronous refunds due by `now`, each with its posting (unless
    /// it fails) and its notification, and returns them.
    async fn complete_refunds(&self, now: Timestamp, limit: u32) -> Result<Vec<Refund>, StoreError>;

    /// Creates a merchant registration in `PROCESSING`, deciding in the one transaction (by
    /// core's rules) against the owner's registration with the same `registrationRequestId` and
    /// its live registration of the same merchant and store.
    async fn create_registration(&self, terms: &RegistrationTerms) -> Result<CreateRegistration, StoreError> {
        self.create_registration_audited(terms, None).await
    }

    /// As [`Store::create_registration`], appending `audit` to the audit trail in the same
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

    /// The payment an order code names. The code is the payer's capability: no owner check.
    async fn payment_by_code(&self, code: &CodeToken) -> Result<Option<Payment>, StoreError>;

    /// Pays an order code from a wallet, deciding in the one transaction that the payment is
    /// still payable (not paid, cancelled, failed or expired) and that the wallet covers the
    /// charge; posts payer to merchant, marks `SUCCESS` and queues the notification.
    async fn settle_payment(&self, settlement: &Settlement) -> Result<SettlePayment, StoreError>;

    /// Fails an order code as a wallet would (sandbox outcomes), with its notification.
    async fn fail_payment(
        &self,
        code: &CodeToken,
        reason: FailReason,
        now: Timestamp,
    ) -> Result<FailPayment, StoreError>;

    /// Closes up to `limit` unpaid payments whose code expired by `now` (`FAIL` /
    /// `ORDER_IS_CLOSED`), each with its notification, and returns them.
    async fn expire_payments(&self, now: Timestamp, limit: u32) -> Result<Vec<Payment>, StoreError>;

    /// A sandbox fault that happens once: true the first time it is asked for, then false.
    async fn take_sandbox_fault(&self, fault: &SandboxFault, now: Timestamp) -> Result<bool, StoreError>;

    async fn create_payer(&self, payer: &Payer) -> Result<(), StoreError>;

    async fn payer(&self, payer: &PayerId) -> Result<Option<Payer>, StoreError>;

    /// Starts a PIN check: false if the payer is locked at `now`. Otherwise the attempt counts
    /// as a wrong PIN until [`Store::pin_succeeded`] says otherwise, and the `failures_max`-th
    /// in a row locks the payer until `locked_until`. Counting before checking is what keeps
    /// parallel guesses from all being checked before the lock holds.
    async fn pin_attempt(
        &self,
        payer: &PayerId,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Clears the count of wrong PINs.
    async fn pin_succeeded(&self, payer: &PayerId) -> Result<(), StoreError>;

    /// Issues stored value to a payer's wallet; returns the wallet's balance after it.
    async fn top_up(&self, payer: &PayerId, amount: Money, now: Timestamp) -> Result<Money, StoreError>;

    /// The balance of one account (zero when it has no entries).
    async fn balance(&self, account: &Account) -> Result<Money, StoreError>;

    /// Every balance of an owner's accounts, one per currency it has entries in.
    async fn balances(&self, owner: &AccountOwner) -> Result<Vec<Money>, StoreError>;

    /// Checks the whole ledger: postings balance, wallets are not negative, totals are zero.
    async fn ledger_check(&self) -> Result<LedgerCheck, StoreError>;

    /// A participant's fee schedule and settlement currency; `None` without such a participant.
    async fn settlement_terms(&self, client_id: &ClientId) -> Result<Option<SettlementTerms>, StoreError>;

    /// Replaces a participant's fee schedule and settlement currency (for what completes from
    /// now on); `NotFound` without such a participant.
    async fn set_settlement_terms(
        &self,
        client_id: &ClientId,
        terms: &SettlementTerms,
    ) -> Result<(), StoreError>;

    /// Changes only a participant's settlement currency (`None`: each transaction's own), leaving
    /// its fee schedule as it is; `NotFound` without such a participant.
    async fn set_settlement_currency(
        &self,
        client_id: &ClientId,
        currency: Option<Currency>,
    ) -> Result<(), StoreError>;

    /// Who has a batch to make at `cutoff`: every participant and settlement currency with a
    /// transaction completed before it and not yet settled, and every one that had a batch
    /// before and has none at `cutoff` (its summary is written even for a day without
    /// transactions). Restricted to `owner` when one is given.
    async fn settlement_candidates(
        &self,
        cutoff: Timestamp,
        owner: Option<&ClientId>,
    ) -> Result<Vec<(ClientId, Currency)>, StoreError>;

    /// When the oldest completed transaction not yet in a batch completed.
    async fn oldest_unsettled(&self) -> Result<Option<Timestamp>, StoreError>;

    /// Adds up to `chunk.limit` unsettled transactions completed before the cutoff to the
    /// participant's batch for it (opened when missing), each with its item and its share of
    /// the pending → settled posting, in one transaction; closes the batch when fewer were
    /// left. A closed batch takes nothing more.
    async fn settle_chunk(&self, chunk: &SettleChunk) -> Result<SettledChunk, StoreError>;

    /// Batches, newest cutoff first: of one participant and one day when given; at most `limit`.
    async fn settlement_batches(
        &self,
        owner: Option<&ClientId>,
        day: Option<Date>,
        limit: u32,
    ) -> Result<Vec<SettlementBatch>, StoreError>;

    async fn settlement_batch(&self, batch_id: &str) -> Result<Option<SettlementBatch>, StoreError>;

    /// A page of `owner`'s batches, newest day first (then newest cutoff, then id), after
    /// `after`: the developer center's list, by keyset over the index of an owner's days.
    async fn settlement_batches_page(
        &self,
        owner: &ClientId,
        after: Option<&BatchCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementBatch>, StoreError>;

    /// A page of a batch's items in file order (completion time, then id), after `after`.
    async fn batch_items(
        &self,
        batch_id: &str,
        after: Option<&ItemCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementItemRecord>, StoreError>;

    /// A page of the settled items of a participant that completed in `[from, to)`, in file
    /// order, after `after`.
    async fn items_completed_between(
        &self,
        owner: &ClientId,
        from: Timestamp,
        to: Timestamp,
        after: Option<&ItemCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementItemRecord>, StoreError>;

    /// Records the payout of a closed batch: the participant's settled balance in its currency
    /// moves to the payout account, and every closed, unpaid batch up to this one is paid.
    async fn mark_paid(
        &self,
        batch_id: &str,
        reference: Option<&str>,
        now: Timestamp,
    ) -> Result<MarkPaid, StoreError>;

    /// The amount the ledger moved into `settled` for a batch.
    async fn batch_movement(&self, batch_id: &str) -> Result<Option<Money>, StoreError>;

    /// How many transactions completed before `until` (of `owner`, or of everyone), and how
    /// many of them are queued and itemized.
    async fn settlement_counts(
        &self,
        owner: Option<&ClientId>,
        until: Timestamp,
    ) -> Result<SettlementCounts, StoreError>;

    /// Claims up to `limit` notifications due at `now` for `lease`: no other claim sees them
    /// until the lease ends or an attempt is recorded.
    async fn claim_notifications(
        &self,
        now: Timestamp,
        lease: jiff::SignedDuration,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Records an attempt and what follows it, releasing the claim. Only the attempt after the
    /// last recorded one is accepted; another is `Conflict` (its sender had lost the claim).
    async fn record_attempt(&self, attempt: &Attempt, after: AfterAttempt) -> Result<(), StoreError>;

    /// Queues every notification about `subject_id` (a payment, refund or registration id) for an attempt at
    /// `now`, delivered or not; returns how many. An attempt in flight keeps its claim, and the
    /// resend follows it.
    async fn resend_notifications(&self, subject_id: &str, now: Timestamp) -> Result<u32, StoreError>;

    /// The notifications about a subject, each with its attempts in order.
    async fn notifications(&self, subject_id: &str) -> Result<Vec<(Notification, Vec<Attempt>)>, StoreError>;

    // The developer center's lists: one participant's rows, newest first, by keyset.

    /// A page of `owner`'s payments matching `filter`, newest first (ties by id), after `after`.
    async fn payments_page(
        &self,
        owner: &ClientId,
        filter: &PaymentFilter,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError>;

    /// A page of `owner`'s refunds (of one status when given: `PROCESSING`, `SUCCESS`,
    /// `FAIL`), newest first, after `after`.
    async fn refunds_page(
        &self,
        owner: &ClientId,
        status: Option<&str>,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError>;

    /// A page of `owner`'s registrations (of one status when given: `PROCESSING`,
    /// `APPROVED`, `REJECTED`), newest first, after `after`.
    async fn registrations_page(
        &self,
        owner: &ClientId,
        status: Option<&str>,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError>;

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

    /// Releases every claim (on start: a previous run's claims died with it). On a database
    /// that several servers share it does nothing: a starting server cannot tell a dead
    /// server's claims from a live one's, so claims return when their lease ends.
    async fn release_claims(&self) -> Result<(), StoreError>;

    /// Releases the claims of one server that stops with attempts cut off: each is a
    /// notification id and the end of the lease it was claimed for, and is due again at once,
    /// on a shared database too. A claim taken since by another server (its lease ended) has
    /// another end and is left alone. Returns how many were released.
    async fn release_notification_claims(&self, claims: &[(String, Timestamp)]) -> Result<u64, StoreError>;

    /// Whether the store can serve reads and writes.
    async fn health(&self) -> Result<(), StoreError>;

    /// Creates a participant's SFTP account, or changes the one it has: a public key is added
    /// (once: a key already there stays as it is), a password replaces the old one, an
    /// allow-list (when given) replaces the old one. Returns the account and whether it is new.
    async fn upsert_sftp_account(
        &self,
        change: &SftpAccountChange,
        now: Timestamp,
    ) -> Result<(SftpAccount, bool), StoreError>;

    /// Every SFTP account, by client id.
    async fn sftp_accounts(&self) -> Result<Vec<SftpAccount>, StoreError>;

    async fn sftp_account(&self, client_id: &ClientId) -> Result<Option<SftpAccount>, StoreError>;

    /// Removes an SFTP account; false if there was none.
    async fn remove_sftp_account(&self, client_id: &ClientId) -> Result<bool, StoreError>;

    /// Removes one public key (as kept: type and data) from an SFTP account; false when the
    /// account has no such key, or there is no account.
    async fn remove_sftp_public_key(&self, client_id: &ClientId, key: &str) -> Result<bool, StoreError>;

    /// Records a login's outcome and returns the account as it is after it (`None` when it does
    /// not exist). A success clears the failures and stamps the last login; a failure counts,
    /// and the `failures_max`-th in a row locks the account until `locked_until`. A failure
    /// while locked changes nothing (the lockout keeps its end); the first one after a lockout
    /// ended starts a new count.
    async fn record_sftp_login(
        &self,
        client_id: &ClientId,
        outcome: SftpLoginOutcome,
        now: Timestamp,
    ) -> Result<Option<SftpAccount>, StoreError>;

    /// Starts a password check: false if the account is locked at `now` (or does not exist).
    /// Otherwise the attempt counts as a failure until a success is recorded
    /// ([`Store::record_sftp_login`]), and the `failures_max`-th in a row locks the account
    /// until `locked_until`. As with [`Store::pin_attempt`], counting before checking is what
    /// keeps parallel guesses from all being checked before the lock holds.
    async fn sftp_login_attempt(
        &self,
        client_id: &ClientId,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    // The API log (`api_log`): what reached the gateway under each participant's client id.

    /// Appends entries to the API log, in order, in one transaction, and then keeps at most
    /// `unverified_max` unverified entries of each participant named (its newest), so that
    /// requests nobody could sign cannot flood a participant's log.
    async fn record_api_log(&self, entries: &[ApiLogEntry], unverified_max: u32) -> Result<(), StoreError>;

    /// A page of a participant's API log, newest first: at most `limit` entries matching
    /// `filter`, with an id below `before_id` when one is given (the last id of the page before).
    async fn api_log(
        &self,
        client_id: &ClientId,
        filter: &ApiLogFilter,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ApiLogEntry>, StoreError>;

    /// A participant's entries after `after_id`, oldest first, at most `limit`: for following
    /// the log as it grows.
    async fn api_log_after(
        &self,
        client_id: &ClientId,
        filter: &ApiLogFilter,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<ApiLogEntry>, StoreError>;

    /// One entry of a participant's API log; another participant's is never found.
    async fn api_log_entry(&self, client_id: &ClientId, id: i64) -> Result<Option<ApiLogEntry>, StoreError>;

    /// How many of a participant's entries received at or after `from` had each result code,
    /// per UTC day (the day number is `at_ms / 86_400_000`), by day then code.
    async fn api_results_by_day(
        &self,
        client_id: &ClientId,
        from: Timestamp,
    ) -> Result<Vec<(i64, String, u64)>, StoreError>;

    /// Deletes up to `limit` entries received before `older_than`, oldest first, and returns how
    /// many it deleted.
    async fn prune_api_log(&self, older_than: Timestamp, limit: u32) -> Result<u64, StoreError>;

    // The developer center's users and sessions (`portal`).

    /// Creates a user; `Conflict("email")` when the email is taken (by any participant).
    async fn create_portal_user(&self, user: &NewPortalUser) -> Result<(), StoreError>;

    /// Creates a participant with its first key and its first user, all or nothing (a sign-up).
    async fn sign_up(
        &self,
        participant: &Participant,
        key: &NewKey,
        owner: &NewPortalUser,
    ) -> Result<(), StoreError>;

    /// The user with this (lower-case) email.
    async fn portal_user_by_email(&self, email: &str) -> Result<Option<PortalUser>, StoreError>;

    async fn portal_user(&self, user_id: &str) -> Result<Option<PortalUser>, StoreError>;

    /// The users of one participant, or of all, by email.
    async fn portal_users(&self, client_id: Option<&ClientId>) -> Result<Vec<PortalUser>, StoreError>;

    /// A page of one participant's users by email: at most `limit`, with emails after `after`
    /// when given (the last email of the page before).
    async fn portal_users_page(
        &self,
        client_id: &ClientId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PortalUser>, StoreError>;

    /// The user whose one-time link has this SHA-256, while it works at `now`.
    async fn portal_user_by_setup_token(
        &self,
        sha256: &[u8],
        now: Timestamp,
    ) -> Result<Option<PortalUser>, StoreError>;

    /// Changes a user (see [`PortalUserChange`]) and returns it as changed; `None` when there
    /// is no such user.
    async fn update_portal_user(
        &self,
        user_id: &str,
        change: &PortalUserChange,
    ) -> Result<Option<PortalUser>, StoreError>;

    /// Starts a sign-in check as [`Store::sftp_login_attempt`] does: false if the user is
    /// locked at `now`; otherwise the attempt counts as a failure until
    /// [`Store::record_portal_sign_in`] clears it, and the `failures_max`-th in a row locks the
    /// user until `locked_until`.
    async fn portal_sign_in_attempt(
        &self,
        user_id: &str,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Records a successful sign-in and creates its session: clears the failures, stamps the
    /// time and, when a TOTP code was used, its step, which must be later than the last one
    /// accepted (false, and nothing written, when it is not: a code works once).
    async fn record_portal_sign_in(
        &self,
        session: &PortalSession,
        totp_step: Option<i64>,
    ) -> Result<bool, StoreError>;

    /// A session with its user.
    async fn portal_session(
        &self,
        session_sha256: &[u8],
    ) -> Result<Option<(PortalSession, PortalUser)>, StoreError>;

    /// Marks a session used at `now`.
    async fn touch_portal_session(&self, session_sha256: &[u8], now: Timestamp) -> Result<(), StoreError>;

    /// Ends a session (sign-out, or found expired).
    async fn end_portal_session(&self, session_sha256: &[u8]) -> Result<(), StoreError>;

    // The operator's console's reads and changes across participants (`oversight`).

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

    /// A page of every acquirer's registrations (of one status when given), newest first,
    /// after `after`: the operator's review queue.
    async fn all_registrations_page(
        &self,
        status: Option<&str>,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError>;

    /// A page of the audit trail across participants, newest first, with ids below `before`.
    async fn audit_search(
        &self,
        filter: &oversight::AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<oversight::AuditRecord>, StoreError>;

    // The operator's console's users and sessions (`portal`): as the developer center's, in
    // tables of their own.

    /// Creates an operator; `Conflict("email")` when another operator has the email.
    async fn create_operator(&self, operator: &NewOperator) -> Result<(), StoreError>;

    /// The operator with this (lower-case) email.
    async fn operator_by_email(&self, email: &str) -> Result<Option<OperatorUser>, StoreError>;

    /// Every operator, by email.
    async fn operators(&self) -> Result<Vec<OperatorUser>, StoreError>;

    /// As [`Store::portal_user_by_setup_token`], for operators.
    async fn operator_by_setup_token(
        &self,
        sha256: &[u8],
        now: Timestamp,
    ) -> Result<Option<OperatorUser>, StoreError>;

    /// As [`Store::update_portal_user`], for operators (`role` is not theirs and is ignored).
    async fn update_operator(
        &self,
        user_id: &str,
        change: &PortalUserChange,
    ) -> Result<Option<OperatorUser>, StoreError>;

    /// As [`Store::portal_sign_in_attempt`], for operators.
    async fn operator_sign_in_attempt(
        &self,
        user_id: &str,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// As [`Store::record_portal_sign_in`], for operators.
    async fn record_operator_sign_in(
        &self,
        session: &PortalSession,
        totp_step: Option<i64>,
    ) -> Result<bool, StoreError>;

    /// An operator's session with its operator.
    async fn operator_session(
        &self,
        session_sha256: &[u8],
    ) -> Result<Option<(PortalSession, OperatorUser)>, StoreError>;

    /// Marks an operator's session used at `now`.
    async fn touch_operator_session(&self, session_sha256: &[u8], now: Timestamp) -> Result<(), StoreError>;

    /// Ends an operator's session.
    async fn end_operator_session(&self, session_sha256: &[u8]) -> Result<(), StoreError>;

    /// A participant's successful payments and refunds per UTC day and currency, and its
    /// notifications per day by outcome, from the day of `from` on (the developer center's
    /// charts). Days that ended before `final_before` can no longer change: they are computed
    /// once and kept, and later reads take them as kept.
    async fn daily_activity(
        &self,
        client_id: &ClientId,
        from: Timestamp,
        final_before: Timestamp,
    ) -> Result<portal::DailyActivity, StoreError>;

    // The operator's console: reads across participants (`console`).

    /// Every participant's successful payments and refunds per UTC day and currency, and every
    /// notification per day by outcome, as [`Store::daily_activity`] reads one participant's
    /// (and keeps the days that can no longer change the same way).
    async fn platform_activity(
        &self,
        from: Timestamp,
        final_before: Timestamp,
    ) -> Result<portal::DailyActivity, StoreError>;

    /// How many API log entries of every participant received at or after `from` had each
    /// result code, per UTC day, by day then code (as [`Store::api_results_by_day`]).
    async fn platform_api_results_by_day(
        &self,
        from: Timestamp,
    ) -> Result<Vec<(i64, String, u64)>, StoreError>;

    /// A page of the payers whose id starts with `id_prefix` (every payer for `""`), by id,
    /// after `after`, each with its wallets' kept balances.
    async fn payers_page(
        &self,
        id_prefix: &str,
        after: Option<&PayerId>,
        limit: u32,
    ) -> Result<Vec<console::PayerWallets>, StoreError>;

    /// A page of an account's entries, newest posting first, with postings below `before`.
    async fn account_entries(
        &self,
        account: &Account,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<console::LedgerEntry>, StoreError>;

    /// A page of the balances of every account but the payers' wallets, by key, after `after`
    /// (a key). Each is the sum of its entries, read through the index by account.
    async fn account_balances(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<console::AccountBalance>, StoreError>;

    /// The notifications not delivered (pending or failed), counted by status and kind, each
    /// with its oldest one's creation.
    async fn undelivered_notifications(&self) -> Result<Vec<console::Undelivered>, StoreError>;

    /// A page of the endpoints (recipient and URL) that have notifications tried and not
    /// delivered, by recipient and URL, after `after`, each with the last attempt at the newest
    /// of them.
    async fn failing_endpoints(
        &self,
        after: Option<&console::EndpointCursor>,
        limit: u32,
    ) -> Result<Vec<console::FailingEndpoint>, StoreError>;

    /// A page of every participant's batches, newest day first (then newest cutoff, then id),
    /// after `after`.
    async fn all_settlement_batches_page(
        &self,
        after: Option<&BatchCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementBatch>, StoreError>;
}

/// A participant's SFTP account (login name = client id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpAccount {
    pub client_id: ClientId,
    /// OpenSSH one-line public keys (`ssh-ed25519 AAAA...`), without comments, so that two
    /// texts are equal exactly when the keys are.
    pub public_keys: Vec<String>,
    /// An argon2id PHC string.
    pub password_hash: Option<String>,
    /// CIDR texts the account may connect from; empty means any address.
    pub allowed_networks: Vec<String>,
    pub created_at: Timestamp,
    pub last_login_at: Option<Timestamp>,
    /// Failed logins in a row.
    pub failures: u32,
    pub locked_until: Option<Timestamp>,
}

/// What [`Store::upsert_sftp_account`] changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpAccountChange {
    pub client_id: ClientId,
    pub add_public_key: Option<String>,
    pub password_hash: Option<String>,
    pub allowed_networks: Option<Vec<String>>,
}

/// A login's outcome, for [`Store::record_sftp_login`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SftpLoginOutcome {
    Succeeded,
    Failed { failures_max: u32, locked_until: Timestamp },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notification_event_reads_back_as_stored() {
        for event in NotificationEvent::all() {
            let (status, code) = event.stored();
            assert_eq!(NotificationEvent::from_stored(event.kind(), status, code), Some(event), "{event:?}");
        }
        // A new event fails to compile here: list it in `NotificationEvent::all` too.
        let listed = |event| match event {
            NotificationEvent::Paid
            | NotificationEvent::PaymentFailed(_)
            | NotificationEvent::RefundSucceeded
            | NotificationEvent::RefundFailed
            | NotificationEvent::Granted
            | NotificationEvent::RegistrationApproved
            | NotificationEvent::RegistrationRejected => NotificationEvent::all().any(|all| all == event),
        };
        assert!(listed(NotificationEvent::Granted));
    }

    /// Stored rows hold these names: one that changes no longer reads.
    #[test]
    fn names_are_stable() {
        let kinds: Vec<_> = NotificationKind::ALL.into_iter().map(NotificationKind::as_str).collect();
        assert_eq!(kinds, ["PAYMENT_RESULT", "REFUND_RESULT", "AGENT_AUTHORIZATION", "REGISTRATION_STATUS"]);
        let statuses: Vec<_> = DeliveryStatus::ALL.into_iter().map(DeliveryStatus::as_str).collect();
        assert_eq!(statuses, ["PENDING", "DELIVERED", "FAILED"]);
        let outcomes: Vec<_> = AttemptOutcome::ALL.into_iter().map(AttemptOutcome::as_str).collect();
        assert_eq!(outcomes, ["DELIVERED", "REJECTED", "ERROR"]);
        let kinds: Vec<_> =
            settlement::SettlementKind::ALL.into_iter().map(settlement::SettlementKind::as_str).collect();
        assert_eq!(kinds, ["PAYMENT", "REFUND", "CANCEL"]);
        let statuses: Vec<_> =
            settlement::BatchStatus::ALL.into_iter().map(settlement::BatchStatus::as_str).collect();
        assert_eq!(statuses, ["OPEN", "CLOSED"]);
    }

    /// Rows written before the event was an enum hold exactly these texts.
    #[test]
    fn earlier_rows_read_as_their_event() {
        use NotificationEvent as E;
        use NotificationKind as K;
        let rows = [
            (K::PaymentResult, "SUCCESS", "SUCCESS", E::Paid),
            (K::PaymentResult, "FAIL", "ORDER_IS_CLOSED", E::PaymentFailed(FailReason::OrderIsClosed)),
            (
                K::PaymentResult,
                "FAIL",
                "USER_BALANCE_NOT_ENOUGH",
                E::PaymentFailed(FailReason::UserBalanceNotEnough),
            ),
            (K::PaymentResult, "FAIL", "RISK_REJECT", E::PaymentFailed(FailReason::RiskReject)),
            (
                K::PaymentResult,
                "FAIL",
                "USER_KYC_NOT_QUALIFIED",
                E::PaymentFailed(FailReason::UserKycNotQualified),
            ),
            (K::RefundResult, "SUCCESS", "SUCCESS", E::RefundSucceeded),
            (K::RefundResult, "FAIL", "PROCESS_FAIL", E::RefundFailed),
            (K::AgentAuthorization, "GRANTED", "SUCCESS", E::Granted),
            (K::RegistrationStatus, "APPROVED", "SUCCESS", E::RegistrationApproved),
            (K::RegistrationStatus, "REJECTED", "SUCCESS", E::RegistrationRejected),
        ];
        for (kind, status, code, event) in rows {
            assert_eq!(NotificationEvent::from_stored(kind, status, code), Some(event), "{status} {code}");
        }
        assert_eq!(rows.len(), NotificationEvent::all().count(), "every event is a row above");
        assert_eq!(NotificationEvent::from_stored(K::RefundResult, "FAIL", "ORDER_IS_CLOSED"), None);
    }
}
