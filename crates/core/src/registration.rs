//! Merchant registrations (spec §4.7, §13.12): what an acquirer's `registration` fixes, the
//! states it goes through under review, and the decisions taken on it as pure functions: whether
//! a new request creates a registration, repeats one or is refused, and what the sandbox's
//! review decides.

use jiff::Timestamp;

use crate::ids::{ClientId, RegistrationId, RegistrationRequestId};
use crate::text::BoundedText;

/// Longest reason a registration is rejected for.
pub const REJECT_REASON_CHARS_MAX: usize = 256;

/// Why a registration was rejected, as the acquirer is told.
pub type RejectReason = BoundedText<REJECT_REASON_CHARS_MAX>;

/// Longest `referenceStoreId` the registration APIs accept.
pub const STORE_ID_CHARS_MAX: usize = 32;

/// The prefix of a sandbox `referenceMerchantId` that the sandbox's review rejects.
pub const SANDBOX_REJECT_PREFIX: &str = "REJECT";

/// Everything fixed when a registration is requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationTerms {
    pub id: RegistrationId,
    /// The acquirer that registers the merchant, and alone may pay for it.
    pub owner: ClientId,
    pub request_id: RegistrationRequestId,
    pub reference_merchant_id: String,
    pub reference_store_id: String,
    /// The significant content of the request (merchant, store, products) in a canonical
    /// text form: a repeat must match it exactly.
    pub content: String,
    /// Where the decision is notified; no notification without it.
    pub notify_url: Option<String>,
    pub created_at: Timestamp,
    /// A decision taken without an operator when due (the sandbox's review).
    pub automatic: Option<AutomaticDecision>,
}

/// A decision the platform takes by itself at a set time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutomaticDecision {
    pub at: Timestamp,
    pub decision: Decision,
}

/// What a review decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject { reason: RejectReason },
}

/// Where a registration stands. `PROCESSING` until reviewed, then final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationState {
    Processing,
    Approved { decided_at: Timestamp },
    Rejected { decided_at: Timestamp, reason: RejectReason },
}

impl RegistrationState {
    pub fn status(&self) -> &'static str {
        match self {
            Self::Processing => "PROCESSING",
            Self::Approved { .. } => "APPROVED",
            Self::Rejected { .. } => "REJECTED",
        }
    }

    pub fn decided_at(&self) -> Option<Timestamp> {
        match self {
            Self::Processing => None,
            Self::Approved { decided_at } | Self::Rejected { decided_at, .. } => Some(*decided_at),
        }
    }

    pub fn reject_reason(&self) -> Option<&str> {
        match self {
            Self::Rejected { reason, .. } => Some(reason.as_str()),
            _ => None,
        }
    }

    /// The state after `decision` at `now`.
    pub fn decided(decision: &Decision, now: Timestamp) -> RegistrationState {
        match decision {
            Decision::Approve => Self::Approved { decided_at: now },
            Decision::Reject { reason } => Self::Rejected { decided_at: now, reason: reason.clone() },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub terms: RegistrationTerms,
    pub state: RegistrationState,
}

/// Why a registration request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationRefusal {
    #[error("a registration with this request id exists with different content")]
    RepeatInconsistent,
    /// The merchant and store have an approved registration of this acquirer.
    #[error("this merchant and store are registered and approved already")]
    AlreadyRegistered,
    /// The merchant and store have a registration of this acquirer under review.
    #[error("a registration of this merchant and store is under review")]
    UnderReview,
}

/// What a `registration` request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationOutcome {
    /// A new registration, `PROCESSING`.
    Create,
    /// A repeat: the registration this `registrationRequestId` created is the answer again.
    Existing,
    Refused(RegistrationRefusal),
}

