//! The API log: every request the gateway received under a participant's client id, verified or
//! not, with its headers, bodies and answer, so that a developer can see what reached the
//! platform and why a signature failed. It is kept apart from the audit trail, which records only
//! verified requests; the log is a developer's aid, pruned after its retention.

use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::KeyVersion;

/// One request of the API log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLogEntry {
    /// Assigned by the database, increasing (never reused, even after pruning); ignored when
    /// recording.
    pub id: i64,
    /// The id the server gave the request: its answer's `X-Request-Id` header and the span of
    /// its log lines (empty for entries written before the server gave ids).
    pub request_id: String,
    /// The participant its `Client-Id` header names (the signer, whoever it acted for).
    pub client_id: ClientId,
    /// When the gateway received it.
    pub at: Timestamp,
    /// The API's name as the protocol's `apis!` table declares it, or the path when it names none.
    pub api: String,
    pub path: String,
    /// Whether its signature verified with one of the participant's keys.
    pub verified: bool,
    /// The key version it was verified (or tried) with.
    pub key_version: Option<KeyVersion>,
    /// The ISV, when an ISV acted for a merchant with an Agent-Token (then `client_id` is the ISV
    /// too), as in the audit trail.
    pub agent: Option<ClientId>,
    pub result_status: String,
    pub result_code: String,
    pub http_status: u16,
    /// From receiving the request to having signed its answer.
    pub latency_micros: i64,
    /// A JSON object of the headers, secrets redacted.
    pub request_headers: String,
    /// The body as text, cut to the configured size (saying so where it was cut).
    pub request_body: String,
    /// A JSON object of the answer's headers.
    pub response_headers: String,
    pub response_body: String,
    /// Why its signature did not verify (JSON), for a request under a known client id that
    /// failed verification.
    pub diagnosis: Option<String>,
}

/// Which entries a read of the API log returns; `None` keeps every one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiLogFilter {
    /// The API's name (or path), exactly.
    pub api: Option<String>,
    pub result_code: Option<String>,
    /// Received at or after this instant ...
    pub from: Option<Timestamp>,
    /// ... and before this one.
    pub to: Option<Timestamp>,
}
