//! The developer center's secrets: argon2id password hashes, TOTP codes (RFC 6238: HMAC-SHA1,
//! six digits, 30-second steps), and the random tokens of sessions, CSRF and one-time links.
//!
//! Tokens are kept only as their SHA-256; comparisons of secrets are constant-time.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::{constant_time, digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ocpay_core::Timestamp;
use ocpay_core::portal::{TOTP_STEP_MS, totp_steps};

/// Shortest password taken; longer ones are encouraged by the page, not forced.
pub const PASSWORD_CHARS_MIN: usize = 12;
/// Longest password taken (argon2 takes any length; this bounds the work one request asks).
pub const PASSWORD_BYTES_MAX: usize = 1024;

/// The OS CSPRNG's bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random number generator works");
    bytes
}

/// 256 random bits, URL-safe: a session id, a CSRF token or a one-time link.
pub fn token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

pub fn sha256(text: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, text.as_bytes()).as_ref().to_vec()
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// Hashes and checks passwords with the configured argon2id cost, off the async runtime and at
/// most one per core at a time: a flood of sign-ins or sign-ups waits its turn instead of
/// blocking the runtime's threads (the gateway's too) or queueing memory without bound.
#[derive(Clone)]
pub struct Passwords {
    argon2: Argon2<'static>,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    /// A hash of random bytes: what a sign-in with an unknown email is checked against, so that
    /// it takes as long as one with a wrong password.
    dummy: String,
}

/// Why a password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be at least {PASSWORD_CHARS_MIN} characters")]
    TooShort,
    #[error("must be at most {PASSWORD_BYTES_MAX} bytes")]
    TooLong,
    #[error("could not be hashed now; try again")]
    Unavailable,
}

impl Passwords {
    pub fn new(memory_kib: u32, iterations: u32) -> Passwords {
        let params =
            Params::new(memory_kib, iterations, 1, None).expect("argon2 parameters checked by the settings");
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy =
            argon2.hash_password(&random_bytes::<32>()).expect("hashing random bytes works").to_string();
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Passwords { argon2, dummy, permits: std::sync::Arc::new(tokio::sync::Semaphore::new(cores)) }
    }

    /// [`Passwords::hash`] on a blocking thread, waiting for a free core.
    pub async fn hash_off_runtime(&self, password: &str) -> Result<String, PasswordError> {
        let (passwords, password) = (self.clone(), password.to_owned());
        self.off_runtime(move || passwords.hash(&password)).await.unwrap_or(Err(PasswordError::Unavailable))
    }

    /// [`Passwords::verify`] on a blocking thread, waiting for a free core.
    pub async fn verify_off_runtime(&self, hash: Option<String>, password: &str) -> bool {
        let (passwords, password) = (self.clone(), password.to_owned());
        self.off_runtime(move || passwords.verify(hash.as_deref(), &password)).await.unwrap_or(false)
    }

    async fn off_runtime<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let _permit = self.permits.acquire().await.ok()?;
        tokio::task::spawn_blocking(work).await.ok()
    }

    /// Checks a new password's length and hashes it.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        if password.chars().count() < PASSWORD_CHARS_MIN {
            return Err(PasswordError::TooShort);
        }
        if password.len() > PASSWORD_BYTES_MAX {
            return Err(PasswordError::TooLong);
        }
        Ok(self
            .argon2
            .hash_password(password.as_bytes())
            .expect("hashing a bounded password works")
            .to_string())
    }

    /// Whether `password` matches `hash`; `None` (no user, or no password set) is checked
    /// against the dummy hash and never matches. A damaged hash matches nothing.
    pub fn verify(&self, hash: Option<&str>, password: &str) -> bool {
        let password = &password.as_bytes()[..password.len().min(PASSWORD_BYTES_MAX)];
        let (hash, real) = match hash {
            Some(hash) => (hash, true),
            None => (self.dummy.as_str(), false),
        };
        let matches = PasswordHash::new(hash)
            .is_ok_and(|parsed| self.argon2.verify_password(password, &parsed).is_ok());
        matches && real
    }
}

