//! The signature debugger: why a request's signature did not verify, and whether a pasted
//! signature verifies a pasted string-to-sign.
//!
//! [`diagnose`] really verifies the signature against the variants of the string-to-sign that
//! signers commonly get wrong (another key version, the path without or with the sandbox
//! prefix, the whole URL as the path, `Request-Time` in another format, the signature's URL
//! encoding missing or doubled), with the participant's own keys, and names the first that
//! verifies; when none does, the body most likely changed after it was signed. It costs a
//! bounded number of verifications (at most [`VERIFICATIONS_MAX`], about 20 µs each), and the
//! gateway runs it only for a failed request under a known client id. [`check_pasted`] is the
//! developer center's form: a string and a signature checked against each of a participant's
//! keys.
//!
//! Pure: no store, no clock, no I/O. The gateway keeps the result in the API log as the
//! protocol's [`SignatureDiagnosis`].

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ocpay_core::participant::KeyVersion;
use ocpay_protocol::api::{LIVE_PREFIX, SANDBOX_PREFIX};
use ocpay_protocol::api_log::{self as wire, SignatureDiagnosis};
use ocpay_protocol::signature::content_to_sign;
use ocpay_protocol::{SignatureHeader, VerifyingKey, datetime};

/// Other keys tried besides the one the request named (the participant's newest ones).
pub const OTHER_KEYS_MAX: usize = 3;
/// The most verifications one diagnosis makes: the other keys, then the sandbox prefix, the
/// URL with `https` and with `http`, and two other time formats. (A signature that cannot be
/// read as sent is tried in its two other encodings instead, and nothing more.)
pub const VERIFICATIONS_MAX: usize = OTHER_KEYS_MAX + 1 + 2 + 2;

/// A request as received, for [`diagnose`].
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The path (and query) the request was sent to.
    pub path: &'a str,
    pub client_id: &'a str,
    /// The `Request-Time` header as sent.
    pub request_time: &'a str,
    pub body: &'a [u8],
    /// The `Signature` header as sent.
    pub signature_header: &'a str,
    /// The `Host` header, to try the whole URL as the path.
    pub host: Option<&'a str>,
}

/// The most likely reason a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Another of the participant's keys verifies it.
    OtherKeyVersion(KeyVersion),
    /// The path was signed as this (without the sandbox prefix, or with it).
    SandboxPrefix { signed: String },
    /// The whole URL was signed as the path.
    PathWithHost { signed: String },
    /// `Request-Time` was signed as this text, not as the header sent it.
    RequestTimeFormat { signed: String },
    /// The signature was sent as raw base64, and its `+` arrived as spaces.
    SignatureNotUrlEncoded,
    /// The signature was URL-encoded twice.
    SignatureUrlEncodedTwice,
    /// The signature cannot be read as base64 at all.
    SignatureUnreadable,
    /// No variant verifies: most likely the body changed after it was signed.
    BodyChanged,
}

impl Cause {
    /// The cause's stable name (the protocol's `CAUSE_*`).
    pub fn name(&self) -> &'static str {
        match self {
            Cause::OtherKeyVersion(_) => wire::CAUSE_OTHER_KEY_VERSION,
            Cause::SandboxPrefix { .. } => wire::CAUSE_SANDBOX_PREFIX,
            Cause::PathWithHost { .. } => wire::CAUSE_PATH_WITH_HOST,
            Cause::RequestTimeFormat { .. } => wire::CAUSE_REQUEST_TIME_FORMAT,
            Cause::SignatureNotUrlEncoded => wire::CAUSE_SIGNATURE_NOT_URL_ENCODED,
            Cause::SignatureUrlEncodedTwice => wire::CAUSE_SIGNATURE_URL_ENCODED_TWICE,
            Cause::SignatureUnreadable => wire::CAUSE_SIGNATURE_UNREADABLE,
            Cause::BodyChanged => wire::CAUSE_BODY_CHANGED,
        }
    }
}

