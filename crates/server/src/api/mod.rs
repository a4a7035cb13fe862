//! The HTTP surface: the signed AMS gateway and the health endpoints. Every route is listed
//! here; handlers are thin (extract, call a service, render).

mod error;
mod fields;
mod gateway;
mod payments;
mod refunds;
mod registrations;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::{any, get};
use http::StatusCode;
use tower_http::timeout::TimeoutLayer;

use crate::state::AppState;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    // The gateway times requests out itself, with a signed answer; the rest get a plain 408.
    let timeout = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.config.request_timeout());
    let pages = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/.well-known/ocpay/platform-keys", get(platform_keys))
        .merge(crate::wallet::router())
        .merge(crate::admin::router(state.clone()))
        .layer(timeout);
    Router::new().route("/ams/{*api}", any(gateway::handle)).merge(pages).with_state(state)
}

/// Ready when the store serves reads and writes.
async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    match state.store.health().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(error) => {
            tracing::warn!(%error, "not ready: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}

/// The platform's published public keys, by version: what verifies its responses and
/// notifications, old versions included until retired, and a version made by a rotation at
/// once, before it signs (read from the data directory, at most once a second).
async fn platform_keys(State(state): State<Arc<AppState>>) -> axum::Json<serde_json::Value> {
    axum::Json(state.published_platform_keys())
}
