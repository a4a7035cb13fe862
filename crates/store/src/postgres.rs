//! The PostgreSQL store, for several `ocpay serve` nodes sharing one database.
//!
//! Every write runs in its own `SERIALIZABLE` transaction on a pooled connection. The business
//! SQL was written for SQLite's single writer, where a transaction sees nothing change under
//! it; `SERIALIZABLE` gives exactly that guarantee across nodes: PostgreSQL aborts one of two
//! transactions that would not have produced the same result one after the other, and the
//! engine runs the aborted one again from the start (up to a configured number of times). So
//! two payers of one code, a pay racing a cancel, two refunds of one payment and two copies of
//! one request resolve on PostgreSQL exactly as they do on SQLite.
//!
//! Reads run in a `REPEATABLE READ READ ONLY` transaction: one snapshot, never aborted.
//! Queue work (due notifications, expiries, refund completions, sandbox reviews) is picked with
//! `FOR UPDATE SKIP LOCKED`, and outbox claims are leases with an expiry, so a node that dies
//! holding claims only delays those notifications until their lease ends.
//!
//! The business SQL is synchronous (it runs on SQLite's writer thread too), so database calls
//! run in `block_in_place`, which needs the multi-threaded Tokio runtime. Each connection is a
//! `tokio-postgres` client driven on the calling thread by a runtime of its own, as the
//! synchronous `postgres` crate drives it, with one difference: requests that need no answer
//! before the next one are sent with it, in one round trip (see [`PostgresDb`]).

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::Semaphore;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;
use crate::sql::{
    Cell, Columns, Db, Dialect, Engine, Isolation, Row, SqlStore, StatementFaults, StatementKey, ToValue,
    Value, statement_key,
};

/// The schema, one migration per entry, applied in order and counted in `ocpay_schema`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_schema.sql"),
    include_str!("../migrations/postgres/0002_fees_settlement.sql"),
    include_str!("../migrations/postgres/0003_sftp_accounts.sql"),
    include_str!("../migrations/postgres/0004_portal.sql"),
    include_str!("../migrations/postgres/0005_api_log.sql"),
    include_str!("../migrations/postgres/0006_portal_reads.sql"),
    include_str!("../migrations/postgres/0007_audit_key_use.sql"),
    include_str!("../migrations/postgres/0008_portal_pages.sql"),
    include_str!("../migrations/postgres/0009_activity_days.sql"),
    include_str!("../migrations/postgres/0010_api_log_filters.sql"),
    include_str!("../migrations/postgres/0011_console.sql"),
    include_str!("../migrations/postgres/0012_console_reads.sql"),
    include_str!("../migrations/postgres/0013_failing_endpoints.sql"),
    include_str!("../migrations/postgres/0014_review_queue.sql"),
    include_str!("../migrations/postgres/0015_api_log_request_id.sql"),
    include_str!("../migrations/postgres/0016_audit_by_time.sql"),
];

/// The number of the newest migration: what an up-to-date database is at.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// The key of the advisory lock that keeps two nodes from migrating at once.
const MIGRATION_LOCK: i64 = 0x6f63_7061_795f_6d67;

/// Settings of the PostgreSQL store. Every limit is explicit.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// `postgres://user:password@host:port/database` or a key-value connection string.
    pub url: String,
    /// Most connections this node opens; requests beyond it wait for one.
    pub pool_max: usize,
    /// How long a request waits for a free connection before failing.
    pub pool_wait: Duration,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// How long one statement may run before PostgreSQL cancels it.
    pub statement_timeout: Duration,
    /// How often a write that PostgreSQL aborted to keep transactions serialisable is run
    /// again before the request fails.
    pub serialization_retries: u32,
    /// With `sslmode=require` in the URL: the certificates (PEM) that the server's certificate
    /// must chain to. Without it, the system's trusted roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl PostgresSettings {
    pub fn new(url: impl Into<String>) -> PostgresSettings {
        PostgresSettings {
            url: url.into(),
            pool_max: 16,
            pool_wait: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            serialization_retries: 20,
            ca_file: None,
        }
    }
}

