//! Lenient readers for request scalars.
//!
//! AMS documents every scalar as a JSON string, but Alipay's official Python SDK sends
//! `Amount.value` and `paymentRequestId` as JSON numbers. A string field therefore also
//! accepts an integer (read as its decimal digits). Everything written out is a string.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

struct StringOrInteger;

impl Visitor<'_> for StringOrInteger {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an integer")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Some(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(Some(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Some(value.to_string()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Reads an optional string that may arrive as a JSON integer.
pub(crate) fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    deserializer.deserialize_any(StringOrInteger)
}
