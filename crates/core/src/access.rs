//! Who may do what: the scopes of a key or of an ISV's authorisation, and the grants through
//! which merchants authorise ISVs.
//!
//! Invariants: a scope set is never empty once parsed; a grant acts only for its merchant,
//! only for its ISV, only within its scopes, and only from its creation until it expires or is
//! revoked, whichever comes first.

use std::fmt;

use jiff::Timestamp;

use crate::ids::ClientId;

crate::named_enum! {
    /// One kind of call a key or a grant may make.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Scope {
        Pay = "pay",
        Inquiry = "inquiry",
        Cancel = "cancel",
        Refund = "refund",
        Reports = "reports",
        Registration = "registration",
    }
}

impl Scope {
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A non-empty set of scopes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

/// Why a scope list does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopesError {
    #[error("{0:?} is not a scope (pay, inquiry, cancel, refund, reports, registration)")]
    Unknown(String),
    #[error("names no scope")]
    Empty,
}

impl Scopes {
    /// Every scope: a participant's own keys.
    pub const ALL: Scopes = Scopes((1 << Scope::ALL.len()) - 1);

    /// Parses a comma-separated list such as `pay,inquiry`; `all` names every scope.
    pub fn parse(text: &str) -> Result<Scopes, ScopesError> {
        let mut bits = 0u8;
        for name in text.split(',').map(str::trim).filter(|name| !name.is_empty()) {
            if name.eq_ignore_ascii_case("all") {
                bits |= Self::ALL.0;
                continue;
            }
            let scope = Scope::parse_any_case(name).ok_or_else(|| ScopesError::Unknown(name.to_owned()))?;
            bits |= scope.bit();
        }
        if bits == 0 { Err(ScopesError::Empty) } else { Ok(Scopes(bits)) }
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |scope| self.contains(*scope))
    }
}

impl fmt::Display for Scopes {
    /// The comma-separated list `parse` reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

/// A merchant's authorisation of an ISV to act for it: the `Agent-Token` stands for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    /// The merchant (or acquirer) whose payments the ISV may make and see.
    pub merchant: ClientId,
    pub isv: ClientId,
    pub scopes: Scopes,
    /// SHA-256 of the token, hex: the token itself is shown once and never stored.
    pub token_sha256: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// Why a grant does not let a call through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantRefusal {
    /// The token belongs to another ISV.
    OtherIsv,
    Expired,
    Revoked,
    OutOfScope(Scope),
}

impl fmt::Display for GrantRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OtherIsv => f.write_str("was not issued to this client"),
            Self::Expired => f.write_str("has expired"),
            Self::Revoked => f.write_str("has been revoked"),
            Self::OutOfScope(scope) => write!(f, "does not allow the {} scope", scope.as_str()),
        }
    }
}

impl Grant {
    /// Whether `isv` may make a call of `scope` for the grant's merchant at `now`.
    pub fn allows(&self, isv: &ClientId, scope: Scope, now: Timestamp) -> Result<(), GrantRefusal> {
        if &self.isv != isv {
            return Err(GrantRefusal::OtherIsv);
        }
        if self.revoked_at.is_some_and(|at| now >= at) {
            return Err(GrantRefusal::Revoked);
        }
        if self.expires_at.is_some_and(|at| now >= at) {
            return Err(GrantRefusal::Expired);
        }
        if !self.scopes.contains(scope) {
            return Err(GrantRefusal::OutOfScope(scope));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print() {
        let cases: [(&str, Result<&str, ScopesError>); 7] = [
            ("pay,inquiry", Ok("pay,inquiry")),
            (" Refund , pay ", Ok("pay,refund")),
            ("all", Ok("pay,inquiry,cancel,refund,reports,registration")),
            ("pay,pay", Ok("pay")),
            ("", Err(ScopesError::Empty)),
            (" , ", Err(ScopesError::Empty)),
            ("pay,steal", Err(ScopesError::Unknown("steal".into()))),
        ];
        for (text, expected) in cases {
            assert_eq!(
                Scopes::parse(text).map(|scopes| scopes.to_string()),
                expected.map(str::to_owned),
                "{text}"
            );
        }
        for scope in Scope::ALL {
            assert!(Scopes::ALL.contains(scope));
            assert_eq!(Scopes::parse(scope.as_str()).unwrap().iter().collect::<Vec<_>>(), vec![scope]);
        }
    }

    #[test]
    fn grants_allow_only_their_isv_scopes_and_lifetime() {
        let at = |seconds: i64| Timestamp::from_second(seconds).unwrap();
        let isv = ClientId::parse("ISV1").unwrap();
        let other = ClientId::parse("ISV2").unwrap();
        let grant = Grant {
            id: "g".into(),
            merchant: ClientId::parse("M1").unwrap(),
            isv: isv.clone(),
            scopes: Scopes::parse("pay,inquiry").unwrap(),
            token_sha256: String::new(),
            created_at: at(0),
            expires_at: Some(at(100)),
            revoked_at: None,
        };
        let revoked = Grant { revoked_at: Some(at(50)), ..grant.clone() };
        let cases = [
            (&grant, &isv, Scope::Pay, 10, Ok(())),
            (&grant, &isv, Scope::Inquiry, 99, Ok(())),
            (&grant, &isv, Scope::Refund, 10, Err(GrantRefusal::OutOfScope(Scope::Refund))),
            (&grant, &other, Scope::Pay, 10, Err(GrantRefusal::OtherIsv)),
            (&grant, &isv, Scope::Pay, 100, Err(GrantRefusal::Expired)),
            (&revoked, &isv, Scope::Pay, 49, Ok(())),
            (&revoked, &isv, Scope::Pay, 50, Err(GrantRefusal::Revoked)),
        ];
        for (grant, client, scope, now, expected) in cases {
            assert_eq!(grant.allows(client, scope, at(now)), expected, "{client} {scope:?} at {now}");
        }
    }
}
