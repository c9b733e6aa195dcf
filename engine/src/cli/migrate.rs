//! `mnemo migrate --from CONFIG --to CONFIG`: copies one store into another, between
//! any two backends (SQLite and PostgreSQL archives, the embedded graph and a Neo4j one).
//!
//! What is copied: every turn with its id, times, metadata, external id and emotion
//! annotations; the summaries with their ids; the users' emotion states; the graph,
//! rebuilt in the target's graph backend from the turns the source's graph sync had
//! handled (graph updates are a function of the turn, idempotent per turn); and the
//! processors' checkpoints, so the target's processors take over where the source's
//! stood. The target's full-text index is built from its archive at the end.
//!
//! Turns and summaries are copied in batches, each committed in the target together
//! with the migration's progress and the ids it wrote (tables `migrations` and
//! `migrated_ranges`): run again after an interruption, it resumes after the last
//! committed batch; `--rollback` removes exactly the rows it wrote and what was derived
//! from them in the target, and never opens the source. `--dry-run` reads and checks
//! everything and writes nothing. `--verify` compares the two stores user by user
//! (counts and content checksums of turns and summaries, emotion states, graph
//! entities) and the context answers of a sample of users, and prints an integrity
//! score.
//!
//! Both configurations are read as files; `MNEMO_FROM__...` environment variables
//! override keys of the source, and `MNEMO__...` then `MNEMO_TO__...` keys of the target
//! (the store the deployment runs on next), so a password never has to be written in a
//! file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mnemo_actors::context::assembler::ContextRequest;
use mnemo_actors::context::ranking::ItemKind;
use mnemo_actors::processors::graph_sync::{self, GraphSync};
use mnemo_actors::processors::Processor;
use mnemo_storage::archive::ArchiveStore;
use mnemo_storage::clock::SharedClock;
use mnemo_storage::graph::Recency;
use mnemo_storage::index::rebuild_from_archive;
use mnemo_storage::limits::InputLimits;
use mnemo_storage::model::{
    NewSummary, NewTurn, Scope, Summary, SummaryId, TimestampExt, Turn, TurnId,
};
use mnemo_storage::sql::postgres::is_postgres_url;
use mnemo_storage::sql::sqlite::sqlite_path;
use mnemo_storage::{archive_exists, open_archive, StorageConfig, Tiers};
use sha2::{Digest, Sha256};

use super::error::CliError;
use super::progress;
use crate::config::{Config, ENV_PREFIX};
use crate::engine::Engine;

/// Environment prefix of overrides of the source's configuration.
pub const FROM_ENV_PREFIX: &str = "MNEMO_FROM__";
/// Environment prefix of overrides of the target's configuration.
pub const TO_ENV_PREFIX: &str = "MNEMO_TO__";

/// Share of context items two answers to one query must have in common to match.
const CONTEXT_OVERLAP: f64 = 0.8;

/// Problems listed in a report before the rest are only counted.
const SHOWN_PROBLEMS: usize = 10;

/// Arguments of `mnemo migrate`.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Configuration of the store to copy from (never written).
    #[arg(long)]
    pub from: PathBuf,
    /// Configuration of the store to copy into.
    #[arg(long)]
    pub to: PathBuf,
    /// Only these users (ids, comma-separated; every tenant's user of that id).
    #[arg(long, value_delimiter = ',')]
    pub users: Vec<String>,
    /// Turns (and summaries) read and written per batch; each batch is one transaction.
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Read and check everything, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// After copying (or, with --dry-run, instead), compare source and target and print
    /// an integrity score; fails below 100%.
    #[arg(long)]
    pub verify: bool,
    /// Remove from the target exactly what this migration (same --from and --users)
    /// wrote.
    #[arg(long, conflicts_with_all = ["dry_run", "verify"])]
    pub rollback: bool,
}

/// Which users a migration copies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter(Option<BTreeSet<String>>);

impl UserFilter {
    /// Every user, or only those ids (`ids` empty: every user).
    pub fn new(ids: &[String]) -> Self {
        let ids: BTreeSet<String> = ids
            .iter()
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .collect();
        Self((!ids.is_empty()).then_some(ids))
    }

    /// Whether the user's data is copied.
    pub fn keeps(&self, scope: &Scope) -> bool {
        self.0
            .as_ref()
            .is_none_or(|ids| ids.contains(scope.user.as_str()))
    }

    fn describe(&self) -> String {
        match &self.0 {
            None => String::new(),
            Some(ids) => format!(
                " users={}",
                ids.iter().cloned().collect::<Vec<_>>().join(",")
            ),
        }
    }
}

/// How a migration runs.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Which users.
    pub users: UserFilter,
    /// Rows per batch.
    pub batch: usize,
    /// Stop after this many batches of turns, as an interruption would (for tests of
    /// resuming).
    pub stop_after_batches: Option<u64>,
    /// Users whose context answers `verify` compares.
    pub verify_samples: usize,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        Self {
            users: UserFilter::default(),
            batch: 1_000,
            stop_after_batches: None,
            verify_samples: 20,
        }
    }
}

