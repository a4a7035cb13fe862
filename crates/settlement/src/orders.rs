//! A merchant's own order list matched against a report file.
//!
//! `ocpay reconcile --report FILE --orders FILE` answers the merchant's question "did every order
//! I took get paid, for the amount I asked?". The orders file is the merchant's (a CSV with the
//! header `paymentRequestId,amount,currency`, amounts in major units as people write them); the
//! report is a transaction details or settlement details file of ours, told apart by its header.
//! Orders are matched to the report's `PAYMENT` rows by `transactionRequestId`: refunds and
//! cancels have their own request ids or repeat the payment's, and are not orders.
//!
//! Memory: the report's payments are held in a map (one entry per payment); the orders file,
//! which may be any size, is streamed.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::fs::File;
use std::path::Path;

use ocpay_core::money::{Currency, Money};

use crate::files::{self, AnyRows, END_MARKER, TransactionItem, TransactionType};

pub use crate::files::Error;

/// Header of a merchant's orders file.
pub const ORDERS_COLUMNS: [&str; 3] = ["paymentRequestId", "amount", "currency"];

/// One way the orders and the report disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discrepancy {
    /// An order the report has no payment for: not paid, or paid on another day or batch.
    MissingInReport { payment_request_id: String },
    /// A payment of the report that is not in the orders.
    MissingInOrders { transaction_request_id: String, transaction_id: String },
    /// The order and the payment differ in amount or currency.
    AmountDiffers { id: String, orders: Money, report: Money },
    /// The orders list the same request id twice; the first was matched.
    DuplicateInOrders { payment_request_id: String },
    /// The report has two payments with one request id (it should never); the first is matched.
    DuplicateInReport { transaction_request_id: String, transaction_id: String },
}

impl fmt::Display for Discrepancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discrepancy::MissingInReport { payment_request_id } => {
                write!(f, "order {payment_request_id}: no payment in the report")
            }
            Discrepancy::MissingInOrders { transaction_request_id, transaction_id } => {
                write!(f, "payment {transaction_id} (request {transaction_request_id}): not in the orders")
            }
            Discrepancy::AmountDiffers { id, orders, report } => {
                write!(f, "order {id}: {orders} in the orders, {report} in the report")
            }
            Discrepancy::DuplicateInOrders { payment_request_id } => {
                write!(f, "order {payment_request_id}: listed more than once in the orders")
            }
            Discrepancy::DuplicateInReport { transaction_request_id, transaction_id } => {
                write!(
                    f,
                    "payment {transaction_id} (request {transaction_request_id}): a second payment of the request in the report"
                )
            }
        }
    }
}

/// Matches the orders file against one report file. An empty list means they agree.
pub fn match_orders(report: &Path, orders: &Path) -> Result<Vec<Discrepancy>, Error> {
    match_orders_in(&[report], orders)
}

/// Matches the orders file against all parts of a report (`_000`, `_001`, ...): a split day
/// matched part by part would report every order of the other parts as missing.
pub fn match_orders_in(reports: &[&Path], orders: &Path) -> Result<Vec<Discrepancy>, Error> {
    let mut discrepancies = Vec::new();
    let mut payments = Payments::default();
    for report in reports {
        payments.load(report, &mut discrepancies)?;
    }
    read_orders(orders, |order| {
        let Some(payment) = payments.by_request.get_mut(&order.payment_request_id) else {
            discrepancies.push(Discrepancy::MissingInReport { payment_request_id: order.payment_request_id });
            return;
        };
        if payment.matched {
            discrepancies
                .push(Discrepancy::DuplicateInOrders { payment_request_id: order.payment_request_id });
            return;
        }
        payment.matched = true;
        if payment.amount != order.amount {
            discrepancies.push(Discrepancy::AmountDiffers {
                id: order.payment_request_id,
                orders: order.amount,
                report: payment.amount,
            });
        }
    })?;
    let mut unmatched: Vec<(String, Payment)> =
        payments.by_request.into_iter().filter(|(_, payment)| !payment.matched).collect();
    unmatched.sort_by_key(|(_, payment)| payment.order);
    discrepancies.extend(unmatched.into_iter().map(|(transaction_request_id, payment)| {
        Discrepancy::MissingInOrders { transaction_request_id, transaction_id: payment.transaction_id }
    }));
    Ok(discrepancies)
}

/// A payment of the report, keyed by its request id.
struct Payment {
    transaction_id: String,
    amount: Money,
    /// Position in the report, so that what is left unmatched is listed in report order.
    order: usize,
    matched: bool,
}

