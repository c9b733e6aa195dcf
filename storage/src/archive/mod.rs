//! The archive tier: every turn, summary, processor checkpoint and emotion state. The
//! source of truth: a turn is acknowledged only once the archive holds it durably, and
//! every other tier can be rebuilt from it.
//!
//! Backends: [`sql::SqliteArchive`] (embedded, SQLite in WAL mode through sqlx) and
//! [`sql::PostgresArchive`] (server, PostgreSQL through sqlx), one implementation over
//! the SQL core ([`crate::sql`]); the scheme of `storage.archive.url` picks one.

pub mod batch;
pub mod migration;
mod migration_sql;
pub mod sql;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{
    EmotionState, ExternalId, Forget, NewSummary, NewTurn, Scope, ScoredTurn, SessionId, Summary,
    SummaryId, Timestamp, Turn, TurnAnnotation, TurnId,
};

/// How hard the database works to make a commit durable (SQLite `synchronous`;
/// PostgreSQL `synchronous_commit`, off for `Normal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// fsync on every commit: an acknowledged turn survives power loss.
    #[default]
    Full,
    /// fsync at checkpoints only: survives a crash of Mnemo, not of the machine.
    Normal,
}

/// Settings of the archive tier. Section `[storage.archive]` of `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// Where the archive lives: `sqlite:PATH`, a relative PATH being resolved against
    /// `storage.data_dir`, or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`.
    pub url: String,
    /// Commit durability (SQLite `synchronous`, PostgreSQL `synchronous_commit`).
    pub durability: Durability,
    /// SQLite: connections used for reads, each on a thread of its own (read-only
    /// transactions open up to as many more; writes use one connection of their own).
    pub read_connections: u32,
    /// SQLite: how long a statement waits on a locked database before failing, in
    /// milliseconds.
    pub busy_timeout_ms: u64,
    /// SQLite: the page cache of the write connection, in MiB (readers keep SQLite's
    /// default of about 2). Index pages beyond it are read from the OS again on every
    /// insert and processor write, which dominates ingest as the archive grows.
    pub cache_mib: u32,
    /// How long a caller waits for a free connection before failing, in milliseconds.
    pub acquire_timeout_ms: u64,
    /// PostgreSQL: most connections, reads and writes together; from 4 up a quarter (at
    /// least 2) is a pool of its own for writes.
    pub max_connections: u32,
    /// PostgreSQL: longest a statement may run before the server cancels it, in
    /// milliseconds (0: no limit).
    pub statement_timeout_ms: u64,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        Self {
            url: "sqlite:archive.db".into(),
            durability: Durability::Full,
            read_connections: 4,
            busy_timeout_ms: 5_000,
            cache_mib: 32,
            acquire_timeout_ms: 5_000,
            max_connections: 10,
            statement_timeout_ms: 30_000,
        }
    }
}

/// One submitted turn after `append_batch`.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    /// The stored turn (for a repeated external id, the one stored first).
    pub turn: Turn,
    /// False when the external id was already stored and nothing new was written.
    pub created: bool,
}

/// What a forget removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ForgetReport {
    /// Turns removed.
    pub turns: u64,
    /// Summaries removed.
    pub summaries: u64,
    /// The forget's place in the outbox, when one was recorded (the archive's new head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<TurnId>,
}

/// A page of a session's history, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPage {
    /// Only turns older than this one (for the next page, the last id of the previous).
    pub before: Option<TurnId>,
    /// Most turns to return.
    pub limit: usize,
}

/// A page of the outbox, and the head as of the same read.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxPage {
    /// Turns after the asked id, in id order.
    pub turns: Vec<Turn>,
    /// Forgets recorded after the asked id, in order, up to the last turn of a full page
    /// (else up to the head): a reader applies each one after the turns below it and
    /// before those above.
    pub forgets: Vec<Forget>,
    /// The highest id assigned as of this read. When `turns` is empty, everything up to
    /// it has been read: ids in between were never stored (a repeated external id) or
    /// are forgotten, and a reader may move its checkpoint to it.
    pub head: TurnId,
}

