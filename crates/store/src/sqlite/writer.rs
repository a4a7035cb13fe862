//! The single writer of a SQLite database, with group commit.
//!
//! SQLite allows one writer at a time, and a durable commit costs an fsync. So all writes go
//! through one task: it takes every write queued at that moment (up to a batch limit), runs
//! them in one transaction, commits once, and only then answers each caller. Concurrent
//! payments share one fsync instead of queueing for one each.
//!
//! Each write runs inside its own savepoint: a write that fails is rolled back alone and its
//! caller gets the error, while the others in the batch commit. A write is answered only
//! after the commit that holds it is durable; if the commit fails, every write in it fails.

use std::future::Future;
use std::pin::Pin;

use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Called once the batch holding a write has committed (or failed to).
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A queued write: runs on the writer's connection, says whether it succeeded, and hands back
/// what to do once the commit is known.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Completion)> + Send>;

/// Handle to the writer task. Cloning it is cheap; the task ends when every handle is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on `connection`.
    ///
    /// `batch_max` bounds the writes per transaction; `queue_max` bounds the writes waiting,
    /// beyond which callers wait for room (back-pressure instead of unbounded memory).
    pub(crate) fn start(connection: SqliteConnection, batch_max: usize, queue_max: usize) -> Writer {
        let (jobs, queue) = mpsc::channel(queue_max.max(1));
        tokio::spawn(run(connection, queue, batch_max.max(1)));
        Writer { jobs }
    }

    /// Runs `work` in the next batch and returns its result once the batch is durable.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |connection| {
            Box::pin(async move {
                let result = work(connection).await;
                let succeeded = result.is_ok();
                let completion: Completion = Box::new(move |committed| {
                    // The caller may have gone away (a timed-out request); the write stands.
                    let _ = reply.send(committed.and(result));
                });
                (succeeded, completion)
            })
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Database("the writer has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Database("the write was not committed: the database is unavailable".into())
        })?
    }
}

async fn run(mut connection: SqliteConnection, mut queue: mpsc::Receiver<Job>, batch_max: usize) {
    let mut batch = Vec::with_capacity(batch_max);
    let mut completions: Vec<Completion> = Vec::with_capacity(batch_max);
    while queue.recv_many(&mut batch, batch_max).await > 0 {
        let n_writes = batch.len();
        let outcome = run_batch(&mut connection, &mut batch, &mut completions).await;
        if let Err(error) = &outcome {
            tracing::error!(%error, n_writes, "a write batch failed and was rolled back");
            let _ = execute(&mut connection, "ROLLBACK").await;
        }
        // Jobs that never ran (the batch failed first) are dropped: their callers see an error.
        batch.clear();
        for completion in completions.drain(..) {
            completion(outcome.clone());
        }
    }
}

async fn run_batch(
    connection: &mut SqliteConnection,
    batch: &mut Vec<Job>,
    completions: &mut Vec<Completion>,
) -> Result<(), StoreError> {
    // IMMEDIATE takes the write lock now, so another process (the CLI adding a participant)
    // makes us wait for the busy timeout instead of failing the batch halfway.
    execute(connection, "BEGIN IMMEDIATE").await?;
    for job in batch.drain(..) {
        execute(connection, "SAVEPOINT write").await?;
        let (succeeded, completion) = job(connection).await;
        completions.push(completion);
        if !succeeded {
            execute(connection, "ROLLBACK TO write").await?;
        }
        execute(connection, "RELEASE write").await?;
    }
    execute(connection, "COMMIT").await
}

async fn execute(connection: &mut SqliteConnection, statement: &'static str) -> Result<(), StoreError> {
    sqlx::query(statement).execute(connection).await?;
    Ok(())
}