/// The store on PostgreSQL.
pub type PostgresStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connects, applies pending migrations and returns the store.
    pub async fn open(settings: &PostgresSettings) -> Result<PostgresStore, StoreError> {
        let engine = Postgres::new(settings)?;
        engine.with_connection(|slot| migrate(engine.connected(slot)?).map(drop)).await?;
        Ok(SqlStore::new(engine))
    }

    /// Applies pending migrations and says which schema versions the database went from and to.
    pub async fn migrate(settings: &PostgresSettings) -> Result<(usize, usize), StoreError> {
        let engine = Postgres::new(settings)?;
        engine.with_connection(|slot| migrate(engine.connected(slot)?)).await
    }
}

fn migrate(connection: &mut Connection) -> Result<(usize, usize), StoreError> {
    let Connection { client, driver, .. } = connection;
    driver.block_on(async {
        let transaction = client.transaction().await?;
        // A migration, and the wait for another node's, may take longer than a request may.
        transaction.batch_execute("SET LOCAL statement_timeout = 0").await?;
        // Nodes that start together queue here; the first migrates, the others find nothing to do.
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        transaction
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS ocpay_schema (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await?;
        let applied: i64 =
            transaction.query_one("SELECT COALESCE(MAX(version), 0) FROM ocpay_schema", &[]).await?.get(0);
        let applied = usize::try_from(applied).unwrap_or(usize::MAX);
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Database(format!(
                "the database has schema version {applied}, newer than this ocpay knows ({})",
                MIGRATIONS.len()
            )));
        }
        for (version, migration) in (1i64..).zip(MIGRATIONS).skip(applied) {
            transaction.batch_execute(migration).await?;
            transaction.execute("INSERT INTO ocpay_schema (version) VALUES ($1)", &[&version]).await?;
        }
        transaction.commit().await?;
        Ok((applied, MIGRATIONS.len()))
    })
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        match error.as_db_error() {
            Some(db) => StoreError::Database(format!("{} ({})", db.message(), db.code().code())),
            None => {
                // The cause says what failed (a refused certificate, a closed connection).
                let mut message = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    message = format!("{message}: {cause}");
                    source = cause.source();
                }
                StoreError::Database(message)
            }
        }
    }
}

/// The PostgreSQL [`Engine`]: a pool of connections, each with its prepared statements.
pub struct Postgres {
    config: tokio_postgres::Config,
    /// TLS, when the URL asks for it with `sslmode=require`.
    tls: Option<MakeRustlsConnect>,
    settings: PostgresSettings,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    /// Failures a test planned inside writes; `None` outside tests.
    faults: Option<Arc<StatementFaults>>,
}

/// A pooled connection: the client, what drives it, and its prepared statements.
struct Connection {
    client: Client,
    driver: Driver,
    /// Prepared statements by the address and length of their SQL text.
    statements: HashMap<StatementKey, Prepared>,
}

/// A prepared statement with the names of its columns.
type Prepared = (Statement, Columns);

/// A connection's socket work (`tokio_postgres::Connection`, boxed whatever its TLS).
type Io = Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send>>;

/// Drives a connection's socket on the thread that waits for its answers, with a
/// single-threaded runtime of its own, so that no other thread is woken for a round trip.
struct Driver {
    runtime: tokio::runtime::Runtime,
    /// `None` once the connection has ended: dropped, it fails every request still waiting,
    /// and the client's next requests fail at once.
    io: Option<Io>,
}

impl Driver {
    /// Waits for `future` while driving the socket. A connection that ends meanwhile (the
    /// server closed it) fails the wait with its own error.
    fn block_on<T, E: From<tokio_postgres::Error>>(
        &mut self,
        future: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let mut future = std::pin::pin!(future);
        let Driver { runtime, io } = self;
        runtime.block_on(std::future::poll_fn(|cx| {
            loop {
                // The future first: the requests it sends are then written by this poll of the
                // socket, all together.
                if let Poll::Ready(output) = future.as_mut().poll(cx) {
                    return Poll::Ready(output);
                }
                // Without the socket work every request fails at once (its connection is gone),
                // so the future above was ready: this wait never hangs.
                let Some(socket) = io.as_mut() else { return Poll::Pending };
                let Poll::Ready(ended) = socket.as_mut().poll(cx) else { return Poll::Pending };
                *io = None;
                if let Err(error) = ended {
                    return Poll::Ready(Err(error.into()));
                }
            }
        }))
    }
}

