//! Grants: a merchant (or acquirer) authorises an ISV to act for it (the ISV by client id, the
//! scopes, the expiry), lists its grants and revokes them; an ISV sees the grants it holds.
//!
//! The Agent-Token of a grant goes to the ISV, never to the merchant: by the authorisation
//! notification to the ISV's notify URL, as a grant made by the CLI or the admin API, and once
//! on the ISV owner's grants page. Until then the store holds it sealed (see
//! `ocpay_server::service::grants`): the owner takes it with a form (never a link, so that no
//! prefetch or history shows it), the answer is not cached, and afterwards only its first
//! characters are shown, with when and by whom it was taken.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use http::{HeaderMap, StatusCode};
use jiff::SignedDuration;
use ocpay_core::access::{Grant, Scope, Scopes};
use ocpay_core::ids::ClientId;
use ocpay_core::participant::ParticipantKind;
use ocpay_core::portal::Action;
use ocpay_server::service::grants::{self, Hold, NewAuthorisation};
use ocpay_server::service::participants::{ParticipantError, ParticipantField};
use ocpay_store::TokenHold;
use serde::Deserialize;

use super::lists::at_second;
use super::{Chrome, PageError, PageResult, done, render};
use crate::Portal;
use crate::session::Signed;

const SECTION: &str = "/portal/grants";
/// The longest grant the page makes: ten years.
const EXPIRY_DAYS_MAX: i64 = 3_650;

struct Row {
    id: String,
    /// The ISV (on a merchant's grant) or the merchant (on an ISV's).
    other: String,
    scopes: String,
    created: String,
    expires: String,
    status: &'static str,
    /// What the ISV's page says of the token.
    token: Option<TokenState>,
}

/// Where an ISV's token stands on its page.
struct TokenState {
    /// Held: the owner may take it once.
    held: bool,
    /// Said in words: held until when, taken when and by whom (and how it starts), or not held.
    text: String,
}

fn status(grant: &Grant, now: ocpay_core::Timestamp) -> &'static str {
    if grant.revoked_at.is_some_and(|at| now >= at) {
        "REVOKED"
    } else if grant.expires_at.is_some_and(|at| now >= at) {
        "EXPIRED"
    } else {
        "ACTIVE"
    }
}

/// What the authorisation form was sent with, to show again when it is refused.
#[derive(Debug, Default)]
struct Typed {
    isv: String,
    scopes: Vec<Scope>,
    days: String,
}

