//! `ocpay trigger SCENARIO --profile FILE` and `ocpay trigger --list`: a whole sandbox scenario
//! run against the participant's own integration, as Stripe's CLI triggers events. Each
//! scenario goes through the public APIs (signed with the profile's key, through the same calls
//! as `ocpay pay` and the others) and the payer page's JSON API, as a payer's browser would, so
//! that the participant's notify URL gets the real notifications; nothing reaches behind them.
//!
//! Each step is a line on stderr; stdout gets one JSON summary. The exit code is 0 when the
//! scenario ended as its name says, [`crate::EXIT_F`] when a step answered otherwise, and
//! [`crate::EXIT_U`] when an outcome did not come within `--wait` (1 when no verified answer
//! came, as for the other API commands).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use jiff::SignedDuration;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::Environment;
use ocpay_core::payer::SandboxOutcome;
use ocpay_core::registration::SANDBOX_REJECT_PREFIX;
use ocpay_protocol::model::Amount;
use ocpay_protocol::payments::{InquiryPaymentRequest, InquiryPaymentResponse, PayResponse};
use ocpay_protocol::refunds::{InquiryRefundRequest, InquiryRefundResponse, RefundRequest, RefundResponse};
use ocpay_protocol::registrations::{
    InquiryRegistrationStatusRequest, InquiryRegistrationStatusResponse, MerchantRegistrationInfo,
    PRODUCT_CODE_IN_STORE, RegistrationRequest, RegistrationResponse, StoreRegistrationInfo,
};
use ocpay_protocol::{ApiRequest, datetime};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::calls::{
    Caller, ClientArgs, Seller, call_verified, new_request_id, order_code_request, text_code,
};
use crate::participant::parse_duration;
use crate::wallet::{order_of_code, pay_code};

/// Every scenario, with what it does.
const SCENARIOS: &[(&str, &str)] = &[
    ("payment.succeeded", "pay, the sandbox payer pays the code, your notify URL gets notifyPayment SUCCESS"),
    (
        "payment.failed",
        "pay, the sandbox payer fails it (--failure), your notify URL gets notifyPayment FAIL",
    ),
    ("payment.expired", "pay with a short paymentExpiryTime (--expires-in), nobody pays, the code closes"),
    (
        "refund.succeeded",
        "a paid payment refunded in full, at once; your notify URL gets notifyRefund SUCCESS",
    ),
    (
        "refund.failed",
        "a paid payment refunded with the magic amount 9902: accepted (REFUND_IN_PROCESS), it fails later",
    ),
    ("registration.approved", "an acquirer registers a store; the sandbox's review approves it"),
    (
        "registration.rejected",
        "an acquirer registers a store whose referenceMerchantId starts with REJECT; the review rejects it",
    ),
];

/// The sandbox's refund amount that is accepted and fails later.
const REFUND_FAILS_LATER: i64 = 9902;
/// refund.failed's payment unless `--amount` says otherwise: enough to refund 9902 of.
const REFUND_FAILED_PAYMENT: i64 = 20_000;

#[derive(clap::Args)]
pub(crate) struct TriggerArgs {
    /// The scenario to run (`--list` names them all).
    #[arg(required_unless_present = "list", value_parser = scenario_name)]
    scenario: Option<&'static str>,
    /// Print the scenarios, one JSON object each, and exit.
    #[arg(long, conflicts_with = "scenario")]
    list: bool,
    #[command(flatten)]
    client: ClientArgs,
    /// The payment's amount in minor units [default: 1250; refund.failed: 20000, to hold the 9902
    /// refund].
    #[arg(long)]
    amount: Option<i64>,
    /// The payment's currency (ISO 4217).
    #[arg(long, default_value = "USD")]
    currency: String,
    /// payment.failed: the sandbox payer's failure (USER_BALANCE_NOT_ENOUGH, RISK_REJECT or
    /// USER_KYC_NOT_QUALIFIED).
    #[arg(long, default_value = "USER_BALANCE_NOT_ENOUGH", value_parser = failure)]
    failure: SandboxOutcome,
    /// payment.expired: how long the code stays payable (whole seconds: 5s, 1m ...).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    expires_in: SignedDuration,
    /// The longest wait for an outcome the platform decides later (a payment's state, an
    /// asynchronous refund, a sandbox review): 90s, 5m ...
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    wait: SignedDuration,
    /// Where the scenario's notifications go: `paymentNotifyUrl`, `refundNotifyUrl` and
    /// `registrationNotifyURL` [default: payments notify your participant's default notify URL;
    /// refunds and registrations, which have no default, notify nobody].
    #[arg(long)]
    notify_url: Option<String>,
    /// How often to inquire while waiting.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    poll_every: SignedDuration,
}

