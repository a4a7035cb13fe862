//! The payer's side: paying an order code from a wallet (or, in the sandbox, choosing how the
//! wallet fails), and managing payers and their stored value.

use ocpay_core::ids::CodeToken;
use ocpay_core::ledger::AccountOwner;
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::Environment;
use ocpay_core::payer::{Payer, PayerId, SANDBOX_PAYER_ID_PREFIX, SandboxOutcome};
use ocpay_core::payment::{Charge, ChargeError, NotPayable, Payment};
use ocpay_store::{FailPayment, SettlePayment, Settlement, Store, StoreError};

use super::Context;
use crate::pin;

/// What a payer asks for when paying a code.
#[derive(Debug, Clone, Default)]
pub struct PayCode {
    /// Live: required. Sandbox: optional; a sandbox payer is created on first use.
    pub payer: Option<PayerId>,
    /// Live only.
    pub pin: Option<String>,
    /// Sandbox only: pay, or fail as a wallet would.
    pub outcome: Option<SandboxOutcome>,
}

/// Why a payer could not pay.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("no such order code")]
    NotFound,
    #[error("{0}")]
    NotPayable(NotPayable),
    #[error("no such payer")]
    UnknownPayer,
    #[error("this payer's wallet is in the other environment than this order code")]
    WrongEnvironment,
    #[error("sign in with your payer id and PIN")]
    SignInRequired,
    #[error("wrong payer id or PIN")]
    WrongPin,
    #[error("too many wrong PINs; try again later")]
    Locked,
    #[error("the wallet's balance ({balance}) does not cover the payment")]
    BalanceNotEnough { balance: Money },
    #[error("{0}")]
    Charge(#[from] ChargeError),
    #[error("test outcomes exist only in the sandbox")]
    OutcomeOutsideSandbox,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a code ended for the payer.
#[derive(Debug)]
pub enum Paid {
    Paid(Payment),
    /// A sandbox failure outcome was chosen.
    Failed(Payment),
}

/// Pays (or, in the sandbox, fails) an order code.
pub async fn pay_code(cx: &Context, code: &CodeToken, request: PayCode) -> Result<Paid, WalletError> {
    let now = cx.clock.now();
    let payment = cx.store.payment_by_code(code).await?.ok_or(WalletError::NotFound)?;
    let environment = payment.terms.environment();
    match request.outcome {
        Some(_) if environment != Environment::Sandbox => return Err(WalletError::OutcomeOutsideSandbox),
        Some(SandboxOutcome::Fail(reason)) => {
            return match cx.store.fail_payment(code, reason, now).await? {
                FailPayment::Failed(payment) => {
                    cx.notify_wake.wake();
                    Ok(Paid::Failed(payment))
                }
                FailPayment::NotPayable(_, reason) => Err(WalletError::NotPayable(reason)),
                FailPayment::NotFound => Err(WalletError::NotFound),
            };
        }
        Some(SandboxOutcome::Pay) | None => {}
    }
    // Refuse an unpayable code before asking for a PIN or creating a payer.
    payment.check_payable(now).map_err(WalletError::NotPayable)?;
    let payer = match environment {
        Environment::Sandbox => sandbox_payer(cx, &payment, request.payer).await?,
        Environment::Live => signed_in_payer(cx, request.payer, request.pin.as_deref()).await?,
    };
    let rate = cx.rate(environment, payment.terms.amount.currency(), payer.currency);
    let charge = Charge::for_payment(payer.id.clone(), payment.terms.amount, payer.currency, rate, now)?;
    // Enough to cover this charge whatever the configured amount, so a sandbox payer never
    // runs short.
    let sandbox_top_up = (environment == Environment::Sandbox).then(|| {
        let configured = sandbox_top_up(cx, payer.currency);
        if configured.minor() < charge.amount.minor() { charge.amount } else { configured }
    });
    let settlement = Settlement { code: code.clone(), charge, now, sandbox_top_up };
    match cx.store.settle_payment(&settlement).await? {
        SettlePayment::Paid(payment) => {
            cx.notify_wake.wake();
            Ok(Paid::Paid(payment))
        }
        SettlePayment::NotPayable(_, reason) => Err(WalletError::NotPayable(reason)),
        SettlePayment::InsufficientBalance { balance } => Err(WalletError::BalanceNotEnough { balance }),
        SettlePayment::UnknownPayer => Err(WalletError::UnknownPayer),
        SettlePayment::NotFound => Err(WalletError::NotFound),
    }
}

/// The sandbox's generous balance, in the payer's currency.
fn sandbox_top_up(cx: &Context, currency: Currency) -> Money {
    let minor = cx.settings.sandbox.top_up_major.saturating_mul(10i64.saturating_pow(currency.exponent()));
    Money::new(minor, currency)
}

/// The sandbox payer named (or the default one for the payment's currency), created on first use.
async fn sandbox_payer(
    cx: &Context,
    payment: &Payment,
    requested: Option<PayerId>,
) -> Result<Payer, WalletError> {
    let currency = payment.terms.amount.currency();
    let id = match requested {
        Some(id) => PayerId::sandbox(id.as_str()).map_err(|_| WalletError::UnknownPayer)?,
        None => PayerId::sandbox(&format!("payer-{}", currency.code().to_ascii_lowercase()))
            .map_err(|_| WalletError::UnknownPayer)?,
    };
    if let Some(payer) = cx.store.payer(&id).await? {
        return if payer.environment == Environment::Sandbox {
            Ok(payer)
        } else {
            Err(WalletError::WrongEnvironment)
        };
    }
    let payer = Payer::new(id, Environment::Sandbox, currency, None, cx.clock.now());
    match cx.store.create_payer(&payer).await {
        // Two first payments of one new sandbox payer at once: the other created it.
        Ok(()) | Err(StoreError::Conflict(_)) => {}
        Err(error) => return Err(error.into()),
    }
    cx.store.payer(&payer.id).await?.ok_or(WalletError::UnknownPayer)
}

/// A live payer, signed in with the right PIN; wrong PINs count towards a lockout.
///
/// An unknown payer, a sandbox payer and a wrong PIN answer alike and take as long (a PIN is
/// checked against a dummy hash), so payer ids cannot be probed. The attempt is counted before
/// the PIN is checked, so parallel guesses cannot outrun the lockout.
async fn signed_in_payer(cx: &Context, id: Option<PayerId>, pin: Option<&str>) -> Result<Payer, WalletError> {
    let (Some(id), Some(pin)) = (id, pin) else { return Err(WalletError::SignInRequired) };
    let now = cx.clock.now();
    let payer = cx.store.payer(&id).await?.filter(|payer| payer.environment == Environment::Live);
    let Some(payer) = payer else {
        verify_pin(pin, cx.dummy_pin_hash.clone()).await;
        return Err(WalletError::WrongPin);
    };
    let settings = &cx.settings.pin;
    let locked_until = now.checked_add(settings.lockout).unwrap_or(now);
    let failures_max = settings.failures_max;
    if !cx.store.pin_attempt(&payer.id, failures_max, locked_until, now).await? {
        return Err(WalletError::Locked);
    }
    let hash = payer.pin_hash.clone().unwrap_or_else(|| cx.dummy_pin_hash.clone());
    if !verify_pin(pin, hash).await {
        return Err(WalletError::WrongPin);
    }
    cx.store.pin_succeeded(&payer.id).await?;
    Ok(payer)
}

/// Hashes a new PIN off the async workers (an operator's console creates payers inside the
/// server); where no blocking thread can take it (a runtime shutting down), here.
async fn hash_pin(pin: &str, iterations: u32) -> String {
    let owned = pin.to_owned();
    match tokio::task::spawn_blocking(move || pin::hash(&owned, iterations)).await {
        Ok(hash) => hash,
        Err(_) => pin::hash(pin, iterations),
    }
}

/// Checks a PIN off the async workers: PBKDF2 takes milliseconds on purpose.
async fn verify_pin(pin: &str, hash: String) -> bool {
    let pin = pin.to_owned();
    tokio::task::spawn_blocking(move || pin::verify(&pin, &hash)).await.unwrap_or(false)
}

/// Why a payer could not be created or funded. The CLI names the flag that gave the value.
#[derive(Debug, thiserror::Error)]
pub enum PayerError {
    #[error("PIN: {0}")]
    Pin(#[from] pin::BadPin),
    #[error("{} payer ids must{} start with `{SANDBOX_PAYER_ID_PREFIX}`", environment.as_str(), if *environment == Environment::Live { " not" } else { "" })]
    IdEnvironment { environment: Environment },
    #[error("live payers need a PIN")]
    PinRequired,
    #[error("a top-up must be greater than zero")]
    NotPositive,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a payer; live payers need a PIN, which is stored hashed.
pub async fn create_payer(
    store: &dyn Store,
    now: ocpay_core::Timestamp,
    id: PayerId,
    environment: Environment,
    currency: Currency,
    pin: Option<&str>,
    iterations: u32,
) -> Result<Payer, PayerError> {
    if id.environment() != environment {
        return Err(PayerError::IdEnvironment { environment });
    }
    let pin_hash = match (environment, pin) {
        (_, Some(pin)) => {
            pin::check(pin)?;
            Some(hash_pin(pin, iterations).await)
        }
        (Environment::Live, None) => return Err(PayerError::PinRequired),
        (Environment::Sandbox, None) => None,
    };
    let payer = Payer::new(id, environment, currency, pin_hash, now);
    store.create_payer(&payer).await?;
    Ok(payer)
}

/// Issues stored value to a payer; returns the wallet's balance in that currency.
pub async fn top_up(
    store: &dyn Store,
    now: ocpay_core::Timestamp,
    payer: &PayerId,
    amount: Money,
) -> Result<Money, PayerError> {
    if !amount.is_positive() {
        return Err(PayerError::NotPositive);
    }
    Ok(store.top_up(payer, amount, now).await?)
}

/// A payer's balances, one per currency.
pub async fn balances(store: &dyn Store, payer: &PayerId) -> Result<Vec<Money>, StoreError> {
    store.balances(&AccountOwner::Wallet(payer.clone())).await
}

/// Ends a payer's lockout after wrong PINs and clears its count of them, as a right PIN does;
/// returns the payer as it stood before (`None`: no such payer).
pub async fn unlock_payer(store: &dyn Store, payer: &PayerId) -> Result<Option<Payer>, StoreError> {
    let Some(found) = store.payer(payer).await? else { return Ok(None) };
    store.pin_succeeded(payer).await?;
    Ok(Some(found))
}
