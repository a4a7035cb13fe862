//! `inquiryPayment` and `inquiryRefund`: read one of the caller's payments or refunds.

use ocpay_core::ids::ClientId;
use ocpay_core::payment::Payment;
use ocpay_core::refund::Refund;
use ocpay_core::sandbox::MagicAmount;
use ocpay_store::{PaymentLookup, RefundLookup, SandboxFault};

use super::Context;
use super::ServiceError;

/// The payment and its refunds, oldest first. Sandbox magic amount 9903: the first inquiry
/// answers unknown.
pub(crate) async fn inquire_payment(
    cx: &Context,
    owner: &ClientId,
    lookup: &PaymentLookup,
) -> Result<(Payment, Vec<Refund>), ServiceError> {
    let payment = cx.store.payment(owner, lookup).await?.ok_or(ServiceError::PaymentNotFound)?;
    let magic = MagicAmount::of(payment.terms.environment(), payment.terms.amount);
    if magic == Some(MagicAmount::InquiryUnknownOnce) {
        let fault = SandboxFault::InquiryUnknown(payment.terms.id.clone());
        if cx.store.take_sandbox_fault(&fault, cx.clock.now()).await? {
            return Err(ServiceError::SandboxUnknown);
        }
    }
    let refunds = cx.store.refunds_of_payment(owner, &payment.terms.id).await?;
    Ok((payment, refunds))
}

pub(crate) async fn inquire_refund(
    cx: &Context,
    owner: &ClientId,
    lookup: &RefundLookup,
) -> Result<Refund, ServiceError> {
    cx.store.refund(owner, lookup).await?.ok_or(ServiceError::RefundNotFound)
}