/// One of the sandbox payer's failures, in any letter case.
fn failure(text: &str) -> Result<SandboxOutcome, String> {
    match SandboxOutcome::parse(&text.to_ascii_uppercase()) {
        Some(outcome @ SandboxOutcome::Fail(_)) => Ok(outcome),
        _ => {
            let failures: Vec<&str> = SandboxOutcome::ALL
                .into_iter()
                .filter(|outcome| *outcome != SandboxOutcome::Pay)
                .map(SandboxOutcome::as_str)
                .collect();
            Err(format!("not a sandbox payer's failure; the failures are {}", failures.join(", ")))
        }
    }
}

fn scenario_name(text: &str) -> Result<&'static str, String> {
    SCENARIOS.iter().map(|(name, _)| *name).find(|name| *name == text).ok_or_else(|| {
        let names: Vec<&str> = SCENARIOS.iter().map(|(name, _)| *name).collect();
        format!("no such scenario; the scenarios are {} (ocpay trigger --list)", names.join(", "))
    })
}

pub(crate) async fn run(args: TriggerArgs) -> anyhow::Result<ExitCode> {
    let Some(scenario) = args.scenario else {
        let list: Vec<Value> =
            SCENARIOS.iter().map(|(name, does)| json!({ "scenario": name, "does": does })).collect();
        crate::print_json(&json!({ "scenarios": list }))?;
        return Ok(ExitCode::SUCCESS);
    };
    let caller = args.client.client()?;
    let client_id = caller.client.client_id().to_owned();
    let parsed =
        ClientId::parse(&client_id).map_err(|error| anyhow::anyhow!("client id {client_id}: {error}"))?;
    if Environment::of_client_id(&parsed) != Environment::Sandbox {
        anyhow::bail!(
            "{client_id} is a live client id: ocpay trigger runs sandbox scenarios only, which would move real money \
             in live; give a sandbox profile (its client id starts with SANDBOX_)"
        );
    }
    let poll = Duration::try_from(args.poll_every).context("--poll-every must be positive")?;
    let wait = Duration::try_from(args.wait).context("--wait must be positive")?;
    let notify_url = args.notify_url.clone();
    let mut run = Run { caller: &caller, steps: Vec::new(), poll, wait, notify_url };
    eprintln!("{scenario} as {client_id}");
    let outcome = match scenario {
        "payment.succeeded" => run.paid(&args, args.amount.unwrap_or(DEFAULT_AMOUNT)).await?.map(|_| ()),
        "payment.failed" => run.payment_failed(&args).await?,
        "payment.expired" => run.payment_expired(&args).await?,
        "refund.succeeded" => run.refund_succeeded(&args).await?,
        "refund.failed" => run.refund_failed(&args).await?,
        "registration.approved" => run.registration(false).await?,
        _ => run.registration(true).await?,
    };
    let (outcome, code) = match outcome {
        Ok(()) => ("PASSED", ExitCode::SUCCESS),
        Err(Stop::Unexpected) => ("UNEXPECTED", ExitCode::from(crate::EXIT_F)),
        Err(Stop::TimedOut) => ("TIMED_OUT", ExitCode::from(crate::EXIT_U)),
    };
    eprintln!("{scenario}: {outcome}");
    crate::print_json(&json!({
        "scenario": scenario,
        "clientId": client_id,
        "outcome": outcome,
        "steps": run.steps,
    }))?;
    Ok(code)
}

/// The amount of a scenario's payment unless `--amount` says otherwise: USD 12.50.
const DEFAULT_AMOUNT: i64 = 1250;

