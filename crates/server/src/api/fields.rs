//! Parsing request fields into domain values, each error naming the field's JSON path.

use ocpay_core::money::{Currency, Money};
use ocpay_core::text::{self, BoundedText, Mcc, Region, TextError};
use ocpay_protocol::model::Amount;

use super::error::ApiError;
use crate::HttpUrl;

/// Longest merchant, store or order name or description.
pub(crate) const NAME_CHARS_MAX: usize = text::NAME_CHARS_MAX;

/// The value of a required field.
pub(crate) fn required<'a, T>(value: &'a Option<T>, field: &str) -> Result<&'a T, ApiError> {
    value.as_ref().ok_or_else(|| ApiError::param(field, "is required"))
}

fn text_error(field: &str) -> impl FnOnce(TextError) -> ApiError + '_ {
    move |error| ApiError::param(field, error)
}

/// Required free text of at most `max` characters.
pub(crate) fn bounded(value: &Option<String>, field: &str, max: usize) -> Result<String, ApiError> {
    text::bounded(required(value, field)?, max).map_err(text_error(field))
}

/// Optional free text of at most `max` characters.
pub(crate) fn optional_bounded(
    value: &Option<String>,
    field: &str,
    max: usize,
) -> Result<Option<String>, ApiError> {
    value.as_deref().map(|value| text::bounded(value, max).map_err(text_error(field))).transpose()
}

/// Required free text of at most `MAX` characters, parsed into its type.
pub(crate) fn text<const MAX: usize>(
    value: &Option<String>,
    field: &str,
) -> Result<BoundedText<MAX>, ApiError> {
    BoundedText::parse(required(value, field)?).map_err(text_error(field))
}

/// Optional free text of at most `MAX` characters, parsed into its type.
pub(crate) fn optional_text<const MAX: usize>(
    value: &Option<String>,
    field: &str,
) -> Result<Option<BoundedText<MAX>>, ApiError> {
    value.as_deref().map(|value| BoundedText::parse(value).map_err(text_error(field))).transpose()
}

/// Required identifier of at most `max` characters.
pub(crate) fn identifier(value: &Option<String>, field: &str, max: usize) -> Result<String, ApiError> {
    text::identifier(required(value, field)?, max).map_err(text_error(field))
}

pub(crate) fn optional_identifier(
    value: &Option<String>,
    field: &str,
    max: usize,
) -> Result<Option<String>, ApiError> {
    value.as_deref().map(|value| text::identifier(value, max).map_err(text_error(field))).transpose()
}

pub(crate) fn mcc(value: &Option<String>, field: &str) -> Result<Mcc, ApiError> {
    Mcc::parse(required(value, field)?).map_err(text_error(field))
}

pub(crate) fn optional_mcc(value: &Option<String>, field: &str) -> Result<Option<Mcc>, ApiError> {
    value.as_deref().map(|value| Mcc::parse(value).map_err(text_error(field))).transpose()
}

pub(crate) fn optional_region(value: &Option<String>, field: &str) -> Result<Option<Region>, ApiError> {
    value.as_deref().map(|value| Region::parse(value).map_err(text_error(field))).transpose()
}

pub(crate) fn currency(value: &str, field: &str) -> Result<Currency, ApiError> {
    Currency::parse(value).map_err(|error| ApiError::param(field, error))
}

/// A required amount that a payer can be asked for: known currency, positive minor units.
pub(crate) fn positive_amount(value: &Option<Amount>, field: &str) -> Result<Money, ApiError> {
    let amount = required(value, field)?;
    let currency_field = format!("{field}.currency");
    let value_field = format!("{field}.value");
    let currency = currency(required(&amount.currency, &currency_field)?, &currency_field)?;
    let money = Money::parse_minor(currency, required(&amount.value, &value_field)?)
        .map_err(|error| ApiError::param(&value_field, error))?;
    money.positive().map_err(|error| ApiError::param(value_field, error))
}

/// An optional http(s) URL.
pub(crate) fn optional_url(value: &Option<String>, field: &str) -> Result<Option<HttpUrl>, ApiError> {
    value
        .as_deref()
        .map(|value| HttpUrl::parse(value).map_err(|reason| ApiError::param(field, reason)))
        .transpose()
}

/// A field that must hold one fixed value.
pub(crate) fn fixed(value: &Option<String>, field: &str, expected: &str) -> Result<(), ApiError> {
    if required(value, field)? == expected {
        Ok(())
    } else {
        Err(ApiError::param(field, format!("must be {expected}")))
    }
}
