//! Payments: the participant's payments, filtered (status, creation dates, currency and amount,
//! payment request id) and paged by keyset; one payment's facts and its timeline (created, each
//! notification and every attempt at it, paid, refunds, cancel); and what a user may do with it:
//! resend its notifications, refund it, cancel it and, in the sandbox, pay or fail it as a test
//! payer would, without leaving the page.
//!
//! Every action calls the use case the gateway, the admin API and the payer's page call. A
//! payment is read through the owner-scoped store read, so another participant's answers exactly
//! as a missing one (404); the role is checked on the server (403); developers operate sandbox
//! payments only.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use ocpay_core::ids::{PaymentId, PaymentRequestId, RefundRequestId};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::Environment;
use ocpay_core::payer::SandboxOutcome;
use ocpay_core::payment::{Payment, PaymentState, PaymentStatus};
use ocpay_core::portal::Action;
use ocpay_core::refund::{Refund, RefundState};
use ocpay_server::HttpUrl;
use ocpay_server::service::refund::RefundCommand;
use ocpay_server::service::wallet::{self, Paid, PayCode, WalletError};
use ocpay_server::service::{ServiceError, cancel, refund};
use ocpay_store::{Attempt, AttemptOutcome, Notification, NotificationEvent, PaymentFilter, PaymentLookup};
use serde::Deserialize;

use super::lists::{self, at_second};
use super::{Chrome, PageError, PageResult, done, render};
use crate::Portal;
use crate::session::Signed;

const SECTION: &str = "/portal/payments";

/// The list's query: its filters as typed, and where the page starts.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    min: String,
    #[serde(default)]
    max: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    after: String,
}

impl ListQuery {
    /// The filters as the store reads them, each refused with a message naming its field.
    fn filter(&self) -> Result<PaymentFilter, PageError> {
        let status = match self.status.as_str() {
            "" => None,
            status => Some(PaymentStatus::parse(status).ok_or_else(|| {
                PageError::Invalid("status: must be PROCESSING, SUCCESS, FAIL or CANCELLED".into())
            })?),
        };
        let (from, to) = lists::parse_dates(&self.from, &self.to)?;
        let currency = match self.currency.trim() {
            "" => None,
            code => Some(Currency::parse(&code.to_ascii_uppercase()).map_err(|_| {
                PageError::Invalid("currency: must be a three-letter ISO 4217 code such as USD".into())
            })?),
        };
        let amount = |text: &str, field: &str| -> Result<Option<i64>, PageError> {
            if text.trim().is_empty() {
                return Ok(None);
            }
            let currency = currency.ok_or_else(|| {
                PageError::Invalid(format!("{field}: choose a currency to filter by amount"))
            })?;
            Ok(Some(lists::parse_major(text, currency, field)?.minor()))
        };
        let request_id = match self.request_id.trim() {
            "" => None,
            id => Some(
                PaymentRequestId::parse(id)
                    .map_err(|error| PageError::Invalid(format!("payment request id: {error}")))?,
            ),
        };
        Ok(PaymentFilter {
            status,
            from,
            to,
            currency,
            amount_min: amount(&self.min, "minimum amount")?,
            amount_max: amount(&self.max, "maximum amount")?,
            request_id,
        })
    }

    /// This list's URL with the same filters, starting after `after`.
    fn link(&self, after: &str) -> String {
        lists::link(
            SECTION,
            &[
                ("status", &self.status),
                ("from", &self.from),
                ("to", &self.to),
                ("currency", &self.currency),
                ("min", &self.min),
                ("max", &self.max),
                ("request_id", &self.request_id),
                ("after", after),
            ],
        )
    }
}

struct Row {
    id: String,
    request_id: String,
    amount: String,
    status: &'static str,
    created: String,
    description: String,
}