/// Reads the source's and the target's configuration files, each with its own
/// environment overrides (`MNEMO_FROM__...`, `MNEMO_TO__...`).
pub fn load_configs(
    from: &Path,
    to: &Path,
    env: &[(String, String)],
) -> Result<(Config, Config), CliError> {
    let prefixed = |prefix: &'static str| {
        env.iter().filter_map(move |(name, value)| {
            name.strip_prefix(prefix)
                .map(|rest| (format!("{ENV_PREFIX}{rest}"), value.clone()))
        })
    };
    let source = Config::load(Some(from), prefixed(FROM_ENV_PREFIX))
        .map_err(|e| CliError::Engine(e.into()))?;
    // The target is the store the deployment runs on next: its usual `MNEMO__...`
    // overrides apply to it (never to the source), then `MNEMO_TO__...`.
    let plain = env
        .iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .cloned();
    let target = Config::load(Some(to), plain.chain(prefixed(TO_ENV_PREFIX)))
        .map_err(|e| CliError::Engine(e.into()))?;
    Ok((source, target))
}

/// Where an archive lives, with no password: what names a migration's source.
pub fn archive_location(storage: &StorageConfig) -> Result<String, CliError> {
    let url = &storage.archive.url;
    if is_postgres_url(url) {
        let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
        let rest = match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{user}@{host}")
            }
            None => rest.to_owned(),
        };
        let rest = rest.split('?').next().unwrap_or_default();
        return Ok(format!("{scheme}://{rest}"));
    }
    let path = sqlite_path(url, &storage.data_dir)?;
    let path = std::path::absolute(&path).unwrap_or(path);
    Ok(format!("sqlite:{}", path.display()))
}

/// The name a migration is recorded under in the target: its source and user filter.
pub fn migration_name(source: &StorageConfig, users: &UserFilter) -> Result<String, CliError> {
    Ok(format!("{}{}", archive_location(source)?, users.describe()))
}

/// Refuses a source and target that are one store, or share a data directory.
fn refuse_same(source: &StorageConfig, target: &StorageConfig) -> Result<(), CliError> {
    if archive_location(source)? == archive_location(target)? {
        return Err(CliError::Migrate(format!(
            "--from and --to name the same archive ({}): nothing to migrate",
            archive_location(source)?
        )));
    }
    let dir = |s: &StorageConfig| std::path::absolute(&s.data_dir).unwrap_or(s.data_dir.clone());
    if dir(source) == dir(target) {
        return Err(CliError::Migrate(format!(
            "--from and --to use the same data directory {} (it holds each store's \
             full-text index): give the target its own storage.data_dir",
            dir(target).display()
        )));
    }
    Ok(())
}

/// The turn as submitted, to check it against the target's input limits.
fn check_turn(turn: &Turn, limits: &InputLimits) -> Result<(), String> {
    let new = NewTurn {
        scope: turn.scope.clone(),
        session_id: turn.session_id.clone(),
        role: turn.role,
        speaker: turn.speaker.clone(),
        content: turn.content.clone(),
        event_time: Some(turn.event_time),
        metadata: turn.metadata.clone(),
        external_id: Some(turn.external_id.clone()),
    };
    new.validate(limits)
        .map_err(|e| format!("turn {} of user {}: {e}", turn.id.0, turn.scope.user))
}

fn check_summary(summary: &Summary, limits: &InputLimits) -> Result<(), String> {
    let new = NewSummary {
        scope: summary.scope.clone(),
        session_id: summary.session_id.clone(),
        first_turn: summary.first_turn,
        last_turn: summary.last_turn,
        text: summary.text.clone(),
        keywords: summary.keywords.clone(),
        start_time: summary.start_time,
        end_time: summary.end_time,
    };
    new.validate(limits).map_err(|e| {
        format!(
            "summary {} of user {}: {e}",
            summary.id.0, summary.scope.user
        )
    })
}

/// The next page of `archive`'s turns after `after`: the id it ends at, and those of its
/// turns whose user `keep` selects. `None` when nothing is stored after `after`.
async fn turn_page(
    archive: &dyn ArchiveStore,
    after: TurnId,
    batch: usize,
    keep: impl Fn(&Scope) -> bool,
) -> Result<Option<(TurnId, Vec<Turn>)>, CliError> {
    let page = archive.turns_after(after, batch).await?;
    let Some(last) = page.last().map(|t| t.id) else {
        return Ok(None);
    };
    Ok(Some((
        last,
        page.into_iter().filter(|t| keep(&t.scope)).collect(),
    )))
}