/// Why a request's signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// The exact bytes the platform verified.
    pub string_to_sign: Vec<u8>,
    /// The key version the platform tried, if the participant has it.
    pub key_version: Option<KeyVersion>,
    pub cause: Cause,
    /// The key that verifies the variant the cause names, if any.
    pub verifying_key_version: Option<KeyVersion>,
    /// Whether the header's signature was URL-encoded; `None` when it has no character that
    /// needs encoding, so that it reads the same either way.
    pub signature_url_encoded: Option<bool>,
}

impl Diagnosis {
    /// What to tell the signer, in a sentence.
    pub fn message(&self, received: &Received<'_>) -> String {
        match &self.cause {
            Cause::OtherKeyVersion(version) => format!(
                "the signature verifies with key version {version}, not the {} the header names: send \
                 keyVersion={version}, or sign with that key's private half",
                self.key_version
                    .map_or_else(|| "key version".to_owned(), |tried| format!("key version {tried}"))
            ),
            Cause::SandboxPrefix { signed } => format!(
                "the path was signed as {signed} but the request went to {}: sign the path the request is \
                 sent to, prefix included",
                received.path
            ),
            Cause::PathWithHost { signed } => {
                format!("the whole URL {signed} was signed: sign only its path, {}", received.path)
            }
            Cause::RequestTimeFormat { signed } => format!(
                "Request-Time was signed as {signed} but the header says {}: sign the header's value exactly \
                 (epoch milliseconds, as the official SDKs send it)",
                received.request_time
            ),
            Cause::SignatureNotUrlEncoded => "the signature was sent as raw base64 and its '+' arrived as \
                spaces: URL-encode it (+ as %2B, / as %2F, = as %3D)"
                .to_owned(),
            Cause::SignatureUrlEncodedTwice => {
                "the signature was URL-encoded twice (%252B for +): encode it once".to_owned()
            }
            Cause::SignatureUnreadable => "the Signature header's signature is not base64 (even with its \
                encoding undone): send algorithm=RSA256,keyVersion=N,signature=<URL-encoded base64>"
                .to_owned(),
            Cause::BodyChanged => "no variant of the string-to-sign verifies with the participant's keys: \
                most likely the body changed after it was signed (re-serialised, reformatted or re-encoded); \
                sign the exact bytes sent"
                .to_owned(),
        }
    }

    /// What the signer signed instead (the first line and the `client-id.time.` prefix), when
    /// the cause is a variant of the string-to-sign.
    pub fn signed_instead(&self, received: &Received<'_>) -> Option<String> {
        let (path, time) = match &self.cause {
            Cause::SandboxPrefix { signed } | Cause::PathWithHost { signed } => {
                (signed.as_str(), received.request_time)
            }
            Cause::RequestTimeFormat { signed } => (received.path, signed.as_str()),
            _ => return None,
        };
        Some(format!("POST {path}\n{}.{time}.", received.client_id))
    }

    /// The diagnosis as the API log keeps it, the string-to-sign as `text` renders bytes (the
    /// log cuts it as it cuts bodies).
    pub fn record(&self, received: &Received<'_>, text: impl Fn(&[u8]) -> String) -> SignatureDiagnosis {
        SignatureDiagnosis {
            string_to_sign: text(&self.string_to_sign),
            key_version: self.key_version.map(|version| version.to_string()),
            cause: self.cause.name().to_owned(),
            message: self.message(received),
            verifying_key_version: self.verifying_key_version.map(|version| version.to_string()),
            signed_instead: self.signed_instead(received),
            signature_url_encoded: self.signature_url_encoded,
        }
    }
}

