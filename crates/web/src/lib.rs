//! The developer center: the web portal under `/portal/` where merchants, acquirers, ISVs and
//! integrators serve themselves (keys, settings, the API log, payments, grants, reports).
//!
//! Server-rendered HTML (askama templates in `templates/`, one per page, on a shared layout),
//! forms that work without JavaScript, and one same-origin script (`static/portal.js`) for what
//! needs it: a key pair generated in the browser. Pages call the same use cases and store reads
//! as the gateway and the CLI; the participant always comes from the session, never from the
//! URL or a form.
//!
//! [`pages`] has the routes, [`session`] who is signed in and the CSRF checks, [`auth`] the
//! password, TOTP and token code, [`users`] the use cases of accounts the CLI shares.
//! [`console`] is the operator's console under `/console/`, on the same machinery.

pub mod auth;
pub mod charts;
pub mod console;
pub mod pages;
pub mod session;
pub mod users;

use std::sync::Arc;

use axum::Router;
use axum::response::Response;
use http::{HeaderValue, header};
use ocpay_core::ids::ClientId;
use ocpay_server::settings::PortalSettings;
use ocpay_server::state::AppState;
use ocpay_store::AuditEvent;

use crate::auth::Passwords;

/// What every page handler shares.
pub struct Portal {
    pub app: Arc<AppState>,
    pub passwords: Passwords,
    /// Whether cookies carry `Secure` (the public URL is https).
    pub secure_cookies: bool,
}

impl Portal {
    pub fn new(app: Arc<AppState>) -> Portal {
        let settings = &app.settings.portal;
        let passwords = Passwords::new(settings.argon2_memory_kib, settings.argon2_iterations);
        let secure_cookies = app.public_url.starts_with("https://");
        Portal { app, passwords, secure_cookies }
    }

    pub fn settings(&self) -> &PortalSettings {
        &self.app.settings.portal
    }

    /// Records a sign-in or a change in the participant's audit trail: `api` names it
    /// (`portal.signIn`, `portal.addKey`, ...), `who` is the user's email.
    pub async fn audit(&self, client_id: &ClientId, api: &str, who: &str, result_code: &str) {
        self.record(client_id, api, who.to_owned(), result_code).await;
    }

    /// As [`Portal::audit`], for a change of one object (a key version, a user, a grant): the
    /// event's named id says who acted on what, `dev@shop.example on key 3`.
    pub async fn audit_on(&self, client_id: &ClientId, api: &str, who: &str, on: &str, result_code: &str) {
        self.record(client_id, api, format!("{who} on {on}"), result_code).await;
    }

    async fn record(&self, client_id: &ClientId, api: &str, named: String, result_code: &str) {
        let status = if result_code == "SUCCESS" { "S" } else { "F" };
        self.app
            .record_audit(AuditEvent {
                at: self.app.clock.now(),
                client_id: client_id.clone(),
                key_version: None,
                agent: None,
                merchant: client_id.clone(),
                api: api.to_owned(),
                idempotency_key: Some(named),
                result_status: status.to_owned(),
                result_code: result_code.to_owned(),
            })
            .await;
    }
}

/// Same-origin scripts, styles and images only; no inline script; never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The developer center's routes, for [`ocpay_server::Application::with_pages`].
pub fn router(app: &Arc<AppState>) -> Router<Arc<AppState>> {
    let portal = Arc::new(Portal::new(app.clone()));
    pages::routes()
        .merge(console::routes())
        .layer(axum::middleware::map_response(security_headers))
        .with_state(portal)
}

/// The headers every portal answer carries.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    // Not `no-referrer`: under it Chromium sends `Origin: null` with the portal's own forms,
    // which the CSRF check must refuse; `same-origin` still sends no address to other sites.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
