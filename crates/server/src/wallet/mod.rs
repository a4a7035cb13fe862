//! The payer's side of an order code: the page a wallet opens after scanning (`/c/<token>`),
//! the code's QR images, and the small JSON API the page (and `ocpay wallet pay`) uses.
//!
//! - `GET /c/{token}`: the order, the time left, and how to pay (sandbox outcomes, or a
//!   payer id and PIN for a live wallet).
//! - `GET /c/{token}/qr-{small|middle|big}.{png|svg}`: the QR image of the code's URL.
//! - `GET /wallet/api/codes/{token}`: the order as JSON.
//! - `POST /wallet/api/codes/{token}/pay` with `{"payerId", "pin", "outcome"}`: pay, or in
//!   the sandbox choose a failure; answers JSON. Only `application/json` is taken (415
//!   otherwise), and a browser's request from another origin is refused (403), so that no other
//!   site's form or script can pay a code in a payer's browser.
//!
//! The token is the capability: whoever holds the code may see the order and pay it.

mod qr;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use ocpay_core::ids::CodeToken;
use ocpay_core::money::Money;
use ocpay_core::participant::Environment;
use ocpay_core::payer::{PayerId, SandboxOutcome};
use ocpay_core::payment::{NotPayable, Payment, PaymentState};
use ocpay_protocol::datetime;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::codes::{self, QrSize};
use crate::service::wallet::{self, Paid, PayCode, WalletError};
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/c/{token}", get(page))
        .route("/c/{token}/{image}", get(image))
        .route("/wallet/api/codes/{token}", get(code))
        .route("/wallet/api/codes/{token}/pay", post(pay))
        .route("/wallet/static/wallet.js", get(script))
        .route("/wallet/static/wallet.css", get(style))
}

/// Same-origin scripts and styles only; never framed.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({ "error": code, "message": message.to_string() }))).into_response()
}

async fn find(state: &AppState, token: &str) -> Result<Payment, Response> {
    let not_found = || error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such order code");
    let code = CodeToken::parse(token).map_err(|_| not_found())?;
    match state.store.payment_by_code(&code).await {
        Ok(Some(payment)) => Ok(payment),
        Ok(None) => Err(not_found()),
        Err(failure) => {
            tracing::error!(error = %failure, "reading an order code failed");
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "try again"))
        }
    }
}

fn money(amount: Money) -> Value {
    json!({ "currency": amount.currency().code(), "value": amount.minor().to_string(), "text": amount.to_string() })
}

/// What the page and the JSON API say about an order, as of now.
fn view(state: &AppState, payment: &Payment) -> Value {
    let now = state.clock.now();
    let terms = &payment.terms;
    let effective = payment.effective_state(now);
    let result_code = match effective {
        PaymentState::Fail { reason, .. } => Some(reason.as_str()),
        _ => None,
    };
    let sandbox = terms.environment() == Environment::Sandbox;
    json!({
        "paymentId": terms.id.as_str(),
        "status": effective.status().as_str(),
        "resultCode": result_code,
        "merchantName": terms.order.merchant.display_name.as_ref().unwrap_or(&terms.order.merchant.name).as_str(),
        "storeName": terms.order.merchant.store.name.as_str(),
        "description": terms.order.description.as_str(),
        "amount": money(terms.amount),
        "expireTime": datetime::format(terms.expires_at),
        "secondsLeft": terms.expires_at.duration_since(now).as_secs().max(0),
        "environment": terms.environment().as_str(),
        "outcomes": if sandbox { SandboxOutcome::ALL.iter().map(|outcome| outcome.as_str()).collect() } else { Vec::new() },
        "charged": payment.charge.as_ref().map(|charge| money(charge.amount)),
    })
}

