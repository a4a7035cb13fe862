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

    proptest! {
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
