//! Several `ocpay serve` processes on one PostgreSQL database: the races of a single server
//! run between two nodes, and a node killed with SIGKILL in the middle of the load while the
//! other goes on. Ignored by a plain `cargo test` (they need PostgreSQL); `scripts/test` runs them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use ocpay_core::participant::ParticipantKind;
use ocpay_protocol::VerifyingKey;
use ocpay_protocol::payments::{CancelRequest, InquiryPaymentRequest};
use ocpay_sdk::Client;
use ocpay_server::data_dir::DataDir;
use ocpay_store::conformance;
use ocpay_store::postgres::{PostgresSettings, PostgresStore};
use ocpay_testkit::{Receiver, Reply, pay_request, unique_id};
use serde_json::json;

use super::kill::{
    Answer, Database, Mix, Node, OrderRecord, Platform, Retry, STORED_ROWS, Servers, check_books,
    check_orders, kill_loop, kills, load, merchant, participant, records, refund_request, wallet_pay,
};
use super::{json as json_of, ocpay};
use ocpay_store::prelude::*;

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
    async fn start() -> Cluster {
        let database_url = conformance::postgres_scratch_schema(&conformance::postgres_test_url());
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let migrated = json_of(&ocpay(&[
            "migrate",
            "--data-dir",
            data.to_str().unwrap(),
            "--database-url",
            &database_url,
        ]));
        assert_eq!(migrated["database"], "postgres");
        assert_eq!(migrated["schemaVersionBefore"], 0);
        assert_eq!(migrated["schemaVersion"], ocpay_store::postgres::SCHEMA_VERSION);
        // The first node makes the platform key; the second finds it.
        let first = Node::start(&data, Some(&database_url), None);
        let nodes = vec![first, Node::start(&data, Some(&database_url), None)];
        let platform_key = DataDir::open(&data).unwrap().platform_key().unwrap().verifying_key();
        let store = PostgresStore::open(&PostgresSettings::new(database_url.clone())).await.unwrap();
        Cluster { _dir: dir, data, database_url, nodes, store, platform_key }
    }

    /// A sandbox merchant whose notifications go to `notify_url`, with a client per node.
    async fn merchant(&self, notify_url: &str) -> Vec<Client> {
        let urls: Vec<String> = self.nodes.iter().map(|node| node.url.clone()).collect();
        merchant(&self.store, Some(notify_url), &self.platform_key, &urls).await
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

async fn inquire_status(client: &Client, payment_id: Option<String>) -> String {
    let request = InquiryPaymentRequest { payment_id, payment_request_id: None };
    let answer = client.inquire_payment(&request).await.expect("inquiry answers");
    answer.payment_status.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn races_between_two_postgres_nodes_resolve_as_on_one() {
    let cluster = Cluster::start().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_postgres_node_killed_mid_load_loses_nothing() {
    let mut cluster = Cluster::start().await;
    let receiver = Receiver::start(cluster.platform_key.clone()).await;
    let clients = cluster.merchant(&receiver.url).await;
    let merchant_id = clients[0].client_id().to_owned();
    let servers = Servers::new(clients, cluster.nodes.iter().map(|node| node.url.clone()).collect());
    let stop = Arc::new(AtomicBool::new(false));

    // Eight workers drive both nodes; node 0 dies under them.
    let workers = load(&servers, "w", (8, 12), (Retry::HalfTheOrders, &[Mix::Refunds]), &stop);
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
    servers.set_up(0, false);
    cluster.nodes[0].kill();
    let mut orders = records(workers).await;
    assert!(servers.lost() > 0, "node 0 died while writes were in flight on it");
    // The killed node comes back and takes load again.
    let port = cluster.nodes[0].port;
    cluster.nodes[0] = Node::start(&cluster.data, Some(&cluster.database_url), Some(port));
    servers.set_up(0, true);
    let after = records(load(&servers, "after", (2, 5), (Retry::Always, &[Mix::Refunds]), &stop)).await;
    let paid = |order: &OrderRecord| matches!(order.wallet, Some(Answer::Acknowledged(_)));
    assert!(after.iter().all(paid), "the restarted node and the other take the load together");
    orders.extend(after);

    // Every acknowledged write is there once as acknowledged, the others whole or absent.
    let found = check_orders(&servers.clients[1], &orders).await;
    let mut stored = [0; 2];
    for (count, sql) in stored.iter_mut().zip(STORED_ROWS) {
        *count = cluster.sql_one(sql, vec![merchant_id.clone()]).await;
    }
    check_books(&cluster.store, &merchant_id, &found, stored).await;

    // Every paid payment's result is delivered at least once, whichever node claimed it.
    let notified: BTreeSet<String> = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let notified: BTreeSet<String> = receiver
                .received()
                .iter()
                .filter_map(|received| received.notification.as_ref().map(|n| n.payment_id.clone()))
                .collect();
            let missing = found.paid.iter().filter(|id| !notified.contains(*id)).count();
            if missing == 0 || Instant::now() > deadline {
                break notified;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    for payment_id in &found.paid {
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

/// How often a node is killed in the short form that CI runs.
const KILLS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn postgres_nodes_killed_again_and_again_keep_every_acknowledged_write() {
    let cluster = Cluster::start().await;
    let receiver = Receiver::start(cluster.platform_key.clone()).await;
    let merchant = cluster.merchant(&receiver.url).await;
    let urls: Vec<String> = cluster.nodes.iter().map(|node| node.url.clone()).collect();
    let acquirer =
        participant(&cluster.store, ParticipantKind::Acquirer, None, &cluster.platform_key, &urls).await;
    let merchant_id = merchant[0].client_id().to_owned();
    let Cluster { _dir, data, database_url, nodes, store, .. } = cluster;
    let database = Database::Postgres(database_url.clone());
    let platform = Platform {
        label: "postgres",
        nodes,
        data,
        database_url: Some(database_url),
        database: database.clone(),
        merchant,
        acquirer,
        receiver: &receiver,
    };
    // Either node dies at random; the other keeps serving.
    let (_nodes, found) = kill_loop(platform, kills(KILLS)).await;
    let mut stored = [0; 2];
    for (count, sql) in stored.iter_mut().zip(STORED_ROWS) {
        *count = database.count(sql, Some(merchant_id.clone())).await;
    }
    check_books(&store, &merchant_id, &found, stored).await;
}
