//! Money as integer minor units of an ISO 4217 currency, with checked arithmetic.
//!
//! There are no floats anywhere on a money path: an amount is an `i64` count of the
//! currency's smallest unit (cents for USD, yen for JPY, fils for KWD).

use std::fmt;

/// Most decimal digits accepted in a minor-unit amount: 18 digits always fit an `i64`.
pub const AMOUNT_DIGITS_MAX: usize = 18;

/// Why an amount or a currency was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a three-letter ISO 4217 currency code in use")]
    UnknownCurrency,
    #[error("must be a whole number of minor units (digits only, at most 18)")]
    NotMinorUnits,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("must be a multiple of 100 for IDR")]
    IdrNotWholeHundreds,
    #[error("currencies differ ({0} and {1})")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount out of range")]
    Overflow,
}

/// An ISO 4217 currency that is in circulation and has a defined minor unit.
///
/// Funds (`CLF`), precious metals (`XAU`), testing codes (`XTS`) and superseded codes
/// are refused: nobody pays an order in them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Parses an upper-case alphabetic code such as `USD`.
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let iso = iso_currency::Currency::from_code(code).ok_or(MoneyError::UnknownCurrency)?;
        let usable = iso.code() == code
            && iso.exponent().is_some()
            && !iso.is_fund()
            && !iso.is_special()
            && iso.is_superseded().is_none();
        if usable { Ok(Currency(iso)) } else { Err(MoneyError::UnknownCurrency) }
    }

    /// The alphabetic code, such as `USD`.
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Number of decimal places of the minor unit: 2 for USD, 0 for JPY, 3 for KWD.
    pub fn exponent(self) -> u32 {
        // `parse` admits only currencies with an exponent.
        u32::from(self.0.exponent().unwrap_or(0))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money: a signed count of minor units and its currency.
///
/// Balances may be negative; amounts a payer is asked for are positive (see [`Money::positive`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub const fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    /// Parses a minor-unit amount written as decimal digits, as AMS sends it (`"1000"` = USD 10.00).
    ///
    /// Strict on purpose: no sign, no exponent, no decimal point, no spaces, at most 18 digits.
    pub fn parse_minor(currency: Currency, value: &str) -> Result<Money, MoneyError> {
        let digits_ok = !value.is_empty()
            && value.len() <= AMOUNT_DIGITS_MAX
            && value.bytes().all(|byte| byte.is_ascii_digit());
        if !digits_ok {
            return Err(MoneyError::NotMinorUnits);
        }
        let minor = value.parse::<i64>().map_err(|_| MoneyError::NotMinorUnits)?;
        Ok(Money { minor, currency })
    }

    /// Checks that a payer can be asked for this amount: greater than zero, and for IDR
    /// a whole number of hundreds (Alipay+ wallets refuse IDR cents).
    pub fn positive(self) -> Result<Money, MoneyError> {
        if self.minor <= 0 {
            return Err(MoneyError::NotPositive);
        }
        if self.currency.code() == "IDR" && self.minor % 100 != 0 {
            return Err(MoneyError::IdrNotWholeHundreds);
        }
        Ok(self)
    }

    pub const fn minor(self) -> i64 {
        self.minor
    }

    pub const fn currency(self) -> Currency {
        self.currency
    }

    pub const fn is_positive(self) -> bool {
        self.minor > 0
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self.minor.checked_add(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self.minor.checked_sub(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }

    /// The amount in major units as exact decimal text: `1234` USD is `12.34`, JPY `599` is `599`.
    pub fn format_major(self) -> String {
        let exponent = self.currency.exponent();
        let sign = if self.minor < 0 { "-" } else { "" };
        let magnitude = self.minor.unsigned_abs();
        if exponent == 0 {
            return format!("{sign}{magnitude}");
        }
        let scale = 10u64.pow(exponent);
        let whole = magnitude / scale;
        let fraction = magnitude % scale;
        let width = exponent as usize;
        format!("{sign}{whole}.{fraction:0width$}")
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency, self.minor)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency, self.format_major())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[test]
    fn currencies() {
        let cases: &[(&str, Option<u32>)] = &[
            ("USD", Some(2)),
            ("JPY", Some(0)),
            ("KWD", Some(3)),
            ("CNY", Some(2)),
            ("IDR", Some(2)),
            ("usd", None),
            ("US", None),
            ("USDD", None),
            ("XAU", None),
            ("XTS", None),
            ("CLF", None),
            ("", None),
            ("ZZZ", None),
        ];
        for (code, exponent) in cases {
            let parsed = Currency::parse(code).ok().map(Currency::exponent);
            assert_eq!(parsed, *exponent, "currency {code:?}");
        }
    }

    #[test]
    fn parse_minor_is_strict() {
        let cases: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("1000", Some(1000)),
            ("007", Some(7)),
            ("999999999999999999", Some(999_999_999_999_999_999)),
            ("1000000000000000000", None),
            ("", None),
            ("-1", None),
            ("+1", None),
            ("1.00", None),
            ("1e3", None),
            (" 1", None),
            ("1 ", None),
            ("١", None),
        ];
        for (value, expected) in cases {
            let parsed = Money::parse_minor(usd(), value).ok().map(Money::minor);
            assert_eq!(parsed, *expected, "value {value:?}");
        }
    }

    #[test]
    fn positive_amounts() {
        let idr = Currency::parse("IDR").unwrap();
        assert_eq!(Money::new(0, usd()).positive(), Err(MoneyError::NotPositive));
        assert_eq!(Money::new(-5, usd()).positive(), Err(MoneyError::NotPositive));
        assert!(Money::new(1, usd()).positive().is_ok());
        assert_eq!(Money::new(150, idr).positive(), Err(MoneyError::IdrNotWholeHundreds));
        assert!(Money::new(1500, idr).positive().is_ok());
    }

    #[test]
    fn format_major_by_exponent() {
        let cases: &[(&str, i64, &str)] = &[
            ("USD", 1234, "12.34"),
            ("USD", 5, "0.05"),
            ("USD", -5, "-0.05"),
            ("JPY", 599, "599"),
            ("KWD", 1001, "1.001"),
            ("USD", i64::MIN, "-92233720368547758.08"),
        ];
        for (code, minor, text) in cases {
            let money = Money::new(*minor, Currency::parse(code).unwrap());
            assert_eq!(money.format_major(), *text);
        }
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies() {
        let jpy = Currency::parse("JPY").unwrap();
        let result = Money::new(1, usd()).checked_add(Money::new(1, jpy));
        assert_eq!(result, Err(MoneyError::CurrencyMismatch(usd(), jpy)));
    }

    proptest! {
        #[test]
        fn parse_minor_round_trips(minor in 0i64..=999_999_999_999_999_999) {
            let money = Money::parse_minor(usd(), &minor.to_string()).unwrap();
            prop_assert_eq!(money.minor(), minor);
        }

        #[test]
        fn add_then_sub_is_identity(a in any::<i64>(), b in any::<i64>()) {
            let a = Money::new(a, usd());
            let b = Money::new(b, usd());
            if let Ok(sum) = a.checked_add(b) {
                prop_assert_eq!(sum.checked_sub(b), Ok(a));
            } else {
                // Overflow is reported, never wrapped.
                prop_assert!((a.minor() as i128 + b.minor() as i128) > i64::MAX as i128
                    || (a.minor() as i128 + b.minor() as i128) < i64::MIN as i128);
            }
        }

        #[test]
        fn addition_commutes(a in any::<i64>(), b in any::<i64>()) {
            let a = Money::new(a, usd());
            let b = Money::new(b, usd());
            prop_assert_eq!(a.checked_add(b), b.checked_add(a));
        }

        #[test]
        fn format_major_keeps_every_minor_unit(minor in any::<i64>()) {
            for code in ["USD", "JPY", "KWD"] {
                let money = Money::new(minor, Currency::parse(code).unwrap());
                let text = money.format_major();
                let digits: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
                let back: i128 = digits.parse().unwrap();
                let back = if text.starts_with('-') { -back } else { back };
                prop_assert_eq!(back, minor as i128);
            }
        }
    }
}
