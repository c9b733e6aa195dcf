//! The load runner: N simulated users at once, each alternating `store` and `context`
//! (at a configured share) with a think time between operations, for a fixed duration,
//! against an engine in this process or a `mnemo serve` at a URL.
//!
//! Reports throughput and latency percentiles per operation, errors by kind, degraded
//! and cached answers, and the engine's processor lag at the end.
//!
//! ```sh
//! cargo run --release -p mnemo-benches --bin load -- --users 1000 --seconds 30
//! cargo run --release -p mnemo-benches --bin load -- --config config.server.toml --users 1000
//! cargo run --release -p mnemo-benches --bin load -- --url http://127.0.0.1:8080 --key $KEY
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use mnemo_benches::errors::ErrorCounts;
use mnemo_benches::latency::{Latencies, LatencySummary};
use mnemo_benches::setup::{block_on, load_config, LocalEngine};
use mnemo_benches::system::{mib, resident_bytes, Machine};
use mnemo_benches::target::{Remote, Target};
use mnemo_benches::workload::{UserStream, Workload, WorkloadConfig};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;
use serde_json::json;

/// Concurrent simulated users storing turns and asking for context.
#[derive(Debug, Parser)]
#[command(name = "load")]
struct Args {
    /// Simulated users, all at once (1 to 10,000 and more).
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// How long the measured phase runs, in seconds.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Share of operations that store a turn; the rest ask for context.
    #[arg(long, default_value_t = 0.5)]
    store_share: f64,
    /// Mean think time between a user's operations, in milliseconds (each pause is
    /// drawn uniformly between half and one and a half times it; 0: none).
    #[arg(long, default_value_t = 1000.0)]
    think_ms: f64,
    /// Turns stored per user before the measured phase (in batches, then processed),
    /// so context requests find history.
    #[arg(long, default_value_t = 20)]
    preload: usize,
    /// Turns per preload batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Engine configuration file for the in-process engine (default: embedded defaults).
    #[arg(long, conflicts_with = "url")]
    config: Option<PathBuf>,
    /// Data directory of the in-process engine (default: a fresh temporary directory).
    #[arg(long, conflicts_with = "url")]
    data_dir: Option<PathBuf>,
    /// A running server to drive over HTTP instead (e.g. http://127.0.0.1:8080).
    #[arg(long, requires = "key")]
    url: Option<String>,
    /// API key for `--url`.
    #[arg(long, requires = "url")]
    key: Option<String>,
    /// Retry a refused operation after the think time alone, not after the
    /// `Retry-After` the engine asked for (a client that ignores it: a storm of retries).
    #[arg(long)]
    ignore_retry_after: bool,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A run of a few seconds: 20 users, 3 seconds, 50 ms think time.
    #[arg(long)]
    smoke: bool,
}

/// What one simulated user measured.
#[derive(Debug, Default)]
struct Tally {
    store: Latencies,
    context: Latencies,
    errors: ErrorCounts,
    degraded: u64,
    degraded_tiers: BTreeMap<String, u64>,
    cached: u64,
    /// Each tier's time within the context answers (`total`: the whole assembly).
    tiers: BTreeMap<String, Latencies>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.store.merge(&other.store);
        self.context.merge(&other.context);
        self.errors.merge(other.errors);
        self.degraded += other.degraded;
        for (tier, n) in other.degraded_tiers {
            *self.degraded_tiers.entry(tier).or_default() += n;
        }
        self.cached += other.cached;
        for (tier, latencies) in other.tiers {
            self.tiers.entry(tier).or_default().merge(&latencies);
        }
    }
}

#[derive(Debug, Serialize)]
struct OpReport {
    operations: u64,
    per_second: f64,
    latency: LatencySummary,
}

struct Plan {
    end: Instant,
    store_share: f64,
    think: Duration,
    seed: u64,
    honour_retry_after: bool,
}

