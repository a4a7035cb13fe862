//! `ocpay wallet ...`: the payer's side from a script. `pay` goes through the same HTTP
//! endpoint the payer page uses; payer and balance commands work on the data directory.

use std::process::ExitCode;

use anyhow::Context as _;
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::Environment;
use ocpay_core::payer::PayerId;
use ocpay_server::service::wallet::{self, PayerError};

use crate::data::DataArgs;
use serde_json::json;

#[derive(clap::Subcommand)]
pub(crate) enum WalletCommand {
    /// Pay an order code (or, in the sandbox, fail it with --outcome).
    Pay {
        /// The code's URL (`codeValue` of the TEXT code detail, as `ocpay pay` shows it on
        /// stderr); quotes around it and a trailing slash are ignored.
        code_value: String,
        /// Sandbox: SUCCESS, USER_BALANCE_NOT_ENOUGH, RISK_REJECT or USER_KYC_NOT_QUALIFIED.
        #[arg(long)]
        outcome: Option<String>,
        /// The payer: required for live codes; in the sandbox, created on first use.
        #[arg(long)]
        payer: Option<String>,
        /// A live payer's PIN.
        #[arg(long, env = "OCPAY_PAYER_PIN")]
        pin: Option<String>,
    },
    /// Issue stored value to a payer's wallet.
    Topup {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        payer: String,
        /// Minor units: 1250 is USD 12.50.
        #[arg(long)]
        amount: i64,
        #[arg(long)]
        currency: String,
    },
    /// Show a payer's balances.
    Balance {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        payer: String,
    },
    /// Create a payer: live payers need a PIN (stored hashed); sandbox payer ids start with
    /// `sandbox-`.
    CreatePayer {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        payer: String,
        /// The wallet's currency; payments in others are converted.
        #[arg(long)]
        currency: String,
        #[arg(long = "env", value_parser = parse_environment)]
        environment: Environment,
        #[arg(long, env = "OCPAY_PAYER_PIN")]
        pin: Option<String>,
    },
}

fn parse_environment(text: &str) -> Result<Environment, String> {
    Environment::parse_any_case(text).ok_or_else(|| "must be sandbox or live".into())
}

fn payer_id(text: &str) -> anyhow::Result<PayerId> {
    PayerId::parse(text).map_err(|error| anyhow::anyhow!("--payer: {error}"))
}

