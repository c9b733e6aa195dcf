//! Graph sync: extracts the entities of each turn (names, multi-word proper nouns,
//! salient noun phrases) on the processor's own thread and upserts them into the user's
//! graph: MENTIONS from the user, RELATED_TO between entities of the same turn, each
//! supported by the turn. Upserts are idempotent per turn.

use async_trait::async_trait;
use mnemo_storage::graph::GraphUpdate;
use mnemo_storage::model::{Forget, Turn};

use super::tombstones::Guard;
use super::{Processor, Step};
use crate::analysis::entities::extract_entities;
use crate::error::{Error, Result};

/// Checkpoint key and actor name.
pub const NAME: &str = "graph_sync";

/// The graph sync processor.
#[derive(Debug, Clone, Default)]
pub struct GraphSync;

#[async_trait]
impl Processor for GraphSync {
    type Analysis = Vec<GraphUpdate>;

    const NAME: &'static str = NAME;

    fn analyze(&self, turns: &[Turn]) -> Self::Analysis {
        turns
            .iter()
            .filter_map(|t| {
                // An entity the graph would refuse is dropped here, so one odd name can
                // never stall the processor on its batch.
                let entities: Vec<_> = extract_entities(&t.content)
                    .into_iter()
                    .filter(|e| e.validate().is_ok())
                    .collect();
                (!entities.is_empty()).then(|| GraphUpdate {
                    scope: t.scope.clone(),
                    turn_id: t.id,
                    time: t.event_time,
                    entities,
                })
            })
            .collect()
    }

    /// The graph is shared: the node holding the lease applies each forget once more
    /// (the forgetting node did at once), undoing anything written back from turns read
    /// just before it.
    async fn forget(&self, forget: &Forget, step: &Step) -> Result<()> {
        let Some(graph) = step.deps.graph.as_ref() else {
            return Ok(());
        };
        match forget.turn {
            None => graph.forget_user(forget.scope.clone()).await,
            Some(turn) => graph.forget_turn(forget.scope.clone(), turn).await,
        }
    }

    async fn apply(
        &self,
        _: &[Turn],
        updates: Self::Analysis,
        step: &Step,
        _: &Guard<'_>,
    ) -> Result<()> {
        let graph = step
            .deps
            .graph
            .as_ref()
            .ok_or_else(|| Error::Internal("graph sync runs without a graph tier".into()))?;
        if updates.is_empty() {
            return Ok(());
        }
        graph.apply(updates).await
    }
}
