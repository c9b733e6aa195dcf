//! Prometheus metrics: [`Metrics`] installs a Prometheus recorder as the process's
//! `metrics` recorder (once per process, so several engines in one process share it)
//! and renders the text exposition for a `/metrics` route. The families, their names
//! and HELP texts are defined in one place, [`mnemo_actors::metrics`]; this module
//! records the engine's share of them (requests, per-tier context latency, degraded
//! answers, errors) and samples the gauges (mailbox depth, actor state, processor lag)
//! from [`Health`] at render time.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use mnemo_actors::metrics as names;

use crate::engine::Health;
use crate::error::Result;
use crate::ContextAnswer;

pub use mnemo_actors::metrics::{Kind, FAMILIES};

/// How often histograms are folded into their buckets when nobody scrapes, so samples
/// never pile up.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Why the Prometheus recorder could not be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    /// The recorder was refused its configuration.
    #[error("cannot build the Prometheus recorder: {0}")]
    Build(String),
    /// Another `metrics` recorder already serves this process; Mnemo's metrics go to it.
    #[error("another metrics recorder is installed in this process")]
    RecorderTaken,
}

/// The process's Prometheus recorder, and the handle that renders it.
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// The process's recorder: installed as the global `metrics` recorder on the first
    /// call, the same one afterwards. Fails if the host installed another recorder
    /// first (Mnemo's metrics are then recorded there instead).
    pub fn global() -> Result<Self, MetricsError> {
        static INSTALLED: OnceLock<Result<Metrics, MetricsError>> = OnceLock::new();
        INSTALLED.get_or_init(Self::install).clone()
    }

    fn install() -> Result<Self, MetricsError> {
        let build = |e: metrics_exporter_prometheus::BuildError| MetricsError::Build(e.to_string());
        let recorder = PrometheusBuilder::new()
            .set_buckets(names::LATENCY_BUCKETS)
            .map_err(build)?
            .set_buckets_for_metric(
                Matcher::Full(names::INGEST_BATCH_TURNS.to_owned()),
                names::BATCH_BUCKETS,
            )
            .map_err(build)?
            .build_recorder();
        let handle = recorder.handle();
        ::metrics::set_global_recorder(recorder).map_err(|_| MetricsError::RecorderTaken)?;
        names::describe();
        ::metrics::gauge!(names::BUILD_INFO, names::LABEL_VERSION => env!("CARGO_PKG_VERSION"))
            .set(1.0);
        ::metrics::counter!(names::CONTEXT_CACHE_HITS_TOTAL).increment(0);
        ::metrics::counter!(names::CONTEXT_CACHE_MISSES_TOTAL).increment(0);
        ::metrics::counter!(names::RECENT_REFILL_FAILURES_TOTAL).increment(0);
        ::metrics::counter!(names::CONTEXT_EXPIRED_IN_QUEUE_TOTAL).increment(0);
        // The series dashboards and alerts divide by, or watch, exist from the start at
        // 0: a counter that appears only once touched reads "no data", not 0.
        for &tier in names::CONTEXT_TIERS {
            ::metrics::counter!(names::CONTEXT_DEGRADED_TOTAL, names::LABEL_TIER => tier)
                .increment(0);
        }
        for &operation in names::OPERATIONS {
            ::metrics::counter!(
                names::REQUESTS_TOTAL,
                names::LABEL_OPERATION => operation,
                names::LABEL_STATUS => "ok"
            )
            .increment(0);
            for &kind in names::WATCHED_ERROR_KINDS {
                ::metrics::counter!(
                    names::ERRORS_TOTAL,
                    names::LABEL_OPERATION => operation,
                    names::LABEL_KIND => kind
                )
                .increment(0);
            }
        }
        // One thread per process (this runs once): without it, histogram samples would
        // pile up between scrapes, or forever when nobody scrapes. If it cannot start,
        // rendering still folds them in.
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("mnemo-metrics".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            });
        Ok(Self { handle })
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric recorded so far.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// Samples the gauges that describe the engine's state now: mailbox depth and state per
/// actor, lag per processor. Also makes sure each actor's panic-restart counter exists.
pub(crate) fn sample(health: &Health) {
    ::metrics::gauge!(names::BACKLOG_TURNS).set(health.backlog as f64);
    ::metrics::gauge!(names::BEHIND).set(if health.behind { 1.0 } else { 0.0 });
    for gate in &health.admission {
        let operation = gate.operation.clone();
        ::metrics::gauge!(names::ADMISSION_LIMIT, names::LABEL_OPERATION => operation.clone())
            .set(gate.limit as f64);
        ::metrics::gauge!(names::ADMISSION_IN_FLIGHT, names::LABEL_OPERATION => operation.clone())
            .set(gate.in_flight as f64);
        ::metrics::gauge!(names::ADMISSION_OVERRUNNING, names::LABEL_OPERATION => operation)
            .set(if gate.overrunning { 1.0 } else { 0.0 });
    }
    for actor in &health.actors {
        let name = actor.name.clone();
        // Restarts start at zero, so rates exist before the first one.
        ::metrics::counter!(
            names::ACTOR_RESTARTS_TOTAL,
            names::LABEL_ACTOR => name.clone(),
            names::LABEL_CAUSE => "panic"
        )
        .increment(0);
        if let Some(depth) = actor.mailbox_depth {
            ::metrics::gauge!(names::MAILBOX_DEPTH, names::LABEL_ACTOR => name.clone())
                .set(depth as f64);
        }
        for state in ["up", "restarting", "disabled"] {
            let value = if actor.state == state { 1.0 } else { 0.0 };
            ::metrics::gauge!(
                names::ACTOR_STATE,
                names::LABEL_ACTOR => name.clone(),
                names::LABEL_STATE => state
            )
            .set(value);
        }
    }
    for processor in &health.processors {
        ::metrics::gauge!(
            names::PROCESSOR_LAG_TURNS,
            names::LABEL_PROCESSOR => processor.name.clone()
        )
        .set(processor.lag as f64);
    }
}

/// Runs the engine operation `operation`, then counts it and records its latency by
/// status (`ok` or the error kind), and counts its error by kind.
pub(crate) async fn observe<T>(
    operation: &'static str,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    let started = Instant::now();
    let result = work.await;
    let seconds = started.elapsed().as_secs_f64();
    let status = match &result {
        Ok(_) => "ok",
        Err(e) => {
            let kind = e.kind().as_str();
            ::metrics::counter!(
                names::ERRORS_TOTAL,
                names::LABEL_OPERATION => operation,
                names::LABEL_KIND => kind
            )
            .increment(1);
            kind
        }
    };
    ::metrics::counter!(
        names::REQUESTS_TOTAL,
        names::LABEL_OPERATION => operation,
        names::LABEL_STATUS => status
    )
    .increment(1);
    ::metrics::histogram!(
        names::REQUEST_DURATION_SECONDS,
        names::LABEL_OPERATION => operation,
        names::LABEL_STATUS => status
    )
    .record(seconds);
    result
}

/// Records what a context answer tells: each tier's latency, and the tiers it lacks.
pub(crate) fn record_context(answer: &ContextAnswer) {
    for (tier, ms) in &answer.timings_ms {
        ::metrics::histogram!(
            names::CONTEXT_TIER_DURATION_SECONDS,
            names::LABEL_TIER => tier.clone()
        )
        .record(ms / 1000.0);
    }
    for tier in &answer.degraded {
        ::metrics::counter!(names::CONTEXT_DEGRADED_TOTAL, names::LABEL_TIER => tier.clone())
            .increment(1);
    }
}
