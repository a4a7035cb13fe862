//! The API log's writer, and how the gateway turns a request into an entry: headers as a JSON
//! object with secrets redacted, bodies as text cut to the configured size.
//!
//! The gateway offers each entry to a bounded queue and never waits: when the writer is behind,
//! the entry is dropped (and counted in a warning), since the log is a developer's aid and a
//! flood of requests nobody signed must not slow anyone's payments. A
//! [`batch_writer`](crate::batch_writer) writes the entries in batches, in order, and drains the
//! queue at shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, HeaderName};
use ocpay_store::{ApiLogEntry, Store, StoreError};
use serde::{Serialize, Serializer};

use crate::batch_writer::{self, Batches, Batching};
use crate::settings::ApiLogSettings;

/// Where the gateway queues entries.
pub(crate) type Sink = batch_writer::Sink<ApiLogEntry>;

/// The queue the writer drains: the receiving end, handed to [`Writer`]'s task.
pub(crate) type Queue = batch_writer::Queue<ApiLogEntry>;

/// What a secret header's value is logged as.
pub(crate) const REDACTED: &str = "[redacted]";

/// The longest header value logged; a longer one is cut like a body.
const HEADER_VALUE_BYTES_MAX: usize = 1024;

/// Writes entries with the store, keeping each participant's unverified ones within the bound.
pub(crate) struct Writer {
    store: Arc<dyn Store>,
    unverified_max: u32,
}

impl Writer {
    pub(crate) fn new(store: Arc<dyn Store>, settings: &ApiLogSettings) -> Writer {
        Writer { store, unverified_max: settings.unverified_max }
    }
}

impl Batches for Writer {
    type Record = ApiLogEntry;
    const WHAT: &'static str = "API log entries";

    async fn write(&self, batch: &[ApiLogEntry]) -> Result<(), StoreError> {
        self.store.record_api_log(batch, self.unverified_max).await
    }
}

/// A queue of at most `api_log_queue_max` entries: the gateway's end and the writer's.
pub(crate) fn channel(settings: &ApiLogSettings) -> (Sink, Queue) {
    batch_writer::channel::<Writer>(settings.queue_max)
}

pub(crate) fn batching(settings: &ApiLogSettings) -> Batching {
    Batching { batch_max: settings.batch_max, flush_interval: settings.flush_interval }
}

/// Queues an entry unless the queue is full; a dropped entry is counted, and the count logged
/// at the first drop and every thousandth after it.
pub(crate) fn offer(sink: &Sink, entry: ApiLogEntry) {
    static DROPPED: AtomicU64 = AtomicU64::new(0);
    if !sink.offer(entry) {
        let dropped = DROPPED.fetch_add(1, Ordering::Relaxed) + 1;
        if dropped % 1_000 == 1 {
            tracing::warn!(dropped, "the API log's queue is full: entries are dropped");
        }
    }
}

/// Whether a header carries a secret, whose value the log must not keep; `name` is lower-case,
/// as `http` keeps header names.
pub(crate) fn is_secret(name: &str) -> bool {
    const SECRET: [&str; 5] = ["agent-token", "authorization", "proxy-authorization", "cookie", "set-cookie"];
    const SECRET_WORDS: [&str; 5] = ["token", "secret", "password", "api-key", "apikey"];
    SECRET.contains(&name) || SECRET_WORDS.iter().any(|word| name.contains(word))
}

/// The headers as a JSON object, by lower-case name (several values of one name joined by
/// `, `), secrets redacted and long values cut. Written straight into the text, with no map or
/// string per header in between: this runs for every request.
pub(crate) fn headers_json(headers: &HeaderMap) -> String {
    let mut json = Vec::with_capacity(64 + 96 * headers.keys_len());
    let mut serializer = serde_json::Serializer::new(&mut json);
    let entries = headers.keys().map(|name| (name.as_str(), Values { headers, name }));
    // Writing into a Vec cannot fail, and the names and values are strings.
    if serializer.collect_map(entries).is_err() {
        return "{}".to_owned();
    }
    String::from_utf8(json).unwrap_or_else(|_| "{}".to_owned())
}

/// The values of one header, as the log keeps them.
struct Values<'a> {
    headers: &'a HeaderMap,
    name: &'a HeaderName,
}

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if is_secret(self.name.as_str()) {
            return serializer.serialize_str(REDACTED);
        }
        let mut values = self.headers.get_all(self.name).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => match value.to_str() {
                Ok(value) if value.len() <= HEADER_VALUE_BYTES_MAX => serializer.serialize_str(value),
                _ => serializer.serialize_str(&text(value.as_bytes(), HEADER_VALUE_BYTES_MAX)),
            },
            _ => {
                let values: Vec<String> = self
                    .headers
                    .get_all(self.name)
                    .iter()
                    .map(|value| text(value.as_bytes(), HEADER_VALUE_BYTES_MAX))
                    .collect();
                serializer.serialize_str(&values.join(", "))
            }
        }
    }
}

/// Bytes as text (invalid UTF-8 replaced), cut to `bytes_max` bytes at a character boundary;
/// a cut text ends saying so and how long the whole was.
pub(crate) fn text(bytes: &[u8], bytes_max: usize) -> String {
    if bytes.len() <= bytes_max {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut end = bytes_max;
    // Back to the start of a character, so that valid text is never cut inside one.
    while end > 0 && bytes[end] & 0b1100_0000 == 0b1000_0000 {
        end -= 1;
    }
    let mut cut = String::from_utf8_lossy(&bytes[..end]).into_owned();
    cut.push_str(&format!("…[cut: the first {end} of {} bytes]", bytes.len()));
    cut
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn secrets_are_redacted_and_the_rest_kept() {
        let mut headers = HeaderMap::new();
        headers.insert("client-id", HeaderValue::from_static("SANDBOX_1"));
        headers.insert("agent-token", HeaderValue::from_static("the-agent-token"));
        headers.insert("authorization", HeaderValue::from_static("Bearer abc"));
        headers.insert("x-session-token", HeaderValue::from_static("xyz"));
        headers.append("accept", HeaderValue::from_static("application/json"));
        headers.append("accept", HeaderValue::from_static("text/plain"));
        headers.insert("x-long", HeaderValue::from_str(&"a".repeat(2_000)).unwrap());
        let json: serde_json::Value = serde_json::from_str(&headers_json(&headers)).unwrap();
        assert_eq!(json["client-id"], "SANDBOX_1");
        for secret in ["agent-token", "authorization", "x-session-token"] {
            assert_eq!(json[secret], REDACTED, "{secret}");
        }
        assert_eq!(json["accept"], "application/json, text/plain");
        let long = json["x-long"].as_str().unwrap();
        assert!(long.starts_with(&"a".repeat(1024)) && long.contains("cut: the first 1024 of 2000 bytes"));
        assert!(!headers_json(&headers).contains("the-agent-token"));
    }

    #[test]
    fn bodies_are_cut_at_a_character_and_say_so() {
        let cases: [(&[u8], usize, &str); 5] = [
            (b"{}", 16, "{}"),
            (b"0123456789", 10, "0123456789"),
            (b"0123456789", 4, "0123…[cut: the first 4 of 10 bytes]"),
            ("aé".as_bytes(), 2, "a…[cut: the first 1 of 3 bytes]"),
            (b"\xff{}", 16, "\u{fffd}{}"),
        ];
        for (bytes, max, expected) in cases {
            assert_eq!(text(bytes, max), expected, "{bytes:?} cut to {max}");
        }
    }
}
