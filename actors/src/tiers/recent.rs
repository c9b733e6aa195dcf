//! The recent-tier actor: [`TierActor`] over a [`RecentStore`], and its requests.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::FutureExt;
use mnemo_storage::archive::RecentGap;
use mnemo_storage::model::{Order, Scope, SessionId, Turn, TurnId};
use mnemo_storage::recent::RecentStore;
use parking_lot::Mutex;
use tokio::sync::watch;

use super::tier::{Tier, TierActor};
use crate::error::Result;

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
        self.read(move |s| async move { s.recent(&scope, &session, limit, order).await }.boxed())
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
/// the push (down, restarting, out of memory). Reads of such a session skip the cache and
/// refill it from the archive; a successful fill clears the mark, unless the session was
/// marked again since the archive was read (each mark is stamped with the highest turn id
/// the cache missed, and a fill clears only the stamp it saw).
///
/// The marks are kept in the archive too ([`RecentGap`]), so a restart and every other
/// node see them; this is their copy in memory, read on every context request.
#[derive(Debug)]
pub struct RecentGaps {
    sessions: Mutex<HashMap<(Scope, SessionId), TurnId>>,
    in_archive: bool,
}

impl RecentGaps {
    /// Marks of a cache that is kept in the archive too (`in_archive`: a shared cache,
    /// [`RecentStore::shared`](mnemo_storage::recent::RecentStore::shared)), or only here.
    pub fn new(in_archive: bool) -> Self {
        Self {
            sessions: Mutex::default(),
            in_archive,
        }
    }

    /// Whether the marks are kept in the archive too: set when a write is missed and
    /// cleared when a refill catches up. Else they live here only, and writing or
    /// clearing them in the archive is work for nothing (on the writer that group
    /// commit needs).
    pub fn in_archive(&self) -> bool {
        self.in_archive
    }

    /// Marks the sessions of `turns`; answers the marks, for the archive.
    pub fn record(&self, turns: &[Turn]) -> Vec<RecentGap> {
        let mut sessions = self.sessions.lock();
        let mut marked: HashMap<(Scope, SessionId), TurnId> = HashMap::new();
        for turn in turns {
            let key = (turn.scope.clone(), turn.session_id.clone());
            let stamp = sessions.entry(key.clone()).or_default();
            *stamp = (*stamp).max(turn.id);
            marked.insert(key, *stamp);
        }
        marked
            .into_iter()
            .map(|((scope, session), stamp)| RecentGap {
                scope,
                session,
                stamp,
            })
            .collect()
    }

    /// Adds marks read from the archive (made at an earlier start, or by another node).
    pub fn load(&self, gaps: Vec<RecentGap>) {
        let mut sessions = self.sessions.lock();
        for gap in gaps {
            let stamp = sessions.entry((gap.scope, gap.session)).or_default();
            *stamp = (*stamp).max(gap.stamp);
        }
    }

    /// The session's mark, if it is marked.
    pub fn mark(&self, scope: &Scope, session: &SessionId) -> Option<TurnId> {
        self.sessions
            .lock()
            .get(&(scope.clone(), session.clone()))
            .copied()
    }

    /// Clears the session's mark `stamp` (the session was refilled from an archive read
    /// made after that mark); a newer mark stays.
    pub fn clear(&self, scope: &Scope, session: &SessionId, stamp: TurnId) {
        let mut sessions = self.sessions.lock();
        let key = (scope.clone(), session.clone());
        if sessions.get(&key) == Some(&stamp) {
            sessions.remove(&key);
        }
    }

    /// Sessions marked now.
    pub fn len(&self) -> usize {
        self.sessions.lock().len()
    }

    /// Whether no session is marked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Refills of the recent tier under way. The context assembler refills a session off the
/// request path, after answering; this counts those refills so callers (tests, a warm-up)
/// can wait until they are done.
#[derive(Debug)]
pub struct Refills {
    under_way: watch::Sender<usize>,
}

impl Default for Refills {
    fn default() -> Self {
        Self {
            under_way: watch::channel(0).0,
        }
    }
}

/// One refill under way; dropping it (done, failed or abandoned) takes it off the count.
#[derive(Debug)]
pub struct RefillTicket(Arc<Refills>);

impl Drop for RefillTicket {
    fn drop(&mut self) {
        self.0.under_way.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Refills {
    /// Counts a refill until the ticket is dropped.
    pub fn start(self: &Arc<Self>) -> RefillTicket {
        self.under_way.send_modify(|n| *n += 1);
        RefillTicket(self.clone())
    }

    /// Refills under way now.
    pub fn under_way(&self) -> usize {
        *self.under_way.borrow()
    }

    /// Waits until no refill is under way.
    pub async fn wait_idle(&self) {
        let mut under_way = self.under_way.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = under_way.wait_for(|n| *n == 0).await;
    }
}