/// A session whose recent-tier cache missed a write: until a refill clears it, the session
/// is read from the archive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecentGap {
    /// Whose session.
    pub scope: Scope,
    /// The session.
    pub session: SessionId,
    /// The highest turn id the cache missed.
    pub stamp: TurnId,
}

/// Counts over the whole archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ArchiveStats {
    /// Turns stored.
    pub turns: u64,
    /// Summaries stored.
    pub summaries: u64,
    /// Highest turn id ever assigned.
    pub head: TurnId,
}

/// The archive tier; a migration can copy another archive into it.
#[async_trait]
pub trait ArchiveStore: migration::MigrationTarget + Send + Sync + std::fmt::Debug {
    /// Validates every turn, then stores them all in one transaction (group commit), or
    /// none if any is refused. Turns with an external id already stored for that user are
    /// not stored again; the stored turn is returned with `created: false`.
    async fn append_batch(&self, turns: Vec<NewTurn>) -> Result<Vec<Appended>> {
        let turns = turns.into_iter().map(ScoredTurn::from).collect();
        self.append_scored(turns).await
    }

    /// Stores turns as [`ArchiveStore::append_batch`] does, each with the scores its
    /// caller made, in the same insert. A repeated external id keeps the stored turn and
    /// its scores.
    async fn append_scored(&self, turns: Vec<ScoredTurn>) -> Result<Vec<Appended>>;

    /// Up to `limit` turns of every tenant with an id above `after`, in id order: the
    /// outbox the processors consume.
    async fn turns_after(&self, after: TurnId, limit: usize) -> Result<Vec<Turn>>;

    /// Like `turns_after`, with the head read in the same snapshot, so a reader that
    /// finds nothing knows how far it has caught up.
    async fn outbox(&self, after: TurnId, limit: usize) -> Result<OutboxPage>;

    /// The highest turn id ever assigned (0 for an empty archive).
    async fn head(&self) -> Result<TurnId>;

    /// A page of one session's turns, newest first.
    async fn history(
        &self,
        scope: &Scope,
        session: &SessionId,
        page: HistoryPage,
    ) -> Result<Vec<Turn>>;

    /// The user's turns among `ids` (others' ids are silently absent), in id order.
    async fn get_turns(&self, scope: &Scope, ids: &[TurnId]) -> Result<Vec<Turn>>;

    /// The user's turns among `ids` (as `get_turns`), and with them the turn just before
    /// and the turn just after each of those in its own session (what was said around
    /// it): in id order, each once, in one read. Only the user's turns count: ids of other
    /// users' turns find nothing.
    async fn turns_around(&self, scope: &Scope, ids: &[TurnId]) -> Result<Vec<Turn>>;

    /// The user's turn with this external id.
    async fn find_by_external_id(
        &self,
        scope: &Scope,
        external_id: &ExternalId,
    ) -> Result<Option<Turn>>;

    /// Attaches processor scores to turns; ids no longer stored are skipped.
    async fn annotate(&self, annotations: &[TurnAnnotation]) -> Result<()>;

    /// Stores a summary; the same (user, session, turn range) again replaces its text and
    /// keeps its id. Refused as not found when the user, or a turn it covers, was
    /// forgotten after those turns: a summarizer that read them just before the forget
    /// cannot write them back.
    async fn put_summary(&self, summary: NewSummary) -> Result<Summary> {
        self.put_summaries(vec![summary])
            .await?
            .pop()
            .unwrap_or_else(|| Err(Error::NotFound("no summary was given".into())))
    }

    /// Stores summaries as [`ArchiveStore::put_summary`] does, all in one transaction,
    /// and answers each with its own outcome, in the order given: stored, refused as
    /// invalid, or refused as not found (its turns forgotten). An error of the store
    /// itself stores none.
    async fn put_summaries(&self, summaries: Vec<NewSummary>) -> Result<Vec<Result<Summary>>>;

