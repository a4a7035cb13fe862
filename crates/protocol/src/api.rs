//! The APIs the platform serves, each declared once (path, name, scope, request and response
//! types, audit key): the AMS ones and ocpay's own (`ocpay/...`), and the HTTP headers of a
//! signed message.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{AmsResult, api_log, payments, refunds, registrations};

/// Path prefix of the live APIs.
pub const LIVE_PREFIX: &str = "/ams/api/v1/";
/// Path prefix the official SDKs use for sandbox client ids (`SANDBOX_...`).
pub const SANDBOX_PREFIX: &str = "/ams/sandbox/api/v1/";

/// Header names. HTTP header names are case-insensitive; these are the spellings the official
/// SDKs send and, for responses, the lower-case spellings they look for.
pub mod header {
    pub const CLIENT_ID: &str = "client-id";
    pub const REQUEST_TIME: &str = "request-time";
    pub const RESPONSE_TIME: &str = "response-time";
    pub const SIGNATURE: &str = "signature";
    pub const AGENT_TOKEN: &str = "agent-token";
    pub const CONTENT_TYPE_JSON: &str = "application/json; charset=UTF-8";
}

/// Declares every AMS API once: the `Api` variant, its path after the version prefix, its
/// name in logs and the audit trail, the key scope it needs (a name of `ocpay_core`'s scopes),
/// its request and response types, and what the audit trail records of a request (the
/// idempotency key of a write, or the id an inquiry or a cancel names).
macro_rules! apis {
    ($($api:ident {
        path: $suffix:literal,
        name: $name:literal,
        scope: $scope:literal,
        request: $request:ty,
        response: $response:ty,
        audit_key: |$this:ident| $audit_key:expr $(,)?
    })*) => {
        /// One AMS API served by the platform.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Api {
            $($api,)*
        }

        impl Api {
            pub const ALL: [Api; [$(Api::$api),*].len()] = [$(Api::$api),*];

            /// The path after the version prefix, such as `payments/pay`.
            pub fn suffix(self) -> &'static str {
                match self {
                    $(Api::$api => $suffix,)*
                }
            }

            /// The name used in logs and the audit trail, such as `pay`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Api::$api => $name,)*
                }
            }

            /// The name of the scope a key (and an ISV's grant) needs to call it, such as
            /// `inquiry`.
            pub fn scope(self) -> &'static str {
                match self {
                    $(Api::$api => $scope,)*
                }
            }
        }

        $(
            impl ApiRequest for $request {
                const API: Api = Api::$api;
                type Response = $response;

                fn audit_key(&self) -> Option<&str> {
                    let $this = self;
                    $audit_key
                }
            }

            impl ApiResponse for $response {
                fn result(&self) -> &AmsResult {
                    &self.result
                }
            }
        )*
    };
}

/// The request of one AMS API: which API it calls and what that answers.
pub trait ApiRequest: Serialize + DeserializeOwned + Send + Sync + 'static {
    const API: Api;
    type Response: ApiResponse;

    /// What the audit trail records of the request: the idempotency key of a write, or the
    /// id an inquiry or a cancel names.
    fn audit_key(&self) -> Option<&str>;
}

/// The response of one AMS API.
pub trait ApiResponse: Serialize + DeserializeOwned + Send + Sync + 'static {
    fn result(&self) -> &AmsResult;
}

apis! {
    Pay {
        path: "payments/pay",
        name: "pay",
        scope: "pay",
        request: payments::PayRequest,
        response: payments::PayResponse,
        audit_key: |request| request.payment_request_id.as_deref(),
    }
    InquiryPayment {
        path: "payments/inquiryPayment",
        name: "inquiryPayment",
        scope: "inquiry",
        request: payments::InquiryPaymentRequest,
        response: payments::InquiryPaymentResponse,
        audit_key: |request| request.payment_id.as_deref().or(request.payment_request_id.as_deref()),
    }
    Cancel {
        path: "payments/cancel",
        name: "cancel",
        scope: "cancel",
        request: payments::CancelRequest,
        response: payments::CancelResponse,
        audit_key: |request| request.payment_id.as_deref().or(request.payment_request_id.as_deref()),
    }
    Refund {
        path: "payments/refund",
        name: "refund",
        scope: "refund",
        request: refunds::RefundRequest,
        response: refunds::RefundResponse,
        audit_key: |request| request.refund_request_id.as_deref(),
    }
    InquiryRefund {
        path: "payments/inquiryRefund",
        name: "inquiryRefund",
        scope: "inquiry",
        request: refunds::InquiryRefundRequest,
        response: refunds::InquiryRefundResponse,
        audit_key: |request| request.refund_id.as_deref().or(request.refund_request_id.as_deref()),
    }
    Registration {
        path: "merchants/registration",
        name: "registration",
        scope: "registration",
        request: registrations::RegistrationRequest,
        response: registrations::RegistrationResponse,
        audit_key: |request| request.registration_request_id.as_deref(),
    }
    InquiryRegistrationStatus {
        path: "merchants/inquiryRegistrationStatus",
        name: "inquiryRegistrationStatus",
        scope: "registration",
        request: registrations::InquiryRegistrationStatusRequest,
        response: registrations::InquiryRegistrationStatusResponse,
        audit_key: |request| {
            request.registration_request_id.as_deref().or(request.reference_merchant_id.as_deref())
        },
    }
    InquiryRegistrationInfo {
        path: "merchants/inquiryRegistrationInfo",
        name: "inquiryRegistrationInfo",
        scope: "registration",
        request: registrations::InquiryRegistrationInfoRequest,
        response: registrations::InquiryRegistrationInfoResponse,
        audit_key: |request| request.reference_merchant_id.as_deref(),
    }
    // ocpay's own: the caller's API log (see `api_log`), read with a key that may inquire.
    ApiLogInquiry {
        path: "ocpay/apiLog/inquiry",
        name: "apiLogInquiry",
        scope: "inquiry",
        request: api_log::ApiLogInquiryRequest,
        response: api_log::ApiLogInquiryResponse,
        audit_key: |request| request.after_id.as_deref(),
    }
}

