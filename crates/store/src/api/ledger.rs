//! Payers and the ledger.

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::money::Money;
use ocpay_core::payer::{Payer, PayerId};

use crate::{LedgerCheck, StoreError};

/// Payers, their wallets and PINs, and the ledger's balances and check.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    async fn create_payer(&self, payer: &Payer) -> Result<(), StoreError>;

    async fn payer(&self, payer: &PayerId) -> Result<Option<Payer>, StoreError>;

    /// Starts a PIN check: false if the payer is locked at `now`. Otherwise the attempt counts
    /// as a wrong PIN until [`LedgerStore::pin_succeeded`] says otherwise, and the `failures_max`-th
    /// in a row locks the payer until `locked_until`. Counting before checking is what keeps
    /// parallel guesses from all being checked before the lock holds.
    async fn pin_attempt(
        &self,
        payer: &PayerId,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Clears the count of wrong PINs.
    async fn pin_succeeded(&self, payer: &PayerId) -> Result<(), StoreError>;

    /// Issues stored value to a payer's wallet; returns the wallet's balance after it.
    async fn top_up(&self, payer: &PayerId, amount: Money, now: Timestamp) -> Result<Money, StoreError>;

    /// The balance of one account (zero when it has no entries).
    async fn balance(&self, account: &Account) -> Result<Money, StoreError>;

    /// Every balance of an owner's accounts, one per currency it has entries in.
    async fn balances(&self, owner: &AccountOwner) -> Result<Vec<Money>, StoreError>;

    /// Checks the whole ledger: postings balance, wallets are not negative, totals are zero.
    async fn ledger_check(&self) -> Result<LedgerCheck, StoreError>;
}
