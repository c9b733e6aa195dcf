//! Settings of the actor layer: section `[actors]` of `config.toml`. Each struct is used
//! by the actor named after it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runtime::Limits;

/// Section `[actors]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ActorsConfig {
    /// Mailbox capacities.
    pub mailbox: MailboxConfig,
    /// Requests each actor works on at once.
    pub in_flight: InFlightConfig,
    /// Restart policy of the supervisor.
    pub supervisor: SupervisorConfig,
    /// Group commit of the archive actor.
    pub group_commit: GroupCommitConfig,
    /// The processors.
    pub processors: ProcessorsConfig,
    /// Context assembly.
    pub context: ContextConfig,
}

/// Section `[actors.mailbox]`: how many messages each actor queues before callers are
/// told it is busy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailboxConfig {
    /// Recent-tier actor.
    pub recent: usize,
    /// Archive actor.
    pub archive: usize,
    /// Index actor.
    pub index: usize,
    /// Graph actor.
    pub graph: usize,
    /// Context assembler.
    pub context: usize,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self {
            recent: 4096,
            archive: 8192,
            index: 2048,
            graph: 2048,
            context: 4096,
        }
    }
}

/// Section `[actors.in_flight]`: how many requests each actor works on at once. Past
/// that a caller's request is refused at once as busy, instead of work piling up
/// unbounded; work between actors waits, in order, for one to end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InFlightConfig {
    /// Recent-tier actor.
    pub recent: usize,
    /// Archive actor (reads and other calls; appends are bounded by group commit).
    pub archive: usize,
    /// Index actor.
    pub index: usize,
    /// Graph actor.
    pub graph: usize,
    /// Context assembler.
    pub context: usize,
}

impl Default for InFlightConfig {
    fn default() -> Self {
        Self {
            // One group commit releases up to `GroupCommitConfig::max_batch_turns` callers
            // at once, each pushing its turns here: a push refused for room leaves a gap
            // that costs an archive write (Redis) or a refill (BENCHMARKS.md).
            recent: 4096,
            archive: 512,
            index: 128,
            graph: 128,
            context: 128,
        }
    }
}

impl ActorsConfig {
    /// The limits of the actor `name` (one of the tiers or the context assembler).
    pub fn limits(&self, name: &str) -> Limits {
        let (mailbox, in_flight) = match name {
            "recent" => (self.mailbox.recent, self.in_flight.recent),
            "archive" => (self.mailbox.archive, self.in_flight.archive),
            "index" => (self.mailbox.index, self.in_flight.index),
            "graph" => (self.mailbox.graph, self.in_flight.graph),
            _ => (self.mailbox.context, self.in_flight.context),
        };
        Limits { mailbox, in_flight }
    }
}

/// Section `[actors.supervisor]`: exponential backoff between restarts of a failed actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorConfig {
    /// Wait before the first restart, in milliseconds.
    pub initial_backoff_ms: u64,
    /// Longest wait between restarts, in milliseconds.
    pub max_backoff_ms: u64,
    /// Each further consecutive failure multiplies the wait by this.
    pub multiplier: f64,
    /// An actor up this long without failing starts again from the initial backoff, in
    /// milliseconds.
    pub reset_after_ms: u64,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            initial_backoff_ms: 50,
            max_backoff_ms: 10_000,
            multiplier: 2.0,
            reset_after_ms: 30_000,
        }
    }
}

impl SupervisorConfig {
    /// The wait before restart number `attempt` (0-based) of a run of failures.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.max(1.0).powi(attempt.min(64) as i32);
        let ms = (self.initial_backoff_ms as f64 * factor).min(self.max_backoff_ms as f64);
        Duration::from_millis(ms as u64)
    }
}

/// Section `[actors.group_commit]`: how the archive actor gathers writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupCommitConfig {
    /// Most turns in one transaction.
    pub max_batch_turns: usize,
    /// Most turns accepted and waiting for their transaction; past that, writes are
    /// refused at once as busy.
    pub max_pending_turns: usize,
    /// How long the first write of a new group may wait for others, in microseconds
    /// (0: commit at once; writes arriving meanwhile join the next group).
    pub max_wait_us: u64,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        Self {
            max_batch_turns: 4096,
            max_pending_turns: 65_536,
            max_wait_us: 0,
        }
    }
}

/// Section `[actors.processors]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorsConfig {
    /// Turns read from the outbox per step.
    pub batch_turns: usize,
    /// Through a backlog, while requests keep within their target, each full step reads
    /// twice the turns of the one before, up to this many: a step's fixed costs (its
    /// statements, an index segment) spread over more turns. Under pressure, or once
    /// caught up, steps are `batch_turns` again.
    pub max_batch_turns: usize,
    /// When turns arrived during a step that was not a full batch, milliseconds to let
    /// more gather before the next (0: step as soon as turns arrive).
    pub gather_ms: u64,
    /// While a processor reads full batches and more turns wait, milliseconds between its
    /// checkpoints (the indexer's are index commits, which make turns searchable; each
    /// commit made a segment that merges then rewrote); once it reads less than a batch
    /// or has caught up it checkpoints after every step. 0: after every step.
    pub checkpoint_ms: u64,
    /// Most stored turns the slowest processor may have left to handle; past that, writes
    /// are refused (busy, retry later) and `/readyz` says the engine is behind; bulk
    /// imports wait instead (0: no bound).
    pub max_backlog_turns: u64,
    /// With an archive other nodes share (PostgreSQL): how often to look for turns they
    /// stored, in milliseconds (0: never; this node then learns of them only with its own
    /// writes).
    pub follow_ms: u64,
    /// With an archive other nodes share: how often a node standing by for a shared
    /// processor (emotion, summarizer, graph sync) asks for its lease, in milliseconds:
    /// the longest a crashed node's processors wait for another node to take over.
    pub lease_retry_ms: u64,
    /// Niceness (0-19) of the processors' threads: background work that gives way to
    /// requests when the cores are short (their backlog then grows, within
    /// `max_backlog_turns`). 0: the requests' priority.
    pub nice: i32,
    /// While requests overrun their target latency (the engine's admission), milliseconds
    /// a processor waits after each step for them to come back within it: its work in
    /// the database servers, where its niceness does not reach, gives way to requests
    /// too. The backlog grows meanwhile, within `max_backlog_turns`. 0: never waits.
    pub yield_ms: u64,
    /// Emotion scoring.
    pub emotion: EmotionConfig,
    /// Index insertion.
    pub indexer: IndexerConfig,
    /// Session summaries.
    pub summarizer: SummarizerConfig,
    /// Entity extraction and graph sync.
    pub graph_sync: GraphSyncConfig,
}