/// A new TOTP key: 160 random bits in base32, as authenticator apps take it.
pub fn new_totp_secret() -> String {
    data_encoding::BASE32_NOPAD.encode(&random_bytes::<20>())
}

/// The six-digit code of `secret` (base32) for a time step; `None` when the secret is not base32.
pub fn totp_code(secret: &str, step: i64) -> Option<String> {
    let key = data_encoding::BASE32_NOPAD.decode(secret.trim_end_matches('=').as_bytes()).ok()?;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let tag = tag.as_ref();
    // RFC 4226's dynamic truncation.
    let offset = usize::from(tag[19] & 0x0f);
    let binary = u32::from_be_bytes([tag[offset] & 0x7f, tag[offset + 1], tag[offset + 2], tag[offset + 3]]);
    Some(format!("{:06}", binary % 1_000_000))
}

/// The time step `code` is valid for at `now` (the current one or one either side, later than
/// `last_used`), if any.
pub fn totp_step_of(secret: &str, code: &str, now: Timestamp, last_used: Option<i64>) -> Option<i64> {
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp_steps(now, last_used)
        .find(|step| totp_code(secret, *step).is_some_and(|expected| same_secret(&expected, &code)))
}

/// The current step's code (tests and the enrolment page's check use it).
pub fn totp_now(secret: &str, now: Timestamp) -> Option<String> {
    totp_code(secret, now.as_millisecond().div_euclid(TOTP_STEP_MS))
}

/// The `otpauth://` URI an authenticator app reads from a QR code.
pub fn totp_uri(issuer: &str, email: &str, secret: &str) -> String {
    let escape = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period=30",
        escape(issuer),
        escape(email),
        escape(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 key "12345678901234567890", eight-digit codes, of which
    /// the last six are ours.
    #[test]
    fn totp_codes_match_rfc_6238() {
        let secret = data_encoding::BASE32_NOPAD.encode(b"12345678901234567890");
        for (seconds, eight_digits) in [
            (59_i64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(totp_code(&secret, seconds / 30).unwrap(), eight_digits[2..], "at {seconds}");
        }
        assert_eq!(totp_code("not base32!", 1), None);
    }

    #[test]
    fn a_code_is_taken_once_within_a_step_either_side() {
        let secret = new_totp_secret();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let step = now.as_millisecond() / TOTP_STEP_MS;
        let code = totp_code(&secret, step - 1).unwrap();
        assert_eq!(totp_step_of(&secret, &code, now, None), Some(step - 1));
        assert_eq!(totp_step_of(&secret, &code, now, Some(step - 1)), None, "used");
        let old = totp_code(&secret, step - 2).unwrap();
        assert_eq!(totp_step_of(&secret, &old, now, None), None, "too old");
        assert_eq!(totp_step_of(&secret, "12345", now, None), None);
    }

    #[test]
    fn passwords_verify_and_the_dummy_matches_nothing() {
        let passwords = Passwords::new(8 * 1024, 1);
        assert_eq!(passwords.hash("short"), Err(PasswordError::TooShort));
        let hash = passwords.hash("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(passwords.verify(Some(&hash), "correct horse battery"));
        assert!(!passwords.verify(Some(&hash), "correct horse battery!"));
        assert!(!passwords.verify(None, "correct horse battery"));
        assert!(!passwords.verify(Some("damaged"), "correct horse battery"));
    }

    #[test]
    fn the_uri_escapes_what_it_must() {
        assert_eq!(
            totp_uri("ocpay", "a+b@x.example", "ABC"),
            "otpauth://totp/ocpay:a%2Bb@x.example?secret=ABC&issuer=ocpay&algorithm=SHA1&digits=6&period=30"
        );
    }
}
