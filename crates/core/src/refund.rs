//! Refunds: what a `refund` request fixes, the states a refund goes through, and the decision
//! whether a payment may be refunded by an amount (spec §13.10), a pure function of the
//! payment, its earlier refunds and `now`.

use jiff::{SignedDuration, Timestamp};

use crate::ids::{ClientId, PaymentId, RefundId, RefundRequestId};
use crate::money::Money;
use crate::payment::{Payment, PaymentState};
use crate::text::BoundedText;

/// Longest reason a merchant gives for a refund.
pub const REASON_CHARS_MAX: usize = 256;

/// The reason a merchant gives for a refund.
pub type RefundReason = BoundedText<REASON_CHARS_MAX>;

/// Everything fixed when a refund is requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundTerms {
    pub id: RefundId,
    /// The participant that owns the payment (and so the refund).
    pub owner: ClientId,
    pub request_id: RefundRequestId,
    pub payment_id: PaymentId,
    /// In the payment's currency.
    pub amount: Money,
    pub reference_refund_id: Option<String>,
    pub reason: Option<RefundReason>,
    /// Where `notifyRefund` goes; no notification without it.
    pub notify_url: Option<String>,
    /// Whether the merchant asked for an asynchronous refund (`isAsyncRefund`).
    pub async_requested: bool,
    pub created_at: Timestamp,
    /// The ISV that asked for the refund for its owner, if one did.
    pub agent: Option<ClientId>,
}

impl RefundTerms {
    /// Whether a repeated `refund` with this `refundRequestId` asks for the same refund: the
    /// same payment and amount, from the same party (the owner itself, or the same ISV).
    pub fn same_request(&self, payment_id: &PaymentId, amount: Money, agent: Option<&ClientId>) -> bool {
        &self.payment_id == payment_id && self.amount == amount && self.agent.as_ref() == agent
    }
}

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundState {
    /// Accepted; the wallet completes it at `completes_at`.
    Processing {
        completes_at: Timestamp,
    },
    Success {
        refunded_at: Timestamp,
    },
    /// The wallet gave up on it: no money moved, and its amount is refundable again.
    Fail {
        failed_at: Timestamp,
    },
}

impl RefundState {
    pub fn status(self) -> &'static str {
        match self {
            Self::Processing { .. } => "PROCESSING",
            Self::Success { .. } => "SUCCESS",
            Self::Fail { .. } => "FAIL",
        }
    }

    /// When the refund reached its final state, if it has.
    pub fn finished_at(self) -> Option<Timestamp> {
        match self {
            Self::Processing { .. } => None,
            Self::Success { refunded_at } => Some(refunded_at),
            Self::Fail { failed_at } => Some(failed_at),
        }
    }
}

/// A refund: its terms, where it stands, and what the payer's wallet gets back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub terms: RefundTerms,
    pub state: RefundState,
    /// In the wallet's currency, at the payment's original rate.
    pub returned: Money,
}

/// What the wallet allows, set by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundPolicy {
    /// How long after payment a refund is accepted.
    pub window: SignedDuration,
    /// Whether a payment may be refunded more than once (some wallets refuse).
    pub multiple_allowed: bool,
}

/// Why a refund was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefusal {
    #[error("the payment was cancelled")]
    Cancelled,
    #[error("only a paid payment can be refunded")]
    NotPaid,
    #[error("the refund window of this payment has closed")]
    WindowExceeded,
    #[error("this wallet does not accept a second refund of a payment")]
    MultipleNotSupported,
    #[error("refunds would exceed the paid amount; at most {refundable} is left")]
    AmountExceeded { refundable: Money },
    #[error("must be in the payment's currency, {0}")]
    CurrencyMismatch(crate::money::Currency),
}

