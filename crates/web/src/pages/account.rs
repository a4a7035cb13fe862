//! The user's own account: turning the TOTP second factor on (scan, confirm with a code) and
//! off (with a code; owners of live participants cannot when the settings require it).
//!
//! The form's checks and its template (`totp_form.html`) are the operator's console's too
//! ([`qr_data_uri`], [`checked_change`]), where the second factor is always required.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::Response;
use base64::Engine as _;
use http::HeaderMap;
use ocpay_core::participant::Environment;
use ocpay_core::portal::Role;
use ocpay_store::PortalUserChange;
use serde::Deserialize;

use super::{Chrome, PageError, PageResult, done, render};
use crate::Portal;
use crate::auth::{new_totp_secret, totp_step_of, totp_uri};
use crate::session::{Account, Signed};

#[derive(Template)]
#[template(path = "totp.html")]
struct Totp {
    chrome: Chrome,
    action: &'static str,
    required_who: &'static str,
    enabled: bool,
    required: bool,
    secret: String,
    qr_data_uri: String,
    error: Option<String>,
}

fn required(portal: &Portal, signed: &Signed) -> bool {
    portal.settings().totp_required_for_live_owners
        && signed.user.role == Role::Owner
        && signed.participant.environment() == Environment::Live
}

/// The QR code of an authenticator key, as an `img` source.
pub(crate) fn qr_data_uri(email: &str, secret: &str) -> String {
    let qr = fast_qr::QRBuilder::new(totp_uri("ocpay", email, secret))
        .build()
        .map(|code| fast_qr::convert::svg::SvgBuilder::default().to_str(&code))
        .unwrap_or_default();
    format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(qr))
}

fn page(portal: &Portal, signed: &Signed, secret: String, error: Option<String>) -> Response {
    let qr_data_uri = qr_data_uri(&signed.user.email, &secret);
    render(&Totp {
        chrome: Chrome::new(signed, "/portal/account/totp"),
        action: "/portal/account/totp",
        required_who: "Owners of live participants",
        enabled: signed.user.totp_secret.is_some(),
        required: required(portal, signed),
        secret,
        qr_data_uri,
        error,
    })
}

pub(super) async fn totp_page(State(portal): State<Arc<Portal>>, signed: Signed) -> Response {
    page(&portal, &signed, new_totp_secret(), None)
}

#[derive(Deserialize)]
pub(crate) struct TotpForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    code: String,
    /// The user's password, asked when turning the second factor on: a stolen session alone
    /// cannot put an attacker's key on the account.
    #[serde(default)]
    password: String,
}

pub(super) async fn totp_change(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<TotpForm>,
) -> PageResult {
    signed.check_form(&headers, &form.csrf)?;
    let may_disable = !required(&portal, &signed);
    let (change, api) = match checked_change(&portal, &signed.user, &form, may_disable).await? {
        Ok(change) => change,
        Err(error) => return Ok(page(&portal, &signed, form.secret, Some(error))),
    };
    portal.app.store.update_portal_user(&signed.user.user_id, &change).await?;
    portal.audit(&signed.user.client_id, &format!("portal.{api}"), &signed.user.email, "SUCCESS").await;
    Ok(done("/portal/account/totp"))
}

/// The change the TOTP form asks of `user` once checked, with its event's name (`enableTotp`,
/// `disableTotp`), or why it was refused, to show with the form again.
pub(crate) async fn checked_change<U: Account>(
    portal: &Portal,
    user: &U,
    form: &TotpForm,
    may_disable: bool,
) -> Result<Result<(PortalUserChange, &'static str), String>, PageError> {
    let now = portal.app.clock.now();
    match form.action.as_str() {
        "enable" if user.totp_secret().is_none() => {
            let hash = user.password_hash().map(str::to_owned);
            if !portal.passwords.verify_off_runtime(hash, &form.password).await {
                return Ok(Err("That is not your password.".into()));
            }
            if totp_step_of(&form.secret, &form.code, now, None).is_none() {
                let error = "That code does not match: check the app's clock and type the code it shows now.";
                return Ok(Err(error.into()));
            }
            Ok(Ok((
                PortalUserChange { totp_secret: Some(Some(form.secret.clone())), ..Default::default() },
                "enableTotp",
            )))
        }
        "disable" if may_disable => {
            let secret = user.totp_secret().ok_or(PageError::NotFound)?;
            if totp_step_of(secret, &form.code, now, user.totp_last_step()).is_none() {
                return Err(PageError::Invalid("code: it does not match the authenticator app's".into()));
            }
            Ok(Ok((PortalUserChange { totp_secret: Some(None), ..Default::default() }, "disableTotp")))
        }
        _ => Err(PageError::Invalid("action: not one this page offers now".into())),
    }
}

/// The form's secret, for the page shown again after a refusal.
impl TotpForm {
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}
