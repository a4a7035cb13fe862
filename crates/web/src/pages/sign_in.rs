//! Signing in and out, setting a password through a one-time link, and the sandbox sign-up.
//!
//! A sign-in with an unknown email, a disabled or locked user, a wrong password or a wrong
//! TOTP code gets the same answer, after the same argon2 work. Every sign-in and every failure
//! of a known user is in the participant's audit trail.
//!
//! The handlers but the sign-up are generic over the [`Realm`]: the operator's console routes
//! them with [`ConsoleRealm`], so that both sign in, lock out and keep sessions by one code.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use ocpay_core::text::Name;
use ocpay_protocol::VerifyingKey;
use ocpay_store::PortalSession;
use serde::Deserialize;

use super::{Message, PageError, PageResult, done, render};
use crate::Portal;
use crate::auth::{PASSWORD_CHARS_MIN, Passwords, same_secret, sha256, token, totp_step_of};
use crate::session::{
    Account, ConsoleRealm, PortalRealm, Realm, cookie, live_session, same_origin, set_cookie_in,
};
use crate::users::{self, SignUp, UserError};

const FAILED: &str = "The email, password or code is wrong, or the account is locked after too many attempts. Try again later.";

#[derive(Template)]
#[template(path = "login.html")]
struct Login<'a> {
    action: &'a str,
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    signup: bool,
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct ConsoleLogin<'a> {
    action: &'a str,
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    signup: bool,
}

#[derive(Template)]
#[template(path = "console/setup.html")]
struct ConsoleSetup<'a> {
    action: &'a str,
    csrf: &'a str,
    token: &'a str,
    error: Option<&'a str>,
    min_chars: usize,
}

#[derive(Template)]
#[template(path = "console/message.html")]
pub(crate) struct ConsoleMessage<'a> {
    pub heading: &'a str,
    pub text: &'a str,
    pub link: &'a str,
    pub link_text: &'a str,
}

fn is_console<R: Realm>() -> bool {
    R::PATH == ConsoleRealm::PATH
}

/// Realm `R`'s sign-in page (only the developer center offers a sign-up).
fn login_page<R: Realm>(portal: &Portal, csrf: &str, email: &str, error: Option<&str>) -> Response {
    let action = &format!("{}/login", R::PATH);
    if is_console::<R>() {
        render(&ConsoleLogin { action, csrf, email, error, signup: false })
    } else {
        render(&Login { action, csrf, email, error, signup: portal.settings().sandbox_signup })
    }
}

/// Realm `R`'s page of a one-time link.
fn setup_page<R: Realm>(csrf: &str, token: &str, error: Option<&str>) -> Response {
    let (action, min_chars) = (&format!("{}/setup", R::PATH), PASSWORD_CHARS_MIN);
    if is_console::<R>() {
        render(&ConsoleSetup { action, csrf, token, error, min_chars })
    } else {
        render(&Setup { action, csrf, token, error, min_chars })
    }
}

/// A fresh sign-in CSRF token, set as a cookie and put in the form (there is no session yet).
fn with_sign_in_token<R: Realm>(portal: &Portal, page: impl FnOnce(&str) -> Response) -> Response {
    let csrf = token();
    let mut response = page(&csrf);
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie_in::<R>(portal, R::SIGN_IN_COOKIE, Some(&csrf)));
    response
}

/// A form shown again with why it was refused, answered `status`, with a fresh sign-in token.
fn refused<R: Realm>(portal: &Portal, status: StatusCode, page: impl FnOnce(&str) -> Response) -> Response {
    with_sign_in_token::<R>(portal, |csrf| (status, page(csrf)).into_response())
}

fn check_sign_in_token<R: Realm>(headers: &HeaderMap, sent: &str) -> Result<(), PageError> {
    same_origin(headers)?;
    match cookie(headers, R::SIGN_IN_COOKIE) {
        Some(expected) if same_secret(expected, sent) => Ok(()),
        _ => Err(PageError::Csrf),
    }
}

pub(crate) async fn form<R: Realm>(State(portal): State<Arc<Portal>>) -> Response {
    with_sign_in_token::<R>(&portal, |csrf| login_page::<R>(&portal, csrf, "", None))
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    totp: String,
}

