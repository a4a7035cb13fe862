//! The participant's settings (`/portal/settings`): the default notify URL, checked as the
//! CLI's `participant update --notify-url` checks it (`participants::update`: the addresses the
//! participant's environment may reach), and the settlement currency, set through the store
//! call of the CLI's `participant update --settlement-currency`.
//!
//! Requests read the participant afresh, so the gateway and the notifier use a change from
//! their next request or notification.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use http::{HeaderMap, StatusCode};
use ocpay_core::money::Currency;
use ocpay_core::participant::Environment;
use ocpay_core::portal::Action;
use ocpay_server::HttpUrl;
use ocpay_server::service::participants::{self, ParticipantError, ParticipantField, ParticipantUpdate};
use ocpay_store::StoreError;
use serde::Deserialize;

use super::{Chrome, PageError, PageResult, done, may_change, render};
use crate::Portal;
use crate::session::Signed;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    live: bool,
    may_change: bool,
    /// The fields as stored, or as typed when refused.
    notify_url: String,
    settlement_currency: String,
    notify_error: Option<String>,
    currency_error: Option<String>,
}

/// What the page shows besides the stored settings.
#[derive(Default)]
struct Shown {
    /// A refused notify URL as typed, with the refusal.
    notify: Option<(String, String)>,
    /// A refused settlement currency as typed, with the refusal.
    currency: Option<(String, String)>,
    notice: Option<&'static str>,
}

async fn settings_page(portal: &Portal, signed: &Signed, shown: Shown) -> PageResult {
    let client_id = &signed.participant.client_id;
    let terms = portal.app.store.settlement_terms(client_id).await?.ok_or(PageError::NotFound)?;
    let refused = shown.notify.is_some() || shown.currency.is_some();
    let (notify_url, notify_error) = match shown.notify {
        Some((typed, error)) => (typed, Some(error)),
        None => (signed.participant.notify_url.clone().unwrap_or_default(), None),
    };
    let (settlement_currency, currency_error) = match shown.currency {
        Some((typed, error)) => (typed, Some(error)),
        None => (terms.settlement_currency.map(Currency::code).unwrap_or_default().to_owned(), None),
    };
    let mut chrome = Chrome::new(signed, "/portal/settings");
    chrome.notice = shown.notice.map(str::to_owned);
    let page = SettingsPage {
        chrome,
        live: signed.participant.environment() == Environment::Live,
        may_change: signed.may(Action::ChangeSettings).is_ok(),
        notify_url,
        settlement_currency,
        notify_error,
        currency_error,
    };
    let status = if refused { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok((status, render(&page)).into_response())
}

#[derive(Deserialize)]
pub(super) struct SettingsQuery {
    saved: Option<String>,
}

pub(super) async fn page(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Query(query): Query<SettingsQuery>,
) -> PageResult {
    let notice = match query.saved.as_deref() {
        Some("notify-url") => Some("Default notify URL saved: notifications use it from the next one on."),
        Some("settlement-currency") => {
            Some("Settlement currency saved: batches settle in it from the next one on.")
        }
        _ => None,
    };
    settings_page(&portal, &signed, Shown { notice, ..Shown::default() }).await
}

#[derive(Deserialize)]
pub(super) struct NotifyUrlForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    notify_url: String,
}

pub(super) async fn notify_url(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<NotifyUrlForm>,
) -> PageResult {
    signed.check_form(&headers, &form.csrf)?;
    may_change(&portal, &signed, Action::ChangeSettings, "portal.changeNotifyUrl").await?;
    let typed = form.notify_url.trim();
    let refused = |reason: String| {
        let shown =
            Shown { notify: Some((typed.to_owned(), format!("notify URL: {reason}"))), ..Shown::default() };
        settings_page(&portal, &signed, shown)
    };
    // Empty removes the default: every request must then name its own notify URL.
    let url = match typed {
        "" => None,
        text => match HttpUrl::parse(text) {
            Ok(url) => Some(url),
            Err(reason) => return refused(reason.to_owned()).await,
        },
    };
    let client_id = &signed.participant.client_id;
    let update = ParticipantUpdate { name: None, notify_url: Some(url) };
    match participants::update(&*portal.app.store, &portal.app.settings.notify, client_id, update).await {
        Ok(_) => {
            portal.audit(client_id, "portal.changeNotifyUrl", &signed.user.email, "SUCCESS").await;
            Ok(done("/portal/settings?saved=notify-url"))
        }
        Err(ParticipantError::Invalid { field: ParticipantField::NotifyUrl, reason }) => {
            refused(reason).await
        }
        Err(ParticipantError::Invalid { field: ParticipantField::ClientId, .. }) => Err(PageError::NotFound),
        Err(ParticipantError::Invalid { field, reason }) => {
            Err(PageError::Invalid(format!("{field}: {reason}")))
        }
        Err(ParticipantError::Store(error)) => Err(error.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct CurrencyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    settlement_currency: String,
}

pub(super) async fn settlement_currency(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<CurrencyForm>,
) -> PageResult {
    signed.check_form(&headers, &form.csrf)?;
    may_change(&portal, &signed, Action::ChangeSettings, "portal.changeSettlementCurrency").await?;
    let typed = form.settlement_currency.trim();
    // Empty settles each transaction in its own currency.
    let currency = match typed {
        "" => None,
        code => match Currency::parse(&code.to_ascii_uppercase()) {
            Ok(currency) => Some(currency),
            Err(error) => {
                let message = format!("settlement currency: {error}");
                let shown = Shown { currency: Some((typed.to_owned(), message)), ..Shown::default() };
                return settings_page(&portal, &signed, shown).await;
            }
        },
    };
    let client_id = &signed.participant.client_id;
    let store = &portal.app.store;
    // The currency alone: an operator's fee change made meanwhile stays.
    store.set_settlement_currency(client_id, currency).await.map_err(|error| match error {
        StoreError::NotFound(_) => PageError::NotFound,
        other => other.into(),
    })?;
    portal.audit(client_id, "portal.changeSettlementCurrency", &signed.user.email, "SUCCESS").await;
    Ok(done("/portal/settings?saved=settlement-currency"))
}
