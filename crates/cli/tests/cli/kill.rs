//! Servers killed with SIGKILL again and again in the middle of a mixed load, and started again
//! on the same files and port: pays, wallet pays, cancels of paid and unpaid payments,
//! synchronous and asynchronous refunds (the sandbox's failing one among them), an acquirer's
//! registrations, and settlement runs (themselves killed now and then). Afterwards every write
//! a client saw acknowledged is there exactly once, as it was acknowledged; a write that got no
//! answer may or may not be there, but if it is, it is whole and consistent (refunds never
//! exceed what was paid); every notification was delivered; the ledger balances and `ocpay
//! reconcile` passes for the days settled. The embedded SQLite store is killed here; the nodes
//! of a PostgreSQL cluster in `cluster`, which shares the load and the checks.
//!
//! The CI runs a few kills; `OCPAY_KILLS=50` (or `scripts/kill-loop`) runs the full loop, and
//! `OCPAY_KILL_SEED` plays a run's kills again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ocpay_core::ids::ClientId;
use ocpay_core::ledger::AccountOwner;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_protocol::model::Amount;
use ocpay_protocol::payments::{
    CancelRequest, InquiryPaymentRequest, PayRequest, PayResponse, TRANSACTION_REFUND,
};
use ocpay_protocol::refunds::{InquiryRefundRequest, RefundRequest};
use ocpay_protocol::registrations::{InquiryRegistrationStatusRequest, RegistrationRequest};
use ocpay_protocol::{AmsResult, ResultStatus, SigningKey, VerifyingKey};
use ocpay_sdk::Client;
use ocpay_server::config::Config;
use ocpay_server::data_dir::DataDir;
use ocpay_server::service::participants::{self, NewParticipant};
use ocpay_server::settings::Settings;
use ocpay_store::Store;
use ocpay_store::sqlite::SqliteSettings;
use ocpay_testkit::{Receiver, pay_request, registration_request};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{OCPAY, wait_healthy};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The settings file every node of a test reads, beside its data directory.
pub(crate) fn settings_file(data: &Path) -> PathBuf {
    data.with_file_name("ocpay.toml")
}

/// One `ocpay serve` process. Dropping it kills the process.
pub(crate) struct Node {
    child: Child,
    pub(crate) url: String,
    pub(crate) port: u16,
    /// From its start until it answered its health check.
    pub(crate) started_in: Duration,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// Starts a node on the data directory, and on the PostgreSQL database when there is one
    /// (SQLite in the data directory otherwise), on a free port, or on `port` (a restart where
    /// the clients expect it).
    pub(crate) fn start(data: &Path, database_url: Option<&str>, port: Option<u16>) -> Node {
        let port = port.unwrap_or_else(free_port);
        let address = format!("127.0.0.1:{port}");
        // A dead node's claimed notifications come back to the pool after the lease; a failed
        // attempt is tried again a second later. Asynchronous refunds complete, and the
        // sandbox decides registrations, a second after they were asked for.
        let settings = settings_file(data);
        std::fs::write(
            &settings,
            "notify_timeout_ms = 2000\nnotify_claim_lease_ms = 3000\nnotify_poll_interval_ms = 50\n\
             timers_poll_interval_ms = 50\nnotify_retry_intervals_seconds = [1, 1, 1, 1, 1, 1, 1]\n\
             refund_async_delay_seconds = 1\nsandbox_registration_review_seconds = 1\n",
        )
        .unwrap();
        let mut command = Command::new(OCPAY);
        command
            .args(["serve", "--data-dir", data.to_str().unwrap(), "--listen", &address])
            .args(["--config", settings.to_str().unwrap()]);
        if let Some(database_url) = database_url {
            command.args(["--database-url", database_url]);
        }
        let started = Instant::now();
        let child = command
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ocpay serve starts");
        wait_healthy(&address);
        Node { child, url: format!("http://{address}"), port, started_in: started.elapsed() }
    }

    /// Kills the process as a crash would: SIGKILL, no shutdown of any kind.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the node");
        self.child.wait().expect("the node is gone");
    }
}

/// A sandbox participant of `kind`, created in the platform's store, whose notifications go to
/// `notify_url`; a client of it for each server. The clients try once: the load decides when
/// to try again.
pub(crate) async fn participant(
    store: &dyn Store,
    kind: ParticipantKind,
    notify_url: Option<&str>,
    platform_key: &VerifyingKey,
    urls: &[String],
) -> Vec<Client> {
    let key = SigningKey::generate().unwrap();
    let new = NewParticipant {
        kind,
        environment: Environment::Sandbox,
        name: "Load participant".parse().expect("a name"),
        public_key: key.verifying_key(),
        notify_url: notify_url.map(|url| url.parse().expect("a notify URL")),
    };
    let settings = Settings::resolve(&Config::default()).unwrap();
    let created = participants::create(store, &settings.notify, jiff::Timestamp::now(), new).await.unwrap();
    urls.iter()
        .map(|url| {
            Client::builder(url, created.client_id.as_str(), key.clone(), platform_key.clone())
                .attempts_max(1)
                .build()
                .unwrap()
        })
        .collect()
}

/// A sandbox merchant: see [`participant`].
pub(crate) async fn merchant(
    store: &dyn Store,
    notify_url: Option<&str>,
    platform_key: &VerifyingKey,
    urls: &[String],
) -> Vec<Client> {
    participant(store, ParticipantKind::Merchant, notify_url, platform_key, urls).await
}