async fn simulate(target: Target, mut user: UserStream, index: usize, plan: &Plan) -> Tally {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(
        plan.seed ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407),
    );
    let mut tally = Tally::default();
    let tenant = user
        .scope()
        .map(|s| s.tenant.to_string())
        .unwrap_or_default();
    // Users start spread over one think time, not all at the same instant.
    let mut pause = plan.think.mul_f64(rng.random::<f64>());
    loop {
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        if Instant::now() >= plan.end {
            break;
        }
        // A refused operation asks the user to come back later.
        let mut retry_after = None;
        if rng.random_bool(plan.store_share.clamp(0.0, 1.0)) {
            let turn = user.next_turn();
            let started = Instant::now();
            match target.store(&turn).await {
                Ok(()) => tally.store.record(started.elapsed()),
                Err(e) => {
                    retry_after = e.retry_after();
                    tally.errors.record("store", &e);
                }
            }
        } else {
            let query = user.question();
            let session = user.session_id();
            let started = Instant::now();
            match target
                .context(&tenant, user.user_id(), &session, &query)
                .await
            {
                Ok(outcome) => {
                    let took = started.elapsed();
                    tally.context.record(took);
                    // What the engine's own timings leave out: handing the answer back.
                    let timing = |tier: &str| {
                        outcome
                            .timings_ms
                            .iter()
                            .find(|(name, _)| name == tier)
                            .map(|(_, ms)| *ms)
                    };
                    if let (Some(queued), Some(total)) = (timing("queued"), timing("total")) {
                        let inside = Duration::from_secs_f64((queued + total).max(0.0) / 1000.0);
                        tally
                            .tiers
                            .entry("delivered".to_owned())
                            .or_default()
                            .record(took.saturating_sub(inside));
                    }
                    tally.degraded += u64::from(!outcome.degraded.is_empty());
                    for tier in outcome.degraded {
                        *tally.degraded_tiers.entry(tier).or_default() += 1;
                    }
                    tally.cached += u64::from(outcome.cached);
                    for (tier, ms) in outcome.timings_ms {
                        let took = Duration::from_secs_f64(ms.max(0.0) / 1000.0);
                        tally.tiers.entry(tier).or_default().record(took);
                    }
                }
                Err(e) => {
                    retry_after = e.retry_after();
                    tally.errors.record("context", &e);
                }
            }
        }
        pause = plan.think.mul_f64(rng.random_range(0.5..1.5));
        if let Some(wait) = retry_after.filter(|_| plan.honour_retry_after) {
            pause = pause.max(wait);
        }
    }
    tally
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.users = 20;
        args.seconds = 3.0;
        args.think_ms = 50.0;
        args.preload = 10;
    }
    let config = load_config(args.config.as_deref(), std::env::vars())?;
    block_on(run(args, config))?
}

