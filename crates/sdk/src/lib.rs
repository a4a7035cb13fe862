//! The client SDK for ocpay (and any AMS order-code gateway): typed calls for `pay`,
//! `inquiryPayment`, `cancel`, `refund` and `inquiryRefund`, signed the way Alipay's official SDKs sign, with every
//! response's signature verified against the platform's public key; and ocpay's own `apiLogInquiry`.
//!
//! A response that fails verification is an error, never a result. Results with status `U`
//! (except `PAYMENT_IN_PROCESS` and `REFUND_IN_PROCESS`, which mean "accepted, inquire") and
//! transport failures are retried with the identical body (so the same idempotency key), up
//! to a configured number of attempts.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ocpay_sdk::SdkError> {
//! use ocpay_protocol::model::{Amount, Merchant, Order, Store};
//! use ocpay_protocol::payments::PayRequest;
//! use ocpay_protocol::{SigningKey, VerifyingKey};
//!
//! let key = SigningKey::from_text(&std::fs::read_to_string("private-key.pem").unwrap())?;
//! let platform = VerifyingKey::from_text(&std::fs::read_to_string("platform-public-key.pem").unwrap())?;
//! let client = ocpay_sdk::Client::builder("http://127.0.0.1:8080", "SANDBOX_X", key, platform).build()?;
//! let order = Order {
//!     order_description: Some("Two flat whites".into()),
//!     order_amount: Some(Amount::new("USD", 1250)),
//!     merchant: Some(Merchant {
//!         reference_merchant_id: Some("M1".into()),
//!         merchant_name: Some("Demo Cafe".into()),
//!         merchant_mcc: Some("5812".into()),
//!         store: Some(Store { reference_store_id: Some("S1".into()), store_name: Some("Main".into()), ..Store::default() }),
//!         ..Merchant::default()
//!     }),
//!     ..Order::default()
//! };
//! let response = client.pay(&PayRequest::order_code("PR-1", Amount::new("USD", 1250), order)).await?;
//! println!("show this code: {:?}", response.order_code_form.and_then(|form| form.text_code().map(str::to_owned)));
//! # Ok(()) }
//! ```

pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use ocpay_protocol::api::header;
use ocpay_protocol::api_log::{ApiLogInquiryRequest, ApiLogInquiryResponse};
use ocpay_protocol::payments::{
    CancelRequest, CancelResponse, InquiryPaymentRequest, InquiryPaymentResponse, PayRequest, PayResponse,
};
use ocpay_protocol::refunds::{InquiryRefundRequest, InquiryRefundResponse, RefundRequest, RefundResponse};
use ocpay_protocol::registrations::{
    InquiryRegistrationInfoRequest, InquiryRegistrationInfoResponse, InquiryRegistrationStatusRequest,
    InquiryRegistrationStatusResponse, RegistrationRequest, RegistrationResponse,
};
use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{
    AmsResult, Api, ApiRequest, ResultCode, ResultStatus, SignatureError, SignatureHeader, SigningKey,
    VerifyingKey,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a call produced no verified response.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    #[error("could not reach the gateway: {0}")]
    Transport(String),
    #[error("the gateway answered HTTP {status} without a signed result")]
    HttpStatus { status: u16 },
    #[error("the response is not signed by the platform: {0}")]
    ResponseSignature(String),
    #[error("the response is not the JSON expected: {0}")]
    ResponseBody(String),
    #[error("bad client setting: {0}")]
    Config(String),
    #[error(transparent)]
    Key(#[from] SignatureError),
}

impl SdkError {
    /// Whether retrying the identical request may help.
    fn is_retryable(&self) -> bool {
        match self {
            SdkError::Transport(_) => true,
            SdkError::HttpStatus { status } => *status == 408 || *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// A verified response: its raw body (as signed) and what it parses to.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    pub body: String,
    pub response: T,
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    base_url: String,
    client_id: String,
    signing_key: SigningKey,
    platform_key: VerifyingKey,
    /// Platform keys of other versions, used when a response names their version.
    platform_keys: Vec<(u32, VerifyingKey)>,
    key_version: u32,
    agent_token: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    attempts_max: u32,
    retry_delay: Duration,
    sandbox_paths: bool,
    /// PEM certificates of authorities trusted beside the system's, for `https://` servers.
    root_certificates: Vec<Vec<u8>>,
    now: Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>,
}

impl ClientBuilder {
    /// The key version registered for `signing_key` (default 1).
    pub fn key_version(mut self, key_version: u32) -> Self {
        self.key_version = key_version;
        self
    }

    /// Also trust this version of the platform key: during a rotation, responses signed with
    /// either the builder's key or this one (named by `keyVersion`) verify.
    pub fn platform_key_version(mut self, key_version: u32, key: VerifyingKey) -> Self {
        self.platform_keys.push((key_version, key));
        self
    }

    /// Act for a merchant that authorised this ISV.
    pub fn agent_token(mut self, token: impl Into<String>) -> Self {
        self.agent_token = Some(token.into());
        self
    }

    /// Time allowed for one attempt, connection included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Time allowed to connect (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Attempts per call, the first included (default 3). Only `U` results and transport
    /// failures are retried, always with the identical body.
    pub fn attempts_max(mut self, attempts: u32) -> Self {
        self.attempts_max = attempts.max(1);
        self
    }

    /// Pause before the second attempt; it doubles for each further one (default 200 ms).
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// Whether `SANDBOX_` client ids use the `/ams/sandbox/api` paths, as the official SDKs do
    /// (default true). ocpay serves both.
    pub fn sandbox_paths(mut self, enabled: bool) -> Self {
        self.sandbox_paths = enabled;
        self
    }

    /// Where `Request-Time` comes from (default: the system clock). Tests that move the
    /// server's clock move this one with it.
    pub fn clock(mut self, now: impl Fn() -> jiff::Timestamp + Send + Sync + 'static) -> Self {
        self.now = Arc::new(now);
        self
    }

    /// Also trust the certificate authority in `pem` (a PEM certificate) when the server URL is
    /// `https://`: a private authority's, or a test's. The system's authorities stay trusted.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    pub fn build(self) -> Result<Client, SdkError> {
        let roots = self
            .root_certificates
            .iter()
            .map(|pem| reqwest::Certificate::from_pem(pem))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| SdkError::Config(format!("root certificate: {error}")))?;
        let http = reqwest::Client::builder()
            .tls_certs_merge(roots)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|error| SdkError::Config(error.to_string()))?;
        let base_url = self.base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(SdkError::Config(format!(
                "server URL {base_url:?} must start with http:// or https://"
            )));
        }
        Ok(Client { http, base_url, settings: self })
    }
}

