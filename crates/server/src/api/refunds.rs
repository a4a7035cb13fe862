//! `refund` and `inquiryRefund`: parse the request into a command, call the service, render.

use ocpay_core::ids::{ID_CHARS_MAX, PaymentId, RefundId, RefundRequestId};
use ocpay_protocol::refunds::{InquiryRefundRequest, InquiryRefundResponse, RefundRequest, RefundResponse};
use ocpay_store::RefundLookup;

use super::caller::Caller;
use super::error::ApiError;
use super::fields;
use crate::service::refund::RefundCommand;
use crate::service::{inquiry, refund};
use crate::state::AppState;
use crate::wire;

pub(crate) async fn refund(
    state: &AppState,
    caller: &Caller,
    request: RefundRequest,
) -> Result<RefundResponse, ApiError> {
    let command = RefundCommand { agent: caller.agent.clone(), ..refund_command(&request)? };
    let refund = refund::refund(state, &caller.participant, command).await?;
    Ok(wire::refund_response(&refund))
}

pub(super) fn refund_command(request: &RefundRequest) -> Result<RefundCommand, ApiError> {
    let request_id = fields::identifier(&request.refund_request_id, "refundRequestId", ID_CHARS_MAX)?;
    let payment_id = fields::identifier(&request.payment_id, "paymentId", ID_CHARS_MAX)?;
    Ok(RefundCommand {
        request_id: RefundRequestId::parse(&request_id)
            .map_err(|error| ApiError::param("refundRequestId", error))?,
        payment_id: PaymentId::parse(&payment_id).map_err(|error| ApiError::param("paymentId", error))?,
        amount: fields::positive_amount(&request.refund_amount, "refundAmount")?,
        reference_refund_id: fields::optional_identifier(
            &request.reference_refund_id,
            "referenceRefundId",
            ID_CHARS_MAX,
        )?,
        reason: fields::optional_text(&request.refund_reason, "refundReason")?,
        async_requested: request.is_async_refund.unwrap_or(false),
        notify_url: fields::optional_url(&request.refund_notify_url, "refundNotifyUrl")?,
        agent: None,
    })
}

pub(crate) async fn inquire(
    state: &AppState,
    caller: &Caller,
    request: InquiryRefundRequest,
) -> Result<InquiryRefundResponse, ApiError> {
    let lookup = lookup(&request)?;
    let refund = inquiry::inquire_refund(state, &caller.participant.client_id, &lookup).await?;
    Ok(wire::inquiry_refund(&refund))
}

/// `refundId` wins when both ids are given, as AMS documents.
pub(super) fn lookup(request: &InquiryRefundRequest) -> Result<RefundLookup, ApiError> {
    if let Some(id) = &request.refund_id {
        RefundId::parse(id).map(RefundLookup::ById).map_err(|error| ApiError::param("refundId", error))
    } else if let Some(id) = &request.refund_request_id {
        RefundRequestId::parse(id)
            .map(RefundLookup::ByRequestId)
            .map_err(|error| ApiError::param("refundRequestId", error))
    } else {
        Err(ApiError::param("refundId", "refundId or refundRequestId is required"))
    }
}
