//! Runs the store conformance suite against PostgreSQL (`on_postgres::<check>`, each in a schema
//! of its own), plus the checks that only make sense there: nodes that start together migrate
//! once, TLS, the pool and serialisation retries. The races between nodes run in the `ocpay`
//! command's tests, between two server processes.

use std::sync::Arc;

use ocpay_core::ids::PaymentRequestId;
use ocpay_store::conformance;
use ocpay_store::postgres::{PostgresSettings, PostgresStore};
use ocpay_store::prelude::*;
use ocpay_store::{CreatePayment, PaymentLookup};

async fn open(url: &str) -> PostgresStore {
    PostgresStore::open(&PostgresSettings::new(url)).await.expect("open the PostgreSQL store")
}

/// A new store in a scratch schema of its own.
async fn new_store() -> (PostgresStore, ()) {
    (open(&conformance::postgres_scratch_schema(&conformance::postgres_test_url())).await, ())
}

ocpay_store::conformance_tests! {
    #[ignore = "needs PostgreSQL: scripts/test runs it"]
    fn on_postgres(new_store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn postgres_nodes_that_start_together_migrate_once() {
    let url = conformance::postgres_test_url();
    let url = conformance::postgres_scratch_schema(&url);
    let settings = PostgresSettings::new(url.clone());
    // Two tasks, so that each migration blocks a worker thread of its own at the same time.
    let migrate = || {
        let settings = settings.clone();
        tokio::spawn(async move { PostgresStore::migrate(&settings).await })
    };
    let (first, second) = tokio::join!(migrate(), migrate());
    let mut went = [first.unwrap().unwrap(), second.unwrap().unwrap()];
    went.sort();
    let newest = ocpay_store::postgres::SCHEMA_VERSION;
    assert_eq!(went, [(0, newest), (newest, newest)], "one node migrated, the other found nothing to do");
    let store = open(&url).await;
    store.health().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn the_postgres_ledger_check_reports_an_entry_without_its_posting() {
    // PostgreSQL keeps no foreign key from entries to postings (it made concurrent payments
    // fail to serialise), so the ledger check must find what the key would have refused.
    let url = conformance::postgres_test_url();
    let url = conformance::postgres_scratch_schema(&url);
    let store = open(&url).await;
    assert!(store.ledger_check().await.unwrap().is_sound());
    let insert = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&insert, postgres::NoTls).unwrap();
        client
            .batch_execute(
                "INSERT INTO entry (posting_id, account, currency, amount_minor) VALUES (424242, 'pending:X:USD', 'USD', 5), \
                 (424242, 'funding:sandbox:USD', 'USD', -5)",
            )
            .unwrap();
    })
    .await
    .unwrap();
    let check = store.ledger_check().await.unwrap();
    assert_eq!(check.unbalanced_postings, vec![424242], "{check:?}");
    assert!(!check.is_sound());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn postgres_tls_is_used_and_the_servers_certificate_verified() {
    let url = conformance::postgres_test_url();
    let admin = url.clone();
    let certificate = tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        let on: String = client.query_one("SHOW ssl", &[]).unwrap().get(0);
        let file: String = client.query_one("SHOW ssl_cert_file", &[]).unwrap().get(0);
        (on == "on").then_some(file)
    })
    .await
    .unwrap();
    let certificate = certificate
        .filter(|file| std::fs::metadata(file).is_ok())
        .expect("the TLS test needs PostgreSQL with ssl = on and a certificate it can read");
    // Debian's default certificate is made for `localhost`: the name must match, so connect by it.
    let application = format!("ocpay_tls_{}", std::process::id());
    let tls_url = format!(
        "{}&sslmode=require&application_name={application}",
        conformance::postgres_scratch_schema(&url).replace("@127.0.0.1:", "@localhost:")
    );
    let mut settings = PostgresSettings::new(tls_url);
    settings.ca_file = Some(certificate.into());
    let store = PostgresStore::open(&settings).await.expect("TLS verified against the server's certificate");
    store.health().await.unwrap();
    let encrypted: i64 = tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
                 WHERE a.application_name = $1 AND s.ssl",
                &[&application],
            )
            .unwrap()
            .get(0)
    })
    .await
    .unwrap();
    assert!(encrypted >= 1, "the store's connections are encrypted");

    // Another authority does not vouch for the server: no connection. (The system's roots are
    // no test here: Debian's store trusts its own snakeoil certificate.)
    let bundle =
        std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").expect("the system's CA bundle");
    let end = "-----END CERTIFICATE-----";
    let other = &bundle[..bundle.find(end).expect("a certificate in the bundle") + end.len()];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other-ca.pem"), other).unwrap();
    settings.ca_file = Some(dir.path().join("other-ca.pem"));
    let refused = PostgresStore::open(&settings).await.err().expect("an unverified server is refused");
    assert!(refused.to_string().contains("certificate"), "{refused}");
}