/// Decides a refund of `amount` against a payment that has `earlier` refunds (spec §13.10;
/// failed ones do not count):
/// only a paid payment, within the window, within what is left to refund, and a second refund
/// only where the wallet allows it. Returns what the payer's wallet gets back: at the
/// payment's original rate, rounded down, and exactly the rest of the charge when the refund
/// completes the payment.
pub fn decide_refund(
    payment: &Payment,
    earlier: &[Refund],
    amount: Money,
    policy: &RefundPolicy,
    now: Timestamp,
) -> Result<Money, RefundRefusal> {
    let earlier: Vec<&Refund> =
        earlier.iter().filter(|refund| !matches!(refund.state, RefundState::Fail { .. })).collect();
    let paid_at = match payment.state {
        PaymentState::Success { paid_at } => paid_at,
        PaymentState::Cancelled { .. } => return Err(RefundRefusal::Cancelled),
        PaymentState::Processing | PaymentState::Fail { .. } => return Err(RefundRefusal::NotPaid),
    };
    let Some(charge) = payment.charge.as_ref() else { return Err(RefundRefusal::NotPaid) };
    let paid = payment.terms.amount;
    if amount.currency() != paid.currency() {
        return Err(RefundRefusal::CurrencyMismatch(paid.currency()));
    }
    if now.duration_since(paid_at) > policy.window {
        return Err(RefundRefusal::WindowExceeded);
    }
    if !earlier.is_empty() && !policy.multiple_allowed {
        return Err(RefundRefusal::MultipleNotSupported);
    }
    let refunded = total(earlier.iter().map(|refund| refund.terms.amount), Money::zero(paid.currency()));
    let refundable = paid.checked_sub(refunded).unwrap_or(Money::zero(paid.currency()));
    if amount.minor() > refundable.minor() {
        return Err(RefundRefusal::AmountExceeded { refundable });
    }
    let returned_before =
        total(earlier.iter().map(|refund| refund.returned), Money::zero(charge.amount.currency()));
    let returned = if amount == refundable {
        charge.amount.checked_sub(returned_before).unwrap_or(Money::zero(charge.amount.currency()))
    } else {
        match &charge.quote {
            Some(quote) => quote.rate.convert_down(amount).unwrap_or(Money::zero(charge.amount.currency())),
            None => amount,
        }
    };
    Ok(returned)
}

