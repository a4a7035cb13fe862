//! `pay`: create an order-code payment, or return the one this `paymentRequestId` created.

use jiff::Timestamp;
use ocpay_core::ids::{ClientId, PaymentRequestId};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::Participant;
use ocpay_core::payment::{ExtendInfo, Order, Payment, PaymentTerms};
use ocpay_core::sandbox::MagicAmount;
use ocpay_core::text::Region;
use ocpay_protocol::AmsResult;
use ocpay_store::{CreatePayment, PaymentLookup, SandboxFault};

use super::Context;
use super::{NotifyUrlOf, ServiceError};
use crate::{HttpUrl, audit, random};

/// A parsed, valid `pay` request.
#[derive(Debug, Clone)]
pub(crate) struct PayCommand {
    pub(crate) request_id: PaymentRequestId,
    pub(crate) amount: Money,
    pub(crate) order: Order,
    pub(crate) requested_expiry: Option<Timestamp>,
    pub(crate) notify_url: Option<HttpUrl>,
    pub(crate) redirect_url: Option<String>,
    pub(crate) settlement_currency: Option<Currency>,
    pub(crate) merchant_region: Option<Region>,
    pub(crate) extend_info: Option<ExtendInfo>,
    /// The ISV making the payment for `owner`, if one is.
    pub(crate) agent: Option<ClientId>,
}

/// Creates the payment, or returns the existing one for a repeated request (spec §13.11). An
/// acquirer pays only for merchants and stores it registered and had approved (spec §13.12).
/// Sandbox magic amounts: 9901 answers unknown once per request id and creates nothing, so
/// that the retry with the same `paymentRequestId` succeeds; 9902 answers late.
pub(crate) async fn pay(
    cx: &Context,
    owner: &Participant,
    command: PayCommand,
) -> Result<Payment, ServiceError> {
    // The configuration was checked at start; the default only keeps this free of a panic.
    let max = cx.settings.wallet_limit.max(command.amount.currency());
    if command.amount.minor() > max.minor() {
        return Err(ServiceError::AmountAboveWalletLimit { max });
    }
    let magic = MagicAmount::of(owner.environment(), command.amount);
    if magic == Some(MagicAmount::PayUnknownOnce) {
        let fault = SandboxFault::PayUnknown(owner.client_id.clone(), command.request_id.clone());
        if cx.store.take_sandbox_fault(&fault, cx.clock.now()).await? {
            return Err(ServiceError::SandboxUnknown);
        }
    }
    let payment = create(cx, owner, command).await?;
    if magic == Some(MagicAmount::PaySlow) {
        tokio::time::sleep(cx.settings.sandbox.slow_answer).await;
    }
    Ok(payment)
}

async fn create(cx: &Context, owner: &Participant, command: PayCommand) -> Result<Payment, ServiceError> {
    super::registrations::check_registered(cx, owner, &command.order.merchant).await?;
    let now = cx.clock.now();
    let expires_at = match cx.settings.expiry.resolve(now, command.requested_expiry) {
        Ok(expires_at) => expires_at,
        // A replay of an accepted request may come after its expiry time has passed: it still
        // gets the original answer.
        Err(error) => return replay(cx, owner, &command).await?.ok_or(ServiceError::Expiry(error)),
    };
    let notify_url = match (command.notify_url, owner.notify_url.as_deref()) {
        (Some(url), _) => url,
        // The participant's default was checked when it was set; its refusal is told all the same.
        (None, Some(default)) => HttpUrl::parse(default)
            .map_err(|reason| ServiceError::NotifyUrlRefused { of: NotifyUrlOf::Payment, reason })?,
        (None, None) => return Err(ServiceError::NotifyUrlRequired),
    };
    if let Err(reason) = cx.settings.notify.check_url(owner.environment(), &notify_url) {
        return Err(ServiceError::NotifyUrlRefused { of: NotifyUrlOf::Payment, reason });
    }
    let terms = PaymentTerms {
        id: random::payment_id(now),
        owner: owner.client_id.clone(),
        request_id: command.request_id,
        amount: command.amount,
        order: command.order,
        code_token: random::code_token(),
        notify_url: notify_url.into_string(),
        redirect_url: command.redirect_url,
        settlement_currency: command.settlement_currency,
        merchant_region: command.merchant_region,
        extend_info: command.extend_info,
        created_at: now,
        expires_at,
        agent: command.agent,
    };
    // A created payment is answered `S`: its audit event commits with it.
    let audit = audit::with_change(now, &AmsResult::success());
    match cx.store.create_payment_audited(&terms, audit.as_ref()).await? {
        CreatePayment::Created(payment) => {
            audit::committed();
            Ok(payment)
        }
        CreatePayment::Existing(payment)
            if payment.terms.same_request(terms.amount, &terms.order, terms.agent.as_ref()) =>
        {
            Ok(payment)
        }
        CreatePayment::Existing(_) => Err(ServiceError::RepeatInconsistent),
    }
}

/// The payment an earlier identical request created, if there is one.
async fn replay(
    cx: &Context,
    owner: &Participant,
    command: &PayCommand,
) -> Result<Option<Payment>, ServiceError> {
    let lookup = PaymentLookup::ByRequestId(command.request_id.clone());
    let Some(payment) = cx.store.payment(&owner.client_id, &lookup).await? else {
        return Ok(None);
    };
    let same = payment.terms.same_request(command.amount, &command.order, command.agent.as_ref());
    if same { Ok(Some(payment)) } else { Err(ServiceError::RepeatInconsistent) }
}
