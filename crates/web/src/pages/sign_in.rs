//! Signing in and out, setting a password through a one-time link, and the sandbox sign-up.
//!
//! A sign-in with an unknown email, a disabled or locked user, a wrong password or a wrong
//! TOTP code gets the same answer, after the same argon2 work. Every sign-in and every failure
//! of a known user is in the participant's audit trail.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use ocpay_core::text::Name;
use ocpay_protocol::VerifyingKey;
use ocpay_store::{PortalSession, PortalUser};
use serde::Deserialize;

use super::{Message, PageError, PageResult, done, render};
use crate::Portal;
use crate::auth::{PASSWORD_CHARS_MIN, Passwords, same_secret, sha256, token, totp_step_of};
use crate::session::{SESSION_COOKIE, SIGN_IN_COOKIE, Signed, cookie, same_origin, set_cookie};
use crate::users::{self, SignUp, UserError};

const FAILED: &str = "The email, password or code is wrong, or the account is locked after too many attempts. Try again later.";

#[derive(Template)]
#[template(path = "login.html")]
struct Login<'a> {
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    signup: bool,
}

/// A fresh sign-in CSRF token, set as a cookie and put in the form (there is no session yet).
fn with_sign_in_token(portal: &Portal, page: impl FnOnce(&str) -> Response) -> Response {
    let csrf = token();
    let mut response = page(&csrf);
    response.headers_mut().append(header::SET_COOKIE, set_cookie(portal, SIGN_IN_COOKIE, Some(&csrf)));
    response
}

/// A form shown again with why it was refused, answered `status`, with a fresh sign-in token.
fn refused(portal: &Portal, status: StatusCode, page: impl FnOnce(&str) -> Response) -> Response {
    with_sign_in_token(portal, |csrf| (status, page(csrf)).into_response())
}

fn check_sign_in_token(headers: &HeaderMap, sent: &str) -> Result<(), PageError> {
    same_origin(headers)?;
    match cookie(headers, SIGN_IN_COOKIE) {
        Some(expected) if same_secret(expected, sent) => Ok(()),
        _ => Err(PageError::Csrf),
    }
}

pub(super) async fn form(State(portal): State<Arc<Portal>>) -> Response {
    let signup = portal.settings().sandbox_signup;
    with_sign_in_token(&portal, |csrf| render(&Login { csrf, email: "", error: None, signup }))
}