/// As [`turn_page`], for summaries.
async fn summary_page(
    archive: &dyn ArchiveStore,
    after: SummaryId,
    batch: usize,
    keep: impl Fn(&Scope) -> bool,
) -> Result<Option<(SummaryId, Vec<Summary>)>, CliError> {
    let page = archive.summaries_after(after, batch).await?;
    let Some(last) = page.last().map(|s| s.id) else {
        return Ok(None);
    };
    Ok(Some((
        last,
        page.into_iter().filter(|s| keep(&s.scope)).collect(),
    )))
}

/// What a migration did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigrateReport {
    /// The name it is recorded under in the target.
    pub name: String,
    /// Turns written by this run (a resumed run does not count earlier batches).
    pub turns: u64,
    /// Summaries written by this run.
    pub summaries: u64,
    /// Users whose emotion state was written.
    pub emotion_states: u64,
    /// Turns whose graph updates were applied to the target's graph.
    pub graph_turns: u64,
    /// Turns indexed in the target's full-text index.
    pub indexed: u64,
    /// Turns written per second.
    pub turns_per_sec: f64,
    /// False when it stopped early (`stop_after_batches`): run it again to go on.
    pub finished: bool,
}

/// Copies the source store into the target (see the module docs); resumes a migration
/// of the same name that was interrupted.
pub async fn migrate(
    source: &StorageConfig,
    target: &StorageConfig,
    options: &MigrateOptions,
    clock: SharedClock,
) -> Result<MigrateReport, CliError> {
    refuse_same(source, target)?;
    let name = migration_name(source, &options.users)?;
    let from = open_archive(source, clock.clone()).await?;
    let to = match Tiers::open(target, clock.clone()).await {
        Ok(tiers) => tiers,
        Err(e) => {
            from.close().await;
            return Err(e.into());
        }
    };
    let copied = copy(&*from, &to, target, name, options, clock).await;
    let closed = to.close().await;
    from.close().await;
    let report = copied?;
    closed?;
    Ok(report)
}

async fn copy(
    from: &dyn ArchiveStore,
    to: &Tiers,
    target: &StorageConfig,
    name: String,
    options: &MigrateOptions,
    clock: SharedClock,
) -> Result<MigrateReport, CliError> {
    let batch = options.batch.max(1);
    let record = to.archive.begin_migration(&name, clock.now()).await?;
    let head = from.head().await?;
    let checkpoints = from.checkpoints().await?;
    let mut report = MigrateReport {
        name: name.clone(),
        ..MigrateReport::default()
    };
    if record.copied_turns.0 > 0 {
        tracing::info!(migration = %name, after = record.copied_turns.0, "resuming a migration");
    }
    let started = Instant::now();

    // Turns, up to the source's head as of the start.
    let bar = progress::bar(Some(u64::try_from(head.0).unwrap_or(0)), "copying turns");
    bar.set_position(u64::try_from(record.copied_turns.0).unwrap_or(0));
    let mut after = record.copied_turns;
    let mut batches = 0u64;
    while after < head {
        let Some((last, kept)) = turn_page(from, after, batch, |s| options.users.keeps(s)).await?
        else {
            break;
        };
        for turn in &kept {
            check_turn(turn, &target.limits).map_err(|e| {
                CliError::Migrate(format!(
                    "the target refuses {e}; nothing after turn {} was copied",
                    after.0
                ))
            })?;
        }
        report.turns += to.archive.copy_turns(&name, &kept, last).await?;
        after = last;
        bar.set_position(u64::try_from(after.0).unwrap_or(0));
        batches += 1;
        if options.stop_after_batches == Some(batches) {
            bar.finish_and_clear();
            return Ok(report);
        }
    }
    bar.finish_and_clear();
    report.turns_per_sec = report.turns as f64 / started.elapsed().as_secs_f64().max(1e-9);

    // Summaries.
    let bar = progress::bar(None, "copying summaries");
    let mut after = record.copied_summaries;
    loop {
        let Some((last, kept)) =
            summary_page(from, after, batch, |s| options.users.keeps(s)).await?
        else {
            break;
        };
        for summary in &kept {
            check_summary(summary, &target.limits)
                .map_err(|e| CliError::Migrate(format!("the target refuses {e}")))?;
        }
        report.summaries += to.archive.copy_summaries(&name, &kept, last).await?;
        after = last;
        bar.inc(kept.len() as u64);
    }
    bar.finish_and_clear();

    // Emotion states of every user the migration wrote turns of (in this run or before).
    let users: Vec<Scope> = to
        .archive
        .migrated_users(&name)
        .await?
        .into_iter()
        .map(|u| u.scope)
        .collect();
    for chunk in users.chunks(batch) {
        let states: Vec<_> = from.emotion_states(chunk).await?.into_iter().collect();
        report.emotion_states += states.len() as u64;
        to.archive.put_emotion_states(&states).await?;
    }

    // The graph, from the turns the source's graph sync had handled; the target's graph
    // sync takes the rest from its checkpoint.
    if target.graph.enabled {
        let graph_upto = checkpoints
            .get(graph_sync::NAME)
            .copied()
            .unwrap_or_default()
            .min(head);
        let bar = progress::bar(Some(u64::try_from(graph_upto.0).unwrap_or(0)), "graph");
        let mut after = record.graph_done;
        while after < graph_upto {
            let Some((last, mut kept)) =
                turn_page(from, after, batch, |s| options.users.keeps(s)).await?
            else {
                break;
            };
            let last = last.min(graph_upto);
            kept.retain(|t| t.id <= graph_upto);
            // Exactly what the graph sync processor derives from them.
            let updates = GraphSync.analyze(&kept);
            if !updates.is_empty() {
                to.graph.apply(&updates).await?;
            }
            report.graph_turns += kept.len() as u64;
            to.archive.set_migration_graph_done(&name, last).await?;
            after = last;
            bar.set_position(u64::try_from(after.0).unwrap_or(0));
        }
        bar.finish_and_clear();
    }

    to.archive
        .finish_migration(&name, head, SummaryId(0), &checkpoints, clock.now())
        .await?;

    report.finished = true;
    if report.turns == 0 && report.summaries == 0 && record.finished.is_some() {
        // Nothing new since a finished run: the index built then holds it all.
        return Ok(report);
    }
    // The target's index, from its archive (a node indexes nothing it did not see come
    // through its outbox otherwise).
    let stats = to.archive.stats().await?;
    let bar = progress::bar(Some(stats.turns + stats.summaries), "indexing");
    let indexed = rebuild_from_archive(&*to.archive, &*to.index, batch, |r| {
        bar.set_position(r.turns + r.summaries);
    })
    .await?;
    bar.finish_and_clear();
    report.indexed = indexed.turns;
    tracing::info!(
        migration = %name,
        turns = report.turns,
        summaries = report.summaries,
        "migration finished"
    );
    Ok(report)
}

