//! The business SQL, written once for every SQL engine.
//!
//! Each business write is a function over a [`Db`]: one transaction's connection, whichever
//! engine holds it. An [`Engine`] decides how a transaction runs (SQLite: one writer thread
//! with group commit; PostgreSQL: a pooled connection, `SERIALIZABLE`, retried on a
//! serialization failure), and [`SqlStore`] implements the store's traits (see [`Store`](crate::Store)) for any engine, so
//! both back ends run the very same statements and decisions.
//!
//! The SQL stays within what both engines (and PostgreSQL-compatible distributed databases)
//! accept: parameters as `?N` (the PostgreSQL engine rewrites them to `$N`), sums cast to
//! `BIGINT`, `ON CONFLICT ... DO NOTHING`, `RETURNING`, no engine-specific functions. Where an
//! engine can do better, [`Dialect`] picks a variant (queue claims skip rows locked by
//! another node on PostgreSQL).

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

/// A query that picks the rows of a work queue (due notifications, expired payments, ...) that
/// this transaction then changes. On PostgreSQL, where several servers may work the queue at
/// once, it locks them and skips rows another server has locked, instead of waiting for that
/// server and then failing to serialise. `$sql` must expand to a string literal.
macro_rules! queue_rows {
    ($db:expr, $sql:expr) => {
        match $db.dialect() {
            $crate::sql::Dialect::Sqlite => $sql,
            $crate::sql::Dialect::Postgres => concat!($sql, " FOR UPDATE SKIP LOCKED"),
        }
    };
}

/// A query that reads one row this transaction then changes, locking it on PostgreSQL, where
/// a [`Isolation::RowLocks`] write relies on the lock instead of on serialisability.
macro_rules! locked_row {
    ($db:expr, $sql:expr) => {
        match $db.dialect() {
            $crate::sql::Dialect::Sqlite => $sql,
            $crate::sql::Dialect::Postgres => concat!($sql, " FOR UPDATE"),
        }
    };
}

mod access;
mod activity;
mod api_log;
mod console;
mod fault;
mod ledger;
mod outbox;
mod oversight;
mod participants;
mod payments;
mod portal;
mod preload;
mod refunds;
mod registrations;
mod rows;
mod settlement;
mod sftp;
mod value;

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use ocpay_core::fees::FeeRules;
use ocpay_core::ledger::WalletLimit;

pub use self::fault::{INJECTED, StatementFaults};
pub(crate) use self::value::params;
pub use self::value::{Cell, ColumnIndex, Columns, FromCell, Row, ToValue, Value};
use crate::{DatabaseStore, StoreError};

/// What engines cache a statement's prepared form or column names under: the address and
/// length of its `&'static str` text, which always name the same text.
pub(crate) type StatementKey = (usize, usize);

pub(crate) fn statement_key(sql: &'static str) -> StatementKey {
    (sql.as_ptr() as usize, sql.len())
}

/// Which SQL engine runs the statements, for the few places where they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One transaction's connection. Statements are `&'static str` so that engines can cache
/// their prepared form by address.
pub trait Db {
    fn dialect(&self) -> Dialect;

    /// Runs a statement that returns rows.
    fn query(&mut self, sql: &'static str, params: &[Value<'_>]) -> Result<Vec<Row>, StoreError>;

    /// Runs a statement and returns how many rows it changed. A violated unique constraint is
    /// `StoreError::Conflict("unique key")`, so that callers can tell it from other failures.
    fn execute(&mut self, sql: &'static str, params: &[Value<'_>]) -> Result<u64, StoreError>;

    /// Runs queries that do not depend on one another, each with its parameters, and returns
    /// each one's rows in order. An engine may send them all at once (PostgreSQL does: one
    /// round trip for all).
    fn query_batch(&mut self, queries: &[(&'static str, &[Value<'_>])]) -> Result<Vec<Vec<Row>>, StoreError> {
        queries.iter().map(|(sql, params)| self.query(sql, params)).collect()
    }

    /// Runs a statement whose changed-row count nobody reads. An engine may hold it back and
    /// send it with the transaction's next statement or its commit (PostgreSQL does: one round
    /// trip for both), so its failure, a violated unique key included, may be reported by
    /// whichever comes next. Use [`Db::execute`] where the caller handles this statement's
    /// own failure.
    fn execute_later(&mut self, sql: &'static str, params: &[Value<'_>]) -> Result<(), StoreError> {
        self.execute(sql, params).map(drop)
    }
}

