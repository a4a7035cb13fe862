//! The participant's keys (`/portal/keys`): every key version with its label, scopes, dates and
//! last use; adding a public key (pasted in any form the gateway reads, or generated in the
//! browser by `portal.js`, whose private half is downloaded there and never sent), as one of the
//! participant's own or as a system integrator's with a label, fewer scopes and an expiry; and
//! revoking a key.
//!
//! Keys change through the use cases the CLI's `participant add-key` and `revoke-key` run, and
//! the gateway reads a key afresh on every request, so a revoked key is refused from the next.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use http::{HeaderMap, StatusCode};
use jiff::SignedDuration;
use ocpay_core::Timestamp;
use ocpay_core::access::{Scope, Scopes, ScopesError};
use ocpay_core::participant::{KeyLabel, KeyVersion, LABEL_CHARS_MAX};
use ocpay_core::portal::Action;
use ocpay_protocol::VerifyingKey;
use ocpay_server::service::participants::{self, AddedKey, ParticipantError, ParticipantField};
use serde::Deserialize;

use super::{Chrome, PageError, PageResult, done, may_change, render, utc_minute};
use crate::Portal;
use crate::session::Signed;

/// The longest expiry the form takes, in days (ten years): a key meant to last longer is one
/// that does not expire.
const EXPIRY_DAYS_MAX: i64 = 3650;

/// One key version as the table shows it.
struct KeyRow {
    version: KeyVersion,
    label: Option<String>,
    /// `all`, or the scopes, comma-separated.
    scopes: String,
    /// In words, and the class that colours it (`S` usable, `F` not).
    status: &'static str,
    status_class: &'static str,
    created: String,
    expires: Option<String>,
    revoked: Option<String>,
    last_used: Option<String>,
}

/// A scope's checkbox in the form.
struct ScopeBox {
    name: &'static str,
    checked: bool,
}

/// The add form's fields, as typed.
#[derive(Default)]
struct AddForm {
    csrf: String,
    public_key: String,
    label: String,
    scopes: Vec<String>,
    expires_in_days: String,
}

impl AddForm {
    /// A fresh form: every scope ticked, as for a key of the participant's own.
    fn fresh() -> AddForm {
        AddForm {
            scopes: Scope::ALL.iter().map(|scope| scope.as_str().to_owned()).collect(),
            ..AddForm::default()
        }
    }

    /// Reads the posted fields (`scope` repeats, one per ticked box).
    fn read(fields: Vec<(String, String)>) -> AddForm {
        let mut form = AddForm::default();
        for (name, value) in fields {
            match name.as_str() {
                "csrf" => form.csrf = value,
                "public_key" => form.public_key = value,
                "label" => form.label = value,
                "scope" => form.scopes.push(value),
                "expires_in_days" => form.expires_in_days = value,
                _ => {}
            }
        }
        form
    }

    /// The key to add, or a message naming the field at fault.
    fn key(&self, now: Timestamp) -> Result<AddedKey, String> {
        let public_key = VerifyingKey::from_text(self.public_key.trim())
            .map_err(|error| format!("public key: {error}"))?;
        let label = match self.label.trim() {
            "" => None,
            text => Some(KeyLabel::parse(text).map_err(|error| format!("label: {error}"))?),
        };
        let scopes = Scopes::parse(&self.scopes.join(",")).map_err(|error| match error {
            ScopesError::Empty => "scopes: tick at least one".to_owned(),
            other => format!("scopes: {other}"),
        })?;
        let expires_at = match self.expires_in_days.trim() {
            "" => None,
            days => match days.parse::<i64>() {
                Ok(days) if (1..=EXPIRY_DAYS_MAX).contains(&days) => {
                    Some(now + SignedDuration::from_hours(days * 24))
                }
                _ => return Err(format!("expires in (days): 1 to {EXPIRY_DAYS_MAX}, or empty for never")),
            },
        };
        Ok(AddedKey { public_key, label, scopes, expires_at })
    }
}

#[derive(Template)]
#[template(path = "keys.html")]
struct Keys {
    chrome: Chrome,
    client_id: String,
    keys: Vec<KeyRow>,
    /// The last version shown, when older ones follow.
    older: Option<KeyVersion>,
    may_manage: bool,
    form: AddForm,
    scopes: Vec<ScopeBox>,
    error: Option<String>,
    label_chars_max: usize,
    expiry_days_max: i64,
}

#[derive(Deserialize)]
pub(super) struct KeysQuery {
    /// Shows the versions below this one (the pager's link).
    before: Option<String>,
    /// The version just added or revoked, for the notice.
    added: Option<String>,
    revoked: Option<String>,
}

/// What the page shows besides the keys: the add form as typed, a refusal of it (answered 400),
/// or a notice of what the last action did.
#[derive(Default)]
struct Shown {
    form: AddForm,
    error: Option<String>,
    notice: Option<String>,
}

