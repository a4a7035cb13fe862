//! Payments: what a `pay` request fixes, the states a payment goes through, and the
//! decisions taken on it (expiry, cancel), each a pure function of the payment and `now`.

use jiff::{SignedDuration, Timestamp, tz};

use crate::fx::Rate;
use crate::ids::{ClientId, CodeToken, PaymentId, PaymentRequestId};
use crate::money::{Currency, Money};
use crate::participant::Environment;
use crate::payer::PayerId;
use crate::text::{BoundedText, Mcc, Name, Region};

/// Longest `extendInfo` a merchant attaches to a payment.
pub const EXTEND_INFO_CHARS_MAX: usize = 2048;

/// What a merchant attaches to a payment and gets back as it gave it.
pub type ExtendInfo = BoundedText<EXTEND_INFO_CHARS_MAX>;

/// The store a payment is made in, as the merchant describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRef {
    pub reference_store_id: String,
    pub name: Name,
    pub mcc: Option<Mcc>,
}

/// The merchant a payment is for: the participant itself, or an acquirer's secondary merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantRef {
    pub reference_merchant_id: String,
    pub name: Name,
    pub mcc: Mcc,
    pub display_name: Option<Name>,
    pub store: StoreRef,
}

/// The order a payment pays for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub reference_order_id: Option<String>,
    pub description: Name,
    pub amount: Money,
    pub merchant: MerchantRef,
}

/// Everything fixed when a payment is created; none of it changes afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentTerms {
    pub id: PaymentId,
    /// The participant that created the payment and alone may see it.
    pub owner: ClientId,
    pub request_id: PaymentRequestId,
    pub amount: Money,
    pub order: Order,
    pub code_token: CodeToken,
    /// Where the payment's notifications go: the request's URL, or the participant's default.
    pub notify_url: String,
    pub redirect_url: Option<String>,
    pub settlement_currency: Option<Currency>,
    pub merchant_region: Option<Region>,
    pub extend_info: Option<ExtendInfo>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The ISV that created the payment for its owner, if one did.
    pub agent: Option<ClientId>,
}

impl PaymentTerms {
    /// Sandbox or live: a payment lives where its owner does.
    pub fn environment(&self) -> Environment {
        Environment::of_client_id(&self.owner)
    }

    /// Whether a repeated `pay` with this payment's `paymentRequestId` asks for the same payment.
    ///
    /// As Alipay does, only the fields that decide what is paid are compared: the amounts,
    /// the merchant's order id, and the merchant and store. A repeat that differs in these
    /// is refused (`REPEAT_REQ_INCONSISTENT`); one that differs only in, say, its notify URL
    /// gets the original payment back unchanged. The request must also come from the same
    /// party: the merchant itself, or the same ISV acting for it, so that one never receives
    /// a payment the other made.
    pub fn same_request(&self, amount: Money, order: &Order, agent: Option<&ClientId>) -> bool {
        self.agent.as_ref() == agent
            && self.amount == amount
            && self.order.amount == order.amount
            && self.order.reference_order_id == order.reference_order_id
            && self.order.merchant.reference_merchant_id == order.merchant.reference_merchant_id
            && self.order.merchant.store.reference_store_id == order.merchant.store.reference_store_id
    }
}

crate::named_enum! {
    /// Why a payment ended in `FAIL`. The stable names are also the AMS `paymentResultCode`s.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum FailReason {
        /// The code expired before anyone paid.
        OrderIsClosed = "ORDER_IS_CLOSED",
        UserBalanceNotEnough = "USER_BALANCE_NOT_ENOUGH",
        RiskReject = "RISK_REJECT",
        UserKycNotQualified = "USER_KYC_NOT_QUALIFIED",
    }
}

/// Where a payment stands. `Processing` is the only state that is not final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    /// The order code is out; nobody has paid yet.
    Processing,
    Success {
        paid_at: Timestamp,
    },
    Fail {
        reason: FailReason,
        failed_at: Timestamp,
    },
    /// Cancelled by the merchant; `paid_at` is set when a paid payment was reversed.
    Cancelled {
        cancelled_at: Timestamp,
        paid_at: Option<Timestamp>,
    },
}

crate::named_enum! {
    /// The four AMS payment statuses.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum PaymentStatus {
        Processing = "PROCESSING",
        Success = "SUCCESS",
        Fail = "FAIL",
        Cancelled = "CANCELLED",
    }
}

