//! Notifications (`/console/notifications`): what is not delivered (by status and kind, and
//! the age of the oldest), the endpoints where delivery fails (by participant and notify URL,
//! with their last error), and resending a payment's, refund's or registration's
//! notifications: the use cases of the admin API and `ocpay notifications resend`
//! (`service::notifications`).

use std::collections::BTreeSet;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use http::HeaderMap;
use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_server::service::notifications;
use ocpay_server::service::registrations::ReviewError;
use ocpay_store::console::{EndpointCursor, FailingEndpoint};
use ocpay_store::{AttemptOutcome, DeliveryStatus};
use serde::Deserialize;

use super::{Chrome, Operator};
use crate::Portal;
use crate::pages::lists::{self, at_second};
use crate::pages::{PageError, PageResult, done};

pub(crate) const SECTION: &str = "/console/notifications";

struct SummaryRow {
    status: &'static str,
    status_class: &'static str,
    kind: &'static str,
    count: u64,
    oldest: String,
}

struct EndpointRow {
    client_id: String,
    host: String,
    url: String,
    undelivered: u64,
    failed: u64,
    attempts: u64,
    oldest_age: String,
    last_error: String,
    last_at: String,
    /// The subject of the newest failing notification, to resend.
    subject: Option<String>,
}

/// How long ago `then` was, in words: `3 d 4 h`, `2 h 5 min`, `40 s`.
fn age(now: Timestamp, then: Timestamp) -> String {
    let seconds = then.duration_until(now).as_secs().max(0);
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3_600 % 24, seconds / 60 % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, _) => format!("{minutes} min"),
        (0, _, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} d {hours} h"),
    }
}

/// What the last attempt at an endpoint met, in words.
fn last_error(endpoint: &FailingEndpoint) -> (String, String) {
    let Some((_, attempt)) = &endpoint.last else { return (String::new(), String::new()) };
    let what = match (attempt.outcome, attempt.http_status, &attempt.error) {
        (_, _, Some(error)) => error.clone(),
        (AttemptOutcome::Rejected, Some(status), None) => {
            format!("HTTP {status} without the success acknowledgement")
        }
        (outcome, _, None) => outcome.as_str().to_owned(),
    };
    (what, at_second(attempt.started_at))
}

fn endpoint_row(endpoint: &FailingEndpoint, now: Timestamp) -> EndpointRow {
    let host = endpoint
        .url
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(str::to_owned))
        .unwrap_or_else(|| endpoint.url.clone());
    let (last_error, last_at) = last_error(endpoint);
    EndpointRow {
        client_id: endpoint.recipient.to_string(),
        host,
        url: endpoint.url.clone(),
        undelivered: endpoint.undelivered,
        failed: endpoint.failed,
        attempts: endpoint.attempts,
        oldest_age: age(now, endpoint.oldest),
        last_error,
        last_at,
        subject: endpoint.last.as_ref().map(|(subject, _)| subject.clone()),
    }
}

/// `<client id> <url>`, the failing endpoints' pager.
fn endpoint_cursor(text: &str) -> Result<Option<EndpointCursor>, PageError> {
    if text.is_empty() {
        return Ok(None);
    }
    let refused = || PageError::Invalid("after: not a page of endpoints; start again from the first".into());
    let (client_id, url) = text.split_once(' ').ok_or_else(refused)?;
    let recipient = ClientId::parse(client_id).map_err(|_| refused())?;
    Ok(Some(EndpointCursor { recipient, url: url.to_owned() }))
}

#[derive(Template)]
#[template(path = "console/notifications.html")]
struct Notifications {
    chrome: Chrome,
    summary: Vec<SummaryRow>,
    pending: u64,
    failed: u64,
    oldest_age: Option<String>,
    endpoints: Vec<EndpointRow>,
    endpoints_error: Option<String>,
    next: Option<String>,
    first: Option<String>,
    typed_id: String,
    typed_client_id: String,
    resend_error: Option<String>,
}

#[derive(Default, Deserialize)]
pub(crate) struct NotificationsQuery {
    #[serde(default)]
    after: String,
    /// How many were queued by the last resend.
    #[serde(default)]
    queued: String,
}

