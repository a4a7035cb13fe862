//! Several `ocpay serve` processes on one PostgreSQL database: the races of a single server
//! run between two nodes, and a node killed with SIGKILL in the middle of the load while the
//! other goes on. Skipped without a PostgreSQL server, except under `CI=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocpay_core::ledger::AccountOwner;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_protocol::model::Amount;
use ocpay_protocol::payments::{CancelRequest, InquiryPaymentRequest, PayResponse};
use ocpay_protocol::refunds::RefundRequest;
use ocpay_protocol::{SigningKey, VerifyingKey};
use ocpay_sdk::Client;
use ocpay_server::config::Config;
use ocpay_server::data_dir::DataDir;
use ocpay_server::service::participants::{self, NewParticipant};
use ocpay_store::postgres::{PostgresSettings, PostgresStore};
use ocpay_store::{Store, conformance};
use ocpay_testkit::{Receiver, Reply, pay_request, unique_id};
use serde_json::{Value, json};

use super::{OCPAY, json as json_of, ocpay, wait_healthy};

/// One `ocpay serve` process. Dropping it kills the process.
struct Node {
    child: Child,
    url: String,
    port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// Starts a node on a free port, or on `port` (a restart where the clients expect it).
    fn start(data: &Path, database_url: &str, port: Option<u16>) -> Node {
        let port = port.unwrap_or_else(|| {
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
        });
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
        let child = Command::new(OCPAY)
            .args(["serve", "--data-dir", data.to_str().unwrap(), "--listen", &address])
            .args(["--database-url", database_url, "--config", settings.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ocpay serve starts");
        wait_healthy(&address);
        Node { child, url: format!("http://{address}"), port }
    }

    /// Kills the process as a crash would: SIGKILL, no shutdown of any kind.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the node");
        self.child.wait().expect("the node is gone");
    }
}

/// Two nodes on one fresh database, sharing one data directory (platform key, admin token).
struct Cluster {
    _dir: tempfile::TempDir,
    data: PathBuf,
    database_url: String,
    nodes: Vec<Node>,
    store: PostgresStore,
    platform_key: VerifyingKey,
}

impl Cluster {
    async fn start() -> Option<Cluster> {
        let database_url = conformance::postgres_scratch_schema(&conformance::postgres_test_url()?);
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let migrated =
            json_of(&ocpay(&["migrate", "--data-dir", data.to_str()?, "--database-url", &database_url]));
        assert_eq!(migrated["database"], "postgres");
        assert_eq!(migrated["schemaVersionBefore"], 0);
        assert_eq!(migrated["schemaVersion"], ocpay_store::postgres::SCHEMA_VERSION);
        // The first node makes the platform key; the second finds it.
        let first = Node::start(&data, &database_url, None);
        let nodes = vec![first, Node::start(&data, &database_url, None)];
        let platform_key = DataDir::open(&data).unwrap().platform_key().unwrap().verifying_key();
        let store = PostgresStore::open(&PostgresSettings::new(database_url.clone())).await.unwrap();
        Some(Cluster { _dir: dir, data, database_url, nodes, store, platform_key })
    }

    /// A sandbox merchant whose notifications go to `notify_url`, with a client per node.
    async fn merchant(&self, notify_url: &str) -> Vec<Client> {
        let key = SigningKey::generate().unwrap();
        let new = NewParticipant {
            kind: ParticipantKind::Merchant,
            environment: Environment::Sandbox,
            name: "Cluster merchant".into(),
            public_key: key.verifying_key(),
            notify_url: Some(notify_url.to_owned()),
        };
        let merchant =
            participants::create(&self.store, &Config::default(), jiff::Timestamp::now(), new).await.unwrap();
        self.nodes
            .iter()
            .map(|node| {
                Client::builder(
                    &node.url,
                    merchant.client_id.as_str(),
                    key.clone(),
                    self.platform_key.clone(),
                )
                .attempts_max(1)
                .build()
                .unwrap()
            })
            .collect()
    }

    /// One value of a query on the cluster's database.
    async fn sql_one<T: for<'a> postgres::types::FromSql<'a> + Send + 'static>(
        &self,
        sql: &'static str,
        params: Vec<String>,
    ) -> T {
        let url = self.database_url.clone();
        tokio::task::spawn_blocking(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
                params.iter().map(|param| param as &(dyn postgres::types::ToSql + Sync)).collect();
            client.query_one(sql, &params).unwrap().get(0)
        })
        .await
        .unwrap()
    }

    async fn assert_ledger_balances(&self) {
        let check = self.store.ledger_check().await.unwrap();
        assert!(check.is_sound(), "the ledger balances: {check:?}");
    }
}

