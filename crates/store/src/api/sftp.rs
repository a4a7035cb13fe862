//! SFTP accounts.

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;

use crate::{SftpAccount, SftpAccountChange, SftpLoginOutcome, StoreError};

/// Participants' SFTP accounts and their logins.
#[async_trait]
pub trait SftpStore: Send + Sync {
    /// Creates a participant's SFTP account, or changes the one it has: a public key is added
    /// (once: a key already there stays as it is), a password replaces the old one, an
    /// allow-list (when given) replaces the old one. Returns the account and whether it is new.
    async fn upsert_sftp_account(
        &self,
        change: &SftpAccountChange,
        now: Timestamp,
    ) -> Result<(SftpAccount, bool), StoreError>;

    /// Every SFTP account, by client id.
    async fn sftp_accounts(&self) -> Result<Vec<SftpAccount>, StoreError>;

    async fn sftp_account(&self, client_id: &ClientId) -> Result<Option<SftpAccount>, StoreError>;

    /// Removes an SFTP account; false if there was none.
    async fn remove_sftp_account(&self, client_id: &ClientId) -> Result<bool, StoreError>;

    /// Removes one public key (as kept: type and data) from an SFTP account; false when the
    /// account has no such key, or there is no account.
    async fn remove_sftp_public_key(&self, client_id: &ClientId, key: &str) -> Result<bool, StoreError>;

    /// Records a login's outcome and returns the account as it is after it (`None` when it does
    /// not exist). A success clears the failures and stamps the last login; a failure counts,
    /// and the `failures_max`-th in a row locks the account until `locked_until`. A failure
    /// while locked changes nothing (the lockout keeps its end); the first one after a lockout
    /// ended starts a new count.
    async fn record_sftp_login(
        &self,
        client_id: &ClientId,
        outcome: SftpLoginOutcome,
        now: Timestamp,
    ) -> Result<Option<SftpAccount>, StoreError>;

    /// Starts a password check: false if the account is locked at `now` (or does not exist).
    /// Otherwise the attempt counts as a failure until a success is recorded
    /// ([`SftpStore::record_sftp_login`]), and the `failures_max`-th in a row locks the account
    /// until `locked_until`. As with [`LedgerStore::pin_attempt`], counting before checking is what
    /// keeps parallel guesses from all being checked before the lock holds.
    ///
    /// [`LedgerStore::pin_attempt`]: crate::LedgerStore::pin_attempt
    async fn sftp_login_attempt(
        &self,
        client_id: &ClientId,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}
