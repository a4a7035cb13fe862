//! The API explorer: pick an API, edit a request body filled in with the participant's own
//! values, and let the page's script (`static/explorer.js`) sign it in the browser with a
//! private key the user pastes or loads, send it to this server's gateway, and verify the
//! answer's signature against the platform keys published here.
//!
//! The private key never reaches the server: the page has no form, its key field has no name,
//! and the script signs with WebCrypto and sends only the signed request to the gateway. A live
//! participant's page signs and copies requests but sends nothing: a live request moves money.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use ocpay_core::participant::ParticipantKind;
use ocpay_core::payment::PaymentStatus;
use ocpay_core::portal::Action;
use ocpay_protocol::Api;
use ocpay_protocol::api_log::ApiLogInquiryRequest;
use ocpay_protocol::model::{Amount, Merchant, Order, Store};
use ocpay_protocol::payments::{CancelRequest, InquiryPaymentRequest, PayRequest};
use ocpay_protocol::refunds::{InquiryRefundRequest, RefundRequest};
use ocpay_protocol::registrations::{
    InquiryRegistrationInfoRequest, InquiryRegistrationStatusRequest, MerchantRegistrationInfo,
    PRODUCT_CODE_IN_STORE, RegistrationRequest, StoreRegistrationInfo,
};
use ocpay_store::PaymentFilter;
use serde::Serialize;

use super::home::{PlatformKey, platform_keys};
use super::{Chrome, PageError, PageResult, render};
use crate::Portal;
use crate::session::Signed;

/// The section's address.
pub(crate) const EXPLORER: &str = "/portal/explorer";

/// One API the explorer offers, with its sample body.
struct Sample {
    name: &'static str,
    /// The path this participant's requests take (the sandbox prefix for a sandbox client id).
    path: String,
    /// The live path, which Alipay's SDKs take and turn into the sandbox one themselves.
    sdk_path: String,
    body: String,
}

#[derive(Template)]
#[template(path = "explorer.html")]
struct Explorer {
    chrome: Chrome,
    client_id: String,
    gateway: String,
    sandbox: bool,
    /// Whether requests carry an Agent-Token (an ISV acts for a merchant).
    agent: bool,
    /// The participant's keys that may sign now, newest first.
    key_versions: Vec<u32>,
    samples: Vec<Sample>,
    /// What every id of the samples ends with, so that the script can make them all new.
    token: String,
    platform_keys: Vec<PlatformKey>,
}

/// The sample amount: USD 12.50, no magic.
const SAMPLE_AMOUNT: i64 = 1250;
const SAMPLE_CURRENCY: &str = "USD";

pub(super) async fn page(State(portal): State<Arc<Portal>>, signed: Signed) -> PageResult {
    signed.may(Action::Read)?;
    let participant = &signed.participant;
    let store = &portal.app.store;
    let now = portal.app.clock.now();
    let mut key_versions: Vec<u32> = store
        .participant_keys(&participant.client_id)
        .await?
        .into_iter()
        .filter(|key| key.revoked_at.is_none() && key.expires_at.is_none_or(|at| at > now))
        .map(|key| key.key_version)
        .collect();
    key_versions.sort_unstable_by(|a, b| b.cmp(a));
    let paid = PaymentFilter { status: Some(PaymentStatus::Success), ..PaymentFilter::default() };
    let newest_paid = store.payments_page(&participant.client_id, &paid, None, 1).await?.into_iter().next();
    let token = super::lists::request_id("explorer");
    let values = Values {
        client_id: participant.client_id.as_str(),
        name: participant.name.as_ref(),
        notify_url: participant.notify_url.as_deref(),
        token: &token,
        paid: newest_paid.as_ref().map(|payment| {
            (
                payment.terms.id.to_string(),
                payment.terms.amount.currency().to_string(),
                payment.terms.amount.minor(),
            )
        }),
    };
    let samples = samples(participant.kind, &values)?;
    Ok(render(&Explorer {
        chrome: Chrome::new(&signed, EXPLORER),
        client_id: participant.client_id.to_string(),
        gateway: portal.app.public_url.clone(),
        sandbox: !signed.is_live(),
        agent: participant.kind == ParticipantKind::Isv,
        key_versions,
        samples,
        token,
        platform_keys: platform_keys(&portal),
    }))
}

/// What the samples are filled in with.
struct Values<'a> {
    client_id: &'a str,
    name: &'a str,
    notify_url: Option<&'a str>,
    /// Every request id ends with it.
    token: &'a str,
    /// The newest paid payment: its id, currency and amount in minor units.
    paid: Option<(String, String, i64)>,
}

