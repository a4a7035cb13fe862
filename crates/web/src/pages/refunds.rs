//! Refunds: the participant's refunds, newest first, of one status when asked, paged by
//! keyset; each links to its payment, where refunds are asked for.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use ocpay_core::portal::Action;
use ocpay_core::refund::RefundState;
use serde::Deserialize;

use super::lists::{self, at_second};
use super::{Chrome, PageResult};
use crate::Portal;
use crate::session::Signed;

const SECTION: &str = "/portal/refunds";
const STATUSES: [&str; 3] = ["PROCESSING", "SUCCESS", "FAIL"];

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    after: String,
}

impl ListQuery {
    fn link(&self, after: &str) -> String {
        lists::link(SECTION, &[("status", &self.status), ("after", after)])
    }
}

struct Row {
    id: String,
    request_id: String,
    payment_id: String,
    amount: String,
    status: &'static str,
    created: String,
    finished: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "refunds.html")]
struct List {
    chrome: Chrome,
    query: ListQuery,
    statuses: [&'static str; 3],
    rows: Vec<Row>,
    next: Option<String>,
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
    let (refunds, error) = lists::rows_or_refusal(async {
        let status = lists::parse_status(&query.status, &STATUSES)?;
        let after = lists::parse_cursor(&query.after)?;
        let owner = &signed.participant.client_id;
        Ok(portal.app.store.refunds_page(owner, status, after.as_ref(), size + 1).await?)
    })
    .await?;
    let (refunds, next) = lists::split_page(refunds, size, |refund| {
        lists::cursor_text(refund.terms.created_at, refund.terms.id.as_str())
    });
    let rows = refunds
        .iter()
        .map(|refund| Row {
            id: refund.terms.id.to_string(),
            request_id: refund.terms.request_id.to_string(),
            payment_id: refund.terms.payment_id.to_string(),
            amount: refund.terms.amount.to_string(),
            status: refund.state.status(),
            created: at_second(refund.terms.created_at),
            finished: match refund.state {
                RefundState::Processing { completes_at } => format!("due {}", at_second(completes_at)),
                finished => finished.finished_at().map(at_second).unwrap_or_default(),
            },
            reason: refund.terms.reason.as_ref().map(ToString::to_string).unwrap_or_default(),
        })
        .collect();
    let page = List {
        chrome: Chrome::new(&signed, SECTION),
        next: next.map(|after| query.link(&after)),
        first: (!query.after.is_empty()).then(|| query.link("")),
        statuses: STATUSES,
        rows,
        error,
        query,
    };
    Ok(lists::answer(&page, page.error.is_some()))
}
