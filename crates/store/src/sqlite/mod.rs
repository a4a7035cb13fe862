//! The embedded SQLite store: one file in WAL mode with `synchronous=FULL`, so that a write
//! acknowledged to a client survives a power cut; one writer thread with group commit; and
//! read connections used on the calling thread, which never wait for the writer.

pub mod backup;
mod reads;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, params};

use self::reads::ReadPool;
pub use self::writer::WriteStats;
use self::writer::Writer;
use crate::StoreError;
use crate::sql::{
    Cell, Columns, Db, Dialect, Engine, Isolation, Row, SqlStore, StatementFaults, StatementKey, Value,
    statement_key,
};

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}

/// Settings of the SQLite store. Every limit is explicit.
#[derive(Debug, Clone)]
pub struct SqliteSettings {
    /// The main database file (payments); created with its schema when missing. Participants
    /// and keys live beside it in [`SqliteSettings::participants_path`].
    pub path: PathBuf,
    /// Idle read connections kept open.
    pub read_connections_max: u32,
    /// Most writes committed in one transaction.
    pub write_batch_max: usize,
    /// Most writes waiting for the writer before callers wait for room.
    pub write_queue_max: usize,
    /// Most times the writer yields its CPU to gather more writes before a commit; 0 commits
    /// what is queued at once.
    pub write_gather_yields: u32,
    /// How long a connection waits for a lock held by another process (the CLI) before failing.
    pub busy_timeout: Duration,
    /// How often a background thread copies the write-ahead log back into the files.
    pub checkpoint_interval: Duration,
}

impl SqliteSettings {
    pub fn new(path: impl Into<PathBuf>) -> SqliteSettings {
        SqliteSettings {
            path: path.into(),
            read_connections_max: 8,
            write_batch_max: 256,
            write_queue_max: 4096,
            write_gather_yields: 8,
            busy_timeout: Duration::from_secs(5),
            checkpoint_interval: Duration::from_millis(100),
        }
    }

    /// The participants file: `ocpay.db` keeps its participants in `ocpay-participants.db`.
    pub fn participants_path(&self) -> PathBuf {
        let stem = self.path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
        self.path.with_file_name(format!("{stem}-participants.db"))
    }
}

/// The embedded store. Several processes may open the files at once: the server and, while it
/// runs, a CLI command that adds a participant.
///
/// Data lives in two files. Participants and keys, read on every request and written rarely,
/// are in a file of their own: SQLite drops a reader's page cache whenever its file changes,
/// and with payments beside them every authentication read came after a payment write and
/// cost ten times as much. Every connection attaches the participants file as `auth`, so
/// queries name tables as usual. No write touches both files, so each write stays atomic
/// (SQLite in WAL mode commits attached files one by one).
pub type SqliteStore = SqlStore<Sqlite>;

/// The SQLite [`Engine`]: one writer thread with group commit, reads on the calling thread.
pub struct Sqlite {
    reads: ReadPool,
    writer: Writer,
    /// Dropped with the store, which stops the checkpoint thread.
    _checkpoints: std::sync::mpsc::Sender<()>,
    /// Failures a test planned inside writes; `None` outside tests.
    faults: Option<std::sync::Arc<StatementFaults>>,
}

/// The `user_version` of an up-to-date main file and participants file.
pub const SCHEMA_VERSIONS: (usize, usize) = (MAIN_MIGRATIONS.len(), PARTICIPANT_MIGRATIONS.len());

