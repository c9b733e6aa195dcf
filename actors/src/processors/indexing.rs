//! The indexer: puts each new turn and summary into this node's full-text index. It runs
//! on every node (the index is node-local) and keeps its checkpoint inside the index, in
//! the commit that makes the documents durable ([`IndexMark`]): the checkpoint can never
//! run ahead of what the index holds, and an index directory that is lost or new reads
//! zero, so the node indexes the archive again from the start by itself. Re-adding a
//! document replaces it, so a replay is harmless.
//!
//! Summaries are followed by id too: the node running the summarizer indexes its own at
//! once, every other node picks them up here.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mnemo_storage::index::{DocKind, IndexDoc, IndexMark};
use mnemo_storage::model::{Forget, Scope, SummaryId, Turn, TurnId};
use parking_lot::Mutex;

use super::tombstones::Guard;
use super::{Processor, Step};
use crate::error::Result;

/// Actor name.
pub const NAME: &str = "indexer";

/// Summaries read per step.
const SUMMARY_BATCH: usize = 512;

/// The index's mark as of its last commit, known to the engine: read from the index when
/// it opens, then kept by the indexer as it commits, across its restarts. (So starting
/// the indexer asks nothing of the index actor.)
pub type CommittedMark = Arc<Mutex<IndexMark>>;

/// The indexer.
#[derive(Debug)]
pub struct Indexer {
    committed: CommittedMark,
    /// The last summary indexed, committed or not.
    summaries: Mutex<SummaryId>,
    /// Users whose summaries were indexed since the last commit: their cached answers
    /// go once the commit makes the summaries searchable.
    summarised: Mutex<Vec<Scope>>,
    /// How often to look for new summaries while no turns arrive (`None`: never).
    follow_summaries: Option<Duration>,
}

impl Indexer {
    /// An indexer resuming from `committed`, that looks for summaries written elsewhere
    /// every `follow_summaries` while idle.
    pub fn new(committed: CommittedMark, follow_summaries: Option<Duration>) -> Self {
        Self {
            committed,
            summaries: Mutex::new(SummaryId(0)),
            summarised: Mutex::new(Vec::new()),
            follow_summaries,
        }
    }

    /// Indexes the summaries stored since the last one indexed; answers whether there
    /// were any.
    async fn follow_summaries(&self, step: &Step, guard: &Guard<'_>) -> Result<bool> {
        let after = *self.summaries.lock();
        let summaries = step
            .deps
            .archive
            .summaries_after(after, SUMMARY_BATCH)
            .await?;
        let Some(last) = summaries.last().map(|s| s.id) else {
            return Ok(false);
        };
        let kept: Vec<_> = summaries
            .iter()
            .filter(|s| guard.keeps_summary(s))
            .collect();
        let docs = kept.iter().map(|s| IndexDoc::from_summary(s)).collect();
        step.deps.index.add(docs).await?;
        *self.summaries.lock() = last;
        self.summarised
            .lock()
            .extend(kept.into_iter().map(|s| s.scope.clone()));
        Ok(true)
    }

    async fn commit(&self, step: &Step, turns: TurnId) -> Result<()> {
        let mark = IndexMark {
            turns,
            summaries: *self.summaries.lock(),
        };
        step.deps.index.commit_at(mark).await?;
        *self.committed.lock() = mark;
        let summarised = std::mem::take(&mut *self.summarised.lock());
        step.deps.generations.bump_all(summarised.iter());
        Ok(())
    }
}

#[async_trait]
impl Processor for Indexer {
    type Analysis = Vec<IndexDoc>;

    const NAME: &'static str = NAME;
    const SHARED: bool = false;

    async fn checkpoint(&self, _: &Step) -> Result<TurnId> {
        let mark = *self.committed.lock();
        if mark == IndexMark::default() {
            tracing::info!("the index starts from the beginning of the archive");
        }
        *self.summaries.lock() = mark.summaries;
        Ok(mark.turns)
    }

    /// The commit that makes the documents searchable and durable records the mark.
    async fn set_checkpoint(&self, step: &Step, id: TurnId) -> Result<()> {
        self.commit(step, id).await
    }

    /// The index and the recent tier are this node's (the recent tier on Redis is every
    /// node's, and a forget applied twice there is harmless): every node applies every
    /// forget to both.
    async fn forget(&self, forget: &Forget, step: &Step) -> Result<()> {
        let deps = &step.deps;
        let Some(turn) = forget.turn else {
            deps.recent.forget_user(forget.scope.clone()).await?;
            return deps.index.delete_user(forget.scope.clone()).await;
        };
        deps.recent.forget_turn(forget.scope.clone(), turn).await?;
        let docs = std::iter::once((DocKind::Turn, turn.0))
            .chain(forget.summaries.iter().map(|s| (DocKind::Summary, s.0)));
        for (kind, id) in docs.collect::<Vec<_>>() {
            deps.index
                .delete_doc(forget.scope.clone(), kind, id)
                .await?;
        }
        Ok(())
    }

    fn analyze(&self, turns: &[Turn]) -> Self::Analysis {
        turns.iter().map(IndexDoc::from_turn).collect()
    }

    async fn apply(
        &self,
        _: &[Turn],
        docs: Self::Analysis,
        step: &Step,
        guard: &Guard<'_>,
    ) -> Result<()> {
        step.deps.index.add(docs).await?;
        self.follow_summaries(step, guard).await?;
        Ok(())
    }

    async fn on_idle(&self, step: &Step, guard: &Guard<'_>) -> Result<()> {
        if self.follow_summaries(step, guard).await? {
            let turns = self.committed.lock().turns;
            self.commit(step, turns).await?;
        }
        Ok(())
    }

    fn idle_every(&self) -> Option<Duration> {
        self.follow_summaries
    }
}
