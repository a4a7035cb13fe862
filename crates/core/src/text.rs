//! Rules for the text fields of requests: bounded free text, identifiers, MCCs, regions.
//!
//! Each rule returns the reason in words without the field name; the gateway adds the
//! JSON path, so that a message reads `order.merchant.merchantMCC: must be 4 digits`.

/// Why a text field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must not contain bidirectional control characters (U+202A to U+202E, U+2066 to U+2069)")]
    BidiControl,
    #[error("must be printable ASCII without spaces")]
    NotIdentifier,
    #[error("must be 4 digits")]
    NotMcc,
    #[error("must be a two-letter upper-case ISO 3166 country code")]
    NotRegion,
}

/// Whether a character is a bidirectional embedding, override or isolate (U+202A to U+202E,
/// U+2066 to U+2069): it reorders the text after it, so that a name shown to a payer could read
/// as something else than it is ("Trojan Source").
pub fn is_bidi_control(character: char) -> bool {
    matches!(character, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Free text (names, descriptions): not empty, at most `max` characters, no control characters
/// and no bidirectional controls.
pub fn bounded(value: &str, max: usize) -> Result<String, TextError> {
    if value.is_empty() {
        return Err(TextError::Empty);
    }
    if value.chars().count() > max {
        return Err(TextError::TooLong { max });
    }
    if value.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter);
    }
    if value.chars().any(is_bidi_control) {
        return Err(TextError::BidiControl);
    }
    Ok(value.to_owned())
}

/// Longest name or description of a merchant, a store, an order or a participant.
pub const NAME_CHARS_MAX: usize = 256;

/// Free text of at most `MAX` characters that passed [`bounded`]: it exists only valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BoundedText<const MAX: usize>(String);

/// A name or a description, as payers are shown it.
pub type Name = BoundedText<NAME_CHARS_MAX>;

impl<const MAX: usize> BoundedText<MAX> {
    pub fn parse(value: &str) -> Result<BoundedText<MAX>, TextError> {
        bounded(value, MAX).map(BoundedText)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> std::ops::Deref for BoundedText<MAX> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> std::fmt::Display for BoundedText<MAX> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl<const MAX: usize> std::str::FromStr for BoundedText<MAX> {
    type Err = TextError;

    fn from_str(value: &str) -> Result<BoundedText<MAX>, TextError> {
        BoundedText::parse(value)
    }
}

/// An identifier chosen by a client (request ids, reference ids): 1 to `max` printable ASCII
/// characters without spaces, so that it survives every log, CSV file and URL unharmed.
pub fn identifier(value: &str, max: usize) -> Result<String, TextError> {
    if value.is_empty() {
        return Err(TextError::Empty);
    }
    if value.len() > max {
        return Err(TextError::TooLong { max });
    }
    if !value.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(TextError::NotIdentifier);
    }
    Ok(value.to_owned())
}

/// A merchant category code (ISO 18245): exactly four ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mcc(String);

impl Mcc {
    pub fn parse(value: &str) -> Result<Mcc, TextError> {
        if value.len() == 4 && value.bytes().all(|byte| byte.is_ascii_digit()) {
            Ok(Mcc(value.to_owned()))
        } else {
            Err(TextError::NotMcc)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO 3166-1 alpha-2 region code such as `SG`: two upper-case ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region(String);

impl Region {
    pub fn parse(value: &str) -> Result<Region, TextError> {
        if value.len() == 2 && value.bytes().all(|byte| byte.is_ascii_uppercase()) {
            Ok(Region(value.to_owned()))
        } else {
            Err(TextError::NotRegion)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_type {
    ($($name:ident),*) => {$(
        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = TextError;

            fn from_str(value: &str) -> Result<$name, TextError> {
                $name::parse(value)
            }
        }
    )*};
}
text_type!(Mcc, Region);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let cases: &[(&str, Result<String, TextError>)] = &[
            ("Cafe", Ok("Cafe".into())),
            ("", Err(TextError::Empty)),
            ("äöü", Ok("äöü".into())),
            ("a\u{7}b", Err(TextError::ControlCharacter)),
            ("12345", Err(TextError::TooLong { max: 4 })),
            ("咖啡咖啡", Ok("咖啡咖啡".into())),
            ("a\u{202E}b", Err(TextError::BidiControl)),
            ("\u{202A}", Err(TextError::BidiControl)),
            ("\u{2066}ab", Err(TextError::BidiControl)),
            ("ab\u{2069}", Err(TextError::BidiControl)),
            // Marks (not embeddings) and joiners that right-to-left scripts need stay.
            ("\u{200F}של", Ok("\u{200F}של".into())),
            ("a\u{200D}b", Ok("a\u{200D}b".into())),
        ];
        for (value, expected) in cases {
            assert_eq!(&bounded(value, 4), expected, "bounded {value:?}");
        }
        assert_eq!(BoundedText::<4>::parse("Cafe").as_deref(), Ok("Cafe"));
        assert_eq!(BoundedText::<3>::parse("Cafe"), Err(TextError::TooLong { max: 3 }));
        assert_eq!(Name::parse("a\u{202E}b"), Err(TextError::BidiControl));
        assert_eq!(identifier("PR-2024_01.x", 64), Ok("PR-2024_01.x".into()));
        assert_eq!(identifier("a b", 64), Err(TextError::NotIdentifier));
        assert_eq!(identifier("é", 64), Err(TextError::NotIdentifier));
        assert_eq!(identifier(&"x".repeat(65), 64), Err(TextError::TooLong { max: 64 }));
        assert_eq!(Mcc::parse("5812").as_ref().map(Mcc::as_str), Ok("5812"));
        assert_eq!(Mcc::parse("581"), Err(TextError::NotMcc));
        assert_eq!(Mcc::parse("58a2"), Err(TextError::NotMcc));
        assert_eq!(Mcc::parse("５８１２"), Err(TextError::NotMcc), "full-width digits");
        assert_eq!(Region::parse("SG").as_ref().map(Region::as_str), Ok("SG"));
        assert_eq!(Region::parse("sg"), Err(TextError::NotRegion));
        assert_eq!(Region::parse("SGP"), Err(TextError::NotRegion));
    }
}