/// Checks a password off the async runtime (argon2 takes tens of milliseconds by design).
async fn verify(passwords: &Passwords, hash: Option<String>, password: String) -> bool {
    passwords.verify_off_runtime(hash, &password).await
}

pub(crate) async fn submit<R: Realm>(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> PageResult {
    check_sign_in_token::<R>(&headers, &form.csrf)?;
    let email = users::normalise_email(&form.email).unwrap_or_default();
    let user = match email.is_empty() {
        true => None,
        false => R::by_email(&*portal.app.store, &email).await?,
    };
    match sign_in::<R>(&portal, user.as_ref(), &form).await? {
        Some(session_id) => {
            // A session the browser held before ends: one sign-in, one session.
            if let Some(earlier) = cookie(&headers, R::SESSION_COOKIE) {
                R::end_session(&*portal.app.store, &sha256(earlier)).await?;
            }
            let mut response = done(&format!("{}/", R::PATH));
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                set_cookie_in::<R>(&portal, R::SESSION_COOKIE, Some(&session_id)),
            );
            headers.append(header::SET_COOKIE, set_cookie_in::<R>(&portal, R::SIGN_IN_COOKIE, None));
            Ok(response)
        }
        None => Ok(refused::<R>(&portal, StatusCode::UNAUTHORIZED, |csrf| {
            login_page::<R>(&portal, csrf, &email, Some(FAILED))
        })),
    }
}

/// Signs `user` in when everything checks, and returns the new session's cookie value.
async fn sign_in<R: Realm>(
    portal: &Portal,
    user: Option<&R::User>,
    form: &SignInForm,
) -> Result<Option<String>, PageError> {
    let store = &*portal.app.store;
    let now = portal.app.clock.now();
    let settings = portal.settings();
    // Counted before the check, so that parallel guesses stop at the limit. Nobody (an unknown
    // email, a disabled user) takes the same write and the same argon2 work as a known user.
    let locked_until = now + settings.lockout;
    let known = user.filter(|user| !user.is_disabled());
    let user_id = known.map_or("", |user| user.user_id());
    let counted =
        R::sign_in_attempt(store, user_id, settings.sign_in_failures_max, locked_until, now).await?;
    let Some(user) = known else {
        verify(&portal.passwords, None, form.password.clone()).await;
        return Ok(None);
    };
    let failed = |code: &'static str| async move {
        R::audit(portal, user, "signIn", code).await;
        Ok(None)
    };
    if !counted {
        verify(&portal.passwords, None, form.password.clone()).await;
        return failed("USER_LOCKED").await;
    }
    if !verify(&portal.passwords, user.password_hash().map(str::to_owned), form.password.clone()).await {
        return failed("PASSWORD_WRONG").await;
    }
    let step = match user.totp_secret() {
        None => None,
        Some(secret) => match totp_step_of(secret, &form.totp, now, user.totp_last_step()) {
            Some(step) => Some(step),
            None => return failed("TOTP_WRONG").await,
        },
    };
    let session_id = token();
    let session = PortalSession {
        session_sha256: sha256(&session_id),
        user_id: user.user_id().to_owned(),
        csrf_token: token(),
        created_at: now,
        last_seen_at: now,
    };
    if !R::record_sign_in(store, &session, step).await? {
        return failed("TOTP_REUSED").await;
    }
    R::audit(portal, user, "signIn", "SUCCESS").await;
    Ok(Some(session_id))
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    pub(crate) csrf: String,
}

/// Ends the request's session of realm `R` (without one, it leads to the sign-in page).
pub(crate) async fn sign_out<R: Realm>(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> PageResult {
    let login = format!("{}/login", R::PATH);
    let Some((session, user)) = live_session::<R>(&portal, &headers).await? else {
        return Ok(done(&login));
    };
    crate::session::check_form(&session, &headers, &form.csrf)?;
    R::end_session(&*portal.app.store, &session.session_sha256).await?;
    R::audit(&portal, &user, "signOut", "SUCCESS").await;
    let mut response = done(&login);
    response.headers_mut().append(header::SET_COOKIE, set_cookie_in::<R>(&portal, R::SESSION_COOKIE, None));
    Ok(response)
}

#[derive(Template)]
#[template(path = "setup.html")]
struct Setup<'a> {
    action: &'a str,
    csrf: &'a str,
    token: &'a str,
    error: Option<&'a str>,
    min_chars: usize,
}

