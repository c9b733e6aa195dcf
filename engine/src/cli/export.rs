//! `mnemo export`: every stored turn as JSON lines ([`record`](super::record)), in id
//! order, so that importing the export into an empty store gives the same turns in the
//! same order, with their times, metadata, speakers and external ids.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use indicatif::ProgressBar;
use mnemo_storage::model::{Turn, TurnId};

use super::error::CliError;
use super::record::TurnRecord;
use super::{progress, with_engine, StoreArgs};
use crate::config::Config;
use crate::engine::Engine;

/// Turns read from the archive per page.
const PAGE: usize = 1_000;

/// Which turns to export; `None` is every one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// Only this tenant's turns.
    pub tenant: Option<String>,
    /// Only turns of users with this id.
    pub user: Option<String>,
}

impl ExportFilter {
    /// Whether `turn` is exported.
    pub fn keeps(&self, turn: &Turn) -> bool {
        self.tenant
            .as_deref()
            .is_none_or(|t| turn.scope.tenant.as_str() == t)
            && self
                .user
                .as_deref()
                .is_none_or(|u| turn.scope.user.as_str() == u)
    }
}

/// Arguments of `mnemo export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Only this tenant's turns.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only turns of users with this id.
    #[arg(long)]
    pub user: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Writes the turns `filter` keeps to `out`, one JSON object per line, in id order;
/// answers how many. Moves `progress` through the ids up to the archive's head.
pub async fn export(
    engine: &Engine,
    filter: &ExportFilter,
    out: &mut impl Write,
    progress: &ProgressBar,
) -> Result<u64, CliError> {
    let head = engine.health().head;
    progress.set_length(u64::try_from(head).unwrap_or(0));
    let mut after = TurnId(0);
    let mut written = 0;
    loop {
        let page = engine.turns_after(after, PAGE).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        for turn in page.iter().filter(|t| filter.keeps(t)) {
            serde_json::to_writer(&mut *out, &TurnRecord::from(turn)).map_err(|e| {
                CliError::Io {
                    what: "cannot write the export".into(),
                    source: e.into(),
                }
            })?;
            out.write_all(b"\n")
                .map_err(CliError::io("cannot write the export"))?;
            written += 1;
        }
        progress.set_position(u64::try_from(after.0).unwrap_or(0));
    }
    out.flush()
        .map_err(CliError::io("cannot write the export"))?;
    Ok(written)
}

/// `mnemo export`: exports the embedded store of `config` to `args.output` or standard
/// output, with a progress bar on standard error; answers how many turns.
pub async fn run(config: Config, args: ExportArgs) -> Result<u64, CliError> {
    let filter = ExportFilter {
        tenant: args.tenant.clone(),
        user: args.user.clone(),
    };
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path)
                .map_err(CliError::io(format!("cannot create {}", path.display())))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    with_engine(config, &args.store, async |engine| {
        let bar = progress::bar(Some(0), "exporting");
        let written = export(engine, &filter, &mut out, &bar).await;
        bar.finish_and_clear();
        let written = written?;
        if args.output.is_some() {
            eprintln!("exported {written} turns");
        }
        Ok(written)
    })
    .await
}