impl Api {
    /// The live path, such as `/ams/api/v1/payments/pay`.
    pub fn path(self) -> String {
        format!("{LIVE_PREFIX}{}", self.suffix())
    }

    /// The path an official SDK would use for this client id: sandbox client ids
    /// (`SANDBOX_...`) go to `/ams/sandbox/api/v1/...`.
    pub fn path_for(self, client_id: &str) -> String {
        if client_id.starts_with("SANDBOX_") {
            format!("{SANDBOX_PREFIX}{}", self.suffix())
        } else {
            self.path()
        }
    }

    /// Finds the API a request path names, under either prefix.
    pub fn from_path(path: &str) -> Option<Api> {
        let suffix = path.strip_prefix(LIVE_PREFIX).or_else(|| path.strip_prefix(SANDBOX_PREFIX))?;
        Api::ALL.into_iter().find(|api| api.suffix() == suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for api in Api::ALL {
            assert_eq!(Api::from_path(&api.path()), Some(api));
            assert_eq!(Api::from_path(&api.path_for("SANDBOX_X")), Some(api));
        }
        assert_eq!(Api::path_for(Api::Pay, "SANDBOX_1"), "/ams/sandbox/api/v1/payments/pay");
        assert_eq!(Api::from_path("/ams/api/v1/payments/payx"), None);
        assert_eq!(Api::from_path("/ams/sandbox/api/v1/merchants/registration"), Some(Api::Registration));
        assert_eq!(Api::from_path("/ams/api/v2/payments/pay"), None);
        assert_eq!(Api::from_path("/ams/api/v1/ocpay/apiLog/inquiry"), Some(Api::ApiLogInquiry));
    }

    #[test]
    fn every_api_is_declared_once_with_its_own_types() {
        let names: std::collections::HashSet<_> = Api::ALL.iter().map(|api| api.name()).collect();
        let suffixes: std::collections::HashSet<_> = Api::ALL.iter().map(|api| api.suffix()).collect();
        assert_eq!((names.len(), suffixes.len()), (Api::ALL.len(), Api::ALL.len()));
        let declared = [
            payments::PayRequest::API,
            payments::InquiryPaymentRequest::API,
            payments::CancelRequest::API,
            refunds::RefundRequest::API,
            refunds::InquiryRefundRequest::API,
            registrations::RegistrationRequest::API,
            registrations::InquiryRegistrationStatusRequest::API,
            registrations::InquiryRegistrationInfoRequest::API,
            api_log::ApiLogInquiryRequest::API,
        ];
        assert_eq!(declared, Api::ALL, "one request type per API, in order");
    }

    #[test]
    fn the_audit_key_is_the_idempotency_key_or_the_id_named() {
        let inquiry = payments::InquiryPaymentRequest {
            payment_id: Some("P1".into()),
            payment_request_id: Some("PR1".into()),
        };
        assert_eq!(inquiry.audit_key(), Some("P1"), "the paymentId wins, as in the lookup");
        let by_request_id =
            payments::CancelRequest { payment_id: None, payment_request_id: Some("PR1".into()) };
        assert_eq!(by_request_id.audit_key(), Some("PR1"));
        let refund =
            refunds::InquiryRefundRequest { refund_request_id: Some("RR1".into()), ..Default::default() };
        assert_eq!(refund.audit_key(), Some("RR1"));
    }
}
