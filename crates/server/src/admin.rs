//! The admin API, for operators: notification delivery, merchants' grants to ISVs, key
//! revocation and the audit trail. Every call needs `Authorization: Bearer <admin token>`, the
//! token in the data directory's `admin-token` file.
//!
//! - `GET /admin/api/payments/{paymentId}/notifications`: each notification with its attempts.
//! - `POST /admin/api/payments/{paymentId}/notifications/resend`: queues them again, now.
//! - `POST /admin/api/grants` with `{"merchant", "isv", "scopes", "expiresInDays"}`: authorises
//!   an ISV; the answer holds the Agent-Token, the only time it is shown.
//! - `GET /admin/api/grants?clientId=`: the grants a merchant gave or an ISV holds.
//! - `POST /admin/api/grants/{grantId}/revoke`: revokes a grant at once.
//! - `POST /admin/api/participants/{clientId}/keys/{keyVersion}/revoke`: revokes one key.
//! - `GET /admin/api/audit?clientId=&limit=`: the newest audit events of a participant.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use ocpay_core::access::{Grant, Scopes};
use ocpay_core::ids::ClientId;
use ocpay_core::registration::Registration;
use ocpay_protocol::datetime;
use ocpay_store::{Attempt, AuditEvent, Notification};
use serde_json::{Value, json};

use crate::service::participants::{self, ParticipantError, ParticipantField};
use crate::service::{grants, notifications};
use crate::state::AppState;

pub(crate) fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/api/payments/{payment_id}/notifications", get(list))
        .route("/admin/api/payments/{payment_id}/notifications/resend", post(resend))
        .route("/admin/api/grants", post(create_grant).get(list_grants))
        .route("/admin/api/grants/{grant_id}/revoke", post(revoke_grant))
        .route("/admin/api/participants/{client_id}/keys/{key_version}/revoke", post(revoke_key))
        .route("/admin/api/audit", get(audit))
        .route_layer(axum::middleware::from_fn_with_state(state, require_admin))
}

/// Lets only callers with the admin token through.
async fn require_admin(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if authorized(&state, request.headers()) { next.run(request).await } else { unauthorized() }
}

/// Compares the bearer token in constant time.
fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let Some(token) = token.strip_prefix("Bearer ") else { return false };
    aws_lc_rs::constant_time::verify_slices_are_equal(
        token.trim().as_bytes(),
        state.admin_token.expose().as_bytes(),
    )
    .is_ok()
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn unauthorized() -> Response {
    answer(
        StatusCode::UNAUTHORIZED,
        json!({ "error": "UNAUTHORIZED", "message": "send Authorization: Bearer <admin token>" }),
    )
}

fn internal(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "an admin call failed");
    answer(StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": "INTERNAL", "message": "try again" }))
}

/// A merchant registration as the operator's tools show it.
pub fn registration_json(registration: &Registration) -> Value {
    let terms = &registration.terms;
    json!({
        "id": terms.id.as_str(),
        "clientId": terms.owner.as_str(),
        "registrationRequestId": terms.request_id.as_str(),
        "referenceMerchantId": terms.reference_merchant_id,
        "referenceStoreId": terms.reference_store_id,
        "status": registration.state.status(),
        "rejectReason": registration.state.reject_reason(),
        "notifyUrl": terms.notify_url,
        "createdAt": datetime::format(terms.created_at),
        "decidedAt": registration.state.decided_at().map(datetime::format),
        "autoDecisionAt": terms.automatic.as_ref().map(|automatic| datetime::format(automatic.at)),
        "content": serde_json::from_str::<Value>(&terms.content).ok(),
    })
}

