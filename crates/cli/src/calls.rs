//! `ocpay pay | inquire | cancel | refund | inquire-refund | register | inquire-registration |
//! inquire-registration-info`: signed calls through `ocpay-sdk`, printing the verified
//! response. The exit code tells the result: 0 for `S`, 4 for `F`, 3 for `U` (1 when no verified
//! answer came, 2 for a command line that does not parse).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use ocpay_protocol::model::{Amount, Merchant, Order, Store};
use ocpay_protocol::payments::{CancelRequest, InquiryPaymentRequest, PayRequest};
use ocpay_protocol::refunds::{InquiryRefundRequest, RefundRequest};
use ocpay_protocol::registrations::{
    InquiryRegistrationInfoRequest, InquiryRegistrationStatusRequest, MerchantRegistrationInfo,
    PRODUCT_CODE_IN_STORE, RegistrationRequest, StoreRegistrationInfo,
};
use ocpay_protocol::{Api, SigningKey, VerifyingKey, datetime};
use ocpay_sdk::{Client, SdkError};
use serde::{Deserialize, Serialize};

/// A profile file: where the server is and who is calling. Relative key paths are read
/// relative to the profile's own directory. `ocpay participant create --generate-keys` writes one.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Profile {
    pub(crate) server_url: Option<String>,
    pub(crate) client_id: Option<String>,
    /// The participant's name: what `pay` calls the merchant and its store unless told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    pub(crate) private_key: Option<PathBuf>,
    pub(crate) platform_key: Option<PathBuf>,
    pub(crate) key_version: Option<u32>,
    /// An ISV's token from the merchant it acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) agent_token: Option<String>,
}

/// Who calls which server. Flags and `OCPAY_*` variables win over the profile file.
#[derive(clap::Args)]
pub(crate) struct ClientArgs {
    /// A profile file (TOML) with server_url, client_id, private_key, platform_key, key_version
    /// and, for an ISV, agent_token.
    #[arg(long, env = "OCPAY_PROFILE")]
    profile: Option<PathBuf>,
    #[arg(long, env = "OCPAY_SERVER_URL")]
    server_url: Option<String>,
    #[arg(long, env = "OCPAY_CLIENT_ID")]
    client_id: Option<String>,
    /// The private key file (PEM or base64, PKCS#8 or PKCS#1).
    #[arg(long, env = "OCPAY_PRIVATE_KEY")]
    private_key: Option<PathBuf>,
    /// The platform's public key file, to verify responses.
    #[arg(long, env = "OCPAY_PLATFORM_KEY")]
    platform_key: Option<PathBuf>,
    #[arg(long, env = "OCPAY_KEY_VERSION")]
    key_version: Option<u32>,
    /// An ISV acting for a merchant: the Agent-Token that merchant's grant issued.
    #[arg(long, env = "OCPAY_AGENT_TOKEN")]
    agent_token: Option<String>,
    /// Seconds allowed for each attempt.
    #[arg(long, default_value_t = 10)]
    timeout_seconds: u64,
    /// Attempts per call; `U` results and transport failures are retried with the same body,
    /// each shown on stderr. `--attempts 1` shows the first answer as it is (the sandbox's
    /// magic amounts).
    #[arg(long, default_value_t = 3)]
    attempts: u32,
}

fn read(path: &Path, base: &Path) -> anyhow::Result<String> {
    let path = if path.is_relative() { base.join(path) } else { path.to_owned() };
    std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
}

impl ClientArgs {
    /// The SDK client these arguments name, which tries each call once.
    pub(crate) fn sdk_client(&self) -> anyhow::Result<Client> {
        Ok(self.client()?.client)
    }

