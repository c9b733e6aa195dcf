//! `mnemo import FILE`: turns from JSON lines ([`record`](super::record)) or a LoCoMo
//! document ([`locomo`](super::locomo)) into the store.
//!
//! A record that fails to parse or validate is reported with its line (or item) and
//! skipped; with `strict`, the whole input is parsed first and any failure aborts the
//! import before anything is written. Records with external ids are idempotent: a
//! second import stores nothing new and counts them as already present.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use mnemo_storage::limits::InputLimits;
use mnemo_storage::model::NewTurn;
use serde::Serialize;

use super::error::{CliError, Failure, Location};
use super::locomo::{self, Parsed};
use super::record::TurnRecord;
use super::{progress, with_engine, StoreArgs, DEFAULT_TENANT};
use crate::config::Config;
use crate::engine::Engine;
use crate::error::ErrorKind;

/// The formats `import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line, one turn each.
    #[default]
    Jsonl,
    /// The LoCoMo benchmark's JSON document.
    Locomo,
}

/// How to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The input's format.
    pub format: Format,
    /// Tenant of records that name none (every LoCoMo turn).
    pub tenant: String,
    /// Parse everything first and write nothing if any record fails.
    pub strict: bool,
    /// Turns per stored batch (clamped to the store's batch limit).
    pub batch: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            format: Format::Jsonl,
            tenant: DEFAULT_TENANT.to_owned(),
            strict: false,
            batch: 256,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Records read (blank lines are not records).
    pub read: u64,
    /// Turns newly stored.
    pub stored: u64,
    /// Turns whose external id was already stored.
    pub already_present: u64,
    /// Records that were not stored, with why, in input order.
    pub failures: Vec<Failure>,
}

impl ImportReport {
    /// Writes the summary: the counts, and the first `max_failures` failures.
    pub fn write_summary(&self, out: &mut impl Write, max_failures: usize) -> std::io::Result<()> {
        writeln!(
            out,
            "read {} records: {} stored, {} already present, {} failed",
            self.read,
            self.stored,
            self.already_present,
            self.failures.len()
        )?;
        if !self.failures.is_empty() && max_failures > 0 {
            let shown = self.failures.len().min(max_failures);
            writeln!(out, "failures (first {shown} of {}):", self.failures.len())?;
            for failure in &self.failures[..shown] {
                writeln!(out, "  {failure}")?;
            }
        }
        Ok(())
    }
}

/// Arguments of `mnemo import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The file to import (`-` for standard input).
    pub file: PathBuf,
    /// Its format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// Tenant of records that name none.
    #[arg(long, default_value = DEFAULT_TENANT)]
    pub tenant: String,
    /// Write nothing if any record fails to parse.
    #[arg(long)]
    pub strict: bool,
    /// Turns per stored batch.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Failures to list in the summary, at most.
    #[arg(long, default_value_t = 20)]
    pub show_failures: usize,
    /// Return once the turns are stored, without waiting for the processors (index,
    /// summaries, graph) to catch up; they catch up at the engine's next start.
    #[arg(long)]
    pub no_wait: bool,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Imports `input` into `engine`, counting stored and failed records on `progress`.
/// With a LoCoMo input the bar's length is set to its turn count; for JSON lines the
/// caller sets it (lines) if it knows it.
pub async fn import(
    engine: &Engine,
    mut input: impl BufRead,
    options: &ImportOptions,
    progress: &ProgressBar,
) -> Result<ImportReport, CliError> {
    let limits = &engine.config().storage.limits;
    let mut sink = Sink {
        engine,
        strict: options.strict,
        batch: options.batch.clamp(1, limits.max_batch_turns.max(1)),
        pending: Vec::new(),
        report: ImportReport::default(),
        progress,
    };
    match options.format {
        Format::Jsonl => {
            let mut line = Vec::new();
            let mut number = 0;
            loop {
                line.clear();
                let read = input
                    .read_until(b'\n', &mut line)
                    .map_err(CliError::io("cannot read the input"))?;
                if read == 0 {
                    break;
                }
                number += 1;
                let parsed = match std::str::from_utf8(&line) {
                    Err(e) => Err(format!("not UTF-8: {e}")),
                    Ok(text) if text.trim().is_empty() => {
                        progress.inc(1);
                        continue;
                    }
                    Ok(text) => parse_line(text, &options.tenant, limits),
                };
                sink.push((Location::Line(number), parsed)).await?;
            }
        }
        Format::Locomo => {
            let mut text = String::new();
            input
                .read_to_string(&mut text)
                .map_err(CliError::io("cannot read the input"))?;
            let parsed = locomo::parse(&text, &options.tenant, limits)?;
            progress.set_length(parsed.len() as u64);
            for record in parsed {
                sink.push(record).await?;
            }
        }
    }
    sink.finish().await
}

