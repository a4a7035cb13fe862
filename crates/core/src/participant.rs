//! Participants (merchants, acquirers, ISVs) and the public keys they sign with.

use jiff::Timestamp;

use crate::access::Scopes;
use crate::ids::ClientId;
use crate::text::{BoundedText, Name};

/// Client ids of sandbox participants start with this prefix, as Alipay's do; the official
/// SDKs switch to the sandbox path when they see it.
pub const SANDBOX_CLIENT_ID_PREFIX: &str = "SANDBOX_";

/// The audit trail of what operators do to payers, who belong to no participant.
pub const PAYERS_TRAIL: &str = "payers";
/// The audit trail of operators' own sign-ins, sign-outs and second-factor changes.
pub const OPERATORS_TRAIL: &str = "operators";

/// Whether a client id is exactly the name of one of the trails above, which have events but
/// no participant.
pub fn is_platform_trail(client_id: &ClientId) -> bool {
    [PAYERS_TRAIL, OPERATORS_TRAIL].contains(&client_id.as_str())
}

/// Whether a client id names one of the trails above (in any letter case), which no
/// participant may take: its audit trail would show what is filed there.
pub fn is_reserved_client_id(client_id: &ClientId) -> bool {
    [PAYERS_TRAIL, OPERATORS_TRAIL].iter().any(|trail| client_id.as_str().eq_ignore_ascii_case(trail))
}

crate::named_enum! {
    /// What a participant is to the platform.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ParticipantKind {
        /// Sells to payers and is settled directly.
        Merchant = "MERCHANT",
        /// Registers secondary merchants and pays on their behalf.
        Acquirer = "ACQUIRER",
        /// A software vendor acting for merchants who authorised it.
        Isv = "ISV",
    }
}

crate::named_enum! {
    /// Where a participant lives: the sandbox (simulated payers, magic amounts) or live.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Environment {
        Sandbox = "sandbox",
        Live = "live",
    }
}

impl Environment {
    /// The environment a client id belongs to, read off its prefix.
    pub fn of_client_id(client_id: &ClientId) -> Environment {
        if client_id.as_str().starts_with(SANDBOX_CLIENT_ID_PREFIX) { Self::Sandbox } else { Self::Live }
    }
}

/// A party with a client id that calls the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub client_id: ClientId,
    pub kind: ParticipantKind,
    pub name: Name,
    /// Where notifications go when a request names no URL of its own.
    pub notify_url: Option<String>,
    pub created_at: Timestamp,
}

/// Version number of one of a participant's keys, as sent in `Signature: keyVersion=`.
pub type KeyVersion = u32;

impl Participant {
    /// Sandbox or live, as the client id says: the two can never disagree.
    pub fn environment(&self) -> Environment {
        Environment::of_client_id(&self.client_id)
    }
}

/// Longest label of a key.
pub const LABEL_CHARS_MAX: usize = 256;

/// What an operator notes of a key: who holds its private half.
pub type KeyLabel = BoundedText<LABEL_CHARS_MAX>;

/// A public key a participant signs requests with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantKey {
    pub client_id: ClientId,
    pub key_version: KeyVersion,
    /// DER-encoded X.509 SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
    /// Who holds the private half, for example `Integrator: Acme POS`.
    pub label: Option<KeyLabel>,
    /// What requests signed with this key may do: every scope for the participant's own
    /// keys, fewer for an integrator's.
    pub scopes: Scopes,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl ParticipantKey {
    /// A key signs requests from its creation until it expires or is revoked, whichever is first.
    pub fn is_usable(&self, now: Timestamp) -> bool {
        let expired = self.expires_at.is_some_and(|at| now >= at);
        let revoked = self.revoked_at.is_some_and(|at| now >= at);
        !expired && !revoked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_environments_parse() {
        assert_eq!(ParticipantKind::parse_any_case("merchant"), Some(ParticipantKind::Merchant));
        assert_eq!(ParticipantKind::parse("ISV"), Some(ParticipantKind::Isv));
        assert_eq!(ParticipantKind::parse("isv"), None, "stored names are read exactly");
        assert_eq!(ParticipantKind::parse_any_case("bank"), None);
        assert_eq!(Environment::parse("sandbox"), Some(Environment::Sandbox));
        assert_eq!(Environment::parse_any_case("Live"), Some(Environment::Live));
        assert_eq!(Environment::parse_any_case("prod"), None);
        let sandbox = ClientId::parse("SANDBOX_ABC").unwrap();
        assert_eq!(Environment::of_client_id(&sandbox), Environment::Sandbox);
    }

    #[test]
    fn key_usability() {
        let at = |seconds: i64| Timestamp::from_second(seconds).unwrap();
        let key = ParticipantKey {
            client_id: ClientId::parse("M1").unwrap(),
            key_version: 1,
            public_key_der: vec![],
            label: None,
            scopes: Scopes::ALL,
            created_at: at(0),
            expires_at: Some(at(100)),
            revoked_at: None,
        };
        assert!(key.is_usable(at(99)));
        assert!(!key.is_usable(at(100)));
        let revoked = ParticipantKey { revoked_at: Some(at(50)), ..key };
        assert!(revoked.is_usable(at(49)));
        assert!(!revoked.is_usable(at(50)));
    }
}
