//! The embedded SQLite store: one file in WAL mode with `synchronous=FULL`, so that a write
//! acknowledged to a client survives a power cut; one writer thread with group commit; and
//! read connections used on the calling thread, which never wait for the writer.

mod reads;
mod rows;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{KeyVersion, Participant, ParticipantKey};
use ocpay_core::payment::{CancelDecision, CancelWindow, Payment, PaymentState, PaymentTerms, decide_cancel};
use rusqlite::{Connection, OptionalExtension, params};

use self::reads::ReadPool;
use self::rows::millis;
use self::writer::Writer;
use crate::{CancelPayment, CreatePayment, NewKey, PaymentLookup, Store, StoreError};

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
            busy_timeout: Duration::from_secs(5),
            checkpoint_interval: Duration::from_secs(1),
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
pub struct SqliteStore {
    reads: ReadPool,
    writer: Writer,
    /// Dropped with the store, which stops the checkpoint thread.
    _checkpoints: std::sync::mpsc::Sender<()>,
}

/// Each file's schema, one migration per entry, applied in order. `PRAGMA user_version`
/// counts the ones applied; each is applied in the same transaction that bumps it.
const MAIN_MIGRATIONS: &[&str] = &[include_str!("../../migrations/sqlite/main/0001_payments.sql")];
const PARTICIPANT_MIGRATIONS: &[&str] =
    &[include_str!("../../migrations/sqlite/participants/0001_participants.sql")];

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
    for (version, migration) in (1i64..).zip(migrations).skip(applied) {
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", version)?;
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
    // power cut. It is a per-connection setting covering every attached file.
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // The background checkpoint keeps the log short; this is only the safety net (about 40 MB).
    connection.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    Ok(connection)
}

impl SqliteStore {
    /// Opens (or creates) the files, applies pending migrations and starts the writer.
    pub async fn open(settings: &SqliteSettings) -> Result<SqliteStore, StoreError> {
        migrate(&settings.participants_path(), settings.busy_timeout, PARTICIPANT_MIGRATIONS)?;
        migrate(&settings.path, settings.busy_timeout, MAIN_MIGRATIONS)?;
        let writer = Writer::start(connect(settings)?, settings.write_batch_max, settings.write_queue_max)
            .map_err(|error| StoreError::Database(format!("start the writer thread: {error}")))?;
        let reads = ReadPool::new(settings.clone());
        let checkpoints = start_checkpoints(settings)?;
        Ok(SqliteStore { reads, writer, _checkpoints: checkpoints })
    }
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

/// The column list of `payment`, as a macro so that queries stay `&'static str` literals.
macro_rules! payment_columns {
    () => {
        "payment_id, owner_client_id, payment_request_id, amount_minor, currency, order_amount_minor, \
         order_currency, reference_order_id, order_description, reference_merchant_id, merchant_name, \
         merchant_mcc, merchant_display_name, reference_store_id, store_name, store_mcc, code_token, \
         notify_url, redirect_url, settlement_currency, merchant_region, extend_info, status, fail_reason, \
         created_at_ms, expires_at_ms, paid_at_ms, failed_at_ms, cancelled_at_ms"
    };
}

macro_rules! participant_columns {
    () => {
        "client_id, kind, name, notify_url, created_at_ms"
    };
}

macro_rules! key_columns {
    () => {
        "client_id, key_version, public_key_der, label, created_at_ms, expires_at_ms, revoked_at_ms"
    };
}

fn find_payment(
    connection: &Connection,
    owner: &ClientId,
    lookup: &PaymentLookup,
) -> Result<Option<Payment>, StoreError> {
    let (sql, key) = match lookup {
        PaymentLookup::ById(id) => (
            concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payment WHERE owner_client_id = ?1 AND payment_id = ?2"
            ),
            id.as_str(),
        ),
        PaymentLookup::ByRequestId(id) => (
            concat!(
                "SELECT ",
                payment_columns!(),
                " FROM payment WHERE owner_client_id = ?1 AND payment_request_id = ?2"
            ),
            id.as_str(),
        ),
    };
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query(params![owner.as_str(), key])?;
    rows.next()?.map(rows::payment).transpose()
}

