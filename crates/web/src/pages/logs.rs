//! The API log (`/portal/logs`): every request the gateway received under the participant's
//! client id, newest first, filtered by API, result code and dates and paged by keyset (the
//! "Older" link carries the last id shown); one request's headers and bodies both ways; and, for
//! a request whose signature did not verify, the signature debugger: the exact string the
//! platform verified, the key version it tried, the most likely cause in plain words with what
//! to change, and the causes checked and ruled out. Also the pasted-signature check
//! (`/portal/logs/check`): which of the participant's keys verifies a pasted signature over a
//! pasted string-to-sign, and whether the signature is URL-encoded.
//!
//! The log is written by the gateway (secrets already redacted, bodies cut) and read through the
//! store's owner-scoped reads, so another participant's entry answers exactly as a missing one.
//! The diagnosis is the gateway's (`ocpay_server::signature_debug`), kept as JSON; the check
//! calls that module's `check_pasted`. Reading and checking are `Action::Read`: every role.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use http::{HeaderMap, StatusCode};
use ocpay_core::participant::{KeyVersion, ParticipantKey};
use ocpay_core::portal::Action;
use ocpay_protocol::api_log::{self as wire, SignatureDiagnosis};
use ocpay_protocol::{Api, ResultCode, VerifyingKey};
use ocpay_server::signature_debug::{self, PastedCheck, SignatureEncoding};
use ocpay_store::{ApiLogEntry, ApiLogFilter};
use serde::Deserialize;

use super::lists::{self, at_second};
use super::{Chrome, PageError, PageResult, render};
use crate::Portal;
use crate::session::Signed;

const SECTION: &str = "/portal/logs";

/// The longest string-to-sign and signature the check takes: a body as large as the gateway
/// keeps in the log, with room to spare, is far below it.
const PASTED_BYTES_MAX: usize = 256 * 1024;

/// The APIs a request can be filtered by: every API of the protocol that is logged (reading the
/// log is not).
fn logged_apis() -> Vec<&'static str> {
    Api::ALL.iter().filter(|api| **api != Api::ApiLogInquiry).map(|api| api.name()).collect()
}

/// The list's query: its filters as typed, and the last id of the page before.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
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

impl ListQuery {
    /// The filters as the store reads them, each refused with a message naming its field.
    fn filter(&self) -> Result<ApiLogFilter, PageError> {
        let api = match self.api.as_str() {
            "" => None,
            name => Some(
                logged_apis()
                    .into_iter()
                    .find(|api| *api == name)
                    .ok_or_else(|| PageError::Invalid("API: choose one of the protocol's APIs".into()))?
                    .to_owned(),
            ),
        };
        let result_code = match self.result_code.trim() {
            "" => None,
            code => Some(
                ResultCode::parse(&code.to_ascii_uppercase())
                    .ok_or_else(|| {
                        PageError::Invalid("result code: choose one such as SIGNATURE_INVALID".into())
                    })?
                    .as_str()
                    .to_owned(),
            ),
        };
        let (from, to) = lists::parse_dates(&self.from, &self.to)?;
        Ok(ApiLogFilter { api, result_code, from, to })
    }

    /// The id the page starts below; none for the newest.
    fn before(&self) -> Result<Option<i64>, PageError> {
        if self.before.is_empty() {
            return Ok(None);
        }
        match self.before.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Some(id)),
            _ => {
                Err(PageError::Invalid("before: not a page of this list; start again from the newest".into()))
            }
        }
    }

    /// This list's URL with the same filters, starting below `before`.
    fn link(&self, before: &str) -> String {
        lists::link(
            SECTION,
            &[
                ("api", &self.api),
                ("result_code", &self.result_code),
                ("from", &self.from),
                ("to", &self.to),
                ("before", before),
            ],
        )
    }
}

/// A latency in words: microseconds below a millisecond, else milliseconds to a tenth
/// (integer arithmetic).
fn latency(micros: i64) -> String {
    if micros < 1_000 {
        format!("{} µs", micros.max(0))
    } else {
        let tenths = micros.saturating_add(50) / 100;
        format!("{}.{} ms", tenths / 10, tenths % 10)
    }
}

