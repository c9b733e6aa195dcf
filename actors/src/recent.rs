//! The recent-tier actor: [`TierActor`] over a [`RecentStore`], and its requests.

use futures_util::FutureExt;
use mnemo_storage::model::{Order, Scope, SessionId, Turn, TurnId};
use mnemo_storage::recent::RecentStore;

use crate::error::Result;
use crate::tier::{Tier, TierActor};

/// The recent-tier actor.
pub type RecentActor = TierActor<dyn RecentStore>;

/// Handle to the recent-tier actor.
pub type RecentTier = Tier<dyn RecentStore>;

impl Tier<dyn RecentStore> {
    /// Caches newly stored turns.
    pub async fn push(&self, turns: Vec<Turn>) -> Result<()> {
        self.call(move |s| async move { s.push(&turns).await }.boxed())
            .await
    }

    /// Replaces a session's cached turns with what the archive holds.
    pub async fn fill(&self, scope: Scope, session: SessionId, turns: Vec<Turn>) -> Result<()> {
        self.call(move |s| async move { s.fill(&scope, &session, &turns).await }.boxed())
            .await
    }

    /// The session's last turns, or `None` on a miss.
    pub async fn recent(
        &self,
        scope: Scope,
        session: SessionId,
        limit: usize,
        order: Order,
    ) -> Result<Option<Vec<Turn>>> {
        self.call(move |s| async move { s.recent(&scope, &session, limit, order).await }.boxed())
            .await
    }

    /// Drops the user's cached sessions.
    pub async fn forget_user(&self, scope: Scope) -> Result<()> {
        self.call_waiting(move |s| async move { s.forget_user(&scope).await }.boxed())
            .await
    }

    /// Drops one turn (and the sessions holding it).
    pub async fn forget_turn(&self, scope: Scope, id: TurnId) -> Result<()> {
        self.call_waiting(move |s| async move { s.forget_turn(&scope, id).await }.boxed())
            .await
    }
}
