//! The embedded SQLite store: one file in WAL mode with `synchronous=FULL`, so that a write
//! acknowledged to a client survives a power cut; one writer task with group commit; and a
//! small pool of read connections that never wait for the writer.

mod rows;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use ocpay_core::Timestamp;
use ocpay_core::ids::ClientId;
use ocpay_core::participant::{KeyVersion, Participant, ParticipantKey};
use ocpay_core::payment::{CancelDecision, CancelWindow, PaymentState, PaymentTerms, decide_cancel};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, SqlSafeStr, SqliteConnection};

use self::rows::millis;
use self::writer::Writer;
use crate::{CancelPayment, CreatePayment, NewKey, PaymentLookup, Store, StoreError};

/// Settings of the SQLite store. Every limit is explicit.
#[derive(Debug, Clone)]
pub struct SqliteSettings {
    /// The database file; created with its schema when missing.
    pub path: PathBuf,
    /// Read connections kept open.
    pub read_connections_max: u32,
    /// Most writes committed in one transaction.
    pub write_batch_max: usize,
    /// Most writes waiting for the writer before callers wait for room.
    pub write_queue_max: usize,
    /// How long a connection waits for a lock held by another process (the CLI) before failing.
    pub busy_timeout: Duration,
}

impl SqliteSettings {
    pub fn new(path: impl Into<PathBuf>) -> SqliteSettings {
        SqliteSettings {
            path: path.into(),
            read_connections_max: 8,
            write_batch_max: 256,
            write_queue_max: 4096,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The embedded store. Several processes may open one file: the server and, while it runs,
/// a CLI command that adds a participant.
pub struct SqliteStore {
    reads: SqlitePool,
    writer: Writer,
}

fn migrator() -> Migrator {
    let migration = |version, description: &'static str, sql: &'static str| {
        Migration::new(version, description.into(), MigrationType::Simple, sql.into_sql_str(), false)
    };
    Migrator::with_migrations(vec![migration(
        1,
        "participants and payments",
        include_str!("../../migrations/sqlite/0001_participants_and_payments.sql"),
    )])
}

impl SqliteStore {
    /// Opens (or creates) the database, applies pending migrations and starts the writer.
    pub async fn open(settings: &SqliteSettings) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(&settings.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(settings.busy_timeout);
        let mut connection = SqliteConnection::connect_with(&options).await?;
        migrator().run(&mut connection).await.map_err(|error| StoreError::Database(error.to_string()))?;
        let reads = SqlitePoolOptions::new()
            .max_connections(settings.read_connections_max.max(1))
            .connect_with(options.read_only(true))
            .await?;
        let writer = Writer::start(connection, settings.write_batch_max, settings.write_queue_max);
        Ok(SqliteStore { reads, writer })
    }
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

const PAYMENT_BY_ID: &str =
    concat!("SELECT ", payment_columns!(), " FROM payment WHERE owner_client_id = ? AND payment_id = ?");
const PAYMENT_BY_REQUEST_ID: &str = concat!(
    "SELECT ",
    payment_columns!(),
    " FROM payment WHERE owner_client_id = ? AND payment_request_id = ?"
);

fn lookup_query(lookup: &PaymentLookup) -> (&'static str, String) {
    match lookup {
        PaymentLookup::ById(id) => (PAYMENT_BY_ID, id.as_str().to_owned()),
        PaymentLookup::ByRequestId(id) => (PAYMENT_BY_REQUEST_ID, id.as_str().to_owned()),
    }
}

async fn find_payment(
    connection: &mut SqliteConnection,
    owner: &ClientId,
    lookup: &PaymentLookup,
) -> Result<Option<ocpay_core::payment::Payment>, StoreError> {
    let (sql, key) = lookup_query(lookup);
    let row = sqlx::query(sql).bind(owner.as_str()).bind(key).fetch_optional(connection).await?;
    row.as_ref().map(rows::payment).transpose()
}

async fn insert_key(
    connection: &mut SqliteConnection,
    client_id: &str,
    version: i64,
    key: &NewKey,
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO participant_key (",
        key_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, NULL)"
    ))
    .bind(client_id)
    .bind(version)
    .bind(&key.public_key_der)
    .bind(&key.label)
    .bind(millis(key.created_at))
    .bind(key.expires_at.map(millis))
    .execute(connection)
    .await?;
    Ok(())
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_participant(&self, participant: &Participant, key: &NewKey) -> Result<(), StoreError> {
        let participant = participant.clone();
        let key = key.clone();
        self.writer
            .write(move |connection| {
                Box::pin(async move {
                    let inserted = sqlx::query(concat!(
                        "INSERT INTO participant (",
                        participant_columns!(),
                        ") VALUES (?, ?, ?, ?, ?)"
                    ))
                    .bind(participant.client_id.as_str())
                    .bind(participant.kind.as_str())
                    .bind(&participant.name)
                    .bind(&participant.notify_url)
                    .bind(millis(participant.created_at))
                    .execute(&mut *connection)
                    .await;
                    match inserted {
                        Err(error) if is_unique_violation(&error) => {
                            return Err(StoreError::Conflict("client id"));
                        }
                        other => other?,
                    };
                    insert_key(connection, participant.client_id.as_str(), 1, &key).await
                })
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
                Box::pin(async move {
                    let latest: Option<i64> = sqlx::query_scalar(
                        "SELECT MAX(key_version) FROM participant_key WHERE client_id = ?",
                    )
                    .bind(client_id.as_str())
                    .fetch_one(&mut *connection)
                    .await?;
                    let latest = latest.ok_or(StoreError::NotFound("participant"))?;
                    let version = latest + 1;
                    insert_key(connection, client_id.as_str(), version, &key).await?;
                    KeyVersion::try_from(version)
                        .map_err(|_| StoreError::Corrupt("key version overflow".into()))
                })
            })
            .await
    }

    async fn participant(&self, client_id: &ClientId) -> Result<Option<Participant>, StoreError> {
        let row =
            sqlx::query(concat!("SELECT ", participant_columns!(), " FROM participant WHERE client_id = ?"))
                .bind(client_id.as_str())
                .fetch_optional(&self.reads)
                .await?;
        row.as_ref().map(rows::participant).transpose()
    }

    async fn participants(&self, limit: u32) -> Result<Vec<Participant>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            participant_columns!(),
            " FROM participant ORDER BY created_at_ms, client_id LIMIT ?"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await?;
        rows.iter().map(rows::participant).collect()
    }

    async fn participant_key(
        &self,
        client_id: &ClientId,
        key_version: Option<KeyVersion>,
    ) -> Result<Option<ParticipantKey>, StoreError> {
        let row = match key_version {
            Some(version) => {
                sqlx::query(concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM participant_key WHERE client_id = ? AND key_version = ?"
                ))
                .bind(client_id.as_str())
                .bind(i64::from(version))
                .fetch_optional(&self.reads)
                .await?
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM participant_key WHERE client_id = ? ORDER BY key_version DESC LIMIT 1"
                ))
                .bind(client_id.as_str())
                .fetch_optional(&self.reads)
                .await?
            }
        };
        row.as_ref().map(rows::participant_key).transpose()
    }

    async fn create_payment(&self, terms: &PaymentTerms) -> Result<CreatePayment, StoreError> {
        let terms = terms.clone();
        self.writer
            .write(move |connection| {
                Box::pin(async move {
                    let inserted = insert_payment(&mut *connection, &terms).await?;
                    let lookup = PaymentLookup::ByRequestId(terms.request_id.clone());
                    let payment = find_payment(connection, &terms.owner, &lookup)
                        .await?
                        .ok_or_else(|| StoreError::Corrupt("a payment vanished after its insert".into()))?;
                    Ok(if inserted {
                        CreatePayment::Created(payment)
                    } else {
                        CreatePayment::Existing(payment)
                    })
                })
            })
            .await
    }

    async fn payment(
        &self,
        owner: &ClientId,
        lookup: &PaymentLookup,
    ) -> Result<Option<ocpay_core::payment::Payment>, StoreError> {
        let mut connection = self.reads.acquire().await?;
        find_payment(&mut connection, owner, lookup).await
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
                Box::pin(async move {
                    let Some(mut payment) = find_payment(&mut *connection, &owner, &lookup).await? else {
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
                    sqlx::query(
                        "UPDATE payment SET status = 'CANCELLED', cancelled_at_ms = ? WHERE payment_id = ?",
                    )
                    .bind(millis(now))
                    .bind(payment.terms.id.as_str())
                    .execute(&mut *connection)
                    .await?;
                    payment.state = PaymentState::Cancelled { cancelled_at: now, paid_at };
                    Ok(CancelPayment::Done(payment))
                })
            })
            .await
    }
}

