//! The notification outbox.

use async_trait::async_trait;
use ocpay_core::Timestamp;

use crate::{AfterAttempt, Attempt, Notification, StoreError};

/// The notification outbox: claims, delivery attempts and resends.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Claims up to `limit` notifications due at `now` for `lease`: no other claim sees them
    /// until the lease ends or an attempt is recorded.
    async fn claim_notifications(
        &self,
        now: Timestamp,
        lease: jiff::SignedDuration,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Records attempts and what follows each, releasing their claims, in one transaction, and
    /// answers each in its place. Only the attempt after its notification's last recorded one
    /// is accepted; another is answered `Conflict` (its sender had lost the claim), and one of
    /// a notification that does not exist `NotFound`: neither writes anything, and the others
    /// are recorded all the same. Any other failure records none of them.
    async fn record_attempts(
        &self,
        attempts: &[(Attempt, AfterAttempt)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError>;

    /// Records one attempt: [`NotificationStore::record_attempts`] of one.
    async fn record_attempt(&self, attempt: &Attempt, after: AfterAttempt) -> Result<(), StoreError> {
        let answers = self.record_attempts(&[(attempt.clone(), after)]).await?;
        answers.into_iter().next().unwrap_or(Err(StoreError::Corrupt("an attempt left unanswered".into())))
    }

    /// Queues every notification about `subject_id` (a payment, refund or registration id) for an attempt at
    /// `now`, delivered or not; returns how many. An attempt in flight keeps its claim, and the
    /// resend follows it.
    async fn resend_notifications(&self, subject_id: &str, now: Timestamp) -> Result<u32, StoreError>;

    /// The notifications about a subject, each with its attempts in order.
    async fn notifications(&self, subject_id: &str) -> Result<Vec<(Notification, Vec<Attempt>)>, StoreError>;

    /// Releases every claim (on start: a previous run's claims died with it). On a database
    /// that several servers share it does nothing: a starting server cannot tell a dead
    /// server's claims from a live one's, so claims return when their lease ends.
    async fn release_claims(&self) -> Result<(), StoreError>;

    /// Releases the claims of one server that stops with attempts cut off: each is a
    /// notification id and the end of the lease it was claimed for, and is due again at once,
    /// on a shared database too. A claim taken since by another server (its lease ended) has
    /// another end and is left alone. Returns how many were released.
    async fn release_notification_claims(&self, claims: &[(String, Timestamp)]) -> Result<u64, StoreError>;
}
