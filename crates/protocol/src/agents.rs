//! What an ISV receives when a merchant authorises it: the `Agent-Token` it sends with every
//! call it makes for that merchant.
//!
//! Field names follow the authorisation notification of Alipay's official Node SDK
//! (`clientId`, `authClientId`, `authTime`, `accessToken`, `accessTokenExpiryTime`,
//! `customerId`); `notifyType`, `result`, `grantId` and `scopes` are ocpay's additions.

use serde::{Deserialize, Serialize};

use crate::AmsResult;

/// `notifyType` of an authorisation notification.
pub const NOTIFY_TYPE_AGENT_AUTHORIZATION: &str = "AGENT_AUTHORIZATION";

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationNotification {
    pub notify_type: String,
    pub result: AmsResult,
    /// The ISV's client id.
    pub client_id: String,
    /// The client id of the merchant that authorised the ISV.
    pub auth_client_id: String,
    /// The merchant, as the customer whose payments the token reaches.
    pub customer_id: String,
    pub grant_id: String,
    /// Comma-separated: `pay,inquiry,cancel,refund,reports`.
    pub scopes: String,
    pub auth_time: String,
    /// The `Agent-Token`.
    pub access_token: String,
    pub access_token_expiry_time: Option<String>,
}
