//! Reports and SFTP (`/portal/reports`): the participant's reconciliation files by settlement
//! date, each downloadable; its settlement batches; and its SFTP account (where to connect, the
//! host key to pin, its public keys, password and address allow-list).
//!
//! A download's path is built from the session's client id, a date parsed as one and a file
//! name the settlement crate writes (`files::file_kind_of_name`): nothing of the URL is joined
//! as it came, so `..`, absolute paths and another participant's files are all names that are
//! not there, and answer 404. As SFTP does, no component below the reports root is followed if
//! it is a symlink, and the file streamed is the inode that was looked at.
//!
//! Account changes go through the use cases the CLI's `ocpay sftp add-user` shares
//! (`service::sftp`), for owners only; every change is audited.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path as FilePath, PathBuf};
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use jiff::SignedDuration;
use jiff::civil::Date;
use ocpay_core::ids::ClientId;
use ocpay_core::portal::Action;
use ocpay_server::service::sftp::{self, HostKey, SftpError, Standing};
use ocpay_settlement::files::{self, FileKind};
use ocpay_store::SftpAccount;
use ocpay_store::settlement::{BatchCursor, BatchStatus, SettlementBatch};
use serde::Deserialize;

use super::lists::{self, at_second};
use super::{Chrome, PageError, PageResult, done, may_change, render, utc_minute};
use crate::Portal;
use crate::session::Signed;

const SECTION: &str = "/portal/reports";

/// How much of a file a download reads at a time.
const DOWNLOAD_BUFFER: usize = 64 * 1024;

/// One reconciliation file in the list.
pub(crate) struct FileRow {
    pub name: String,
    pub kind: &'static str,
    pub size: String,
    pub href: String,
}

/// One settlement date's folder.
struct DayFiles {
    date: String,
    /// The folder's name, `YYYYMMDD`.
    folder: String,
    files: Vec<FileRow>,
}

pub(crate) struct BatchRow {
    pub id: String,
    pub day: String,
    pub settlement_date: String,
    pub currency: String,
    pub count: u64,
    pub amount: String,
    pub fee: String,
    pub tax: String,
    pub status: &'static str,
    pub status_class: &'static str,
}

struct KeyRow {
    line: String,
    kind: String,
    fingerprint: String,
}

/// What the page says of the SFTP account.
struct AccountView {
    keys: Vec<KeyRow>,
    password: bool,
    networks: Vec<String>,
    created: String,
    last_login: Option<String>,
    /// Whether it may log in, in words, and the class that colours it.
    standing: String,
    standing_class: &'static str,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct Reports {
    chrome: Chrome,
    client_id: String,
    days: Vec<DayFiles>,
    older_files: Option<String>,
    newest_files: Option<String>,
    batches: Vec<BatchRow>,
    older_batches: Option<String>,
    newest_batches: Option<String>,
    batches_error: Option<String>,
    sftp_enabled: bool,
    host: String,
    port: u16,
    host_key: Option<HostKey>,
    known_hosts: Option<String>,
    account: Option<AccountView>,
    may_manage: bool,
    /// The add-key field as typed, when refused.
    typed_key: String,
    /// The allow-list field: as typed when refused, else the account's, one network a line.
    networks_text: String,
    key_error: Option<String>,
    password_error: Option<String>,
    networks_error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ReportsQuery {
    /// Files of settlement dates before this one (`YYYYMMDD`): the files' pager.
    #[serde(default)]
    before: String,
    /// Batches after this one: the batches' pager.
    #[serde(default)]
    after: String,
    /// What the last change did, for the notice.
    #[serde(default)]
    saved: String,
}

/// What the page shows besides what is stored: a refused form as typed (never a password),
/// with its refusal, or a notice of what the last change did.
#[derive(Default)]
struct Shown {
    notice: Option<&'static str>,
    key: Option<(String, String)>,
    password: Option<String>,
    networks: Option<(String, String)>,
}

impl Shown {
    fn refused(&self) -> bool {
        self.key.is_some() || self.password.is_some() || self.networks.is_some()
    }
}

/// The folder of the participant's files, or `None` when its client id cannot name one (the
/// settlement crate writes no files for it).
fn tree(portal: &Portal, signed: &Signed) -> Option<PathBuf> {
    tree_of(portal, &signed.participant.client_id)
}

/// The folder of a participant's files (see [`tree`]).
pub(crate) fn tree_of(portal: &Portal, client_id: &ClientId) -> Option<PathBuf> {
    let root = ocpay_settlement::reports_root(&portal.app.config.data_dir);
    files::customer_folder(&root, client_id.as_str())
}

/// Whether every component of `path` from the reports root down exists and none is a symlink;
/// the last one's metadata.
async fn unlinked(portal: &Portal, path: &FilePath) -> Result<Option<Metadata>, PageError> {
    let root = ocpay_settlement::reports_root(&portal.app.config.data_dir);
    let relative = path.strip_prefix(&root).map_err(|_| PageError::NotFound)?;
    let mut at = root;
    let mut last = None;
    for part in relative.components() {
        at.push(part);
        match tokio::fs::symlink_metadata(&at).await {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                tracing::warn!(path = %at.display(), "refused a symlink in the reports tree");
                return Ok(None);
            }
            Ok(metadata) => last = Some(metadata),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(PageError::Internal(format!("{}: {error}", at.display()))),
        }
    }
    Ok(last)
}