#[derive(Template)]
#[template(path = "grants.html")]
struct Page {
    chrome: Chrome,
    /// Merchants and acquirers give grants; ISVs hold them.
    gives: bool,
    given: Vec<Row>,
    held: Vec<Row>,
    may_manage: bool,
    scopes: Vec<(&'static str, bool)>,
    typed: Typed,
    default_days: i64,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PageQuery {
    #[serde(default)]
    done: String,
}

async fn page(
    portal: &Portal,
    signed: &Signed,
    notice: Option<String>,
    typed: Typed,
    error: Option<String>,
) -> Result<Page, PageError> {
    let me = &signed.participant.client_id;
    let now = portal.app.clock.now();
    let grants = portal.app.store.grants(me).await?;
    let holds = portal.app.store.token_holds(me, now).await?;
    let row = |grant: &Grant, other: &ClientId, token: Option<TokenState>| Row {
        id: grant.id.clone(),
        other: other.to_string(),
        scopes: grant.scopes.to_string(),
        created: at_second(grant.created_at),
        expires: grant.expires_at.map(at_second).unwrap_or_else(|| "never".into()),
        status: status(grant, now),
        token,
    };
    let token_state = |grant: &Grant| match holds.iter().find(|hold| hold.grant_id == grant.id) {
        Some(TokenHold { held: true, hold_until, .. }) if status(grant, now) == "ACTIVE" => {
            TokenState { held: true, text: format!("held for you until {}", at_second(*hold_until)) }
        }
        Some(TokenHold { taken_at: Some(at), taken_by, hint, .. }) => TokenState {
            held: false,
            text: format!(
                "shown once, {} to {}; it starts {hint}…",
                at_second(*at),
                taken_by.as_deref().unwrap_or("a user")
            ),
        },
        Some(_) => TokenState { held: false, text: "no longer held here".into() },
        None => TokenState { held: false, text: "sent by notification only".into() },
    };
    let mut given: Vec<Row> = grants
        .iter()
        .filter(|grant| &grant.merchant == me)
        .map(|grant| row(grant, &grant.isv, None))
        .collect();
    let mut held: Vec<Row> = grants
        .iter()
        .filter(|grant| &grant.isv == me)
        .map(|grant| row(grant, &grant.merchant, Some(token_state(grant))))
        .collect();
    // Newest first, as every list of the developer center.
    given.reverse();
    held.reverse();
    let mut chrome = Chrome::new(signed, SECTION);
    chrome.notice = notice;
    let gives = signed.participant.kind != ParticipantKind::Isv;
    let default_days = portal.app.settings.grant_lifetime.as_hours() / 24;
    Ok(Page {
        chrome,
        gives,
        given,
        held,
        may_manage: signed.may(Action::ManageGrants).is_ok(),
        scopes: Scope::ALL.iter().map(|scope| (scope.as_str(), typed.scopes.contains(scope))).collect(),
        typed,
        default_days,
        error,
    })
}

pub(super) async fn list(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Query(query): Query<PageQuery>,
) -> PageResult {
    signed.may(Action::Read)?;
    let notice = match query.done.as_str() {
        "authorised" => Some(
            "ISV authorised. Its Agent-Token goes to the ISV only: to its notify URL, if it has one, and once \
             on its owner's Grants page."
                .to_owned(),
        ),
        "revoked" => Some("Grant revoked: the ISV's next request with its token is refused.".to_owned()),
        _ => None,
    };
    let typed = Typed { scopes: vec![Scope::Pay, Scope::Inquiry], ..Typed::default() };
    Ok(render(&page(&portal, &signed, notice, typed, None).await?))
}

/// The form's fields, as pairs: each scope's checkbox sends `scope` once.
fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.as_str())
}

