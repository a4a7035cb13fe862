//! The targets. Each reads its input as the platform receives it (header text, a body, a path)
//! or builds structured values from it ([`crate::input::Input`]), and asserts what must hold.

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};
use ocpay_core::money::{Currency, Money};
use ocpay_protocol::api_log::ApiLogInquiryRequest;
use ocpay_protocol::model::Quote;
use ocpay_protocol::payments::{CancelRequest, InquiryPaymentRequest, PayRequest, PaymentNotification};
use ocpay_protocol::refunds::{InquiryRefundRequest, RefundNotification, RefundRequest};
use ocpay_protocol::registrations::{
    InquiryRegistrationInfoRequest, InquiryRegistrationStatusRequest, RegistrationRequest,
};
use ocpay_protocol::{Api, ResultCode, SignatureHeader, SigningKey, VerifyingKey, datetime};
use ocpay_server::signature_debug::{self, Received};
use ocpay_settlement::files::{self, AmountUnit, FileFormat, TransactionItem, TransactionType};
use ocpay_sftp::Place;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::input::Input;

/// The `Signature` header as the gateway reads it, and as the signature debugger reads it when
/// a signature did not verify (the API log's diagnosis, the developer center's check of a
/// pasted signature). A header that parses formats back to one that parses to the same
/// signature.
pub fn signature_header(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(header) = SignatureHeader::parse(&text) {
        assert!(!header.signature.is_empty(), "an empty signature parsed");
        let formatted = header.format();
        let again = SignatureHeader::parse(&formatted)
            .unwrap_or_else(|error| panic!("{formatted:?}, formatted from a parsed header: {error}"));
        assert_eq!(again.signature, header.signature, "the signature changed through format");
        assert_eq!(again.key_version, Some(header.key_version.unwrap_or(1)));
    }
    let keys = [(1, debug_key().clone())];
    let received = Received {
        path: "/ams/api/v1/payments/pay",
        client_id: "SANDBOX_5YC2XXXXX0000",
        request_time: "1685599933871",
        body: b"{}",
        signature_header: &text,
        host: Some("ocpay.example"),
    };
    let diagnosis = signature_debug::diagnose(&received, &keys);
    // A made-up signature never verifies with a key nobody signed with.
    assert!(diagnosis.verifying_key_version.is_none(), "a fuzzed signature verified");
    let pasted = signature_debug::check_pasted("POST /ams\nC.1.{}", &text, &keys);
    assert!(pasted.verified_by.is_none(), "a fuzzed pasted signature verified");
}

/// One key for the signature debugger to try, made once per process.
fn debug_key() -> &'static VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().expect("an RSA key generates").verifying_key())
}

/// `Request-Time` (and `Response-Time`) as epoch milliseconds or ISO 8601, and body date-times.
/// A time that parses survives the skew check's arithmetic against any clock, and formats to
/// text that parses back to the same second.
pub fn request_time(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for parsed in [datetime::parse_header_time(&text), datetime::parse(&text)].into_iter().flatten() {
        // The gateway's skew check: |now - sent|, for a clock anywhere in the supported range.
        for now in [Timestamp::MIN, Timestamp::UNIX_EPOCH, Timestamp::MAX] {
            let _ = now.duration_since(parsed).abs();
        }
        let formatted = datetime::format(parsed);
        let again = datetime::parse(&formatted)
            .unwrap_or_else(|| panic!("{formatted:?}, formatted from {text:?}, does not parse"));
        assert_eq!(again.as_second(), parsed.as_second(), "{text:?} formatted as {formatted:?}");
    }
}

