//! RSA-2048 message signatures as Alipay's official SDKs make them.
//!
//! The signed content is `<METHOD> <path>\n<client-id>.<time>.<body>`, byte for byte as sent.
//! The signature is RSA PKCS#1 v1.5 over SHA-256, encoded as standard base64 and then
//! URL-encoded, and travels in `Signature: algorithm=RSA256,keyVersion=1,signature=...`.
//!
//! Keys are read in every form the official SDKs use: PEM or bare base64, private keys in
//! PKCS#8 or PKCS#1, public keys as X.509 SubjectPublicKeyInfo or PKCS#1.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKey};
use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// The only algorithm name AMS uses with RSA keys.
pub const ALGORITHM_RSA256: &str = "RSA256";
/// Smallest RSA modulus accepted, in bits.
pub const RSA_BITS_MIN: usize = 2048;

/// Why a key or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("malformed signature header: {0}")]
    MalformedHeader(&'static str),
    #[error("unsupported signature algorithm {0:?}; only RSA256 is supported")]
    UnsupportedAlgorithm(String),
    #[error("the signature does not match the message")]
    Mismatch,
    #[error("not an RSA key in PEM or base64 DER (PKCS#8, PKCS#1 or SubjectPublicKeyInfo)")]
    UnreadableKey,
    #[error("RSA keys must have at least {RSA_BITS_MIN} bits")]
    KeyTooShort,
    #[error("signing failed")]
    SigningFailed,
}

/// The exact bytes that are signed for a request, a response or a notification.
///
/// `path` is the path part of the URL (plus query, if any), never the absolute URL.
pub fn content_to_sign(method: &str, path: &str, client_id: &str, time: &str, body: &[u8]) -> Vec<u8> {
    let mut content =
        Vec::with_capacity(method.len() + path.len() + client_id.len() + time.len() + body.len() + 4);
    content.extend_from_slice(method.as_bytes());
    content.push(b' ');
    content.extend_from_slice(path.as_bytes());
    content.push(b'\n');
    content.extend_from_slice(client_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(time.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// A parsed `Signature` header.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The key version the signer used; `None` means "the newest".
    pub key_version: Option<u32>,
    /// The raw RSA signature bytes.
    pub signature: Vec<u8>,
}

impl fmt::Debug for SignatureHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureHeader")
            .field("key_version", &self.key_version)
            .field("signature_bytes", &self.signature.len())
            .finish()
    }
}

impl SignatureHeader {
    /// Parses `algorithm=RSA256,keyVersion=1,signature=<url-encoded base64>`.
    ///
    /// As the official SDKs do, everything after `signature=` is the signature, so an
    /// un-encoded base64 value (with `=` padding) is read correctly too. The base64 may be
    /// padded or not; `+` is read as `+`, never as a space.
    pub fn parse(header: &str) -> Result<SignatureHeader, SignatureError> {
        let (params, encoded) =
            header.split_once("signature=").ok_or(SignatureError::MalformedHeader("no signature= part"))?;
        let mut algorithm = None;
        let mut key_version = None;
        for param in params.split(',').map(str::trim).filter(|param| !param.is_empty()) {
            let (name, value) =
                param.split_once('=').ok_or(SignatureError::MalformedHeader("a parameter has no value"))?;
            match name.trim() {
                "algorithm" => algorithm = Some(value.trim()),
                "keyVersion" => {
                    let version = value
                        .trim()
                        .parse::<u32>()
                        .map_err(|_| SignatureError::MalformedHeader("keyVersion is not a number"))?;
                    key_version = Some(version);
                }
                _ => {}
            }
        }
        let algorithm = algorithm.ok_or(SignatureError::MalformedHeader("no algorithm"))?;
        if !algorithm.eq_ignore_ascii_case(ALGORITHM_RSA256) {
            return Err(SignatureError::UnsupportedAlgorithm(algorithm.to_owned()));
        }
        let base64_text =
            percent_decode(encoded.trim()).ok_or(SignatureError::MalformedHeader("bad percent-encoding"))?;
        let signature =
            decode_base64(&base64_text).ok_or(SignatureError::MalformedHeader("signature is not base64"))?;
        if signature.is_empty() {
            return Err(SignatureError::MalformedHeader("empty signature"));
        }
        Ok(SignatureHeader { key_version, signature })
    }

    /// Formats the header as the official SDKs do.
    pub fn format(&self) -> String {
        let version = self.key_version.unwrap_or(1);
        let encoded = url_encode_base64(&STANDARD.encode(&self.signature));
        format!("algorithm={ALGORITHM_RSA256},keyVersion={version},signature={encoded}")
    }
}

