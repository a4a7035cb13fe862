//! What an operator watches: Prometheus metrics on a listener of their own (`metrics_listen`,
//! off by default), and the request id every answer carries.
//!
//! Metrics are recorded through the `metrics` facade, from this crate and from the crates below
//! it (the store's commits and pool waits, the SFTP server's sessions), so no crate below the
//! server needs to know about Prometheus: with no recorder installed (the listener off) every
//! record is a no-op. With `metrics_listen` set, the server installs the process's one
//! Prometheus recorder and serves its text at `GET /metrics`; gauges that are cheaper to read
//! than to keep (the outbox, the queues) are read when scraped.
//!
//! Every request gets a request id, made here (16 hex digits, unique within the process and
//! unguessable across processes); it is the `request_id` field of the span its log lines are
//! written in, its API-log entry's `requestId`, and the `X-Request-Id` header of its answer. An
//! `X-Request-Id` the client sent is not taken: ids that clients choose could repeat or pose as
//! another's; the client's header stays in the API log's request headers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::response::{IntoResponse as _, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use ocpay_store::{DeliveryStatus, NotificationKind};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::Instrument as _;

use crate::state::AppState;

/// The header that carries a request's id in every answer.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// A request's id, in the request's extensions for the handlers that record it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Makes request ids: a process-wide counter through a bijective mix keyed by random bits drawn
/// once, so ids never repeat within a process and do not say how many requests came before.
fn next_request_id() -> String {
    static KEY: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let key = *KEY.get_or_init(|| {
        let mut bytes = [0u8; 8];
        // Without the system's random numbers the ids are still unique, only guessable.
        let _ = aws_lc_rs::rand::fill(&mut bytes);
        u64::from_le_bytes(bytes)
    });
    let count = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}", mix(count.wrapping_add(key), key))
}

/// An invertible mix of 64 bits (splitmix64's finaliser, keyed by an xor): distinct inputs give
/// distinct outputs.
fn mix(value: u64, key: u64) -> u64 {
    let mut z = value ^ key.rotate_left(29);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Gives every request an id: in its extensions, as the span its log lines are written in, and
/// as the `X-Request-Id` header of whatever answers it (the gateway, pages, the admin API,
/// refusals).
pub(crate) async fn request_id(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let id = next_request_id();
    let span = tracing::info_span!("request", request_id = %id);
    let value = HeaderValue::from_str(&id).ok();
    request.extensions_mut().insert(RequestId(id));
    let mut response = next.run(request).instrument(span).await;
    if let Some(value) = value {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Counts a gateway request by API and result, and times it.
pub(crate) fn gateway_request(api: &'static str, status: &'static str, code: &str, elapsed: Duration) {
    metrics::counter!("ocpay_requests_total", "api" => api, "status" => status, "code" => code.to_owned())
        .increment(1);
    metrics::histogram!("ocpay_request_duration_seconds", "api" => api).record(elapsed);
}

/// The Prometheus recorder of this process, installed at the first call. A process runs one
/// platform, so one registry serves it (tests that start several servers in one process share
/// it, and read how their series moved rather than their values).
fn recorder() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let seconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
    let sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)?
        .set_buckets_for_metric(Matcher::Full("ocpay_store_write_batch_size".into()), &sizes)?;
    let handle = builder.install_recorder().context("installing the metrics recorder")?;
    describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Every metric's help text, as `/metrics` shows it and the README lists it.
fn describe() {
    describe_counter!(
        "ocpay_requests_total",
        "Gateway requests answered, by API and AMS result status and code"
    );
    describe_histogram!(
        "ocpay_request_duration_seconds",
        Unit::Seconds,
        "Time from receiving a gateway request to its signed answer, by API"
    );
    describe_gauge!(
        "ocpay_outbox_notifications",
        "Notifications not delivered, by delivery status (PENDING: still tried; FAILED: out of attempts) and kind"
    );
    describe_gauge!(
        "ocpay_outbox_oldest_age_seconds",
        Unit::Seconds,
        "Age of the oldest notification not delivered, by delivery status (0 when there is none)"
    );
    describe_counter!(
        "ocpay_notification_deliveries_total",
        "Delivery attempts of notifications, by outcome (DELIVERED, REJECTED, ERROR)"
    );
    describe_histogram!(
        "ocpay_store_commit_seconds",
        Unit::Seconds,
        "Time to commit a store transaction (SQLite: one group commit, with its fsync), by engine"
    );
    describe_histogram!(
        "ocpay_store_write_batch_size",
        "Writes committed together in one SQLite group commit"
    );
    describe_counter!(
        "ocpay_store_write_batches_rerun_total",
        "SQLite group commits run again with a savepoint per write, because a write that failed had changed rows"
    );
    describe_histogram!(
        "ocpay_store_pool_wait_seconds",
        Unit::Seconds,
        "Time a PostgreSQL call waited for a free pooled connection, when it had to wait"
    );
    describe_counter!(
        "ocpay_store_pool_timeouts_total",
        "PostgreSQL calls that found no free connection within postgres_pool_wait_ms"
    );
    describe_gauge!(
        "ocpay_queue_depth",
        "Records waiting for a background writer, by queue (audit, api_log)"
    );
    describe_counter!(
        "ocpay_queue_dropped_total",
        "Records a background writer's queue dropped (api_log when full; any when its writer stopped)"
    );
    describe_counter!(
        "ocpay_job_runs_total",
        "Runs of the settlement job (settling and writing reports), by outcome"
    );
    describe_counter!("ocpay_settlement_batches_total", "Settlement batches closed by the settlement job");
    describe_gauge!("ocpay_sftp_sessions", "Open SFTP connections on this server");
}

/// The metrics listener, bound at build time so that an address that cannot be bound stops the
/// start.
pub(crate) struct Exporter {
    listener: TcpListener,
    handle: PrometheusHandle,
}

impl Exporter {
    /// Installs the recorder and binds `address`.
    pub(crate) async fn bind(address: SocketAddr) -> anyhow::Result<Exporter> {
        let handle = recorder()?;
        let listener =
            TcpListener::bind(address).await.with_context(|| format!("bind metrics_listen {address}"))?;
        Ok(Exporter { listener, handle })
    }

    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `GET /metrics` until `stop` turns true, and keeps the recorder's histograms drained.
    pub(crate) async fn run(self, state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
        let Exporter { listener, handle } = self;
        let upkeep = handle.clone();
        let mut upkeep_stop = stop.clone();
        let upkeep = tokio::spawn(async move {
            while crate::jobs::idle(&mut upkeep_stop, Duration::from_secs(5), None).await {
                upkeep.run_upkeep();
            }
        });
        // A scraper is one or two clients: a few connections are plenty, and a flood of them
        // waits in the backlog instead of costing the platform.
        let connections = Arc::new(Semaphore::new(16));
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(state.settings.http.header_read_timeout);
        loop {
            let permit = tokio::select! {
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = stop.changed() => break,
            };
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "metrics: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.changed() => break,
            };
            let (state, handle) = (state.clone(), handle.clone());
            let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let (state, handle) = (state.clone(), handle.clone());
                async move { Ok::<_, std::convert::Infallible>(answer(&state, &handle, &request).await) }
            });
            let connection = http.serve_connection(TokioIo::new(stream), service);
            tokio::spawn(async move {
                let _ = connection.await;
                drop(permit);
            });
        }
        upkeep.abort();
    }
}

