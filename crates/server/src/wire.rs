//! Domain values to AMS wire values: one place for what the API responses and the
//! notifications say about a payment, a refund or a merchant registration, so that both always
//! say the same.

use jiff::Timestamp;
use ocpay_core::access::Grant;
use ocpay_core::money::Money;
use ocpay_core::payment::{Charge, FailReason, Payment, PaymentState};
use ocpay_core::refund::{Refund, RefundState};
use ocpay_core::registration::Registration;
use ocpay_protocol::agents::{AuthorizationNotification, NOTIFY_TYPE_AGENT_AUTHORIZATION};
use ocpay_protocol::model::{Amount, PspCustomerInfo, Quote};
use ocpay_protocol::payments::{
    InquiryPaymentResponse, NOTIFY_TYPE_PAYMENT_RESULT, PaymentNotification, TRANSACTION_CANCEL,
    TRANSACTION_REFUND, Transaction,
};
use ocpay_protocol::refunds::{
    InquiryRefundResponse, NOTIFY_TYPE_REFUND_RESULT, RefundNotification, RefundResponse,
};
use ocpay_protocol::registrations::{
    InquiryRegistrationInfoResponse, InquiryRegistrationStatusResponse, NOTIFY_TYPE_REGISTRATION_STATUS,
    PspRegistrationResult, RegistrationContent, RegistrationNotification, RegistrationResult,
};
use ocpay_protocol::{AmsResult, ResultCode, datetime};
use ocpay_store::{Notification, NotificationEvent};

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

/// What `inquiryPayment` answers about a payment at `now`, with its refunds.
pub(crate) fn inquiry(payment: &Payment, refunds: &[Refund], now: Timestamp) -> InquiryPaymentResponse {
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
        transactions: transactions(payment, refunds),
    }
}

/// The payment's refunds and its cancel, in the order they happened. A cancel has no id of
/// its own: it is named by the payment's ids, as `cancel` names it.
fn transactions(payment: &Payment, refunds: &[Refund]) -> Vec<Transaction> {
    let mut listed: Vec<(Timestamp, Transaction)> = refunds
        .iter()
        .map(|refund| {
            let terms = &refund.terms;
            let transaction = Transaction {
                transaction_result: refund_result(refund.state),
                transaction_id: terms.id.to_string(),
                transaction_type: TRANSACTION_REFUND.into(),
                transaction_status: refund.state.status().into(),
                transaction_amount: amount(terms.amount),
                transaction_request_id: Some(terms.request_id.to_string()),
                transaction_time: refund.state.finished_at().map(datetime::format),
            };
            (terms.created_at, transaction)
        })
        .collect();
    if let PaymentState::Cancelled { cancelled_at, .. } = payment.state {
        let cancel = Transaction {
            transaction_result: AmsResult::success(),
            transaction_id: payment.terms.id.to_string(),
            transaction_type: TRANSACTION_CANCEL.into(),
            transaction_status: "SUCCESS".into(),
            transaction_amount: amount(payment.terms.amount),
            transaction_request_id: Some(payment.terms.request_id.to_string()),
            transaction_time: Some(datetime::format(cancelled_at)),
        };
        listed.push((cancelled_at, cancel));
    }
    listed.sort_by_key(|(at, _)| *at);
    listed.into_iter().map(|(_, transaction)| transaction).collect()
}

/// The outcome of a refund itself, as a `Result`.
fn refund_result(state: RefundState) -> AmsResult {
    match state {
        RefundState::Success { .. } => AmsResult::success(),
        RefundState::Processing { .. } => AmsResult::of(ResultCode::REFUND_IN_PROCESS),
        RefundState::Fail { .. } => {
            AmsResult::with_message(ResultCode::PROCESS_FAIL, "the wallet could not refund")
        }
    }
}

/// What `refund` answers about a refund it accepted: `S` with its time once it succeeded,
/// `U / REFUND_IN_PROCESS` while the wallet is still working on it, `F` if that failed.
pub(crate) fn refund_response(refund: &Refund) -> RefundResponse {
    let terms = &refund.terms;
    RefundResponse {
        result: refund_result(refund.state),
        refund_request_id: Some(terms.request_id.to_string()),
        refund_id: Some(terms.id.to_string()),
        payment_id: Some(terms.payment_id.to_string()),
        refund_amount: Some(amount(terms.amount)),
        refund_time: refund_time(refund.state),
    }
}

fn refund_time(state: RefundState) -> Option<String> {
    match state {
        RefundState::Success { refunded_at } => Some(datetime::format(refunded_at)),
        _ => None,
    }
}

/// What `inquiryRefund` answers about a refund.
pub(crate) fn inquiry_refund(refund: &Refund) -> InquiryRefundResponse {
    let terms = &refund.terms;
    InquiryRefundResponse {
        result: AmsResult::success(),
        refund_id: Some(terms.id.to_string()),
        refund_request_id: Some(terms.request_id.to_string()),
        refund_amount: Some(amount(terms.amount)),
        refund_status: Some(refund.state.status().into()),
        refund_time: refund_time(refund.state),
    }
}