/// A notification and its attempts as JSON.
pub fn notification_json(notification: &Notification, attempts: &[Attempt]) -> Value {
    let (status, code) = crate::wire::event_words(notification.event);
    json!({
        "notifyId": notification.id,
        "clientId": notification.recipient.as_str(),
        "type": notification.kind.as_str(),
        "url": notification.url,
        "event": { "status": status, "code": code.as_str(), "at": datetime::format(notification.event_at) },
        "status": notification.status.as_str(),
        "attempts": attempts.iter().map(|attempt| json!({
            "attempt": attempt.number,
            "manual": attempt.manual,
            "scheduledAt": datetime::format(attempt.scheduled_at),
            "startedAt": datetime::format(attempt.started_at),
            "latencyMs": attempt.duration_ms,
            "httpStatus": attempt.http_status,
            "outcome": attempt.outcome.as_str(),
            "error": attempt.error,
        })).collect::<Vec<_>>(),
        "nextAttemptAt": notification.next_attempt_at.map(datetime::format),
        "deliveredAt": notification.delivered_at.map(datetime::format),
    })
}

async fn list(State(state): State<Arc<AppState>>, Path(payment_id): Path<String>) -> Response {
    match state.store.notifications(&payment_id).await {
        Ok(notifications) => answer(
            StatusCode::OK,
            json!({ "paymentId": payment_id, "notifications": notifications.iter().map(|(n, a)| notification_json(n, a)).collect::<Vec<_>>() }),
        ),
        Err(error) => internal(error),
    }
}

async fn resend(State(state): State<Arc<AppState>>, Path(payment_id): Path<String>) -> Response {
    match notifications::resend(&*state.store, &state.notify_wake, &payment_id, state.clock.now()).await {
        Ok(0) => answer(
            StatusCode::NOT_FOUND,
            json!({ "error": "NOT_FOUND", "message": "no notification about this payment or refund" }),
        ),
        Ok(queued) => answer(StatusCode::OK, json!({ "paymentId": payment_id, "queued": queued })),
        Err(error) => internal(error),
    }
}

fn bad_request(message: impl std::fmt::Display) -> Response {
    answer(StatusCode::BAD_REQUEST, json!({ "error": "BAD_REQUEST", "message": message.to_string() }))
}

/// An invalid request is the caller's to fix; anything else is ours.
fn refused(error: ParticipantError) -> Response {
    match error {
        ParticipantError::Invalid { field, reason } => {
            bad_request(format!("{}: {reason}", field_name(field)))
        }
        ParticipantError::Store(error) => internal(error),
    }
}

/// A refused value as this API's requests name it.
fn field_name(field: ParticipantField) -> &'static str {
    match field {
        ParticipantField::ClientId => "clientId",
        ParticipantField::NotifyUrl => "notifyUrl",
        ParticipantField::KeyVersion => "keyVersion",
        ParticipantField::Lifetime => "expiresInDays",
        ParticipantField::Merchant => "merchant",
        ParticipantField::Isv => "isv",
        ParticipantField::Grant => "grantId",
    }
}

fn client_id_param(text: &str, name: &str) -> Result<ClientId, Box<Response>> {
    ClientId::parse(text).map_err(|error| Box::new(bad_request(format!("{name}: {error}"))))
}

/// A grant as JSON, without its token.
pub fn grant_json(grant: &Grant) -> Value {
    json!({
        "grantId": grant.id,
        "merchant": grant.merchant.as_str(),
        "isv": grant.isv.as_str(),
        "scopes": grant.scopes.to_string(),
        "createdAt": datetime::format(grant.created_at),
        "expiresAt": grant.expires_at.map(datetime::format),
        "revokedAt": grant.revoked_at.map(datetime::format),
    })
}

/// A grant just made, with its token: the one answer that shows it.
pub fn issued_json(issued: &grants::Issued) -> Value {
    let mut body = grant_json(&issued.grant);
    body["agentToken"] = json!(issued.token.expose());
    body["isvNotified"] = json!(issued.notified);
    body
}

