//! The single writer of a SQLite database, with group commit.
//!
//! SQLite allows one writer at a time, and a durable commit costs an fsync. So all writes go
//! to one thread that owns the write connection: it takes every write queued at that moment
//! (up to a batch limit), runs them in one transaction, commits once, and only then answers
//! each caller. Concurrent payments share one fsync instead of queueing for one each.
//!
//! A write that fails is rolled back alone and its caller gets the error, while the others in
//! the batch commit. Most writes that fail change nothing before they fail (a business rule or
//! a unique key refuses them at their first statement, and SQLite undoes a failed statement's
//! own changes), so the batch first runs every write directly, without a savepoint each: a
//! savepoint copies every page a write touches into its journal, and a batch's writes all touch
//! the same few pages (the last of each index). Only when a write that failed had changed rows
//! ([`Connection::total_changes`] moved), or SQLite rolled the whole transaction back itself
//! after any write (a full disk), is that transaction rolled back and the batch run
//! again, each write in a savepoint of its own; the failed write keeps its failure and does not
//! run again (the writes before it do, and decide again). Writes are answered only
//! after the commit that holds them is durable; if the commit fails, every write in it fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

/// A queued write. It may run twice: a second time, in a savepoint, when another write of its
/// batch has to be undone (the module's documentation). A write that failed never runs again.
trait Job: Send {
    /// Runs the write on the writer's connection; says whether it succeeded. A write that
    /// panics (a bug) fails like any other, and the writer goes on.
    fn run(&mut self, connection: &Connection) -> bool;
    /// Whether it ran and failed.
    fn failed(&self) -> bool;
    /// Answers its caller once the batch holding it has committed (or failed to).
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
}

struct Write<T, F> {
    work: F,
    /// The last run's result; `None` before the first.
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Write<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.work)(connection)))
            .unwrap_or_else(|_| {
                tracing::error!("a write panicked; it was rolled back alone");
                Err(StoreError::Database("the write failed".into()))
            });
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn failed(&self) -> bool {
        matches!(self.result, Some(Err(_)))
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let result = self.result.unwrap_or_else(|| Err(StoreError::Database("the write did not run".into())));
        // The caller may have gone away (a timed-out request); the write stands.
        let _ = self.reply.send(committed.and(result));
    }
}

/// Handle to the writer thread. Cloning it is cheap; the thread ends when every handle is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
    stats: Arc<WriteStats>,
}

/// Counters of the writer's work, for tests and metrics.
#[derive(Debug, Default)]
pub struct WriteStats {
    /// Transactions committed (or attempted).
    pub batches: AtomicU64,
    /// Writes run in them.
    pub writes: AtomicU64,
    /// Batches run a second time, each write in a savepoint, because a write that failed had
    /// changed rows (or SQLite had rolled the transaction back).
    pub batches_rerun: AtomicU64,
}

impl Writer {
    /// Starts the writer thread on `connection`.
    ///
    /// `batch_max` bounds the writes per transaction; `queue_max` bounds the writes waiting,
    /// beyond which callers wait for room (back-pressure instead of unbounded memory);
    /// `gather_yields` bounds how often the writer yields its CPU to gather more writes before
    /// a commit ([`gather`]).
    pub(crate) fn start(
        connection: Connection,
        batch_max: usize,
        queue_max: usize,
        gather_yields: u32,
    ) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel(queue_max.max(1));
        let stats = Arc::new(WriteStats::default());
        let counters = stats.clone();
        std::thread::Builder::new()
            .name("ocpay-sqlite-writer".into())
            .spawn(move || run(connection, queue, batch_max.max(1), gather_yields, &counters))?;
        Ok(Writer { jobs, stats })
    }

    pub(crate) fn stats(&self) -> &WriteStats {
        &self.stats
    }

    /// Whether the writer thread still takes writes.
    pub(crate) fn is_running(&self) -> bool {
        !self.jobs.is_closed()
    }

    /// Runs `work` in the next batch and returns its result once the batch is durable. `work`
    /// may run twice (the module's documentation); only its last run's changes and result count.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job = Box::new(Write { work, result: None, reply });
        self.jobs.send(job).await.map_err(|_| StoreError::Database("the writer has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Database("the write was not committed: the database is unavailable".into())
        })?
    }
}

