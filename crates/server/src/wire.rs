//! Domain values to AMS wire values: one place for what the API responses and the
//! notifications say about a payment, so that both always say the same.

use jiff::Timestamp;
use ocpay_core::money::Money;
use ocpay_core::payment::{Charge, FailReason, Payment, PaymentState};
use ocpay_protocol::model::{Amount, PspCustomerInfo, Quote};
use ocpay_protocol::payments::{InquiryPaymentResponse, NOTIFY_TYPE_PAYMENT_RESULT, PaymentNotification};
use ocpay_protocol::{AmsResult, ResultCode, datetime};
use ocpay_store::Notification;

/// The wallet's name in `pspCustomerInfo.pspName`.
pub(crate) const PSP_NAME: &str = "OCPAY";

pub(crate) fn amount(money: Money) -> Amount {
    Amount::new(money.currency().code(), money.minor())
}

fn quote(charge: &Charge) -> Option<Quote> {
    charge.quote.as_ref().map(|quote| Quote {
        quote_id: None,
        quote_currency_pair: quote.rate.pair(),
        quote_price: quote.rate.price(),
        quote_start_time: Some(datetime::format(quote.quoted_at)),
        quote_expiry_time: None,
        guaranteed: Some(true),
    })
}

fn psp_customer_info(charge: &Charge) -> PspCustomerInfo {
    PspCustomerInfo {
        psp_name: Some(PSP_NAME.into()),
        psp_customer_id: Some(charge.payer.to_string()),
        display_customer_id: Some(charge.payer.masked()),
    }
}

/// The result code and message of a failure reason.
pub(crate) fn failure(reason: FailReason) -> (ResultCode, &'static str) {
    let code = match reason {
        FailReason::OrderIsClosed => ResultCode::ORDER_IS_CLOSED,
        FailReason::UserBalanceNotEnough => ResultCode::USER_BALANCE_NOT_ENOUGH,
        FailReason::RiskReject => ResultCode::RISK_REJECT,
        FailReason::UserKycNotQualified => ResultCode::USER_KYC_NOT_QUALIFIED,
    };
    (code, code.default_message())
}

/// `paymentResultCode` and message: the outcome of the payment itself.
fn payment_result(state: PaymentState) -> (ResultCode, &'static str) {
    match state {
        PaymentState::Processing => (ResultCode::PAYMENT_IN_PROCESS, "the payment is waiting for the payer"),
        PaymentState::Success { .. } => (ResultCode::SUCCESS, "success"),
        PaymentState::Fail { reason, .. } => failure(reason),
        PaymentState::Cancelled { .. } => {
            (ResultCode::ORDER_IS_CANCELED, "the merchant cancelled the payment")
        }
    }
}

/// What `inquiryPayment` answers about a payment at `now`.
pub(crate) fn inquiry(payment: &Payment, now: Timestamp) -> InquiryPaymentResponse {
    let terms = &payment.terms;
    let state = payment.effective_state(now);
    let (result_code, result_message) = payment_result(state);
    // Only a payment that stands paid reports how it was paid.
    let paid = match state {
        PaymentState::Success { paid_at } => payment.charge.as_ref().map(|charge| (paid_at, charge)),
        _ => None,
    };
    InquiryPaymentResponse {
        result: AmsResult::success(),
        payment_status: Some(state.status().as_str().into()),
        payment_result_code: Some(result_code.as_str().into()),
        payment_result_message: Some(result_message.into()),
        payment_request_id: Some(terms.request_id.to_string()),
        payment_id: Some(terms.id.to_string()),
        payment_amount: Some(amount(terms.amount)),
        actual_payment_amount: paid.map(|(_, charge)| amount(charge.amount)),
        payment_quote: paid.and_then(|(_, charge)| quote(charge)),
        payment_create_time: Some(datetime::format(terms.created_at)),
        payment_time: paid.map(|(paid_at, _)| datetime::format(paid_at)),
        psp_customer_info: paid.map(|(_, charge)| psp_customer_info(charge)),
    }
}

/// The `notifyPayment` body of a notification: built from the event it recorded, so every
/// attempt sends the same body whatever happened to the payment since.
pub(crate) fn payment_notification(payment: &Payment, notification: &Notification) -> PaymentNotification {
    let terms = &payment.terms;
    let succeeded = notification.event_status == "SUCCESS";
    let result = if succeeded {
        AmsResult::success()
    } else {
        let code = ResultCode::parse(&notification.event_code).unwrap_or(ResultCode::PROCESS_FAIL);
        AmsResult::with_message(code, code.default_message())
    };
    let charge = payment.charge.as_ref().filter(|_| succeeded);
    PaymentNotification {
        notify_type: NOTIFY_TYPE_PAYMENT_RESULT.into(),
        result,
        payment_request_id: terms.request_id.to_string(),
        payment_id: terms.id.to_string(),
        payment_amount: amount(terms.amount),
        actual_payment_amount: charge.map(|charge| amount(charge.amount)),
        payment_quote: charge.and_then(quote),
        payment_create_time: Some(datetime::format(terms.created_at)),
        payment_time: succeeded.then(|| datetime::format(notification.event_at)),
        psp_customer_info: charge.map(psp_customer_info),
    }
}
