//! The scale runner: preloads the store to growing sizes (default 10k, 100k and 1M turns
//! over 10,000 users) through `store_batch`, and at each size measures context and
//! search latency (one request at a time, each for a random user about something that
//! user said), the index and archive sizes on disk and the resident memory; then prints
//! how context p99 grew from the smallest size to the largest.
//!
//! ```sh
//! cargo run --release -p mnemo-benches --bin scale -- --sizes 10k,100k,1M
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use mnemo_benches::errors::ErrorCounts;
use mnemo_benches::latency::{Latencies, LatencySummary};
use mnemo_benches::setup::{block_on, load_config, EngineArgs, LocalEngine};
use mnemo_benches::system::{
    disk_bytes, mib, parse_count, peak_resident_bytes, resident_bytes, Machine,
};
use mnemo_benches::workload::{Workload, WorkloadConfig};
use mnemo_engine::storage::index::SearchQuery;
use mnemo_engine::storage::model::SessionId;
use mnemo_engine::ContextRequest;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

/// Context and search latency, disk and memory as the store grows.
#[derive(Debug, Parser)]
#[command(name = "scale")]
struct Args {
    /// Store sizes in turns, ascending, comma-separated; `k` and `M` suffixes allowed.
    #[arg(long, default_value = "10k,100k,1M", value_delimiter = ',', value_parser = parse_count)]
    sizes: Vec<u64>,
    /// Users the turns are spread over (round robin).
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Turns per `store_batch`.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Context requests, and searches, measured at each size.
    #[arg(long, default_value_t = 2000)]
    queries: usize,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    engine: EngineArgs,
    /// A run of a few seconds: sizes 500 and 2,000 over 50 users, 100 queries each.
    #[arg(long)]
    smoke: bool,
}

/// The figures at one size.
#[derive(Debug, Serialize)]
struct Step {
    turns: u64,
    ingest_turns_per_sec: f64,
    processed_after_secs: f64,
    context: LatencySummary,
    context_cached: u64,
    context_degraded: u64,
    /// Each stage of context assembly, from the answers' own timings: the tiers asked
    /// together (recent, index, graph, emotion), then the archive read of the hits and
    /// their neighbours, then ranking and rendering.
    context_stages: BTreeMap<String, LatencySummary>,
    search: LatencySummary,
    /// Failed operations of this step by kind (a timeout is counted, never fatal).
    errors: ErrorCounts,
    index_bytes: u64,
    archive_bytes: Option<u64>,
    resident_bytes: Option<u64>,
    peak_resident_bytes: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.sizes = vec![500, 2_000];
        args.users = 50;
        args.queries = 100;
    }
    let config = load_config(args.engine.config.as_deref(), std::env::vars())?;
    block_on(run(args, config))?
}

