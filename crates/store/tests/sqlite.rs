//! Runs the store conformance suite against the embedded SQLite store (`on_sqlite::<check>`), plus
//! the checks that only make sense for SQLite: its files and settings, and group commit.

use std::sync::Arc;

use ocpay_store::conformance;
use ocpay_store::prelude::*;
use ocpay_store::sql::StatementFaults;
use ocpay_store::sqlite::{SqliteSettings, SqliteStore};

async fn open(dir: &tempfile::TempDir, name: &str) -> SqliteStore {
    SqliteStore::open(&SqliteSettings::new(dir.path().join(name))).await.expect("open the store")
}

/// A new, empty store in a directory of its own, which must live as long as the store.
async fn new_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (open(&dir, "ocpay.db").await, dir)
}

ocpay_store::conformance_tests! {
    fn on_sqlite(new_store);
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
            name: "Alice".parse().expect("a name"),
            notify_url: None,
            created_at: ocpay_core::Timestamp::UNIX_EPOCH,
        };
        let key = ocpay_store::NewKey {
            public_key_der: vec![1],
            label: None,
            scopes: ocpay_core::access::Scopes::ALL,
            created_at: ocpay_core::Timestamp::UNIX_EPOCH,
            expires_at: None,
        };
        store.create_participant(&participant, &key).await.unwrap();
    }
    let store = open(&dir, "ocpay.db").await;
    assert!(store.participant(&owner).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_previous_schema_is_upgraded_with_its_audit_trail() {
    // The main file as the release before migration 7 left it, with an audit event of a
    // merchant acting for itself and one of an ISV acting for a merchant.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ocpay.db");
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        for migration in [
            include_str!("../migrations/sqlite/main/0001_payments.sql"),
            include_str!("../migrations/sqlite/main/0002_wallets_ledger_outbox.sql"),
            include_str!("../migrations/sqlite/main/0003_refunds.sql"),
            include_str!("../migrations/sqlite/main/0004_ledger_environments.sql"),
            include_str!("../migrations/sqlite/main/0005_grants_audit.sql"),
            include_str!("../migrations/sqlite/main/0006_registrations.sql"),
        ] {
            connection.execute_batch(migration).unwrap();
        }
        connection.pragma_update(None, "user_version", 6).unwrap();
        connection
            .execute_batch(
                "INSERT INTO audit_event (at_ms, client_id, key_version, agent_client_id, merchant_client_id, api, \
                 idempotency_key, result_status, result_code) VALUES \
                 (1000, 'ALICE', 1, NULL, 'ALICE', 'pay', 'P-1', 'S', 'SUCCESS'), \
                 (2000, 'ISV1', 1, 'ISV1', 'ALICE', 'refund', 'R-1', 'S', 'SUCCESS')",
            )
            .unwrap();
    }
    let store = open(&dir, "ocpay.db").await;
    let alice = ocpay_core::ids::ClientId::parse("ALICE").unwrap();
    let events = store.audit_events(&alice, 10).await.unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|event| (event.client_id.as_str(), event.merchant.as_str(), event.idempotency_key.as_deref()))
        .collect();
    assert_eq!(seen, [("ISV1", "ALICE", Some("R-1")), ("ALICE", "ALICE", Some("P-1"))], "every event kept");
    let connection = rusqlite::Connection::open(&path).unwrap();
    let own: Option<String> = connection
        .query_row("SELECT merchant_client_id FROM audit_event WHERE client_id = 'ALICE'", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(own, None, "a signer's own rows leave the merchant index");
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    assert_eq!(usize::try_from(version).unwrap(), ocpay_store::sqlite::SCHEMA_VERSIONS.0);
    connection.prepare("SELECT agent_client_id FROM refund").expect("refunds record their ISV");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_are_in_wal_mode_with_the_whole_schema() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SqliteSettings::new(dir.path().join("ocpay.db"));
    let _store = SqliteStore::open(&settings).await.unwrap();
    assert_eq!(settings.participants_path(), dir.path().join("ocpay-participants.db"));
    let (main, participants) = ocpay_store::sqlite::SCHEMA_VERSIONS;
    assert!(main >= 5 && participants >= 2);
    for (path, version_expected) in
        [(settings.path.clone(), main), (settings.participants_path(), participants)]
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        let mode: String = connection.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
        assert_eq!(mode, "wal", "{}", path.display());
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
        let version = usize::try_from(version).unwrap();
        assert_eq!(version, version_expected, "every migration of {} is applied and counted", path.display());
        let check: String = connection.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
        assert_eq!(check, "ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_fail_alone() {
    use ocpay_core::participant::{Participant, ParticipantKind};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir, "ocpay.db").await);
    let participant = |name: &str| Participant {
        client_id: ocpay_core::ids::ClientId::parse(name).unwrap(),
        kind: ParticipantKind::Merchant,
        name: name.parse().expect("a name"),
        notify_url: None,
        created_at: ocpay_core::Timestamp::UNIX_EPOCH,
    };
    let key = ocpay_store::NewKey {
        public_key_der: vec![1],
        label: None,
        scopes: ocpay_core::access::Scopes::ALL,
        created_at: ocpay_core::Timestamp::UNIX_EPOCH,
        expires_at: None,
    };
    store.create_participant(&participant("ALICE"), &key).await.unwrap();
    let owner = ocpay_core::ids::ClientId::parse("ALICE").unwrap();
    let before = store.write_stats().batches.load(std::sync::atomic::Ordering::Relaxed);
    let mut tasks = Vec::new();
    for n in 0..200 {
        let store = store.clone();
        let owner = owner.clone();
        let key = key.clone();
        let duplicate = participant("ALICE");
        tasks.push(tokio::spawn(async move {
            if n % 10 == 0 {
                // Every tenth write fails inside whatever batch it lands in.
                store.create_participant(&duplicate, &key).await.map(|_| false)
            } else {
                let mut terms = conformance::sample_terms(&owner, &format!("R{n}"), 100);
                terms.id = ocpay_core::ids::PaymentId::parse(&format!("P{n}")).unwrap();
                terms.code_token = ocpay_core::ids::CodeToken::parse(&format!("T{n}")).unwrap();
                store.create_payment(&terms).await.map(|_| true)
            }
        }));
    }
    let mut created = 0;
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(true) => created += 1,
            Err(ocpay_store::StoreError::Conflict(_)) => conflicts += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((created, conflicts), (180, 20), "each failing write failed alone");
    for n in (0..200).filter(|n| n % 10 != 0) {
        let lookup =
            ocpay_store::PaymentLookup::ById(ocpay_core::ids::PaymentId::parse(&format!("P{n}")).unwrap());
        assert!(store.payment(&owner, &lookup).await.unwrap().is_some(), "payment {n} was committed");
    }
    let batches = store.write_stats().batches.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert!(batches < 200, "200 concurrent writes shared commits: {batches} batches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_an_older_file_keeps_its_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ocpay.db");
    {
        // A file as the previous release left it: schema version 2 and a top-up on the books.
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection.execute_batch(include_str!("../migrations/sqlite/main/0001_payments.sql")).unwrap();
        connection
            .execute_batch(include_str!("../migrations/sqlite/main/0002_wallets_ledger_outbox.sql"))
            .unwrap();
        connection
            .execute_batch(
                "INSERT INTO payer (payer_id, environment, currency, pin_hash, created_at_ms) VALUES ('P', 'live', 'USD', 'h', 0);
                 INSERT INTO posting (posting_id, kind, payment_id, created_at_ms) VALUES (1, 'TOPUP', NULL, 0);
                 INSERT INTO entry VALUES (1, 'wallet:P:USD', 'USD', 500), (1, 'funding:USD', 'USD', -500);
                 INSERT INTO wallet_balance VALUES ('wallet:P:USD', 'USD', 500);
                 PRAGMA user_version = 2;",
            )
            .unwrap();
    }
    let store = open(&dir, "ocpay.db").await;
    let usd = ocpay_core::money::Currency::parse("USD").unwrap();
    let wallet = ocpay_core::ledger::Account::new(
        ocpay_core::ledger::AccountOwner::Wallet(ocpay_core::payer::PayerId::parse("P").unwrap()),
        usd,
    );
    assert_eq!(store.balance(&wallet).await.unwrap(), ocpay_core::money::Money::new(500, usd));
    let check = store.ledger_check().await.unwrap();
    assert!(check.is_sound(), "{check:?}");
    drop(store);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    let version = usize::try_from(version).unwrap();
    assert_eq!(version, ocpay_store::sqlite::SCHEMA_VERSIONS.0);
    let postings: i64 = connection.query_row("SELECT count(*) FROM posting", [], |row| row.get(0)).unwrap();
    assert_eq!(postings, 1, "the rebuilt posting table kept its rows");
    let funding: String = connection
        .query_row("SELECT account FROM entry WHERE amount_minor < 0", [], |row| row.get(0))
        .unwrap();
    assert_eq!(funding, "funding:live:USD", "the issuing account names the payer's environment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_beyond_the_pending_balance_leaves_the_merchant_owing() {
    use ocpay_core::ids::{RefundId, RefundRequestId};
    use ocpay_core::ledger::{Account, AccountOwner};
    use ocpay_core::money::{Currency, Money};
    use ocpay_core::participant::{Environment, Participant, ParticipantKind};
    use ocpay_core::payer::{Payer, PayerId};
    use ocpay_core::payment::Charge;
    use ocpay_core::refund::{RefundPolicy, RefundTerms};
    use ocpay_store::{CreateRefund, NewKey, NewRefund, RefundCompletion, SettlePayment, Settlement};

    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, "ocpay.db").await;
    let usd = Currency::parse("USD").unwrap();
    let now = ocpay_core::Timestamp::from_second(1_800_000_000).unwrap();
    let owner = ocpay_core::ids::ClientId::parse("ALICE").unwrap();
    let participant = Participant {
        client_id: owner.clone(),
        kind: ParticipantKind::Merchant,
        name: "Alice".parse().expect("a name"),
        notify_url: None,
        created_at: now,
    };
    let key = NewKey {
        public_key_der: vec![1],
        label: None,
        scopes: ocpay_core::access::Scopes::ALL,
        created_at: now,
        expires_at: None,
    };
    store.create_participant(&participant, &key).await.unwrap();
    let payer = Payer::new(PayerId::parse("P").unwrap(), Environment::Live, usd, Some("hash".into()), now);
    store.create_payer(&payer).await.unwrap();
    store.top_up(&payer.id, Money::new(1000, usd), now).await.unwrap();
    let terms = conformance::sample_terms(&owner, "PR-1", 1000);
    store.create_payment(&terms).await.unwrap();
    let charge = Charge { payer: payer.id.clone(), amount: Money::new(1000, usd), quote: None };
    let settlement =
        Settlement { code: terms.code_token.clone(), charge, now: terms.created_at, sandbox_top_up: None };
    assert!(matches!(store.settle_payment(&settlement).await.unwrap(), SettlePayment::Paid(_)));
    // Money leaves the pending balance as a payout will (settlement is not built yet): a
    // balanced posting of 900 from the merchant's pending balance to an outside account.
    let connection = rusqlite::Connection::open(dir.path().join("ocpay.db")).unwrap();
    connection
        .execute_batch(
            "INSERT INTO posting (posting_id, kind, payment_id, created_at_ms) VALUES (1000, 'PAYMENT', NULL, 0);
             INSERT INTO entry VALUES (1000, 'pending:ALICE:USD', 'USD', -900), (1000, 'payout:ALICE:USD', 'USD', 900);",
        )
        .unwrap();
    let pending = Account::new(AccountOwner::MerchantPending(owner.clone()), usd);
    assert_eq!(store.balance(&pending).await.unwrap(), Money::new(100, usd));

    let refund = NewRefund {
        terms: RefundTerms {
            id: RefundId::parse("R-1").unwrap(),
            owner: owner.clone(),
            request_id: RefundRequestId::parse("RR-1").unwrap(),
            payment_id: terms.id.clone(),
            amount: Money::new(600, usd),
            reference_refund_id: None,
            reason: None,
            notify_url: None,
            async_requested: false,
            created_at: terms.created_at,
            agent: None,
        },
        policy: RefundPolicy { window: jiff::SignedDuration::from_hours(24), multiple_allowed: true },
        completion: RefundCompletion::Now,
    };
    assert!(matches!(store.create_refund(&refund).await.unwrap(), CreateRefund::Created(_)), "honoured");
    assert_eq!(
        store.balance(&pending).await.unwrap(),
        Money::new(-500, usd),
        "the merchant owes the platform"
    );
    let wallet = Account::new(AccountOwner::Wallet(payer.id.clone()), usd);
    assert_eq!(store.balance(&wallet).await.unwrap(), Money::new(600, usd), "the payer has the refund");
    let check = store.ledger_check().await.unwrap();
    assert!(check.is_sound(), "{check:?}");
}

