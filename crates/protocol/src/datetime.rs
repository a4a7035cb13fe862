//! Date-time text on the wire: ISO 8601 with an offset in bodies, and `Request-Time`
//! as either epoch milliseconds (current Alipay docs) or ISO 8601 (older docs, Python SDK).

use jiff::Timestamp;

/// Formats an instant as AMS does in bodies: `2026-01-02T03:04:05+00:00`, whole seconds.
pub fn format(at: Timestamp) -> String {
    let whole = Timestamp::from_second(at.as_second()).unwrap_or(at);
    whole.display_with_offset(jiff::tz::Offset::UTC).to_string()
}

/// Parses ISO 8601 text with an offset, such as `2019-11-27T12:01:01+08:00`.
pub fn parse(text: &str) -> Option<Timestamp> {
    text.parse::<Timestamp>().ok()
}

/// Parses a `Request-Time` or `Response-Time` header: epoch milliseconds or ISO 8601.
pub fn parse_header_time(text: &str) -> Option<Timestamp> {
    let digits = !text.is_empty() && text.len() <= 16 && text.bytes().all(|byte| byte.is_ascii_digit());
    if digits {
        let millis = text.parse::<i64>().ok()?;
        Timestamp::from_millisecond(millis).ok()
    } else {
        parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_times() {
        let ms = parse_header_time("1685599933871").unwrap();
        assert_eq!(ms.as_millisecond(), 1_685_599_933_871);
        let iso = parse_header_time("2019-05-28T12:12:12+08:00").unwrap();
        assert_eq!(format(iso), "2019-05-28T04:12:12+00:00");
        assert!(parse_header_time("2019-05-28T12:12:12").is_none(), "an offset is required");
        assert!(parse_header_time("").is_none());
        assert!(parse_header_time("-5").is_none());
        assert!(parse_header_time("99999999999999999999").is_none());
    }

    #[test]
    fn format_drops_fractions() {
        let at = Timestamp::from_millisecond(1_685_599_933_871).unwrap();
        assert_eq!(format(at), "2023-06-01T06:12:13+00:00");
        assert_eq!(parse(&format(at)).unwrap().as_second(), at.as_second());
    }
}
