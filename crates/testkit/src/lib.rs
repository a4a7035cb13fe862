//! Test helpers for ocpay: a real server on a free port with its own data directory and a
//! controllable clock, participants with fresh RSA keys and SDK clients, sample requests, and
//! a notification receiver that records what it gets and answers as a test scripts.
//!
//! Only ever a dev-dependency.

mod receiver;
pub mod tls;

pub use ocpay_store::sql::StatementFaults;
pub use receiver::{Received, Receiver, Reply};

use std::net::SocketAddr;
use std::sync::Arc;

use jiff::Timestamp;
use ocpay_core::participant::{Environment, ParticipantKind};
use ocpay_protocol::model::{Amount, Merchant, Order, Store};
use ocpay_protocol::payments::PayRequest;
use ocpay_protocol::registrations::{
    Address, MerchantRegistrationInfo, PRODUCT_CODE_IN_STORE, RegistrationDetail, RegistrationRequest,
    StoreRegistrationInfo,
};
use ocpay_protocol::{SigningKey, VerifyingKey};
use ocpay_sdk::{Client, ClientBuilder};
pub use ocpay_server::clock::{Clock, ManualClock};
use ocpay_server::service::participants::{self, NewParticipant};
use ocpay_server::state::AppState;
use ocpay_server::{Application, Config, HttpUrl};

/// A running server for one test, on a runtime of its own so that a crash can stop every
/// task it started. Dropping it stops the server as a crash would.
pub struct TestApp {
    pub address: SocketAddr,
    pub base_url: String,
    pub state: Arc<AppState>,
    pub clock: Arc<ManualClock>,
    pub platform_key: VerifyingKey,
    pub data_dir: Arc<tempfile::TempDir>,
    /// Failures of the server's store on purpose: of every write (`fail_writes`), or of one
    /// statement inside a write's transaction (`fail_once`).
    pub faults: Arc<StatementFaults>,
    config: Config,
    /// The listener's TLS, when the configuration names a certificate.
    tls: Option<Arc<ocpay_server::tls::Tls>>,
    /// Runs the server, its notifier, timer job, audit writer and connections, and nothing else.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl TestApp {
    /// A server with default settings (background jobs polling fast), its clock at the real
    /// current time.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// A server whose configuration `adjust` may change first.
    ///
    /// Its store is an SQLite file in its data directory, or, when `OCPAY_TEST_STORE` is
    /// `postgres`, a new schema of its own in the PostgreSQL database the store's tests use
    /// (`OCPAY_TEST_DATABASE_URL`), so that the same tests run on either.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let data_dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
        let mut config = Config {
            data_dir: data_dir.path().join("data"),
            database_url: test_database_url(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            notify_poll_interval_ms: 20,
            timers_poll_interval_ms: 20,
            settlement_poll_interval_ms: 20,
            retention_poll_interval_ms: 20,
            retention_pause_ms: 1,
            notify_timeout_ms: 2_000,
            pin_hash_iterations: 1_000,
            // The cheapest argon2id the settings take: tests sign in hundreds of times.
            portal_argon2_memory_kib: 8 * 1024,
            portal_argon2_iterations: 1,
            ..Config::default()
        };
        adjust(&mut config);
        let clock = Arc::new(ManualClock::new(Timestamp::now()));
        TestApp::start(config, clock, data_dir).await
    }

    async fn start(config: Config, clock: Arc<ManualClock>, data_dir: Arc<tempfile::TempDir>) -> TestApp {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ocpay-test-server")
            .enable_all()
            .build()
            .expect("a runtime for the server");
        let faults = Arc::new(StatementFaults::new());
        let app = runtime
            .spawn(Application::build_with_faults(config.clone(), clock.clone(), Some(faults.clone())))
            .await
            .expect("building the server does not panic")
            .expect("the server builds")
            .with_pages(ocpay_web::router);
        let address = app.local_addr();
        let tls = app.tls();
        // With TLS, the public URL's default: https://127.0.0.1:<port>, which the test
        // certificates name.
        let base_url = if tls.is_some() { app.public_url().to_owned() } else { format!("http://{address}") };
        let state = app.state();
        let platform_key = state.platform_signer().1.verifying_key();
        runtime.spawn(async move {
            app.run(std::future::pending()).await.expect("the server runs");
        });
        TestApp {
            address,
            base_url,
            state,
            clock,
            platform_key,
            data_dir,
            faults,
            config,
            tls,
            runtime: Some(runtime),
        }
    }

