//! The operators' notification use cases, shared by the admin API, the CLI and the operator's
//! console: what an id an operator typed names (a payment, refund or registration), and sending
//! its notifications again.

use ocpay_core::Timestamp;
use ocpay_core::ids::{ClientId, PaymentId, PaymentRequestId, RefundId, RefundRequestId};
use ocpay_store::{PaymentLookup, RefundLookup, Store, StoreError};

use super::registrations::{self, ReviewError};

/// What the notifications of `id` are filed under: the id itself when notifications are filed
/// under it; else the id of the payment, refund (of `owner`, when given) or registration that
/// `id` names, by the platform's id or the request's. `None` when nothing has that id; a
/// `registrationRequestId` of several acquirers is `ReviewError::Ambiguous`.
pub async fn subject_of(
    store: &dyn Store,
    id: &str,
    owner: Option<&ClientId>,
) -> Result<Option<String>, ReviewError> {
    if !store.notifications(id).await?.is_empty() {
        return Ok(Some(id.to_owned()));
    }
    if let Some(owner) = owner
        && let Some(found) = payment_or_refund(store, owner, id).await?
    {
        return Ok(Some(found));
    }
    match registrations::find(store, id, owner).await {
        Ok(registration) => Ok(Some(registration.terms.id.to_string())),
        Err(ReviewError::NotFound(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The id of `owner`'s payment or refund that `id` names, by the platform's id or the request's.
async fn payment_or_refund(
    store: &dyn Store,
    owner: &ClientId,
    id: &str,
) -> Result<Option<String>, StoreError> {
    let lookups = [
        PaymentId::parse(id).ok().map(PaymentLookup::ById),
        PaymentRequestId::parse(id).ok().map(PaymentLookup::ByRequestId),
    ];
    for lookup in lookups.into_iter().flatten() {
        if let Some(payment) = store.payment(owner, &lookup).await? {
            return Ok(Some(payment.terms.id.to_string()));
        }
    }
    let lookups = [
        RefundId::parse(id).ok().map(RefundLookup::ById),
        RefundRequestId::parse(id).ok().map(RefundLookup::ByRequestId),
    ];
    for lookup in lookups.into_iter().flatten() {
        if let Some(refund) = store.refund(owner, &lookup).await? {
            return Ok(Some(refund.terms.id.to_string()));
        }
    }
    Ok(None)
}

/// Queues every notification about `subject` (a payment, refund or registration id) for an
/// attempt at `now`, delivered or not, and wakes the notifier when there was one; returns how
/// many were queued (0: nothing is filed under that id).
pub async fn resend(
    store: &dyn Store,
    wake: &super::Wake,
    subject: &str,
    now: Timestamp,
) -> Result<u32, StoreError> {
    let queued = store.resend_notifications(subject, now).await?;
    if queued > 0 {
        wake.wake();
    }
    Ok(queued)
}
