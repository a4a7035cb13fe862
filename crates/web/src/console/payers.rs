//! Payers (`/console/payers`): find payers by their id (or its start), create one, and on a
//! payer's page see its wallets' balances and recent ledger entries, top it up (an amount typed
//! in major units, taken exactly) and end a lockout after wrong PINs.
//!
//! The use cases are the CLI's (`ocpay wallet create-payer`, `topup`: `service::wallet`).
//! Payers belong to no participant, so their changes go to the audit trail under the name
//! [`ocpay_core::participant::PAYERS_TRAIL`], which no participant's client id can be.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::HeaderMap;
use ocpay_core::ids::ClientId;
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::money::Currency;
use ocpay_core::participant::Environment;
use ocpay_core::payer::{Payer, PayerId};
use ocpay_server::service::wallet::{self, PayerError};
use ocpay_store::StoreError;
use ocpay_store::console::PayerWallets;
use serde::Deserialize;

use super::{Chrome, Operator};
use crate::Portal;
use crate::pages::lists::{self, at_second};
use crate::pages::{PageError, PageResult, done};

pub(crate) const SECTION: &str = "/console/payers";

struct PayerRow {
    id: String,
    environment: &'static str,
    currency: String,
    balances: String,
    standing: String,
    standing_class: &'static str,
}

/// Whether a payer may sign in, in words, and the class that colours it.
fn standing(payer: &Payer, now: ocpay_core::Timestamp) -> (String, &'static str) {
    match payer.locked_until {
        Some(until) if until > now => {
            (format!("Locked until {} after {} wrong PINs", at_second(until), payer.pin_failures), "F")
        }
        _ if payer.pin_failures > 0 => {
            (format!("{} wrong PINs since the last right one", payer.pin_failures), "U")
        }
        _ if payer.environment == Environment::Sandbox => ("Sandbox: no PIN".to_owned(), "S"),
        _ => ("Active".to_owned(), "S"),
    }
}

fn payer_row(found: &PayerWallets, now: ocpay_core::Timestamp) -> PayerRow {
    let (standing, standing_class) = standing(&found.payer, now);
    PayerRow {
        id: found.payer.id.to_string(),
        environment: found.payer.environment.as_str(),
        currency: found.payer.currency.code().to_owned(),
        balances: balances_text(&found.balances),
        standing,
        standing_class,
    }
}

fn balances_text(balances: &[ocpay_core::money::Money]) -> String {
    if balances.is_empty() {
        return "none".to_owned();
    }
    balances.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The create form as typed, to show again when refused.
#[derive(Default, Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    payer_id: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    pin: String,
}

#[derive(Template)]
#[template(path = "console/payers.html")]
struct Payers {
    chrome: Chrome,
    q: String,
    payers: Vec<PayerRow>,
    error: Option<String>,
    next: Option<String>,
    first: Option<String>,
    typed: CreateForm,
    create_error: Option<String>,
}

#[derive(Default, Deserialize)]
pub(crate) struct PayersQuery {
    /// The payer id, or how it starts.
    #[serde(default)]
    q: String,
    /// The last payer id of the page before.
    #[serde(default)]
    after: String,
    #[serde(default)]
    done: String,
}

async fn payers_page(
    portal: &Portal,
    operator: &Operator,
    query: &PayersQuery,
    typed: CreateForm,
    create_error: Option<String>,
) -> PageResult {
    let size = portal.settings().page_size;
    let q = query.q.trim();
    let read = async {
        let after = match query.after.as_str() {
            "" => None,
            text => Some(PayerId::parse(text).map_err(|_| {
                PageError::Invalid("after: not a page of this list; start again from the first page".into())
            })?),
        };
        Ok(portal.app.store.payers_page(q, after.as_ref(), size + 1).await?)
    };
    let (found, error) = lists::rows_or_refusal(read).await?;
    let (found, next) = lists::split_page(found, size, |found| found.payer.id.to_string());
    let now = portal.app.clock.now();
    let mut chrome = Chrome::new(operator, SECTION);
    chrome.notice = match query.done.as_str() {
        "created" => Some("The payer was created.".to_owned()),
        _ => None,
    };
    let refused = error.is_some() || create_error.is_some();
    let page = Payers {
        chrome,
        q: q.to_owned(),
        payers: found.iter().map(|found| payer_row(found, now)).collect(),
        error,
        next: next.map(|after| lists::link(SECTION, &[("q", q), ("after", &after)])),
        first: (!query.after.is_empty()).then(|| lists::link(SECTION, &[("q", q)])),
        typed,
        create_error,
    };
    Ok(lists::answer(&page, refused))
}

