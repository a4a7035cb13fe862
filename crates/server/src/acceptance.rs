//! The go-live acceptance cases (spec §9.2, §9.3): what an integration must show in the sandbox
//! before it goes live, checked from its own traffic, and the go-live checklist's words.
//!
//! Pure: no I/O, no async, no clock. [`evaluate`] takes the [`Observations`] (the sandbox
//! participant's verified requests as read from its API log, parsed into the few identifiers the
//! cases need by [`Request::from_entry`]; its payments and refunds as the store knows them; the
//! delivery attempts of the notifications that matter) and `now`, and reports each case.
//!
//! Which instance decides: the latest one, so that a case shows the integration as it is now (a
//! till that did it right once and wrong since is open). An instance that has not passed yet and
//! is still in progress (it began less than `grace` ago, or its outcome is still to come: a
//! refund still processing, a notification before its second attempt) leaves the decision to the
//! instance before it. The evidence is the API-log entry ids of the deciding instance.

use std::collections::HashMap;

use jiff::SignedDuration;
use ocpay_core::Timestamp;
use ocpay_core::sandbox::{MagicAmount, RefundMagicAmount};
use ocpay_store::ApiLogEntry;
use serde::{Serialize, Serializer};

/// `paymentAmount.value` of a `pay` answered `U / UNKNOWN_EXCEPTION` once.
pub const PAY_UNKNOWN: i64 = MagicAmount::PayUnknownOnce.minor();
/// `paymentAmount.value` of a `pay` answered late.
pub const PAY_SLOW: i64 = MagicAmount::PaySlow.minor();
/// `paymentAmount.value` of a payment whose first inquiry answers `U`.
pub const INQUIRY_UNKNOWN: i64 = MagicAmount::InquiryUnknownOnce.minor();
/// `paymentAmount.value` of a payment whose success notification's first attempt is not counted.
pub const NOTIFICATION_RETRIED: i64 = MagicAmount::FirstNotificationNotCounted.minor();
/// `refundAmount.value` of a `refund` answered `U / UNKNOWN_EXCEPTION` once.
pub const REFUND_UNKNOWN: i64 = RefundMagicAmount::UnknownOnce.minor();
/// `refundAmount.value` of an asynchronous refund (`U / REFUND_IN_PROCESS`).
pub const REFUND_ASYNC: i64 = RefundMagicAmount::FailsLater.minor();

const MAGIC_PAYMENTS: [i64; 4] = [PAY_UNKNOWN, PAY_SLOW, INQUIRY_UNKNOWN, NOTIFICATION_RETRIED];

ocpay_core::named_enum! {
    /// An acceptance case. The names are a contract with the CLI's JSON and the developer
    /// center's links: lower-case words joined by `-`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Case {
        /// An order code shown, paid, and the success seen.
        Payment1 = "payment-1",
        /// A code shown and not paid; the till polled, then cancelled.
        Payment2 = "payment-2",
        /// A full refund.
        Refund1 = "refund-1",
        /// Two or more partial refunds of one payment.
        Refund2 = "refund-2",
        /// A `U` answer to `pay` retried with the same `paymentRequestId` (9901).
        PayUnknownRetried = "pay-unknown-retried",
        /// A timed-out `pay` followed by an inquiry or a retry (9902).
        PayTimeout = "pay-timeout",
        /// A `U` inquiry inquired again (9903).
        InquiryUnknownRetried = "inquiry-unknown-retried",
        /// A notification not acknowledged at first and acknowledged later (9904).
        NotificationRetried = "notification-retried",
        /// A `U` refund retried with the same `refundRequestId` (refund 9901).
        RefundUnknownRetried = "refund-unknown-retried",
        /// An asynchronous refund whose outcome the integration learned (refund 9902).
        AsyncRefundLearned = "async-refund-learned",
        /// Polling that stops at the code's expiry.
        PollingStopsAtExpiry = "polling-stops-at-expiry",
    }
}

impl Case {
    pub fn title(self) -> &'static str {
        match self {
            Self::Payment1 => "Payment 1: an order code paid, and the success seen",
            Self::Payment2 => "Payment 2: an order code not paid, polled, then cancelled",
            Self::Refund1 => "Refund 1: a full refund",
            Self::Refund2 => "Refund 2: several partial refunds of one payment",
            Self::PayUnknownRetried => "A U answer to pay, retried with the same paymentRequestId",
            Self::PayTimeout => "A timed-out pay, followed by an inquiry or a retry",
            Self::InquiryUnknownRetried => "A U answer to inquiryPayment, inquired again",
            Self::NotificationRetried => "A notification not acknowledged at first, acknowledged later",
            Self::RefundUnknownRetried => "A U answer to refund, retried with the same refundRequestId",
            Self::AsyncRefundLearned => "An asynchronous refund whose outcome your integration learned",
            Self::PollingStopsAtExpiry => "Polling that stops at the order code's expiry",
        }
    }

    pub fn how_to_provoke(self) -> &'static str {
        match self {
            Self::Payment1 => {
                "pay with an ordinary amount (not 9901-9904), pay the code with the test payer, then \
                 inquire the payment until inquiryPayment answers SUCCESS or acknowledge its success \
                 notification"
            }
            Self::Payment2 => {
                "pay with an ordinary amount, leave the code unpaid, poll it with inquiryPayment, then \
                 cancel it"
            }
            Self::Refund1 => "refund the whole amount of a paid payment in one refund",
            Self::Refund2 => "refund one paid payment in two or more parts, each less than its amount",
            Self::PayUnknownRetried => {
                "pay with amount 9901: the first answer is U / UNKNOWN_EXCEPTION; retry pay with the same \
                 paymentRequestId"
            }
            Self::PayTimeout => {
                "pay with amount 9902: the answer comes after sandbox_slow_answer_ms, past your client's \
                 timeout; then inquire the payment by its paymentRequestId or retry pay with the same one"
            }
            Self::InquiryUnknownRetried => {
                "pay with amount 9903, then inquire the payment: the first inquiry answers U / \
                 UNKNOWN_EXCEPTION; inquire again"
            }
            Self::NotificationRetried => {
                "pay with amount 9904 and pay the code: the first attempt of its success notification is \
                 not counted as acknowledged whatever you answer; acknowledge the next attempt"
            }
            Self::RefundUnknownRetried => {
                "refund amount 9901 of a paid payment of at least that much: the first answer is U / \
                 UNKNOWN_EXCEPTION; retry refund with the same refundRequestId"
            }
            Self::AsyncRefundLearned => {
                "refund amount 9902 of a paid payment: the answer is U / REFUND_IN_PROCESS and the refund \
                 completes later (it fails); learn its outcome with inquiryRefund after it completed or by \
                 acknowledging its notification"
            }
            Self::PollingStopsAtExpiry => {
                "pay with a short paymentExpiryTime, poll with inquiryPayment while the code is valid, \
                 leave it unpaid, and stop polling at its expireTime"
            }
        }
    }
}

ocpay_core::named_enum! {
    /// An item of the go-live checklist; names as [`Case`]'s.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum CheckItem {
        /// Every acceptance case passed in the sandbox.
        CasesPassed = "cases-passed",
        /// The live participant exists and has an active (non-revoked) key.
        LiveKey = "live-key",
        /// The live participant has a notify URL, and its latest test notification was
        /// acknowledged.
        LiveNotifyUrl = "live-notify-url",
        /// The live participant has an SFTP account with a key or a password.
        Sftp = "sftp",
    }
}

