//! Registrations (acquirers only; anyone else gets 404): the acquirer's registrations of its
//! merchants' stores, newest first, with their status and the reason of a rejection, paged by
//! keyset; and "register again" for a rejected one: a form prefilled from what was registered,
//! sent through the very checks and use case of the gateway's `registration` call.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use http::{HeaderMap, StatusCode};
use ocpay_core::ids::RegistrationId;
use ocpay_core::participant::ParticipantKind;
use ocpay_core::portal::Action;
use ocpay_core::registration::{Registration, RegistrationState};
use ocpay_protocol::registrations::{Address, RegistrationContent, RegistrationDetail, RegistrationRequest};
use ocpay_store::RegistrationLookup;
use serde::Deserialize;

use super::lists::{self, at_second};
use super::{Chrome, PageError, PageResult, done, render};
use crate::Portal;
use crate::session::Signed;

const SECTION: &str = "/portal/registrations";
const STATUSES: [&str; 3] = ["PROCESSING", "APPROVED", "REJECTED"];

/// Only acquirers register merchants: to anyone else the section does not exist.
fn acquirer(signed: &Signed) -> Result<(), PageError> {
    if signed.participant.kind == ParticipantKind::Acquirer { Ok(()) } else { Err(PageError::NotFound) }
}

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
    fn link(&self, after: &str) -> String {
        lists::link(SECTION, &[("status", &self.status), ("after", after)])
    }
}

struct Row {
    id: String,
    request_id: String,
    merchant: String,
    store: String,
    store_name: String,
    status: &'static str,
    reason: String,
    created: String,
    decided: String,
    rejected: bool,
}

#[derive(Template)]
#[template(path = "registrations.html")]
struct List {
    chrome: Chrome,
    query: ListQuery,
    statuses: [&'static str; 3],
    rows: Vec<Row>,
    next: Option<String>,
    first: Option<String>,
    may_register: bool,
    error: Option<String>,
}

/// What was registered, as the acquirer sent it.
fn content(registration: &Registration) -> RegistrationContent {
    // Written by the gateway from a parsed request; anything else reads as empty fields.
    serde_json::from_str(&registration.terms.content).unwrap_or_default()
}

pub(super) async fn list(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> PageResult {
    acquirer(&signed)?;
    signed.may(Action::Read)?;
    let size = portal.settings().page_size;
    let (registrations, error) = lists::rows_or_refusal(async {
        let status = lists::parse_status(&query.status, &STATUSES)?;
        let after = lists::parse_cursor(&query.after)?;
        let owner = &signed.participant.client_id;
        Ok(portal.app.store.registrations_page(owner, status, after.as_ref(), size + 1).await?)
    })
    .await?;
    let (registrations, next) = lists::split_page(registrations, size, |registration| {
        lists::cursor_text(registration.terms.created_at, registration.terms.id.as_str())
    });
    let rows = registrations
        .iter()
        .map(|registration| {
            let terms = &registration.terms;
            let reason = match &registration.state {
                RegistrationState::Rejected { reason, .. } => reason.to_string(),
                _ => String::new(),
            };
            Row {
                id: terms.id.to_string(),
                request_id: terms.request_id.to_string(),
                merchant: terms.reference_merchant_id.clone(),
                store: terms.reference_store_id.clone(),
                store_name: content(registration).store_info.store_name.unwrap_or_default(),
                status: registration.state.status(),
                rejected: matches!(registration.state, RegistrationState::Rejected { .. }),
                reason,
                created: at_second(terms.created_at),
                decided: registration.state.decided_at().map(at_second).unwrap_or_default(),
            }
        })
        .collect();
    let mut chrome = Chrome::new(&signed, SECTION);
    if query.done == "registered" {
        chrome.notice = Some("Registered again: the new registration is under review.".into());
    }
    let page = List {
        chrome,
        next: next.map(|after| query.link(&after)),
        first: (!query.after.is_empty()).then(|| query.link("")),
        statuses: STATUSES,
        rows,
        may_register: signed.may(Action::SandboxTest).is_ok(),
        error,
        query,
    };
    Ok(lists::answer(&page, page.error.is_some()))
}

/// The "register again" form's fields: what an acquirer most often corrects after a rejection.
/// Everything else is sent again as it was registered.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AgainForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    registration_request_id: String,
    #[serde(default)]
    notify_url: String,
    #[serde(default)]
    merchant_display_name: String,
    #[serde(default)]
    merchant_mcc: String,
    #[serde(default)]
    legal_name: String,
    #[serde(default)]
    registration_no: String,
    #[serde(default)]
    store_name: String,
    #[serde(default)]
    store_mcc: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    address1: String,
}

impl AgainForm {
    /// The form prefilled from a rejected registration, with a new request id.
    fn prefilled(registration: &Registration) -> AgainForm {
        let content = content(registration);
        let merchant = &content.merchant_info;
        let detail = merchant.registration_detail.clone().unwrap_or_default();
        let store = &content.store_info;
        let address = store.store_address.clone().unwrap_or_default();
        AgainForm {
            csrf: String::new(),
            registration_request_id: lists::request_id("portal-again"),
            notify_url: registration.terms.notify_url.clone().unwrap_or_default(),
            merchant_display_name: merchant.merchant_display_name.clone().unwrap_or_default(),
            merchant_mcc: merchant.merchant_mcc.clone().unwrap_or_default(),
            legal_name: detail.legal_name.unwrap_or_default(),
            registration_no: detail.registration_no.unwrap_or_default(),
            store_name: store.store_name.clone().unwrap_or_default(),
            store_mcc: store.store_mcc.clone().unwrap_or_default(),
            region: address.region.unwrap_or_default(),
            city: address.city.unwrap_or_default(),
            address1: address.address1.unwrap_or_default(),
        }
    }