/// Group commit: a write that fails midway, inside the one transaction it shares with other
/// writes, leaves nothing of itself, and the others commit. Another connection holds the write
/// lock while the writes queue, so that they are sure to share one batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_fails_midway_in_a_shared_batch_rolls_back_alone() {
    use ocpay_core::ledger::{Account, AccountOwner};
    use ocpay_core::money::{Currency, Money};
    use ocpay_core::participant::{Environment, Participant, ParticipantKind};
    use ocpay_core::payer::{Payer, PayerId};
    use ocpay_core::payment::{Charge, PaymentState};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(StatementFaults::new());
    let store = Arc::new(open(&dir, "ocpay.db").await.with_statement_faults(faults.clone()));
    let at = |second: i64| ocpay_core::Timestamp::from_second(1_800_000_000 + second).unwrap();
    let usd = |minor| Money::new(minor, Currency::parse("USD").unwrap());
    let owner = ocpay_core::ids::ClientId::parse("ALICE").unwrap();
    let participant = Participant {
        client_id: owner.clone(),
        kind: ParticipantKind::Merchant,
        name: "Alice".parse().expect("a name"),
        notify_url: None,
        created_at: at(0),
    };
    let key = ocpay_store::NewKey {
        public_key_der: vec![1],
        label: None,
        scopes: ocpay_core::access::Scopes::ALL,
        created_at: at(0),
        expires_at: None,
    };
    store.create_participant(&participant, &key).await.unwrap();
    let mut payers = Vec::new();
    for name in ["PAYER", "NEIGHBOUR"] {
        let payer = Payer::new(
            PayerId::parse(name).unwrap(),
            Environment::Live,
            usd(0).currency(),
            Some("hash".into()),
            at(0),
        );
        store.create_payer(&payer).await.unwrap();
        payers.push(payer.id);
    }
    let (payer, neighbour) = (payers[0].clone(), payers[1].clone());
    store.top_up(&payer, usd(2000), at(1)).await.unwrap();
    let terms = conformance::sample_terms(&owner, "PR-FAULT", 1250);
    store.create_payment(&terms).await.unwrap();
    let settlement = ocpay_store::Settlement {
        code: terms.code_token.clone(),
        charge: Charge { payer: payer.clone(), amount: terms.amount, quote: None },
        now: at(100),
        sandbox_top_up: None,
    };
    let postings = store.ledger_check().await.unwrap().postings;

    let holder = rusqlite::Connection::open(dir.path().join("ocpay.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let stats = store.write_stats();
    let (batches, writes) = (stats.batches.load(Ordering::SeqCst), stats.writes.load(Ordering::SeqCst));
    let mut tasks = Vec::new();
    let top_up = |store: Arc<SqliteStore>, payer: PayerId| {
        tokio::spawn(async move { store.top_up(&payer, usd(1), at(100)).await.map(drop) })
    };
    // The writer takes this one alone and waits for the lock with it...
    tasks.push(top_up(store.clone(), neighbour.clone()));
    for _ in 0..500 {
        if stats.batches.load(Ordering::SeqCst) > batches {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // ...while these queue, to be run in the next batch, the settlement among them. It fails
    // after its posting and its payment's row, at its outbox row.
    faults.fail_once("INSERT INTO notification", 0);
    for n in 0..20 {
        if n == 10 {
            let (store, settlement) = (store.clone(), settlement.clone());
            tasks.push(tokio::spawn(async move { store.settle_payment(&settlement).await.map(drop) }));
        }
        tasks.push(top_up(store.clone(), neighbour.clone()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.execute_batch("COMMIT").unwrap();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(
        (stats.batches.load(Ordering::SeqCst) - batches, stats.writes.load(Ordering::SeqCst) - writes),
        (2, 22),
        "the first write ran alone and the 21 queued behind it shared one batch"
    );
    assert_eq!(faults.fired(), 1);
    let failed = results.iter().filter(|result| result.is_err()).count();
    assert!(results[11].is_err() && failed == 1, "only the settlement failed: {results:?}");
    let wallet = |payer: &PayerId| Account::new(AccountOwner::Wallet(payer.clone()), usd(0).currency());
    assert_eq!(store.balance(&wallet(&neighbour)).await.unwrap(), usd(21), "its neighbours committed");
    assert_eq!(store.balance(&wallet(&payer)).await.unwrap(), usd(2000), "its debit did not");
    let pending = Account::new(AccountOwner::MerchantPending(owner.clone()), usd(0).currency());
    assert_eq!(store.balance(&pending).await.unwrap(), usd(0), "nor its credit");
    let lookup = ocpay_store::PaymentLookup::ById(terms.id.clone());
    let stored = store.payment(&owner, &lookup).await.unwrap().unwrap();
    assert_eq!(stored.state, PaymentState::Processing, "nor its payment's row");
    assert!(store.notifications(terms.id.as_str()).await.unwrap().is_empty());
    let check = store.ledger_check().await.unwrap();
    assert!(check.is_sound(), "{check:?}");
    assert_eq!(check.postings, postings + 21, "the top-ups' postings only");
    let paid = store.settle_payment(&settlement).await.unwrap();
    assert!(matches!(paid, ocpay_store::SettlePayment::Paid(_)), "the store works on: {paid:?}");
}
