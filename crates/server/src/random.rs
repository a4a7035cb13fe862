//! Identifiers the platform makes up: payment, refund and registration ids, order-code tokens and client ids.
//! All randomness comes from the operating system's CSPRNG (through aws-lc).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use ocpay_core::ids::{ClientId, CodeToken, PaymentId, RefundId, RegistrationId};
use ocpay_core::participant::{Environment, SANDBOX_CLIENT_ID_PREFIX};

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The system RNG failing means the machine cannot do cryptography at all; there is no
    // meaningful way to go on issuing unguessable codes.
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random number generator works");
    bytes
}

/// 128 random bits, URL-safe: the secret part of an order code's URL.
pub(crate) fn code_token() -> CodeToken {
    let token = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
    CodeToken::parse(&token).expect("22 URL-safe base64 characters make a valid token")
}

/// An id like Alipay's: the UTC creation time to the second, then 18 random digits. Time
/// first keeps ids roughly ordered, which keeps the primary-key index compact.
fn time_ordered_id(now: Timestamp) -> String {
    let random = u64::from_le_bytes(random_bytes::<8>()) % 1_000_000_000_000_000_000;
    format!("{}{random:018}", now.strftime("%Y%m%d%H%M%S"))
}

pub(crate) fn payment_id(now: Timestamp) -> PaymentId {
    PaymentId::parse(&time_ordered_id(now)).expect("32 digits make a valid payment id")
}

pub(crate) fn refund_id(now: Timestamp) -> RefundId {
    RefundId::parse(&time_ordered_id(now)).expect("32 digits make a valid refund id")
}

/// A grant's id, ordered by time like payment ids.
pub(crate) fn grant_id(now: Timestamp) -> String {
    format!("G{}", time_ordered_id(now))
}

/// 256 random bits, URL-safe, with a prefix that says what it is (and lets secret scanners
/// find a leaked one).
pub(crate) fn agent_token() -> String {
    format!("ocpay_at_{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// A test notification's identifier: `ocpay-test-` and 64 random bits in hex, which no payment
/// request or notification id of a real payment looks like.
pub(crate) fn test_notification_id() -> String {
    let bits = u64::from_le_bytes(random_bytes::<8>());
    format!("ocpay-test-{bits:016x}")
}

pub(crate) fn registration_id(now: Timestamp) -> RegistrationId {
    RegistrationId::parse(&time_ordered_id(now)).expect("32 digits make a valid registration id")
}

/// A new client id: 16 random upper-case letters and digits, after `SANDBOX_` in the sandbox.
pub(crate) fn client_id(environment: Environment) -> ClientId {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let body: String =
        random_bytes::<16>().iter().map(|byte| ALPHABET[usize::from(byte % 32)] as char).collect();
    let id = match environment {
        Environment::Sandbox => format!("{SANDBOX_CLIENT_ID_PREFIX}{body}"),
        Environment::Live => body,
    };
    ClientId::parse(&id).expect("letters, digits and an underscore make a valid client id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(code_token().as_str().len(), 22);
        assert_ne!(code_token(), code_token());
        let id = payment_id("2026-11-27T10:20:30Z".parse().unwrap());
        assert!(id.as_str().starts_with("20261127102030") && id.as_str().len() == 32, "{id}");
        assert_eq!(refund_id("2026-11-27T10:20:30Z".parse().unwrap()).as_str().len(), 32);
        let sandbox = client_id(Environment::Sandbox);
        assert_eq!(Environment::of_client_id(&sandbox), Environment::Sandbox);
        assert_eq!(Environment::of_client_id(&client_id(Environment::Live)), Environment::Live);
    }
}