/// Pays an order code through a server's wallet API; the HTTP status (0 without an answer) and
/// the answer.
pub(crate) async fn wallet_pay(url: &str, payment: &PayResponse, payer: &str) -> (u16, Value) {
    let code = payment.order_code_form.as_ref().and_then(|form| form.text_code()).expect("a code");
    let token = code.rsplit('/').next().unwrap();
    let url = format!("{url}/wallet/api/codes/{token}/pay");
    let response = reqwest::Client::new().post(url).json(&json!({ "payerId": payer })).send().await;
    match response {
        Ok(response) => (response.status().as_u16(), response.json().await.unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}

pub(crate) fn refund_request(payment: &PayResponse, request_id: &str, minor: i64) -> RefundRequest {
    RefundRequest {
        refund_request_id: Some(request_id.into()),
        payment_id: payment.payment_id.clone(),
        refund_amount: Some(Amount::new("USD", minor)),
        ..RefundRequest::default()
    }
}

/// The servers a load runs against, a client of the merchant (and of the acquirer, for the
/// registrations) at each, and which are up.
pub(crate) struct Servers {
    pub(crate) clients: Vec<Client>,
    pub(crate) acquirers: Vec<Client>,
    pub(crate) urls: Vec<String>,
    /// Where the load asks refunds and registrations to be notified.
    notify_url: Option<String>,
    /// A server known to be down is not tried; one killed without notice is tried, and fails.
    up: Mutex<Vec<bool>>,
    /// Tries that were sent and got no answer (or `U`): the kills that landed mid-write.
    lost: AtomicUsize,
}

impl Servers {
    pub(crate) fn new(clients: Vec<Client>, urls: Vec<String>) -> Arc<Servers> {
        Servers::with_acquirer(clients, vec![], urls, None)
    }

    /// Servers where an acquirer registers too, and refunds and registrations are notified at
    /// `notify_url`.
    pub(crate) fn with_acquirer(
        clients: Vec<Client>,
        acquirers: Vec<Client>,
        urls: Vec<String>,
        notify_url: Option<String>,
    ) -> Arc<Servers> {
        let up = Mutex::new(vec![true; urls.len()]);
        Arc::new(Servers { clients, acquirers, urls, notify_url, up, lost: AtomicUsize::new(0) })
    }

    /// How many tries were sent and got no answer, so that a test can tell that its kills
    /// landed while writes were in flight.
    pub(crate) fn lost(&self) -> usize {
        self.lost.load(Ordering::SeqCst)
    }

    pub(crate) fn set_up(&self, server: usize, up: bool) {
        self.up.lock().unwrap()[server] = up;
    }

    /// The servers up, in turn from `first`.
    fn live(&self, first: usize) -> Vec<usize> {
        let up = self.up.lock().unwrap().clone();
        (first..first + up.len()).map(|i| i % up.len()).filter(|&i| up[i]).collect()
    }
}

/// How one write ended for its client, over all its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Acknowledged, with the id of what it wrote.
    Acknowledged(String),
    /// Refused: the result code.
    Refused(String),
    /// No attempt got an answer: it may or may not have been written.
    Unanswered,
}

/// What the load does with an order, chosen by the order's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mix {
    /// Paid from the wallet, then three refunds of two fifths at once: two fit.
    Refunds,
    /// Paid, then a synchronous and two asynchronous refunds of two fifths at once.
    AsyncRefunds,
    /// Paid (USD 200 and more), then the sandbox's refund that fails later (`9902`) beside
    /// a synchronous and an asynchronous refund of two fifths.
    FailingRefund,
    /// Cancelled before anyone paid it.
    CancelUnpaid,
    /// Paid from the wallet, then cancelled: reversed.
    CancelPaid,
}

/// Every kind of order, in turn.
pub(crate) const MIXED: &[Mix] =
    &[Mix::Refunds, Mix::AsyncRefunds, Mix::CancelUnpaid, Mix::FailingRefund, Mix::CancelPaid];

/// A refund the load asked for.
#[derive(Debug)]
pub(crate) struct RefundRecord {
    request_id: String,
    amount: i64,
    /// Asked to complete later (`isAsyncRefund`, or the sandbox's failing amount).
    later: bool,
    /// The status it must end in once acknowledged: `SUCCESS`, or `FAIL` for `9902`.
    outcome: &'static str,
    answer: Answer,
}

/// An order of the load: its pay, the payer's wallet pay, its cancel and the refunds asked for.
#[derive(Debug)]
pub(crate) struct OrderRecord {
    request_id: String,
    amount: i64,
    mix: Mix,
    pay: Answer,
    /// When the pay answered with a code to pay.
    pub(crate) wallet: Option<Answer>,
    cancel: Option<Answer>,
    refunds: Vec<RefundRecord>,
}

/// Whether an order tries each write again until some server answers, with the same
/// idempotency key (so that a retry meets what an unanswered try wrote), or tries it once.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Retry {
    Always,
    /// Every other order; the others keep their unanswered writes.
    HalfTheOrders,
}

