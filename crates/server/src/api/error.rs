//! Every way a request can fail, and the one place that maps each to an HTTP status and an
//! AMS result. Internal causes are logged here, once, and never sent to the client.

use http::StatusCode;
use ocpay_core::payment::CancelRefusal;
use ocpay_core::refund::RefundRefusal;
use ocpay_core::registration::RegistrationRefusal;
use ocpay_protocol::ResultCode;
use ocpay_store::StoreError;

use crate::service::{NotRegistered, NotifyUrlOf, ServiceError};

#[derive(Debug)]
pub(crate) enum ApiError {
    MethodNotSupported,
    NoInterface,
    MediaTypeNotAcceptable,
    /// The body is larger than the configured limit.
    BodyTooLarge {
        bytes_max: usize,
    },
    /// A header is missing or malformed.
    Header {
        name: &'static str,
        reason: String,
    },
    /// A body field is missing or malformed; `field` is its JSON path.
    Param {
        field: String,
        reason: String,
    },
    SignatureInvalid(String),
    ClientInvalid,
    KeyNotFound {
        key_version: Option<u32>,
    },
    /// The caller is who it says, but may not make this call: a key or grant outside its
    /// scopes, an ISV without a valid Agent-Token.
    AccessDenied(String),
    Service(ServiceError),
    /// The client id that signed made more requests than its rate allows (`crate::limits`);
    /// `wait` says how long until it may make one more.
    TrafficExceeded {
        wait: std::time::Duration,
    },
    /// The request took longer than the request timeout.
    Timeout {
        timeout: std::time::Duration,
    },
    /// A bug: logged, answered as unknown.
    Internal(String),
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        ApiError::Service(error)
    }
}

impl ApiError {
    pub(crate) fn param(field: impl Into<String>, reason: impl ToString) -> ApiError {
        ApiError::Param { field: field.into(), reason: reason.to_string() }
    }

    /// The HTTP status, result code and message this error answers with.
    pub(crate) fn answer(&self) -> (StatusCode, ResultCode, String) {
        use ResultCode::*;
        let ok = StatusCode::OK;
        match self {
            ApiError::MethodNotSupported => {
                (ok, METHOD_NOT_SUPPORTED, METHOD_NOT_SUPPORTED.default_message().into())
            }
            ApiError::NoInterface => (ok, NO_INTERFACE_DEF, NO_INTERFACE_DEF.default_message().into()),
            ApiError::MediaTypeNotAcceptable => {
                (ok, MEDIA_TYPE_NOT_ACCEPTABLE, "Content-Type must be application/json; charset=UTF-8".into())
            }
            ApiError::BodyTooLarge { bytes_max } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                PARAM_ILLEGAL,
                format!("request body: must be at most {bytes_max} bytes"),
            ),
            ApiError::Header { name, reason } => (ok, PARAM_ILLEGAL, format!("header {name}: {reason}")),
            ApiError::Param { field, reason } => (ok, PARAM_ILLEGAL, format!("{field}: {reason}")),
            ApiError::SignatureInvalid(reason) => (ok, SIGNATURE_INVALID, format!("signature: {reason}")),
            ApiError::ClientInvalid => (ok, CLIENT_INVALID, "header Client-Id: no such client".into()),
            ApiError::KeyNotFound { key_version: Some(version) } => {
                (ok, KEY_NOT_FOUND, format!("keyVersion {version}: no usable key with this version"))
            }
            ApiError::KeyNotFound { key_version: None } => {
                (ok, KEY_NOT_FOUND, "keyVersion: this client has no usable key".into())
            }
            ApiError::AccessDenied(reason) => (ok, ACCESS_DENIED, reason.clone()),
            ApiError::Service(error) => service_answer(error),
            // One message whatever the wait (the Retry-After header says it), so that the
            // refusal's signature can be reused within a second.
            ApiError::TrafficExceeded { .. } => (
                ok,
                REQUEST_TRAFFIC_EXCEED_LIMIT,
                "too many requests from this client id; retry after the time Retry-After says".into(),
            ),
            ApiError::Timeout { timeout } => (
                ok,
                UNKNOWN_EXCEPTION,
                format!(
                    "the request was not answered within {} ms; retry the same request or inquire",
                    timeout.as_millis()
                ),
            ),
            ApiError::Internal(_) => (ok, UNKNOWN_EXCEPTION, UNKNOWN_EXCEPTION.default_message().into()),
        }
    }

    /// What the log says about an internal failure (never sent to the client).
    pub(crate) fn internal_detail(&self) -> Option<String> {
        match self {
            ApiError::Internal(detail) => Some(detail.clone()),
            // A refusal for the wallet's maximum balance is an answer, not a failure.
            ApiError::Service(ServiceError::Store(StoreError::WalletLimit { .. })) => None,
            ApiError::Service(ServiceError::Store(error)) => Some(error.to_string()),
            ApiError::Timeout { timeout } => Some(format!("not answered within {} ms", timeout.as_millis())),
            _ => None,
        }
    }
}

