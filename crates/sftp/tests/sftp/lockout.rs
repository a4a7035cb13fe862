//! Password guesses made at once, from russh's own client (so that no OpenSSH is needed and
//! the guesses really are in flight together): each counts before its password is checked, so
//! that no more are checked than the lockout allows, and the lock holds against the right
//! password once they are done.

use std::sync::Arc;

use jiff::SignedDuration;
use ocpay_core::access::Scopes;
use ocpay_core::participant::{Participant, ParticipantKind};
use ocpay_server::clock::ManualClock;
use ocpay_server::config::Config;
use ocpay_server::settings::{Settings, SftpSettings};
use ocpay_sftp::{Running, SftpContext, accounts, host_key};
use ocpay_store::sqlite::{SqliteSettings, SqliteStore};
use ocpay_store::{NewKey, SftpAccountChange, Store};
use russh::client;
use russh::keys::{PublicKey, PublicKeyOrCertificate};

use super::{PASSWORD, client, start_time};

/// A client that trusts only the server's host key.
struct Client {
    host_key: PublicKey,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, offered: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(
            matches!(offered, PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.host_key.key_data()),
        )
    }
}

struct Server {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    settings: SftpSettings,
    host_key: PublicKey,
    running: Running,
}

impl Server {
    /// A server whose participant C1 has an SFTP account with a password, and `settings`
    /// changed by `change`.
    async fn start(change: impl FnOnce(&mut SftpSettings)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&SqliteSettings::new(dir.path().join("ocpay.db"))).await.unwrap());
        let clock = Arc::new(ManualClock::new(start_time()));
        let participant = Participant {
            client_id: client("C1"),
            kind: ParticipantKind::Merchant,
            name: "C1 Ltd".parse().unwrap(),
            notify_url: None,
            created_at: start_time(),
        };
        let key = NewKey {
            public_key_der: vec![1; 8],
            label: None,
            scopes: Scopes::ALL,
            created_at: start_time(),
            expires_at: None,
        };
        store.create_participant(&participant, &key).await.unwrap();
        let account = SftpAccountChange {
            client_id: client("C1"),
            add_public_key: None,
            password_hash: Some(accounts::hash_password(PASSWORD).unwrap()),
            allowed_networks: None,
        };
        store.upsert_sftp_account(&account, start_time()).await.unwrap();

        let mut settings = Settings::resolve(&Config::default()).unwrap().sftp;
        settings.auth_timeout = std::time::Duration::from_secs(30);
        change(&mut settings);
        let key = host_key::load_or_create(dir.path()).unwrap();
        let host_key = key.public_key().clone();
        let context = SftpContext {
            store: store.clone(),
            clock: clock.clone(),
            settings: settings.clone(),
            reports_root: ocpay_settlement::reports_root(dir.path()),
            host_key: key,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = ocpay_sftp::start(context, listener).await.unwrap();
        Server { _dir: dir, store, clock, settings, host_key, running }
    }

    /// A connection that has logged in as `user` with `password`, or `None` if refused.
    async fn login(&self, user: &str, password: &str) -> Option<client::Handle<Client>> {
        let config = Arc::new(client::Config::default());
        let handler = Client { host_key: self.host_key.clone() };
        let mut handle = client::connect(config, self.running.local_addr(), handler).await.unwrap();
        let result = handle.authenticate_password(user, password).await.unwrap();
        result.success().then_some(handle)
    }

    /// How many login refusals of C1 the audit trail has with `code`.
    async fn refusals(&self, code: &str) -> usize {
        let events = self.store.audit_events(&client("C1"), 1_000).await.unwrap();
        events
            .iter()
            .filter(|event| event.api == ocpay_sftp::AUDIT_LOGIN && event.result_code == code)
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_password_guesses_stop_at_the_lockout_and_the_lock_holds() {
    let server = Server::start(|_| {}).await;
    let max = server.settings.login_failures_max;
    let guesses = max as usize * 2;
    assert!(guesses <= server.settings.connections_per_ip_max, "every guess gets a connection");
    let server = Arc::new(server);
    let attempts: Vec<_> = (0..guesses)
        .map(|guess| {
            let server = server.clone();
            tokio::spawn(async move { server.login("C1", &format!("guess {guess}")).await.is_none() })
        })
        .collect();
    for attempt in attempts {
        assert!(attempt.await.unwrap(), "a wrong password was accepted");
    }
    // Each password checked and found wrong is audited as such; the others were refused as
    // locked before any check.
    assert_eq!(server.refusals("WRONG_PASSWORD").await, max as usize, "no more checks than the limit");
    assert_eq!(server.refusals("LOCKED").await, guesses - max as usize);
    let account = server.store.sftp_account(&client("C1")).await.unwrap().unwrap();
    let lockout = server.settings.lockout;
    assert_eq!((account.failures, account.locked_until), (max, Some(start_time() + lockout)));

    assert!(server.login("C1", PASSWORD).await.is_none(), "the right password while locked");
    assert_eq!(server.refusals("LOCKED").await, guesses - max as usize + 1);

    server.clock.advance(lockout + SignedDuration::from_secs(1));
    let session = server.login("C1", PASSWORD).await;
    assert!(session.is_some(), "the right password once the lockout is over");
    let account = server.store.sftp_account(&client("C1")).await.unwrap().unwrap();
    assert_eq!((account.failures, account.locked_until), (0, None), "a success clears the count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_password_refused_for_too_many_sessions_does_not_count_as_a_failure() {
    let server = Server::start(|settings| settings.sessions_per_account_max = 1).await;
    let open = server.login("C1", PASSWORD).await;
    assert!(open.is_some());
    for _ in 0..server.settings.login_failures_max + 1 {
        assert!(server.login("C1", PASSWORD).await.is_none(), "one session at a time");
    }
    assert_eq!(server.refusals("TOO_MANY_SESSIONS").await, server.settings.login_failures_max as usize + 1);
    let account = server.store.sftp_account(&client("C1")).await.unwrap().unwrap();
    assert_eq!((account.failures, account.locked_until), (0, None), "the right password locks nothing");
    drop(open);
}