/// What follows the requests that wait to be sent, in one round trip.
#[derive(Clone, Copy)]
enum Last<'p> {
    /// Queries, each with its parameters.
    Query(&'p [(&'static str, &'p [Value<'p>])]),
    Execute(&'static str, &'p [Value<'p>]),
    /// `COMMIT` or `ROLLBACK`.
    End(&'static str),
}

/// The answer to one request; a [`Last::Query`] has one per query.
enum Answer {
    Rows(Vec<tokio_postgres::Row>, Columns),
    Count(u64),
    Done,
}

/// A statement sent with the next request, without waiting for its answer (see
/// [`Db::execute_later`]), with its parameters owned until then.
struct Later {
    sql: &'static str,
    params: Vec<Cell>,
}

/// One request of a round trip, its answer made uniform.
type Request<'a> = Pin<Box<dyn Future<Output = Result<Answer, tokio_postgres::Error>> + 'a>>;

impl Connection {
    /// `sql` prepared on this connection (once: the first use of a statement costs a round trip).
    fn prepared(&mut self, sql: &'static str) -> Result<Prepared, tokio_postgres::Error> {
        let key = statement_key(sql);
        if let Some(prepared) = self.statements.get(&key) {
            return Ok(prepared.clone());
        }
        let statement = self.driver.block_on(self.client.prepare(&numbered_parameters(sql)))?;
        let columns: Columns = statement.columns().iter().map(|column| column.name().to_owned()).collect();
        self.statements.insert(key, (statement.clone(), columns.clone()));
        Ok((statement, columns))
    }

    /// Sends `begin`, the statements of `later` and `last` together and waits for all their
    /// answers: one round trip. Returns `last`'s answers, or the first failure: in a
    /// transaction, PostgreSQL fails every statement after a failed one, so the first is the
    /// cause (and a `COMMIT` after it rolls back).
    fn exchange(
        &mut self,
        begin: Option<&'static str>,
        later: &[Later],
        last: Last<'_>,
    ) -> Result<Vec<Answer>, tokio_postgres::Error> {
        let prepared_later =
            later.iter().map(|later| self.prepared(later.sql)).collect::<Result<Vec<_>, _>>()?;
        /// `last` with its statement prepared.
        enum Ready<'p> {
            Query(Vec<(Prepared, &'p [Value<'p>])>),
            Execute(Statement, &'p [Value<'p>]),
            End(&'static str),
        }
        let last = match last {
            Last::Query(queries) => Ready::Query(
                queries
                    .iter()
                    .map(|&(sql, params)| Ok((self.prepared(sql)?, params)))
                    .collect::<Result<_, _>>()?,
            ),
            Last::Execute(sql, params) => Ready::Execute(self.prepared(sql)?.0, params),
            Last::End(end) => Ready::End(end),
        };
        let Connection { client, driver, .. } = self;
        let client = &*client;
        let mut requests: Vec<Request<'_>> = Vec::with_capacity(later.len() + 2);
        let sent_before = usize::from(begin.is_some()) + later.len();
        if let Some(begin) = begin {
            requests.push(Box::pin(async move { client.batch_execute(begin).await.map(|()| Answer::Done) }));
        }
        for ((statement, _), later) in prepared_later.iter().zip(later) {
            requests.push(Box::pin(async move {
                client.execute(statement, &parameters(&later.params)).await.map(Answer::Count)
            }));
        }
        match last {
            Ready::Query(queries) => {
                for ((statement, columns), params) in queries {
                    requests.push(Box::pin(async move {
                        client
                            .query(&statement, &parameters(params))
                            .await
                            .map(|rows| Answer::Rows(rows, columns))
                    }));
                }
            }
            Ready::Execute(statement, params) => requests.push(Box::pin(async move {
                client.execute(&statement, &parameters(params)).await.map(Answer::Count)
            })),
            Ready::End(end) => {
                requests.push(Box::pin(async move { client.batch_execute(end).await.map(|()| Answer::Done) }))
            }
        }
        let mut answers = driver.block_on(in_order(requests))?;
        Ok(answers.split_off(sent_before))
    }
}

/// Parameters as the client takes them.
fn parameters<P: ToSql + Sync>(params: &[P]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|value| value as &(dyn ToSql + Sync)).collect()
}

