//! The signed AMS envelope around every API call.
//!
//! In order: the method, the path, the content type, the required headers, `Request-Time`
//! within the skew window, the body within its size limit, the caller and its key, and the
//! signature over the raw body bytes. Only a verified body is parsed. Whatever the outcome,
//! the answer is signed with the platform key, errors included.
//!
//! A verified request goes to the audit trail; every request whose `Client-Id` names a
//! participant, verified or not, goes to the API log with its headers, bodies and answer, and a
//! signature that did not verify with the signature debugger's diagnosis.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use ocpay_core::access::Scope;
use ocpay_core::ids::{ClientId, ID_CHARS_MAX};
use ocpay_core::participant::{Participant, ParticipantKey, ParticipantKind};
use ocpay_protocol::api::header as names;
use ocpay_protocol::payments::ResultOnly;
use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{AmsResult, Api, ApiRequest, ApiResponse as _, ResultCode, SignatureHeader, datetime};
use ocpay_store::{ApiLogEntry, AuditEvent};
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

use super::caller::Caller;
use super::error::ApiError;
use super::{payments, refunds, registrations};
use crate::api_log;
use crate::metrics::RequestId;
use crate::service::grants;
use crate::signature_debug::{self, Received};
use crate::state::AppState;

/// What the audit trail and the API log learn about a request as the gateway gets through it.
#[derive(Default)]
struct Audit {
    api: Option<Api>,
    /// Set once the signature verifies with one of the participant's keys: from then on the
    /// request is recorded.
    client_id: Option<ClientId>,
    key_version: Option<u32>,
    merchant: Option<ClientId>,
    agent: Option<ClientId>,
    idempotency_key: Option<String>,
    /// Whether the `Client-Id` names a participant, once the gateway has looked it up.
    known: Option<bool>,
    /// The key version the signature was checked with (or that the header named, when the
    /// participant has no such key).
    tried_key_version: Option<u32>,
    /// The body, once read.
    body: Option<Bytes>,
    /// Whether the store appended the event in the transaction of the change it records.
    committed: bool,
}

/// Handles every request under `/ams/`.
///
/// The work runs in a task of its own, so that a client that hangs up cannot cancel it between
/// a business write and its audit event.
pub(crate) async fn handle(State(state): State<Arc<AppState>>, request: axum::extract::Request) -> Response {
    // An address over its rate is refused first: no body read, no RSA work (crate::limits).
    if let Some(peer) = crate::limits::peer(request.extensions())
        && let Err(wait) = state.limits.admit_address(peer)
    {
        return crate::limits::too_many_requests(wait);
    }
    let received = (state.clock.now(), Instant::now());
    let (parts, body) = request.into_parts();
    // Sign with the path the client used (the official Python SDK sends an absolute URL;
    // its path component is what it signed).
    let path =
        parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let echoed_client_id = header_text(&parts.headers, names::CLIENT_ID).unwrap_or_default().to_owned();
    // The task writes its log lines in the request's span (its id), as the handler would.
    let task = tokio::spawn(
        answer(state.clone(), parts, body, path.clone(), echoed_client_id.clone(), received)
            .in_current_span(),
    );
    task.await.unwrap_or_else(|error| {
        tracing::error!(%error, "a request's task failed");
        let code = ResultCode::UNKNOWN_EXCEPTION;
        let body = ResultOnly { result: AmsResult::with_message(code, code.default_message()) };
        let body = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        signed_response(&state, &path, &echoed_client_id, StatusCode::OK, body)
    })
}

