//! Durable storage of ocpay behind one [`Store`] trait, made of one trait per area ([`api`]).
//!
//! The traits are named after business writes (`create_payment`, `cancel_payment`, ...). Each
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

pub mod api;
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

pub use api::{
    AccessStore, ActivityStore, ApiLogStore, ConsoleStore, DatabaseStore, LedgerStore, NotificationStore,
    OperatorStore, OversightStore, ParticipantStore, PaymentStore, PortalStore, PreloadCall, PreloadPlan,
    PreloadRows, PreloadStore, RefundStore, RegistrationStore, SessionStore, SettlementStore, SftpStore,
    Store,
};
pub use api_log::{ApiLogEntry, ApiLogFilter};
use ocpay_core::Timestamp;
use ocpay_core::access::{Grant, Scopes};
use ocpay_core::ids::{
    ClientId, CodeToken, PaymentId, PaymentRequestId, RefundId, RefundRequestId, RegistrationId,
    RegistrationRequestId,
};
use ocpay_core::money::Money;
use ocpay_core::participant::KeyVersion;
use ocpay_core::payment::{CancelRefusal, Charge, FailReason, NotPayable, Payment};
use ocpay_core::refund::{Refund, RefundPolicy, RefundRefusal, RefundTerms};
use ocpay_core::registration::{Registration, RegistrationRefusal};
pub use pages::{HeldToken, PageCursor, PaymentFilter, TokenHold};
pub use portal::{
    DailyActivity, DayDeliveries, DayTotal, NewOperator, NewPortalUser, OperatorUser, PortalSession,
    PortalUser, PortalUserChange, SetupToken,
};

/// The store's traits, for code that calls the store's methods on a store of a known type
/// (`SqliteStore`, `Arc<PostgresStore>`): `use ocpay_store::prelude::*;`. Through `dyn Store`,
/// or a type bound by `Store`, the methods of every area need no import.
pub mod prelude {
    pub use crate::api::{
        AccessStore, ActivityStore, ApiLogStore, ConsoleStore, DatabaseStore, LedgerStore, NotificationStore,
        OperatorStore, OversightStore, ParticipantStore, PaymentStore, PortalStore, PreloadStore,
        RefundStore, RegistrationStore, SessionStore, SettlementStore, SftpStore, Store,
    };
}

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

/// What [`SftpStore::upsert_sftp_account`] changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpAccountChange {
    pub client_id: ClientId,
    pub add_public_key: Option<String>,
    pub password_hash: Option<String>,
    pub allowed_networks: Option<Vec<String>>,
}

/// A login's outcome, for [`SftpStore::record_sftp_login`].
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
