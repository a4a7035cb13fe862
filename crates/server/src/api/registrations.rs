//! `registration`, `inquiryRegistrationStatus` and `inquiryRegistrationInfo`: parse the request
//! (naming the JSON path of anything malformed), call the service, render.

use ocpay_core::ids::{ID_CHARS_MAX, RegistrationRequestId};
use ocpay_core::participant::Participant;
use ocpay_core::registration::Registration;
use ocpay_core::registration::STORE_ID_CHARS_MAX;
use ocpay_protocol::registrations::{
    Address, InquiryRegistrationInfoRequest, InquiryRegistrationInfoResponse,
    InquiryRegistrationStatusRequest, InquiryRegistrationStatusResponse, PRODUCT_CODE_IN_STORE,
    RegistrationContent, RegistrationRequest, RegistrationResponse,
};
use ocpay_protocol::{AmsResult, ResultCode};
use ocpay_store::RegistrationLookup;

use super::caller::Caller;
use super::error::ApiError;
use super::fields::{self, NAME_CHARS_MAX, required};
use crate::service::registrations::{self, RegisterCommand};
use crate::service::{Context, ServiceError};
use crate::state::AppState;
use crate::wire;

/// Longest `passThroughInfo`.
const PASS_THROUGH_CHARS_MAX: usize = 2048;

pub(crate) async fn register(
    state: &AppState,
    caller: &Caller,
    request: RegistrationRequest,
) -> Result<RegistrationResponse, ApiError> {
    // Acquirers only, before the request's content is checked.
    registrations::acquirer(&caller.participant)?;
    registrations::register(state, &caller.participant, registration_command(&request)?).await?;
    Ok(RegistrationResponse { result: AmsResult::success(), pass_through_info: request.pass_through_info })
}

/// Why the developer center's registration was refused, as the gateway would answer it.
#[derive(Debug)]
pub struct Refused {
    pub code: ResultCode,
    /// Names the field at fault, by its JSON path.
    pub message: String,
    /// What went wrong inside, for the log only, when it was no refusal but a failure.
    pub internal: Option<String>,
}

/// The gateway's `registration` call for a signed-in acquirer of the developer center ("register
/// again"): the same checks of the request and the same use case, so that both accept and refuse
/// alike.
pub async fn register_request(
    cx: &Context,
    owner: &Participant,
    request: &RegistrationRequest,
) -> Result<Registration, Refused> {
    let attempt = async {
        registrations::acquirer(owner)?;
        Ok::<_, ApiError>(registrations::register(cx, owner, registration_command(request)?).await?)
    };
    attempt.await.map_err(|error| {
        let (_, code, message) = error.answer();
        Refused { code, message, internal: error.internal_detail() }
    })
}

fn optional_address(address: &Option<Address>, field: &str) -> Result<(), ApiError> {
    if let Some(address) = address {
        fields::optional_region(&address.region, &format!("{field}.region"))?;
    }
    Ok(())
}

pub(super) fn registration_command(request: &RegistrationRequest) -> Result<RegisterCommand, ApiError> {
    let request_id =
        fields::identifier(&request.registration_request_id, "registrationRequestId", ID_CHARS_MAX)?;
    let notify_url = fields::optional_url(&request.registration_notify_url, "registrationNotifyURL")?;
    fields::optional_bounded(&request.pass_through_info, "passThroughInfo", PASS_THROUGH_CHARS_MAX)?;

    let merchant = required(&request.merchant_info, "merchantInfo")?;
    let merchant_id = fields::identifier(
        &merchant.reference_merchant_id,
        "merchantInfo.referenceMerchantId",
        ID_CHARS_MAX,
    )?;
    fields::optional_bounded(
        &merchant.merchant_display_name,
        "merchantInfo.merchantDisplayName",
        NAME_CHARS_MAX,
    )?;
    fields::optional_mcc(&merchant.merchant_mcc, "merchantInfo.merchantMCC")?;
    for (n, website) in merchant.websites.iter().flatten().enumerate() {
        fields::optional_url(&website.url, &format!("merchantInfo.websites[{n}].url"))?;
    }
    optional_address(&merchant.merchant_address, "merchantInfo.merchantAddress")?;

    let product_codes = required(&request.product_codes, "productCodes")?;
    if product_codes.is_empty() {
        return Err(ApiError::param("productCodes", format!("must list {PRODUCT_CODE_IN_STORE}")));
    }
    for (n, code) in product_codes.iter().enumerate() {
        if code != PRODUCT_CODE_IN_STORE {
            return Err(ApiError::param(
                format!("productCodes[{n}]"),
                format!("{code} is not supported; the only product is {PRODUCT_CODE_IN_STORE}"),
            ));
        }
    }

    let store = required(&request.store_info, "storeInfo")?;
    let store_id =
        fields::identifier(&store.reference_store_id, "storeInfo.referenceStoreId", STORE_ID_CHARS_MAX)?;
    fields::bounded(&store.store_name, "storeInfo.storeName", NAME_CHARS_MAX)?;
    fields::optional_mcc(&store.store_mcc, "storeInfo.storeMCC")?;
    optional_address(&store.store_address, "storeInfo.storeAddress")?;

    let content = RegistrationContent {
        merchant_info: merchant.clone(),
        store_info: store.clone(),
        product_codes: product_codes.clone(),
    };
    Ok(RegisterCommand {
        request_id: RegistrationRequestId::parse(&request_id)
            .map_err(|error| ApiError::param("registrationRequestId", error))?,
        reference_merchant_id: merchant_id,
        reference_store_id: store_id,
        content: serde_json::to_string(&content).map_err(|error| ApiError::Internal(error.to_string()))?,
        notify_url,
    })
}