/// The sum of amounts; saturating, since the sum of refunds is bounded by a payment anyway.
fn total(amounts: impl Iterator<Item = Money>, zero: Money) -> Money {
    amounts.fold(zero, |sum, amount| sum.checked_add(amount).unwrap_or(Money::new(i64::MAX, zero.currency())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fx::Rate;
    use crate::money::Currency;
    use crate::payer::PayerId;
    use crate::payment::{Charge, FailReason, Quote};
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::parse("USD").unwrap())
    }

    fn sgd(minor: i64) -> Money {
        Money::new(minor, Currency::parse("SGD").unwrap())
    }

    fn paid(quoted: bool) -> Payment {
        let rate = Rate::parse("USD/SGD", "1.3450").unwrap();
        let charge = if quoted {
            Charge {
                payer: PayerId::parse("P").unwrap(),
                amount: sgd(1682),
                quote: Some(Quote { rate, quoted_at: at("2026-01-01T00:00:00Z") }),
            }
        } else {
            Charge { payer: PayerId::parse("P").unwrap(), amount: usd(1250), quote: None }
        };
        Payment {
            terms: crate::payment::tests::terms(),
            state: PaymentState::Success { paid_at: at("2026-01-01T00:00:00Z") },
            charge: Some(charge),
        }
    }

    fn refund(amount: Money, returned: Money) -> Refund {
        Refund {
            terms: RefundTerms {
                id: RefundId::parse("R").unwrap(),
                owner: ClientId::parse("M1").unwrap(),
                request_id: RefundRequestId::parse("RR").unwrap(),
                payment_id: PaymentId::parse("P1").unwrap(),
                amount,
                reference_refund_id: None,
                reason: None,
                notify_url: None,
                async_requested: false,
                created_at: at("2026-01-02T00:00:00Z"),
                agent: None,
            },
            state: RefundState::Success { refunded_at: at("2026-01-02T00:00:00Z") },
            returned,
        }
    }

    fn failed(mut refund: Refund) -> Refund {
        refund.state = RefundState::Fail { failed_at: refund.terms.created_at };
        refund
    }

    #[test]
    fn decisions() {
        let policy = RefundPolicy { window: SignedDuration::from_hours(24 * 365), multiple_allowed: true };
        let once = RefundPolicy { multiple_allowed: false, ..policy };
        let now = at("2026-02-01T00:00:00Z");
        let payment = paid(false);
        let exceeded = Err(RefundRefusal::AmountExceeded { refundable: usd(750) });
        let usd_only = Err(RefundRefusal::CurrencyMismatch(Currency::parse("USD").unwrap()));
        let late = at("2027-01-02T00:00:00Z");
        let half = || vec![refund(usd(500), usd(500))];
        type Decision = Result<Money, RefundRefusal>;
        // (earlier refunds, amount, policy, now, decision)
        let cases: Vec<(Vec<Refund>, Money, &RefundPolicy, Timestamp, Decision)> = vec![
            (vec![], usd(1250), &policy, now, Ok(usd(1250))),
            (half(), usd(750), &policy, now, Ok(usd(750))),
            (half(), usd(751), &policy, now, exceeded),
            (vec![failed(refund(usd(500), usd(500)))], usd(1250), &once, now, Ok(usd(1250))),
            (half(), usd(100), &once, now, Err(RefundRefusal::MultipleNotSupported)),
            (vec![], usd(100), &policy, late, Err(RefundRefusal::WindowExceeded)),
            (vec![], sgd(100), &policy, now, usd_only),
        ];
        for (earlier, amount, policy, now, expected) in cases {
            let decided = decide_refund(&payment, &earlier, amount, policy, now);
            assert_eq!(decided, expected, "{amount} after {} refunds", earlier.len());
        }
        let mut unpaid = paid(false);
        unpaid.state = PaymentState::Processing;
        assert_eq!(decide_refund(&unpaid, &[], usd(1), &policy, now), Err(RefundRefusal::NotPaid));
        unpaid.state = PaymentState::Fail { reason: FailReason::RiskReject, failed_at: now };
        assert_eq!(decide_refund(&unpaid, &[], usd(1), &policy, now), Err(RefundRefusal::NotPaid));
        unpaid.state = PaymentState::Cancelled { cancelled_at: now, paid_at: None };
        assert_eq!(decide_refund(&unpaid, &[], usd(1), &policy, now), Err(RefundRefusal::Cancelled));
    }

    /// What a step of a random refund history does.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// Refund this share (per mille) of what is left to refund, completed at once.
        Refund(u16),
        /// The same, left processing.
        RefundLater(u16),
        /// The processing refund at this index (modulo their number) completes...
        Succeed(usize),
        /// ...or fails, which makes its amount refundable again.
        Fail(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1u16..=1000).prop_map(Step::Refund),
            (1u16..=1000).prop_map(Step::RefundLater),
            any::<usize>().prop_map(Step::Succeed),
            any::<usize>().prop_map(Step::Fail),
        ]
    }

    const CODES: [&str; 6] = ["JPY", "KRW", "USD", "SGD", "KWD", "BHD"];

    /// What refunds that have not failed have returned so far, in minor units.
    fn returned_so_far(refunds: &[Refund]) -> i64 {
        refunds
            .iter()
            .filter(|refund| !matches!(refund.state, RefundState::Fail { .. }))
            .map(|refund| refund.returned.minor())
            .sum()
    }

    /// Refunds a payment of `amount`, charged at `rate`, through `steps`, then refunds the rest.
    fn refund_history(rate: Rate, amount: Money, steps: &[Step]) -> Result<(), TestCaseError> {
        let now = at("2026-02-01T00:00:00Z");
        let mut payment = paid(true);
        let paid = amount;
        payment.terms.amount = paid;
        let charge = Charge::for_payment(PayerId::parse("P").unwrap(), paid, rate.quote(), Some(rate), now);
        // A charge out of range is refused before anything is paid.
        prop_assume!(charge.is_ok());
        let charge = charge.unwrap();
        let charged = charge.amount;
        payment.charge = Some(charge);
        let policy = RefundPolicy { window: SignedDuration::from_hours(24 * 365), multiple_allowed: true };
        let success = RefundState::Success { refunded_at: now };
        let processing = RefundState::Processing { completes_at: now };
        let mut refunds: Vec<Refund> = Vec::new();
        let refundable = |refunds: &[Refund]| -> i64 {
            let counted = refunds.iter().filter(|refund| !matches!(refund.state, RefundState::Fail { .. }));
            paid.minor() - counted.map(|refund| refund.terms.amount.minor()).sum::<i64>()
        };
        let ask = |refunds: &mut Vec<Refund>, minor: i64, state: RefundState| -> Result<(), TestCaseError> {
            let amount = Money::new(minor, paid.currency());
            let returned = decide_refund(&payment, refunds, amount, &policy, now);
            prop_assert!(returned.is_ok(), "a refund within what is left is accepted: {returned:?}");
            let returned = returned.unwrap();
            prop_assert_eq!(returned.currency(), charged.currency());
            prop_assert!(returned.minor() >= 0, "a refund never takes money from the wallet");
            refunds.push(Refund { state, ..refund(amount, returned) });
            Ok(())
        };
        for step in steps {
            let left = refundable(&refunds);
            match *step {
                Step::Refund(share) | Step::RefundLater(share) if left > 0 => {
                    let minor = i64::try_from(i128::from(left) * i128::from(share) / 1000).unwrap().max(1);
                    let state = if matches!(step, Step::Refund(_)) { success } else { processing };
                    ask(&mut refunds, minor, state)?;
                }
                Step::Succeed(index) | Step::Fail(index) => {
                    let pending: Vec<usize> =
                        (0..refunds.len()).filter(|&n| refunds[n].state == processing).collect();
                    if let Some(&n) = pending.get(index % pending.len().max(1)) {
                        refunds[n].state = match step {
                            Step::Fail(_) => RefundState::Fail { failed_at: now },
                            _ => success,
                        };
                    }
                }
                _ => {}
            }
            let returned = returned_so_far(&refunds);
            prop_assert!(returned <= charged.minor(), "returned {returned} of {charged:?} charged");
        }
        let left = refundable(&refunds);
        if left > 0 {
            ask(&mut refunds, left, success)?;
        }
        let returned = returned_so_far(&refunds);
        prop_assert_eq!(returned, charged.minor(), "{:?} charged as {:?}: {:?}", paid, charged, refunds);
        let extra = decide_refund(&payment, &refunds, Money::new(1, paid.currency()), &policy, now);
        let nothing_left = RefundRefusal::AmountExceeded { refundable: Money::zero(paid.currency()) };
        prop_assert_eq!(extra, Err(nothing_left));
        Ok(())
    }

    proptest! {
        /// However a payment charged in another currency is refunded (in parts, some failing
        /// and refunded again), what comes back to the wallet is never more than was charged
        /// and, once the whole amount is refunded, exactly what was charged.
        #[test]
        fn refunds_of_a_converted_payment_return_exactly_the_charge(
            base in 0..CODES.len(),
            offset in 1..CODES.len(),
            mantissa in (0u32..=9).prop_flat_map(|digits| 1u64..=10u64.pow(digits)),
            scale in 0usize..=8,
            paid_minor in (0u32..=10).prop_flat_map(|digits| 1i64..=10i64.pow(digits)),
            steps in proptest::collection::vec(step(), 0..24),
        ) {
            let (base, quote) = (CODES[base], CODES[(base + offset) % CODES.len()]);
            let digits = format!("{mantissa:0>width$}", width = scale + 1);
            let (whole, fraction) = digits.split_at(digits.len() - scale);
            let price = if fraction.is_empty() { whole.to_owned() } else { format!("{whole}.{fraction}") };
            let rate = Rate::parse(&format!("{base}/{quote}"), &price).unwrap();
            refund_history(rate, Money::new(paid_minor, rate.base()), &steps)?;
        }
    }

    #[test]
    fn partial_refunds_never_return_more_than_was_charged() {
        let policy = RefundPolicy { window: SignedDuration::from_hours(24 * 365), multiple_allowed: true };
        let now = at("2026-02-01T00:00:00Z");
        let payment = paid(true);
        let mut earlier = Vec::new();
        // 12.50 USD charged as 16.82 SGD, refunded in three parts.
        for (part, expected) in [(417, sgd(560)), (417, sgd(560)), (416, sgd(562))] {
            let returned = decide_refund(&payment, &earlier, usd(part), &policy, now).unwrap();
            assert_eq!(returned, expected, "refunding {part}");
            earlier.push(refund(usd(part), returned));
        }
        let total: i64 = earlier.iter().map(|refund| refund.returned.minor()).sum();
        assert_eq!(total, 1682, "all of the charge comes back, not a cent more");
    }
}