/// What a dry run found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DryRunReport {
    /// The name the migration would be recorded under.
    pub name: String,
    /// Turns that would be copied.
    pub turns: u64,
    /// Users they belong to.
    pub users: u64,
    /// Summaries that would be copied.
    pub summaries: u64,
    /// Emotion states that would be copied.
    pub emotion_states: u64,
    /// Turns already copied by an earlier run of the same migration.
    pub already_copied: TurnId,
    /// Why the copy would fail: invalid rows, conflicts with the target.
    pub problems: Vec<String>,
}

/// Reads everything a migration would copy, checks each row against the target's limits
/// and contents, and writes nothing (an absent target archive is not created).
pub async fn dry_run(
    source: &StorageConfig,
    target: &StorageConfig,
    options: &MigrateOptions,
    clock: SharedClock,
) -> Result<DryRunReport, CliError> {
    refuse_same(source, target)?;
    let name = migration_name(source, &options.users)?;
    let from = open_archive(source, clock.clone()).await?;
    let to = if archive_exists(target).await? {
        match open_archive(target, clock).await {
            Ok(to) => Some(to),
            Err(e) => {
                from.close().await;
                return Err(e.into());
            }
        }
    } else {
        None
    };
    let checked = check_all(&*from, to.as_deref(), target, name, options).await;
    if let Some(to) = &to {
        to.close().await;
    }
    from.close().await;
    checked
}

async fn check_all(
    from: &dyn ArchiveStore,
    to: Option<&dyn ArchiveStore>,
    target: &StorageConfig,
    name: String,
    options: &MigrateOptions,
) -> Result<DryRunReport, CliError> {
    let batch = options.batch.max(1);
    let record = match to {
        Some(to) => to.migration(&name).await?,
        None => None,
    };
    let mut report = DryRunReport {
        name: name.clone(),
        already_copied: record.as_ref().map(|r| r.copied_turns).unwrap_or_default(),
        ..DryRunReport::default()
    };
    let mut users: BTreeSet<Scope> = BTreeSet::new();
    let head = from.head().await?;
    let bar = progress::bar(Some(u64::try_from(head.0).unwrap_or(0)), "checking turns");
    let mut after = report.already_copied;
    while after < head {
        let Some((last, kept)) = turn_page(from, after, batch, |s| options.users.keeps(s)).await?
        else {
            break;
        };
        for turn in &kept {
            if let Err(problem) = check_turn(turn, &target.limits) {
                report.problems.push(problem);
            }
            users.insert(turn.scope.clone());
        }
        if let Some(to) = to {
            report
                .problems
                .extend(to.copy_conflicts(&name, &kept, &[]).await?);
        }
        report.turns += kept.len() as u64;
        after = last;
        bar.set_position(u64::try_from(after.0).unwrap_or(0));
    }
    bar.finish_and_clear();
    let mut after = record.map(|r| r.copied_summaries).unwrap_or_default();
    loop {
        let Some((last, kept)) =
            summary_page(from, after, batch, |s| options.users.keeps(s)).await?
        else {
            break;
        };
        for summary in &kept {
            if let Err(problem) = check_summary(summary, &target.limits) {
                report.problems.push(problem);
            }
        }
        if let Some(to) = to {
            report
                .problems
                .extend(to.copy_conflicts(&name, &[], &kept).await?);
        }
        report.summaries += kept.len() as u64;
        after = last;
    }
    let users: Vec<Scope> = users.into_iter().collect();
    report.users = users.len() as u64;
    for chunk in users.chunks(batch) {
        report.emotion_states += from.emotion_states(chunk).await?.len() as u64;
    }
    Ok(report)
}

