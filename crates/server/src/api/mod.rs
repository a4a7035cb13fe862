//! The HTTP surface: the signed AMS gateway and the health endpoints. Every route is listed
//! here; handlers are thin (extract, call a service, render).

mod error;
mod fields;
mod gateway;
mod payments;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::{any, get};
use http::StatusCode;

use crate::state::AppState;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ams/{*api}", any(gateway::handle))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(state)
}

/// Ready when the store answers a read.
async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    match state.store.participants(1).await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(error) => {
            tracing::warn!(%error, "not ready: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}
