//! Enums whose variants each have one stable name, declared as one table by [`crate::named_enum!`],
//! so that the list of variants, their names and the parsing of a name cannot disagree.
//!
//! The names are contracts (stored in databases, shown to operators, typed on command lines):
//! a variant's name never changes once released, whatever the variant is called in Rust.

/// Declares a field-less enum with one stable name per variant (`Variant = "NAME"`), and
/// generates from that one table:
/// - `ALL`: every variant, in declaration order;
/// - `as_str`: the variant's name;
/// - `parse`: the variant of a name, exactly as written (what was stored);
/// - `parse_any_case`: the same in any ASCII case (what people type).
///
/// ```
/// ocpay_core::named_enum! {
///     /// A colour.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
///     pub enum Colour {
///         Red = "RED",
///         /// Not green.
///         Blue = "BLUE",
///     }
/// }
/// assert_eq!(Colour::ALL, [Colour::Red, Colour::Blue]);
/// assert_eq!(Colour::Blue.as_str(), "BLUE");
/// assert_eq!(Colour::parse("RED"), Some(Colour::Red));
/// assert_eq!(Colour::parse("red"), None);
/// assert_eq!(Colour::parse_any_case("red"), Some(Colour::Red));
/// ```
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($name::$variant),+].len()] = [$($name::$variant),+];

            /// The variant's stable name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The variant with this name, exactly as [`Self::as_str`] writes it.
            pub fn parse(value: &str) -> Option<$name> {
                Self::ALL.into_iter().find(|variant| variant.as_str() == value)
            }

            /// The variant with this name in any ASCII case.
            pub fn parse_any_case(value: &str) -> Option<$name> {
                Self::ALL.into_iter().find(|variant| variant.as_str().eq_ignore_ascii_case(value))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::access::Scope;
    use crate::fees::FeeRefund;
    use crate::ledger::PostingKind;
    use crate::participant::{Environment, ParticipantKind};
    use crate::payment::{FailReason, PaymentStatus};
    use crate::portal::Role;

    fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|variant| name(*variant)).collect()
    }

    /// Stored rows and typed commands hold these names: one that changes no longer reads.
    #[test]
    fn names_are_stable() {
        assert_eq!(names(&ParticipantKind::ALL, ParticipantKind::as_str), ["MERCHANT", "ACQUIRER", "ISV"]);
        assert_eq!(names(&Environment::ALL, Environment::as_str), ["sandbox", "live"]);
        assert_eq!(
            names(&Scope::ALL, Scope::as_str),
            ["pay", "inquiry", "cancel", "refund", "reports", "registration"]
        );
        assert_eq!(
            names(&PostingKind::ALL, PostingKind::as_str),
            ["TOPUP", "PAYMENT", "REVERSAL", "REFUND", "FEE", "FEE_RETURN", "SETTLEMENT", "PAYOUT"]
        );
        assert_eq!(names(&FeeRefund::ALL, FeeRefund::as_str), ["pro_rata", "none"]);
        assert_eq!(names(&Role::ALL, Role::as_str), ["owner", "developer", "viewer"]);
        assert_eq!(
            names(&FailReason::ALL, FailReason::as_str),
            ["ORDER_IS_CLOSED", "USER_BALANCE_NOT_ENOUGH", "RISK_REJECT", "USER_KYC_NOT_QUALIFIED"]
        );
        assert_eq!(
            names(&PaymentStatus::ALL, PaymentStatus::as_str),
            ["PROCESSING", "SUCCESS", "FAIL", "CANCELLED"]
        );
    }

    #[test]
    fn every_name_reads_back_as_its_variant() {
        for kind in ParticipantKind::ALL {
            assert_eq!(ParticipantKind::parse(kind.as_str()), Some(kind));
            assert_eq!(ParticipantKind::parse_any_case(&kind.as_str().to_lowercase()), Some(kind));
        }
        for status in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(PostingKind::parse("topup"), None);
    }
}