/// The request types and the other types with lenient fields (numbers where strings are
/// documented, `"true"` for true, a decimal as a number, one object for a list). What parses
/// writes out as JSON that parses back to the same value.
pub fn lenient_json(data: &[u8]) {
    round_trip::<PayRequest>(data);
    round_trip::<InquiryPaymentRequest>(data);
    round_trip::<CancelRequest>(data);
    round_trip::<RefundRequest>(data);
    round_trip::<InquiryRefundRequest>(data);
    round_trip::<RegistrationRequest>(data);
    round_trip::<InquiryRegistrationStatusRequest>(data);
    round_trip::<InquiryRegistrationInfoRequest>(data);
    round_trip::<ApiLogInquiryRequest>(data);
    round_trip::<Quote>(data);
    round_trip::<PaymentNotification>(data);
    round_trip::<RefundNotification>(data);
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(data) else { return };
    let written = serde_json::to_vec(&value).expect("a parsed value serializes");
    let again: T = serde_json::from_slice(&written).unwrap_or_else(|error| {
        panic!("{} written as {:?} does not parse back: {error}", std::any::type_name::<T>(), lossy(&written))
    });
    assert_eq!(again, value, "{} changed through JSON", std::any::type_name::<T>());
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every API's request as the gateway handles a verified body: parse, then the checks of its
/// fields. The first byte picks the API, the rest is the body. A body is accepted or refused
/// with `PARAM_ILLEGAL` and a message that names what is wrong; nothing else.
pub fn request_validation(data: &[u8]) {
    let Some((selector, body)) = data.split_first() else { return };
    let api = Api::ALL[usize::from(*selector) % Api::ALL.len()];
    if let Err((code, message)) = ocpay_server::check_request(api, body) {
        assert_eq!(code, ResultCode::PARAM_ILLEGAL, "{}: {message}", api.name());
        let (field, reason) =
            message.split_once(": ").unwrap_or_else(|| panic!("{}: {message:?} names no field", api.name()));
        assert!(!field.is_empty() && !reason.is_empty(), "{}: {message:?}", api.name());
    }
}

/// The SFTP path resolver: whatever the path, a participant's tree is reached only through
/// `/v1/settlements/<id>`, and its disk path stays under that tree's folder, component for
/// component. Resolving the path it names again names the same place.
pub fn sftp_path(data: &[u8]) {
    let path = String::from_utf8_lossy(data);
    let root = Path::new("/srv/ocpay/reports");
    let place = ocpay_sftp::locate(&path);
    match &place {
        Place::Missing => {}
        Place::Prefix(name) => assert!(["v1", "settlements"].contains(name), "{path:?}: prefix {name}"),
        Place::Trees => {}
        Place::Tree { owner, parts } => {
            assert!(parts.len() >= 3, "{path:?}: {parts:?}");
            assert_eq!(parts[..3], ["v1", "settlements", owner.as_str()], "{path:?}");
            let disk = ocpay_sftp::disk_path(root, parts);
            let inside = disk
                .strip_prefix(root.join("v1").join("settlements").join(owner.as_str()))
                .unwrap_or_else(|_| panic!("{path:?} leaves its tree: {}", disk.display()));
            assert!(
                inside.components().all(|part| matches!(part, Component::Normal(_))),
                "{path:?}: {}",
                disk.display()
            );
            let below = disk.strip_prefix(root).map(|rest| rest.components().count());
            assert_eq!(below, Ok(parts.len()), "{path:?}: a component split or vanished");
            let canonical = format!("/{}", parts.join("/"));
            assert_eq!(ocpay_sftp::locate(&canonical), place, "{path:?} and {canonical:?}");
        }
    }
}

/// The transaction details writer: arbitrary texts in every free field, any amount, time and
/// zone, files split into parts of a few rows. A day it writes reads back row for row as it
/// was given (times in whole seconds, an empty optional text as none); one it refuses fails
/// cleanly.
pub fn csv_writer(data: &[u8]) {
    let mut input = Input::new(data);
    let customer_id = if input.byte() & 1 == 1 { input.text() } else { "C1".to_owned() };
    let format = FileFormat {
        amounts: if input.byte() & 1 == 1 { AmountUnit::Minor } else { AmountUnit::Major },
        zone: zone(input.i64()),
        rows_per_file: 1 + usize::from(input.byte() % 4),
    };
    let date = Date::new(2026, 11, 30).expect("a valid date");
    let mut rows = Vec::new();
    while !input.is_empty() && rows.len() < 16 {
        rows.push(item(&mut input, &customer_id));
    }
    let dir = ScratchDir::new();
    let written = files::write_transaction_items(
        dir.path(),
        &customer_id,
        date,
        &format,
        rows.iter().cloned().map(Ok::<_, std::io::Error>),
    );
    let Ok(written) = written else { return };
    assert_eq!(written.rows, rows.len() as u64);
    assert_eq!(written.parts.len(), rows.len().div_ceil(format.rows_per_file).max(1));
    let mut read = Vec::new();
    for part in &written.parts {
        let path = dir.path().join(part);
        let items = files::read_transaction_items(&path)
            .unwrap_or_else(|error| panic!("{part} as written does not read back: {error}"));
        assert!(items.len() <= format.rows_per_file, "{part}: {} rows", items.len());
        read.extend(items);
    }
    let expected: Vec<TransactionItem> = rows.into_iter().map(as_read).collect();
    assert_eq!(read, expected, "the rows changed through the file");
}

const CURRENCIES: [&str; 5] = ["USD", "JPY", "KWD", "CNY", "EUR"];

fn zone(seconds: i64) -> TimeZone {
    // Offsets within the widest a zone has (±25:59:59); none at all half of the time.
    if seconds % 2 == 0 {
        return TimeZone::UTC;
    }
    let seconds = i32::try_from(seconds.rem_euclid(2 * 93_599) - 93_599).unwrap_or(0);
    Offset::from_seconds(seconds).map_or(TimeZone::UTC, TimeZone::fixed)
}

fn item(input: &mut Input<'_>, customer_id: &str) -> TransactionItem {
    let kind = input.byte();
    let currency =
        Currency::parse(CURRENCIES[usize::from(kind >> 2) % CURRENCIES.len()]).expect("a known currency");
    let transaction_type = match kind % 3 {
        0 => TransactionType::Payment,
        1 => TransactionType::Refund,
        _ => TransactionType::Cancel,
    };
    let seconds = input.i64().rem_euclid(Timestamp::MAX.as_second() - Timestamp::MIN.as_second())
        + Timestamp::MIN.as_second();
    let nanos = i32::try_from(input.i64().rem_euclid(1_000_000_000)).unwrap_or(0);
    let payment_time = Timestamp::new(seconds, nanos).unwrap_or(Timestamp::UNIX_EPOCH);
    TransactionItem {
        customer_id: customer_id.to_owned(),
        reference_merchant_id: input.optional_text(),
        reference_store_id: input.optional_text(),
        transaction_id: input.text(),
        original_transaction_id: input.optional_text(),
        transaction_request_id: input.text(),
        reference_transaction_id: input.optional_text(),
        order_description: input.optional_text(),
        transaction_type,
        payment_time,
        transaction_amount: Money::new(input.i64(), currency),
    }
}

/// A row as the reader gives it back.
fn as_read(mut item: TransactionItem) -> TransactionItem {
    let none_if_empty = |text: &mut Option<String>| {
        if text.as_deref() == Some("") {
            *text = None;
        }
    };
    none_if_empty(&mut item.reference_merchant_id);
    none_if_empty(&mut item.reference_store_id);
    none_if_empty(&mut item.original_transaction_id);
    none_if_empty(&mut item.reference_transaction_id);
    none_if_empty(&mut item.order_description);
    let time = item.payment_time;
    let second = if time.subsec_nanosecond() < 0 { time.as_second() - 1 } else { time.as_second() };
    item.payment_time = Timestamp::from_second(second).unwrap_or(time);
    item
}

/// A fresh folder for one input's files, in memory where the system has `/dev/shm`, removed
/// afterwards.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> ScratchDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() { base.to_path_buf() } else { std::env::temp_dir() };
        let name = format!("ocpay-fuzz-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        ScratchDir(base.join(name))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