pub(crate) async fn list(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    Query(query): Query<PayersQuery>,
) -> PageResult {
    payers_page(&portal, &operator, &query, CreateForm::default(), None).await
}

/// A payer refused: the message names the form's field.
fn refused(error: PayerError) -> PageError {
    match error {
        PayerError::Pin(error) => PageError::Invalid(format!("pin: {error}")),
        PayerError::IdEnvironment { .. } => PageError::Invalid(format!("payer_id: {error}")),
        PayerError::PinRequired => PageError::Invalid("pin: live payers need a PIN".into()),
        PayerError::NotPositive => PageError::Invalid("amount: must be greater than zero".into()),
        PayerError::Store(StoreError::Conflict(_)) => {
            PageError::Invalid("payer_id: a payer with this id exists already".into())
        }
        PayerError::Store(StoreError::NotFound(_)) => PageError::NotFound,
        PayerError::Store(StoreError::WalletLimit { max, .. }) => {
            PageError::Invalid(format!("amount: the wallet would hold more than its maximum of {max}"))
        }
        PayerError::Store(error) => error.into(),
    }
}

fn currency(text: &str) -> Result<Currency, PageError> {
    Currency::parse(text.trim().to_ascii_uppercase().as_str())
        .map_err(|error| PageError::Invalid(format!("currency: {error}")))
}

/// Where payers' changes are filed in the audit trail.
fn audit_name() -> Result<ClientId, PageError> {
    ClientId::parse(ocpay_core::participant::PAYERS_TRAIL)
        .map_err(|error| PageError::Internal(error.to_string()))
}

pub(crate) async fn create(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> PageResult {
    operator.check_form(&headers, &form.csrf)?;
    let created = async {
        let id = PayerId::parse(form.payer_id.trim())
            .map_err(|error| PageError::Invalid(format!("payer_id: {error}")))?;
        let environment = Environment::parse_any_case(form.environment.trim())
            .ok_or_else(|| PageError::Invalid("environment: must be sandbox or live".into()))?;
        let currency = currency(&form.currency)?;
        let pin = Some(form.pin.as_str()).filter(|pin| !pin.is_empty());
        let iterations = portal.app.settings.pin.hash_iterations;
        wallet::create_payer(
            &*portal.app.store,
            portal.app.clock.now(),
            id,
            environment,
            currency,
            pin,
            iterations,
        )
        .await
        .map_err(refused)
    }
    .await;
    let on = format!("payer {}", form.payer_id.trim());
    match created {
        Ok(payer) => {
            operator.audit_on(&portal, &audit_name()?, "console.createPayer", &on, "SUCCESS").await;
            Ok(done(&format!("{SECTION}/{}?done=created", payer.id)))
        }
        Err(PageError::Invalid(message)) => {
            operator.audit_on(&portal, &audit_name()?, "console.createPayer", &on, "PARAM_ILLEGAL").await;
            let typed = CreateForm { pin: String::new(), ..form };
            payers_page(&portal, &operator, &PayersQuery::default(), typed, Some(message)).await
        }
        Err(other) => Err(other),
    }
}

struct EntryRow {
    at: String,
    kind: &'static str,
    /// Signed, a credit with `+`.
    amount: String,
    payment_id: Option<String>,
}

#[derive(Template)]
#[template(path = "console/payer.html")]
struct PayerPage {
    chrome: Chrome,
    id: String,
    environment: &'static str,
    currency: String,
    created: String,
    balances: String,
    standing: String,
    standing_class: &'static str,
    may_unlock: bool,
    entries: Vec<EntryRow>,
    entries_currency: String,
    other_currencies: Vec<String>,
    older: Option<String>,
    newest: Option<String>,
    amount: String,
    top_up_currency: String,
    error: Option<String>,
}

#[derive(Default, Deserialize)]
pub(crate) struct PayerQuery {
    /// Entries of this wallet currency (the payer's own when empty).
    #[serde(default)]
    currency: String,
    /// Entries of postings below this one: the entries' pager.
    #[serde(default)]
    before: String,
    #[serde(default)]
    done: String,
}

/// The payer named in the URL, or 404.
async fn find(portal: &Portal, id: &str) -> Result<PayerWallets, PageError> {
    let id = PayerId::parse(id).map_err(|_| PageError::NotFound)?;
    let mut found = portal.app.store.payers_page(id.as_str(), None, 1).await?;
    match found.pop() {
        Some(found) if found.payer.id == id => Ok(found),
        _ => Err(PageError::NotFound),
    }
}

async fn payer_page(
    portal: &Portal,
    operator: &Operator,
    id: &str,
    query: &PayerQuery,
    typed: (String, String),
    error: Option<String>,
) -> PageResult {
    let found = find(portal, id).await?;
    let payer = &found.payer;
    let now = portal.app.clock.now();
    let (standing, standing_class) = standing(payer, now);
    let entries_currency = match query.currency.as_str() {
        "" => payer.currency,
        text => currency(text)?,
    };
    let before = match query.before.as_str() {
        "" => None,
        text => Some(text.parse::<i64>().map_err(|_| {
            PageError::Invalid("before: not a page of entries; start again from the newest".into())
        })?),
    };
    let size = portal.settings().page_size;
    let account = Account::new(AccountOwner::Wallet(payer.id.clone()), entries_currency);
    let entries = portal.app.store.account_entries(&account, before, size + 1).await?;
    let (entries, older) = lists::split_page(entries, size, |entry| entry.posting_id.to_string());
    let base = format!("{SECTION}/{}", payer.id);
    let code = entries_currency.code();
    let mut chrome = Chrome::new(operator, SECTION);
    chrome.notice = match query.done.as_str() {
        "created" => Some("The payer was created.".to_owned()),
        "topped-up" => {
            Some(format!("The wallet was topped up; its balance is now {}.", balances_text(&found.balances)))
        }
        "unlocked" => Some("The payer may sign in again: its count of wrong PINs is cleared.".to_owned()),
        _ => None,
    };
    let refused = error.is_some();
    let page = PayerPage {
        chrome,
        id: payer.id.to_string(),
        environment: payer.environment.as_str(),
        currency: payer.currency.code().to_owned(),
        created: at_second(payer.created_at),
        balances: balances_text(&found.balances),
        standing,
        standing_class,
        may_unlock: payer.pin_failures > 0 || payer.locked_until.is_some(),
        entries: entries
            .iter()
            .map(|entry| EntryRow {
                at: at_second(entry.at),
                kind: entry.kind.as_str(),
                amount: format!(
                    "{} {}{}",
                    entry.amount.currency(),
                    if entry.amount.is_positive() { "+" } else { "" },
                    entry.amount.format_major()
                ),
                payment_id: entry.payment_id.clone(),
            })
            .collect(),
        entries_currency: code.to_owned(),
        other_currencies: found
            .balances
            .iter()
            .map(|money| money.currency().code().to_owned())
            .filter(|other| other != code)
            .collect(),
        older: older.map(|before| lists::link(&base, &[("currency", code), ("before", &before)])),
        newest: before.map(|_| lists::link(&base, &[("currency", code)])),
        amount: typed.0,
        top_up_currency: if typed.1.is_empty() { payer.currency.code().to_owned() } else { typed.1 },
        error,
    };
    Ok(lists::answer(&page, refused))
}

pub(crate) async fn detail(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    Path(id): Path<String>,
    Query(query): Query<PayerQuery>,
) -> PageResult {
    payer_page(&portal, &operator, &id, &query, Default::default(), None).await
}

#[derive(Deserialize)]
pub(crate) struct TopUpForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
}

