//! The embedded SQLite store: one file in WAL mode with `synchronous=FULL`, so that a write
//! acknowledged to a client survives a power cut; one writer thread with group commit; and
//! read connections used on the calling thread, which never wait for the writer.

/// The column list of `payment`, as a macro so that queries stay `&'static str` literals.
macro_rules! payment_columns {
    () => {
        "payment_id, owner_client_id, payment_request_id, amount_minor, currency, order_amount_minor, \
         order_currency, reference_order_id, order_description, reference_merchant_id, merchant_name, \
         merchant_mcc, merchant_display_name, reference_store_id, store_name, store_mcc, code_token, \
         notify_url, redirect_url, settlement_currency, merchant_region, extend_info, status, fail_reason, \
         created_at_ms, expires_at_ms, paid_at_ms, failed_at_ms, cancelled_at_ms, payer_id, charged_minor, \
         charged_currency, quote_pair, quote_price, quoted_at_ms, agent_client_id"
    };
}

mod access;
mod ledger;
mod outbox;
mod participants;
mod payments;
mod reads;
mod refunds;
mod registrations;
mod rows;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use jiff::SignedDuration;
use ocpay_core::Timestamp;
use ocpay_core::access::Grant;
use ocpay_core::ids::{ClientId, CodeToken, PaymentId, RegistrationId};
use ocpay_core::ledger::{Account, AccountOwner};
use ocpay_core::money::Money;
use ocpay_core::participant::{KeyVersion, Participant, ParticipantKey};
use ocpay_core::payer::{Payer, PayerId};
use ocpay_core::payment::{CancelWindow, FailReason, Payment, PaymentTerms};
use ocpay_core::refund::Refund;
use ocpay_core::registration::{Decision, Registration, RegistrationTerms};
use rusqlite::{Connection, params};