fn io_failure(path: &FilePath, error: std::io::Error) -> PageError {
    PageError::Internal(format!("{}: {error}", path.display()))
}

/// The settlement dates that have a folder, newest first: at most `limit`, before `before`
/// when given; and whether older ones follow.
async fn days(
    portal: &Portal,
    tree: &FilePath,
    before: Option<Date>,
    limit: usize,
) -> Result<(Vec<Date>, bool), PageError> {
    if unlinked(portal, tree).await?.is_none_or(|metadata| !metadata.is_dir()) {
        return Ok((Vec::new(), false));
    }
    let mut dates = Vec::new();
    let mut entries = tokio::fs::read_dir(tree).await.map_err(|error| io_failure(tree, error))?;
    while let Some(entry) = entries.next_entry().await.map_err(|error| io_failure(tree, error))? {
        let Some(date) = entry.file_name().to_str().and_then(files::folder_date) else { continue };
        // The entry's own type: a symlink is not a directory here.
        let is_dir = entry.file_type().await.is_ok_and(|kind| kind.is_dir());
        if is_dir && before.is_none_or(|before| date < before) {
            dates.push(date);
        }
    }
    dates.sort_unstable_by(|a, b| b.cmp(a));
    let more = dates.len() > limit;
    dates.truncate(limit);
    Ok((dates, more))
}

fn kind_words(kind: FileKind) -> (u8, &'static str) {
    match kind {
        FileKind::TransactionItems => (0, "Transaction details"),
        FileKind::SettlementItems => (1, "Settlement details"),
        FileKind::SettlementSummary => (2, "Settlement summary"),
    }
}

/// `YYYYMMDD`, as folders and download links name a date.
fn digits(date: Date) -> String {
    date.strftime("%Y%m%d").to_string()
}

/// A size in bytes as people read it.
fn size_words(bytes: u64) -> String {
    const KIB: u64 = 1024;
    match bytes {
        0..KIB => format!("{bytes} B"),
        KIB..1_048_576 => format!("{} KiB", bytes.div_ceil(KIB)),
        _ => format!("{} MiB", bytes.div_ceil(1_048_576)),
    }
}

/// The reconciliation files of one settlement date: only the names the settlement crate
/// writes, only regular files.
async fn day_files(tree: &FilePath, date: Date) -> Result<DayFiles, PageError> {
    let (files, _) = files_of_day(tree, date, SECTION).await?;
    Ok(DayFiles { date: date.to_string(), folder: digits(date), files })
}

