//! What the payment, refund, registration, API log and grant pages share: the keyset cursor a
//! list page carries in its URL, the link to the next page with the filters kept, how a list
//! answers a filter typed wrong, instants as the pages show them, and what users type into
//! filters and forms (statuses, dates, amounts in major units), each refused with a message
//! naming its field.

use std::future::Future;

use askama::Template;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use jiff::civil::Date;
use jiff::tz::Offset;
use ocpay_core::Timestamp;
use ocpay_core::money::{Currency, Money};
use ocpay_store::PageCursor;

use super::{PageError, render};

/// A row's place in a list as the next page's `after` parameter: its creation time in epoch
/// milliseconds and its id.
pub(crate) fn cursor_text(created_at: Timestamp, id: &str) -> String {
    format!("{}.{id}", created_at.as_millisecond())
}

/// The `after` parameter of a list page; an empty one is the first page.
pub(crate) fn parse_cursor(text: &str) -> Result<Option<PageCursor>, PageError> {
    if text.is_empty() {
        return Ok(None);
    }
    let refused =
        || PageError::Invalid("after: not a page of this list; start again from the first page".into());
    let (millis, id) = text.split_once('.').ok_or_else(refused)?;
    let created_at = millis
        .parse::<i64>()
        .ok()
        .and_then(|millis| Timestamp::from_millisecond(millis).ok())
        .ok_or_else(refused)?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
    {
        return Err(refused());
    }
    Ok(Some(PageCursor { created_at, id: id.to_owned() }))
}

/// Splits a list read one row longer than a page into the page and the cursor of the next
/// page, if there is one.
pub(crate) fn split_page<T>(
    mut rows: Vec<T>,
    size: u32,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let size = size as usize;
    if rows.len() <= size {
        return (rows, None);
    }
    rows.truncate(size);
    let next = rows.last().map(cursor);
    (rows, next)
}

/// A list's URL: `section`, with the query string of the non-empty pairs.
pub(crate) fn link(section: &str, pairs: &[(&str, &str)]) -> String {
    let query = query_string(pairs);
    if query.is_empty() { section.to_owned() } else { format!("{section}?{query}") }
}

/// A list page's read: its rows, or, when a filter or the page's cursor was typed wrong, no
/// rows and the message naming the field, which the page shows above the list. Any other
/// failure is the page's.
pub(crate) async fn rows_or_refusal<T>(
    read: impl Future<Output = Result<Vec<T>, PageError>>,
) -> Result<(Vec<T>, Option<String>), PageError> {
    match read.await {
        Ok(rows) => Ok((rows, None)),
        Err(PageError::Invalid(message)) => Ok((Vec::new(), Some(message))),
        Err(other) => Err(other),
    }
}

/// A list page as answered: 400 when what was typed was refused (the page says why), else 200.
pub(crate) fn answer(page: &impl Template, refused: bool) -> Response {
    let status = if refused { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    (status, render(page)).into_response()
}

/// A query string of the non-empty pairs, each value percent-encoded.
pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    let encoded: Vec<String> = pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", percent_encode(value)))
        .collect();
    encoded.join("&")
}

fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// An instant as the pages show it: to the second, in UTC.
pub(crate) fn at_second(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A date typed as `YYYY-MM-DD` (what `<input type="date">` sends), as the start of that day
/// in UTC; empty is `None`.
pub(crate) fn parse_date(text: &str, field: &str) -> Result<Option<Timestamp>, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<Date>()
        .ok()
        .and_then(|date| Offset::UTC.to_timestamp(date.to_datetime(jiff::civil::Time::midnight())).ok())
        .map(Some)
        .ok_or_else(|| PageError::Invalid(format!("{field}: must be a date such as 2026-03-31")))
}

/// The start of the UTC day after `day`: the end of a date range that includes `day`.
pub(crate) fn day_after(day: Timestamp) -> Timestamp {
    day.checked_add(jiff::SignedDuration::from_hours(24)).unwrap_or(Timestamp::MAX)
}

/// The `from` and `to` dates of a filter as a range of instants: from the start of `from`'s
/// day to the end of `to`'s, so that `to` includes its day; either end may be open.
pub(crate) fn parse_dates(from: &str, to: &str) -> Result<(Option<Timestamp>, Option<Timestamp>), PageError> {
    Ok((parse_date(from, "from")?, parse_date(to, "to")?.map(day_after)))
}

/// A status filter: empty is any status, else exactly one of `statuses`, refused with a
/// message naming them.
pub(crate) fn parse_status<'a>(text: &str, statuses: &[&'a str]) -> Result<Option<&'a str>, PageError> {
    if text.is_empty() {
        return Ok(None);
    }
    let status = statuses.iter().find(|status| **status == text).ok_or_else(|| {
        let words = match statuses {
            [rest @ .., last] if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => statuses.join(""),
        };
        PageError::Invalid(format!("status: must be {words}"))
    })?;
    Ok(Some(*status))
}

