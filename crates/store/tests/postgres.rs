//! Runs the store conformance suite against PostgreSQL (each check in a schema of its own),
//! plus the check that only makes sense there: nodes that start together migrate once. The
//! races between nodes run in the `ocpay` command's tests, between two server processes.

use std::sync::Arc;

use ocpay_store::postgres::{PostgresSettings, PostgresStore};
use ocpay_store::{Store, conformance};

async fn open(url: &str) -> PostgresStore {
    PostgresStore::open(&PostgresSettings::new(url)).await.expect("open the PostgreSQL store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_conforms() {
    let Some(url) = conformance::postgres_test_url() else { return };
    conformance::run_all(|| {
        let url = url.clone();
        async move { Arc::new(open(&conformance::postgres_scratch_schema(&url)).await) as Arc<dyn Store> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_start_together_migrate_once() {
    let Some(url) = conformance::postgres_test_url() else { return };
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
async fn the_ledger_check_reports_an_entry_without_its_posting() {
    // PostgreSQL keeps no foreign key from entries to postings (it made concurrent payments
    // fail to serialise), so the ledger check must find what the key would have refused.
    let Some(url) = conformance::postgres_test_url() else { return };
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
async fn tls_is_used_and_the_servers_certificate_verified() {
    let Some(url) = conformance::postgres_test_url() else { return };
    let admin = url.clone();
    let certificate = tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        let on: String = client.query_one("SHOW ssl", &[]).unwrap().get(0);
        let file: String = client.query_one("SHOW ssl_cert_file", &[]).unwrap().get(0);
        (on == "on").then_some(file)
    })
    .await
    .unwrap();
    let Some(certificate) = certificate.filter(|file| std::fs::metadata(file).is_ok()) else {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "the TLS test needs PostgreSQL with ssl = on");
        eprintln!("skipped: PostgreSQL has no readable TLS certificate");
        return;
    };
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
