//! Refused writes, logged for the operator without flooding the log: under overload
//! thousands of writes a second can be refused, so each kind of refusal is logged at
//! most once per interval, with how many were held back since the last line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, ErrorKind};

/// Shortest time between two lines about the same kind of refusal.
const INTERVAL: Duration = Duration::from_secs(10);

/// One kind of refusal.
#[derive(Debug, Default)]
pub(crate) struct Throttled {
    last: Mutex<Option<Instant>>,
    held_back: AtomicU64,
}

impl Throttled {
    /// Whether to log a refusal now; if so, how many went unlogged before it.
    fn pass(&self) -> Option<u64> {
        let mut last = self.last.lock();
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < INTERVAL) {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.held_back.swap(0, Ordering::Relaxed))
    }
}

/// The engine's refusals.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    writes: Throttled,
    recent: Throttled,
}

impl Refusals {
    /// A store of `turns` turns was refused with `error`.
    pub(crate) fn write_refused(&self, turns: usize, error: &Error) {
        match error.kind() {
            // The caller's own input: theirs to fix, not an operator's.
            ErrorKind::InvalidInput | ErrorKind::NotFound => {
                tracing::debug!(turns, error = %error, "write refused: invalid input");
            }
            kind => {
                if let Some(held_back) = self.writes.pass() {
                    tracing::warn!(
                        turns,
                        kind = %kind,
                        error = %error,
                        refused_since_last_line = held_back,
                        "write refused"
                    );
                }
            }
        }
    }

    /// Stored turns the recent tier did not take; their sessions are read from the
    /// archive until refilled.
    pub(crate) fn recent_missed(&self, turns: usize, error: &mnemo_actors::Error) {
        if let Some(held_back) = self.recent.pass() {
            tracing::warn!(
                turns,
                error = %error,
                missed_since_last_line = held_back,
                "the recent tier did not take stored turns; their sessions are read from \
                 the archive until refilled"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_refusal_is_logged_and_the_next_ones_are_counted() {
        let throttled = Throttled::default();
        assert_eq!(throttled.pass(), Some(0));
        assert_eq!(throttled.pass(), None);
        assert_eq!(throttled.pass(), None);
        assert_eq!(throttled.held_back.load(Ordering::Relaxed), 2);
    }
}
