//! `mnemo index rebuild`: empties this node's full-text index and indexes every turn and
//! summary of the archive again, with a progress bar, recording how far it went so the
//! engine's indexer resumes after it. A node does the same by itself when its index
//! directory is new or lost; this is for an explicit rebuild (a damaged index, a changed
//! analyzer). The node must be stopped: the data directory is locked by the process
//! using it.

use std::time::Instant;

use indicatif::ProgressBar;
use mnemo_storage::clock::SystemClock;
use mnemo_storage::index::{rebuild_from_archive, RebuildReport};
use mnemo_storage::Tiers;

use super::error::CliError;
use super::{progress, StoreArgs};
use crate::config::Config;

/// Arguments of `mnemo index`.
#[derive(Debug, Clone, clap::Args)]
pub struct IndexArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: IndexCommand,
}

/// `mnemo index` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum IndexCommand {
    /// Empties this node's index and indexes the whole archive again.
    Rebuild {
        /// Turns (and summaries) read from the archive and indexed per batch.
        #[arg(long, default_value_t = 2_000)]
        batch: usize,
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rebuilt {
    /// Turns and summaries indexed.
    pub report: RebuildReport,
    /// Turns indexed per second.
    pub turns_per_sec: f64,
}

/// Rebuilds the index of `tiers` from their archive, `batch` at a time, moving
/// `progress` over the turns and summaries stored.
pub async fn rebuild(
    tiers: &Tiers,
    batch: usize,
    progress: &ProgressBar,
) -> Result<Rebuilt, CliError> {
    let stats = tiers.archive.stats().await?;
    progress.set_length(stats.turns + stats.summaries);
    let started = Instant::now();
    let report = rebuild_from_archive(&*tiers.archive, &*tiers.index, batch, |r| {
        progress.set_position(r.turns + r.summaries);
    })
    .await?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    Ok(Rebuilt {
        report,
        turns_per_sec: report.turns as f64 / secs,
    })
}

/// `mnemo index ...` on the store of `config`.
pub async fn run(mut config: Config, args: IndexArgs) -> Result<Rebuilt, CliError> {
    let IndexCommand::Rebuild { batch, store } = args.command;
    if let Some(dir) = store.data_dir {
        config.storage.data_dir = dir;
    }
    let tiers = Tiers::open(&config.storage, SystemClock::shared()).await?;
    let bar = progress::bar(Some(0), "indexing");
    let rebuilt = rebuild(&tiers, batch, &bar).await;
    bar.finish_and_clear();
    let closed = tiers.close().await;
    let rebuilt = rebuilt?;
    closed?;
    eprintln!(
        "indexed {} turns and {} summaries ({:.0} turns/s)",
        rebuilt.report.turns, rebuilt.report.summaries, rebuilt.turns_per_sec
    );
    Ok(rebuilt)
}