/// Whether a request verified, in words: `yes (key 1)`, `no (tried key 2)`, `no`.
fn verified_words(entry: &ApiLogEntry) -> String {
    match (entry.verified, entry.key_version) {
        (true, Some(version)) => format!("yes (key {version})"),
        (true, None) => "yes".to_owned(),
        (false, Some(version)) => format!("no (tried key {version})"),
        (false, None) => "no".to_owned(),
    }
}

struct Row {
    id: i64,
    at: String,
    api: String,
    /// `S`, `F` or `U`.
    status: String,
    code: String,
    http_status: u16,
    latency: String,
    verified: bool,
    verified_words: String,
    agent: bool,
}

#[derive(Template)]
#[template(path = "logs.html")]
struct List {
    chrome: Chrome,
    query: ListQuery,
    apis: Vec<&'static str>,
    result_codes: Vec<&'static str>,
    rows: Vec<Row>,
    /// The next (older) page, with the filters kept.
    older: Option<String>,
    /// The newest page, when this is not it.
    newest: Option<String>,
    /// How long entries are kept, in days; none when the log is off.
    retention_days: Option<i64>,
    error: Option<String>,
}

fn retention_days(portal: &Portal) -> Option<i64> {
    portal.app.settings.api_log.as_ref().map(|settings| settings.retention.as_hours() / 24)
}