impl CheckItem {
    pub fn title(self) -> &'static str {
        match self {
            Self::CasesPassed => "Every acceptance case passed in the sandbox",
            Self::LiveKey => "A live key uploaded",
            Self::LiveNotifyUrl => "A live notify URL that acknowledged a test notification",
            Self::Sftp => "SFTP set up for the reconciliation files",
        }
    }
}

/// Serializes the enums of [`named_enum!`](ocpay_core::named_enum) by their stable names.
macro_rules! serialize_by_name {
    ($($name:ident),+) => {$(
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    )+};
}

serialize_by_name!(Case, CheckItem);

/// Where one case stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseReport {
    pub case: Case,
    pub title: &'static str,
    pub how_to_provoke: &'static str,
    pub passed: bool,
    /// What is left, in the integrator's words; `None` exactly when passed.
    pub missing: Option<String>,
    /// The API-log entry ids of the instance that decided, oldest first.
    pub evidence: Vec<i64>,
}

/// One item of the go-live checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChecklistItem {
    pub item: CheckItem,
    pub title: &'static str,
    pub done: bool,
    /// What is there, or what is left.
    pub detail: String,
}

/// A participant's go-live readiness: the sandbox twin's cases and the live twin's checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoLive {
    /// `SANDBOX_X`.
    pub sandbox_client_id: String,
    /// `X`.
    pub live_client_id: String,
    pub cases: Vec<CaseReport>,
    pub checklist: Vec<ChecklistItem>,
    /// Every case passed.
    pub cases_passed: bool,
    /// Every checklist item is done.
    pub ready: bool,
}

/// The APIs the cases look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Pay,
    InquiryPayment,
    Cancel,
    Refund,
    InquiryRefund,
}

impl Call {
    fn of_name(name: &str) -> Option<Call> {
        use ocpay_protocol::api::Api;
        let api = Api::ALL.into_iter().find(|api| api.name() == name)?;
        match api {
            Api::Pay => Some(Self::Pay),
            Api::InquiryPayment => Some(Self::InquiryPayment),
            Api::Cancel => Some(Self::Cancel),
            Api::Refund => Some(Self::Refund),
            Api::InquiryRefund => Some(Self::InquiryRefund),
            _ => None,
        }
    }
}

/// One verified request of the sandbox participant, as its API-log entry shows it: the
/// identifiers it named (in its body, or else in its answer) and what it was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub entry_id: i64,
    pub at: Timestamp,
    pub call: Call,
    pub result_status: String,
    pub result_code: String,
    pub payment_request_id: Option<String>,
    pub payment_id: Option<String>,
    pub refund_request_id: Option<String>,
    pub refund_id: Option<String>,
    /// `paymentAmount.value` of a `pay`, `refundAmount.value` of a `refund`, in minor units.
    pub amount: Option<i64>,
    /// The `paymentStatus` an `inquiryPayment` answered.
    pub payment_status: Option<String>,
    /// The `refundStatus` an `inquiryRefund` answered.
    pub refund_status: Option<String>,
}

impl Request {
    /// The request an entry shows; `None` when it did not verify or is of an API no case looks
    /// at. A body cut by the log's size limit gives what could be read (no identifiers).
    pub fn from_entry(entry: &ApiLogEntry) -> Option<Request> {
        if !entry.verified {
            return None;
        }
        let call = Call::of_name(&entry.api)?;
        let parse = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap_or_default();
        let (request, response) = (parse(&entry.request_body), parse(&entry.response_body));
        let text = |name: &str| -> Option<String> {
            [&request, &response].into_iter().find_map(|body| match body.get(name)? {
                serde_json::Value::String(text) => Some(text.clone()),
                serde_json::Value::Number(number) => Some(number.to_string()),
                _ => None,
            })
        };
        let amount_field = match call {
            Call::Refund => "refundAmount",
            _ => "paymentAmount",
        };
        let amount = match request.get(amount_field).and_then(|amount| amount.get("value")) {
            Some(serde_json::Value::String(text)) => text.parse().ok(),
            Some(serde_json::Value::Number(number)) => number.as_i64(),
            _ => None,
        };
        let answered = |name: &str| response.get(name).and_then(|value| value.as_str()).map(str::to_owned);
        Some(Request {
            entry_id: entry.id,
            at: entry.at,
            call,
            result_status: entry.result_status.clone(),
            result_code: entry.result_code.clone(),
            payment_request_id: text("paymentRequestId"),
            payment_id: text("paymentId"),
            refund_request_id: text("refundRequestId"),
            refund_id: text("refundId"),
            amount: matches!(call, Call::Pay | Call::Refund).then_some(amount).flatten(),
            payment_status: answered("paymentStatus"),
            refund_status: answered("refundStatus"),
        })
    }

    fn answered(&self, status: &str, code: &str) -> bool {
        self.result_status == status && self.result_code == code
    }

    fn succeeded(&self) -> bool {
        self.result_status == "S"
    }

    /// Whether it names this payment (by either of its ids).
    fn names_payment(&self, payment: &PaymentFact) -> bool {
        self.payment_id.as_deref() == Some(payment.payment_id.as_str())
            || self.payment_request_id.as_deref() == Some(payment.payment_request_id.as_str())
    }

    /// Whether it names this refund (by either of its ids).
    fn names_refund(&self, refund: &RefundFact) -> bool {
        self.refund_id.as_deref() == Some(refund.refund_id.as_str())
            || self.refund_request_id.as_deref() == Some(refund.refund_request_id.as_str())
    }
}

/// A payment as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFact {
    pub payment_id: String,
    pub payment_request_id: String,
    /// In minor units.
    pub amount: i64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// When it was paid (also for a paid payment cancelled since).
    pub paid_at: Option<Timestamp>,
    /// Cancelled by the merchant.
    pub cancelled: bool,
    /// Closed unpaid because its code expired (or still processing past its expiry).
    pub expired: bool,
}

/// A refund as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundFact {
    pub refund_id: String,
    pub refund_request_id: String,
    pub payment_id: String,
    /// In minor units.
    pub amount: i64,
    pub succeeded: bool,
    /// When it reached `SUCCESS` or `FAIL`; `None` while processing.
    pub completed_at: Option<Timestamp>,
}

/// What a notification reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notified {
    PaymentPaid,
    /// A refund's outcome, success or failure.
    RefundCompleted,
}

/// A notification with its delivery attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationFact {
    /// The payment or refund id.
    pub subject_id: String,
    pub notified: Notified,
    /// Whether more attempts are scheduled (it is neither delivered nor given up).
    pub pending: bool,
    /// Oldest first.
    pub attempts: Vec<AttemptFact>,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptFact {
    /// 1 for the first.
    pub number: u32,
    pub at: Timestamp,
    /// Counted as acknowledged (HTTP 200 with `resultStatus` `S`).
    pub acknowledged: bool,
}

/// What the sandbox participant did, and what became of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observations {
    /// Verified requests, in any order.
    pub requests: Vec<Request>,
    pub payments: Vec<PaymentFact>,
    pub refunds: Vec<RefundFact>,
    pub notifications: Vec<NotificationFact>,
}

/// What a case found in its deciding instance.
enum Verdict {
    Passed(Vec<i64>),
    Open(String, Vec<i64>),
}

