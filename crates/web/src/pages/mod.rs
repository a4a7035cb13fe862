//! Every route of the developer center, the layout's data ([`Chrome`]) and the one mapping of
//! failures to pages ([`PageError`]).
//!
//! An object of another participant answers exactly as a missing one ([`PageError::NotFound`]);
//! an action the role does not allow answers 403 whatever the page showed; a form without the
//! session's CSRF token, or sent from another site, answers 403 and changes nothing.

pub(crate) mod account;
mod explorer;
mod go_live;
mod grants;
pub(crate) mod home;
mod keys;
pub(crate) mod lists;
mod logs;
mod payments;
mod refunds;
mod registrations;
pub(crate) mod reports;
mod settings;
pub(crate) mod sign_in;
mod team;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{StatusCode, header};
use ocpay_core::Timestamp;
use ocpay_core::participant::ParticipantKind;
use ocpay_core::portal::Action;
use ocpay_store::StoreError;

use crate::Portal;
use crate::session::{PortalRealm, Signed};

pub(crate) fn routes() -> Router<Arc<Portal>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal/") }))
        .route("/portal", get(|| async { Redirect::to("/portal/") }))
        .route("/portal/", get(home::page))
        .route("/portal/login", get(sign_in::form::<PortalRealm>).post(sign_in::submit::<PortalRealm>))
        .route("/portal/logout", axum::routing::post(sign_in::sign_out::<PortalRealm>))
        .route("/portal/setup", get(sign_in::setup_form::<PortalRealm>).post(sign_in::setup::<PortalRealm>))
        .route("/portal/signup", get(sign_in::signup_form).post(sign_in::signup))
        .route("/portal/account/totp", get(account::totp_page).post(account::totp_change))
        .route("/portal/keys", get(keys::page).post(keys::add))
        .route("/portal/keys/{version}/revoke", post(keys::revoke))
        .route("/portal/settings", get(settings::page))
        .route("/portal/settings/notify-url", post(settings::notify_url))
        .route("/portal/settings/settlement-currency", post(settings::settlement_currency))
        .route("/portal/team", get(team::page))
        .route("/portal/team/invite", post(team::invite))
        .route("/portal/team/{user_id}/role", post(team::change_role))
        .route("/portal/team/{user_id}/disable", post(team::disable))
        .route("/portal/team/{user_id}/link", post(team::new_link))
        .route("/portal/payments", get(payments::list))
        .route("/portal/payments/{payment_id}", get(payments::detail))
        .route("/portal/payments/{payment_id}/refund", post(payments::refund_action))
        .route("/portal/payments/{payment_id}/cancel", post(payments::cancel_action))
        .route("/portal/payments/{payment_id}/resend", post(payments::resend_action))
        .route("/portal/payments/{payment_id}/pay", post(payments::test_pay_action))
        .route("/portal/refunds", get(refunds::list))
        .route("/portal/logs", get(logs::list))
        .route("/portal/logs/check", get(logs::check_form).post(logs::check))
        .route("/portal/logs/{entry_id}", get(logs::detail))
        .route(explorer::EXPLORER, get(explorer::page))
        .route("/portal/registrations", get(registrations::list))
        .route(
            "/portal/registrations/{registration_id}/again",
            get(registrations::again_form).post(registrations::again),
        )
        .route("/portal/grants", get(grants::list).post(grants::authorise))
        .route("/portal/grants/{grant_id}/revoke", post(grants::revoke))
        .route("/portal/grants/{grant_id}/token", post(grants::take_token))
        .route("/portal/reports", get(reports::page))
        .route(go_live::GO_LIVE, get(go_live::page))
        .route("/portal/go-live/test-notification", post(go_live::send_test))
        .route("/portal/reports/{date}/{file}", get(reports::download))
        .route("/portal/reports/sftp/keys", post(reports::add_key))
        .route("/portal/reports/sftp/keys/remove", post(reports::remove_key))
        .route("/portal/reports/sftp/password", post(reports::set_password))
        .route("/portal/reports/sftp/allow-list", post(reports::set_allow_list))
        .route("/portal/{file}", get(home::platform_key_file))
        .route("/portal/static/portal.css", get(style))
        .route("/portal/static/portal.js", get(script))
        .route("/portal/static/explorer.js", get(explorer_script))
        .fallback(|| async { PageError::NotFound })
}

/// The sections in the navigation, in order.
pub(crate) const SECTIONS: &[(&str, &str)] = &[
    ("/portal/", "Home"),
    ("/portal/payments", "Payments"),
    ("/portal/refunds", "Refunds"),
    ("/portal/logs", "API log"),
    (explorer::EXPLORER, "API explorer"),
    (REGISTRATIONS, "Registrations"),
    ("/portal/grants", "Grants"),
    ("/portal/reports", "Reports"),
    (go_live::GO_LIVE, "Go live"),
    ("/portal/keys", "Keys"),
    ("/portal/settings", "Settings"),
    ("/portal/team", "Team"),
    ("/portal/account/totp", "Two-factor"),
];

