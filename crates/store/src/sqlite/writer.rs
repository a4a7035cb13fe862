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
    /// beyond which callers wait for room (back-pressure instead of unbounded memory).
    pub(crate) fn start(
        connection: Connection,
        batch_max: usize,
        queue_max: usize,
    ) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel(queue_max.max(1));
        let stats = Arc::new(WriteStats::default());
        let counters = stats.clone();
        std::thread::Builder::new()
            .name("ocpay-sqlite-writer".into())
            .spawn(move || run(connection, queue, batch_max.max(1), &counters))?;
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

fn run(mut connection: Connection, mut queue: mpsc::Receiver<Job>, batch_max: usize, stats: &WriteStats) {
    let mut batch = Vec::with_capacity(batch_max);
    let mut completions: Vec<Completion> = Vec::with_capacity(batch_max);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < batch_max {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
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

    /// With the writer held up by a slow write, callers beyond `queue_max` wait at the queue's
    /// door instead of piling up behind it, and every write commits once the writer moves on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_holds_callers_back_and_commits_every_write() {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("CREATE TABLE t (n INTEGER NOT NULL)").unwrap();
        let queue_max = 2;
        let writer = Writer::start(connection, 1, queue_max).unwrap();
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