impl Default for ProcessorsConfig {
    fn default() -> Self {
        Self {
            batch_turns: 512,
            max_batch_turns: 8192,
            gather_ms: 50,
            checkpoint_ms: 1_000,
            max_backlog_turns: 100_000,
            follow_ms: 250,
            lease_retry_ms: 1_000,
            nice: 10,
            yield_ms: 250,
            emotion: EmotionConfig::default(),
            indexer: IndexerConfig::default(),
            summarizer: SummarizerConfig::default(),
            graph_sync: GraphSyncConfig::default(),
        }
    }
}

/// Section `[actors.processors.emotion]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmotionConfig {
    /// Run the emotion processor.
    pub enabled: bool,
    /// A user's emotion state halves its weight after this many hours without turns.
    pub half_life_hours: f64,
}

impl Default for EmotionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            half_life_hours: 72.0,
        }
    }
}

/// Section `[actors.processors.indexer]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexerConfig {
    /// Run the indexer (without it, search and relevant memories are empty).
    pub enabled: bool,
}

impl Default for IndexerConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Section `[actors.processors.summarizer]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SummarizerConfig {
    /// Run the summarizer.
    pub enabled: bool,
    /// Summarise a session every this many turns.
    pub every_turns: usize,
    /// Summarise what is pending of a session idle for this many seconds.
    pub idle_secs: u64,
    /// How often to look for idle sessions, in seconds.
    pub idle_check_secs: u64,
    /// Sentences per summary, at most.
    pub max_sentences: usize,
    /// Characters per summary, at most.
    pub max_chars: usize,
    /// At a start or a takeover, the sessions among this many turns before the
    /// checkpoint get their unsummarised turns back as pending windows (so a session
    /// that ended just before a restart is still summarised when it goes idle).
    pub recover_turns: u64,
}

impl Default for SummarizerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            every_turns: 20,
            idle_secs: 1800,
            idle_check_secs: 60,
            max_sentences: 4,
            max_chars: 600,
            recover_turns: 100_000,
        }
    }
}

/// Section `[actors.processors.graph_sync]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphSyncConfig {
    /// Run entity extraction and graph sync (also switched off when the graph tier is).
    pub enabled: bool,
}

impl Default for GraphSyncConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Section `[actors.context]`: defaults and ranking of context assembly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextConfig {
    /// Deadline of a request that names none, in milliseconds.
    pub default_deadline_ms: u64,
    /// Recent turns of the session, by default.
    pub max_recent: usize,
    /// Relevant items (turns, summaries, entities), by default.
    pub max_items: usize,
    /// Token budget of the rendered prompt, by default.
    pub token_budget: usize,
    /// Weight of text relevance (BM25, normalised to the best hit) in the score.
    pub weight_relevance: f64,
    /// Weight of recency (exponential decay) in the score.
    pub weight_recency: f64,
    /// Weight of importance in the score.
    pub weight_importance: f64,
    /// Weight of emotional salience in the score.
    pub weight_emotion: f64,
    /// Recency halves after this many hours.
    pub recency_half_life_hours: f64,
    /// A turn said just after one of the best index hits in its session (often the
    /// answer to it) scores at least this share of that hit's BM25 (0: off).
    pub neighbour_next: f64,
    /// A turn said just before one of the best index hits in its session (often the
    /// question it answers) scores at least this share of that hit's BM25 (0: off).
    pub neighbour_previous: f64,
    /// Items whose word sets overlap at least this much (Jaccard) are near duplicates.
    pub near_duplicate_jaccard: f64,
    /// Answers cached per user (any write for the user invalidates them).
    pub cache_entries: usize,
    /// Threads that rank and render answers (CPU work, off the actor thread).
    pub rank_threads: usize,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            default_deadline_ms: 50,
            max_recent: 10,
            max_items: 10,
            token_budget: 1500,
            weight_relevance: 0.55,
            weight_recency: 0.2,
            weight_importance: 0.15,
            weight_emotion: 0.1,
            recency_half_life_hours: 24.0 * 14.0,
            neighbour_next: 0.8,
            neighbour_previous: 0.5,
            near_duplicate_jaccard: 0.9,
            cache_entries: 10_000,
            rank_threads: 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One group commit answers up to `max_batch_turns` single-turn stores at once, and
    /// each then pushes its turn to the recent tier: with room for fewer, the rest are
    /// refused and leave gaps (at 10,000 simulated users on Redis + PostgreSQL, a limit
    /// of 512 cost stores a p99 of 2.3 s in gap-mark writes: BENCHMARKS.md).
    #[test]
    fn the_recent_tier_takes_every_store_one_group_commit_answers() {
        let config = ActorsConfig::default();
        assert!(config.in_flight.recent >= config.group_commit.max_batch_turns);
        assert!(config.mailbox.recent >= config.in_flight.recent);
    }
}