fn service_answer(error: &ServiceError) -> (StatusCode, ResultCode, String) {
    use ResultCode::*;
    let ok = StatusCode::OK;
    match error {
        ServiceError::Expiry(error) => (ok, PARAM_ILLEGAL, format!("paymentExpiryTime: {error}")),
        ServiceError::NotifyUrlRequired => (
            ok,
            PARAM_ILLEGAL,
            "paymentNotifyUrl: required, since no notify URL is configured for this client".into(),
        ),
        ServiceError::NotifyUrlRefused { of, reason } => {
            let field = match of {
                NotifyUrlOf::Payment => "paymentNotifyUrl",
                NotifyUrlOf::Refund => "refundNotifyUrl",
                NotifyUrlOf::Registration => "registrationNotifyURL",
            };
            (ok, PARAM_ILLEGAL, format!("{field}: {reason}"))
        }
        ServiceError::RepeatInconsistent => (
            ok,
            REPEAT_REQ_INCONSISTENT,
            "paymentRequestId: a payment with this id exists with a different amount, order or merchant"
                .into(),
        ),
        ServiceError::RefundRepeatInconsistent => (
            ok,
            REPEAT_REQ_INCONSISTENT,
            "refundRequestId: a refund with this id exists for a different payment or amount".into(),
        ),
        ServiceError::PaymentNotFound => (ok, ORDER_NOT_EXIST, ORDER_NOT_EXIST.default_message().into()),
        ServiceError::RefundNotFound => (ok, ORDER_NOT_EXIST, "the refund does not exist".into()),
        ServiceError::RefundRefused(refusal) => {
            let code = match refusal {
                RefundRefusal::Cancelled => ORDER_IS_CANCELED,
                RefundRefusal::NotPaid => ORDER_STATUS_INVALID,
                RefundRefusal::WindowExceeded => REFUND_WINDOW_EXCEED,
                RefundRefusal::MultipleNotSupported => MULTIPLE_REFUNDS_NOT_SUPPORTED,
                RefundRefusal::AmountExceeded { .. } => REFUND_AMOUNT_EXCEED,
                RefundRefusal::CurrencyMismatch(_) => {
                    return (ok, PARAM_ILLEGAL, format!("refundAmount.currency: {refusal}"));
                }
            };
            (ok, code, refusal.to_string())
        }
        ServiceError::CancelRefused(CancelRefusal::WindowExceeded) => {
            (ok, CANCEL_WINDOW_EXCEED, CancelRefusal::WindowExceeded.to_string())
        }
        ServiceError::CancelRefused(CancelRefusal::Refunded) => {
            (ok, ORDER_STATUS_INVALID, CancelRefusal::Refunded.to_string())
        }
        ServiceError::NotAcquirer(kind) => (
            ok,
            ACCESS_DENIED,
            format!("the registration APIs are for acquirers; this client is a {}", kind.as_str()),
        ),
        ServiceError::RegistrationRefused(refusal) => {
            let (code, field) = match refusal {
                RegistrationRefusal::RepeatInconsistent => {
                    let message = "registrationRequestId: a registration with this registrationRequestId exists with different content";
                    return (ok, REPEAT_REQ_INCONSISTENT, message.into());
                }
                RegistrationRefusal::AlreadyRegistered => {
                    (REPEAT_REGISTRATION, "merchantInfo.referenceMerchantId")
                }
                RegistrationRefusal::UnderReview => {
                    (REGISTRATION_UNDER_REVIEW, "merchantInfo.referenceMerchantId")
                }
            };
            (ok, code, format!("{field}: {refusal}"))
        }
        ServiceError::RegistrationNotFound => {
            (ok, RECORD_NOT_FOUND, RECORD_NOT_FOUND.default_message().into())
        }
        ServiceError::MerchantNotRegistered(refusal) => {
            let field = match refusal {
                NotRegistered::Merchant { .. } => "order.merchant.referenceMerchantId",
                _ => "order.merchant.store.referenceStoreId",
            };
            (ok, MERCHANT_NOT_REGISTERED, format!("{field}: {refusal}"))
        }
        ServiceError::SandboxUnknown => (
            ok,
            UNKNOWN_EXCEPTION,
            "sandbox magic amount: an unknown outcome, as asked; retry the same request or inquire".into(),
        ),
        ServiceError::AmountAboveWalletLimit { max } => (
            ok,
            PARAM_ILLEGAL,
            format!(
                "paymentAmount.value: must be at most {} ({max}), the most a wallet may hold",
                max.minor()
            ),
        ),
        // A cancel or refund would take the payer's wallet over its maximum: nothing was done.
        ServiceError::Store(StoreError::WalletLimit { max, .. }) => (
            ok,
            PROCESS_FAIL,
            format!(
                "the payer's wallet cannot take the money back: it would hold more than its maximum balance of {max}"
            ),
        ),
        // The cause is logged by the gateway; the client learns only that it may retry.
        ServiceError::Store(_) => (ok, UNKNOWN_EXCEPTION, UNKNOWN_EXCEPTION.default_message().into()),
    }
}
