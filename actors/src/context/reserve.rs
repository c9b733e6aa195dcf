//! The slice of a context request's deadline kept for what comes after the tiers are
//! gathered: ranking, rendering and handing the answer back.
//!
//! A fixed slice held on an idle machine, but on an overloaded one ranking waited for a
//! core for up to 27 ms at p99 after the tiers had been gathered until the deadline, so
//! the admitted requests' p99 passed their deadline by as much. The slice is therefore
//! the p99 of how long that last stage took over the latest answers, at least the fixed
//! slice and at most half the deadline: the tiers get less time while the machine is
//! slow, and the answer still arrives in time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::metrics;

/// How many of the latest answers the quantile is taken over.
const WINDOW: usize = 256;
/// The quantile is taken again after this many answers (sorting a window per answer
/// would cost more than ranking a small one).
const REFRESH_EVERY: usize = 16;
/// The most of the fixed slice: ranking and rendering take well under a millisecond on
/// an idle machine.
const FLOOR: Duration = Duration::from_millis(2);
/// The share of answers whose last stage should fit in the slice.
const QUANTILE: f64 = 0.99;

/// The latest answers' last-stage times and the slice they call for.
#[derive(Debug)]
pub struct Reserve {
    latest: Mutex<Latest>,
    /// The current quantile, in microseconds.
    quantile_us: AtomicU64,
}

#[derive(Debug)]
struct Latest {
    /// A ring of the latest times, in microseconds.
    times_us: Vec<u64>,
    next: usize,
    since_refresh: usize,
}

impl Default for Reserve {
    fn default() -> Self {
        Self {
            latest: Mutex::new(Latest {
                times_us: Vec::with_capacity(WINDOW),
                next: 0,
                since_refresh: 0,
            }),
            quantile_us: AtomicU64::new(0),
        }
    }
}

impl Reserve {
    /// Notes how long an answer's last stage took: from the end of its gathering (or
    /// the time kept for it, whichever came first) until the answer was ready.
    pub fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        // A poisoned lock only means another answer panicked while noting its time.
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        if latest.times_us.len() < WINDOW {
            latest.times_us.push(us);
        } else {
            let at = latest.next;
            latest.times_us[at] = us;
        }
        latest.next = (latest.next + 1) % WINDOW;
        latest.since_refresh += 1;
        // The first answers refresh at once, so a fresh engine's first slow ones count.
        if latest.since_refresh >= REFRESH_EVERY || latest.times_us.len() < REFRESH_EVERY {
            latest.since_refresh = 0;
            let mut sorted = latest.times_us.clone();
            drop(latest);
            sorted.sort_unstable();
            let rank = ((sorted.len() as f64 - 1.0) * QUANTILE).round() as usize;
            let quantile = sorted.get(rank).copied().unwrap_or(0);
            self.quantile_us.store(quantile, Ordering::Relaxed);
        }
        let quantile = self.quantile_us.load(Ordering::Relaxed);
        ::metrics::gauge!(metrics::CONTEXT_RESERVE_SECONDS).set(quantile as f64 / 1e6);
    }

    /// The slice of `budget` to keep: the latest answers' p99, at least a tenth of the
    /// budget up to 2 ms (what an idle machine needs), at most half the budget.
    pub fn of(&self, budget: Duration) -> Duration {
        let quantile = Duration::from_micros(self.quantile_us.load(Ordering::Relaxed));
        quantile.clamp(Self::floor(budget), budget / 2)
    }

    /// The slice kept whatever the latest answers took.
    pub fn floor(budget: Duration) -> Duration {
        (budget / 10).min(FLOOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn with_no_answers_yet_the_floor_is_kept() {
        let reserve = Reserve::default();
        assert_eq!(reserve.of(50 * MS), 2 * MS);
    }

    #[test]
    fn the_slice_follows_the_p99_of_the_latest_answers() {
        let reserve = Reserve::default();
        // 99 fast answers in a hundred, one slow: the p99 is the slow tail.
        for i in 0..WINDOW {
            reserve.record(if i % 50 == 0 { 20 * MS } else { MS });
        }
        let slice = reserve.of(50 * MS);
        assert!(
            slice > 2 * MS,
            "the slow tail should widen the slice: {slice:?}"
        );
        assert!(slice <= 20 * MS, "{slice:?}");
        // Once the machine is fast again, the slice shrinks back to the floor.
        for _ in 0..WINDOW {
            reserve.record(MS / 2);
        }
        assert_eq!(reserve.of(50 * MS), 2 * MS);
    }

    #[test]
    fn the_slice_never_takes_more_than_half_the_deadline() {
        let reserve = Reserve::default();
        for _ in 0..WINDOW {
            reserve.record(200 * MS);
        }
        assert_eq!(reserve.of(50 * MS), 25 * MS);
        // A short deadline keeps a tenth of itself at least.
        let reserve = Reserve::default();
        assert_eq!(reserve.of(10 * MS), MS);
    }
}
