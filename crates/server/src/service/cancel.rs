//! `cancel`: close an unpaid payment (or reverse a paid one inside the cancel window).

use ocpay_core::ids::ClientId;
use ocpay_core::payment::Payment;
use ocpay_store::{CancelPayment, PaymentLookup};

use super::Context;
use super::ServiceError;

/// Cancels one of `owner`'s payments at the clock's now: the gateway's `cancel`, and the
/// developer center's.
pub async fn cancel_payment(
    cx: &Context,
    owner: &ClientId,
    lookup: &PaymentLookup,
) -> Result<Payment, ServiceError> {
    let now = cx.clock.now();
    let window = cx.settings.cancel_window;
    match cx.store.cancel_payment(owner, lookup, &window, now).await? {
        CancelPayment::Done(payment) => Ok(payment),
        CancelPayment::Refused(_, refusal) => Err(ServiceError::CancelRefused(refusal)),
        CancelPayment::NotFound => Err(ServiceError::PaymentNotFound),
    }
}
