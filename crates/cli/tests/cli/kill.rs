//! Servers killed with SIGKILL in the middle of a load of pays, wallet pays and refunds, and
//! started again. Afterwards every write a client saw acknowledged is there exactly once, as it
//! was acknowledged; a write that got no answer may or may not be there, but if it is, it is
//! whole and consistent (refunds never exceed what was paid); the ledger balances. The embedded
//! SQLite store is killed here, again and again; a node of a PostgreSQL cluster in `cluster`,
//! which shares the load and the checks.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ocpay_core::ids::ClientId;
use ocpay_core::ledger::AccountOwner;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_protocol::model::Amount;
use ocpay_protocol::payments::{InquiryPaymentRequest, PayRequest, PayResponse, TRANSACTION_REFUND};
use ocpay_protocol::refunds::{InquiryRefundRequest, RefundRequest};
use ocpay_protocol::{AmsResult, ResultStatus, SigningKey, VerifyingKey};
use ocpay_sdk::Client;
use ocpay_server::config::Config;
use ocpay_server::data_dir::DataDir;
use ocpay_server::service::participants::{self, NewParticipant};
use ocpay_server::settings::Settings;
use ocpay_store::Store;
use ocpay_store::sqlite::SqliteSettings;
use ocpay_testkit::{Receiver, pay_request};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{OCPAY, wait_healthy};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One `ocpay serve` process. Dropping it kills the process.
pub(crate) struct Node {
    child: Child,
    pub(crate) url: String,
    pub(crate) port: u16,
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
        // attempt is tried again a second later.
        let settings = data.with_file_name("ocpay.toml");
        std::fs::write(
            &settings,
            "notify_timeout_ms = 2000\nnotify_claim_lease_ms = 3000\nnotify_poll_interval_ms = 50\n\
             timers_poll_interval_ms = 50\nnotify_retry_intervals_seconds = [1, 1, 1, 1, 1, 1, 1]\n",
        )
        .unwrap();
        let mut command = Command::new(OCPAY);
        command
            .args(["serve", "--data-dir", data.to_str().unwrap(), "--listen", &address])
            .args(["--config", settings.to_str().unwrap()]);
        if let Some(database_url) = database_url {
            command.args(["--database-url", database_url]);
        }
        let child = command
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ocpay serve starts");
        wait_healthy(&address);
        Node { child, url: format!("http://{address}"), port }
    }

    /// Kills the process as a crash would: SIGKILL, no shutdown of any kind.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the node");
        self.child.wait().expect("the node is gone");
    }
}

