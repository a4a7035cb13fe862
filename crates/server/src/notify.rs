//! The notifier: delivers the outbox's notifications, at least once.
//!
//! A loop claims due rows for a lease (so a dead sender's rows return to the pool), sends each
//! with bounded concurrency and a timeout, records every attempt, and reschedules by core's
//! retry schedule until the receiver acknowledges or the attempts run out. New rows wake it at
//! once; otherwise it polls. "Due" is judged by the injectable clock, so tests walk a day's
//! schedule in milliseconds.
//!
//! Delivered means HTTP 200 with `result.resultStatus = "S"`. No notification goes to a
//! link-local or metadata address or to the platform's own listeners; live participants'
//! never go to private or loopback addresses, sandbox participants' to loopback addresses only
//! (unless the operator's settings say otherwise). IP literals are refused before sending, names
//! are resolved through a filter, and a name on the port of one of the platform's listeners is
//! resolved first to make sure it is not the platform.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ocpay_core::ids::{ClientId, PaymentId, RefundId, RegistrationId};
use ocpay_core::participant::Environment;
use ocpay_core::payment::Payment;
use ocpay_core::sandbox::MagicAmount;
use ocpay_protocol::api::header;
use ocpay_protocol::signature::content_to_sign;
use ocpay_store::{
    ANSWER_EXCERPT_CHARS, AfterAttempt, Attempt, AttemptOutcome, Notification, NotificationEvent,
    NotificationKind, PaymentLookup, RefundLookup, RegistrationLookup, StoreError,
};
use tokio::sync::{Semaphore, watch};

use crate::combine::Combiner;
use crate::data_dir::PlatformKeySource;
use crate::rounds::Rounds;
use crate::service::Context;
use crate::settings::NotifySettings;
use crate::{urls, wire};

/// Header carrying a notification's stable id, so receivers can deduplicate retries.
pub const NOTIFY_ID_HEADER: &str = "notify-id";

/// The HTTP clients notifications go out with, one per environment, each resolving names
/// through a filter of the addresses its participants may reach.
pub struct Clients {
    live: reqwest::Client,
    sandbox: reqwest::Client,
}

impl Clients {
    pub fn new(settings: &NotifySettings) -> anyhow::Result<Clients> {
        let timeout = settings.timeout;
        let client = |environment| {
            reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .connect_timeout(timeout)
                .dns_resolver(Filtered(settings.reach(environment)))
                .build()
        };
        Ok(Clients { live: client(Environment::Live)?, sandbox: client(Environment::Sandbox)? })
    }
}

/// A resolver that drops the addresses a participant may not reach, so a name cannot smuggle
/// a request inside.
struct Filtered(urls::Reach);