/// One line of JSON as a turn to store, or why not.
fn parse_line(text: &str, tenant: &str, limits: &InputLimits) -> Result<NewTurn, String> {
    let record: TurnRecord = serde_json::from_str(text).map_err(|e| {
        // The error's own position names line 1 of the one-line text: keep the column.
        let message = e.to_string();
        let plain = message.split(" at line ").next().unwrap_or(&message);
        format!("{plain} (column {})", e.column())
    })?;
    record
        .into_new_turn(tenant, limits)
        .map_err(|e| e.to_string())
}

/// Collects parsed records and stores them in batches.
struct Sink<'a> {
    engine: &'a Engine,
    strict: bool,
    batch: usize,
    pending: Vec<(Location, NewTurn)>,
    report: ImportReport,
    progress: &'a ProgressBar,
}

impl Sink<'_> {
    async fn push(&mut self, (location, parsed): Parsed) -> Result<(), CliError> {
        self.report.read += 1;
        match parsed {
            Ok(turn) => {
                self.pending.push((location, turn));
                if !self.strict && self.pending.len() >= self.batch {
                    self.flush().await?;
                }
            }
            Err(reason) => {
                self.report.failures.push(Failure { location, reason });
                self.progress.inc(1);
            }
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<ImportReport, CliError> {
        if self.strict && !self.report.failures.is_empty() {
            return Err(CliError::Strict {
                failures: self.report.failures,
            });
        }
        self.flush().await?;
        Ok(self.report)
    }

    /// Stores every pending turn. A batch the store refuses as invalid is retried turn
    /// by turn, so only the turns at fault are reported; other errors end the import.
    async fn flush(&mut self) -> Result<(), CliError> {
        let pending = std::mem::take(&mut self.pending);
        let mut rest = pending.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<(Location, NewTurn)> = rest.by_ref().take(self.batch).collect();
            let turns: Vec<NewTurn> = chunk.iter().map(|(_, t)| t.clone()).collect();
            match self.engine.store_batch_paced(turns).await {
                Ok(appended) => {
                    for a in &appended {
                        self.count(a.created);
                    }
                }
                Err(e) if e.kind() == ErrorKind::InvalidInput && !self.strict => {
                    for (location, turn) in chunk {
                        match self.engine.store(turn).await {
                            Ok(a) => self.count(a.created),
                            Err(e) if e.kind() == ErrorKind::InvalidInput => {
                                self.report.failures.push(Failure {
                                    location,
                                    reason: e.to_string(),
                                });
                                self.progress.inc(1);
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn count(&mut self, created: bool) {
        if created {
            self.report.stored += 1;
        } else {
            self.report.already_present += 1;
        }
        self.progress.inc(1);
    }
}

/// Lines in the file at `path` (a last line without a newline counts).
pub fn count_lines(path: &Path) -> Result<u64, CliError> {
    let what = || format!("cannot read {}", path.display());
    let mut file = File::open(path).map_err(CliError::io(what()))?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = file.read(&mut buf).map_err(CliError::io(what()))?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        last = buf[n - 1];
    }
    Ok(lines + u64::from(last != b'\n'))
}

/// `mnemo import`: imports `args.file` into the embedded store of `config`, with a
/// progress bar on standard error and the summary on standard output.
pub async fn run(config: Config, args: ImportArgs) -> Result<ImportReport, CliError> {
    let options = ImportOptions {
        format: args.format,
        tenant: args.tenant.clone(),
        strict: args.strict,
        batch: args.batch,
    };
    let stdin = args.file.as_os_str() == "-";
    // A LoCoMo import sets the bar's length (its turns) once it has parsed the file.
    let (input, total): (Box<dyn BufRead>, Option<u64>) = if stdin {
        let total = (args.format == Format::Locomo).then_some(0);
        (Box::new(std::io::stdin().lock()), total)
    } else {
        let file = File::open(&args.file)
            .map_err(CliError::io(format!("cannot open {}", args.file.display())))?;
        let total = match args.format {
            Format::Jsonl => count_lines(&args.file)?,
            Format::Locomo => 0,
        };
        (Box::new(BufReader::new(file)), Some(total))
    };
    with_engine(config, &args.store, async |engine| {
        let bar = progress::bar(total, "importing");
        let report = import(engine, input, &options, &bar).await;
        bar.finish_and_clear();
        let report = report?;
        if !args.no_wait {
            let spinner = progress::spinner("processing (emotion, index, summaries, graph)");
            let processed = engine.wait_processed().await;
            spinner.finish_and_clear();
            processed?;
        }
        let mut out = std::io::stdout().lock();
        report
            .write_summary(&mut out, args.show_failures)
            .map_err(CliError::io("cannot write the summary"))?;
        Ok(report)
    })
    .await
}