/// The files of one settlement date's folder (see [`day_files`]), each linked under `base`
/// (`<base>/<YYYYMMDD>/<name>`), with their names.
pub(crate) async fn files_of_day(
    tree: &FilePath,
    date: Date,
    base: &str,
) -> Result<(Vec<FileRow>, Vec<String>), PageError> {
    let folder = tree.join(digits(date));
    let mut found = Vec::new();
    let mut entries = match tokio::fs::read_dir(&folder).await {
        Ok(entries) => entries,
        // Gone since it was listed: a day without files.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(error) => return Err(io_failure(&folder, error)),
    };
    while let Some(entry) = entries.next_entry().await.map_err(|error| io_failure(&folder, error))? {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(kind) = files::file_kind_of_name(name, date) else { continue };
        if !entry.file_type().await.is_ok_and(|kind| kind.is_file()) {
            continue;
        }
        let Ok(metadata) = entry.metadata().await else { continue };
        found.push((kind_words(kind), name.to_owned(), metadata.len()));
    }
    found.sort();
    let names = found.iter().map(|(_, name, _)| name.clone()).collect();
    let files = found
        .into_iter()
        .map(|((_, kind), name, size)| FileRow {
            href: format!("{base}/{}/{name}", digits(date)),
            name,
            kind,
            size: size_words(size),
        })
        .collect();
    Ok((files, names))
}

/// The `after` parameter of the batches' pager: day, cutoff in epoch milliseconds, batch id.
pub(crate) fn batch_cursor_text(cursor: &BatchCursor) -> String {
    format!("{}.{}.{}", digits(cursor.day), cursor.cutoff.as_millisecond(), cursor.batch_id)
}