/// The signed answer to a request, its audit event and API log entry queued.
async fn answer(
    state: Arc<AppState>,
    parts: Parts,
    body: Body,
    path: String,
    echoed_client_id: String,
    received: (jiff::Timestamp, Instant),
) -> Response {
    // A request that runs too long (a body trickling in, a stuck store) gets a signed answer
    // that says "unknown: retry the same request or inquire", never a bare timeout.
    let timeout = state.settings.http.request_timeout;
    let mut audit = Audit::default();
    let outcome = tokio::time::timeout(timeout, process(&state, &parts, body, &path, &mut audit))
        .await
        .unwrap_or(Err(ApiError::Timeout { timeout }));
    let mut log = Logged::of(&audit, &parts);
    // Answered signed but not verified: its address pays for the signature.
    if audit.client_id.is_none()
        && let Some(peer) = crate::limits::peer(&parts.extensions)
    {
        state.limits.charge_unverified(peer);
    }
    let limited = match &outcome {
        Err(ApiError::TrafficExceeded { wait }) => Some(*wait),
        _ => None,
    };
    let (status, body) = match outcome {
        Ok(Answered { body, result }) => {
            log.result = (result.result_status.as_str(), result.result_code.clone());
            record(&state, audit, result.result_status.as_str(), &result.result_code).await;
            (StatusCode::OK, body)
        }
        Err(error) => {
            let (status, code, message) = error.answer();
            if let Some(detail) = error.internal_detail() {
                tracing::error!(client_id = %echoed_client_id, %path, %detail, "request failed inside the platform");
            } else {
                tracing::info!(client_id = %echoed_client_id, %path, result = code.as_str(), %message, "request refused");
            }
            log.result = (code.status().as_str(), code.as_str().to_owned());
            // A revoked key's holder signed: its refusal is no signature's failure.
            log.signature_failed = !log.verified
                && matches!(error, ApiError::SignatureInvalid(_) | ApiError::KeyNotFound { .. });
            record(&state, audit, code.status().as_str(), code.as_str()).await;
            let body = ResultOnly { result: AmsResult::with_message(code, message) };
            // A struct of three strings always serializes; the fallback is never sent.
            (status, serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec()))
        }
    };
    let counted = |response: Response, log: &Logged| {
        let api = log.api.map_or("unknown", Api::name);
        crate::metrics::gateway_request(api, log.result.0, &log.result.1, received.1.elapsed());
        response
    };
    let Some(participant) = log_participant(&state, &parts, &log).await else {
        return counted(respond(&state, &path, &echoed_client_id, (status, body), limited), &log);
    };
    let Some(settings) = state.settings.api_log.as_ref() else {
        return counted(respond(&state, &path, &echoed_client_id, (status, body), limited), &log);
    };
    let response_body = api_log::text(&body, settings.body_max_bytes);
    let response = counted(respond(&state, &path, &echoed_client_id, (status, body), limited), &log);
    let latency_micros = i64::try_from(received.1.elapsed().as_micros()).unwrap_or(i64::MAX);
    let diagnosis = if log.signature_failed {
        diagnose(&state, &parts, &path, &participant, &log, settings.body_max_bytes).await
    } else {
        None
    };
    let request_id = parts.extensions.get::<RequestId>().map(|id| id.0.clone()).unwrap_or_default();
    let entry = ApiLogEntry {
        id: 0,
        request_id,
        client_id: participant,
        at: received.0,
        api: log.api.map_or_else(|| parts.uri.path().to_owned(), |api| api.name().to_owned()),
        path,
        verified: log.verified,
        key_version: log.key_version,
        agent: log.agent,
        result_status: log.result.0.to_owned(),
        result_code: log.result.1,
        http_status: response.status().as_u16(),
        latency_micros,
        request_headers: api_log::headers_json(&parts.headers),
        request_body: log.body.map(|body| api_log::text(&body, settings.body_max_bytes)).unwrap_or_default(),
        response_headers: api_log::headers_json(response.headers()),
        response_body,
        diagnosis,
    };
    if let Some(sink) = &state.api_log {
        api_log::offer(sink, entry);
    }
    response
}