/// Works out why `received`'s signature did not verify with the participant's `keys`: the one
/// its header names (the newest when it names none, as the gateway reads it) and the others.
/// Makes at most [`VERIFICATIONS_MAX`] verifications.
pub fn diagnose(received: &Received<'_>, keys: &[(KeyVersion, VerifyingKey)]) -> Diagnosis {
    let exact =
        content_to_sign("POST", received.path, received.client_id, received.request_time, received.body);
    let raw = signature_text(received.signature_header);
    let newest = keys.iter().max_by_key(|(version, _)| *version);
    // The key the gateway tried: the one the header names, even in a header it could not read,
    // or the newest when it names none; none when it names one the participant does not have.
    let tried = match named_key_version(received.signature_header) {
        Some(named) => keys.iter().find(|(version, _)| *version == named),
        None => newest,
    };
    let mut diagnosis = Diagnosis {
        string_to_sign: exact,
        key_version: tried.map(|(version, _)| *version),
        cause: Cause::BodyChanged,
        verifying_key_version: None,
        signature_url_encoded: url_encoded(raw),
    };
    // Variants are tried with the key tried, or else the newest.
    let Some((main_version, main_key)) = tried.or(newest) else {
        return diagnosis;
    };
    let verifies =
        |key: &VerifyingKey, content: &[u8], signature: &[u8]| key.verify(content, signature).is_ok();

    let Ok(header) = SignatureHeader::parse(received.signature_header) else {
        // Unreadable as sent: perhaps its encoding is what went wrong.
        let encodings = [
            (Cause::SignatureUrlEncodedTwice, raw.contains("%25").then(|| percent_decode(raw))),
            (Cause::SignatureNotUrlEncoded, raw.contains(' ').then(|| Some(raw.replace(' ', "+")))),
        ];
        diagnosis.cause = Cause::SignatureUnreadable;
        for (cause, text) in encodings {
            let Some(signature) = text.flatten().as_deref().and_then(read_signature) else { continue };
            if verifies(main_key, &diagnosis.string_to_sign, &signature) {
                diagnosis.cause = cause;
                diagnosis.verifying_key_version = Some(*main_version);
                break;
            }
        }
        return diagnosis;
    };
    let signature = header.signature;

    // Another key of the participant's: the newest ones, besides the one tried.
    let mut others: Vec<&(KeyVersion, VerifyingKey)> =
        keys.iter().filter(|(version, _)| Some(*version) != diagnosis.key_version).collect();
    others.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    for (version, key) in others.into_iter().take(OTHER_KEYS_MAX) {
        if verifies(key, &diagnosis.string_to_sign, &signature) {
            diagnosis.cause = Cause::OtherKeyVersion(*version);
            diagnosis.verifying_key_version = Some(*version);
            return diagnosis;
        }
    }

    // Variants of what was signed, with the key tried.
    for cause in variants(received) {
        let (path, time) = match &cause {
            Cause::SandboxPrefix { signed } | Cause::PathWithHost { signed } => {
                (signed.as_str(), received.request_time)
            }
            Cause::RequestTimeFormat { signed } => (received.path, signed.as_str()),
            _ => continue,
        };
        let content = content_to_sign("POST", path, received.client_id, time, received.body);
        if verifies(main_key, &content, &signature) {
            diagnosis.cause = cause;
            diagnosis.verifying_key_version = Some(*main_version);
            return diagnosis;
        }
    }
    diagnosis
}

/// The variants of the path and time a signer may have signed instead of what it sent.
fn variants(received: &Received<'_>) -> Vec<Cause> {
    let mut variants = Vec::with_capacity(5);
    let path = received.path;
    let swapped = match (path.strip_prefix(SANDBOX_PREFIX), path.strip_prefix(LIVE_PREFIX)) {
        (Some(rest), _) => Some(format!("{LIVE_PREFIX}{rest}")),
        (None, Some(rest)) => Some(format!("{SANDBOX_PREFIX}{rest}")),
        (None, None) => None,
    };
    if let Some(signed) = swapped {
        variants.push(Cause::SandboxPrefix { signed });
    }
    if let Some(host) = received.host.filter(|host| !host.is_empty()) {
        for scheme in ["https", "http"] {
            variants.push(Cause::PathWithHost { signed: format!("{scheme}://{host}{path}") });
        }
    }
    let sent = received.request_time;
    if let Some(at) = datetime::parse_header_time(sent) {
        let is_millis = sent.bytes().all(|byte| byte.is_ascii_digit());
        let times = if is_millis {
            [at.as_second().to_string(), datetime::format(at)]
        } else {
            [at.as_millisecond().to_string(), at.as_second().to_string()]
        };
        for signed in times {
            if signed != sent {
                variants.push(Cause::RequestTimeFormat { signed });
            }
        }
    }
    variants
}

