//! The three reconciliation files of spec §7 and §13.16-18: transaction details, settlement
//! details and settlement summary.
//!
//! Writers stream: rows go to the CSV writer as they arrive and nothing holds a day in memory,
//! because a busy merchant's day is millions of rows. Every part is written under a temporary
//! name, fsync'd, and renamed into place only when every part of the file set is complete, so a
//! reader (the merchant's SFTP client) never sees half a file, and a generation that fails
//! half-way leaves the previous generation as it was. One generator per folder at a time: two
//! generators of the same day would overwrite each other's temporary parts.
//!
//! Readers parse the files back into the same typed rows, for the reconcile checks and the
//! tests. Amounts are integers of minor units on both sides; no float ever touches them.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use jiff::fmt::temporal::DateTimePrinter;
use jiff::tz::TimeZone;
use ocpay_core::Timestamp;
use ocpay_core::money::{Currency, Money};

ocpay_core::named_enum! {
    /// What a row of a file reports.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum TransactionType {
        Payment = "PAYMENT",
        Refund = "REFUND",
        /// A paid payment cancelled inside its window (a full reversal).
        Cancel = "CANCEL",
    }
}

/// One row of a transaction details file: a payment, refund or cancel that completed on the
/// file's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionItem {
    /// The participant's client id.
    pub customer_id: String,
    pub reference_merchant_id: Option<String>,
    pub reference_store_id: Option<String>,
    /// The payment id (payments, cancels) or refund id (refunds).
    pub transaction_id: String,
    /// The refunded payment's id (refunds only).
    pub original_transaction_id: Option<String>,
    /// `paymentRequestId` or `refundRequestId`.
    pub transaction_request_id: String,
    /// The merchant's `referenceOrderId`, when it sent one.
    pub reference_transaction_id: Option<String>,
    pub order_description: Option<String>,
    pub transaction_type: TransactionType,
    /// When the transaction completed.
    pub payment_time: Timestamp,
    /// The transaction's own amount: negative for refunds and cancels.
    pub transaction_amount: Money,
}

/// One row of a settlement details file: one transaction of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementItem {
    pub settlement_batch_id: String,
    pub item: TransactionItem,
    /// When the batch settled.
    pub settlement_time: Timestamp,
    /// What this row adds to the merchant's settlement, in the settlement currency: the
    /// transaction amount converted, plus `fee` and `tax` (which are negative for a payment).
    /// Negative for refunds and cancels.
    pub settlement_amount: Money,
    /// `quoteCurrencyPair` and `quotePrice` when the transaction's currency is not the
    /// settlement currency.
    pub quote: Option<(String, String)>,
    /// The fee in the settlement currency: negative for a payment (it reduces the settlement),
    /// positive where a refund or cancel returns it.
    pub fee: Money,
    /// The tax on the fee, in the settlement currency, signed as `fee`.
    pub tax: Money,
}

/// `PSP` column: the platform that settles.
pub const PSP: &str = "OCPAY";
/// `pspName` column: the wallet that paid. ocpay is its own wallet.
pub const PSP_NAME: &str = "OCPAY";
/// `paymentMethodType` column.
pub const PAYMENT_METHOD_TYPE: &str = "CONNECT_WALLET";
/// `productCode` column.
pub const PRODUCT_CODE: &str = "IN_STORE_PAYMENT";
/// The last line of every file: a reader that does not see it knows the file is cut short.
pub const END_MARKER: &str = "<END>";
/// How many data rows a part holds unless the caller says otherwise.
pub const DEFAULT_ROWS_PER_FILE: usize = 1_000_000;

/// Header of a transaction details file, in spec order.
pub const TRANSACTION_ITEMS_COLUMNS: [&str; 15] = [
    "customerId",
    "referenceMerchantId",
    "referenceStoreId",
    "transactionId",
    "originalTransactionId",
    "transactionRequestId",
    "referenceTransactionId",
    "orderDescription",
    "paymentMethodType",
    "pspName",
    "transactionType",
    "paymentTime",
    "productCode",
    "transactionAmountValue",
    "transactionCurrency",
];

/// Header of a settlement details file, in spec order.
pub const SETTLEMENT_ITEMS_COLUMNS: [&str; 25] = [
    "settlementBatchId",
    "customerId",
    "PSP",
    "referenceMerchantId",
    "referenceStoreId",
    "transactionId",
    "originalTransactionId",
    "transactionRequestId",
    "referenceTransactionId",
    "paymentMethodType",
    "pspName",
    "transactionType",
    "paymentTime",
    "settlementTime",
    "productCode",
    "transactionAmountValue",
    "transactionCurrency",
    "settlementAmountValue",
    "settlementCurrency",
    "quoteCurrencyPair",
    "quotePrice",
    "feeAmountValue",
    "feeCurrency",
    "taxFeeAmountValue",
    "taxFeeCurrency",
];

/// Header of a settlement summary file, in spec order.
pub const SETTLEMENT_SUMMARY_COLUMNS: [&str; 12] = [
    "settlementBatchId",
    "customerId",
    "PSP",
    "summaryType",
    "settlementTime",
    "count",
    "settlementAmountValue",
    "settlementCurrency",
    "feeAmountValue",
    "feeCurrency",
    "taxFeeAmountValue",
    "taxFeeCurrency",
];

ocpay_core::named_enum! {
    /// What a row of a settlement summary adds up: the items of one type, or all of them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum SummaryType {
        Payment = "PAYMENT",
        Refund = "REFUND",
        Cancel = "CANCEL",
        /// Every item of the batch; the last row, written even for an empty batch.
        Total = "TOTAL",
    }
}

impl From<TransactionType> for SummaryType {
    fn from(value: TransactionType) -> SummaryType {
        match value {
            TransactionType::Payment => SummaryType::Payment,
            TransactionType::Refund => SummaryType::Refund,
            TransactionType::Cancel => SummaryType::Cancel,
        }
    }
}

/// One row of a settlement summary file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    pub settlement_batch_id: String,
    pub customer_id: String,
    pub summary_type: SummaryType,
    /// When the batch settled, in whole seconds (as the file carries it).
    pub settlement_time: Timestamp,
    pub count: u64,
    /// Sum of the items' settlement amounts, in the settlement currency.
    pub settlement_amount: Money,
    /// Sum of the items' fees, in the settlement currency.
    pub fee: Money,
    /// Sum of the items' taxes on the fee, in the settlement currency.
    pub tax: Money,
}

/// How amounts are written: the spec's major units by default; minor units (integers) for
/// merchants whose importers cannot take decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AmountUnit {
    /// `10.00` for USD 10, `1000` for JPY 1000, `1.234` for KWD 1.234.
    #[default]
    Major,
    /// `1000` for USD 10: the integer count of the currency's smallest unit.
    Minor,
}

/// The settings that shape every file: they change bytes, never meaning.
#[derive(Debug, Clone)]
pub struct FileFormat {
    pub amounts: AmountUnit,
    /// The report time zone: times are written with its offset, and the day folders follow it.
    pub zone: TimeZone,
    /// Data rows per part (at least 1); a file with more rows is split into `_000`, `_001`, ...
    pub rows_per_file: usize,
}

impl Default for FileFormat {
    fn default() -> FileFormat {
        FileFormat { amounts: AmountUnit::Major, zone: TimeZone::UTC, rows_per_file: DEFAULT_ROWS_PER_FILE }
    }
}

/// Why a file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file system refused: creating, writing, syncing, renaming, listing or reading.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    /// A file is not what this module writes; `line` is 1-based, as an editor shows it.
    #[error("{}, line {line}: {reason}", path.display())]
    Malformed { path: PathBuf, line: u64, reason: String },
    /// A row given to a writer cannot go in this file (wrong customer, batch or currency,
    /// an empty id, a sum out of range). `row` counts the rows given, from 1.
    #[error("row {row}: {reason}")]
    BadRow { row: u64, reason: String },
    /// The caller's row source failed; nothing of this generation was published.
    #[error("row {row} could not be read: {error}")]
    Source { row: u64, error: Box<dyn std::error::Error + Send + Sync> },
    /// A setting or a name cannot be used (`rows_per_file` 0, a customer id with a `/`).
    #[error("{0}")]
    Setting(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |error| Error::Io { path: path.to_path_buf(), error }
}

// ---------------------------------------------------------------------------------------------
// Amounts

/// Why the text of an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("{0:?} is not a decimal amount")]
    NotDecimal(String),
    #[error("{text:?} must have exactly {exponent} decimals for {currency}")]
    WrongDecimals { text: String, exponent: u32, currency: Currency },
    #[error("{text:?} has more decimals than {currency} has ({exponent})")]
    TooManyDecimals { text: String, exponent: u32, currency: Currency },
    #[error("{0:?} is out of range")]
    OutOfRange(String),
}

/// The text of an amount in a file: `format_major` for major units, the integer for minor.
pub fn format_amount(money: Money, unit: AmountUnit) -> String {
    match unit {
        AmountUnit::Major => money.format_major(),
        AmountUnit::Minor => money.minor().to_string(),
    }
}

/// Parses an amount as [`format_amount`] writes it, exactly: in major units the number of
/// decimals must be the currency's exponent (`10.00` for USD, `1000` for JPY); in minor units
/// an integer. A leading `-` is allowed; nothing else (no `+`, spaces, exponents or commas).
pub fn parse_amount(text: &str, currency: Currency, unit: AmountUnit) -> Result<Money, AmountError> {
    let minor = match unit {
        AmountUnit::Major => parse_decimal(text, currency, Decimals::Exact)?,
        AmountUnit::Minor => parse_decimal(text, currency, Decimals::None)?,
    };
    Ok(Money::new(minor, currency))
}

/// Parses an amount in major units as people write it: `12.5`, `12.50` and `12` are all
/// USD 12.50 and 12.00, but `12.505` is refused (USD has no thousandths), never rounded.
pub fn parse_major_lenient(text: &str, currency: Currency) -> Result<Money, AmountError> {
    parse_decimal(text, currency, Decimals::AtMost).map(|minor| Money::new(minor, currency))
}