/// What a rollback removed from the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackOutcome {
    /// The migration rolled back.
    pub name: String,
    /// Turns removed.
    pub turns: u64,
    /// Summaries removed.
    pub summaries: u64,
    /// Users of whom nothing is left in the target.
    pub emptied_users: u64,
}

/// Removes from the target exactly what the migration from `source` (with `users`)
/// wrote, and what the target derived from it (graph, recent tier, index). Opens only
/// the target.
pub async fn rollback(
    source: &StorageConfig,
    target: &StorageConfig,
    options: &MigrateOptions,
    clock: SharedClock,
) -> Result<RollbackOutcome, CliError> {
    refuse_same(source, target)?;
    let name = migration_name(source, &options.users)?;
    let to = Tiers::open(target, clock).await?;
    let done = undo(&to, target, &name, options.batch.max(1)).await;
    let closed = to.close().await;
    let outcome = done?;
    closed?;
    Ok(outcome)
}

async fn undo(
    to: &Tiers,
    target: &StorageConfig,
    name: &str,
    batch: usize,
) -> Result<RollbackOutcome, CliError> {
    if to.archive.migration(name).await?.is_none() {
        return Err(CliError::Migrate(format!(
            "the target holds no migration {name:?} (a migration is named after --from \
             and --users): nothing to roll back"
        )));
    }
    // The derived tiers first, while the archive still says what the migration wrote: a
    // rollback interrupted here is simply run again.
    let users = to.archive.migrated_users(name).await?;
    let mut partly: BTreeSet<Scope> = BTreeSet::new();
    for user in &users {
        if user.migrated == user.total {
            if target.graph.enabled {
                to.graph.forget_user(&user.scope).await?;
            }
            to.recent.forget_user(&user.scope).await?;
        } else {
            partly.insert(user.scope.clone());
        }
    }
    if !partly.is_empty() {
        let mut after = TurnId(0);
        loop {
            let page = to.archive.migrated_turns(name, after, batch).await?;
            let Some(last) = page.last().map(|(_, id)| *id) else {
                break;
            };
            for (scope, id) in page.iter().filter(|(s, _)| partly.contains(s)) {
                if target.graph.enabled {
                    to.graph.forget_turn(scope, *id).await?;
                }
                to.recent.forget_turn(scope, *id).await?;
            }
            after = last;
        }
    }
    let removed = to.archive.rollback_migration(name).await?;
    let bar = progress::bar(None, "indexing");
    rebuild_from_archive(&*to.archive, &*to.index, batch, |r| {
        bar.set_position(r.turns + r.summaries);
    })
    .await?;
    bar.finish_and_clear();
    tracing::info!(migration = %name, turns = removed.turns, "migration rolled back");
    Ok(RollbackOutcome {
        name: name.to_owned(),
        turns: removed.turns,
        summaries: removed.summaries,
        emptied_users: removed.emptied_users,
    })
}

/// What `verify` compared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyReport {
    /// Users compared.
    pub users: u64,
    /// Checks made (per user: turns, summaries, emotion state, graph; and each sampled
    /// context answer).
    pub checks: u64,
    /// Checks that found the target as the source.
    pub passed: u64,
    /// What differed.
    pub mismatches: Vec<String>,
}

impl VerifyReport {
    /// Passed checks in percent (100 when there was nothing to check).
    pub fn score(&self) -> f64 {
        if self.checks == 0 {
            100.0
        } else {
            self.passed as f64 * 100.0 / self.checks as f64
        }
    }

    fn check(&mut self, ok: bool, mismatch: impl FnOnce() -> String) {
        self.checks += 1;
        if ok {
            self.passed += 1;
        } else {
            self.mismatches.push(mismatch());
        }
    }
}

/// A user's rows, digested.
#[derive(Debug, Clone, Default)]
struct UserDigest {
    turns: u64,
    turn_hash: Sha256,
    summaries: u64,
    summary_hash: Sha256,
    /// The words of the user's last turn: a query for the context sample.
    last_words: String,
}

fn field(hash: &mut Sha256, value: &[u8]) {
    hash.update((value.len() as u64).to_le_bytes());
    hash.update(value);
}

