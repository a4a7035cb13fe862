//! A store that fails on demand, to prove that a failing database never leaves a business
//! step half-done, and that clients learn only that they may retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use ocpay_core::access::Grant;
use ocpay_core::ids::{ClientId, CodeToken, PaymentId, RegistrationId};
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::money::Money;
use ocpay_core::participant::{KeyVersion, Participant, ParticipantKey};
use ocpay_core::payer::{Payer, PayerId};
use ocpay_core::payment::{CancelWindow, FailReason, Payment, PaymentTerms};
use ocpay_core::refund::Refund;
use ocpay_core::registration::{Decision, Registration, RegistrationTerms};
use ocpay_store::{
    AfterAttempt, Attempt, AuditEvent, CancelPayment, CreatePayment, CreateRefund, CreateRegistration,
    DecideRegistration, FailPayment, LedgerCheck, NewGrant, NewKey, NewRefund, Notification, PaymentLookup,
    RefundLookup, RegistrationLookup, SandboxFault, SettlePayment, Settlement, Store, StoreError,
};

/// What to break. Each switch applies from the next call on.
#[derive(Debug, Default)]
pub struct Faults {
    /// Every business write fails as a full disk would.
    pub writes: AtomicBool,
}

impl Faults {
    pub fn fail_writes(&self, fail: bool) {
        self.writes.store(fail, Ordering::SeqCst);
    }

    fn write(&self) -> Result<(), StoreError> {
        if self.writes.load(Ordering::SeqCst) {
            Err(StoreError::Database("injected fault: database or disk is full (/var/lib/ocpay)".into()))
        } else {
            Ok(())
        }
    }
}

