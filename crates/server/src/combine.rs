//! Calls combined while one is under way. Each call queues its item and waits for its turn;
//! the turn writes every item queued by then in one write and answers each caller in its
//! place. A lone call is written at once; the calls that arrive during a write are written
//! together by the next turn. The notifier records its delivery attempts this way: the
//! attempts that end while one transaction records others go in the next transaction together.
//!
//! Invariants: every item is written by exactly one turn, and its caller gets the answer given
//! in its place, as soon as that turn has written it (not after a later turn's write). A caller
//! whose turn's write was dropped midway (its task cancelled) or gave fewer answers than items
//! gets `None`; no caller waits for ever.

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
        let (answer, mut answered) = oneshot::channel();
        self.queued().push((item, answer));
        // An earlier turn may take this item with its own: then its answer comes first, and
        // this call does not wait for the next turn's write.
        let turn = tokio::select! {
            biased;
            given = &mut answered => return given.ok(),
            turn = self.turn.lock() => turn,
        };
        // Empty when the turn before this one took this item with its own.
        let queued = std::mem::take(&mut *self.queued());
        if !queued.is_empty() {
            let (items, answers): (Vec<T>, Vec<oneshot::Sender<A>>) = queued.into_iter().unzip();
            for (answer, given) in answers.into_iter().zip(write(items).await) {
                // A caller that has gone no longer needs its answer.
                let _ = answer.send(given);
            }
        }
        drop(turn);
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

    /// A call whose item the turn before its own wrote returns with that answer, without
    /// waiting for the next turn's write (which here never ends).
    #[tokio::test(flavor = "current_thread")]
    async fn a_call_already_answered_does_not_wait_for_the_next_write() {
        let combiner = Arc::new(Combiner::<u32, u32>::default());
        let (open, gate) = tokio::sync::oneshot::channel::<()>();
        let call = |n: u32, write: Box<dyn FnOnce(Vec<u32>) -> BoxFuture + Send>| {
            let combiner = combiner.clone();
            tokio::spawn(async move { combiner.call(n, write).await })
        };
        // The first write waits for the gate, while 2 and 3 queue behind it.
        let first = call(
            1,
            Box::new(|items| {
                Box::pin(async move {
                    gate.await.ok();
                    items
                })
            }),
        );
        tokio::task::yield_now().await;
        let later = Arc::new(std::sync::Mutex::new(None));
        let spawn_fourth = {
            let (combiner, later) = (combiner.clone(), later.clone());
            move || {
                let fourth =
                    tokio::spawn(async move { combiner.call(4, |items| async move { items }).await });
                *later.lock().unwrap() = Some(fourth);
            }
        };
        // The second turn writes 2 and 3, and 4 arrives meanwhile.
        let second = call(
            2,
            Box::new(move |items| {
                Box::pin(async move {
                    spawn_fourth();
                    tokio::task::yield_now().await;
                    items
                })
            }),
        );
        // Were 3 to take the next turn, it would write 4 for ever.
        let third = call(3, Box::new(|_| Box::pin(std::future::pending())));
        tokio::task::yield_now().await;
        open.send(()).unwrap();
        let answers = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            (first.await.unwrap(), second.await.unwrap(), third.await.unwrap())
        })
        .await
        .expect("no call waits for a write that is not its own");
        assert_eq!(answers, (Some(1), Some(2), Some(3)));
        let fourth = later.lock().unwrap().take().expect("the second write started the fourth call");
        assert_eq!(fourth.await.unwrap(), Some(4), "and the fourth writes itself");
    }

    type BoxFuture = std::pin::Pin<Box<dyn Future<Output = Vec<u32>> + Send>>;

    /// A write that answers fewer items than it was given leaves the rest with `None`, and
    /// the next call is written as usual.
    #[tokio::test(flavor = "current_thread")]
    async fn an_item_left_unanswered_gets_none() {
        let combiner = Combiner::<u32, u32>::default();
        assert_eq!(combiner.call(1, |_| async { Vec::new() }).await, None);
        assert_eq!(combiner.call(2, |items| async move { items }).await, Some(2));
    }
}
