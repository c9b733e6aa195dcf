//! The several-nodes runner: engines in one process, each with a data directory of its
//! own, on the shared archive and recent tier of a server configuration.
//!
//! 1. Cross-node visibility: turns stored one at a time through one node (round robin),
//!    each timed from its acknowledgement until search on every other node finds it
//!    (asked every millisecond).
//! 2. A new node: `--rebuild-turns N` more generated turns are stored (with the other
//!    nodes' processors doing their work), then a node with an empty data directory
//!    starts and is timed until its index holds the whole archive.
//!
//! ```sh
//! cargo run --release -p mnemo-benches --bin nodes -- --config config.server.toml \
//!     --nodes 3 --turns 300 --rebuild-turns 1M
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use mnemo_benches::latency::{Latencies, LatencySummary};
use mnemo_benches::setup::{block_on, load_config, EngineArgs, LocalEngine};
use mnemo_benches::system::{parse_count, Machine};
use mnemo_benches::workload::{Workload, WorkloadConfig};
use mnemo_benches::BenchError;
use mnemo_engine::storage::index::SearchQuery;
use mnemo_engine::storage::model::{NewTurn, Role, Scope, SessionId};
use mnemo_engine::Config;
use serde::Serialize;

/// Cross-node visibility and a new node's catch-up.
#[derive(Debug, Parser)]
#[command(name = "nodes")]
struct Args {
    /// Nodes (engines) sharing the archive.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Turns timed from acknowledgement to searchable on every other node.
    #[arg(long, default_value_t = 300)]
    turns: usize,
    /// Turns stored before a new node starts with an empty index (0: skip).
    #[arg(long, value_parser = parse_count, default_value = "0")]
    rebuild_turns: u64,
    /// Turns per `store_batch` call while filling the archive for the new node.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Longest one turn may take to become visible before it counts as lost.
    #[arg(long, default_value_t = 30_000)]
    patience_ms: u64,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Debug, Serialize)]
struct Visibility {
    /// From acknowledgement on one node to searchable on every other.
    latency: LatencySummary,
    /// Turns some node had not found within the patience.
    lost: usize,
}

#[derive(Debug, Serialize)]
struct NewNode {
    archive_turns: u64,
    caught_up_secs: f64,
    turns_per_sec: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = load_config(args.engine.config.as_deref(), std::env::vars())?;
    block_on(run(args, config))?
}

async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    if !mnemo_engine::storage::sql::postgres::is_postgres_url(&config.storage.archive.url) {
        return Err(BenchError::Input(
            "several nodes share a PostgreSQL archive: pass --config config.server.toml".into(),
        )
        .into());
    }
    println!("machine: {}", Machine::this());
    let mut nodes = Vec::with_capacity(args.nodes);
    for _ in 0..args.nodes.max(2) {
        nodes.push(LocalEngine::start(config.clone(), None).await?);
    }
    let visibility = visibility(&nodes, &args).await?;
    let l = &visibility.latency;
    println!(
        "visibility over {} turns, {} nodes: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} lost",
        l.count,
        nodes.len(),
        l.p50_ms,
        l.p95_ms,
        l.p99_ms,
        l.max_ms,
        visibility.lost
    );
    let new_node = if args.rebuild_turns > 0 {
        let new_node = new_node(&nodes, &config, &args).await?;
        println!(
            "a new node indexed {} turns in {:.1} s ({:.0} turns/s)",
            new_node.archive_turns, new_node.caught_up_secs, new_node.turns_per_sec
        );
        Some(new_node)
    } else {
        None
    };
    for node in nodes {
        node.engine.shutdown().await?;
    }
    if let Some(path) = &args.engine.json {
        let value = serde_json::json!({
            "nodes": args.nodes,
            "visibility": visibility,
            "new_node": new_node,
            "machine": Machine::this(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&value)? + "\n")?;
    }
    Ok(())
}

/// Stores turns one at a time through each node in turn; times each until every other
/// node's search finds it.
async fn visibility(nodes: &[LocalEngine], args: &Args) -> anyhow::Result<Visibility> {
    let scope = Scope::parse("bench", "visibility")?;
    let session = SessionId::new("s")?;
    let patience = Duration::from_millis(args.patience_ms);
    let mut latencies = Latencies::default();
    let mut lost = 0;
    for i in 0..args.turns {
        let writer = &nodes[i % nodes.len()].engine;
        let word = format!("beacon{i}x");
        let turn = NewTurn::new(
            scope.clone(),
            session.clone(),
            Role::User,
            format!("a note about {word} and the weather"),
        );
        let id = writer.store(turn).await?.turn.id.0;
        let acked = Instant::now();
        let mut all_found = true;
        for (n, reader) in nodes.iter().enumerate() {
            if n == i % nodes.len() {
                continue;
            }
            loop {
                let hits = reader
                    .engine
                    .search(&scope, SearchQuery::new(word.as_str(), 5))
                    .await?;
                if hits.iter().any(|h| h.id == id) {
                    break;
                }
                if acked.elapsed() > patience {
                    all_found = false;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if all_found {
            latencies.record(acked.elapsed());
        } else {
            lost += 1;
        }
    }
    Ok(Visibility {
        latency: latencies.summary(),
        lost,
    })
}

/// Fills the archive through the nodes, then starts a node with an empty data directory
/// and times it until its indexer has caught up with the head.
async fn new_node(nodes: &[LocalEngine], config: &Config, args: &Args) -> anyhow::Result<NewNode> {
    let mut workload = Workload::new(WorkloadConfig::default());
    let mut stored = 0;
    while stored < args.rebuild_turns {
        let n = (args.rebuild_turns - stored).min(args.batch as u64) as usize;
        let turns = workload
            .next_turns(n)
            .iter()
            .map(|t| t.to_new_turn())
            .collect::<Result<Vec<_>, _>>()?;
        nodes[0].engine.store_batch_paced(turns).await?;
        stored += n as u64;
    }
    for node in nodes {
        node.engine.wait_processed().await?;
    }
    let archive_turns = nodes[0].engine.health().head as u64;
    let started = Instant::now();
    let fresh = LocalEngine::start(config.clone(), None).await?;
    fresh.engine.wait_processed().await?;
    let secs = started.elapsed().as_secs_f64();
    fresh.engine.shutdown().await?;
    Ok(NewNode {
        archive_turns,
        caught_up_secs: secs,
        turns_per_sec: archive_turns as f64 / secs.max(1e-9),
    })
}
