//! Floods and limits: what one source address or one client id may take of the platform.
//!
//! - **Connections per source address** (`connections_per_address_max`): the accept loop asks
//!   [`Limits::connection`] for a slot before serving a connection; a connection over its
//!   address's cap is closed at once, before anything is read, so one client holding thousands
//!   of sockets cannot fill `connections_max` (beyond which every new connection, anyone's,
//!   waits in the listen backlog).
//! - **Requests per source address** (`rate_limit_address_*`), a token bucket checked when a
//!   gateway request arrives, before its body is read and before any RSA work. A refused request
//!   gets HTTP 429 with `Retry-After` and a small unsigned AMS result
//!   (`REQUEST_TRAFFIC_EXCEED_LIMIT`, `U`): no signature is made for it. A request that then
//!   does not verify (a forged signature, an unknown client id, a malformed envelope: each still
//!   answered with a signed result) takes `rate_limit_unverified_cost` tokens in all, so forged
//!   requests, which cost the platform a signature each, run out an address's bucket that many
//!   times faster than verified ones.
//! - **Requests per client id** (`rate_limit_client_*`), a token bucket checked once the
//!   signature has verified, keyed by the client id that signed (an ISV's own, whoever it acts
//!   for): a forger cannot spend a merchant's budget, since its requests never verify. A refused
//!   request gets the signed AMS answer the SDKs expect (HTTP 200, `REQUEST_TRAFFIC_EXCEED_LIMIT`,
//!   `U`, and a `Retry-After` header); its signature is made at most once per client id, path
//!   and second of `Response-Time` ([`Limits::refusal_signature`]), so refusing costs almost no
//!   RSA work however fast a client sends.
//!
//! Buckets refill from the injectable [`Clock`] (whole milliseconds), so tests move time rather
//! than sleep; a clock that steps back refills nothing, and refills from where it then is. IPv6
//! addresses count by their /64 (what one host is usually given), IPv4-mapped IPv6 addresses as
//! IPv4. The tables of buckets are bounded: beyond [`TRACKED_MAX`] entries, full buckets (those
//! equal to a new one) are forgotten first.
//!
//! The source address is the TCP peer's: behind a proxy or load balancer every request comes
//! from its address, so there the address limits must be off (or set for the proxy's whole
//! traffic) and the proxy must limit by client address itself.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::response::{IntoResponse as _, Response};
use http::{HeaderValue, StatusCode, header};
use ocpay_protocol::payments::ResultOnly;
use ocpay_protocol::{AmsResult, ResultCode};

use crate::clock::Clock;

/// A token bucket's shape: `per_second` tokens come back each second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// What the limits are set to (`LimitSettings` of [`crate::settings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSettings {
    pub connections_per_address_max: usize,
    /// Requests per source address; `None` when off.
    pub address: Option<Rate>,
    /// Tokens of the address's bucket a request takes in all when it does not verify.
    pub unverified_cost: u32,
    /// Verified requests per client id; `None` when off.
    pub client: Option<Rate>,
}

/// The most source addresses (or client ids) whose buckets are kept at once.
pub const TRACKED_MAX: usize = 65_536;

/// A token is this many units, so that refills of a millisecond are exact at any rate.
const UNIT: i64 = 1_000;

impl Rate {
    fn capacity(self) -> i64 {
        i64::from(self.burst) * UNIT
    }

    /// How long until `missing` units have come back.
    fn wait_for(self, missing: i64) -> Duration {
        // `per_second` tokens a second are `per_second` units a millisecond.
        let per_ms = i64::from(self.per_second.max(1));
        Duration::from_millis(u64::try_from((missing + per_ms - 1) / per_ms).unwrap_or(u64::MAX))
    }
}

/// One token bucket: its units at `at_ms` (negative when a debt was charged to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    units: i64,
    at_ms: i64,
}

impl Bucket {
    fn full(rate: Rate, now_ms: i64) -> Bucket {
        Bucket { units: rate.capacity(), at_ms: now_ms }
    }

    fn refill(&mut self, rate: Rate, now_ms: i64) {
        // A clock that stepped back refills nothing, and refills count from where it is now.
        let elapsed = now_ms.saturating_sub(self.at_ms).max(0);
        let added = elapsed.saturating_mul(i64::from(rate.per_second));
        self.units = self.units.saturating_add(added).min(rate.capacity());
        self.at_ms = now_ms;
    }