/// What the API log keeps of a request besides its headers and bodies.
struct Logged {
    api: Option<Api>,
    known: Option<bool>,
    verified: bool,
    key_version: Option<u32>,
    agent: Option<ClientId>,
    body: Option<Bytes>,
    result: (&'static str, String),
    /// Whether the signature did not verify (or named no key of the participant's).
    signature_failed: bool,
}

impl Logged {
    fn of(audit: &Audit, parts: &Parts) -> Logged {
        Logged {
            // Also for a request refused before the gateway read its path (another method).
            api: audit.api.or_else(|| Api::from_path(parts.uri.path())),
            known: audit.known,
            verified: audit.client_id.is_some(),
            key_version: audit.key_version.or(audit.tried_key_version),
            agent: audit.agent.clone(),
            body: audit.body.clone(),
            result: ("", String::new()),
            signature_failed: false,
        }
    }
}

/// The participant whose API log a request goes to: the one its `Client-Id` names, if the log
/// is kept and the participant exists (a request under an unknown client id is not logged, so
/// nobody can make rows for names that are nobody's). Requests to read the log are not logged.
async fn log_participant(state: &AppState, parts: &Parts, log: &Logged) -> Option<ClientId> {
    state.api_log.as_ref()?;
    if log.api == Some(Api::ApiLogInquiry) || log.known == Some(false) {
        return None;
    }
    let client_id = ClientId::parse(header_text(&parts.headers, names::CLIENT_ID)?).ok()?;
    if log.known == Some(true) {
        return Some(client_id);
    }
    // Refused before the gateway read the participant: one read, on a refusal only.
    match state.store.participant(&client_id).await {
        Ok(participant) => participant.map(|participant| participant.client_id),
        Err(error) => {
            tracing::warn!(%error, "the API log could not check a request's client id");
            None
        }
    }
}

/// Why the signature of a request under a known participant did not verify, as the API log
/// keeps it: the signature debugger tried against the participant's keys.
async fn diagnose(
    state: &AppState,
    parts: &Parts,
    path: &str,
    participant: &ClientId,
    log: &Logged,
    body_max_bytes: usize,
) -> Option<String> {
    let keys = match state.store.participant_keys(participant).await {
        Ok(keys) => keys,
        Err(error) => {
            tracing::warn!(%error, "the API log could not read the keys to diagnose a signature");
            return None;
        }
    };
    let keys: Vec<_> = keys
        .iter()
        .filter_map(|key| state.keys.get(&key.public_key_der).ok().map(|parsed| (key.key_version, parsed)))
        .collect();
    let sent = |name: &str| header_text(&parts.headers, name).unwrap_or_default();
    let received = Received {
        path,
        client_id: sent(names::CLIENT_ID),
        request_time: sent(names::REQUEST_TIME),
        body: log.body.as_deref().unwrap_or_default(),
        signature_header: sent(names::SIGNATURE),
        host: header_text(&parts.headers, header::HOST.as_str()),
    };
    let diagnosis = signature_debug::diagnose(&received, &keys);
    let record = diagnosis.record(&received, |bytes| api_log::text(bytes, body_max_bytes));
    serde_json::to_string(&record).ok()
}

/// Queues a request's audit event once its caller is known, unless the store already appended
/// it with the change it records. The answer does not wait for a queued event's commit
/// (measured: waiting for a commit of its own per request cost CPU and multiplied the p99
/// latency at half the peak rate); [`crate::audit`] writes them in batches.
async fn record(state: &AppState, audit: Audit, result_status: &str, result_code: &str) {
    if audit.committed {
        return;
    }
    let Some(event) = event(&audit, state.clock.now(), result_status, result_code) else { return };
    state.audit.record(event).await;
}

/// A verified request's audit event (none before its signature verified).
fn event(audit: &Audit, at: jiff::Timestamp, result_status: &str, result_code: &str) -> Option<AuditEvent> {
    let (Some(api), Some(client_id)) = (audit.api, audit.client_id.clone()) else { return None };
    Some(AuditEvent {
        at,
        merchant: audit.merchant.clone().unwrap_or_else(|| client_id.clone()),
        client_id,
        key_version: audit.key_version,
        agent: audit.agent.clone(),
        api: api.name().to_owned(),
        idempotency_key: audit.idempotency_key.clone(),
        result_status: result_status.to_owned(),
        result_code: result_code.to_owned(),
    })
}

/// A successful answer: its body, and its result for the audit trail.
struct Answered {
    body: Vec<u8>,
    result: AmsResult,
}

async fn process(
    state: &AppState,
    parts: &Parts,
    body: Body,
    path: &str,
    audit: &mut Audit,
) -> Result<Answered, ApiError> {
    if parts.method != Method::POST {
        return Err(ApiError::MethodNotSupported);
    }
    let api = Api::from_path(parts.uri.path()).ok_or(ApiError::NoInterface)?;
    audit.api = Some(api);
    check_content_type(&parts.headers)?;
    let client_id = required_header(&parts.headers, names::CLIENT_ID, "Client-Id")?;
    let request_time = required_header(&parts.headers, names::REQUEST_TIME, "Request-Time")?;
    let signature = required_header(&parts.headers, names::SIGNATURE, "Signature")?;
    check_request_time(state, request_time)?;
    let body = read_body(state, &parts.headers, body).await?;
    audit.body = Some(body.clone());
    let signature =
        SignatureHeader::parse(signature).map_err(|error| ApiError::SignatureInvalid(error.to_string()))?;
    let signed = Signed { client_id, request_time, path, body: &body, signature: &signature };
    let agent_token = agent_token(&parts.headers)?;
    // The one table from API to handler; everything else about an API is its declaration.
    match api {
        Api::Pay => call(state, &signed, agent_token, audit, payments::pay).await,
        Api::InquiryPayment => call(state, &signed, agent_token, audit, payments::inquire).await,
        Api::Cancel => call(state, &signed, agent_token, audit, payments::cancel).await,
        Api::Refund => call(state, &signed, agent_token, audit, refunds::refund).await,
        Api::InquiryRefund => call(state, &signed, agent_token, audit, refunds::inquire).await,
        Api::Registration => call(state, &signed, agent_token, audit, registrations::register).await,
        Api::InquiryRegistrationStatus => {
            call(state, &signed, agent_token, audit, registrations::inquire_status).await
        }
        Api::InquiryRegistrationInfo => {
            call(state, &signed, agent_token, audit, registrations::inquire_info).await
        }
        Api::ApiLogInquiry => call(state, &signed, agent_token, audit, super::api_log::inquire).await,
    }
}

/// Verifies a request to the API of `R`, parses its body once, and answers it with `handler`:
/// the response is serialised once, and its result goes to the audit trail as it is.
async fn call<R: ApiRequest>(
    state: &AppState,
    signed: &Signed<'_>,
    agent_token: Option<&str>,
    audit: &mut Audit,
    handler: impl AsyncFn(&AppState, &Caller, R) -> Result<R::Response, ApiError>,
) -> Result<Answered, ApiError> {
    let (signer, key) = verify(state, signed, audit).await?;
    // Counted against the client id that signed: a forger's requests never get this far.
    state
        .limits
        .admit_client(signer.client_id.as_str())
        .map_err(|wait| ApiError::TrafficExceeded { wait })?;
    // Parsed before the refusals below so that the audit trail records what a refused request
    // named; a body that does not parse is refused only after them, as before.
    let request = parse::<R>(signed.body);
    if let Ok(request) = &request {
        audit.idempotency_key = request.audit_key().map(|key| key.chars().take(ID_CHARS_MAX).collect());
    }
    let caller = authorize(state, signer, key, R::API, agent_token, audit).await?;
    tracing::debug!(
        client_id = signed.client_id,
        api = R::API.name(),
        key_version = caller.key_version,
        "verified request"
    );
    let request = request?;
    // A write that changes state appends the event in its own transaction (crate::audit); its
    // time and result are set there.
    let (response, committed) = match event(audit, state.clock.now(), "", "") {
        Some(template) => crate::audit::in_call(template, handler(state, &caller, request)).await,
        None => (handler(state, &caller, request).await, false),
    };
    audit.committed = committed;
    let response = response?;
    let body = serde_json::to_vec(&response).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(Answered { body, result: response.result().clone() })
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
    let skew_max = state.settings.http.request_time_skew_max;
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
    let bytes_max = state.settings.http.request_body_bytes_max;
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

/// What was signed, as received.
struct Signed<'a> {
    client_id: &'a str,
    request_time: &'a str,
    path: &'a str,
    body: &'a [u8],
    signature: &'a SignatureHeader,
}

/// The `Agent-Token` header, if sent.
fn agent_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    match headers.get(names::AGENT_TOKEN) {
        None => Ok(None),
        Some(value) => {
            value.to_str().ok().map(str::trim).filter(|token| !token.is_empty()).map(Some).ok_or_else(|| {
                ApiError::Header { name: "Agent-Token", reason: "must be non-empty visible ASCII".into() }
            })
        }
    }
}

