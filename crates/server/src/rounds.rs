//! Counters of the background loops' finished rounds, so that a test can wait until the loops
//! have looked at the store after some change, such as a move of the clock, instead of
//! sleeping for a guessed while.
//!
//! A round counts only once all of its work is done: the timer job's after its three
//! drains, the notifier's once no attempt it started is still in flight. So once the count
//! has grown by two from a reading, a whole round has started and finished since that
//! reading.

use tokio::sync::watch;

/// The finished rounds of the notifier, the timer job, settlement and the retention job.
#[derive(Debug, Default)]
pub struct Rounds {
    pub notifier: Round,
    pub timers: Round,
    pub settlement: Round,
    pub retention: Round,
}

/// The number of rounds one loop has finished.
#[derive(Debug)]
pub struct Round(watch::Sender<u64>);

impl Default for Round {
    fn default() -> Round {
        Round(watch::Sender::new(0))
    }
}

impl Round {
    pub fn count(&self) -> u64 {
        *self.0.borrow()
    }

    pub(crate) fn finished(&self) {
        self.0.send_modify(|count| *count += 1);
    }

    /// Waits until a round that started after this call has finished.
    pub async fn next_whole(&self) {
        let target = self.count() + 2;
        let mut count = self.0.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = count.wait_for(|count| *count >= target).await;
    }
}