/// The page with one page of keys: the newest, or those below `before`.
async fn keys_page(portal: &Portal, signed: &Signed, before: Option<KeyVersion>, shown: Shown) -> PageResult {
    let Shown { form, error, notice } = shown;
    let now = portal.app.clock.now();
    let page_size = portal.settings().page_size;
    let client_id = &signed.participant.client_id;
    let mut found =
        portal.app.store.keys_with_last_use(client_id, before, page_size.saturating_add(1)).await?;
    let more = found.len() > page_size as usize;
    found.truncate(page_size as usize);
    let older = if more { found.last().map(|(key, _)| key.key_version) } else { None };
    let keys = found
        .into_iter()
        .map(|(key, last_used)| {
            let revoked = key.revoked_at.is_some_and(|at| at <= now);
            let expired = key.expires_at.is_some_and(|at| at <= now);
            let (status, status_class) = match (revoked, expired) {
                (true, _) => ("Revoked", "F"),
                (false, true) => ("Expired", "F"),
                (false, false) => ("Active", "S"),
            };
            KeyRow {
                version: key.key_version,
                label: key.label.as_ref().map(ToString::to_string),
                scopes: if key.scopes == Scopes::ALL {
                    "all".to_owned()
                } else {
                    key.scopes.iter().map(Scope::as_str).collect::<Vec<_>>().join(", ")
                },
                status,
                status_class,
                created: utc_minute(key.created_at),
                expires: key.expires_at.map(utc_minute),
                revoked: key.revoked_at.map(utc_minute),
                last_used: last_used.map(utc_minute),
            }
        })
        .collect();
    let scopes = Scope::ALL
        .iter()
        .map(|scope| ScopeBox {
            name: scope.as_str(),
            checked: form.scopes.iter().any(|ticked| ticked == scope.as_str()),
        })
        .collect();
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let mut chrome = Chrome::new(signed, "/portal/keys");
    chrome.notice = notice;
    let page = Keys {
        chrome,
        client_id: client_id.to_string(),
        keys,
        older,
        may_manage: signed.may(Action::ManageKeys).is_ok(),
        form,
        scopes,
        error,
        label_chars_max: LABEL_CHARS_MAX,
        expiry_days_max: EXPIRY_DAYS_MAX,
    };
    Ok((status, render(&page)).into_response())
}

pub(super) async fn page(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Query(query): Query<KeysQuery>,
) -> PageResult {
    // Numbers only: nothing of the query is shown as it was typed.
    let number = |text: &Option<String>| text.as_deref().and_then(|text| text.parse::<KeyVersion>().ok());
    let notice = match (number(&query.added), number(&query.revoked)) {
        (Some(version), _) => Some(format!(
            "Key version {version} added. Requests signed with it name keyVersion={version} in their \
             Signature header."
        )),
        (None, Some(version)) => {
            Some(format!("Key version {version} revoked: requests signed with it are refused from now on."))
        }
        (None, None) => None,
    };
    keys_page(&portal, &signed, number(&query.before), Shown { form: AddForm::fresh(), error: None, notice })
        .await
}

pub(super) async fn add(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> PageResult {
    let form = AddForm::read(fields);
    signed.check_form(&headers, &form.csrf)?;
    may_change(&portal, &signed, Action::ManageKeys, "portal.addKey").await?;
    let now = portal.app.clock.now();
    let added = match form.key(now) {
        Ok(added) => added,
        Err(message) => return keys_page(&portal, &signed, None, refused(form, message)).await,
    };
    let client_id = &signed.participant.client_id;
    match participants::add_key(&*portal.app.store, now, client_id, added).await {
        Ok(version) => {
            let on = format!("key {version}");
            portal.audit_on(client_id, "portal.addKey", &signed.user.email, &on, "SUCCESS").await;
            Ok(done(&format!("/portal/keys?added={version}")))
        }
        Err(ParticipantError::Invalid { field: ParticipantField::Lifetime, reason }) => {
            keys_page(&portal, &signed, None, refused(form, format!("expires in (days): {reason}"))).await
        }
        Err(ParticipantError::Invalid { field, reason }) => {
            keys_page(&portal, &signed, None, refused(form, format!("{field}: {reason}"))).await
        }
        Err(ParticipantError::Store(error)) => Err(error.into()),
    }
}

fn refused(form: AddForm, message: String) -> Shown {
    Shown { form, error: Some(message), notice: None }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn revoke(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Path(version): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    signed.check_form(&headers, &form.csrf)?;
    may_change(&portal, &signed, Action::ManageKeys, "portal.revokeKey").await?;
    let version = version.parse::<KeyVersion>().map_err(|_| PageError::NotFound)?;
    let client_id = &signed.participant.client_id;
    let now = portal.app.clock.now();
    // The participant is the session's: another participant's version is one this participant
    // does not have, and answers as such.
    match participants::revoke_key(&*portal.app.store, now, client_id, version).await {
        Ok(_) => {
            let on = format!("key {version}");
            portal.audit_on(client_id, "portal.revokeKey", &signed.user.email, &on, "SUCCESS").await;
            Ok(done(&format!("/portal/keys?revoked={version}")))
        }
        Err(ParticipantError::Invalid { field: ParticipantField::KeyVersion, .. }) => {
            Err(PageError::NotFound)
        }
        Err(ParticipantError::Invalid { field, reason }) => {
            Err(PageError::Invalid(format!("{field}: {reason}")))
        }
        Err(ParticipantError::Store(error)) => Err(error.into()),
    }
}
