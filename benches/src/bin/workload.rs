//! Writes a generated workload as JSON lines for `mnemo import`.
//!
//! ```sh
//! cargo run --release -p mnemo-benches --bin workload -- --users 100 --turns-per-user 50 --jsonl w.jsonl
//! mnemo import w.jsonl
//! ```

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use mnemo_benches::workload::{Workload, WorkloadConfig};

/// A deterministic workload (same seed, same turns) as `mnemo import` JSON lines.
#[derive(Debug, Parser)]
#[command(name = "workload")]
struct Args {
    /// Users.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Turns per user (user and assistant turns alternate; sessions of 6 to 24 turns).
    #[arg(long, default_value_t = 50)]
    turns_per_user: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Tenant of every turn.
    #[arg(long, default_value = "bench")]
    tenant: String,
    /// Where to write (`-`: standard output).
    #[arg(long, default_value = "-")]
    jsonl: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut workload = Workload::new(WorkloadConfig {
        seed: args.seed,
        users: args.users,
        tenant: args.tenant.clone(),
        ..WorkloadConfig::default()
    });
    let written = if args.jsonl.as_os_str() == "-" {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let n = workload.write_jsonl(args.turns_per_user, &mut out)?;
        out.flush()?;
        n
    } else {
        let file = std::fs::File::create(&args.jsonl)
            .with_context(|| format!("cannot create {}", args.jsonl.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let n = workload.write_jsonl(args.turns_per_user, &mut out)?;
        out.flush()?;
        n
    };
    eprintln!("wrote {written} turns of {} users", args.users);
    Ok(())
}
