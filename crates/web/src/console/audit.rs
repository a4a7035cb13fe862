//! The audit trail searched across participants: by client id (what it signed or what was
//! done for it), API or action name, result code and a date range; newest first, by keyset.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use ocpay_core::ids::ClientId;
use ocpay_store::oversight::{AuditFilter, AuditRecord};
use serde::Deserialize;

use super::{Chrome, Operator};
use crate::Portal;
use crate::pages::lists::{self, at_second};
use crate::pages::{PageError, PageResult};

pub(crate) const SECTION: &str = "/console/audit";
/// Longest API or result code typed into a filter.
const NAME_CHARS_MAX: usize = 64;

#[derive(Debug, Default, Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    api: String,
    #[serde(default)]
    result_code: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: String,
}

impl SearchQuery {
    fn link(&self, before: &str) -> String {
        lists::link(
            SECTION,
            &[
                ("client_id", &self.client_id),
                ("api", &self.api),
                ("result_code", &self.result_code),
                ("from", &self.from),
                ("to", &self.to),
                ("before", before),
            ],
        )
    }

    fn filter(&self) -> Result<(AuditFilter, Option<i64>), PageError> {
        let client_id = match self.client_id.trim() {
            "" => None,
            text => Some(
                ClientId::parse(text).map_err(|error| PageError::Invalid(format!("client id: {error}")))?,
            ),
        };
        let name = |text: &str, field: &str| -> Result<Option<String>, PageError> {
            let text = text.trim();
            if text.chars().count() > NAME_CHARS_MAX || text.chars().any(char::is_control) {
                return Err(PageError::Invalid(format!("{field}: at most {NAME_CHARS_MAX} characters")));
            }
            Ok(Some(text.to_owned()).filter(|text| !text.is_empty()))
        };
        let (from, to) = lists::parse_dates(&self.from, &self.to)?;
        let before = match self.before.as_str() {
            "" => None,
            text => Some(text.parse::<i64>().map_err(|_| {
                PageError::Invalid(
                    "before: not a page of this search; start again from the first page".into(),
                )
            })?),
        };
        let filter = AuditFilter {
            client_id,
            api: name(&self.api, "api")?,
            result_code: name(&self.result_code, "result code")?.map(|code| code.to_uppercase()),
            from,
            to,
        };
        Ok((filter, before))
    }
}

struct Row {
    at: String,
    client_id: String,
    merchant: String,
    api: String,
    key_version: String,
    named: String,
    status: String,
    code: String,
}

fn row(record: &AuditRecord) -> Row {
    let event = &record.event;
    Row {
        at: at_second(event.at),
        client_id: event.client_id.to_string(),
        merchant: if event.merchant == event.client_id { String::new() } else { event.merchant.to_string() },
        api: event.api.clone(),
        key_version: event.key_version.map(|version| version.to_string()).unwrap_or_default(),
        named: event.idempotency_key.clone().unwrap_or_default(),
        status: event.result_status.clone(),
        code: event.result_code.clone(),
    }
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct Search {
    chrome: Chrome,
    query: SearchQuery,
    rows: Vec<Row>,
    next: Option<String>,
    first: Option<String>,
    error: Option<String>,
}

pub(super) async fn search(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    Query(query): Query<SearchQuery>,
) -> PageResult {
    let size = portal.settings().page_size;
    let (records, error) = lists::rows_or_refusal(async {
        let (filter, before) = query.filter()?;
        Ok(portal.app.store.audit_search(&filter, before, size + 1).await?)
    })
    .await?;
    let (records, next) = lists::split_page(records, size, |record| record.event_id.to_string());
    let page = Search {
        chrome: Chrome::new(&operator, SECTION),
        rows: records.iter().map(row).collect(),
        next: next.map(|before| query.link(&before)),
        first: (!query.before.is_empty()).then(|| query.link("")),
        error,
        query,
    };
    Ok(lists::answer(&page, page.error.is_some()))
}