/// Pays an order code through a node's wallet API; the HTTP status and the answer.
async fn wallet_pay(node_url: &str, payment: &PayResponse, payer: &str) -> (u16, Value) {
    let code = payment.order_code_form.as_ref().and_then(|form| form.text_code()).expect("a code");
    let token = code.rsplit('/').next().unwrap();
    let url = format!("{node_url}/wallet/api/codes/{token}/pay");
    let response = reqwest::Client::new().post(url).json(&json!({ "payerId": payer })).send().await;
    match response {
        Ok(response) => (response.status().as_u16(), response.json().await.unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}

fn refund_request(payment: &PayResponse, request_id: &str, minor: i64) -> RefundRequest {
    RefundRequest {
        refund_request_id: Some(request_id.into()),
        payment_id: payment.payment_id.clone(),
        refund_amount: Some(Amount::new("USD", minor)),
        ..RefundRequest::default()
    }
}

async fn inquire_status(client: &Client, payment_id: Option<String>) -> String {
    let request = InquiryPaymentRequest { payment_id, payment_request_id: None };
    let answer = client.inquire_payment(&request).await.expect("inquiry answers");
    answer.payment_status.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_between_two_nodes_resolve_as_on_one() {
    let Some(cluster) = Cluster::start().await else { return };
    let receiver = Receiver::start(cluster.platform_key.clone()).await;
    let clients = Arc::new(cluster.merchant(&receiver.url).await);
    let (a, b) = (&clients[0], &clients[1]);
    let (url_a, url_b) = (&cluster.nodes[0].url, &cluster.nodes[1].url);

    // The same request at both nodes at once: one payment, the same answer twice.
    for _ in 0..10 {
        let request = pay_request(&unique_id("DUP"), "USD", 500);
        let (first, second) = tokio::join!(a.pay(&request), b.pay(&request));
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first.result.result_code, "SUCCESS", "{:?}", first.result);
        assert_eq!(second.result.result_code, "SUCCESS", "{:?}", second.result);
        assert_eq!(first.payment_id, second.payment_id, "both nodes answer with the one payment");
    }

    // Two payers scan one code, each through another node: exactly one pays.
    for round in 0..8 {
        let payment = a.pay(&pay_request(&unique_id("TWO"), "USD", 700)).await.unwrap();
        let (payer_a, payer_b) = (format!("racer-a-{round}"), format!("racer-b-{round}"));
        let (first, second) =
            tokio::join!(wallet_pay(url_a, &payment, &payer_a), wallet_pay(url_b, &payment, &payer_b));
        let mut answers = [first, second];
        answers.sort_by_key(|(status, _)| *status);
        let [(won, _), (lost, refusal)] = answers;
        assert_eq!((won, lost), (200, 409), "exactly one payer pays: {refusal}");
        assert_eq!(refusal["error"], "ALREADY_PAID", "the other is told the code is paid");
    }

    // A payer pays while the merchant cancels through the other node: either the cancel
    // closes the code first, or it reverses the payment; the money always goes back.
    for round in 0..8 {
        let payment = a.pay(&pay_request(&unique_id("CXL"), "USD", 300)).await.unwrap();
        let payer = format!("canceller-{round}");
        let cancel = CancelRequest { payment_id: payment.payment_id.clone(), payment_request_id: None };
        let ((paid, refusal), cancelled) =
            tokio::join!(wallet_pay(url_a, &payment, &payer), b.cancel(&cancel));
        if paid != 200 {
            assert_eq!(
                (paid, &refusal["error"]),
                (409, &json!("CANCELLED")),
                "cancelled first: the pay is refused"
            );
        }
        assert_eq!(cancelled.unwrap().result.result_code, "SUCCESS", "the cancel succeeds either way");
        assert_eq!(inquire_status(b, payment.payment_id.clone()).await, "CANCELLED");
        let payment_id = payment.payment_id.clone().unwrap();
        let postings: String = cluster
            .sql_one(
                "SELECT COALESCE(string_agg(kind, ',' ORDER BY posting_id), '') FROM posting WHERE payment_id = $1",
                vec![payment_id.clone()],
            )
            .await;
        // Paid first: the cancel reversed the payment. Cancelled first: the pay was refused.
        let expected = if paid == 200 { "PAYMENT,REVERSAL" } else { "" };
        assert_eq!(postings, expected, "round {round}: the wallet answered {paid}");
        let charged: i64 = cluster
            .sql_one(
                "SELECT CAST(COALESCE(SUM(e.amount_minor), 0) AS BIGINT) FROM entry e \
                 JOIN posting p ON p.posting_id = e.posting_id WHERE p.payment_id = $1 AND e.account LIKE 'wallet:%'",
                vec![payment_id],
            )
            .await;
        assert_eq!(charged, 0, "the payer is not charged for a cancelled payment (round {round})");
    }

    // Five refunds of 300 against 1000 paid, through both nodes at once: three fit.
    for _ in 0..3 {
        let payment = a.pay(&pay_request(&unique_id("REF"), "USD", 1000)).await.unwrap();
        assert_eq!(wallet_pay(url_b, &payment, "refund-payer").await.0, 200);
        let mut racing = Vec::new();
        for n in 0..5 {
            let clients = clients.clone();
            let request = refund_request(&payment, &unique_id("RR"), 300);
            racing.push(tokio::spawn(async move { clients[n % 2].refund(&request).await.unwrap() }));
        }
        let mut refunded = 0;
        for task in racing {
            if task.await.unwrap().result.result_code == "SUCCESS" {
                refunded += 300;
            }
        }
        assert_eq!(refunded, 900, "refunds never exceed what was paid, and every one that fits succeeds");
    }
    cluster.assert_ledger_balances().await;
}

/// What a worker of the load saw acknowledged.
#[derive(Default)]
struct Acknowledged {
    /// Payment id by request id, of payments acknowledged as paid.
    paid: BTreeMap<String, String>,
    /// Refund request ids acknowledged as refunded, with their amounts.
    refunds: BTreeMap<String, i64>,
}

/// Pays, wallet-pays and half-refunds one order, trying the nodes in turn until one answers,
/// with the same idempotency keys on every try.
async fn one_order(
    clients: &[Client],
    urls: &[String],
    up: &[bool],
    (n, request_id): (usize, &str),
    ack: &mut Acknowledged,
) {
    let live =
        |n: usize| (n..n + clients.len()).map(|i| i % clients.len()).filter(|&i| up[i]).collect::<Vec<_>>();
    let start = n % clients.len();
    let request = pay_request(request_id, "USD", 1_000);
    let mut payment = None;
    for node in live(start) {
        if let Ok(answer) = clients[node].pay(&request).await {
            payment = Some(answer);
            break;
        }
    }
    let Some(payment) = payment else { return };
    let mut paid = false;
    for node in live(start + 1) {
        let (status, _) = wallet_pay(&urls[node], &payment, "load-payer").await;
        if status == 200 {
            paid = true;
            break;
        }
    }
    if !paid {
        return;
    }
    let payment_id = payment.payment_id.clone().unwrap();
    ack.paid.insert(request_id.to_owned(), payment_id);
    let refund = refund_request(&payment, &format!("{request_id}-R"), 400);
    for node in live(start) {
        if let Ok(answer) = clients[node].refund(&refund).await {
            if answer.result.result_code == "SUCCESS" {
                ack.refunds.insert(format!("{request_id}-R"), 400);
            }
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_load_loses_nothing() {
    let Some(mut cluster) = Cluster::start().await else { return };
    let receiver = Receiver::start(cluster.platform_key.clone()).await;
    let clients = Arc::new(cluster.merchant(&receiver.url).await);
    let urls: Arc<Vec<String>> = Arc::new(cluster.nodes.iter().map(|node| node.url.clone()).collect());
    let up = Arc::new(std::sync::Mutex::new(vec![true, true]));

    let run = |phase: &'static str, orders: usize| {
        let (clients, urls, up) = (clients.clone(), urls.clone(), up.clone());
        tokio::spawn(async move {
            let mut ack = Acknowledged::default();
            for n in 0..orders {
                let state = up.lock().unwrap().clone();
                one_order(&clients, &urls, &state, (n, &format!("{phase}-{n}")), &mut ack).await;
            }
            ack
        })
    };
    // Eight workers drive both nodes; node 0 dies under them.
    let workers: Vec<_> =
        (0..8).map(|w| run(["w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7"][w], 12)).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The next deliveries hang, so that node 0 dies holding claims of notifications it was
    // sending: they must come back to the pool when their lease ends.
    receiver.reply_next(vec![Reply::Hang; 12]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.received().iter().filter(|received| received.reply == Reply::Hang).count() < 8 {
        assert!(Instant::now() < deadline, "deliveries go on under the load");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(workers.iter().all(|worker| !worker.is_finished()), "the node dies in the middle of the load");
    up.lock().unwrap()[0] = false;
    cluster.nodes[0].kill();
    let mut acknowledged = Acknowledged::default();
    for worker in workers {
        let ack = worker.await.unwrap();
        acknowledged.paid.extend(ack.paid);
        acknowledged.refunds.extend(ack.refunds);
    }
    // The killed node comes back and takes load again.
    let port = cluster.nodes[0].port;
    cluster.nodes[0] = Node::start(&cluster.data, &cluster.database_url, Some(port));
    *up.lock().unwrap() = vec![true, true];
    let after = run("after", 10).await.unwrap();
    assert_eq!(after.paid.len(), 10, "the restarted node and the other take the load together");
    acknowledged.paid.extend(after.paid);
    acknowledged.refunds.extend(after.refunds);
    assert!(acknowledged.paid.len() >= 80, "most orders went through: {}", acknowledged.paid.len());

    // Every acknowledged payment and refund exists exactly once, as acknowledged.
    let owner = clients[0].client_id().to_owned();
    for (request_id, payment_id) in &acknowledged.paid {
        let status = inquire_status(&clients[1], Some(payment_id.clone())).await;
        assert_eq!(status, "SUCCESS", "payment {request_id} stands");
    }
    for request_id in acknowledged.paid.keys().chain(acknowledged.refunds.keys()) {
        let stored: i64 = cluster
            .sql_one(
                "SELECT (SELECT COUNT(*) FROM payment WHERE owner_client_id = $1 AND payment_request_id = $2) \
                 + (SELECT COUNT(*) FROM refund WHERE owner_client_id = $1 AND refund_request_id = $2)",
                vec![owner.clone(), request_id.clone()],
            )
            .await;
        assert_eq!(stored, 1, "{request_id} exists exactly once");
    }
    for (request_id, amount) in &acknowledged.refunds {
        let stored: String = cluster
            .sql_one(
                "SELECT status || ' ' || CAST(amount_minor AS TEXT) FROM refund \
                 WHERE owner_client_id = $1 AND refund_request_id = $2",
                vec![owner.clone(), request_id.clone()],
            )
            .await;
        assert_eq!(stored, format!("SUCCESS {amount}"), "refund {request_id} stands as acknowledged");
    }

    // Every notification is delivered at least once, whichever node claimed it.
    let notified: BTreeSet<String> = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let notified: BTreeSet<String> = receiver
                .received()
                .iter()
                .filter_map(|received| received.notification.as_ref().map(|n| n.payment_id.clone()))
                .collect();
            let missing = acknowledged.paid.values().filter(|id| !notified.contains(*id)).count();
            if missing == 0 || Instant::now() > deadline {
                break notified;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    for payment_id in acknowledged.paid.values() {
        assert!(notified.contains(payment_id), "the payment result of {payment_id} was delivered");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster
        .sql_one::<i64>("SELECT COUNT(*) FROM notification WHERE status <> 'DELIVERED'", vec![])
        .await
        > 0
    {
        assert!(Instant::now() < deadline, "no notification is left undelivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.assert_ledger_balances().await;
    // The merchant holds exactly what its stored payments and refunds say, acknowledged or not.
    let owed: i64 = cluster
        .sql_one(
            "SELECT CAST((SELECT COALESCE(SUM(amount_minor), 0) FROM payment WHERE owner_client_id = $1 AND status = 'SUCCESS') \
             - (SELECT COALESCE(SUM(amount_minor), 0) FROM refund WHERE owner_client_id = $1 AND status = 'SUCCESS') AS BIGINT)",
            vec![owner.clone()],
        )
        .await;
    let merchant = ocpay_core::ids::ClientId::parse(&owner).unwrap();
    let balance = cluster.store.balances(&AccountOwner::MerchantPending(merchant)).await.unwrap();
    assert_eq!(balance.iter().map(|money| money.minor()).sum::<i64>(), owed, "{balance:?}");

    // Some notification that node 0 was sending when it died went out again from node 1,
    // after the lease, as the same attempt: more deliveries than recorded attempts.
    let mut deliveries: BTreeMap<String, i64> = BTreeMap::new();
    for received in receiver.received() {
        *deliveries.entry(received.notify_id).or_default() += 1;
    }
    let mut taken_over = 0;
    for (notify_id, delivered) in deliveries {
        let recorded: i64 = cluster
            .sql_one("SELECT attempts FROM notification WHERE notification_id = $1", vec![notify_id])
            .await;
        if delivered > recorded {
            taken_over += 1;
        }
    }
    assert!(taken_over > 0, "a dead node's claims return to the pool");
}
