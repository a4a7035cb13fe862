//! Who is signed in: the session cookie, the store's session and user behind it, and the checks
//! every state-changing request passes (the CSRF token, the `Origin` and `Sec-Fetch-Site`
//! headers).
//!
//! The cookie holds 256 random bits; the store holds only their SHA-256. A session ends when
//! idle or old ([`SessionPolicy`](ocpay_core::portal::SessionPolicy)), at sign-out, and when
//! the user's password, role or status changes (the store ends it in that same transaction).
//!
//! The developer center and the operator's console are two [`Realm`]s of the same code: their
//! own users, sessions, cookies and path, one sign-in, lockout, session and form check.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Redirect, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, header};
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{Environment, OPERATORS_TRAIL, Participant};
use ocpay_core::portal::{Action, Role};
use ocpay_store::{OperatorUser, PortalSession, PortalUser, Store, StoreError};

use crate::Portal;
use crate::auth::{same_secret, sha256};
use crate::pages::PageError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ocpay_portal";
/// The sign-in form's CSRF cookie (there is no session yet to hold its token).
pub const SIGN_IN_COOKIE: &str = "ocpay_portal_sign_in";
/// The operator's console's session cookie, on `Path=/console`.
pub const CONSOLE_COOKIE: &str = "ocpay_console";
/// The console's sign-in form's CSRF cookie.
pub const CONSOLE_SIGN_IN_COOKIE: &str = "ocpay_console_sign_in";
/// A session's last use is written at most this often (a write per page view is not needed to
/// end idle sessions on time to the minute).
const TOUCH_EVERY_MS: i64 = 60_000;

/// The signed-in user of a request, with the participant it acts for.
pub struct Signed {
    pub user: PortalUser,
    pub participant: Participant,
    pub session: PortalSession,
    /// An operator suspended the participant: its users may read, and change nothing.
    pub suspended: bool,
}

impl Signed {
    pub fn role(&self) -> Role {
        self.user.role
    }

    pub fn is_live(&self) -> bool {
        self.participant.environment() == Environment::Live
    }

    /// Refuses what the user's role does not allow (answered 403, whatever buttons were shown),
    /// and anything but reading while the participant is suspended.
    pub fn may(&self, action: Action) -> Result<(), PageError> {
        if self.suspended && action != Action::Read {
            return Err(PageError::Suspended);
        }
        if self.user.role.allows(action, self.is_live()) { Ok(()) } else { Err(PageError::Forbidden) }
    }

    /// The checks of a state-changing request: the session's CSRF token, and that the browser
    /// sent it from the portal itself.
    pub fn check_form(&self, headers: &HeaderMap, csrf: &str) -> Result<(), PageError> {
        check_form(&self.session, headers, csrf)
    }
}

/// The checks of a state-changing request in either realm: the session's CSRF token, and that
/// the browser sent it from the platform's own page.
pub fn check_form(session: &PortalSession, headers: &HeaderMap, csrf: &str) -> Result<(), PageError> {
    same_origin(headers)?;
    if same_secret(&session.csrf_token, csrf) { Ok(()) } else { Err(PageError::Csrf) }
}

/// What sign-in and sessions ask of a user, in either realm.
pub trait Account: Send + Sync {
    fn user_id(&self) -> &str;
    fn email(&self) -> &str;
    fn password_hash(&self) -> Option<&str>;
    fn totp_secret(&self) -> Option<&str>;
    fn totp_last_step(&self) -> Option<i64>;
    fn is_disabled(&self) -> bool;
}

macro_rules! account {
    ($user:ty) => {
        impl Account for $user {
            fn user_id(&self) -> &str {
                &self.user_id
            }
            fn email(&self) -> &str {
                &self.email
            }
            fn password_hash(&self) -> Option<&str> {
                self.password_hash.as_deref()
            }
            fn totp_secret(&self) -> Option<&str> {
                self.totp_secret.as_deref()
            }
            fn totp_last_step(&self) -> Option<i64> {
                self.totp_last_step
            }
            fn is_disabled(&self) -> bool {
                self.disabled_at.is_some()
            }
        }
    };
}
account!(PortalUser);
account!(OperatorUser);