    /// Reloads the listener's certificate and key from their files, as SIGHUP does.
    pub fn reload_tls(&self) -> Result<ocpay_server::tls::Loaded, ocpay_server::tls::TlsError> {
        self.tls.as_ref().expect("the server speaks HTTPS").reload()
    }

    /// Kills the server as a crash would: every task it started (requests in flight, the
    /// notifier and its attempts, the timer job, the audit writer) stops at once, without a
    /// graceful shutdown, so claims and queued work are abandoned. Then starts a new server on
    /// the same data directory and clock, on a new port.
    pub async fn crash_and_restart(mut self) -> TestApp {
        if let Some(runtime) = self.runtime.take() {
            // A dead process writes nothing: a task being polled while the runtime stops (an
            // attempt that saw its connection go with it) must not record its end, as a crashed
            // server never would, so from here on the old server's writes fail.
            self.faults.fail_writes(true);
            // Waits (off the test's runtime) until the old server's threads have stopped.
            tokio::task::spawn_blocking(move || runtime.shutdown_timeout(std::time::Duration::from_secs(10)))
                .await
                .expect("the old server stops");
            // Writes its tasks had queued may still be on the store's own thread: let them fail
            // now (as if the crash came before their commit) rather than after the new server
            // has started and released the claims of the old one. An empty write is queued
            // behind them and changes nothing, claims included, so the new server's start is
            // what must release them.
            let _ = self.state.store.record_audit(&[]).await;
        }
        let (config, clock, data_dir) = (self.config.clone(), self.clock.clone(), self.data_dir.clone());
        drop(self);
        TestApp::start(config, clock, data_dir).await
    }

    /// Waits (up to ten seconds) until the timer job, the retention job, then the notifier, have
    /// each finished a whole round that started after this call: whatever was due when it was
    /// called has been done (pruning included), notifications the timer job queued included, so
    /// that a test can tell that something did not happen without sleeping.
    pub async fn background_rounds(&self) {
        let rounds = async {
            self.state.rounds.timers.next_whole().await;
            self.state.rounds.retention.next_whole().await;
            self.state.rounds.notifier.next_whole().await;
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), rounds)
            .await
            .expect("the background jobs finish a whole round within ten seconds");
    }

    /// The admin API's bearer token.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.config.data_dir.join("admin-token"))
            .expect("the admin token")
            .trim()
            .to_owned()
    }

    /// A sandbox merchant with a default notify URL.
    pub async fn merchant(&self) -> TestParticipant {
        self.participant(
            ParticipantKind::Merchant,
            Environment::Sandbox,
            Some("https://merchant.example/notify"),
        )
        .await
    }

    /// A sandbox acquirer, which registers secondary merchants before it pays for them.
    pub async fn acquirer(&self) -> TestParticipant {
        self.participant(
            ParticipantKind::Acquirer,
            Environment::Sandbox,
            Some("https://acquirer.example/notify"),
        )
        .await
    }

    /// A sandbox merchant whose notifications go to `receiver`.
    pub async fn merchant_notified_at(&self, receiver: &Receiver) -> TestParticipant {
        self.participant(ParticipantKind::Merchant, Environment::Sandbox, Some(&receiver.url)).await
    }

    /// A participant with a new RSA-2048 key as version 1.
    pub async fn participant(
        &self,
        kind: ParticipantKind,
        environment: Environment,
        notify_url: Option<&str>,
    ) -> TestParticipant {
        let key = SigningKey::generate().expect("an RSA key");
        let new = NewParticipant {
            kind,
            environment,
            name: "Test participant".parse().expect("a name"),
            public_key: key.verifying_key(),
            notify_url: notify_url.map(|url| HttpUrl::parse(url).expect("a notify URL")),
        };
        let participant =
            participants::create(&*self.state.store, &self.state.settings.notify, self.clock.now(), new)
                .await
                .expect("create a participant");
        let client_id = participant.client_id.to_string();
        let client = self.client_builder(&client_id, key.clone()).build().expect("an SDK client");
        TestParticipant { client_id, key, client }
    }

    /// An SDK client builder for this server, its `Request-Time` following the server's clock.
    pub fn client_builder(&self, client_id: &str, key: SigningKey) -> ClientBuilder {
        let clock = self.clock.clone();
        Client::builder(&self.base_url, client_id, key, self.platform_key.clone())
            .attempts_max(1)
            .clock(move || clock.now())
    }
}

