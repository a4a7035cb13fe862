//! `inquiryPayment`: read one of the caller's payments.

use ocpay_core::ids::ClientId;
use ocpay_core::payment::Payment;
use ocpay_store::PaymentLookup;

use super::ServiceError;
use crate::state::AppState;

pub(crate) async fn inquire_payment(
    state: &AppState,
    owner: &ClientId,
    lookup: &PaymentLookup,
) -> Result<Payment, ServiceError> {
    state.store.payment(owner, lookup).await?.ok_or(ServiceError::PaymentNotFound)
}