/// Form-style URL encoding of base64 text: only `+`, `/` and `=` need escaping.
fn url_encode_base64(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '+' => out.push_str("%2B"),
            '/' => out.push_str("%2F"),
            '=' => out.push_str("%3D"),
            _ => out.push(c),
        }
    }
    out
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        if bytes[idx] == b'%' {
            let hex = bytes.get(idx + 1..idx + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            idx += 3;
        } else {
            out.push(bytes[idx]);
            idx += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).or_else(|_| STANDARD_NO_PAD.decode(text)).ok()
}

/// Strips PEM armour (any label) and whitespace, and decodes the base64 inside.
/// Bare base64, as Alipay's key tool writes it, passes through the same way.
fn der_from_text(text: &str) -> Option<Vec<u8>> {
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("-----"))
        .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
        .collect();
    if body.is_empty() {
        return None;
    }
    decode_base64(&body)
}

fn pem(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// An RSA private key that signs. Its `Debug` output never shows key material.
#[derive(Clone)]
pub struct SigningKey {
    pair: Arc<KeyPair>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(RSA-{}, redacted)", self.pair.public_modulus_len() * 8)
    }
}

impl SigningKey {
    /// Generates a new RSA-2048 key pair.
    pub fn generate() -> Result<SigningKey, SignatureError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| SignatureError::SigningFailed)?;
        Ok(SigningKey { pair: Arc::new(pair) })
    }

    /// Reads a private key from PEM or bare base64, in PKCS#8 or PKCS#1.
    pub fn from_text(text: &str) -> Result<SigningKey, SignatureError> {
        let der = der_from_text(text).ok_or(SignatureError::UnreadableKey)?;
        SigningKey::from_der(&der)
    }

    /// Reads a DER private key in PKCS#8 or PKCS#1.
    pub fn from_der(der: &[u8]) -> Result<SigningKey, SignatureError> {
        let pair = KeyPair::from_pkcs8(der)
            .or_else(|_| KeyPair::from_der(der))
            .map_err(|_| SignatureError::UnreadableKey)?;
        if pair.public_modulus_len() * 8 < RSA_BITS_MIN {
            return Err(SignatureError::KeyTooShort);
        }
        Ok(SigningKey { pair: Arc::new(pair) })
    }

    /// Signs `message` with RSA PKCS#1 v1.5 over SHA-256.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut signature)
            .map_err(|_| SignatureError::SigningFailed)?;
        Ok(signature)
    }

    /// Signs a message and returns the `Signature` header value for it.
    pub fn sign_header(&self, key_version: u32, message: &[u8]) -> Result<String, SignatureError> {
        let signature = self.sign(message)?;
        Ok(SignatureHeader { key_version: Some(key_version), signature }.format())
    }

    /// The public half, for verification.
    pub fn verifying_key(&self) -> VerifyingKey {
        let public: &PublicKey = self.pair.public_key();
        let der = public.as_der().map(|der| der.as_ref().to_vec()).unwrap_or_default();
        // The DER comes from a key aws-lc just parsed, so it always parses back.
        VerifyingKey::from_der(&der).expect("a key pair's own public key parses")
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pkcs8_pem(&self) -> Result<String, SignatureError> {
        let der: Pkcs8V1Der<'static> = self.pair.as_der().map_err(|_| SignatureError::UnreadableKey)?;
        Ok(pem("PRIVATE KEY", der.as_ref()))
    }
}

/// An RSA public key that verifies, kept pre-parsed: parsing costs more than verifying.
#[derive(Clone)]
pub struct VerifyingKey {
    spki_der: Arc<[u8]>,
    parsed: Arc<ParsedPublicKey>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({} bytes SPKI)", self.spki_der.len())
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl VerifyingKey {
    /// Reads a public key from PEM or bare base64, as SubjectPublicKeyInfo or PKCS#1.
    pub fn from_text(text: &str) -> Result<VerifyingKey, SignatureError> {
        let der = der_from_text(text).ok_or(SignatureError::UnreadableKey)?;
        VerifyingKey::from_der(&der)
    }

    /// Reads a DER public key, as SubjectPublicKeyInfo or PKCS#1 RSAPublicKey.
    pub fn from_der(der: &[u8]) -> Result<VerifyingKey, SignatureError> {
        let public = PublicKey::from_der(der).map_err(|_| SignatureError::UnreadableKey)?;
        if public.modulus_len() * 8 < RSA_BITS_MIN {
            return Err(SignatureError::KeyTooShort);
        }
        let spki: PublicKeyX509Der<'static> = public.as_der().map_err(|_| SignatureError::UnreadableKey)?;
        let parsed = ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, spki.as_ref())
            .map_err(|_| SignatureError::UnreadableKey)?;
        Ok(VerifyingKey { spki_der: Arc::from(spki.as_ref()), parsed: Arc::new(parsed) })
    }