fn insert_key(
    connection: &Connection,
    client_id: &str,
    version: i64,
    key: &NewKey,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(concat!(
            "INSERT INTO participant_key (",
            key_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)"
        ))?
        .execute(params![
            client_id,
            version,
            key.public_key_der,
            key.label,
            millis(key.created_at),
            key.expires_at.map(millis)
        ])?;
    Ok(())
}

fn find_participant(
    connection: &Connection,
    client_id: &ClientId,
) -> Result<Option<Participant>, StoreError> {
    let mut statement = connection.prepare_cached(concat!(
        "SELECT ",
        participant_columns!(),
        " FROM participant WHERE client_id = ?1"
    ))?;
    let mut rows = statement.query(params![client_id.as_str()])?;
    rows.next()?.map(rows::participant).transpose()
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_participant(&self, participant: &Participant, key: &NewKey) -> Result<(), StoreError> {
        let participant = participant.clone();
        let key = key.clone();
        self.writer
            .write(move |connection| {
                let inserted = connection
                    .prepare_cached(concat!(
                        "INSERT INTO participant (",
                        participant_columns!(),
                        ") VALUES (?1, ?2, ?3, ?4, ?5)"
                    ))?
                    .execute(params![
                        participant.client_id.as_str(),
                        participant.kind.as_str(),
                        participant.name,
                        participant.notify_url,
                        millis(participant.created_at)
                    ]);
                match inserted {
                    Err(error) if is_unique_violation(&error) => {
                        return Err(StoreError::Conflict("client id"));
                    }
                    other => other?,
                };
                insert_key(connection, participant.client_id.as_str(), 1, &key)
            })
            .await
    }

    async fn add_participant_key(
        &self,
        client_id: &ClientId,
        key: &NewKey,
    ) -> Result<KeyVersion, StoreError> {
        let client_id = client_id.clone();
        let key = key.clone();
        self.writer
            .write(move |connection| {
                let latest: Option<i64> = connection
                    .prepare_cached("SELECT MAX(key_version) FROM participant_key WHERE client_id = ?1")?
                    .query_row(params![client_id.as_str()], |row| row.get(0))?;
                let version = latest.ok_or(StoreError::NotFound("participant"))? + 1;
                insert_key(connection, client_id.as_str(), version, &key)?;
                KeyVersion::try_from(version).map_err(|_| StoreError::Corrupt("key version overflow".into()))
            })
            .await
    }

    async fn participant(&self, client_id: &ClientId) -> Result<Option<Participant>, StoreError> {
        self.reads.with(|connection| find_participant(connection, client_id))
    }

    async fn participants(&self, limit: u32) -> Result<Vec<Participant>, StoreError> {
        self.reads.with(|connection| {
            let mut statement = connection.prepare_cached(concat!(
                "SELECT ",
                participant_columns!(),
                " FROM participant ORDER BY created_at_ms, client_id LIMIT ?1"
            ))?;
            let mut rows = statement.query(params![i64::from(limit)])?;
            let mut participants = Vec::new();
            while let Some(row) = rows.next()? {
                participants.push(rows::participant(row)?);
            }
            Ok(participants)
        })
    }

    async fn participant_with_key(
        &self,
        client_id: &ClientId,
        key_version: Option<KeyVersion>,
    ) -> Result<Option<(Participant, Option<ParticipantKey>)>, StoreError> {
        // Two keyed lookups: measured several times faster than one join whose key version
        // is chosen by a correlated subquery.
        self.reads.with(|connection| {
            let Some(participant) = find_participant(connection, client_id)? else { return Ok(None) };
            let key = match key_version {
                Some(version) => connection
                    .prepare_cached(concat!(
                        "SELECT ",
                        key_columns!(),
                        " FROM participant_key WHERE client_id = ?1 AND key_version = ?2"
                    ))?
                    .query_row(params![client_id.as_str(), i64::from(version)], |row| {
                        Ok(rows::participant_key(row))
                    })
                    .optional()?,
                None => connection
                    .prepare_cached(concat!(
                        "SELECT ",
                        key_columns!(),
                        " FROM participant_key WHERE client_id = ?1 ORDER BY key_version DESC LIMIT 1"
                    ))?
                    .query_row(params![client_id.as_str()], |row| Ok(rows::participant_key(row)))
                    .optional()?,
            };
            Ok(Some((participant, key.transpose()?)))
        })
    }

    async fn create_payment(&self, terms: &PaymentTerms) -> Result<CreatePayment, StoreError> {
        let terms = terms.clone();
        self.writer
            .write(move |connection| {
                if insert_payment(connection, &terms)? {
                    return Ok(CreatePayment::Created(Payment { terms, state: PaymentState::Processing }));
                }
                let lookup = PaymentLookup::ByRequestId(terms.request_id.clone());
                let existing = find_payment(connection, &terms.owner, &lookup)?
                    .ok_or_else(|| StoreError::Corrupt("a conflicting payment is missing".into()))?;
                Ok(CreatePayment::Existing(existing))
            })
            .await
    }

    async fn payment(&self, owner: &ClientId, lookup: &PaymentLookup) -> Result<Option<Payment>, StoreError> {
        self.reads.with(|connection| find_payment(connection, owner, lookup))
    }

    async fn cancel_payment(
        &self,
        owner: &ClientId,
        lookup: &PaymentLookup,
        window: &CancelWindow,
        now: Timestamp,
    ) -> Result<CancelPayment, StoreError> {
        let owner = owner.clone();
        let lookup = lookup.clone();
        let window = *window;
        self.writer
            .write(move |connection| {
                let Some(mut payment) = find_payment(connection, &owner, &lookup)? else {
                    return Ok(CancelPayment::NotFound);
                };
                let decision = match decide_cancel(payment.state, false, &window, now) {
                    Ok(decision) => decision,
                    Err(refusal) => return Ok(CancelPayment::Refused(payment, refusal)),
                };
                if decision == CancelDecision::Unchanged {
                    return Ok(CancelPayment::Done(payment));
                }
                // Close and Reverse both end in CANCELLED; a reversal keeps when it was paid.
                let paid_at = payment.state.paid_at();
                connection
                    .prepare_cached(
                        "UPDATE payment SET status = 'CANCELLED', cancelled_at_ms = ?1 WHERE payment_id = ?2",
                    )?
                    .execute(params![millis(now), payment.terms.id.as_str()])?;
                payment.state = PaymentState::Cancelled { cancelled_at: now, paid_at };
                Ok(CancelPayment::Done(payment))
            })
            .await
    }
}