    /// For each of `sessions`, the ids of its turns after its newest summary and before
    /// `before`, the newest `limit` of them, in one read: `(user, session, turn id)` in id
    /// order; a session with none is absent. (The summarizer's pending windows.)
    async fn unsummarized(
        &self,
        sessions: &[(Scope, SessionId)],
        before: TurnId,
        limit: usize,
    ) -> Result<Vec<(Scope, SessionId, TurnId)>>;

    /// The turns among `ids`, of every tenant, in id order: a processor reading back
    /// turns it met in the outbox (as the outbox, not scoped to one user).
    async fn outbox_turns(&self, ids: &[TurnId]) -> Result<Vec<Turn>>;

    /// The user's summaries, of one session or all, newest first, at most `limit`.
    async fn summaries(
        &self,
        scope: &Scope,
        session: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<Summary>>;

    /// The user's summaries among `ids`, in id order.
    async fn get_summaries(&self, scope: &Scope, ids: &[SummaryId]) -> Result<Vec<Summary>>;

    /// Up to `limit` summaries of every tenant with an id above `after`, in id order (for
    /// rebuilding derived tiers).
    async fn summaries_after(&self, after: SummaryId, limit: usize) -> Result<Vec<Summary>>;

    /// The last turn id a processor has fully handled (0 if it never ran).
    async fn checkpoint(&self, processor: &str) -> Result<TurnId>;

    /// Records the last turn id a processor has fully handled.
    async fn set_checkpoint(&self, processor: &str, id: TurnId) -> Result<()>;

    /// The user's emotion state, if any turn was folded in.
    async fn emotion_state(&self, scope: &Scope) -> Result<Option<EmotionState>>;

    /// The emotion states of those of `scopes` that have one, in one read (a processor's
    /// batch touches many users).
    async fn emotion_states(&self, scopes: &[Scope]) -> Result<BTreeMap<Scope, EmotionState>>;

    /// Stores users' emotion states, all in one transaction; a user named twice keeps the
    /// last state given. A state folded from turns the user was forgotten after is
    /// skipped (its writer read them just before the forget).
    async fn put_emotion_states(&self, states: &[(Scope, EmotionState)]) -> Result<()>;

    /// Removes every turn, summary and emotion state of the user, and records the forget
    /// in the outbox in the same transaction.
    async fn forget_user(&self, scope: &Scope) -> Result<ForgetReport>;

    /// Removes one turn of the user and the summaries that cover it, and records the
    /// forget in the outbox in the same transaction (nothing, if the turn is not stored).
    async fn forget_turn(&self, scope: &Scope, id: TurnId) -> Result<ForgetReport>;

    /// The sessions with a turn whose id is above `after` and at most `up_to`, each with
    /// the newest ingest time among those turns, at most `limit` of them, most recent
    /// first (the summarizer rebuilds its pending windows from them after a restart).
    async fn sessions_between(
        &self,
        after: TurnId,
        up_to: TurnId,
        limit: usize,
    ) -> Result<Vec<(Scope, SessionId, Timestamp)>>;

    /// Marks sessions whose recent-tier cache missed a write, each with the highest turn
    /// id it missed (a session marked again keeps the higher stamp).
    async fn mark_recent_gaps(&self, gaps: &[RecentGap]) -> Result<()>;

    /// Every session marked as missing writes in the recent tier.
    async fn recent_gaps(&self) -> Result<Vec<RecentGap>>;

    /// Clears a session's mark if its stamp is at most `gap.stamp` (a refill read the
    /// archive after those writes); a later mark stays.
    async fn clear_recent_gap(&self, gap: &RecentGap) -> Result<()>;

    /// Refreshes the database's query-planner statistics of the archive's tables (a
    /// server with autovacuum off never does it, and plans go wrong as tables grow).
    async fn analyze(&self) -> Result<()>;

    /// Counts over the whole archive.
    async fn stats(&self) -> Result<ArchiveStats>;

    /// Waits for in-flight work and closes the connections.
    async fn close(&self);
}
