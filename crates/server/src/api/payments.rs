//! `pay`, `inquiryPayment` and `cancel`: wire requests in, domain commands to the services,
//! wire responses out.

use ocpay_core::ids::{ID_CHARS_MAX, PaymentId, PaymentRequestId};
use ocpay_core::money::Money;
use ocpay_core::payment::{MerchantRef, Order, Payment, PaymentState, StoreRef};
use ocpay_protocol::model::{CodeDetail, OrderCodeForm};
use ocpay_protocol::payments::{
    CancelRequest, CancelResponse, InquiryPaymentRequest, InquiryPaymentResponse, METHOD_CONNECT_WALLET,
    PRODUCT_CODE_IN_STORE, PayRequest, PayResponse, SCENARIO_ORDER_CODE,
};
use ocpay_protocol::{AmsResult, datetime};
use ocpay_store::PaymentLookup;

use super::caller::Caller;
use super::error::ApiError;
use super::fields::{self, required};
use crate::HttpUrl;
use crate::codes::{self, QrSize};
use crate::service::{cancel, inquiry, pay::PayCommand};
use crate::state::AppState;
use crate::wire;

pub(crate) async fn pay(
    state: &AppState,
    caller: &Caller,
    request: PayRequest,
) -> Result<PayResponse, ApiError> {
    let command = PayCommand { agent: caller.agent.clone(), ..pay_command(&request)? };
    let payment = crate::service::pay::pay(state, &caller.participant, command).await?;
    Ok(pay_response(state, &payment))
}

pub(super) fn pay_command(request: &PayRequest) -> Result<PayCommand, ApiError> {
    fields::fixed(&request.product_code, "productCode", PRODUCT_CODE_IN_STORE)?;
    let factor = required(&request.payment_factor, "paymentFactor")?;
    fields::fixed(
        &factor.in_store_payment_scenario,
        "paymentFactor.inStorePaymentScenario",
        SCENARIO_ORDER_CODE,
    )?;
    let method = required(&request.payment_method, "paymentMethod")?;
    fields::fixed(&method.payment_method_type, "paymentMethod.paymentMethodType", METHOD_CONNECT_WALLET)?;
    let request_id = fields::identifier(&request.payment_request_id, "paymentRequestId", ID_CHARS_MAX)?;
    let amount = fields::positive_amount(&request.payment_amount, "paymentAmount")?;
    let order = order(request, amount)?;
    let requested_expiry = request
        .payment_expiry_time
        .as_deref()
        .map(|text| {
            datetime::parse(text).ok_or_else(|| {
                ApiError::param(
                    "paymentExpiryTime",
                    "must be ISO 8601 with an offset, like 2026-01-02T15:04:05+08:00",
                )
            })
        })
        .transpose()?;
    let settlement_currency = match &request.settlement_strategy {
        None => None,
        Some(strategy) => strategy
            .settlement_currency
            .as_deref()
            .map(|code| fields::currency(code, "settlementStrategy.settlementCurrency"))
            .transpose()?,
    };
    Ok(PayCommand {
        request_id: PaymentRequestId::parse(&request_id)
            .map_err(|error| ApiError::param("paymentRequestId", error))?,
        amount,
        order,
        requested_expiry,
        notify_url: fields::optional_url(&request.payment_notify_url, "paymentNotifyUrl")?,
        redirect_url: fields::optional_url(&request.payment_redirect_url, "paymentRedirectUrl")?
            .map(HttpUrl::into_string),
        settlement_currency,
        merchant_region: fields::optional_region(&request.merchant_region, "merchantRegion")?,
        agent: None,
        extend_info: fields::optional_text(&request.extend_info, "extendInfo")?,
    })
}