pub(super) async fn list(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> PageResult {
    signed.may(Action::Read)?;
    let size = portal.settings().page_size;
    let (entries, error) = lists::rows_or_refusal(async {
        let filter = query.filter()?;
        let before = query.before()?;
        Ok(portal.app.store.api_log(&signed.participant.client_id, &filter, before, size + 1).await?)
    })
    .await?;
    let (entries, older) = lists::split_page(entries, size, |entry| entry.id.to_string());
    let rows = entries
        .iter()
        .map(|entry| Row {
            id: entry.id,
            at: at_second(entry.at),
            api: entry.api.clone(),
            status: entry.result_status.clone(),
            code: entry.result_code.clone(),
            http_status: entry.http_status,
            latency: latency(entry.latency_micros),
            verified: entry.verified,
            verified_words: verified_words(entry),
            agent: entry.agent.is_some(),
        })
        .collect();
    let page = List {
        chrome: Chrome::new(&signed, SECTION),
        apis: logged_apis(),
        result_codes: ResultCode::ALL.iter().map(|code| code.as_str()).collect(),
        rows,
        older: older.map(|before| query.link(&before)),
        newest: (!query.before.is_empty()).then(|| query.link("")),
        retention_days: retention_days(&portal),
        error,
        query,
    };
    Ok(lists::answer(&page, page.error.is_some()))
}

/// The signature debugger's findings as the detail page shows them.
struct Debugger {
    /// The exact string verified, one line per `\n` (the page shows each `\n`).
    lines: Vec<String>,
    key_version: Option<String>,
    cause: String,
    /// What to change, in a sentence of the developer center's.
    advice: String,
    /// The gateway's own sentence, with the values it saw.
    detail: String,
    verifying_key_version: Option<String>,
    /// What was signed instead, one line per `\n`.
    signed_instead: Option<Vec<String>>,
    /// Whether the signature travelled URL-encoded, in words.
    encoding: Option<&'static str>,
    ruled_out: Vec<&'static str>,
}

/// A cause's advice: what happened and what to change, in one sentence.
fn advice(diagnosis: &SignatureDiagnosis, request_time: Option<&str>) -> String {
    let tried = diagnosis.key_version.as_deref();
    let verifying = diagnosis.verifying_key_version.as_deref().unwrap_or("another");
    match diagnosis.cause.as_str() {
        wire::CAUSE_OTHER_KEY_VERSION => match tried {
            Some(tried) => format!(
                "Your request was signed with key version {verifying} but its Signature header says \
                 keyVersion={tried}: send keyVersion={verifying}, or sign with key version {tried}'s private key."
            ),
            None => format!(
                "Your Signature header names a key version you do not have, and the signature verifies \
                 with key version {verifying}: send keyVersion={verifying}."
            ),
        },
        wire::CAUSE_SANDBOX_PREFIX => "You signed the path without the sandbox prefix (or with it when the \
            request went without): sign exactly the path you send the request to, /ams/sandbox included for \
            the sandbox."
            .to_owned(),
        wire::CAUSE_PATH_WITH_HOST => "You signed the whole URL: sign only its path, from /ams on, without \
            the scheme and host."
            .to_owned(),
        wire::CAUSE_REQUEST_TIME_FORMAT => {
            if request_time.is_some_and(|time| !time.bytes().all(|byte| byte.is_ascii_digit())) {
                "Your Request-Time header is ISO text and you signed another form of it: sign and send \
                 epoch milliseconds, the same text in both."
                    .to_owned()
            } else {
                "You signed Request-Time in another format than the header sent (epoch seconds or ISO \
                 text): sign the header's exact value, epoch milliseconds."
                    .to_owned()
            }
        }
        wire::CAUSE_SIGNATURE_NOT_URL_ENCODED => {
            "Your signature was sent as raw base64, so its + arrived as \
            spaces: URL-encode the signature in the Signature header (+ as %2B, / as %2F, = as %3D)."
                .to_owned()
        }
        wire::CAUSE_SIGNATURE_URL_ENCODED_TWICE => {
            "Your signature was URL-encoded twice (%252B for +): encode it once.".to_owned()
        }
        wire::CAUSE_SIGNATURE_UNREADABLE => "Your Signature header's signature is not base64: send \
            algorithm=RSA256,keyVersion=N,signature=<the URL-encoded base64 signature>."
            .to_owned(),
        wire::CAUSE_BODY_CHANGED => "Nothing you could have signed instead verifies with your keys: most \
            likely the body changed after you signed it (re-serialised, reformatted or re-encoded), or you \
            signed with a key that is not on your Keys page; sign the exact bytes you send, with your key."
            .to_owned(),
        _ => "The platform could not tell why the signature did not verify.".to_owned(),
    }
}

/// The causes the debugger tries, in its order, as the page names them when ruled out.
const KEY_CHECK: &str = "another of your key versions (the newest three)";
const PREFIX_CHECK: &str = "the path signed without or with the sandbox prefix";
const HOST_CHECK: &str = "the whole URL signed as the path";
const TIME_CHECK: &str = "Request-Time signed in another format (epoch seconds, ISO text)";
const ENCODING_CHECK: &str = "the signature's URL encoding (raw base64, or encoded twice)";

/// What the debugger tried and found not to verify before it settled on `cause`: with a
/// readable signature, each variant in its order (it stops at the first that verifies), and
/// the encoding (it read); with an unreadable one, only the encodings.
fn ruled_out(cause: &str) -> Vec<&'static str> {
    let order = [
        (wire::CAUSE_OTHER_KEY_VERSION, KEY_CHECK),
        (wire::CAUSE_SANDBOX_PREFIX, PREFIX_CHECK),
        (wire::CAUSE_PATH_WITH_HOST, HOST_CHECK),
        (wire::CAUSE_REQUEST_TIME_FORMAT, TIME_CHECK),
    ];
    match cause {
        wire::CAUSE_SIGNATURE_URL_ENCODED_TWICE | wire::CAUSE_SIGNATURE_NOT_URL_ENCODED => Vec::new(),
        wire::CAUSE_SIGNATURE_UNREADABLE => vec![ENCODING_CHECK],
        wire::CAUSE_BODY_CHANGED => {
            let mut all: Vec<&str> = order.iter().map(|(_, check)| *check).collect();
            all.push(ENCODING_CHECK);
            all
        }
        found => {
            let mut before: Vec<&str> =
                order.iter().take_while(|(name, _)| *name != found).map(|(_, check)| *check).collect();
            before.push(ENCODING_CHECK);
            before
        }
    }
}

fn lines(text: &str) -> Vec<String> {
    text.split('\n').map(str::to_owned).collect()
}

impl Debugger {
    fn of(diagnosis: SignatureDiagnosis, request_time: Option<&str>) -> Debugger {
        let encoding = diagnosis.signature_url_encoded.map(|encoded| {
            if encoded { "URL-encoded, as the protocol asks" } else { "not URL-encoded (raw base64)" }
        });
        Debugger {
            lines: lines(&diagnosis.string_to_sign),
            advice: advice(&diagnosis, request_time),
            ruled_out: ruled_out(&diagnosis.cause),
            key_version: diagnosis.key_version,
            cause: diagnosis.cause,
            detail: diagnosis.message,
            verifying_key_version: diagnosis.verifying_key_version,
            signed_instead: diagnosis.signed_instead.as_deref().map(lines),
            encoding,
        }
    }
}

