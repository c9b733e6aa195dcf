//! Tombstones of forgotten users and turns, so that a processor that read a turn just
//! before it was forgotten cannot write anything derived from it just after.
//!
//! Processors hold a read guard while they filter a batch and write its results; a
//! forget takes the write lock to lay the tombstone, which waits for the writes in
//! flight, so every later write sees it. Tombstones are pruned once every processor's
//! checkpoint has passed them.

use std::collections::{HashMap, HashSet};

use mnemo_storage::model::{Scope, Summary, Turn, TurnId};
use tokio::sync::{RwLock, RwLockReadGuard};

#[derive(Debug, Default)]
struct Graves {
    /// Forgotten users, with the archive head when they were forgotten: their turns up
    /// to it are gone; later turns are new.
    users: HashMap<Scope, TurnId>,
    turns: HashSet<TurnId>,
}

/// The tombstones of one engine.
#[derive(Debug, Default)]
pub struct Tombstones {
    graves: RwLock<Graves>,
}

/// A read guard: while held, no forget can complete.
pub struct Guard<'a>(RwLockReadGuard<'a, Graves>);

impl Guard<'_> {
    /// Whether `turn` may still be written anywhere.
    pub fn keeps(&self, turn: &Turn) -> bool {
        !self.0.turns.contains(&turn.id)
            && self
                .0
                .users
                .get(&turn.scope)
                .is_none_or(|head| turn.id > *head)
    }
}

impl Guard<'_> {
    /// Whether `summary` may still be written anywhere: its user was not forgotten after
    /// it, and none of the turns it covers was.
    pub fn keeps_summary(&self, summary: &Summary) -> bool {
        !self
            .0
            .turns
            .iter()
            .any(|id| (summary.first_turn..=summary.last_turn).contains(id))
            && self
                .0
                .users
                .get(&summary.scope)
                .is_none_or(|head| summary.last_turn > *head)
    }
}

impl Tombstones {
    /// Holds off forgets while the caller writes what it derived from turns.
    pub async fn guard(&self) -> Guard<'_> {
        Guard(self.graves.read().await)
    }

    /// Lays a tombstone for the user's turns up to `head`; returns once no write that
    /// could have missed it is in flight.
    pub async fn bury_user(&self, scope: Scope, head: TurnId) {
        let mut graves = self.graves.write().await;
        let entry = graves.users.entry(scope).or_default();
        *entry = (*entry).max(head);
    }

    /// Lays a tombstone for one turn.
    pub async fn bury_turn(&self, id: TurnId) {
        self.graves.write().await.turns.insert(id);
    }

    /// Drops tombstones every processor has moved past.
    pub async fn prune(&self, slowest_checkpoint: TurnId) {
        let mut graves = self.graves.write().await;
        graves.users.retain(|_, head| *head > slowest_checkpoint);
        graves.turns.retain(|id| *id > slowest_checkpoint);
    }
}