#[derive(Deserialize)]
pub(crate) struct SetupQuery {
    #[serde(default)]
    token: String,
}

pub(crate) async fn setup_form<R: Realm>(
    State(portal): State<Arc<Portal>>,
    Query(query): Query<SetupQuery>,
) -> Response {
    with_sign_in_token::<R>(&portal, |csrf| setup_page::<R>(csrf, &query.token, None))
}

#[derive(Deserialize)]
pub(crate) struct SetupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn setup<R: Realm>(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> PageResult {
    check_sign_in_token::<R>(&headers, &form.csrf)?;
    let now = portal.app.clock.now();
    let store = &*portal.app.store;
    match users::set_password::<R>(store, &portal.passwords, now, &form.token, &form.password).await {
        Ok(user) => {
            R::audit(&portal, &user, "setPassword", "SUCCESS").await;
            let (heading, link) = ("Password set", &format!("{}/login", R::PATH));
            let text = "Your password is set. Sign in with your email and the new password.";
            Ok(if is_console::<R>() {
                render(&ConsoleMessage { heading, text, link, link_text: "Sign in" })
            } else {
                render(&Message { heading, text, link, link_text: "Sign in" })
            })
        }
        Err(UserError::Store(error)) => Err(error.into()),
        Err(error) => {
            let message = error.to_string();
            Ok(refused::<R>(&portal, StatusCode::BAD_REQUEST, |csrf| {
                setup_page::<R>(csrf, &form.token, Some(&message))
            }))
        }
    }
}

#[derive(Template)]
#[template(path = "signup.html")]
struct Signup<'a> {
    csrf: &'a str,
    email: &'a str,
    name: &'a str,
    public_key: &'a str,
    error: Option<&'a str>,
    min_chars: usize,
}

pub(super) async fn signup_form(State(portal): State<Arc<Portal>>) -> PageResult {
    if !portal.settings().sandbox_signup {
        return Err(PageError::NotFound);
    }
    Ok(with_sign_in_token::<PortalRealm>(&portal, |csrf| {
        let page =
            Signup { csrf, email: "", name: "", public_key: "", error: None, min_chars: PASSWORD_CHARS_MIN };
        render(&page)
    }))
}

#[derive(Deserialize)]
pub(super) struct SignupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    public_key: String,
}

pub(super) async fn signup(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Form(form): Form<SignupForm>,
) -> PageResult {
    if !portal.settings().sandbox_signup {
        return Err(PageError::NotFound);
    }
    check_sign_in_token::<PortalRealm>(&headers, &form.csrf)?;
    let refused = |message: String| {
        Ok(refused::<PortalRealm>(&portal, StatusCode::BAD_REQUEST, |csrf| {
            render(&Signup {
                csrf,
                email: &form.email,
                name: &form.name,
                public_key: &form.public_key,
                error: Some(&message),
                min_chars: PASSWORD_CHARS_MIN,
            })
        }))
    };
    let name = match form.name.trim().parse::<Name>() {
        Ok(name) => name,
        Err(error) => return refused(format!("merchant name: {error}")),
    };
    let public_key = match VerifyingKey::from_text(&form.public_key) {
        Ok(key) => key,
        Err(error) => return refused(format!("public key: {error}")),
    };
    let now = portal.app.clock.now();
    let sign_up = SignUp { email: &form.email, password: &form.password, merchant_name: name, public_key };
    let notify = &portal.app.settings.notify;
    match users::sign_up(&*portal.app.store, &portal.passwords, notify, now, sign_up).await {
        Ok((participant, user)) => {
            portal.audit(&participant.client_id, "portal.signUp", &user.email, "SUCCESS").await;
            let page = Message {
                heading: "Your sandbox merchant is ready",
                text: &format!(
                    "Client id {}. Sign in to see your keys, the quick start and the API log.",
                    participant.client_id
                ),
                link: "/portal/login",
                link_text: "Sign in",
            };
            Ok(render(&page))
        }
        Err(UserError::Store(error)) => Err(error.into()),
        Err(error) => refused(error.to_string()),
    }
}