#[derive(Template)]
#[template(path = "log_entry.html")]
struct Detail {
    chrome: Chrome,
    id: i64,
    at: String,
    api: String,
    path: String,
    verified: bool,
    verified_words: String,
    agent: Option<String>,
    status: String,
    code: String,
    http_status: u16,
    latency: String,
    /// The id the platform gave the request (its answer's `X-Request-Id`), when it gave one.
    request_id: Option<String>,
    request_headers: Vec<(String, String)>,
    request_body: String,
    response_headers: Vec<(String, String)>,
    response_body: String,
    debugger: Option<Debugger>,
    /// Why an unverified request has no diagnosis, when it has none.
    undiagnosed: Option<String>,
}

/// A header object as the log keeps it (name to value), as pairs; text that is not one is
/// shown whole under an empty name.
fn header_pairs(json: &str) -> Vec<(String, String)> {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json) {
        Ok(object) => object
            .into_iter()
            .map(|(name, value)| match value {
                serde_json::Value::String(text) => (name, text),
                other => (name, other.to_string()),
            })
            .collect(),
        Err(_) if json.is_empty() => Vec::new(),
        Err(_) => vec![(String::new(), json.to_owned())],
    }
}

/// A body pretty-printed when it is JSON, else as it was kept.
fn pretty(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| body.to_owned())
}

/// The signed-in participant's entry, or 404 (missing, or another participant's).
async fn own_entry(portal: &Portal, signed: &Signed, id: &str) -> Result<ApiLogEntry, PageError> {
    // An id that cannot exist answers as one that does not.
    let id = id.parse::<i64>().map_err(|_| PageError::NotFound)?;
    portal.app.store.api_log_entry(&signed.participant.client_id, id).await?.ok_or(PageError::NotFound)
}

pub(super) async fn detail(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Path(id): Path<String>,
) -> PageResult {
    signed.may(Action::Read)?;
    let entry = own_entry(&portal, &signed, &id).await?;
    let request_headers = header_pairs(&entry.request_headers);
    let request_time = request_headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("request-time"))
        .map(|(_, value)| value.clone());
    let diagnosis = entry.diagnosis.as_deref().and_then(|text| serde_json::from_str(text).ok());
    let debugger = diagnosis.map(|diagnosis| Debugger::of(diagnosis, request_time.as_deref()));
    let undiagnosed = (!entry.verified && debugger.is_none()).then(|| {
        format!(
            "This request was refused with {} before its signature could be diagnosed: fix that first.",
            entry.result_code
        )
    });
    let page = Detail {
        chrome: Chrome::new(&signed, SECTION),
        id: entry.id,
        at: at_second(entry.at),
        verified_words: verified_words(&entry),
        api: entry.api,
        path: entry.path,
        verified: entry.verified,
        agent: entry.agent.map(|agent| agent.to_string()),
        status: entry.result_status,
        code: entry.result_code,
        http_status: entry.http_status,
        latency: latency(entry.latency_micros),
        request_id: Some(entry.request_id).filter(|id| !id.is_empty()),
        request_headers,
        request_body: pretty(&entry.request_body),
        response_headers: header_pairs(&entry.response_headers),
        response_body: pretty(&entry.response_body),
        debugger,
        undiagnosed,
    };
    Ok(render(&page))
}

/// The check's fields, as typed.
#[derive(Debug, Default, Deserialize)]
pub(super) struct CheckForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    string_to_sign: String,
    #[serde(default)]
    signature: String,
    /// A key version, or `any`.
    #[serde(default)]
    key_version: String,
}

/// One of the participant's key versions in the check's select.
struct KeyChoice {
    value: String,
    label: String,
}

/// What the check found, in words.
struct CheckAnswer {
    /// `key version 2`, or none.
    verified_by: Option<String>,
    /// Said of the verifying key when the gateway no longer accepts it.
    key_note: Option<&'static str>,
    url_encoded: bool,
    encoding: &'static str,
    crlf_read_as_lf: bool,
}

#[derive(Template)]
#[template(path = "log_check.html")]
struct Check {
    chrome: Chrome,
    form: CheckForm,
    keys: Vec<KeyChoice>,
    answer: Option<CheckAnswer>,
    error: Option<String>,
}

