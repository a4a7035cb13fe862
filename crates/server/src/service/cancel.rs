//! `cancel`: close an unpaid payment (or reverse a paid one inside the cancel window).

use ocpay_core::ids::ClientId;
use ocpay_core::payment::Payment;
use ocpay_store::{CancelPayment, PaymentLookup};

use super::ServiceError;
use crate::state::AppState;

pub(crate) async fn cancel_payment(
    state: &AppState,
    owner: &ClientId,
    lookup: &PaymentLookup,
) -> Result<Payment, ServiceError> {
    let now = state.clock.now();
    let window = state.settings.cancel_window;
    match state.store.cancel_payment(owner, lookup, &window, now).await? {
        CancelPayment::Done(payment) => Ok(payment),
        CancelPayment::Refused(_, refusal) => Err(ServiceError::CancelRefused(refusal)),
        CancelPayment::NotFound => Err(ServiceError::PaymentNotFound),
    }
}
