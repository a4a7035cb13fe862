//! The registration review queue: every acquirer's registrations, those under review
//! (`PROCESSING`) first and by default, each with what was registered; an operator approves
//! one or rejects it with a reason, through the review use case the CLI runs
//! (`service::registrations::review`), which queues the acquirer's notification.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use http::HeaderMap;
use ocpay_core::registration::{Decision, RegistrationState, RejectReason};
use ocpay_protocol::registrations::{Address, RegistrationContent};
use ocpay_server::service::registrations::{self, ReviewError};
use serde::Deserialize;

use super::{Chrome, Operator};
use crate::Portal;
use crate::pages::lists::{self, at_second};
use crate::pages::{PageError, PageResult, done};

pub(crate) const SECTION: &str = "/console/registrations";
/// The queue's views: `PROCESSING` (the default), the decided ones, or all.
const STATUSES: [&str; 4] = ["PROCESSING", "APPROVED", "REJECTED", "ALL"];

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    done: String,
}

impl ListQuery {
    fn status(&self) -> &str {
        if self.status.is_empty() { "PROCESSING" } else { &self.status }
    }

    fn link(&self, after: &str) -> String {
        lists::link(SECTION, &[("status", &self.status), ("after", after)])
    }
}

struct Row {
    id: String,
    owner: String,
    request_id: String,
    merchant: String,
    store: String,
    status: &'static str,
    processing: bool,
    reason: String,
    created: String,
    decided: String,
    /// The registration's main facts, label and value, for the reviewer.
    facts: Vec<(&'static str, String)>,
    /// What was registered, as the acquirer sent it (indented JSON).
    content: String,
}

/// An address on one line, its parts in the usual order.
fn address_line(address: &Address) -> String {
    [
        &address.address1,
        &address.address2,
        &address.address3,
        &address.city,
        &address.state,
        &address.zip_code,
        &address.region,
    ]
    .into_iter()
    .flatten()
    .map(String::as_str)
    .collect::<Vec<_>>()
    .join(", ")
}

/// What a reviewer looks at first, from what was registered (absent fields left out).
fn facts(content: &RegistrationContent) -> Vec<(&'static str, String)> {
    let merchant = &content.merchant_info;
    let detail = merchant.registration_detail.as_ref();
    let store = &content.store_info;
    [
        ("Merchant", merchant.merchant_display_name.clone()),
        ("Legal name", detail.and_then(|detail| detail.legal_name.clone())),
        ("Registration no.", detail.and_then(|detail| detail.registration_no.clone())),
        ("Merchant MCC", merchant.merchant_mcc.clone()),
        ("Store", store.store_name.clone()),
        ("Store MCC", store.store_mcc.clone()),
        ("Store address", store.store_address.as_ref().map(address_line)),
        ("Products", Some(content.product_codes.join(", ")).filter(|codes| !codes.is_empty())),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.filter(|value| !value.is_empty()).map(|value| (label, value)))
    .collect()
}

#[derive(Template)]
#[template(path = "console/registrations.html")]
struct List {
    chrome: Chrome,
    status: String,
    statuses: [&'static str; 4],
    rows: Vec<Row>,
    next: Option<String>,
    first: Option<String>,
    error: Option<String>,
}

pub(super) async fn list(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let size = portal.settings().page_size;
    let (registrations, error) = lists::rows_or_refusal(async {
        let status = lists::parse_status(query.status(), &STATUSES)?.filter(|status| *status != "ALL");
        let after = lists::parse_cursor(&query.after)?;
        Ok(portal.app.store.all_registrations_page(status, after.as_ref(), size + 1).await?)
    })
    .await?;
    let (registrations, next) = lists::split_page(registrations, size, |registration| {
        lists::cursor_text(registration.terms.created_at, registration.terms.id.as_str())
    });
    let rows = registrations
        .iter()
        .map(|registration| {
            let terms = &registration.terms;
            let content = serde_json::from_str::<serde_json::Value>(&terms.content)
                .and_then(|value| serde_json::to_string_pretty(&value))
                .unwrap_or_else(|_| terms.content.clone());
            // Written by the gateway from a parsed request; anything else reads as no facts.
            let registered: RegistrationContent = serde_json::from_str(&terms.content).unwrap_or_default();
            Row {
                id: terms.id.to_string(),
                owner: terms.owner.to_string(),
                request_id: terms.request_id.to_string(),
                merchant: terms.reference_merchant_id.clone(),
                store: terms.reference_store_id.clone(),
                status: registration.state.status(),
                processing: registration.state == RegistrationState::Processing,
                reason: match &registration.state {
                    RegistrationState::Rejected { reason, .. } => reason.to_string(),
                    _ => String::new(),
                },
                created: at_second(terms.created_at),
                decided: registration.state.decided_at().map(at_second).unwrap_or_default(),
                facts: facts(&registered),
                content,
            }
        })
        .collect();
    let mut chrome = Chrome::new(&operator, SECTION);
    chrome.notice = match query.done.as_str() {
        "approved" => Some("Approved: the acquirer is notified.".into()),
        "rejected" => Some("Rejected: the acquirer is notified with the reason.".into()),
        _ => None,
    };
    let page = List {
        chrome,
        status: query.status().to_owned(),
        statuses: STATUSES,
        rows,
        next: next.map(|after| query.link(&after)),
        first: (!query.after.is_empty()).then(|| query.link("")),
        error,
    };
    Ok(lists::answer(&page, page.error.is_some()))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn decide(
    portal: &Portal,
    operator: &Operator,
    headers: &HeaderMap,
    id: &str,
    form: &DecisionForm,
    approve: bool,
) -> PageResult {
    operator.check_form(headers, &form.csrf)?;
    let decision = if approve {
        Decision::Approve
    } else {
        let reason = RejectReason::parse(form.reason.trim())
            .map_err(|error| PageError::Invalid(format!("reason: {error}")))?;
        Decision::Reject { reason }
    };
    let now = portal.app.clock.now();
    let registration = match registrations::review(&*portal.app.store, id, None, &decision, now).await {
        Ok(registration) => registration,
        Err(ReviewError::NotFound(_) | ReviewError::Ambiguous { .. }) => return Err(PageError::NotFound),
        Err(error @ ReviewError::AlreadyDecided { .. }) => return Err(PageError::Invalid(error.to_string())),
        Err(ReviewError::Store(error)) => return Err(error.into()),
    };
    let (api, word) = if approve {
        ("console.approveRegistration", "approved")
    } else {
        ("console.rejectRegistration", "rejected")
    };
    let on = format!("registration {}", registration.terms.request_id);
    operator.audit_on(portal, &registration.terms.owner, api, &on, "SUCCESS").await;
    Ok(done(&format!("{SECTION}?done={word}")))
}

pub(super) async fn approve(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> PageResult {
    decide(&portal, &operator, &headers, &id, &form, true).await
}

pub(super) async fn reject(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> PageResult {
    decide(&portal, &operator, &headers, &id, &form, false).await
}
