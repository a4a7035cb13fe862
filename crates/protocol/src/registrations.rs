//! Requests and responses of the merchant registration family (`registration`,
//! `inquiryRegistrationStatus`, `inquiryRegistrationInfo`) and the `notifyRegistrationStatus`
//! body: how an acquirer registers a secondary merchant and its store before paying for it.
//!
//! The descriptive blocks (`logo`, `websites`, `registrationDetail`, addresses) are read
//! leniently and kept as sent; only the ids, names, MCCs and product codes are checked.

use serde::{Deserialize, Serialize};

use crate::lenient;
use crate::result::AmsResult;

/// The one product a secondary merchant can be registered for: in-store payments.
pub const PRODUCT_CODE_IN_STORE: &str = "IN_STORE_PAYMENT";
/// `notifyType` of a registration's status notification.
pub const NOTIFY_TYPE_REGISTRATION_STATUS: &str = "REGISTRATION_STATUS";

/// Where a registration stands: `PROCESSING` under review, then `APPROVED` or `REJECTED`.
pub const REGISTRATION_PROCESSING: &str = "PROCESSING";
pub const REGISTRATION_APPROVED: &str = "APPROVED";
pub const REGISTRATION_REJECTED: &str = "REJECTED";

/// A postal address (`Address`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub region: Option<String>,
    pub state: Option<String>,
    pub city: Option<String>,
    pub address1: Option<String>,
    pub address2: Option<String>,
    pub address3: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub zip_code: Option<String>,
    pub label: Option<String>,
}

/// A secondary merchant's logo.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Logo {
    pub logo_name: Option<String>,
    pub logo_url: Option<String>,
}

/// One of a secondary merchant's websites.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSite {
    pub name: Option<String>,
    pub url: Option<String>,
    pub desc: Option<String>,
    #[serde(rename = "type")]
    pub website_type: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub attachment_type: Option<String>,
    pub file: Option<String>,
    pub attachment_name: Option<String>,
    pub file_key: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactInfo {
    #[serde(default, deserialize_with = "lenient::string")]
    pub contact_no: Option<String>,
    pub contact_type: Option<String>,
}

/// The legal registration of a secondary merchant.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationDetail {
    pub legal_name: Option<String>,
    pub attachments: Option<Vec<Attachment>>,
    /// A list; Alipay's Python SDK sends one object, which is read as a list of one.
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    pub contact_info: Option<Vec<ContactInfo>>,
    pub registration_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub registration_no: Option<String>,
    pub registration_address: Option<Address>,
    pub business_type: Option<String>,
    pub registration_effective_date: Option<String>,
    pub registration_expire_date: Option<String>,
}

/// `merchantInfo`: the secondary merchant being registered.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantRegistrationInfo {
    #[serde(default, deserialize_with = "lenient::string")]
    pub reference_merchant_id: Option<String>,
    pub merchant_display_name: Option<String>,
    #[serde(rename = "merchantMCC", default, deserialize_with = "lenient::string")]
    pub merchant_mcc: Option<String>,
    pub logo: Option<Logo>,
    pub websites: Option<Vec<WebSite>>,
    pub merchant_address: Option<Address>,
    pub registration_detail: Option<RegistrationDetail>,
}

/// `storeInfo`: the store of the secondary merchant, required for `IN_STORE_PAYMENT`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreRegistrationInfo {
    #[serde(default, deserialize_with = "lenient::string")]
    pub reference_store_id: Option<String>,
    pub store_name: Option<String>,
    #[serde(rename = "storeMCC", default, deserialize_with = "lenient::string")]
    pub store_mcc: Option<String>,
    pub store_address: Option<Address>,
}

/// `POST /ams/api/v1/merchants/registration`: an acquirer registers a secondary merchant and
/// its store for review.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationRequest {
    /// The acquirer's idempotency key of this registration.
    #[serde(default, deserialize_with = "lenient::string")]
    pub registration_request_id: Option<String>,
    /// Where `notifyRegistrationStatus` goes (spelled with `URL`, as AMS does).
    #[serde(rename = "registrationNotifyURL")]
    pub registration_notify_url: Option<String>,
    /// Echoed back in the response.
    pub pass_through_info: Option<String>,
    pub merchant_info: Option<MerchantRegistrationInfo>,
    pub product_codes: Option<Vec<String>>,
    pub store_info: Option<StoreRegistrationInfo>,
}

