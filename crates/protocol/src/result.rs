//! The AMS `Result` object and the result codes the platform answers with.

use serde::{Deserialize, Serialize};

/// `S` success, `F` failure (do not retry the same request), `U` unknown (retry it, or inquire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResultStatus {
    S,
    F,
    U,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S => "S",
            Self::F => "F",
            Self::U => "U",
        }
    }
}

macro_rules! result_codes {
    ($($code:ident => $status:ident, $message:literal;)*) => {
        /// Every result code the platform can answer with.
        ///
        /// Each has one status and a default message; answers may carry a more precise message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types)]
        pub enum ResultCode {
            $($code,)*
        }

        impl ResultCode {
            pub const ALL: &'static [ResultCode] = &[$(ResultCode::$code,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ResultCode::$code => stringify!($code),)*
                }
            }

            pub fn status(self) -> ResultStatus {
                match self {
                    $(ResultCode::$code => ResultStatus::$status,)*
                }
            }

            pub fn default_message(self) -> &'static str {
                match self {
                    $(ResultCode::$code => $message,)*
                }
            }
        }
    };
}

result_codes! {
    SUCCESS => S, "success";
    ACCESS_DENIED => F, "access is denied";
    CANCEL_WINDOW_EXCEED => F, "the cancel window has closed; refund instead";
    CLIENT_INVALID => F, "the client id is unknown or not allowed to call this API";
    CURRENCY_NOT_SUPPORT => F, "the currency is not supported";
    KEY_NOT_FOUND => F, "no usable key for this client id and key version";
    MERCHANT_NOT_REGISTERED => F, "the merchant and store are not registered and approved for this acquirer";
    MEDIA_TYPE_NOT_ACCEPTABLE => F, "the content type must be application/json";
    METHOD_NOT_SUPPORTED => F, "the HTTP method is not supported; use POST";
    NO_INTERFACE_DEF => F, "no API is defined at this path";
    ORDER_IS_CANCELED => F, "the payment was cancelled";
    ORDER_IS_CLOSED => F, "the payment expired unpaid";
    ORDER_NOT_EXIST => F, "the payment does not exist";
    ORDER_STATUS_INVALID => F, "the payment's status does not allow this";
    PARAM_ILLEGAL => F, "illegal parameters";
    PAYMENT_IN_PROCESS => U, "the payment is being processed";
    PROCESS_FAIL => F, "the business failed";
    MULTIPLE_REFUNDS_NOT_SUPPORTED => F, "this wallet accepts only one refund of a payment";
    RECORD_NOT_FOUND => F, "no such registration";
    REFUND_AMOUNT_EXCEED => F, "the refunds would exceed the paid amount";
    REFUND_IN_PROCESS => U, "the refund is being processed; inquire for its result";
    REFUND_WINDOW_EXCEED => F, "the refund window of this payment has closed";
    REGISTRATION_UNDER_REVIEW => F, "a registration of this merchant and store is under review";
    REPEAT_REGISTRATION => F, "this merchant and store are registered already";
    REPEAT_REQ_INCONSISTENT => F, "a request with this id exists and differs from this one";
    REQUEST_TRAFFIC_EXCEED_LIMIT => U, "too many requests; retry later";
    RISK_REJECT => F, "the payment was rejected by risk control";
    SIGNATURE_INVALID => F, "the signature is invalid";
    UNKNOWN_EXCEPTION => U, "an unknown error occurred; retry the same request or inquire";
    USER_BALANCE_NOT_ENOUGH => F, "the payer's balance is not enough";
    USER_KYC_NOT_QUALIFIED => F, "the payer has not completed identity verification";
}

impl ResultCode {
    pub fn parse(code: &str) -> Option<ResultCode> {
        ResultCode::ALL.iter().copied().find(|candidate| candidate.as_str() == code)
    }
}

/// The `result` object of every response and notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmsResult {
    pub result_code: String,
    pub result_status: ResultStatus,
    #[serde(default)]
    pub result_message: String,
}

impl AmsResult {
    /// A result with the code's default message.
    pub fn of(code: ResultCode) -> AmsResult {
        AmsResult::with_message(code, code.default_message())
    }

    pub fn with_message(code: ResultCode, message: impl Into<String>) -> AmsResult {
        AmsResult {
            result_code: code.as_str().to_owned(),
            result_status: code.status(),
            result_message: message.into(),
        }
    }

    pub fn success() -> AmsResult {
        AmsResult::of(ResultCode::SUCCESS)
    }

    pub fn is_success(&self) -> bool {
        self.result_status == ResultStatus::S
    }

    /// The known code, if the code is one the platform defines.
    pub fn code(&self) -> Option<ResultCode> {
        ResultCode::parse(&self.result_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_and_serialize() {
        for code in ResultCode::ALL {
            assert_eq!(ResultCode::parse(code.as_str()), Some(*code));
        }
        let json = serde_json::to_string(&AmsResult::of(ResultCode::PARAM_ILLEGAL)).unwrap();
        assert_eq!(
            json,
            r#"{"resultCode":"PARAM_ILLEGAL","resultStatus":"F","resultMessage":"illegal parameters"}"#
        );
        assert_eq!(ResultCode::UNKNOWN_EXCEPTION.status(), ResultStatus::U);
    }
}