/// Each file's schema, one migration per entry, applied in order. `PRAGMA user_version`
/// counts the ones applied; each is applied in the same transaction that bumps it.
const MAIN_MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/main/0001_payments.sql"),
    include_str!("../../migrations/sqlite/main/0002_wallets_ledger_outbox.sql"),
    include_str!("../../migrations/sqlite/main/0003_refunds.sql"),
    include_str!("../../migrations/sqlite/main/0004_ledger_environments.sql"),
    include_str!("../../migrations/sqlite/main/0005_grants_audit.sql"),
    include_str!("../../migrations/sqlite/main/0006_registrations.sql"),
    include_str!("../../migrations/sqlite/main/0007_refund_agent_audit_merchant.sql"),
    include_str!("../../migrations/sqlite/main/0008_fees_settlement.sql"),
    include_str!("../../migrations/sqlite/main/0009_sftp_accounts.sql"),
    include_str!("../../migrations/sqlite/main/0010_api_log.sql"),
    include_str!("../../migrations/sqlite/main/0011_portal_reads.sql"),
    include_str!("../../migrations/sqlite/main/0012_audit_key_use.sql"),
    include_str!("../../migrations/sqlite/main/0013_portal_pages.sql"),
    include_str!("../../migrations/sqlite/main/0014_activity_days.sql"),
    include_str!("../../migrations/sqlite/main/0015_api_log_filters.sql"),
    include_str!("../../migrations/sqlite/main/0016_console_reads.sql"),
    include_str!("../../migrations/sqlite/main/0017_failing_endpoints.sql"),
    include_str!("../../migrations/sqlite/main/0018_review_queue.sql"),
    include_str!("../../migrations/sqlite/main/0019_api_log_request_id.sql"),
    include_str!("../../migrations/sqlite/main/0020_audit_by_time.sql"),
];
const PARTICIPANT_MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/participants/0001_participants.sql"),
    include_str!("../../migrations/sqlite/participants/0002_key_scopes.sql"),
    include_str!("../../migrations/sqlite/participants/0003_settlement_terms.sql"),
    include_str!("../../migrations/sqlite/participants/0004_portal.sql"),
    include_str!("../../migrations/sqlite/participants/0005_console.sql"),
];

fn migrate(path: &Path, busy_timeout: Duration, migrations: &[&str]) -> Result<(), StoreError> {
    let mut connection = Connection::open(path)?;
    connection.busy_timeout(busy_timeout)?;
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database(format!(
            "{} refused WAL mode (it is in {mode} mode)",
            path.display()
        )));
    }
    // Off while migrating, so that a migration may rebuild a table others refer to (SQLite's
    // documented procedure); the references are checked before the commit instead.
    connection.pragma_update(None, "foreign_keys", "OFF")?;
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let applied: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    if applied > migrations.len() {
        return Err(StoreError::Database(format!(
            "{} has schema version {applied}, newer than this ocpay knows ({})",
            path.display(),
            migrations.len()
        )));
    }
    if applied == migrations.len() {
        // Nothing to migrate, so nothing to check: the check reads every reference of every
        // table, which on a store of ten million payments held the server's start for 40 s.
        return Ok(());
    }
    for (version, migration) in (1i64..).zip(migrations).skip(applied) {
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", version)?;
    }
    let dangling: i64 =
        transaction.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| row.get(0))?;
    if dangling > 0 {
        return Err(StoreError::Corrupt(format!(
            "{} has {dangling} broken references after migrating",
            path.display()
        )));
    }
    transaction.commit()?;
    Ok(())
}

/// Opens the main file with the participants file attached as `auth`.
pub(crate) fn connect(settings: &SqliteSettings) -> Result<Connection, StoreError> {
    let connection = Connection::open(&settings.path)?;
    connection.busy_timeout(settings.busy_timeout)?;
    let participants = settings.participants_path();
    connection.execute("ATTACH DATABASE ?1 AS auth", params![participants.to_string_lossy()])?;
    // FULL fsyncs the WAL at every commit, so a payment acknowledged to a client survives a
    // power cut. It is set per schema: `main` alone would leave `auth` at the build's default.
    for schema in ["main", "auth"] {
        connection.pragma_update(Some(schema), "synchronous", "FULL")?;
    }
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // The background checkpoint keeps the log short; this is only the safety net (about 40 MB).
    connection.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    // One plan per statement, whatever its parameters: otherwise SQLite marks a cached statement
    // whose plan might depend on a bound value (a `LIMIT ?`, a term it compared with a partial
    // index's) as expired when the value changes, and prepares it again on its next run.
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    connection.set_prepared_statement_cache_capacity(STATEMENTS_CACHED);
    Ok(connection)
}

/// Prepared statements each connection keeps. rusqlite's default of 16 is fewer than a complete
/// payment's writes use between them, so the writer prepared some of its statements again for
/// every payment; a statement takes a few kilobytes.
const STATEMENTS_CACHED: usize = 128;