/// The APIs a participant of this kind calls, each with a body to start from: the order-code
/// ones for everyone, the registration ones for acquirers, and ocpay's API log.
fn samples(kind: ParticipantKind, values: &Values<'_>) -> Result<Vec<Sample>, PageError> {
    let token = values.token;
    let payment_request_id = format!("pay-{token}");
    let refund_request_id = format!("refund-{token}");
    let registration_request_id = format!("registration-{token}");
    let (merchant_id, store_id) = ("M0001", "S0001");
    let order = Order {
        reference_order_id: Some(format!("order-{token}")),
        order_description: Some(format!("Order at {}", values.name)),
        order_amount: Some(Amount::new(SAMPLE_CURRENCY, SAMPLE_AMOUNT)),
        merchant: Some(Merchant {
            reference_merchant_id: Some(merchant_id.to_owned()),
            merchant_mcc: Some("5812".to_owned()),
            merchant_name: Some(values.name.to_owned()),
            merchant_display_name: None,
            store: Some(Store {
                reference_store_id: Some(store_id.to_owned()),
                store_name: Some(values.name.to_owned()),
                store_mcc: Some("5812".to_owned()),
            }),
        }),
    };
    let mut pay = PayRequest::order_code(
        payment_request_id.clone(),
        Amount::new(SAMPLE_CURRENCY, SAMPLE_AMOUNT),
        order,
    );
    pay.payment_notify_url = values.notify_url.map(str::to_owned);
    let by_request_id =
        || InquiryPaymentRequest { payment_id: None, payment_request_id: Some(payment_request_id.clone()) };
    let (paid_id, paid_currency, paid_amount) = values.paid.clone().unwrap_or_else(|| {
        ("the paymentId of a paid payment".to_owned(), SAMPLE_CURRENCY.to_owned(), SAMPLE_AMOUNT)
    });
    let refund = RefundRequest {
        refund_request_id: Some(refund_request_id.clone()),
        payment_id: Some(paid_id),
        refund_amount: Some(Amount::new(paid_currency, paid_amount)),
        refund_reason: Some("Returned by the customer".to_owned()),
        refund_notify_url: values.notify_url.map(str::to_owned),
        ..RefundRequest::default()
    };
    let inquiry_refund = InquiryRefundRequest {
        refund_id: None,
        refund_request_id: Some(refund_request_id),
        merchant_account_id: None,
    };
    let mut samples = vec![
        sample(Api::Pay, values, &pay)?,
        sample(Api::InquiryPayment, values, &by_request_id())?,
        sample(
            Api::Cancel,
            values,
            &CancelRequest { payment_id: None, payment_request_id: Some(payment_request_id.clone()) },
        )?,
        sample(Api::Refund, values, &refund)?,
        sample(Api::InquiryRefund, values, &inquiry_refund)?,
    ];
    if kind == ParticipantKind::Acquirer {
        let registration = RegistrationRequest {
            registration_request_id: Some(registration_request_id.clone()),
            registration_notify_url: values.notify_url.map(str::to_owned),
            pass_through_info: None,
            merchant_info: Some(MerchantRegistrationInfo {
                reference_merchant_id: Some(format!("M-{token}")),
                merchant_display_name: Some(values.name.to_owned()),
                merchant_mcc: Some("5812".to_owned()),
                ..MerchantRegistrationInfo::default()
            }),
            product_codes: Some(vec![PRODUCT_CODE_IN_STORE.to_owned()]),
            store_info: Some(StoreRegistrationInfo {
                reference_store_id: Some(store_id.to_owned()),
                store_name: Some(values.name.to_owned()),
                store_mcc: Some("5812".to_owned()),
                store_address: None,
            }),
        };
        let status = InquiryRegistrationStatusRequest {
            registration_request_id: Some(registration_request_id),
            ..InquiryRegistrationStatusRequest::default()
        };
        let info = InquiryRegistrationInfoRequest {
            reference_merchant_id: Some(format!("M-{token}")),
            reference_store_id: Some(store_id.to_owned()),
        };
        samples.push(sample(Api::Registration, values, &registration)?);
        samples.push(sample(Api::InquiryRegistrationStatus, values, &status)?);
        samples.push(sample(Api::InquiryRegistrationInfo, values, &info)?);
    }
    let log = ApiLogInquiryRequest { limit: Some("10".to_owned()), ..ApiLogInquiryRequest::default() };
    samples.push(sample(Api::ApiLogInquiry, values, &log)?);
    Ok(samples)
}

fn sample(api: Api, values: &Values<'_>, body: &impl Serialize) -> Result<Sample, PageError> {
    let body = serde_json::to_string_pretty(body).map_err(|error| PageError::Internal(error.to_string()))?;
    Ok(Sample { name: api.name(), path: api.path_for(values.client_id), sdk_path: api.path(), body })
}