/// Inserts a payment in `PROCESSING` unless its idempotency key exists; says whether it did.
fn insert_payment(connection: &Connection, terms: &PaymentTerms) -> Result<bool, StoreError> {
    let order = &terms.order;
    let merchant = &order.merchant;
    let inserted = connection
        .prepare_cached(concat!(
            "INSERT INTO payment (",
            payment_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, \
             ?20, ?21, ?22, 'PROCESSING', NULL, ?23, ?24, NULL, NULL, NULL) \
             ON CONFLICT (owner_client_id, payment_request_id) DO NOTHING"
        ))?
        .execute(params![
            terms.id.as_str(),
            terms.owner.as_str(),
            terms.request_id.as_str(),
            terms.amount.minor(),
            terms.amount.currency().code(),
            order.amount.minor(),
            order.amount.currency().code(),
            order.reference_order_id,
            order.description,
            merchant.reference_merchant_id,
            merchant.name,
            merchant.mcc,
            merchant.display_name,
            merchant.store.reference_store_id,
            merchant.store.name,
            merchant.store.mcc,
            terms.code_token.as_str(),
            terms.notify_url,
            terms.redirect_url,
            terms.settlement_currency.map(|currency| currency.code()),
            terms.merchant_region,
            terms.extend_info,
            millis(terms.created_at),
            millis(terms.expires_at),
        ])?;
    Ok(inserted == 1)
}
