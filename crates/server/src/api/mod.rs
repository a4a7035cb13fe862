//! The HTTP surface: the signed AMS gateway and the health endpoints. Every route is listed
//! here; handlers are thin (extract, call a service, render).

mod api_log;
mod caller;
mod checks;
mod error;
mod fields;
mod gateway;
mod payments;
mod refunds;
pub(crate) mod registrations;

#[doc(hidden)]
pub use checks::check_request;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::{any, get};
use http::StatusCode;
use tower_http::timeout::TimeoutLayer;

use crate::state::AppState;

pub(crate) fn router(state: Arc<AppState>, extra_pages: Router<Arc<AppState>>) -> Router {
    // The gateway times requests out itself, with a signed answer; the rest get a plain 408.
    let timeout =
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.settings.http.request_timeout);
    let pages = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/.well-known/ocpay/platform-keys", get(platform_keys))
        .merge(crate::wallet::router())
        .merge(crate::admin::router(state.clone()))
        .merge(extra_pages)
        .layer(timeout)
        .layer(axum::middleware::from_fn(refuse_own_notifications));
    Router::new()
        .route("/ams/{*api}", any(gateway::handle))
        .merge(pages)
        .fallback(fallback)
        .layer(axum::middleware::map_response(nosniff))
        // Outermost, so that every answer carries its request's id, refusals included.
        .layer(axum::middleware::from_fn(crate::metrics::request_id))
        .with_state(state)
}

/// What no route serves. Under the gateway's prefix in any letter case (`/AMS/api/v1/...`,
/// `/ams`), the gateway answers: paths are case-sensitive, so such a path names no API, and
/// it gets a signed `NO_INTERFACE_DEF` like any other unknown API rather than an unsigned 404.
async fn fallback(state: State<Arc<AppState>>, request: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let first_segment = request.uri().path().trim_start_matches('/').split('/').next().unwrap_or_default();
    if first_segment.eq_ignore_ascii_case("ams") {
        return gateway::handle(state, request).await;
    }
    StatusCode::NOT_FOUND.into_response()
}

/// Every answer says its content type is the one it declares (JSON, SVG, HTML, ...): a browser
/// must never sniff one into something it would run.
async fn nosniff(mut response: axum::response::Response) -> axum::response::Response {
    response
        .headers_mut()
        .insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    response
}

/// Refuses a notification that reached the platform itself (through an address the checks of
/// notify URLs cannot know as its own, such as its public address behind a NAT): the notifier
/// marks every notification with [`crate::notify::NOTIFY_ID_HEADER`], which nothing else sends.
/// The gateway needs no such guard: it answers a notification as a request whose signature does
/// not verify.
async fn refuse_own_notifications(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if request.headers().contains_key(crate::notify::NOTIFY_ID_HEADER) {
        let body = serde_json::json!({
            "error": "FORBIDDEN",
            "message": "a notification of this platform may not be sent to the platform itself",
        });
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    next.run(request).await
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
