//! Who is signed in: the session cookie, the store's session and user behind it, and the checks
//! every state-changing request passes (the CSRF token, the `Origin` and `Sec-Fetch-Site`
//! headers).
//!
//! The cookie holds 256 random bits; the store holds only their SHA-256. A session ends when
//! idle or old ([`SessionPolicy`](ocpay_core::portal::SessionPolicy)), at sign-out, and when
//! the user's password, role or status changes (the store ends it in that same transaction).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Redirect, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, header};
use ocpay_core::participant::{Environment, Participant};
use ocpay_core::portal::{Action, Role};
use ocpay_store::{PortalSession, PortalUser};

use crate::Portal;
use crate::auth::{same_secret, sha256};
use crate::pages::PageError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ocpay_portal";
/// The sign-in form's CSRF cookie (there is no session yet to hold its token).
pub const SIGN_IN_COOKIE: &str = "ocpay_portal_sign_in";
/// A session's last use is written at most this often (a write per page view is not needed to
/// end idle sessions on time to the minute).
const TOUCH_EVERY_MS: i64 = 60_000;

/// The signed-in user of a request, with the participant it acts for.
pub struct Signed {
    pub user: PortalUser,
    pub participant: Participant,
    pub session: PortalSession,
}

impl Signed {
    pub fn role(&self) -> Role {
        self.user.role
    }

    pub fn is_live(&self) -> bool {
        self.participant.environment() == Environment::Live
    }

    /// Refuses what the user's role does not allow (answered 403, whatever buttons were shown).
    pub fn may(&self, action: Action) -> Result<(), PageError> {
        if self.user.role.allows(action, self.is_live()) { Ok(()) } else { Err(PageError::Forbidden) }
    }

    /// The checks of a state-changing request: the session's CSRF token, and that the browser
    /// sent it from the portal itself.
    pub fn check_form(&self, headers: &HeaderMap, csrf: &str) -> Result<(), PageError> {
        same_origin(headers)?;
        if same_secret(&self.session.csrf_token, csrf) { Ok(()) } else { Err(PageError::Csrf) }
    }
}

/// Refuses a request a browser says came from another site.
pub fn same_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let fetch_site = headers.get("sec-fetch-site").and_then(|value| value.to_str().ok());
    if fetch_site.is_some_and(|site| site != "same-origin" && site != "none") {
        return Err(PageError::Csrf);
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
        let origin = origin.to_str().unwrap_or_default();
        let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
        if origin == "null" || !origin_host.eq_ignore_ascii_case(host) {
            return Err(PageError::Csrf);
        }
    }
    Ok(())
}

/// A cookie's value in the request, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value for the portal: `HttpOnly`, `SameSite=Strict`, `Path=/portal`, and
/// `Secure` when the portal is served over https. `None` clears it.
pub fn set_cookie(portal: &Portal, name: &str, value: Option<&str>) -> HeaderValue {
    let secure = if portal.secure_cookies { "; Secure" } else { "" };
    let text = match value {
        Some(value) => format!("{name}={value}; Path=/portal; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{name}=; Path=/portal; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).expect("cookie values are URL-safe tokens")
}

fn to_sign_in() -> Response {
    Redirect::to("/portal/login").into_response()
}

impl FromRequestParts<Arc<Portal>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, portal: &Arc<Portal>) -> Result<Signed, Response> {
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_sign_in());
        };
        let hash = sha256(id);
        let store = &portal.app.store;
        let found =
            store.portal_session(&hash).await.map_err(|error| PageError::from(error).into_response())?;
        let Some((session, user)) = found else {
            return Err(to_sign_in());
        };
        let now = portal.app.clock.now();
        if user.disabled_at.is_some()
            || !portal.settings().session.is_live(session.created_at, session.last_seen_at, now)
        {
            store.end_portal_session(&hash).await.map_err(|error| PageError::from(error).into_response())?;
            return Err(to_sign_in());
        }
        if now.as_millisecond() - session.last_seen_at.as_millisecond() >= TOUCH_EVERY_MS {
            store
                .touch_portal_session(&hash, now)
                .await
                .map_err(|error| PageError::from(error).into_response())?;
        }
        let participant = store
            .participant(&user.client_id)
            .await
            .map_err(|error| PageError::from(error).into_response())?
            .ok_or_else(to_sign_in)?;
        let signed = Signed { user, participant, session };
        // An owner of a live participant sets up the second factor before anything else.
        let path = parts.uri.path();
        if portal.settings().totp_required_for_live_owners
            && signed.user.role == Role::Owner
            && signed.is_live()
            && signed.user.totp_secret.is_none()
            && path != "/portal/account/totp"
            && path != "/portal/logout"
        {
            return Err(Redirect::to("/portal/account/totp").into_response());
        }
        Ok(signed)
    }
}
