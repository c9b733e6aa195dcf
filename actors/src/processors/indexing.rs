//! The indexer: puts each new turn into the full-text index and commits before the
//! checkpoint moves, so a checkpointed turn is always searchable after a restart.
//! Re-adding a turn replaces it, so a replay is harmless.

use async_trait::async_trait;
use mnemo_storage::index::IndexDoc;
use mnemo_storage::model::Turn;

use super::tombstones::Guard;
use super::{Processor, Step};
use crate::error::Result;

/// Checkpoint key and actor name.
pub const NAME: &str = "indexer";

/// The indexer.
#[derive(Debug, Clone, Default)]
pub struct Indexer;

#[async_trait]
impl Processor for Indexer {
    type Analysis = Vec<IndexDoc>;

    const NAME: &'static str = NAME;

    fn analyze(&self, turns: &[Turn]) -> Self::Analysis {
        turns.iter().map(IndexDoc::from_turn).collect()
    }

    async fn apply(
        &self,
        _: &[Turn],
        docs: Self::Analysis,
        step: &Step,
        _: &Guard<'_>,
    ) -> Result<()> {
        step.deps.index.add(docs).await?;
        step.deps.index.commit().await
    }
}
