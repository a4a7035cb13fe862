//! The three reconciliation files of spec §7 and §13.16-18: transaction details, settlement
//! details and settlement summary.

use ocpay_core::Timestamp;
use ocpay_core::money::Money;

ocpay_core::named_enum! {
    /// What a row of a file reports.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum TransactionType {
        Payment = "PAYMENT",
        Refund = "REFUND",
        /// A paid payment cancelled inside its window (a full reversal).
        Cancel = "CANCEL",
    }
}

/// One row of a transaction details file: a payment, refund or cancel that completed on the
/// file's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionItem {
    /// The participant's client id.
    pub customer_id: String,
    pub reference_merchant_id: Option<String>,
    pub reference_store_id: Option<String>,
    /// The payment id (payments, cancels) or refund id (refunds).
    pub transaction_id: String,
    /// The refunded payment's id (refunds only).
    pub original_transaction_id: Option<String>,
    /// `paymentRequestId` or `refundRequestId`.
    pub transaction_request_id: String,
    /// The merchant's `referenceOrderId`, when it sent one.
    pub reference_transaction_id: Option<String>,
    pub order_description: Option<String>,
    pub transaction_type: TransactionType,
    /// When the transaction completed.
    pub payment_time: Timestamp,
    /// The transaction's own amount: negative for refunds and cancels.
    pub transaction_amount: Money,
}

/// One row of a settlement details file: one transaction of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementItem {
    pub settlement_batch_id: String,
    pub item: TransactionItem,
    /// When the batch settled.
    pub settlement_time: Timestamp,
    /// What this row adds to the merchant's settlement, in the settlement currency: the
    /// transaction amount converted, plus `fee` and `tax` (which are negative for a payment).
    /// Negative for refunds and cancels.
    pub settlement_amount: Money,
    /// `quoteCurrencyPair` and `quotePrice` when the transaction's currency is not the
    /// settlement currency.
    pub quote: Option<(String, String)>,
    /// The fee in the settlement currency: negative for a payment (it reduces the settlement),
    /// positive where a refund or cancel returns it.
    pub fee: Money,
    /// The tax on the fee, in the settlement currency, signed as `fee`.
    pub tax: Money,
}