pub(crate) fn parse_batch_cursor(text: &str) -> Result<Option<BatchCursor>, PageError> {
    if text.is_empty() {
        return Ok(None);
    }
    let refused =
        || PageError::Invalid("after: not a page of batches; start again from the first page".into());
    let mut parts = text.splitn(3, '.');
    let (Some(day), Some(millis), Some(batch_id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(refused());
    };
    let day = files::folder_date(day).ok_or_else(refused)?;
    let cutoff = millis
        .parse::<i64>()
        .ok()
        .and_then(|millis| ocpay_core::Timestamp::from_millisecond(millis).ok())
        .ok_or_else(refused)?;
    if batch_id.is_empty()
        || batch_id.len() > 64
        || !batch_id.bytes().all(|byte| byte.is_ascii_alphanumeric())
    {
        return Err(refused());
    }
    Ok(Some(BatchCursor { day, cutoff, batch_id: batch_id.to_owned() }))
}

pub(crate) fn batch_row(batch: &SettlementBatch) -> BatchRow {
    let (status, status_class) = match (batch.status, batch.paid_at) {
        (BatchStatus::Open, _) => ("Open: being settled", "U"),
        (BatchStatus::Closed, None) => ("Closed: payout due", "S"),
        (BatchStatus::Closed, Some(_)) => ("Paid out", "S"),
    };
    BatchRow {
        id: batch.id.clone(),
        day: batch.day.to_string(),
        settlement_date: batch.settlement_date.to_string(),
        currency: batch.currency.code().to_owned(),
        count: batch.count,
        amount: batch.amount.to_string(),
        fee: batch.fee.to_string(),
        tax: batch.tax.to_string(),
        status,
        status_class,
    }
}

fn account_view(
    account: &SftpAccount,
    now: ocpay_core::Timestamp,
    unused_max: SignedDuration,
) -> AccountView {
    let (standing, standing_class) = match sftp::standing(account, now, unused_max) {
        Standing::Active => ("Active".to_owned(), "S"),
        Standing::Locked(until) => {
            (format!("Locked until {} after too many wrong passwords", at_second(until)), "F")
        }
        Standing::Disabled => (
            format!(
                "Disabled: no login for more than {} days. The platform's operator removes the account; then add a key or a password again.",
                unused_max.as_hours() / 24
            ),
            "F",
        ),
    };
    AccountView {
        keys: account
            .public_keys
            .iter()
            .map(|line| {
                let (kind, fingerprint) = sftp::key_fingerprint(line).unwrap_or_default();
                KeyRow { line: line.clone(), kind, fingerprint }
            })
            .collect(),
        password: account.password_hash.is_some(),
        networks: account.allowed_networks.clone(),
        created: utc_minute(account.created_at),
        last_login: account.last_login_at.map(at_second),
        standing,
        standing_class,
    }
}

fn link(pairs: &[(&str, &str)]) -> String {
    let query = lists::query_string(pairs);
    if query.is_empty() { SECTION.to_owned() } else { format!("{SECTION}?{query}") }
}

async fn reports_page(portal: &Portal, signed: &Signed, query: &ReportsQuery, shown: Shown) -> PageResult {
    signed.may(Action::Read)?;
    let client_id = &signed.participant.client_id;
    let size = portal.settings().page_size;
    let now = portal.app.clock.now();

    // Files, by settlement date (an unreadable `before` shows the newest).
    let before = files::folder_date(&query.before);
    let (dates, more) = match tree(portal, signed) {
        Some(tree) => {
            let (dates, more) = days(portal, &tree, before, size as usize).await?;
            let mut listed = Vec::with_capacity(dates.len());
            for date in dates {
                listed.push(day_files(&tree, date).await?);
            }
            (listed, more)
        }
        None => (Vec::new(), false),
    };
    let older_files = if more { dates.last().map(|day| link(&[("before", &day.folder)])) } else { None };

    // Batches, by keyset.
    let (batches, older_batches, batches_error) = match parse_batch_cursor(&query.after) {
        Ok(after) => {
            let found = portal.app.store.settlement_batches_page(client_id, after.as_ref(), size + 1).await?;
            let (found, next) = lists::split_page(found, size, |batch| batch_cursor_text(&batch.cursor()));
            (found.iter().map(batch_row).collect(), next.map(|after| link(&[("after", &after)])), None)
        }
        Err(PageError::Invalid(message)) => (Vec::new(), None, Some(message)),
        Err(other) => return Err(other),
    };

    // SFTP.
    let settings = &portal.app.settings.sftp;
    let host = sftp::connect_host(settings.listen, &portal.app.public_url);
    let host_key = sftp::published_host_key(&portal.app.config.data_dir)
        .await
        .map_err(|error| PageError::Internal(format!("the SFTP host key: {error}")))?;
    let known_hosts = host_key.as_ref().map(|key| key.known_hosts_line(&host, settings.listen.port()));
    let account = portal.app.store.sftp_account(client_id).await?;
    let networks_text = match &shown.networks {
        Some((typed, _)) => typed.clone(),
        None => account.as_ref().map(|account| account.allowed_networks.join("\n")).unwrap_or_default(),
    };

    let mut chrome = Chrome::new(signed, SECTION);
    chrome.notice = shown.notice.map(str::to_owned);
    let status =
        if shown.refused() || batches_error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let (typed_key, key_error) =
        shown.key.map_or((String::new(), None), |(typed, error)| (typed, Some(error)));
    let page = Reports {
        chrome,
        client_id: client_id.to_string(),
        days: dates,
        older_files,
        newest_files: (!query.before.is_empty()).then(|| SECTION.to_owned()),
        batches,
        older_batches,
        newest_batches: (!query.after.is_empty()).then(|| SECTION.to_owned()),
        batches_error,
        sftp_enabled: settings.enabled,
        host,
        port: settings.listen.port(),
        host_key,
        known_hosts,
        account: account.as_ref().map(|account| account_view(account, now, settings.unused_max)),
        may_manage: signed.may(Action::ManageSftp).is_ok(),
        typed_key,
        networks_text,
        key_error,
        password_error: shown.password,
        networks_error: shown.networks.map(|(_, error)| error),
    };
    Ok((status, render(&page)).into_response())
}

pub(super) async fn page(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Query(query): Query<ReportsQuery>,
) -> PageResult {
    // A fixed text per change: nothing of the query is shown as typed.
    let notice = match query.saved.as_str() {
        "key-added" => Some("Public key added: it logs in from the next connection."),
        "key-removed" => Some("Public key removed: it no longer logs in."),
        "password" => Some("Password set: the old one, if any, no longer logs in."),
        "allow-list" => Some("Allow-list saved: it applies from the next connection."),
        _ => None,
    };
    reports_page(&portal, &signed, &query, Shown { notice, ..Shown::default() }).await
}

/// Streams one reconciliation file of the participant's as an attachment.
pub(super) async fn download(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Path((date, name)): Path<(String, String)>,
) -> PageResult {
    signed.may(Action::Read)?;
    stream_file(&portal, &signed.participant.client_id, &date, &name).await
}

/// One of a participant's reconciliation files, streamed: `date` (`YYYYMMDD`) and `name` as a
/// URL gave them, found only when they name a file the settlement crate writes in that
/// participant's folder, with no symlink on the way.
pub(crate) async fn stream_file(portal: &Portal, client_id: &ClientId, date: &str, name: &str) -> PageResult {
    let date = files::folder_date(date).ok_or(PageError::NotFound)?;
    if files::file_kind_of_name(name, date).is_none() {
        return Err(PageError::NotFound);
    }
    let tree = tree_of(portal, client_id).ok_or(PageError::NotFound)?;
    let path = tree.join(digits(date)).join(name);
    let looked_at = unlinked(portal, &path).await?.ok_or(PageError::NotFound)?;
    if !looked_at.is_file() {
        return Err(PageError::NotFound);
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(PageError::NotFound),
        Err(error) => return Err(io_failure(&path, error)),
    };
    // The file opened must be the one looked at: a name swapped for a link in between is not
    // followed.
    let opened = file.metadata().await.map_err(|error| io_failure(&path, error))?;
    if (opened.dev(), opened.ino()) != (looked_at.dev(), looked_at.ino()) {
        tracing::warn!(path = %path.display(), "a report file changed while it was opened");
        return Err(PageError::NotFound);
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, DOWNLOAD_BUFFER));
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(|error| PageError::Internal(error.to_string()))?;
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(opened.len()));
    Ok(response)
}