    pub(crate) fn client(&self) -> anyhow::Result<Caller> {
        let (profile, base) = match &self.profile {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
                let profile: Profile =
                    toml::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
                (profile, path.parent().unwrap_or(Path::new(".")).to_owned())
            }
            None => (Profile::default(), PathBuf::from(".")),
        };
        let missing = |what: &str| anyhow::anyhow!("no {what}: give --{what} or a --profile that has it");
        let server_url =
            self.server_url.clone().or(profile.server_url).ok_or_else(|| missing("server-url"))?;
        let client_id = self.client_id.clone().or(profile.client_id).ok_or_else(|| missing("client-id"))?;
        // A flag's path is relative to the working directory, a profile's to the profile.
        let private_key = match (&self.private_key, &profile.private_key) {
            (Some(path), _) => read(path, Path::new("."))?,
            (None, Some(path)) => read(path, &base)?,
            (None, None) => return Err(missing("private-key")),
        };
        let platform_key = match (&self.platform_key, &profile.platform_key) {
            (Some(path), _) => read(path, Path::new("."))?,
            (None, Some(path)) => read(path, &base)?,
            (None, None) => return Err(missing("platform-key")),
        };
        let signing_key = SigningKey::from_text(&private_key).context("parse the private key")?;
        let platform_key = VerifyingKey::from_text(&platform_key).context("parse the platform key")?;
        let mut builder = Client::builder(server_url, client_id, signing_key, platform_key)
            .key_version(self.key_version.or(profile.key_version).unwrap_or(1));
        if let Some(token) = self.agent_token.clone().or(profile.agent_token) {
            builder = builder.agent_token(token);
        }
        // The command retries by itself, to show each attempt (see `call`).
        let client = builder.timeout(Duration::from_secs(self.timeout_seconds)).attempts_max(1).build()?;
        let name = profile.name.unwrap_or_else(|| client.client_id().to_owned());
        Ok(Caller { client, name, attempts: self.attempts.max(1), again: String::new() })
    }
}

/// A client, and how many attempts each call may take.
pub(crate) struct Caller {
    pub(crate) client: Client,
    /// The participant's name, from its profile (or its client id).
    pub(crate) name: String,
    attempts: u32,
    /// What running the command again must keep, for an unknown outcome: the request id.
    again: String,
}

impl Caller {
    /// Says which flag makes running the command again the same request.
    fn again_with(mut self, flag: &str, request_id: &str) -> Caller {
        self.again = format!(" with {flag} {request_id}");
        self
    }
}

#[derive(clap::Args)]
pub(crate) struct PayArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Amount in minor units (cents for USD): 1250 is USD 12.50.
    #[arg(long)]
    amount: i64,
    /// ISO 4217 currency code.
    #[arg(long)]
    currency: String,
    /// The idempotency key [default: a new one].
    #[arg(long)]
    payment_request_id: Option<String>,
    /// The order's description [default: "Order at <the participant's name>"].
    #[arg(long)]
    description: Option<String>,
    #[arg(long)]
    reference_order_id: Option<String>,
    #[arg(long, default_value = MERCHANT_ID)]
    merchant_id: String,
    /// The merchant's name the payer sees [default: the participant's name, from its profile].
    #[arg(long)]
    merchant_name: Option<String>,
    #[arg(long, default_value = MCC)]
    mcc: String,
    #[arg(long, default_value = STORE_ID)]
    store_id: String,
    /// The store's name the payer sees [default: the participant's name].
    #[arg(long)]
    store_name: Option<String>,
    /// Where the payment's notification goes [default: the participant's notify URL].
    #[arg(long)]
    notify_url: Option<String>,
    /// How long the code stays payable: 90s, 10m ... [default: the server's default].
    #[arg(long, value_parser = crate::participant::parse_duration)]
    expires_in: Option<jiff::SignedDuration>,
    /// Print only the order code's URL (the `TEXT` codeValue) instead of the response, for
    /// `code=$(ocpay pay ... --code-only)`; a response without one is printed whole.
    #[arg(long)]
    code_only: bool,
}

#[derive(clap::Args)]
#[group(id = "payment", required = true, multiple = true)]
pub(crate) struct PaymentRefArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[arg(long, group = "payment")]
    payment_id: Option<String>,
    #[arg(long, group = "payment")]
    payment_request_id: Option<String>,
}

#[derive(clap::Args)]
#[group(id = "payment", required = true, multiple = false)]
pub(crate) struct RefundArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The payment to refund.
    #[arg(long, group = "payment")]
    payment_id: Option<String>,
    /// The payment to refund, by its paymentRequestId: the command inquires its paymentId first.
    #[arg(long, group = "payment")]
    payment_request_id: Option<String>,
    /// Amount in minor units of the payment's currency: 500 is USD 5.00.
    #[arg(long)]
    amount: i64,
    /// ISO 4217 code of the payment's currency.
    #[arg(long)]
    currency: String,
    /// The idempotency key [default: a new one].
    #[arg(long)]
    refund_request_id: Option<String>,
    /// The merchant's own reference of the refund.
    #[arg(long)]
    reference_refund_id: Option<String>,
    #[arg(long)]
    reason: Option<String>,
    /// Where `notifyRefund` goes; no notification without it.
    #[arg(long)]
    notify_url: Option<String>,
    /// Ask for an asynchronous refund: answered `U / REFUND_IN_PROCESS`, completed later.
    #[arg(long = "async")]
    asynchronous: bool,
}