fn run(
    mut connection: Connection,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
    batch_max: usize,
    gather_yields: u32,
    stats: &WriteStats,
) {
    let mut batch = Vec::with_capacity(batch_max);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        gather(&mut queue, &mut batch, batch_max, gather_yields, std::thread::yield_now);
        let n_writes = batch.len();
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.writes.fetch_add(n_writes as u64, Ordering::Relaxed);
        // Metrics through the facade: nothing is recorded unless the server installed a recorder.
        metrics::histogram!("ocpay_store_write_batch_size").record(n_writes as f64);
        let started = std::time::Instant::now();
        let outcome = match run_batch(&mut connection, &mut batch, Undo::Never) {
            Ok(Ran::Committed) => Ok(()),
            Ok(Ran::Undone) => {
                stats.batches_rerun.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("ocpay_store_write_batches_rerun_total").increment(1);
                run_batch(&mut connection, &mut batch, Undo::Savepoints).map(|_| ())
            }
            Err(error) => Err(error),
        };
        metrics::histogram!("ocpay_store_commit_seconds", "engine" => "sqlite").record(started.elapsed());
        if let Err(error) = &outcome {
            tracing::error!(%error, n_writes, "a write batch failed and was rolled back");
        }
        for job in batch.drain(..) {
            job.answer(outcome.clone());
        }
    }
}

