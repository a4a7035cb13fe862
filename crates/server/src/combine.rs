//! Calls combined while one is under way. Each call queues its item and waits for its turn;
//! the turn writes every item queued by then in one write and answers each caller in its
//! place. A lone call is written at once; the calls that arrive during a write are written
//! together by the next turn. The notifier records its delivery attempts this way: the
//! attempts that end while one transaction records others go in the next transaction together.
//!
//! Invariants: every item is written by exactly one turn, and its caller gets the answer given
//! in its place. A caller whose turn's write was dropped midway (its task cancelled) or gave
//! fewer answers than items gets `None`; no caller waits for ever.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// Items of type `T` waiting to be written, each with where its answer `A` goes.
pub(crate) struct Combiner<T, A> {
    queued: Mutex<Vec<(T, oneshot::Sender<A>)>>,
    /// Held by the turn that writes; tokio's mutex is fair, so the turns come in order.
    turn: tokio::sync::Mutex<()>,
}

impl<T, A> Default for Combiner<T, A> {
    fn default() -> Combiner<T, A> {
        Combiner { queued: Mutex::new(Vec::new()), turn: tokio::sync::Mutex::new(()) }
    }
}

impl<T, A> Combiner<T, A> {
    fn queued(&self) -> MutexGuard<'_, Vec<(T, oneshot::Sender<A>)>> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `item`, with the items queued beside it, by `write`, which answers each item in
    /// its place; returns this item's answer, or `None` when the write that took it was cut off.
    pub(crate) async fn call<F, Fut>(&self, item: T, write: F) -> Option<A>
    where
        F: FnOnce(Vec<T>) -> Fut,
        Fut: Future<Output = Vec<A>>,
    {
        let (answer, answered) = oneshot::channel();
        self.queued().push((item, answer));
        {
            let _turn = self.turn.lock().await;
            // Empty when an earlier turn took this item with its own.
            let queued = std::mem::take(&mut *self.queued());
            if !queued.is_empty() {
                let (items, answers): (Vec<T>, Vec<oneshot::Sender<A>>) = queued.into_iter().unzip();
                for (answer, given) in answers.into_iter().zip(write(items).await) {
                    // A caller that has gone no longer needs its answer.
                    let _ = answer.send(given);
                }
            }
        }
        answered.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Combiner;

    /// Twenty calls at once: the first is written alone, the nineteen that came during its
    /// write together, and each caller gets the answer to its own item.
    #[tokio::test(flavor = "current_thread")]
    async fn calls_during_a_write_are_written_together_and_answered_each_in_its_place() {
        let combiner = Arc::new(Combiner::<u32, u32>::default());
        let writes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let calls: Vec<_> = (0..20)
            .map(|n| {
                let (combiner, writes) = (combiner.clone(), writes.clone());
                tokio::spawn(async move {
                    let answer = combiner
                        .call(n, |items: Vec<u32>| async move {
                            writes.lock().unwrap().push(items.len());
                            tokio::task::yield_now().await;
                            items.iter().map(|item| item * 10).collect()
                        })
                        .await;
                    (n, answer)
                })
            })
            .collect();
        for call in calls {
            let (n, answer) = call.await.unwrap();
            assert_eq!(answer, Some(n * 10), "call {n} got its own answer");
        }
        assert_eq!(*writes.lock().unwrap(), [1, 19]);
    }

    /// A write that answers fewer items than it was given leaves the rest with `None`, and
    /// the next call is written as usual.
    #[tokio::test(flavor = "current_thread")]
    async fn an_item_left_unanswered_gets_none() {
        let combiner = Combiner::<u32, u32>::default();
        assert_eq!(combiner.call(1, |_| async { Vec::new() }).await, None);
        assert_eq!(combiner.call(2, |items| async move { items }).await, Some(2));
    }
}