/// An acquirer registers a secondary merchant's store for in-store payments.
#[derive(clap::Args)]
pub(crate) struct RegisterArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The secondary merchant's id (`referenceMerchantId`).
    #[arg(long)]
    merchant_id: String,
    #[arg(long)]
    merchant_name: Option<String>,
    #[arg(long)]
    merchant_mcc: Option<String>,
    /// The store's id (`referenceStoreId`, at most 32 characters).
    #[arg(long)]
    store_id: String,
    #[arg(long)]
    store_name: String,
    #[arg(long)]
    store_mcc: Option<String>,
    /// The idempotency key [default: a new one].
    #[arg(long)]
    registration_request_id: Option<String>,
    /// Where `notifyRegistrationStatus` goes; no notification without it.
    #[arg(long)]
    notify_url: Option<String>,
}

/// An acquirer reads where a registration stands (`inquiryRegistrationStatus`).
#[derive(clap::Args)]
#[group(id = "registration", required = true, multiple = true)]
pub(crate) struct RegistrationStatusArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The registration's idempotency key.
    #[arg(long, group = "registration")]
    registration_request_id: Option<String>,
    /// The secondary merchant (`referenceMerchantId`): its newest registration.
    #[arg(long, group = "registration")]
    merchant_id: Option<String>,
    /// The store (`referenceStoreId`), with --merchant-id.
    #[arg(long, requires = "merchant_id")]
    store_id: Option<String>,
}

/// An acquirer reads what it registered for a merchant (`inquiryRegistrationInfo`).
#[derive(clap::Args)]
pub(crate) struct RegistrationInfoArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The secondary merchant (`referenceMerchantId`).
    #[arg(long)]
    merchant_id: String,
    /// The store (`referenceStoreId`).
    #[arg(long)]
    store_id: Option<String>,
}

#[derive(clap::Args)]
#[group(id = "refund", required = true, multiple = true)]
pub(crate) struct RefundRefArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[arg(long, group = "refund")]
    refund_id: Option<String>,
    #[arg(long, group = "refund")]
    refund_request_id: Option<String>,
}

/// A fresh idempotency key for a call made from the command line.
pub(crate) fn new_request_id() -> String {
    format!("cli-{}", jiff::Timestamp::now().as_microsecond())
}

pub(crate) async fn pay(args: PayArgs) -> anyhow::Result<ExitCode> {
    let caller = args.client.client()?;
    let request_id = args.payment_request_id.unwrap_or_else(new_request_id);
    let caller = caller.again_with("--payment-request-id", &request_id);
    let seller = Seller {
        merchant_id: args.merchant_id,
        merchant_name: args.merchant_name.unwrap_or_else(|| caller.name.clone()),
        mcc: args.mcc,
        store_id: args.store_id,
        store_name: args.store_name.unwrap_or_else(|| caller.name.clone()),
    };
    let description = args.description.unwrap_or_else(|| format!("Order at {}", caller.name));
    let amount = Amount::new(&args.currency, args.amount);
    let mut request = order_code_request(request_id, amount, description, args.reference_order_id, seller);
    request.payment_notify_url = args.notify_url;
    request.payment_expiry_time =
        args.expires_in.map(|duration| datetime::format(jiff::Timestamp::now() + duration));
    let response = call_verified(&caller, Api::Pay, &request).await?;
    let code = text_code(&response);
    match code {
        Some(code) if args.code_only => crate::print_stdout(&format!("{code}\n"))?,
        _ => crate::print_json(&response)?,
    }
    if let Some(code) = code {
        eprintln!("pay the order code as a payer would: ocpay wallet pay {code}");
    }
    Ok(exit_code(&response))
}

/// The merchant, category and store a `pay` names unless told.
const MERCHANT_ID: &str = "M0001";
const MCC: &str = "5812";
const STORE_ID: &str = "S0001";

/// Who sells an order-code payment's order, and in which store.
pub(crate) struct Seller {
    pub(crate) merchant_id: String,
    pub(crate) merchant_name: String,
    pub(crate) mcc: String,
    pub(crate) store_id: String,
    pub(crate) store_name: String,
}

