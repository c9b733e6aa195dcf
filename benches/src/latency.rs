//! Latency recording for the runners: every latency kept (microseconds, four bytes
//! each), merged across simulated users, summarised as exact percentiles.
//!
//! Kept as plain samples rather than a histogram per user: an HDR histogram of 1 µs to
//! 10 minutes at three significant digits is 160 KiB, and 10,000 simulated users with two
//! each made the load runner fault in 3.3 GiB of fresh pages during its measured phase,
//! which the kernel spent seconds of both cores zeroing, stalling the engine it measured.

use std::time::Duration;

use serde::Serialize;

/// Latencies of one operation.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    /// Microseconds, saturated at `u32::MAX` (71 minutes).
    samples: Vec<u32>,
}

impl Latencies {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one latency.
    pub fn record(&mut self, elapsed: Duration) {
        let us = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
        self.samples.push(us);
    }

    /// Adds every latency of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        self.samples.extend_from_slice(&other.samples);
    }

    /// Latencies recorded.
    pub fn count(&self) -> u64 {
        self.samples.len() as u64
    }

    /// The percentiles of what was recorded (nearest rank).
    pub fn summary(&self) -> LatencySummary {
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let ms = |us: u32| f64::from(us) / 1000.0;
        let at = |q: f64| {
            let rank = (q * sorted.len() as f64).ceil() as usize;
            sorted
                .get(rank.clamp(1, sorted.len().max(1)) - 1)
                .copied()
                .map_or(0.0, ms)
        };
        let total: u64 = sorted.iter().map(|&us| u64::from(us)).sum();
        LatencySummary {
            count: self.count(),
            mean_ms: if sorted.is_empty() {
                0.0
            } else {
                total as f64 / sorted.len() as f64 / 1000.0
            },
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: sorted.last().copied().map_or(0.0, ms),
        }
    }
}

/// Percentiles of one operation's latencies, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Latencies recorded.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_latencies() {
        let mut a = Latencies::new();
        for us in 1..=1000u64 {
            a.record(Duration::from_micros(us * 10));
        }
        let mut b = Latencies::new();
        b.record(Duration::from_secs(2));
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 1001);
        assert!((s.p50_ms - 5.0).abs() < 0.02, "{s:?}");
        assert!((s.p99_ms - 9.9).abs() < 0.02, "{s:?}");
        assert!((s.max_ms - 2000.0).abs() < 2.0, "{s:?}");
    }

    #[test]
    fn nothing_recorded_is_all_zero() {
        let s = Latencies::new().summary();
        assert_eq!((s.count, s.p50_ms, s.p99_ms, s.max_ms), (0, 0.0, 0.0, 0.0));
    }
}