impl dyn Db + '_ {
    /// The first row a query returns, mapped, or `None`.
    pub(crate) fn query_opt<T>(
        &mut self,
        sql: &'static str,
        params: &[Value<'_>],
        map: impl FnOnce(&Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.query(sql, params)?.first().map(map).transpose()
    }

    /// The one row a query must return, mapped.
    pub(crate) fn query_one<T>(
        &mut self,
        sql: &'static str,
        params: &[Value<'_>],
        map: impl FnOnce(&Row) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, params, map)?
            .ok_or_else(|| StoreError::Corrupt(format!("no row where one was expected: {sql}")))
    }

    /// Every row a query returns, mapped.
    pub(crate) fn query_all<T>(
        &mut self,
        sql: &'static str,
        params: &[Value<'_>],
        map: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.query(sql, params)?.iter().map(map).collect()
    }
}

/// How a write is kept apart from concurrent writes, where an engine runs several at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// As if it ran alone: a business step that reads, decides with core and writes.
    Serializable,
    /// Queue work (claims, expiries, completions, recorded attempts): every row it changes is
    /// locked as it is read (`queue_rows!`, `locked_row!`), and it decides on nothing else. It
    /// then needs no serialisability, whose range reads of a busy queue would make concurrent
    /// payments fail to serialise.
    RowLocks,
}

/// How an engine runs transactions.
pub trait Engine: Send + Sync + 'static {
    /// Runs `work` as one write transaction and returns its result once it is durable. The
    /// engine may run `work` again (after rolling back) when the database asks for a retry, or
    /// when another write sharing its transaction had to be undone, so `work` must not change
    /// anything outside its transaction.
    fn write<T, F>(
        &self,
        isolation: Isolation,
        work: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send + 'static,
        F: FnMut(&mut dyn Db) -> Result<T, StoreError> + Send + 'static;

    /// Runs `read` in one read-only transaction: several statements see one snapshot.
    fn read<T, F>(&self, read: F) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send,
        F: FnOnce(&mut dyn Db) -> Result<T, StoreError> + Send;

    /// Whether several servers share the database. Then a server that starts cannot tell its
    /// own dead claims from another's live ones, and leaves claims to their leases.
    fn is_shared(&self) -> bool;

    /// Whether the engine can serve reads and writes.
    fn health(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Makes write statements check `faults` before they run (tests only).
    fn install_statement_faults(&mut self, faults: Arc<StatementFaults>);
}

/// A [`Store`](crate::Store) on an SQL [`Engine`]: each area's trait is implemented in the
/// area's module, beside its SQL.
pub struct SqlStore<E> {
    engine: E,
    /// The most a payer's wallet may hold, checked by every write that adds to one.
    wallet_limit: WalletLimit,
    /// The platform's default fee schedule and what refunds do with fees.
    fee_rules: Arc<FeeRules>,
}

impl<E: Engine> SqlStore<E> {
    pub fn new(engine: E) -> SqlStore<E> {
        SqlStore { engine, wallet_limit: WalletLimit::default(), fee_rules: Arc::new(FeeRules::default()) }
    }

    /// The store with `limit` as every wallet's maximum balance (the default is
    /// [`WalletLimit::DEFAULT_MAJOR`] units).
    pub fn with_wallet_limit(mut self, limit: WalletLimit) -> SqlStore<E> {
        self.wallet_limit = limit;
        self
    }

    /// The store with `rules` as the platform's fee rules (the default charges no fee).
    pub fn with_fee_rules(mut self, rules: FeeRules) -> SqlStore<E> {
        self.fee_rules = Arc::new(rules);
        self
    }

    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The store with write statements that fail when `faults` says so: a test's way to fail
    /// a business write inside its transaction. Stores made without it never check.
    pub fn with_statement_faults(mut self, faults: Arc<StatementFaults>) -> SqlStore<E> {
        self.engine.install_statement_faults(faults);
        self
    }
}

#[async_trait]
#[async_trait]
impl<E: Engine> DatabaseStore for SqlStore<E> {
    async fn health(&self) -> Result<(), StoreError> {
        self.engine.health().await?;
        self.engine.read(|db| db.query("SELECT 1", &[]).map(drop)).await
    }
}
