//! Every metric Mnemo records, named and described in this one place. Code records
//! through the [`metrics`] facade macros with these names; the engine installs the
//! Prometheus recorder and calls [`describe`] so each family gets its HELP text. With no
//! recorder installed, recording costs next to nothing.
//!
//! Names follow the Prometheus conventions: a `mnemo_` prefix, base units (seconds),
//! `_total` on counters.

/// Counter: requests per operation and status (`ok` or the error kind).
pub const REQUESTS_TOTAL: &str = "mnemo_requests_total";
/// Histogram: seconds per request, per operation and status.
pub const REQUEST_DURATION_SECONDS: &str = "mnemo_request_duration_seconds";
/// Histogram: seconds each tier took within a context request, per tier.
pub const CONTEXT_TIER_DURATION_SECONDS: &str = "mnemo_context_tier_duration_seconds";
/// Counter: context answers missing a tier (late or down), per tier.
pub const CONTEXT_DEGRADED_TOTAL: &str = "mnemo_context_degraded_total";
/// Counter: context requests answered from the per-user answer cache.
pub const CONTEXT_CACHE_HITS_TOTAL: &str = "mnemo_context_cache_hits_total";
/// Counter: context requests the answer cache could not answer.
pub const CONTEXT_CACHE_MISSES_TOTAL: &str = "mnemo_context_cache_misses_total";
/// Counter: context requests that waited in the assembler's mailbox past their deadline
/// and were refused without asking any tier.
pub const CONTEXT_EXPIRED_IN_QUEUE_TOTAL: &str = "mnemo_context_expired_in_queue_total";
/// Gauge: the p99 of the seconds the latest context answers took after their tiers were
/// gathered; each request keeps that much of its deadline for it.
pub const CONTEXT_RESERVE_SECONDS: &str = "mnemo_context_reserve_seconds";
/// Counter: refills of the recent tier from the archive that failed.
pub const RECENT_REFILL_FAILURES_TOTAL: &str = "mnemo_recent_refill_failures_total";
/// Gauge: messages waiting in an actor's mailbox, per actor.
pub const MAILBOX_DEPTH: &str = "mnemo_mailbox_depth";
/// Counter: actor restarts, per actor and cause.
pub const ACTOR_RESTARTS_TOTAL: &str = "mnemo_actor_restarts_total";
/// Gauge: 1 for an actor's current state (`up`, `restarting`, `disabled`), else 0.
pub const ACTOR_STATE: &str = "mnemo_actor_state";
/// Gauge: turns stored but not yet handled by a processor, per processor.
pub const PROCESSOR_LAG_TURNS: &str = "mnemo_processor_lag_turns";
/// The engine's operations (`operation` label), each counted from the start.
pub const OPERATIONS: &[&str] = &[
    "store",
    "store_batch",
    "context",
    "search",
    "history",
    "graph",
    "forget_user",
    "forget_turn",
];

/// The tiers a context answer can leave out (`tier` label of degraded answers).
pub const CONTEXT_TIERS: &[&str] = &["recent", "index", "graph", "emotion", "archive"];

/// The error kinds an alert watches (`kind` label), counted from the start.
pub const WATCHED_ERROR_KINDS: &[&str] = &["busy", "unavailable", "timeout", "internal"];

/// Gauge: forgets a processor has read from the outbox and not applied yet.
pub const FORGETS_PENDING: &str = "mnemo_forgets_pending";
/// Gauge: stored turns the slowest processor has not handled yet.
pub const BACKLOG_TURNS: &str = "mnemo_backlog_turns";
/// Gauge: 1 while the backlog is at its bound and writes are refused, else 0.
pub const BEHIND: &str = "mnemo_behind";
/// Gauge: how many requests of an operation may be in flight (the admission limit).
pub const ADMISSION_LIMIT: &str = "mnemo_admission_limit";
/// Gauge: requests of an operation in flight at the engine's door.
pub const ADMISSION_IN_FLIGHT: &str = "mnemo_admission_in_flight";
/// Gauge: 1 while more than one of an operation's last hundred admitted requests overran
/// its target latency, else 0.
pub const ADMISSION_OVERRUNNING: &str = "mnemo_admission_overrunning";
/// Histogram: turns written per archive transaction (group commit).
pub const INGEST_BATCH_TURNS: &str = "mnemo_ingest_batch_turns";
/// Counter: failed requests, per operation and error kind.
pub const ERRORS_TOTAL: &str = "mnemo_errors_total";
/// Gauge: always 1, labelled with the version of the running build.
pub const BUILD_INFO: &str = "mnemo_build_info";

/// Label: the engine operation (`store`, `store_batch`, `context`, `search`, `history`,
/// `graph`, `forget_user`, `forget_turn`).
pub const LABEL_OPERATION: &str = "operation";
/// Label: `ok`, or the error kind of a failed request.
pub const LABEL_STATUS: &str = "status";
/// Label: an error kind (see `ErrorKind::as_str`).
pub const LABEL_KIND: &str = "kind";
/// Label: a tier of a context request (`recent`, `index`, `graph`, `emotion`, `archive`,
/// `rank`, `total`, `cache`).
pub const LABEL_TIER: &str = "tier";
/// Label: an actor's name.
pub const LABEL_ACTOR: &str = "actor";
/// Label: why an actor restarted (see `Cause::label`).
pub const LABEL_CAUSE: &str = "cause";
/// Label: an actor's state.
pub const LABEL_STATE: &str = "state";
/// Label: a processor's name.
pub const LABEL_PROCESSOR: &str = "processor";
/// Label: the build's version.
pub const LABEL_VERSION: &str = "version";

