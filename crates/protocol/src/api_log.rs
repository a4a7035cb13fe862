//! ocpay's own API beside the AMS ones: a participant reads its API log (what reached the
//! platform under its client id, and what it answered), signed like every AMS call. Also the
//! diagnosis of a signature that did not verify, as the log keeps it and this API returns it.
//!
//! `POST /ams/api/v1/ocpay/apiLog/inquiry` answers the caller's entries oldest first after
//! `afterId`, or, without one, its newest `limit` entries (still oldest first), and the cursor to
//! ask with next. Requests to this API are not logged themselves, so following the log does not
//! feed it.

use serde::{Deserialize, Serialize};

use crate::AmsResult;
use crate::lenient;

/// The most entries one inquiry answers, and how many it answers unless told.
pub const INQUIRY_LIMIT_MAX: u32 = 500;
pub const INQUIRY_LIMIT_DEFAULT: u32 = 100;

/// `POST /ams/api/v1/ocpay/apiLog/inquiry`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiLogInquiryRequest {
    /// Entries after this id (the `nextAfterId` of the answer before); without it, the newest.
    #[serde(default, deserialize_with = "lenient::string")]
    pub after_id: Option<String>,
    /// Only entries of this API (its name, such as `pay`, or the path of a request that named
    /// none).
    pub api: Option<String>,
    /// Only entries answered with this result code.
    pub result_code: Option<String>,
    /// At most this many entries, 1 to [`INQUIRY_LIMIT_MAX`] (default [`INQUIRY_LIMIT_DEFAULT`]).
    #[serde(default, deserialize_with = "lenient::string")]
    pub limit: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiLogInquiryResponse {
    pub result: AmsResult,
    /// Oldest first.
    pub entries: Option<Vec<ApiLogRecord>>,
    /// What to send as `afterId` next: the last entry's id, or the `afterId` sent when there was
    /// none.
    pub next_after_id: Option<String>,
}

/// One request of the API log, without its headers and bodies.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiLogRecord {
    pub id: Option<String>,
    /// The id the platform gave the request: its answer's `X-Request-Id` header, and the request
    /// id of the platform's log lines about it.
    pub request_id: Option<String>,
    /// When the platform received it (ISO 8601, whole seconds).
    pub time: Option<String>,
    pub api: Option<String>,
    pub path: Option<String>,
    /// Whether its signature verified.
    pub verified: Option<bool>,
    /// The key version it was verified (or tried) with.
    pub key_version: Option<String>,
    /// The ISV that sent it for a merchant.
    pub agent: Option<String>,
    pub result_status: Option<String>,
    pub result_code: Option<String>,
    pub http_status: Option<String>,
    pub latency_micros: Option<String>,
    /// Why its signature did not verify.
    pub diagnosis: Option<SignatureDiagnosis>,
}

/// Why a request's signature did not verify: what the platform verified, with which key, and
/// the most likely cause, found by verifying the signature against variants of what was signed.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureDiagnosis {
    /// The exact string the platform verified: `POST <path>\n<client-id>.<request-time>.<body>`
    /// (cut as the log cuts bodies).
    pub string_to_sign: String,
    /// The key version the platform tried, if the participant has it.
    pub key_version: Option<String>,
    /// One of the `CAUSE_*` names.
    pub cause: String,
    /// What happened and what to change, in a sentence.
    pub message: String,
    /// The key version that verifies a variant, when one does.
    pub verifying_key_version: Option<String>,
    /// What the signer signed instead, when a variant verifies (its first line and the
    /// `client-id.request-time.` prefix; the body is the request's).
    pub signed_instead: Option<String>,
    /// Whether the `Signature` header's value was URL-encoded as the protocol asks.
    pub signature_url_encoded: Option<bool>,
}

/// `Request-Time` was signed in another format than the header sent (epoch seconds, ISO text).
pub const CAUSE_REQUEST_TIME_FORMAT: &str = "REQUEST_TIME_FORMAT";
/// The path was signed without the sandbox prefix (or with it, when sent without).
pub const CAUSE_SANDBOX_PREFIX: &str = "SANDBOX_PREFIX";
/// The path was signed with the scheme and host (the whole URL).
pub const CAUSE_PATH_WITH_HOST: &str = "PATH_WITH_HOST";
/// The signature travelled as raw base64: its `+` arrived as spaces.
pub const CAUSE_SIGNATURE_NOT_URL_ENCODED: &str = "SIGNATURE_NOT_URL_ENCODED";
/// The signature was URL-encoded twice.
pub const CAUSE_SIGNATURE_URL_ENCODED_TWICE: &str = "SIGNATURE_URL_ENCODED_TWICE";
/// Another of the participant's keys verifies it: the header names the wrong key version.
pub const CAUSE_OTHER_KEY_VERSION: &str = "OTHER_KEY_VERSION";
/// The signature cannot be read at all (not base64, or not RSA-2048's length).
pub const CAUSE_SIGNATURE_UNREADABLE: &str = "SIGNATURE_UNREADABLE";
/// Nothing above verifies: most likely the body changed after it was signed.
pub const CAUSE_BODY_CHANGED: &str = "BODY_CHANGED";