/// Every case, in [`Case::ALL`]'s order. `grace` is how long after a moment the integration is
/// given to act (retry, inquire, stop polling) before an instance is judged.
pub fn evaluate(observations: &Observations, now: Timestamp, grace: SignedDuration) -> Vec<CaseReport> {
    let facts = Facts::new(observations, now, grace);
    Case::ALL
        .into_iter()
        .map(|case| {
            let verdict = match case {
                Case::Payment1 => facts.payment_1(),
                Case::Payment2 => facts.payment_2(),
                Case::Refund1 => facts.refund_1(),
                Case::Refund2 => facts.refund_2(),
                Case::PayUnknownRetried => facts.pay_unknown_retried(),
                Case::PayTimeout => facts.pay_timeout(),
                Case::InquiryUnknownRetried => facts.inquiry_unknown_retried(),
                Case::NotificationRetried => facts.notification_retried(),
                Case::RefundUnknownRetried => facts.refund_unknown_retried(),
                Case::AsyncRefundLearned => facts.async_refund_learned(),
                Case::PollingStopsAtExpiry => facts.polling_stops_at_expiry(),
            };
            let (passed, missing, mut evidence) = match verdict {
                Verdict::Passed(evidence) => (true, None, evidence),
                Verdict::Open(missing, evidence) => (false, Some(missing), evidence),
            };
            evidence.sort_unstable();
            evidence.dedup();
            CaseReport {
                case,
                title: case.title(),
                how_to_provoke: case.how_to_provoke(),
                passed,
                missing,
                evidence,
            }
        })
        .collect()
}

/// How one instance of a case stands.
enum Instance {
    Passed(Vec<i64>),
    /// Not passed yet, and its outcome is still to come.
    InProgress(String, Vec<i64>),
    Open(String, Vec<i64>),
}

/// The deciding instance's verdict among `instances`, oldest first: the latest that is not in
/// progress, unless a later one passed already. With none decided, the latest in progress says
/// what it waits for; with no instance at all, `none` says what to do.
fn decide(instances: Vec<Instance>, none: &str) -> Verdict {
    let mut waiting = None;
    for instance in instances.into_iter().rev() {
        match instance {
            Instance::Passed(evidence) => return Verdict::Passed(evidence),
            Instance::Open(missing, evidence) => return Verdict::Open(missing, evidence),
            Instance::InProgress(missing, evidence) => {
                waiting.get_or_insert((missing, evidence));
            }
        }
    }
    match waiting {
        Some((missing, evidence)) => Verdict::Open(missing, evidence),
        None => Verdict::Open(none.to_owned(), Vec::new()),
    }
}

/// The observations, indexed and in order.
struct Facts<'a> {
    now: Timestamp,
    grace: SignedDuration,
    /// By time, then entry id.
    requests: Vec<&'a Request>,
    payments: HashMap<&'a str, &'a PaymentFact>,
    payments_by_request: HashMap<&'a str, &'a PaymentFact>,
    refunds: Vec<&'a RefundFact>,
    notifications: &'a [NotificationFact],
    /// The requests that name each payment id and `paymentRequestId`, in order.
    naming_payment: HashMap<&'a str, Vec<&'a Request>>,
    /// The requests that name each refund id and `refundRequestId`, in order.
    naming_refund: HashMap<&'a str, Vec<&'a Request>>,
}

/// The requests in order under each id that `ids` gives them (once under an id named twice).
fn index_by<'a>(
    requests: &[&'a Request],
    ids: impl Fn(&'a Request) -> [Option<&'a str>; 2],
) -> HashMap<&'a str, Vec<&'a Request>> {
    let mut index: HashMap<&str, Vec<&Request>> = HashMap::new();
    for request in requests.iter().copied() {
        let [first, second] = ids(request);
        for id in [first, second.filter(|second| Some(*second) != first)].into_iter().flatten() {
            index.entry(id).or_default().push(request);
        }
    }
    index
}

/// The requests of two ordered lists, in order, each once.
fn merged<'a>(one: Option<&Vec<&'a Request>>, other: Option<&Vec<&'a Request>>) -> Vec<&'a Request> {
    let mut all: Vec<&Request> = one.into_iter().chain(other).flatten().copied().collect();
    all.sort_by_key(|request| (request.at, request.entry_id));
    all.dedup_by_key(|request| request.entry_id);
    all
}

impl<'a> Facts<'a> {
    fn new(observations: &'a Observations, now: Timestamp, grace: SignedDuration) -> Facts<'a> {
        let mut requests: Vec<&Request> = observations.requests.iter().collect();
        requests.sort_by_key(|request| (request.at, request.entry_id));
        let mut refunds: Vec<&RefundFact> = observations.refunds.iter().collect();
        refunds.sort_by(|a, b| (a.completed_at, &a.refund_id).cmp(&(b.completed_at, &b.refund_id)));
        let naming_payment = index_by(&requests, |request| {
            [request.payment_request_id.as_deref(), request.payment_id.as_deref()]
        });
        let naming_refund = index_by(&requests, |request| {
            [request.refund_request_id.as_deref(), request.refund_id.as_deref()]
        });
        Facts {
            now,
            grace,
            requests,
            naming_payment,
            naming_refund,
            payments: observations
                .payments
                .iter()
                .map(|payment| (payment.payment_id.as_str(), payment))
                .collect(),
            payments_by_request: observations
                .payments
                .iter()
                .map(|payment| (payment.payment_request_id.as_str(), payment))
                .collect(),
            refunds,
            notifications: &observations.notifications,
        }
    }

    /// An instance not passed: in progress while `since` is less than the grace ago, open after.
    fn judged_after(&self, since: Timestamp, missing: String, evidence: Vec<i64>) -> Instance {
        if self.now < since + self.grace {
            Instance::InProgress(missing, evidence)
        } else {
            Instance::Open(missing, evidence)
        }
    }

    fn calls(&self, call: Call) -> impl Iterator<Item = &'a Request> + '_ {
        self.requests.iter().copied().filter(move |request| request.call == call)
    }

    fn payment_of(&self, request: &Request) -> Option<&'a PaymentFact> {
        let by_id = request.payment_id.as_deref().and_then(|id| self.payments.get(id));
        let by_request =
            || request.payment_request_id.as_deref().and_then(|id| self.payments_by_request.get(id));
        by_id.or_else(by_request).copied()
    }

