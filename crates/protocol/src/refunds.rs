//! Requests and responses of `refund` and `inquiryRefund`, and the `notifyRefund` body.

use serde::{Deserialize, Serialize};

use crate::lenient;
use crate::model::Amount;
use crate::result::AmsResult;

/// `POST /ams/api/v1/payments/refund`: returns part or all of a paid payment.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest {
    /// The merchant's idempotency key of this refund.
    #[serde(default, deserialize_with = "lenient::string")]
    pub refund_request_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub payment_id: Option<String>,
    /// The merchant's own reference of the refund.
    #[serde(default, deserialize_with = "lenient::string")]
    pub reference_refund_id: Option<String>,
    pub refund_amount: Option<Amount>,
    pub refund_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub is_async_refund: Option<bool>,
    pub refund_notify_url: Option<String>,
    pub extend_info: Option<String>,
    /// Sent by older SDKs; read and ignored.
    pub refund_request_time: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundResponse {
    pub result: AmsResult,
    pub refund_request_id: Option<String>,
    pub refund_id: Option<String>,
    pub payment_id: Option<String>,
    pub refund_amount: Option<Amount>,
    /// When the refund succeeded; absent while it is processing.
    pub refund_time: Option<String>,
}

/// `POST /ams/api/v1/payments/inquiryRefund`: by `refundId` or `refundRequestId` (`refundId`
/// wins when both are given).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryRefundRequest {
    #[serde(default, deserialize_with = "lenient::string")]
    pub refund_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub refund_request_id: Option<String>,
    /// Accepted for compatibility with the official SDKs; a client id has one account.
    #[serde(default, deserialize_with = "lenient::string")]
    pub merchant_account_id: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryRefundResponse {
    /// Whether the inquiry worked; the refund's own outcome is `refundStatus`.
    pub result: AmsResult,
    pub refund_id: Option<String>,
    pub refund_request_id: Option<String>,
    pub refund_amount: Option<Amount>,
    /// `SUCCESS`, `PROCESSING` or `FAIL`.
    pub refund_status: Option<String>,
    /// Only when `refundStatus` is `SUCCESS`.
    pub refund_time: Option<String>,
}

/// `notifyType` of a refund's result notification.
pub const NOTIFY_TYPE_REFUND_RESULT: &str = "REFUND_RESULT";

/// `notifyRefund`: the platform tells the merchant a refund reached a final state. Its
/// `result` is the refund's outcome.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundNotification {
    pub notify_type: String,
    pub result: AmsResult,
    /// `SUCCESS` or `FAIL`.
    pub refund_status: String,
    pub refund_request_id: String,
    pub refund_id: String,
    pub payment_id: String,
    pub refund_amount: Amount,
    /// When the refund succeeded; absent when it failed.
    pub refund_time: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_sdk_refunds_are_read() {
        // As the Python SDK writes it: a numeric amount, and a boolean flag.
        let body = r#"{
           "paymentId": "P1",
           "refundRequestId": 17642045,
           "refundAmount": {"currency": "USD", "value": 500},
           "isAsyncRefund": true,
           "refundNotifyUrl": "https://merchant.example/refunds"
        }"#;
        let request: RefundRequest = serde_json::from_str(body).unwrap();
        assert_eq!(request.refund_request_id.as_deref(), Some("17642045"));
        assert_eq!(request.refund_amount.unwrap().value.as_deref(), Some("500"));
        assert_eq!(request.is_async_refund, Some(true));
        let stringly: RefundRequest = serde_json::from_str(r#"{"isAsyncRefund": "false"}"#).unwrap();
        assert_eq!(stringly.is_async_refund, Some(false));
        assert!(serde_json::from_str::<RefundRequest>(r#"{"isAsyncRefund": "yes"}"#).is_err());
    }
}
