//! The APIs the platform serves, their paths, and the HTTP headers of a signed message.

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

/// One AMS API served by the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Pay,
    InquiryPayment,
    Cancel,
    Refund,
    InquiryRefund,
    Registration,
    InquiryRegistrationStatus,
    InquiryRegistrationInfo,
}

impl Api {
    pub const ALL: [Api; 8] = [
        Api::Pay,
        Api::InquiryPayment,
        Api::Cancel,
        Api::Refund,
        Api::InquiryRefund,
        Api::Registration,
        Api::InquiryRegistrationStatus,
        Api::InquiryRegistrationInfo,
    ];

    /// The path after the version prefix, such as `payments/pay`.
    pub fn suffix(self) -> &'static str {
        match self {
            Api::Pay => "payments/pay",
            Api::InquiryPayment => "payments/inquiryPayment",
            Api::Cancel => "payments/cancel",
            Api::Refund => "payments/refund",
            Api::InquiryRefund => "payments/inquiryRefund",
            Api::Registration => "merchants/registration",
            Api::InquiryRegistrationStatus => "merchants/inquiryRegistrationStatus",
            Api::InquiryRegistrationInfo => "merchants/inquiryRegistrationInfo",
        }
    }

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

    /// The name used in logs and the audit trail, such as `pay`.
    pub fn name(self) -> &'static str {
        match self {
            Api::Pay => "pay",
            Api::InquiryPayment => "inquiryPayment",
            Api::Cancel => "cancel",
            Api::Refund => "refund",
            Api::InquiryRefund => "inquiryRefund",
            Api::Registration => "registration",
            Api::InquiryRegistrationStatus => "inquiryRegistrationStatus",
            Api::InquiryRegistrationInfo => "inquiryRegistrationInfo",
        }
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
    }
}
