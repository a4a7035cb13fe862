//! Receiving the platform's notifications (`notifyPayment`, `notifyRefund`,
//! `notifyRegistrationStatus`): verify the signature over
//! the raw body with the platform's public key, parse, and answer with [`ACK`].
//!
//! The signed content is `POST <path of your notify URL>\n<client-id>.<request-time>.<body>`,
//! with the `client-id`, `request-time` and `signature` headers exactly as received.

use ocpay_protocol::payments::PaymentNotification;
use ocpay_protocol::refunds::RefundNotification;
use ocpay_protocol::registrations::RegistrationNotification;
use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{SignatureHeader, VerifyingKey};

use crate::SdkError;

/// The body that acknowledges a notification; anything else makes the platform retry.
pub use ocpay_protocol::payments::NOTIFICATION_ACK as ACK;

/// One notification as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The path (and query) of the URL it was posted to.
    pub path: &'a str,
    pub client_id: &'a str,
    pub request_time: &'a str,
    /// The `signature` header.
    pub signature: &'a str,
    pub body: &'a [u8],
}

/// Checks that the platform signed this delivery.
pub fn verify(platform_key: &VerifyingKey, delivery: &Delivery<'_>) -> Result<(), SdkError> {
    let signature = SignatureHeader::parse(delivery.signature)
        .map_err(|error| SdkError::ResponseSignature(error.to_string()))?;
    let content =
        content_to_sign("POST", delivery.path, delivery.client_id, delivery.request_time, delivery.body);
    platform_key
        .verify(&content, &signature.signature)
        .map_err(|error| SdkError::ResponseSignature(error.to_string()))
}

/// Verifies a delivery and parses it as a payment notification.
pub fn payment_notification(
    platform_key: &VerifyingKey,
    delivery: &Delivery<'_>,
) -> Result<PaymentNotification, SdkError> {
    verified(platform_key, delivery)
}

/// Verifies a delivery and parses it as a refund notification.
pub fn refund_notification(
    platform_key: &VerifyingKey,
    delivery: &Delivery<'_>,
) -> Result<RefundNotification, SdkError> {
    verified(platform_key, delivery)
}

/// Verifies a delivery and parses it as a registration's status notification.
pub fn registration_notification(
    platform_key: &VerifyingKey,
    delivery: &Delivery<'_>,
) -> Result<RegistrationNotification, SdkError> {
    verified(platform_key, delivery)
}

fn verified<T: serde::de::DeserializeOwned>(
    platform_key: &VerifyingKey,
    delivery: &Delivery<'_>,
) -> Result<T, SdkError> {
    verify(platform_key, delivery)?;
    serde_json::from_slice(delivery.body).map_err(|error| SdkError::ResponseBody(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocpay_protocol::SigningKey;

    #[test]
    fn only_the_platforms_signature_over_these_bytes_verifies() {
        let platform = SigningKey::generate().unwrap();
        let body = br#"{"notifyType":"PAYMENT_RESULT"}"#;
        let content = content_to_sign("POST", "/notify", "C1", "1700000000000", body);
        let signature = platform.sign_header(1, &content).unwrap();
        let delivery = Delivery {
            path: "/notify",
            client_id: "C1",
            request_time: "1700000000000",
            signature: &signature,
            body,
        };
        verify(&platform.verifying_key(), &delivery).unwrap();
        let other = SigningKey::generate().unwrap().verifying_key();
        assert!(verify(&other, &delivery).is_err(), "another key");
        assert!(
            verify(&platform.verifying_key(), &Delivery { path: "/other", ..delivery }).is_err(),
            "another path"
        );
        assert!(
            verify(&platform.verifying_key(), &Delivery { client_id: "C2", ..delivery }).is_err(),
            "another client"
        );
        assert!(
            verify(&platform.verifying_key(), &Delivery { body: b"{}", ..delivery }).is_err(),
            "another body"
        );
    }
}
