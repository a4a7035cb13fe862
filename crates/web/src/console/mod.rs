//! The operator's console under `/console/`: where operators run the platform (participants,
//! the registration review, the audit trail across participants, and the platform's pages).
//!
//! Operators are users of their own realm ([`ConsoleRealm`]): they sign in, lock out and keep
//! sessions by the developer center's code, with their own cookie (`ocpay_console`, on
//! `Path=/console`), and they must turn on the second factor before any other page
//! ([`Operator`] sends them to it). Every route is listed here; every change checks the
//! session's CSRF token and the origin first, and goes to the audit trail of the participant
//! concerned with the operator who did it ([`Operator::audit_on`]).

mod account;
mod activity;
mod audit;
mod home;
mod ledger;
mod notifications;
mod participants;
mod payers;
mod registrations;
mod settlement;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::HeaderMap;
use http::request::Parts;
use ocpay_core::ids::ClientId;
use ocpay_store::{OperatorUser, PortalSession};

use crate::Portal;
use crate::pages::sign_in::{self, ConsoleMessage};
use crate::pages::{Failure, PageError, render};
use crate::session::{ConsoleRealm, check_form, live_session};

/// The console's routes, merged into the web crate's router.
pub(crate) fn routes() -> Router<Arc<Portal>> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(home::page))
        .route("/console/login", get(sign_in::form::<ConsoleRealm>).post(sign_in::submit::<ConsoleRealm>))
        .route("/console/logout", axum::routing::post(sign_in::sign_out::<ConsoleRealm>))
        .route(
            "/console/setup",
            get(sign_in::setup_form::<ConsoleRealm>).post(sign_in::setup::<ConsoleRealm>),
        )
        .route(TOTP, get(account::totp_page).post(account::totp_change))
        .route(participants::SECTION, get(participants::list).post(participants::create))
        .route("/console/participants/new", get(participants::new_form))
        .route("/console/participants/{client_id}", get(participants::detail).post(participants::update))
        .route("/console/participants/{client_id}/fees", post(participants::set_fees))
        .route("/console/participants/{client_id}/suspend", post(participants::suspend))
        .route("/console/participants/{client_id}/resume", post(participants::resume))
        .route(registrations::SECTION, get(registrations::list))
        .route("/console/registrations/{id}/approve", post(registrations::approve))
        .route("/console/registrations/{id}/reject", post(registrations::reject))
        .route(audit::SECTION, get(audit::search))
        .route("/console/{*rest}", axum::routing::any(|| async { PageError::NotFound }))
        .layer(axum::middleware::from_fn(failures))
        .route(payers::SECTION, get(payers::list).post(payers::create))
        .route("/console/payers/{payer_id}", get(payers::detail))
        .route("/console/payers/{payer_id}/top-up", post(payers::top_up))
        .route("/console/payers/{payer_id}/unlock", post(payers::unlock))
        .route(ledger::SECTION, get(ledger::page))
        .route(notifications::SECTION, get(notifications::page))
        .route("/console/notifications/resend", post(notifications::resend))
        .route(settlement::SECTION, get(settlement::list))
        .route("/console/settlement/{batch_id}", get(settlement::detail))
        .route("/console/settlement/{batch_id}/mark-paid", post(settlement::mark_paid))
        .route("/console/settlement/{batch_id}/files/{date}/{name}", get(settlement::download))
}

/// Shows a page's failure on the console's own page, which leads back to the console.
async fn failures(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let Some(failure) = response.extensions().get::<Failure>().cloned() else { return response };
    let page = ConsoleMessage {
        heading: failure.heading,
        text: &failure.text,
        link: "/console/",
        link_text: "Back to the console",
    };
    (response.status(), render(&page)).into_response()
}

/// The second factor's page: the only one an operator without it reaches (and sign-out).
pub(crate) const TOTP: &str = "/console/account/totp";

/// The sections in the console's navigation, in order.
pub(crate) const SECTIONS: &[(&str, &str)] = &[
    ("/console/", "Overview"),
    (participants::SECTION, "Participants"),
    (registrations::SECTION, "Registrations"),
    (payers::SECTION, "Payers"),
    (ledger::SECTION, "Ledger"),
    (notifications::SECTION, "Notifications"),
    (settlement::SECTION, "Settlement"),
    (audit::SECTION, "Audit"),
    (TOTP, "Two-factor"),
];

/// The signed-in operator of a request, with its session; an operator without the second
/// factor is sent to set it up first.
pub struct Operator {
    pub user: OperatorUser,
    pub session: PortalSession,
}

impl Operator {
    /// The checks of a state-changing request: the session's CSRF token and the origin.
    pub fn check_form(&self, headers: &HeaderMap, csrf: &str) -> Result<(), PageError> {
        check_form(&self.session, headers, csrf)
    }

    /// Records a console action in the audit trail of the participant it concerns: `api` names
    /// it (`console.suspend`), and the event says which operator did it and to what.
    pub async fn audit_on(&self, portal: &Portal, client_id: &ClientId, api: &str, on: &str, code: &str) {
        portal.audit_on(client_id, api, &format!("operator {}", self.user.email), on, code).await;
    }
}

impl FromRequestParts<Arc<Portal>> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, portal: &Arc<Portal>) -> Result<Operator, Response> {
        let found = live_session::<ConsoleRealm>(portal, &parts.headers)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some((session, user)) = found else {
            return Err(Redirect::to("/console/login").into_response());
        };
        let path = parts.uri.path();
        if user.totp_secret.is_none() && path != TOTP && path != "/console/logout" {
            return Err(Redirect::to(TOTP).into_response());
        }
        Ok(Operator { user, session })
    }
}

/// What the console's layout shows around every signed-in page.
pub(crate) struct Chrome {
    pub email: String,
    pub csrf: String,
    /// The sections, each with whether this page belongs to it.
    pub nav: Vec<(&'static str, &'static str, bool)>,
    /// A one-line confirmation of what the last action did.
    pub notice: Option<String>,
}

impl Chrome {
    pub(crate) fn new(operator: &Operator, current: &'static str) -> Chrome {
        Chrome {
            email: operator.user.email.clone(),
            csrf: operator.session.csrf_token.clone(),
            nav: SECTIONS.iter().map(|(href, label)| (*href, *label, *href == current)).collect(),
            notice: None,
        }
    }
}