/// Waits for every request, polling them in order: each sends its request on its first poll,
/// so they go out in that order. Returns their answers in order, or the first failure.
async fn in_order(mut requests: Vec<Request<'_>>) -> Result<Vec<Answer>, tokio_postgres::Error> {
    let mut answers: Vec<Option<Result<Answer, tokio_postgres::Error>>> =
        requests.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (request, answer) in requests.iter_mut().zip(&mut answers) {
            if answer.is_none() {
                match request.as_mut().poll(cx) {
                    Poll::Ready(ready) => *answer = Some(ready),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    answers.into_iter().flatten().collect()
}

impl Postgres {
    fn new(settings: &PostgresSettings) -> Result<Postgres, StoreError> {
        let mut config: tokio_postgres::Config = settings
            .url
            .parse()
            .map_err(|error| StoreError::Database(format!("the database URL is not valid: {error}")))?;
        config.connect_timeout(settings.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("ocpay");
        }
        let tls = match config.get_ssl_mode() {
            SslMode::Require => Some(tls(settings.ca_file.as_deref())?),
            _ => None,
        };
        Ok(Postgres {
            config,
            tls,
            settings: settings.clone(),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(settings.pool_max.max(1)),
            faults: None,
        })
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| StoreError::Database(format!("cannot start a connection's runtime: {error}")))?;
        let (client, io): (Client, Io) = match &self.tls {
            Some(tls) => {
                let (client, io) = runtime.block_on(self.config.connect(tls.clone()))?;
                (client, Box::pin(io))
            }
            None => {
                let (client, io) = runtime.block_on(self.config.connect(NoTls))?;
                (client, Box::pin(io))
            }
        };
        let mut connection =
            Connection { client, driver: Driver { runtime, io: Some(io) }, statements: HashMap::new() };
        let statement_ms = self.settings.statement_timeout.as_millis();
        // A node that dies mid-transaction drops its connection, and PostgreSQL rolls back; the
        // idle timeout also ends a transaction whose node hangs instead.
        let settings = format!(
            "SET statement_timeout = {statement_ms}; SET idle_in_transaction_session_timeout = {}",
            statement_ms.saturating_mul(2)
        );
        let Connection { client, driver, .. } = &mut connection;
        driver.block_on(client.batch_execute(&settings))?;
        Ok(connection)
    }

    /// Runs `work` with a slot for a pooled connection, waiting for a permit if all are busy.
    /// The slot starts with an idle connection if there is one; what it holds at the end goes
    /// back to the pool, unless its connection has closed.
    async fn with_connection<T>(
        &self,
        work: impl FnOnce(&mut Option<Connection>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            // Every connection is busy: the wait is what the pool-wait metrics show.
            Err(_) => {
                let waiting = std::time::Instant::now();
                let permit = tokio::time::timeout(self.settings.pool_wait, self.permits.acquire())
                    .await
                    .map_err(|_| {
                        metrics::counter!("ocpay_store_pool_timeouts_total").increment(1);
                        StoreError::Database(format!(
                            "no database connection was free within {} ms",
                            self.settings.pool_wait.as_millis()
                        ))
                    })?
                    .map_err(|_| StoreError::Database("the connection pool is closed".into()))?;
                metrics::histogram!("ocpay_store_pool_wait_seconds").record(waiting.elapsed());
                permit
            }
        };
        tokio::task::block_in_place(|| {
            let mut slot = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
            let result = work(&mut slot);
            if let Some(connection) = slot.filter(|connection| !connection.client.is_closed()) {
                self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(connection);
            }
            result
        })
    }

    /// The slot's connection, or a new one when it has none or its connection has closed.
    fn connected<'s>(&self, slot: &'s mut Option<Connection>) -> Result<&'s mut Connection, StoreError> {
        Ok(match slot.take() {
            Some(connection) if !connection.client.is_closed() => slot.insert(connection),
            _ => slot.insert(self.connect()?),
        })
    }

    /// Runs one attempt of a transaction on the slot's connection (connecting when it has
    /// none), and says whether running it again may succeed. A connection whose state is
    /// in doubt after a failure leaves the slot, so it never returns to the pool.
    fn attempt<T>(
        &self,
        slot: &mut Option<Connection>,
        begin: &'static str,
        retry_unique_violation: bool,
        faults: Option<&StatementFaults>,
        work: &mut dyn FnMut(&mut dyn Db) -> Result<T, StoreError>,
    ) -> (Result<T, StoreError>, bool) {
        let mut db = PostgresDb {
            engine: self,
            slot,
            begin: Some(begin),
            later: Vec::new(),
            must_retry: false,
            retry_unique_violation,
            failed: false,
            faults,
        };
        let result = work(&mut db);
        match result {
            // PostgreSQL would turn this COMMIT into a ROLLBACK without a word: a statement
            // failed and the transaction is aborted, though the business code went on.
            Ok(_) if db.failed => {
                db.roll_back();
                let error = StoreError::Database("a statement failed inside the transaction".into());
                (Err(error), db.must_retry)
            }
            Ok(value) => match db.commit() {
                Ok(()) => (Ok(value), false),
                Err(error) => (Err(error), db.must_retry),
            },
            Err(error) => {
                db.roll_back();
                (Err(error), db.must_retry)
            }
        }
    }
}

