//! Retrieval quality on LoCoMo-format data: recall@5/10/25/50 per category and overall,
//! beside the reference figures of the data's README.
//!
//! Each conversation is stored as one user through the engine's normal write path
//! (`store_batch`; turn text with the shared photo's caption, session dates as event
//! time, `dia_id` in the metadata and the external id), the processors are waited for,
//! and each question with evidence is asked through context assembly (`Engine::context`,
//! no session, so only the ranked memories come back): its turn items, best first, are
//! the retrieved list.
//!
//! ```sh
//! cargo run --release -p mnemo-benches --bin retrieval -- \
//!     --data ../shared/bench-data/locomo/locomo-dev.json --json summary.json --per-question q.jsonl
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use mnemo_benches::latency::Latencies;
use mnemo_benches::recall::{RecallTable, KS};
use mnemo_benches::setup::{block_on, load_config, LocalEngine};
use mnemo_benches::system::Machine;
use mnemo_engine::actors::context::ranking::ItemKind;
use mnemo_engine::cli::locomo::{self, Question};
use mnemo_engine::cli::DEFAULT_TENANT;
use mnemo_engine::storage::model::{NewTurn, Scope};
use mnemo_engine::ContextRequest;
use serde_json::json;

/// The development split, relative to the repository.
const DEFAULT_DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/bench-data/locomo/locomo-dev.json"
);

/// Reference figures of the data's README (overall, categories 1-5), as fractions.
const REFERENCES: [(&str, [f64; 4]); 2] = [
    ("ref: BM25 (data README)", [0.506, 0.577, 0.664, 0.696]),
    ("ref: DRAGON (LoCoMo paper)", [0.567, 0.662, 0.767, 0.827]),
];

/// Turn items asked for per question: the largest cut-off.
const DEPTH: usize = KS[KS.len() - 1];

/// Recall@5/10/25/50 of the engine's context retrieval on LoCoMo-format data.
#[derive(Debug, Parser)]
#[command(name = "retrieval")]
struct Args {
    /// The LoCoMo-format JSON file.
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
    /// Write the summary (recall as fractions) as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write one JSON line per question (evidence, retrieved dia_ids, recall) to this file.
    #[arg(long)]
    per_question: Option<PathBuf>,
    /// Engine configuration file (default: the embedded defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory of the embedded stores (default: a fresh temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Only the first N conversations.
    #[arg(long)]
    conversations: Option<usize>,
    /// A run of a few seconds: the first conversation's first 40 questions.
    #[arg(long)]
    smoke: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = load_config(args.config.as_deref(), std::env::vars())?;
    block_on(run(args, config))?
}

async fn run(args: Args, config: mnemo_engine::Config) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.data)
        .with_context(|| format!("cannot read {}", args.data.display()))?;
    let limits = config.storage.limits.clone();
    let mut turns: Vec<NewTurn> = Vec::new();
    for (location, parsed) in locomo::parse(&text, DEFAULT_TENANT, &limits)? {
        match parsed {
            Ok(turn) => turns.push(turn),
            Err(reason) => eprintln!("skipping {location}: {reason}"),
        }
    }
    let mut questions: Vec<Question> = locomo::questions(&text)?;
    let mut users: Vec<String> = Vec::new();
    for t in &turns {
        let user = t.scope.user.to_string();
        if !users.contains(&user) {
            users.push(user);
        }
    }
    let keep = if args.smoke {
        Some(1)
    } else {
        args.conversations
    };
    if let Some(n) = keep {
        users.truncate(n);
        turns.retain(|t| users.contains(&t.scope.user.to_string()));
        questions.retain(|q| users.contains(&q.sample_id));
    }
    if args.smoke {
        questions.truncate(40);
    }

    let local = LocalEngine::start(config, args.data_dir.as_deref()).await?;
    let engine = &local.engine;
    println!(
        "retrieval: {} ({} conversations, {} turns, {} questions with evidence)",
        args.data.display(),
        users.len(),
        turns.len(),
        questions.len()
    );
    println!("machine: {}", Machine::this());

    // Ingest through the normal write path; map stored turn ids back to dia_ids.
    let started = Instant::now();
    let mut dia_of: HashMap<i64, String> = HashMap::new();
    let batch = 256.min(local.config.storage.limits.max_batch_turns.max(1));
    for chunk in turns.chunks(batch) {
        for appended in engine.store_batch_paced(chunk.to_vec()).await? {
            let dia = appended.turn.metadata["dia_id"]
                .as_str()
                .context("a stored LoCoMo turn lost its dia_id")?
                .to_owned();
            dia_of.insert(appended.turn.id.0, dia);
        }
    }
    let stored = started.elapsed();
    engine.wait_processed().await?;
    let processed = started.elapsed();
    println!(
        "stored {} turns in {:.2} s; processors caught up after {:.2} s",
        turns.len(),
        stored.as_secs_f64(),
        processed.as_secs_f64()
    );

    let mut per_question = match &args.per_question {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => None,
    };
    let mut table = RecallTable::default();
    let mut latencies = Latencies::new();
    let (mut degraded, mut short) = (0u64, 0u64);
    for q in &questions {
        let scope = Scope::parse(DEFAULT_TENANT, &q.sample_id)?;
        let mut request = ContextRequest::new(scope, None, q.question.clone());
        request.max_recent = Some(0);
        // Entities and summaries share the list with turns: ask for enough items that
        // DEPTH turns remain, with a budget that cuts none of them.
        request.max_items = Some(DEPTH * 2);
        request.token_budget = Some(1_000_000);
        request.deadline = Some(Duration::from_secs(10));
        let asked = Instant::now();
        let answer = engine.context(request).await?;
        latencies.record(asked.elapsed());
        if !answer.degraded.is_empty() {
            degraded += 1;
        }
        let retrieved: Vec<String> = answer
            .items
            .iter()
            .filter(|item| item.kind == ItemKind::Turn)
            .filter_map(|item| dia_of.get(&item.id).cloned())
            .take(DEPTH)
            .collect();
        if retrieved.len() < DEPTH && dia_of.len() >= DEPTH {
            short += 1;
        }
        let recalls = table.add(q.category, &q.evidence, &retrieved);
        if let Some(out) = per_question.as_mut() {
            let recall: serde_json::Map<String, serde_json::Value> = KS
                .iter()
                .zip(recalls)
                .map(|(k, r)| (k.to_string(), json!(r)))
                .collect();
            let line = json!({
                "sample_id": q.sample_id,
                "index": q.index,
                "category": q.category,
                "question": q.question,
                "evidence": q.evidence,
                "recall": recall,
                "retrieved": retrieved,
            });
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
    }
    if let Some(mut out) = per_question {
        out.flush()?;
    }
    let timing = latencies.summary();
    println!(
        "context per question: p50 {:.2} ms, p99 {:.2} ms ({} degraded, {} with fewer than {DEPTH} turns)",
        timing.p50_ms, timing.p99_ms, degraded, short
    );
    println!();
    print!("{}", table.render(&REFERENCES));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&table.summary_json())?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    engine.shutdown().await?;
    Ok(())
}
