//! Payments.

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ids::{ClientId, CodeToken, PaymentId};
use ocpay_core::payment::{CancelWindow, FailReason, Payment, PaymentTerms};

use crate::pages::{PageCursor, PaymentFilter};
use crate::{
    AuditEvent, CancelPayment, CreatePayment, FailPayment, PaymentLookup, SandboxFault, SettlePayment,
    Settlement, StoreError,
};

/// Payments: creation under the idempotency key, every transition, the payer's side of an order code, the
/// developer center's list, and the sandbox's one-time faults.
#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// Creates a payment in `PROCESSING`, or returns the one that has its idempotency key.
    async fn create_payment(&self, terms: &PaymentTerms) -> Result<CreatePayment, StoreError> {
        self.create_payment_audited(terms, None).await
    }

    /// As [`PaymentStore::create_payment`], appending `audit` to the audit trail in the same
    /// transaction when the payment is created, so that a crash cannot keep the one without the
    /// other.
    async fn create_payment_audited(
        &self,
        terms: &PaymentTerms,
        audit: Option<&AuditEvent>,
    ) -> Result<CreatePayment, StoreError>;

    /// One of `owner`'s payments. Other participants' payments are never found.
    async fn payment(&self, owner: &ClientId, lookup: &PaymentLookup) -> Result<Option<Payment>, StoreError>;

    /// Several payments in one read: for each `(owner, id)`, that owner's payment or `None`, in
    /// the order asked. The notifier reads a claimed batch's payments this way, one snapshot
    /// instead of a read transaction each.
    async fn payments_by_id(
        &self,
        wanted: &[(ClientId, PaymentId)],
    ) -> Result<Vec<Option<Payment>>, StoreError>;

    /// Cancels one of `owner`'s payments as core decides at `now`. A paid payment inside its
    /// window is reversed in full to the payer in the same transaction.
    async fn cancel_payment(
        &self,
        owner: &ClientId,
        lookup: &PaymentLookup,
        window: &CancelWindow,
        now: Timestamp,
    ) -> Result<CancelPayment, StoreError> {
        self.cancel_payment_audited(owner, lookup, window, now, None).await
    }

    /// As [`PaymentStore::cancel_payment`], appending `audit` to the audit trail in the same
    /// transaction when the answer is [`CancelPayment::Done`].
    async fn cancel_payment_audited(
        &self,
        owner: &ClientId,
        lookup: &PaymentLookup,
        window: &CancelWindow,
        now: Timestamp,
        audit: Option<&AuditEvent>,
    ) -> Result<CancelPayment, StoreError>;

    /// The payment an order code names. The code is the payer's capability: no owner check.
    async fn payment_by_code(&self, code: &CodeToken) -> Result<Option<Payment>, StoreError>;

    /// Pays an order code from a wallet, deciding in the one transaction that the payment is
    /// still payable (not paid, cancelled, failed or expired) and that the wallet covers the
    /// charge; posts payer to merchant, marks `SUCCESS` and queues the notification.
    async fn settle_payment(&self, settlement: &Settlement) -> Result<SettlePayment, StoreError>;

    /// Fails an order code as a wallet would (sandbox outcomes), with its notification.
    async fn fail_payment(
        &self,
        code: &CodeToken,
        reason: FailReason,
        now: Timestamp,
    ) -> Result<FailPayment, StoreError>;

    /// Closes up to `limit` unpaid payments whose code expired by `now` (`FAIL` /
    /// `ORDER_IS_CLOSED`), each with its notification, and returns them.
    async fn expire_payments(&self, now: Timestamp, limit: u32) -> Result<Vec<Payment>, StoreError>;

    /// A page of `owner`'s payments matching `filter`, newest first (ties by id), after `after`.
    async fn payments_page(
        &self,
        owner: &ClientId,
        filter: &PaymentFilter,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError>;

    /// A sandbox fault that happens once: true the first time it is asked for, then false.
    async fn take_sandbox_fault(&self, fault: &SandboxFault, now: Timestamp) -> Result<bool, StoreError>;
}
