//! Raw signed requests, for tests that must control every header and byte.

use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{AmsResult, SignatureHeader, SigningKey, VerifyingKey};
use ocpay_testkit::{Clock, TestApp};

/// What a raw request carries; tests change one thing at a time.
#[derive(Clone)]
pub(crate) struct RawRequest {
    pub(crate) method: reqwest::Method,
    pub(crate) path: String,
    pub(crate) client_id: Option<String>,
    pub(crate) request_time: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Vec<u8>,
    /// `Some(header)` sends this signature header verbatim instead of signing.
    pub(crate) signature: Option<String>,
    pub(crate) key_version: u32,
}

impl RawRequest {
    pub(crate) fn new(app: &TestApp, client_id: &str, path: &str, body: impl Into<Vec<u8>>) -> RawRequest {
        RawRequest {
            method: reqwest::Method::POST,
            path: path.to_owned(),
            client_id: Some(client_id.to_owned()),
            request_time: Some(app.clock.now().as_millisecond().to_string()),
            content_type: Some("application/json; charset=UTF-8".into()),
            body: body.into(),
            signature: None,
            key_version: 1,
        }
    }
}

/// A response whose platform signature was checked.
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) result: AmsResult,
}

/// The signature header the request would carry if signed with `key`.
pub(crate) fn signature_for(key: &SigningKey, request: &RawRequest) -> String {
    let content = content_to_sign(
        "POST",
        &request.path,
        request.client_id.as_deref().unwrap_or_default(),
        request.request_time.as_deref().unwrap_or_default(),
        &request.body,
    );
    key.sign_header(request.key_version, &content).unwrap()
}

pub(crate) async fn send(app: &TestApp, key: &SigningKey, request: RawRequest) -> RawResponse {
    let signature = request.signature.clone().unwrap_or_else(|| signature_for(key, &request));
    let mut builder = reqwest::Client::new()
        .request(request.method.clone(), format!("{}{}", app.base_url, request.path))
        .header("signature", signature)
        .body(request.body.clone());
    if let Some(client_id) = &request.client_id {
        builder = builder.header("client-id", client_id);
    }
    if let Some(time) = &request.request_time {
        builder = builder.header("request-time", time);
    }
    if let Some(content_type) = &request.content_type {
        builder = builder.header("content-type", content_type);
    }
    let response = builder.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    verify_platform_signature(&app.platform_key, &request.path, &headers, &body);
    let result = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| serde_json::from_value(value["result"].clone()).ok())
        .unwrap_or_else(|| panic!("a result in {body:?}"));
    RawResponse { status, body, result }
}

/// Every answer of the gateway, errors included, is signed by the platform.
pub(crate) fn verify_platform_signature(
    platform: &VerifyingKey,
    path: &str,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) {
    let header =
        |name: &str| headers.get(name).unwrap_or_else(|| panic!("a {name} header")).to_str().unwrap();
    let signature = SignatureHeader::parse(header("signature")).unwrap();
    let content =
        content_to_sign("POST", path, header("client-id"), header("response-time"), body.as_bytes());
    platform.verify(&content, &signature.signature).expect("the response is signed by the platform");
}

/// The token of an order code's URL.
pub(crate) fn token_of(code_value: &str) -> String {
    code_value.rsplit('/').next().unwrap_or_default().to_owned()
}

/// Creates an order code for `merchant` and returns its `pay` response.
pub(crate) async fn order_code(
    merchant: &ocpay_testkit::TestParticipant,
    currency: &str,
    minor: i64,
) -> ocpay_protocol::payments::PayResponse {
    let request = ocpay_testkit::pay_request(&ocpay_testkit::unique_id("PR"), currency, minor);
    let response = merchant.client.pay(&request).await.expect("pay answers");
    assert_eq!(response.result.result_code, "SUCCESS", "{:?}", response.result);
    response
}

/// The `TEXT` code value of a `pay` response.
pub(crate) fn code_value(response: &ocpay_protocol::payments::PayResponse) -> String {
    response.order_code_form.as_ref().and_then(|form| form.text_code()).expect("a TEXT code").to_owned()
}

/// Pays (or fails) a code through the wallet's JSON API, as the page and `ocpay wallet pay` do.
pub(crate) async fn wallet_pay(
    app: &TestApp,
    code_value: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let url = format!("{}/wallet/api/codes/{}/pay", app.base_url, token_of(code_value));
    let response = reqwest::Client::new().post(url).json(&body).send().await.expect("the wallet answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

/// Inquires a payment by its request id.
pub(crate) async fn inquire(
    merchant: &ocpay_testkit::TestParticipant,
    response: &ocpay_protocol::payments::PayResponse,
) -> ocpay_protocol::payments::InquiryPaymentResponse {
    let request = ocpay_protocol::payments::InquiryPaymentRequest {
        payment_id: response.payment_id.clone(),
        payment_request_id: None,
    };
    merchant.client.inquire_payment(&request).await.expect("inquiry answers")
}

/// The whole ledger balances, no wallet is negative, every currency sums to zero.
pub(crate) async fn assert_ledger_sound(app: &TestApp) {
    let check = app.state.store.ledger_check().await.expect("the ledger check runs");
    assert!(check.is_sound(), "the ledger is sound: {check:?}");
}

/// A host name (not an IP literal, not `localhost`, which the notify URL check knows by name)
/// that resolves on this machine, and only to loopback addresses: the machine's own name or a
/// common alias of the loopback address. `scripts/test` looks for the same names before it runs
/// the tests that need one.
pub(crate) async fn name_resolving_only_to_loopback() -> String {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let candidates = [hostname.trim(), "ip6-localhost", "ip6-loopback", "localhost.localdomain"];
    for name in candidates
        .into_iter()
        .filter(|name| !name.is_empty() && *name != "localhost" && !name.ends_with(".localhost"))
    {
        let Ok(addresses) = tokio::net::lookup_host((name, 80)).await else { continue };
        let addresses: Vec<_> = addresses.map(|address| address.ip()).collect();
        if !addresses.is_empty() && addresses.iter().all(std::net::IpAddr::is_loopback) {
            return name.to_owned();
        }
    }
    panic!("no host name here resolves only to loopback addresses: {candidates:?}")
}