#[derive(Deserialize)]
pub(super) struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    public_key: String,
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub(super) struct NetworksForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    networks: String,
}

/// Records a change that was made, and sends the browser back to the page with its notice.
/// The checks every change of the SFTP account passes, in order: the form's CSRF token, then
/// the role (a refusal is audited as `api`).
async fn changing(
    portal: &Portal,
    signed: &Signed,
    headers: &HeaderMap,
    csrf: &str,
    api: &str,
) -> Result<(), PageError> {
    signed.check_form(headers, csrf)?;
    may_change(portal, signed, Action::ManageSftp, api).await
}

/// The Reports page again, with what a form refused beside it.
async fn refused(portal: &Portal, signed: &Signed, shown: Shown) -> PageResult {
    reports_page(portal, signed, &ReportsQuery::default(), shown).await
}

async fn changed(portal: &Portal, signed: &Signed, api: &str, saved: &str) -> PageResult {
    portal.audit(&signed.participant.client_id, api, &signed.user.email, "SUCCESS").await;
    Ok(done(&format!("{SECTION}?saved={saved}#sftp")))
}

pub(super) async fn add_key(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<KeyForm>,
) -> PageResult {
    changing(&portal, &signed, &headers, &form.csrf, "portal.sftpAddKey").await?;
    let now = portal.app.clock.now();
    match sftp::add_public_key(&*portal.app.store, &signed.participant.client_id, &form.public_key, now).await
    {
        Ok(_) => changed(&portal, &signed, "portal.sftpAddKey", "key-added").await,
        Err(SftpError::Invalid(error)) => {
            let shown =
                Shown { key: Some((form.public_key, format!("public key: {error}"))), ..Shown::default() };
            refused(&portal, &signed, shown).await
        }
        Err(SftpError::NoAccount) => Err(PageError::NotFound),
        Err(SftpError::Store(error)) => Err(error.into()),
    }
}

