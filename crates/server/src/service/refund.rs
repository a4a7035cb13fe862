//! `refund`: return part or all of a paid payment to the payer.

use ocpay_core::ids::{ClientId, PaymentId, RefundRequestId};
use ocpay_core::money::Money;
use ocpay_core::participant::Participant;
use ocpay_core::refund::{Refund, RefundReason, RefundTerms};
use ocpay_core::sandbox::RefundMagicAmount;
use ocpay_protocol::{AmsResult, ResultCode};
use ocpay_store::{CreateRefund, NewRefund, RefundCompletion, SandboxFault};

use super::Context;
use super::{NotifyUrlOf, ServiceError};
use crate::{HttpUrl, audit, random};

/// A parsed, valid `refund` request.
#[derive(Debug, Clone)]
pub struct RefundCommand {
    pub request_id: RefundRequestId,
    pub payment_id: PaymentId,
    pub amount: Money,
    pub reference_refund_id: Option<String>,
    pub reason: Option<RefundReason>,
    pub async_requested: bool,
    pub notify_url: Option<HttpUrl>,
    /// The ISV asking for the refund for the payment's owner, if one is.
    pub agent: Option<ClientId>,
}

/// Refunds a payment, or returns the refund this `refundRequestId` created (spec §13.10–11).
/// Sandbox magic refund amounts: 9901 answers unknown once and refunds nothing; 9902 is
/// accepted and fails when due.
pub async fn refund(
    cx: &Context,
    owner: &Participant,
    command: RefundCommand,
) -> Result<Refund, ServiceError> {
    let now = cx.clock.now();
    let environment = owner.environment();
    if let Some(url) = &command.notify_url
        && let Err(reason) = cx.settings.notify.check_url(environment, url)
    {
        return Err(ServiceError::NotifyUrlRefused { of: NotifyUrlOf::Refund, reason });
    }
    let magic = RefundMagicAmount::of(environment, command.amount);
    if magic == Some(RefundMagicAmount::UnknownOnce) {
        let fault = SandboxFault::RefundUnknown(owner.client_id.clone(), command.request_id.clone());
        if cx.store.take_sandbox_fault(&fault, now).await? {
            return Err(ServiceError::SandboxUnknown);
        }
    }
    let due = now + cx.settings.refund_async_delay;
    let completion = if magic == Some(RefundMagicAmount::FailsLater) {
        RefundCompletion::FailsAt(due)
    } else if cx.settings.refund_async || command.async_requested {
        RefundCompletion::SucceedsAt(due)
    } else {
        RefundCompletion::Now
    };
    let terms = RefundTerms {
        id: random::refund_id(now),
        owner: owner.client_id.clone(),
        request_id: command.request_id,
        payment_id: command.payment_id,
        amount: command.amount,
        reference_refund_id: command.reference_refund_id,
        reason: command.reason,
        notify_url: command.notify_url.map(HttpUrl::into_string),
        async_requested: command.async_requested,
        created_at: now,
        agent: command.agent,
    };
    // A created refund is answered `S` when it completes at once, `U / REFUND_IN_PROCESS`
    // otherwise: its audit event commits with it.
    let result = match completion {
        RefundCompletion::Now => AmsResult::success(),
        _ => AmsResult::of(ResultCode::REFUND_IN_PROCESS),
    };
    let audit = audit::with_change(now, &result);
    let new = NewRefund { terms, policy: cx.settings.refund, completion };
    match cx.store.create_refund_audited(&new, audit.as_ref()).await? {
        CreateRefund::Created(refund) => {
            audit::committed();
            Ok(refund)
        }
        CreateRefund::Existing(refund)
            if refund.terms.same_request(
                &new.terms.payment_id,
                new.terms.amount,
                new.terms.agent.as_ref(),
            ) =>
        {
            Ok(refund)
        }
        CreateRefund::Existing(_) => Err(ServiceError::RefundRepeatInconsistent),
        CreateRefund::Refused(refusal) => Err(ServiceError::RefundRefused(refusal)),
        CreateRefund::PaymentNotFound => Err(ServiceError::PaymentNotFound),
    }
}