/// The `keyVersion` a `Signature` header names, read leniently (the header may not parse).
fn named_key_version(header: &str) -> Option<KeyVersion> {
    let params = header.split_once("signature=").map_or(header, |(params, _)| params);
    params.split(',').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        (name.trim() == "keyVersion").then(|| value.trim().parse().ok()).flatten()
    })
}

/// What follows `signature=` in a header (or the whole text, for a signature pasted alone).
fn signature_text(text: &str) -> &str {
    text.split_once("signature=").map_or(text, |(_, signature)| signature).trim()
}

/// Whether a signature's text is URL-encoded: `Some(true)` with escapes, `Some(false)` with
/// raw base64's `+`, `/` or `=` (or spaces where `+` was), `None` when nothing needed escaping.
fn url_encoded(text: &str) -> Option<bool> {
    if text.contains('%') {
        Some(true)
    } else if text.contains(['+', '/', '=', ' ']) {
        Some(false)
    } else {
        None
    }
}

/// Undoes one round of percent-encoding; `None` for a malformed escape.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads a signature's text that is no longer URL-encoded: base64, padded or not.
fn read_signature(text: &str) -> Option<Vec<u8>> {
    let decoded = percent_decode(text)?;
    STANDARD
        .decode(&decoded)
        .or_else(|_| STANDARD_NO_PAD.decode(&decoded))
        .ok()
        .filter(|bytes| !bytes.is_empty())
}

/// How a pasted signature was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    /// URL-encoded once, as the protocol asks.
    UrlEncoded,
    UrlEncodedTwice,
    /// Raw base64, with `+`, `/` or `=` (or spaces where `+` was) unescaped.
    Raw,
    /// No character that needs escaping: it reads the same either way.
    Either,
    /// Not base64, however it is decoded.
    Unreadable,
}

/// What [`check_pasted`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastedCheck {
    /// The key version that verifies the signature over the string, if any.
    pub verified_by: Option<KeyVersion>,
    pub encoding: SignatureEncoding,
    /// Whether it verified only once the string's CRLF line endings (what a browser's text
    /// area sends) were read as LF.
    pub crlf_read_as_lf: bool,
}

impl PastedCheck {
    /// Whether the signature looks URL-encoded as the protocol asks.
    pub fn url_encoded(&self) -> bool {
        self.encoding == SignatureEncoding::UrlEncoded
    }
}