/// How many decimals [`parse_decimal`] accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Decimals {
    /// No decimal point: an integer (minor units).
    None,
    /// Exactly the currency's exponent, as the files are written.
    Exact,
    /// From none to the currency's exponent.
    AtMost,
}

/// Decimal text to minor units by integer arithmetic: the digits are accumulated into an
/// `i128` (which cannot overflow for the 40 digits let through) and then checked to fit `i64`.
fn parse_decimal(text: &str, currency: Currency, decimals: Decimals) -> Result<i64, AmountError> {
    let not_decimal = || AmountError::NotDecimal(text.to_owned());
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match body.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() && decimals != Decimals::None => (whole, fraction),
        Some(_) => return Err(not_decimal()),
        None => (body, ""),
    };
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err(not_decimal());
    }
    // Minor units are integers whatever the currency.
    let exponent = if decimals == Decimals::None { 0 } else { currency.exponent() };
    let places = u32::try_from(fraction.len()).unwrap_or(u32::MAX);
    if places > exponent {
        return Err(AmountError::TooManyDecimals { text: text.to_owned(), exponent, currency });
    }
    if decimals == Decimals::Exact && places != exponent {
        return Err(AmountError::WrongDecimals { text: text.to_owned(), exponent, currency });
    }
    let out_of_range = || AmountError::OutOfRange(text.to_owned());
    if whole.len() + fraction.len() > 30 {
        return Err(out_of_range());
    }
    let mut magnitude: i128 = 0;
    for byte in whole.bytes().chain(fraction.bytes()) {
        magnitude = magnitude * 10 + i128::from(byte - b'0');
    }
    for _ in places..exponent {
        magnitude *= 10;
    }
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).map_err(|_| out_of_range())
}

// ---------------------------------------------------------------------------------------------
// Names

/// `YYYYMMDD`, as folders and file names carry a day.
fn day_digits(date: Date) -> String {
    format!("{:04}{:02}{:02}", date.year(), date.month(), date.day())
}

/// The folder of a customer's files of one day, relative to the root: `v1/settlements/C1/20261130`.
pub fn day_folder(customer_id: &str, date: Date) -> String {
    format!("v1/settlements/{customer_id}/{}", day_digits(date))
}

/// The folder of all a customer's files under the reports root (`v1/settlements/C1`); `None`
/// for an id that cannot name a folder, whose files are never written (see [`check_name`]).
pub fn customer_folder(root: &Path, customer_id: &str) -> Option<PathBuf> {
    check_name("customer id", customer_id).ok()?;
    Some(root.join("v1").join("settlements").join(customer_id))
}

/// The date a day's folder is named by (`20261130`), or `None` for any other name.
pub fn folder_date(name: &str) -> Option<Date> {
    if name.len() != 8 || !name.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| name[range].parse::<i16>().ok();
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let date = Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()?;
    (day_digits(date) == name).then_some(date)
}

fn transaction_items_stem(date: Date) -> String {
    format!("transactionItems_{}", day_digits(date))
}

fn settlement_items_stem(currency: Currency, batch_id: &str) -> String {
    format!("settlementItems_{currency}_{batch_id}")
}

fn settlement_summary_stem(currency: Currency, batch_id: &str) -> String {
    format!("settlementSummary_{currency}_{batch_id}")
}

fn part_name(stem: &str, seq: usize) -> String {
    format!("{stem}_{seq:03}.csv")
}

/// Relative path of part `seq` of a day's transaction details.
pub fn transaction_items_path(customer_id: &str, date: Date, seq: usize) -> String {
    format!("{}/{}", day_folder(customer_id, date), part_name(&transaction_items_stem(date), seq))
}

/// Relative path of part `seq` of a batch's settlement details.
pub fn settlement_items_path(
    customer_id: &str,
    settlement_date: Date,
    currency: Currency,
    batch_id: &str,
    seq: usize,
) -> String {
    let name = part_name(&settlement_items_stem(currency, batch_id), seq);
    format!("{}/{name}", day_folder(customer_id, settlement_date))
}

/// Relative path of part `seq` of a batch's settlement summary.
pub fn settlement_summary_path(
    customer_id: &str,
    settlement_date: Date,
    currency: Currency,
    batch_id: &str,
    seq: usize,
) -> String {
    let name = part_name(&settlement_summary_stem(currency, batch_id), seq);
    format!("{}/{name}", day_folder(customer_id, settlement_date))
}

/// Which of the three files `name` is, when it is a name this crate writes in the folder of
/// `date`: `transactionItems_<date>_<seq>.csv` (of the folder's own day), or
/// `settlementItems_<currency>_<batchId>_<seq>.csv` or `settlementSummary_...` (of a batch that
/// settles that day). Anything else is none of them: a temporary part, another day's details, a
/// path, a name with a separator. Those who serve files by name (the developer center) serve
/// only these.
pub fn file_kind_of_name(name: &str, date: Date) -> Option<FileKind> {
    let (stem, seq) = name.strip_suffix(".csv")?.rsplit_once('_')?;
    let canonical_seq = seq.len() >= 3
        && seq.bytes().all(|byte| byte.is_ascii_digit())
        && seq.parse::<usize>().is_ok_and(|number| part_name("", number) == format!("_{seq}.csv"));
    if !canonical_seq {
        return None;
    }
    if stem == transaction_items_stem(date) {
        return Some(FileKind::TransactionItems);
    }
    let (kind, rest) = if let Some(rest) = stem.strip_prefix("settlementItems_") {
        (FileKind::SettlementItems, rest)
    } else {
        (FileKind::SettlementSummary, stem.strip_prefix("settlementSummary_")?)
    };
    let (code, batch_id) = rest.split_once('_')?;
    let currency = Currency::parse(code).ok()?;
    let named = match kind {
        FileKind::SettlementItems => settlement_items_stem(currency, batch_id),
        _ => settlement_summary_stem(currency, batch_id),
    };
    (check_name("batch id", batch_id).is_ok() && named == stem).then_some(kind)
}

