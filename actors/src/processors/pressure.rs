//! Whether requests are overrunning their target latency now, as the engine's admission
//! gates see it. Processors then step less often: their writes and reads run in the
//! database servers' processes and on the actor thread, where their threads' niceness
//! does not reach, so waiting is the only way they give those cores to requests. Their
//! backlog grows meanwhile, within `max_backlog_turns`, past which writes are refused.
//!
//! A gate's state changes only as its requests are answered, so once requests stop
//! coming (the overload ended) the pressure is taken as off after [`STALE_AFTER`] without
//! an answer: the processors then catch up at their full pace.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// How long after the last answer the gates' word still holds.
pub const STALE_AFTER: Duration = Duration::from_secs(1);

/// The overrunning state of one engine's request gates.
#[derive(Debug)]
pub struct Pressure {
    /// Which sources (bits) say their requests overrun now.
    sources: watch::Sender<u32>,
    /// When this was made, and the last answer a gate heard, in milliseconds after it.
    since: Instant,
    last_answer_ms: AtomicU64,
}

impl Default for Pressure {
    fn default() -> Self {
        Self {
            sources: watch::channel(0).0,
            since: Instant::now(),
            last_answer_ms: AtomicU64::new(0),
        }
    }
}

impl Pressure {
    /// Source `source` (0-31: one per gate) says whether its requests overrun now; the
    /// pressure is on while any source says so.
    pub fn report(&self, source: u32, overrunning: bool) {
        let bit = 1u32 << (source % 32);
        let mut on = false;
        let turned = self.sources.send_if_modified(|sources| {
            let was = *sources != 0;
            if overrunning {
                *sources |= bit;
            } else {
                *sources &= !bit;
            }
            on = *sources != 0;
            on != was
        });
        if turned {
            // Debug, not info: it turns with every hundred answers on a loaded machine;
            // `mnemo_admission_overrunning` shows it to operators.
            tracing::debug!(
                on,
                "requests overrunning their target: background processing pace"
            );
        }
    }

    /// A gate answered a request (its word on the pressure is fresh).
    pub fn heard(&self) {
        let ms = self.since.elapsed().as_millis() as u64;
        self.last_answer_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Whether requests overrun their target now: a gate said so, and answered a request
    /// within the last [`STALE_AFTER`].
    pub fn is_on(&self) -> bool {
        let last = self.since + Duration::from_millis(self.last_answer_ms.load(Ordering::Relaxed));
        *self.sources.borrow() != 0 && last.elapsed() < STALE_AFTER
    }

    /// Waits while requests overrun their target, at most `longest`; at once when they
    /// do not.
    pub async fn wait_off(&self, longest: Duration) {
        let mut sources = self.sources.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = tokio::time::timeout(longest, sources.wait_for(|sources| *sources == 0)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pressure_is_on_while_any_source_overruns() {
        let pressure = Pressure::default();
        assert!(!pressure.is_on());
        pressure.heard();
        pressure.report(0, true);
        pressure.report(1, true);
        pressure.report(0, false);
        assert!(pressure.is_on(), "source 1 still overruns");
        pressure.report(1, false);
        assert!(!pressure.is_on());
    }

    #[tokio::test(start_paused = true)]
    async fn without_answers_the_pressure_is_taken_as_off() {
        let pressure = Pressure::default();
        pressure.report(0, true);
        pressure.heard();
        assert!(pressure.is_on());
        tokio::time::advance(STALE_AFTER / 2).await;
        assert!(pressure.is_on(), "heard half a second ago");
        tokio::time::advance(STALE_AFTER).await;
        assert!(
            !pressure.is_on(),
            "no answer for a second and a half: the overload ended"
        );
        pressure.heard();
        assert!(
            pressure.is_on(),
            "answers again, and the gate still says it overruns"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_when_the_pressure_goes_off_or_after_the_longest_wait() {
        let pressure = std::sync::Arc::new(Pressure::default());
        // Off: no wait at all.
        let started = tokio::time::Instant::now();
        pressure.wait_off(Duration::from_secs(60)).await;
        assert_eq!(started.elapsed(), Duration::ZERO);

        // On and never off: the longest wait.
        pressure.report(3, true);
        let started = tokio::time::Instant::now();
        pressure.wait_off(Duration::from_millis(200)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(200));

        // On, then off after 50 ms: the wait ends then.
        let releaser = pressure.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            releaser.report(3, false);
        });
        let started = tokio::time::Instant::now();
        pressure.wait_off(Duration::from_secs(60)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(50));
    }
}