#[derive(Default)]
struct Payments {
    by_request: HashMap<String, Payment>,
}

impl Payments {
    fn load(&mut self, report: &Path, discrepancies: &mut Vec<Discrepancy>) -> Result<(), Error> {
        let items: Box<dyn Iterator<Item = Result<TransactionItem, Error>>> = match files::open_any(report)? {
            AnyRows::TransactionItems(rows) => Box::new(rows),
            AnyRows::SettlementItems(rows) => Box::new(rows.map(|row| row.map(|row| row.item))),
            AnyRows::SettlementSummary(_) => {
                return Err(Error::Malformed {
                    path: report.to_path_buf(),
                    line: 1,
                    reason: "a settlement summary has no transactions to match orders with: give a transaction details or settlement details file".to_owned(),
                });
            }
        };
        for item in items {
            let item = item?;
            if item.transaction_type != TransactionType::Payment {
                continue;
            }
            let order = self.by_request.len();
            match self.by_request.entry(item.transaction_request_id) {
                Entry::Occupied(entry) => discrepancies.push(Discrepancy::DuplicateInReport {
                    transaction_request_id: entry.key().clone(),
                    transaction_id: item.transaction_id,
                }),
                Entry::Vacant(entry) => {
                    entry.insert(Payment {
                        transaction_id: item.transaction_id,
                        amount: item.transaction_amount,
                        order,
                        matched: false,
                    });
                }
            }
        }
        Ok(())
    }
}

/// One line of the orders file.
struct Order {
    payment_request_id: String,
    amount: Money,
}