/// Refuses an id that would escape its folder or hide its file once put in a path: client ids
/// are any printable ASCII, so `../x` or `a/b` are valid ids but not valid folder names.
fn check_name(what: &str, value: &str) -> Result<()> {
    let refused = |why: &str| Err(Error::Setting(format!("{what} {value:?} cannot name a file: {why}")));
    if value.is_empty() {
        return refused("it is empty");
    }
    if value.starts_with('.') {
        return refused("it starts with a dot");
    }
    let bad =
        |c: char| !c.is_ascii_graphic() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|');
    if value.chars().any(bad) {
        return refused("only printable ASCII without / \\ : * ? \" < > | is allowed");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Times

/// Prints `2026-11-30T18:07:43+08:00`: whole seconds (truncated), the zone's offset at that
/// instant.
const TIME_PRINTER: DateTimePrinter = DateTimePrinter::new().precision(Some(0));

/// The time in the zone's offset at that instant, in whole minutes: an offset is written
/// without seconds, so one that has them (a zone's local mean time of old, a fixed offset with
/// seconds) is cut to its minutes first, and the time is written in that offset. Printed with
/// the seconds, the offset would be rounded as it is written but not the time, which would then
/// read back as another instant.
fn push_time(buf: &mut String, time: Timestamp, zone: &TimeZone) -> std::result::Result<(), jiff::Error> {
    let seconds = zone.to_offset(time).seconds();
    let offset = jiff::tz::Offset::from_seconds(seconds - seconds % 60)?;
    TIME_PRINTER.print_timestamp_with_offset(&time, offset, buf)
}

/// The instant as the files carry it: whole seconds, rounded down like the printer does.
fn whole_seconds(time: Timestamp) -> Timestamp {
    let nanos = time.subsec_nanosecond();
    let second = if nanos < 0 { time.as_second().saturating_sub(1) } else { time.as_second() };
    Timestamp::from_second(second).unwrap_or(time)
}

// ---------------------------------------------------------------------------------------------
// Parts: one logical file split into `_000`, `_001`, ... written under temporary names

/// A file set being written: the open part, and the parts already complete under their
/// temporary names, waiting for [`Parts::commit`] to rename them all.
struct Parts {
    dir: PathBuf,
    rel_dir: String,
    stem: String,
    header: &'static [&'static str],
    rows_per_file: usize,
    open: Option<OpenPart>,
    /// Temporary files written and fsync'd, in seq order.
    staged: Vec<PathBuf>,
}

struct OpenPart {
    writer: csv::Writer<File>,
    tmp: PathBuf,
    rows: usize,
}

/// Large enough that a row is rarely split across two `write` calls.
const WRITE_BUFFER: usize = 256 * 1024;

impl Parts {
    fn new(
        root: &Path,
        rel_dir: String,
        stem: String,
        header: &'static [&'static str],
        rows_per_file: usize,
    ) -> Result<Parts> {
        if rows_per_file == 0 {
            return Err(Error::Setting("rows_per_file must be at least 1".to_owned()));
        }
        let dir = root.join(&rel_dir);
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        Ok(Parts { dir, rel_dir, stem, header, rows_per_file, open: None, staged: Vec::new() })
    }

    fn tmp_path(&self, seq: usize) -> PathBuf {
        self.dir.join(format!(".{}.tmp", part_name(&self.stem, seq)))
    }

    fn write_row<I, T>(&mut self, fields: I) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        if self.open.as_ref().is_some_and(|open| open.rows >= self.rows_per_file) {
            self.close_open()?;
        }
        if self.open.is_none() {
            self.open = Some(self.start()?);
        }
        if let Some(open) = &mut self.open {
            open.writer.write_record(fields).map_err(|error| csv_write_error(&open.tmp, error))?;
            open.rows += 1;
        }
        Ok(())
    }

    fn start(&mut self) -> Result<OpenPart> {
        let tmp = self.tmp_path(self.staged.len());
        let file = File::create(&tmp).map_err(io_error(&tmp))?;
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(WRITE_BUFFER)
            .from_writer(file);
        writer.write_record(self.header).map_err(|error| csv_write_error(&tmp, error))?;
        Ok(OpenPart { writer, tmp, rows: 0 })
    }

    /// Ends the open part with `<END>`, and syncs it so the rename publishes what was written.
    fn close_open(&mut self) -> Result<()> {
        let Some(open) = self.open.take() else { return Ok(()) };
        let tmp = open.tmp;
        // Until it is staged, the Drop of `Parts` does not know the file: stage it first.
        self.staged.push(tmp.clone());
        let mut file = open.writer.into_inner().map_err(|error| Error::Io {
            path: tmp.clone(),
            error: io::Error::new(error.error().kind(), error.error().to_string()),
        })?;
        file.write_all(format!("{END_MARKER}\n").as_bytes()).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
        Ok(())
    }

    /// Completes the last part (an empty file set still gets `_000` with header and `<END>`).
    fn close(&mut self) -> Result<()> {
        if self.open.is_none() && self.staged.is_empty() {
            self.open = Some(self.start()?);
        }
        self.close_open()
    }

    /// Renames every staged part into place, removes the parts of an earlier, longer generation
    /// (and temporary files a crashed one left), then syncs the folder so the renames last.
    /// Returns the relative paths of the parts, in seq order.
    fn commit(mut self) -> Result<Vec<String>> {
        let staged = std::mem::take(&mut self.staged);
        let mut written = Vec::with_capacity(staged.len());
        for (seq, tmp) in staged.iter().enumerate() {
            let name = part_name(&self.stem, seq);
            let path = self.dir.join(&name);
            fs::rename(tmp, &path).map_err(io_error(&path))?;
            written.push(format!("{}/{name}", self.rel_dir));
        }
        let entries = fs::read_dir(&self.dir).map_err(io_error(&self.dir))?;
        for entry in entries {
            let entry = entry.map_err(io_error(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let stale = match part_seq(name, &self.stem) {
                Some((seq, false)) => seq >= written.len(),
                Some((_, true)) => true,
                None => false,
            };
            if stale {
                let path = entry.path();
                fs::remove_file(&path).map_err(io_error(&path))?;
            }
        }
        sync_dir(&self.dir)?;
        Ok(written)
    }
}

impl Drop for Parts {
    /// A generation that failed removes its temporary parts: the published files stay those of
    /// the previous generation. Best effort: a file left behind is removed by the next commit.
    fn drop(&mut self) {
        if let Some(open) = self.open.take() {
            drop(open.writer);
            let _ = fs::remove_file(&open.tmp);
        }
        for tmp in self.staged.drain(..) {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// The seq of a part of `stem` named `name`, and whether it is a temporary file:
/// `stem_001.csv` is `(1, false)`, `.stem_001.csv.tmp` is `(1, true)`. Another stem's file
/// never matches, even one that starts with this stem: the batch `B1_5` of `B1` has
/// `stem_5_000.csv`, and `5_000` is not all digits.
fn part_seq(name: &str, stem: &str) -> Option<(usize, bool)> {
    let (name, tmp) = match name.strip_prefix('.').and_then(|rest| rest.strip_suffix(".tmp")) {
        Some(inner) => (inner, true),
        None => (name, false),
    };
    let digits = name.strip_prefix(stem)?.strip_prefix('_')?.strip_suffix(".csv")?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(|seq| (seq, tmp))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|handle| handle.sync_all()).map_err(io_error(dir))
}

/// Folders cannot be opened for syncing on other systems; the renames are as durable as the
/// file system makes them.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}

fn csv_write_error(path: &Path, error: csv::Error) -> Error {
    let error = match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        other => io::Error::other(format!("{other:?}")),
    };
    Error::Io { path: path.to_path_buf(), error }
}

fn optional(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// Transaction details

/// What a writer published: the parts' paths relative to the root (`v1/settlements/...`, with
/// `/` whatever the system, as the SFTP paths are) and what they add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub parts: Vec<String>,
    pub rows: u64,
    /// Per type and currency, in type then currency code order; types absent from the day are
    /// absent.
    pub totals: Vec<TypeTotal>,
}

/// The rows of one type and currency: how many, and the sum of their signed amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeTotal {
    pub transaction_type: TransactionType,
    pub count: u64,
    pub amount: Money,
}

/// Writes a day's transaction details row by row: [`push`](Self::push) each row, then
/// [`finish`](Self::finish). For callers fed by a callback (a database cursor); the others call
/// [`write_transaction_items`]. Dropping it without `finish` publishes nothing.
pub struct TransactionItemsWriter {
    parts: Parts,
    customer_id: String,
    amounts: AmountUnit,
    zone: TimeZone,
    rows: u64,
    totals: BTreeMap<(TransactionType, Currency), (u64, i64)>,
    time: String,
}

impl TransactionItemsWriter {
    pub fn create(root: &Path, customer_id: &str, date: Date, format: &FileFormat) -> Result<Self> {
        check_name("customer id", customer_id)?;
        let parts = Parts::new(
            root,
            day_folder(customer_id, date),
            transaction_items_stem(date),
            &TRANSACTION_ITEMS_COLUMNS,
            format.rows_per_file,
        )?;
        Ok(TransactionItemsWriter {
            parts,
            customer_id: customer_id.to_owned(),
            amounts: format.amounts,
            zone: format.zone.clone(),
            rows: 0,
            totals: BTreeMap::new(),
            time: String::with_capacity(32),
        })
    }

    pub fn push(&mut self, item: &TransactionItem) -> Result<()> {
        let row = self.rows + 1;
        let bad = |reason: String| Error::BadRow { row, reason };
        if item.customer_id != self.customer_id {
            return Err(bad(format!(
                "customer {} in the file of customer {}",
                item.customer_id, self.customer_id
            )));
        }
        check_ids(&item.transaction_id, &item.transaction_request_id).map_err(bad)?;
        let total =
            self.totals.entry((item.transaction_type, item.transaction_amount.currency())).or_insert((0, 0));
        let sum = total.1.checked_add(item.transaction_amount.minor());
        let Some(sum) = sum else {
            return Err(bad(format!("the {} total is out of range", item.transaction_type.as_str())));
        };
        *total = (total.0 + 1, sum);
        self.time.clear();
        push_time(&mut self.time, item.payment_time, &self.zone).map_err(|error| bad(error.to_string()))?;
        let amount = format_amount(item.transaction_amount, self.amounts);
        self.parts.write_row([
            item.customer_id.as_str(),
            optional(&item.reference_merchant_id),
            optional(&item.reference_store_id),
            &item.transaction_id,
            optional(&item.original_transaction_id),
            &item.transaction_request_id,
            optional(&item.reference_transaction_id),
            optional(&item.order_description),
            PAYMENT_METHOD_TYPE,
            PSP_NAME,
            item.transaction_type.as_str(),
            &self.time,
            PRODUCT_CODE,
            &amount,
            item.transaction_amount.currency().code(),
        ])?;
        self.rows = row;
        Ok(())
    }

    /// Completes the last part, publishes all parts and removes stale ones.
    pub fn finish(mut self) -> Result<Written> {
        self.parts.close()?;
        let parts = self.parts.commit()?;
        let totals = self
            .totals
            .into_iter()
            .map(|((transaction_type, currency), (count, minor))| TypeTotal {
                transaction_type,
                count,
                amount: Money::new(minor, currency),
            })
            .collect();
        Ok(Written { parts, rows: self.rows, totals })
    }
}

/// An empty id would make a row nobody can match; refused rather than written.
fn check_ids(transaction_id: &str, request_id: &str) -> std::result::Result<(), String> {
    if transaction_id.is_empty() {
        return Err("transactionId is empty".to_owned());
    }
    if request_id.is_empty() {
        return Err("transactionRequestId is empty".to_owned());
    }
    Ok(())
}

/// Writes the transaction details of `date` for `customer_id` under `root`, streaming `rows`.
///
/// `rows` is pulled one at a time, so a day of any size needs the memory of one row. A row
/// source that fails stops the generation and publishes nothing.
pub fn write_transaction_items<I, E>(
    root: &Path,
    customer_id: &str,
    date: Date,
    format: &FileFormat,
    rows: I,
) -> Result<Written>
where
    I: IntoIterator<Item = std::result::Result<TransactionItem, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut writer = TransactionItemsWriter::create(root, customer_id, date, format)?;
    for row in rows {
        let item = row.map_err(|error| Error::Source { row: writer.rows + 1, error: error.into() })?;
        writer.push(&item)?;
    }
    writer.finish()
}

// ---------------------------------------------------------------------------------------------
// Settlement details and summary

/// What names a batch's files and stamps its summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchFiles<'a> {
    pub customer_id: &'a str,
    /// The day folder of the batch's files.
    pub settlement_date: Date,
    pub settlement_currency: Currency,
    pub batch_id: &'a str,
    /// The summary rows' `settlementTime`.
    pub settlement_time: Timestamp,
}

/// What [`write_settlement_batch`] published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenBatch {
    /// Relative paths of the settlement details parts.
    pub details: Vec<String>,
    /// Relative paths of the settlement summary parts (one, unless `rows_per_file` < 4).
    pub summary: Vec<String>,
    /// Data rows in the details.
    pub rows: u64,
    /// The summary as written: one row per type present, then `TOTAL`.
    pub summary_rows: Vec<SummaryRow>,
}

/// Running sums of one summary type, in minor units of the settlement currency.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    count: u64,
    settlement: i64,
    fee: i64,
    tax: i64,
}

impl Sums {
    fn add(self, other: Sums) -> Option<Sums> {
        Some(Sums {
            count: self.count.checked_add(other.count)?,
            settlement: self.settlement.checked_add(other.settlement)?,
            fee: self.fee.checked_add(other.fee)?,
            tax: self.tax.checked_add(other.tax)?,
        })
    }
}

/// Writes a batch's settlement details row by row and its summary at the end. For callers fed
/// by a callback; the others call [`write_settlement_batch`].
pub struct SettlementBatchWriter {
    details: Parts,
    summary: Parts,
    customer_id: String,
    batch_id: String,
    currency: Currency,
    settlement_time: Timestamp,
    amounts: AmountUnit,
    zone: TimeZone,
    rows: u64,
    /// Indexed as [`TransactionType::ALL`].
    sums: [Sums; 3],
    times: [String; 2],
}

