//! The signed AMS envelope around every API call.
//!
//! In order: the method, the path, the content type, the required headers, `Request-Time`
//! within the skew window, the body within its size limit, the caller and its key, and the
//! signature over the raw body bytes. Only a verified body is parsed. Whatever the outcome,
//! the answer is signed with the platform key, errors included.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use ocpay_core::ids::ClientId;
use ocpay_core::participant::Participant;
use ocpay_protocol::api::header as names;
use ocpay_protocol::payments::ResultOnly;
use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{AmsResult, Api, SignatureHeader, datetime};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::{payments, refunds, registrations};
use crate::data_dir::PLATFORM_KEY_VERSION;
use crate::state::AppState;

/// The verified caller of an API.
pub(crate) struct Caller {
    pub(crate) participant: Participant,
    pub(crate) key_version: u32,
}

/// Handles every request under `/ams/`.
pub(crate) async fn handle(State(state): State<Arc<AppState>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    // Sign with the path the client used (the official Python SDK sends an absolute URL;
    // its path component is what it signed).
    let path =
        parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let echoed_client_id = header_text(&parts.headers, names::CLIENT_ID).unwrap_or_default().to_owned();
    // A request that runs too long (a body trickling in, a stuck store) gets a signed answer
    // that says "unknown: retry the same request or inquire", never a bare timeout.
    let timeout = state.config.request_timeout();
    let outcome = tokio::time::timeout(timeout, process(&state, &parts, body, &path))
        .await
        .unwrap_or(Err(ApiError::Timeout { timeout_ms: state.config.request_timeout_ms }));
    let (status, body) = match outcome {
        Ok(body) => (StatusCode::OK, body),
        Err(error) => {
            let (status, code, message) = error.answer();
            if let Some(detail) = error.internal_detail() {
                tracing::error!(client_id = %echoed_client_id, %path, %detail, "request failed inside the platform");
            } else {
                tracing::info!(client_id = %echoed_client_id, %path, result = code.as_str(), %message, "request refused");
            }
            let body = ResultOnly { result: AmsResult::with_message(code, message) };
            // A struct of three strings always serializes; the fallback is never sent.
            (status, serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec()))
        }
    };
    signed_response(&state, &path, &echoed_client_id, status, body)
}

async fn process(state: &AppState, parts: &Parts, body: Body, path: &str) -> Result<Vec<u8>, ApiError> {
    if parts.method != Method::POST {
        return Err(ApiError::MethodNotSupported);
    }
    let api = Api::from_path(parts.uri.path()).ok_or(ApiError::NoInterface)?;
    check_content_type(&parts.headers)?;
    let client_id = required_header(&parts.headers, names::CLIENT_ID, "Client-Id")?;
    let request_time = required_header(&parts.headers, names::REQUEST_TIME, "Request-Time")?;
    let signature = required_header(&parts.headers, names::SIGNATURE, "Signature")?;
    check_request_time(state, request_time)?;
    let body = read_body(state, &parts.headers, body).await?;
    let signature =
        SignatureHeader::parse(signature).map_err(|error| ApiError::SignatureInvalid(error.to_string()))?;
    let caller = authenticate(state, client_id, request_time, path, &body, &signature).await?;
    tracing::debug!(client_id, api = api.name(), key_version = caller.key_version, "verified request");
    match api {
        Api::Pay => render(payments::pay(state, &caller, parse(&body)?).await?),
        Api::InquiryPayment => render(payments::inquire(state, &caller, parse(&body)?).await?),
        Api::Cancel => render(payments::cancel(state, &caller, parse(&body)?).await?),
        Api::Refund => render(refunds::refund(state, &caller, parse(&body)?).await?),
        Api::InquiryRefund => render(refunds::inquire(state, &caller, parse(&body)?).await?),
        Api::Registration => render(registrations::register(state, &caller, parse(&body)?).await?),
        Api::InquiryRegistrationStatus => {
            render(registrations::inquire_status(state, &caller, parse(&body)?).await?)
        }
        Api::InquiryRegistrationInfo => {
            render(registrations::inquire_info(state, &caller, parse(&body)?).await?)
        }
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn required_header<'a>(
    headers: &'a HeaderMap,
    name: &str,
    display: &'static str,
) -> Result<&'a str, ApiError> {
    match headers.get(name) {
        None => Err(ApiError::Header { name: display, reason: "is required".into() }),
        Some(value) => value.to_str().ok().filter(|text| !text.trim().is_empty()).ok_or_else(|| {
            ApiError::Header { name: display, reason: "must be non-empty visible ASCII".into() }
        }),
    }
}

/// `application/json`, with no charset or UTF-8 (what the signature bytes are read as).
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let value =
        header_text(headers, header::CONTENT_TYPE.as_str()).ok_or(ApiError::MediaTypeNotAcceptable)?;
    let mut params = value.split(';').map(str::trim);
    let media_type = params.next().unwrap_or_default();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::MediaTypeNotAcceptable);
    }
    for param in params {
        if let Some((name, charset)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("charset")
        {
            let charset = charset.trim().trim_matches('"');
            if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("utf8") {
                return Err(ApiError::MediaTypeNotAcceptable);
            }
        }
    }
    Ok(())
}