    /// Verifies an RSA PKCS#1 v1.5 SHA-256 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        self.parsed.verify_sig(message, signature).map_err(|_| SignatureError::Mismatch)
    }

    /// DER-encoded SubjectPublicKeyInfo: the canonical form stored and published.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// `-----BEGIN PUBLIC KEY-----` PEM.
    pub fn to_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki_der)
    }

    /// Bare base64 of the SubjectPublicKeyInfo, the form Alipay's SDKs take as `alipayPublicKey`.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.spki_der)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parses_what_sdks_send() {
        let cases: &[(&str, Result<Option<u32>, SignatureError>)] = &[
            ("algorithm=RSA256,keyVersion=1,signature=AAEC", Ok(Some(1))),
            ("algorithm=rsa256,keyVersion=7,signature=AAEC", Ok(Some(7))),
            ("algorithm=RSA256,signature=AAEC", Ok(None)),
            ("algorithm=RSA256, keyVersion=2, signature=AAE%3D", Ok(Some(2))),
            ("algorithm=RSA256,keyVersion=1,signature=AAE=", Ok(Some(1))),
            ("algorithm=RSA256,keyVersion=1,signature=AAE", Ok(Some(1))),
            (
                "algorithm=ECC224,keyVersion=1,signature=AAEC",
                Err(SignatureError::UnsupportedAlgorithm("ECC224".into())),
            ),
            (
                "algorithm=RSA256,keyVersion=x,signature=AAEC",
                Err(SignatureError::MalformedHeader("keyVersion is not a number")),
            ),
            ("keyVersion=1,signature=AAEC", Err(SignatureError::MalformedHeader("no algorithm"))),
            ("algorithm=RSA256,keyVersion=1", Err(SignatureError::MalformedHeader("no signature= part"))),
            (
                "algorithm=RSA256,keyVersion=1,signature=%ZZ",
                Err(SignatureError::MalformedHeader("bad percent-encoding")),
            ),
            (
                "algorithm=RSA256,keyVersion=1,signature=!!!",
                Err(SignatureError::MalformedHeader("signature is not base64")),
            ),
            (
                "algorithm=RSA256,keyVersion=1,signature=",
                Err(SignatureError::MalformedHeader("empty signature")),
            ),
            ("", Err(SignatureError::MalformedHeader("no signature= part"))),
        ];
        for (header, expected) in cases {
            let parsed = SignatureHeader::parse(header).map(|parsed| parsed.key_version);
            assert_eq!(&parsed, expected, "header {header:?}");
        }
    }

    #[test]
    fn header_round_trips() {
        let header = SignatureHeader { key_version: Some(3), signature: (0..=255).collect() };
        let text = header.format();
        assert!(!text.contains('+') && !text[text.find("signature=").unwrap() + 10..].contains('='));
        assert_eq!(SignatureHeader::parse(&text), Ok(header));
    }

    /// Headers as the official SDKs may send them: parameters in any order, spaced, the
    /// algorithm in any case, the signature url-encoded or not, with or without padding.
    fn sdk_variant(header: &SignatureHeader, variant: u8) -> String {
        let version = header.key_version.unwrap_or(1);
        let padded = STANDARD.encode(&header.signature);
        match variant % 4 {
            0 => header.format(),
            1 => format!("keyVersion={version}, algorithm=rsa256, signature={padded}"),
            2 => format!(
                "algorithm=RSA256,keyVersion={version},signature={}",
                STANDARD_NO_PAD.encode(&header.signature)
            ),
            _ => format!(
                " algorithm = RSA256 , keyVersion = {version} ,signature={}",
                url_encode_base64(&padded)
            ),
        }
    }

    proptest::proptest! {
        #[test]
        fn formatted_headers_parse_back_to_the_same_signature(
            signature in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..600),
            key_version in proptest::prelude::any::<u32>(),
            variant in proptest::prelude::any::<u8>(),
        ) {
            let header = SignatureHeader { key_version: Some(key_version), signature };
            let text = sdk_variant(&header, variant);
            proptest::prop_assert_eq!(SignatureHeader::parse(&text), Ok(header.clone()), "{}", text);
            let formatted = header.format();
            let prefix = format!("algorithm={ALGORITHM_RSA256},keyVersion={key_version},signature=");
            proptest::prop_assert!(formatted.starts_with(&prefix), "{}", formatted);
            // What follows `signature=` is safe in a header and in a form: no `+`, `/` or `=`.
            let encoded = &formatted[prefix.len()..];
            proptest::prop_assert!(encoded.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'%'));
        }

        #[test]
        fn a_header_without_key_version_means_version_one_when_formatted(
            signature in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..300),
        ) {
            let header = SignatureHeader { key_version: None, signature: signature.clone() };
            let parsed = SignatureHeader::parse(&header.format());
            proptest::prop_assert_eq!(parsed, Ok(SignatureHeader { key_version: Some(1), signature }));
        }

        #[test]
        fn parsing_never_panics(text in proptest::prelude::any::<String>()) {
            let _ = SignatureHeader::parse(&text);
        }

        /// Text close to a real header reaches every branch of the parser, not only the first
        /// refusal; whatever it accepts formats and parses back to itself.
        #[test]
        fn parsing_header_like_text_never_panics_and_what_it_accepts_round_trips(
            params in "((algorithm=(RSA256|rsa256|ECC256|)|keyVersion=[0-9x]{0,11}|[a-z]{0,3}=?| ),?){0,4}",
            encoded in "([A-Za-z0-9+/]{1,6}|%|%[0-9A-Fa-f+-]{0,2}|%2[BbFf]|%3[Dd]|=|\\PC){0,12}",
            signature_part in proptest::prelude::any::<bool>(),
        ) {
            let text =
                if signature_part { format!("{params}signature={encoded}") } else { format!("{params}{encoded}") };
            if let Ok(header) = SignatureHeader::parse(&text) {
                proptest::prop_assert!(!header.signature.is_empty());
                let version = header.key_version.unwrap_or(1);
                let again = SignatureHeader::parse(&header.format());
                proptest::prop_assert_eq!(again, Ok(SignatureHeader { key_version: Some(version), ..header }));
            }
        }
    }

    #[test]
    fn keys_in_every_form() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        let bare: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
        let relabelled = format!("-----BEGIN RSA PRIVATE KEY-----\n{bare}\n-----END RSA PRIVATE KEY-----");
        for text in [&pem, &bare, &relabelled] {
            let again = SigningKey::from_text(text).unwrap();
            let signature = again.sign(b"message").unwrap();
            key.verifying_key().verify(b"message", &signature).unwrap();
        }
        let public = key.verifying_key();
        assert_eq!(VerifyingKey::from_text(&public.to_pem()).unwrap(), public);
        assert_eq!(VerifyingKey::from_text(&public.to_base64()).unwrap(), public);
        assert_eq!(
            SigningKey::from_text("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----").unwrap_err(),
            SignatureError::UnreadableKey
        );
        assert_eq!(VerifyingKey::from_text("bm90IGEga2V5").unwrap_err(), SignatureError::UnreadableKey);
        assert!(format!("{key:?}").contains("redacted"));
    }

    #[test]
    fn tampering_is_detected() {
        let key = SigningKey::generate().unwrap();
        let message = content_to_sign("POST", "/ams/api/v1/payments/pay", "C1", "1", b"{}");
        let signature = key.sign(&message).unwrap();
        let public = key.verifying_key();
        public.verify(&message, &signature).unwrap();
        for bit in [0, 7, 100, message.len() * 8 - 1] {
            let mut flipped = message.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(public.verify(&flipped, &signature), Err(SignatureError::Mismatch));
        }
        let mut bad = signature.clone();
        bad[10] ^= 0x40;
        assert_eq!(public.verify(&message, &bad), Err(SignatureError::Mismatch));
    }

    /// The worked example of the protocol notes (§3.5): a request signed with the fake test
    /// key Alipay published in its in-store SDK. Our string-to-sign must hash to the same
    /// digest, the published signature must verify against the matching public key, and the
    /// header must parse and format to the same text.
    mod spec_vector {
        use super::super::*;

        const CLIENT_ID: &str = "TEST_5X00000000000000";
        const REQUEST_TIME: &str = "1685599933871";
        const PATH: &str = "/ams/api/v1/payments/pay";
        const BODY: &str = r#"{"productCode":"IN_STORE_PAYMENT","paymentRequestId":"PR20240101000001","paymentFactor":{"inStorePaymentScenario":"OrderCode"},"paymentMethod":{"paymentMethodType":"CONNECT_WALLET"},"paymentAmount":{"currency":"USD","value":"1000"},"order":{"referenceOrderId":"ORD0001","orderDescription":"Coffee","orderAmount":{"currency":"USD","value":"1000"},"merchant":{"referenceMerchantId":"M0001","merchantName":"Demo Shop","merchantMCC":"5812","store":{"referenceStoreId":"S0001","storeName":"Demo Store 1","storeMCC":"5812"}}},"paymentNotifyUrl":"https://merchant.example/notify"}"#;
        const CONTENT_SHA256: &str = "6133474d1251fb89c90bdd19d76c812d2e843338784e83a5c5c0b1fe03bf3bfc";
        const HEADER: &str = "algorithm=RSA256,keyVersion=1,signature=INyj%2Bqln%2F1ZK9B4wdelTiMTukGiDiG1ef0o4T05UuPRUSnLCXSeXVStgtD9ejkYzQmR75B307%2B5Tvew8R3ZR19%2BRD3qE76ULEKTaGsEUK3wFs3b5nHUgvOvf%2BzP%2FOt2Vc%2Fm7MkE9j6Qy4hrL%2FYlEI%2FpQ8oUHutLSZm4nk66zNwvYFL32KXYdGuI9RsyHh%2Fi46n6XrL1h8%2BJ6IiSRMEnnkGheLOppIicoSwlPGjOVUPRKCNSIAMIKc4D7tMBF3FGBb1MBXMXFGY%2Bz7BDoAYc%2FvNSzE29C8F9sXWtvMx01vpLYB47hiy79Rj4rG41nmkwgmqqwU6ioYaUizs4AGIn%2FXg%3D%3D";
        const SIGNATURE_BASE64: &str = "INyj+qln/1ZK9B4wdelTiMTukGiDiG1ef0o4T05UuPRUSnLCXSeXVStgtD9ejkYzQmR75B307+5Tvew8R3ZR19+RD3qE76ULEKTaGsEUK3wFs3b5nHUgvOvf+zP/Ot2Vc/m7MkE9j6Qy4hrL/YlEI/pQ8oUHutLSZm4nk66zNwvYFL32KXYdGuI9RsyHh/i46n6XrL1h8+J6IiSRMEnnkGheLOppIicoSwlPGjOVUPRKCNSIAMIKc4D7tMBF3FGBb1MBXMXFGY+z7BDoAYc/vNSzE29C8F9sXWtvMx01vpLYB47hiy79Rj4rG41nmkwgmqqwU6ioYaUizs4AGIn/Xg==";
        const PUBLIC_KEY: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAisP7/U/dBV43yK38lTzH5TH5rlXQGcY1fEypYSMvTjZsOZTiH5eAvKiGfAJ4yMwzmlnDaOZpbFMh7wCmfNbaMzDyFqhcCbytzVZu9Hafb364JDoHVJuc0jZ66tTNyiLZGeNWIqdEk7Uj33k/+Fkd/MVCDSgx/5w8BhdeGO7UTG2FOhvavF9DUULGtzNekKEjZumA0A83Fvp0hE2/qZLNA+cljo162d/UR6dc9/Mk/iAP6K2GXQ7Dtg/USlLOg2slpYmJXnQobZ3S57TEeZLUGOLMNd3Mq6op5ZJ/95VBi7zlyH6FRTnmCTWFgsiMwaXbCj7dJyxgU0CL2NdylKSPOQIDAQAB";

        fn content() -> Vec<u8> {
            content_to_sign("POST", PATH, CLIENT_ID, REQUEST_TIME, BODY.as_bytes())
        }

        #[test]
        fn string_to_sign_hashes_to_the_published_digest() {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &content());
            let hex: String = digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect();
            assert_eq!(hex, CONTENT_SHA256);
        }

        #[test]
        fn published_signature_verifies() {
            let header = SignatureHeader::parse(HEADER).unwrap();
            assert_eq!(header.key_version, Some(1));
            assert_eq!(header.signature, STANDARD.decode(SIGNATURE_BASE64).unwrap());
            let key = VerifyingKey::from_text(PUBLIC_KEY).unwrap();
            key.verify(&content(), &header.signature).unwrap();
            let mut other_body = content();
            other_body.pop();
            assert_eq!(key.verify(&other_body, &header.signature), Err(SignatureError::Mismatch));
        }

        #[test]
        fn header_formats_byte_for_byte() {
            let header = SignatureHeader::parse(HEADER).unwrap();
            assert_eq!(header.format(), HEADER);
        }
    }
}