/// By `registrationRequestId` when given (the other ids, when also given, must match it), or
/// else the newest registration of `referenceMerchantId` (and `referenceStoreId`).
pub(crate) async fn inquire_status(
    state: &AppState,
    caller: &Caller,
    request: InquiryRegistrationStatusRequest,
) -> Result<InquiryRegistrationStatusResponse, ApiError> {
    registrations::acquirer(&caller.participant)?;
    let StatusQuery { lookup, merchant_id, store_id } = status_query(&request)?;
    let registration = registrations::inquire(state, &caller.participant, &lookup).await?;
    let terms = &registration.terms;
    if merchant_id.is_some_and(|id| id != terms.reference_merchant_id)
        || store_id.is_some_and(|id| id != terms.reference_store_id)
    {
        return Err(ServiceError::RegistrationNotFound.into());
    }
    Ok(wire::inquiry_registration_status(&registration))
}

/// What an `inquiryRegistrationStatus` request asks for: the lookup, and the ids the found
/// registration must also have.
pub(super) struct StatusQuery {
    pub(super) lookup: RegistrationLookup,
    pub(super) merchant_id: Option<String>,
    pub(super) store_id: Option<String>,
}

pub(super) fn status_query(request: &InquiryRegistrationStatusRequest) -> Result<StatusQuery, ApiError> {
    let merchant_id =
        fields::optional_identifier(&request.reference_merchant_id, "referenceMerchantId", ID_CHARS_MAX)?;
    let store_id =
        fields::optional_identifier(&request.reference_store_id, "referenceStoreId", STORE_ID_CHARS_MAX)?;
    let lookup = match (&request.registration_request_id, &merchant_id) {
        (Some(id), _) => RegistrationRequestId::parse(id)
            .map(RegistrationLookup::ByRequestId)
            .map_err(|error| ApiError::param("registrationRequestId", error))?,
        (None, Some(merchant_id)) => RegistrationLookup::ByMerchant {
            reference_merchant_id: merchant_id.clone(),
            reference_store_id: store_id.clone(),
        },
        (None, None) => {
            return Err(ApiError::param(
                "registrationRequestId",
                "registrationRequestId or referenceMerchantId is required",
            ));
        }
    };
    Ok(StatusQuery { lookup, merchant_id, store_id })
}

/// What was registered for a merchant (and store): its newest registration.
pub(crate) async fn inquire_info(
    state: &AppState,
    caller: &Caller,
    request: InquiryRegistrationInfoRequest,
) -> Result<InquiryRegistrationInfoResponse, ApiError> {
    registrations::acquirer(&caller.participant)?;
    let lookup = info_lookup(&request)?;
    let registration = registrations::inquire(state, &caller.participant, &lookup).await?;
    wire::inquiry_registration_info(&registration).map_err(|error| {
        ApiError::Internal(format!("registration {} has unreadable content: {error}", registration.terms.id))
    })
}

pub(super) fn info_lookup(request: &InquiryRegistrationInfoRequest) -> Result<RegistrationLookup, ApiError> {
    Ok(RegistrationLookup::ByMerchant {
        reference_merchant_id: fields::identifier(
            &request.reference_merchant_id,
            "referenceMerchantId",
            ID_CHARS_MAX,
        )?,
        reference_store_id: fields::optional_identifier(
            &request.reference_store_id,
            "referenceStoreId",
            STORE_ID_CHARS_MAX,
        )?,
    })
}
