//! The user's own account: turning the TOTP second factor on (scan, confirm with a code) and
//! off (with a code; owners of live participants cannot when the settings require it).

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
use crate::session::Signed;

#[derive(Template)]
#[template(path = "totp.html")]
struct Totp {
    chrome: Chrome,
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

fn page(portal: &Portal, signed: &Signed, secret: String, error: Option<String>) -> Response {
    let qr = fast_qr::QRBuilder::new(totp_uri("ocpay", &signed.user.email, &secret))
        .build()
        .map(|code| fast_qr::convert::svg::SvgBuilder::default().to_str(&code))
        .unwrap_or_default();
    let qr_data_uri =
        format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(qr));
    render(&Totp {
        chrome: Chrome::new(signed, "/portal/account/totp"),
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
pub(super) struct TotpForm {
    #[serde(default)]
    csrf: String,
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
    let now = portal.app.clock.now();
    let change = match form.action.as_str() {
        "enable" if signed.user.totp_secret.is_none() => {
            let hash = signed.user.password_hash.clone();
            if !portal.passwords.verify_off_runtime(hash, &form.password).await {
                let error = "That is not your password.";
                return Ok(page(&portal, &signed, form.secret, Some(error.into())));
            }
            if totp_step_of(&form.secret, &form.code, now, None).is_none() {
                let error = "That code does not match: check the app's clock and type the code it shows now.";
                return Ok(page(&portal, &signed, form.secret, Some(error.into())));
            }
            PortalUserChange { totp_secret: Some(Some(form.secret)), ..Default::default() }
        }
        "disable" if !required(&portal, &signed) => {
            let secret = signed.user.totp_secret.as_deref().ok_or(PageError::NotFound)?;
            if totp_step_of(secret, &form.code, now, signed.user.totp_last_step).is_none() {
                return Err(PageError::Invalid("code: it does not match the authenticator app's".into()));
            }
            PortalUserChange { totp_secret: Some(None), ..Default::default() }
        }
        _ => return Err(PageError::Invalid("action: not one this page offers now".into())),
    };
    portal.app.store.update_portal_user(&signed.user.user_id, &change).await?;
    let api = if form.action == "enable" { "portal.enableTotp" } else { "portal.disableTotp" };
    portal.audit(&signed.user.client_id, api, &signed.user.email, "SUCCESS").await;
    Ok(done("/portal/account/totp"))
}
