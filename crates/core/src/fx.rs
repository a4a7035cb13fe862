//! Foreign exchange with integer arithmetic: converting what a payment asks for into the
//! currency of the payer's wallet.
//!
//! A rate is a decimal price of one unit of the base currency in the quote currency
//! (`USD/SGD 1.3450`), kept as an integer and a scale. Conversion multiplies in 128-bit
//! integers and rounds **up** to the quote currency's minor unit: the payer is charged at
//! least the exact value, so the merchant is always paid in full and rounding never
//! invents or loses money for the platform beyond one minor unit in the payer's currency.

use std::fmt;

use crate::money::{Currency, Money, MoneyError};

/// Most decimal places a rate may have.
pub const RATE_SCALE_MAX: u32 = 12;

/// Why a rate or a conversion was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FxError {
    #[error("a currency pair is written BASE/QUOTE, like USD/SGD")]
    BadPair,
    #[error("a rate is a positive decimal number with at most 12 decimal places, like 1.3450")]
    BadPrice,
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("the converted amount is out of range")]
    Overflow,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rounding {
    Up,
    Down,
}

/// The price of one unit of `base` in `quote`, as `mantissa / 10^scale`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    base: Currency,
    quote: Currency,
    mantissa: u64,
    scale: u32,
}

impl Rate {
    /// Parses `"USD/SGD"` and `"1.3450"`.
    pub fn parse(pair: &str, price: &str) -> Result<Rate, FxError> {
        let (base, quote) = pair.split_once('/').ok_or(FxError::BadPair)?;
        let base = Currency::parse(base.trim())?;
        let quote = Currency::parse(quote.trim())?;
        if base == quote {
            return Err(FxError::BadPair);
        }
        let (whole, fraction) = price.split_once('.').unwrap_or((price, ""));
        let digits_ok = !whole.is_empty()
            && whole.bytes().chain(fraction.bytes()).all(|byte| byte.is_ascii_digit())
            && fraction.len() <= RATE_SCALE_MAX as usize;
        if !digits_ok {
            return Err(FxError::BadPrice);
        }
        let mantissa: u64 = format!("{whole}{fraction}").parse().map_err(|_| FxError::BadPrice)?;
        if mantissa == 0 {
            return Err(FxError::BadPrice);
        }
        Ok(Rate { base, quote, mantissa, scale: fraction.len() as u32 })
    }

    pub fn base(&self) -> Currency {
        self.base
    }

    pub fn quote(&self) -> Currency {
        self.quote
    }

    /// `USD/SGD`.
    pub fn pair(&self) -> String {
        format!("{}/{}", self.base, self.quote)
    }

    /// The price as decimal text, exactly as configured: `1.3450`.
    pub fn price(&self) -> String {
        let digits = self.mantissa.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return digits;
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        format!("{whole}.{fraction}")
    }

    /// Converts an amount in the base currency to the quote currency, rounding up: what a
    /// payer is charged.
    pub fn convert(&self, amount: Money) -> Result<Money, FxError> {
        self.convert_rounding(amount, Rounding::Up)
    }

    /// Converts rounding down: what a partial refund returns, so that refunds never return
    /// more than was charged (the refund that completes a payment returns the exact rest).
    pub fn convert_down(&self, amount: Money) -> Result<Money, FxError> {
        self.convert_rounding(amount, Rounding::Down)
    }

    fn convert_rounding(&self, amount: Money, rounding: Rounding) -> Result<Money, FxError> {
        if amount.currency() != self.base {
            return Err(MoneyError::CurrencyMismatch(amount.currency(), self.base).into());
        }
        // quote_minor = base_minor * mantissa * 10^(eq) / (10^scale * 10^(eb)), rounded up.
        let numerator = i128::from(amount.minor())
            .checked_mul(i128::from(self.mantissa))
            .and_then(|value| value.checked_mul(10i128.pow(self.quote.exponent())))
            .ok_or(FxError::Overflow)?;
        let denominator = 10i128.pow(self.scale + self.base.exponent());
        let quotient = numerator.div_euclid(denominator);
        let exact = numerator.rem_euclid(denominator) == 0;
        let rounded = if exact || rounding == Rounding::Down { quotient } else { quotient + 1 };
        let minor = i64::try_from(rounded).map_err(|_| FxError::Overflow)?;
        Ok(Money::new(minor, self.quote))
    }
}

impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.pair(), self.price())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn money(code: &str, minor: i64) -> Money {
        Money::new(minor, Currency::parse(code).unwrap())
    }

    #[test]
    fn parse_and_print() {
        let rate = Rate::parse("USD/SGD", "1.3450").unwrap();
        assert_eq!((rate.pair(), rate.price()), ("USD/SGD".into(), "1.3450".into()));
        assert_eq!(Rate::parse("JPY/USD", "0.0067").unwrap().price(), "0.0067");
        assert_eq!(Rate::parse("USD/JPY", "150").unwrap().price(), "150");
        for (pair, price) in [("USDSGD", "1"), ("USD/USD", "1"), ("USD/XXX", "1")] {
            assert!(Rate::parse(pair, price).is_err(), "{pair}");
        }
        for price in ["", "0", "0.000", "-1", "1e3", "1.2.3", "1.1234567890123", " 1"] {
            assert!(Rate::parse("USD/SGD", price).is_err(), "{price:?}");
        }
    }

    #[test]
    fn conversions_round_up_to_the_quote_minor_unit() {
        let cases = [
            ("USD/SGD", "1.3450", money("USD", 1250), money("SGD", 1682)), // 16.8125 -> 16.82
            ("USD/SGD", "1.3450", money("USD", 1000), money("SGD", 1345)), // exact
            ("USD/JPY", "150.25", money("USD", 1999), money("JPY", 3004)), // 3003.4975 -> 3004
            ("JPY/USD", "0.0067", money("JPY", 599), money("USD", 402)),   // 4.0133 -> 4.02
            ("USD/KWD", "0.307", money("USD", 100), money("KWD", 307)),
        ];
        for (pair, price, from, to) in cases {
            assert_eq!(Rate::parse(pair, price).unwrap().convert(from), Ok(to), "{pair} {price} {from}");
        }
        let rate = Rate::parse("USD/SGD", "1.3450").unwrap();
        assert_eq!(rate.convert_down(money("USD", 1250)), Ok(money("SGD", 1681)), "refunds round down");
        assert_eq!(rate.convert_down(money("USD", 1000)), Ok(money("SGD", 1345)));
        assert!(rate.convert(money("EUR", 1)).is_err(), "the amount must be in the base currency");
        assert_eq!(rate.convert(money("USD", i64::MAX)), Err(FxError::Overflow));
    }

    /// Currencies with 0, 2 and 3 decimals.
    const CODES: [&str; 6] = ["JPY", "KRW", "USD", "SGD", "KWD", "BHD"];

    /// A price as decimal text: `mantissa / 10^scale`.
    fn price_text(mantissa: u64, scale: u32) -> String {
        let digits = format!("{mantissa:0>width$}", width = scale as usize + 1);
        let (whole, fraction) = digits.split_at(digits.len() - scale as usize);
        if fraction.is_empty() { whole.to_owned() } else { format!("{whole}.{fraction}") }
    }

    /// Two different currencies of [`CODES`].
    fn pair() -> impl Strategy<Value = (Currency, Currency)> {
        (0..CODES.len(), 1..CODES.len()).prop_map(|(base, offset)| {
            let quote = (base + offset) % CODES.len();
            (Currency::parse(CODES[base]).unwrap(), Currency::parse(CODES[quote]).unwrap())
        })
    }

    /// A rate `2^i * 5^j / 10^s` between two currencies, and its exact inverse
    /// `2^j * 5^i * 10^s / 10^(i+j)`: both are finite decimals.
    fn rate_and_inverse() -> impl Strategy<Value = (Rate, Rate)> {
        (pair(), 0u32..=6, 0u32..=6, 0u32..=8).prop_map(|((base, quote), i, j, s)| {
            let mantissa = 2u64.pow(i) * 5u64.pow(j);
            let (mut inverse, mut inverse_scale) = (2u64.pow(j) * 5u64.pow(i), i + j);
            if inverse_scale >= s {
                inverse_scale -= s;
            } else {
                inverse *= 10u64.pow(s - inverse_scale);
                inverse_scale = 0;
            }
            let forward = Rate::parse(&format!("{base}/{quote}"), &price_text(mantissa, s)).unwrap();
            let backward =
                Rate::parse(&format!("{quote}/{base}"), &price_text(inverse, inverse_scale)).unwrap();
            (forward, backward)
        })
    }

    /// `(numerator, denominator)` of the exact value of `minor` base units in quote minor units.
    fn exact(rate: &Rate, minor: i64) -> (i128, i128) {
        let numerator = i128::from(minor) * i128::from(rate.mantissa) * 10i128.pow(rate.quote.exponent());
        (numerator, 10i128.pow(rate.scale + rate.base.exponent()))
    }

    proptest! {
        /// Between currencies of 0, 2 and 3 decimals, `convert` is the exact value rounded up
        /// and `convert_down` the exact value rounded down, to the quote currency's minor unit,
        /// computed in integers; out of range is an error, never a wrapped amount.
        #[test]
        fn conversion_rounds_the_exact_value_up_or_down(
            (base, quote) in pair(),
            mantissa in (0u32..=12).prop_flat_map(|digits| 1u64..=10u64.pow(digits)),
            scale in 0u32..=RATE_SCALE_MAX,
            minor in (0u32..=15).prop_flat_map(|digits| 0i64..=10i64.pow(digits)),
        ) {
            let rate = Rate::parse(&format!("{base}/{quote}"), &price_text(mantissa, scale)).unwrap();
            let (numerator, denominator) = exact(&rate, minor);
            let (floor, remainder) = (numerator / denominator, numerator % denominator);
            let ceiling = floor + i128::from(remainder != 0);
            let up = rate.convert(Money::new(minor, base));
            let down = rate.convert_down(Money::new(minor, base));
            match i64::try_from(ceiling) {
                Ok(ceiling) => prop_assert_eq!(up, Ok(Money::new(ceiling, quote))),
                Err(_) => prop_assert_eq!(up, Err(FxError::Overflow)),
            }
            match i64::try_from(floor) {
                Ok(floor) => prop_assert_eq!(down, Ok(Money::new(floor, quote))),
                Err(_) => prop_assert_eq!(down, Err(FxError::Overflow)),
            }
        }

        /// A round trip, converted rounding up and back at the exact inverse rate rounding
        /// down, returns at least the amount and less than one minor unit of the payer's
        /// currency more (the documented bound): exactly the amount when that minor unit is
        /// worth no more than the base currency's. The other way round (down, then back up)
        /// returns at most the amount, and again less than one such unit less.
        #[test]
        fn round_trips_stay_within_one_minor_unit_of_the_payers_currency(
            (rate, inverse) in rate_and_inverse(),
            minor in 0i64..=1_000_000_000,
        ) {
            let amount = Money::new(minor, rate.base());
            // One minor unit of the quote currency is worth `one.0 / one.1` of the base's.
            let one = (
                10i128.pow(rate.base.exponent() + rate.scale),
                i128::from(rate.mantissa) * 10i128.pow(rate.quote.exponent()),
            );
            let charged = rate.convert(amount).unwrap();
            let back = inverse.convert_down(charged).unwrap();
            prop_assert_eq!(back.currency(), rate.base());
            let gained = i128::from(back.minor() - minor);
            prop_assert!(gained >= 0, "the round trip lost {} for {:?} {:?}", -gained, amount, rate);
            prop_assert!(gained * one.1 < one.0, "gained {} for {:?} at {:?}", gained, amount, rate);
            if one.0 <= one.1 {
                prop_assert_eq!(back, amount);
            }
            let returned = rate.convert_down(amount).unwrap();
            let back = inverse.convert(returned).unwrap();
            let lost = i128::from(minor - back.minor());
            prop_assert!(lost >= 0 && lost * one.1 < one.0, "lost {} for {:?} at {:?}", lost, amount, rate);
            if one.0 <= one.1 {
                prop_assert_eq!(back, amount);
            }
        }

        #[test]
        fn the_payer_never_pays_less_than_the_exact_value(minor in 1i64..1_000_000_000_000, mantissa in 1u64..10_000_000) {
            let rate = Rate::parse("USD/SGD", &format!("{}.{:04}", mantissa / 10_000, mantissa % 10_000)).unwrap();
            let converted = rate.convert(money("USD", minor)).unwrap();
            // converted >= exact, and converted - 1 < exact: exactly one rounding step at most.
            let exact_times_scale = i128::from(minor) * i128::from(mantissa);
            prop_assert!(i128::from(converted.minor()) * 10_000 >= exact_times_scale);
            prop_assert!(i128::from(converted.minor() - 1) * 10_000 < exact_times_scale);
        }
    }
}
