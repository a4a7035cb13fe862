//! What the platform charges a merchant for a payment, and when a day's transactions settle.
//!
//! One rounding rule everywhere: [`div_half_up`], half away from zero, in integer arithmetic.
//! A fee is fixed when its payment succeeds, from the schedule in force then; a refund returns
//! its share of it ([`refund_share`]), worked out on the running total so that the refund that
//! completes a payment returns exactly what is left.

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::money::{Currency, Money, MoneyError};

/// Basis points in a whole: 10,000 bps = 100 %.
pub const BPS_WHOLE: u32 = 10_000;

/// `numerator / denominator` rounded half away from zero; `denominator` must be positive.
pub fn div_half_up(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if remainder.abs() * 2 >= denominator { quotient + numerator.signum() } else { quotient }
}

/// `amount × bps / 10,000`, rounded by [`div_half_up`].
fn of_bps(amount: i64, bps: u32) -> Result<i64, MoneyError> {
    let value = div_half_up(i128::from(amount) * i128::from(bps), i128::from(BPS_WHOLE));
    i64::try_from(value).map_err(|_| MoneyError::Overflow)
}

/// A participant's fee schedule: a rate on the amount, a fixed fee in some currencies, and a tax
/// on the fee.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeeSchedule {
    /// The rate on the payment amount, in basis points (at most 10,000).
    pub rate_bps: u32,
    /// A fixed fee per payment, in minor units of its currency; none for other currencies.
    pub fixed: BTreeMap<Currency, i64>,
    /// The tax on the fee, in basis points of the fee (at most 10,000).
    pub tax_rate_bps: u32,
}

/// A fee and the tax on it, in the payment's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fee {
    pub fee: Money,
    pub tax: Money,
}

impl Fee {
    pub fn zero(currency: Currency) -> Fee {
        Fee { fee: Money::zero(currency), tax: Money::zero(currency) }
    }

    /// Fee and tax together: what leaves the merchant's pending balance.
    pub fn total(&self) -> Result<Money, MoneyError> {
        self.fee.checked_add(self.tax)
    }
}

/// Why a fee schedule cannot be one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeError {
    #[error("{0} must be from 0 to 10000 basis points")]
    Bps(&'static str),
    #[error("a fixed fee cannot be negative")]
    NegativeFixed,
    #[error("fixed fees are written as CURRENCY:MINOR pairs separated by spaces, such as USD:30 SGD:40")]
    FixedText,
}

impl FeeSchedule {
    /// A schedule, refused when a rate is above 100 % or a fixed fee is negative.
    pub fn new(
        rate_bps: u32,
        fixed: BTreeMap<Currency, i64>,
        tax_rate_bps: u32,
    ) -> Result<FeeSchedule, FeeError> {
        if rate_bps > BPS_WHOLE {
            return Err(FeeError::Bps("the fee rate"));
        }
        if tax_rate_bps > BPS_WHOLE {
            return Err(FeeError::Bps("the tax rate"));
        }
        if fixed.values().any(|minor| *minor < 0) {
            return Err(FeeError::NegativeFixed);
        }
        Ok(FeeSchedule { rate_bps, fixed, tax_rate_bps })
    }

    /// The fee of a payment of `amount`: the rate's share of it, rounded half up, plus the
    /// fixed fee of its currency; the tax is the tax rate's share of that fee, rounded half up.
    pub fn fee_for(&self, amount: Money) -> Result<Fee, MoneyError> {
        let currency = amount.currency();
        let fixed = self.fixed.get(&currency).copied().unwrap_or(0);
        let fee = of_bps(amount.minor(), self.rate_bps)?.checked_add(fixed).ok_or(MoneyError::Overflow)?;
        let tax = of_bps(fee, self.tax_rate_bps)?;
        Ok(Fee { fee: Money::new(fee, currency), tax: Money::new(tax, currency) })
    }

    /// The fixed fees as stored: `USD:30 SGD:40` (minor units), in currency order.
    pub fn fixed_text(&self) -> String {
        let pairs: Vec<String> =
            self.fixed.iter().map(|(currency, minor)| format!("{}:{minor}", currency.code())).collect();
        pairs.join(" ")
    }