async fn code(State(state): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    match find(&state, &token).await {
        Ok(payment) => axum::Json(view(&state, &payment)).into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PayBody {
    payer_id: Option<String>,
    pin: Option<String>,
    outcome: Option<String>,
}

/// The refusal of a browser's request made by another site: an `Origin` other than the
/// platform's public origin, or `Sec-Fetch-Site` saying the request crossed sites. Clients that
/// are not browsers (`ocpay wallet pay`) send neither header.
fn cross_origin_refusal(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let forbidden = |why: &str| {
        Some(error(
            StatusCode::FORBIDDEN,
            "CROSS_ORIGIN",
            format!("{why}: codes are paid from this platform's own page"),
        ))
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or_default().to_ascii_lowercase();
        if site != "same-origin" && site != "none" {
            return forbidden("header Sec-Fetch-Site: the request comes from another site");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let public = url::Url::parse(&state.public_url).ok().map(|url| url.origin());
        let sent = origin.to_str().ok().and_then(|text| url::Url::parse(text).ok()).map(|url| url.origin());
        let same = match (public, sent) {
            (Some(public), Some(sent)) => public.is_tuple() && public == sent,
            _ => false,
        };
        if !same {
            return forbidden("header Origin: not this platform's origin");
        }
    }
    None
}

/// The refusal of a body that is not `application/json` (with no charset, or UTF-8).
fn media_type_refusal(headers: &HeaderMap) -> Option<Response> {
    let refusal = || {
        Some(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "header Content-Type: must be application/json",
        ))
    };
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()) else {
        return refusal();
    };
    let mut params = value.split(';').map(str::trim);
    if !params.next().unwrap_or_default().eq_ignore_ascii_case("application/json") {
        return refusal();
    }
    for param in params {
        if let Some((name, charset)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("charset")
            && !matches!(charset.trim().trim_matches('"').to_ascii_lowercase().as_str(), "utf-8" | "utf8")
        {
            return refusal();
        }
    }
    None
}

async fn pay(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refusal) = cross_origin_refusal(&state, &headers).or_else(|| media_type_refusal(&headers)) {
        return refusal;
    }
    let Ok(code) = CodeToken::parse(&token) else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such order code");
    };
    let body: PayBody = match serde_json::from_slice(if body.is_empty() { b"{}" } else { &body }) {
        Ok(body) => body,
        Err(problem) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", problem),
    };
    let payer = match body.payer_id.as_deref().map(PayerId::parse).transpose() {
        Ok(payer) => payer,
        Err(problem) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", format!("payerId: {problem}")),
    };
    let outcome = match body
        .outcome
        .as_deref()
        .map(|outcome| SandboxOutcome::parse(outcome).ok_or(outcome))
        .transpose()
    {
        Ok(outcome) => outcome,
        Err(unknown) => {
            return error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("outcome: {unknown:?} is not offered"),
            );
        }
    };
    let request = PayCode { payer, pin: body.pin, outcome };
    match wallet::pay_code(&state, &code, request).await {
        Ok(Paid::Paid(payment)) => {
            let charge = payment.charge.as_ref();
            axum::Json(json!({
                "status": "SUCCESS",
                "paymentId": payment.terms.id.as_str(),
                "charged": charge.map(|charge| money(charge.amount)),
                "quote": charge.and_then(|charge| charge.quote.as_ref()).map(|quote| json!({
                    "pair": quote.rate.pair(),
                    "price": quote.rate.price(),
                })),
                "paidAt": payment.state.paid_at().map(datetime::format),
            }))
            .into_response()
        }
        Ok(Paid::Failed(payment)) => {
            let code = match payment.state {
                PaymentState::Fail { reason, .. } => reason.as_str(),
                _ => "",
            };
            axum::Json(
                json!({ "status": "FAIL", "paymentId": payment.terms.id.as_str(), "resultCode": code }),
            )
            .into_response()
        }
        Err(failure) => wallet_error(&failure),
    }
}