/// The PostgreSQL database of a test server, when `OCPAY_TEST_STORE=postgres` asks for one: a
/// missing server then fails the test, since it was asked for by name.
fn test_database_url() -> Option<String> {
    match std::env::var("OCPAY_TEST_STORE").as_deref() {
        Ok("postgres") => {
            let url = ocpay_store::conformance::postgres_test_url();
            Some(ocpay_store::conformance::postgres_scratch_schema(&url))
        }
        Ok("sqlite") | Err(_) => None,
        Ok(other) => panic!("OCPAY_TEST_STORE is sqlite or postgres, not {other:?}"),
    }
}

/// A participant of a [`TestApp`] with its key and a ready SDK client.
pub struct TestParticipant {
    pub client_id: String,
    pub key: SigningKey,
    pub client: Client,
}

/// An order-code `pay` request for a coffee shop, `amount_minor` in `currency`.
pub fn pay_request(payment_request_id: &str, currency: &str, amount_minor: i64) -> PayRequest {
    let order = Order {
        reference_order_id: Some(format!("ORDER-{payment_request_id}")),
        order_description: Some("Two flat whites".into()),
        order_amount: Some(Amount::new(currency, amount_minor)),
        merchant: Some(Merchant {
            reference_merchant_id: Some("M0001".into()),
            merchant_name: Some("Demo Cafe".into()),
            merchant_mcc: Some("5812".into()),
            merchant_display_name: None,
            store: Some(Store {
                reference_store_id: Some("S0001".into()),
                store_name: Some("Demo Cafe Orchard".into()),
                store_mcc: Some("5812".into()),
            }),
        }),
    };
    PayRequest::order_code(payment_request_id, Amount::new(currency, amount_minor), order)
}

/// A `registration` request for a secondary merchant's store, in store payments only.
pub fn registration_request(
    registration_request_id: &str,
    reference_merchant_id: &str,
    reference_store_id: &str,
) -> RegistrationRequest {
    RegistrationRequest {
        registration_request_id: Some(registration_request_id.into()),
        registration_notify_url: None,
        pass_through_info: Some(format!("pass-{registration_request_id}")),
        merchant_info: Some(MerchantRegistrationInfo {
            reference_merchant_id: Some(reference_merchant_id.into()),
            merchant_display_name: Some("Corner Bakery".into()),
            merchant_mcc: Some("5462".into()),
            registration_detail: Some(RegistrationDetail {
                legal_name: Some("Corner Bakery Pte Ltd".into()),
                registration_no: Some("201912345K".into()),
                ..RegistrationDetail::default()
            }),
            ..MerchantRegistrationInfo::default()
        }),
        product_codes: Some(vec![PRODUCT_CODE_IN_STORE.into()]),
        store_info: Some(StoreRegistrationInfo {
            reference_store_id: Some(reference_store_id.into()),
            store_name: Some("Corner Bakery Tanjong Pagar".into()),
            store_mcc: Some("5462".into()),
            store_address: Some(Address {
                region: Some("SG".into()),
                city: Some("Singapore".into()),
                address1: Some("1 Tanjong Pagar Road".into()),
                ..Address::default()
            }),
        }),
    }
}

/// A `pay` request of an acquirer for one of its secondary merchants' stores.
pub fn pay_request_for(
    payment_request_id: &str,
    reference_merchant_id: &str,
    reference_store_id: &str,
    amount_minor: i64,
) -> PayRequest {
    let mut request = pay_request(payment_request_id, "USD", amount_minor);
    if let Some(merchant) = request.order.as_mut().and_then(|order| order.merchant.as_mut()) {
        merchant.reference_merchant_id = Some(reference_merchant_id.into());
        if let Some(store) = merchant.store.as_mut() {
            store.reference_store_id = Some(reference_store_id.into());
        }
    }
    request
}

/// A unique id for a test's requests.
pub fn unique_id(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{n}", Timestamp::now().as_microsecond())
}