impl reqwest::dns::Resolve for Filtered {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let reach = self.0;
        Box::pin(async move {
            let allowed: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| reach.allows(address.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves only to private addresses").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Refuses a name that resolves to one of the platform's own listeners. Only names on the port
/// of a listener can, so only those are looked up here (the filter of [`Filtered`] applies
/// to every name as it is connected to).
async fn check_not_own(notifier: &Notifier, url: &url::Url) -> Result<(), String> {
    let (Some(url::Host::Domain(host)), Some(port)) = (url.host(), url.port_or_known_default()) else {
        return Ok(());
    };
    let own = &notifier.context.settings.notify.own_listeners;
    if !own.on_port(port) {
        return Ok(());
    }
    let addresses =
        tokio::net::lookup_host((host, port)).await.map_err(|error| format!("{host}: {error}"))?;
    for address in addresses {
        if own.reached_at(address) {
            return Err(format!("refused: {host} resolves to this platform's own address {address}"));
        }
    }
    Ok(())
}

/// What the notifier runs with: the use cases' context (store, clock, settings and the wake
/// handle it waits on), the platform keys it signs with, its HTTP clients and its round counter.
/// The application shares it with the test notification (`service::test_notification`), which
/// posts the same way.
pub struct Notifier {
    context: Arc<Context>,
    platform_keys: Arc<PlatformKeySource>,
    clients: Clients,
    rounds: Arc<Rounds>,
    /// The claims of the attempts in flight: each notification's id and the end of the lease
    /// it was claimed for, released when a shutdown cuts the attempts off.
    in_flight: std::sync::Mutex<std::collections::HashMap<String, jiff::Timestamp>>,
    /// The attempts being recorded: those that end while a transaction records others are
    /// recorded together in the next one.
    recorder: Combiner<(Attempt, AfterAttempt), Result<(), StoreError>>,
}

impl Notifier {
    /// Builds the HTTP clients of the configured notify settings.
    pub(crate) fn new(
        context: Arc<Context>,
        platform_keys: Arc<PlatformKeySource>,
        rounds: Arc<Rounds>,
    ) -> anyhow::Result<Notifier> {
        let clients = Clients::new(&context.settings.notify)?;
        Ok(Notifier {
            context,
            platform_keys,
            clients,
            rounds,
            in_flight: Default::default(),
            recorder: Default::default(),
        })
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, jiff::Timestamp>> {
        self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Releases the claims of the attempts still in flight, once they have been stopped (a
    /// shutdown's grace ended), so that their notifications are due again at once, on this
    /// server's next start or on another server sharing the database, instead of after the
    /// lease. Returns how many were released.
    pub(crate) async fn release_claims_in_flight(&self) -> Result<u64, StoreError> {
        let claims: Vec<_> = self.in_flight().drain().collect();
        if claims.is_empty() {
            return Ok(0);
        }
        self.context.store.release_notification_claims(&claims).await
    }

    /// The use cases' context it runs with.
    pub(crate) fn context(&self) -> &Context {
        &self.context
    }
}

/// Runs the notifier until `stop` turns true, then waits for the attempts in flight (each
/// bounded by its timeout), so that every attempt made is recorded.
pub(crate) async fn run(notifier: Arc<Notifier>, stop: watch::Receiver<bool>) {
    let mut in_flight = tokio::task::JoinSet::new();
    claim_and_send(&notifier, stop, &mut in_flight).await;
    while in_flight.join_next().await.is_some() {}
}

async fn claim_and_send(
    notifier: &Arc<Notifier>,
    mut stop: watch::Receiver<bool>,
    in_flight: &mut tokio::task::JoinSet<()>,
) {
    let settings = &notifier.context.settings.notify;
    let senders = Arc::new(Semaphore::new(settings.concurrency_max));
    let (poll, lease) = (settings.poll, settings.claim_lease);
    let batch = settings.batch_max as usize;
    let mut backlog = false;
    while !*stop.borrow() {
        // Claim only what can be sent at once, so no claimed row waits for a sender while its
        // lease runs: a lease is always longer than one attempt's timeout. In a backlog (the
        // last claim was full) wait for a quarter of the senders: a claim and its batch read
        // then serve several notifications, not the one whose sender has just finished.
        let wanted = if backlog { (settings.concurrency_max / 4).min(batch).max(1) } else { 1 };
        let Ok(mut taken) = senders.clone().acquire_many_owned(wanted as u32).await else { return };
        let mut permits = Vec::with_capacity(batch);
        permits.extend(std::iter::from_fn(|| taken.split(1)));
        while permits.len() < batch {
            let Ok(permit) = senders.clone().try_acquire_owned() else { break };
            permits.push(permit);
        }
        let limit = permits.len() as u32;
        let now = notifier.context.clock.now();
        let claimed = notifier.context.store.claim_notifications(now, lease, limit).await;
        let full_batch = match claimed {
            Ok(due) => {
                let n_due = due.len() as u32;
                // The end the store gave each claim: what releasing it names.
                let until = now.checked_add(lease).unwrap_or(now);
                let payments = payments_of(notifier, &due).await;
                for ((notification, payment), permit) in due.into_iter().zip(payments).zip(permits) {
                    let notifier = notifier.clone();
                    notifier.in_flight().insert(notification.id.clone(), until);
                    in_flight.spawn(async move {
                        let id = notification.id.clone();
                        deliver(&notifier, notification, payment).await;
                        notifier.in_flight().remove(&id);
                        drop(permit);
                    });
                }
                // Forget the finished ones as we go.
                while in_flight.try_join_next().is_some() {}
                n_due >= limit
            }
            Err(error) => {
                tracing::error!(%error, "claiming notifications failed");
                false
            }
        };
        backlog = full_batch;
        if full_batch {
            continue;
        }
        if in_flight.is_empty() {
            notifier.rounds.notifier.finished();
        }
        if !crate::jobs::idle(&mut stop, poll, Some(&notifier.context.notify_wake.0)).await {
            return;
        }
    }
}

/// The payments of a claimed batch's payment results, read in one snapshot (a read
/// transaction each cost a sixth of a notification's CPU, mostly in starting cold after the
/// writes between them): for each notification, its payment, or `None` where it is not a
/// payment result, the payment is gone or the read failed; its sender then reads it alone.
async fn payments_of(notifier: &Notifier, due: &[Notification]) -> Vec<Option<Payment>> {
    let mut payments: Vec<Option<Payment>> = due.iter().map(|_| None).collect();
    let (positions, wanted): (Vec<usize>, Vec<(ClientId, PaymentId)>) = due
        .iter()
        .enumerate()
        .filter(|(_, notification)| notification.kind == NotificationKind::PaymentResult)
        .filter_map(|(position, notification)| {
            let id = PaymentId::parse(&notification.subject_id).ok()?;
            Some((position, (notification.recipient.clone(), id)))
        })
        .unzip();
    if wanted.is_empty() {
        return payments;
    }
    match notifier.context.store.payments_by_id(&wanted).await {
        Ok(found) => {
            for (position, payment) in positions.into_iter().zip(found) {
                payments[position] = payment;
            }
        }
        Err(error) => tracing::warn!(%error, "reading a claimed batch's payments failed; each is read alone"),
    }
    payments
}

/// One attempt at one notification, recorded with what follows it. A payment result's
/// `payment`, when the batch read found it, saves the sender reading it.
pub(crate) async fn deliver(notifier: &Notifier, notification: Notification, payment: Option<Payment>) {
    let started_at = notifier.context.clock.now();
    let scheduled_at = notification.next_attempt_at.unwrap_or(started_at);
    let number = notification.attempts + 1;
    let timer = Instant::now();
    let (outcome, http_status, error, answer) = match send(notifier, &notification, payment).await {
        Ok(answer) => answer,
        Err(error) => (AttemptOutcome::Error, None, Some(error), None),
    };
    let after = match outcome {
        AttemptOutcome::Delivered => AfterAttempt::Delivered,
        _ => notifier
            .context
            .settings
            .notify
            .schedule
            .next_after(number, scheduled_at)
            .map_or(AfterAttempt::GiveUp, AfterAttempt::RetryAt),
    };
    metrics::counter!("ocpay_notification_deliveries_total", "outcome" => outcome.as_str()).increment(1);
    if outcome != AttemptOutcome::Delivered {
        tracing::info!(notification = %notification.id, attempt = number, ?after, error = error.as_deref().unwrap_or(""), "notification not delivered");
    }
    let attempt = Attempt {
        notification_id: notification.id.clone(),
        number,
        scheduled_at,
        started_at,
        duration_ms: i64::try_from(timer.elapsed().as_millis()).unwrap_or(i64::MAX),
        http_status,
        outcome,
        error,
        manual: notification.manual,
        answer,
    };
    let store = &notifier.context.store;
    let recorded = notifier
        .recorder
        .call((attempt, after), |attempts| async move {
            match store.record_attempts(&attempts).await {
                Ok(answers) => answers,
                Err(error) => vec![Err(error); attempts.len()],
            }
        })
        .await
        .unwrap_or_else(|| Err(StoreError::Database("recording the attempt was cut off".into())));
    match recorded {
        Ok(()) => {}
        // Another sender recorded this attempt number first (this one had lost its claim).
        Err(StoreError::Conflict(_)) => {
            tracing::warn!(notification = %notification.id, number, "a delivery attempt was recorded by another sender");
        }
        // The claim lapses and the notification is sent again: at least once, never lost.
        Err(error) => {
            tracing::error!(%error, notification = %notification.id, "recording a delivery attempt failed");
        }
    }
}

/// How an attempt went: its outcome, the HTTP status, why it was not delivered, and the start
/// of the receiver's answer.
type Answer = (AttemptOutcome, Option<u16>, Option<String>, Option<String>);

/// The start of an answer as text, for the attempt's record: what the receiver said, at most
/// [`ANSWER_EXCERPT_CHARS`] characters.
fn excerpt(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(ANSWER_EXCERPT_CHARS).collect())
}

async fn send(
    notifier: &Notifier,
    notification: &Notification,
    payment: Option<Payment>,
) -> Result<Answer, String> {
    let recipient = &notification.recipient;
    let environment = Environment::of_client_id(recipient);
    let (body, ignore_ack) = match notification.kind {
        NotificationKind::PaymentResult => {
            let payment = match payment {
                Some(payment) => payment,
                None => {
                    let id = PaymentId::parse(&notification.subject_id).map_err(|error| error.to_string())?;
                    notifier
                        .context
                        .store
                        .payment(recipient, &PaymentLookup::ById(id))
                        .await
                        .map_err(|error| error.to_string())?
                        .ok_or("the payment no longer exists")?
                }
            };
            // Sandbox magic amount 9904 holds back the first attempt of the success notification
            // only.
            let ignore_ack = notification.event == NotificationEvent::Paid
                && notification.attempts == 0
                && MagicAmount::of(environment, payment.terms.amount)
                    == Some(MagicAmount::FirstNotificationNotCounted);
            (serde_json::to_vec(&wire::payment_notification(&payment, notification)), ignore_ack)
        }
        NotificationKind::RefundResult => {
            let refund_id = RefundId::parse(&notification.subject_id).map_err(|error| error.to_string())?;
            let refund = notifier
                .context
                .store
                .refund(recipient, &RefundLookup::ById(refund_id))
                .await
                .map_err(|error| error.to_string())?
                .ok_or("the refund no longer exists")?;
            (serde_json::to_vec(&wire::refund_notification(&refund)), false)
        }
        NotificationKind::AgentAuthorization => {
            let token = notification.secret.as_ref().ok_or("the token is no longer held")?.expose();
            let grants = notifier.context.store.grants(recipient).await.map_err(|error| error.to_string())?;
            let grant = grants
                .iter()
                .find(|grant| grant.id == notification.subject_id)
                .ok_or("the grant no longer exists")?;
            (serde_json::to_vec(&wire::authorization_notification(grant, token)), false)
        }
        NotificationKind::RegistrationStatus => {
            let id = RegistrationId::parse(&notification.subject_id).map_err(|error| error.to_string())?;
            let registration = notifier
                .context
                .store
                .registration(recipient, &RegistrationLookup::ById(id))
                .await
                .map_err(|error| error.to_string())?
                .ok_or("the registration no longer exists")?;
            (serde_json::to_vec(&wire::registration_notification(&registration)), false)
        }
    };
    let body = body.map_err(|error| error.to_string())?;
    let Reply { status, acknowledged, answer } =
        post(notifier, recipient, &notification.id, &notification.url, body).await?;
    if status != 200 {
        return Ok((AttemptOutcome::Rejected, Some(status), Some(format!("HTTP {status}")), answer));
    }
    if !acknowledged {
        return Ok((
            AttemptOutcome::Rejected,
            Some(status),
            Some("the answer is not a success acknowledgement".into()),
            answer,
        ));
    }
    if ignore_ack {
        let reason = "sandbox magic amount 9904: the first attempt's acknowledgement is not counted";
        return Ok((AttemptOutcome::Rejected, Some(status), Some(reason.into()), answer));
    }
    Ok((AttemptOutcome::Delivered, Some(status), None, answer))
}

/// What a receiver answered to one signed post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Whether it is the success acknowledgement: HTTP 200 with `result.resultStatus = "S"`.
    pub acknowledged: bool,
    /// The start of the answer, at most [`ANSWER_EXCERPT_CHARS`] characters.
    pub answer: Option<String>,
}

/// Signs `body` for `recipient` with the platform key and posts it to `url`, as every
/// notification goes out: the URL checked for the recipient's environment (and not to be the
/// platform itself), the client of that environment (its resolver's filter, its timeout), the
/// signature, `Client-Id`, `Request-Time` and [`NOTIFY_ID_HEADER`] headers, and at most
/// `response_bytes_max` of the answer read. An error says why nothing was answered.
pub(crate) async fn post(
    notifier: &Notifier,
    recipient: &ClientId,
    notify_id: &str,
    url: &str,
    body: Vec<u8>,
) -> Result<Reply, String> {
    let environment = Environment::of_client_id(recipient);
    let url = urls::HttpUrl::parse(url)
        .and_then(|url| notifier.context.settings.notify.check_url(environment, &url).map(|()| url))
        .map_err(|reason| format!("refused: the notify URL {reason}"))?;
    let url = url.url();
    check_not_own(notifier, url).await?;
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let request_time = notifier.context.clock.now().as_millisecond().to_string();
    let content = content_to_sign("POST", &path, recipient.as_str(), &request_time, &body);
    let (key_version, platform_key) = notifier.platform_keys.signer();
    let signature = platform_key.sign_header(key_version, &content).map_err(|error| error.to_string())?;
    let client = match environment {
        Environment::Live => &notifier.clients.live,
        Environment::Sandbox => &notifier.clients.sandbox,
    };
    let response = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, header::CONTENT_TYPE_JSON)
        .header(header::CLIENT_ID, recipient.as_str())
        .header(header::REQUEST_TIME, &request_time)
        .header(header::SIGNATURE, signature)
        .header(NOTIFY_ID_HEADER, notify_id)
        .body(body)
        .send()
        .await
        .map_err(|error| error_chain(&error))?;
    let status = response.status().as_u16();
    let answer = read_limited(response, notifier.context.settings.notify.response_bytes_max).await?;
    Ok(Reply { status, acknowledged: status == 200 && acknowledges(&answer), answer: excerpt(&answer) })
}

/// Reads at most `bytes_max` of an answer; a longer one is not an acknowledgement.
async fn read_limited(mut response: reqwest::Response, bytes_max: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| error_chain(&error))? {
        if body.len() + chunk.len() > bytes_max {
            return Err(format!("the answer is longer than {bytes_max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether an answer is the success acknowledgement: `result.resultStatus` is `S`.
fn acknowledges(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Ack {
        result: ocpay_protocol::AmsResult,
    }
    serde_json::from_slice::<Ack>(body).is_ok_and(|ack| ack.result.is_success())
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements() {
        assert!(acknowledges(ocpay_protocol::payments::NOTIFICATION_ACK.as_bytes()));
        assert!(!acknowledges(br#"{"result":{"resultCode":"UNKNOWN_EXCEPTION","resultStatus":"U"}}"#));
        assert!(!acknowledges(b"OK"));
        assert!(!acknowledges(b""));
    }
}