/// Finds the signer and its key and verifies the signature over the exact bytes received.
/// From then on the request is recorded in the audit trail (even a revoked key's holder
/// signed it); a forged request is not, so nobody can fill another participant's trail.
async fn verify(
    state: &AppState,
    signed: &Signed<'_>,
    audit: &mut Audit,
) -> Result<(Participant, ParticipantKey), ApiError> {
    let client_id = ClientId::parse(signed.client_id).map_err(|_| ApiError::ClientInvalid)?;
    let key_version = signed.signature.key_version;
    let found = state.store.participant_with_key(&client_id, key_version).await.map_err(service)?;
    audit.known = Some(found.is_some());
    audit.tried_key_version = key_version;
    let found = found.ok_or(ApiError::ClientInvalid)?;
    let key = found.key.ok_or(ApiError::KeyNotFound { key_version })?;
    audit.tried_key_version = Some(key.key_version);
    let usable = key.is_usable(state.clock.now());
    let verifying_key = state.keys.get(&key.public_key_der).map_err(|error| {
        tracing::error!(%client_id, key_version = key.key_version, %error, "a stored public key does not parse");
        ApiError::KeyNotFound { key_version: Some(key.key_version) }
    })?;
    let content = content_to_sign("POST", signed.path, client_id.as_str(), signed.request_time, signed.body);
    if verifying_key.verify(&content, &signed.signature.signature).is_err() {
        // A revoked or expired key answers as a missing one, unless its holder signed.
        return Err(if usable {
            ApiError::SignatureInvalid("does not verify with this client's key".into())
        } else {
            ApiError::KeyNotFound { key_version: Some(key.key_version) }
        });
    }
    audit.client_id = Some(client_id);
    audit.key_version = Some(key.key_version);
    // An operator suspended the participant: its signed requests are refused (and audited).
    if found.suspended_at.is_some() {
        return Err(ApiError::AccessDenied(SUSPENDED.into()));
    }
    Ok((found.participant, key))
}