impl SqlStore<Sqlite> {
    /// Opens (or creates) the files, applies pending migrations and starts the writer.
    pub async fn open(settings: &SqliteSettings) -> Result<SqliteStore, StoreError> {
        migrate(&settings.participants_path(), settings.busy_timeout, PARTICIPANT_MIGRATIONS)?;
        migrate(&settings.path, settings.busy_timeout, MAIN_MIGRATIONS)?;
        let writer = Writer::start(
            connect(settings)?,
            settings.write_batch_max,
            settings.write_queue_max,
            settings.write_gather_yields,
        )
        .map_err(|error| StoreError::Database(format!("start the writer thread: {error}")))?;
        let reads = ReadPool::new(settings.clone());
        let checkpoints = start_checkpoints(settings)?;
        Ok(SqlStore::new(Sqlite { reads, writer, _checkpoints: checkpoints, faults: None }))
    }

    /// How many transactions and writes the writer has run: writes per batch is the measure
    /// of group commit.
    pub fn write_stats(&self) -> &WriteStats {
        self.engine().writer.stats()
    }
}

impl Engine for Sqlite {
    fn write<T, F>(&self, _: Isolation, mut work: F) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send + 'static,
        F: FnMut(&mut dyn Db) -> Result<T, StoreError> + Send + 'static,
    {
        // One writer: every write runs as if alone, and there is nothing to retry (a write runs
        // again only when another write of its batch has to be undone: the writer's documentation).
        let faults = self.faults.clone();
        self.writer.write(move |connection| work(&mut SqliteDb { connection, faults: faults.as_deref() }))
    }

    fn read<T, F>(&self, read: F) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send,
        F: FnOnce(&mut dyn Db) -> Result<T, StoreError> + Send,
    {
        std::future::ready(self.reads.with(|connection| read(&mut SqliteDb { connection, faults: None })))
    }

    fn is_shared(&self) -> bool {
        false
    }

    fn health(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(if !self.writer.is_running() {
            Err(StoreError::Database("the writer has stopped".into()))
        } else {
            self.faults.as_deref().map_or(Ok(()), StatementFaults::health)
        })
    }

    fn install_statement_faults(&mut self, faults: std::sync::Arc<StatementFaults>) {
        self.faults = Some(faults);
    }
}

thread_local! {
    /// The column names of each query, by the address and length of its SQL text: the same on
    /// every connection (the schema is migrated before any query runs), so they are built once
    /// per thread instead of once per query.
    static COLUMNS: std::cell::RefCell<std::collections::HashMap<StatementKey, Columns>> =
        std::cell::RefCell::default();
}

/// A connection inside the writer's or a reader's transaction.
struct SqliteDb<'c> {
    connection: &'c Connection,
    /// Checked before each statement of a write, when a test installed them.
    faults: Option<&'c StatementFaults>,
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(value) => ValueRef::Integer(value),
            Value::Text(text) => ValueRef::Text(text.as_bytes()),
            Value::Blob(bytes) => ValueRef::Blob(bytes),
        }))
    }
}

fn cell(value: ValueRef<'_>) -> Result<Cell, StoreError> {
    Ok(match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(value) => Cell::Int(value),
        ValueRef::Text(text) => Cell::Text(
            String::from_utf8(text.to_vec())
                .map_err(|_| StoreError::Corrupt("text that is not UTF-8".into()))?,
        ),
        ValueRef::Blob(bytes) => Cell::Blob(bytes.to_vec()),
        ValueRef::Real(value) => return Err(StoreError::Corrupt(format!("a floating-point value {value}"))),
    })
}

impl Db for SqliteDb<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn query(&mut self, sql: &'static str, params: &[Value<'_>]) -> Result<Vec<Row>, StoreError> {
        if let Some(faults) = self.faults {
            faults.check(sql)?;
        }
        let mut statement = self.connection.prepare_cached(sql)?;
        let columns = COLUMNS.with_borrow_mut(|known| {
            known
                .entry(statement_key(sql))
                .or_insert_with(|| statement.column_names().map(str::to_owned).collect())
                .clone()
        });
        let mut rows = statement.query(rusqlite::params_from_iter(params))?;
        let mut all = Vec::new();
        while let Some(row) = rows.next()? {
            let cells =
                (0..columns.len()).map(|index| cell(row.get_ref(index)?)).collect::<Result<_, _>>()?;
            all.push(Row { columns: columns.clone(), cells });
        }
        Ok(all)
    }

    fn execute(&mut self, sql: &'static str, params: &[Value<'_>]) -> Result<u64, StoreError> {
        if let Some(faults) = self.faults {
            faults.check(sql)?;
        }
        match self.connection.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params)) {
            Ok(changed) => Ok(changed as u64),
            Err(error) if is_unique_violation(&error) => Err(StoreError::Conflict("unique key")),
            Err(error) => Err(error.into()),
        }
    }
}