/// Where people sign in: the developer center ([`PortalRealm`]) or the operator's console
/// ([`ConsoleRealm`]): which users and sessions of the store, which cookies and which path.
pub trait Realm: Send + Sync + 'static {
    type User: Account + Clone + 'static;
    /// The path the realm's pages and cookies are under (`/portal`).
    const PATH: &'static str;
    const SESSION_COOKIE: &'static str;
    const SIGN_IN_COOKIE: &'static str;

    fn by_email(
        store: &dyn Store,
        email: &str,
    ) -> impl Future<Output = Result<Option<Self::User>, StoreError>> + Send;
    fn sign_in_attempt(
        store: &dyn Store,
        user_id: &str,
        failures_max: u32,
        locked_until: ocpay_core::Timestamp,
        now: ocpay_core::Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn record_sign_in(
        store: &dyn Store,
        session: &PortalSession,
        totp_step: Option<i64>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn session(
        store: &dyn Store,
        sha256: &[u8],
    ) -> impl Future<Output = Result<Option<(PortalSession, Self::User)>, StoreError>> + Send;
    fn touch_session(
        store: &dyn Store,
        sha256: &[u8],
        now: ocpay_core::Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn end_session(store: &dyn Store, sha256: &[u8]) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn update(
        store: &dyn Store,
        user_id: &str,
        change: &ocpay_store::PortalUserChange,
    ) -> impl Future<Output = Result<Option<Self::User>, StoreError>> + Send;
    fn by_setup_token(
        store: &dyn Store,
        sha256: &[u8],
        now: ocpay_core::Timestamp,
    ) -> impl Future<Output = Result<Option<Self::User>, StoreError>> + Send;
    /// Records a sign-in event of a user (`signIn`, `signOut`, ...): a portal user's in its
    /// participant's audit trail; an operator's, who belongs to no participant, in the log.
    fn audit(portal: &Portal, user: &Self::User, event: &str, code: &str) -> impl Future<Output = ()> + Send;
}

/// The developer center's users and sessions.
pub struct PortalRealm;

/// The operator's console's users and sessions.
pub struct ConsoleRealm;

/// A realm's calls of the store, by their names in [`Store`].
macro_rules! store_calls {
    ($user:ty, $realm:expr, $by_email:ident, $session:ident, $update:ident, $by_token:ident) => {
        async fn by_email(store: &dyn Store, email: &str) -> Result<Option<$user>, StoreError> {
            store.$by_email(email).await
        }
        async fn sign_in_attempt(
            store: &dyn Store,
            user_id: &str,
            failures_max: u32,
            locked_until: ocpay_core::Timestamp,
            now: ocpay_core::Timestamp,
        ) -> Result<bool, StoreError> {
            store.sign_in_attempt($realm, user_id, failures_max, locked_until, now).await
        }
        async fn record_sign_in(
            store: &dyn Store,
            session: &PortalSession,
            totp_step: Option<i64>,
        ) -> Result<bool, StoreError> {
            store.record_sign_in($realm, session, totp_step).await
        }
        async fn session(
            store: &dyn Store,
            sha256: &[u8],
        ) -> Result<Option<(PortalSession, $user)>, StoreError> {
            store.$session(sha256).await
        }
        async fn touch_session(
            store: &dyn Store,
            sha256: &[u8],
            now: ocpay_core::Timestamp,
        ) -> Result<(), StoreError> {
            store.touch_session($realm, sha256, now).await
        }
        async fn end_session(store: &dyn Store, sha256: &[u8]) -> Result<(), StoreError> {
            store.end_session($realm, sha256).await
        }
        async fn update(
            store: &dyn Store,
            user_id: &str,
            change: &ocpay_store::PortalUserChange,
        ) -> Result<Option<$user>, StoreError> {
            store.$update(user_id, change).await
        }
        async fn by_setup_token(
            store: &dyn Store,
            sha256: &[u8],
            now: ocpay_core::Timestamp,
        ) -> Result<Option<$user>, StoreError> {
            store.$by_token(sha256, now).await
        }
    };
}

impl Realm for PortalRealm {
    type User = PortalUser;
    const PATH: &'static str = "/portal";
    const SESSION_COOKIE: &'static str = SESSION_COOKIE;
    const SIGN_IN_COOKIE: &'static str = SIGN_IN_COOKIE;

    store_calls!(
        PortalUser,
        ocpay_store::portal::Realm::Portal,
        portal_user_by_email,
        portal_session,
        update_portal_user,
        portal_user_by_setup_token
    );

    async fn audit(portal: &Portal, user: &PortalUser, event: &str, code: &str) {
        portal.audit(&user.client_id, &format!("portal.{event}"), &user.email, code).await;
    }
}

impl Realm for ConsoleRealm {
    type User = OperatorUser;
    const PATH: &'static str = "/console";
    const SESSION_COOKIE: &'static str = CONSOLE_COOKIE;
    const SIGN_IN_COOKIE: &'static str = CONSOLE_SIGN_IN_COOKIE;

    store_calls!(
        OperatorUser,
        ocpay_store::portal::Realm::Console,
        operator_by_email,
        operator_session,
        update_operator,
        operator_by_setup_token
    );

    async fn audit(portal: &Portal, user: &OperatorUser, event: &str, code: &str) {
        audit_operator_event(portal, user, event, code).await;
    }
}

/// An operator's own event (`signIn`, `signOut`, `enableTotp`, ...): operators belong to no
/// participant, so it goes to the audit trail of [`OPERATORS_TRAIL`] (`ocpay audit --client-id
/// operators`, the console's Audit page), as `console.<event>` with the operator's email.
pub(crate) async fn audit_operator_event(portal: &Portal, user: &OperatorUser, event: &str, code: &str) {
    match ClientId::parse(OPERATORS_TRAIL) {
        Ok(trail) => portal.audit(&trail, &format!("console.{event}"), &user.email, code).await,
        Err(error) => tracing::error!(%error, "the operators' audit trail has no valid name"),
    }
}

/// The live session the request's cookie of realm `R` names, with its user: `None` when there
/// is none, or when it has ended (its user disabled, idle or old; then it is deleted). Its last
/// use is written at most once a minute.
pub async fn live_session<R: Realm>(
    portal: &Portal,
    headers: &HeaderMap,
) -> Result<Option<(PortalSession, R::User)>, PageError> {
    let Some(id) = cookie(headers, R::SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = sha256(id);
    let store = &*portal.app.store;
    let Some((session, user)) = R::session(store, &hash).await? else {
        return Ok(None);
    };
    let now = portal.app.clock.now();
    if user.is_disabled() || !portal.settings().session.is_live(session.created_at, session.last_seen_at, now)
    {
        R::end_session(store, &hash).await?;
        return Ok(None);
    }
    if now.as_millisecond() - session.last_seen_at.as_millisecond() >= TOUCH_EVERY_MS {
        R::touch_session(store, &hash, now).await?;
    }
    Ok(Some((session, user)))
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
    set_cookie_in::<PortalRealm>(portal, name, value)
}

/// As [`set_cookie`], on realm `R`'s path.
pub fn set_cookie_in<R: Realm>(portal: &Portal, name: &str, value: Option<&str>) -> HeaderValue {
    let secure = if portal.secure_cookies { "; Secure" } else { "" };
    let path = R::PATH;
    let text = match value {
        Some(value) => format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{name}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).expect("cookie values are URL-safe tokens")
}

fn to_sign_in() -> Response {
    Redirect::to("/portal/login").into_response()
}

impl FromRequestParts<Arc<Portal>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, portal: &Arc<Portal>) -> Result<Signed, Response> {
        let found =
            live_session::<PortalRealm>(portal, &parts.headers).await.map_err(IntoResponse::into_response)?;
        let Some((session, user)) = found else {
            return Err(to_sign_in());
        };
        let store = &portal.app.store;
        let listing = store
            .participant_listing(&user.client_id)
            .await
            .map_err(|error| PageError::from(error).into_response())?
            .ok_or_else(to_sign_in)?;
        let suspended = listing.suspended_at.is_some();
        let signed = Signed { user, participant: listing.participant, session, suspended };
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