/// TLS that verifies the server's certificate, and that it names the host connected to,
/// against `ca_file`'s certificates or the system's trusted roots.
fn tls(ca_file: Option<&std::path::Path>) -> Result<MakeRustlsConnect, StoreError> {
    let tls_error = |what: String| StoreError::Database(format!("TLS to PostgreSQL: {what}"));
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
                .map_err(|error| tls_error(format!("cannot read {}: {error}", path.display())))?;
            for certificate in certificates {
                roots.add(certificate).map_err(|error| tls_error(format!("{}: {error}", path.display())))?;
            }
        }
        None => {
            for certificate in rustls_native_certs::load_native_certs().certs {
                // The system store may hold certificates rustls cannot use; the others serve.
                let _ = roots.add(certificate);
            }
        }
    }
    if roots.is_empty() {
        return Err(tls_error("no trusted certificates to verify the server with".into()));
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|error| tls_error(error.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Closing a connection blocks, which a thread of the async runtime may not do.
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()));
        if !idle.is_empty() {
            std::thread::spawn(move || drop(idle));
        }
    }
}

/// A short, random pause before running an aborted write again, longer after each abort, so
/// that the transactions that collided do not collide again.
fn backoff(attempt: u32) {
    let jitter = RandomState::new().hash_one(attempt) % 1_000;
    let micros = (1_000u64 << attempt.min(6)) / 2 + jitter * u64::from(attempt.min(6) + 1);
    std::thread::sleep(Duration::from_micros(micros));
}

impl Engine for Postgres {
    fn write<T, F>(
        &self,
        isolation: Isolation,
        mut work: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send + 'static,
        F: FnMut(&mut dyn Db) -> Result<T, StoreError> + Send + 'static,
    {
        let begin = match isolation {
            Isolation::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
            Isolation::RowLocks => "BEGIN ISOLATION LEVEL READ COMMITTED",
        };
        self.with_connection(move |slot| {
            let mut attempt = 0;
            loop {
                let faults = self.faults.as_deref();
                let (result, retry) = self.attempt(slot, begin, attempt == 0, faults, &mut work);
                if !retry || attempt >= self.settings.serialization_retries {
                    return result;
                }
                attempt += 1;
                backoff(attempt);
            }
        })
    }

    fn read<T, F>(&self, read: F) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send,
        F: FnOnce(&mut dyn Db) -> Result<T, StoreError> + Send,
    {
        self.with_connection(move |slot| {
            let mut read = Some(read);
            let mut once = |db: &mut dyn Db| match read.take() {
                Some(read) => read(db),
                None => Err(StoreError::Database("a read ran twice".into())),
            };
            // A read runs once: a pooled connection the server has dropped is replaced inside
            // its first round trip (`PostgresDb::exchange`).
            let begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
            self.attempt(slot, begin, false, None, &mut once).0
        })
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn health(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(self.faults.as_deref().map_or(Ok(()), StatementFaults::health))
    }

    fn install_statement_faults(&mut self, faults: Arc<StatementFaults>) {
        self.faults = Some(faults);
    }
}

/// Errors after which the whole transaction may run again: PostgreSQL aborted it to keep
/// transactions serialisable, or to break a deadlock.
fn is_retryable(error: &tokio_postgres::Error) -> bool {
    matches!(error.code(), Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED)
}

/// A transaction on a pooled connection.
///
/// Requests wait until one needs its answer, and then go together, in one round trip: the
/// transaction's `BEGIN` goes with its first statement, and statements run with
/// [`Db::execute_later`] go with the next statement or the `COMMIT`, and the queries of a
/// [`Db::query_batch`] go all at once. A `pay` (its payment inserted, then its audit event) is
/// two round trips instead of four.
struct PostgresDb<'c> {
    engine: &'c Postgres,
    /// Always holds a connection while a round trip runs; left empty when its state is in doubt,
    /// so that it never returns to the pool.
    slot: &'c mut Option<Connection>,
    /// The transaction's `BEGIN`, until it is sent: while it is here, nothing of the
    /// transaction has reached the database.
    begin: Option<&'static str>,
    /// Statements to send with the next request.
    later: Vec<Later>,
    /// Set when a statement failed in a way that running the transaction again may cure.
    must_retry: bool,
    /// Whether a violated unique key asks for a retry. A key taken by a transaction that
    /// committed while this one ran is reported as a violation rather than a serialisation
    /// failure when this one never read it; run again, the business code sees the row and
    /// answers as on SQLite (the existing payment, a refusal). A violation on the second run
    /// is a real one.
    retry_unique_violation: bool,
    /// Set when any statement failed: PostgreSQL has aborted the transaction.
    failed: bool,
    /// Checked before each statement of a write, when a test installed them.
    faults: Option<&'c StatementFaults>,
}

impl PostgresDb<'_> {
    /// Fails a statement a test planned to fail, as PostgreSQL fails one: the transaction is
    /// aborted, whatever the business code does with the error.
    fn planned_failure(&mut self, sql: &'static str) -> Result<(), StoreError> {
        let Some(faults) = self.faults else { return Ok(()) };
        faults.check(sql).inspect_err(|_| self.failed = true)
    }