fn key_choices(keys: &[ParticipantKey], now: ocpay_core::Timestamp) -> Vec<KeyChoice> {
    keys.iter()
        .rev()
        .map(|key| {
            let state = if key.revoked_at.is_some_and(|at| now >= at) {
                " (revoked)"
            } else if !key.is_usable(now) {
                " (expired)"
            } else {
                ""
            };
            let label = key.label.as_ref().map(|label| format!(", {label}")).unwrap_or_default();
            KeyChoice {
                value: key.key_version.to_string(),
                label: format!("Version {}{label}{state}", key.key_version),
            }
        })
        .collect()
}

/// Prefills the check from an entry of the log: the string the platform verified and the
/// signature the request sent.
#[derive(Debug, Default, Deserialize)]
pub(super) struct CheckQuery {
    #[serde(default)]
    entry: String,
}

pub(super) async fn check_form(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    Query(query): Query<CheckQuery>,
) -> PageResult {
    signed.may(Action::Read)?;
    let mut form = CheckForm { key_version: "any".into(), ..CheckForm::default() };
    if !query.entry.is_empty() {
        let entry = own_entry(&portal, &signed, &query.entry).await?;
        if let Some(diagnosis) =
            entry.diagnosis.as_deref().and_then(|text| serde_json::from_str::<SignatureDiagnosis>(text).ok())
        {
            form.string_to_sign = diagnosis.string_to_sign;
        }
        form.signature = header_pairs(&entry.request_headers)
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("signature"))
            .map(|(_, value)| value)
            .unwrap_or_default();
    }
    let keys = portal.app.store.participant_keys(&signed.participant.client_id).await?;
    let page = Check {
        chrome: Chrome::new(&signed, SECTION),
        keys: key_choices(&keys, portal.app.clock.now()),
        form,
        answer: None,
        error: None,
    };
    Ok(render(&page))
}

