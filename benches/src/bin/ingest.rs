//! The ingest runner: generated turns stored through `store_batch` by a few concurrent
//! writers, beside a raw-insert bench of the same rows on the same store, then the time
//! until every processor has caught up.
//!
//! The raw bench is what the store itself reaches for these rows, with no engine in
//! front: on SQLite, multi-row INSERTs in transactions of `--batch` rows into a database
//! of the archive's schema and settings in the same directory; on PostgreSQL, one COPY
//! per `--batch` rows into a table made `LIKE turns INCLUDING ALL` in the same database.
//! Sizes grow one store, as the scale runner does: each step adds its new rows to both.
//!
//! ```sh
//! cargo run --release -p mnemo-benches --bin ingest -- --sizes 100k,1M
//! cargo run --release -p mnemo-benches --bin ingest -- --config config.server.toml --sizes 100k
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use mnemo_benches::errors::ErrorCounts;
use mnemo_benches::setup::{block_on, load_config, EngineArgs, LocalEngine};
use mnemo_benches::system::{parse_count, Machine};
use mnemo_benches::workload::{GeneratedTurn, Workload, WorkloadConfig};
use mnemo_benches::BenchError;
use mnemo_engine::storage::archive::Durability;
use mnemo_engine::storage::sql::postgres::is_postgres_url;
use mnemo_engine::storage::sql::sqlite::{sqlite_path, SqliteDb, SqliteSchema};
use serde::Serialize;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::SqliteSynchronous;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// Ingest of generated turns against the store's own raw insert rate.
#[derive(Debug, Parser)]
#[command(name = "ingest")]
struct Args {
    /// Store sizes to grow to, in turns (e.g. `100k,1M`).
    #[arg(long, value_delimiter = ',', value_parser = parse_count, default_value = "100k")]
    sizes: Vec<u64>,
    /// Users the turns belong to.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Turns per `store_batch` call, and rows per raw transaction.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent `store_batch` writers.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    engine: EngineArgs,
    /// A run of a few seconds: sizes 2k and 5k over 100 users.
    #[arg(long)]
    smoke: bool,
}

/// What one step measured.
#[derive(Debug, Serialize)]
struct Step {
    turns: u64,
    added: u64,
    /// The raw insert of the step's rows: rows per second.
    raw_rows_per_sec: f64,
    /// `store_batch` of the same rows: acknowledged turns per second.
    ingest_turns_per_sec: f64,
    /// `ingest_turns_per_sec / raw_rows_per_sec`.
    ingest_vs_raw: f64,
    /// From the first write of the step until every processor had caught up.
    processed_after_secs: f64,
    /// The step's turns over that time.
    end_to_end_turns_per_sec: f64,
    /// Each processor's turns still to handle when the last store was acknowledged:
    /// the one furthest behind is the one the step waited for.
    lag_when_stored: BTreeMap<String, i64>,
    errors: ErrorCounts,
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.sizes = vec![2_000, 5_000];
        args.users = 100;
        args.batch = 500;
    }
    let config = load_config(args.engine.config.as_deref(), std::env::vars())?;
    block_on(run(args, config))?
}

