//! Participants: the list (keyset by client id, filtered by kind, environment, status and
//! text), creating one (with the generated client id and its first key), and one participant's
//! page: its name and notify URL, its fees and settlement currency, suspension and resumption.
//!
//! Every change goes through the use cases the CLI runs (`service::participants`) and is
//! recorded in the participant's audit trail with the operator who made it.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use http::HeaderMap;
use ocpay_core::fees::FeeSchedule;
use ocpay_core::ids::ClientId;
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_core::text::Name;
use ocpay_protocol::VerifyingKey;
use ocpay_server::HttpUrl;
use ocpay_server::service::participants::{self, NewParticipant, ParticipantError, ParticipantUpdate};
use ocpay_store::oversight::{ParticipantFilter, ParticipantListing};
use ocpay_store::settlement::SettlementTerms;
use serde::Deserialize;

use super::{Chrome, Operator};
use crate::Portal;
use crate::pages::lists::{self, at_second};
use crate::pages::{PageError, PageResult, done};

pub(crate) const SECTION: &str = "/console/participants";
const KINDS: [&str; 3] = ["MERCHANT", "ACQUIRER", "ISV"];
const ENVIRONMENTS: [&str; 2] = ["SANDBOX", "LIVE"];
const STATUSES: [&str; 2] = ["active", "suspended"];

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

impl ListQuery {
    fn link(&self, after: &str) -> String {
        lists::link(
            SECTION,
            &[
                ("kind", &self.kind),
                ("environment", &self.environment),
                ("status", &self.status),
                ("q", &self.q),
                ("after", after),
            ],
        )
    }

    fn filter(&self) -> Result<(ParticipantFilter, Option<ClientId>), PageError> {
        let kind = choice(&self.kind, &KINDS, "kind")?.and_then(ParticipantKind::parse);
        let environment =
            choice(&self.environment, &ENVIRONMENTS, "environment")?.and_then(Environment::parse);
        let suspended = choice(&self.status, &STATUSES, "status")?.map(|status| status == "suspended");
        let text = Some(self.q.trim()).filter(|text| !text.is_empty()).map(str::to_owned);
        if text.as_ref().is_some_and(|text| text.chars().count() > 128) {
            return Err(PageError::Invalid("q: at most 128 characters".into()));
        }
        let after = match self.after.as_str() {
            "" => None,
            text => Some(ClientId::parse(text).map_err(|_| {
                PageError::Invalid("after: not a page of this list; start again from the first page".into())
            })?),
        };
        Ok((ParticipantFilter { kind, environment, text, suspended }, after))
    }
}

/// One of a filter's `options`, or any (empty); anything else is refused naming `field`.
fn choice<'a>(text: &str, options: &[&'a str], field: &str) -> Result<Option<&'a str>, PageError> {
    match text {
        "" => Ok(None),
        text => options
            .iter()
            .find(|option| **option == text)
            .map(|option| Some(*option))
            .ok_or_else(|| PageError::Invalid(format!("{field}: must be one of {}", options.join(", ")))),
    }
}

struct Row {
    client_id: String,
    name: String,
    kind: &'static str,
    environment: &'static str,
    notify_url: String,
    created: String,
    suspended: String,
}

fn row(listing: &ParticipantListing) -> Row {
    let participant = &listing.participant;
    Row {
        client_id: participant.client_id.to_string(),
        name: participant.name.to_string(),
        kind: participant.kind.as_str(),
        environment: participant.environment().as_str(),
        notify_url: participant.notify_url.clone().unwrap_or_default(),
        created: at_second(participant.created_at),
        suspended: listing.suspended_at.map(at_second).unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "console/participants.html")]