/// Acquirers' section only: nobody else's navigation shows it.
const REGISTRATIONS: &str = "/portal/registrations";

/// What the layout shows around every signed-in page.
pub(crate) struct Chrome {
    pub email: String,
    pub role: &'static str,
    pub participant_name: String,
    pub environment: &'static str,
    pub csrf: String,
    /// The sections, each with whether this page belongs to it.
    pub nav: Vec<(&'static str, &'static str, bool)>,
    /// A one-line confirmation of what the last action did.
    pub notice: Option<String>,
}

impl Chrome {
    pub(crate) fn new(signed: &Signed, current: &'static str) -> Chrome {
        Chrome {
            email: signed.user.email.clone(),
            role: signed.user.role.as_str(),
            participant_name: signed.participant.name.to_string(),
            environment: signed.participant.environment().as_str(),
            csrf: signed.session.csrf_token.clone(),
            nav: SECTIONS
                .iter()
                .filter(|(href, _)| {
                    *href != REGISTRATIONS || signed.participant.kind == ParticipantKind::Acquirer
                })
                .map(|(href, label)| (*href, *label, *href == current))
                .collect(),
            notice: signed.suspended.then(|| {
                "The platform's operator suspended this participant: its API requests answer \
                 ACCESS_DENIED, and you may read here and change nothing."
                    .to_owned()
            }),
        }
    }
}

/// Refuses a change the user's role does not allow (answered 403, whatever the page showed),
/// and records the refusal in the audit trail under the change's name: the form passed its
/// CSRF check, so the user did ask for it.
pub(crate) async fn may_change(
    portal: &Portal,
    signed: &Signed,
    action: Action,
    api: &str,
) -> Result<(), PageError> {
    let allowed = signed.may(action);
    if allowed.is_err() {
        portal.audit(&signed.participant.client_id, api, &signed.user.email, "FORBIDDEN").await;
    }
    allowed
}

/// An instant as the pages show it: to the minute, in UTC.
pub(crate) fn utc_minute(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// Why a page could not be shown or an action done.
#[derive(Debug)]
pub enum PageError {
    /// Missing, or another participant's: the same answer.
    NotFound,
    /// The role does not allow it.
    Forbidden,
    /// No valid CSRF token, or sent from another site.
    Csrf,
    /// A change asked of a participant an operator suspended.
    Suspended,
    /// A value refused; the message names the field.
    Invalid(String),
    Internal(String),
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> PageError {
        PageError::Internal(error.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, text) = match self {
            PageError::NotFound => (StatusCode::NOT_FOUND, "Not found", "There is nothing here.".to_owned()),
            PageError::Forbidden => {
                (StatusCode::FORBIDDEN, "Not allowed", "Your role does not allow this.".to_owned())
            }
            PageError::Suspended => (
                StatusCode::FORBIDDEN,
                "Suspended",
                "The platform's operator suspended this participant: you may read, and change nothing."
                    .to_owned(),
            ),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "The form was not sent from this page or has expired. Go back, reload it and try again."
                    .to_owned(),
            ),
            PageError::Invalid(message) => (StatusCode::BAD_REQUEST, "Not accepted", message),
            PageError::Internal(error) => {
                tracing::error!(%error, "a developer-center page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Try again in a moment.".to_owned(),
                )
            }
        };
        let page =
            Message { heading, text: &text, link: "/portal/", link_text: "Back to the developer center" };
        let mut response = (status, render(&page)).into_response();
        // For the console, which shows the same failure on its own page (`console::failures`).
        response.extensions_mut().insert(Failure { heading, text });
        response
    }
}

/// A failure as [`PageError`] words it, kept on its answer.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub heading: &'static str,
    pub text: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct Message<'a> {
    pub heading: &'a str,
    pub text: &'a str,
    pub link: &'a str,
    pub link_text: &'a str,
}

/// A template rendered as an HTML answer (a failure to render is logged and answered 500).
pub(crate) fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "rendering a developer-center page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "rendering failed").into_response()
        }
    }
}

/// What a page handler returns.
pub(crate) type PageResult = Result<Response, PageError>;

/// A redirect after a successful form (POST, redirect, GET), with a notice for the next page.
pub(crate) fn done(to: &str) -> Response {
    Redirect::to(to).into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../../static/portal.css"))
        .into_response()
}

async fn script() -> Response {
    javascript(include_str!("../../static/portal.js"))
}

/// The API explorer's script, loaded by its page only.
async fn explorer_script() -> Response {
    javascript(include_str!("../../static/explorer.js"))
}

fn javascript(text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], text).into_response()
}
