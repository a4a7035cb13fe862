//! `cancel`: close an unpaid payment (or reverse a paid one inside the cancel window).

use ocpay_core::ids::ClientId;
use ocpay_core::payment::Payment;
use ocpay_store::{CancelPayment, PaymentLookup};

use ocpay_protocol::AmsResult;

use super::Context;
use super::ServiceError;
use crate::audit;

/// Cancels one of `owner`'s payments at the clock's now: the gateway's `cancel`, and the
/// developer center's.
pub async fn cancel_payment(
    cx: &Context,
    owner: &ClientId,
    lookup: &PaymentLookup,
) -> Result<Payment, ServiceError> {
    let now = cx.clock.now();
    let window = cx.settings.cancel_window;
    // A done cancel is answered `S`: its audit event commits with it.
    let audit = audit::with_change(now, &AmsResult::success());
    match cx.store.cancel_payment_audited(owner, lookup, &window, now, audit.as_ref()).await? {
        CancelPayment::Done(payment) => {
            audit::committed();
            Ok(payment)
        }
        CancelPayment::Refused(_, refusal) => Err(ServiceError::CancelRefused(refusal)),
        CancelPayment::NotFound => Err(ServiceError::PaymentNotFound),
    }
}