/// Inserts a payment in `PROCESSING` unless its idempotency key exists; says whether it did.
async fn insert_payment(connection: &mut SqliteConnection, terms: &PaymentTerms) -> Result<bool, StoreError> {
    let order = &terms.order;
    let merchant = &order.merchant;
    let result = sqlx::query(concat!(
        "INSERT INTO payment (",
        payment_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'PROCESSING', NULL, ?, ?, NULL, NULL, NULL) \
         ON CONFLICT (owner_client_id, payment_request_id) DO NOTHING"
    ))
    .bind(terms.id.as_str())
    .bind(terms.owner.as_str())
    .bind(terms.request_id.as_str())
    .bind(terms.amount.minor())
    .bind(terms.amount.currency().code())
    .bind(order.amount.minor())
    .bind(order.amount.currency().code())
    .bind(&order.reference_order_id)
    .bind(&order.description)
    .bind(&merchant.reference_merchant_id)
    .bind(&merchant.name)
    .bind(&merchant.mcc)
    .bind(&merchant.display_name)
    .bind(&merchant.store.reference_store_id)
    .bind(&merchant.store.name)
    .bind(&merchant.store.mcc)
    .bind(terms.code_token.as_str())
    .bind(&terms.notify_url)
    .bind(&terms.redirect_url)
    .bind(terms.settlement_currency.map(|currency| currency.code()))
    .bind(&terms.merchant_region)
    .bind(&terms.extend_info)
    .bind(millis(terms.created_at))
    .bind(millis(terms.expires_at))
    .execute(connection)
    .await?;
    Ok(result.rows_affected() == 1)
}