    /// Sends what waits and `last` in one round trip, and returns `last`'s answers.
    ///
    /// The round trip that begins the transaction runs once more on a new connection when it
    /// finds its connection closed (a pooled connection the server dropped: a restart, a
    /// failover): without a `COMMIT`, nothing of it can have happened. Later round trips stay
    /// on the transaction's connection, whatever its state.
    fn exchange(&mut self, last: Last<'_>) -> Result<Vec<Answer>, StoreError> {
        let mut may_replay = self.begin.is_some() && !matches!(last, Last::End(_));
        loop {
            let connection = match (self.begin, self.slot.as_mut()) {
                (Some(_), _) => self.engine.connected(self.slot)?,
                (None, Some(connection)) => connection,
                (None, None) => {
                    return Err(StoreError::Database("the transaction's connection is gone".into()));
                }
            };
            let answer = connection.exchange(self.begin, &self.later, last);
            if answer.is_err() && may_replay && connection.client.is_closed() {
                may_replay = false;
                continue;
            }
            self.begin = None;
            self.later.clear();
            return answer.map_err(|error| self.error(error));
        }
    }

    /// Commits: the statements that wait and the `COMMIT` in one round trip. A transaction
    /// that has sent nothing yet first sends its statements without the `COMMIT`, so that a
    /// dropped pooled connection is replaced with no doubt about the outcome.
    fn commit(&mut self) -> Result<(), StoreError> {
        if self.begin.is_some() {
            // Nothing ran: nothing to commit.
            let Some(last) = self.later.pop() else { return Ok(()) };
            let params: Vec<Value<'_>> = last.params.iter().map(ToValue::to_value).collect();
            self.exchange(Last::Execute(last.sql, &params))?;
        }
        let Some(connection) = self.slot.as_mut() else {
            return Err(StoreError::Database("the transaction's connection is gone".into()));
        };
        let started = std::time::Instant::now();
        let committed = connection.exchange(None, &self.later, Last::End("COMMIT"));
        metrics::histogram!("ocpay_store_commit_seconds", "engine" => "postgres").record(started.elapsed());
        self.later.clear();
        let Err(error) = committed else { return Ok(()) };
        // A statement sent with the COMMIT failed (and the COMMIT rolled back), or the COMMIT
        // failed: either way the transaction is over and the connection is ready for the next.
        if error.as_db_error().is_some() {
            return Err(self.error(error));
        }
        // The connection broke during the COMMIT: whether it happened is unknown. Never run it
        // again here; the client's retry with the same idempotency key finds out.
        *self.slot = None;
        Err(StoreError::Database(format!("the commit's outcome is unknown: {}", StoreError::from(error))))
    }

    /// Rolls back what was sent; statements that wait are dropped.
    fn roll_back(&mut self) {
        if self.begin.is_some() {
            self.later.clear();
            return;
        }
        if self.exchange(Last::End("ROLLBACK")).is_err() {
            *self.slot = None;
        }
    }

