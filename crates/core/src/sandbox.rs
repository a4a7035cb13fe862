//! The sandbox's magic amounts (spec §13.15): amounts that make the sandbox answer a failure
//! path on purpose, so that integrators can test their handling of it offline. Live
//! participants never see them.

use crate::money::Money;
use crate::participant::Environment;

/// The sandbox's magic amounts (spec §13.15), by `paymentAmount.value` in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MagicAmount {
    /// The first `pay` with a `paymentRequestId` answers `U / UNKNOWN_EXCEPTION` without
    /// creating a payment; a retry with the same id creates it.
    PayUnknownOnce,
    /// `pay` answers only after the client's timeout; the payment exists.
    PaySlow,
    /// The first inquiry of the payment answers `U / UNKNOWN_EXCEPTION`.
    InquiryUnknownOnce,
    /// The first delivery attempt of the payment's success notification never counts as
    /// acknowledged, whatever the answer; later attempts count as answered.
    FirstNotificationNotCounted,
}

impl MagicAmount {
    /// The magic behaviour of an amount, in the sandbox only.
    pub fn of(environment: Environment, amount: Money) -> Option<MagicAmount> {
        if environment != Environment::Sandbox {
            return None;
        }
        [Self::PayUnknownOnce, Self::PaySlow, Self::InquiryUnknownOnce, Self::FirstNotificationNotCounted]
            .into_iter()
            .find(|magic| magic.minor() == amount.minor())
    }

    /// The `paymentAmount.value` that asks for it.
    pub const fn minor(self) -> i64 {
        match self {
            Self::PayUnknownOnce => 9901,
            Self::PaySlow => 9902,
            Self::InquiryUnknownOnce => 9903,
            Self::FirstNotificationNotCounted => 9904,
        }
    }
}

/// The sandbox's magic refund amounts, by `refundAmount.value` in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundMagicAmount {
    /// The first `refund` with this `refundRequestId` answers `U / UNKNOWN_EXCEPTION` without
    /// refunding; a retry refunds.
    UnknownOnce,
    /// The refund is accepted as `PROCESSING` and fails when it comes due, moving no money.
    FailsLater,
}

impl RefundMagicAmount {
    /// The magic behaviour of a refund amount, in the sandbox only.
    pub fn of(environment: Environment, amount: Money) -> Option<RefundMagicAmount> {
        if environment != Environment::Sandbox {
            return None;
        }
        [Self::UnknownOnce, Self::FailsLater].into_iter().find(|magic| magic.minor() == amount.minor())
    }

    /// The `refundAmount.value` that asks for it.
    pub const fn minor(self) -> i64 {
        match self {
            Self::UnknownOnce => 9901,
            Self::FailsLater => 9902,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    #[test]
    fn only_the_sandbox_has_magic() {
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(MagicAmount::of(Environment::Sandbox, Money::new(9902, usd)), Some(MagicAmount::PaySlow));
        assert_eq!(MagicAmount::of(Environment::Live, Money::new(9902, usd)), None);
        assert_eq!(MagicAmount::of(Environment::Sandbox, Money::new(9900, usd)), None);
        let refund = RefundMagicAmount::of(Environment::Sandbox, Money::new(9901, usd));
        assert_eq!(refund, Some(RefundMagicAmount::UnknownOnce));
        assert_eq!(RefundMagicAmount::of(Environment::Live, Money::new(9901, usd)), None);
    }
}