pub(crate) async fn run(command: WalletCommand) -> anyhow::Result<ExitCode> {
    match command {
        WalletCommand::Pay { code_value, outcome, payer, pin } => pay(&code_value, outcome, payer, pin).await,
        WalletCommand::Topup { data, payer, amount, currency } => {
            let (_, _, store) = data.open().await?;
            let currency =
                Currency::parse(&currency).map_err(|error| anyhow::anyhow!("--currency: {error}"))?;
            let payer = payer_id(&payer)?;
            let balance =
                wallet::top_up(&*store, jiff::Timestamp::now(), &payer, Money::new(amount, currency))
                    .await
                    .map_err(payer_refused)?;
            crate::print_json(&json!({ "payerId": payer.as_str(), "balance": money(balance) }))?;
            Ok(ExitCode::SUCCESS)
        }
        WalletCommand::Balance { data, payer } => {
            let (_, _, store) = data.open().await?;
            let payer = payer_id(&payer)?;
            if store.payer(&payer).await?.is_none() {
                return Err(crate::NotFound(format!("no payer has the id {payer}")).into());
            }
            let balances = wallet::balances(&*store, &payer).await?;
            crate::print_json(
                &json!({ "payerId": payer.as_str(), "balances": balances.into_iter().map(money).collect::<Vec<_>>() }),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        WalletCommand::CreatePayer { data, payer, currency, environment, pin } => {
            let (settings, _, store) = data.open().await?;
            let currency =
                Currency::parse(&currency).map_err(|error| anyhow::anyhow!("--currency: {error}"))?;
            let iterations = settings.pin.hash_iterations;
            let created = wallet::create_payer(
                &*store,
                jiff::Timestamp::now(),
                payer_id(&payer)?,
                environment,
                currency,
                pin.as_deref(),
                iterations,
            )
            .await
            .map_err(payer_refused)?;
            crate::print_json(&json!({
                "payerId": created.id.as_str(),
                "environment": created.environment.as_str(),
                "currency": created.currency.code(),
            }))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A refusal of a payer or a top-up, naming the flag that gave the value.
fn payer_refused(error: PayerError) -> anyhow::Error {
    match error {
        PayerError::Pin(bad) => anyhow::anyhow!("--pin: {bad}"),
        PayerError::PinRequired => anyhow::anyhow!("--pin: {error}"),
        PayerError::IdEnvironment { .. } => anyhow::anyhow!("--payer: {error}"),
        PayerError::NotPositive => anyhow::anyhow!("--amount: must be greater than zero"),
        PayerError::Store(error) => error.into(),
    }
}

fn money(amount: Money) -> serde_json::Value {
    json!({ "currency": amount.currency().code(), "value": amount.minor().to_string(), "text": amount.to_string() })
}

/// Posts to the wallet API of the server the code points at.
async fn pay(
    code_value: &str,
    outcome: Option<String>,
    payer: Option<String>,
    pin: Option<String>,
) -> anyhow::Result<ExitCode> {
    let mut body = serde_json::Map::new();
    if let Some(outcome) = outcome {
        body.insert("outcome".into(), outcome.into());
    }
    if let Some(payer) = payer {
        body.insert("payerId".into(), payer.into());
    }
    if let Some(pin) = pin {
        body.insert("pin".into(), pin.into());
    }
    let answer = pay_code(code_value, &body).await?;
    crate::print_json(&answer)?;
    Ok(if answer["status"] == "SUCCESS" { ExitCode::SUCCESS } else { ExitCode::from(crate::EXIT_F) })
}

/// Posts `body` to the pay endpoint of the payer page's JSON API for the order code
/// `code_value`, as a payer's browser does; the wallet's answer, whatever it says.
pub(crate) async fn pay_code(
    code_value: &str,
    body: &serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let url = url_of(code_value)?;
    let http = payer_http()?;
    let response = http.post(&url).json(body).send().await.with_context(|| format!("POST {url}"))?;
    response.json().await.context("the wallet answered without JSON")
}

/// The order of the code `code_value` as its page shows it to a payer (`GET` of the payer
/// page's JSON API): its status, merchant, amount and expiry.
pub(crate) async fn order_of_code(code_value: &str) -> anyhow::Result<serde_json::Value> {
    let url = code_api_url(code_value)?;
    let http = payer_http()?;
    let response = http.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    response.json().await.context("the payer page's API answered without JSON")
}

/// How long a request to the payer page's API may take.
const PAYER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// An HTTP client as a payer's browser would be: direct, without a proxy.
fn payer_http() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().no_proxy().timeout(PAYER_TIMEOUT).build()
}

/// `http://host/c/<token>` becomes `http://host/wallet/api/codes/<token>/pay`.
fn url_of(code_value: &str) -> anyhow::Result<String> {
    Ok(format!("{}/pay", code_api_url(code_value)?))
}

/// `http://host/c/<token>` becomes `http://host/wallet/api/codes/<token>`. The value may come
/// as copied from JSON or a browser: in quotes, with a trailing slash or a trailing comma.
fn code_api_url(code_value: &str) -> anyhow::Result<String> {
    let trimmed = code_value.trim().trim_end_matches(',');
    let trimmed = trimmed.trim_matches(|c| c == '"' || c == '\'' || c == '<' || c == '>');
    let trimmed = trimmed.trim().trim_end_matches('/');
    let (origin, token) = trimmed
        .rsplit_once("/c/")
        .filter(|(origin, token)| origin.starts_with("http") && !token.is_empty() && !token.contains('/'))
        .ok_or_else(|| anyhow::anyhow!("{code_value:?} is not an order code URL (…/c/<token>)"))?;
    Ok(format!("{origin}/wallet/api/codes/{token}"))
}

#[cfg(test)]
mod tests {
    use super::url_of;

    #[test]
    fn a_code_value_is_accepted_as_copied() {
        let expected = "http://127.0.0.1:8080/wallet/api/codes/TOKEN/pay";
        for copied in [
            "http://127.0.0.1:8080/c/TOKEN",
            "http://127.0.0.1:8080/c/TOKEN/",
            "\"http://127.0.0.1:8080/c/TOKEN\",",
            "'http://127.0.0.1:8080/c/TOKEN'",
            " <http://127.0.0.1:8080/c/TOKEN> ",
        ] {
            assert_eq!(url_of(copied).unwrap(), expected, "{copied}");
        }
        for wrong in ["http://127.0.0.1:8080/c/", "TOKEN", "http://127.0.0.1:8080/c/TOKEN/qr-small.png"] {
            assert!(url_of(wrong).is_err(), "{wrong}");
        }
    }
}