/// Runs SQL statements on the database at `url`, off the async runtime.
async fn execute(url: &str, statements: &str) {
    let (url, statements) = (url.to_owned(), statements.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.batch_execute(&statements).unwrap();
    })
    .await
    .unwrap();
}

async fn count(url: &str, query: &str) -> i64 {
    let (url, query) = (url.to_owned(), query.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.query_one(&query, &[]).unwrap().get(0)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_call_beyond_the_postgres_pool_fails_after_the_pool_wait() {
    let url = conformance::postgres_test_url();
    let url = conformance::postgres_scratch_schema(&url);
    let mut settings = PostgresSettings::new(url.clone());
    settings.pool_max = 1;
    settings.pool_wait = std::time::Duration::from_millis(300);
    settings.statement_timeout = std::time::Duration::from_secs(20);
    let store = Arc::new(PostgresStore::open(&settings).await.unwrap());
    let client_id = ocpay_core::ids::ClientId::parse("SANDBOX_POOL").unwrap();

    // Another session locks the participants table; a read of it waits, holding the one connection.
    let (locked, wait_locked) = tokio::sync::oneshot::channel::<()>();
    let (unlock, wait_unlock) = std::sync::mpsc::channel::<()>();
    let holder = {
        let url = url.clone();
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut transaction = client.transaction().unwrap();
            transaction.batch_execute("LOCK TABLE participant IN ACCESS EXCLUSIVE MODE").unwrap();
            locked.send(()).unwrap();
            let _ = wait_unlock.recv();
            transaction.commit().unwrap();
        })
    };
    wait_locked.await.unwrap();
    let first = {
        let (store, client_id) = (store.clone(), client_id.clone());
        tokio::spawn(async move { store.participant(&client_id).await })
    };
    let waiting = "SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND relation = 'participant'::regclass";
    let started = std::time::Instant::now();
    while count(&url, waiting).await == 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "the first read never waited");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let started = std::time::Instant::now();
    let refused = store.participant(&client_id).await.expect_err("no connection is free");
    let waited = started.elapsed();
    assert!(refused.to_string().contains("no database connection was free within 300 ms"), "{refused}");
    assert!(waited >= settings.pool_wait, "it waited for a connection first: {waited:?}");

    unlock.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(first.await.unwrap().unwrap(), None, "the call holding the connection is answered");
    assert_eq!(store.participant(&client_id).await.unwrap(), None, "the connection went back to the pool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_postgres_write_is_run_again_up_to_the_serialisation_retries_then_fails() {
    let url = conformance::postgres_test_url();
    let url = conformance::postgres_scratch_schema(&url);
    let mut settings = PostgresSettings::new(url.clone());
    settings.serialization_retries = 3;
    let store = PostgresStore::open(&settings).await.unwrap();
    fail_inserts(&url, "payer").await;
    let payer = |id: &str| ocpay_core::payer::Payer {
        id: ocpay_core::payer::PayerId::parse(id).unwrap(),
        environment: ocpay_core::participant::Environment::Sandbox,
        currency: ocpay_core::money::Currency::parse("USD").unwrap(),
        pin_hash: None,
        pin_failures: 0,
        locked_until: None,
        created_at: jiff::Timestamp::now(),
    };

    execute(&url, "INSERT INTO forced VALUES (3)").await;
    let retried = payer("sandbox-retried");
    store.create_payer(&retried).await.expect("three failures are within three retries");
    assert_eq!(count(&url, "SELECT last_value FROM attempts").await, 4);
    assert!(store.payer(&retried.id).await.unwrap().is_some());

    execute(&url, "UPDATE forced SET failures = 4; ALTER SEQUENCE attempts RESTART").await;
    let lost = payer("sandbox-lost");
    let error = store.create_payer(&lost).await.expect_err("four failures exhaust three retries");
    assert!(matches!(error, ocpay_store::StoreError::Database(_)), "{error:?}");
    assert!(error.to_string().contains("40001"), "{error}");
    assert_eq!(count(&url, "SELECT last_value FROM attempts").await, 4, "run once and again three times");
    assert_eq!(store.payer(&lost.id).await.unwrap(), None, "nothing of it was stored");
}