impl SettlementBatchWriter {
    pub fn create(root: &Path, batch: &BatchFiles<'_>, format: &FileFormat) -> Result<Self> {
        check_name("customer id", batch.customer_id)?;
        check_name("batch id", batch.batch_id)?;
        let folder = day_folder(batch.customer_id, batch.settlement_date);
        let stem = settlement_items_stem(batch.settlement_currency, batch.batch_id);
        let details =
            Parts::new(root, folder.clone(), stem, &SETTLEMENT_ITEMS_COLUMNS, format.rows_per_file)?;
        let stem = settlement_summary_stem(batch.settlement_currency, batch.batch_id);
        let summary = Parts::new(root, folder, stem, &SETTLEMENT_SUMMARY_COLUMNS, format.rows_per_file)?;
        Ok(SettlementBatchWriter {
            details,
            summary,
            customer_id: batch.customer_id.to_owned(),
            batch_id: batch.batch_id.to_owned(),
            currency: batch.settlement_currency,
            settlement_time: batch.settlement_time,
            amounts: format.amounts,
            zone: format.zone.clone(),
            rows: 0,
            sums: [Sums::default(); 3],
            times: [String::with_capacity(32), String::with_capacity(32)],
        })
    }

    pub fn push(&mut self, row: &SettlementItem) -> Result<()> {
        let number = self.rows + 1;
        let bad = |reason: String| Error::BadRow { row: number, reason };
        let item = &row.item;
        if row.settlement_batch_id != self.batch_id {
            return Err(bad(format!(
                "batch {} in the file of batch {}",
                row.settlement_batch_id, self.batch_id
            )));
        }
        if item.customer_id != self.customer_id {
            return Err(bad(format!(
                "customer {} in the file of customer {}",
                item.customer_id, self.customer_id
            )));
        }
        check_ids(&item.transaction_id, &item.transaction_request_id).map_err(bad)?;
        for (what, money) in
            [("settlement amount", row.settlement_amount), ("fee", row.fee), ("tax", row.tax)]
        {
            if money.currency() != self.currency {
                return Err(bad(format!("{what} in {} in a {} batch", money.currency(), self.currency)));
            }
        }
        let index = type_index(item.transaction_type);
        let this = Sums {
            count: 1,
            settlement: row.settlement_amount.minor(),
            fee: row.fee.minor(),
            tax: row.tax.minor(),
        };
        let Some(sums) = self.sums[index].add(this) else {
            return Err(bad(format!("the {} sums are out of range", item.transaction_type.as_str())));
        };
        self.sums[index] = sums;

        let [payment_time, settlement_time] = &mut self.times;
        payment_time.clear();
        settlement_time.clear();
        push_time(payment_time, item.payment_time, &self.zone).map_err(|error| bad(error.to_string()))?;
        push_time(settlement_time, row.settlement_time, &self.zone)
            .map_err(|error| bad(error.to_string()))?;
        let transaction_amount = format_amount(item.transaction_amount, self.amounts);
        let settlement_amount = format_amount(row.settlement_amount, self.amounts);
        let fee = format_amount(row.fee, self.amounts);
        let tax = format_amount(row.tax, self.amounts);
        let (pair, price) = match &row.quote {
            Some((pair, price)) => (pair.as_str(), price.as_str()),
            None => ("", ""),
        };
        self.details.write_row([
            row.settlement_batch_id.as_str(),
            &item.customer_id,
            PSP,
            optional(&item.reference_merchant_id),
            optional(&item.reference_store_id),
            &item.transaction_id,
            optional(&item.original_transaction_id),
            &item.transaction_request_id,
            optional(&item.reference_transaction_id),
            PAYMENT_METHOD_TYPE,
            PSP_NAME,
            item.transaction_type.as_str(),
            payment_time,
            settlement_time,
            PRODUCT_CODE,
            &transaction_amount,
            item.transaction_amount.currency().code(),
            &settlement_amount,
            row.settlement_amount.currency().code(),
            pair,
            price,
            &fee,
            row.fee.currency().code(),
            &tax,
            row.tax.currency().code(),
        ])?;
        self.rows = number;
        Ok(())
    }

    /// Writes the summary, then publishes details and summary together.
    pub fn finish(mut self) -> Result<WrittenBatch> {
        let mut summary_rows = Vec::with_capacity(4);
        let mut total = Sums::default();
        let sum_error =
            || Error::BadRow { row: self.rows, reason: "the batch's total is out of range".to_owned() };
        for (transaction_type, sums) in TransactionType::ALL.into_iter().zip(self.sums) {
            if sums.count > 0 {
                total = total.add(sums).ok_or_else(sum_error)?;
                summary_rows.push(self.summary_row(transaction_type.into(), sums));
            }
        }
        summary_rows.push(self.summary_row(SummaryType::Total, total));
        let time = &mut self.times[0];
        time.clear();
        push_time(time, self.settlement_time, &self.zone)
            .map_err(|error| Error::Setting(format!("settlement time: {error}")))?;
        for row in &summary_rows {
            self.summary.write_row([
                row.settlement_batch_id.as_str(),
                &row.customer_id,
                PSP,
                row.summary_type.as_str(),
                &self.times[0],
                &row.count.to_string(),
                &format_amount(row.settlement_amount, self.amounts),
                self.currency.code(),
                &format_amount(row.fee, self.amounts),
                self.currency.code(),
                &format_amount(row.tax, self.amounts),
                self.currency.code(),
            ])?;
        }
        self.details.close()?;
        self.summary.close()?;
        let details = self.details.commit()?;
        let summary = self.summary.commit()?;
        Ok(WrittenBatch { details, summary, rows: self.rows, summary_rows })
    }

    fn summary_row(&self, summary_type: SummaryType, sums: Sums) -> SummaryRow {
        SummaryRow {
            settlement_batch_id: self.batch_id.clone(),
            customer_id: self.customer_id.clone(),
            summary_type,
            settlement_time: whole_seconds(self.settlement_time),
            count: sums.count,
            settlement_amount: Money::new(sums.settlement, self.currency),
            fee: Money::new(sums.fee, self.currency),
            tax: Money::new(sums.tax, self.currency),
        }
    }
}

fn type_index(transaction_type: TransactionType) -> usize {
    match transaction_type {
        TransactionType::Payment => 0,
        TransactionType::Refund => 1,
        TransactionType::Cancel => 2,
    }
}

/// Writes a batch's settlement details (streaming `items`) and its summary, computed while
/// streaming, and publishes both together. A batch without items still gets a details file
/// with only its header and a summary with only `TOTAL`.
pub fn write_settlement_batch<I, E>(
    root: &Path,
    batch: &BatchFiles<'_>,
    format: &FileFormat,
    items: I,
) -> Result<WrittenBatch>
where
    I: IntoIterator<Item = std::result::Result<SettlementItem, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut writer = SettlementBatchWriter::create(root, batch, format)?;
    for item in items {
        let item = item.map_err(|error| Error::Source { row: writer.rows + 1, error: error.into() })?;
        writer.push(&item)?;
    }
    writer.finish()
}

// ---------------------------------------------------------------------------------------------
// Readers

/// Which of the three files a header says a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    TransactionItems,
    SettlementItems,
    SettlementSummary,
}

impl FileKind {
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            FileKind::TransactionItems => &TRANSACTION_ITEMS_COLUMNS,
            FileKind::SettlementItems => &SETTLEMENT_ITEMS_COLUMNS,
            FileKind::SettlementSummary => &SETTLEMENT_SUMMARY_COLUMNS,
        }
    }

    fn of_header(header: &csv::StringRecord) -> Option<FileKind> {
        [FileKind::TransactionItems, FileKind::SettlementItems, FileKind::SettlementSummary]
            .into_iter()
            .find(|kind| header.iter().eq(kind.columns().iter().copied()))
    }
}

/// An open file, read record by record up to `<END>`.
struct CsvIn {
    path: PathBuf,
    kind: FileKind,
    reader: csv::Reader<File>,
    record: csv::StringRecord,
    /// The unit of the file's amounts, once an amount has told it (see [`Row::amount`]).
    unit: Option<AmountUnit>,
    ended: bool,
}

impl CsvIn {
    fn open(path: &Path) -> Result<CsvIn> {
        let file = File::open(path).map_err(io_error(path))?;
        let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(file);
        let mut record = csv::StringRecord::new();
        let malformed = |line: u64, reason: &str| Error::Malformed {
            path: path.to_path_buf(),
            line,
            reason: reason.to_owned(),
        };
        if !reader.read_record(&mut record).map_err(|error| csv_read_error(path, error))? {
            return Err(malformed(1, "the file is empty: no header"));
        }
        let kind = FileKind::of_header(&record)
            .ok_or_else(|| malformed(1, "the header is not that of a transaction details, settlement details or settlement summary file"))?;
        Ok(CsvIn { path: path.to_path_buf(), kind, reader, record, unit: None, ended: false })
    }

    fn open_kind(path: &Path, kind: FileKind) -> Result<CsvIn> {
        let file = CsvIn::open(path)?;
        if file.kind != kind {
            return Err(Error::Malformed {
                path: path.to_path_buf(),
                line: 1,
                reason: format!("a {:?} file, not a {kind:?} file", file.kind),
            });
        }
        Ok(file)
    }

    /// Reads the next data row into `record` and returns its line, or `None` at `<END>`.
    /// A file without `<END>` is cut short and refused, and so is anything after it.
    fn next_row(&mut self) -> Result<Option<(Row<'_>, u64)>> {
        if self.ended {
            return Ok(None);
        }
        let line = self.reader.position().line();
        let more =
            self.reader.read_record(&mut self.record).map_err(|error| csv_read_error(&self.path, error))?;
        let malformed =
            |line: u64, reason: String| Error::Malformed { path: self.path.clone(), line, reason };
        if !more {
            return Err(malformed(line, format!("no {END_MARKER} line: the file is cut short")));
        }
        let line = self.record.position().map_or(line, csv::Position::line);
        if self.record.len() == 1 && &self.record[0] == END_MARKER {
            self.ended = true;
            let mut after = csv::StringRecord::new();
            if self.reader.read_record(&mut after).map_err(|error| csv_read_error(&self.path, error))? {
                let line = after.position().map_or(line, csv::Position::line);
                return Err(malformed(line, format!("a row after {END_MARKER}")));
            }
            return Ok(None);
        }
        let columns = self.kind.columns().len();
        if self.record.len() != columns {
            return Err(malformed(
                line,
                format!("{} fields where the header has {columns}", self.record.len()),
            ));
        }
        Ok(Some((Row { path: &self.path, line, record: &self.record, unit: &mut self.unit }, line)))
    }
}

