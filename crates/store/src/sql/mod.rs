//! The business SQL, written once for every SQL engine.
//!
//! Each business write is a function over a [`Db`]: one transaction's connection, whichever
//! engine holds it. An [`Engine`] decides how a transaction runs (SQLite: one writer thread
//! with group commit; PostgreSQL: a pooled connection, `SERIALIZABLE`, retried on a
//! serialization failure), and [`SqlStore`] implements the [`Store`] trait for any engine, so
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
mod refunds;
mod registrations;
mod rows;
mod settlement;
mod sftp;
mod value;

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::SignedDuration;
use jiff::civil::Date;
use ocpay_core::Timestamp;
use ocpay_core::access::Grant;
use ocpay_core::fees::FeeRules;
use ocpay_core::ids::{ClientId, CodeToken, PaymentId, RegistrationId};
use ocpay_core::ledger::{Account, AccountOwner, WalletLimit};
use ocpay_core::money::{Currency, Money};
use ocpay_core::participant::{KeyVersion, Participant, ParticipantKey};
use ocpay_core::payer::{Payer, PayerId};
use ocpay_core::payment::{CancelWindow, FailReason, Payment, PaymentTerms};
use ocpay_core::refund::Refund;
use ocpay_core::registration::{Decision, Registration, RegistrationTerms};

pub use self::fault::{INJECTED, StatementFaults};
pub(crate) use self::value::params;
pub use self::value::{Cell, ColumnIndex, Columns, FromCell, Row, ToValue, Value};
use crate::pages::{PageCursor, PaymentFilter, TokenHold};
use crate::settlement::{
    BatchCursor, ItemCursor, MarkPaid, SettleChunk, SettledChunk, SettlementBatch, SettlementCounts,
    SettlementItemRecord, SettlementTerms,
};
use crate::{
    AfterAttempt, Attempt, AuditEvent, CancelPayment, CreatePayment, CreateRefund, CreateRegistration,
    DecideRegistration, FailPayment, LedgerCheck, NewGrant, NewKey, NewRefund, Notification,
    ParticipantChange, PaymentLookup, RefundLookup, RegistrationLookup, SandboxFault, SettlePayment,
    Settlement, Store, StoreError,
};

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
    /// engine may run `work` again (after rolling back) when the database asks for a retry, so
    /// `work` must not change anything outside its transaction.
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

/// A [`Store`] on an SQL [`Engine`].
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

    /// The daily figures of a scope from the day of `from` on: the days that ended before
    /// `final_before` from kept rows (computed and kept first when missing), the rest computed.
    async fn activity(
        &self,
        scope: activity::Scope,
        from: Timestamp,
        final_before: Timestamp,
    ) -> Result<crate::DailyActivity, StoreError> {
        let first = from.as_millisecond().div_euclid(activity::DAY_MS);
        let final_end = final_before.as_millisecond().div_euclid(activity::DAY_MS).max(first);
        let (mut kept, missing) =
            self.engine.read(|db| activity::kept(db, &scope, (first, final_end))).await?;
        let computed = match missing {
            None => crate::DailyActivity::default(),
            Some(day) => {
                // Days from the first one never computed are computed (again) and kept.
                kept.payments.retain(|total| total.day < day);
                kept.refunds.retain(|total| total.day < day);
                kept.notifications.retain(|deliveries| deliveries.day < day);
                let scope = scope.clone();
                self.engine
                    .write(Isolation::Serializable, move |db| activity::keep(db, &scope, (day, final_end)))
                    .await?
            }
        };
        let live = self
            .engine
            .read(|db| activity::compute(db, &scope, (final_end, i64::MAX / activity::DAY_MS)))
            .await?;
        Ok(activity::join([kept, computed, live]))
    }

    /// The store with write statements that fail when `faults` says so: a test's way to fail
    /// a business write inside its transaction. Stores made without it never check.
    pub fn with_statement_faults(mut self, faults: Arc<StatementFaults>) -> SqlStore<E> {
        self.engine.install_statement_faults(faults);
        self
    }
}

#[async_trait]
impl<E: Engine> Store for SqlStore<E> {
    async fn create_participant(&self, participant: &Participant, key: &NewKey) -> Result<(), StoreError> {
        let (participant, key) = (participant.clone(), key.clone());
        self.engine
            .write(Isolation::Serializable, move |db| participants::create(db, &participant, &key))
            .await
    }