fn check_request_time(state: &AppState, request_time: &str) -> Result<(), ApiError> {
    let sent = datetime::parse_header_time(request_time).ok_or_else(|| ApiError::Header {
        name: "Request-Time",
        reason: "must be epoch milliseconds or ISO 8601 with an offset".into(),
    })?;
    let skew = state.clock.now().duration_since(sent).abs();
    let skew_max = state.config.request_time_skew_max();
    if skew > skew_max {
        return Err(ApiError::Header {
            name: "Request-Time",
            reason: format!("must be within {} seconds of the server's clock", skew_max.as_secs()),
        });
    }
    Ok(())
}

/// Reads the body, refusing one larger than the limit before reading past it.
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let bytes_max = state.config.request_body_bytes_max;
    let declared =
        header_text(headers, header::CONTENT_LENGTH.as_str()).and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > bytes_max as u64) {
        return Err(ApiError::BodyTooLarge { bytes_max });
    }
    match Limited::new(body, bytes_max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(ApiError::BodyTooLarge { bytes_max }),
        Err(_) => Err(ApiError::Header {
            name: "Content-Length",
            reason: "the body could not be read in full".into(),
        }),
    }
}

/// Finds the caller and its key, and verifies the signature over the exact bytes received.
async fn authenticate(
    state: &AppState,
    client_id: &str,
    request_time: &str,
    path: &str,
    body: &[u8],
    signature: &SignatureHeader,
) -> Result<Caller, ApiError> {
    let client_id = ClientId::parse(client_id).map_err(|_| ApiError::ClientInvalid)?;
    let (participant, key) = state
        .store
        .participant_with_key(&client_id, signature.key_version)
        .await
        .map_err(service)?
        .ok_or(ApiError::ClientInvalid)?;
    let key = key
        .filter(|key| key.is_usable(state.clock.now()))
        .ok_or(ApiError::KeyNotFound { key_version: signature.key_version })?;
    let verifying_key = state.keys.get(&key.public_key_der).map_err(|error| {
        tracing::error!(%client_id, key_version = key.key_version, %error, "a stored public key does not parse");
        ApiError::KeyNotFound { key_version: Some(key.key_version) }
    })?;
    let content = content_to_sign("POST", path, client_id.as_str(), request_time, body);
    verifying_key
        .verify(&content, &signature.signature)
        .map_err(|_| ApiError::SignatureInvalid("does not verify with this client's key".into()))?;
    Ok(Caller { participant, key_version: key.key_version })
}

fn service(error: ocpay_store::StoreError) -> ApiError {
    ApiError::Service(error.into())
}

/// Parses a verified body, naming the field that does not fit.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde would read a JSON array into a struct field by field; AMS bodies are objects.
    if body.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::param("request body", "is not a valid JSON object"));
    }
    // Most bodies are fine: parse them directly, and retrace only a failure to name its field.
    serde_json::from_slice(body).map_err(|error| explain::<T>(body, &error))
}

/// Names the field a body failed at, by parsing it again with path tracking.
fn explain<T: DeserializeOwned>(body: &[u8], error: &serde_json::Error) -> ApiError {
    let not_an_object =
        |reason: String| ApiError::param("request body", format!("is not a valid JSON object ({reason})"));
    if error.is_syntax() || error.is_eof() {
        return not_an_object(error.to_string());
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Err(traced) if traced.path().to_string() != "." => {
            ApiError::param(traced.path().to_string(), traced.into_inner())
        }
        _ => not_an_object(error.to_string()),
    }
}

fn render<T: Serialize>(response: T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&response).map_err(|error| ApiError::Internal(error.to_string()))
}

/// Signs `body` for `client_id` and wraps it in a response with the AMS headers.
fn signed_response(
    state: &AppState,
    path: &str,
    client_id: &str,
    status: StatusCode,
    body: Vec<u8>,
) -> Response {
    let response_time = datetime::format(state.clock.now());
    let content = content_to_sign("POST", path, client_id, &response_time, &body);
    let signature = match state.platform_key.sign_header(PLATFORM_KEY_VERSION, &content) {
        Ok(signature) => signature,
        Err(error) => {
            tracing::error!(%error, "signing a response failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(names::CONTENT_TYPE_JSON));
    headers
        .insert(names::CLIENT_ID, HeaderValue::from_str(client_id).unwrap_or(HeaderValue::from_static("")));
    if let Ok(value) = HeaderValue::from_str(&response_time) {
        headers.insert(names::RESPONSE_TIME, value);
    }
    if let Ok(value) = HeaderValue::from_str(&signature) {
        headers.insert(names::SIGNATURE, value);
    }
    response
}