async fn run(args: Args, config: mnemo_engine::Config) -> anyhow::Result<()> {
    let sizes = mnemo_benches::system::ascending_sizes(&args.sizes)
        .ok_or_else(|| anyhow::anyhow!("--sizes names no size"))?;
    anyhow::ensure!(args.batch >= 1, "--batch must be at least 1");
    let local = LocalEngine::start(config, args.engine.data_dir.as_deref()).await?;
    let mut raw = RawStore::open(&local).await?;
    let mut workload = Workload::new(WorkloadConfig {
        seed: args.seed,
        users: args.users,
        ..WorkloadConfig::default()
    });
    println!(
        "ingest: sizes {sizes:?} over {} users, batches of {}, {} writers, raw insert on {}",
        args.users,
        args.batch,
        args.writers,
        raw.describe()
    );
    println!("machine: {}", Machine::this());
    println!(
        "{:>9} | {:>10} {:>10} {:>7} | {:>8} {:>10}",
        "turns", "raw rows/s", "ingest/s", "vs raw", "proc s", "e2e/s"
    );
    let mut steps: Vec<Step> = Vec::new();
    let mut stored = 0u64;
    for &size in &sizes {
        let added = size.saturating_sub(stored);
        let rows = workload.next_turns(added as usize);
        let mut errors = ErrorCounts::default();

        let started = Instant::now();
        for chunk in rows.chunks(args.batch) {
            if let Err(e) = raw.insert(chunk).await {
                errors.record_n("raw insert", &e, chunk.len() as u64);
            }
        }
        let raw_secs = started.elapsed().as_secs_f64();

        // The same rows, in order, split before the clock starts.
        // Moved out batch by batch: splitting the tail off each time copied the rest of
        // the rows once per batch (half of a profile's samples at 200k turns).
        let mut batches = VecDeque::new();
        let mut rest = rows.into_iter().peekable();
        while rest.peek().is_some() {
            batches.push_back(rest.by_ref().take(args.batch.max(1)).collect::<Vec<_>>());
        }
        let batches = Arc::new(Mutex::new(batches));
        let started = Instant::now();
        let mut writers = tokio::task::JoinSet::new();
        for _ in 0..args.writers.max(1) {
            let engine = local.engine.clone();
            let batches = batches.clone();
            writers.spawn(async move {
                let mut errors = ErrorCounts::default();
                loop {
                    let next = batches.lock().ok().and_then(|mut b| b.pop_front());
                    let Some(batch) = next else { break };
                    let n = batch.len() as u64;
                    let turns: Result<Vec<_>, _> =
                        batch.iter().map(GeneratedTurn::to_new_turn).collect();
                    let stored = match turns {
                        Ok(turns) => engine
                            .store_batch_paced(turns)
                            .await
                            .map_err(BenchError::from),
                        Err(e) => Err(e.into()),
                    };
                    if let Err(e) = stored {
                        errors.record_n("store_batch", &e, n);
                    }
                }
                errors
            });
        }
        while let Some(done) = writers.join_next().await {
            errors.merge(done.context("a writer panicked")?);
        }
        let ingest_secs = started.elapsed().as_secs_f64();
        let lag_when_stored: BTreeMap<String, i64> = local
            .engine
            .health()
            .processors
            .into_iter()
            .map(|p| (p.name, p.lag))
            .collect();
        if let Err(e) = local.engine.wait_processed().await {
            errors.record("processing", &e.into());
        }
        let processed_secs = started.elapsed().as_secs_f64();
        stored = size;

        let per_sec = |secs: f64| added as f64 / secs.max(f64::EPSILON);
        let step = Step {
            turns: size,
            added,
            raw_rows_per_sec: per_sec(raw_secs),
            ingest_turns_per_sec: per_sec(ingest_secs),
            ingest_vs_raw: per_sec(ingest_secs) / per_sec(raw_secs),
            processed_after_secs: processed_secs,
            end_to_end_turns_per_sec: per_sec(processed_secs),
            lag_when_stored,
            errors,
        };
        println!(
            "{:>9} | {:>10.0} {:>10.0} {:>6.2}x | {:>8.1} {:>10.0}",
            step.turns,
            step.raw_rows_per_sec,
            step.ingest_turns_per_sec,
            step.ingest_vs_raw,
            step.processed_after_secs,
            step.end_to_end_turns_per_sec,
        );
        let lags: Vec<String> = step
            .lag_when_stored
            .iter()
            .map(|(name, lag)| format!("{name} {lag}"))
            .collect();
        println!("          behind when stored: {}", lags.join(", "));
        if step.errors.total() > 0 {
            println!("          {}", step.errors.line());
        }
        steps.push(step);
    }
    if let Some(path) = &args.engine.json {
        let value = serde_json::json!({
            "users": args.users,
            "batch": args.batch,
            "writers": args.writers,
            "raw_store": raw.describe(),
            "machine": Machine::this(),
            "steps": steps,
        });
        std::fs::write(path, serde_json::to_string_pretty(&value)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    raw.close().await;
    local.engine.shutdown().await?;
    Ok(())
}

/// Where the raw bench writes: the archive's store, beside the archive.
enum RawStore {
    /// A database of the archive's schema and settings in the archive's directory.
    Sqlite { pool: SqlitePool, path: PathBuf },
    /// A table like `turns` in the archive's database, dropped at the end.
    Postgres { pool: PgPool, next_seq: i64 },
}

/// The raw bench's table on PostgreSQL.
const RAW_TABLE: &str = "mnemo_bench_raw_turns";

impl RawStore {
    async fn open(local: &LocalEngine) -> mnemo_benches::Result<Self> {
        let storage = &local.config.storage;
        let archive = &storage.archive;
        if is_postgres_url(&archive.url) {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect(&archive.url)
                .await
                .map_err(|e| BenchError::Input(format!("cannot reach the archive: {e}")))?;
            for sql in [
                format!("DROP TABLE IF EXISTS {RAW_TABLE}"),
                format!("CREATE TABLE {RAW_TABLE} (LIKE turns INCLUDING ALL)"),
            ] {
                sqlx::query(&sql).execute(&pool).await.map_err(raw_error)?;
            }
            return Ok(RawStore::Postgres { pool, next_seq: 1 });
        }
        let archive_path = sqlite_path(&archive.url, &storage.data_dir)?;
        let path = sibling(&archive_path, "raw-insert.sqlite3");
        // Opened once through the archive's own code, for its schema (migrations).
        drop(SqliteDb::open(&path, archive, SqliteSchema::Archive).await?);
        let synchronous = match archive.durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(raw_error)?;
        Ok(RawStore::Sqlite { pool, path })
    }

    fn describe(&self) -> String {
        match self {
            RawStore::Sqlite { path, .. } => {
                format!(
                    "SQLite {} (multi-row INSERT per transaction)",
                    path.display()
                )
            }
            RawStore::Postgres { .. } => {
                format!("PostgreSQL table {RAW_TABLE} (COPY per transaction)")
            }
        }
    }

    /// Inserts `rows` in one transaction.
    async fn insert(&mut self, rows: &[GeneratedTurn]) -> mnemo_benches::Result<()> {
        let now = chrono::Utc::now().timestamp_micros();
        match self {
            RawStore::Sqlite { pool, .. } => {
                let mut tx = pool.begin().await.map_err(raw_error)?;
                // 10 values a row, under SQLite's limit of 32,766 bound values.
                for chunk in rows.chunks(512) {
                    let mut sql = String::from(
                        "INSERT INTO turns (external_id, tenant, user_id, session_id, role, \
                         speaker, content, event_time, ingest_time, metadata) VALUES ",
                    );
                    for i in 0..chunk.len() {
                        sql.push_str(if i == 0 { "" } else { "," });
                        sql.push_str("(?,?,?,?,?,?,?,?,?,'{}')");
                    }
                    let mut query = sqlx::query(&sql);
                    for t in chunk {
                        query = query
                            .bind(&t.external_id)
                            .bind(&t.tenant)
                            .bind(&t.user_id)
                            .bind(&t.session_id)
                            .bind(t.role.as_str())
                            .bind(&t.speaker)
                            .bind(&t.content)
                            .bind(t.event_time.timestamp_micros())
                            .bind(now);
                    }
                    query.execute(&mut *tx).await.map_err(raw_error)?;
                }
                tx.commit().await.map_err(raw_error)
            }
            RawStore::Postgres { pool, next_seq } => {
                let mut csv = String::with_capacity(rows.len() * 256);
                for (i, t) in rows.iter().enumerate() {
                    let seq = *next_seq + i as i64;
                    csv.push_str(&format!("{seq},"));
                    for field in [
                        t.external_id.as_str(),
                        &t.tenant,
                        &t.user_id,
                        &t.session_id,
                        t.role.as_str(),
                        &t.speaker,
                        &t.content,
                    ] {
                        quote_csv(&mut csv, field);
                        csv.push(',');
                    }
                    csv.push_str(&format!(
                        "{},{now},\"{{}}\"\n",
                        t.event_time.timestamp_micros()
                    ));
                }
                let mut conn = pool.acquire().await.map_err(raw_error)?;
                let mut copy = conn
                    .copy_in_raw(&format!(
                        "COPY {RAW_TABLE} (seq, external_id, tenant, user_id, session_id, \
                         role, speaker, content, event_time, ingest_time, metadata) \
                         FROM STDIN WITH (FORMAT csv)"
                    ))
                    .await
                    .map_err(raw_error)?;
                copy.send(csv.into_bytes()).await.map_err(raw_error)?;
                copy.finish().await.map_err(raw_error)?;
                *next_seq += rows.len() as i64;
                Ok(())
            }
        }
    }

    async fn close(self) {
        match self {
            RawStore::Sqlite { pool, .. } => pool.close().await,
            RawStore::Postgres { pool, .. } => {
                let drop = format!("DROP TABLE IF EXISTS {RAW_TABLE}");
                let _ = sqlx::query(&drop).execute(&pool).await;
                pool.close().await;
            }
        }
    }
}

fn raw_error(e: sqlx::Error) -> BenchError {
    BenchError::Transport(format!("raw insert: {e}"))
}

/// `file` in the directory of `path`.
fn sibling(path: &Path, file: &str) -> PathBuf {
    path.parent().unwrap_or(Path::new(".")).join(file)
}

/// A CSV field, quoted, with its quotes doubled.
fn quote_csv(out: &mut String, field: &str) {
    out.push('"');
    out.push_str(&field.replace('"', "\"\""));
    out.push('"');
}