    async fn add_participant_key(
        &self,
        client_id: &ClientId,
        key: &NewKey,
    ) -> Result<KeyVersion, StoreError> {
        let (client_id, key) = (client_id.clone(), key.clone());
        self.engine
            .write(Isolation::Serializable, move |db| participants::add_key(db, &client_id, &key))
            .await
    }

    async fn participant(&self, client_id: &ClientId) -> Result<Option<Participant>, StoreError> {
        self.engine.read(|db| participants::find(db, client_id)).await
    }

    async fn participant_keys(&self, client_id: &ClientId) -> Result<Vec<ParticipantKey>, StoreError> {
        self.engine.read(|db| participants::keys(db, client_id)).await
    }

    async fn keys_with_last_use(
        &self,
        client_id: &ClientId,
        before: Option<KeyVersion>,
        limit: u32,
    ) -> Result<Vec<(ParticipantKey, Option<Timestamp>)>, StoreError> {
        self.engine.read(|db| participants::keys_with_last_use(db, client_id, before, limit)).await
    }

    async fn revoke_participant_key(
        &self,
        client_id: &ClientId,
        key_version: KeyVersion,
        now: Timestamp,
    ) -> Result<ParticipantKey, StoreError> {
        let client_id = client_id.clone();
        self.engine
            .write(Isolation::Serializable, move |db| {
                participants::revoke_key(db, &client_id, key_version, now)
            })
            .await
    }

    async fn create_grant(&self, grant: &NewGrant, now: Timestamp) -> Result<(), StoreError> {
        let grant = grant.clone();
        self.engine.write(Isolation::Serializable, move |db| access::create_grant(db, &grant, now)).await
    }

    async fn grant_by_token(&self, token_sha256: &str) -> Result<Option<Grant>, StoreError> {
        self.engine.read(|db| access::grant_by_token(db, token_sha256)).await
    }

    async fn grants(&self, client_id: &ClientId) -> Result<Vec<Grant>, StoreError> {
        self.engine.read(|db| access::grants(db, client_id)).await
    }

    async fn revoke_grant(&self, grant_id: &str, now: Timestamp) -> Result<Grant, StoreError> {
        let grant_id = grant_id.to_owned();
        self.engine.write(Isolation::Serializable, move |db| access::revoke_grant(db, &grant_id, now)).await
    }

