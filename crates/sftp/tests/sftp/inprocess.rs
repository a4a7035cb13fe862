//! A server on a temporary SQLite store whose participant C1 has an SFTP account with a
//! password, and russh's own client to log in to it: no OpenSSH is needed, and many logins can
//! really be in flight together.

use std::sync::{Arc, Mutex};

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

/// A client that trusts only the server's host key, and keeps the message of the disconnect
/// the server sends.
pub(super) struct Client {
    host_key: PublicKey,
    disconnect: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, offered: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = offered else { return Ok(false) };
        Ok(key.key_data() == self.host_key.key_data())
    }

    async fn disconnected(
        &mut self,
        reason: client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        match reason {
            client::DisconnectReason::ReceivedDisconnect(info) => {
                *self.disconnect.lock().unwrap() = Some(info.message);
                Ok(())
            }
            client::DisconnectReason::Error(error) => Err(error),
        }
    }
}

/// A logged-in connection, and the message of the server's disconnect once it has come.
pub(super) struct Login {
    pub(super) handle: client::Handle<Client>,
    pub(super) disconnect: Arc<Mutex<Option<String>>>,
}

pub(super) struct Server {
    _dir: tempfile::TempDir,
    pub(super) store: Arc<dyn Store>,
    pub(super) clock: Arc<ManualClock>,
    pub(super) settings: SftpSettings,
    host_key: PublicKey,
    running: Option<Running>,
}

impl Server {
    /// A server whose participant C1 has an SFTP account with a password, and `settings`
    /// changed by `change`.
    pub(super) async fn start(change: impl FnOnce(&mut SftpSettings)) -> Server {
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
        Server { _dir: dir, store, clock, settings, host_key, running: Some(running) }
    }

    pub(super) fn address(&self) -> std::net::SocketAddr {
        self.running.as_ref().expect("the server runs").local_addr()
    }

    /// Stops the server ([`Running::stop`]).
    pub(super) async fn stop(&mut self) {
        self.running.take().expect("the server runs").stop().await;
    }

    /// A connection that has logged in as `user` with `password`, or `None` if refused.
    pub(super) async fn login(&self, user: &str, password: &str) -> Option<Login> {
        let config = Arc::new(client::Config::default());
        let disconnect = Arc::new(Mutex::new(None));
        let handler = Client { host_key: self.host_key.clone(), disconnect: disconnect.clone() };
        let mut handle = client::connect(config, self.address(), handler).await.unwrap();
        let result = handle.authenticate_password(user, password).await.unwrap();
        result.success().then_some(Login { handle, disconnect })
    }

    /// How many login refusals of C1 the audit trail has with `code`.
    pub(super) async fn refusals(&self, code: &str) -> usize {
        let events = self.store.audit_events(&client("C1"), 1_000).await.unwrap();
        events
            .iter()
            .filter(|event| event.api == ocpay_sftp::AUDIT_LOGIN && event.result_code == code)
            .count()
    }
}