impl PaymentState {
    pub fn status(self) -> PaymentStatus {
        match self {
            Self::Processing => PaymentStatus::Processing,
            Self::Success { .. } => PaymentStatus::Success,
            Self::Fail { .. } => PaymentStatus::Fail,
            Self::Cancelled { .. } => PaymentStatus::Cancelled,
        }
    }

    pub fn paid_at(self) -> Option<Timestamp> {
        match self {
            Self::Success { paid_at } => Some(paid_at),
            Self::Cancelled { paid_at, .. } => paid_at,
            Self::Processing | Self::Fail { .. } => None,
        }
    }
}

/// The rate a cross-currency payment was charged at, and when it was quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub rate: Rate,
    pub quoted_at: Timestamp,
}

/// Who paid and what their wallet was charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub payer: PayerId,
    /// In the wallet's currency; equal to the payment amount when no conversion was needed.
    pub amount: Money,
    /// Present when the wallet's currency differs from the payment's.
    pub quote: Option<Quote>,
}

impl Charge {
    /// What a payer with a wallet in `wallet_currency` is charged for `amount`: the same
    /// amount, or the amount converted at `rate` (rounded up; see [`crate::fx`]).
    pub fn for_payment(
        payer: PayerId,
        amount: Money,
        wallet_currency: Currency,
        rate: Option<Rate>,
        now: Timestamp,
    ) -> Result<Charge, ChargeError> {
        if wallet_currency == amount.currency() {
            return Ok(Charge { payer, amount, quote: None });
        }
        let rate = rate
            .filter(|rate| rate.base() == amount.currency() && rate.quote() == wallet_currency)
            .ok_or(ChargeError::NoRate { from: amount.currency(), to: wallet_currency })?;
        let converted = rate.convert(amount).map_err(|_| ChargeError::OutOfRange)?;
        Ok(Charge { payer, amount: converted, quote: Some(Quote { rate, quoted_at: now }) })
    }
}

/// Why a charge could not be worked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    #[error("no exchange rate from {from} to {to} is configured")]
    NoRate { from: Currency, to: Currency },
    #[error("the converted amount is out of range")]
    OutOfRange,
}

/// A payment: its fixed terms, where it stands, and (once paid) who paid it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub terms: PaymentTerms,
    pub state: PaymentState,
    /// Set exactly when the payment was paid: in `SUCCESS`, or `CANCELLED` after a reversal.
    pub charge: Option<Charge>,
}

/// Why a payer cannot pay (or fail) a payment now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotPayable {
    #[error("the payment has been paid already")]
    AlreadyPaid,
    #[error("the merchant cancelled the payment")]
    Cancelled,
    #[error("the payment has failed")]
    Failed,
    #[error("the order code has expired")]
    Expired,
}

impl Payment {
    /// Whether a payer may still pay: processing, and the code has not expired.
    ///
    /// Expiry is judged here against `now`, not by whether the expiry job has run yet.
    pub fn check_payable(&self, now: Timestamp) -> Result<(), NotPayable> {
        match self.state {
            PaymentState::Success { .. } => Err(NotPayable::AlreadyPaid),
            PaymentState::Cancelled { .. } => Err(NotPayable::Cancelled),
            PaymentState::Fail { reason: FailReason::OrderIsClosed, .. } => Err(NotPayable::Expired),
            PaymentState::Fail { .. } => Err(NotPayable::Failed),
            PaymentState::Processing if now >= self.terms.expires_at => Err(NotPayable::Expired),
            PaymentState::Processing => Ok(()),
        }
    }

    /// Whether the expiry job should close this payment at `now`.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        self.state == PaymentState::Processing && now >= self.terms.expires_at
    }

    /// The state as of `now`: an unpaid payment whose code has expired is closed
    /// (`FAIL` / `ORDER_IS_CLOSED` at its expiry) even before the expiry job has saved it.
    pub fn effective_state(&self, now: Timestamp) -> PaymentState {
        if self.is_overdue(now) { self.closed_state() } else { self.state }
    }

    /// The state an unpaid payment ends in when its code expires.
    pub fn closed_state(&self) -> PaymentState {
        PaymentState::Fail { reason: FailReason::OrderIsClosed, failed_at: self.terms.expires_at }
    }
}

