//! Failed operations, counted by kind: a runner records a timeout or a refusal and goes
//! on, so a busy machine gives figures with errors in them, never an aborted run.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::BenchError;

/// Failures of a run, by `operation: kind`, with the first one's message.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ErrorCounts {
    /// How many failed, by `operation: kind` (e.g. `context: timeout`).
    pub by_kind: BTreeMap<String, u64>,
    /// The first failure, whole.
    pub first: Option<String>,
    /// The first failure of each `operation: kind`, whole (a timeout's message says
    /// which wait ran out).
    pub first_by_kind: BTreeMap<String, String>,
}

impl ErrorCounts {
    /// Counts one failure of `operation`.
    pub fn record(&mut self, operation: &str, err: &BenchError) {
        self.record_n(operation, err, 1);
    }

    /// Counts `n` failures of `operation` at once (a batch of `n` turns refused).
    pub fn record_n(&mut self, operation: &str, err: &BenchError, n: u64) {
        let kind = format!("{operation}: {}", err.kind());
        *self.by_kind.entry(kind.clone()).or_default() += n;
        self.first_by_kind
            .entry(kind)
            .or_insert_with(|| format!("{operation}: {err}"));
        if self.first.is_none() {
            self.first = Some(format!("{operation}: {err}"));
        }
    }

    /// Adds another tally's counts.
    pub fn merge(&mut self, other: ErrorCounts) {
        for (kind, n) in other.by_kind {
            *self.by_kind.entry(kind).or_default() += n;
        }
        for (kind, first) in other.first_by_kind {
            self.first_by_kind.entry(kind).or_insert(first);
        }
        if self.first.is_none() {
            self.first = other.first;
        }
    }

    /// All failures.
    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }

    /// One line for a report: the total, the counts, and the first failure.
    pub fn line(&self) -> String {
        match &self.first {
            None => "errors: 0".to_owned(),
            Some(first) => format!(
                "errors: {} {:?}; first: {first}",
                self.total(),
                self.by_kind
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_by_operation_and_kind_keeping_the_first() {
        let busy = BenchError::Refused {
            status: 429,
            code: "busy".into(),
            message: "the archive is busy".into(),
            retry_after_secs: Some(1),
        };
        assert_eq!(busy.retry_after(), Some(std::time::Duration::from_secs(1)));
        let mut a = ErrorCounts::default();
        a.record("store", &busy);
        a.record_n("store", &busy, 4);
        let mut b = ErrorCounts::default();
        b.record("context", &BenchError::Transport("reset".into()));
        a.merge(b);
        assert_eq!(a.total(), 6);
        assert_eq!(a.by_kind["store: busy"], 5);
        assert_eq!(a.by_kind["context: transport"], 1);
        assert_eq!(a.first_by_kind.len(), 2);
        assert!(a.first_by_kind["context: transport"].contains("reset"));
        assert!(a
            .first
            .as_deref()
            .unwrap_or_default()
            .starts_with("store: "));
        assert!(a.line().starts_with("errors: 6 "));
        assert_eq!(ErrorCounts::default().line(), "errors: 0");
    }
}