impl Seller {
    /// The participant itself, in its one store: what `ocpay pay` assumes unless told.
    pub(crate) fn named(name: &str) -> Seller {
        Seller {
            merchant_id: MERCHANT_ID.to_owned(),
            merchant_name: name.to_owned(),
            mcc: MCC.to_owned(),
            store_id: STORE_ID.to_owned(),
            store_name: name.to_owned(),
        }
    }
}

/// An order-code `pay` of `amount` for `seller`'s order.
pub(crate) fn order_code_request(
    request_id: String,
    amount: Amount,
    description: String,
    reference_order_id: Option<String>,
    seller: Seller,
) -> PayRequest {
    let order = Order {
        reference_order_id,
        order_description: Some(description),
        order_amount: Some(amount.clone()),
        merchant: Some(Merchant {
            reference_merchant_id: Some(seller.merchant_id),
            merchant_mcc: Some(seller.mcc.clone()),
            merchant_name: Some(seller.merchant_name),
            merchant_display_name: None,
            store: Some(Store {
                reference_store_id: Some(seller.store_id),
                store_name: Some(seller.store_name),
                store_mcc: Some(seller.mcc),
            }),
        }),
    };
    PayRequest::order_code(request_id, amount, order)
}

/// The URL of a pay response's order code: the `TEXT` entry of `orderCodeForm.codeDetails`.
pub(crate) fn text_code(response: &serde_json::Value) -> Option<&str> {
    response["orderCodeForm"]["codeDetails"]
        .as_array()?
        .iter()
        .find(|detail| detail["displayType"] == "TEXT")?["codeValue"]
        .as_str()
}

pub(crate) async fn inquire(args: PaymentRefArgs) -> anyhow::Result<ExitCode> {
    let caller = args.client.client()?;
    let request =
        InquiryPaymentRequest { payment_id: args.payment_id, payment_request_id: args.payment_request_id };
    call(&caller, Api::InquiryPayment, &request).await
}

pub(crate) async fn cancel(args: PaymentRefArgs) -> anyhow::Result<ExitCode> {
    let caller = args.client.client()?;
    let request = CancelRequest { payment_id: args.payment_id, payment_request_id: args.payment_request_id };
    call(&caller, Api::Cancel, &request).await
}

pub(crate) async fn refund(args: RefundArgs) -> anyhow::Result<ExitCode> {
    let request_id = args.refund_request_id.unwrap_or_else(new_request_id);
    let caller = args.client.client()?.again_with("--refund-request-id", &request_id);
    let payment_id = match (args.payment_id, args.payment_request_id) {
        (Some(payment_id), _) => payment_id,
        (None, payment_request_id) => {
            let inquiry = InquiryPaymentRequest { payment_id: None, payment_request_id };
            let found = call_verified(&caller, Api::InquiryPayment, &inquiry).await?;
            match found["paymentId"].as_str() {
                Some(payment_id) if found["result"]["resultStatus"] == "S" => payment_id.to_owned(),
                // No such payment, or no answer yet: the inquiry's answer says why.
                _ => {
                    crate::print_json(&found)?;
                    return Ok(exit_code(&found));
                }
            }
        }
    };
    let request = RefundRequest {
        refund_request_id: Some(request_id),
        payment_id: Some(payment_id),
        reference_refund_id: args.reference_refund_id,
        refund_amount: Some(Amount::new(&args.currency, args.amount)),
        refund_reason: args.reason,
        is_async_refund: args.asynchronous.then_some(true),
        refund_notify_url: args.notify_url,
        ..RefundRequest::default()
    };
    call(&caller, Api::Refund, &request).await
}

pub(crate) async fn inquire_refund(args: RefundRefArgs) -> anyhow::Result<ExitCode> {
    let caller = args.client.client()?;
    let request = InquiryRefundRequest {
        refund_id: args.refund_id,
        refund_request_id: args.refund_request_id,
        merchant_account_id: None,
    };
    call(&caller, Api::InquiryRefund, &request).await
}

pub(crate) async fn register(args: RegisterArgs) -> anyhow::Result<ExitCode> {
    let request_id = args.registration_request_id.unwrap_or_else(new_request_id);
    let caller = args.client.client()?.again_with("--registration-request-id", &request_id);
    let request = RegistrationRequest {
        registration_request_id: Some(request_id),
        registration_notify_url: args.notify_url,
        merchant_info: Some(MerchantRegistrationInfo {
            reference_merchant_id: Some(args.merchant_id),
            merchant_display_name: args.merchant_name,
            merchant_mcc: args.merchant_mcc,
            ..MerchantRegistrationInfo::default()
        }),
        product_codes: Some(vec![PRODUCT_CODE_IN_STORE.into()]),
        store_info: Some(StoreRegistrationInfo {
            reference_store_id: Some(args.store_id),
            store_name: Some(args.store_name),
            store_mcc: args.store_mcc,
            store_address: None,
        }),
        pass_through_info: None,
    };
    call(&caller, Api::Registration, &request).await
}

