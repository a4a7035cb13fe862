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