/// Checks a pasted signature (its value, or a whole `Signature` header) over a pasted
/// string-to-sign against each of a participant's keys, and says how the signature was encoded.
pub fn check_pasted(
    string_to_sign: &str,
    signature: &str,
    keys: &[(KeyVersion, VerifyingKey)],
) -> PastedCheck {
    let text = signature_text(signature);
    let (encoding, decoded) = if text.contains("%25") {
        (SignatureEncoding::UrlEncodedTwice, percent_decode(text).and_then(|once| read_signature(&once)))
    } else if text.contains('%') {
        (SignatureEncoding::UrlEncoded, read_signature(text))
    } else if text.contains(['+', '/', '=', ' ']) {
        (SignatureEncoding::Raw, read_signature(&text.replace(' ', "+")))
    } else {
        (SignatureEncoding::Either, read_signature(text))
    };
    let unreadable =
        PastedCheck { verified_by: None, encoding: SignatureEncoding::Unreadable, crlf_read_as_lf: false };
    let Some(decoded) = decoded else { return unreadable };
    let lf = string_to_sign.contains("\r\n").then(|| string_to_sign.replace("\r\n", "\n"));
    let mut check = PastedCheck { verified_by: None, encoding, crlf_read_as_lf: false };
    for (version, key) in keys {
        if key.verify(string_to_sign.as_bytes(), &decoded).is_ok() {
            check.verified_by = Some(*version);
            return check;
        }
        if let Some(lf) = &lf
            && key.verify(lf.as_bytes(), &decoded).is_ok()
        {
            check.verified_by = Some(*version);
            check.crlf_read_as_lf = true;
            return check;
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use ocpay_protocol::SigningKey;

    use super::*;

    const CLIENT_ID: &str = "SANDBOX_5X00000000000001";
    const SANDBOX_PATH: &str = "/ams/sandbox/api/v1/payments/pay";
    const LIVE_PATH: &str = "/ams/api/v1/payments/pay";
    const TIME_MS: &str = "1685599933000";
    const BODY: &[u8] = br#"{"paymentRequestId":"PR-1","paymentAmount":{"currency":"USD","value":"1000"}}"#;
    const HOST: &str = "gateway.example:8443";

    /// Two keys of one participant (versions 1 and 2) and a stranger's, made once.
    fn keys() -> &'static [SigningKey; 3] {
        static KEYS: OnceLock<[SigningKey; 3]> = OnceLock::new();
        KEYS.get_or_init(|| std::array::from_fn(|_| SigningKey::generate().expect("an RSA key")))
    }

    fn participant_keys() -> Vec<(KeyVersion, VerifyingKey)> {
        vec![(1, keys()[0].verifying_key()), (2, keys()[1].verifying_key())]
    }

    /// The `Signature` header a signer sends after signing `path` and `time` with `key`, its
    /// signature encoded by `encode` (the base64 in, the header's text out).
    fn header(key: &SigningKey, version: u32, path: &str, time: &str, body: &[u8], encode: Encode) -> String {
        let signature = key.sign(&content_to_sign("POST", path, CLIENT_ID, time, body)).unwrap();
        let base64 = STANDARD.encode(signature);
        format!("algorithm=RSA256,keyVersion={version},signature={}", encode(&base64))
    }

    type Encode = fn(&str) -> String;

    fn once(base64: &str) -> String {
        base64.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
    }

    fn twice(base64: &str) -> String {
        once(base64).replace('%', "%25")
    }

    /// Raw base64 whose `+` a form decoder on the way turned into spaces.
    fn plus_as_space(base64: &str) -> String {
        base64.replace('+', " ")
    }

    fn received<'a>(path: &'a str, header: &'a str) -> Received<'a> {
        Received {
            path,
            client_id: CLIENT_ID,
            request_time: TIME_MS,
            body: BODY,
            signature_header: header,
            host: Some(HOST),
        }
    }

    /// A signature over a base64 text with a `+` in it, so that its encodings differ; made by
    /// signing bodies that differ in one byte until one has (about half do).
    fn body_with_plus(key: &SigningKey, path: &str) -> Vec<u8> {
        (0..64)
            .map(|n| format!(r#"{{"paymentRequestId":"PR-{n}"}}"#).into_bytes())
            .find(|body| {
                let signature = key.sign(&content_to_sign("POST", path, CLIENT_ID, TIME_MS, body)).unwrap();
                STANDARD.encode(signature).contains('+')
            })
            .expect("a signature with a + among 64")
    }

    #[test]
    fn each_mistake_is_named_by_the_variant_that_verifies() {
        let [one, two, stranger] = keys();
        let keys = participant_keys();
        let iso = datetime::format(datetime::parse_header_time(TIME_MS).unwrap());
        let seconds = TIME_MS.trim_end_matches("000");
        // (what the signer did, the path sent, the header sent, the key tried, the cause)
        let cases: Vec<(&str, &str, String, Option<u32>, Cause)> = vec![
            (
                "signed with key 2, named key 1",
                SANDBOX_PATH,
                header(two, 1, SANDBOX_PATH, TIME_MS, BODY, once),
                Some(1),
                Cause::OtherKeyVersion(2),
            ),
            (
                "named a key version it does not have",
                SANDBOX_PATH,
                header(one, 7, SANDBOX_PATH, TIME_MS, BODY, once),
                None,
                Cause::OtherKeyVersion(1),
            ),
            (
                "signed the live path, sent to the sandbox one",
                SANDBOX_PATH,
                header(one, 1, LIVE_PATH, TIME_MS, BODY, once),
                Some(1),
                Cause::SandboxPrefix { signed: LIVE_PATH.into() },
            ),
            (
                "signed the sandbox path, sent to the live one",
                LIVE_PATH,
                header(one, 1, SANDBOX_PATH, TIME_MS, BODY, once),
                Some(1),
                Cause::SandboxPrefix { signed: SANDBOX_PATH.into() },
            ),
            (
                "signed the whole URL",
                SANDBOX_PATH,
                header(two, 2, &format!("https://{HOST}{SANDBOX_PATH}"), TIME_MS, BODY, once),
                Some(2),
                Cause::PathWithHost { signed: format!("https://{HOST}{SANDBOX_PATH}") },
            ),
            (
                "signed ISO text, sent epoch milliseconds",
                SANDBOX_PATH,
                header(one, 1, SANDBOX_PATH, &iso, BODY, once),
                Some(1),
                Cause::RequestTimeFormat { signed: iso.clone() },
            ),
            (
                "signed epoch seconds, sent epoch milliseconds",
                SANDBOX_PATH,
                header(one, 1, SANDBOX_PATH, seconds, BODY, once),
                Some(1),
                Cause::RequestTimeFormat { signed: seconds.into() },
            ),
            (
                "changed the body after signing",
                SANDBOX_PATH,
                header(one, 1, SANDBOX_PATH, TIME_MS, br#"{"paymentRequestId": "PR-1"}"#, once),
                Some(1),
                Cause::BodyChanged,
            ),
            (
                "signed with a key that is not the participant's",
                SANDBOX_PATH,
                header(stranger, 1, SANDBOX_PATH, TIME_MS, BODY, once),
                Some(1),
                Cause::BodyChanged,
            ),
            (
                "sent a signature that is not base64",
                SANDBOX_PATH,
                "algorithm=RSA256,keyVersion=1,signature=not*base64".into(),
                Some(1),
                Cause::SignatureUnreadable,
            ),
        ];
        for (what, path, header, tried, cause) in cases {
            let received = received(path, &header);
            let diagnosis = diagnose(&received, &keys);
            assert_eq!(diagnosis.cause, cause, "{what}");
            assert_eq!(
                diagnosis.string_to_sign,
                content_to_sign("POST", path, CLIENT_ID, TIME_MS, BODY),
                "{what}: the string verified is what was received"
            );
            assert_eq!(diagnosis.key_version, tried, "{what}");
            let record = diagnosis.record(&received, |bytes| String::from_utf8_lossy(bytes).into_owned());
            assert_eq!(record.cause, cause.name(), "{what}");
            assert!(!record.message.is_empty());
        }
    }

    #[test]
    fn the_signatures_encoding_is_named_when_it_is_what_went_wrong() {
        let [one, ..] = keys();
        let keys = participant_keys();
        let body = body_with_plus(one, SANDBOX_PATH);
        let cases: [(Encode, Cause, Option<bool>); 2] = [
            (twice, Cause::SignatureUrlEncodedTwice, Some(true)),
            (plus_as_space, Cause::SignatureNotUrlEncoded, Some(false)),
        ];
        for (encode, cause, url_encoded) in cases {
            let header = header(one, 1, SANDBOX_PATH, TIME_MS, &body, encode);
            let received = Received { body: &body, ..received(SANDBOX_PATH, &header) };
            let diagnosis = diagnose(&received, &keys);
            assert_eq!(diagnosis.cause, cause, "{header}");
            assert_eq!(diagnosis.verifying_key_version, Some(1));
            assert_eq!(diagnosis.signature_url_encoded, url_encoded);
        }
        // Encoded once or sent raw, the header reads as the signature: the platform verifies
        // both, so neither is a cause; the diagnosis of another mistake still says which it was.
        let raw = header(one, 1, LIVE_PATH, TIME_MS, &body, |base64| base64.to_owned());
        let diagnosis = diagnose(&Received { body: &body, ..received(SANDBOX_PATH, &raw) }, &keys);
        assert_eq!(
            (diagnosis.cause, diagnosis.signature_url_encoded),
            (Cause::SandboxPrefix { signed: LIVE_PATH.into() }, Some(false))
        );
    }

    #[test]
    fn a_diagnosis_makes_a_bounded_number_of_verifications() {
        // The worst case: nothing verifies, every variant applies, and the participant has many
        // keys, of which only the newest few are tried.
        let many: Vec<(KeyVersion, VerifyingKey)> = (1..=20)
            .map(|version| (version, keys()[usize::from(version % 2 == 0)].verifying_key()))
            .collect();
        let header = header(&keys()[2], 1, SANDBOX_PATH, TIME_MS, BODY, once);
        let received = received(SANDBOX_PATH, &header);
        assert_eq!(OTHER_KEYS_MAX + variants(&received).len(), VERIFICATIONS_MAX);
        assert_eq!(diagnose(&received, &many).cause, Cause::BodyChanged);
        // The key that verifies is found among the newest, whichever the request named.
        let signed_by_newest = header_of_key(&keys()[1], 1);
        let diagnosis = diagnose(&received_with(&signed_by_newest), &many);
        assert_eq!(diagnosis.cause, Cause::OtherKeyVersion(20));
    }

    fn header_of_key(key: &SigningKey, version: u32) -> String {
        header(key, version, SANDBOX_PATH, TIME_MS, BODY, once)
    }

    fn received_with(header: &str) -> Received<'_> {
        received(SANDBOX_PATH, header)
    }

    #[test]
    fn a_pasted_signature_is_checked_against_each_key_and_its_encoding_named() {
        let [one, two, stranger] = keys();
        let keys = participant_keys();
        let string = format!("POST {SANDBOX_PATH}\n{CLIENT_ID}.{TIME_MS}.{}", String::from_utf8_lossy(BODY));
        let signed = |key: &SigningKey, text: &str| STANDARD.encode(key.sign(text.as_bytes()).unwrap());
        let with_plus = |key: &SigningKey| {
            (0..64)
                .map(|n| format!("{string}{n}"))
                .find(|text| signed(key, text).contains('+'))
                .expect("a signature with a + among 64")
        };
        let plus_string = with_plus(two);
        let plus_signature = signed(two, &plus_string);
        let crlf = string.replace('\n', "\r\n");
        let expect =
            |verified_by, encoding, crlf_read_as_lf| PastedCheck { verified_by, encoding, crlf_read_as_lf };
        let by_one = signed(one, &string);
        let by_stranger = signed(stranger, &string);
        // (what was pasted: the string, the signature; what the check says)
        let cases: Vec<(&str, &str, String, PastedCheck)> = vec![
            (
                "a whole header",
                &plus_string,
                header_of(2, &once(&plus_signature)),
                expect(Some(2), SignatureEncoding::UrlEncoded, false),
            ),
            (
                "the value alone",
                &plus_string,
                once(&plus_signature),
                expect(Some(2), SignatureEncoding::UrlEncoded, false),
            ),
            (
                "raw base64",
                &plus_string,
                plus_signature.clone(),
                expect(Some(2), SignatureEncoding::Raw, false),
            ),
            (
                "encoded twice",
                &plus_string,
                twice(&plus_signature),
                expect(Some(2), SignatureEncoding::UrlEncodedTwice, false),
            ),
            ("by another key", &string, once(&by_one), expect(Some(1), url_or_either(&by_one), false)),
            (
                "over LF, pasted with CRLF",
                &crlf,
                once(&by_one),
                expect(Some(1), url_or_either(&by_one), true),
            ),
            ("a stranger's", &string, once(&by_stranger), expect(None, url_or_either(&by_stranger), false)),
            ("not a signature", &string, "***".into(), expect(None, SignatureEncoding::Unreadable, false)),
        ];
        for (what, pasted_string, pasted_signature, expected) in cases {
            let check = check_pasted(pasted_string, &pasted_signature, &keys);
            assert_eq!(check, expected, "{what}");
            assert_eq!(check.url_encoded(), expected.encoding == SignatureEncoding::UrlEncoded, "{what}");
        }
    }

    fn header_of(version: u32, encoded: &str) -> String {
        format!("algorithm=RSA256,keyVersion={version},signature={encoded}")
    }

    /// How [`once`] leaves a base64 text: URL-encoded if it had anything to escape.
    fn url_or_either(base64: &str) -> SignatureEncoding {
        if base64.contains(['+', '/', '=']) {
            SignatureEncoding::UrlEncoded
        } else {
            SignatureEncoding::Either
        }
    }
}
