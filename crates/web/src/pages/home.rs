//! The home page: the participant's client id, the gateway's addresses, every published
//! platform key (to copy or download) and a quick start filled in with the user's own client
//! id for Alipay's Python SDK, the Rust SDK and the CLI.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::header;

use super::{Chrome, PageError, PageResult, render};
use crate::session::Signed;
use crate::{Portal, charts};

pub(crate) struct PlatformKey {
    pub version: u64,
    pub signing: bool,
    pub pem: String,
}

/// The published platform keys, newest first.
pub(crate) fn platform_keys(portal: &Portal) -> Vec<PlatformKey> {
    let published = portal.app.published_platform_keys();
    let mut keys: Vec<PlatformKey> = published["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|key| PlatformKey {
            version: key["keyVersion"].as_u64().unwrap_or_default(),
            signing: key["signing"].as_bool().unwrap_or_default(),
            pem: key["publicKey"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    keys.sort_by_key(|key| std::cmp::Reverse(key.version));
    keys
}

/// A chart of the home page: its caption, its SVG, and what its colours mean.
pub(crate) struct Chart {
    pub caption: &'static str,
    pub svg: String,
    pub legend: String,
}

const DAYS: i64 = 30;

/// How long after its end a day's figures may still change: a code paid at its latest expiry,
/// the last retry of its notification, an asynchronous refund completing, and two days to
/// spare (a cancel of a paid payment, a slow timer job). Older days are computed once and kept
/// by the store.
fn final_horizon(settings: &ocpay_server::settings::Settings) -> jiff::SignedDuration {
    let schedule = &settings.notify.schedule;
    let start = jiff::Timestamp::UNIX_EPOCH;
    let mut last = start;
    for attempts in 1..schedule.attempts_max() {
        last = schedule.next_after(attempts, last).unwrap_or(last);
    }
    settings.expiry.max + (last - start) + settings.refund_async_delay + jiff::SignedDuration::from_hours(48)
}
const DAY_MS: i64 = 86_400_000;

/// The last 30 days of a participant's activity, as charts.
async fn charts(portal: &Portal, signed: &Signed) -> Result<Vec<Chart>, PageError> {
    let store = &portal.app.store;
    let window = ChartWindow::at(portal)?;
    let client_id = &signed.participant.client_id;
    let activity = store.daily_activity(client_id, window.from, window.final_before).await?;
    let results = store.api_results_by_day(client_id, window.from).await?;
    Ok(activity_charts(&window, &activity, &results))
}

/// The days the charts show: the last 30 UTC days, today's included.
pub(crate) struct ChartWindow {
    first: i64,
    today: i64,
    /// The start of the first day.
    pub from: jiff::Timestamp,
    /// Days that ended before this can no longer change (the store keeps them).
    pub final_before: jiff::Timestamp,
}

impl ChartWindow {
    pub(crate) fn at(portal: &Portal) -> Result<ChartWindow, PageError> {
        let now = portal.app.clock.now();
        let today = now.as_millisecond().div_euclid(DAY_MS);
        let first = today - (DAYS - 1);
        let from = jiff::Timestamp::from_millisecond(first * DAY_MS)
            .map_err(|e| PageError::Internal(e.to_string()))?;
        Ok(ChartWindow { first, today, from, final_before: now - final_horizon(&portal.app.settings) })
    }
}

/// The charts of 30 days of activity (a participant's or the platform's): payments and refunds
/// (count, with amounts per currency in each day's tooltip), notification delivery, and API
/// results by code.
pub(crate) fn activity_charts(
    window: &ChartWindow,
    activity: &ocpay_store::DailyActivity,
    results: &[(i64, String, u64)],
) -> Vec<Chart> {
    let (first, today) = (window.first, window.today);
    let index = |day: i64| usize::try_from(day - first).ok().filter(|i| *i < DAYS as usize);
    let labels: Vec<String> = (first..=today)
        .map(|day| {
            jiff::Timestamp::from_millisecond(day * DAY_MS)
                .map_or_else(|_| String::new(), |t| t.strftime("%m-%d").to_string())
        })
        .collect();
    let money_chart = |caption: &'static str, noun: &str, totals: &[ocpay_store::DayTotal]| {
        let mut counts = vec![0u64; DAYS as usize];
        let mut details = vec![String::new(); DAYS as usize];
        for total in totals {
            if let Some(i) = index(total.day) {
                counts[i] += total.count;
                let sep = if details[i].is_empty() { "" } else { ", " };
                details[i] = format!("{}{sep}{} {}", details[i], total.count, total.amount);
            }
        }
        for (i, detail) in details.iter_mut().enumerate() {
            *detail = format!(
                "{} {noun}{}",
                counts[i],
                if detail.is_empty() { String::new() } else { format!(" ({detail})") }
            );
        }
        let series = [charts::Series { name: noun.to_owned(), colour: "#1560d4", values: counts }];
        Chart {
            caption,
            svg: charts::bars(caption, &labels, &details, &series),
            legend: format!(
                "Blue: successful {noun} per day; each bar's tooltip gives the amounts per currency."
            ),
        }
    };
    let mut delivered = vec![0u64; DAYS as usize];
    let mut pending = vec![0u64; DAYS as usize];
    let mut failed = vec![0u64; DAYS as usize];
    for day in &activity.notifications {
        if let Some(i) = index(day.day) {
            (delivered[i], pending[i], failed[i]) = (day.delivered, day.pending, day.failed);
        }
    }
    let delivery_details: Vec<String> = (0..DAYS as usize)
        .map(|i| format!("{} delivered, {} still trying, {} failed", delivered[i], pending[i], failed[i]))
        .collect();
    let notifications = [
        charts::Series { name: "delivered".into(), colour: "#127a3a", values: delivered },
        charts::Series { name: "still trying".into(), colour: "#d9a400", values: pending },
        charts::Series { name: "failed".into(), colour: "#b42318", values: failed },
    ];
    let mut ok = vec![0u64; DAYS as usize];
    let mut errors = vec![0u64; DAYS as usize];
    let mut codes = vec![std::collections::BTreeMap::<&str, u64>::new(); DAYS as usize];
    for (day, code, count) in results {
        if let Some(i) = index(*day) {
            if code == "SUCCESS" {
                ok[i] += count;
            } else {
                errors[i] += count;
            }
            *codes[i].entry(code.as_str()).or_default() += count;
        }
    }
    let code_details: Vec<String> = codes
        .iter()
        .map(|codes| match codes.is_empty() {
            true => "no requests".to_owned(),
            false => codes.iter().map(|(code, n)| format!("{code} {n}")).collect::<Vec<_>>().join(", "),
        })
        .collect();
    let api = [
        charts::Series { name: "SUCCESS".into(), colour: "#127a3a", values: ok },
        charts::Series { name: "errors".into(), colour: "#b42318", values: errors },
    ];
    vec![
        money_chart("Payments per day", "payments", &activity.payments),
        money_chart("Refunds per day", "refunds", &activity.refunds),
        Chart {
            caption: "Notification delivery",
            svg: charts::bars("Notification delivery", &labels, &delivery_details, &notifications),
            legend: "Green: delivered; amber: still being retried; red: failed after every attempt.".into(),
        },
        Chart {
            caption: "API results",
            svg: charts::bars("API results", &labels, &code_details, &api),
            legend: "Green: SUCCESS; red: every other result code (the API log has each request).".into(),
        },
    ]
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    chrome: Chrome,
    charts: Vec<Chart>,
    client_id: String,
    kind: &'static str,
    gateway: String,
    platform_keys: Vec<PlatformKey>,
    python: String,
    rust: String,
    cli: String,
}

pub(super) async fn page(State(portal): State<Arc<Portal>>, signed: Signed) -> PageResult {
    let client_id = signed.participant.client_id.to_string();
    let gateway = portal.app.public_url.clone();
    let keys = platform_keys(&portal);
    let signing_version = keys.iter().find(|key| key.signing).map_or(1, |key| key.version);
    let python = format!(
        "# pip install global-alipay-sdk-python cryptography (the official SDK, unchanged)\n\
         from cryptography.hazmat.primitives import serialization as s\n\
         from com.alipay.ams.api.default_alipay_client import DefaultAlipayClient\n\
         \n\
         def body(pem):  # the SDK takes keys as bare base64\n\
         \x20   return \"\".join(l for l in pem.splitlines() if not l.startswith(\"-----\"))\n\
         \n\
         key = s.load_pem_private_key(open(\"private-key.pem\", \"rb\").read(), None)\n\
         pkcs1 = key.private_bytes(s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption())\n\
         client = DefaultAlipayClient(\"{gateway}\", \"{client_id}\",\n\
         \x20   body(pkcs1.decode()), body(open(\"platform-key-{signing_version}.pem\").read()))\n\
         # The SDK always speaks HTTPS: reach ocpay through TLS at that address.\n\
         response = client.execute(order_code_payment_request)"
    );
    let rust = format!(
        "let client = ocpay_sdk::Client::builder(\n\
         \x20   \"{gateway}\", \"{client_id}\",\n\
         \x20   SigningKey::from_text(&std::fs::read_to_string(\"private-key.pem\")?)?,\n\
         \x20   VerifyingKey::from_text(&std::fs::read_to_string(\"platform-key-{signing_version}.pem\")?)?,\n\
         ).build()?;\n\
         let answer = client.pay(&request).await?;"
    );
    let cli = format!(
        "cat > ocpay-profile.toml <<'TOML'\n\
         server_url = \"{gateway}\"\n\
         client_id = \"{client_id}\"\n\
         private_key = \"private-key.pem\"\n\
         platform_key = \"platform-key-{signing_version}.pem\"\n\
         TOML\n\
         ocpay pay --profile ocpay-profile.toml --amount 12.50 --currency USD\n\
         ocpay logs tail --profile ocpay-profile.toml"
    );
    let charts = charts(&portal, &signed).await?;
    Ok(render(&Home {
        chrome: Chrome::new(&signed, "/portal/"),
        charts,
        client_id,
        kind: signed.participant.kind.as_str(),
        gateway,
        platform_keys: keys,
        python,
        rust,
        cli,
    }))
}

/// One platform key as a PEM download (`/portal/platform-key-<version>.pem`).
pub(super) async fn platform_key_file(
    State(portal): State<Arc<Portal>>,
    _signed: Signed,
    Path(file): Path<String>,
) -> Result<Response, PageError> {
    let version = file
        .strip_prefix("platform-key-")
        .and_then(|rest| rest.strip_suffix(".pem"))
        .and_then(|version| version.parse::<u64>().ok())
        .ok_or(PageError::NotFound)?;
    let key =
        platform_keys(&portal).into_iter().find(|key| key.version == version).ok_or(PageError::NotFound)?;
    let disposition = format!("attachment; filename=\"platform-key-{version}.pem\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-pem-file".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        key.pem,
    )
        .into_response())
}
