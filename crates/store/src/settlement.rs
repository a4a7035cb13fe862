//! What the store keeps of fees and settlement: participants' terms, the batches and their
//! items (each completed transaction in exactly one batch), and the counts that prove it.

use jiff::civil::Date;
use ocpay_core::Timestamp;
use ocpay_core::fees::FeeSchedule;
use ocpay_core::fx::Rate;
use ocpay_core::ids::ClientId;
use ocpay_core::money::{Currency, Money};

ocpay_core::named_enum! {
    /// What a completed transaction was: each settles once.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum SettlementKind {
        Payment = "PAYMENT",
        Refund = "REFUND",
        /// A paid payment cancelled inside its window.
        Cancel = "CANCEL",
    }
}

/// A participant's own fee schedule and settlement currency; `None` takes the platform's
/// default schedule, or settles each transaction in its own currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettlementTerms {
    pub fees: Option<FeeSchedule>,
    pub settlement_currency: Option<Currency>,
}

ocpay_core::named_enum! {
    /// Where a batch stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum BatchStatus {
        /// Items are being added, chunk by chunk.
        Open = "OPEN",
        /// Its items and totals are final: files are written from it.
        Closed = "CLOSED",
    }
}

/// A settlement batch: one participant, one settlement currency, one cutoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementBatch {
    pub id: String,
    pub owner: ClientId,
    pub currency: Currency,
    /// The settlement day whose end (or the on-demand instant) is the batch's cutoff.
    pub day: Date,
    pub settlement_date: Date,
    pub cutoff: Timestamp,
    pub status: BatchStatus,
    pub count: u64,
    /// The net amount moved from pending to settled: items' settlement amounts, fees and tax
    /// included (negative when refunds outweigh payments).
    pub amount: Money,
    /// The fees and tax in it, in the settlement currency, signed as in the files.
    pub fee: Money,
    pub tax: Money,
    pub created_at: Timestamp,
    /// The settlement time of the files.
    pub closed_at: Option<Timestamp>,
    pub paid_at: Option<Timestamp>,
    pub payout_reference: Option<String>,
}

/// Where a page of a participant's batches ends: the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchCursor {
    pub day: Date,
    pub cutoff: Timestamp,
    pub batch_id: String,
}

impl SettlementBatch {
    pub fn cursor(&self) -> BatchCursor {
        BatchCursor { day: self.day, cutoff: self.cutoff, batch_id: self.id.clone() }
    }
}

/// One completed transaction in a batch, as the files show it. Amounts are signed as they move
/// the merchant's balance: a payment's amount positive and its fee negative, a refund's or
/// cancel's amount negative and the fee it returns positive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementItemRecord {
    pub kind: SettlementKind,
    pub transaction_id: String,
    pub batch_id: String,
    pub owner: ClientId,
    pub reference_merchant_id: Option<String>,
    pub reference_store_id: Option<String>,
    pub original_transaction_id: Option<String>,
    pub transaction_request_id: String,
    pub reference_order_id: Option<String>,
    pub order_description: Option<String>,
    pub completed_at: Timestamp,
    /// In the transaction's currency.
    pub amount: Money,
    pub fee: Money,
    pub tax: Money,
    /// In the settlement currency: `settlement_amount = convert(amount) + settlement_fee +
    /// settlement_tax`.
    pub settlement_amount: Money,
    pub settlement_fee: Money,
    pub settlement_tax: Money,
    /// The settlement rate's pair and price, when the currencies differ.
    pub quote: Option<(String, String)>,
}

/// Where a page of items ends: the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemCursor {
    pub completed_at: Timestamp,
    pub transaction_id: String,
    pub kind: SettlementKind,
}

impl SettlementItemRecord {
    pub fn cursor(&self) -> ItemCursor {
        ItemCursor {
            completed_at: self.completed_at,
            transaction_id: self.transaction_id.clone(),
            kind: self.kind,
        }
    }
}

/// One chunk of a batch to settle.
#[derive(Debug, Clone, PartialEq)]
pub struct SettleChunk {
    pub owner: ClientId,
    pub currency: Currency,
    pub day: Date,
    pub settlement_date: Date,
    /// Transactions completed before it belong to the batch.
    pub cutoff: Timestamp,
    pub now: Timestamp,
    /// Most items added in this chunk's transaction.
    pub limit: u32,
    /// Settlement rates: an item in another currency needs the rate from it to `currency`.
    pub rates: Vec<Rate>,
}

/// What a chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledChunk {
    pub batch: SettlementBatch,
    pub added: u32,
}

/// What `mark_paid` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkPaid {
    /// Paid out: the amount moved from settled to payout, with every closed, unpaid batch of the
    /// participant and currency up to this one.
    Paid {
        amount: Money,
        batches: Vec<String>,
    },
    /// The settled balance is not positive: a negative net carries into later batches.
    NothingToPay {
        balance: Money,
    },
    /// The batch is still open.
    Open,
    /// Paid before, with this reference.
    AlreadyPaid {
        reference: Option<String>,
    },
    NotFound,
}

/// Counts that prove each completed transaction settles exactly once (reconcile check 3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettlementCounts {
    /// Payments paid, cancels of paid payments and successful refunds completed before the
    /// instant asked about.
    pub completed: u64,
    /// Of them, not yet in a batch.
    pub queued: u64,
    /// Of them, in a batch.
    pub itemized: u64,
}