pub(crate) async fn top_up(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<TopUpForm>,
) -> PageResult {
    operator.check_form(&headers, &form.csrf)?;
    let payer = find(&portal, &id).await?.payer;
    let topped = async {
        let currency = currency(&form.currency)?;
        let amount = lists::parse_major(&form.amount, currency, "amount")?;
        wallet::top_up(&*portal.app.store, portal.app.clock.now(), &payer.id, amount).await.map_err(refused)
    }
    .await;
    let on = format!("payer {} ({} {})", payer.id, form.amount.trim(), form.currency.trim());
    match topped {
        Ok(_) => {
            operator.audit_on(&portal, &audit_name()?, "console.topUp", &on, "SUCCESS").await;
            Ok(done(&format!("{SECTION}/{}?done=topped-up", payer.id)))
        }
        Err(PageError::Invalid(message)) => {
            operator.audit_on(&portal, &audit_name()?, "console.topUp", &on, "PARAM_ILLEGAL").await;
            let typed = (form.amount, form.currency);
            payer_page(&portal, &operator, &id, &PayerQuery::default(), typed, Some(message)).await
        }
        Err(other) => Err(other),
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn unlock(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    operator.check_form(&headers, &form.csrf)?;
    let id = PayerId::parse(&id).map_err(|_| PageError::NotFound)?;
    let payer = wallet::unlock_payer(&*portal.app.store, &id).await?.ok_or(PageError::NotFound)?;
    let on = format!("payer {} ({} wrong PINs)", payer.id, payer.pin_failures);
    operator.audit_on(&portal, &audit_name()?, "console.unlockPayer", &on, "SUCCESS").await;
    Ok(done(&format!("{SECTION}/{}?done=unlocked", payer.id)))
}