fn digest_turn(hash: &mut Sha256, turn: &Turn) {
    field(hash, &turn.id.0.to_le_bytes());
    field(hash, turn.external_id.as_str().as_bytes());
    field(hash, turn.session_id.as_str().as_bytes());
    field(hash, turn.role.as_str().as_bytes());
    field(hash, turn.speaker.as_deref().unwrap_or("\u{0}").as_bytes());
    field(hash, turn.content.as_bytes());
    field(hash, &turn.event_time.to_micros().to_le_bytes());
    field(hash, &turn.ingest_time.to_micros().to_le_bytes());
    field(hash, turn.metadata.to_string().as_bytes());
}

fn digest_summary(hash: &mut Sha256, summary: &Summary) {
    field(hash, &summary.id.0.to_le_bytes());
    field(hash, summary.session_id.as_str().as_bytes());
    field(hash, &summary.first_turn.0.to_le_bytes());
    field(hash, &summary.last_turn.0.to_le_bytes());
    field(hash, summary.text.as_bytes());
    field(hash, summary.keywords.join("\u{0}").as_bytes());
}

/// Digests of the users `keep` selects, from every turn and summary of `archive`.
async fn digests(
    archive: &dyn ArchiveStore,
    keep: impl Fn(&Scope) -> bool,
    batch: usize,
) -> Result<BTreeMap<Scope, UserDigest>, CliError> {
    let mut users: BTreeMap<Scope, UserDigest> = BTreeMap::new();
    let mut after = TurnId(0);
    loop {
        let Some((last, page)) = turn_page(archive, after, batch, &keep).await? else {
            break;
        };
        for turn in &page {
            let user = users.entry(turn.scope.clone()).or_default();
            user.turns += 1;
            digest_turn(&mut user.turn_hash, turn);
            user.last_words = turn
                .content
                .split_whitespace()
                .take(8)
                .collect::<Vec<_>>()
                .join(" ");
        }
        after = last;
    }
    let mut after = SummaryId(0);
    loop {
        let Some((last, page)) = summary_page(archive, after, batch, &keep).await? else {
            break;
        };
        for summary in &page {
            let user = users.entry(summary.scope.clone()).or_default();
            user.summaries += 1;
            digest_summary(&mut user.summary_hash, summary);
        }
        after = last;
    }
    Ok(users)
}

/// Compares the source and the target as they are, user by user (opening their stores),
/// then the context answers of up to `options.verify_samples` users (starting an engine
/// on each store with its processors off, so neither store changes meanwhile).
pub async fn verify(
    source: &Config,
    target: &Config,
    options: &MigrateOptions,
    clock: SharedClock,
) -> Result<VerifyReport, CliError> {
    refuse_same(&source.storage, &target.storage)?;
    let from = Tiers::open(&source.storage, clock.clone()).await?;
    let to = match Tiers::open(&target.storage, clock).await {
        Ok(tiers) => tiers,
        Err(e) => {
            let _ = from.close().await;
            return Err(e.into());
        }
    };
    let compared = compare_stores(&from, &to, source, target, options).await;
    let closed_to = to.close().await;
    let closed_from = from.close().await;
    let (mut report, samples) = compared?;
    closed_to?;
    closed_from?;

    let quiet = |config: &Config| {
        let mut config = config.clone();
        let processors = &mut config.actors.processors;
        processors.emotion.enabled = false;
        processors.indexer.enabled = false;
        processors.summarizer.enabled = false;
        processors.graph_sync.enabled = false;
        config
    };
    let from = Engine::start(quiet(source)).await?;
    let to = match Engine::start(quiet(target)).await {
        Ok(engine) => engine,
        Err(e) => {
            let _ = from.shutdown().await;
            return Err(e.into());
        }
    };
    let compared = compare_answers(&from, &to, &samples, &mut report).await;
    let closed_to = to.shutdown().await;
    let closed_from = from.shutdown().await;
    compared?;
    closed_to?;
    closed_from?;
    Ok(report)
}