pub(super) async fn check(
    State(portal): State<Arc<Portal>>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<CheckForm>,
) -> PageResult {
    signed.check_form(&headers, &form.csrf)?;
    signed.may(Action::Read)?;
    let now = portal.app.clock.now();
    let keys = portal.app.store.participant_keys(&signed.participant.client_id).await?;
    let answer = check_answer(&form, &keys, now);
    let (answer, error) = match answer {
        Ok(answer) => (Some(answer), None),
        Err(message) => (None, Some(message)),
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let page =
        Check { chrome: Chrome::new(&signed, SECTION), keys: key_choices(&keys, now), form, answer, error };
    Ok((status, render(&page)).into_response())
}

/// Checks the pasted pair against the chosen key, or every key; a refusal names its field.
fn check_answer(
    form: &CheckForm,
    keys: &[ParticipantKey],
    now: ocpay_core::Timestamp,
) -> Result<CheckAnswer, String> {
    if form.string_to_sign.is_empty() {
        return Err("string to sign: paste the exact string that was signed".into());
    }
    if form.string_to_sign.len() > PASTED_BYTES_MAX {
        return Err(format!("string to sign: at most {} KiB", PASTED_BYTES_MAX / 1024));
    }
    let signature = form.signature.trim();
    if signature.is_empty() {
        return Err("signature: paste the signature, or the whole Signature header".into());
    }
    if signature.len() > PASTED_BYTES_MAX {
        return Err(format!("signature: at most {} KiB", PASTED_BYTES_MAX / 1024));
    }
    let chosen: Option<KeyVersion> = match form.key_version.as_str() {
        "" | "any" => None,
        text => Some(
            text.parse::<KeyVersion>()
                .ok()
                .filter(|version| keys.iter().any(|key| key.key_version == *version))
                .ok_or_else(|| "key version: choose one of your key versions, or any".to_owned())?,
        ),
    };
    let parsed: Vec<(KeyVersion, VerifyingKey)> = keys
        .iter()
        .filter(|key| chosen.is_none_or(|version| key.key_version == version))
        .filter_map(|key| {
            VerifyingKey::from_der(&key.public_key_der).ok().map(|parsed| (key.key_version, parsed))
        })
        .collect();
    let PastedCheck { verified_by, encoding, crlf_read_as_lf } =
        signature_debug::check_pasted(&form.string_to_sign, signature, &parsed);
    let key_note =
        verified_by.and_then(|version| keys.iter().find(|key| key.key_version == version)).and_then(|key| {
            if key.revoked_at.is_some_and(|at| now >= at) {
                Some("it is revoked: the gateway refuses requests signed with it")
            } else if !key.is_usable(now) {
                Some("it has expired: the gateway refuses requests signed with it")
            } else {
                None
            }
        });
    let words = match encoding {
        SignatureEncoding::UrlEncoded => "URL-encoded once, as the protocol asks.",
        SignatureEncoding::UrlEncodedTwice => "URL-encoded twice (%252B for +): encode it once.",
        SignatureEncoding::Raw => {
            "not URL-encoded (raw base64): URL-encode it in the Signature header, or its + arrive as spaces."
        }
        SignatureEncoding::Either => {
            "without a character that needs URL-encoding: it reads the same encoded or not."
        }
        SignatureEncoding::Unreadable => "not base64, however it is decoded: it cannot be a signature.",
    };
    Ok(CheckAnswer {
        verified_by: verified_by.map(|version| format!("key version {version}")),
        key_note,
        url_encoded: encoding == SignatureEncoding::UrlEncoded,
        encoding: words,
        crlf_read_as_lf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_read_in_whole_units() {
        let cases = [
            (0, "0 µs"),
            (999, "999 µs"),
            (1_000, "1.0 ms"),
            (1_234, "1.2 ms"),
            (1_250, "1.3 ms"),
            (20_049, "20.0 ms"),
        ];
        for (micros, text) in cases {
            assert_eq!(latency(micros), text, "{micros}");
        }
    }

    #[test]
    fn every_cause_has_advice_and_rules_out_what_was_tried_before_it() {
        let causes = [
            wire::CAUSE_OTHER_KEY_VERSION,
            wire::CAUSE_SANDBOX_PREFIX,
            wire::CAUSE_PATH_WITH_HOST,
            wire::CAUSE_REQUEST_TIME_FORMAT,
            wire::CAUSE_SIGNATURE_NOT_URL_ENCODED,
            wire::CAUSE_SIGNATURE_URL_ENCODED_TWICE,
            wire::CAUSE_SIGNATURE_UNREADABLE,
            wire::CAUSE_BODY_CHANGED,
        ];
        let unknown = advice(&diagnosis("SOMETHING_NEW"), None);
        for cause in causes {
            let said = advice(&diagnosis(cause), Some("1685599933000"));
            assert_ne!(said, unknown, "{cause} has its own advice");
        }
        assert!(
            advice(&diagnosis(wire::CAUSE_REQUEST_TIME_FORMAT), Some("2026-03-31T10:00:00Z"))
                .starts_with("Your Request-Time header is ISO text")
        );
        assert_eq!(ruled_out(wire::CAUSE_OTHER_KEY_VERSION), [ENCODING_CHECK]);
        assert_eq!(ruled_out(wire::CAUSE_PATH_WITH_HOST), [KEY_CHECK, PREFIX_CHECK, ENCODING_CHECK]);
        assert_eq!(ruled_out(wire::CAUSE_BODY_CHANGED).len(), 5);
        assert!(ruled_out(wire::CAUSE_SIGNATURE_NOT_URL_ENCODED).is_empty());
    }

    fn diagnosis(cause: &str) -> SignatureDiagnosis {
        SignatureDiagnosis {
            string_to_sign: "POST /ams/api/v1/payments/pay\nC.1.{}".into(),
            key_version: Some("1".into()),
            cause: cause.into(),
            message: String::new(),
            verifying_key_version: Some("2".into()),
            signed_instead: None,
            signature_url_encoded: Some(true),
        }
    }

    #[test]
    fn headers_and_bodies_read_as_the_log_keeps_them() {
        assert_eq!(
            header_pairs(r#"{"agent-token":"[redacted]","client-id":"C"}"#),
            [("agent-token".to_owned(), "[redacted]".to_owned()), ("client-id".to_owned(), "C".to_owned())]
        );
        assert_eq!(header_pairs(""), Vec::<(String, String)>::new());
        assert_eq!(pretty(r#"{"a":1}"#), "{\n  \"a\": 1\n}");
        assert_eq!(pretty("{\"cut"), "{\"cut", "text that is not JSON is kept as it is");
    }
}