    fn error(&mut self, error: tokio_postgres::Error) -> StoreError {
        self.failed = true;
        if is_retryable(&error) {
            self.must_retry = true;
        }
        if error.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            self.must_retry |= self.retry_unique_violation;
            return StoreError::Conflict("unique key");
        }
        error.into()
    }
}

impl Db for PostgresDb<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query(&mut self, sql: &'static str, params: &[Value<'_>]) -> Result<Vec<Row>, StoreError> {
        let mut rows = self.query_batch(&[(sql, params)])?;
        rows.pop().ok_or_else(|| StoreError::Database("a query went unanswered".into()))
    }

    fn query_batch(&mut self, queries: &[(&'static str, &[Value<'_>])]) -> Result<Vec<Vec<Row>>, StoreError> {
        for (sql, _) in queries {
            self.planned_failure(sql)?;
        }
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        self.exchange(Last::Query(queries))?.into_iter().map(rows).collect()
    }

    fn execute(&mut self, sql: &'static str, params: &[Value<'_>]) -> Result<u64, StoreError> {
        self.planned_failure(sql)?;
        match self.exchange(Last::Execute(sql, params))?.pop() {
            Some(Answer::Count(count)) => Ok(count),
            _ => Err(StoreError::Database("a statement answered without a count".into())),
        }
    }

    fn execute_later(&mut self, sql: &'static str, params: &[Value<'_>]) -> Result<(), StoreError> {
        self.planned_failure(sql)?;
        self.later.push(Later { sql, params: params.iter().copied().map(Cell::from).collect() });
        Ok(())
    }
}

/// A query's answer as the business code reads it.
fn rows(answer: Answer) -> Result<Vec<Row>, StoreError> {
    let Answer::Rows(rows, columns) = answer else {
        return Err(StoreError::Database("a query answered without rows".into()));
    };
    rows.iter()
        .map(|row| {
            let cells =
                (0..columns.len()).map(|index| row.try_get::<_, Cell>(index)).collect::<Result<_, _>>();
            Ok(Row {
                columns: columns.clone(),
                cells: cells.map_err(|error| StoreError::Corrupt(error.to_string()))?,
            })
        })
        .collect()
}

/// SQLite's `?N` parameters as PostgreSQL's `$N`, leaving quoted text alone. The business SQL
/// has no comments, so quotes are the only context to skip.
fn numbered_parameters(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for character in sql.chars() {
        if character == '\'' {
            quoted = !quoted;
        }
        out.push(if character == '?' && !quoted { '$' } else { character });
    }
    out
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Value<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(value) => match *ty {
                Type::INT8 => value.to_sql(ty, out),
                Type::INT4 => i32::try_from(value)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(value)?.to_sql(ty, out),
                Type::BOOL => (value != 0).to_sql(ty, out),
                _ => Err(format!("an integer cannot be a {ty} parameter").into()),
            },
            Value::Text(text) if <&str as ToSql>::accepts(ty) => text.to_sql(ty, out),
            Value::Blob(bytes) if <&[u8] as ToSql>::accepts(ty) => bytes.to_sql(ty, out),
            Value::Text(_) | Value::Blob(_) => Err(format!("{self:?} cannot be a {ty} parameter").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl ToSql for Cell {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.to_value().to_sql(ty, out)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Cell, BoxError> {
        Ok(match *ty {
            Type::INT8 => Cell::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Cell::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Cell::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Cell::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::BYTEA => Cell::Blob(raw.to_vec()),
            _ if <&str as FromSql>::accepts(ty) => Cell::Text(String::from_sql(ty, raw)?),
            _ => return Err(format!("a column of type {ty} cannot be read").into()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Cell, BoxError> {
        Ok(Cell::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::numbered_parameters;

    #[test]
    fn parameters_are_numbered_outside_quotes() {
        for (sqlite, postgres) in [
            ("SELECT ?1", "SELECT $1"),
            ("a = ?12 AND b = ?2", "a = $12 AND b = $2"),
            ("x = '?1' OR y = ?1", "x = '?1' OR y = $1"),
            ("CASE WHEN s = 'it''s' THEN ?3 END", "CASE WHEN s = 'it''s' THEN $3 END"),
        ] {
            assert_eq!(numbered_parameters(sqlite), postgres);
        }
    }
}