/// Compares the stores user by user; answers the report and the (user, query) pairs of
/// the context sample.
async fn compare_stores(
    from: &Tiers,
    to: &Tiers,
    source: &Config,
    target: &Config,
    options: &MigrateOptions,
) -> Result<(VerifyReport, Vec<(Scope, String)>), CliError> {
    let batch = options.batch.max(1);
    let keep = |s: &Scope| options.users.keeps(s);
    let source_users = digests(&*from.archive, keep, batch).await?;
    let target_users = digests(&*to.archive, |s| source_users.contains_key(s), batch).await?;
    let mut report = VerifyReport {
        users: source_users.len() as u64,
        ..VerifyReport::default()
    };
    let empty = UserDigest::default();
    let scopes: Vec<Scope> = source_users.keys().cloned().collect();
    let mut from_states = BTreeMap::new();
    let mut to_states = BTreeMap::new();
    for chunk in scopes.chunks(batch) {
        from_states.extend(from.archive.emotion_states(chunk).await?);
        to_states.extend(to.archive.emotion_states(chunk).await?);
    }
    let graphs = source.storage.graph.enabled && target.storage.graph.enabled;
    // Entities ranked as of one instant, so both sides decay alike.
    let recency = Recency {
        now: chrono::Utc::now(),
        half_life: Duration::from_secs(30 * 24 * 3600),
    };
    for (scope, mine) in &source_users {
        let theirs = target_users.get(scope).unwrap_or(&empty);
        let who = format!("user {} of tenant {}", scope.user, scope.tenant);
        report.check(
            mine.turns == theirs.turns
                && mine.turn_hash.clone().finalize() == theirs.turn_hash.clone().finalize(),
            || {
                format!(
                    "{who}: turns differ ({} in the source, {} in the target{})",
                    mine.turns,
                    theirs.turns,
                    if mine.turns == theirs.turns {
                        ", with other content"
                    } else {
                        ""
                    }
                )
            },
        );
        report.check(
            mine.summaries == theirs.summaries
                && mine.summary_hash.clone().finalize() == theirs.summary_hash.clone().finalize(),
            || {
                format!(
                    "{who}: summaries differ ({} in the source, {} in the target)",
                    mine.summaries, theirs.summaries
                )
            },
        );
        report.check(from_states.get(scope) == to_states.get(scope), || {
            format!("{who}: emotion states differ")
        });
        if graphs {
            let entities = |list: Vec<mnemo_storage::graph::RankedEntity>| {
                list.into_iter()
                    .map(|r| (r.entity.kind, r.entity.name, r.mentions))
                    .collect::<BTreeSet<_>>()
            };
            let a = entities(from.graph.user_entities(scope, recency, 10_000).await?);
            let b = entities(to.graph.user_entities(scope, recency, 10_000).await?);
            report.check(a == b, || {
                format!(
                    "{who}: graph entities differ ({} in the source, {} in the target)",
                    a.len(),
                    b.len()
                )
            });
        }
    }
    // Users spread over the list, each asked about their last turn.
    let count = options.verify_samples.min(scopes.len());
    let samples = (0..count)
        .map(|i| {
            let scope = scopes[i * scopes.len() / count].clone();
            let query = source_users[&scope].last_words.clone();
            (scope, query)
        })
        .collect();
    Ok((report, samples))
}

/// Asks both engines for the context of each sampled user and query.
async fn compare_answers(
    from: &Engine,
    to: &Engine,
    samples: &[(Scope, String)],
    report: &mut VerifyReport,
) -> Result<(), CliError> {
    for (scope, query) in samples {
        let request = || ContextRequest {
            scope: scope.clone(),
            session: None,
            query: query.clone(),
            max_recent: None,
            max_items: None,
            token_budget: None,
            deadline: Some(Duration::from_secs(10)),
        };
        let a = from.context(request()).await?;
        let b = to.context(request()).await?;
        let shape = |answer: &mnemo_actors::context::assembler::ContextAnswer| {
            // Entity ids are the graph backend's own: entities compare by text.
            let items: BTreeSet<String> = answer
                .items
                .iter()
                .map(|item| match item.kind {
                    ItemKind::Entity => format!("entity {}", item.text),
                    ItemKind::Turn => format!("turn {}", item.id),
                    ItemKind::Summary => format!("summary {}", item.id),
                })
                .collect();
            let recent: Vec<i64> = answer.recent.iter().map(|t| t.id.0).collect();
            let mut scores: Vec<i64> = answer
                .items
                .iter()
                .map(|item| (item.score * 1_000.0).round() as i64)
                .collect();
            scores.sort_unstable();
            (items, recent, answer.degraded.clone(), scores)
        };
        let (a, b) = (shape(&a), shape(&b));
        // Items equally relevant to the query may be cut at the end of the list in
        // another order by another index's segments: the lists must overlap, or hold
        // items of the same scores (ties cut elsewhere).
        let shared = a.0.intersection(&b.0).count();
        let overlap = if a.0.is_empty() && b.0.is_empty() {
            1.0
        } else {
            shared as f64 / a.0.len().max(b.0.len()) as f64
        };
        let degraded: Vec<&String> = a.2.iter().chain(&b.2).collect();
        report.check(
            a.1 == b.1 && (overlap >= CONTEXT_OVERLAP || a.3 == b.3) && degraded.is_empty(),
            || {
                format!(
                    "user {} of tenant {}: the context answers for {query:?} differ (recent \
                     turns {}, {:.0}% of the items shared{})",
                    scope.user,
                    scope.tenant,
                    if a.1 == b.1 { "equal" } else { "differ" },
                    overlap * 100.0,
                    if degraded.is_empty() {
                        String::new()
                    } else {
                        format!(", degraded: {degraded:?}")
                    }
                )
            },
        );
    }
    Ok(())
}