    /// Reads [`FeeSchedule::fixed_text`] back.
    pub fn parse_fixed(text: &str) -> Result<BTreeMap<Currency, i64>, FeeError> {
        let mut fixed = BTreeMap::new();
        for pair in text.split_whitespace() {
            let (code, minor) = pair.split_once(':').ok_or(FeeError::FixedText)?;
            let currency = Currency::parse(code).map_err(|_| FeeError::FixedText)?;
            let minor: i64 = minor.parse().map_err(|_| FeeError::FixedText)?;
            if minor < 0 {
                return Err(FeeError::NegativeFixed);
            }
            fixed.insert(currency, minor);
        }
        Ok(fixed)
    }
}

crate::named_enum! {
    /// What a refund does with the fee of its payment.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum FeeRefund {
        /// Returns the refunded share of the fee and its tax.
        ProRata = "pro_rata",
        /// Keeps the whole fee.
        None = "none",
    }
}

/// What a refund returns of its payment's fee: the share of the fee that the refunds so far
/// (this one included) make of the paid amount, less what earlier refunds returned. Worked out
/// on running totals, so the refund that completes the payment returns exactly the rest.
pub fn refund_share(
    fee: Fee,
    paid: Money,
    refunded_before: Money,
    refunded_now: Money,
    returned_before: Fee,
) -> Result<Fee, MoneyError> {
    let refunded_after = refunded_before.checked_add(refunded_now)?;
    if paid.minor() <= 0 {
        return Ok(Fee::zero(fee.fee.currency()));
    }
    let share = |total: Money, before: Money| -> Result<Money, MoneyError> {
        let after = div_half_up(
            i128::from(total.minor()) * i128::from(refunded_after.minor()),
            i128::from(paid.minor()),
        );
        let after = i64::try_from(after).map_err(|_| MoneyError::Overflow)?;
        // Never more than is left, whatever the rounding did before.
        let left = total.minor().saturating_sub(before.minor());
        Ok(Money::new(after.saturating_sub(before.minor()).clamp(0, left.max(0)), total.currency()))
    };
    Ok(Fee { fee: share(fee.fee, returned_before.fee)?, tax: share(fee.tax, returned_before.tax)? })
}

/// The platform's fee rules: the schedule of participants without one of their own, and what
/// refunds do with fees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeRules {
    pub default: FeeSchedule,
    pub refund: FeeRefund,
}

impl Default for FeeRules {
    /// No fee; refunds return their share of any fee.
    fn default() -> FeeRules {
        FeeRules { default: FeeSchedule::default(), refund: FeeRefund::ProRata }
    }
}

/// `amount` in the rate's quote currency, converted by its magnitude and rounded down, with its
/// sign kept: a payment and its full refund convert to opposite amounts. Without a rate the
/// amount is already in the settlement currency.
pub fn convert_signed(amount: Money, rate: Option<&crate::fx::Rate>) -> Result<Money, crate::fx::FxError> {
    let Some(rate) = rate else { return Ok(amount) };
    let magnitude = Money::new(amount.minor().checked_abs().ok_or(MoneyError::Overflow)?, amount.currency());
    let converted = rate.convert_down(magnitude)?;
    if amount.minor() < 0 { Ok(converted.checked_neg()?) } else { Ok(converted) }
}

/// When a day's transactions settle: the day ends at a cutoff time in a time zone, and its
/// batch settles `delay_days` later.
///
/// Settlement day `D` runs from `D` at the cutoff time to `D + 1` at the cutoff time, in the
/// zone: with the default cutoff of 00:00 it is the calendar day `D` there.
#[derive(Debug, Clone, PartialEq)]
pub struct SettlementCycle {
    pub cutoff: Time,
    pub zone: TimeZone,
    pub delay_days: i32,
}

impl SettlementCycle {
    /// The settlement day that a transaction completed at `at` belongs to.
    pub fn day_of(&self, at: Timestamp) -> Date {
        let zoned = self.zone.to_datetime(at);
        let date = zoned.date();
        if zoned.time() < self.cutoff { date.yesterday().unwrap_or(date) } else { date }
    }