/// A write of the load.
enum Write<'a> {
    Pay(&'a PayRequest),
    /// The payer pays the code of this payment from the wallet.
    WalletPay(&'a PayResponse),
    Refund(&'a RefundRequest),
    Cancel(&'a CancelRequest),
    Register(&'a RegistrationRequest),
}

/// Sends a write to one server: how it ended, and the pay's response (with the code to pay);
/// `None` when the server did not answer or the outcome is unknown (`U`).
async fn send(servers: &Servers, server: usize, write: &Write<'_>) -> Option<(Answer, Option<PayResponse>)> {
    let client = &servers.clients[server];
    match write {
        Write::Pay(request) => {
            let payment = client.pay(request).await.ok()?;
            Some((answer(&payment.result, payment.payment_id.as_ref())?, Some(payment)))
        }
        Write::WalletPay(payment) => {
            let (status, body) = wallet_pay(&servers.urls[server], payment, "load-payer").await;
            let error = body["error"].as_str().unwrap_or_default().to_owned();
            let answer = match status {
                200 => Answer::Acknowledged(body["paymentId"].as_str().unwrap_or_default().to_owned()),
                // The payer's own try that got no answer paid it: only this payer pays this code.
                409 if error == "ALREADY_PAID" => Answer::Acknowledged(payment.payment_id.clone()?),
                0 | 500.. => return None,
                _ => Answer::Refused(error),
            };
            Some((answer, None))
        }
        Write::Refund(request) => {
            let refund = client.refund(request).await.ok()?;
            // Accepted, to complete later: acknowledged as processing, with its id.
            if refund.result.result_code == "REFUND_IN_PROCESS" {
                return Some((Answer::Acknowledged(refund.refund_id?), None));
            }
            Some((answer(&refund.result, refund.refund_id.as_ref())?, None))
        }
        Write::Cancel(request) => {
            let cancelled = client.cancel(request).await.ok()?;
            Some((answer(&cancelled.result, cancelled.payment_id.as_ref())?, None))
        }
        Write::Register(request) => {
            let registered = servers.acquirers[server].register(request).await.ok()?;
            Some((answer(&registered.result, request.registration_request_id.as_ref())?, None))
        }
    }
}

/// An API result as the load records it; `None` for an unknown outcome (`U`), as for no answer.
fn answer(result: &AmsResult, id: Option<&String>) -> Option<Answer> {
    match result.result_status {
        ResultStatus::S => Some(Answer::Acknowledged(id.cloned().unwrap_or_default())),
        ResultStatus::F => Some(Answer::Refused(result.result_code.clone())),
        ResultStatus::U => None,
    }
}

/// Sends a write to the servers up in turn from `first`, and, while `retry`, again every 50 ms
/// for at most 20 s, until one answers.
async fn attempt(
    servers: &Servers,
    first: usize,
    retry: bool,
    write: Write<'_>,
) -> (Answer, Option<PayResponse>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for server in servers.live(first) {
            if let Some(answered) = send(servers, server, &write).await {
                return answered;
            }
            servers.lost.fetch_add(1, Ordering::SeqCst);
            if !retry {
                return (Answer::Unanswered, None);
            }
        }
        if !retry || Instant::now() > deadline {
            return (Answer::Unanswered, None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs an order as its mix says; records how each write ended.
async fn run_order(servers: &Servers, n: usize, request_id: String, retry: bool, mix: Mix) -> OrderRecord {
    let step = 10 * i64::try_from(n % 10).unwrap();
    let amount = if mix == Mix::FailingRefund { 20_000 + step } else { 1_000 + step };
    let request = pay_request(&request_id, "USD", amount);
    let (pay, payment) = attempt(servers, n, retry, Write::Pay(&request)).await;
    let mut order = OrderRecord { request_id, amount, mix, pay, wallet: None, cancel: None, refunds: vec![] };
    let Some(payment) = payment.filter(|_| matches!(order.pay, Answer::Acknowledged(_))) else {
        return order;
    };
    let cancel = CancelRequest { payment_id: payment.payment_id.clone(), payment_request_id: None };
    if mix == Mix::CancelUnpaid {
        order.cancel = Some(attempt(servers, n + 1, retry, Write::Cancel(&cancel)).await.0);
        return order;
    }
    let (wallet, _) = attempt(servers, n + 1, retry, Write::WalletPay(&payment)).await;
    order.wallet = Some(wallet.clone());
    if matches!(wallet, Answer::Refused(_)) {
        return order;
    }
    if mix == Mix::CancelPaid {
        order.cancel = Some(attempt(servers, n, retry, Write::Cancel(&cancel)).await.0);
        return order;
    }
    // Refunds after an unanswered wallet pay too: the payment may be paid or not.
    let refund = |k: usize, amount: i64, later: bool, outcome: &'static str| RefundRecord {
        request_id: format!("{}-R{k}", order.request_id),
        amount,
        later,
        outcome,
        answer: Answer::Unanswered,
    };
    let share = amount * 2 / 5;
    let mut refunds = match mix {
        Mix::AsyncRefunds => [
            refund(0, share, false, "SUCCESS"),
            refund(1, share, true, "SUCCESS"),
            refund(2, share, true, "SUCCESS"),
        ],
        Mix::FailingRefund => [
            refund(0, 9902, true, "FAIL"),
            refund(1, share, false, "SUCCESS"),
            refund(2, share, true, "SUCCESS"),
        ],
        _ => [
            refund(0, share, false, "SUCCESS"),
            refund(1, share, false, "SUCCESS"),
            refund(2, share, false, "SUCCESS"),
        ],
    };
    let requests = refunds.each_ref().map(|refund| RefundRequest {
        is_async_refund: (refund.later && refund.amount != 9902).then_some(true),
        refund_notify_url: servers.notify_url.clone(),
        ..refund_request(&payment, &refund.request_id, refund.amount)
    });
    let [first, second, third] = requests.each_ref().map(Write::Refund);
    let answers = tokio::join!(
        attempt(servers, n, retry, first),
        attempt(servers, n + 1, retry, second),
        attempt(servers, n + 2, retry, third)
    );
    for (refund, (answer, _)) in refunds.iter_mut().zip([answers.0, answers.1, answers.2]) {
        refund.answer = answer;
    }
    order.refunds = refunds.into();
    order
}

/// Starts `workers` workers that each run orders one after the other, `orders` at most, until
/// `stop` is set, each order of the kind `mix` gives it in turn; each worker's records.
pub(crate) fn load(
    servers: &Arc<Servers>,
    prefix: &str,
    (workers, orders): (usize, usize),
    (retry, mix): (Retry, &'static [Mix]),
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<Vec<OrderRecord>>> {
    (0..workers)
        .map(|worker| {
            let (servers, stop, prefix) = (servers.clone(), stop.clone(), prefix.to_owned());
            tokio::spawn(async move {
                let mut records = Vec::new();
                for n in 0..orders {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let retry = matches!(retry, Retry::Always) || (worker + n) % 2 == 0;
                    let request_id = format!("{prefix}-{worker}-{n}");
                    let mix = mix[(worker + n) % mix.len()];
                    records.push(run_order(&servers, worker + n, request_id, retry, mix).await);
                }
                records
            })
        })
        .collect()
}

/// Waits for a load's workers: all their records.
pub(crate) async fn records(workers: Vec<JoinHandle<Vec<OrderRecord>>>) -> Vec<OrderRecord> {
    let mut records = Vec::new();
    for worker in workers {
        records.extend(worker.await.unwrap());
    }
    records
}

/// A registration the acquirer asked for: its request id, whether the sandbox rejects it
/// (its merchant id starts with `REJECT`), and how it ended.
#[derive(Debug)]
pub(crate) struct RegistrationRecord {
    request_id: String,
    rejected: bool,
    answer: Answer,
}

/// The acquirer registers one secondary merchant's store after another until `stop`, each
/// tried again with its request id until a server answers; every third is one the sandbox
/// rejects.
pub(crate) fn registrations(
    servers: &Arc<Servers>,
    prefix: &str,
    stop: &Arc<AtomicBool>,
) -> JoinHandle<Vec<RegistrationRecord>> {
    let (servers, stop, prefix) = (servers.clone(), stop.clone(), prefix.to_owned());
    tokio::spawn(async move {
        let mut records = Vec::new();
        for n in 0.. {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let rejected = n % 3 == 0;
            let merchant = if rejected { format!("REJECT-{prefix}-{n}") } else { format!("SM-{prefix}-{n}") };
            let request_id = format!("{prefix}-REG-{n}");
            let mut request = registration_request(&request_id, &merchant, &format!("ST-{n}"));
            request.registration_notify_url = servers.notify_url.clone();
            let (answer, _) = attempt(&servers, n, true, Write::Register(&request)).await;
            records.push(RegistrationRecord { request_id, rejected, answer });
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        records
    })
}

/// What the inquiries found of a load's writes.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The payments that exist, and the refunds (of any status).
    stored: [i64; 2],
    /// What the merchant is owed: its paid payments less their successful refunds.
    owed: i64,
    /// The ids of the paid payments.
    pub(crate) paid: Vec<String>,
    /// The ids of the payments that were paid and then cancelled (notified as paid).
    pub(crate) reversed: Vec<String>,
    /// The ids of the refunds that exist, all completed by the time they are checked.
    pub(crate) refunds: Vec<String>,
    /// Writes acknowledged, refused and unanswered, for the messages.
    answers: [usize; 3],
    /// Writes acknowledged, by kind.
    pub(crate) acknowledged: BTreeMap<&'static str, usize>,
}

impl Found {
    fn count(&mut self, kind: &'static str, answer: &Answer) {
        self.answers[match answer {
            Answer::Acknowledged(_) => 0,
            Answer::Refused(_) => 1,
            Answer::Unanswered => 2,
        }] += 1;
        if matches!(answer, Answer::Acknowledged(_)) {
            *self.acknowledged.entry(kind).or_default() += 1;
        }
    }
}

/// The statuses a payment may have after its wallet pay and cancel ended as they did.
fn allowed_statuses(wallet: Option<&Answer>, cancel: Option<&Answer>) -> &'static [&'static str] {
    use Answer::{Acknowledged as A, Unanswered as U};
    match (wallet, cancel) {
        (_, Some(A(_))) => &["CANCELLED"],
        (Some(A(_)), Some(U)) => &["SUCCESS", "CANCELLED"],
        (Some(A(_)), _) => &["SUCCESS"],
        (Some(U), Some(U)) => &["SUCCESS", "PROCESSING", "CANCELLED"],
        (Some(U), _) => &["SUCCESS", "PROCESSING"],
        (_, Some(U)) => &["PROCESSING", "CANCELLED"],
        // Refused, or never sent: nobody paid the code, nobody cancelled it.
        _ => &["PROCESSING"],
    }
}

/// Inquires every order of the load and checks it against what its client saw: an
/// acknowledged write exactly once with its acknowledged ids, amounts and outcome, an
/// unanswered one absent or whole, never more refunded than paid. Refunds that complete later
/// must have completed.
pub(crate) async fn check_orders(client: &Client, orders: &[OrderRecord]) -> Found {
    let mut found = Found::default();
    for order in orders {
        let name = &order.request_id;
        found.count("pay", &order.pay);
        let request = InquiryPaymentRequest { payment_id: None, payment_request_id: Some(name.clone()) };
        let payment = client.inquire_payment(&request).await.expect("the inquiry answers");
        if payment.result.result_code == "ORDER_NOT_EXIST" {
            assert!(!matches!(order.pay, Answer::Acknowledged(_)), "the acknowledged pay {name} exists");
            continue;
        }
        assert_eq!(payment.result.result_status, ResultStatus::S, "{name}: {:?}", payment.result);
        found.stored[0] += 1;
        assert_eq!(payment.payment_request_id.as_ref(), Some(name));
        assert_eq!(payment.payment_amount, Some(Amount::new("USD", order.amount)), "{name}: its amount");
        let payment_id = payment.payment_id.clone().unwrap();
        match &order.pay {
            Answer::Acknowledged(acknowledged) => {
                assert_eq!(&payment_id, acknowledged, "{name}: the acknowledged payment");
            }
            Answer::Refused(code) => panic!("{name}: a pay refused with {code} was written"),
            Answer::Unanswered => {}
        }
        if let Some(wallet) = &order.wallet {
            found.count("wallet pay", wallet);
            if let Answer::Acknowledged(paid) = wallet {
                assert_eq!(paid, &payment_id, "{name}: the wallet paid this payment");
            }
        }
        if let Some(cancel) = &order.cancel {
            let kind = if order.mix == Mix::CancelPaid { "cancel (paid)" } else { "cancel (unpaid)" };
            found.count(kind, cancel);
        }
        let status = payment.payment_status.clone().unwrap_or_default();
        let allowed = allowed_statuses(order.wallet.as_ref(), order.cancel.as_ref());
        assert!(allowed.contains(&status.as_str()), "{name}: {status}, not one of {allowed:?} ({order:?})");
        let stored: Vec<_> = payment
            .transactions
            .iter()
            .filter(|transaction| transaction.transaction_type == TRANSACTION_REFUND)
            .collect();
        found.stored[1] += i64::try_from(stored.len()).unwrap();
        for transaction in &stored {
            let asked = order
                .refunds
                .iter()
                .find(|refund| transaction.transaction_request_id.as_ref() == Some(&refund.request_id));
            let asked = asked.unwrap_or_else(|| panic!("{name}: a refund nobody asked for: {transaction:?}"));
            let amount = Amount::new("USD", asked.amount);
            assert_eq!(transaction.transaction_amount, amount, "{name}: {transaction:?}");
            assert_ne!(transaction.transaction_status, "PROCESSING", "{name}: completed: {transaction:?}");
            found.refunds.push(transaction.transaction_id.clone());
        }
        let mut refunded = 0;
        for refund in &order.refunds {
            found.count(if refund.later { "refund (later)" } else { "refund" }, &refund.answer);
            let same = |transaction: &&&ocpay_protocol::payments::Transaction| {
                transaction.transaction_request_id.as_ref() == Some(&refund.request_id)
            };
            let mut copies = stored.iter().filter(same);
            let (copy, again) = (copies.next(), copies.next());
            assert!(again.is_none(), "refund {} is written once", refund.request_id);
            if copy.is_some_and(|copy| copy.transaction_status == "SUCCESS") {
                refunded += refund.amount;
            }
            match &refund.answer {
                Answer::Acknowledged(refund_id) => {
                    let copy = copy.unwrap_or_else(|| panic!("the acknowledged refund {refund_id} exists"));
                    let seen = (copy.transaction_id.as_str(), copy.transaction_status.as_str());
                    assert_eq!(seen, (refund_id.as_str(), refund.outcome), "{}", refund.request_id);
                    check_refund(client, refund, refund_id).await;
                }
                Answer::Refused(code) => {
                    let status = copy.map(|copy| copy.transaction_status.as_str());
                    assert_ne!(status, Some("SUCCESS"), "{}: refused with {code}", refund.request_id);
                }
                Answer::Unanswered => {}
            }
        }
        assert!(refunded <= order.amount, "{name}: {refunded} refunded of {} paid", order.amount);
        match status.as_str() {
            "SUCCESS" => {
                found.owed += order.amount - refunded;
                found.paid.push(payment_id);
            }
            "CANCELLED" => {
                assert_eq!(refunded, 0, "{name}: refunded though cancelled");
                if matches!(order.wallet, Some(Answer::Acknowledged(_))) {
                    found.reversed.push(payment_id);
                }
            }
            _ => assert_eq!(refunded, 0, "{name}: refunded though not paid"),
        }
    }
    found
}

/// `inquiryRefund` finds an acknowledged refund by its request id, as acknowledged.
async fn check_refund(client: &Client, refund: &RefundRecord, refund_id: &str) {
    let request =
        InquiryRefundRequest { refund_request_id: Some(refund.request_id.clone()), ..Default::default() };
    let found = client.inquire_refund(&request).await.expect("the refund inquiry answers");
    assert_eq!(
        (found.refund_id.as_deref(), found.refund_status.as_deref(), found.refund_amount),
        (Some(refund_id), Some(refund.outcome), Some(Amount::new("USD", refund.amount))),
        "{}",
        refund.request_id
    );
}

/// Inquires every registration of the acquirer: an acknowledged one exists, decided as the
/// sandbox decides it; a refused one does not exist; an unanswered one is absent or decided.
/// The registrations found, by request id.
pub(crate) async fn check_registrations(
    client: &Client,
    registrations: &[RegistrationRecord],
    found: &mut Found,
) -> Vec<String> {
    let mut stored = Vec::new();
    for registration in registrations {
        let name = &registration.request_id;
        found.count("registration", &registration.answer);
        let request = InquiryRegistrationStatusRequest {
            registration_request_id: Some(name.clone()),
            ..InquiryRegistrationStatusRequest::default()
        };
        let inquired = client.inquire_registration_status(&request).await.expect("the inquiry answers");
        if inquired.result.result_code == "RECORD_NOT_FOUND" {
            assert!(
                !matches!(registration.answer, Answer::Acknowledged(_)),
                "the acknowledged registration {name} exists"
            );
            continue;
        }
        assert_eq!(inquired.result.result_status, ResultStatus::S, "{name}: {:?}", inquired.result);
        if let Answer::Refused(code) = &registration.answer {
            panic!("{name}: a registration refused with {code} was written");
        }
        let status = inquired.registration_result.map(|result| result.registration_status);
        let decided = if registration.rejected { "REJECTED" } else { "APPROVED" };
        assert_eq!(status.as_deref(), Some(decided), "{name}");
        stored.push(name.clone());
    }
    stored
}

/// The number of payments and of refunds a merchant has in the database, SQLite or PostgreSQL.
pub(crate) const STORED_ROWS: [&str; 2] = [
    "SELECT COUNT(*) FROM payment WHERE owner_client_id = $1",
    "SELECT COUNT(*) FROM refund WHERE owner_client_id = $1",
];

/// The store agrees with the inquiries: the database holds the payments and refunds they found
/// and no other (`stored`, counted with `STORED_ROWS`), the merchant holds (pending and
/// settled) what its paid payments less their refunds come to, and the ledger balances.
pub(crate) async fn check_books(store: &dyn Store, merchant: &str, found: &Found, stored: [i64; 2]) {
    eprintln!("writes acknowledged, refused, unanswered: {:?}", found.answers);
    assert_eq!(stored, found.stored, "the payments and refunds in the database are the ones found");
    let merchant = ClientId::parse(merchant).unwrap();
    let mut held = 0;
    for owner in [AccountOwner::MerchantPending(merchant.clone()), AccountOwner::MerchantSettled(merchant)] {
        let balance = store.balances(&owner).await.unwrap();
        held += balance.iter().map(|money| money.minor()).sum::<i64>();
    }
    assert_eq!(held, found.owed, "the merchant holds what it is owed");
    let check = store.ledger_check().await.unwrap();
    assert!(check.is_sound(), "the ledger balances: {check:?}");
}

/// Where the checks read the database itself: SQLite's file or PostgreSQL's URL.
#[derive(Debug, Clone)]
pub(crate) enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    /// A count, with one text parameter or none.
    pub(crate) async fn count(&self, sql: &'static str, param: Option<String>) -> i64 {
        let database = self.clone();
        tokio::task::spawn_blocking(move || match database {
            Database::Sqlite(path) => {
                let connection = rusqlite::Connection::open(path).unwrap();
                connection.busy_timeout(Duration::from_secs(10)).unwrap();
                let params: Vec<&dyn rusqlite::ToSql> =
                    param.iter().map(|param| param as &dyn rusqlite::ToSql).collect();
                connection.query_row(sql, params.as_slice(), |row| row.get(0)).unwrap()
            }
            Database::Postgres(url) => {
                let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    param.iter().map(|param| param as &(dyn postgres::types::ToSql + Sync)).collect();
                client.query_one(sql, &params).unwrap().get(0)
            }
        })
        .await
        .unwrap()
    }

    /// Waits (up to `seconds`) until a count is zero.
    pub(crate) async fn wait_none(&self, what: &str, sql: &'static str, seconds: u64) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let left = self.count(sql, None).await;
            if left == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "{left} {what} after {seconds} s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A small xorshift generator, so that the kills fall elsewhere from run to run; a run prints
/// its seed, and `OCPAY_KILL_SEED` plays it again.
pub(crate) struct Random(u64);

impl Random {
    pub(crate) fn seeded() -> (Random, u64) {
        let seed =
            std::env::var("OCPAY_KILL_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or_else(|| {
                u64::from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .subsec_nanos(),
                )
            });
        eprintln!("OCPAY_KILL_SEED={seed}");
        (Random(seed | 1), seed)
    }

    /// A generator of its own for another part of the run, from the same seed.
    fn split(&mut self) -> Random {
        Random(self.next().rotate_left(29) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Milliseconds from `low` to `high`.
    pub(crate) fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low))
    }

    /// A number below `n`.
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }
}

/// How many kills a run makes: `OCPAY_KILLS`, or the short form's `short`.
pub(crate) fn kills(short: usize) -> usize {
    std::env::var("OCPAY_KILLS").ok().and_then(|kills| kills.parse().ok()).unwrap_or(short)
}

/// Kills a node picked at random every few hundred ms to 2 s, `kills` times, and starts it
/// again on its files and port; the others keep serving. The nodes, and how long each restart
/// took to answer its health check.
fn kill_nodes(
    mut nodes: Vec<Node>,
    servers: &Servers,
    (data, database_url): (&Path, Option<&str>),
    kills: usize,
    random: &mut Random,
) -> (Vec<Node>, Vec<Duration>) {
    let mut restarts = Vec::new();
    for _ in 0..kills {
        std::thread::sleep(random.millis(200, 2_000));
        let victim = random.below(nodes.len());
        // While it is down the clients wait rather than knock at its port: a connection to a
        // free port can take that very port as its own end, and the restart could not listen.
        servers.set_up(victim, false);
        nodes[victim].kill();
        std::thread::sleep(random.millis(1, 100));
        nodes[victim] = Node::start(data, database_url, Some(nodes[victim].port));
        restarts.push(nodes[victim].started_in);
        servers.set_up(victim, true);
    }
    std::thread::sleep(Duration::from_millis(200));
    (nodes, restarts)
}

/// The `ocpay` command-line arguments of a platform, after the command's own.
fn platform_args(data: &Path, database_url: Option<&str>) -> Vec<String> {
    let mut args = vec!["--data-dir".to_owned(), data.to_str().unwrap().to_owned()];
    args.extend(["--config".to_owned(), settings_file(data).to_str().unwrap().to_owned()]);
    if let Some(url) = database_url {
        args.extend(["--database-url".to_owned(), url.to_owned()]);
    }
    args
}

/// What the settlement runs under the kills did.
#[derive(Debug, Default)]
struct Settled {
    runs: usize,
    /// Runs killed with SIGKILL on purpose, midway or after.
    killed: usize,
    /// Runs that gave up on PostgreSQL's serialization failures under the load (the next run
    /// settles what they did not).
    gave_up: usize,
    /// The settlement days of the batches made.
    days: BTreeSet<String>,
}

/// Runs `ocpay settle --now` for the merchant once, killed after `kill_after` when given; the
/// days of the batches it made, when it finished, or its error when it gave up on
/// serialization failures.
fn settle(args: &[String], kill_after: Option<Duration>) -> Option<Result<BTreeSet<String>, String>> {
    let mut child = Command::new(OCPAY)
        .arg("settle")
        .args(args)
        .arg("--now")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ocpay settle starts");
    if let Some(after) = kill_after {
        std::thread::sleep(after);
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    let output = child.wait_with_output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        assert!(said.contains("could not serialize access"), "ocpay settle: {said}");
        return Some(Err(said));
    }
    let settled: Value = serde_json::from_slice(&output.stdout).unwrap();
    let batches = settled["batches"].as_array().cloned().unwrap_or_default();
    Some(Ok(batches.iter().filter_map(|batch| batch["day"].as_str().map(str::to_owned)).collect()))
}

/// Settles the merchant's day so far every few hundred ms until `stop`, killing every third run
/// at a random point.
fn settle_until(args: &[String], stop: &AtomicBool, random: &mut Random) -> Settled {
    let mut settled = Settled::default();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(random.millis(300, 1_500));
        let kill_after = (random.below(3) == 0).then(|| random.millis(1, 300));
        settled.runs += 1;
        match settle(args, kill_after) {
            Some(Ok(days)) => settled.days.extend(days),
            Some(Err(_)) => settled.gave_up += 1,
            None => settled.killed += 1,
        }
    }
    settled
}

/// A platform under a kill loop: its nodes, files and database, the merchant's and the
/// acquirer's clients at each node, and the receiver of their notifications.
pub(crate) struct Platform<'a> {
    pub(crate) label: &'static str,
    pub(crate) nodes: Vec<Node>,
    pub(crate) data: PathBuf,
    pub(crate) database_url: Option<String>,
    pub(crate) database: Database,
    pub(crate) merchant: Vec<Client>,
    pub(crate) acquirer: Vec<Client>,
    pub(crate) receiver: &'a Receiver,
}

/// Runs the mixed load against the platform while its nodes are killed `kills` times and
/// settlement runs (and is killed) beside, then checks what the clients saw against the
/// platform: every acknowledged write once, as acknowledged; every notification delivered;
/// `ocpay reconcile` passes for every day settled. Prints the run's figures. The nodes, still
/// up, and what the checks found, for the store's own checks.
pub(crate) async fn kill_loop(platform: Platform<'_>, kills: usize) -> (Vec<Node>, Found) {
    let started = Instant::now();
    let Platform { label, nodes, data, database_url, database, merchant, acquirer, receiver } = platform;
    let merchant_id = merchant[0].client_id().to_owned();
    let urls: Vec<String> = nodes.iter().map(|node| node.url.clone()).collect();
    let servers = Servers::with_acquirer(merchant, acquirer, urls, Some(receiver.url.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers = load(&servers, label, (6, usize::MAX), (Retry::HalfTheOrders, MIXED), &stop);
    let registering = registrations(&servers, label, &stop);
    let (mut random, seed) = Random::seeded();

    let mut settle_args = platform_args(&data, database_url.as_deref());
    settle_args.extend(["--client-id".to_owned(), merchant_id.clone()]);
    let settling = {
        let (args, stop, mut random) = (settle_args.clone(), stop.clone(), random.split());
        tokio::task::spawn_blocking(move || settle_until(&args, &stop, &mut random))
    };
    let killer = {
        let (servers, data, database_url) = (servers.clone(), data.clone(), database_url.clone());
        tokio::task::spawn_blocking(move || {
            kill_nodes(nodes, &servers, (&data, database_url.as_deref()), kills, &mut random)
        })
    };
    let (nodes, restarts) = killer.await.unwrap();
    assert!(workers.iter().all(|worker| !worker.is_finished()), "the load goes on through every kill");
    stop.store(true, Ordering::SeqCst);
    let orders = records(workers).await;
    let registered = registering.await.unwrap();
    let mut settled = settling.await.unwrap();
    let loaded_in = started.elapsed();
    assert!(servers.lost() > 0, "a kill landed while a write was in flight");

    // What completes later has completed: refunds, and the sandbox's review.
    database
        .wait_none("refunds processing", "SELECT COUNT(*) FROM refund WHERE status = 'PROCESSING'", 30)
        .await;
    let sql = "SELECT COUNT(*) FROM registration WHERE status = 'PROCESSING'";
    database.wait_none("registrations under review", sql, 30).await;
    let client = &servers.clients[servers.clients.len() - 1];
    let mut found = check_orders(client, &orders).await;
    let acquirer = &servers.acquirers[servers.acquirers.len() - 1];
    let stored = check_registrations(acquirer, &registered, &mut found).await;
    let acquirer_id = acquirer.client_id().to_owned();
    let sql = "SELECT COUNT(*) FROM registration WHERE owner_client_id = $1";
    let rows = database.count(sql, Some(acquirer_id)).await;
    assert_eq!(
        rows,
        i64::try_from(stored.len()).unwrap(),
        "the registrations in the database are the ones found"
    );

    // The day settles once more, whole, and reconciles.
    let last = settle(&settle_args, None).expect("the last settlement finishes");
    settled.days.extend(last.unwrap_or_else(|error| panic!("the last settlement: {error}")));
    assert!(!settled.days.is_empty(), "settlement made batches");
    for day in &settled.days {
        let mut args = vec!["reconcile".to_owned(), "--date".to_owned(), day.clone()];
        args.extend(settle_args.iter().cloned());
        let output = Command::new(OCPAY).args(&args).env_remove("RUST_LOG").output().unwrap();
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "ocpay reconcile --date {day}: {report}");
    }

    // Every notification was delivered: the outbox drains, and the receiver saw each payment
    // paid, each refund completed and each registration decided.
    database
        .wait_none(
            "notifications undelivered",
            "SELECT COUNT(*) FROM notification WHERE status <> 'DELIVERED'",
            60,
        )
        .await;
    let mut notified: BTreeSet<(String, String)> = BTreeSet::new();
    for received in receiver.received() {
        let body: Value = serde_json::from_str(&received.body).unwrap_or(Value::Null);
        for (kind, id) in [
            ("PAYMENT_RESULT", "paymentId"),
            ("REFUND_RESULT", "refundId"),
            ("REGISTRATION_STATUS", "registrationRequestId"),
        ] {
            if body["notifyType"] == kind {
                notified.insert((kind.to_owned(), body[id].as_str().unwrap_or_default().to_owned()));
            }
        }
    }
    let expected = [
        ("PAYMENT_RESULT", found.paid.iter().chain(&found.reversed).cloned().collect::<Vec<_>>()),
        ("REFUND_RESULT", found.refunds.clone()),
        ("REGISTRATION_STATUS", stored.clone()),
    ];
    for (kind, ids) in expected {
        for id in ids {
            assert!(notified.contains(&(kind.to_owned(), id.clone())), "{kind} of {id} was delivered");
        }
    }

    let mut restarts_ms: Vec<u128> = restarts.iter().map(Duration::as_millis).collect();
    restarts_ms.sort_unstable();
    eprintln!(
        "kill-loop figures: store={label} nodes={} kills={} seed={seed} load={:.1}s run={:.1}s \
         orders={} acknowledged={:?} (registrations {}) unanswered-tries(retried)={} \
         restart-to-serving-ms max={} median={} settle-runs={} settle-killed={} settle-gave-up={} days={:?} \
         notifications={}",
        nodes.len(),
        restarts.len(),
        loaded_in.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        orders.len(),
        found.acknowledged,
        registered.len(),
        servers.lost(),
        restarts_ms.last().copied().unwrap_or_default(),
        restarts_ms.get(restarts_ms.len() / 2).copied().unwrap_or_default(),
        settled.runs,
        settled.killed,
        settled.gave_up,
        settled.days,
        receiver.received().len(),
    );
    (nodes, found)
}

/// How often the SQLite server is killed in the short form that CI runs.
const KILLS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_killed_again_and_again_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The participants first, while no server holds the files.
    let data_dir = DataDir::open(&data).unwrap();
    let platform_key = data_dir.platform_key().unwrap().verifying_key();
    let receiver = Receiver::start(platform_key.clone()).await;
    let port = free_port();
    let urls = vec![format!("http://127.0.0.1:{port}")];
    let (merchant, acquirer) = {
        let store = data_dir.open_store(&Config::default()).await.unwrap();
        let merchant = self::merchant(&*store, Some(&receiver.url), &platform_key, &urls).await;
        let kind = ParticipantKind::Acquirer;
        (merchant, participant(&*store, kind, None, &platform_key, &urls).await)
    };
    let merchant_id = merchant[0].client_id().to_owned();
    let database: PathBuf = data_dir.database_path();
    let platform = Platform {
        label: "sqlite",
        nodes: vec![Node::start(&data, None, Some(port))],
        data: data.clone(),
        database_url: None,
        database: Database::Sqlite(database.clone()),
        merchant,
        acquirer,
        receiver: &receiver,
    };
    let (nodes, found) = kill_loop(platform, kills(KILLS)).await;

    // Once more, then the files as the last crash left them.
    for mut node in nodes {
        node.kill();
    }
    let mut stored = [0; 2];
    for (count, sql) in stored.iter_mut().zip(STORED_ROWS) {
        *count = Database::Sqlite(database.clone()).count(sql, Some(merchant_id.clone())).await;
    }
    for path in [database.clone(), SqliteSettings::new(&database).participants_path()] {
        let connection = rusqlite::Connection::open(&path).unwrap();
        let check: String = connection.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
        assert_eq!(check, "ok", "{}", path.display());
    }
    let store = data_dir.open_store(&Config::default()).await.unwrap();
    check_books(&*store, &merchant_id, &found, stored).await;
}