#[derive(Template)]
#[template(path = "payments.html")]
struct List {
    chrome: Chrome,
    query: ListQuery,
    statuses: [&'static str; 4],
    rows: Vec<Row>,
    /// The next page, with the filters kept.
    next: Option<String>,
    /// The first page, when this is not it.
    first: Option<String>,
    error: Option<String>,
}

pub(super) async fn list(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> PageResult {
    signed.may(Action::Read)?;
    let size = portal.settings().page_size;
    let (payments, error) = lists::rows_or_refusal(async {
        let filter = query.filter()?;
        let after = lists::parse_cursor(&query.after)?;
        let owner = &signed.participant.client_id;
        Ok(portal.app.store.payments_page(owner, &filter, after.as_ref(), size + 1).await?)
    })
    .await?;
    let (payments, next) = lists::split_page(payments, size, |payment| {
        lists::cursor_text(payment.terms.created_at, payment.terms.id.as_str())
    });
    let rows = payments
        .iter()
        .map(|payment| Row {
            id: payment.terms.id.to_string(),
            request_id: payment.terms.request_id.to_string(),
            amount: payment.terms.amount.to_string(),
            status: payment.state.status().as_str(),
            created: at_second(payment.terms.created_at),
            description: payment.terms.order.description.to_string(),
        })
        .collect();
    let page = List {
        chrome: Chrome::new(&signed, SECTION),
        next: next.map(|after| query.link(&after)),
        first: (!query.after.is_empty()).then(|| query.link("")),
        statuses: PaymentStatus::ALL.map(PaymentStatus::as_str),
        rows,
        error,
        query,
    };
    Ok(lists::answer(&page, page.error.is_some()))
}

/// One step of a payment's history.
struct Event {
    at: String,
    title: String,
    detail: Option<String>,
    /// The start of what a notification's receiver answered.
    answer: Option<String>,
    /// `S`, `F` or `U`: how the step went, for its colour (the title says it in words too).
    tone: &'static str,
}

struct RefundRow {
    id: String,
    amount: String,
    status: &'static str,
    created: String,
    reason: String,
}

/// A subject whose notifications the user may send again.
struct Resendable {
    subject: String,
    label: String,
}

#[derive(Template)]
#[template(path = "payment.html")]
struct Detail {
    chrome: Chrome,
    id: String,
    request_id: String,
    status: &'static str,
    /// Said beside the status when the stored one is not the whole story.
    status_note: Option<&'static str>,
    amount: String,
    description: String,
    reference_order_id: Option<String>,
    merchant: String,
    store: String,
    created: String,
    expires: String,
    notify_url: String,
    agent: Option<String>,
    charge: Option<String>,
    refunds: Vec<RefundRow>,
    events: Vec<Event>,
    /// What is left to refund, when something is.
    refundable: Option<String>,
    currency: &'static str,
    may_operate: bool,
    may_refund: bool,
    may_cancel: bool,
    may_test_pay: bool,
    resendable: Vec<Resendable>,
    outcomes: Vec<(&'static str, String)>,
    refund_request_id: String,
    error: Option<String>,
}

/// Which action's confirmation the page shows after a redirect.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DetailQuery {
    #[serde(default)]
    done: String,
}

fn notice(done: &str) -> Option<String> {
    let text = match done {
        "refund" => "Refund accepted.",
        "refund-processing" => "Refund accepted; it completes later.",
        "cancel" => "Payment cancelled.",
        "resend" => "Notifications queued: the notifier sends them now.",
        "paid" => "Paid as a sandbox test payer.",
        "failed" => "Failed as a sandbox test payer chose.",
        _ => return None,
    };
    Some(text.to_owned())
}

fn payment_id(text: &str) -> Result<PaymentId, PageError> {
    // An id that cannot exist answers as one that does not.
    PaymentId::parse(text).map_err(|_| PageError::NotFound)
}

/// The signed-in participant's payment, or 404 (missing, or another participant's).
async fn own_payment(portal: &Portal, signed: &Signed, id: &str) -> Result<Payment, PageError> {
    let lookup = PaymentLookup::ById(payment_id(id)?);
    portal.app.store.payment(&signed.participant.client_id, &lookup).await?.ok_or(PageError::NotFound)
}

pub(super) async fn detail(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Path(id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> PageResult {
    signed.may(Action::Read)?;
    let payment = own_payment(&portal, &signed, &id).await?;
    let mut chrome = Chrome::new(&signed, SECTION);
    chrome.notice = notice(&query.done);
    Ok(detail_page(&portal, &signed, chrome, payment, None).await?.into_response())
}

/// The detail page of `payment`, with an error from the last action when there is one.
async fn detail_page(
    portal: &Portal,
    signed: &Signed,
    chrome: Chrome,
    payment: Payment,
    error: Option<String>,
) -> Result<Response, PageError> {
    let store = &portal.app.store;
    let owner = &signed.participant.client_id;
    let now = portal.app.clock.now();
    let refunds = store.refunds_of_payment(owner, &payment.terms.id).await?;
    let mut notifications = Vec::new();
    for subject in std::iter::once(payment.terms.id.to_string())
        .chain(refunds.iter().map(|refund| refund.terms.id.to_string()))
    {
        let about = store.notifications(&subject).await?;
        notifications.extend(about.into_iter().filter(|(notification, _)| &notification.recipient == owner));
    }
    let terms = &payment.terms;
    let effective = payment.effective_state(now);
    let status_note = match (payment.state, effective) {
        (PaymentState::Processing, PaymentState::Fail { .. }) => {
            Some("the order code expired; it closes shortly")
        }
        _ => None,
    };
    let sandbox = terms.environment() == Environment::Sandbox;
    let may_operate = signed.may(Action::OperatePayments).is_ok();
    let refunded = refunds
        .iter()
        .filter(|refund| !matches!(refund.state, RefundState::Fail { .. }))
        .try_fold(0i64, |sum, refund| sum.checked_add(refund.terms.amount.minor()))
        .unwrap_or(i64::MAX);
    let left = terms.amount.minor().saturating_sub(refunded);
    let paid = matches!(payment.state, PaymentState::Success { .. });
    let refundable = (paid && left > 0).then(|| Money::new(left, terms.amount.currency()).format_major());
    let mut resendable = Vec::new();
    if notifications.iter().any(|(notification, _)| notification.subject_id == terms.id.as_str()) {
        resendable.push(Resendable { subject: terms.id.to_string(), label: "this payment's".into() });
    }
    for refund in &refunds {
        let subject = refund.terms.id.to_string();
        if notifications.iter().any(|(notification, _)| notification.subject_id == subject) {
            resendable.push(Resendable { label: format!("refund {subject}'s"), subject });
        }
    }
    let page = Detail {
        chrome,
        id: terms.id.to_string(),
        request_id: terms.request_id.to_string(),
        status: payment.state.status().as_str(),
        status_note,
        amount: terms.amount.to_string(),
        description: terms.order.description.to_string(),
        reference_order_id: terms.order.reference_order_id.clone(),
        merchant: format!("{} ({})", terms.order.merchant.name, terms.order.merchant.reference_merchant_id),
        store: format!(
            "{} ({})",
            terms.order.merchant.store.name, terms.order.merchant.store.reference_store_id
        ),
        created: at_second(terms.created_at),
        expires: at_second(terms.expires_at),
        notify_url: terms.notify_url.clone(),
        agent: terms.agent.as_ref().map(ToString::to_string),
        charge: payment
            .charge
            .as_ref()
            .map(|charge| format!("{} from payer {}", charge.amount, charge.payer.masked())),
        refunds: refunds
            .iter()
            .map(|refund| RefundRow {
                id: refund.terms.id.to_string(),
                amount: refund.terms.amount.to_string(),
                status: refund.state.status(),
                created: at_second(refund.terms.created_at),
                reason: refund.terms.reason.as_ref().map(ToString::to_string).unwrap_or_default(),
            })
            .collect(),
        events: timeline(&payment, effective, &refunds, &notifications),
        may_refund: may_operate && refundable.is_some(),
        refundable,
        currency: terms.amount.currency().code(),
        may_cancel: may_operate
            && matches!(payment.state, PaymentState::Processing | PaymentState::Success { .. }),
        may_test_pay: sandbox
            && signed.may(Action::SandboxTest).is_ok()
            && payment.check_payable(now).is_ok(),
        resendable: if may_operate { resendable } else { Vec::new() },
        may_operate,
        outcomes: SandboxOutcome::ALL
            .iter()
            .map(|outcome| {
                let label = match outcome {
                    SandboxOutcome::Pay => "Pay (SUCCESS)".to_owned(),
                    SandboxOutcome::Fail(reason) => format!("Fail ({})", reason.as_str()),
                };
                (outcome.as_str(), label)
            })
            .collect(),
        refund_request_id: lists::request_id("portal"),
        error: error.clone(),
    };
    let status = if error.is_some() { StatusCode::CONFLICT } else { StatusCode::OK };
    Ok((status, render(&page)).into_response())
}

/// The payment's history in order of time (steps at one instant in the order they happen).
fn timeline(
    payment: &Payment,
    effective: PaymentState,
    refunds: &[Refund],
    notifications: &[(Notification, Vec<Attempt>)],
) -> Vec<Event> {
    let terms = &payment.terms;
    let mut steps = Steps(Vec::new());
    let by = terms.agent.as_ref().map(|agent| format!(" by ISV {agent}")).unwrap_or_default();
    steps.push(
        terms.created_at,
        "U",
        format!("Created{by}: {}", terms.amount),
        Some(format!("order code valid until {}", at_second(terms.expires_at))),
    );
    match payment.state {
        PaymentState::Processing => {
            if let PaymentState::Fail { .. } = effective {
                steps.push(terms.expires_at, "F", "Order code expired: nobody paid".into(), None);
            }
        }
        PaymentState::Success { paid_at } => {
            let charge = payment
                .charge
                .as_ref()
                .map(|charge| format!("{} charged to payer {}", charge.amount, charge.payer.masked()));
            steps.push(paid_at, "S", "Paid (SUCCESS)".into(), charge);
        }
        PaymentState::Fail { reason, failed_at } => {
            steps.push(failed_at, "F", format!("Failed ({})", reason.as_str()), None);
        }
        PaymentState::Cancelled { cancelled_at, paid_at } => {
            if let Some(paid_at) = paid_at {
                steps.push(paid_at, "S", "Paid (SUCCESS)".into(), None);
            }
            let detail = paid_at.map(|_| "the whole charge went back to the payer".to_owned());
            steps.push(cancelled_at, "F", "Cancelled".into(), detail);
        }
    }
    for refund in refunds {
        let id = &refund.terms.id;
        let reason = refund.terms.reason.as_ref().map(|reason| format!("reason: {reason}"));
        steps.push(
            refund.terms.created_at,
            "U",
            format!("Refund {id} asked: {}", refund.terms.amount),
            reason,
        );
        match refund.state {
            RefundState::Processing { completes_at } => {
                let detail = Some(format!("completes at {}", at_second(completes_at)));
                steps.push(refund.terms.created_at, "U", format!("Refund {id} processing"), detail);
            }
            RefundState::Success { refunded_at } => {
                let detail = Some(format!("{} back to the payer", refund.returned));
                steps.push(refunded_at, "S", format!("Refund {id} succeeded"), detail);
            }
            RefundState::Fail { failed_at } => {
                steps.push(failed_at, "F", format!("Refund {id} failed: no money moved"), None);
            }
        }
    }
    for (notification, attempts) in notifications {
        let what = event_words(notification.event);
        let next = notification
            .next_attempt_at
            .map(|at| format!("; next attempt at {}", at_second(at)))
            .unwrap_or_default();
        let detail = format!("to {}; delivery {}{next}", notification.url, notification.status.as_str());
        steps.push(notification.created_at, "U", format!("Notification queued: {what}"), Some(detail));
        for attempt in attempts {
            let (tone, outcome) = match attempt.outcome {
                AttemptOutcome::Delivered => ("S", "delivered"),
                AttemptOutcome::Rejected => ("F", "not acknowledged"),
                AttemptOutcome::Error => ("F", "no answer"),
            };
            let manual = if attempt.manual { ", sent again by hand" } else { "" };
            let http = attempt
                .http_status
                .map_or_else(|| "no HTTP status".to_owned(), |status| format!("HTTP {status}"));
            let mut detail = format!("{http} in {} ms", attempt.duration_ms);
            if let Some(error) = &attempt.error {
                detail.push_str(&format!("; {error}"));
            }
            let title = format!("Notification attempt {} ({what}): {outcome}{manual}", attempt.number);
            steps.push(attempt.started_at, tone, title, Some(detail));
            steps.answer(attempt.answer.clone());
        }
    }
    steps.0.sort_by_key(|(at, _)| *at);
    steps.0.into_iter().map(|(_, event)| event).collect()
}

/// A timeline being written: its steps with their instants in milliseconds.
struct Steps(Vec<(i64, Event)>);

impl Steps {
    fn push(&mut self, at: ocpay_core::Timestamp, tone: &'static str, title: String, detail: Option<String>) {
        self.0.push((at.as_millisecond(), Event { at: at_second(at), title, detail, answer: None, tone }));
    }

    /// Adds the receiver's answer to the last step.
    fn answer(&mut self, answer: Option<String>) {
        if let Some((_, event)) = self.0.last_mut() {
            event.answer = answer;
        }
    }
}

/// What a notification reports, as the timeline says it.
fn event_words(event: NotificationEvent) -> String {
    match event {
        NotificationEvent::Paid => "payment SUCCESS".into(),
        NotificationEvent::PaymentFailed(reason) => format!("payment FAIL ({})", reason.as_str()),
        NotificationEvent::RefundSucceeded => "refund SUCCESS".into(),
        NotificationEvent::RefundFailed => "refund FAIL".into(),
        NotificationEvent::Granted => "authorisation".into(),
        NotificationEvent::RegistrationApproved => "registration APPROVED".into(),
        NotificationEvent::RegistrationRejected => "registration REJECTED".into(),
    }
}

/// The fields of the action forms; each form sends those it has.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    refund_request_id: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    outcome: String,
}

/// The checks every action passes, in order: the CSRF token, the role, and that the payment is
/// the participant's own (404 otherwise, as a missing one).
async fn acting_on(
    portal: &Portal,
    signed: &Signed,
    headers: &HeaderMap,
    form: &ActionForm,
    (action, api): (Action, &str),
    id: &str,
) -> Result<Payment, PageError> {
    signed.check_form(headers, &form.csrf)?;
    super::may_change(portal, signed, action, api).await?;
    own_payment(portal, signed, id).await
}

/// Records the action in the participant's audit trail.
async fn audit(portal: &Portal, signed: &Signed, api: &str, result_code: &str) {
    portal.audit(&signed.participant.client_id, api, &signed.user.email, result_code).await;
}

/// The detail page again, with why the action was refused.
async fn refused(portal: &Portal, signed: &Signed, payment: Payment, message: String) -> PageResult {
    let chrome = Chrome::new(signed, SECTION);
    detail_page(portal, signed, chrome, payment, Some(message)).await
}

fn back(payment: &Payment, what: &str) -> Response {
    done(&format!("{SECTION}/{}?done={what}", payment.terms.id))
}

/// Answers what a use case did with the payment, audited as `api`: back to the payment with
/// the notice `what` when it was done, the page again with why when it was refused.
async fn answer(
    portal: &Portal,
    signed: &Signed,
    api: &str,
    payment: Payment,
    outcome: Result<&str, ServiceError>,
) -> PageResult {
    match outcome {
        Ok(what) => {
            audit(portal, signed, api, "SUCCESS").await;
            Ok(back(&payment, what))
        }
        Err(error) => {
            let message = service_refusal(error)?;
            audit(portal, signed, api, "REFUSED").await;
            refused(portal, signed, payment, message).await
        }
    }
}

pub(super) async fn refund_action(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> PageResult {
    let payment =
        acting_on(&portal, &signed, &headers, &form, (Action::OperatePayments, "portal.refund"), &id).await?;
    let api = "portal.refund";
    let command = async {
        let currency = payment.terms.amount.currency();
        let amount = lists::parse_major(&form.amount, currency, "amount")?;
        if !amount.is_positive() {
            return Err(PageError::Invalid("amount: must be greater than zero".into()));
        }
        let reason = match form.reason.trim() {
            "" => None,
            text => Some(text.parse().map_err(|error| PageError::Invalid(format!("reason: {error}")))?),
        };
        let request_id = RefundRequestId::parse(form.refund_request_id.trim())
            .map_err(|error| PageError::Invalid(format!("refund request id: {error}")))?;
        // Told as a refund the merchant asked for through the API would be, to the
        // participant's default notify URL (a refund without one is not notified).
        let notify_url = signed.participant.notify_url.as_deref().and_then(|url| HttpUrl::parse(url).ok());
        Ok(RefundCommand {
            request_id,
            payment_id: payment.terms.id.clone(),
            amount,
            reference_refund_id: None,
            reason,
            async_requested: false,
            notify_url,
            agent: None,
        })
    };
    let command = match command.await {
        Ok(command) => command,
        Err(PageError::Invalid(message)) => {
            audit(&portal, &signed, api, "PARAM_ILLEGAL").await;
            return refused(&portal, &signed, payment, message).await;
        }
        Err(other) => return Err(other),
    };
    let outcome = refund::refund(&portal.app, &signed.participant, command).await.map(|refund| {
        if matches!(refund.state, RefundState::Processing { .. }) { "refund-processing" } else { "refund" }
    });
    answer(&portal, &signed, api, payment, outcome).await
}

/// What a refused use case tells the user; a failure of the platform is no refusal.
fn service_refusal(error: ServiceError) -> Result<String, PageError> {
    match error {
        ServiceError::PaymentNotFound | ServiceError::RefundNotFound => Err(PageError::NotFound),
        ServiceError::Store(error) => Err(PageError::from(error)),
        ServiceError::SandboxUnknown => {
            Ok("The sandbox answered as unknown once for this magic amount: send the form again.".into())
        }
        ServiceError::RefundRepeatInconsistent => {
            Ok("This form was sent before with another amount: reload the page and try again.".into())
        }
        ServiceError::RefundRefused(refusal) => Ok(format!("Refund refused: {refusal}.")),
        ServiceError::CancelRefused(refusal) => Ok(format!("Cancel refused: {refusal}.")),
        other => Ok(format!("Refused: {other}.")),
    }
}

pub(super) async fn cancel_action(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> PageResult {
    let payment =
        acting_on(&portal, &signed, &headers, &form, (Action::OperatePayments, "portal.cancel"), &id).await?;
    let lookup = PaymentLookup::ById(payment.terms.id.clone());
    // The cancelled payment is this one: the page goes back to it by its id.
    let outcome = cancel::cancel_payment(&portal.app, &signed.participant.client_id, &lookup).await;
    answer(&portal, &signed, "portal.cancel", payment, outcome.map(|_| "cancel")).await
}

pub(super) async fn resend_action(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> PageResult {
    let payment = acting_on(
        &portal,
        &signed,
        &headers,
        &form,
        (Action::OperatePayments, "portal.resendNotification"),
        &id,
    )
    .await?;
    let owner = &signed.participant.client_id;
    // The payment itself, or one of its refunds: nothing else is resent from its page.
    let subject = if form.subject.is_empty() || form.subject == payment.terms.id.as_str() {
        payment.terms.id.to_string()
    } else {
        let refunds = portal.app.store.refunds_of_payment(owner, &payment.terms.id).await?;
        refunds
            .iter()
            .find(|refund| refund.terms.id.as_str() == form.subject)
            .map(|refund| refund.terms.id.to_string())
            .ok_or(PageError::NotFound)?
    };
    let queued = portal.app.store.resend_notifications(&subject, portal.app.clock.now()).await?;
    if queued == 0 {
        audit(&portal, &signed, "portal.resendNotification", "NOT_FOUND").await;
        return refused(&portal, &signed, payment, "There is no notification to send again.".into()).await;
    }
    portal.app.notify_wake.wake();
    audit(&portal, &signed, "portal.resendNotification", "SUCCESS").await;
    Ok(back(&payment, "resend"))
}

pub(super) async fn test_pay_action(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> PageResult {
    let payment =
        acting_on(&portal, &signed, &headers, &form, (Action::SandboxTest, "portal.sandboxPay"), &id).await?;
    if payment.terms.environment() != Environment::Sandbox {
        return Err(PageError::Forbidden);
    }
    let api = "portal.sandboxPay";
    let Some(outcome) = SandboxOutcome::parse(&form.outcome) else {
        audit(&portal, &signed, api, "PARAM_ILLEGAL").await;
        let message = "outcome: choose SUCCESS or one of the sandbox's failures".to_owned();
        return refused(&portal, &signed, payment, message).await;
    };
    let request = PayCode { payer: None, pin: None, outcome: Some(outcome) };
    match wallet::pay_code(&portal.app, &payment.terms.code_token, request).await {
        Ok(Paid::Paid(paid)) => {
            audit(&portal, &signed, api, "SUCCESS").await;
            Ok(back(&paid, "paid"))
        }
        Ok(Paid::Failed(failed)) => {
            audit(&portal, &signed, api, "SUCCESS").await;
            Ok(back(&failed, "failed"))
        }
        Err(WalletError::Store(error)) => Err(error.into()),
        Err(WalletError::NotFound) => Err(PageError::NotFound),
        Err(error) => {
            audit(&portal, &signed, api, "REFUSED").await;
            refused(&portal, &signed, payment, format!("The test payer could not pay: {error}.")).await
        }
    }
}
