//! When a notification is retried: after Alipay's documented schedule, the first attempt is
//! immediate and the retries follow at intervals of 2 min, 10 min, 10 min, 1 h, 2 h, 6 h and
//! 15 h: eight attempts within about a day.

use jiff::{SignedDuration, Timestamp};

/// The intervals between consecutive attempts, after an immediate first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    retries: Vec<SignedDuration>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        let minutes = SignedDuration::from_mins;
        RetrySchedule {
            retries: vec![
                minutes(2),
                minutes(10),
                minutes(10),
                minutes(60),
                minutes(120),
                minutes(360),
                minutes(900),
            ],
        }
    }
}

impl RetrySchedule {
    /// A schedule from the intervals between attempts; empty means a single attempt.
    pub fn new(retries: Vec<SignedDuration>) -> RetrySchedule {
        RetrySchedule { retries }
    }

    /// How many attempts the schedule makes, the first included.
    pub fn attempts_max(&self) -> u32 {
        u32::try_from(self.retries.len() + 1).unwrap_or(u32::MAX)
    }

    /// When the next attempt is due after `attempts_made` attempts (at least one), the last of
    /// them scheduled at `last_scheduled_at`; `None` when the schedule is exhausted. Counting
    /// from the scheduled (not the finished) time keeps the schedule exact however slow a
    /// receiver is.
    pub fn next_after(&self, attempts_made: u32, last_scheduled_at: Timestamp) -> Option<Timestamp> {
        let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        last_scheduled_at.checked_add(*self.retries.get(index)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_eight_attempts_over_a_day() {
        let schedule = RetrySchedule::default();
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut at = start;
        let mut minutes = vec![0];
        let mut attempts = 1;
        while let Some(next) = schedule.next_after(attempts, at) {
            minutes.push(next.duration_since(start).as_mins());
            at = next;
            attempts += 1;
        }
        assert_eq!(minutes, [0, 2, 12, 22, 82, 202, 562, 1462]);
        assert_eq!(schedule.attempts_max(), 8);
        assert_eq!(schedule.next_after(0, start), None, "the first attempt is not the schedule's to time");
        assert_eq!(RetrySchedule::new(vec![]).next_after(1, start), None);
    }
}