async fn run(args: Args, config: mnemo_engine::Config) -> anyhow::Result<()> {
    let sizes = mnemo_benches::system::ascending_sizes(&args.sizes)
        .ok_or_else(|| anyhow::anyhow!("--sizes names no size"))?;
    let local = LocalEngine::start(config, args.engine.data_dir.as_deref()).await?;
    let engine = &local.engine;
    let mut workload = Workload::new(WorkloadConfig {
        seed: args.seed,
        users: args.users,
        ..WorkloadConfig::default()
    });
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(args.seed.wrapping_add(17));
    println!(
        "scale: sizes {sizes:?} over {} users, {} context requests and searches per size",
        args.users, args.queries
    );
    println!("machine: {}", Machine::this());
    println!(
        "{:>9} {:>9} {:>7} | {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} | {:>8} {:>8} {:>8}",
        "turns",
        "ingest/s",
        "proc s",
        "ctx p50",
        "ctx p95",
        "ctx p99",
        "ctx max",
        "srch p50",
        "srch p99",
        "index MiB",
        "arch MiB",
        "RSS MiB"
    );
    let mut steps: Vec<Step> = Vec::new();
    let mut stored: u64 = 0;
    for &size in &sizes {
        // Grow the store to `size` turns.
        let mut errors = ErrorCounts::default();
        let started = Instant::now();
        while stored < size {
            let n = (args.batch.max(1) as u64).min(size - stored) as usize;
            let turns = workload
                .next_turns(n)
                .iter()
                .map(|t| t.to_new_turn())
                .collect::<Result<Vec<_>, _>>()?;
            if let Err(e) = engine.store_batch_paced(turns).await {
                errors.record_n("store_batch", &e.into(), n as u64);
            }
            stored += n as u64;
        }
        let acked = started.elapsed().as_secs_f64();
        let grown = size - steps.last().map_or(0, |s| s.turns);
        if let Err(e) = engine.wait_processed().await {
            errors.record("processing", &e.into());
        }
        let processed = started.elapsed().as_secs_f64();

        let mut context = Latencies::new();
        let mut stages: BTreeMap<String, Latencies> = BTreeMap::new();
        let (mut cached, mut degraded) = (0, 0);
        for _ in 0..args.queries {
            let user = workload.user(rng.random_range(0..args.users));
            let scope = user.scope()?;
            let session = SessionId::new(user.session_id())?;
            let query = user.question();
            let asked = Instant::now();
            let answer = match engine
                .context(ContextRequest::new(scope, Some(session), query))
                .await
            {
                Ok(answer) => answer,
                Err(e) => {
                    errors.record("context", &e.into());
                    continue;
                }
            };
            context.record(asked.elapsed());
            for (stage, ms) in &answer.timings_ms {
                stages
                    .entry(stage.clone())
                    .or_default()
                    .record(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
            }
            cached += u64::from(answer.cached);
            degraded += u64::from(!answer.degraded.is_empty());
        }
        let mut search = Latencies::new();
        for _ in 0..args.queries {
            let user = workload.user(rng.random_range(0..args.users));
            let scope = user.scope()?;
            let query = SearchQuery::new(user.question(), 10);
            let asked = Instant::now();
            match engine.search(&scope, query).await {
                Ok(_) => search.record(asked.elapsed()),
                Err(e) => errors.record("search", &e.into()),
            }
        }
        let step = Step {
            turns: size,
            ingest_turns_per_sec: grown as f64 / acked.max(f64::EPSILON),
            processed_after_secs: processed,
            context: context.summary(),
            context_cached: cached,
            context_degraded: degraded,
            context_stages: stages
                .iter()
                .map(|(stage, latencies)| (stage.clone(), latencies.summary()))
                .collect(),
            search: search.summary(),
            errors,
            index_bytes: disk_bytes(&local.index_dir()),
            archive_bytes: local
                .archive_files()
                .map(|files| files.iter().map(|f| disk_bytes(f)).sum()),
            resident_bytes: resident_bytes(),
            peak_resident_bytes: peak_resident_bytes(),
        };
        println!(
            "{:>9} {:>9.0} {:>7.1} | {:>7.2} {:>7.2} {:>7.2} {:>7.2} | {:>8.2} {:>8.2} | {:>9.1} {:>8} {:>8}",
            step.turns,
            step.ingest_turns_per_sec,
            step.processed_after_secs,
            step.context.p50_ms,
            step.context.p95_ms,
            step.context.p99_ms,
            step.context.max_ms,
            step.search.p50_ms,
            step.search.p99_ms,
            mib(step.index_bytes),
            step.archive_bytes
                .map_or("server".to_owned(), |b| format!("{:.1}", mib(b))),
            step.resident_bytes
                .map_or("?".to_owned(), |b| format!("{:.0}", mib(b))),
        );
        let stages: Vec<String> = step
            .context_stages
            .iter()
            .filter(|(stage, _)| stage.as_str() != "total")
            .map(|(stage, l)| format!("{stage} {:.2}/{:.2}", l.p50_ms, l.p99_ms))
            .collect();
        println!("          context stages p50/p99 ms: {}", stages.join(", "));
        if cached + degraded > 0 {
            println!("          ({cached} context answers from the cache, {degraded} degraded)");
        }
        if step.errors.total() > 0 {
            println!("          {}", step.errors.line());
        }
        steps.push(step);
    }
    if let (Some(first), Some(last)) = (steps.first(), steps.last()) {
        if steps.len() > 1 {
            println!(
                "context p99 grew {:.2}x from {} to {} turns ({:.2} ms -> {:.2} ms); p50 {:.2}x",
                last.context.p99_ms / first.context.p99_ms.max(f64::EPSILON),
                first.turns,
                last.turns,
                first.context.p99_ms,
                last.context.p99_ms,
                last.context.p50_ms / first.context.p50_ms.max(f64::EPSILON),
            );
        }
    }
    if let Some(path) = &args.engine.json {
        let value = serde_json::json!({
            "users": args.users,
            "queries": args.queries,
            "machine": Machine::this(),
            "steps": steps,
        });
        std::fs::write(path, serde_json::to_string_pretty(&value)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    engine.shutdown().await?;
    Ok(())
}
