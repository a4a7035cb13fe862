//! Requests and responses of `pay` (order code), `inquiryPayment` and `cancel`.

use serde::{Deserialize, Serialize};

use crate::lenient;
use crate::model::{
    Amount, Order, OrderCodeForm, PaymentFactor, PaymentMethod, PspCustomerInfo, Quote, SettlementStrategy,
};
use crate::result::AmsResult;

/// The only `productCode` of in-store payments.
pub const PRODUCT_CODE_IN_STORE: &str = "IN_STORE_PAYMENT";
/// `paymentFactor.inStorePaymentScenario` of an order-code payment.
pub const SCENARIO_ORDER_CODE: &str = "OrderCode";
/// `paymentMethod.paymentMethodType` of an order-code payment: any Alipay+ wallet may scan.
pub const METHOD_CONNECT_WALLET: &str = "CONNECT_WALLET";

/// `POST /ams/api/v1/payments/pay` for an order code.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayRequest {
    pub product_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub payment_request_id: Option<String>,
    pub order: Option<Order>,
    pub payment_amount: Option<Amount>,
    pub payment_method: Option<PaymentMethod>,
    pub payment_factor: Option<PaymentFactor>,
    pub payment_expiry_time: Option<String>,
    pub payment_notify_url: Option<String>,
    pub payment_redirect_url: Option<String>,
    pub settlement_strategy: Option<SettlementStrategy>,
    pub merchant_region: Option<String>,
    pub extend_info: Option<String>,
}

impl PayRequest {
    /// An order-code `pay` request with the fixed fields filled in.
    pub fn order_code(payment_request_id: impl Into<String>, amount: Amount, order: Order) -> PayRequest {
        PayRequest {
            product_code: Some(PRODUCT_CODE_IN_STORE.to_owned()),
            payment_request_id: Some(payment_request_id.into()),
            payment_amount: Some(amount),
            order: Some(order),
            payment_method: Some(PaymentMethod {
                payment_method_type: Some(METHOD_CONNECT_WALLET.to_owned()),
            }),
            payment_factor: Some(PaymentFactor {
                in_store_payment_scenario: Some(SCENARIO_ORDER_CODE.to_owned()),
            }),
            ..PayRequest::default()
        }
    }
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayResponse {
    pub result: AmsResult,
    pub payment_request_id: Option<String>,
    pub payment_id: Option<String>,
    pub payment_amount: Option<Amount>,
    pub payment_create_time: Option<String>,
    pub order_code_form: Option<OrderCodeForm>,
}

/// `POST /ams/api/v1/payments/inquiryPayment`: by `paymentId` or `paymentRequestId`
/// (`paymentId` wins when both are given).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryPaymentRequest {
    #[serde(default, deserialize_with = "lenient::string")]
    pub payment_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub payment_request_id: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryPaymentResponse {
    pub result: AmsResult,
    pub payment_status: Option<String>,
    pub payment_result_code: Option<String>,
    pub payment_result_message: Option<String>,
    pub payment_request_id: Option<String>,
    pub payment_id: Option<String>,
    pub payment_amount: Option<Amount>,
    pub actual_payment_amount: Option<Amount>,
    pub payment_quote: Option<Quote>,
    pub payment_create_time: Option<String>,
    pub payment_time: Option<String>,
    pub psp_customer_info: Option<PspCustomerInfo>,
    /// The payment's refunds and cancel, in the order they happened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transactions: Vec<Transaction>,
}

/// `transactionType` of a refund in `transactions`.
pub const TRANSACTION_REFUND: &str = "REFUND";
/// `transactionType` of a cancel in `transactions`.
pub const TRANSACTION_CANCEL: &str = "CANCEL";

/// One later transaction of a payment, as `inquiryPayment` lists it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// The outcome of the transaction itself.
    pub transaction_result: AmsResult,
    pub transaction_id: String,
    /// `REFUND` or `CANCEL`.
    pub transaction_type: String,
    /// `SUCCESS`, `PROCESSING` or `FAIL`.
    pub transaction_status: String,
    pub transaction_amount: Amount,
    pub transaction_request_id: Option<String>,
    pub transaction_time: Option<String>,
}

/// `POST /ams/api/v1/payments/cancel`: by `paymentId` or `paymentRequestId`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelRequest {
    #[serde(default, deserialize_with = "lenient::string")]
    pub payment_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub payment_request_id: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelResponse {
    pub result: AmsResult,
    pub payment_id: Option<String>,
    pub payment_request_id: Option<String>,
    pub cancel_time: Option<String>,
}

/// `notifyType` of a payment's result notification.
pub const NOTIFY_TYPE_PAYMENT_RESULT: &str = "PAYMENT_RESULT";

/// `notifyPayment`: the platform tells the merchant a payment reached a final state. Its
/// `result` is the payment's outcome, not the outcome of a call.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentNotification {
    pub notify_type: String,
    pub result: AmsResult,
    pub payment_request_id: String,
    pub payment_id: String,
    pub payment_amount: Amount,
    pub actual_payment_amount: Option<Amount>,
    pub payment_quote: Option<Quote>,
    pub payment_create_time: Option<String>,
    pub payment_time: Option<String>,
    pub psp_customer_info: Option<PspCustomerInfo>,
}

/// The body a merchant answers a notification with to acknowledge it.
pub const NOTIFICATION_ACK: &str =
    r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;

/// A response that carries only a `result`: what every failed call answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultOnly {
    pub result: AmsResult,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_sdk_numbers_are_read_as_strings() {
        let body = r#"{
           "paymentRequestId": 1764204526,
           "paymentAmount": {"currency": "USD", "value": 1231}
        }"#;
        let request: PayRequest = serde_json::from_str(body).unwrap();
        assert_eq!(request.payment_request_id.as_deref(), Some("1764204526"));
        assert_eq!(request.payment_amount.unwrap().value.as_deref(), Some("1231"));
    }

    #[test]
    fn floats_are_refused() {
        let body = r#"{"paymentAmount": {"currency": "USD", "value": 12.5}}"#;
        assert!(serde_json::from_str::<PayRequest>(body).is_err());
    }

    #[test]
    fn absent_fields_are_not_written() {
        let request = InquiryPaymentRequest { payment_id: Some("P1".into()), payment_request_id: None };
        assert_eq!(serde_json::to_string(&request).unwrap(), r#"{"paymentId":"P1"}"#);
    }
}