#[derive(Deserialize)]
pub(super) struct SignInForm {
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

pub(super) async fn submit(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> PageResult {
    check_sign_in_token(&headers, &form.csrf)?;
    let email = users::normalise_email(&form.email).unwrap_or_default();
    let user = match email.is_empty() {
        true => None,
        false => portal.app.store.portal_user_by_email(&email).await?,
    };
    match sign_in(&portal, user.as_ref(), &form).await? {
        Some(session_id) => {
            // A session the browser held before ends: one sign-in, one session.
            if let Some(earlier) = cookie(&headers, SESSION_COOKIE) {
                portal.app.store.end_portal_session(&sha256(earlier)).await?;
            }
            let mut response = done("/portal/");
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, set_cookie(&portal, SESSION_COOKIE, Some(&session_id)));
            headers.append(header::SET_COOKIE, set_cookie(&portal, SIGN_IN_COOKIE, None));
            Ok(response)
        }
        None => {
            let signup = portal.settings().sandbox_signup;
            Ok(refused(&portal, StatusCode::UNAUTHORIZED, |csrf| {
                render(&Login { csrf, email: &email, error: Some(FAILED), signup })
            }))
        }
    }
}

/// Signs `user` in when everything checks, and returns the new session's cookie value.
async fn sign_in(
    portal: &Portal,
    user: Option<&PortalUser>,
    form: &SignInForm,
) -> Result<Option<String>, PageError> {
    let store = &portal.app.store;
    let now = portal.app.clock.now();
    let settings = portal.settings();
    // Counted before the check, so that parallel guesses stop at the limit. Nobody (an unknown
    // email, a disabled user) takes the same write and the same argon2 work as a known user.
    let locked_until = now + settings.lockout;
    let known = user.filter(|user| user.disabled_at.is_none());
    let user_id = known.map_or("", |user| user.user_id.as_str());
    let counted =
        store.portal_sign_in_attempt(user_id, settings.sign_in_failures_max, locked_until, now).await?;
    let Some(user) = known else {
        verify(&portal.passwords, None, form.password.clone()).await;
        return Ok(None);
    };
    let failed = |code: &'static str| async move {
        portal.audit(&user.client_id, "portal.signIn", &user.email, code).await;
        Ok(None)
    };
    if !counted {
        verify(&portal.passwords, None, form.password.clone()).await;
        return failed("USER_LOCKED").await;
    }
    if !verify(&portal.passwords, user.password_hash.clone(), form.password.clone()).await {
        return failed("PASSWORD_WRONG").await;
    }
    let step = match &user.totp_secret {
        None => None,
        Some(secret) => match totp_step_of(secret, &form.totp, now, user.totp_last_step) {
            Some(step) => Some(step),
            None => return failed("TOTP_WRONG").await,
        },
    };
    let session_id = token();
    let session = PortalSession {
        session_sha256: sha256(&session_id),
        user_id: user.user_id.clone(),
        csrf_token: token(),
        created_at: now,
        last_seen_at: now,
    };
    if !store.record_portal_sign_in(&session, step).await? {
        return failed("TOTP_REUSED").await;
    }
    portal.audit(&user.client_id, "portal.signIn", &user.email, "SUCCESS").await;
    Ok(Some(session_id))
}

#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn sign_out(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> PageResult {
    signed.check_form(&headers, &form.csrf)?;
    portal.app.store.end_portal_session(&signed.session.session_sha256).await?;
    portal.audit(&signed.user.client_id, "portal.signOut", &signed.user.email, "SUCCESS").await;
    let mut response = done("/portal/login");
    response.headers_mut().append(header::SET_COOKIE, set_cookie(&portal, SESSION_COOKIE, None));
    Ok(response)
}

#[derive(Template)]
#[template(path = "setup.html")]
struct Setup<'a> {
    csrf: &'a str,
    token: &'a str,
    error: Option<&'a str>,
    min_chars: usize,
}

#[derive(Deserialize)]
pub(super) struct SetupQuery {
    #[serde(default)]
    token: String,
}

pub(super) async fn setup_form(
    State(portal): State<Arc<Portal>>,
    Query(query): Query<SetupQuery>,
) -> Response {
    with_sign_in_token(&portal, |csrf| {
        render(&Setup { csrf, token: &query.token, error: None, min_chars: PASSWORD_CHARS_MIN })
    })
}

#[derive(Deserialize)]
pub(super) struct SetupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn setup(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> PageResult {
    check_sign_in_token(&headers, &form.csrf)?;
    let now = portal.app.clock.now();
    match users::set_password(&*portal.app.store, &portal.passwords, now, &form.token, &form.password).await {
        Ok(user) => {
            portal.audit(&user.client_id, "portal.setPassword", &user.email, "SUCCESS").await;
            let page = Message {
                heading: "Password set",
                text: "Your password is set. Sign in with your email and the new password.",
                link: "/portal/login",
                link_text: "Sign in",
            };
            Ok(render(&page))
        }
        Err(UserError::Store(error)) => Err(error.into()),
        Err(error) => {
            let message = error.to_string();
            Ok(refused(&portal, StatusCode::BAD_REQUEST, |csrf| {
                render(&Setup {
                    csrf,
                    token: &form.token,
                    error: Some(&message),
                    min_chars: PASSWORD_CHARS_MIN,
                })
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
    Ok(with_sign_in_token(&portal, |csrf| {
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
    check_sign_in_token(&headers, &form.csrf)?;
    let refused = |message: String| {
        Ok(refused(&portal, StatusCode::BAD_REQUEST, |csrf| {
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
