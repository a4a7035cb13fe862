//! The operator's second factor: required, so it can be turned on and never off here (the
//! developer center's form and checks, [`crate::pages::account`]).

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::Response;
use http::HeaderMap;

use super::{Chrome, Operator, TOTP};
use crate::Portal;
use crate::auth::new_totp_secret;
use crate::pages::account::{TotpForm, checked_change, qr_data_uri};
use crate::pages::{PageResult, done, render};

#[derive(Template)]
#[template(path = "console/totp.html")]
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

fn page(operator: &Operator, secret: String, error: Option<String>) -> Response {
    render(&Totp {
        chrome: Chrome::new(operator, TOTP),
        action: TOTP,
        required_who: "Operators",
        enabled: operator.user.totp_secret.is_some(),
        required: true,
        qr_data_uri: qr_data_uri(&operator.user.email, &secret),
        secret,
        error,
    })
}

pub(super) async fn totp_page(operator: Operator) -> Response {
    page(&operator, new_totp_secret(), None)
}

pub(super) async fn totp_change(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    headers: HeaderMap,
    Form(form): Form<TotpForm>,
) -> PageResult {
    operator.check_form(&headers, &form.csrf)?;
    let (change, event) = match checked_change(&portal, &operator.user, &form, false).await? {
        Ok(change) => change,
        Err(error) => return Ok(page(&operator, form.secret().to_owned(), Some(error))),
    };
    portal.app.store.update_operator(&operator.user.user_id, &change).await?;
    crate::session::audit_operator_event(&portal, &operator.user, event, "SUCCESS").await;
    Ok(done("/console/"))
}