    /// Takes `cost` tokens if there are that many; otherwise says how long until there are.
    fn take(&mut self, rate: Rate, cost: u32, now_ms: i64) -> Result<(), Duration> {
        self.refill(rate, now_ms);
        let needed = i64::from(cost) * UNIT;
        if self.units >= needed {
            self.units -= needed;
            Ok(())
        } else {
            Err(rate.wait_for(needed - self.units))
        }
    }

    /// Takes `cost` tokens whether or not there are that many, owing at most a whole burst.
    fn charge(&mut self, rate: Rate, cost: u32, now_ms: i64) {
        self.refill(rate, now_ms);
        self.units = self.units.saturating_sub(i64::from(cost) * UNIT).max(-rate.capacity());
    }

    /// Whether the bucket is as a new one would be: forgetting it changes nothing.
    fn is_full(mut self, rate: Rate, now_ms: i64) -> bool {
        self.refill(rate, now_ms);
        self.units >= rate.capacity()
    }
}

/// Token buckets of one rate, by key.
struct Buckets<K> {
    rate: Rate,
    tracked_max: usize,
    table: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(rate: Rate, tracked_max: usize) -> Buckets<K> {
        Buckets { rate, tracked_max, table: Mutex::new(HashMap::new()) }
    }

    fn with<T>(&self, key: &K, now_ms: i64, change: impl FnOnce(&mut Bucket) -> T) -> T {
        let mut table = lock(&self.table);
        if let Some(bucket) = table.get_mut(key) {
            return change(bucket);
        }
        if table.len() >= self.tracked_max {
            self.make_room(&mut table, now_ms);
        }
        change(table.entry(key.clone()).or_insert_with(|| Bucket::full(self.rate, now_ms)))
    }

    /// Forgets the full buckets, and, when every one is in use, a quarter of them (any).
    fn make_room(&self, table: &mut HashMap<K, Bucket>, now_ms: i64) {
        table.retain(|_, bucket| !bucket.is_full(self.rate, now_ms));
        if table.len() >= self.tracked_max {
            let forget: Vec<K> = table.keys().take(self.tracked_max / 4 + 1).cloned().collect();
            for key in forget {
                table.remove(&key);
            }
        }
    }

    fn take(&self, key: &K, cost: u32, now_ms: i64) -> Result<(), Duration> {
        let rate = self.rate;
        self.with(key, now_ms, |bucket| bucket.take(rate, cost, now_ms))
    }

    fn charge(&self, key: &K, cost: u32, now_ms: i64) {
        let rate = self.rate;
        self.with(key, now_ms, |bucket| bucket.charge(rate, cost, now_ms));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.table).len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A source address as the limits count it: IPv4 as it is, IPv6 by its /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(address: IpAddr) -> Source {
        match address {
            IpAddr::V4(_) => Source(address),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => Source(IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX)))),
            },
        }
    }
}

/// Open connections by source address.
struct Connections {
    max: usize,
    open: Mutex<HashMap<Source, usize>>,
}

/// A connection's place in its address's count, given back when dropped.
pub struct ConnectionSlot {
    connections: Arc<Connections>,
    source: Source,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.connections.open);
        if let Some(count) = open.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.source);
            }
        }
    }
}

/// The last signature of a refusal for one client id: reused while what it signed (the path,
/// the client id, the second of `Response-Time`, the body) and the platform key stay the same.
struct CachedSignature {
    content: Vec<u8>,
    key_version: u32,
    signature: String,
}

/// The limits of a running server, shared by the accept loop and the gateway.
pub struct Limits {
    clock: Arc<dyn Clock>,
    connections: Arc<Connections>,
    addresses: Option<Buckets<Source>>,
    unverified_cost: u32,
    clients: Option<Buckets<String>>,
    refusals: Mutex<HashMap<String, CachedSignature>>,
    refused: Refused,
}

/// How many connections and requests the limits refused since the start, for the metrics.
#[derive(Debug, Default)]
pub struct Refused {
    pub connections: AtomicU64,
    pub addresses: AtomicU64,
    pub clients: AtomicU64,
}

impl Limits {
    pub fn new(settings: &LimitSettings, clock: Arc<dyn Clock>) -> Limits {
        Limits::with_tracked_max(settings, clock, TRACKED_MAX)
    }

    fn with_tracked_max(settings: &LimitSettings, clock: Arc<dyn Clock>, tracked_max: usize) -> Limits {
        Limits {
            clock,
            connections: Arc::new(Connections {
                max: settings.connections_per_address_max,
                open: Mutex::new(HashMap::new()),
            }),
            addresses: settings.address.map(|rate| Buckets::new(rate, tracked_max)),
            unverified_cost: settings.unverified_cost.max(1),
            clients: settings.client.map(|rate| Buckets::new(rate, tracked_max)),
            refusals: Mutex::new(HashMap::new()),
            refused: Refused::default(),
        }
    }

