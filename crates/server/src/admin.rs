//! The admin API, for operators: notification delivery of a payment (list and resend).
//! Every call needs `Authorization: Bearer <admin token>`, the token in the data directory's
//! `admin-token` file.
//!
//! - `GET /admin/api/payments/{paymentId}/notifications`: each notification with its attempts.
//! - `POST /admin/api/payments/{paymentId}/notifications/resend`: queues them again, now.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use ocpay_core::registration::Registration;
use ocpay_protocol::datetime;
use ocpay_store::{Attempt, Notification};
use serde_json::{Value, json};

use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/api/payments/{payment_id}/notifications", get(list))
        .route("/admin/api/payments/{payment_id}/notifications/resend", post(resend))
}

/// Compares the bearer token in constant time.
fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let Some(token) = token.strip_prefix("Bearer ") else { return false };
    aws_lc_rs::constant_time::verify_slices_are_equal(token.trim().as_bytes(), state.admin_token.as_bytes())
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
    json!({
        "notifyId": notification.id,
        "clientId": notification.recipient.as_str(),
        "type": notification.kind.as_str(),
        "url": notification.url,
        "event": { "status": notification.event_status, "code": notification.event_code, "at": datetime::format(notification.event_at) },
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

async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(payment_id): Path<String>,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    match state.store.notifications(&payment_id).await {
        Ok(notifications) => answer(
            StatusCode::OK,
            json!({ "paymentId": payment_id, "notifications": notifications.iter().map(|(n, a)| notification_json(n, a)).collect::<Vec<_>>() }),
        ),
        Err(error) => internal(error),
    }
}

async fn resend(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(payment_id): Path<String>,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    match state.store.resend_notifications(&payment_id, state.clock.now()).await {
        Ok(0) => answer(
            StatusCode::NOT_FOUND,
            json!({ "error": "NOT_FOUND", "message": "no notification about this payment or refund" }),
        ),
        Ok(queued) => {
            state.notify_wake.wake();
            answer(StatusCode::OK, json!({ "paymentId": payment_id, "queued": queued }))
        }
        Err(error) => internal(error),
    }
}
