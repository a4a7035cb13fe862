//! Settlement (`/console/settlement`): every participant's batches by keyset, newest day
//! first; a batch's items (by keyset, in file order) and its reconciliation files (downloaded
//! as the developer center's Reports page streams them); marking a closed batch paid out (the
//! store's `mark_paid`, as `ocpay settlements mark-paid`); and the reconcile check of one
//! settlement day (`ocpay reconcile --date`'s, `ocpay_settlement::reconcile`), run when asked.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use http::HeaderMap;
use jiff::civil::Date;
use ocpay_settlement::batches::Settler;
use ocpay_settlement::files::{AmountUnit, format_amount};
use ocpay_settlement::reconcile;
use ocpay_store::settlement::{BatchStatus, ItemCursor, MarkPaid, SettlementBatch, SettlementKind};
use serde::Deserialize;

use super::{Chrome, Operator};
use crate::Portal;
use crate::pages::lists::{self, at_second};
use crate::pages::reports::{self, BatchRow, FileRow};
use crate::pages::{PageError, PageResult, done};

pub(crate) const SECTION: &str = "/console/settlement";

/// A batch row with whose it is.
struct Row {
    owner: String,
    batch: BatchRow,
}

/// What the reconcile check of a day found.
struct ReconcileView {
    date: String,
    batches: u64,
    items: u64,
    files: u64,
    discrepancies: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/settlement.html")]
struct Batches {
    chrome: Chrome,
    batches: Vec<Row>,
    error: Option<String>,
    next: Option<String>,
    first: Option<String>,
    date: String,
    reconciled: Option<ReconcileView>,
}

#[derive(Default, Deserialize)]
pub(crate) struct BatchesQuery {
    #[serde(default)]
    after: String,
    /// A settlement day (`YYYY-MM-DD`) to reconcile.
    #[serde(default)]
    date: String,
}

fn parse_day(text: &str) -> Result<Option<Date>, PageError> {
    match text.trim() {
        "" => Ok(None),
        text => text
            .parse::<Date>()
            .map(Some)
            .map_err(|_| PageError::Invalid("date: must be a date such as 2026-03-31".into())),
    }
}

pub(crate) async fn list(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    Query(query): Query<BatchesQuery>,
) -> PageResult {
    let size = portal.settings().page_size;
    let read = async {
        let after = reports::parse_batch_cursor(&query.after)?;
        Ok(portal.app.store.all_settlement_batches_page(after.as_ref(), size + 1).await?)
    };
    let (found, mut error) = lists::rows_or_refusal(read).await?;
    let (found, next) = lists::split_page(found, size, |batch| reports::batch_cursor_text(&batch.cursor()));
    let reconciled = match parse_day(&query.date) {
        Ok(Some(day)) => Some(reconcile_view(&portal, day).await?),
        Ok(None) => None,
        Err(PageError::Invalid(message)) => {
            error = Some(message);
            None
        }
        Err(other) => return Err(other),
    };
    let refused = error.is_some();
    let page = Batches {
        chrome: Chrome::new(&operator, SECTION),
        batches: found
            .iter()
            .map(|batch| Row { owner: batch.owner.to_string(), batch: reports::batch_row(batch) })
            .collect(),
        error,
        next: next.map(|after| lists::link(SECTION, &[("after", &after)])),
        first: (!query.after.is_empty()).then(|| SECTION.to_owned()),
        date: query.date.trim().to_owned(),
        reconciled,
    };
    Ok(lists::answer(&page, refused))
}

/// Runs the reconcile check of a settlement day for every participant.
async fn reconcile_view(portal: &Portal, day: Date) -> Result<ReconcileView, PageError> {
    let app = &portal.app;
    let root = ocpay_settlement::reports_root(&app.config.data_dir);
    let settler = Settler::new(app.store.clone(), app.settings.settlement.clone(), root);
    let found = reconcile::reconcile_day(&settler, day, None, app.clock.now(), &|_| {})
        .await
        .map_err(|error| PageError::Internal(format!("reconciling {day}: {error}")))?;
    Ok(ReconcileView {
        date: day.to_string(),
        batches: found.batches,
        items: found.items,
        files: found.files,
        discrepancies: found.discrepancies.iter().map(ToString::to_string).collect(),
    })
}

struct ItemRow {
    kind: &'static str,
    transaction_id: String,
    request_id: String,
    completed: String,
    amount: String,
    fee: String,
    settlement_amount: String,
}

#[derive(Template)]
#[template(path = "console/settlement_batch.html")]
struct BatchPage {
    chrome: Chrome,
    owner: String,
    batch: BatchRow,
    closed: String,
    paid: Option<String>,
    reference: Option<String>,
    may_pay: bool,
    items: Vec<ItemRow>,
    next: Option<String>,
    first: Option<String>,
    files: Vec<FileRow>,
    error: Option<String>,
    typed_reference: String,
}

#[derive(Default, Deserialize)]
pub(crate) struct BatchQuery {
    #[serde(default)]
    after: String,
    /// What the last mark-paid did.
    #[serde(default)]
    paid: String,
}

/// The items' pager: completion in epoch milliseconds, kind, transaction id.
fn item_cursor_text(cursor: &ItemCursor) -> String {
    format!("{}.{}.{}", cursor.completed_at.as_millisecond(), cursor.kind.as_str(), cursor.transaction_id)
}

fn parse_item_cursor(text: &str) -> Result<Option<ItemCursor>, PageError> {
    if text.is_empty() {
        return Ok(None);
    }
    let refused = || PageError::Invalid("after: not a page of items; start again from the first".into());
    let mut parts = text.splitn(3, '.');
    let (Some(millis), Some(kind), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(refused());
    };
    let completed_at = millis
        .parse::<i64>()
        .ok()
        .and_then(|millis| ocpay_core::Timestamp::from_millisecond(millis).ok())
        .ok_or_else(refused)?;
    let kind = SettlementKind::parse(kind).ok_or_else(refused)?;
    if id.is_empty() || id.len() > 64 {
        return Err(refused());
    }
    Ok(Some(ItemCursor { completed_at, transaction_id: id.to_owned(), kind }))
}

async fn find(portal: &Portal, batch_id: &str) -> Result<SettlementBatch, PageError> {
    if batch_id.is_empty() || batch_id.len() > 64 {
        return Err(PageError::NotFound);
    }
    portal.app.store.settlement_batch(batch_id).await?.ok_or(PageError::NotFound)
}

/// The date (`YYYYMMDD`) of the folder that holds a batch's files: its settlement date.
fn folder(batch: &SettlementBatch) -> String {
    batch.settlement_date.strftime("%Y%m%d").to_string()
}

async fn batch_page(
    portal: &Portal,
    operator: &Operator,
    batch_id: &str,
    query: &BatchQuery,
    typed_reference: String,
    error: Option<String>,
) -> PageResult {
    let batch = find(portal, batch_id).await?;
    let size = portal.settings().page_size;
    let after = parse_item_cursor(&query.after)?;
    let items = portal.app.store.batch_items(&batch.id, after.as_ref(), size + 1).await?;
    let (items, next) = lists::split_page(items, size, |item| item_cursor_text(&item.cursor()));
    let base = format!("{SECTION}/{}", batch.id);
    // Only this batch's own files of its settlement day, and the day's transaction details.
    let files = match reports::tree_of(portal, &batch.owner) {
        Some(tree) => {
            let (files, _) =
                reports::files_of_day(&tree, batch.settlement_date, &format!("{base}/files")).await?;
            files
                .into_iter()
                .filter(|file| file.name.contains(&batch.id) || file.name.starts_with("transactionItems_"))
                .collect()
        }
        None => Vec::new(),
    };
    let mut chrome = Chrome::new(operator, SECTION);
    chrome.notice = (!query.paid.is_empty())
        .then(|| format!("Paid out {}: the settled balance moved to the payout account.", query.paid));
    let refused = error.is_some();
    let page = BatchPage {
        chrome,
        owner: batch.owner.to_string(),
        closed: batch.closed_at.map_or_else(|| "not yet".to_owned(), at_second),
        paid: batch.paid_at.map(at_second),
        reference: batch.payout_reference.clone(),
        may_pay: batch.status == BatchStatus::Closed && batch.paid_at.is_none(),
        items: items
            .iter()
            .map(|item| ItemRow {
                kind: item.kind.as_str(),
                transaction_id: item.transaction_id.clone(),
                request_id: item.transaction_request_id.clone(),
                completed: at_second(item.completed_at),
                amount: item.amount.to_string(),
                fee: item.fee.to_string(),
                settlement_amount: item.settlement_amount.to_string(),
            })
            .collect(),
        next: next.map(|after| lists::link(&base, &[("after", &after)])),
        first: after.map(|_| base.clone()),
        files,
        batch: reports::batch_row(&batch),
        error,
        typed_reference,
    };
    Ok(lists::answer(&page, refused))
}

pub(crate) async fn detail(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    Path(batch_id): Path<String>,
    Query(query): Query<BatchQuery>,
) -> PageResult {
    batch_page(&portal, &operator, &batch_id, &query, String::new(), None).await
}

/// One of a batch's files: only from its owner's folder of its settlement date.
pub(crate) async fn download(
    State(portal): State<Arc<Portal>>,
    _operator: Operator,
    Path((batch_id, date, name)): Path<(String, String, String)>,
) -> PageResult {
    let batch = find(&portal, &batch_id).await?;
    if date != folder(&batch) {
        return Err(PageError::NotFound);
    }
    reports::stream_file(&portal, &batch.owner, &date, &name).await
}

#[derive(Deserialize)]
pub(crate) struct MarkPaidForm {
    #[serde(default)]
    csrf: String,
    /// The bank transfer's reference.
    #[serde(default)]
    reference: String,
}

pub(crate) async fn mark_paid(
    State(portal): State<Arc<Portal>>,
    operator: Operator,
    headers: HeaderMap,
    Path(batch_id): Path<String>,
    Form(form): Form<MarkPaidForm>,
) -> PageResult {
    operator.check_form(&headers, &form.csrf)?;
    let batch = find(&portal, &batch_id).await?;
    let reference = Some(form.reference.trim()).filter(|reference| !reference.is_empty());
    if reference.is_some_and(|reference| reference.len() > 128 || reference.chars().any(char::is_control)) {
        let message = "reference: at most 128 characters, without control characters".to_owned();
        return batch_page(
            &portal,
            &operator,
            &batch.id,
            &BatchQuery::default(),
            form.reference,
            Some(message),
        )
        .await;
    }
    let marked = portal.app.store.mark_paid(&batch.id, reference, portal.app.clock.now()).await?;
    let on = format!("batch {}", batch.id);
    let refusal = match marked {
        MarkPaid::Paid { amount, .. } => {
            operator.audit_on(&portal, &batch.owner, "console.markPaid", &on, "SUCCESS").await;
            let paid = format!("{} {}", format_amount(amount, AmountUnit::Major), amount.currency().code());
            return Ok(done(&lists::link(&format!("{SECTION}/{}", batch.id), &[("paid", &paid)])));
        }
        MarkPaid::NothingToPay { balance } => format!(
            "Nothing to pay out: the settled balance is {balance}; a negative net carries into the next batches."
        ),
        MarkPaid::Open => "This batch is still open: it cannot be paid yet.".to_owned(),
        MarkPaid::AlreadyPaid { reference } => {
            format!("This batch was paid out before (reference {}).", reference.as_deref().unwrap_or("none"))
        }
        MarkPaid::NotFound => return Err(PageError::NotFound),
    };
    operator.audit_on(&portal, &batch.owner, "console.markPaid", &on, "REFUSED").await;
    batch_page(&portal, &operator, &batch.id, &BatchQuery::default(), form.reference, Some(refusal)).await
}
