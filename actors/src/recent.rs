//! The recent-tier actor: [`TierActor`] over a [`RecentStore`], and its requests.

use std::collections::HashSet;

use futures_util::FutureExt;
use mnemo_storage::model::{Order, Scope, SessionId, Turn, TurnId};
use mnemo_storage::recent::RecentStore;
use parking_lot::Mutex;

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

/// Sessions whose cached turns may lack a stored turn, because the recent tier refused
/// the push (down or restarting). Reads of such a session skip the cache and refill it
/// from the archive; a successful fill clears the mark.
#[derive(Debug, Default)]
pub struct RecentGaps {
    sessions: Mutex<HashSet<(Scope, SessionId)>>,
}

impl RecentGaps {
    /// Marks the sessions of `turns`.
    pub fn record(&self, turns: &[Turn]) {
        let mut sessions = self.sessions.lock();
        for turn in turns {
            sessions.insert((turn.scope.clone(), turn.session_id.clone()));
        }
    }

    /// Whether the session is marked.
    pub fn contains(&self, scope: &Scope, session: &SessionId) -> bool {
        self.sessions
            .lock()
            .contains(&(scope.clone(), session.clone()))
    }

    /// Clears the session's mark (it was refilled from the archive).
    pub fn clear(&self, scope: &Scope, session: &SessionId) {
        self.sessions
            .lock()
            .remove(&(scope.clone(), session.clone()));
    }
}