/// Makes inserts into `table` fail: the first `failures` (a row of the table `forced`) as
/// PostgreSQL fails a transaction that cannot serialise, and every one while `failures` is
/// negative with an error that is not worth a retry. A sequence, which no rollback undoes,
/// counts the attempts.
async fn fail_inserts(url: &str, table: &str) {
    execute(
        url,
        &format!(
            "CREATE SEQUENCE attempts; CREATE TABLE forced (failures BIGINT NOT NULL); \
             CREATE FUNCTION fail_inserts() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF (SELECT failures FROM forced) < 0 THEN \
                 RAISE EXCEPTION 'refused (forced)'; \
               END IF; \
               IF nextval('attempts') <= (SELECT failures FROM forced) THEN \
                 RAISE EXCEPTION 'could not serialize access (forced)' USING ERRCODE = 'serialization_failure'; \
               END IF; \
               RETURN NEW; \
             END $$; \
             CREATE TRIGGER fail_inserts BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION fail_inserts();"
        ),
    )
    .await;
}

fn audit_event(merchant: &ocpay_core::ids::ClientId, n: i64) -> ocpay_store::AuditEvent {
    ocpay_store::AuditEvent {
        at: jiff::Timestamp::from_second(1_700_000_000 + n).unwrap(),
        client_id: merchant.clone(),
        key_version: Some(1),
        agent: None,
        merchant: merchant.clone(),
        api: "pay".into(),
        idempotency_key: Some(format!("R-{n}")),
        result_status: "S".into(),
        result_code: "SUCCESS".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn a_failure_of_a_postgres_statement_sent_with_the_commit_fails_or_reruns_the_whole_write() {
    // A payment's audit event is sent with the COMMIT, not on its own: its failure must still
    // undo the payment, and a serialisation failure must still run the whole write again.
    let url = conformance::postgres_scratch_schema(&conformance::postgres_test_url());
    let store = open(&url).await;
    fail_inserts(&url, "audit_event").await;
    let owner = ocpay_core::ids::ClientId::parse("DEFERRED").unwrap();
    let pay = |n: i64| {
        let (store, owner) = (&store, owner.clone());
        async move {
            let terms = conformance::sample_terms(&owner, &format!("R-{n}"), 100);
            store.create_payment_audited(&terms, Some(&audit_event(&owner, n))).await
        }
    };
    let stored = |n: i64| {
        let (store, owner) = (&store, owner.clone());
        async move {
            let lookup = PaymentLookup::ByRequestId(PaymentRequestId::parse(&format!("R-{n}")).unwrap());
            store.payment(&owner, &lookup).await.unwrap().is_some()
        }
    };

    execute(&url, "INSERT INTO forced VALUES (2)").await;
    assert!(matches!(pay(1).await.unwrap(), CreatePayment::Created(_)));
    assert_eq!(count(&url, "SELECT last_value FROM attempts").await, 3, "run again twice");
    assert!(stored(1).await);
    assert_eq!(store.audit_events(&owner, 10).await.unwrap(), [audit_event(&owner, 1)]);

    execute(&url, "UPDATE forced SET failures = -1").await;
    let refused = pay(2).await.expect_err("the audit event's failure fails the payment");
    assert!(refused.to_string().contains("refused (forced)"), "{refused}");
    assert!(!stored(2).await, "nothing of it was stored");
    assert_eq!(store.audit_events(&owner, 10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn pooled_postgres_connections_the_server_dropped_are_replaced_without_running_anything_twice() {
    let url = conformance::postgres_scratch_schema(&conformance::postgres_test_url());
    let application = format!("ocpay_dropped_{}", std::process::id());
    let store = open(&format!("{url}&application_name={application}")).await;
    let owner = ocpay_core::ids::ClientId::parse("DROPPED").unwrap();
    let terminate = format!(
        "SELECT COUNT(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE application_name = '{application}'"
    );
    let terms = conformance::sample_terms(&owner, "R-1", 100);
    store.create_payment_audited(&terms, Some(&audit_event(&owner, 1))).await.unwrap();

    // A read, a write whose first statement waits for its answer, and a write whose statements
    // all go with its COMMIT, each on a pooled connection the server has just dropped.
    assert_eq!(count(&url, &terminate).await, 1, "the pooled connection is dropped");
    let lookup = PaymentLookup::ByRequestId(terms.request_id.clone());
    assert!(store.payment(&owner, &lookup).await.unwrap().is_some());
    assert_eq!(count(&url, &terminate).await, 1);
    let second = conformance::sample_terms(&owner, "R-2", 100);
    let created = store.create_payment_audited(&second, Some(&audit_event(&owner, 2))).await.unwrap();
    assert!(matches!(created, CreatePayment::Created(_)));
    assert_eq!(count(&url, &terminate).await, 1);
    store.record_audit(&[audit_event(&owner, 3)]).await.unwrap();

    let events = store.audit_events(&owner, 10).await.unwrap();
    assert_eq!(events.len(), 3, "each event stored once: {events:?}");
    assert_eq!(count(&url, "SELECT COUNT(*) FROM payment").await, 2);
}