fn problems_text(problems: &[String]) -> String {
    let mut text = problems
        .iter()
        .take(SHOWN_PROBLEMS)
        .map(|p| format!("  {p}\n"))
        .collect::<String>();
    if problems.len() > SHOWN_PROBLEMS {
        text.push_str(&format!("  and {} more\n", problems.len() - SHOWN_PROBLEMS));
    }
    text
}

/// `mnemo migrate`: the command as the binary runs it, reporting on standard error.
pub async fn run(
    args: MigrateArgs,
    env: &[(String, String)],
    clock: SharedClock,
) -> Result<(), CliError> {
    let (source, target) = load_configs(&args.from, &args.to, env)?;
    let options = MigrateOptions {
        users: UserFilter::new(&args.users),
        batch: args.batch,
        ..MigrateOptions::default()
    };
    if args.rollback {
        let outcome = rollback(&source.storage, &target.storage, &options, clock).await?;
        eprintln!(
            "rolled back {:?}: removed {} turns and {} summaries from the target ({} users \
             left with nothing)",
            outcome.name, outcome.turns, outcome.summaries, outcome.emptied_users
        );
        return Ok(());
    }
    if args.dry_run {
        let report = dry_run(&source.storage, &target.storage, &options, clock.clone()).await?;
        eprintln!(
            "dry run of {:?}: would copy {} turns of {} users, {} summaries and {} emotion \
             states{}; nothing was written",
            report.name,
            report.turns,
            report.users,
            report.summaries,
            report.emotion_states,
            if report.already_copied.0 > 0 {
                format!(
                    " (turns up to {} were copied by an earlier run)",
                    report.already_copied.0
                )
            } else {
                String::new()
            }
        );
        if !report.problems.is_empty() {
            return Err(CliError::Migrate(format!(
                "the migration would fail, {} problem(s):\n{}",
                report.problems.len(),
                problems_text(&report.problems)
            )));
        }
    } else {
        let started = Instant::now();
        let report = migrate(&source.storage, &target.storage, &options, clock.clone()).await?;
        eprintln!(
            "migrated {:?}: {} turns ({:.0} turns/s), {} summaries, {} emotion states, graph \
             from {} turns, {} turns indexed, in {:.1} s",
            report.name,
            report.turns,
            report.turns_per_sec,
            report.summaries,
            report.emotion_states,
            report.graph_turns,
            report.indexed,
            started.elapsed().as_secs_f64()
        );
    }
    if args.verify {
        let report = verify(&source, &target, &options, clock).await?;
        eprintln!(
            "integrity {:.1}% ({} of {} checks over {} users)",
            report.score(),
            report.passed,
            report.checks,
            report.users
        );
        if !report.mismatches.is_empty() {
            return Err(CliError::Migrate(format!(
                "the target differs from the source:\n{}",
                problems_text(&report.mismatches)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn each_side_takes_its_own_environment_overrides() {
        let dir = tempfile::TempDir::new().expect("dir");
        let from = dir.path().join("from.toml");
        let to = dir.path().join("to.toml");
        std::fs::write(&from, "[storage]\ndata_dir = \"a\"\n").expect("written");
        std::fs::write(&to, "[storage]\ndata_dir = \"b\"\n").expect("written");
        let (source, target) = load_configs(
            &from,
            &to,
            &env(&[
                ("MNEMO__STORAGE__ARCHIVE__URL", "postgres://u@h/plain"),
                ("MNEMO_FROM__STORAGE__NODE", "old"),
                ("MNEMO_TO__STORAGE__NODE", "new"),
            ]),
        )
        .expect("loaded");
        assert_eq!(source.storage.archive.url, "sqlite:archive.db");
        assert_eq!(source.storage.node, "old");
        assert_eq!(target.storage.archive.url, "postgres://u@h/plain");
        assert_eq!(target.storage.node, "new");
        let (_, target) = load_configs(
            &from,
            &to,
            &env(&[
                ("MNEMO__STORAGE__ARCHIVE__URL", "postgres://u@h/plain"),
                ("MNEMO_TO__STORAGE__ARCHIVE__URL", "postgres://u@h/to"),
            ]),
        )
        .expect("loaded");
        assert_eq!(target.storage.archive.url, "postgres://u@h/to");
    }

    #[test]
    fn a_migration_is_named_after_its_source_without_the_password() {
        let mut storage = StorageConfig::default();
        storage.archive.url = "postgres://mnemo:secret@db:5432/mnemo?sslmode=require".into();
        let name = migration_name(&storage, &UserFilter::new(&["bob".into(), "al".into()]))
            .expect("named");
        assert_eq!(name, "postgres://mnemo@db:5432/mnemo users=al,bob");
        assert!(UserFilter::new(&[]).keeps(&Scope::parse("t", "x").expect("scope")));
    }
}