/// An audit event as JSON.
pub fn audit_json(event: &AuditEvent) -> Value {
    json!({
        "at": datetime::format(event.at),
        "clientId": event.client_id.as_str(),
        "keyVersion": event.key_version,
        "agent": event.agent.as_ref().map(ClientId::as_str),
        "merchant": event.merchant.as_str(),
        "api": event.api,
        "idempotencyKey": event.idempotency_key,
        "resultStatus": event.result_status,
        "resultCode": event.result_code,
    })
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GrantRequest {
    merchant: String,
    isv: String,
    scopes: String,
    expires_in_days: Option<u32>,
}

async fn create_grant(
    State(state): State<Arc<AppState>>,
    body: Result<axum::Json<GrantRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let request = match body {
        Ok(axum::Json(request)) => request,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    let (merchant, isv) =
        match (client_id_param(&request.merchant, "merchant"), client_id_param(&request.isv, "isv")) {
            (Ok(merchant), Ok(isv)) => (merchant, isv),
            (Err(response), _) | (_, Err(response)) => return *response,
        };
    let scopes = match Scopes::parse(&request.scopes) {
        Ok(scopes) => scopes,
        Err(error) => return bad_request(format!("scopes: {error}")),
    };
    let expires_in =
        request.expires_in_days.map(|days| jiff::SignedDuration::from_hours(i64::from(days) * 24));
    let new = grants::NewAuthorisation { merchant, isv, scopes, expires_in };
    match grants::authorise(&*state.store, state.clock.now(), state.settings.grant_lifetime, new).await {
        Ok(issued) => {
            state.notify_wake.wake();
            answer(StatusCode::CREATED, issued_json(&issued))
        }
        Err(error) => refused(error),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientQuery {
    client_id: String,
    limit: Option<u32>,
}

impl ClientQuery {
    fn client_id(&self) -> Result<ClientId, Box<Response>> {
        client_id_param(&self.client_id, "clientId")
    }
}

async fn list_grants(State(state): State<Arc<AppState>>, Query(query): Query<ClientQuery>) -> Response {
    let client_id = match query.client_id() {
        Ok(client_id) => client_id,
        Err(response) => return *response,
    };
    match state.store.grants(&client_id).await {
        Ok(grants) => {
            answer(StatusCode::OK, json!({ "grants": grants.iter().map(grant_json).collect::<Vec<_>>() }))
        }
        Err(error) => internal(error),
    }
}

async fn revoke_grant(State(state): State<Arc<AppState>>, Path(grant_id): Path<String>) -> Response {
    match grants::revoke(&*state.store, state.clock.now(), &grant_id).await {
        Ok(grant) => answer(StatusCode::OK, grant_json(&grant)),
        Err(ParticipantError::Invalid { reason, .. }) => {
            answer(StatusCode::NOT_FOUND, json!({ "error": "NOT_FOUND", "message": reason }))
        }
        Err(error) => refused(error),
    }
}

async fn revoke_key(
    State(state): State<Arc<AppState>>,
    Path((client_id, key_version)): Path<(String, u32)>,
) -> Response {
    let client_id = match client_id_param(&client_id, "clientId") {
        Ok(client_id) => client_id,
        Err(response) => return *response,
    };
    match participants::revoke_key(&*state.store, state.clock.now(), &client_id, key_version).await {
        Ok(key) => answer(
            StatusCode::OK,
            json!({ "clientId": key.client_id.as_str(), "keyVersion": key.key_version, "revokedAt": key.revoked_at.map(datetime::format) }),
        ),
        Err(ParticipantError::Invalid { reason, .. }) => {
            answer(StatusCode::NOT_FOUND, json!({ "error": "NOT_FOUND", "message": reason }))
        }
        Err(error) => refused(error),
    }
}

async fn audit(State(state): State<Arc<AppState>>, Query(query): Query<ClientQuery>) -> Response {
    let client_id = match query.client_id() {
        Ok(client_id) => client_id,
        Err(response) => return *response,
    };
    let limit = query.limit.unwrap_or(100).min(state.settings.audit.page_max);
    match state.store.audit_events(&client_id, limit).await {
        Ok(events) => answer(
            StatusCode::OK,
            json!({ "clientId": client_id.as_str(), "events": events.iter().map(audit_json).collect::<Vec<_>>() }),
        ),
        Err(error) => internal(error),
    }
}