pub(super) async fn remove_key(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<KeyForm>,
) -> PageResult {
    changing(&portal, &signed, &headers, &form.csrf, "portal.sftpRemoveKey").await?;
    match sftp::remove_public_key(&*portal.app.store, &signed.participant.client_id, &form.public_key).await {
        Ok(true) => changed(&portal, &signed, "portal.sftpRemoveKey", "key-removed").await,
        // A key the account does not hold, whoever's it is, is not there to remove.
        Ok(false) | Err(SftpError::Invalid(_) | SftpError::NoAccount) => Err(PageError::NotFound),
        Err(SftpError::Store(error)) => Err(error.into()),
    }
}

pub(super) async fn set_password(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    changing(&portal, &signed, &headers, &form.csrf, "portal.sftpPassword").await?;
    let now = portal.app.clock.now();
    match sftp::set_password(&*portal.app.store, &signed.participant.client_id, form.password, now).await {
        Ok(_) => changed(&portal, &signed, "portal.sftpPassword", "password").await,
        Err(SftpError::Invalid(error)) => {
            let shown = Shown { password: Some(format!("password: {error}")), ..Shown::default() };
            refused(&portal, &signed, shown).await
        }
        Err(SftpError::NoAccount) => Err(PageError::NotFound),
        Err(SftpError::Store(error)) => Err(error.into()),
    }
}

pub(super) async fn set_allow_list(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<NetworksForm>,
) -> PageResult {
    changing(&portal, &signed, &headers, &form.csrf, "portal.sftpAllowList").await?;
    let (owner, now) = (&signed.participant.client_id, portal.app.clock.now());
    let message = match sftp::set_allowed_networks(&*portal.app.store, owner, &form.networks, now).await {
        Ok(_) => return changed(&portal, &signed, "portal.sftpAllowList", "allow-list").await,
        Err(SftpError::Invalid(error)) => format!("allowed addresses: {error}"),
        Err(SftpError::NoAccount) => format!("allowed addresses: {}", SftpError::NoAccount),
        Err(SftpError::Store(error)) => return Err(error.into()),
    };
    refused(&portal, &signed, Shown { networks: Some((form.networks, message)), ..Shown::default() }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(size_words(0), "0 B");
        assert_eq!(size_words(1023), "1023 B");
        assert_eq!(size_words(1024), "1 KiB");
        assert_eq!(size_words(1025), "2 KiB");
        assert_eq!(size_words(5 * 1_048_576), "5 MiB");
    }

    #[test]
    fn batch_cursors_read_back() {
        let cursor = BatchCursor {
            day: jiff::civil::date(2026, 11, 30),
            cutoff: ocpay_core::Timestamp::from_millisecond(1_796_036_660_000).unwrap(),
            batch_id: "202612016084941847".into(),
        };
        assert_eq!(parse_batch_cursor(&batch_cursor_text(&cursor)).unwrap(), Some(cursor));
        assert_eq!(parse_batch_cursor("").unwrap(), None);
        for text in
            ["20261130", "20261130.x.B1", "20261131.1.B1", "20261130.1.", "20261130.1.B-1", "20261130.1.B.1"]
        {
            assert!(matches!(parse_batch_cursor(text), Err(PageError::Invalid(_))), "{text}");
        }
    }
}