/// Decides a `registration` request (spec §13.11–12) against the acquirer's registration with
/// the same `registrationRequestId`, if any, and its live (processing or approved) registration
/// of the same merchant and store, if any. A rejected registration does not count: the
/// merchant may be registered again under a new request id.
pub fn decide_registration(
    new: &RegistrationTerms,
    same_request: Option<&Registration>,
    same_store: Option<&Registration>,
) -> RegistrationOutcome {
    if let Some(existing) = same_request {
        return if existing.terms.content == new.content {
            RegistrationOutcome::Existing
        } else {
            RegistrationOutcome::Refused(RegistrationRefusal::RepeatInconsistent)
        };
    }
    match same_store.map(|registration| &registration.state) {
        Some(RegistrationState::Approved { .. }) => {
            RegistrationOutcome::Refused(RegistrationRefusal::AlreadyRegistered)
        }
        Some(RegistrationState::Processing) => RegistrationOutcome::Refused(RegistrationRefusal::UnderReview),
        Some(RegistrationState::Rejected { .. }) | None => RegistrationOutcome::Create,
    }
}

/// What the sandbox's review decides: a `referenceMerchantId` starting with `REJECT` is
/// rejected, every other one approved.
pub fn sandbox_decision(reference_merchant_id: &str) -> Decision {
    if reference_merchant_id.starts_with(SANDBOX_REJECT_PREFIX) {
        Decision::Reject {
            // Plain words, not the wire's field name: core knows the merchant's reference id,
            // the gateway owns what the protocol calls it.
            reason: RejectReason::parse(&format!(
                "sandbox: the merchant's reference id starts with {SANDBOX_REJECT_PREFIX}"
            ))
            .expect("a constant of plain text well under the reason's limit"),
        }
    } else {
        Decision::Approve
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(request_id: &str, content: &str) -> RegistrationTerms {
        RegistrationTerms {
            id: RegistrationId::parse(&format!("R-{request_id}")).unwrap(),
            owner: ClientId::parse("ACQ").unwrap(),
            request_id: RegistrationRequestId::parse(request_id).unwrap(),
            reference_merchant_id: "M1".into(),
            reference_store_id: "S1".into(),
            content: content.into(),
            notify_url: None,
            created_at: Timestamp::UNIX_EPOCH,
            automatic: None,
        }
    }

    fn in_state(state: RegistrationState) -> Registration {
        Registration { terms: terms("RR-OLD", "{}"), state }
    }

    #[test]
    fn decisions() {
        let at = Timestamp::UNIX_EPOCH;
        let new = terms("RR-NEW", "{}");
        let processing = in_state(RegistrationState::Processing);
        let approved = in_state(RegistrationState::Approved { decided_at: at });
        let reason = "no".parse().unwrap();
        let rejected = in_state(RegistrationState::Rejected { decided_at: at, reason });
        let same = Registration { terms: new.clone(), state: RegistrationState::Processing };
        let changed =
            Registration { terms: terms("RR-NEW", "{\"x\":1}"), state: RegistrationState::Processing };
        use RegistrationOutcome::*;
        use RegistrationRefusal::*;
        let cases = [
            (None, None, Create),
            (None, Some(&rejected), Create),
            (None, Some(&processing), Refused(UnderReview)),
            (None, Some(&approved), Refused(AlreadyRegistered)),
            (Some(&same), Some(&approved), Existing),
            (Some(&changed), None, Refused(RepeatInconsistent)),
        ];
        for (same_request, same_store, expected) in cases {
            assert_eq!(decide_registration(&new, same_request, same_store), expected);
        }
    }

    #[test]
    fn the_sandbox_rejects_by_prefix() {
        assert_eq!(sandbox_decision("M-1"), Decision::Approve);
        let Decision::Reject { reason } = sandbox_decision("REJECT-1") else { panic!("approved REJECT-1") };
        assert_eq!(reason.as_str(), "sandbox: the merchant's reference id starts with REJECT");
        assert_eq!(
            RegistrationState::decided(&Decision::Approve, Timestamp::UNIX_EPOCH).status(),
            "APPROVED"
        );
    }
}