/// Streams the orders file to `each`, one order at a time.
///
/// Lenient where spreadsheets differ and the meaning cannot: a byte-order mark, spaces around
/// fields, `\r\n` line ends, blank lines, a trailing `<END>`, `12.5` for `12.50`. Strict where
/// a mistake would change an amount: `12.505` USD is refused, never rounded.
fn read_orders(path: &Path, mut each: impl FnMut(Order)) -> Result<(), Error> {
    let malformed = |line: u64, reason: String| Error::Malformed { path: path.to_path_buf(), line, reason };
    let file = File::open(path).map_err(|error| Error::Io { path: path.to_path_buf(), error })?;
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(file);
    let mut record = csv::StringRecord::new();
    let mut header = true;
    let mut ended = false;
    loop {
        let more = reader.read_record(&mut record).map_err(|error| {
            let line = error.position().map_or(0, csv::Position::line);
            malformed(line, format!("not a CSV file: {error}"))
        })?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, csv::Position::line);
        if header {
            header = false;
            let names = record
                .iter()
                .enumerate()
                .map(|(index, name)| if index == 0 { name.trim_start_matches('\u{feff}') } else { name });
            if !names.eq(ORDERS_COLUMNS) {
                return Err(malformed(line, format!("the header must be {}", ORDERS_COLUMNS.join(","))));
            }
            continue;
        }
        if ended {
            return Err(malformed(line, format!("a row after {END_MARKER}")));
        }
        if record.len() == 1 && &record[0] == END_MARKER {
            ended = true;
            continue;
        }
        if record.len() != ORDERS_COLUMNS.len() {
            return Err(malformed(line, format!("{} fields where the header has 3", record.len())));
        }
        let payment_request_id = record[0].to_owned();
        if payment_request_id.is_empty() {
            return Err(malformed(line, "paymentRequestId is empty".to_owned()));
        }
        let currency = Currency::parse(&record[2])
            .map_err(|error| malformed(line, format!("currency {:?}: {error}", &record[2])))?;
        let amount = files::parse_major_lenient(&record[1], currency)
            .map_err(|error| malformed(line, format!("amount: {error}")))?;
        each(Order { payment_request_id, amount });
    }
    if header {
        return Err(malformed(1, "the file is empty: no header".to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use jiff::civil::date;
    use jiff::tz::TimeZone;

    use super::*;
    use crate::files::{BatchFiles, FileFormat, SettlementItem};

    fn money(minor: i64, code: &str) -> Money {
        Money::new(minor, Currency::parse(code).unwrap())
    }

    fn item(id: &str, transaction_type: TransactionType, amount: Money) -> TransactionItem {
        TransactionItem {
            customer_id: "C1".to_owned(),
            reference_merchant_id: None,
            reference_store_id: None,
            transaction_id: format!("T-{id}"),
            original_transaction_id: None,
            transaction_request_id: id.to_owned(),
            reference_transaction_id: None,
            order_description: None,
            transaction_type,
            payment_time: "2026-11-30T10:00:00Z".parse().unwrap(),
            transaction_amount: amount,
        }
    }

    /// The report of the tests: three payments, a refund and the cancel of the third payment.
    fn report_rows() -> Vec<TransactionItem> {
        vec![
            item("P1", TransactionType::Payment, money(1250, "USD")),
            item("P2", TransactionType::Payment, money(1000, "JPY")),
            item("RF1", TransactionType::Refund, money(-250, "USD")),
            item("P3", TransactionType::Payment, money(1234, "KWD")),
            item("P3", TransactionType::Cancel, money(-1234, "KWD")),
        ]
    }

    const CLEAN_ORDERS: &str = "paymentRequestId,amount,currency\nP1,12.50,USD\nP2,1000,JPY\nP3,1.234,KWD\n";

    /// Writes the report as transaction details and as settlement details; returns both paths.
    fn reports(root: &Path, rows: Vec<TransactionItem>) -> Vec<PathBuf> {
        let format = FileFormat { zone: TimeZone::UTC, ..FileFormat::default() };
        let day = date(2026, 11, 30);
        let ok = rows.clone().into_iter().map(Ok::<_, Error>);
        let written = files::write_transaction_items(root, "C1", day, &format, ok).unwrap();
        let items = rows.into_iter().map(|item| {
            Ok::<_, Error>(SettlementItem {
                settlement_batch_id: "B1".to_owned(),
                item,
                settlement_time: "2026-12-01T00:00:00Z".parse().unwrap(),
                settlement_amount: money(0, "USD"),
                quote: None,
                fee: money(0, "USD"),
                tax: money(0, "USD"),
            })
        });
        let batch = BatchFiles {
            customer_id: "C1",
            settlement_date: date(2026, 12, 1),
            settlement_currency: Currency::parse("USD").unwrap(),
            batch_id: "B1",
            settlement_time: "2026-12-01T00:00:00Z".parse().unwrap(),
        };
        let batch = files::write_settlement_batch(root, &batch, &format, items).unwrap();
        vec![root.join(&written.parts[0]), root.join(&batch.details[0])]
    }

    fn check(orders: &str, expected: &[Discrepancy]) {
        let root = tempfile::tempdir().unwrap();
        let orders_path = root.path().join("orders.csv");
        fs::write(&orders_path, orders).unwrap();
        for report in reports(root.path(), report_rows()) {
            let got = match_orders(&report, &orders_path).unwrap();
            assert_eq!(got, expected, "{orders:?} against {}", report.display());
        }
    }

    #[test]
    fn a_clean_match_has_no_discrepancy() {
        check(CLEAN_ORDERS, &[]);
        // What spreadsheets do to the same list changes nothing.
        check(
            "\u{feff}paymentRequestId,amount,currency\r\nP3, 1.234 ,KWD\r\n\r\nP1,12.5,USD\r\nP2,1000,JPY\r\n<END>\r\n",
            &[],
        );
    }

    #[test]
    fn each_kind_of_discrepancy() {
        let cases: Vec<(&str, Vec<Discrepancy>)> = vec![
            (
                "paymentRequestId,amount,currency\nP1,12.50,USD\nP2,1000,JPY\nP3,1.234,KWD\nP4,5.00,USD\n",
                vec![Discrepancy::MissingInReport { payment_request_id: "P4".to_owned() }],
            ),
            (
                "paymentRequestId,amount,currency\nP2,1000,JPY\n",
                vec![
                    Discrepancy::MissingInOrders {
                        transaction_request_id: "P1".to_owned(),
                        transaction_id: "T-P1".to_owned(),
                    },
                    Discrepancy::MissingInOrders {
                        transaction_request_id: "P3".to_owned(),
                        transaction_id: "T-P3".to_owned(),
                    },
                ],
            ),
            (
                "paymentRequestId,amount,currency\nP1,12.51,USD\nP2,1000,USD\nP3,1.234,KWD\n",
                vec![
                    Discrepancy::AmountDiffers {
                        id: "P1".to_owned(),
                        orders: money(1251, "USD"),
                        report: money(1250, "USD"),
                    },
                    Discrepancy::AmountDiffers {
                        id: "P2".to_owned(),
                        orders: money(100_000, "USD"),
                        report: money(1000, "JPY"),
                    },
                ],
            ),
            (
                "paymentRequestId,amount,currency\nP1,12.50,USD\nP2,1000,JPY\nP1,12.50,USD\nP3,1.234,KWD\n",
                vec![Discrepancy::DuplicateInOrders { payment_request_id: "P1".to_owned() }],
            ),
            (
                "paymentRequestId,amount,currency\nRF1,2.50,USD\nP1,12.50,USD\nP2,1000,JPY\nP3,1.234,KWD\n",
                vec![Discrepancy::MissingInReport { payment_request_id: "RF1".to_owned() }],
            ),
        ];
        for (orders, expected) in cases {
            check(orders, &expected);
        }
    }

    #[test]
    fn a_split_report_is_matched_whole_and_duplicates_in_it_are_reported() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let format = FileFormat { zone: TimeZone::UTC, rows_per_file: 2, ..FileFormat::default() };
        let mut rows = report_rows();
        rows.push(item("P1", TransactionType::Payment, money(1250, "USD")));
        let ok = rows.into_iter().map(Ok::<_, Error>);
        let written = files::write_transaction_items(root, "C1", date(2026, 11, 30), &format, ok).unwrap();
        assert_eq!(written.parts.len(), 3);
        let orders = root.join("orders.csv");
        fs::write(&orders, CLEAN_ORDERS).unwrap();
        let parts: Vec<PathBuf> = written.parts.iter().map(|part| root.join(part)).collect();
        let parts: Vec<&Path> = parts.iter().map(PathBuf::as_path).collect();
        let got = match_orders_in(&parts, &orders).unwrap();
        let duplicate = Discrepancy::DuplicateInReport {
            transaction_request_id: "P1".to_owned(),
            transaction_id: "T-P1".to_owned(),
        };
        assert_eq!(got, [duplicate]);
    }

    #[test]
    fn discrepancies_read_as_one_line() {
        let cases = [
            (
                Discrepancy::MissingInReport { payment_request_id: "P4".to_owned() },
                "order P4: no payment in the report",
            ),
            (
                Discrepancy::MissingInOrders {
                    transaction_request_id: "P1".to_owned(),
                    transaction_id: "T1".to_owned(),
                },
                "payment T1 (request P1): not in the orders",
            ),
            (
                Discrepancy::AmountDiffers {
                    id: "P2".to_owned(),
                    orders: money(1000, "USD"),
                    report: money(1000, "JPY"),
                },
                "order P2: USD 10.00 in the orders, JPY 1000 in the report",
            ),
            (
                Discrepancy::DuplicateInOrders { payment_request_id: "P1".to_owned() },
                "order P1: listed more than once in the orders",
            ),
        ];
        for (discrepancy, text) in cases {
            assert_eq!(discrepancy.to_string(), text);
        }
    }

    #[test]
    fn bad_files_are_refused_with_file_and_line() {
        let cases: &[(&str, u64, &str)] = &[
            ("id,amount,currency\nP1,12.50,USD\n", 1, "header"),
            ("paymentRequestId,amount,currency\nP1,12.505,USD\n", 2, "more decimals"),
            ("paymentRequestId,amount,currency\nP1,12.50,usd\n", 2, "currency"),
            ("paymentRequestId,amount,currency\nP1,12.50\n", 2, "2 fields"),
            ("paymentRequestId,amount,currency\n,12.50,USD\n", 2, "empty"),
            ("paymentRequestId,amount,currency\nP1,1e3,USD\n", 2, "not a decimal"),
            ("paymentRequestId,amount,currency\n<END>\nP1,12.50,USD\n", 3, "after <END>"),
            ("", 1, "empty"),
        ];
        let root = tempfile::tempdir().unwrap();
        let report = reports(root.path(), report_rows()).remove(0);
        let orders = root.path().join("orders.csv");
        for (content, line, reason) in cases {
            fs::write(&orders, content).unwrap();
            let error = match_orders(&report, &orders).unwrap_err();
            let message = error.to_string();
            assert!(
                matches!(&error, Error::Malformed { line: got, .. } if got == line),
                "{content:?}: {message}"
            );
            assert!(message.contains("orders.csv") && message.contains(reason), "{content:?}: {message}");
        }
        // A summary has no transactions.
        let summary = root.path().join("v1/settlements/C1/20261201/settlementSummary_USD_B1_000.csv");
        fs::write(&orders, CLEAN_ORDERS).unwrap();
        let error = match_orders(&summary, &orders).unwrap_err();
        assert!(error.to_string().contains("settlement summary"), "{error}");
    }
}
