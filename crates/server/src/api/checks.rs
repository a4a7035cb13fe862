//! The gateway's checks of a request body that need neither the store nor the caller: the
//! parse (naming the field that does not fit) and each API's checks of its fields, exactly as
//! the handlers make them. Public for the fuzz targets, which feed it arbitrary bytes.

use ocpay_protocol::api_log::ApiLogInquiryRequest;
use ocpay_protocol::payments::{CancelRequest, InquiryPaymentRequest, PayRequest};
use ocpay_protocol::refunds::{InquiryRefundRequest, RefundRequest};
use ocpay_protocol::registrations::{
    InquiryRegistrationInfoRequest, InquiryRegistrationStatusRequest, RegistrationRequest,
};
use ocpay_protocol::{Api, ResultCode};

use super::error::ApiError;
use super::gateway::parse;
use super::{api_log, payments, refunds, registrations};

/// Parses `body` as a request to `api` and checks its fields, as the gateway does once the
/// signature has verified and before the handler reads the store. A refusal is the result
/// code and message the caller would be answered with.
#[doc(hidden)]
pub fn check_request(api: Api, body: &[u8]) -> Result<(), (ResultCode, String)> {
    checked(api, body).map_err(|error| {
        let (_, code, message) = error.answer();
        (code, message)
    })
}

fn checked(api: Api, body: &[u8]) -> Result<(), ApiError> {
    match api {
        Api::Pay => payments::pay_command(&parse::<PayRequest>(body)?).map(drop),
        Api::InquiryPayment => {
            let request = parse::<InquiryPaymentRequest>(body)?;
            payments::lookup(&request.payment_id, &request.payment_request_id).map(drop)
        }
        Api::Cancel => {
            let request = parse::<CancelRequest>(body)?;
            payments::lookup(&request.payment_id, &request.payment_request_id).map(drop)
        }
        Api::Refund => refunds::refund_command(&parse::<RefundRequest>(body)?).map(drop),
        Api::InquiryRefund => refunds::lookup(&parse::<InquiryRefundRequest>(body)?).map(drop),
        Api::Registration => {
            registrations::registration_command(&parse::<RegistrationRequest>(body)?).map(drop)
        }
        Api::InquiryRegistrationStatus => {
            registrations::status_query(&parse::<InquiryRegistrationStatusRequest>(body)?).map(drop)
        }
        Api::InquiryRegistrationInfo => {
            registrations::info_lookup(&parse::<InquiryRegistrationInfoRequest>(body)?).map(drop)
        }
        Api::ApiLogInquiry => api_log::query(parse::<ApiLogInquiryRequest>(body)?).map(drop),
    }
}