/// What a suspended participant's requests are answered, with `ACCESS_DENIED`.
const SUSPENDED: &str = "the participant is suspended; ask the platform's operator";

/// Decides whose payments a verified call may touch: the signer's own, or (for an ISV with a
/// valid Agent-Token) those of the merchant that authorised it. Everything is read afresh on
/// each request, so a revoked key or grant stops the very next call.
async fn authorize(
    state: &AppState,
    signer: Participant,
    key: ParticipantKey,
    api: Api,
    agent_token: Option<&str>,
    audit: &mut Audit,
) -> Result<Caller, ApiError> {
    let now = state.clock.now();
    if !key.is_usable(now) {
        return Err(ApiError::KeyNotFound { key_version: Some(key.key_version) });
    }
    // The declaration names a scope of core's (a unit test checks every API's); were it not
    // one, nobody may call the API.
    let scope = Scope::parse(api.scope())
        .ok_or_else(|| ApiError::Internal(format!("{} declares no known scope", api.name())))?;
    if !key.scopes.contains(scope) {
        return Err(ApiError::AccessDenied(format!(
            "keyVersion {}: this key may not call {} (its scopes: {})",
            key.key_version,
            api.name(),
            key.scopes
        )));
    }
    let key_version = key.key_version;
    // The API log is the signer's own, whoever it may act for: read without an Agent-Token
    // (one sent is not used), so an ISV follows its own log too.
    if api == Api::ApiLogInquiry {
        return Ok(Caller { participant: signer, key_version, agent: None });
    }
    match (signer.kind, agent_token) {
        (ParticipantKind::Isv, Some(token)) => {
            let denied = |reason: &str| ApiError::AccessDenied(format!("header Agent-Token: {reason}"));
            let grant = state
                .store
                .grant_by_token(&grants::token_sha256(token))
                .await
                .map_err(service)?
                // Another ISV's token answers as an unknown one: it says nothing about whose it is.
                .filter(|grant| grant.isv == signer.client_id)
                .ok_or_else(|| denied("is not a valid token for this client"))?;
            // From here on, the request is about the merchant's payments, refused or not.
            audit.agent = Some(signer.client_id.clone());
            audit.merchant = Some(grant.merchant.clone());
            grant.allows(&signer.client_id, scope, now).map_err(|refusal| denied(&refusal.to_string()))?;
            let merchant = state
                .store
                .participant_listing(&grant.merchant)
                .await
                .map_err(service)?
                .ok_or_else(|| denied("the merchant that issued it no longer exists"))?;
            if merchant.suspended_at.is_some() {
                return Err(denied("the merchant that issued it is suspended"));
            }
            Ok(Caller { participant: merchant.participant, key_version, agent: Some(signer.client_id) })
        }
        (ParticipantKind::Isv, None) => Err(ApiError::AccessDenied(
            "header Agent-Token: an ISV acts only for a merchant that authorised it; send that merchant's token"
                .into(),
        )),
        (_, Some(_)) => Err(ApiError::AccessDenied(
            "header Agent-Token: only an ISV acts for another participant; send no Agent-Token".into(),
        )),
        (_, None) => Ok(Caller { participant: signer, key_version, agent: None }),
    }
}