use self::reads::ReadPool;
use self::rows::millis;
pub use self::writer::WriteStats;
use self::writer::Writer;
use crate::{
    AfterAttempt, Attempt, AuditEvent, CancelPayment, CreatePayment, CreateRefund, CreateRegistration,
    DecideRegistration, FailPayment, LedgerCheck, NewGrant, NewKey, NewRefund, Notification, PaymentLookup,
    RefundLookup, RegistrationLookup, SandboxFault, SettlePayment, Settlement, Store, StoreError,
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
];
const PARTICIPANT_MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/participants/0001_participants.sql"),
    include_str!("../../migrations/sqlite/participants/0002_key_scopes.sql"),
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

    /// How many transactions and writes the writer has run: writes per batch is the measure
    /// of group commit.
    pub fn write_stats(&self) -> &WriteStats {
        self.writer.stats()
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

#[async_trait]
impl Store for SqliteStore {
    async fn create_participant(&self, participant: &Participant, key: &NewKey) -> Result<(), StoreError> {
        let (participant, key) = (participant.clone(), key.clone());
        self.writer.write(move |connection| participants::create(connection, &participant, &key)).await
    }

    async fn add_participant_key(
        &self,
        client_id: &ClientId,
        key: &NewKey,
    ) -> Result<KeyVersion, StoreError> {
        let (client_id, key) = (client_id.clone(), key.clone());
        self.writer.write(move |connection| participants::add_key(connection, &client_id, &key)).await
    }

    async fn participant(&self, client_id: &ClientId) -> Result<Option<Participant>, StoreError> {
        self.reads.with(|connection| participants::find(connection, client_id))
    }

    async fn participant_keys(&self, client_id: &ClientId) -> Result<Vec<ParticipantKey>, StoreError> {
        self.reads.with(|connection| participants::keys(connection, client_id))
    }

    async fn revoke_participant_key(
        &self,
        client_id: &ClientId,
        key_version: KeyVersion,
        now: Timestamp,
    ) -> Result<ParticipantKey, StoreError> {
        let client_id = client_id.clone();
        self.writer
            .write(move |connection| participants::revoke_key(connection, &client_id, key_version, now))
            .await
    }

    async fn create_grant(&self, grant: &NewGrant, now: Timestamp) -> Result<(), StoreError> {
        let grant = grant.clone();
        self.writer.write(move |connection| access::create_grant(connection, &grant, now)).await
    }

    async fn grant_by_token(&self, token_sha256: &str) -> Result<Option<Grant>, StoreError> {
        self.reads.with(|connection| access::grant_by_token(connection, token_sha256))
    }

    async fn grants(&self, client_id: &ClientId) -> Result<Vec<Grant>, StoreError> {
        self.reads.with(|connection| access::grants(connection, client_id))
    }

    async fn revoke_grant(&self, grant_id: &str, now: Timestamp) -> Result<Grant, StoreError> {
        let grant_id = grant_id.to_owned();
        self.writer.write(move |connection| access::revoke_grant(connection, &grant_id, now)).await
    }

    async fn record_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let events = events.to_vec();
        self.writer.write(move |connection| access::record_audit(connection, &events)).await
    }

    async fn audit_events(&self, client_id: &ClientId, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        self.reads.with(|connection| access::audit_events(connection, client_id, limit))
    }

    async fn participants(&self, limit: u32) -> Result<Vec<Participant>, StoreError> {
        self.reads.with(|connection| participants::list(connection, limit))
    }

    async fn participant_with_key(
        &self,
        client_id: &ClientId,
        key_version: Option<KeyVersion>,
    ) -> Result<Option<(Participant, Option<ParticipantKey>)>, StoreError> {
        self.reads.with(|connection| participants::find_with_key(connection, client_id, key_version))
    }

    async fn create_payment(&self, terms: &PaymentTerms) -> Result<CreatePayment, StoreError> {
        let terms = terms.clone();
        self.writer.write(move |connection| payments::create(connection, terms)).await
    }

    async fn payment(&self, owner: &ClientId, lookup: &PaymentLookup) -> Result<Option<Payment>, StoreError> {
        self.reads.with(|connection| payments::find(connection, owner, lookup))
    }

    async fn cancel_payment(
        &self,
        owner: &ClientId,
        lookup: &PaymentLookup,
        window: &CancelWindow,
        now: Timestamp,
    ) -> Result<CancelPayment, StoreError> {
        let (owner, lookup, window) = (owner.clone(), lookup.clone(), *window);
        self.writer.write(move |connection| payments::cancel(connection, &owner, &lookup, &window, now)).await
    }

    async fn create_refund(&self, refund: &NewRefund) -> Result<CreateRefund, StoreError> {
        let refund = refund.clone();
        self.writer.write(move |connection| refunds::create(connection, &refund)).await
    }

    async fn refund(&self, owner: &ClientId, lookup: &RefundLookup) -> Result<Option<Refund>, StoreError> {
        self.reads.with(|connection| refunds::find(connection, owner, lookup))
    }

    async fn refunds_of_payment(
        &self,
        owner: &ClientId,
        payment_id: &PaymentId,
    ) -> Result<Vec<Refund>, StoreError> {
        self.reads.with(|connection| refunds::of_payment(connection, owner, payment_id))
    }

    async fn complete_refunds(&self, now: Timestamp, limit: u32) -> Result<Vec<Refund>, StoreError> {
        self.writer.write(move |connection| refunds::complete(connection, now, limit)).await
    }

    async fn create_registration(&self, terms: &RegistrationTerms) -> Result<CreateRegistration, StoreError> {
        let terms = terms.clone();
        self.writer.write(move |connection| registrations::create(connection, &terms)).await
    }

    async fn registration(
        &self,
        owner: &ClientId,
        lookup: &RegistrationLookup,
    ) -> Result<Option<Registration>, StoreError> {
        self.reads.with(|connection| registrations::find(connection, owner, lookup))
    }

    async fn registrations(
        &self,
        owner: Option<&ClientId>,
        reference: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        self.reads.with(|connection| registrations::list(connection, owner, reference, limit))
    }

    async fn decide_registration(
        &self,
        owner: Option<&ClientId>,
        id: &RegistrationId,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<DecideRegistration, StoreError> {
        let (owner, id, decision) = (owner.cloned(), id.clone(), decision.clone());
        self.writer
            .write(move |connection| registrations::decide(connection, owner.as_ref(), &id, &decision, now))
            .await
    }

    async fn decide_due_registrations(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        self.writer.write(move |connection| registrations::decide_due(connection, now, limit)).await
    }

    async fn approved_store(
        &self,
        owner: &ClientId,
        reference_merchant_id: &str,
        reference_store_id: &str,
    ) -> Result<Option<Registration>, StoreError> {
        self.reads.with(|connection| {
            registrations::approved_store(connection, owner, reference_merchant_id, reference_store_id)
        })
    }

    async fn payment_by_code(&self, code: &CodeToken) -> Result<Option<Payment>, StoreError> {
        self.reads.with(|connection| payments::find_by_code(connection, code))
    }

    async fn settle_payment(&self, settlement: &Settlement) -> Result<SettlePayment, StoreError> {
        let settlement = settlement.clone();
        self.writer.write(move |connection| payments::settle(connection, &settlement)).await
    }

    async fn fail_payment(
        &self,
        code: &CodeToken,
        reason: FailReason,
        now: Timestamp,
    ) -> Result<FailPayment, StoreError> {
        let code = code.clone();
        self.writer.write(move |connection| payments::fail(connection, &code, reason, now)).await
    }

    async fn expire_payments(&self, now: Timestamp, limit: u32) -> Result<Vec<Payment>, StoreError> {
        self.writer.write(move |connection| payments::expire(connection, now, limit)).await
    }

    async fn take_sandbox_fault(&self, fault: &SandboxFault, now: Timestamp) -> Result<bool, StoreError> {
        let (kind, key) = fault.key();
        self.writer
            .write(move |connection| {
                let taken = connection
                    .prepare_cached(
                        "INSERT INTO sandbox_fault (kind, fault_key, taken_at_ms) VALUES (?1, ?2, ?3) \
                         ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![kind, key, millis(now)])?;
                Ok(taken == 1)
            })
            .await
    }

    async fn create_payer(&self, payer: &Payer) -> Result<(), StoreError> {
        let payer = payer.clone();
        self.writer.write(move |connection| ledger::create_payer(connection, &payer)).await
    }

    async fn payer(&self, payer: &PayerId) -> Result<Option<Payer>, StoreError> {
        self.reads.with(|connection| ledger::find_payer(connection, payer))
    }

    async fn pin_attempt(
        &self,
        payer: &PayerId,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let payer = payer.clone();
        self.writer
            .write(move |connection| ledger::pin_attempt(connection, &payer, failures_max, locked_until, now))
            .await
    }

    async fn pin_succeeded(&self, payer: &PayerId) -> Result<(), StoreError> {
        let payer = payer.clone();
        self.writer.write(move |connection| ledger::pin_succeeded(connection, &payer)).await
    }

    async fn top_up(&self, payer: &PayerId, amount: Money, now: Timestamp) -> Result<Money, StoreError> {
        let payer = payer.clone();
        self.writer.write(move |connection| ledger::top_up(connection, &payer, amount, now)).await
    }

    async fn balance(&self, account: &Account) -> Result<Money, StoreError> {
        self.reads.with(|connection| ledger::balance(connection, account))
    }

    async fn balances(&self, owner: &AccountOwner) -> Result<Vec<Money>, StoreError> {
        self.reads.with(|connection| ledger::balances(connection, owner))
    }

    async fn ledger_check(&self) -> Result<LedgerCheck, StoreError> {
        self.reads.with(ledger::check)
    }

    async fn claim_notifications(
        &self,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        self.writer.write(move |connection| outbox::claim(connection, now, lease, limit)).await
    }

    async fn record_attempt(&self, attempt: &Attempt, after: AfterAttempt) -> Result<(), StoreError> {
        let attempt = attempt.clone();
        self.writer.write(move |connection| outbox::record(connection, &attempt, after)).await
    }

    async fn resend_notifications(&self, subject_id: &str, now: Timestamp) -> Result<u32, StoreError> {
        let subject_id = subject_id.to_owned();
        self.writer.write(move |connection| outbox::resend(connection, &subject_id, now)).await
    }

    async fn notifications(&self, subject_id: &str) -> Result<Vec<(Notification, Vec<Attempt>)>, StoreError> {
        self.reads.with(|connection| outbox::list(connection, subject_id))
    }

    async fn release_claims(&self) -> Result<(), StoreError> {
        self.writer.write(outbox::release).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        if !self.writer.is_running() {
            return Err(StoreError::Database("the writer has stopped".into()));
        }
        self.reads.with(|connection| Ok(connection.query_row("SELECT 1", [], |_| Ok(()))?))
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