/// An amount typed in major units (`12.5`, `12.50`, `12`), exactly: more decimals than the
/// currency has are refused, never rounded.
pub(crate) fn parse_major(text: &str, currency: Currency, field: &str) -> Result<Money, PageError> {
    let text = text.trim();
    let exponent = currency.exponent() as usize;
    let refused = || {
        let example = Money::new(1250 * 10i64.pow(currency.exponent()) / 100, currency).format_major();
        let decimals = match exponent {
            0 => "no decimals".to_owned(),
            1 => "at most one decimal".to_owned(),
            n => format!("at most {n} decimals"),
        };
        PageError::Invalid(format!(
            "{field}: must be an amount in {} such as {example}, with {decimals}",
            currency.code()
        ))
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 15
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > exponent
        || (text.contains('.') && fraction.is_empty())
    {
        return Err(refused());
    }
    let scale = 10i64.pow(currency.exponent());
    let whole: i64 = whole.parse().map_err(|_| refused())?;
    let fraction: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i64>().map_err(|_| refused())? * 10i64.pow((exponent - fraction.len()) as u32)
    };
    let minor = whole.checked_mul(scale).and_then(|minor| minor.checked_add(fraction)).ok_or_else(refused)?;
    Ok(Money::new(minor, currency))
}

/// A request id the developer center makes for the user's request (a refund, a registration):
/// `prefix`, then 16 random hex digits. Put in the form when it is shown, so that sending the
/// form twice asks for the same thing twice and gets one.
pub(crate) fn request_id(prefix: &str) -> String {
    let bytes = crate::auth::random_bytes::<8>();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{prefix}-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_major_units_are_exact() {
        let usd = Currency::parse("USD").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let kwd = Currency::parse("KWD").unwrap();
        let cases = [
            ("12.50", usd, Some(1250)),
            ("12.5", usd, Some(1250)),
            ("12", usd, Some(1200)),
            (" 0.01 ", usd, Some(1)),
            ("12.505", usd, None),
            ("12.", usd, None),
            (".5", usd, None),
            ("-1", usd, None),
            ("1e3", usd, None),
            ("599", jpy, Some(599)),
            ("599.0", jpy, None),
            ("1.234", kwd, Some(1234)),
            ("999999999999999999", usd, None),
        ];
        for (text, currency, minor) in cases {
            assert_eq!(
                parse_major(text, currency, "amount").ok().map(Money::minor),
                minor,
                "{text} {currency}"
            );
        }
        let message = match parse_major("1.234", usd, "amount") {
            Err(PageError::Invalid(message)) => message,
            other => panic!("{other:?}"),
        };
        assert!(message.starts_with("amount: ") && message.contains("12.50"), "{message}");
    }

    #[test]
    fn cursors_and_query_strings_read_back() {
        let at = Timestamp::from_millisecond(1_800_000_000_123).unwrap();
        let text = cursor_text(at, "20270115080000123456789012345678");
        assert_eq!(
            parse_cursor(&text).unwrap(),
            Some(PageCursor { created_at: at, id: "20270115080000123456789012345678".into() })
        );
        assert_eq!(parse_cursor("").unwrap(), None);
        for bad in ["x", "1.", "a.b", "1.<script>", "99999999999999999999.1"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
        assert_eq!(
            query_string(&[("status", "FAIL"), ("from", ""), ("id", "a b&c=d")]),
            "status=FAIL&id=a%20b%26c%3Dd"
        );
        assert_eq!(parse_date("2026-03-31", "from").unwrap().map(|at| at.as_second()), Some(1_774_915_200));
        assert!(parse_date("31/03/2026", "from").is_err());
        assert_eq!(parse_date(" ", "from").unwrap(), None);
        let (from, to) = parse_dates("2026-03-31", "2026-03-31").unwrap();
        assert_eq!(to.unwrap().as_second() - from.unwrap().as_second(), 24 * 3600);
        assert_eq!(link("/portal/refunds", &[("status", ""), ("after", "")]), "/portal/refunds");
        assert_eq!(link("/portal/refunds", &[("status", "FAIL")]), "/portal/refunds?status=FAIL");
    }

    #[test]
    fn a_status_is_one_of_the_list_or_refused_naming_them() {
        let statuses = ["PROCESSING", "SUCCESS", "FAIL"];
        assert_eq!(parse_status("", &statuses).unwrap(), None);
        assert_eq!(parse_status("FAIL", &statuses).unwrap(), Some("FAIL"));
        for bad in ["fail", "PAID", " FAIL"] {
            match parse_status(bad, &statuses) {
                Err(PageError::Invalid(message)) => {
                    assert_eq!(message, "status: must be PROCESSING, SUCCESS or FAIL")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(
            matches!(parse_status("X", &["Y"]), Err(PageError::Invalid(message)) if message == "status: must be Y")
        );
    }

    #[test]
    fn a_page_read_one_row_long_has_a_next_page() {
        let (rows, next) = split_page(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!((rows, next.as_deref()), (vec![1, 2], Some("2")));
        let (rows, next) = split_page(vec![1, 2], 2, |n| n.to_string());
        assert_eq!((rows, next), (vec![1, 2], None));
    }
}