/// Whether reaching `state` is notified to the merchant (spec §13.7): every final state the
/// merchant did not cause itself. A merchant's own cancel is not notified.
pub fn is_notified(state: PaymentState) -> bool {
    matches!(state, PaymentState::Success { .. } | PaymentState::Fail { .. })
}

/// How long an order code stays payable when the request does not say, and at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    pub default: SignedDuration,
    pub max: SignedDuration,
}

/// Why a requested `paymentExpiryTime` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    #[error("must be later than the time of the request")]
    NotInFuture,
    #[error("must be at most {max_seconds} seconds after the time of the request")]
    TooFar { max_seconds: i64 },
}

impl ExpiryPolicy {
    /// The instant a payment created at `created_at` stops being payable.
    pub fn resolve(
        &self,
        created_at: Timestamp,
        requested: Option<Timestamp>,
    ) -> Result<Timestamp, ExpiryError> {
        let Some(requested) = requested else {
            return Ok(created_at.saturating_add(self.default).unwrap_or(Timestamp::MAX));
        };
        if requested <= created_at {
            return Err(ExpiryError::NotInFuture);
        }
        if requested.duration_since(created_at) > self.max {
            return Err(ExpiryError::TooFar { max_seconds: self.max.as_secs() });
        }
        Ok(requested)
    }
}

/// Until when a paid payment may still be cancelled (reversed in full) instead of refunded:
/// by default until 00:15 in UTC+8 on the day after the payment, as Alipay's contracts say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelWindow {
    /// Offset of the time zone the cut-off is reckoned in, in seconds east of UTC.
    pub zone_offset_seconds: i32,
    /// Days after the payment's local date on which the window closes.
    pub days_after_payment: i32,
    /// Time of day at which it closes, in minutes after local midnight.
    pub closes_at_minute_of_day: i32,
}

impl Default for CancelWindow {
    fn default() -> Self {
        CancelWindow { zone_offset_seconds: 8 * 3600, days_after_payment: 1, closes_at_minute_of_day: 15 }
    }
}

impl CancelWindow {
    /// The instant the window closes for a payment paid at `paid_at`.
    pub fn closes_at(&self, paid_at: Timestamp) -> Timestamp {
        let offset = tz::Offset::from_seconds(self.zone_offset_seconds).unwrap_or(tz::Offset::UTC);
        let local_date = offset.to_datetime(paid_at).date();
        let minutes = i64::from(self.closes_at_minute_of_day.clamp(0, 24 * 60));
        let closes = local_date
            .checked_add(jiff::Span::new().days(i64::from(self.days_after_payment)))
            .ok()
            .and_then(|date| offset.to_timestamp(date.to_datetime(jiff::civil::Time::midnight())).ok())
            .and_then(|midnight| midnight.checked_add(SignedDuration::from_mins(minutes)).ok());
        closes.unwrap_or(Timestamp::MAX)
    }
}

/// What a cancel does to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelDecision {
    /// An unpaid payment closes; nobody can pay it any more.
    Close,
    /// A paid payment inside the cancel window is reversed in full to the payer.
    Reverse,
    /// The code expired unpaid and the expiry job has not closed it yet: it closes as
    /// expired (`FAIL` / `ORDER_IS_CLOSED`), and cancelling a failed payment changes nothing more.
    Expire,
    /// Already cancelled, or already failed: answer success and change nothing.
    Unchanged,
}

/// Why a cancel was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CancelRefusal {
    #[error("the cancel window of this payment has closed; refund it instead")]
    WindowExceeded,
    #[error("the payment has been refunded and can no longer be cancelled")]
    Refunded,
}