pub(super) async fn authorise(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    signed.check_form(&headers, field(&form, "csrf"))?;
    super::may_change(&portal, &signed, Action::ManageGrants, "portal.authoriseIsv").await?;
    let mut scopes = Vec::new();
    for (_, name) in form.iter().filter(|(key, _)| key == "scope") {
        let scope = Scope::parse(name)
            .ok_or_else(|| PageError::Invalid(format!("scopes: {name:?} is not a scope")))?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let typed = Typed {
        isv: field(&form, "isv").trim().to_owned(),
        scopes,
        days: field(&form, "days").trim().to_owned(),
    };
    let api = "portal.authoriseIsv";
    let new = match authorisation(&signed, &typed) {
        Ok(new) => new,
        Err(message) => {
            portal.audit(&signed.participant.client_id, api, &signed.user.email, "PARAM_ILLEGAL").await;
            let page = page(&portal, &signed, None, typed, Some(message)).await?;
            return Ok((StatusCode::BAD_REQUEST, render(&page)).into_response());
        }
    };
    let app = &portal.app;
    let key = app.token_hold_key();
    let hold = Hold { key: &key, lifetime: portal.settings().agent_token_hold };
    match grants::authorise_held(&*app.store, app.clock.now(), app.settings.grant_lifetime, new, hold).await {
        Ok(_issued) => {
            // The token is dropped here: the merchant never sees it.
            portal.audit(&signed.participant.client_id, api, &signed.user.email, "SUCCESS").await;
            app.notify_wake.wake();
            Ok(done(&format!("{SECTION}?done=authorised")))
        }
        Err(ParticipantError::Invalid { field, reason }) => {
            let message = match field {
                // Alike for a missing participant, one that is no ISV and one of the other
                // environment: the page tells nothing more about other participants.
                ParticipantField::Isv => {
                    "ISV client id: no ISV has this client id in your environment".to_owned()
                }
                ParticipantField::Lifetime => format!("expires in days: {reason}"),
                other => format!("{other}: {reason}"),
            };
            portal.audit(&signed.participant.client_id, api, &signed.user.email, "PARAM_ILLEGAL").await;
            let page = page(&portal, &signed, None, typed, Some(message)).await?;
            Ok((StatusCode::BAD_REQUEST, render(&page)).into_response())
        }
        Err(ParticipantError::Store(error)) => Err(error.into()),
    }
}

/// The authorisation the form asks for, or why not (naming the field).
fn authorisation(signed: &Signed, typed: &Typed) -> Result<NewAuthorisation, String> {
    if signed.participant.kind == ParticipantKind::Isv {
        return Err("ISVs hold grants; merchants and acquirers give them.".into());
    }
    let isv = ClientId::parse(&typed.isv).map_err(|error| format!("ISV client id: {error}"))?;
    let names: Vec<&str> = typed.scopes.iter().map(|scope| scope.as_str()).collect();
    let scopes = Scopes::parse(&names.join(",")).map_err(|_| "scopes: choose at least one".to_owned())?;
    let expires_in = match typed.days.as_str() {
        "" => None,
        days => match days.parse::<i64>() {
            Ok(days) if (1..=EXPIRY_DAYS_MAX).contains(&days) => Some(SignedDuration::from_hours(days * 24)),
            _ => return Err(format!("expires in days: must be a whole number from 1 to {EXPIRY_DAYS_MAX}")),
        },
    };
    Ok(NewAuthorisation { merchant: signed.participant.client_id.clone(), isv, scopes, expires_in })
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The checks every action on a grant passes, in order: the CSRF token, the role, and that the
/// grant is the signed-in participant's, given (`as_merchant`) or held (404 otherwise).
async fn acting_on(
    portal: &Portal,
    signed: &Signed,
    headers: &HeaderMap,
    form: &CsrfForm,
    id: &str,
    as_merchant: bool,
) -> Result<Grant, PageError> {
    signed.check_form(headers, &form.csrf)?;
    let api = if as_merchant { "portal.revokeGrant" } else { "portal.takeAgentToken" };
    super::may_change(portal, signed, Action::ManageGrants, api).await?;
    let me = &signed.participant.client_id;
    let grants = portal.app.store.grants(me).await?;
    grants
        .into_iter()
        .find(|grant| grant.id == id && if as_merchant { &grant.merchant == me } else { &grant.isv == me })
        .ok_or(PageError::NotFound)
}

pub(super) async fn revoke(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let grant = acting_on(&portal, &signed, &headers, &form, &id, true).await?;
    let app = &portal.app;
    grants::revoke(&*app.store, app.clock.now(), &grant.id).await.map_err(|error| match error {
        ParticipantError::Invalid { .. } => PageError::NotFound,
        ParticipantError::Store(error) => error.into(),
    })?;
    let on = format!("grant {}", grant.id);
    portal
        .audit_on(&signed.participant.client_id, "portal.revokeGrant", &signed.user.email, &on, "SUCCESS")
        .await;
    Ok(done(&format!("{SECTION}?done=revoked")))
}

#[derive(Template)]
#[template(path = "grant_token.html")]
struct TokenPage {
    chrome: Chrome,
    grant_id: String,
    merchant: String,
    scopes: String,
    token: String,
}

pub(super) async fn take_token(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let grant = acting_on(&portal, &signed, &headers, &form, &id, false).await?;
    let app = &portal.app;
    let api = "portal.takeAgentToken";
    let me = &signed.participant.client_id;
    let now = app.clock.now();
    let token = if status(&grant, now) == "ACTIVE" {
        grants::take_held(&*app.store, &app.token_hold_key(), &grant.id, me, &signed.user.email, now).await?
    } else {
        None
    };
    let Some(token) = token else {
        portal.audit(me, api, &signed.user.email, "NOT_FOUND").await;
        let message = "This grant's token is not held here any more: it was shown once already, the grant \
                       ended, or its hold did. The merchant can authorise you again."
            .to_owned();
        let page = page(&portal, &signed, None, Typed::default(), Some(message)).await?;
        return Ok((StatusCode::CONFLICT, render(&page)).into_response());
    };
    portal.audit(me, api, &signed.user.email, "SUCCESS").await;
    Ok(render(&TokenPage {
        chrome: Chrome::new(&signed, SECTION),
        grant_id: grant.id.clone(),
        merchant: grant.merchant.to_string(),
        scopes: grant.scopes.to_string(),
        token: token.expose().to_owned(),
    }))
}