    /// The `registration` request: the rejected one's content with the form's fields over it
    /// (an emptied optional field is left out), for the same merchant and store.
    fn request(&self, registration: &Registration) -> RegistrationRequest {
        let optional = |text: &str| Some(text.trim().to_owned()).filter(|text| !text.is_empty());
        let mut content = content(registration);
        let merchant = &mut content.merchant_info;
        merchant.reference_merchant_id = Some(registration.terms.reference_merchant_id.clone());
        merchant.merchant_display_name = optional(&self.merchant_display_name);
        merchant.merchant_mcc = optional(&self.merchant_mcc);
        let mut detail = merchant.registration_detail.clone().unwrap_or_default();
        detail.legal_name = optional(&self.legal_name);
        detail.registration_no = optional(&self.registration_no);
        merchant.registration_detail = Some(detail).filter(|detail| *detail != RegistrationDetail::default());
        let store = &mut content.store_info;
        store.reference_store_id = Some(registration.terms.reference_store_id.clone());
        // Required by the gateway: an emptied name is sent empty, and refused by its check.
        store.store_name = Some(self.store_name.trim().to_owned());
        store.store_mcc = optional(&self.store_mcc);
        let mut address = store.store_address.clone().unwrap_or_default();
        address.region = optional(&self.region);
        address.city = optional(&self.city);
        address.address1 = optional(&self.address1);
        store.store_address = Some(address).filter(|address| *address != Address::default());
        RegistrationRequest {
            registration_request_id: Some(self.registration_request_id.trim().to_owned()),
            registration_notify_url: optional(&self.notify_url),
            pass_through_info: None,
            merchant_info: Some(content.merchant_info),
            product_codes: Some(content.product_codes),
            store_info: Some(content.store_info),
        }
    }
}

#[derive(Template)]
#[template(path = "registration_again.html")]
struct Again {
    chrome: Chrome,
    id: String,
    request_id: String,
    merchant: String,
    store: String,
    reason: String,
    form: AgainForm,
    error: Option<String>,
}

/// One of the signed-in acquirer's rejected registrations: 404 for anything else (missing,
/// another participant's, or not rejected).
async fn rejected(portal: &Portal, signed: &Signed, id: &str) -> Result<(Registration, String), PageError> {
    let id = RegistrationId::parse(id).map_err(|_| PageError::NotFound)?;
    let registration = portal
        .app
        .store
        .registration(&signed.participant.client_id, &RegistrationLookup::ById(id))
        .await?
        .ok_or(PageError::NotFound)?;
    match &registration.state {
        RegistrationState::Rejected { reason, .. } => {
            let reason = reason.to_string();
            Ok((registration, reason))
        }
        _ => Err(PageError::NotFound),
    }
}

fn again_page(
    signed: &Signed,
    registration: &Registration,
    reason: String,
    form: AgainForm,
    error: Option<String>,
) -> Again {
    Again {
        chrome: Chrome::new(signed, SECTION),
        id: registration.terms.id.to_string(),
        request_id: registration.terms.request_id.to_string(),
        merchant: registration.terms.reference_merchant_id.clone(),
        store: registration.terms.reference_store_id.clone(),
        reason,
        form,
        error,
    }
}

pub(super) async fn again_form(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Path(id): Path<String>,
) -> PageResult {
    acquirer(&signed)?;
    signed.may(Action::SandboxTest)?;
    let (registration, reason) = rejected(&portal, &signed, &id).await?;
    let form = AgainForm::prefilled(&registration);
    Ok(render(&again_page(&signed, &registration, reason, form, None)))
}

pub(super) async fn again(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<AgainForm>,
) -> PageResult {
    acquirer(&signed)?;
    signed.check_form(&headers, &form.csrf)?;
    super::may_change(&portal, &signed, Action::SandboxTest, "portal.registerAgain").await?;
    let (registration, reason) = rejected(&portal, &signed, &id).await?;
    let request = form.request(&registration);
    let api = "portal.registerAgain";
    let owner = &signed.participant;
    match ocpay_server::register_request(&portal.app, owner, &request).await {
        Ok(_) => {
            portal.audit(&owner.client_id, api, &signed.user.email, "SUCCESS").await;
            Ok(done(&format!("{SECTION}?done=registered")))
        }
        Err(refused) => {
            if let Some(detail) = refused.internal {
                return Err(PageError::Internal(detail));
            }
            portal.audit(&owner.client_id, api, &signed.user.email, refused.code.as_str()).await;
            let page = again_page(&signed, &registration, reason, form, Some(refused.message));
            Ok((StatusCode::BAD_REQUEST, render(&page)).into_response())
        }
    }
}