    /// What the limits refused since the start: connections over their address's cap, requests
    /// over their address's rate, verified requests over their client id's rate.
    pub fn refused(&self) -> &Refused {
        &self.refused
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().as_millisecond()
    }

    /// A slot for a new connection from `peer`, or `None` when its address has as many open as
    /// it may: then the connection is to be closed unread.
    pub fn connection(&self, peer: IpAddr) -> Option<ConnectionSlot> {
        let source = Source::of(peer);
        let mut open = lock(&self.connections.open);
        let count = open.entry(source).or_insert(0);
        if *count >= self.connections.max {
            drop(open);
            self.refused.connections.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *count += 1;
        Some(ConnectionSlot { connections: self.connections.clone(), source })
    }

    /// Takes a request's token from `peer`'s bucket, or says how long until there is one.
    pub fn admit_address(&self, peer: IpAddr) -> Result<(), Duration> {
        let Some(addresses) = &self.addresses else { return Ok(()) };
        addresses.take(&Source::of(peer), 1, self.now_ms()).inspect_err(|_| {
            self.refused.addresses.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// Charges `peer` the rest of what a request that did not verify costs.
    pub fn charge_unverified(&self, peer: IpAddr) {
        if let Some(addresses) = &self.addresses
            && self.unverified_cost > 1
        {
            addresses.charge(&Source::of(peer), self.unverified_cost - 1, self.now_ms());
        }
    }

    /// Takes a verified request's token from its client id's bucket, or says how long until
    /// there is one.
    pub fn admit_client(&self, client_id: &str) -> Result<(), Duration> {
        let Some(clients) = &self.clients else { return Ok(()) };
        clients.take(&client_id.to_owned(), 1, self.now_ms()).inspect_err(|_| {
            self.refused.clients.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// The signature of a refusal to `client_id` over `content` with the platform key of
    /// `key_version`: the one made last for this client id when it signed the same content with
    /// the same key, or else a new one from `sign` (kept for next time).
    pub fn refusal_signature(
        &self,
        client_id: &str,
        content: &[u8],
        key_version: u32,
        sign: impl FnOnce() -> Option<String>,
    ) -> Option<String> {
        if let Some(cached) = lock(&self.refusals).get(client_id)
            && cached.key_version == key_version
            && cached.content == content
        {
            return Some(cached.signature.clone());
        }
        // Signed without the lock held; two refusals of the same second may both sign.
        let signature = sign()?;
        let cached = CachedSignature { content: content.to_vec(), key_version, signature: signature.clone() };
        let mut refusals = lock(&self.refusals);
        // Only verified client ids come here, so the table is as large as the participants who
        // were refused; bounded all the same.
        if refusals.len() >= TRACKED_MAX && !refusals.contains_key(client_id) {
            refusals.clear();
        }
        refusals.insert(client_id.to_owned(), cached);
        Some(signature)
    }
}

/// What every request of a connection knows about it: where it came from, and (held until the
/// connection and its last request are done) its place in its address's count.
#[derive(Clone)]
pub struct Peer {
    pub address: SocketAddr,
    _slot: Arc<ConnectionSlot>,
}

/// The source address of a request, when the accept loop put it in its extensions.
pub fn peer(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions.get::<Peer>().map(|peer| peer.address.ip())
}

/// Serves a connection from `address` with `service`: each request knows its source address,
/// and the connection's `slot` is given back once the service (which the connection owns) and
/// the last request are dropped.
pub fn with_peer<S>(
    service: S,
    address: SocketAddr,
    slot: ConnectionSlot,
) -> axum::middleware::AddExtension<S, Peer> {
    use tower::Layer as _;
    axum::Extension(Peer { address, _slot: Arc::new(slot) }).layer(service)
}

/// Whole seconds to wait, at least one, as `Retry-After` says it.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1_000).max(1).try_into().unwrap_or(u64::MAX)
}

/// The unsigned answer to a request over its address's rate: HTTP 429 with `Retry-After`.
pub fn too_many_requests(wait: Duration) -> Response {
    let seconds = retry_after_seconds(wait);
    let code = ResultCode::REQUEST_TRAFFIC_EXCEED_LIMIT;
    let message = format!("too many requests from this address; retry after {seconds} s");
    let body = ResultOnly { result: AmsResult::with_message(code, message) };
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use jiff::{SignedDuration, Timestamp};

    use super::*;
    use crate::clock::ManualClock;

    const RATE: Rate = Rate { per_second: 10, burst: 3 };

    /// A step of a table: the clock moves by `after_ms`, then `cost` is taken (or charged, when
    /// `charge`), and the outcome is `expect` (the wait in milliseconds when refused).
    struct Step {
        after_ms: i64,
        cost: u32,
        charge: bool,
        expect: Result<(), u64>,
    }

    const fn take(after_ms: i64, cost: u32, expect: Result<(), u64>) -> Step {
        Step { after_ms, cost, charge: false, expect }
    }

    const fn charge(after_ms: i64, cost: u32) -> Step {
        Step { after_ms, cost, charge: true, expect: Ok(()) }
    }

    #[test]
    fn a_bucket_refills_at_its_rate_up_to_its_burst() {
        let cases: [(&str, Rate, &[Step]); 7] = [
            (
                "a burst, then a token every 100 ms",
                RATE,
                &[
                    take(0, 1, Ok(())),
                    take(0, 1, Ok(())),
                    take(0, 1, Ok(())),
                    take(0, 1, Err(100)),
                    take(40, 1, Err(60)),
                    take(60, 1, Ok(())),
                    take(0, 1, Err(100)),
                ],
            ),
            (
                "an idle bucket holds no more than its burst",
                RATE,
                &[take(0, 3, Ok(())), take(60_000, 3, Ok(())), take(0, 1, Err(100))],
            ),
            (
                "a cost over what is left waits for all of it",
                RATE,
                &[take(0, 2, Ok(())), take(0, 3, Err(200)), take(150, 3, Err(50)), take(50, 3, Ok(()))],
            ),
            (
                "a charge owes tokens, up to a whole burst",
                RATE,
                &[
                    take(0, 1, Ok(())),
                    charge(0, 19),
                    take(0, 1, Err(400)),
                    take(399, 1, Err(1)),
                    take(1, 1, Ok(())),
                ],
            ),
            (
                "a clock stepping back refills nothing",
                RATE,
                &[take(0, 3, Ok(())), take(-5_000, 1, Err(100)), take(100, 1, Ok(()))],
            ),
            (
                "one token a second",
                Rate { per_second: 1, burst: 1 },
                &[take(0, 1, Ok(())), take(1, 1, Err(999)), take(999, 1, Ok(()))],
            ),
            (
                "a fast rate refills within a millisecond",
                Rate { per_second: 4_000, burst: 2 },
                &[take(0, 2, Ok(())), take(0, 1, Err(1)), take(1, 4, Err(1)), take(0, 1, Ok(()))],
            ),
        ];
        for (name, rate, steps) in cases {
            let mut now = 1_000_000;
            let mut bucket = Bucket::full(rate, now);
            for (index, step) in steps.iter().enumerate() {
                now += step.after_ms;
                let outcome = if step.charge {
                    bucket.charge(rate, step.cost, now);
                    Ok(())
                } else {
                    bucket.take(rate, step.cost, now).map_err(|wait| wait.as_millis() as u64)
                };
                assert_eq!(outcome, step.expect, "{name}, step {}", index + 1);
            }
        }
    }

    fn settings(address: Option<Rate>, client: Option<Rate>) -> LimitSettings {
        LimitSettings { connections_per_address_max: 2, address, unverified_cost: 5, client }
    }

    fn limits(settings: &LimitSettings) -> (Limits, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_second(1_800_000_000).unwrap()));
        (Limits::new(settings, clock.clone()), clock)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn each_address_has_a_bucket_of_its_own_and_unverified_requests_drain_it_faster() {
        let (limits, clock) = limits(&settings(Some(Rate { per_second: 10, burst: 10 }), None));
        let (flooder, other) = (ip("192.0.2.1"), ip("192.0.2.2"));
        // One forged request costs five tokens: two empty the bucket of ten.
        for _ in 0..2 {
            limits.admit_address(flooder).unwrap();
            limits.charge_unverified(flooder);
        }
        assert_eq!(limits.admit_address(flooder), Err(Duration::from_millis(100)));
        for _ in 0..10 {
            limits.admit_address(other).expect("another address is not refused");
        }
        clock.advance(SignedDuration::from_millis(100));
        limits.admit_address(flooder).expect("a token came back");
    }

    #[test]
    fn each_client_id_has_a_bucket_of_its_own() {
        let (limits, clock) = limits(&settings(None, Some(Rate { per_second: 1, burst: 2 })));
        limits.admit_client("SANDBOX_A").unwrap();
        limits.admit_client("SANDBOX_A").unwrap();
        assert_eq!(limits.admit_client("SANDBOX_A"), Err(Duration::from_secs(1)));
        limits.admit_client("SANDBOX_B").expect("another client id is not refused");
        clock.advance(SignedDuration::from_secs(1));
        limits.admit_client("SANDBOX_A").expect("a token came back");
        // Addresses are not limited here: off is off.
        for _ in 0..1_000 {
            limits.admit_address(ip("192.0.2.1")).unwrap();
            limits.charge_unverified(ip("192.0.2.1"));
        }
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let cases = [
            ("2001:db8:1:2:aaaa::1", "2001:db8:1:2:bbbb::2", true),
            ("2001:db8:1:2::1", "2001:db8:1:3::1", false),
            ("::ffff:192.0.2.1", "192.0.2.1", true),
            ("192.0.2.1", "192.0.2.2", false),
        ];
        for (one, another, same) in cases {
            assert_eq!(Source::of(ip(one)) == Source::of(ip(another)), same, "{one} and {another}");
        }
    }

    #[test]
    fn connections_beyond_an_address_cap_are_refused_until_one_closes() {
        let (limits, _) = limits(&settings(None, None));
        let first = limits.connection(ip("192.0.2.1")).unwrap();
        let _second = limits.connection(ip("192.0.2.1")).unwrap();
        assert!(limits.connection(ip("192.0.2.1")).is_none());
        assert!(limits.connection(ip("192.0.2.2")).is_some(), "another address has its own cap");
        drop(first);
        let third = limits.connection(ip("192.0.2.1"));
        assert!(third.is_some(), "a closed connection frees its slot");
        assert!(limits.connection(ip("192.0.2.1")).is_none());
    }

    #[test]
    fn tables_forget_full_buckets_first_and_stay_bounded() {
        let settings = settings(Some(Rate { per_second: 1, burst: 2 }), None);
        let clock = Arc::new(ManualClock::new(Timestamp::from_second(1_800_000_000).unwrap()));
        let limits = Limits::with_tracked_max(&settings, clock.clone(), 4);
        let busy = ip("192.0.2.1");
        limits.admit_address(busy).unwrap();
        limits.admit_address(busy).unwrap();
        for last in 2..=4 {
            limits.admit_address(ip(&format!("192.0.2.{last}"))).unwrap();
        }
        // The idle ones filled up again; the busy one has not.
        clock.advance(SignedDuration::from_millis(1_500));
        limits.admit_address(ip("192.0.2.200")).unwrap();
        let addresses = limits.addresses.as_ref().unwrap();
        assert_eq!(addresses.len(), 2, "the full buckets were forgotten");
        assert!(limits.admit_address(busy).is_ok());
        assert!(limits.admit_address(busy).is_err(), "the busy address's bucket was kept");
        for last in 0..100 {
            let _ = limits.admit_address(ip(&format!("198.51.100.{last}")));
            assert!(addresses.len() <= 4);
        }
    }

    #[test]
    fn a_refusal_is_signed_again_only_when_what_it_signs_changes() {
        let (limits, _) = limits(&settings(None, None));
        let signed = std::sync::atomic::AtomicUsize::new(0);
        let sign = || {
            let count = signed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some(format!("signature-{count}"))
        };
        let cases = [
            ("SANDBOX_A", "content 1", 1, "signature-0"),
            ("SANDBOX_A", "content 1", 1, "signature-0"),
            ("SANDBOX_B", "content 1", 1, "signature-1"),
            ("SANDBOX_A", "content 1", 1, "signature-0"),
            ("SANDBOX_A", "content 2", 1, "signature-2"),
            ("SANDBOX_A", "content 2", 2, "signature-3"),
            ("SANDBOX_A", "content 2", 2, "signature-3"),
        ];
        for (index, (client_id, content, key_version, expected)) in cases.into_iter().enumerate() {
            let signature = limits.refusal_signature(client_id, content.as_bytes(), key_version, sign);
            assert_eq!(signature.as_deref(), Some(expected), "case {}", index + 1);
        }
    }

    #[test]
    fn the_refusal_says_when_to_retry_in_whole_seconds() {
        let cases = [(1, 1), (999, 1), (1_000, 1), (1_001, 2), (0, 1), (61_500, 62)];
        for (millis, seconds) in cases {
            assert_eq!(retry_after_seconds(Duration::from_millis(millis)), seconds, "{millis} ms");
        }
        let response = too_many_requests(Duration::from_millis(1_500));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert!(!response.headers().contains_key("signature"));
    }
}