async fn run(args: Args, config: mnemo_engine::Config) -> anyhow::Result<()> {
    anyhow::ensure!(args.users >= 1, "--users must be at least 1");
    let mut workload = Workload::new(WorkloadConfig {
        seed: args.seed,
        users: args.users,
        ..WorkloadConfig::default()
    });
    let (target, local) = match (&args.url, &args.key) {
        (Some(url), Some(key)) => (Target::Remote(Remote::new(url, key)?), None),
        _ => {
            let local = LocalEngine::start(config, args.data_dir.as_deref()).await?;
            (Target::Local(local.engine.clone()), Some(local))
        }
    };
    let where_ = args.url.clone().unwrap_or_else(|| {
        format!(
            "in-process engine ({})",
            args.config
                .as_ref()
                .map_or("embedded defaults".to_owned(), |p| p.display().to_string())
        )
    });
    println!("load: {} users against {where_}", args.users);
    println!("machine: {}", Machine::this());

    // Preload, so that context requests have history to find. A refused or timed-out
    // batch is counted, not fatal: the run goes on with the history it has.
    let mut preload_errors = ErrorCounts::default();
    let preload_total = args.users * args.preload;
    let started = Instant::now();
    let mut stored = 0;
    while stored < preload_total {
        let n = args.batch.max(1).min(preload_total - stored);
        if let Err(e) = target.store_batch(&workload.next_turns(n)).await {
            preload_errors.record_n("preload", &e, n as u64);
        }
        stored += n;
    }
    let acked = started.elapsed();
    let processed = match &local {
        Some(local) => local
            .engine
            .wait_processed()
            .await
            .map_err(mnemo_benches::BenchError::from),
        None => wait_for_zero_lag(&target).await,
    };
    if let Err(e) = processed {
        preload_errors.record("preload processing", &e);
    }
    if preload_errors.total() > 0 {
        println!("preload {}", preload_errors.line());
    }
    println!(
        "preloaded {preload_total} turns ({} per user) in {:.2} s, processed after {:.2} s",
        args.preload,
        acked.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    let plan = std::sync::Arc::new(Plan {
        end: Instant::now() + Duration::from_secs_f64(args.seconds.max(0.0)),
        store_share: args.store_share,
        think: Duration::from_secs_f64(args.think_ms.max(0.0) / 1000.0),
        seed: args.seed,
        honour_retry_after: !args.ignore_retry_after,
    });
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, user) in workload.into_users().into_iter().enumerate() {
        let target = target.clone();
        let plan = plan.clone();
        tasks.spawn(async move { simulate(target, user, index, &plan).await });
    }
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        tally.merge(done.context("a simulated user panicked")?);
    }
    let elapsed = began.elapsed().as_secs_f64();
    let lag = match target.processor_lag().await {
        Ok(lag) => lag,
        Err(e) => {
            tally.errors.record("processor lag", &e);
            Vec::new()
        }
    };
    let rss = resident_bytes();
    let caught_up = match &local {
        Some(local) => {
            let waited = Instant::now();
            match local.engine.wait_processed().await {
                Ok(()) => Some(waited.elapsed().as_secs_f64()),
                Err(e) => {
                    tally.errors.record("processing", &e.into());
                    None
                }
            }
        }
        None => None,
    };

    let report = |l: &Latencies| OpReport {
        operations: l.count(),
        per_second: l.count() as f64 / elapsed,
        latency: l.summary(),
    };
    let store = report(&tally.store);
    let context = report(&tally.context);
    println!(
        "measured {elapsed:.1} s: store share {:.2}, think time {} ms, refused operations {}",
        args.store_share,
        args.think_ms,
        if args.ignore_retry_after {
            "retried after the think time"
        } else {
            "wait for Retry-After"
        }
    );
    println!(
        "{:<9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "operation", "ops", "ops/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for (name, op) in [("store", &store), ("context", &context)] {
        let l = &op.latency;
        println!(
            "{name:<9} {:>9} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            op.operations, op.per_second, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        );
    }
    println!("{}", tally.errors.line());
    if tally.errors.first_by_kind.len() > 1 {
        for (kind, first) in &tally.errors.first_by_kind {
            println!("  first {kind}: {first}");
        }
    }
    println!(
        "degraded answers: {} (tiers left out: {:?}); cached answers: {}",
        tally.degraded, tally.degraded_tiers, tally.cached
    );
    let tiers: BTreeMap<&str, LatencySummary> = tally
        .tiers
        .iter()
        .map(|(tier, latencies)| (tier.as_str(), latencies.summary()))
        .collect();
    if !tiers.is_empty() {
        let line: Vec<String> = tiers
            .iter()
            .map(|(tier, l)| format!("{tier} {:.2} / {:.2}", l.p50_ms, l.p99_ms))
            .collect();
        println!("context time by tier, p50 / p99 ms: {}", line.join(", "));
    }
    println!("processor lag at the end: {lag:?}");
    if let Some(secs) = caught_up {
        println!("processors caught up {secs:.2} s after the end");
    }
    if let Some(rss) = rss {
        println!("resident memory at the end: {:.0} MiB", mib(rss));
    }
    if let Some(path) = &args.json {
        let value = json!({
            "users": args.users,
            "seconds": elapsed,
            "store_share": args.store_share,
            "think_ms": args.think_ms,
            "honour_retry_after": !args.ignore_retry_after,
            "preload_per_user": args.preload,
            "target": where_,
            "machine": Machine::this(),
            "store": store,
            "context": context,
            "errors": tally.errors.by_kind,
            "first_error": tally.errors.first,
            "first_error_by_kind": tally.errors.first_by_kind,
            "preload_errors": preload_errors.by_kind,
            "degraded": tally.degraded,
            "degraded_tiers": tally.degraded_tiers,
            "cached": tally.cached,
            "context_tiers": tiers,
            "processor_lag": lag.iter().cloned().collect::<BTreeMap<String, i64>>(),
            "caught_up_secs": caught_up,
            "resident_bytes": rss,
        });
        std::fs::write(path, serde_json::to_string_pretty(&value)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(local) = local {
        local.engine.shutdown().await?;
    }
    Ok(())
}

/// Waits until a server's processors have caught up. A server offers no event to wait
/// on, so this asks `/readyz` every 100 ms, for at most ten minutes.
async fn wait_for_zero_lag(target: &Target) -> mnemo_benches::Result<()> {
    let give_up = Instant::now() + Duration::from_secs(600);
    loop {
        let lag = target.processor_lag().await?;
        if lag.iter().all(|(_, lag)| *lag == 0) {
            return Ok(());
        }
        if Instant::now() >= give_up {
            return Err(mnemo_benches::BenchError::Timeout(format!(
                "the server's processors still lag after ten minutes: {lag:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