    /// The requests that name a payment (by either of its ids), oldest first.
    fn about_payment(&self, payment: &PaymentFact, call: Call) -> Vec<&'a Request> {
        let by_request = self.naming_payment.get(payment.payment_request_id.as_str());
        merged(by_request, self.naming_payment.get(payment.payment_id.as_str()))
            .into_iter()
            .filter(|request| request.call == call && request.names_payment(payment))
            .collect()
    }

    /// The requests that name a refund (by either of its ids), oldest first.
    fn about_refund(&self, refund: &RefundFact, call: Call) -> Vec<&'a Request> {
        let by_request = self.naming_refund.get(refund.refund_request_id.as_str());
        merged(by_request, self.naming_refund.get(refund.refund_id.as_str()))
            .into_iter()
            .filter(|request| request.call == call && request.names_refund(refund))
            .collect()
    }

    /// The `pay` requests of a payment, oldest first.
    fn pays_of(&self, payment: &PaymentFact) -> Vec<&'a Request> {
        let id = Some(payment.payment_request_id.as_str());
        self.about_payment(payment, Call::Pay)
            .into_iter()
            .filter(|request| request.payment_request_id.as_deref() == id)
            .collect()
    }

    /// The inquiries of a payment, oldest first.
    fn inquiries_of(&self, payment: &PaymentFact) -> Vec<&'a Request> {
        self.about_payment(payment, Call::InquiryPayment)
    }

    /// The payments made through a `pay` in the log (answered `S`), by creation, with that pay's
    /// entry ids.
    fn logged_payments(&self, ordinary: bool) -> Vec<(&'a PaymentFact, Vec<i64>)> {
        let mut payments: Vec<_> = self
            .payments
            .values()
            .copied()
            .filter(|payment| !ordinary || !MAGIC_PAYMENTS.contains(&payment.amount))
            .filter_map(|payment| {
                let pays = self.pays_of(payment);
                pays.iter()
                    .any(|pay| pay.succeeded())
                    .then(|| (payment, pays.iter().map(|pay| pay.entry_id).collect()))
            })
            .collect();
        payments.sort_by(|(a, _), (b, _)| (a.created_at, &a.payment_id).cmp(&(b.created_at, &b.payment_id)));
        payments
    }

    fn notification(&self, subject_id: &str, notified: Notified) -> Option<&'a NotificationFact> {
        self.notifications
            .iter()
            .find(|notification| notification.subject_id == subject_id && notification.notified == notified)
    }

    fn payment_1(&self) -> Verdict {
        let instances = self
            .logged_payments(true)
            .into_iter()
            .filter_map(|(payment, mut evidence)| {
                let paid_at = payment.paid_at?;
                let seen = self
                    .inquiries_of(payment)
                    .into_iter()
                    .filter(|inquiry| inquiry.at >= paid_at && inquiry.payment_status.as_deref() == Some("SUCCESS"))
                    .map(|inquiry| inquiry.entry_id)
                    .collect::<Vec<_>>();
                let acknowledged = self
                    .notification(&payment.payment_id, Notified::PaymentPaid)
                    .is_some_and(|notification| notification.attempts.iter().any(|attempt| attempt.acknowledged));
                let id = &payment.payment_request_id;
                Some(if let Some(first) = seen.first() {
                    evidence.push(*first);
                    Instance::Passed(evidence)
                } else if acknowledged {
                    Instance::Passed(evidence)
                } else {
                    let missing = format!(
                        "payment {id} was paid, but your integration has not seen it yet: inquire it until \
                         inquiryPayment answers paymentStatus SUCCESS, or acknowledge its success notification"
                    );
                    self.judged_after(paid_at, missing, evidence)
                })
            })
            .collect();
        decide(
            instances,
            "no order code paid yet: pay with an ordinary amount (not 9901-9904), pay the code with the test \
             payer, then inquire it or acknowledge its success notification",
        )
    }

    fn payment_2(&self) -> Verdict {
        let instances = self
            .logged_payments(true)
            .into_iter()
            .filter(|(payment, _)| payment.cancelled && payment.paid_at.is_none())
            .filter_map(|(payment, mut evidence)| {
                let cancels = self.about_payment(payment, Call::Cancel);
                let cancel = cancels.into_iter().find(|cancel| cancel.succeeded())?;
                evidence.push(cancel.entry_id);
                let polled = self.inquiries_of(payment).into_iter().find(|inquiry| inquiry.at <= cancel.at);
                Some(match polled {
                    Some(inquiry) => {
                        evidence.push(inquiry.entry_id);
                        Instance::Passed(evidence)
                    }
                    None => Instance::Open(
                        format!(
                            "payment {} was cancelled without being inquired first: poll inquiryPayment while \
                             the code is shown, then cancel",
                            payment.payment_request_id
                        ),
                        evidence,
                    ),
                })
            })
            .collect();
        decide(
            instances,
            "no unpaid order code cancelled yet: pay with an ordinary amount, leave the code unpaid, poll it with \
             inquiryPayment, then cancel it",
        )
    }

    /// The entry ids of the successful `refund` requests of a refund.
    fn refund_entries(&self, refund: &RefundFact) -> Vec<i64> {
        self.about_refund(refund, Call::Refund).into_iter().map(|request| request.entry_id).collect()
    }

    fn refund_1(&self) -> Verdict {
        let full = self.refunds.iter().rev().find_map(|refund| {
            let payment = self.payments.get(refund.payment_id.as_str())?;
            let entries = self.refund_entries(refund);
            (refund.succeeded && refund.amount == payment.amount && !entries.is_empty()).then_some(entries)
        });
        match full {
            Some(evidence) => Verdict::Passed(evidence),
            None => Verdict::Open(
                "no full refund yet: refund the whole amount of a paid payment in one refund".into(),
                Vec::new(),
            ),
        }
    }

    fn refund_2(&self) -> Verdict {
        let mut by_payment: HashMap<&str, Vec<&RefundFact>> = HashMap::new();
        for refund in &self.refunds {
            let partial =
                self.payments.get(refund.payment_id.as_str()).is_some_and(|p| refund.amount < p.amount);
            if refund.succeeded && partial && !self.refund_entries(refund).is_empty() {
                by_payment.entry(refund.payment_id.as_str()).or_default().push(refund);
            }
        }
        let latest = by_payment
            .values()
            .filter(|refunds| refunds.len() >= 2)
            .max_by_key(|refunds| refunds.iter().map(|refund| refund.completed_at).max());
        if let Some(refunds) = latest {
            return Verdict::Passed(refunds.iter().flat_map(|refund| self.refund_entries(refund)).collect());
        }
        let one = by_payment.values().find(|refunds| refunds.len() == 1);
        let missing = match one {
            Some(refunds) => format!(
                "payment {} has one partial refund: refund it again, so that one payment has two or more \
                 partial refunds",
                refunds[0].payment_id
            ),
            None => {
                "no partial refunds yet: refund one paid payment in two or more parts, each less than its \
                     amount"
                    .into()
            }
        };
        Verdict::Open(missing, Vec::new())
    }

    /// The retry case of a request answered `U / UNKNOWN_EXCEPTION` with a magic amount: `call`
    /// with `amount`, keyed by `key`, named `id_name`.
    fn unknown_retried(
        &self,
        call: Call,
        amount: i64,
        key: fn(&Request) -> Option<&str>,
        id_name: &str,
        none: &str,
    ) -> Verdict {
        let magic: Vec<&Request> = self
            .calls(call)
            .filter(|request| request.amount == Some(amount) && key(request).is_some())
            .collect();
        let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
        for (position, request) in magic.iter().enumerate() {
            by_key.entry(key(request).unwrap_or_default()).or_default().push(position);
        }
        let unknown = |position: usize| magic[position].answered("U", "UNKNOWN_EXCEPTION");
        // The next request with the same id.
        let retry_of = |position: usize| {
            let same = &by_key[key(magic[position]).unwrap_or_default()];
            same.iter().find(|later| **later > position).map(|later| magic[*later])
        };
        let instances = (0..magic.len())
            .filter(|position| unknown(*position))
            .map(|position| {
                let first = magic[position];
                let id = key(first).unwrap_or_default();
                if let Some(retry) = retry_of(position) {
                    return Instance::Passed(vec![first.entry_id, retry.entry_id]);
                }
                // Another id with the same magic amount close after it (or an unretried `U` of
                // another id just before it) is a retry with a new id.
                let window = first.at - self.grace..=first.at + self.grace;
                let other = |other: usize| key(magic[other]) != Some(id);
                let after = (position + 1..magic.len())
                    .take_while(|later| window.contains(&magic[*later].at))
                    .find(|later| other(*later));
                let before = (0..position)
                    .rev()
                    .take_while(|earlier| window.contains(&magic[*earlier].at))
                    .find(|earlier| other(*earlier) && unknown(*earlier) && retry_of(*earlier).is_none());
                let pair = match (after.map(|after| magic[after]), before.map(|before| magic[before])) {
                    (Some(after), _) => Some((id, key(after).unwrap_or_default(), vec![first.entry_id, after.entry_id])),
                    (None, Some(before)) => {
                        Some((key(before).unwrap_or_default(), id, vec![before.entry_id, first.entry_id]))
                    }
                    (None, None) => None,
                };
                match pair {
                    Some((old, new, evidence)) => Instance::Open(
                        format!(
                            "retried with a new {id_name} {new} after {old} answered U: retry with the same \
                             {id_name} {old}, so that nothing is done twice"
                        ),
                        evidence,
                    ),
                    None => {
                        let missing = format!(
                            "{id_name} {id} answered U / UNKNOWN_EXCEPTION and was not retried: retry with the \
                             same {id_name}"
                        );
                        self.judged_after(first.at, missing, vec![first.entry_id])
                    }
                }
            })
            .collect();
        decide(instances, none)
    }

    fn pay_unknown_retried(&self) -> Verdict {
        self.unknown_retried(
            Call::Pay,
            PAY_UNKNOWN,
            |request| request.payment_request_id.as_deref(),
            "paymentRequestId",
            "no pay answered U yet: pay with amount 9901, then retry pay with the same paymentRequestId",
        )
    }

    fn refund_unknown_retried(&self) -> Verdict {
        self.unknown_retried(
            Call::Refund,
            REFUND_UNKNOWN,
            |request| request.refund_request_id.as_deref(),
            "refundRequestId",
            "no refund answered U yet: refund amount 9901 of a paid payment, then retry refund with the same \
             refundRequestId",
        )
    }

    fn pay_timeout(&self) -> Verdict {
        let slow: Vec<&Request> =
            self.calls(Call::Pay).filter(|request| request.amount == Some(PAY_SLOW)).collect();
        // A retry of a slow pay is itself slow: an instance is the first pay of its id.
        let mut seen = std::collections::HashSet::new();
        let instances = slow
            .iter()
            .filter_map(|pay| {
                let id = pay.payment_request_id.as_deref()?;
                if !seen.insert(id) {
                    return None;
                }
                let payment_id = self.payments_by_request.get(id).map(|payment| payment.payment_id.as_str());
                let naming = merged(self.naming_payment.get(id), payment_id.and_then(|pid| self.naming_payment.get(pid)));
                let followed = naming.into_iter().find(|later| {
                    // Received after the pay (whose entry is written once it is answered, late).
                    later.at >= pay.at
                        && later.entry_id != pay.entry_id
                        && (later.call == Call::InquiryPayment
                            || (later.call == Call::Pay && later.payment_request_id.as_deref() == Some(id)))
                });
                Some(match followed {
                    Some(later) => Instance::Passed(vec![pay.entry_id, later.entry_id]),
                    None => {
                        let missing = format!(
                            "pay {id} (amount 9902) was followed by neither an inquiry nor a retry: when pay \
                             times out, inquire the payment by its paymentRequestId or retry pay with the same \
                             paymentRequestId"
                        );
                        self.judged_after(pay.at, missing, vec![pay.entry_id])
                    }
                })
            })
            .collect();
        decide(
            instances,
            "no slow pay yet: pay with amount 9902 with a client timeout shorter than sandbox_slow_answer_ms, then \
             inquire the payment or retry pay with the same paymentRequestId",
        )
    }

    fn inquiry_unknown_retried(&self) -> Verdict {
        let inquiries: Vec<(&Request, &PaymentFact)> = self
            .calls(Call::InquiryPayment)
            .filter_map(|request| Some((request, self.payment_of(request)?)))
            .filter(|(_, payment)| payment.amount == INQUIRY_UNKNOWN)
            .collect();
        let instances = inquiries
            .iter()
            .filter(|(request, _)| request.answered("U", "UNKNOWN_EXCEPTION"))
            .map(|(first, payment)| {
                let again = self
                    .inquiries_of(payment)
                    .into_iter()
                    .find(|later| (later.at, later.entry_id) > (first.at, first.entry_id));
                match again {
                    Some(later) => Instance::Passed(vec![first.entry_id, later.entry_id]),
                    None => {
                        let missing = format!(
                            "the inquiry of payment {} answered U / UNKNOWN_EXCEPTION and was not repeated: \
                             inquire again",
                            payment.payment_request_id
                        );
                        self.judged_after(first.at, missing, vec![first.entry_id])
                    }
                }
            })
            .collect();
        decide(instances, "no inquiry answered U yet: pay with amount 9903, then inquire the payment twice")
    }

    fn notification_retried(&self) -> Verdict {
        let instances = self
            .logged_payments(false)
            .into_iter()
            .filter(|(payment, _)| payment.amount == NOTIFICATION_RETRIED && payment.paid_at.is_some())
            .map(|(payment, evidence)| {
                let id = &payment.payment_request_id;
                let Some(notification) = self.notification(&payment.payment_id, Notified::PaymentPaid) else {
                    return Instance::InProgress(
                        format!("payment {id} was paid; its success notification has not been sent yet"),
                        evidence,
                    );
                };
                let first_refused = notification.attempts.first().is_some_and(|attempt| !attempt.acknowledged);
                let later_acknowledged = notification.attempts.iter().skip(1).any(|attempt| attempt.acknowledged);
                let tries = notification.attempts.len();
                if first_refused && later_acknowledged {
                    Instance::Passed(evidence)
                } else if tries < 2 && notification.pending {
                    Instance::InProgress(
                        format!(
                            "the success notification of payment {id} was sent once; acknowledge its next attempt"
                        ),
                        evidence,
                    )
                } else {
                    Instance::Open(
                        format!(
                            "the success notification of payment {id} was sent {tries} times and never \
                             acknowledged after the first: answer it with HTTP 200 and \
                             {{\"result\":{{\"resultStatus\":\"S\",\"resultCode\":\"SUCCESS\"}}}}"
                        ),
                        evidence,
                    )
                }
            })
            .collect();
        decide(
            instances,
            "no payment of amount 9904 paid yet: pay with amount 9904, pay the code with the test payer, and \
             acknowledge the second attempt of its success notification",
        )
    }

    fn async_refund_learned(&self) -> Verdict {
        let instances = self
            .refunds
            .iter()
            .filter(|refund| refund.amount == REFUND_ASYNC)
            .filter_map(|refund| {
                let requests = self.about_refund(refund, Call::Refund);
                let accepted = requests.iter().find(|request| request.answered("U", "REFUND_IN_PROCESS"))?;
                let id = &refund.refund_request_id;
                let mut evidence = vec![accepted.entry_id];
                let Some(completed_at) = refund.completed_at else {
                    return Some(Instance::InProgress(
                        format!("refund {id} is still processing; learn its outcome once it completes"),
                        evidence,
                    ));
                };
                let inquired = self.about_refund(refund, Call::InquiryRefund).into_iter().find(|inquiry| {
                    inquiry.at >= completed_at
                        && matches!(inquiry.refund_status.as_deref(), Some("SUCCESS" | "FAIL"))
                });
                let acknowledged = self
                    .notification(&refund.refund_id, Notified::RefundCompleted)
                    .is_some_and(|notification| notification.attempts.iter().any(|attempt| attempt.acknowledged));
                Some(if let Some(inquiry) = inquired {
                    evidence.push(inquiry.entry_id);
                    Instance::Passed(evidence)
                } else if acknowledged {
                    Instance::Passed(evidence)
                } else {
                    let missing = format!(
                        "refund {id} completed, but your integration has not learned its outcome: inquire it with \
                         inquiryRefund, or acknowledge its notification (send a refundNotifyUrl)"
                    );
                    self.judged_after(completed_at, missing, evidence)
                })
            })
            .collect();
        decide(
            instances,
            "no asynchronous refund yet: refund amount 9902 of a paid payment, then learn its outcome with \
             inquiryRefund or its notification",
        )
    }

    fn polling_stops_at_expiry(&self) -> Verdict {
        let mut expired: Vec<_> = self
            .logged_payments(false)
            .into_iter()
            .filter(|(payment, _)| payment.expired && payment.paid_at.is_none() && !payment.cancelled)
            .collect();
        expired.sort_by_key(|(payment, _)| payment.expires_at);
        let instances = expired
            .into_iter()
            .filter_map(|(payment, mut evidence)| {
                let inquiries = self.inquiries_of(payment);
                let valid = inquiries.iter().find(|inquiry| inquiry.at < payment.expires_at)?;
                evidence.push(valid.entry_id);
                let stop = payment.expires_at + self.grace;
                let late: Vec<i64> = inquiries
                    .iter()
                    .filter(|inquiry| inquiry.at > stop)
                    .map(|inquiry| inquiry.entry_id)
                    .collect();
                let id = &payment.payment_request_id;
                Some(if let Some(count) = std::num::NonZeroUsize::new(late.len()) {
                    evidence.extend(late);
                    let times = if count.get() == 1 { "once".to_owned() } else { format!("{count} times") };
                    Instance::Open(
                        format!(
                            "your till inquired payment {id} {times} after its code expired: stop polling at \
                             expireTime"
                        ),
                        evidence,
                    )
                } else if self.now <= stop {
                    Instance::InProgress(
                        format!("the code of payment {id} expired; waiting to see that polling stops"),
                        evidence,
                    )
                } else {
                    Instance::Passed(evidence)
                })
            })
            .collect();
        decide(
            instances,
            "no polled code has expired unpaid yet: pay with a short paymentExpiryTime, inquire the payment while \
             the code is valid, leave it unpaid, and stop polling at its expireTime",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(T0 + second).unwrap()
    }

    const GRACE: SignedDuration = SignedDuration::from_secs(60);

    /// Builds observations step by step; entry ids follow the order of the calls.
    #[derive(Default)]
    struct Traffic {
        observations: Observations,
    }

    impl Traffic {
        fn request(&mut self, second: i64, call: Call, status: &str, code: &str) -> &mut Request {
            let entry_id = self.observations.requests.len() as i64 + 1;
            self.observations.requests.push(Request {
                entry_id,
                at: at(second),
                call,
                result_status: status.into(),
                result_code: code.into(),
                payment_request_id: None,
                payment_id: None,
                refund_request_id: None,
                refund_id: None,
                amount: None,
                payment_status: None,
                refund_status: None,
            });
            self.observations.requests.last_mut().unwrap()
        }

        fn pay(&mut self, second: i64, id: &str, amount: i64, status: &str, code: &str) {
            let request = self.request(second, Call::Pay, status, code);
            request.payment_request_id = Some(id.into());
            request.amount = Some(amount);
            if status == "S" {
                request.payment_id = Some(format!("P-{id}"));
            }
        }

        fn inquire(&mut self, second: i64, id: &str, status: &str, code: &str, payment_status: Option<&str>) {
            let request = self.request(second, Call::InquiryPayment, status, code);
            request.payment_request_id = Some(id.into());
            request.payment_status = payment_status.map(str::to_owned);
        }

        fn cancel(&mut self, second: i64, id: &str) {
            let request = self.request(second, Call::Cancel, "S", "SUCCESS");
            request.payment_request_id = Some(id.into());
        }

        fn refund(&mut self, second: i64, payment: &str, id: &str, amount: i64, status: &str, code: &str) {
            let request = self.request(second, Call::Refund, status, code);
            request.payment_id = Some(format!("P-{payment}"));
            request.refund_request_id = Some(id.into());
            request.amount = Some(amount);
        }

        fn inquire_refund(&mut self, second: i64, id: &str, refund_status: &str) {
            let request = self.request(second, Call::InquiryRefund, "S", "SUCCESS");
            request.refund_request_id = Some(id.into());
            request.refund_status = Some(refund_status.into());
        }

        fn payment(&mut self, id: &str, amount: i64, created: i64, expires: i64) -> &mut PaymentFact {
            self.observations.payments.push(PaymentFact {
                payment_id: format!("P-{id}"),
                payment_request_id: id.into(),
                amount,
                created_at: at(created),
                expires_at: at(expires),
                paid_at: None,
                cancelled: false,
                expired: false,
            });
            self.observations.payments.last_mut().unwrap()
        }

        fn refund_fact(
            &mut self,
            payment: &str,
            id: &str,
            amount: i64,
            succeeded: bool,
            completed: Option<i64>,
        ) {
            self.observations.refunds.push(RefundFact {
                refund_id: format!("R-{id}"),
                refund_request_id: id.into(),
                payment_id: format!("P-{payment}"),
                amount,
                succeeded,
                completed_at: completed.map(at),
            });
        }

        fn notification(&mut self, subject: &str, notified: Notified, pending: bool, acks: &[bool]) {
            let attempts = acks
                .iter()
                .enumerate()
                .map(|(index, acknowledged)| AttemptFact {
                    number: index as u32 + 1,
                    at: at(100 + index as i64 * 120),
                    acknowledged: *acknowledged,
                })
                .collect();
            self.observations.notifications.push(NotificationFact {
                subject_id: subject.into(),
                notified,
                pending,
                attempts,
            });
        }

        fn report(&self, case: Case, now: i64) -> CaseReport {
            evaluate(&self.observations, at(now), GRACE)
                .into_iter()
                .find(|report| report.case == case)
                .unwrap()
        }
    }

    fn assert_passed(report: &CaseReport) {
        assert!(report.passed, "{:?}: {:?}", report.case, report.missing);
        assert_eq!(report.missing, None);
        assert!(!report.evidence.is_empty(), "{:?} has evidence", report.case);
    }

    fn assert_open(report: &CaseReport, says: &str) {
        assert!(!report.passed, "{:?} is open", report.case);
        let missing = report.missing.as_deref().unwrap_or_default();
        assert!(missing.contains(says), "{:?}: {missing:?} should say {says:?}", report.case);
    }

    /// Stable names: the CLI's JSON and the developer center's links hold them.
    #[test]
    fn names_are_stable() {
        let cases: Vec<_> = Case::ALL.into_iter().map(Case::as_str).collect();
        assert_eq!(
            cases,
            [
                "payment-1",
                "payment-2",
                "refund-1",
                "refund-2",
                "pay-unknown-retried",
                "pay-timeout",
                "inquiry-unknown-retried",
                "notification-retried",
                "refund-unknown-retried",
                "async-refund-learned",
                "polling-stops-at-expiry",
            ]
        );
        let items: Vec<_> = CheckItem::ALL.into_iter().map(CheckItem::as_str).collect();
        assert_eq!(items, ["cases-passed", "live-key", "live-notify-url", "sftp"]);
        assert_eq!(serde_json::to_value(Case::PayTimeout).unwrap(), "pay-timeout");
    }

    #[test]
    fn nothing_done_leaves_every_case_open_saying_what_to_do() {
        let reports = evaluate(&Observations::default(), at(0), GRACE);
        assert_eq!(reports.len(), Case::ALL.len());
        for report in reports {
            assert!(!report.passed);
            assert!(report.missing.is_some_and(|missing| !missing.is_empty()));
            assert!(report.evidence.is_empty());
        }
    }

    #[test]
    fn payment_1_passes_by_an_inquiry_after_the_payment_or_the_acknowledged_notification() {
        let mut traffic = Traffic::default();
        traffic.pay(0, "a", 1000, "S", "SUCCESS");
        traffic.payment("a", 1000, 0, 600).paid_at = Some(at(10));
        traffic.inquire(5, "a", "S", "SUCCESS", Some("PROCESSING"));
        // Not seen yet: in progress within the grace, open after it.
        assert_open(&traffic.report(Case::Payment1, 20), "has not seen it yet");
        assert_open(&traffic.report(Case::Payment1, 100), "payment a was paid");
        traffic.inquire(12, "a", "S", "SUCCESS", Some("SUCCESS"));
        let report = traffic.report(Case::Payment1, 100);
        assert_passed(&report);
        assert_eq!(report.evidence, [1, 3]);

        let mut notified = Traffic::default();
        notified.pay(0, "b", 1000, "S", "SUCCESS");
        notified.payment("b", 1000, 0, 600).paid_at = Some(at(10));
        notified.notification("P-b", Notified::PaymentPaid, true, &[false]);
        assert_open(&notified.report(Case::Payment1, 500), "payment b");
        notified.observations.notifications[0].attempts[0].acknowledged = true;
        assert_passed(&notified.report(Case::Payment1, 500));
    }

    #[test]
    fn payment_1_is_decided_by_the_latest_payment_and_ignores_magic_amounts() {
        let mut traffic = Traffic::default();
        traffic.pay(0, "a", 1000, "S", "SUCCESS");
        traffic.payment("a", 1000, 0, 600).paid_at = Some(at(10));
        traffic.inquire(12, "a", "S", "SUCCESS", Some("SUCCESS"));
        traffic.pay(100, "magic", NOTIFICATION_RETRIED, "S", "SUCCESS");
        traffic.payment("magic", NOTIFICATION_RETRIED, 100, 600).paid_at = Some(at(110));
        assert_passed(&traffic.report(Case::Payment1, 1000));
        // A later paid payment nobody looked at: in progress (the earlier decides), then open.
        traffic.pay(200, "b", 1000, "S", "SUCCESS");
        traffic.payment("b", 1000, 200, 800).paid_at = Some(at(210));
        assert_passed(&traffic.report(Case::Payment1, 230));
        assert_open(&traffic.report(Case::Payment1, 1000), "payment b was paid");
    }

    #[test]
    fn payment_2_needs_an_inquiry_before_the_cancel() {
        let mut traffic = Traffic::default();
        traffic.pay(0, "a", 1000, "S", "SUCCESS");
        traffic.payment("a", 1000, 0, 600).cancelled = true;
        traffic.cancel(30, "a");
        assert_open(&traffic.report(Case::Payment2, 100), "cancelled without being inquired first");
        traffic.inquire(10, "a", "S", "SUCCESS", Some("PROCESSING"));
        let report = traffic.report(Case::Payment2, 100);
        assert_passed(&report);
        assert_eq!(report.evidence, [1, 2, 3]);
        // A paid payment cancelled (a reversal) is not this case.
        let mut paid = Traffic::default();
        paid.pay(0, "p", 1000, "S", "SUCCESS");
        let payment = paid.payment("p", 1000, 0, 600);
        payment.cancelled = true;
        payment.paid_at = Some(at(5));
        paid.inquire(10, "p", "S", "SUCCESS", Some("SUCCESS"));
        paid.cancel(30, "p");
        assert_open(&paid.report(Case::Payment2, 100), "no unpaid order code cancelled yet");
    }

    #[test]
    fn refund_1_and_refund_2_count_successful_refunds_made_by_requests() {
        let mut traffic = Traffic::default();
        traffic.pay(0, "a", 1000, "S", "SUCCESS");
        traffic.payment("a", 1000, 0, 600).paid_at = Some(at(10));
        traffic.refund(20, "a", "r1", 400, "S", "SUCCESS");
        traffic.refund_fact("a", "r1", 400, true, Some(20));
        assert_open(&traffic.report(Case::Refund1, 100), "no full refund yet");
        assert_open(&traffic.report(Case::Refund2, 100), "has one partial refund");
        traffic.refund(30, "a", "r2", 600, "S", "SUCCESS");
        traffic.refund_fact("a", "r2", 600, true, Some(30));
        let report = traffic.report(Case::Refund2, 100);
        assert_passed(&report);
        assert_eq!(report.evidence, [2, 3]);
        assert_open(&traffic.report(Case::Refund1, 100), "no full refund yet");

        traffic.pay(40, "b", 500, "S", "SUCCESS");
        traffic.payment("b", 500, 40, 600).paid_at = Some(at(45));
        traffic.refund(50, "b", "full", 500, "S", "SUCCESS");
        traffic.refund_fact("b", "full", 500, false, None);
        assert_open(&traffic.report(Case::Refund1, 100), "no full refund yet");
        traffic.observations.refunds[2].succeeded = true;
        traffic.observations.refunds[2].completed_at = Some(at(50));
        assert_passed(&traffic.report(Case::Refund1, 100));
    }

    #[test]
    fn pay_unknown_retried_needs_the_same_payment_request_id() {
        let mut traffic = Traffic::default();
        traffic.pay(0, "u", PAY_UNKNOWN, "U", "UNKNOWN_EXCEPTION");
        assert_open(&traffic.report(Case::PayUnknownRetried, 10), "was not retried");
        assert_open(&traffic.report(Case::PayUnknownRetried, 100), "paymentRequestId u answered U");
        traffic.pay(2, "u", PAY_UNKNOWN, "S", "SUCCESS");
        let report = traffic.report(Case::PayUnknownRetried, 100);
        assert_passed(&report);
        assert_eq!(report.evidence, [1, 2]);

        // Later, a till that retries with a new id: the latest instance decides.
        traffic.pay(200, "v", PAY_UNKNOWN, "U", "UNKNOWN_EXCEPTION");
        traffic.pay(201, "w", PAY_UNKNOWN, "U", "UNKNOWN_EXCEPTION");
        for now in [210, 1000] {
            let report = traffic.report(Case::PayUnknownRetried, now);
            assert_open(&report, "retried with a new paymentRequestId w after v answered U");
            assert_eq!(report.evidence, [3, 4]);
        }
    }

    #[test]
    fn refund_unknown_retried_needs_the_same_refund_request_id() {
        let mut traffic = Traffic::default();
        traffic.refund(0, "a", "r", REFUND_UNKNOWN, "U", "UNKNOWN_EXCEPTION");
        assert_open(&traffic.report(Case::RefundUnknownRetried, 100), "refundRequestId r answered U");
        traffic.refund(1, "a", "r2", REFUND_UNKNOWN, "U", "UNKNOWN_EXCEPTION");
        assert_open(
            &traffic.report(Case::RefundUnknownRetried, 100),
            "retried with a new refundRequestId r2",
        );
        traffic.refund(2, "a", "r2", REFUND_UNKNOWN, "S", "SUCCESS");
        // r2 was retried, but the decision is the latest instance's: r2, retried.
        assert_passed(&traffic.report(Case::RefundUnknownRetried, 100));
    }

    #[test]
    fn pay_timeout_needs_an_inquiry_or_a_retry_after_the_slow_pay() {
        let mut traffic = Traffic::default();
        traffic.pay(0, "slow", PAY_SLOW, "S", "SUCCESS");
        traffic.payment("slow", PAY_SLOW, 0, 600);
        assert_open(&traffic.report(Case::PayTimeout, 10), "neither an inquiry nor a retry");
        traffic.inquire(3, "slow", "S", "SUCCESS", Some("PROCESSING"));
        assert_passed(&traffic.report(Case::PayTimeout, 100));

        let mut retried = Traffic::default();
        retried.pay(0, "slow", PAY_SLOW, "S", "SUCCESS");
        retried.pay(1, "slow", PAY_SLOW, "S", "SUCCESS");
        let report = retried.report(Case::PayTimeout, 100);
        assert_passed(&report);
        assert_eq!(report.evidence, [1, 2]);

        let mut ignored = Traffic::default();
        ignored.pay(0, "slow", PAY_SLOW, "S", "SUCCESS");
        ignored.inquire(1, "other", "S", "SUCCESS", Some("PROCESSING"));
        assert_open(&ignored.report(Case::PayTimeout, 100), "pay slow (amount 9902)");
    }

    #[test]
    fn inquiry_unknown_retried_needs_a_second_inquiry() {
        let mut traffic = Traffic::default();
        traffic.pay(0, "i", INQUIRY_UNKNOWN, "S", "SUCCESS");
        traffic.payment("i", INQUIRY_UNKNOWN, 0, 600);
        traffic.inquire(1, "i", "U", "UNKNOWN_EXCEPTION", None);
        assert_open(&traffic.report(Case::InquiryUnknownRetried, 100), "was not repeated");
        traffic.inquire(2, "i", "S", "SUCCESS", Some("PROCESSING"));
        let report = traffic.report(Case::InquiryUnknownRetried, 100);
        assert_passed(&report);
        assert_eq!(report.evidence, [2, 3]);
    }

    #[test]
    fn notification_retried_needs_a_later_acknowledged_attempt() {
        let mut traffic = Traffic::default();
        traffic.pay(0, "n", NOTIFICATION_RETRIED, "S", "SUCCESS");
        traffic.payment("n", NOTIFICATION_RETRIED, 0, 600).paid_at = Some(at(10));
        assert_open(&traffic.report(Case::NotificationRetried, 100), "has not been sent yet");
        traffic.notification("P-n", Notified::PaymentPaid, true, &[false]);
        assert_open(&traffic.report(Case::NotificationRetried, 100), "acknowledge its next attempt");
        traffic.observations.notifications[0].attempts.push(AttemptFact {
            number: 2,
            at: at(300),
            acknowledged: false,
        });
        assert_open(&traffic.report(Case::NotificationRetried, 400), "sent 2 times and never acknowledged");
        traffic.observations.notifications[0].attempts.push(AttemptFact {
            number: 3,
            at: at(900),
            acknowledged: true,
        });
        let report = traffic.report(Case::NotificationRetried, 1000);
        assert_passed(&report);
        assert_eq!(report.evidence, [1]);
    }

    #[test]
    fn async_refund_learned_by_an_inquiry_after_completion_or_the_notification() {
        let mut traffic = Traffic::default();
        traffic.refund(0, "a", "async", REFUND_ASYNC, "U", "REFUND_IN_PROCESS");
        traffic.refund_fact("a", "async", REFUND_ASYNC, false, None);
        assert_open(&traffic.report(Case::AsyncRefundLearned, 100), "still processing");
        traffic.inquire_refund(5, "async", "PROCESSING");
        traffic.observations.refunds[0].completed_at = Some(at(30));
        assert_open(&traffic.report(Case::AsyncRefundLearned, 40), "has not learned its outcome");
        assert_open(&traffic.report(Case::AsyncRefundLearned, 1000), "refund async completed");
        traffic.inquire_refund(31, "async", "FAIL");
        let report = traffic.report(Case::AsyncRefundLearned, 1000);
        assert_passed(&report);
        assert_eq!(report.evidence, [1, 3]);

        let mut notified = Traffic::default();
        notified.refund(0, "a", "async", REFUND_ASYNC, "U", "REFUND_IN_PROCESS");
        notified.refund_fact("a", "async", REFUND_ASYNC, false, Some(30));
        notified.notification("R-async", Notified::RefundCompleted, false, &[false, true]);
        assert_passed(&notified.report(Case::AsyncRefundLearned, 1000));
    }

    #[test]
    fn polling_stops_at_expiry_counts_inquiries_after_the_grace() {
        let mut traffic = Traffic::default();
        traffic.pay(0, "e", 1000, "S", "SUCCESS");
        traffic.payment("e", 1000, 0, 300).expired = true;
        traffic.inquire(100, "e", "S", "SUCCESS", Some("PROCESSING"));
        traffic.inquire(330, "e", "S", "SUCCESS", Some("FAIL"));
        // Within the grace after expiry, an inquiry is fine, and the case waits.
        assert_open(&traffic.report(Case::PollingStopsAtExpiry, 340), "waiting to see that polling stops");
        let report = traffic.report(Case::PollingStopsAtExpiry, 400);
        assert_passed(&report);
        assert_eq!(report.evidence, [1, 2]);
        for second in [400, 410, 420] {
            traffic.inquire(second, "e", "S", "SUCCESS", Some("FAIL"));
        }
        let report = traffic.report(Case::PollingStopsAtExpiry, 500);
        assert_open(
            &report,
            "your till inquired payment e 3 times after its code expired: stop polling at expireTime",
        );
        assert_eq!(report.evidence, [1, 2, 4, 5, 6]);
        // A code never polled while valid is not an instance.
        let mut unpolled = Traffic::default();
        unpolled.pay(0, "e", 1000, "S", "SUCCESS");
        unpolled.payment("e", 1000, 0, 300).expired = true;
        unpolled.inquire(900, "e", "S", "SUCCESS", Some("FAIL"));
        assert_open(&unpolled.report(Case::PollingStopsAtExpiry, 1000), "no polled code has expired");
    }

    fn entry(api: &str, verified: bool, request: &str, response: &str) -> ApiLogEntry {
        ApiLogEntry {
            id: 7,
            request_id: String::new(),
            client_id: ocpay_core::ids::ClientId::parse("SANDBOX_1").unwrap(),
            at: at(0),
            api: api.into(),
            path: String::new(),
            verified,
            key_version: Some(1),
            agent: None,
            result_status: "S".into(),
            result_code: "SUCCESS".into(),
            http_status: 200,
            latency_micros: 1,
            request_headers: "{}".into(),
            request_body: request.into(),
            response_headers: "{}".into(),
            response_body: response.into(),
            diagnosis: None,
        }
    }

    #[test]
    fn a_request_is_read_from_its_entry() {
        let pay = entry(
            "pay",
            true,
            r#"{"paymentRequestId":"r1","paymentAmount":{"currency":"USD","value":"9901"}}"#,
            r#"{"result":{"resultStatus":"S"},"paymentId":"P1"}"#,
        );
        let request = Request::from_entry(&pay).unwrap();
        assert_eq!(
            (
                request.call,
                request.payment_request_id.as_deref(),
                request.payment_id.as_deref(),
                request.amount
            ),
            (Call::Pay, Some("r1"), Some("P1"), Some(9901))
        );
        // The official Python SDK may send numbers.
        let number = entry("refund", true, r#"{"refundRequestId":"f","refundAmount":{"value":9902}}"#, "{}");
        assert_eq!(Request::from_entry(&number).unwrap().amount, Some(9902));
        let inquiry = entry(
            "inquiryPayment",
            true,
            r#"{"paymentId":"P1"}"#,
            r#"{"paymentStatus":"SUCCESS","paymentRequestId":"r1","paymentAmount":{"value":"5"}}"#,
        );
        let request = Request::from_entry(&inquiry).unwrap();
        assert_eq!(request.payment_status.as_deref(), Some("SUCCESS"));
        assert_eq!(request.payment_request_id.as_deref(), Some("r1"));
        assert_eq!(request.amount, None);
        assert_eq!(Request::from_entry(&entry("pay", false, "{}", "{}")), None, "unverified");
        assert_eq!(Request::from_entry(&entry("registration", true, "{}", "{}")), None);
        let cut = Request::from_entry(&entry("pay", true, "{\"paymentRequestId\":\"r1\" [cut", "")).unwrap();
        assert_eq!(cut.payment_request_id, None);
    }
}
