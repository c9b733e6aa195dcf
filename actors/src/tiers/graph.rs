//! The graph actor: [`TierActor`] over a [`GraphStore`], and its requests.

use futures_util::FutureExt;
use mnemo_storage::graph::{ContextEntities, GraphStore, GraphUpdate, Neighbourhood, Recency};
use mnemo_storage::model::{Scope, TurnId};

use super::tier::{Tier, TierActor};
use crate::error::Result;

/// The graph actor.
pub type GraphActor = TierActor<dyn GraphStore>;

/// Handle to the graph actor.
pub type GraphTier = Tier<dyn GraphStore>;

impl Tier<dyn GraphStore> {
    /// Applies turns' entity updates (idempotent per turn).
    pub async fn apply(&self, updates: Vec<GraphUpdate>) -> Result<()> {
        self.call_waiting(move |s| async move { s.apply(&updates).await }.boxed())
            .await
    }

    /// An entity's neighbourhood.
    pub async fn neighbourhood(
        &self,
        scope: Scope,
        name: String,
        depth: usize,
        limit: usize,
    ) -> Result<Option<Neighbourhood>> {
        self.read(move |s| {
            async move { s.neighbourhood(&scope, &name, depth, limit).await }.boxed()
        })
        .await
    }

    /// The entities a context answer shows: those `names` match, and the `top` best
    /// ranked.
    pub async fn context_entities(
        &self,
        scope: Scope,
        recency: Recency,
        names: Vec<String>,
        top: usize,
    ) -> Result<ContextEntities> {
        self.read(move |s| {
            async move { s.context_entities(&scope, recency, &names, top).await }.boxed()
        })
        .await
    }

    /// Removes the user's graph.
    pub async fn forget_user(&self, scope: Scope) -> Result<()> {
        self.call_waiting(move |s| async move { s.forget_user(&scope).await }.boxed())
            .await
    }

    /// Takes one turn's support out of the user's graph.
    pub async fn forget_turn(&self, scope: Scope, turn: TurnId) -> Result<()> {
        self.call_waiting(move |s| async move { s.forget_turn(&scope, turn).await }.boxed())
            .await
    }
}