/// Whether an error is a violated primary-key or unique constraint.
fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// Starts the thread that checkpoints both files in the background.
///
/// Left to SQLite, the checkpoint runs inside whichever commit crosses the log's size
/// threshold, and every write queued behind that commit waits for it (a latency spike at
/// p99). A PASSIVE checkpoint on another connection never blocks the writer. SQLite's own
/// automatic checkpoint stays as a safety net, at a higher threshold.
fn start_checkpoints(settings: &SqliteSettings) -> Result<std::sync::mpsc::Sender<()>, StoreError> {
    let connection = connect(settings)?;
    let interval = settings.checkpoint_interval.max(Duration::from_millis(10));
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("ocpay-sqlite-checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                for statement in
                    ["PRAGMA main.wal_checkpoint(PASSIVE)", "PRAGMA auth.wal_checkpoint(PASSIVE)"]
                {
                    if let Err(error) = connection.query_row(statement, [], |_| Ok(())) {
                        tracing::warn!(%error, statement, "a background checkpoint failed");
                    }
                }
            }
        })
        .map_err(|error| StoreError::Database(format!("start the checkpoint thread: {error}")))?;
    Ok(stop)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::StatementStatus;

    use super::{SqliteSettings, connect, migrate};
    use crate::StoreError;

    /// The references are checked after the migrations that ran, and only then: a database
    /// with nothing to migrate opens without reading all of it.
    #[test]
    fn references_are_checked_only_when_a_migration_ran() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("main.db");
        let schema = "CREATE TABLE parent (id INTEGER PRIMARY KEY); \
                      CREATE TABLE child (parent_id INTEGER NOT NULL REFERENCES parent (id));";
        let later = "CREATE TABLE later (n INTEGER);";
        migrate(&path, Duration::from_secs(1), &[schema]).expect("the first migration");
        // A broken reference, as a damaged file or a faulty migration would leave.
        rusqlite::Connection::open(&path)
            .expect("open")
            .execute_batch("PRAGMA foreign_keys = OFF; INSERT INTO child (parent_id) VALUES (7)")
            .expect("a broken reference");
        migrate(&path, Duration::from_secs(1), &[schema]).expect("nothing to migrate: no check");
        let migrated = migrate(&path, Duration::from_secs(1), &[schema, later]);
        assert!(
            matches!(&migrated, Err(StoreError::Corrupt(message)) if message.contains("1 broken references")),
            "{migrated:?}"
        );
    }

    #[test]
    fn a_cached_statement_keeps_its_plan_when_its_parameters_change() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let connection = connect(&SqliteSettings::new(dir.path().join("main.db"))).expect("connect");
        connection
            .execute_batch(
                "CREATE TABLE queue (id INTEGER PRIMARY KEY, status TEXT NOT NULL, due INTEGER NOT NULL); \
                 CREATE INDEX queue_due ON queue (due) WHERE status = 'PENDING';",
            )
            .expect("a table with a partial index");
        // A bound LIMIT and a term on the partial index's column: SQLite would plan for the
        // values bound, and prepare the statement again whenever they change.
        let sql = "SELECT id FROM queue WHERE status = ?1 AND due <= ?2 ORDER BY due LIMIT ?3";
        for (due, limit) in [(10, 1), (20, 5), (30, 0), (40, 100)] {
            let mut statement = connection.prepare_cached(sql).expect("prepare");
            statement.query_map(rusqlite::params!["PENDING", due, limit], |_| Ok(())).expect("query").count();
            assert_eq!(
                statement.get_status(StatementStatus::RePrepare),
                0,
                "prepared again for {due}, {limit}"
            );
        }
    }
}