/// Decides a cancel (spec §13.9): processing closes, paid reverses within the window,
/// failed and cancelled stay as they are, and a refunded payment cannot be cancelled.
pub fn decide_cancel(
    payment: &Payment,
    has_refunds: bool,
    window: &CancelWindow,
    now: Timestamp,
) -> Result<CancelDecision, CancelRefusal> {
    match payment.state {
        PaymentState::Processing if payment.is_overdue(now) => Ok(CancelDecision::Expire),
        PaymentState::Processing => Ok(CancelDecision::Close),
        PaymentState::Fail { .. } | PaymentState::Cancelled { .. } => Ok(CancelDecision::Unchanged),
        PaymentState::Success { .. } if has_refunds => Err(CancelRefusal::Refunded),
        PaymentState::Success { paid_at } if now < window.closes_at(paid_at) => Ok(CancelDecision::Reverse),
        PaymentState::Success { .. } => Err(CancelRefusal::WindowExceeded),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn expiry_policy() {
        let policy =
            ExpiryPolicy { default: SignedDuration::from_mins(15), max: SignedDuration::from_mins(30) };
        let created = at("2026-01-01T00:00:00Z");
        let cases: &[(Option<&str>, Result<&str, ExpiryError>)] = &[
            (None, Ok("2026-01-01T00:15:00Z")),
            (Some("2026-01-01T00:30:00Z"), Ok("2026-01-01T00:30:00Z")),
            (Some("2026-01-01T00:30:01Z"), Err(ExpiryError::TooFar { max_seconds: 1800 })),
            (Some("2026-01-01T00:00:00Z"), Err(ExpiryError::NotInFuture)),
            (Some("2025-12-31T23:00:00Z"), Err(ExpiryError::NotInFuture)),
        ];
        for (requested, expected) in cases {
            let resolved = policy.resolve(created, requested.map(at));
            assert_eq!(resolved, expected.clone().map(at), "requested {requested:?}");
        }
    }

    #[test]
    fn cancel_window_closes_at_quarter_past_midnight_utc8_next_day() {
        let window = CancelWindow::default();
        let cases = [
            // 10:00 UTC is 18:00 in UTC+8; the window closes at 00:15 UTC+8 the next day.
            ("2026-03-01T10:00:00Z", "2026-03-01T16:15:00Z"),
            // 16:30 UTC is already the next local day (00:30 on 2 March).
            ("2026-03-01T16:30:00Z", "2026-03-02T16:15:00Z"),
        ];
        for (paid, closes) in cases {
            assert_eq!(window.closes_at(at(paid)), at(closes), "paid at {paid}");
        }
    }

    #[test]
    fn cancel_decisions() {
        let window = CancelWindow::default();
        let paid_at = at("2026-03-01T10:00:00Z");
        let before = at("2026-03-01T16:14:59Z");
        let after = at("2026-03-01T16:15:00Z");
        let success = PaymentState::Success { paid_at };
        let failed = PaymentState::Fail { reason: FailReason::OrderIsClosed, failed_at: paid_at };
        let cancelled = PaymentState::Cancelled { cancelled_at: paid_at, paid_at: None };
        let mut unpaid = terms();
        unpaid.expires_at = at("2026-03-02T00:00:00Z");
        let payment = |state| Payment { terms: unpaid.clone(), state, charge: None };
        let expired = at("2026-03-02T00:00:00Z");
        let cases = [
            (PaymentState::Processing, false, before, Ok(CancelDecision::Close)),
            (PaymentState::Processing, false, expired, Ok(CancelDecision::Expire)),
            (failed, false, before, Ok(CancelDecision::Unchanged)),
            (cancelled, false, after, Ok(CancelDecision::Unchanged)),
            (success, false, before, Ok(CancelDecision::Reverse)),
            (success, false, after, Err(CancelRefusal::WindowExceeded)),
            (success, true, before, Err(CancelRefusal::Refunded)),
        ];
        for (state, has_refunds, now, expected) in cases {
            let decided = decide_cancel(&payment(state), has_refunds, &window, now);
            assert_eq!(decided, expected, "{state:?} at {now}");
        }
    }

    #[test]
    fn payability() {
        let payment = |state| Payment { terms: terms(), state, charge: None };
        let before = at("2026-01-01T00:14:59Z");
        let after = at("2026-01-01T00:15:00Z");
        assert_eq!(payment(PaymentState::Processing).check_payable(before), Ok(()));
        assert_eq!(payment(PaymentState::Processing).check_payable(after), Err(NotPayable::Expired));
        assert!(payment(PaymentState::Processing).is_overdue(after));
        let closed_state = PaymentState::Fail { reason: FailReason::OrderIsClosed, failed_at: after };
        assert_eq!(payment(PaymentState::Processing).effective_state(after), closed_state);
        assert_eq!(payment(PaymentState::Processing).effective_state(before), PaymentState::Processing);
        assert!(!payment(PaymentState::Processing).is_overdue(before));
        let paid = PaymentState::Success { paid_at: before };
        assert_eq!(payment(paid).check_payable(before), Err(NotPayable::AlreadyPaid));
        let cancelled = PaymentState::Cancelled { cancelled_at: before, paid_at: None };
        assert_eq!(payment(cancelled).check_payable(before), Err(NotPayable::Cancelled));
        let closed = PaymentState::Fail { reason: FailReason::OrderIsClosed, failed_at: after };
        assert_eq!(payment(closed).check_payable(before), Err(NotPayable::Expired));
        assert!(is_notified(paid) && is_notified(closed) && !is_notified(cancelled));
    }

    #[test]
    fn repeated_requests_compare_what_decides_the_payment() {
        let terms = terms();
        assert!(terms.same_request(terms.amount, &terms.order, None));
        let mut order = terms.order.clone();
        order.description = "another description".parse().unwrap();
        assert!(
            terms.same_request(terms.amount, &order, None),
            "the description does not decide the payment"
        );
        order.merchant.store.reference_store_id = "S2".into();
        assert!(!terms.same_request(terms.amount, &order, None));
        let more = Money::new(terms.amount.minor() + 1, terms.amount.currency());
        assert!(!terms.same_request(more, &terms.order, None));
        let isv = ClientId::parse("ISV1").unwrap();
        assert!(
            !terms.same_request(terms.amount, &terms.order, Some(&isv)),
            "an ISV never gets the merchant's"
        );
        let by_isv = PaymentTerms { agent: Some(isv.clone()), ..terms.clone() };
        assert!(by_isv.same_request(terms.amount, &terms.order, Some(&isv)));
        assert!(!by_isv.same_request(terms.amount, &terms.order, None), "nor the merchant the ISV's");
    }

    #[test]
    fn charges_convert_only_across_currencies() {
        let usd = Currency::parse("USD").unwrap();
        let sgd = Currency::parse("SGD").unwrap();
        let payer = PayerId::parse("P1").unwrap();
        let amount = Money::new(1250, usd);
        let now = at("2026-01-01T00:00:00Z");
        let same = Charge::for_payment(payer.clone(), amount, usd, None, now).unwrap();
        assert_eq!((same.amount, same.quote), (amount, None));
        let rate = Rate::parse("USD/SGD", "1.3450").unwrap();
        let converted = Charge::for_payment(payer.clone(), amount, sgd, Some(rate), now).unwrap();
        assert_eq!(converted.amount, Money::new(1682, sgd));
        assert_eq!(converted.quote.unwrap().rate, rate);
        let missing = Charge::for_payment(payer, amount, sgd, None, now);
        assert_eq!(missing, Err(ChargeError::NoRate { from: usd, to: sgd }));
    }

    /// A payment's terms for the tests of this crate.
    pub(crate) fn terms() -> PaymentTerms {
        let usd = Currency::parse("USD").unwrap();
        PaymentTerms {
            id: PaymentId::parse("P1").unwrap(),
            owner: ClientId::parse("M1").unwrap(),
            request_id: PaymentRequestId::parse("R1").unwrap(),
            amount: Money::new(1250, usd),
            order: Order {
                reference_order_id: Some("O1".into()),
                description: "Coffee".parse().unwrap(),
                amount: Money::new(1250, usd),
                merchant: MerchantRef {
                    reference_merchant_id: "M1".into(),
                    name: "Cafe".parse().unwrap(),
                    mcc: Mcc::parse("5812").unwrap(),
                    display_name: None,
                    store: StoreRef {
                        reference_store_id: "S1".into(),
                        name: "Main".parse().unwrap(),
                        mcc: None,
                    },
                },
            },
            code_token: CodeToken::parse("T1").unwrap(),
            notify_url: "https://merchant.example/notify".into(),
            redirect_url: None,
            settlement_currency: None,
            merchant_region: None,
            extend_info: None,
            created_at: at("2026-01-01T00:00:00Z"),
            expires_at: at("2026-01-01T00:15:00Z"),
            agent: None,
        }
    }

    #[test]
    fn names_round_trip() {
        for reason in FailReason::ALL {
            assert_eq!(FailReason::parse(reason.as_str()), Some(reason));
        }
        for status in ["PROCESSING", "SUCCESS", "FAIL", "CANCELLED"] {
            assert_eq!(PaymentStatus::parse(status).map(PaymentStatus::as_str), Some(status));
        }
    }
}