async fn notifications_page(
    portal: &Portal,
    operator: &Operator,
    query: &NotificationsQuery,
    typed: (String, String),
    resend_error: Option<String>,
) -> PageResult {
    let store = &portal.app.store;
    let now = portal.app.clock.now();
    let undelivered = store.undelivered_notifications().await?;
    let count_of = |status| undelivered.iter().filter(|row| row.status == status).map(|row| row.count).sum();
    let oldest = undelivered.iter().map(|row| row.oldest).min();
    let summary = undelivered
        .iter()
        .map(|row| SummaryRow {
            status: match row.status {
                DeliveryStatus::Pending => "Being retried",
                _ => "Failed: out of attempts",
            },
            status_class: if row.status == DeliveryStatus::Pending { "U" } else { "F" },
            kind: row.kind.as_str(),
            count: row.count,
            oldest: format!("{} ({} ago)", at_second(row.oldest), age(now, row.oldest)),
        })
        .collect();
    let size = portal.settings().page_size;
    let read = async {
        let after = endpoint_cursor(&query.after)?;
        Ok(store.failing_endpoints(after.as_ref(), size + 1).await?)
    };
    let (endpoints, endpoints_error) = lists::rows_or_refusal(read).await?;
    let (endpoints, next) =
        lists::split_page(endpoints, size, |endpoint| format!("{} {}", endpoint.recipient, endpoint.url));
    let mut chrome = Chrome::new(operator, SECTION);
    chrome.notice = query
        .queued
        .parse::<u32>()
        .ok()
        .map(|queued| format!("{queued} notifications were queued to be sent again now."));
    let refused = endpoints_error.is_some() || resend_error.is_some();
    let page = Notifications {
        chrome,
        summary,
        pending: count_of(DeliveryStatus::Pending),
        failed: count_of(DeliveryStatus::Failed),
        oldest_age: oldest.map(|oldest| age(now, oldest)),
        endpoints: endpoints.iter().map(|endpoint| endpoint_row(endpoint, now)).collect(),
        endpoints_error,
        next: next.map(|after| lists::link(SECTION, &[("after", &after)])),
        first: (!query.after.is_empty()).then(|| SECTION.to_owned()),
        typed_id: typed.0,
        typed_client_id: typed.1,
        resend_error,
    };
    Ok(lists::answer(&page, refused))
}

pub(crate) async fn page(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    Query(query): Query<NotificationsQuery>,
) -> PageResult {
    notifications_page(&portal, &operator, &query, Default::default(), None).await
}

#[derive(Deserialize)]
pub(crate) struct ResendForm {
    #[serde(default)]
    csrf: String,
    /// A payment, refund or registration id (or, with the client id, a request id).
    #[serde(default)]
    id: String,
    #[serde(default)]
    client_id: String,
}

pub(crate) async fn resend(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    headers: HeaderMap,
    Form(form): Form<ResendForm>,
) -> PageResult {
    operator.check_form(&headers, &form.csrf)?;
    let store = &*portal.app.store;
    let (id, client_id) = (form.id.trim(), form.client_id.trim());
    let found = async {
        if id.is_empty() {
            return Err(PageError::Invalid("id: name a payment, refund or registration".into()));
        }
        let owner = match client_id {
            "" => None,
            text => Some(
                ClientId::parse(text).map_err(|error| PageError::Invalid(format!("client_id: {error}")))?,
            ),
        };
        match notifications::subject_of(store, id, owner.as_ref()).await {
            Ok(Some(subject)) => Ok(subject),
            Ok(None) => Err(PageError::Invalid(format!(
                "id: no notification is about {id}{}",
                if owner.is_some() { " of this participant" } else { "; a request id needs the client id" }
            ))),
            Err(ReviewError::Store(error)) => Err(error.into()),
            Err(error) => Err(PageError::Invalid(format!("id: {error}"))),
        }
    }
    .await;
    let subject = match found {
        Ok(subject) => subject,
        Err(PageError::Invalid(message)) => {
            let typed = (id.to_owned(), client_id.to_owned());
            return notifications_page(
                &portal,
                &operator,
                &NotificationsQuery::default(),
                typed,
                Some(message),
            )
            .await;
        }
        Err(other) => return Err(other),
    };
    let recipients: BTreeSet<ClientId> = store
        .notifications(&subject)
        .await?
        .into_iter()
        .map(|(notification, _)| notification.recipient)
        .collect();
    let queued =
        notifications::resend(store, &portal.app.notify_wake, &subject, portal.app.clock.now()).await?;
    for recipient in &recipients {
        let on = format!("the notifications of {subject}");
        operator.audit_on(&portal, recipient, "console.resendNotifications", &on, "SUCCESS").await;
    }
    Ok(done(&lists::link(SECTION, &[("queued", &queued.to_string())])))
}