/// How many inquiries a wait took, in words.
fn inquiries_said(count: u32) -> String {
    if count == 1 { "1 inquiry".to_owned() } else { format!("{count} inquiries") }
}

/// A result as a line says it: `S / SUCCESS`.
fn said(result: &ocpay_protocol::AmsResult) -> String {
    format!("{} / {}", result.result_status.as_str(), result.result_code)
}

/// Why a scenario stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// A step answered other than the scenario expects.
    Unexpected,
    /// An outcome did not come within `--wait`.
    TimedOut,
}

/// A step's outcome: its value, or why the scenario stops.
type Step<T> = anyhow::Result<Result<T, Stop>>;

/// A scenario as it runs: its caller, the steps done, and its time limits.
struct Run<'a> {
    caller: &'a Caller,
    steps: Vec<Value>,
    poll: Duration,
    wait: Duration,
    /// `--notify-url`.
    notify_url: Option<String>,
}

/// A paid (or payable) payment of a scenario: its id and amount, and its code's URL.
struct Payment {
    id: String,
    amount: Amount,
    code: String,
    /// Its `paymentExpiryTime`, when the scenario set one.
    expires: Option<jiff::Timestamp>,
}

impl Run<'_> {
    /// Says where a notification of `kind` went, as a step.
    fn notified(&mut self, kind: &str, status: &str, default_url: bool) {
        let line = match (&self.notify_url, default_url) {
            (Some(url), _) => format!("{kind} {status} is sent to {url} (ocpay listen shows what arrives)"),
            (None, true) => format!(
                "{kind} {status} is sent to your default notify URL (ocpay listen shows what arrives)"
            ),
            (None, false) => {
                format!("{kind} {status}: nothing is sent without --notify-url (there is no default)")
            }
        };
        self.step("notification", true, line, Value::Null);
    }

    /// Records a step: a line on stderr and an entry of the summary.
    fn step(&mut self, name: &str, ok: bool, line: String, answer: Value) {
        eprintln!("  {} {name}: {line}", if ok { "ok " } else { "!! " });
        self.steps.push(json!({ "step": name, "ok": ok, "said": line, "answer": answer }));
    }

    /// Adds the request the last step sent to its entry of the summary.
    fn sent(&mut self, request: &impl serde::Serialize) {
        if let (Some(step), Ok(request)) = (self.steps.last_mut(), serde_json::to_value(request)) {
            step["request"] = request;
        }
    }

    /// Calls an API through the CLI's verified call and reads its typed answer.
    async fn call<Req: ApiRequest>(&self, request: &Req) -> anyhow::Result<(Req::Response, Value)> {
        let value = call_verified(self.caller, Req::API, request).await?;
        let typed = serde_json::from_value(value.clone()).with_context(|| {
            format!("{}: the answer is not a {} response", Req::API.name(), Req::API.name())
        })?;
        Ok((typed, value))
    }

    /// Inquires `request` every `--poll-every` until `done` says the answer is final, or
    /// `--wait` has passed; the last answer, and whether it was final.
    async fn wait_for<Req: ApiRequest>(
        &mut self,
        name: &str,
        request: &Req,
        done: impl Fn(&Req::Response) -> Option<String>,
    ) -> Step<Req::Response>
    where
        Req::Response: DeserializeOwned,
    {
        let started = std::time::Instant::now();
        let mut inquiries = 0u32;
        loop {
            let (answer, value) = self.call(request).await?;
            inquiries += 1;
            if let Some(line) = done(&answer) {
                self.step(name, true, format!("{line} ({})", inquiries_said(inquiries)), value);
                return Ok(Ok(answer));
            }
            if started.elapsed() >= self.wait {
                let line =
                    format!("no outcome within {} s ({})", self.wait.as_secs(), inquiries_said(inquiries));
                self.step(name, false, line, value);
                return Ok(Err(Stop::TimedOut));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// `pay` for an order code of `amount`, expiring at `expires` when given.
    async fn pay(
        &mut self,
        args: &TriggerArgs,
        amount: i64,
        expires_in: Option<SignedDuration>,
    ) -> Step<Payment> {
        let seller = Seller::named(&self.caller.name);
        let (merchant_id, store_id) = (seller.merchant_id.clone(), seller.store_id.clone());
        let mut registered = false;
        loop {
            let seller = Seller::named(&self.caller.name);
            let amount = Amount::new(&args.currency, amount);
            let description = format!("ocpay trigger at {}", self.caller.name);
            let mut request = order_code_request(new_request_id(), amount.clone(), description, None, seller);
            let expires = expires_in.map(|duration| jiff::Timestamp::now() + duration);
            request.payment_expiry_time = expires.map(datetime::format);
            request.payment_notify_url = self.notify_url.clone();
            let (answer, value): (PayResponse, Value) = self.call(&request).await?;
            let code = text_code(&value).map(str::to_owned);
            match (answer.result.is_success(), answer.payment_id, code) {
                (true, Some(id), Some(code)) => {
                    let line = format!("S / SUCCESS: paymentId {id}, order code {code}");
                    self.step("pay", true, line, value);
                    self.sent(&request);
                    return Ok(Ok(Payment { id, amount, code, expires }));
                }
                // An acquirer pays for a store it registered: register it, once, and pay again.
                _ if answer.result.result_code == "MERCHANT_NOT_REGISTERED" && !registered => {
                    let line = format!(
                        "{}: an acquirer pays for a store it registered; registering {merchant_id}'s store {store_id} first",
                        said(&answer.result)
                    );
                    self.step("pay", true, line, value);
                    self.sent(&request);
                    if let Err(stop) = self.register(&merchant_id, &store_id, "APPROVED").await? {
                        return Ok(Err(stop));
                    }
                    registered = true;
                }
                _ => {
                    self.step("pay", false, said(&answer.result), value);
                    self.sent(&request);
                    return Ok(Err(Stop::Unexpected));
                }
            }
        }
    }

    /// The sandbox payer opens the code's page and pays it, or fails it with `outcome`.
    async fn payer(&mut self, payment: &Payment, outcome: SandboxOutcome) -> Step<()> {
        let outcome = outcome.as_str();
        let order = order_of_code(&payment.code).await?;
        let shown = order["status"].as_str().unwrap_or_default().to_owned();
        self.step("payer opens the code", shown == "PROCESSING", format!("the page shows it {shown}"), order);
        let mut body = serde_json::Map::new();
        body.insert("outcome".into(), outcome.into());
        let answer = pay_code(&payment.code, &body).await?;
        let status = answer["status"].as_str().unwrap_or_default().to_owned();
        let expected = if outcome == "SUCCESS" { "SUCCESS" } else { "FAIL" };
        let line = match answer["resultCode"].as_str() {
            Some(code) => format!("{status} ({code})"),
            None => status.clone(),
        };
        let ok = status == expected;
        self.step(&format!("payer answers {outcome}"), ok, line, answer);
        Ok(if ok { Ok(()) } else { Err(Stop::Unexpected) })
    }

    /// Waits until an inquiry of the payment shows `status`.
    async fn payment_becomes(
        &mut self,
        payment: &Payment,
        status: &'static str,
    ) -> Step<InquiryPaymentResponse> {
        let request =
            InquiryPaymentRequest { payment_id: Some(payment.id.clone()), payment_request_id: None };
        let answer = self
            .wait_for(
                &format!("inquiryPayment until {status}"),
                &request,
                |answer: &InquiryPaymentResponse| {
                    (answer.payment_status.as_deref() == Some(status)).then(|| {
                        match answer.payment_result_code.as_deref() {
                            Some(code) if code != status => format!("paymentStatus {status} ({code})"),
                            _ => format!("paymentStatus {status}"),
                        }
                    })
                },
            )
            .await?;
        if answer.is_ok() {
            self.notified("notifyPayment", status, true);
        }
        Ok(answer)
    }

    /// payment.succeeded, and the start of the refund scenarios: a payment paid by the
    /// sandbox payer, its success seen by inquiry.
    async fn paid(&mut self, args: &TriggerArgs, amount: i64) -> Step<Payment> {
        let payment = match self.pay(args, amount, None).await? {
            Ok(payment) => payment,
            Err(stop) => return Ok(Err(stop)),
        };
        if let Err(stop) = self.payer(&payment, SandboxOutcome::Pay).await? {
            return Ok(Err(stop));
        }
        Ok(self.payment_becomes(&payment, "SUCCESS").await?.map(|_| payment))
    }

    async fn payment_failed(&mut self, args: &TriggerArgs) -> Step<()> {
        let payment = match self.pay(args, args.amount.unwrap_or(DEFAULT_AMOUNT), None).await? {
            Ok(payment) => payment,
            Err(stop) => return Ok(Err(stop)),
        };
        if let Err(stop) = self.payer(&payment, args.failure).await? {
            return Ok(Err(stop));
        }
        Ok(self.payment_becomes(&payment, "FAIL").await?.map(|_| ()))
    }

    async fn payment_expired(&mut self, args: &TriggerArgs) -> Step<()> {
        let amount = args.amount.unwrap_or(DEFAULT_AMOUNT);
        let payment = match self.pay(args, amount, Some(args.expires_in)).await? {
            Ok(payment) => payment,
            Err(stop) => return Ok(Err(stop)),
        };
        let expires = payment.expires.context("the payment was made without a paymentExpiryTime")?;
        let left = expires.duration_since(jiff::Timestamp::now());
        let line = format!(
            "the code is payable until {} ({} s); nobody pays it",
            datetime::format(expires),
            left.as_secs()
        );
        self.step("wait for the expiry", true, line, Value::Null);
        if let Ok(left) = Duration::try_from(left) {
            tokio::time::sleep(left).await;
        }
        let closed = self.payment_becomes(&payment, "FAIL").await?;
        if closed.is_err() {
            return Ok(closed.map(|_| ()));
        }
        // Too late for a payer now: the page says so.
        let order = order_of_code(&payment.code).await?;
        let shown = order["status"].as_str().unwrap_or_default().to_owned();
        let ok = shown != "PROCESSING" && shown != "SUCCESS";
        self.step("payer opens the code", ok, format!("the page shows it {shown}"), order);
        Ok(if ok { Ok(()) } else { Err(Stop::Unexpected) })
    }

    /// Refunds `amount` of a paid payment; the refund's answer.
    async fn refund(
        &mut self,
        payment: &Payment,
        amount: i64,
    ) -> anyhow::Result<(RefundRequest, RefundResponse)> {
        let currency = payment.amount.currency.clone().unwrap_or_default();
        let request = RefundRequest {
            refund_request_id: Some(new_request_id()),
            payment_id: Some(payment.id.clone()),
            refund_amount: Some(Amount::new(currency, amount)),
            refund_reason: Some("ocpay trigger".to_owned()),
            refund_notify_url: self.notify_url.clone(),
            ..RefundRequest::default()
        };
        let (answer, value) = self.call(&request).await?;
        let result = &answer.result;
        let line = format!("{} for {amount}", said(result));
        let expected = if amount == REFUND_FAILS_LATER { "REFUND_IN_PROCESS" } else { "SUCCESS" };
        self.step("refund", result.result_code == expected, line, value);
        self.sent(&request);
        Ok((request, answer))
    }

    /// Waits until an inquiry of the refund shows `status`.
    async fn refund_becomes(&mut self, request: &RefundRequest, status: &'static str) -> Step<()> {
        let inquiry = InquiryRefundRequest {
            refund_id: None,
            refund_request_id: request.refund_request_id.clone(),
            merchant_account_id: None,
        };
        let answer = self
            .wait_for(&format!("inquiryRefund until {status}"), &inquiry, |answer: &InquiryRefundResponse| {
                (answer.refund_status.as_deref() == Some(status)).then(|| format!("refundStatus {status}"))
            })
            .await?;
        if answer.is_ok() {
            self.notified("notifyRefund", status, false);
        }
        Ok(answer.map(|_| ()))
    }

    async fn refund_succeeded(&mut self, args: &TriggerArgs) -> Step<()> {
        let payment = match self.paid(args, args.amount.unwrap_or(DEFAULT_AMOUNT)).await? {
            Ok(payment) => payment,
            Err(stop) => return Ok(Err(stop)),
        };
        let whole: i64 = payment.amount.value.as_deref().unwrap_or_default().parse().unwrap_or_default();
        let (request, answer) = self.refund(&payment, whole).await?;
        if !answer.result.is_success() {
            return Ok(Err(Stop::Unexpected));
        }
        self.refund_becomes(&request, "SUCCESS").await
    }

    async fn refund_failed(&mut self, args: &TriggerArgs) -> Step<()> {
        let amount = args.amount.unwrap_or(REFUND_FAILED_PAYMENT);
        if amount < REFUND_FAILS_LATER {
            anyhow::bail!(
                "--amount: refund.failed refunds {REFUND_FAILS_LATER}, so the payment must be at least that"
            );
        }
        let payment = match self.paid(args, amount).await? {
            Ok(payment) => payment,
            Err(stop) => return Ok(Err(stop)),
        };
        let (request, answer) = self.refund(&payment, REFUND_FAILS_LATER).await?;
        if answer.result.result_code != "REFUND_IN_PROCESS" {
            return Ok(Err(Stop::Unexpected));
        }
        self.refund_becomes(&request, "FAIL").await
    }

    /// registration.approved or (`reject`) registration.rejected: a new merchant's store.
    async fn registration(&mut self, reject: bool) -> Step<()> {
        let id = new_request_id();
        let merchant_id = if reject { format!("{SANDBOX_REJECT_PREFIX}-{id}") } else { format!("M-{id}") };
        let status = if reject { "REJECTED" } else { "APPROVED" };
        self.register(&merchant_id, "S0001", status).await
    }

    /// Registers a merchant's store and waits until the sandbox's review decides `status`. A
    /// store already under review is waited for; one already approved needs no wait.
    async fn register(&mut self, merchant_id: &str, store_id: &str, status: &'static str) -> Step<()> {
        let name = self.caller.name.clone();
        let request = RegistrationRequest {
            registration_request_id: Some(new_request_id()),
            registration_notify_url: self.notify_url.clone(),
            pass_through_info: None,
            merchant_info: Some(MerchantRegistrationInfo {
                reference_merchant_id: Some(merchant_id.to_owned()),
                merchant_display_name: Some(name.clone()),
                merchant_mcc: Some("5812".to_owned()),
                ..MerchantRegistrationInfo::default()
            }),
            product_codes: Some(vec![PRODUCT_CODE_IN_STORE.to_owned()]),
            store_info: Some(StoreRegistrationInfo {
                reference_store_id: Some(store_id.to_owned()),
                store_name: Some(name),
                store_mcc: Some("5812".to_owned()),
                store_address: None,
            }),
        };
        let (answer, value): (RegistrationResponse, Value) = self.call(&request).await?;
        let result = &answer.result;
        let code = result.result_code.clone();
        let line = format!("{} for referenceMerchantId {merchant_id}, store {store_id}", said(result));
        let accepted = result.is_success() || code == "REGISTRATION_UNDER_REVIEW";
        let approved_before = code == "REPEAT_REGISTRATION" && status == "APPROVED";
        self.step("registration", accepted || approved_before, line, value);
        self.sent(&request);
        if approved_before {
            return Ok(Ok(()));
        }
        if !accepted {
            return Ok(Err(Stop::Unexpected));
        }
        let inquiry = InquiryRegistrationStatusRequest {
            reference_merchant_id: Some(merchant_id.to_owned()),
            reference_store_id: Some(store_id.to_owned()),
            registration_request_id: None,
        };
        let name = format!("inquiryRegistrationStatus until {status}");
        let decided = self
            .wait_for(&name, &inquiry, |answer: &InquiryRegistrationStatusResponse| {
                let result = answer.registration_result.as_ref()?;
                (result.registration_status != "PROCESSING").then(|| {
                    let reasons =
                        result.reject_reasons.as_deref().map(|why| format!(": {why}")).unwrap_or_default();
                    format!("registrationStatus {}{reasons}", result.registration_status)
                })
            })
            .await?;
        Ok(match decided {
            Ok(answer)
                if answer
                    .registration_result
                    .as_ref()
                    .is_some_and(|result| result.registration_status == status) =>
            {
                self.notified("notifyRegistrationStatus", status, false);
                Ok(())
            }
            Ok(_) => Err(Stop::Unexpected),
            Err(stop) => Err(stop),
        })
    }
}