/// What a registration registers: the significant content of a `registration` request, the
/// part a repeat must match, and what `inquiryRegistrationInfo` answers with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationContent {
    pub merchant_info: MerchantRegistrationInfo,
    pub store_info: StoreRegistrationInfo,
    pub product_codes: Vec<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationResponse {
    pub result: AmsResult,
    pub pass_through_info: Option<String>,
}

/// `POST /ams/api/v1/merchants/inquiryRegistrationStatus`: by `registrationRequestId`, or by
/// `referenceMerchantId` (and `referenceStoreId`) for the latest registration.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryRegistrationStatusRequest {
    #[serde(default, deserialize_with = "lenient::string")]
    pub reference_merchant_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub registration_request_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub reference_store_id: Option<String>,
}

/// A registration's status: `PROCESSING`, `APPROVED` or `REJECTED`, with the reasons of a
/// rejection.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationResult {
    pub registration_status: String,
    pub reject_reasons: Option<String>,
}

/// The result as one payment service provider decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PspRegistrationResult {
    pub psp_name: String,
    pub registration_result: RegistrationResult,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryRegistrationStatusResponse {
    /// Whether the inquiry worked; the registration's own outcome is `registrationResult`.
    pub result: AmsResult,
    pub registration_result: Option<RegistrationResult>,
    pub psp_registration_result_list: Option<Vec<PspRegistrationResult>>,
}

/// `POST /ams/api/v1/merchants/inquiryRegistrationInfo`: what was registered for a merchant
/// (and store).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryRegistrationInfoRequest {
    #[serde(default, deserialize_with = "lenient::string")]
    pub reference_merchant_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub reference_store_id: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryRegistrationInfoResponse {
    pub result: AmsResult,
    pub merchant_info: Option<MerchantRegistrationInfo>,
    pub store_info: Option<StoreRegistrationInfo>,
    pub product_codes: Option<Vec<String>>,
}

/// `notifyRegistrationStatus`: the platform tells the acquirer a registration was decided.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationNotification {
    pub notify_type: String,
    pub result: AmsResult,
    pub reference_merchant_id: String,
    pub registration_request_id: String,
    pub reference_store_id: Option<String>,
    pub registration_result: RegistrationResult,
    #[serde(default)]
    pub psp_registration_result_list: Vec<PspRegistrationResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_sdk_registrations_are_read() {
        // As the Python SDK writes it: one contact object, numbers for ids, unknown fields.
        let body = r#"{
           "registrationRequestId": 20240101,
           "registrationNotifyURL": "https://acquirer.example/registrations",
           "productCodes": ["IN_STORE_PAYMENT"],
           "merchantInfo": {
              "referenceMerchantId": 7001,
              "merchantMCC": 5812,
              "registrationDetail": {"legalName": "Cafe Ltd", "contactInfo": {"contactNo": 6512345678, "contactType": "MOBILE_PHONE"}},
              "somethingNew": true
           },
           "storeInfo": {"referenceStoreId": "S1", "storeName": "Cafe", "storeAddress": {"region": "SG", "zipCode": 238801}}
        }"#;
        let request: RegistrationRequest = serde_json::from_str(body).unwrap();
        assert_eq!(request.registration_request_id.as_deref(), Some("20240101"));
        assert_eq!(
            request.registration_notify_url.as_deref(),
            Some("https://acquirer.example/registrations")
        );
        let merchant = request.merchant_info.unwrap();
        assert_eq!(merchant.reference_merchant_id.as_deref(), Some("7001"));
        assert_eq!(merchant.merchant_mcc.as_deref(), Some("5812"));
        let contacts = merchant.registration_detail.unwrap().contact_info.unwrap();
        assert_eq!(contacts[0].contact_no.as_deref(), Some("6512345678"));
        let store = request.store_info.unwrap();
        assert_eq!(store.store_address.unwrap().zip_code.as_deref(), Some("238801"));
        let listed: RegistrationDetail =
            serde_json::from_str(r#"{"contactInfo": [{"contactType": "EMAIL"}, {"contactType": "PHONE"}]}"#)
                .unwrap();
        assert_eq!(listed.contact_info.unwrap().len(), 2);
    }
}