/// `GET /metrics`: the gauges read now, then every series as Prometheus text.
async fn answer<B>(state: &AppState, handle: &PrometheusHandle, request: &http::Request<B>) -> Response {
    if request.uri().path() != "/metrics" {
        return StatusCode::NOT_FOUND.into_response();
    }
    if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    refresh(state).await;
    let body = handle.render();
    let mut response = Response::new(axum::body::Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// Reads the gauges that are cheaper to read at a scrape than to keep: the outbox (one grouped
/// count over the index of undelivered notifications) and the background writers' queues.
async fn refresh(state: &AppState) {
    match state.store.undelivered_notifications().await {
        Ok(undelivered) => {
            let now = state.clock.now();
            for status in [DeliveryStatus::Pending, DeliveryStatus::Failed] {
                let mut oldest: Option<jiff::Timestamp> = None;
                for kind in NotificationKind::ALL {
                    let found = undelivered.iter().find(|row| row.status == status && row.kind == kind);
                    let count = found.map_or(0, |row| row.count);
                    if let Some(row) = found {
                        oldest = Some(oldest.map_or(row.oldest, |oldest| oldest.min(row.oldest)));
                    }
                    metrics::gauge!("ocpay_outbox_notifications", "status" => status.as_str(), "kind" => kind.as_str())
                        .set(count as f64);
                }
                let age = oldest.map_or(Duration::ZERO, |oldest| {
                    Duration::try_from(now.duration_since(oldest)).unwrap_or(Duration::ZERO)
                });
                metrics::gauge!("ocpay_outbox_oldest_age_seconds", "status" => status.as_str()).set(age);
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: the outbox could not be read"),
    }
    metrics::gauge!("ocpay_queue_depth", "queue" => "audit").set(state.audit.depth() as f64);
    if let Some(api_log) = &state.api_log {
        metrics::gauge!("ocpay_queue_depth", "queue" => "api_log").set(api_log.depth() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_sixteen_hex_digits_and_do_not_repeat() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| next_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.len() == 16 && id.bytes().all(|byte| byte.is_ascii_hexdigit())));
    }
}
