//! Payer PINs, stored only as salted PBKDF2-HMAC-SHA256 hashes:
//! `pbkdf2-sha256$<iterations>$<salt, base64>$<hash, base64>`.

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

const SCHEME: &str = "pbkdf2-sha256";
const SALT_BYTES: usize = 16;
const HASH_BYTES: usize = 32;

/// Why a PIN was refused as a new PIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a PIN is 4 to 12 digits")]
pub struct BadPin;

/// Checks that a PIN is 4 to 12 digits.
pub fn check(pin: &str) -> Result<(), BadPin> {
    if (4..=12).contains(&pin.len()) && pin.bytes().all(|byte| byte.is_ascii_digit()) {
        Ok(())
    } else {
        Err(BadPin)
    }
}

/// Hashes a PIN with a fresh salt.
pub fn hash(pin: &str, iterations: u32) -> String {
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    let mut salt = [0u8; SALT_BYTES];
    aws_lc_rs::rand::fill(&mut salt).expect("the system random number generator works");
    let mut derived = [0u8; HASH_BYTES];
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, iterations, &salt, pin.as_bytes(), &mut derived);
    format!("{SCHEME}${iterations}${}${}", STANDARD_NO_PAD.encode(salt), STANDARD_NO_PAD.encode(derived))
}

/// A hash that no PIN matches, as costly to check as a real one: what a PIN is checked against
/// when there is no payer to check it against. It hides random bytes, never a PIN (which is
/// digits only), and differs at every start.
pub fn unmatchable_hash(iterations: u32) -> String {
    let mut secret = [0u8; 16];
    aws_lc_rs::rand::fill(&mut secret).expect("the system random number generator works");
    hash(&STANDARD_NO_PAD.encode(secret), iterations)
}

/// Whether `pin` matches a stored hash (in constant time; a malformed hash matches nothing).
pub fn verify(pin: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(iterations), Some(salt), Some(expected), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(iterations), Ok(salt), Ok(expected)) = (
        iterations.parse::<u32>().ok().and_then(NonZeroU32::new),
        STANDARD_NO_PAD.decode(salt),
        STANDARD_NO_PAD.decode(expected),
    ) else {
        return false;
    };
    pbkdf2::verify(pbkdf2::PBKDF2_HMAC_SHA256, iterations, &salt, pin.as_bytes(), &expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let first = hash("123456", 1_000);
        let second = hash("123456", 1_000);
        assert_ne!(first, second, "salted");
        assert!(verify("123456", &first) && verify("123456", &second));
        assert!(!verify("123457", &first));
        assert!(!verify("123456", "pbkdf2-sha256$1000$bad"));
        assert!(!verify("123456", ""));
        assert!(first.starts_with("pbkdf2-sha256$1000$"));
        assert_eq!(check("1234"), Ok(()));
        for bad in ["123", "1234567890123", "12a4", ""] {
            assert_eq!(check(bad), Err(BadPin), "{bad:?}");
        }
    }

    #[test]
    fn the_unmatchable_hash_matches_no_pin() {
        let (first, second) = (unmatchable_hash(1_000), unmatchable_hash(1_000));
        assert_ne!(first, second, "random at every start");
        for pin in ["000000", "0000", "123456", "000000000000", ""] {
            assert!(!verify(pin, &first), "{pin:?}");
        }
    }
}
