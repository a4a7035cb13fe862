//! Failures on purpose inside a write's transaction, for tests.
//!
//! A store that fails before it reaches the database can never leave a business step half
//! done, so it says nothing about the transactions. [`StatementFaults`] makes one statement of
//! a write fail *inside* its transaction, after the statements before it have run: a test can
//! fail a settlement after its posting and payment row but before its outbox row, or a posting
//! after its debit but before its credit, and check that nothing of the step remains.
//!
//! A test can also fail every write at once, as a full disk would ([`StatementFaults::fail_writes`]):
//! then the first statement of each write fails, and the store reports itself unhealthy.
//!
//! Engines check the faults only when a test has installed them
//! ([`SqlStore::with_statement_faults`](super::SqlStore::with_statement_faults)); a store
//! without them pays one branch per write. Reads never fail on purpose.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::StoreError;

/// The message of a failure made on purpose.
pub const INJECTED: &str = "a statement failed on purpose";

/// Planned failures of write statements; shared between a test and the engine it tests.
#[derive(Debug, Default)]
pub struct StatementFaults {
    /// Whether a failure is planned: the only thing a statement reads when none is.
    armed: AtomicBool,
    plan: Mutex<Option<Plan>>,
    /// Whether every write fails.
    writes: AtomicBool,
    fired: AtomicU64,
}

#[derive(Debug)]
struct Plan {
    prefix: &'static str,
    skip: u32,
}

impl StatementFaults {
    pub fn new() -> StatementFaults {
        StatementFaults::default()
    }

    /// Fails the next write statement whose SQL starts with `prefix` (such as
    /// `INSERT INTO notification`), after letting `skip` such statements through (`1` fails
    /// the second ledger entry of a posting: after its debit, before its credit). It fails
    /// once, as a database error, and the write it belongs to fails with it.
    pub fn fail_once(&self, prefix: &'static str, skip: u32) {
        *self.plan.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Plan { prefix, skip });
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Fails every write statement from now on, as a full disk would, until called with
    /// `false`; meanwhile the store is not healthy. Failures of every write are not counted in
    /// [`StatementFaults::fired`].
    pub fn fail_writes(&self, fail: bool) {
        let plan = self.plan.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.writes.store(fail, Ordering::SeqCst);
        self.armed.store(fail || plan.is_some(), Ordering::SeqCst);
    }

    /// Forgets a planned failure that has not happened.
    pub fn disarm(&self) {
        let mut plan = self.plan.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *plan = None;
        self.armed.store(self.writes.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// How many statements have failed on purpose.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::SeqCst)
    }

    /// Called by an engine before it runs a write statement.
    pub(crate) fn check(&self, sql: &str) -> Result<(), StoreError> {
        if !self.armed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut plan = self.plan.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.writes.load(Ordering::SeqCst) {
            return Err(full());
        }
        let Some(planned) = plan.as_mut().filter(|planned| sql.trim_start().starts_with(planned.prefix))
        else {
            return Ok(());
        };
        if planned.skip > 0 {
            planned.skip -= 1;
            return Ok(());
        }
        *plan = None;
        self.armed.store(self.writes.load(Ordering::SeqCst), Ordering::SeqCst);
        self.fired.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::Database(format!("{INJECTED}: {sql}")))
    }

    /// Called by an engine's health check: a store whose writes all fail is not healthy.
    pub(crate) fn health(&self) -> Result<(), StoreError> {
        if self.writes.load(Ordering::SeqCst) { Err(full()) } else { Ok(()) }
    }
}

/// The failure of every write: worded as SQLite words a full disk, so that tests can check
/// that no such detail reaches a client.
fn full() -> StoreError {
    StoreError::Database(format!("{INJECTED}: database or disk is full (/var/lib/ocpay)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_the_planned_statement_once() {
        let faults = StatementFaults::new();
        assert_eq!(faults.check("INSERT INTO entry VALUES (1)"), Ok(()), "nothing planned");
        faults.fail_once("INSERT INTO entry", 1);
        assert_eq!(faults.check("INSERT INTO posting VALUES (1)"), Ok(()));
        assert_eq!(faults.check("INSERT INTO entry VALUES (1)"), Ok(()), "the first is let through");
        assert!(faults.check("INSERT INTO entry VALUES (2)").is_err(), "the second fails");
        assert_eq!(faults.check("INSERT INTO entry VALUES (3)"), Ok(()), "once");
        assert_eq!(faults.fired(), 1);
        faults.fail_once("UPDATE payment", 0);
        faults.disarm();
        assert_eq!(faults.check("UPDATE payment SET status = 'SUCCESS'"), Ok(()));
        assert_eq!(faults.fired(), 1);
    }

    #[test]
    fn fails_every_write_while_asked_to() {
        let faults = StatementFaults::new();
        assert_eq!(faults.health(), Ok(()));
        faults.fail_once("INSERT INTO entry", 0);
        faults.fail_writes(true);
        assert!(faults.check("SELECT 1").is_err(), "every statement of a write fails");
        assert!(faults.check("INSERT INTO payment VALUES (1)").is_err());
        assert!(faults.health().is_err(), "the store is not healthy meanwhile");
        faults.fail_writes(false);
        assert_eq!(faults.health(), Ok(()));
        assert_eq!(faults.check("INSERT INTO payment VALUES (1)"), Ok(()));
        assert!(faults.check("INSERT INTO entry VALUES (1)").is_err(), "a planned failure stays planned");
        assert_eq!(faults.check("INSERT INTO entry VALUES (1)"), Ok(()));
        assert_eq!(faults.fired(), 1);
    }
}
