//! What the operator's console reads and changes across participants: a participant's
//! suspension (which the gateway reads with the signer's key, in the same read), the list of
//! participants, and the audit trail searched across participants.

use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Environment, Participant, ParticipantKey, ParticipantKind};

use crate::AuditEvent;

/// A request's signer as the gateway reads it, in one read: the participant, the key the
/// request names (`None` when it has no such version) and whether an operator suspended it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub participant: Participant,
    pub key: Option<ParticipantKey>,
    /// Set while the participant is suspended: its requests are refused after their signature
    /// is verified.
    pub suspended_at: Option<Timestamp>,
}

/// A participant as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantListing {
    pub participant: Participant,
    pub suspended_at: Option<Timestamp>,
}

/// Which participants the console lists; `None` takes every one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParticipantFilter {
    pub kind: Option<ParticipantKind>,
    pub environment: Option<Environment>,
    /// Part of the client id or of the name, in any letter case.
    pub text: Option<String>,
    /// Only the suspended ones (`Some(true)`) or only the others (`Some(false)`).
    pub suspended: Option<bool>,
}

/// Which audit events the console's search finds; `None` takes every one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Events the participant signed, or that were about its payments.
    pub client_id: Option<ClientId>,
    /// The API or action name, exactly (`pay`, `console.suspend`).
    pub api: Option<String>,
    pub result_code: Option<String>,
    /// At or after.
    pub from: Option<Timestamp>,
    /// Before.
    pub to: Option<Timestamp>,
}

/// An audit event with its id, the search's keyset cursor (newer events have larger ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub event_id: i64,
    pub event: AuditEvent,
}