    /// The instant day `day` ends: transactions completed before it belong to it or earlier.
    pub fn end_of(&self, day: Date) -> Timestamp {
        let next = day.tomorrow().unwrap_or(day);
        // `compatible` disambiguation: a cutoff in a DST gap moves forward, in a fold takes
        // the earlier instant, so every day still ends exactly once.
        self.zone.to_ambiguous_timestamp(next.to_datetime(self.cutoff)).compatible().unwrap_or(Timestamp::MAX)
    }

    /// The last day that has ended by `now`.
    pub fn last_closed_day(&self, now: Timestamp) -> Date {
        let current = self.day_of(now);
        current.yesterday().unwrap_or(current)
    }

    /// When day `day`'s batch settles.
    pub fn settlement_date(&self, day: Date) -> Date {
        day.checked_add(self.delay_days.days()).unwrap_or(day)
    }
}

impl Default for SettlementCycle {
    /// 00:00 at UTC+8, settled the next day.
    fn default() -> SettlementCycle {
        let zone = TimeZone::fixed(jiff::tz::offset(8));
        SettlementCycle { cutoff: Time::midnight(), zone, delay_days: 1 }
    }
}

impl fmt::Display for FeeSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bps", self.rate_bps)?;
        if !self.fixed.is_empty() {
            write!(f, " + {}", self.fixed_text())?;
        }
        write!(f, ", tax {} bps", self.tax_rate_bps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(minor: i64, code: &str) -> Money {
        Money::new(minor, Currency::parse(code).expect("a currency"))
    }

    #[test]
    fn half_up_rounds_halves_away_from_zero() {
        let cases = [(5, 10, 1), (4, 10, 0), (15, 10, 2), (25, 10, 3), (-5, 10, -1), (-4, 10, 0), (0, 7, 0)];
        for (numerator, denominator, expected) in cases {
            assert_eq!(div_half_up(numerator, denominator), expected, "{numerator}/{denominator}");
        }
    }

    #[test]
    fn fees_round_half_up_at_the_boundary_in_every_exponent() {
        // 2.5 % of JPY 101 is 2.525 → 3; of USD 1.01 is 2.525 cents → 3; of KWD 0.101 → 3 fils.
        // 1 bps of 5,000 minor is exactly 0.5 → 1; of 4,999 it is 0.4999 → 0.
        let cases = [
            ("JPY", 101, 250, 3),
            ("USD", 101, 250, 3),
            ("KWD", 101, 250, 3),
            ("USD", 5_000, 1, 1),
            ("USD", 4_999, 1, 0),
            ("JPY", 1_000, 0, 0),
            ("KWD", 1_000, 10_000, 1_000),
        ];
        for (code, amount, bps, expected) in cases {
            let schedule = FeeSchedule::new(bps, BTreeMap::new(), 0).expect("a schedule");
            let fee = schedule.fee_for(money(amount, code)).expect("a fee");
            assert_eq!(fee.fee, money(expected, code), "{bps} bps of {amount} {code}");
        }
    }

    #[test]
    fn fixed_fees_apply_in_their_currency_and_tax_is_on_the_fee() {
        let fixed = FeeSchedule::parse_fixed("USD:30 SGD:40").expect("fixed fees");
        let schedule = FeeSchedule::new(290, fixed, 900).expect("a schedule");
        // 2.9 % of 10.00 = 29 cents, + 30 = 59; 9 % tax of 59 = 5.31 → 5.
        assert_eq!(
            schedule.fee_for(money(1_000, "USD")).expect("fee"),
            Fee { fee: money(59, "USD"), tax: money(5, "USD") }
        );
        assert_eq!(schedule.fee_for(money(1_000, "JPY")).expect("fee").fee, money(29, "JPY"));
        assert_eq!(schedule.fixed_text(), "SGD:40 USD:30");
        assert_eq!(FeeSchedule::parse_fixed(&schedule.fixed_text()), Ok(schedule.fixed.clone()));
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert_eq!(FeeSchedule::new(10_001, BTreeMap::new(), 0), Err(FeeError::Bps("the fee rate")));
        assert_eq!(FeeSchedule::new(0, BTreeMap::new(), 10_001), Err(FeeError::Bps("the tax rate")));
        assert_eq!(FeeSchedule::parse_fixed("USD:-1"), Err(FeeError::NegativeFixed));
        for text in ["USD", "USD:x", "XXX:1", "USD:1:2"] {
            assert_eq!(FeeSchedule::parse_fixed(text), Err(FeeError::FixedText), "{text}");
        }
    }

    #[test]
    fn partial_refunds_return_the_fee_pro_rata_and_the_last_returns_the_rest() {
        let fee = Fee { fee: money(100, "USD"), tax: money(9, "USD") };
        let paid = money(1_000, "USD");
        let mut refunded = money(0, "USD");
        let mut returned = Fee::zero(fee.fee.currency());
        for part in [333, 333, 334] {
            let share = refund_share(fee, paid, refunded, money(part, "USD"), returned).expect("share");
            refunded = refunded.checked_add(money(part, "USD")).expect("sum");
            returned = Fee {
                fee: returned.fee.checked_add(share.fee).expect("sum"),
                tax: returned.tax.checked_add(share.tax).expect("sum"),
            };
        }
        assert_eq!(returned, fee, "three refunds of a whole payment return the whole fee");
    }

    proptest::proptest! {
        #[test]
        fn refunds_never_return_more_than_the_fee(
            fee in 0i64..1_000_000,
            parts in proptest::collection::vec(1i64..10_000, 1..8),
        ) {
            let paid: i64 = parts.iter().sum();
            let fee = Fee { fee: money(fee, "USD"), tax: money(fee / 10, "USD") };
            let (mut refunded, mut returned) = (money(0, "USD"), Fee::zero(fee.fee.currency()));
            for part in &parts {
                let share = refund_share(fee, money(paid, "USD"), refunded, money(*part, "USD"), returned).expect("share");
                proptest::prop_assert!(share.fee.minor() >= 0 && share.tax.minor() >= 0);
                refunded = refunded.checked_add(money(*part, "USD")).expect("sum");
                returned = Fee { fee: returned.fee.checked_add(share.fee).expect("sum"), tax: returned.tax.checked_add(share.tax).expect("sum") };
                proptest::prop_assert!(returned.fee.minor() <= fee.fee.minor());
            }
            proptest::prop_assert_eq!(returned, fee);
        }
    }

    #[test]
    fn a_day_ends_at_its_cutoff_in_its_zone() {
        let cycle = SettlementCycle::default();
        let at = |text: &str| text.parse::<Timestamp>().expect("a timestamp");
        let day = |text: &str| text.parse::<Date>().expect("a date");
        // 00:00 at UTC+8 is 16:00 UTC the day before.
        assert_eq!(cycle.day_of(at("2026-11-29T15:59:59.999Z")), day("2026-11-29"));
        assert_eq!(cycle.day_of(at("2026-11-29T16:00:00Z")), day("2026-11-30"));
        assert_eq!(cycle.end_of(day("2026-11-29")), at("2026-11-29T16:00:00Z"));
        assert_eq!(cycle.settlement_date(day("2026-11-29")), day("2026-11-30"));
        assert_eq!(cycle.last_closed_day(at("2026-11-29T16:00:00Z")), day("2026-11-29"));

        let evening = SettlementCycle { cutoff: Time::constant(18, 0, 0, 0), ..SettlementCycle::default() };
        assert_eq!(evening.day_of(at("2026-11-30T09:59:59Z")), day("2026-11-29"), "17:59:59 at UTC+8");
        assert_eq!(evening.day_of(at("2026-11-30T10:00:00Z")), day("2026-11-30"));
    }

    #[test]
    fn days_across_a_daylight_saving_change_end_once_each() {
        let zone = TimeZone::get("America/New_York").expect("the zone database");
        let cycle = SettlementCycle { cutoff: Time::constant(2, 30, 0, 0), zone, delay_days: 1 };
        // 2026-03-08 02:30 does not exist in New York: day 03-07 ends at 03:30 EDT (07:30 UTC).
        let day = |text: &str| text.parse::<Date>().expect("a date");
        let end = cycle.end_of(day("2026-03-07"));
        assert_eq!(end, "2026-03-08T07:30:00Z".parse::<Timestamp>().expect("a timestamp"));
        assert_eq!(cycle.day_of(end), day("2026-03-08"));
        assert!(cycle.end_of(day("2026-03-08")) > end);
    }
}