/// The notification that hands an ISV its Agent-Token.
pub(crate) fn authorization_notification(grant: &Grant, token: &str) -> AuthorizationNotification {
    AuthorizationNotification {
        notify_type: NOTIFY_TYPE_AGENT_AUTHORIZATION.into(),
        result: AmsResult::success(),
        client_id: grant.isv.to_string(),
        auth_client_id: grant.merchant.to_string(),
        customer_id: grant.merchant.to_string(),
        grant_id: grant.id.clone(),
        scopes: grant.scopes.to_string(),
        auth_time: datetime::format(grant.created_at),
        access_token: token.to_owned(),
        access_token_expiry_time: grant.expires_at.map(datetime::format),
    }
}

/// The `notifyRefund` body of a notification, built from the refund's final state.
pub(crate) fn refund_notification(refund: &Refund) -> RefundNotification {
    let terms = &refund.terms;
    RefundNotification {
        notify_type: NOTIFY_TYPE_REFUND_RESULT.into(),
        result: refund_result(refund.state),
        refund_status: refund.state.status().into(),
        refund_request_id: terms.request_id.to_string(),
        refund_id: terms.id.to_string(),
        payment_id: terms.payment_id.to_string(),
        refund_amount: amount(terms.amount),
        refund_time: refund_time(refund.state),
    }
}

/// How the platform words what a notification reports: the status and the result code of the
/// event (a payment's failure reason is its code). The store keeps only the event.
pub(crate) fn event_words(event: NotificationEvent) -> (&'static str, ResultCode) {
    match event {
        NotificationEvent::Paid | NotificationEvent::RefundSucceeded => ("SUCCESS", ResultCode::SUCCESS),
        NotificationEvent::PaymentFailed(reason) => ("FAIL", failure(reason).0),
        NotificationEvent::RefundFailed => ("FAIL", ResultCode::PROCESS_FAIL),
        NotificationEvent::Granted => ("GRANTED", ResultCode::SUCCESS),
        NotificationEvent::RegistrationApproved => ("APPROVED", ResultCode::SUCCESS),
        NotificationEvent::RegistrationRejected => ("REJECTED", ResultCode::SUCCESS),
    }
}

/// The `notifyPayment` body of a notification: built from the event it recorded, so every
/// attempt sends the same body whatever happened to the payment since.
pub(crate) fn payment_notification(payment: &Payment, notification: &Notification) -> PaymentNotification {
    let terms = &payment.terms;
    let succeeded = notification.event == NotificationEvent::Paid;
    let result = if succeeded {
        AmsResult::success()
    } else {
        let (_, code) = event_words(notification.event);
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

fn registration_result(registration: &Registration) -> RegistrationResult {
    RegistrationResult {
        registration_status: registration.state.status().into(),
        reject_reasons: registration.state.reject_reason().map(str::to_owned),
    }
}

/// The platform is the one payment service provider that reviews a registration.
fn psp_registration_results(registration: &Registration) -> Vec<PspRegistrationResult> {
    vec![PspRegistrationResult {
        psp_name: PSP_NAME.into(),
        registration_result: registration_result(registration),
    }]
}

pub(crate) fn inquiry_registration_status(registration: &Registration) -> InquiryRegistrationStatusResponse {
    InquiryRegistrationStatusResponse {
        result: AmsResult::success(),
        registration_result: Some(registration_result(registration)),
        psp_registration_result_list: Some(psp_registration_results(registration)),
    }
}

/// What was registered, read back from the registration's stored content.
pub(crate) fn inquiry_registration_info(
    registration: &Registration,
) -> Result<InquiryRegistrationInfoResponse, serde_json::Error> {
    let content: RegistrationContent = serde_json::from_str(&registration.terms.content)?;
    Ok(InquiryRegistrationInfoResponse {
        result: AmsResult::success(),
        merchant_info: Some(content.merchant_info),
        store_info: Some(content.store_info),
        product_codes: Some(content.product_codes),
    })
}

/// The `notifyRegistrationStatus` body of a decided registration (a decision is final, so
/// every attempt says the same).
pub(crate) fn registration_notification(registration: &Registration) -> RegistrationNotification {
    let terms = &registration.terms;
    RegistrationNotification {
        notify_type: NOTIFY_TYPE_REGISTRATION_STATUS.into(),
        result: AmsResult::success(),
        reference_merchant_id: terms.reference_merchant_id.clone(),
        registration_request_id: terms.request_id.to_string(),
        reference_store_id: Some(terms.reference_store_id.clone()),
        registration_result: registration_result(registration),
        psp_registration_result_list: psp_registration_results(registration),
    }
}
