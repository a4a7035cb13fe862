//! The single writer of a SQLite database, with group commit.
//!
//! SQLite allows one writer at a time, and a durable commit costs an fsync. So all writes go
//! to one thread that owns the write connection: it takes every write queued at that moment
//! (up to a batch limit), runs them in one transaction, commits once, and only then answers
//! each caller. Concurrent payments share one fsync instead of queueing for one each.
//!
//! Each write runs inside its own savepoint: a write that fails is rolled back alone and its
//! caller gets the error, while the others in the batch commit. A write is answered only
//! after the commit that holds it is durable; if the commit fails, every write in it fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

/// Called once the batch holding a write has committed (or failed to).
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A queued write: runs on the writer's connection, says whether it succeeded, and hands back
/// what to do once the commit is known.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// Handle to the writer thread. Cloning it is cheap; the thread ends when every handle is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
    stats: Arc<WriteStats>,
}

/// Counters of the writer's work, for tests and metrics.
#[derive(Debug, Default)]
pub struct WriteStats {
    /// Transactions committed (or attempted).
    pub batches: AtomicU64,
    /// Writes run in them.
    pub writes: AtomicU64,
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

    /// Runs `work` in the next batch and returns its result once the batch is durable.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |connection| {
            let result = work(connection);
            let succeeded = result.is_ok();
            let completion: Completion = Box::new(move |committed| {
                // The caller may have gone away (a timed-out request); the write stands.
                let _ = reply.send(committed.and(result));
            });
            (succeeded, completion)
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Database("the writer has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Database("the write was not committed: the database is unavailable".into())
        })?
    }
}

fn run(
    mut connection: Connection,
    mut queue: mpsc::Receiver<Job>,
    batch_max: usize,
    gather_yields: u32,
    stats: &WriteStats,
) {
    let mut batch = Vec::with_capacity(batch_max);
    let mut completions: Vec<Completion> = Vec::with_capacity(batch_max);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        gather(&mut queue, &mut batch, batch_max, gather_yields, std::thread::yield_now);
        let n_writes = batch.len();
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.writes.fetch_add(n_writes as u64, Ordering::Relaxed);
        // Metrics through the facade: nothing is recorded unless the server installed a recorder.
        metrics::histogram!("ocpay_store_write_batch_size").record(n_writes as f64);
        let started = std::time::Instant::now();
        let outcome = run_batch(&mut connection, &mut batch, &mut completions);
        metrics::histogram!("ocpay_store_commit_seconds", "engine" => "sqlite").record(started.elapsed());
        if let Err(error) = &outcome {
            tracing::error!(%error, n_writes, "a write batch failed and was rolled back");
        }
        // Jobs that never ran (the batch failed first) are dropped: their callers see an error.
        batch.clear();
        for completion in completions.drain(..) {
            completion(outcome.clone());
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
    queue: &mut mpsc::Receiver<Job>,
    batch: &mut Vec<Job>,
    batch_max: usize,
    yields: u32,
    mut pause: impl FnMut(),
) {
    let mut take_queued = |batch: &mut Vec<Job>| {
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

fn run_batch(
    connection: &mut Connection,
    batch: &mut Vec<Job>,
    completions: &mut Vec<Completion>,
) -> Result<(), StoreError> {
    // IMMEDIATE takes the write lock now, so another process (the CLI adding a participant)
    // makes us wait for the busy timeout instead of failing the batch halfway. Dropping the
    // transaction on an error rolls it back.
    let mut transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in batch.drain(..) {
        let savepoint = transaction.savepoint()?;
        // A write that panics (a bug) fails alone: its savepoint is rolled back and its caller,
        // whose completion is lost with the panic, sees an error; the writer goes on.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&savepoint)));
        match outcome {
            Ok((true, completion)) => {
                completions.push(completion);
                savepoint.commit()?;
            }
            Ok((false, completion)) => {
                completions.push(completion);
                // The default drop behaviour: roll back to the savepoint, then release it.
                savepoint.finish()?;
            }
            Err(_) => {
                tracing::error!("a write panicked; it was rolled back alone");
                savepoint.finish()?;
            }
        }
    }
    transaction.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() -> Job {
        Box::new(|_| (true, Box::new(|_| ())))
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
            let (sender, mut queue) = mpsc::channel::<Job>(64);
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