fn csv_read_error(path: &Path, error: csv::Error) -> Error {
    let line = error.position().map_or(0, csv::Position::line);
    match error.into_kind() {
        csv::ErrorKind::Io(error) => Error::Io { path: path.to_path_buf(), error },
        csv::ErrorKind::Utf8 { err, .. } => {
            Error::Malformed { path: path.to_path_buf(), line, reason: format!("not UTF-8: {err}") }
        }
        other => Error::Malformed { path: path.to_path_buf(), line, reason: format!("{other:?}") },
    }
}

/// One data row being parsed: typed access to its fields, each error naming file and line.
struct Row<'a> {
    path: &'a Path,
    line: u64,
    record: &'a csv::StringRecord,
    unit: &'a mut Option<AmountUnit>,
}

impl Row<'_> {
    fn error(&self, reason: String) -> Error {
        Error::Malformed { path: self.path.to_path_buf(), line: self.line, reason }
    }

    fn text(&self, index: usize) -> &str {
        self.record.get(index).unwrap_or("")
    }

    fn string(&self, index: usize) -> String {
        self.text(index).to_owned()
    }

    fn optional(&self, index: usize) -> Option<String> {
        Some(self.text(index)).filter(|text| !text.is_empty()).map(str::to_owned)
    }

    fn constant(&self, index: usize, columns: &[&str], expected: &str) -> Result<()> {
        let text = self.text(index);
        if text == expected {
            Ok(())
        } else {
            Err(self.error(format!("{} is {text:?}, not {expected:?}", columns[index])))
        }
    }

    fn transaction_type(&self, index: usize) -> Result<TransactionType> {
        let text = self.text(index);
        TransactionType::parse(text).ok_or_else(|| self.error(format!("unknown transactionType {text:?}")))
    }

    fn time(&self, index: usize, columns: &[&str]) -> Result<Timestamp> {
        let text = self.text(index);
        text.parse().map_err(|error| self.error(format!("{} {text:?}: {error}", columns[index])))
    }

    fn currency(&self, index: usize, columns: &[&str]) -> Result<Currency> {
        let text = self.text(index);
        Currency::parse(text).map_err(|error| self.error(format!("{} {text:?}: {error}", columns[index])))
    }

    /// The amount of column `index` in the currency of column `currency`.
    ///
    /// The file does not say its unit, but its amounts do: in a currency with decimals, major
    /// units always have a decimal point and minor units never do; in a currency without
    /// (JPY) both are the same integer. The first amount with decimals fixes the unit of the
    /// file and every later one must agree, so a file that mixes units is refused.
    fn amount(&mut self, index: usize, currency: usize, columns: &[&str]) -> Result<Money> {
        let currency = self.currency(currency, columns)?;
        let record = self.record;
        let text = record.get(index).unwrap_or("");
        let unit = if currency.exponent() == 0 {
            AmountUnit::Minor
        } else {
            let unit = if text.contains('.') { AmountUnit::Major } else { AmountUnit::Minor };
            match *self.unit {
                Some(known) if known != unit => {
                    return Err(self.error(format!(
                        "{} {text:?} is in {unit:?} units, earlier amounts in {known:?} units",
                        columns[index]
                    )));
                }
                _ => *self.unit = Some(unit),
            }
            unit
        };
        parse_amount(text, currency, unit).map_err(|error| self.error(format!("{}: {error}", columns[index])))
    }
}

fn parse_transaction_item(row: &mut Row<'_>) -> Result<TransactionItem> {
    let columns = &TRANSACTION_ITEMS_COLUMNS;
    row.constant(8, columns, PAYMENT_METHOD_TYPE)?;
    row.constant(9, columns, PSP_NAME)?;
    row.constant(12, columns, PRODUCT_CODE)?;
    Ok(TransactionItem {
        customer_id: row.string(0),
        reference_merchant_id: row.optional(1),
        reference_store_id: row.optional(2),
        transaction_id: row.string(3),
        original_transaction_id: row.optional(4),
        transaction_request_id: row.string(5),
        reference_transaction_id: row.optional(6),
        order_description: row.optional(7),
        transaction_type: row.transaction_type(10)?,
        payment_time: row.time(11, columns)?,
        transaction_amount: row.amount(13, 14, columns)?,
    })
}

/// A settlement details row has no `orderDescription`: it reads back as `None`.
fn parse_settlement_item(row: &mut Row<'_>) -> Result<SettlementItem> {
    let columns = &SETTLEMENT_ITEMS_COLUMNS;
    row.constant(2, columns, PSP)?;
    row.constant(9, columns, PAYMENT_METHOD_TYPE)?;
    row.constant(10, columns, PSP_NAME)?;
    row.constant(14, columns, PRODUCT_CODE)?;
    let quote = match (row.optional(19), row.optional(20)) {
        (Some(pair), Some(price)) => Some((pair, price)),
        (None, None) => None,
        _ => {
            return Err(
                row.error("quoteCurrencyPair and quotePrice must be both present or both empty".to_owned())
            );
        }
    };
    let item = TransactionItem {
        customer_id: row.string(1),
        reference_merchant_id: row.optional(3),
        reference_store_id: row.optional(4),
        transaction_id: row.string(5),
        original_transaction_id: row.optional(6),
        transaction_request_id: row.string(7),
        reference_transaction_id: row.optional(8),
        order_description: None,
        transaction_type: row.transaction_type(11)?,
        payment_time: row.time(12, columns)?,
        transaction_amount: row.amount(15, 16, columns)?,
    };
    Ok(SettlementItem {
        settlement_batch_id: row.string(0),
        item,
        settlement_time: row.time(13, columns)?,
        settlement_amount: row.amount(17, 18, columns)?,
        quote,
        fee: row.amount(21, 22, columns)?,
        tax: row.amount(23, 24, columns)?,
    })
}

fn parse_summary_row(row: &mut Row<'_>) -> Result<SummaryRow> {
    let columns = &SETTLEMENT_SUMMARY_COLUMNS;
    row.constant(2, columns, PSP)?;
    let summary_type = SummaryType::parse(row.text(3))
        .ok_or_else(|| row.error(format!("unknown summaryType {:?}", row.text(3))))?;
    let count = row.text(5);
    let count = if !count.is_empty() && count.bytes().all(|byte| byte.is_ascii_digit()) {
        count.parse().map_err(|_| row.error(format!("count {count:?} is out of range")))?
    } else {
        return Err(row.error(format!("count {count:?} is not a whole number")));
    };
    Ok(SummaryRow {
        settlement_batch_id: row.string(0),
        customer_id: row.string(1),
        summary_type,
        settlement_time: row.time(4, columns)?,
        count,
        settlement_amount: row.amount(6, 7, columns)?,
        fee: row.amount(8, 9, columns)?,
        tax: row.amount(10, 11, columns)?,
    })
}

/// The typed rows of one file part, read one at a time: a file of any size needs the memory
/// of one row. The iterator stops after the first error.
pub struct Rows<T> {
    file: CsvIn,
    parse: fn(&mut Row<'_>) -> Result<T>,
    failed: bool,
}

impl<T> Rows<T> {
    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

impl<T> Iterator for Rows<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.failed {
            return None;
        }
        let parse = self.parse;
        let result = match self.file.next_row() {
            Ok(Some((mut row, _))) => parse(&mut row),
            Ok(None) => return None,
            Err(error) => Err(error),
        };
        self.failed = result.is_err();
        Some(result)
    }
}

/// Any of the three files, opened by what its header says it is.
pub enum AnyRows {
    TransactionItems(Rows<TransactionItem>),
    SettlementItems(Rows<SettlementItem>),
    SettlementSummary(Rows<SummaryRow>),
}

/// Opens a part of any of the three files, telling which by its header.
pub fn open_any(path: &Path) -> Result<AnyRows> {
    let file = CsvIn::open(path)?;
    Ok(match file.kind {
        FileKind::TransactionItems => {
            AnyRows::TransactionItems(Rows { file, parse: parse_transaction_item, failed: false })
        }
        FileKind::SettlementItems => {
            AnyRows::SettlementItems(Rows { file, parse: parse_settlement_item, failed: false })
        }
        FileKind::SettlementSummary => {
            AnyRows::SettlementSummary(Rows { file, parse: parse_summary_row, failed: false })
        }
    })
}

pub fn open_transaction_items(path: &Path) -> Result<Rows<TransactionItem>> {
    let file = CsvIn::open_kind(path, FileKind::TransactionItems)?;
    Ok(Rows { file, parse: parse_transaction_item, failed: false })
}

pub fn open_settlement_items(path: &Path) -> Result<Rows<SettlementItem>> {
    let file = CsvIn::open_kind(path, FileKind::SettlementItems)?;
    Ok(Rows { file, parse: parse_settlement_item, failed: false })
}

pub fn open_summary(path: &Path) -> Result<Rows<SummaryRow>> {
    let file = CsvIn::open_kind(path, FileKind::SettlementSummary)?;
    Ok(Rows { file, parse: parse_summary_row, failed: false })
}

/// All rows of one transaction details part (at most `rows_per_file` of them).
pub fn read_transaction_items(path: &Path) -> Result<Vec<TransactionItem>> {
    open_transaction_items(path)?.collect()
}

/// All rows of one settlement details part (at most `rows_per_file` of them).
pub fn read_settlement_items(path: &Path) -> Result<Vec<SettlementItem>> {
    open_settlement_items(path)?.collect()
}