fn service(error: ocpay_store::StoreError) -> ApiError {
    ApiError::Service(error.into())
}

/// Parses a verified body, naming the field that does not fit.
pub(super) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
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

/// The signed answer to a request; a refusal for its client id's rate (`limited`, with the
/// wait) says when to retry, and reuses the signature of the same refusal made within the same
/// second ([`crate::limits::Limits::refusal_signature`]), so that refusing costs next to no RSA.
fn respond(
    state: &AppState,
    path: &str,
    client_id: &str,
    (status, body): (StatusCode, Vec<u8>),
    limited: Option<std::time::Duration>,
) -> Response {
    let Some(wait) = limited else { return signed_response(state, path, client_id, status, body) };
    let mut response = signed_response_with(state, path, client_id, status, body, true);
    let seconds = crate::limits::retry_after_seconds(wait);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Signs `body` for `client_id` and wraps it in a response with the AMS headers.
fn signed_response(
    state: &AppState,
    path: &str,
    client_id: &str,
    status: StatusCode,
    body: Vec<u8>,
) -> Response {
    signed_response_with(state, path, client_id, status, body, false)
}

/// As [`signed_response`], with the signature of the same refusal reused when `refusal`.
fn signed_response_with(
    state: &AppState,
    path: &str,
    client_id: &str,
    status: StatusCode,
    body: Vec<u8>,
    refusal: bool,
) -> Response {
    let response_time = datetime::format(state.clock.now());
    let content = content_to_sign("POST", path, client_id, &response_time, &body);
    let (key_version, platform_key) = state.platform_signer();
    let sign = || {
        platform_key
            .sign_header(key_version, &content)
            .inspect_err(|error| tracing::error!(%error, "signing a response failed"))
            .ok()
    };
    let signature =
        if refusal { state.limits.refusal_signature(client_id, &content, key_version, sign) } else { sign() };
    let Some(signature) = signature else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_needs_a_scope_that_keys_and_grants_know() {
        for api in Api::ALL {
            assert!(
                Scope::parse(api.scope()).is_some(),
                "{}: no scope is named {:?}",
                api.name(),
                api.scope()
            );
        }
        assert_eq!(Scope::parse(Api::InquiryRefund.scope()), Some(Scope::Inquiry));
    }
}
