//! Identifiers: the platform's own (payment ids, order-code tokens) and the ones clients choose.

use std::fmt;

use crate::text::{self, TextError};

/// Longest identifier the AMS protocol allows for request and object ids.
pub const ID_CHARS_MAX: usize = 64;

macro_rules! identifier_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Accepts 1 to 64 printable ASCII characters without spaces.
            pub fn parse(value: &str) -> Result<$name, TextError> {
                text::identifier(value, ID_CHARS_MAX).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

identifier_type!(
    /// A participant's client id, such as `SANDBOX_5Y036S2Y1W4D03493`.
    ClientId
);
identifier_type!(
    /// The platform's id of a payment (`paymentId`).
    PaymentId
);
identifier_type!(
    /// The client's idempotency key of a payment (`paymentRequestId`).
    PaymentRequestId
);
identifier_type!(
    /// The unguessable token inside an order code's URL. It carries at least 128 random bits.
    CodeToken
);
identifier_type!(
    /// The platform's id of a refund (`refundId`).
    RefundId
);
identifier_type!(
    /// The client's idempotency key of a refund (`refundRequestId`).
    RefundRequestId
);
identifier_type!(
    /// The platform's id of a merchant registration.
    RegistrationId
);
identifier_type!(
    /// The acquirer's idempotency key of a registration (`registrationRequestId`).
    RegistrationRequestId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_parse_and_display() {
        let id = PaymentRequestId::parse("PR20240101000001").unwrap();
        assert_eq!(id.to_string(), "PR20240101000001");
        assert_eq!(format!("{id:?}"), "PaymentRequestId(\"PR20240101000001\")");
        assert!(ClientId::parse("").is_err());
        assert!(PaymentId::parse(&"9".repeat(64)).is_ok());
        assert!(PaymentId::parse(&"9".repeat(65)).is_err());
    }
}