/// All rows of one settlement summary part.
pub fn read_summary(path: &Path) -> Result<Vec<SummaryRow>> {
    open_summary(path)?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn currency(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn money(minor: i64, code: &str) -> Money {
        Money::new(minor, currency(code))
    }

    fn time(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn format(amounts: AmountUnit, rows_per_file: usize) -> FileFormat {
        FileFormat { amounts, zone: TimeZone::fixed(jiff::tz::offset(8)), rows_per_file }
    }

    const DAY: Date = date(2026, 11, 30);

    fn item(n: u32, transaction_type: TransactionType, amount: Money) -> TransactionItem {
        TransactionItem {
            customer_id: "C1".to_owned(),
            reference_merchant_id: Some("M1".to_owned()),
            reference_store_id: n.is_multiple_of(2).then(|| "S1".to_owned()),
            transaction_id: format!("T{n}"),
            original_transaction_id: (transaction_type == TransactionType::Refund)
                .then(|| format!("T{}", n - 1)),
            transaction_request_id: format!("R{n}"),
            reference_transaction_id: None,
            order_description: Some(format!("order {n}, \"special\"\nsecond line")),
            transaction_type,
            payment_time: time("2026-11-30T10:07:43Z"),
            transaction_amount: amount,
        }
    }

    fn settlement(
        n: u32,
        transaction_type: TransactionType,
        minor: i64,
        fee: i64,
        tax: i64,
    ) -> SettlementItem {
        let mut item = item(n, transaction_type, money(minor, "JPY"));
        item.order_description = None;
        SettlementItem {
            settlement_batch_id: "B1".to_owned(),
            item,
            settlement_time: time("2026-12-01T01:00:00Z"),
            settlement_amount: money(minor * 10 + fee + tax, "USD"),
            quote: Some(("JPY/USD".to_owned(), "0.0066".to_owned())),
            fee: money(fee, "USD"),
            tax: money(tax, "USD"),
        }
    }

    fn batch() -> BatchFiles<'static> {
        BatchFiles {
            customer_id: "C1",
            settlement_date: date(2026, 12, 1),
            settlement_currency: currency("USD"),
            batch_id: "B1",
            settlement_time: time("2026-12-01T01:00:00.250Z"),
        }
    }

    fn ok_rows<T>(rows: Vec<T>) -> impl Iterator<Item = Result<T, std::convert::Infallible>> {
        rows.into_iter().map(Ok)
    }

    fn write_day(root: &Path, rows: Vec<TransactionItem>, format: &FileFormat) -> Written {
        write_transaction_items(root, "C1", DAY, format, ok_rows(rows)).unwrap()
    }

    fn text(root: &Path, relative: &str) -> String {
        fs::read_to_string(root.join(relative)).unwrap()
    }

    fn lines(root: &Path, relative: &str) -> Vec<String> {
        text(root, relative).lines().map(str::to_owned).collect()
    }

    /// Every file in the folder, sorted: what a reader of the folder would see.
    fn listing(root: &Path, folder: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root.join(folder))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn names_and_folders() {
        let usd = currency("USD");
        let cases = [
            (day_folder("C1", DAY), "v1/settlements/C1/20261130"),
            (
                transaction_items_path("C1", DAY, 0),
                "v1/settlements/C1/20261130/transactionItems_20261130_000.csv",
            ),
            (
                transaction_items_path("C1", date(2027, 1, 5), 12),
                "v1/settlements/C1/20270105/transactionItems_20270105_012.csv",
            ),
            (
                settlement_items_path("C1", DAY, usd, "B7", 1),
                "v1/settlements/C1/20261130/settlementItems_USD_B7_001.csv",
            ),
            (
                settlement_summary_path("C1", DAY, usd, "B7", 0),
                "v1/settlements/C1/20261130/settlementSummary_USD_B7_000.csv",
            ),
        ];
        for (got, expected) in cases {
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn folders_name_customers_and_days() {
        let root = Path::new("/r");
        assert_eq!(customer_folder(root, "C1"), Some(PathBuf::from("/r/v1/settlements/C1")));
        for id in ["", "..", ".hidden", "a/b", "a\\b", "a b"] {
            assert_eq!(customer_folder(root, id), None, "{id:?}");
        }
        assert_eq!(folder_date("20261130"), Some(DAY));
        assert_eq!(day_folder("C1", folder_date("20240229").unwrap()), "v1/settlements/C1/20240229");
        for name in
            ["20261131", "20230229", "2026113", "202611300", "2026-11-30", "+0261130", "00000000", ".."]
        {
            assert_eq!(folder_date(name), None, "{name}");
        }
    }

    #[test]
    fn only_the_names_written_are_report_files() {
        let kind = |name: &str| file_kind_of_name(name, DAY);
        let written = [
            (transaction_items_path("C1", DAY, 0), FileKind::TransactionItems),
            (transaction_items_path("C1", DAY, 1234), FileKind::TransactionItems),
            (
                settlement_items_path("C1", DAY, currency("USD"), "202611306084941847", 0),
                FileKind::SettlementItems,
            ),
            (settlement_summary_path("C1", DAY, currency("JPY"), "B1_5", 7), FileKind::SettlementSummary),
        ];
        for (path, expected) in written {
            let name = path.rsplit_once('/').unwrap().1;
            assert_eq!(kind(name), Some(expected), "{name}");
        }
        for name in [
            "transactionItems_20261129_000.csv",
            "transactionItems_20261130_00.csv",
            "transactionItems_20261130_0000.csv",
            "transactionItems_20261130_000.csv.tmp",
            ".transactionItems_20261130_000.csv.tmp",
            "transactionItems_20261130_000.CSV",
            "settlementItems_usd_B1_000.csv",
            "settlementItems_XYZ_B1_000.csv",
            "settlementItems_USD__000.csv",
            "settlementItems_USD_.B1_000.csv",
            "settlementItems_USD_../B1_000.csv",
            "settlementItems_USD_B/1_000.csv",
            "settlementItems_USD_000.csv",
            "settlementDetails_USD_B1_000.csv",
            "../transactionItems_20261130_000.csv",
            "/etc/passwd",
            "..",
            "",
            "notes.txt",
        ] {
            assert_eq!(kind(name), None, "{name}");
        }
    }

    #[test]
    fn part_names_match_only_their_stem() {
        let cases: &[(&str, Option<(usize, bool)>)] = &[
            ("settlementItems_USD_B1_000.csv", Some((0, false))),
            ("settlementItems_USD_B1_012.csv", Some((12, false))),
            (".settlementItems_USD_B1_003.csv.tmp", Some((3, true))),
            ("settlementItems_USD_B1_5_000.csv", None),
            ("settlementItems_USD_B10_000.csv", None),
            ("settlementItems_USD_B1_.csv", None),
            ("settlementItems_USD_B1_000.csv.bak", None),
            ("settlementSummary_USD_B1_000.csv", None),
        ];
        for (name, expected) in cases {
            assert_eq!(part_seq(name, "settlementItems_USD_B1"), *expected, "{name}");
        }
    }

    #[test]
    fn unsafe_names_and_settings_are_refused() {
        let root = tempfile::tempdir().unwrap();
        for customer in ["", "../x", "a/b", ".hidden", "a b", "a\\b"] {
            let result = write_day_result(root.path(), customer, &format(AmountUnit::Major, 10));
            assert!(matches!(result, Err(Error::Setting(_))), "{customer:?}: {result:?}");
        }
        let result = write_day_result(root.path(), "C1", &format(AmountUnit::Major, 0));
        assert!(matches!(result, Err(Error::Setting(_))), "{result:?}");
        assert!(fs::read_dir(root.path()).unwrap().next().is_none(), "nothing written");
    }

    /// Found by the fuzz target `csv_writer`: a time written in an offset with seconds read
    /// back seconds off, the offset rounded to its minutes but not the time.
    #[test]
    fn times_in_an_offset_with_seconds_read_back_as_written() {
        let root = tempfile::tempdir().unwrap();
        for seconds in [86_398, -(44 * 60 + 30), 8 * 3600 + 59, 1] {
            let zone = TimeZone::fixed(jiff::tz::Offset::from_seconds(seconds).unwrap());
            let format = FileFormat { zone, ..format(AmountUnit::Major, 10) };
            let row = item(1, TransactionType::Payment, money(1000, "USD"));
            let written =
                write_transaction_items(root.path(), "C1", DAY, &format, ok_rows(vec![row.clone()])).unwrap();
            let read = read_transaction_items(&root.path().join(&written.parts[0])).unwrap();
            assert_eq!(read[0].payment_time, row.payment_time, "offset of {seconds} s");
        }
    }

    fn write_day_result(root: &Path, customer: &str, format: &FileFormat) -> Result<Written> {
        write_transaction_items(root, customer, DAY, format, ok_rows(Vec::new()))
    }

    #[test]
    fn headers_are_in_spec_order_and_files_end_with_end() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let day = write_day(root, Vec::new(), &FileFormat::default());
        let batch =
            write_settlement_batch(root, &batch(), &FileFormat::default(), ok_rows(Vec::new())).unwrap();
        let expected = [
            (
                &day.parts[0],
                "customerId,referenceMerchantId,referenceStoreId,transactionId,originalTransactionId,\
                 transactionRequestId,referenceTransactionId,orderDescription,paymentMethodType,pspName,\
                 transactionType,paymentTime,productCode,transactionAmountValue,transactionCurrency",
            ),
            (
                &batch.details[0],
                "settlementBatchId,customerId,PSP,referenceMerchantId,referenceStoreId,transactionId,\
                 originalTransactionId,transactionRequestId,referenceTransactionId,paymentMethodType,pspName,\
                 transactionType,paymentTime,settlementTime,productCode,transactionAmountValue,\
                 transactionCurrency,settlementAmountValue,settlementCurrency,quoteCurrencyPair,quotePrice,\
                 feeAmountValue,feeCurrency,taxFeeAmountValue,taxFeeCurrency",
            ),
            (
                &batch.summary[0],
                "settlementBatchId,customerId,PSP,summaryType,settlementTime,count,settlementAmountValue,\
                 settlementCurrency,feeAmountValue,feeCurrency,taxFeeAmountValue,taxFeeCurrency",
            ),
        ];
        for (path, header) in expected {
            let content = text(root, path);
            assert!(content.starts_with(&format!("{header}\n")), "{path}: {content}");
            assert!(content.ends_with("\n<END>\n"), "{path}: {content}");
            assert!(!content.contains('\r'), "{path}");
        }
    }

    #[test]
    fn empty_day_and_empty_batch() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let day = write_day(root, Vec::new(), &FileFormat::default());
        assert_eq!(day.parts, ["v1/settlements/C1/20261130/transactionItems_20261130_000.csv"]);
        assert_eq!((day.rows, day.totals.len()), (0, 0));
        assert_eq!(text(root, &day.parts[0]), format!("{}\n<END>\n", TRANSACTION_ITEMS_COLUMNS.join(",")));

        let written =
            write_settlement_batch(root, &batch(), &format(AmountUnit::Major, 10), ok_rows(Vec::new()))
                .unwrap();
        assert_eq!(written.details, ["v1/settlements/C1/20261201/settlementItems_USD_B1_000.csv"]);
        assert_eq!(written.summary, ["v1/settlements/C1/20261201/settlementSummary_USD_B1_000.csv"]);
        assert_eq!(lines(root, &written.details[0]).len(), 2);
        assert_eq!(
            lines(root, &written.summary[0])[1..],
            ["B1,C1,OCPAY,TOTAL,2026-12-01T09:00:00+08:00,0,0.00,USD,0.00,USD,0.00,USD", "<END>"]
        );
        assert_eq!(written.summary_rows.len(), 1);
        assert_eq!(read_summary(&root.join(&written.summary[0])).unwrap(), written.summary_rows);
    }

    #[test]
    fn amounts_in_major_and_minor_units() {
        let cases: &[(&str, i64, &str, &str)] = &[
            ("JPY", 1000, "1000", "1000"),
            ("JPY", -1000, "-1000", "-1000"),
            ("USD", 1000, "10.00", "1000"),
            ("USD", -1000, "-10.00", "-1000"),
            ("USD", 5, "0.05", "5"),
            ("USD", 0, "0.00", "0"),
            ("KWD", 1234, "1.234", "1234"),
            ("KWD", -1, "-0.001", "-1"),
            ("USD", i64::MIN, "-92233720368547758.08", "-9223372036854775808"),
            ("EUR", i64::MAX, "92233720368547758.07", "9223372036854775807"),
        ];
        for (unit, column) in [(AmountUnit::Major, 2), (AmountUnit::Minor, 3)] {
            let root = tempfile::tempdir().unwrap();
            let rows = cases.iter().enumerate().map(|(n, (code, minor, _, _))| {
                // The extremes alone in their total, which would overflow otherwise.
                let transaction_type = match *minor {
                    i64::MIN => TransactionType::Cancel,
                    minor if minor < 0 => TransactionType::Refund,
                    _ => TransactionType::Payment,
                };
                let mut row = item(u32::try_from(n).unwrap() + 1, transaction_type, money(*minor, code));
                row.order_description = None;
                row
            });
            let written =
                write_transaction_items(root.path(), "C1", DAY, &format(unit, 100), rows.map(Ok::<_, Error>));
            let written = written.unwrap();
            let content = lines(root.path(), &written.parts[0]);
            for (case, line) in cases.iter().zip(&content[1..]) {
                let expected = [case.2, case.2, case.2, case.3][column];
                assert!(line.ends_with(&format!(",{expected},{}", case.0)), "{unit:?} {case:?}: {line}");
                assert_eq!(parse_amount(expected, currency(case.0), unit), Ok(money(case.1, case.0)));
            }
            // Reading needs no unit: the amounts tell it.
            let back = read_transaction_items(&root.path().join(&written.parts[0])).unwrap();
            let amounts: Vec<Money> = back.iter().map(|row| row.transaction_amount).collect();
            let expected: Vec<Money> = cases.iter().map(|(code, minor, _, _)| money(*minor, code)).collect();
            assert_eq!(amounts, expected, "{unit:?}");
        }
    }

    #[test]
    fn amount_text_is_parsed_strictly() {
        use AmountUnit::{Major, Minor};
        let usd = currency("USD");
        let jpy = currency("JPY");
        let wrong = |text: &str, currency| AmountError::WrongDecimals {
            text: text.to_owned(),
            exponent: 2,
            currency,
        };
        let many = |text: &str, exponent, currency| AmountError::TooManyDecimals {
            text: text.to_owned(),
            exponent,
            currency,
        };
        let nan = |text: &str| AmountError::NotDecimal(text.to_owned());
        let long = "1".repeat(40);
        let cases: Vec<(&str, Currency, AmountUnit, Result<i64, AmountError>)> = vec![
            ("10.00", usd, Major, Ok(1000)),
            ("-0.01", usd, Major, Ok(-1)),
            ("007.10", usd, Major, Ok(710)),
            ("10.0", usd, Major, Err(wrong("10.0", usd))),
            ("10", usd, Major, Err(wrong("10", usd))),
            ("10.001", usd, Major, Err(many("10.001", 2, usd))),
            ("1.5", jpy, Major, Err(many("1.5", 0, jpy))),
            ("1000", jpy, Major, Ok(1000)),
            ("10.00", usd, Minor, Err(nan("10.00"))),
            ("1000", usd, Minor, Ok(1000)),
            ("", usd, Minor, Err(nan(""))),
            ("-", usd, Minor, Err(nan("-"))),
            ("+1", usd, Minor, Err(nan("+1"))),
            (" 1", usd, Minor, Err(nan(" 1"))),
            ("1e3", usd, Minor, Err(nan("1e3"))),
            ("1,000", usd, Minor, Err(nan("1,000"))),
            ("1.", usd, Major, Err(nan("1."))),
            (".50", usd, Major, Err(nan(".50"))),
            ("--1.00", usd, Major, Err(nan("--1.00"))),
            (
                "9223372036854775808",
                usd,
                Minor,
                Err(AmountError::OutOfRange("9223372036854775808".to_owned())),
            ),
            ("-9223372036854775808", usd, Minor, Ok(i64::MIN)),
            (long.as_str(), usd, Minor, Err(AmountError::OutOfRange(long.clone()))),
        ];
        for (text, currency, unit, expected) in cases {
            let got = parse_amount(text, currency, unit).map(Money::minor);
            assert_eq!(got, expected, "{text:?} {currency} {unit:?}");
        }
        let lenient: &[(&str, Option<i64>)] = &[
            ("12.5", Some(1250)),
            ("12.50", Some(1250)),
            ("12", Some(1200)),
            ("12.505", None),
            ("12.", None),
        ];
        for (text, expected) in lenient {
            assert_eq!(parse_major_lenient(text, usd).ok().map(Money::minor), *expected, "{text:?}");
        }
    }

    #[test]
    fn times_carry_the_zone_offset_in_whole_seconds() {
        let root = tempfile::tempdir().unwrap();
        let mut row = item(1, TransactionType::Payment, money(100, "USD"));
        row.payment_time = time("2026-11-30T10:07:43.999Z");
        let written = write_day(root.path(), vec![row], &format(AmountUnit::Major, 10));
        let content = text(root.path(), &written.parts[0]);
        assert!(
            content.contains(",PAYMENT,2026-11-30T18:07:43+08:00,IN_STORE_PAYMENT,1.00,USD\n"),
            "{content}"
        );
        let utc = FileFormat { zone: TimeZone::UTC, ..format(AmountUnit::Major, 10) };
        let written =
            write_day(root.path(), vec![item(1, TransactionType::Payment, money(100, "USD"))], &utc);
        assert!(text(root.path(), &written.parts[0]).contains(",2026-11-30T10:07:43+00:00,"));
    }

    #[test]
    fn split_at_rows_per_file() {
        // (rows, rows per file, rows in each part)
        let cases: &[(u32, usize, &[usize])] =
            &[(5, 2, &[2, 2, 1]), (4, 2, &[2, 2]), (1, 1, &[1]), (3, 1, &[1, 1, 1]), (3, 10, &[3])];
        for (rows, rows_per_file, expected) in cases {
            let root = tempfile::tempdir().unwrap();
            let items = (1..=*rows).map(|n| item(n, TransactionType::Payment, money(100, "USD"))).collect();
            let written = write_day(root.path(), items, &format(AmountUnit::Major, *rows_per_file));
            let names: Vec<String> =
                (0..expected.len()).map(|seq| transaction_items_path("C1", DAY, seq)).collect();
            assert_eq!(written.parts, names, "{rows} rows by {rows_per_file}");
            let mut ids = Vec::new();
            for (path, count) in written.parts.iter().zip(*expected) {
                let read = read_transaction_items(&root.path().join(path)).unwrap();
                assert_eq!(read.len(), *count, "{path}");
                ids.extend(read.into_iter().map(|row| row.transaction_id));
            }
            let expected_ids: Vec<String> = (1..=*rows).map(|n| format!("T{n}")).collect();
            assert_eq!(ids, expected_ids, "the rows keep their order across parts");
            assert_eq!(
                listing(root.path(), &day_folder("C1", DAY)).len(),
                expected.len(),
                "no temporary left"
            );
        }
    }

    #[test]
    fn regeneration_is_byte_identical_and_removes_stale_parts() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let folder = day_folder("C1", DAY);
        let rows = |count: u32| -> Vec<TransactionItem> {
            (1..=count).map(|n| item(n, TransactionType::Payment, money(i64::from(n) * 100, "USD"))).collect()
        };
        let format = format(AmountUnit::Major, 2);
        let first = write_day(root, rows(5), &format);
        let bytes: Vec<Vec<u8>> = first.parts.iter().map(|path| fs::read(root.join(path)).unwrap()).collect();
        // A neighbour that must survive: another day's file and another batch's file.
        fs::write(root.join(&folder).join("transactionItems_20261129_000.csv"), "x").unwrap();
        fs::write(root.join(&folder).join("settlementItems_USD_B1_000.csv"), "x").unwrap();
        // A temporary file a crashed generation left behind.
        fs::write(root.join(&folder).join(".transactionItems_20261130_007.csv.tmp"), "x").unwrap();

        let again = write_day(root, rows(5), &format);
        assert_eq!(again, first);
        let bytes_again: Vec<Vec<u8>> =
            again.parts.iter().map(|path| fs::read(root.join(path)).unwrap()).collect();
        assert_eq!(bytes_again, bytes, "byte-identical");

        let shorter = write_day(root, rows(2), &format);
        assert_eq!(shorter.parts, [transaction_items_path("C1", DAY, 0)]);
        assert_eq!(
            listing(root, &folder),
            [
                "settlementItems_USD_B1_000.csv",
                "transactionItems_20261129_000.csv",
                "transactionItems_20261130_000.csv"
            ]
        );
    }

    #[test]
    fn a_failing_source_publishes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let format = format(AmountUnit::Major, 2);
        let before = write_day(root, vec![item(1, TransactionType::Payment, money(100, "USD"))], &format);
        let before_bytes = fs::read(root.join(&before.parts[0])).unwrap();
        let rows = (1..=5).map(|n| {
            if n == 4 {
                Err("the database went away")
            } else {
                Ok(item(n, TransactionType::Payment, money(200, "USD")))
            }
        });
        let result = write_transaction_items(root, "C1", DAY, &format, rows);
        assert!(matches!(result, Err(Error::Source { row: 4, .. })), "{result:?}");
        assert_eq!(listing(root, &day_folder("C1", DAY)), ["transactionItems_20261130_000.csv"]);
        assert_eq!(fs::read(root.join(&before.parts[0])).unwrap(), before_bytes, "the old generation stays");
    }

    #[test]
    fn rows_that_do_not_belong_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let mut other_customer = item(1, TransactionType::Payment, money(100, "USD"));
        other_customer.customer_id = "C2".to_owned();
        let mut no_request_id = item(1, TransactionType::Payment, money(100, "USD"));
        no_request_id.transaction_request_id.clear();
        for row in [other_customer, no_request_id] {
            let result =
                write_transaction_items(root.path(), "C1", DAY, &FileFormat::default(), ok_rows(vec![row]));
            assert!(matches!(result, Err(Error::BadRow { row: 1, .. })), "{result:?}");
        }
        let mut other_batch = settlement(1, TransactionType::Payment, 100, -3, 0);
        other_batch.settlement_batch_id = "B2".to_owned();
        let mut other_currency = settlement(1, TransactionType::Payment, 100, -3, 0);
        other_currency.fee = money(-3, "JPY");
        for row in [other_batch, other_currency] {
            let good = settlement(1, TransactionType::Payment, 100, -3, 0);
            let result = write_settlement_batch(
                root.path(),
                &batch(),
                &FileFormat::default(),
                ok_rows(vec![good, row]),
            );
            assert!(matches!(result, Err(Error::BadRow { row: 2, .. })), "{result:?}");
        }
        let overflow = vec![
            settlement(1, TransactionType::Payment, 0, 0, 0),
            SettlementItem {
                fee: money(i64::MAX, "USD"),
                ..settlement(2, TransactionType::Payment, 0, 0, 0)
            },
            SettlementItem { fee: money(1, "USD"), ..settlement(3, TransactionType::Payment, 0, 0, 0) },
        ];
        let result = write_settlement_batch(root.path(), &batch(), &FileFormat::default(), ok_rows(overflow));
        assert!(matches!(result, Err(Error::BadRow { row: 3, .. })), "{result:?}");
    }

    #[test]
    fn summary_has_a_row_per_type_present_then_total() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let items = vec![
            settlement(1, TransactionType::Payment, 1000, -30, -3),
            settlement(2, TransactionType::Refund, -400, 12, 1),
            settlement(3, TransactionType::Payment, 500, -15, -2),
        ];
        let written =
            write_settlement_batch(root, &batch(), &format(AmountUnit::Major, 100), ok_rows(items)).unwrap();
        assert_eq!(written.rows, 3);
        let summary = lines(root, &written.summary[0]);
        assert_eq!(
            summary[1..],
            [
                "B1,C1,OCPAY,PAYMENT,2026-12-01T09:00:00+08:00,2,149.50,USD,-0.45,USD,-0.05,USD",
                "B1,C1,OCPAY,REFUND,2026-12-01T09:00:00+08:00,1,-39.87,USD,0.12,USD,0.01,USD",
                "B1,C1,OCPAY,TOTAL,2026-12-01T09:00:00+08:00,3,109.63,USD,-0.33,USD,-0.04,USD",
                "<END>",
            ]
        );
        let types: Vec<SummaryType> = written.summary_rows.iter().map(|row| row.summary_type).collect();
        assert_eq!(types, [SummaryType::Payment, SummaryType::Refund, SummaryType::Total]);
        assert_eq!(read_summary(&root.join(&written.summary[0])).unwrap(), written.summary_rows);

        let cancel_only = vec![settlement(1, TransactionType::Cancel, -1000, 30, 3)];
        let written =
            write_settlement_batch(root, &batch(), &format(AmountUnit::Minor, 100), ok_rows(cancel_only))
                .unwrap();
        let summary = lines(root, &written.summary[0]);
        assert_eq!(summary[1], "B1,C1,OCPAY,CANCEL,2026-12-01T09:00:00+08:00,1,-9967,USD,30,USD,3,USD");
        assert_eq!(summary[2], "B1,C1,OCPAY,TOTAL,2026-12-01T09:00:00+08:00,1,-9967,USD,30,USD,3,USD");
        let details = lines(root, &written.details[0]);
        assert_eq!(details.len(), 3, "header, one row, <END>: the earlier, longer batch is replaced");
    }

    #[test]
    fn round_trip_through_the_readers() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let mut rows = vec![
            item(1, TransactionType::Payment, money(1234, "USD")),
            item(2, TransactionType::Refund, money(-1234, "USD")),
            item(3, TransactionType::Cancel, money(-500, "JPY")),
            item(4, TransactionType::Payment, money(1, "KWD")),
        ];
        rows[0].reference_transaction_id = Some("ORDER-1".to_owned());
        rows[1].order_description = Some("=1+1,\r\n\"é\"".to_owned());
        rows[3].reference_merchant_id = None;
        let written = write_day(root, rows.clone(), &format(AmountUnit::Major, 3));
        assert_eq!(written.rows, 4);
        let mut back = Vec::new();
        for path in &written.parts {
            back.extend(read_transaction_items(&root.join(path)).unwrap());
        }
        assert_eq!(back, rows);
        assert_eq!(
            written.totals,
            [
                TypeTotal { transaction_type: TransactionType::Payment, count: 1, amount: money(1, "KWD") },
                TypeTotal {
                    transaction_type: TransactionType::Payment,
                    count: 1,
                    amount: money(1234, "USD")
                },
                TypeTotal {
                    transaction_type: TransactionType::Refund,
                    count: 1,
                    amount: money(-1234, "USD")
                },
                TypeTotal { transaction_type: TransactionType::Cancel, count: 1, amount: money(-500, "JPY") },
            ]
        );

        let mut items = vec![
            settlement(1, TransactionType::Payment, 1000, -30, -3),
            settlement(2, TransactionType::Refund, -400, 12, 1),
        ];
        items[1].quote = None;
        for unit in [AmountUnit::Major, AmountUnit::Minor] {
            let written =
                write_settlement_batch(root, &batch(), &format(unit, 10), ok_rows(items.clone())).unwrap();
            assert_eq!(read_settlement_items(&root.join(&written.details[0])).unwrap(), items, "{unit:?}");
            assert_eq!(
                read_summary(&root.join(&written.summary[0])).unwrap(),
                written.summary_rows,
                "{unit:?}"
            );
            assert!(matches!(open_any(&root.join(&written.details[0])), Ok(AnyRows::SettlementItems(_))));
        }
    }

    #[test]
    fn malformed_files_name_file_and_line() {
        let header = TRANSACTION_ITEMS_COLUMNS.join(",");
        let good =
            "C1,,,T1,,R1,,,CONNECT_WALLET,OCPAY,PAYMENT,2026-11-30T18:07:43+08:00,IN_STORE_PAYMENT,1.00,USD";
        let minor =
            "C1,,,T2,,R2,,,CONNECT_WALLET,OCPAY,PAYMENT,2026-11-30T18:07:43+08:00,IN_STORE_PAYMENT,100,USD";
        let cases: Vec<(String, u64, &str)> = vec![
            (format!("{header}\n{good}\n"), 3, "cut short"),
            (format!("{header}\n{good}"), 2, "cut short"),
            (format!("{header}\n{good}\n<END>\n{good}\n"), 4, "after <END>"),
            (format!("{header}\nC1,T1\n<END>\n"), 2, "2 fields"),
            (format!("{header}\n{}\n<END>\n", good.replace("1.00", "1.0")), 2, "exactly 2 decimals"),
            (format!("{header}\n{}\n<END>\n", good.replace("USD", "XXX")), 2, "transactionCurrency"),
            (format!("{header}\n{}\n<END>\n", good.replace(",PAYMENT,", ",SALE,")), 2, "transactionType"),
            (format!("{header}\n{}\n<END>\n", good.replace("OCPAY", "ALIPAY")), 2, "pspName"),
            (format!("{header}\n{}\n<END>\n", good.replace("+08:00", "")), 2, "paymentTime"),
            (format!("{header}\n{good}\n{minor}\n<END>\n"), 3, "units"),
            ("a,b\n<END>\n".to_owned(), 1, "header"),
            (String::new(), 1, "empty"),
        ];
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("bad.csv");
        for (content, line, reason) in cases {
            fs::write(&path, &content).unwrap();
            let error = read_transaction_items(&path).unwrap_err();
            let message = error.to_string();
            assert!(
                matches!(&error, Error::Malformed { line: got, .. } if *got == line),
                "{content:?}: {message}"
            );
            assert!(message.contains("bad.csv") && message.contains(reason), "{content:?}: {message}");
        }
        fs::write(&path, format!("{header}\n<END>\n")).unwrap();
        let error = read_summary(&path).unwrap_err();
        assert!(error.to_string().contains("not a SettlementSummary"), "{error}");
    }

    proptest! {
        #[test]
        fn amounts_round_trip(minor in any::<i64>()) {
            for code in ["USD", "JPY", "KWD"] {
                for unit in [AmountUnit::Major, AmountUnit::Minor] {
                    let amount = money(minor, code);
                    prop_assert_eq!(parse_amount(&format_amount(amount, unit), amount.currency(), unit), Ok(amount));
                }
                let major = money(minor, code).format_major();
                prop_assert_eq!(parse_major_lenient(&major, currency(code)), Ok(money(minor, code)));
            }
        }
    }
}