    async fn record_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let events = events.to_vec();
        self.engine.write(Isolation::Serializable, move |db| access::record_audit(db, &events)).await
    }

    async fn audit_events(&self, client_id: &ClientId, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        self.engine.read(|db| access::audit_events(db, client_id, limit)).await
    }

    async fn prune_audit(&self, older_than: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.engine.write(Isolation::RowLocks, move |db| access::prune_audit(db, older_than, limit)).await
    }

    async fn participants(&self, limit: u32) -> Result<Vec<Participant>, StoreError> {
        self.engine.read(|db| participants::list(db, limit)).await
    }

    async fn update_participant(
        &self,
        client_id: &ClientId,
        change: &ParticipantChange,
    ) -> Result<Participant, StoreError> {
        let (client_id, change) = (client_id.clone(), change.clone());
        self.engine
            .write(Isolation::Serializable, move |db| participants::update(db, &client_id, &change))
            .await
    }

    async fn participant_with_key(
        &self,
        client_id: &ClientId,
        key_version: Option<KeyVersion>,
    ) -> Result<Option<crate::oversight::Signer>, StoreError> {
        self.engine.read(|db| oversight::signer(db, client_id, key_version)).await
    }

    async fn create_payment_audited(
        &self,
        terms: &PaymentTerms,
        audit: Option<&AuditEvent>,
    ) -> Result<CreatePayment, StoreError> {
        let (terms, audit) = (terms.clone(), audit.cloned());
        self.engine
            .write(Isolation::Serializable, move |db| {
                let created = payments::create(db, &terms)?;
                if matches!(created, CreatePayment::Created(_)) {
                    access::record_audit(db, audit.as_slice())?;
                }
                Ok(created)
            })
            .await
    }

    async fn payment(&self, owner: &ClientId, lookup: &PaymentLookup) -> Result<Option<Payment>, StoreError> {
        self.engine.read(|db| payments::find(db, owner, lookup)).await
    }

    async fn cancel_payment_audited(
        &self,
        owner: &ClientId,
        lookup: &PaymentLookup,
        window: &CancelWindow,
        now: Timestamp,
        audit: Option<&AuditEvent>,
    ) -> Result<CancelPayment, StoreError> {
        let (owner, lookup, window, limit) = (owner.clone(), lookup.clone(), *window, self.wallet_limit);
        let audit = audit.cloned();
        self.engine
            .write(Isolation::Serializable, move |db| {
                let cancelled = payments::cancel(db, &owner, &lookup, &window, now, limit)?;
                if matches!(cancelled, CancelPayment::Done(_)) {
                    access::record_audit(db, audit.as_slice())?;
                }
                Ok(cancelled)
            })
            .await
    }

    async fn create_refund_audited(
        &self,
        refund: &NewRefund,
        audit: Option<&AuditEvent>,
    ) -> Result<CreateRefund, StoreError> {
        let (refund, audit) = (refund.clone(), audit.cloned());
        let (limit, rules) = (self.wallet_limit, self.fee_rules.clone());
        self.engine
            .write(Isolation::Serializable, move |db| {
                let created = refunds::create(db, &refund, limit, &rules)?;
                if matches!(created, CreateRefund::Created(_)) {
                    access::record_audit(db, audit.as_slice())?;
                }
                Ok(created)
            })
            .await
    }

    async fn refund(&self, owner: &ClientId, lookup: &RefundLookup) -> Result<Option<Refund>, StoreError> {
        self.engine.read(|db| refunds::find(db, owner, lookup)).await
    }

    async fn refunds_of_payment(
        &self,
        owner: &ClientId,
        payment_id: &PaymentId,
    ) -> Result<Vec<Refund>, StoreError> {
        self.engine.read(|db| refunds::of_payment(db, owner, payment_id)).await
    }

    async fn complete_refunds(&self, now: Timestamp, limit: u32) -> Result<Vec<Refund>, StoreError> {
        let (wallet_limit, rules) = (self.wallet_limit, self.fee_rules.clone());
        self.engine
            .write(Isolation::RowLocks, move |db| refunds::complete(db, now, limit, wallet_limit, &rules))
            .await
    }

    async fn create_registration_audited(
        &self,
        terms: &RegistrationTerms,
        audit: Option<&AuditEvent>,
    ) -> Result<CreateRegistration, StoreError> {
        let (terms, audit) = (terms.clone(), audit.cloned());
        self.engine
            .write(Isolation::Serializable, move |db| {
                let created = registrations::create(db, &terms)?;
                if matches!(created, CreateRegistration::Created(_) | CreateRegistration::Existing(_)) {
                    access::record_audit(db, audit.as_slice())?;
                }
                Ok(created)
            })
            .await
    }

    async fn registration(
        &self,
        owner: &ClientId,
        lookup: &RegistrationLookup,
    ) -> Result<Option<Registration>, StoreError> {
        self.engine.read(|db| registrations::find(db, owner, lookup)).await
    }

    async fn registrations(
        &self,
        owner: Option<&ClientId>,
        reference: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        self.engine.read(|db| registrations::list(db, owner, reference, limit)).await
    }

    async fn decide_registration(
        &self,
        owner: Option<&ClientId>,
        id: &RegistrationId,
        decision: &Decision,
        now: Timestamp,
    ) -> Result<DecideRegistration, StoreError> {
        let (owner, id, decision) = (owner.cloned(), id.clone(), decision.clone());
        self.engine
            .write(Isolation::Serializable, move |db| {
                registrations::decide(db, owner.as_ref(), &id, &decision, now)
            })
            .await
    }

    async fn decide_due_registrations(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        self.engine.write(Isolation::RowLocks, move |db| registrations::decide_due(db, now, limit)).await
    }

    async fn approved_store(
        &self,
        owner: &ClientId,
        reference_merchant_id: &str,
        reference_store_id: &str,
    ) -> Result<Option<Registration>, StoreError> {
        self.engine
            .read(|db| registrations::approved_store(db, owner, reference_merchant_id, reference_store_id))
            .await
    }

    async fn payment_by_code(&self, code: &CodeToken) -> Result<Option<Payment>, StoreError> {
        self.engine.read(|db| payments::find_by_code(db, code)).await
    }

    async fn settle_payment(&self, settlement: &Settlement) -> Result<SettlePayment, StoreError> {
        let settlement = settlement.clone();
        let (limit, rules) = (self.wallet_limit, self.fee_rules.clone());
        self.engine
            .write(Isolation::Serializable, move |db| payments::settle(db, &settlement, limit, &rules))
            .await
    }

    async fn fail_payment(
        &self,
        code: &CodeToken,
        reason: FailReason,
        now: Timestamp,
    ) -> Result<FailPayment, StoreError> {
        let code = code.clone();
        self.engine.write(Isolation::Serializable, move |db| payments::fail(db, &code, reason, now)).await
    }

    async fn expire_payments(&self, now: Timestamp, limit: u32) -> Result<Vec<Payment>, StoreError> {
        self.engine.write(Isolation::RowLocks, move |db| payments::expire(db, now, limit)).await
    }

    async fn take_sandbox_fault(&self, fault: &SandboxFault, now: Timestamp) -> Result<bool, StoreError> {
        let (kind, key) = fault.key();
        self.engine
            .write(Isolation::Serializable, move |db| {
                let taken = db.execute(
                    "INSERT INTO sandbox_fault (kind, fault_key, taken_at_ms) VALUES (?1, ?2, ?3) \
                     ON CONFLICT DO NOTHING",
                    params![kind, key, rows::millis(now)],
                )?;
                Ok(taken == 1)
            })
            .await
    }

    async fn create_payer(&self, payer: &Payer) -> Result<(), StoreError> {
        let payer = payer.clone();
        self.engine.write(Isolation::Serializable, move |db| ledger::create_payer(db, &payer)).await
    }

    async fn payer(&self, payer: &PayerId) -> Result<Option<Payer>, StoreError> {
        self.engine.read(|db| ledger::find_payer(db, payer)).await
    }

    async fn pin_attempt(
        &self,
        payer: &PayerId,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let payer = payer.clone();
        self.engine
            .write(Isolation::Serializable, move |db| {
                ledger::pin_attempt(db, &payer, failures_max, locked_until, now)
            })
            .await
    }

    async fn pin_succeeded(&self, payer: &PayerId) -> Result<(), StoreError> {
        let payer = payer.clone();
        self.engine.write(Isolation::Serializable, move |db| ledger::pin_succeeded(db, &payer)).await
    }

    async fn top_up(&self, payer: &PayerId, amount: Money, now: Timestamp) -> Result<Money, StoreError> {
        let payer = payer.clone();
        let limit = self.wallet_limit;
        self.engine
            .write(Isolation::Serializable, move |db| ledger::top_up(db, &payer, amount, now, limit))
            .await
    }

    async fn balance(&self, account: &Account) -> Result<Money, StoreError> {
        self.engine.read(|db| ledger::balance(db, account)).await
    }

    async fn balances(&self, owner: &AccountOwner) -> Result<Vec<Money>, StoreError> {
        self.engine.read(|db| ledger::balances(db, owner)).await
    }

    async fn ledger_check(&self) -> Result<LedgerCheck, StoreError> {
        self.engine.read(ledger::check).await
    }

    async fn settlement_terms(&self, client_id: &ClientId) -> Result<Option<SettlementTerms>, StoreError> {
        self.engine.read(|db| settlement::terms(db, client_id)).await
    }

    async fn set_settlement_currency(
        &self,
        client_id: &ClientId,
        currency: Option<Currency>,
    ) -> Result<(), StoreError> {
        let client_id = client_id.clone();
        self.engine
            .write(Isolation::Serializable, move |db| settlement::set_currency(db, &client_id, currency))
            .await
    }

    async fn set_settlement_terms(
        &self,
        client_id: &ClientId,
        terms: &SettlementTerms,
    ) -> Result<(), StoreError> {
        let (client_id, terms) = (client_id.clone(), terms.clone());
        self.engine
            .write(Isolation::Serializable, move |db| settlement::set_terms(db, &client_id, &terms))
            .await
    }

    async fn settlement_candidates(
        &self,
        cutoff: Timestamp,
        owner: Option<&ClientId>,
    ) -> Result<Vec<(ClientId, Currency)>, StoreError> {
        self.engine.read(|db| settlement::candidates(db, cutoff, owner)).await
    }

    async fn oldest_unsettled(&self) -> Result<Option<Timestamp>, StoreError> {
        self.engine.read(settlement::oldest).await
    }

    async fn settle_chunk(&self, chunk: &SettleChunk) -> Result<SettledChunk, StoreError> {
        let (chunk, limit) = (chunk.clone(), self.wallet_limit);
        self.engine.write(Isolation::Serializable, move |db| settlement::chunk(db, &chunk, limit)).await
    }

    async fn settlement_batches(
        &self,
        owner: Option<&ClientId>,
        day: Option<Date>,
        limit: u32,
    ) -> Result<Vec<SettlementBatch>, StoreError> {
        self.engine.read(|db| settlement::batches(db, owner, day, limit)).await
    }

    async fn settlement_batch(&self, batch_id: &str) -> Result<Option<SettlementBatch>, StoreError> {
        self.engine.read(|db| settlement::batch(db, batch_id)).await
    }

    async fn settlement_batches_page(
        &self,
        owner: &ClientId,
        after: Option<&BatchCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementBatch>, StoreError> {
        self.engine.read(|db| settlement::batches_page(db, owner, after, limit)).await
    }

    async fn batch_items(
        &self,
        batch_id: &str,
        after: Option<&ItemCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementItemRecord>, StoreError> {
        self.engine.read(|db| settlement::batch_items(db, batch_id, after, limit)).await
    }

    async fn items_completed_between(
        &self,
        owner: &ClientId,
        from: Timestamp,
        to: Timestamp,
        after: Option<&ItemCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementItemRecord>, StoreError> {
        self.engine.read(|db| settlement::items_between(db, owner, from, to, after, limit)).await
    }

    async fn mark_paid(
        &self,
        batch_id: &str,
        reference: Option<&str>,
        now: Timestamp,
    ) -> Result<MarkPaid, StoreError> {
        let (batch_id, reference, limit) =
            (batch_id.to_owned(), reference.map(str::to_owned), self.wallet_limit);
        self.engine
            .write(Isolation::Serializable, move |db| {
                settlement::mark_paid(db, &batch_id, reference.as_deref(), now, limit)
            })
            .await
    }

    async fn batch_movement(&self, batch_id: &str) -> Result<Option<Money>, StoreError> {
        self.engine.read(|db| settlement::movement(db, batch_id)).await
    }

    async fn settlement_counts(
        &self,
        owner: Option<&ClientId>,
        until: Timestamp,
    ) -> Result<SettlementCounts, StoreError> {
        self.engine.read(|db| settlement::counts(db, owner, until)).await
    }

    async fn claim_notifications(
        &self,
        now: Timestamp,
        lease: SignedDuration,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        self.engine.write(Isolation::RowLocks, move |db| outbox::claim(db, now, lease, limit)).await
    }

    async fn record_attempt(&self, attempt: &Attempt, after: AfterAttempt) -> Result<(), StoreError> {
        let attempt = attempt.clone();
        self.engine.write(Isolation::RowLocks, move |db| outbox::record(db, &attempt, after)).await
    }

    async fn resend_notifications(&self, subject_id: &str, now: Timestamp) -> Result<u32, StoreError> {
        let subject_id = subject_id.to_owned();
        self.engine.write(Isolation::Serializable, move |db| outbox::resend(db, &subject_id, now)).await
    }

    async fn notifications(&self, subject_id: &str) -> Result<Vec<(Notification, Vec<Attempt>)>, StoreError> {
        self.engine.read(|db| outbox::list(db, subject_id)).await
    }

    async fn payments_page(
        &self,
        owner: &ClientId,
        filter: &PaymentFilter,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError> {
        self.engine.read(|db| payments::page(db, owner, filter, after, limit)).await
    }

    async fn refunds_page(
        &self,
        owner: &ClientId,
        status: Option<&str>,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError> {
        self.engine.read(|db| refunds::page(db, owner, status, after, limit)).await
    }

    async fn registrations_page(
        &self,
        owner: &ClientId,
        status: Option<&str>,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        self.engine.read(|db| registrations::page(db, owner, status, after, limit)).await
    }

    async fn token_holds(&self, isv: &ClientId, now: Timestamp) -> Result<Vec<TokenHold>, StoreError> {
        self.engine.read(|db| access::token_holds(db, isv, now)).await
    }

    async fn take_held_token(
        &self,
        grant_id: &str,
        isv: &ClientId,
        taken_by: &str,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        let (grant_id, isv, taken_by) = (grant_id.to_owned(), isv.clone(), taken_by.to_owned());
        self.engine
            .write(Isolation::Serializable, move |db| {
                access::take_held_token(db, &grant_id, &isv, &taken_by, now)
            })
            .await
    }

    async fn forget_held_tokens(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.engine.write(Isolation::RowLocks, move |db| access::forget_held_tokens(db, now)).await
    }

    async fn release_claims(&self) -> Result<(), StoreError> {
        if self.engine.is_shared() {
            return Ok(());
        }
        self.engine.write(Isolation::Serializable, outbox::release).await
    }

    async fn release_notification_claims(&self, claims: &[(String, Timestamp)]) -> Result<u64, StoreError> {
        let claims = claims.to_vec();
        self.engine.write(Isolation::RowLocks, move |db| outbox::release_these(db, &claims)).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.engine.health().await?;
        self.engine.read(|db| db.query("SELECT 1", &[]).map(drop)).await
    }
    async fn upsert_sftp_account(
        &self,
        change: &crate::SftpAccountChange,
        now: Timestamp,
    ) -> Result<(crate::SftpAccount, bool), StoreError> {
        let change = change.clone();
        self.engine.write(Isolation::Serializable, move |db| sftp::upsert(db, &change, now)).await
    }

    async fn remove_sftp_public_key(&self, client_id: &ClientId, key: &str) -> Result<bool, StoreError> {
        let (client_id, key) = (client_id.clone(), key.to_owned());
        self.engine.write(Isolation::Serializable, move |db| sftp::remove_key(db, &client_id, &key)).await
    }

    async fn sftp_accounts(&self) -> Result<Vec<crate::SftpAccount>, StoreError> {
        self.engine.read(sftp::list).await
    }

    async fn sftp_account(&self, client_id: &ClientId) -> Result<Option<crate::SftpAccount>, StoreError> {
        self.engine.read(|db| sftp::find(db, client_id)).await
    }

    async fn remove_sftp_account(&self, client_id: &ClientId) -> Result<bool, StoreError> {
        let client_id = client_id.clone();
        self.engine.write(Isolation::Serializable, move |db| sftp::remove(db, &client_id)).await
    }

    async fn record_sftp_login(
        &self,
        client_id: &ClientId,
        outcome: crate::SftpLoginOutcome,
        now: Timestamp,
    ) -> Result<Option<crate::SftpAccount>, StoreError> {
        let client_id = client_id.clone();
        self.engine
            .write(Isolation::Serializable, move |db| sftp::record_login(db, &client_id, outcome, now))
            .await
    }

    async fn sftp_login_attempt(
        &self,
        client_id: &ClientId,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let client_id = client_id.clone();
        self.engine
            .write(Isolation::Serializable, move |db| {
                sftp::count_failure(db, &client_id, failures_max, locked_until, now)
            })
            .await
    }

    async fn record_api_log(
        &self,
        entries: &[crate::ApiLogEntry],
        unverified_max: u32,
    ) -> Result<(), StoreError> {
        let entries = entries.to_vec();
        // A log decides nothing: it appends, and trims what it appended to.
        self.engine.write(Isolation::RowLocks, move |db| api_log::record(db, &entries, unverified_max)).await
    }

    async fn api_log(
        &self,
        client_id: &ClientId,
        filter: &crate::ApiLogFilter,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::ApiLogEntry>, StoreError> {
        self.engine.read(|db| api_log::page(db, client_id, filter, before_id, limit)).await
    }

    async fn api_log_after(
        &self,
        client_id: &ClientId,
        filter: &crate::ApiLogFilter,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<crate::ApiLogEntry>, StoreError> {
        self.engine.read(|db| api_log::after(db, client_id, filter, after_id, limit)).await
    }

    async fn api_log_entry(
        &self,
        client_id: &ClientId,
        id: i64,
    ) -> Result<Option<crate::ApiLogEntry>, StoreError> {
        self.engine.read(|db| api_log::find(db, client_id, id)).await
    }

    async fn api_results_by_day(
        &self,
        client_id: &ClientId,
        from: Timestamp,
    ) -> Result<Vec<(i64, String, u64)>, StoreError> {
        self.engine.read(|db| api_log::results_by_day(db, client_id, from)).await
    }

    async fn prune_api_log(&self, older_than: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.engine.write(Isolation::RowLocks, move |db| api_log::prune(db, older_than, limit)).await
    }

    async fn create_portal_user(&self, user: &crate::NewPortalUser) -> Result<(), StoreError> {
        let user = user.clone();
        self.engine.write(Isolation::Serializable, move |db| portal::create_user(db, &user)).await
    }

    async fn sign_up(
        &self,
        participant: &Participant,
        key: &NewKey,
        owner: &crate::NewPortalUser,
    ) -> Result<(), StoreError> {
        let (participant, key, owner) = (participant.clone(), key.clone(), owner.clone());
        self.engine
            .write(Isolation::Serializable, move |db| {
                participants::create(db, &participant, &key)?;
                portal::create_user(db, &owner)
            })
            .await
    }

    async fn portal_user_by_email(&self, email: &str) -> Result<Option<crate::PortalUser>, StoreError> {
        self.engine.read(|db| portal::by_email(db, email)).await
    }

    async fn portal_user(&self, user_id: &str) -> Result<Option<crate::PortalUser>, StoreError> {
        self.engine.read(|db| portal::find(db, user_id)).await
    }

    async fn portal_users(&self, client_id: Option<&ClientId>) -> Result<Vec<crate::PortalUser>, StoreError> {
        self.engine.read(|db| portal::list(db, client_id)).await
    }

    async fn portal_users_page(
        &self,
        client_id: &ClientId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::PortalUser>, StoreError> {
        self.engine.read(|db| portal::page(db, client_id, after, limit)).await
    }

    async fn portal_user_by_setup_token(
        &self,
        sha256: &[u8],
        now: Timestamp,
    ) -> Result<Option<crate::PortalUser>, StoreError> {
        self.engine.read(|db| portal::by_setup_token(db, sha256, now)).await
    }

    async fn update_portal_user(
        &self,
        user_id: &str,
        change: &crate::PortalUserChange,
    ) -> Result<Option<crate::PortalUser>, StoreError> {
        let (user_id, change) = (user_id.to_owned(), change.clone());
        self.engine.write(Isolation::Serializable, move |db| portal::update(db, &user_id, &change)).await
    }

    async fn portal_sign_in_attempt(
        &self,
        user_id: &str,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let user_id = user_id.to_owned();
        self.engine
            .write(Isolation::Serializable, move |db| {
                portal::count_failure(db, portal::Realm::Portal, &user_id, failures_max, locked_until, now)
            })
            .await
    }

    async fn record_portal_sign_in(
        &self,
        session: &crate::PortalSession,
        totp_step: Option<i64>,
    ) -> Result<bool, StoreError> {
        let session = session.clone();
        self.engine
            .write(Isolation::Serializable, move |db| {
                portal::record_sign_in(db, portal::Realm::Portal, &session, totp_step)
            })
            .await
    }

    async fn portal_session(
        &self,
        session_sha256: &[u8],
    ) -> Result<Option<(crate::PortalSession, crate::PortalUser)>, StoreError> {
        self.engine.read(|db| portal::session(db, session_sha256)).await
    }

    async fn touch_portal_session(&self, session_sha256: &[u8], now: Timestamp) -> Result<(), StoreError> {
        let sha256 = session_sha256.to_vec();
        self.engine
            .write(Isolation::Serializable, move |db| {
                portal::touch_session(db, portal::Realm::Portal, &sha256, now)
            })
            .await
    }

    async fn end_portal_session(&self, session_sha256: &[u8]) -> Result<(), StoreError> {
        let sha256 = session_sha256.to_vec();
        self.engine
            .write(Isolation::Serializable, move |db| portal::end_session(db, portal::Realm::Portal, &sha256))
            .await
    }

    async fn set_participant_suspension(
        &self,
        client_id: &ClientId,
        at: Option<Timestamp>,
    ) -> Result<crate::oversight::ParticipantListing, StoreError> {
        let client_id = client_id.clone();
        self.engine
            .write(Isolation::Serializable, move |db| oversight::set_suspended(db, &client_id, at))
            .await
    }

    async fn participant_listing(
        &self,
        client_id: &ClientId,
    ) -> Result<Option<crate::oversight::ParticipantListing>, StoreError> {
        self.engine.read(|db| oversight::listing(db, client_id)).await
    }

    async fn participants_page(
        &self,
        filter: &crate::oversight::ParticipantFilter,
        after: Option<&ClientId>,
        limit: u32,
    ) -> Result<Vec<crate::oversight::ParticipantListing>, StoreError> {
        self.engine.read(|db| oversight::page(db, filter, after, limit)).await
    }

    async fn suspended_participants(&self) -> Result<u64, StoreError> {
        self.engine.read(oversight::suspended_count).await
    }

    async fn all_registrations_page(
        &self,
        status: Option<&str>,
        after: Option<&PageCursor>,
        limit: u32,
    ) -> Result<Vec<Registration>, StoreError> {
        self.engine.read(|db| registrations::page_of_all(db, status, after, limit)).await
    }

    async fn audit_search(
        &self,
        filter: &crate::oversight::AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::oversight::AuditRecord>, StoreError> {
        self.engine.read(|db| oversight::audit_search(db, filter, before, limit)).await
    }

    async fn create_operator(&self, operator: &crate::NewOperator) -> Result<(), StoreError> {
        let operator = operator.clone();
        self.engine.write(Isolation::Serializable, move |db| portal::create_operator(db, &operator)).await
    }

    async fn operator_by_email(&self, email: &str) -> Result<Option<crate::OperatorUser>, StoreError> {
        self.engine.read(|db| portal::operator_by_email(db, email)).await
    }

    async fn operators(&self) -> Result<Vec<crate::OperatorUser>, StoreError> {
        self.engine.read(portal::operators).await
    }

    async fn operator_by_setup_token(
        &self,
        sha256: &[u8],
        now: Timestamp,
    ) -> Result<Option<crate::OperatorUser>, StoreError> {
        self.engine.read(|db| portal::operator_by_setup_token(db, sha256, now)).await
    }

    async fn update_operator(
        &self,
        user_id: &str,
        change: &crate::PortalUserChange,
    ) -> Result<Option<crate::OperatorUser>, StoreError> {
        let (user_id, change) = (user_id.to_owned(), change.clone());
        self.engine
            .write(Isolation::Serializable, move |db| portal::update_operator(db, &user_id, &change))
            .await
    }

    async fn operator_sign_in_attempt(
        &self,
        user_id: &str,
        failures_max: u32,
        locked_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let user_id = user_id.to_owned();
        self.engine
            .write(Isolation::Serializable, move |db| {
                portal::count_failure(db, portal::Realm::Console, &user_id, failures_max, locked_until, now)
            })
            .await
    }

    async fn record_operator_sign_in(
        &self,
        session: &crate::PortalSession,
        totp_step: Option<i64>,
    ) -> Result<bool, StoreError> {
        let session = session.clone();
        self.engine
            .write(Isolation::Serializable, move |db| {
                portal::record_sign_in(db, portal::Realm::Console, &session, totp_step)
            })
            .await
    }

    async fn operator_session(
        &self,
        session_sha256: &[u8],
    ) -> Result<Option<(crate::PortalSession, crate::OperatorUser)>, StoreError> {
        self.engine.read(|db| portal::operator_session(db, session_sha256)).await
    }

    async fn touch_operator_session(&self, session_sha256: &[u8], now: Timestamp) -> Result<(), StoreError> {
        let sha256 = session_sha256.to_vec();
        self.engine
            .write(Isolation::Serializable, move |db| {
                portal::touch_session(db, portal::Realm::Console, &sha256, now)
            })
            .await
    }

    async fn end_operator_session(&self, session_sha256: &[u8]) -> Result<(), StoreError> {
        let sha256 = session_sha256.to_vec();
        self.engine
            .write(Isolation::Serializable, move |db| {
                portal::end_session(db, portal::Realm::Console, &sha256)
            })
            .await
    }

    async fn daily_activity(
        &self,
        client_id: &ClientId,
        from: Timestamp,
        final_before: Timestamp,
    ) -> Result<crate::DailyActivity, StoreError> {
        self.activity(activity::Scope::Participant(client_id.clone()), from, final_before).await
    }

    async fn platform_activity(
        &self,
        from: Timestamp,
        final_before: Timestamp,
    ) -> Result<crate::DailyActivity, StoreError> {
        self.activity(activity::Scope::Platform, from, final_before).await
    }

    async fn platform_api_results_by_day(
        &self,
        from: Timestamp,
    ) -> Result<Vec<(i64, String, u64)>, StoreError> {
        self.engine.read(|db| console::platform_results_by_day(db, from)).await
    }

    async fn payers_page(
        &self,
        id_prefix: &str,
        after: Option<&PayerId>,
        limit: u32,
    ) -> Result<Vec<crate::console::PayerWallets>, StoreError> {
        self.engine.read(|db| console::payers_page(db, id_prefix, after, limit)).await
    }

    async fn account_entries(
        &self,
        account: &Account,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<crate::console::LedgerEntry>, StoreError> {
        let key = account.key();
        self.engine.read(|db| console::account_entries(db, &key, before, limit)).await
    }

    async fn account_balances(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::console::AccountBalance>, StoreError> {
        self.engine.read(|db| console::account_balances(db, after, limit)).await
    }

    async fn undelivered_notifications(&self) -> Result<Vec<crate::console::Undelivered>, StoreError> {
        self.engine.read(console::undelivered).await
    }

    async fn failing_endpoints(
        &self,
        after: Option<&crate::console::EndpointCursor>,
        limit: u32,
    ) -> Result<Vec<crate::console::FailingEndpoint>, StoreError> {
        self.engine.read(|db| console::failing_endpoints(db, after, limit)).await
    }

    async fn all_settlement_batches_page(
        &self,
        after: Option<&BatchCursor>,
        limit: u32,
    ) -> Result<Vec<SettlementBatch>, StoreError> {
        self.engine.read(|db| settlement::all_batches_page(db, after, limit)).await
    }
}
