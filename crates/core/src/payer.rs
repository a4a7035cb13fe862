//! Payers: holders of stored-value wallets who scan order codes and pay; and what the sandbox
//! lets a tester choose instead of paying.

use std::fmt;

use jiff::Timestamp;

use crate::money::Currency;
use crate::participant::Environment;
use crate::payment::FailReason;
use crate::text::{self, TextError};

/// Longest payer id.
pub const PAYER_ID_CHARS_MAX: usize = 64;

/// Sandbox payer ids start with this, as sandbox client ids start with `SANDBOX_`: the sandbox
/// can neither see nor take a live payer's id.
pub const SANDBOX_PAYER_ID_PREFIX: &str = "sandbox-";

/// A payer's id: what they sign in with (live) or pick (sandbox).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PayerId(String);

impl PayerId {
    pub fn parse(value: &str) -> Result<PayerId, TextError> {
        text::identifier(value, PAYER_ID_CHARS_MAX).map(PayerId)
    }

    /// The sandbox payer id for a name a tester chose: the name, with the sandbox prefix put
    /// in front unless it has it.
    pub fn sandbox(name: &str) -> Result<PayerId, TextError> {
        if name.starts_with(SANDBOX_PAYER_ID_PREFIX) {
            PayerId::parse(name)
        } else {
            PayerId::parse(&format!("{SANDBOX_PAYER_ID_PREFIX}{name}"))
        }
    }

    /// The environment the id belongs to, read off its prefix.
    pub fn environment(&self) -> Environment {
        if self.0.starts_with(SANDBOX_PAYER_ID_PREFIX) { Environment::Sandbox } else { Environment::Live }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For display to others: the first two and last two characters, the rest masked.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() <= 4 {
            return "*".repeat(chars.len());
        }
        let head: String = chars[..2].iter().collect();
        let tail: String = chars[chars.len() - 2..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(chars.len() - 4))
    }
}

impl fmt::Display for PayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PayerId({:?})", self.0)
    }
}

/// A wallet account holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payer {
    pub id: PayerId,
    pub environment: Environment,
    /// The currency the wallet pays in; payments in another currency are converted.
    pub currency: Currency,
    /// Hash of the PIN (live payers); sandbox payers have none.
    pub pin_hash: Option<String>,
    /// Wrong PINs entered since the last right one.
    pub pin_failures: u32,
    /// Set after too many wrong PINs: no PIN is checked before then.
    pub locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl Payer {
    /// A new payer with no wrong PINs on record.
    pub fn new(
        id: PayerId,
        environment: Environment,
        currency: Currency,
        pin_hash: Option<String>,
        now: Timestamp,
    ) -> Payer {
        Payer { id, environment, currency, pin_hash, pin_failures: 0, locked_until: None, created_at: now }
    }

    pub fn is_locked(&self, now: Timestamp) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }
}

/// What a sandbox tester chooses on the payer page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SandboxOutcome {
    Pay,
    Fail(FailReason),
}

impl SandboxOutcome {
    /// Every outcome the sandbox offers: pay, or fail as a wallet would.
    pub const ALL: [SandboxOutcome; 4] = [
        Self::Pay,
        Self::Fail(FailReason::UserBalanceNotEnough),
        Self::Fail(FailReason::RiskReject),
        Self::Fail(FailReason::UserKycNotQualified),
    ];

    /// `SUCCESS`, or the failure's result code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pay => "SUCCESS",
            Self::Fail(reason) => reason.as_str(),
        }
    }

    pub fn parse(value: &str) -> Option<SandboxOutcome> {
        Self::ALL.into_iter().find(|outcome| outcome.as_str() == value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_and_outcomes() {
        assert_eq!(PayerId::parse("alice123").unwrap().masked(), "al****23");
        assert_eq!(PayerId::parse("bob").unwrap().masked(), "***");
        assert_eq!(PayerId::sandbox("alice").unwrap().as_str(), "sandbox-alice");
        assert_eq!(PayerId::sandbox("sandbox-alice").unwrap().as_str(), "sandbox-alice");
        assert_eq!(PayerId::sandbox("alice").unwrap().environment(), Environment::Sandbox);
        assert_eq!(PayerId::parse("alice").unwrap().environment(), Environment::Live);
        assert!(PayerId::sandbox(&"x".repeat(60)).is_err(), "the prefix counts towards the length");
        for outcome in SandboxOutcome::ALL {
            assert_eq!(SandboxOutcome::parse(outcome.as_str()), Some(outcome));
        }
    }
}