fn order(request: &PayRequest, amount: Money) -> Result<Order, ApiError> {
    let order = required(&request.order, "order")?;
    let order_amount = fields::positive_amount(&order.order_amount, "order.orderAmount")?;
    if order_amount.currency() != amount.currency() {
        return Err(ApiError::param("order.orderAmount.currency", "must equal paymentAmount.currency"));
    }
    if amount.minor() > order_amount.minor() {
        return Err(ApiError::param("paymentAmount.value", "must not exceed order.orderAmount.value"));
    }
    let merchant = required(&order.merchant, "order.merchant")?;
    let store = required(&merchant.store, "order.merchant.store")?;
    Ok(Order {
        reference_order_id: fields::optional_identifier(
            &order.reference_order_id,
            "order.referenceOrderId",
            ID_CHARS_MAX,
        )?,
        description: fields::text(&order.order_description, "order.orderDescription")?,
        amount: order_amount,
        merchant: MerchantRef {
            reference_merchant_id: fields::identifier(
                &merchant.reference_merchant_id,
                "order.merchant.referenceMerchantId",
                ID_CHARS_MAX,
            )?,
            name: fields::text(&merchant.merchant_name, "order.merchant.merchantName")?,
            mcc: fields::mcc(&merchant.merchant_mcc, "order.merchant.merchantMCC")?,
            display_name: fields::optional_text(
                &merchant.merchant_display_name,
                "order.merchant.merchantDisplayName",
            )?,
            store: StoreRef {
                reference_store_id: fields::identifier(
                    &store.reference_store_id,
                    "order.merchant.store.referenceStoreId",
                    ID_CHARS_MAX,
                )?,
                name: fields::text(&store.store_name, "order.merchant.store.storeName")?,
                mcc: fields::optional_mcc(&store.store_mcc, "order.merchant.store.storeMCC")?,
            },
        },
    })
}

fn pay_response(state: &AppState, payment: &Payment) -> PayResponse {
    let terms = &payment.terms;
    let mut code_details = vec![CodeDetail {
        code_value_type: "QRCODE".into(),
        code_value: codes::code_url(&state.public_url, &terms.code_token),
        display_type: "TEXT".into(),
    }];
    code_details.extend(QrSize::ALL.into_iter().map(|size| CodeDetail {
        code_value_type: "QRCODE".into(),
        code_value: codes::image_url(&state.public_url, &terms.code_token, size),
        display_type: size.display_type().into(),
    }));
    PayResponse {
        result: AmsResult::success(),
        payment_request_id: Some(terms.request_id.to_string()),
        payment_id: Some(terms.id.to_string()),
        payment_amount: Some(wire::amount(terms.amount)),
        payment_create_time: Some(datetime::format(terms.created_at)),
        order_code_form: Some(OrderCodeForm {
            payment_method_type: Some(METHOD_CONNECT_WALLET.into()),
            expire_time: Some(datetime::format(terms.expires_at)),
            code_details,
        }),
    }
}

/// `paymentId` wins when both ids are given, as AMS documents.
pub(super) fn lookup(
    payment_id: &Option<String>,
    payment_request_id: &Option<String>,
) -> Result<PaymentLookup, ApiError> {
    if let Some(id) = payment_id {
        return PaymentId::parse(id)
            .map(PaymentLookup::ById)
            .map_err(|error| ApiError::param("paymentId", error));
    }
    if let Some(id) = payment_request_id {
        return PaymentRequestId::parse(id)
            .map(PaymentLookup::ByRequestId)
            .map_err(|error| ApiError::param("paymentRequestId", error));
    }
    Err(ApiError::param("paymentId", "paymentId or paymentRequestId is required"))
}

pub(crate) async fn inquire(
    state: &AppState,
    caller: &Caller,
    request: InquiryPaymentRequest,
) -> Result<InquiryPaymentResponse, ApiError> {
    let lookup = lookup(&request.payment_id, &request.payment_request_id)?;
    let (payment, refunds) = inquiry::inquire_payment(state, &caller.participant.client_id, &lookup).await?;
    Ok(wire::inquiry(&payment, &refunds, state.clock.now()))
}

pub(crate) async fn cancel(
    state: &AppState,
    caller: &Caller,
    request: CancelRequest,
) -> Result<CancelResponse, ApiError> {
    let lookup = lookup(&request.payment_id, &request.payment_request_id)?;
    let payment = cancel::cancel_payment(state, &caller.participant.client_id, &lookup).await?;
    let cancel_time = match payment.state {
        PaymentState::Cancelled { cancelled_at, .. } => Some(datetime::format(cancelled_at)),
        // Cancelling a failed payment answers S and leaves it FAIL (spec §13.9).
        _ => None,
    };
    Ok(CancelResponse {
        result: AmsResult::success(),
        payment_id: Some(payment.terms.id.to_string()),
        payment_request_id: Some(payment.terms.request_id.to_string()),
        cancel_time,
    })
}