/// What type a family is exported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A monotonic counter.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution in buckets.
    Histogram,
}

impl Kind {
    /// The type's name in the Prometheus text exposition (`# TYPE` lines).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Every family: its name, type and HELP text.
pub const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        REQUESTS_TOTAL,
        Kind::Counter,
        "Engine requests, by operation and status (ok or the error kind).",
    ),
    (
        REQUEST_DURATION_SECONDS,
        Kind::Histogram,
        "Seconds from the start of an engine request to its answer, by operation and status.",
    ),
    (
        CONTEXT_TIER_DURATION_SECONDS,
        Kind::Histogram,
        "Seconds each tier took within a context request (or until it was given up on), by tier; tier total is the whole assembly.",
    ),
    (
        CONTEXT_DEGRADED_TOTAL,
        Kind::Counter,
        "Context answers that left a tier out because it was late or down, by tier.",
    ),
    (
        CONTEXT_CACHE_HITS_TOTAL,
        Kind::Counter,
        "Context requests answered from the per-user answer cache.",
    ),
    (
        CONTEXT_CACHE_MISSES_TOTAL,
        Kind::Counter,
        "Context requests assembled from the tiers because the answer cache had no valid answer.",
    ),
    (
        CONTEXT_EXPIRED_IN_QUEUE_TOTAL,
        Kind::Counter,
        "Context requests refused because they waited in the assembler's mailbox past their deadline.",
    ),
    (
        CONTEXT_RESERVE_SECONDS,
        Kind::Gauge,
        "The p99 of the seconds the latest context answers took after their tiers were gathered (ranking, rendering); each request keeps that much of its deadline for it, at least a tenth of the deadline up to 2 ms and at most half of it.",
    ),
    (
        RECENT_REFILL_FAILURES_TOTAL,
        Kind::Counter,
        "Refills of the recent tier from the archive (after a miss) that failed; the next read misses again.",
    ),
    (
        BACKLOG_TURNS,
        Kind::Gauge,
        "Stored turns the slowest processor has not handled yet (sampled at scrape time).",
    ),
    (
        BEHIND,
        Kind::Gauge,
        "1 while the processors' backlog is at its bound and writes are refused, else 0 (sampled at scrape time).",
    ),
    (
        ADMISSION_LIMIT,
        Kind::Gauge,
        "Requests of an operation (store, context) that may be in flight; more are refused as busy. Shrinks when admitted requests overrun their target latency (sampled at scrape time).",
    ),
    (
        ADMISSION_IN_FLIGHT,
        Kind::Gauge,
        "Requests of an operation (store, context) in flight at the engine's door (sampled at scrape time).",
    ),
    (
        ADMISSION_OVERRUNNING,
        Kind::Gauge,
        "1 while more than one of an operation's last hundred admitted requests overran its target latency (their p99 is past it; the limit shrinks and the processors step less often), else 0 (sampled at scrape time).",
    ),
    (
        MAILBOX_DEPTH,
        Kind::Gauge,
        "Messages waiting in an actor's mailbox, by actor (sampled at scrape time).",
    ),
    (
        ACTOR_RESTARTS_TOTAL,
        Kind::Counter,
        "Actor restarts by the supervisor, by actor and cause.",
    ),
    (
        ACTOR_STATE,
        Kind::Gauge,
        "1 for the state each actor is in (up, restarting, disabled), 0 for the others (sampled at scrape time).",
    ),
    (
        PROCESSOR_LAG_TURNS,
        Kind::Gauge,
        "Turns stored but not yet handled by a processor (archive head minus its checkpoint), by processor (sampled at scrape time).",
    ),
    (
        FORGETS_PENDING,
        Kind::Gauge,
        "Forgets a processor has read from the outbox (in its current page) and not yet applied to what it derived, by processor: the index and recent tier (indexer, on every node), the graph (graph_sync), summaries (summarizer).",
    ),
    (
        INGEST_BATCH_TURNS,
        Kind::Histogram,
        "Turns written per archive transaction by group commit.",
    ),
    (
        ERRORS_TOTAL,
        Kind::Counter,
        "Failed engine requests, by operation and error kind.",
    ),
    (
        BUILD_INFO,
        Kind::Gauge,
        "Always 1; the version label names the running build.",
    ),
];

/// Histogram bucket bounds for latencies in seconds: 100 µs to 10 s in 1-2.5-5 steps.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Histogram bucket bounds for turns per archive transaction: powers of two to 8192.
pub const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
];

/// Gives every family its HELP text in the installed recorder. Call once after
/// installing it.
pub fn describe() {
    for &(name, kind, help) in FAMILIES {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}