/// Takes the writes queued now, then, while each `pause` (a yield of the CPU) brought more (at
/// most `yields` times), lets the callers queue more before the commit.
///
/// On a busy server the writer, woken by the first write, would otherwise commit it while the
/// callers that are about to queue theirs wait for the CPU: many small commits, each with its
/// fsync and its own copies of the same index pages. Yielding costs nothing when nobody else
/// wants the CPU (the thread runs on at once), so a lone write is not delayed; the loop ends
/// as soon as a yield brings nothing new.
fn gather(
    queue: &mut mpsc::Receiver<Box<dyn Job>>,
    batch: &mut Vec<Box<dyn Job>>,
    batch_max: usize,
    yields: u32,
    mut pause: impl FnMut(),
) {
    let mut take_queued = |batch: &mut Vec<Box<dyn Job>>| {
        let before = batch.len();
        while batch.len() < batch_max {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        batch.len() > before
    };
    take_queued(batch);
    for _ in 0..yields {
        if batch.len() >= batch_max {
            break;
        }
        pause();
        if !take_queued(batch) {
            break;
        }
    }
}

/// How a batch undoes a write that failed after it changed rows.
#[derive(Clone, Copy)]
enum Undo {
    /// It cannot: the batch's transaction is rolled back ([`Ran::Undone`]).
    Never,
    /// Every write runs in a savepoint of its own, rolled back when the write fails.
    Savepoints,
}

enum Ran {
    Committed,
    /// A write that failed had changed rows: the transaction was rolled back, nothing committed.
    Undone,
}

fn run_batch(connection: &mut Connection, batch: &mut [Box<dyn Job>], undo: Undo) -> Result<Ran, StoreError> {
    // IMMEDIATE takes the write lock now, so another process (the CLI adding a participant)
    // makes us wait for the busy timeout instead of failing the batch halfway. Dropping the
    // transaction on an error rolls it back.
    let mut transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in batch.iter_mut() {
        match undo {
            // Its failure stands, and nothing of it is left to undo.
            Undo::Savepoints if job.failed() => {}
            Undo::Savepoints => {
                let savepoint = transaction.savepoint()?;
                if job.run(&savepoint) {
                    savepoint.commit()?;
                } else {
                    // The default drop behaviour: roll back to the savepoint, then release it.
                    savepoint.finish()?;
                }
            }
            Undo::Never => {
                let changes = transaction.total_changes();
                let succeeded = job.run(&transaction);
                // SQLite rolls back the whole transaction itself after some errors (a full disk),
                // whatever the write then answered: nothing of the batch stands, and the writes
                // after it must not run outside a transaction.
                if transaction.is_autocommit() || (!succeeded && transaction.total_changes() != changes) {
                    // Rolls back (nothing to do when SQLite already has); an error here is the batch's.
                    transaction.finish()?;
                    return Ok(Ran::Undone);
                }
            }
        }
    }
    transaction.commit()?;
    Ok(Ran::Committed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() -> Box<dyn Job> {
        let (reply, _) = oneshot::channel::<Result<(), StoreError>>();
        Box::new(Write { work: |_: &Connection| Ok(()), result: None, reply })
    }

    /// Gathering takes what is queued up to the batch limit, pauses again only while a pause
    /// brought more writes, and at most `yields` times.
    #[test]
    fn the_writer_gathers_while_pauses_bring_writes_and_within_its_limits() {
        struct Case {
            queued: usize,
            arriving_per_pause: &'static [usize],
            batch_max: usize,
            yields: u32,
            gathered: usize,
            pauses: usize,
        }
        let cases = [
            // Nothing more arrives: one pause, then the commit.
            Case { queued: 2, arriving_per_pause: &[], batch_max: 256, yields: 8, gathered: 2, pauses: 1 },
            // Off: what is queued, no pause.
            Case { queued: 2, arriving_per_pause: &[5], batch_max: 256, yields: 0, gathered: 2, pauses: 0 },
            // Pauses go on while they bring writes, and the first that brings none ends it.
            Case {
                queued: 1,
                arriving_per_pause: &[3, 2, 0, 9],
                batch_max: 256,
                yields: 8,
                gathered: 6,
                pauses: 3,
            },
            // At most `yields` pauses.
            Case {
                queued: 1,
                arriving_per_pause: &[1, 1, 1, 1],
                batch_max: 256,
                yields: 2,
                gathered: 3,
                pauses: 2,
            },
            // The batch limit ends the gathering, queued writes or not.
            Case { queued: 5, arriving_per_pause: &[4], batch_max: 3, yields: 8, gathered: 3, pauses: 0 },
            Case { queued: 1, arriving_per_pause: &[4, 4], batch_max: 3, yields: 8, gathered: 3, pauses: 1 },
        ];
        for (index, case) in cases.iter().enumerate() {
            let (sender, mut queue) = mpsc::channel::<Box<dyn Job>>(64);
            for _ in 0..case.queued {
                sender.try_send(noop()).unwrap();
            }
            let mut pauses = 0;
            let mut batch = Vec::new();
            gather(&mut queue, &mut batch, case.batch_max, case.yields, || {
                for _ in 0..case.arriving_per_pause.get(pauses).copied().unwrap_or(0) {
                    sender.try_send(noop()).unwrap();
                }
                pauses += 1;
            });
            assert_eq!((batch.len(), pauses), (case.gathered, case.pauses), "case {index}");
        }
    }

    /// A batch runs its writes without savepoints, and runs again with a savepoint each only
    /// when a write that failed had changed rows; either way only the failed write is undone.
    #[test]
    fn a_batch_runs_again_in_savepoints_only_when_a_failed_write_changed_rows() {
        #[derive(Clone, Copy, Debug)]
        enum Kind {
            /// Inserts its row.
            Insert,
            /// Fails at its first statement: its row's key exists already.
            Refused,
            /// Inserts its row, then fails.
            FailsAfterInsert,
            /// Inserts its row, then panics.
            PanicsAfterInsert,
            /// One statement inserts its row and a taken key: SQLite undoes the statement.
            RefusedHalfway,
            /// Refused by `OR ROLLBACK`: SQLite rolls back the whole transaction, and the count
            /// of changes does not move.
            RollsBackAll,
        }
        use Kind::*;
        struct Case {
            writes: &'static [Kind],
            reruns: u64,
            /// How often each write ran.
            runs: &'static [usize],
        }
        let cases = [
            Case { writes: &[Insert, Insert, Insert], reruns: 0, runs: &[1, 1, 1] },
            Case { writes: &[Insert, Refused, Insert], reruns: 0, runs: &[1, 1, 1] },
            // The failed write's answer stands; the writes before it run again.
            Case { writes: &[Insert, FailsAfterInsert, Insert], reruns: 1, runs: &[2, 1, 1] },
            Case { writes: &[Insert, PanicsAfterInsert, Insert, Refused], reruns: 1, runs: &[2, 1, 1, 1] },
            Case { writes: &[FailsAfterInsert, Refused, FailsAfterInsert], reruns: 1, runs: &[1, 1, 1] },
            // A failure reached before the one that changed rows stands too.
            Case { writes: &[Insert, Refused, FailsAfterInsert, Insert], reruns: 1, runs: &[2, 1, 1, 1] },
            Case { writes: &[Insert, RefusedHalfway, Insert], reruns: 0, runs: &[1, 1, 1] },
            Case { writes: &[Insert, RollsBackAll, Insert], reruns: 1, runs: &[2, 1, 1] },
        ];
        for (index, case) in cases.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.db");
            let connection = Connection::open(&path).unwrap();
            connection
                .execute_batch(
                    "PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY); INSERT INTO t VALUES (-1)",
                )
                .unwrap();
            let (sender, queue) = mpsc::channel::<Box<dyn Job>>(64);
            let mut answers = Vec::new();
            let mut runs = Vec::new();
            for (n, write) in case.writes.iter().copied().enumerate() {
                let (reply, answer) = oneshot::channel::<Result<(), StoreError>>();
                let ran = Arc::new(AtomicU64::new(0));
                let counter = ran.clone();
                let work = move |connection: &Connection| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    let key = n as i64;
                    match write {
                        Refused => connection.execute("INSERT INTO t (n) VALUES (-1)", [])?,
                        RefusedHalfway => connection.execute("INSERT INTO t (n) VALUES (?1), (-1)", [key])?,
                        RollsBackAll => {
                            connection.execute("INSERT OR ROLLBACK INTO t (n) VALUES (-1)", [])?
                        }
                        _ => connection.execute("INSERT INTO t (n) VALUES (?1)", [key])?,
                    };
                    match write {
                        FailsAfterInsert => Err(StoreError::Conflict("a rule")),
                        PanicsAfterInsert => panic!("a bug in write {n}"),
                        _ => Ok(()),
                    }
                };
                sender.try_send(Box::new(Write { work, result: None, reply })).unwrap();
                answers.push(answer);
                runs.push(ran);
            }
            drop(sender);
            let stats = WriteStats::default();
            // Every queued write in one batch; the loop ends with the queue.
            run(connection, queue, 64, 0, &stats);
            assert_eq!(stats.batches.load(Ordering::Relaxed), 1, "case {index}: one batch");
            assert_eq!(stats.batches_rerun.load(Ordering::Relaxed), case.reruns, "case {index}: reruns");
            let ran: Vec<usize> = runs.iter().map(|ran| ran.load(Ordering::Relaxed) as usize).collect();
            assert_eq!(ran, case.runs, "case {index}: runs of each write");
            let stored: Vec<i64> = Connection::open(&path)
                .unwrap()
                .prepare("SELECT n FROM t WHERE n >= 0 ORDER BY n")
                .unwrap()
                .query_map([], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let inserted: Vec<i64> = (0..case.writes.len())
                .filter(|n| matches!(case.writes[*n], Insert))
                .map(|n| n as i64)
                .collect();
            assert_eq!(stored, inserted, "case {index}: the rows of the writes that succeeded, once each");
            for (n, mut answer) in answers.into_iter().enumerate() {
                let answered = answer.try_recv().expect("every write is answered");
                assert_eq!(
                    answered.is_ok(),
                    matches!(case.writes[n], Insert),
                    "case {index}: write {n}'s answer"
                );
            }
        }
    }

    /// With the writer held up by a slow write, callers beyond `queue_max` wait at the queue's
    /// door instead of piling up behind it, and every write commits once the writer moves on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_holds_callers_back_and_commits_every_write() {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("CREATE TABLE t (n INTEGER NOT NULL)").unwrap();
        let queue_max = 2;
        let writer = Writer::start(connection, 1, queue_max, 0).unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write(move |db| {
                        held.recv().map_err(|_| StoreError::Database("never released".into()))?;
                        db.execute("INSERT INTO t (n) VALUES (0)", [])?;
                        Ok(())
                    })
                    .await
            }
        });
        while writer.stats().writes.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        let callers: Vec<_> = (1..=10)
            .map(|n| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    writer.write(move |db| Ok(db.execute("INSERT INTO t (n) VALUES (?1)", [n])?)).await
                })
            })
            .collect();
        // Every caller has either queued its write or is waiting for room: the queue fills up
        // and then holds exactly `queue_max` writes, however many callers there are.
        let queued = || writer.jobs.max_capacity() - writer.jobs.capacity();
        while queued() < queue_max {
            tokio::task::yield_now().await;
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
            assert_eq!(queued(), queue_max, "the queue never holds more than queue_max writes");
        }
        assert!(callers.iter().all(|caller| !caller.is_finished()), "no write returned before its commit");
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        for caller in callers {
            caller.await.unwrap().unwrap();
        }
        assert_eq!(writer.stats().writes.load(Ordering::Relaxed), 11, "every write ran once");
    }
}