/// A sandbox merchant, created in the platform's store, whose notifications go to `notify_url`;
/// a client of it for each server. The clients try once: the load decides when to try again.
pub(crate) async fn merchant(
    store: &dyn Store,
    notify_url: Option<&str>,
    platform_key: &VerifyingKey,
    urls: &[String],
) -> Vec<Client> {
    let key = SigningKey::generate().unwrap();
    let new = NewParticipant {
        kind: ParticipantKind::Merchant,
        environment: Environment::Sandbox,
        name: "Load merchant".parse().expect("a name"),
        public_key: key.verifying_key(),
        notify_url: notify_url.map(|url| url.parse().expect("a notify URL")),
    };
    let settings = Settings::resolve(&Config::default()).unwrap();
    let merchant = participants::create(store, &settings.notify, jiff::Timestamp::now(), new).await.unwrap();
    urls.iter()
        .map(|url| {
            Client::builder(url, merchant.client_id.as_str(), key.clone(), platform_key.clone())
                .attempts_max(1)
                .build()
                .unwrap()
        })
        .collect()
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

/// The servers a load runs against, a client of the merchant at each, and which are up.
pub(crate) struct Servers {
    pub(crate) clients: Vec<Client>,
    pub(crate) urls: Vec<String>,
    /// A server known to be down is not tried; one killed without notice is tried, and fails.
    up: Mutex<Vec<bool>>,
    /// Tries that were sent and got no answer (or `U`): the kills that landed mid-write.
    lost: AtomicUsize,
}

impl Servers {
    pub(crate) fn new(clients: Vec<Client>, urls: Vec<String>) -> Arc<Servers> {
        let up = Mutex::new(vec![true; urls.len()]);
        Arc::new(Servers { clients, urls, up, lost: AtomicUsize::new(0) })
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

/// A refund the load asked for.
#[derive(Debug)]
pub(crate) struct RefundRecord {
    request_id: String,
    amount: i64,
    answer: Answer,
}

/// An order of the load: its pay, the payer's wallet pay, and the refunds asked for.
#[derive(Debug)]
pub(crate) struct OrderRecord {
    request_id: String,
    amount: i64,
    pay: Answer,
    /// When the pay answered with a code to pay.
    pub(crate) wallet: Option<Answer>,
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
            Some((answer(&refund.result, refund.refund_id.as_ref())?, None))
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

/// Pays an order, pays its code from a wallet and asks for three refunds of two fifths of it at
/// once, so that two fit at most; records how each write ended.
async fn run_order(servers: &Servers, n: usize, request_id: String, retry: bool) -> OrderRecord {
    let amount = 1_000 + 10 * i64::try_from(n % 10).unwrap();
    let request = pay_request(&request_id, "USD", amount);
    let (pay, payment) = attempt(servers, n, retry, Write::Pay(&request)).await;
    let mut order = OrderRecord { request_id, amount, pay, wallet: None, refunds: vec![] };
    let Some(payment) = payment.filter(|_| matches!(order.pay, Answer::Acknowledged(_))) else {
        return order;
    };
    let (wallet, _) = attempt(servers, n + 1, retry, Write::WalletPay(&payment)).await;
    order.wallet = Some(wallet.clone());
    if matches!(wallet, Answer::Refused(_)) {
        return order;
    }
    // Refunds after an unanswered wallet pay too: the payment may be paid or not.
    let refund = |k: usize| RefundRecord {
        request_id: format!("{}-R{k}", order.request_id),
        amount: amount * 2 / 5,
        answer: Answer::Unanswered,
    };
    let mut refunds = [refund(0), refund(1), refund(2)];
    let requests =
        refunds.each_ref().map(|refund| refund_request(&payment, &refund.request_id, refund.amount));
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
/// `stop` is set; each worker's records.
pub(crate) fn load(
    servers: &Arc<Servers>,
    prefix: &str,
    (workers, orders): (usize, usize),
    retry: Retry,
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
                    records.push(run_order(&servers, worker + n, request_id, retry).await);
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

/// What the inquiries found of a load's writes.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The payments that exist, and the refunds (of any status).
    stored: [i64; 2],
    /// What the merchant is owed: its paid payments less their successful refunds.
    owed: i64,
    /// The ids of the paid payments.
    pub(crate) paid: Vec<String>,
    /// Writes acknowledged, refused and unanswered, for the messages.
    answers: [usize; 3],
}

impl Found {
    fn count(&mut self, answer: &Answer) {
        self.answers[match answer {
            Answer::Acknowledged(_) => 0,
            Answer::Refused(_) => 1,
            Answer::Unanswered => 2,
        }] += 1;
    }
}

/// Inquires every order of the load and checks it against what its client saw: an
/// acknowledged write exactly once with its acknowledged ids and amounts, an unanswered one
/// absent or whole, never more refunded than paid.
pub(crate) async fn check_orders(client: &Client, orders: &[OrderRecord]) -> Found {
    let mut found = Found::default();
    for order in orders {
        let name = &order.request_id;
        found.count(&order.pay);
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
        let status = payment.payment_status.clone().unwrap_or_default();
        match &order.wallet {
            Some(Answer::Acknowledged(paid)) => {
                found.count(order.wallet.as_ref().unwrap());
                assert_eq!(paid, &payment_id, "{name}: the wallet paid this payment");
                assert_eq!(status, "SUCCESS", "{name}: paid, as the wallet was told");
            }
            Some(Answer::Unanswered) => {
                found.count(&Answer::Unanswered);
                assert!(["SUCCESS", "PROCESSING"].contains(&status.as_str()), "{name}: {status}");
            }
            // Refused, or never sent: nobody paid the code.
            wallet => {
                wallet.iter().for_each(|answer| found.count(answer));
                assert_eq!(status, "PROCESSING", "{name}: not paid ({wallet:?})");
            }
        }
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
        }
        let mut refunded = 0;
        for refund in &order.refunds {
            found.count(&refund.answer);
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
                    assert_eq!(seen, (refund_id.as_str(), "SUCCESS"), "{}", refund.request_id);
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
        if status == "SUCCESS" {
            found.owed += order.amount - refunded;
            found.paid.push(payment_id);
        } else {
            assert_eq!(refunded, 0, "{name}: refunded though not paid");
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
        (Some(refund_id), Some("SUCCESS"), Some(Amount::new("USD", refund.amount))),
        "{}",
        refund.request_id
    );
}

/// The number of payments and of refunds a merchant has in the database, SQLite or PostgreSQL.
pub(crate) const STORED_ROWS: [&str; 2] = [
    "SELECT COUNT(*) FROM payment WHERE owner_client_id = $1",
    "SELECT COUNT(*) FROM refund WHERE owner_client_id = $1",
];

/// The store agrees with the inquiries: the database holds the payments and refunds they found
/// and no other (`stored`, counted with `STORED_ROWS`), the merchant holds what its paid
/// payments less their refunds come to, and the ledger balances.
pub(crate) async fn check_books(store: &dyn Store, merchant: &str, found: &Found, stored: [i64; 2]) {
    eprintln!("writes acknowledged, refused, unanswered: {:?}", found.answers);
    assert_eq!(stored, found.stored, "the payments and refunds in the database are the ones found");
    let merchant = ClientId::parse(merchant).unwrap();
    let balance = store.balances(&AccountOwner::MerchantPending(merchant)).await.unwrap();
    assert_eq!(balance.iter().map(|money| money.minor()).sum::<i64>(), found.owed, "{balance:?}");
    let check = store.ledger_check().await.unwrap();
    assert!(check.is_sound(), "the ledger balances: {check:?}");
}

/// A small xorshift generator, so that the kills fall elsewhere from run to run; a run prints
/// its seed, and `OCPAY_KILL_SEED` plays it again.
struct Random(u64);

impl Random {
    fn seeded() -> Random {
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
        Random(seed | 1)
    }

    /// Milliseconds from `low` to `high`.
    fn millis(&mut self, low: u64, high: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(low + self.0 % (high - low))
    }
}

/// How often the SQLite server is killed under the load.
const KILLS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_killed_again_and_again_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The merchant first, while no server holds the files.
    let data_dir = DataDir::open(&data).unwrap();
    let platform_key = data_dir.platform_key().unwrap().verifying_key();
    let receiver = Receiver::start(platform_key.clone()).await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let clients = {
        let store = data_dir.open_store(&Config::default()).await.unwrap();
        merchant(&*store, Some(&receiver.url), &platform_key, std::slice::from_ref(&url)).await
    };
    let node = Node::start(&data, None, Some(port));
    let merchant_id = clients[0].client_id().to_owned();
    let servers = Servers::new(clients, vec![url]);
    let stop = Arc::new(AtomicBool::new(false));
    let workers = load(&servers, "sqlite", (6, 500), Retry::HalfTheOrders, &stop);

    // Killed at random points under the load, and started again on the same files and port.
    // While it is down the clients wait rather than knock at its port: a connection to a free
    // port can take that very port as its own end, and the restart could not listen on it.
    let (restart, killed) = (data.clone(), servers.clone());
    let killer = tokio::task::spawn_blocking(move || {
        let (mut node, mut random) = (node, Random::seeded());
        for _ in 0..KILLS {
            std::thread::sleep(random.millis(150, 600));
            killed.set_up(0, false);
            node.kill();
            std::thread::sleep(random.millis(1, 100));
            node = Node::start(&restart, None, Some(port));
            killed.set_up(0, true);
        }
        std::thread::sleep(Duration::from_millis(200));
        node
    });
    let mut node = killer.await.unwrap();
    assert!(workers.iter().all(|worker| !worker.is_finished()), "the load goes on through every kill");
    stop.store(true, Ordering::SeqCst);
    let orders = records(workers).await;
    assert!(servers.lost() > 0, "a kill landed while a write was in flight");
    let found = check_orders(&servers.clients[0], &orders).await;

    // Once more, then the files as the last crash left them.
    node.kill();
    drop(node);
    let database: PathBuf = data_dir.database_path();
    let mut stored = [0; 2];
    for (count, sql) in stored.iter_mut().zip(STORED_ROWS) {
        let connection = rusqlite::Connection::open(&database).unwrap();
        *count = connection.query_row(sql, [&merchant_id], |row| row.get(0)).unwrap();
    }
    for path in [database.clone(), SqliteSettings::new(&database).participants_path()] {
        let connection = rusqlite::Connection::open(&path).unwrap();
        let check: String = connection.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
        assert_eq!(check, "ok", "{}", path.display());
    }
    let store = data_dir.open_store(&Config::default()).await.unwrap();
    check_books(&*store, &merchant_id, &found, stored).await;
}
