//! `apiLogInquiry`, ocpay's own API: the caller's API log, oldest first after a cursor. Always
//! the signer's own log, whoever it may act for.

use ocpay_protocol::api_log::{
    ApiLogInquiryRequest, ApiLogInquiryResponse, ApiLogRecord, INQUIRY_LIMIT_DEFAULT, INQUIRY_LIMIT_MAX,
    SignatureDiagnosis,
};
use ocpay_protocol::{AmsResult, datetime};
use ocpay_store::{ApiLogEntry, ApiLogFilter};

use super::caller::Caller;
use super::error::ApiError;
use crate::service;
use crate::state::AppState;

pub(crate) async fn inquire(
    state: &AppState,
    caller: &Caller,
    request: ApiLogInquiryRequest,
) -> Result<ApiLogInquiryResponse, ApiError> {
    let Query { filter, after_id, limit } = query(request)?;
    // The gateway makes the signer the caller of this API, whoever it may act for.
    let signer = &caller.participant.client_id;
    let entries = service::api_log::follow(state, signer, &filter, after_id, limit).await?;
    let next_after_id = entries.last().map(|entry| entry.id).or(after_id).unwrap_or(0);
    Ok(ApiLogInquiryResponse {
        result: AmsResult::success(),
        entries: Some(entries.iter().map(record).collect()),
        next_after_id: Some(next_after_id.to_string()),
    })
}

/// What an inquiry asks for: which entries, after which id, how many.
pub(super) struct Query {
    pub(super) filter: ApiLogFilter,
    pub(super) after_id: Option<i64>,
    pub(super) limit: u32,
}

pub(super) fn query(request: ApiLogInquiryRequest) -> Result<Query, ApiError> {
    let limit = match request.limit.as_deref().map(str::trim) {
        None | Some("") => INQUIRY_LIMIT_DEFAULT,
        Some(text) => {
            text.parse::<u32>().ok().filter(|limit| (1..=INQUIRY_LIMIT_MAX).contains(limit)).ok_or_else(
                || ApiError::param("limit", format!("must be a whole number from 1 to {INQUIRY_LIMIT_MAX}")),
            )?
        }
    };
    let after_id =
        match request.after_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(text.parse::<i64>().ok().filter(|id| *id >= 0).ok_or_else(|| {
                ApiError::param("afterId", "must be an entry id: a whole number, 0 or more")
            })?),
        };
    let named =
        |text: Option<String>| text.map(|text| text.trim().to_owned()).filter(|text| !text.is_empty());
    let filter = ApiLogFilter {
        api: named(request.api),
        result_code: named(request.result_code),
        ..ApiLogFilter::default()
    };
    Ok(Query { filter, after_id, limit })
}

/// An entry as the inquiry answers it: without its headers and bodies.
fn record(entry: &ApiLogEntry) -> ApiLogRecord {
    ApiLogRecord {
        id: Some(entry.id.to_string()),
        // Entries written before the platform gave ids have none.
        request_id: Some(entry.request_id.clone()).filter(|id| !id.is_empty()),
        time: Some(datetime::format(entry.at)),
        api: Some(entry.api.clone()),
        path: Some(entry.path.clone()),
        verified: Some(entry.verified),
        key_version: entry.key_version.map(|version| version.to_string()),
        agent: entry.agent.as_ref().map(ToString::to_string),
        result_status: Some(entry.result_status.clone()),
        result_code: Some(entry.result_code.clone()),
        http_status: Some(entry.http_status.to_string()),
        latency_micros: Some(entry.latency_micros.to_string()),
        // Written by the gateway from this very type; one that does not read back is left out.
        diagnosis: entry
            .diagnosis
            .as_deref()
            .and_then(|text| serde_json::from_str::<SignatureDiagnosis>(text).ok()),
    }
}