struct List {
    chrome: Chrome,
    query: ListQuery,
    kinds: [&'static str; 3],
    environments: [&'static str; 2],
    statuses: [&'static str; 2],
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
    let (listings, error) = lists::rows_or_refusal(async {
        let (filter, after) = query.filter()?;
        Ok(portal.app.store.participants_page(&filter, after.as_ref(), size + 1).await?)
    })
    .await?;
    let (listings, next) =
        lists::split_page(listings, size, |listing| listing.participant.client_id.to_string());
    let page = List {
        chrome: Chrome::new(&operator, SECTION),
        next: next.map(|after| query.link(&after)),
        first: (!query.after.is_empty()).then(|| query.link("")),
        kinds: KINDS,
        environments: ENVIRONMENTS,
        statuses: STATUSES,
        rows: listings.iter().map(row).collect(),
        error,
        query,
    };
    Ok(lists::answer(&page, page.error.is_some()))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    name: String,
    /// Empty: one is generated.
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    notify_url: String,
    #[serde(default)]
    public_key: String,
}

#[derive(Template)]
#[template(path = "console/participant_new.html")]
struct New {
    chrome: Chrome,
    form: CreateForm,
    kinds: [&'static str; 3],
    environments: [&'static str; 2],
    error: Option<String>,
}

fn new_page(operator: &Operator, form: CreateForm, error: Option<String>) -> PageResult {
    let refused = error.is_some();
    let page =
        New { chrome: Chrome::new(operator, SECTION), form, kinds: KINDS, environments: ENVIRONMENTS, error };
    Ok(lists::answer(&page, refused))
}

pub(super) async fn new_form(operator: Operator) -> PageResult {
    new_page(
        &operator,
        CreateForm { kind: "MERCHANT".into(), environment: "SANDBOX".into(), ..Default::default() },
        None,
    )
}

/// An optional notify URL as typed: empty is none.
fn notify_url(text: &str) -> Result<Option<HttpUrl>, String> {
    match text.trim() {
        "" => Ok(None),
        text => HttpUrl::parse(text).map(Some).map_err(|reason| format!("notify URL: {reason}")),
    }
}

fn name(text: &str) -> Result<Name, String> {
    text.trim().parse::<Name>().map_err(|error| format!("name: {error}"))
}

pub(super) async fn create(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> PageResult {
    operator.check_form(&headers, &form.csrf)?;
    let checked = (|| {
        let kind =
            ParticipantKind::parse_any_case(&form.kind).ok_or("kind: one of MERCHANT, ACQUIRER, ISV")?;
        let environment =
            Environment::parse_any_case(&form.environment).ok_or("environment: one of SANDBOX, LIVE")?;
        let public_key =
            VerifyingKey::from_text(&form.public_key).map_err(|error| format!("public key: {error}"))?;
        let new = NewParticipant {
            kind,
            environment,
            name: name(&form.name)?,
            public_key,
            notify_url: notify_url(&form.notify_url)?,
        };
        let client_id = match form.client_id.trim() {
            "" => None,
            text => Some(ClientId::parse(text).map_err(|error| format!("client id: {error}"))?),
        };
        Ok::<_, String>((new, client_id))
    })();
    let (new, client_id) = match checked {
        Ok(checked) => checked,
        Err(error) => return new_page(&operator, form, Some(error)),
    };
    let now = portal.app.clock.now();
    let (store, notify) = (&*portal.app.store, &portal.app.settings.notify);
    let created = match client_id {
        None => participants::create(store, notify, now, new).await,
        Some(client_id) => participants::create_with_client_id(store, notify, now, new, client_id).await,
    };
    let participant = match created {
        Ok(participant) => participant,
        Err(ParticipantError::Invalid { field, reason }) => {
            return new_page(&operator, form, Some(format!("{field}: {reason}")));
        }
        Err(ParticipantError::Store(error)) => return Err(error.into()),
    };
    let client_id = &participant.client_id;
    let on = format!("participant {client_id}");
    operator.audit_on(&portal, client_id, "console.createParticipant", &on, "SUCCESS").await;
    Ok(done(&format!("{SECTION}/{client_id}?done=created")))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct DetailQuery {
    #[serde(default)]
    done: String,
}

struct Fees {
    source: &'static str,
    rate_bps: u32,
    tax_rate_bps: u32,
    fixed: Vec<String>,
    settlement_currency: String,
}

#[derive(Template)]
#[template(path = "console/participant.html")]
struct Detail {
    chrome: Chrome,
    row: Row,
    fees: Fees,
    error: Option<String>,
}

fn client_id_of(text: &str) -> Result<ClientId, PageError> {
    ClientId::parse(text).map_err(|_| PageError::NotFound)
}

async fn detail_page(
    portal: &Portal,
    operator: &Operator,
    client_id: &ClientId,
    notice: Option<String>,
    error: Option<String>,
) -> PageResult {
    let store = &portal.app.store;
    let listing = store.participant_listing(client_id).await?.ok_or(PageError::NotFound)?;
    let terms = store.settlement_terms(client_id).await?.ok_or(PageError::NotFound)?;
    let defaults = &portal.app.settings.fees.default;
    let schedule = terms.fees.as_ref().unwrap_or(defaults);
    let fees = Fees {
        source: if terms.fees.is_some() { "its own" } else { "the platform's default" },
        rate_bps: schedule.rate_bps,
        tax_rate_bps: schedule.tax_rate_bps,
        fixed: schedule
            .fixed
            .iter()
            .map(|(currency, minor)| {
                format!("{} {}", currency.code(), Money::new(*minor, *currency).format_major())
            })
            .collect(),
        settlement_currency: terms.settlement_currency.map(Currency::code).unwrap_or_default().to_owned(),
    };
    let mut chrome = Chrome::new(operator, SECTION);
    chrome.notice = notice;
    let refused = error.is_some();
    let page = Detail { chrome, row: row(&listing), fees, error };
    Ok(lists::answer(&page, refused))
}

pub(super) async fn detail(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    Path(client_id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> PageResult {
    let client_id = client_id_of(&client_id)?;
    let notice = match query.done.as_str() {
        "created" => Some("Created, with its key as version 1.".to_owned()),
        "updated" => Some("Saved.".to_owned()),
        "fees" => {
            Some("Fees and settlement currency saved: they apply to what completes from now on.".to_owned())
        }
        "suspended" => Some("Suspended: its API requests now answer ACCESS_DENIED.".to_owned()),
        "resumed" => Some("Resumed: its API requests are served again.".to_owned()),
        _ => None,
    };
    detail_page(&portal, &operator, &client_id, notice, None).await
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct UpdateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    notify_url: String,
}

pub(super) async fn update(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    Form(form): Form<UpdateForm>,
) -> PageResult {
    operator.check_form(&headers, &form.csrf)?;
    let client_id = client_id_of(&client_id)?;
    let checked = name(&form.name).and_then(|name| Ok((name, notify_url(&form.notify_url)?)));
    let (name, url) = match checked {
        Ok(checked) => checked,
        Err(error) => return detail_page(&portal, &operator, &client_id, None, Some(error)).await,
    };
    let update = ParticipantUpdate { name: Some(name), notify_url: Some(url) };
    match participants::update(&*portal.app.store, &portal.app.settings.notify, &client_id, update).await {
        Ok(_) => {}
        Err(ParticipantError::Invalid { field, reason }) => {
            let error = Some(format!("{field}: {reason}"));
            return detail_page(&portal, &operator, &client_id, None, error).await;
        }
        Err(ParticipantError::Store(error)) => return Err(error.into()),
    }
    let on = format!("participant {client_id}");
    operator.audit_on(&portal, &client_id, "console.updateParticipant", &on, "SUCCESS").await;
    Ok(done(&format!("{SECTION}/{client_id}?done=updated")))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct FeesForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rate_bps: String,
    #[serde(default)]
    tax_rate_bps: String,
    #[serde(default)]
    fixed_currency: String,
    #[serde(default)]
    fixed_amount: String,
    #[serde(default)]
    settlement_currency: String,
    #[serde(default)]
    default_fees: String,
}

/// The terms the fees form asks for, from the participant's `current` ones: its own fee
/// schedule (the rate, the tax and one currency's fixed fee, 0 removing it; the others kept),
/// or the platform's default again; and the settlement currency (empty: each transaction's own).
fn terms_of(
    form: &FeesForm,
    current: SettlementTerms,
    defaults: &FeeSchedule,
) -> Result<SettlementTerms, String> {
    let bps = |text: &str, field: &str| {
        text.trim().parse::<u32>().map_err(|_| format!("{field}: a whole number of basis points, 0 to 10000"))
    };
    let fees = if form.default_fees == "on" {
        None
    } else {
        let mut fixed = current.fees.as_ref().unwrap_or(defaults).fixed.clone();
        if !form.fixed_currency.trim().is_empty() {
            let currency = Currency::parse(form.fixed_currency.trim().to_uppercase().as_str())
                .map_err(|error| format!("fixed fee currency: {error}"))?;
            let amount =
                lists::parse_major(&form.fixed_amount, currency, "fixed fee").map_err(
                    |error| match error {
                        PageError::Invalid(message) => message,
                        other => format!("fixed fee: {other:?}"),
                    },
                )?;
            if amount.minor() == 0 {
                fixed.remove(&currency);
            } else {
                fixed.insert(currency, amount.minor());
            }
        }
        let schedule =
            FeeSchedule::new(bps(&form.rate_bps, "fee rate")?, fixed, bps(&form.tax_rate_bps, "tax rate")?)
                .map_err(|error| format!("fee rate or tax rate: {error}"))?;
        Some(schedule)
    };
    let settlement_currency = match form.settlement_currency.trim() {
        "" => None,
        code => Some(
            Currency::parse(code.to_uppercase().as_str())
                .map_err(|error| format!("settlement currency: {error}"))?,
        ),
    };
    Ok(SettlementTerms { fees, settlement_currency })
}

pub(super) async fn set_fees(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    Form(form): Form<FeesForm>,
) -> PageResult {
    operator.check_form(&headers, &form.csrf)?;
    let client_id = client_id_of(&client_id)?;
    let store = &portal.app.store;
    let current = store.settlement_terms(&client_id).await?.ok_or(PageError::NotFound)?;
    let terms = match terms_of(&form, current, &portal.app.settings.fees.default) {
        Ok(terms) => terms,
        Err(error) => return detail_page(&portal, &operator, &client_id, None, Some(error)).await,
    };
    store.set_settlement_terms(&client_id, &terms).await?;
    let on = format!("participant {client_id}");
    operator.audit_on(&portal, &client_id, "console.setFees", &on, "SUCCESS").await;
    Ok(done(&format!("{SECTION}/{client_id}?done=fees")))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Suspends (`suspend`) or resumes a participant.
async fn set_suspended(
    portal: &Portal,
    operator: &Operator,
    headers: &HeaderMap,
    client_id: &str,
    csrf: &str,
    suspend: bool,
) -> PageResult {
    operator.check_form(headers, csrf)?;
    let client_id = client_id_of(client_id)?;
    let now = portal.app.clock.now();
    match participants::set_suspended(&*portal.app.store, now, &client_id, suspend).await {
        Ok(_) => {}
        Err(ParticipantError::Invalid { .. }) => return Err(PageError::NotFound),
        Err(ParticipantError::Store(error)) => return Err(error.into()),
    }
    let (api, done_word) =
        if suspend { ("console.suspend", "suspended") } else { ("console.resume", "resumed") };
    operator.audit_on(portal, &client_id, api, &format!("participant {client_id}"), "SUCCESS").await;
    Ok(done(&format!("{SECTION}/{client_id}?done={done_word}")))
}

pub(super) async fn suspend(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    set_suspended(&portal, &operator, &headers, &client_id, &form.csrf, true).await
}

pub(super) async fn resume(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    set_suspended(&portal, &operator, &headers, &client_id, &form.csrf, false).await
}
