//! What the operator's console reads across every participant: payers and their wallets, the
//! ledger's accounts and entries, the notifications not delivered, and where they fail. The
//! platform's daily figures reuse the developer center's ([`crate::DailyActivity`]), and every
//! participant's settlement batches their [`crate::settlement::BatchCursor`].
//!
//! Each read runs on an index made for it (`0016_console_reads`), a keyset page at a time where
//! it lists.

use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::ledger::PostingKind;
use ocpay_core::money::Money;
use ocpay_core::payer::Payer;

use crate::{Attempt, DeliveryStatus, NotificationKind};

/// A payer with the kept balance of each of its wallets, one per currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayerWallets {
    pub payer: Payer,
    pub balances: Vec<Money>,
}

/// One entry of an account, with its posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The posting's id: a page of entries continues below the last one's.
    pub posting_id: i64,
    pub kind: PostingKind,
    /// The payment the posting belongs to, when it does.
    pub payment_id: Option<String>,
    /// The settlement batch the posting belongs to, when it does.
    pub batch_id: Option<String>,
    pub at: Timestamp,
    /// Signed as it moved the account: a credit is positive.
    pub amount: Money,
}

/// The balance of one account of the ledger (its key, such as `funding:sandbox:USD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountBalance {
    pub account: String,
    pub balance: Money,
}

/// How many notifications of one kind stand undelivered in one status, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    pub status: DeliveryStatus,
    pub kind: NotificationKind,
    pub count: u64,
    /// When the oldest of them was created.
    pub oldest: Timestamp,
}

/// A participant's notify URL whose notifications are not getting through: those undelivered
/// that were tried at least once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingEndpoint {
    pub recipient: ClientId,
    pub url: String,
    /// Notifications tried and not delivered, still being retried or failed.
    pub undelivered: u64,
    /// Of those, the ones out of attempts.
    pub failed: u64,
    /// Attempts made at them.
    pub attempts: u64,
    /// When the oldest of them was created.
    pub oldest: Timestamp,
    /// The last attempt at the newest of them, with the subject of its notification (a payment,
    /// refund or registration id).
    pub last: Option<(String, Attempt)>,
}

impl FailingEndpoint {
    pub fn cursor(&self) -> EndpointCursor {
        EndpointCursor { recipient: self.recipient.clone(), url: self.url.clone() }
    }
}

/// Where a page of failing endpoints ends: the next starts after this recipient and URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointCursor {
    pub recipient: ClientId,
    pub url: String,
}
