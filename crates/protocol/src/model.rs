//! The data objects shared by several APIs: amounts, orders, merchants, stores, order codes.
//!
//! Request-side fields are `Option` so that a missing field reaches the gateway's
//! validation, which answers `PARAM_ILLEGAL` naming it, rather than a generic parse error.

use serde::{Deserialize, Serialize};

use crate::lenient;

/// `{currency, value}`: value is an integer count of minor units, as a string.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Amount {
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub value: Option<String>,
}

impl Amount {
    pub fn new(currency: impl Into<String>, minor_units: i64) -> Amount {
        Amount { currency: Some(currency.into()), value: Some(minor_units.to_string()) }
    }
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Store {
    #[serde(default, deserialize_with = "lenient::string")]
    pub reference_store_id: Option<String>,
    pub store_name: Option<String>,
    #[serde(rename = "storeMCC", default, deserialize_with = "lenient::string")]
    pub store_mcc: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Merchant {
    #[serde(default, deserialize_with = "lenient::string")]
    pub reference_merchant_id: Option<String>,
    #[serde(rename = "merchantMCC", default, deserialize_with = "lenient::string")]
    pub merchant_mcc: Option<String>,
    pub merchant_name: Option<String>,
    pub merchant_display_name: Option<String>,
    pub store: Option<Store>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    #[serde(default, deserialize_with = "lenient::string")]
    pub reference_order_id: Option<String>,
    pub order_description: Option<String>,
    pub order_amount: Option<Amount>,
    pub merchant: Option<Merchant>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFactor {
    pub in_store_payment_scenario: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethod {
    pub payment_method_type: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementStrategy {
    pub settlement_currency: Option<String>,
}

/// One way to show an order code: the text to encode (`TEXT`) or an image URL (`*IMAGE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeDetail {
    pub code_value_type: String,
    pub code_value: String,
    pub display_type: String,
}

/// The order code a till shows: when it expires and how to display it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCodeForm {
    pub payment_method_type: Option<String>,
    pub expire_time: Option<String>,
    #[serde(default)]
    pub code_details: Vec<CodeDetail>,
}

impl OrderCodeForm {
    /// The `TEXT` code value: the URL to encode as a QR code.
    pub fn text_code(&self) -> Option<&str> {
        self.code_details
            .iter()
            .find(|detail| detail.display_type == "TEXT")
            .map(|detail| detail.code_value.as_str())
    }
}

/// The rate a cross-currency payment was charged at: payment currency to wallet currency.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    pub quote_id: Option<String>,
    /// `USD/SGD`: one unit of the first currency costs `quotePrice` of the second.
    pub quote_currency_pair: String,
    /// Decimal text, such as `1.3450`.
    #[serde(deserialize_with = "lenient::decimal")]
    pub quote_price: String,
    pub quote_start_time: Option<String>,
    pub quote_expiry_time: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub guaranteed: Option<bool>,
}

/// Who paid, as the wallet names them.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PspCustomerInfo {
    pub psp_name: Option<String>,
    pub psp_customer_id: Option<String>,
    pub display_customer_id: Option<String>,
}
