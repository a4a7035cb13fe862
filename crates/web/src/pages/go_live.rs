//! Going live (`/portal/go-live`): the go-live checklist and every acceptance case of the
//! sandbox twin `SANDBOX_X`, as `service::acceptance::go_live` judges them from its own traffic,
//! and the test notification (`service::test_notification`), sent to the live twin `X`'s notify
//! URL or to this participant's own.
//!
//! A user of either twin sees the page; of the other twin it reads only what the checklist says
//! (the live key, notify URL and SFTP items) and reaches only its notify URL, through the test
//! notification: the form names "live" or "own", never a client id. The cases' evidence links to
//! the API log only for the sandbox twin's users, whose log it is. Sending takes the right to
//! change settings (owners and developers); its answer is shown at once, on the page itself.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::State;
use http::HeaderMap;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::Environment;
use ocpay_core::portal::Action;
use ocpay_server::service::acceptance::{self, ChecklistItem, GoLive};
use ocpay_server::service::test_notification::{self, Outcome, TEST_NOTIFICATION_API};
use serde::Deserialize;

use super::{Chrome, PageError, PageResult, may_change, render, utc_minute};
use crate::Portal;
use crate::session::Signed;

/// The page's path.
pub(crate) const GO_LIVE: &str = "/portal/go-live";

#[derive(Template)]
#[template(path = "go_live.html")]
struct GoLivePage {
    chrome: Chrome,
    sandbox_client_id: String,
    live_client_id: String,
    /// This participant is the sandbox twin (whose API log the evidence is in).
    signed_sandbox: bool,
    ready: bool,
    checklist: Vec<ChecklistItem>,
    cases: Vec<CaseRow>,
    passed: usize,
    may_send: bool,
    /// The answer to the test notification just sent.
    sent: Option<Sent>,
}

struct CaseRow {
    name: &'static str,
    title: &'static str,
    passed: bool,
    missing: Option<String>,
    how_to_provoke: &'static str,
    /// The API-log entries, when this participant may open them.
    evidence: Vec<i64>,
    /// How many entries the evidence holds.
    evidence_count: usize,
}

/// What a test notification came to, as the page words it.
struct Sent {
    /// "the live notify URL of X" or "this participant's notify URL".
    whose: String,
    url: Option<String>,
    id: String,
    at: String,
    acknowledged: bool,
    status: Option<u16>,
    answer: Option<String>,
    /// Why nothing was answered.
    not_sent: Option<String>,
}

async fn go_live_page(portal: &Portal, signed: &Signed, sent: Option<Sent>) -> PageResult {
    let GoLive { sandbox_client_id, live_client_id, cases, checklist, ready, .. } =
        acceptance::go_live(&portal.app.context, &signed.participant.client_id)
            .await
            .map_err(|error| PageError::Internal(error.to_string()))?;
    let signed_sandbox = signed.participant.environment() == Environment::Sandbox;
    let cases: Vec<CaseRow> = cases
        .into_iter()
        .map(|case| CaseRow {
            name: case.case.as_str(),
            title: case.title,
            passed: case.passed,
            missing: case.missing,
            how_to_provoke: case.how_to_provoke,
            evidence_count: case.evidence.len(),
            evidence: if signed_sandbox { case.evidence } else { Vec::new() },
        })
        .collect();
    let page = GoLivePage {
        chrome: Chrome::new(signed, GO_LIVE),
        sandbox_client_id,
        live_client_id,
        signed_sandbox,
        ready,
        checklist,
        passed: cases.iter().filter(|case| case.passed).count(),
        cases,
        may_send: signed.may(Action::ChangeSettings).is_ok(),
        sent,
    };
    Ok(render(&page))
}

pub(super) async fn page(State(portal): State<Arc<Portal>>, signed: Signed) -> PageResult {
    go_live_page(&portal, &signed, None).await
}

#[derive(Deserialize)]
pub(super) struct TestForm {
    #[serde(default)]
    csrf: String,
    /// `live`: the live twin's notify URL; `own`: this participant's.
    #[serde(default)]
    to: String,
}

pub(super) async fn send_test(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<TestForm>,
) -> PageResult {
    signed.check_form(&headers, &form.csrf)?;
    may_change(&portal, &signed, Action::ChangeSettings, TEST_NOTIFICATION_API).await?;
    let own = &signed.participant.client_id;
    let (_, live) = acceptance::twins(own).map_err(|error| PageError::Internal(error.to_string()))?;
    let (to, whose): (&ClientId, String) = match form.to.as_str() {
        "live" => (&live, format!("the live notify URL of {live}")),
        "own" => (own, format!("the notify URL of {own}")),
        _ => return Err(PageError::Invalid("to: must be live or own".to_owned())),
    };
    let who = format!("{} of {own}", signed.user.email);
    let notification = test_notification::send(&portal.app.notifier, to, &who).await?;
    let sent = match notification {
        None => Sent {
            whose,
            url: None,
            id: String::new(),
            at: utc_minute(portal.app.clock.now()),
            acknowledged: false,
            status: None,
            answer: None,
            not_sent: Some(format!("there is no participant {to} yet: ask the operator to create it")),
        },
        Some(notification) => {
            let (acknowledged, status, answer, not_sent) = match notification.outcome {
                Outcome::Answered(reply) => (reply.acknowledged, Some(reply.status), reply.answer, None),
                Outcome::NotSent(reason) => (false, None, None, Some(reason)),
            };
            Sent {
                whose,
                url: notification.url,
                id: notification.id,
                at: utc_minute(notification.sent_at),
                acknowledged,
                status,
                answer,
                not_sent,
            }
        }
    };
    go_live_page(&portal, &signed, Some(sent)).await
}
