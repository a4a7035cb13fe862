//! A merchant's notification endpoint for tests: records every delivery and answers as the
//! test scripts, but refuses (HTTP 401, as a careful merchant would) any delivery whose
//! signature does not verify with the platform key, so that a notification counts as
//! delivered only when it was signed right.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ocpay_protocol::VerifyingKey;
use ocpay_protocol::payments::PaymentNotification;
use ocpay_sdk::webhook::{self, Delivery};
use tokio::sync::Notify;

/// How the receiver answers a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// HTTP 200 with the success acknowledgement.
    Ack,
    /// This HTTP status, with an empty body.
    Status(u16),
    /// HTTP 200 with this body (not an acknowledgement unless it says `S`).
    Body(String),
    /// No answer before the platform's timeout.
    Hang,
}

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub notify_id: String,
    pub client_id: String,
    pub request_time: String,
    /// The `signature` header as received.
    pub signature: String,
    pub body: String,
    /// Whether the signature verified with the platform's public key.
    pub verified: bool,
    pub notification: Option<PaymentNotification>,
    /// How the receiver answered: `Status(401)` for a delivery that did not verify.
    pub reply: Reply,
    /// When it arrived, on the real clock.
    pub arrived_at: std::time::Instant,
}

struct Shared {
    platform_key: VerifyingKey,
    received: Mutex<Vec<Received>>,
    scripted: Mutex<VecDeque<Reply>>,
    otherwise: Mutex<Reply>,
    arrived: Notify,
}

/// A running receiver; its URL goes into a merchant's notify URL.
pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Starts a receiver that acknowledges everything until told otherwise.
    pub async fn start(platform_key: VerifyingKey) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let url = format!("http://{}/merchant/notify", listener.local_addr().expect("an address"));
        let shared = Arc::new(Shared {
            platform_key,
            received: Mutex::new(Vec::new()),
            scripted: Mutex::new(VecDeque::new()),
            otherwise: Mutex::new(Reply::Ack),
            arrived: Notify::new(),
        });
        let app = Router::new().fallback(receive).with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, shared }
    }

    /// Answers every delivery after the scripted ones this way.
    pub fn reply_always(&self, reply: Reply) {
        *self.shared.otherwise.lock().expect("lock") = reply;
    }

    /// Answers the next deliveries this way, in order.
    pub fn reply_next(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.scripted.lock().expect("lock").extend(replies);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }

    /// Waits (up to ten seconds) until at least `n` deliveries arrived, and returns them all,
    /// each of them checked to be signed by the platform.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let arrived = self.shared.arrived.notified();
            let received = self.received();
            if let Some(forged) = received.iter().find(|delivery| !delivery.verified) {
                panic!("a delivery's signature does not verify with the platform key: {forged:#?}");
            }
            if received.len() >= n {
                return received;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("expected {n} deliveries, got {}: {received:#?}", self.received().len());
            }
        }
    }
}

async fn receive(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let header =
        |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
    let (client_id, request_time, signature) =
        (header("client-id"), header("request-time"), header("signature"));
    let path = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |path| path.as_str().to_owned());
    let delivery = Delivery {
        path: &path,
        client_id: &client_id,
        request_time: &request_time,
        signature: &signature,
        body: &body,
    };
    let verified = webhook::verify(&shared.platform_key, &delivery).is_ok();
    let reply = if verified {
        let next = shared.scripted.lock().expect("lock").pop_front();
        next.unwrap_or_else(|| shared.otherwise.lock().expect("lock").clone())
    } else {
        Reply::Status(StatusCode::UNAUTHORIZED.as_u16())
    };
    shared.received.lock().expect("lock").push(Received {
        path,
        notify_id: header("notify-id"),
        client_id,
        request_time,
        signature,
        body: String::from_utf8_lossy(&body).into_owned(),
        verified,
        notification: serde_json::from_slice(&body).ok(),
        reply: reply.clone(),
        arrived_at: std::time::Instant::now(),
    });
    shared.arrived.notify_waiters();
    match reply {
        Reply::Ack => (StatusCode::OK, webhook::ACK).into_response(),
        Reply::Status(status) => {
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }
        Reply::Body(text) => (StatusCode::OK, text).into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}