/// A store that delegates to another and fails when its [`Faults`] say so.
pub struct FaultyStore {
    pub inner: Arc<dyn Store>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Store for FaultyStore {
    async fn create_participant(&self, participant: &Participant, key: &NewKey) -> Result<(), StoreError> {
        self.faults.write()?;
        self.inner.create_participant(participant, key).await
    }
    async fn add_participant_key(
        &self,
        client_id: &ClientId,
        key: &NewKey,
    ) -> Result<KeyVersion, StoreError> {
        self.faults.write()?;
        self.inner.add_participant_key(client_id, key).await
    }
    async fn participant(&self, client_id: &ClientId) -> Result<Option<Participant>, StoreError> {
        self.inner.participant(client_id).await
    }
    async fn participants(&self, limit: u32) -> Result<Vec<Participant>, StoreError> {
        self.inner.participants(limit).await
    }
    async fn participant_keys(&self, client_id: &ClientId) -> Result<Vec<ParticipantKey>, StoreError> {
        self.inner.participant_keys(client_id).await
    }
    async fn revoke_participant_key(
        &self,
        client_id: &ClientId,
        key_version: KeyVersion,
        now: Timestamp,
    ) -> Result<ParticipantKey, StoreError> {
        self.faults.write()?;
        self.inner.revoke_participant_key(client_id, key_version, now).await
    }
    async fn create_grant(&self, grant: &NewGrant, now: Timestamp) -> Result<(), StoreError> {
        self.faults.write()?;
        self.inner.create_grant(grant, now).await
    }
    async fn grant_by_token(&self, token_sha256: &str) -> Result<Option<Grant>, StoreError> {
        self.inner.grant_by_token(token_sha256).await
    }
    async fn grants(&self, client_id: &ClientId) -> Result<Vec<Grant>, StoreError> {
        self.inner.grants(client_id).await
    }
    async fn revoke_grant(&self, grant_id: &str, now: Timestamp) -> Result<Grant, StoreError> {
        self.faults.write()?;
        self.inner.revoke_grant(grant_id, now).await
    }
    async fn record_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        self.faults.write()?;
        self.inner.record_audit(events).await
    }
    async fn audit_events(&self, client_id: &ClientId, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.audit_events(client_id, limit).await
    }
    async fn participant_with_key(
        &self,
        client_id: &ClientId,
        key_version: Option<KeyVersion>,
    ) -> Result<Option<(Participant, Option<ParticipantKey>)>, StoreError> {
        self.inner.participant_with_key(client_id, key_version).await
    }
    async fn create_payment(&self, terms: &PaymentTerms) -> Result<CreatePayment, StoreError> {
        self.faults.write()?;
        self.inner.create_payment(terms).await
    }
    async fn payment(&self, owner: &ClientId, lookup: &PaymentLookup) -> Result<Option<Payment>, StoreError> {
        self.inner.payment(owner, lookup).await
    }
    async fn cancel_payment(
        &self,
        owner: &ClientId,
        lookup: &PaymentLookup,
        window: &CancelWindow,
        now: Timestamp,
    ) -> Result<CancelPayment, StoreError> {
        self.faults.write()?;
        self.inner.cancel_payment(owner, lookup, window, now).await
    }
    async fn payment_by_code(&self, code: &CodeToken) -> Result<Option<Payment>, StoreError> {
        self.inner.payment_by_code(code).await
    }
    async fn settle_payment(&self, settlement: &Settlement) -> Result<SettlePayment, StoreError> {
        self.faults.write()?;
        self.inner.settle_payment(settlement).await
    }
    async fn fail_payment(
        &self,
        code: &CodeToken,
        reason: FailReason,
        now: Timestamp,
    ) -> Result<FailPayment, StoreError> {
        self.faults.write()?;
        self.inner.fail_payment(code, reason, now).await
    }
    async fn expire_payments(&self, now: Timestamp, limit: u32) -> Result<Vec<Payment>, StoreError> {
        self.faults.write()?;
        self.inner.expire_payments(now, limit).await
    }
    async fn take_sandbox_fault(&self, fault: &SandboxFault, now: Timestamp) -> Result<bool, StoreError> {
        self.faults.write()?;
        self.inner.take_sandbox_fault(fault, now).await
    }
    async fn create_refund(&self, refund: &NewRefund) -> Result<CreateRefund, StoreError> {
        self.faults.write()?;
        self.inner.create_refund(refund).await
    }
    async fn refund(&self, owner: &ClientId, lookup: &RefundLookup) -> Result<Option<Refund>, StoreError> {
        self.inner.refund(owner, lookup).await
    }
    async fn refunds_of_payment(
        &self,
        owner: &ClientId,
        payment_id: &PaymentId,
    ) -> Result<Vec<Refund>, StoreError> {
        self.inner.refunds_of_payment(owner, payment_id).await
    }
    async fn complete_refunds(&self, now: Timestamp, limit: u32) -> Result<Vec<Refund>, StoreError> {
        self.faults.write()?;
        self.inner.complete_refunds(now, limit).await
    }
    async fn create_registration(&self, terms: &RegistrationTerms) -> Result<CreateRegistration, StoreError> {
        self.faults.write()?;
        self.inner.create_registration(terms).await
    }
    async fn registration(
        &self,
        owner: &ClientId,
        lookup: &RegistrationLookup,
    ) -> Result<Option<Registration>, StoreError> {
        self.inner.registration(owner, lookup).await
    }
    async fn registrations(
        &self,
        owner: Option<&ClientId>,
        reference: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        self.inner.registrations(owner, reference, limit).await
    }
    async fn decide_registration(
        &self,
        owner: Option<&ClientId>,
        id: &RegistrationId,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<DecideRegistration, StoreError> {
        self.faults.write()?;
        self.inner.decide_registration(owner, id, decision, now).await
    }
    async fn decide_due_registrations(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        self.faults.write()?;
        self.inner.decide_due_registrations(now, limit).await
    }
    async fn approved_store(
        &self,
        owner: &ClientId,
        reference_merchant_id: &str,
        reference_store_id: &str,
    ) -> Result<Option<Registration>, StoreError> {
        self.inner.approved_store(owner, reference_merchant_id, reference_store_id).await
    }
    async fn create_payer(&self, payer: &Payer) -> Result<(), StoreError> {
        self.faults.write()?;
        self.inner.create_payer(payer).await
    }
    async fn payer(&self, payer: &PayerId) -> Result<Option<Payer>, StoreError> {
        self.inner.payer(payer).await
    }
    async fn pin_attempt(
        &self,
        payer: &PayerId,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.faults.write()?;
        self.inner.pin_attempt(payer, failures_max, locked_until, now).await
    }
    async fn pin_succeeded(&self, payer: &PayerId) -> Result<(), StoreError> {
        self.faults.write()?;
        self.inner.pin_succeeded(payer).await
    }
    async fn top_up(&self, payer: &PayerId, amount: Money, now: Timestamp) -> Result<Money, StoreError> {
        self.faults.write()?;
        self.inner.top_up(payer, amount, now).await
    }
    async fn balance(&self, account: &Account) -> Result<Money, StoreError> {
        self.inner.balance(account).await
    }
    async fn balances(&self, owner: &AccountOwner) -> Result<Vec<Money>, StoreError> {
        self.inner.balances(owner).await
    }
    async fn ledger_check(&self) -> Result<LedgerCheck, StoreError> {
        self.inner.ledger_check().await
    }
    async fn claim_notifications(
        &self,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        self.faults.write()?;
        self.inner.claim_notifications(now, lease, limit).await
    }
    async fn record_attempt(&self, attempt: &Attempt, after: AfterAttempt) -> Result<(), StoreError> {
        self.faults.write()?;
        self.inner.record_attempt(attempt, after).await
    }
    async fn resend_notifications(&self, subject_id: &str, now: Timestamp) -> Result<u32, StoreError> {
        self.faults.write()?;
        self.inner.resend_notifications(subject_id, now).await
    }
    async fn notifications(&self, subject_id: &str) -> Result<Vec<(Notification, Vec<Attempt>)>, StoreError> {
        self.inner.notifications(subject_id).await
    }
    async fn release_claims(&self) -> Result<(), StoreError> {
        self.inner.release_claims().await
    }
    async fn health(&self) -> Result<(), StoreError> {
        self.faults.write()?;
        self.inner.health().await
    }
}
