//! The processors: background work on new turns, each an actor consuming the archive's
//! outbox in id order from its own checkpoint (see [`actor`]). Processing is idempotent
//! per turn, so a restart that replays a batch loses nothing and counts nothing twice.
//!
//! - [`emotion`]: emotion scores and importance per turn, the user's emotion state.
//! - [`indexing`]: the full-text index.
//! - [`summarizer`]: extractive session summaries.
//! - [`graph_sync`]: entities and their relationships.
//!
//! A new processor implements [`Processor`] in a file here and is started in
//! [`crate::system::start`]. [`tombstones`] keep a processor that read a turn just
//! before it was forgotten from writing anything derived from it.

pub mod actor;
pub mod backlog;
pub mod emotion;
pub mod graph_sync;
pub mod indexing;
pub mod pressure;
pub mod summarizer;
pub mod tombstones;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mnemo_storage::clock::SharedClock;
use mnemo_storage::cluster::Cluster;
use mnemo_storage::model::{Forget, Turn, TurnId};

pub use self::actor::{ProcessorActor, ProcessorHandle};
use self::tombstones::Guard;
use crate::context::generations::Generations;
use crate::error::Result;
use crate::runtime::faults::Faults;
use crate::runtime::worker::Worker;
use crate::tiers::{ArchiveTier, GraphTier, IndexTier, RecentTier};

/// What processors reach: the tiers (through their actors), the write counters, the
/// clock and the fault hooks.
#[derive(Clone, Debug)]
pub struct Deps {
    /// The recent tier (forgets are applied to it).
    pub recent: RecentTier,
    /// The archive.
    pub archive: ArchiveTier,
    /// The index.
    pub index: IndexTier,
    /// The graph, when enabled.
    pub graph: Option<GraphTier>,
    /// Per-user write counters (bumped after writing results).
    pub generations: Arc<Generations>,
    /// The clock.
    pub clock: SharedClock,
    /// The fault hooks tests arm (checked before each step).
    pub faults: Arc<Faults>,
    /// The nodes sharing the archive: a shared processor runs under their lease.
    pub cluster: Arc<dyn Cluster>,
    /// Whether requests overrun their target now (processors then step less often).
    pub pressure: Arc<pressure::Pressure>,
}

/// What a processor step can use: the dependencies and the actor's own CPU thread.
#[derive(Debug, Clone)]
pub struct Step {
    /// The tiers, write counters and clock.
    pub deps: Deps,
    /// The processor actor's thread, for CPU-bound work done while writing.
    pub worker: Arc<Worker>,
}

/// How big a processor's steps are and how often it takes one.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Turns read from the outbox per step.
    pub batch: usize,
    /// Most turns a step through a backlog grows to while requests keep within their
    /// target (see [`Pace::next_batch`]).
    pub max_batch: usize,
    /// When turns arrived during a step that was not a full batch, how long to let more
    /// gather before the next one: a stream of small commits is then processed in fewer,
    /// larger steps (each step costs archive transactions and, for the indexer, an index
    /// commit).
    pub gather: Duration,
    /// While steps read full batches and more turns wait, the least time between
    /// checkpoints (zero: after every step). A replay after a crash redoes at most this
    /// much, idempotently.
    pub checkpoint_every: Duration,
    /// How often a node standing by for a shared processor's lease asks for it again.
    pub lease_retry: Duration,
    /// Niceness of the processor's thread: background work gives way to requests.
    pub nice: i32,
    /// While requests overrun their target, how long a processor waits after each step
    /// for them to come back within it (zero: it does not wait).
    pub yield_to_requests: Duration,
}

impl Pace {
    /// The turns the step after one that read `batch` reads: twice as many while the
    /// processor is behind and requests keep within their target (a step's statements,
    /// round trips and index segment then serve more turns), else the configured batch,
    /// so that a step under pressure is short and gives way soon.
    pub fn next_batch(&self, batch: usize, behind: bool, pressure: bool) -> usize {
        if behind && !pressure {
            batch.saturating_mul(2).min(self.max_batch).max(self.batch)
        } else {
            self.batch
        }
    }
}

/// One kind of background processing of new turns.
#[async_trait]
pub trait Processor: Send + Sync + 'static {
    /// What [`Processor::analyze`] produces for a batch.
    type Analysis: Send + 'static;

    /// The processor's name: its checkpoint key and actor name.
    const NAME: &'static str;

    /// Whether what it writes is shared by every node of a cluster (the archive, the
    /// graph), so one node at a time runs it, under a lease, from the checkpoint in the
    /// archive. A node-local processor (the indexer) runs on every node and keeps its
    /// checkpoint with the state it writes.
    const SHARED: bool = true;

    /// The checkpoint to resume from: the last turn id fully handled.
    async fn checkpoint(&self, step: &Step) -> Result<TurnId> {
        step.deps.archive.checkpoint(Self::NAME).await
    }

    /// Records that every turn up to `id` has been handled, once its results are
    /// written.
    async fn set_checkpoint(&self, step: &Step, id: TurnId) -> Result<()> {
        step.deps.archive.set_checkpoint(Self::NAME, id).await
    }

    /// The CPU-bound part, run on the actor's own thread.
    fn analyze(&self, turns: &[Turn]) -> Self::Analysis;

    /// Writes the results. Must be idempotent per turn. `turns` are already cleared of
    /// forgotten ones; anything else written from older turns must pass `guard.keeps`.
    async fn apply(
        &self,
        turns: &[Turn],
        analysis: Self::Analysis,
        step: &Step,
        guard: &Guard<'_>,
    ) -> Result<()>;

    /// Applies a forget the archive recorded, to what this processor wrote or keeps: met
    /// in the outbox after the turns stored before it and before those stored after, on
    /// every node that runs the processor, and again after a crash. Must be idempotent.
    async fn forget(&self, _forget: &Forget, _step: &Step) -> Result<()> {
        Ok(())
    }

    /// Called when the outbox is empty, every [`Processor::idle_every`] or on demand.
    async fn on_idle(&self, _step: &Step, _guard: &Guard<'_>) -> Result<()> {
        Ok(())
    }

    /// How often to call [`Processor::on_idle`] while caught up (`None`: never).
    fn idle_every(&self) -> Option<Duration> {
        None
    }
}

/// Builds a fresh processor (at start and at every restart).
pub type MakeProcessor<P> = Arc<dyn Fn() -> P + Send + Sync>;
