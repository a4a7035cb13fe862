//! Refunds.

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ids::{ClientId, PaymentId};
use ocpay_core::refund::Refund;

use crate::pages::PageCursor;
use crate::{AuditEvent, CreateRefund, NewRefund, RefundLookup, StoreError};

/// Refunds of payments, synchronous or completed when due.
#[async_trait]
pub trait RefundStore: Send + Sync {
    /// Refunds part or all of one of `owner`'s payments, deciding in the one transaction (by
    /// core's rules) that the payment is paid, inside the window, and not refunded beyond what
    /// was paid, counting every earlier refund. A synchronous refund posts the money back and
    /// queues its notification in the same transaction.
    async fn create_refund(&self, refund: &NewRefund) -> Result<CreateRefund, StoreError> {
        self.create_refund_audited(refund, None).await
    }

    /// As [`RefundStore::create_refund`], appending `audit` to the audit trail in the same
    /// transaction when the refund is created.
    async fn create_refund_audited(
        &self,
        refund: &NewRefund,
        audit: Option<&AuditEvent>,
    ) -> Result<CreateRefund, StoreError>;

    /// One of `owner`'s refunds. Other participants' refunds are never found.
    async fn refund(&self, owner: &ClientId, lookup: &RefundLookup) -> Result<Option<Refund>, StoreError>;

    /// The refunds of one of `owner`'s payments, oldest first.
    async fn refunds_of_payment(
        &self,
        owner: &ClientId,
        payment_id: &PaymentId,
    ) -> Result<Vec<Refund>, StoreError>;

    /// Completes up to `limit` asynchronous refunds due by `now`, each with its posting (unless
    /// it fails) and its notification, and returns them.
    async fn complete_refunds(&self, now: Timestamp, limit: u32) -> Result<Vec<Refund>, StoreError>;

    /// A page of `owner`'s refunds (of one status when given: `PROCESSING`, `SUCCESS`,
    /// `FAIL`), newest first, after `after`.
    async fn refunds_page(
        &self,
        owner: &ClientId,
        status: Option<&str>,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError>;
}