fn wallet_error(failure: &WalletError) -> Response {
    let (status, code) = match failure {
        WalletError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        WalletError::NotPayable(NotPayable::AlreadyPaid) => (StatusCode::CONFLICT, "ALREADY_PAID"),
        WalletError::NotPayable(NotPayable::Cancelled) => (StatusCode::CONFLICT, "CANCELLED"),
        WalletError::NotPayable(NotPayable::Failed) => (StatusCode::CONFLICT, "FAILED"),
        WalletError::NotPayable(NotPayable::Expired) => (StatusCode::GONE, "EXPIRED"),
        WalletError::UnknownPayer => (StatusCode::NOT_FOUND, "UNKNOWN_PAYER"),
        WalletError::WrongEnvironment => (StatusCode::CONFLICT, "WRONG_ENVIRONMENT"),
        WalletError::SignInRequired => (StatusCode::UNAUTHORIZED, "SIGN_IN_REQUIRED"),
        WalletError::WrongPin => (StatusCode::UNAUTHORIZED, "WRONG_PIN"),
        WalletError::Locked => (StatusCode::LOCKED, "LOCKED"),
        WalletError::BalanceNotEnough { .. } => (StatusCode::PAYMENT_REQUIRED, "BALANCE_NOT_ENOUGH"),
        WalletError::Charge(_) => (StatusCode::UNPROCESSABLE_ENTITY, "NO_RATE"),
        WalletError::OutcomeOutsideSandbox => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        WalletError::Store(store) => {
            tracing::error!(error = %store, "paying an order code failed inside the platform");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "something failed; nothing was paid; try again",
            );
        }
    };
    error(status, code, failure)
}

/// The page a wallet shows after scanning.
#[derive(Template)]
#[template(path = "code.html")]
struct CodePage {
    token: String,
    merchant: String,
    store: String,
    description: String,
    amount: String,
    status: String,
    result_code: String,
    expire_time: String,
    seconds_left: i64,
    sandbox: bool,
    /// The sandbox's failure outcomes, each a button.
    failures: Vec<&'static str>,
}

async fn page(State(state): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    let payment = match find(&state, &token).await {
        Ok(payment) => payment,
        Err(_) => {
            return (
                StatusCode::NOT_FOUND,
                Html("<!doctype html><title>Not found</title><p>No such order code.</p>"),
            )
                .into_response();
        }
    };
    let view = view(&state, &payment);
    let text = |key: &str| view[key].as_str().unwrap_or_default().to_owned();
    let page = CodePage {
        token: token.clone(),
        merchant: text("merchantName"),
        store: text("storeName"),
        description: text("description"),
        amount: view["amount"]["text"].as_str().unwrap_or_default().to_owned(),
        status: text("status"),
        result_code: text("resultCode"),
        expire_time: text("expireTime"),
        seconds_left: view["secondsLeft"].as_i64().unwrap_or(0),
        sandbox: payment.terms.environment() == Environment::Sandbox,
        failures: SandboxOutcome::ALL
            .iter()
            .filter(|outcome| **outcome != SandboxOutcome::Pay)
            .map(|outcome| outcome.as_str())
            .collect(),
    };
    match page.render() {
        Ok(html) => {
            let mut response = Html(html).into_response();
            let headers = response.headers_mut();
            headers
                .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            response
        }
        Err(failure) => {
            tracing::error!(error = %failure, "rendering the payer page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `qr-small.png` and the like.
async fn image(State(state): State<Arc<AppState>>, Path((token, image)): Path<(String, String)>) -> Response {
    let Some((name, format)) = image.strip_prefix("qr-").and_then(|rest| rest.split_once('.')) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(size) = QrSize::ALL.into_iter().find(|size| size.name() == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let payment = match find(&state, &token).await {
        Ok(payment) => payment,
        Err(response) => return response,
    };
    let url = codes::code_url(&state.public_url, &payment.terms.code_token);
    let rendered = match format {
        "png" => qr::png(&url, size).map(|bytes| ("image/png", bytes)),
        "svg" => qr::svg(&url, size).map(|text| ("image/svg+xml", text.into_bytes())),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match rendered {
        Ok((content_type, bytes)) => {
            ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "private, max-age=3600")], bytes)
                .into_response()
        }
        Err(failure) => {
            tracing::error!(error = %failure, "rendering a QR code failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("../../static/wallet.js"))
        .into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../../static/wallet.css"))
        .into_response()
}