/// A signed AMS client for one client id.
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    settings: ClientBuilder,
}

impl Client {
    pub fn builder(
        base_url: impl Into<String>,
        client_id: impl Into<String>,
        signing_key: SigningKey,
        platform_key: VerifyingKey,
    ) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            client_id: client_id.into(),
            signing_key,
            platform_key,
            platform_keys: Vec::new(),
            key_version: 1,
            agent_token: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            attempts_max: 3,
            retry_delay: Duration::from_millis(200),
            sandbox_paths: true,
            root_certificates: Vec::new(),
            now: Arc::new(jiff::Timestamp::now),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.settings.client_id
    }

    /// Creates an order code (or returns the one this `paymentRequestId` created).
    pub async fn pay(&self, request: &PayRequest) -> Result<PayResponse, SdkError> {
        self.send(request).await
    }

    /// Reads a payment by `paymentId` or `paymentRequestId`.
    pub async fn inquire_payment(
        &self,
        request: &InquiryPaymentRequest,
    ) -> Result<InquiryPaymentResponse, SdkError> {
        self.send(request).await
    }

    /// Cancels a payment by `paymentId` or `paymentRequestId`.
    pub async fn cancel(&self, request: &CancelRequest) -> Result<CancelResponse, SdkError> {
        self.send(request).await
    }

    /// Refunds part or all of a paid payment (or returns the refund this `refundRequestId`
    /// created). `U / REFUND_IN_PROCESS` means accepted: inquire for the outcome.
    pub async fn refund(&self, request: &RefundRequest) -> Result<RefundResponse, SdkError> {
        self.send(request).await
    }

    /// Reads a refund by `refundId` or `refundRequestId`.
    pub async fn inquire_refund(
        &self,
        request: &InquiryRefundRequest,
    ) -> Result<InquiryRefundResponse, SdkError> {
        self.send(request).await
    }

    /// Registers a secondary merchant and its store for review (acquirers only), or returns the
    /// answer this `registrationRequestId` got.
    pub async fn register(&self, request: &RegistrationRequest) -> Result<RegistrationResponse, SdkError> {
        self.send(request).await
    }

    /// Reads where a registration stands: `PROCESSING`, `APPROVED` or `REJECTED`.
    pub async fn inquire_registration_status(
        &self,
        request: &InquiryRegistrationStatusRequest,
    ) -> Result<InquiryRegistrationStatusResponse, SdkError> {
        self.send(request).await
    }

    /// Reads what was registered for a merchant (and store).
    pub async fn inquire_registration_info(
        &self,
        request: &InquiryRegistrationInfoRequest,
    ) -> Result<InquiryRegistrationInfoResponse, SdkError> {
        self.send(request).await
    }

    /// Reads this client's API log (ocpay's own API): the entries after `afterId`, or the newest,
    /// oldest first, and the `nextAfterId` to follow it with.
    pub async fn api_log(&self, request: &ApiLogInquiryRequest) -> Result<ApiLogInquiryResponse, SdkError> {
        self.send(request).await
    }

    /// Calls the API a typed request belongs to and returns its typed, verified response.
    pub async fn send<R: ApiRequest>(&self, request: &R) -> Result<R::Response, SdkError> {
        Ok(self.call(R::API, request).await?.response)
    }

    /// Calls any API with a request of any shape, keeping the verified raw body beside the
    /// parsed one.
    pub async fn call<Req, Resp>(&self, api: Api, request: &Req) -> Result<Verified<Resp>, SdkError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let body = serde_json::to_vec(request).map_err(|error| SdkError::Config(error.to_string()))?;
        let body = self.call_raw(api, body).await?;
        let response =
            serde_json::from_str(&body).map_err(|error| SdkError::ResponseBody(error.to_string()))?;
        Ok(Verified { body, response })
    }

    /// Sends `body` exactly as given and returns the verified response body.
    ///
    /// `U` results and retryable failures are retried with the same body; the last answer is
    /// returned (a `U` result stays a result, for the caller to inquire about).
    pub async fn call_raw(&self, api: Api, body: Vec<u8>) -> Result<String, SdkError> {
        let path =
            if self.settings.sandbox_paths { api.path_for(&self.settings.client_id) } else { api.path() };
        let mut delay = self.settings.retry_delay;
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(&path, &body).await;
            let retry = match &outcome {
                Ok(text) => worth_retrying(text),
                Err(error) => error.is_retryable(),
            };
            if !retry || attempt >= self.settings.attempts_max {
                return outcome;
            }
            tracing::debug!(api = api.name(), attempt, "retrying with the same body");
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
            attempt += 1;
        }
    }

    async fn attempt(&self, path: &str, body: &[u8]) -> Result<String, SdkError> {
        let settings = &self.settings;
        let request_time = (settings.now)().as_millisecond().to_string();
        let content = content_to_sign("POST", path, &settings.client_id, &request_time, body);
        let signature = settings.signing_key.sign_header(settings.key_version, &content)?;
        let mut request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, header::CONTENT_TYPE_JSON)
            .header(header::CLIENT_ID, &settings.client_id)
            .header(header::REQUEST_TIME, &request_time)
            .header(header::SIGNATURE, signature)
            .body(body.to_vec());
        if let Some(token) = &settings.agent_token {
            request = request.header(header::AGENT_TOKEN, token);
        }
        let response = request.send().await.map_err(|error| SdkError::Transport(error_chain(&error)))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(|error| SdkError::Transport(error_chain(&error)))?;
        match self.verify(path, &headers, &text) {
            Ok(()) => Ok(text),
            // An unsigned error page (a proxy's 502, a timeout's 408) is a status, not a forgery.
            Err(_) if status != 200 && !headers.contains_key(header::SIGNATURE) => {
                Err(SdkError::HttpStatus { status })
            }
            Err(error) => Err(error),
        }
    }

    fn verify(&self, path: &str, headers: &reqwest::header::HeaderMap, body: &str) -> Result<(), SdkError> {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .ok_or_else(|| SdkError::ResponseSignature(format!("no {name} header")))
        };
        let signature = SignatureHeader::parse(get(header::SIGNATURE)?)
            .map_err(|error| SdkError::ResponseSignature(error.to_string()))?;
        // An answer for another client, even one the platform signed, is not an answer to us.
        let client_id = get(header::CLIENT_ID)?;
        if client_id != self.settings.client_id {
            return Err(SdkError::ResponseSignature(format!("the answer is for client {client_id:?}")));
        }
        let content = content_to_sign("POST", path, client_id, get(header::RESPONSE_TIME)?, body.as_bytes());
        let settings = &self.settings;
        let key = signature
            .key_version
            .and_then(|version| settings.platform_keys.iter().find(|(known, _)| *known == version))
            .map_or(&settings.platform_key, |(_, key)| key);
        key.verify(&content, &signature.signature)
            .map_err(|error| SdkError::ResponseSignature(error.to_string()))
    }
}

/// Whether an answer is a `U` that the same request may turn into a final one. An
/// `*_IN_PROCESS` answer is not: the request was accepted, and only an inquiry tells more.
fn worth_retrying(body: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Envelope {
        result: AmsResult,
    }
    let Ok(Envelope { result }) = serde_json::from_str::<Envelope>(body) else { return false };
    result.result_status == ResultStatus::U
        && !matches!(result.code(), Some(ResultCode::PAYMENT_IN_PROCESS | ResultCode::REFUND_IN_PROCESS))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