pub(crate) async fn inquire_registration(args: RegistrationStatusArgs) -> anyhow::Result<ExitCode> {
    let caller = args.client.client()?;
    let request = InquiryRegistrationStatusRequest {
        reference_merchant_id: args.merchant_id,
        registration_request_id: args.registration_request_id,
        reference_store_id: args.store_id,
    };
    call(&caller, Api::InquiryRegistrationStatus, &request).await
}

pub(crate) async fn inquire_registration_info(args: RegistrationInfoArgs) -> anyhow::Result<ExitCode> {
    let caller = args.client.client()?;
    let request = InquiryRegistrationInfoRequest {
        reference_merchant_id: Some(args.merchant_id),
        reference_store_id: args.store_id,
    };
    call(&caller, Api::InquiryRegistrationInfo, &request).await
}

/// The pause before the second attempt; it doubles for each further one (as the SDK's).
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// Calls the API, prints the verified response, and turns its result status into an exit code.
async fn call<Req: Serialize>(caller: &Caller, api: Api, request: &Req) -> anyhow::Result<ExitCode> {
    let response = call_verified(caller, api, request).await?;
    crate::print_json(&response)?;
    Ok(exit_code(&response))
}

/// 0 for an `S` result, [`crate::EXIT_F`] for `F`, [`crate::EXIT_U`] for `U`.
fn exit_code(response: &serde_json::Value) -> ExitCode {
    match response["result"]["resultStatus"].as_str().unwrap_or_default() {
        "S" => ExitCode::SUCCESS,
        "F" => ExitCode::from(crate::EXIT_F),
        _ => ExitCode::from(crate::EXIT_U),
    }
}

/// Calls the API and returns the verified response. A `U` result or a transport failure is retried with the same body up to the caller's
/// attempts, as the SDK does, but each `U` and each retry is shown on stderr (one line each), so
/// that a `U` the retries hide (the sandbox's magic amounts) is still seen.
pub(crate) async fn call_verified<Req: Serialize>(
    caller: &Caller,
    api: Api,
    request: &Req,
) -> anyhow::Result<serde_json::Value> {
    let attempts = caller.attempts;
    let mut delay = RETRY_DELAY;
    let mut attempt = 1;
    let verified = loop {
        let outcome = caller.client.call::<_, serde_json::Value>(api, request).await;
        let (shown, retryable) = match &outcome {
            Ok(verified) => unknown_result(&verified.response),
            Err(error) => (Some(error.to_string()), transport_failure(error)),
        };
        let last = !retryable || attempt >= attempts;
        if let Some(shown) = shown {
            let next = if last {
                String::new()
            } else {
                format!("; retrying the same request in {} ms", delay.as_millis())
            };
            let ending = if last && outcome.is_ok() && retryable {
                format!("; the outcome is unknown: run the command again{}, or inquire", caller.again)
            } else {
                String::new()
            };
            eprintln!("{}: attempt {attempt} of {attempts}: {shown}{next}{ending}", api.name());
        }
        if last {
            break outcome?;
        }
        tokio::time::sleep(delay).await;
        delay = delay.saturating_mul(2);
        attempt += 1;
    };
    Ok(verified.response)
}

/// A `U` answer as a line to show, and whether the same request may turn it into a final one
/// (an `*_IN_PROCESS` answer may not: the request was accepted, and only an inquiry tells more).
fn unknown_result(response: &serde_json::Value) -> (Option<String>, bool) {
    let result = &response["result"];
    if result["resultStatus"] != "U" {
        return (None, false);
    }
    let code = result["resultCode"].as_str().unwrap_or_default();
    let message = result["resultMessage"].as_str().unwrap_or_default();
    let retryable = !code.ends_with("_IN_PROCESS");
    (Some(format!("U / {code} ({message})")), retryable)
}

/// Whether a call that got no verified answer may be tried again with the same body.
fn transport_failure(error: &SdkError) -> bool {
    match error {
        SdkError::Transport(_) => true,
        SdkError::HttpStatus { status } => *status == 408 || *status == 429 || *status >= 500,
        _ => false,
    }
}
