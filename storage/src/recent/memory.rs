//! The embedded recent tier: an in-process cache of whole sessions with a per-session
//! turn limit, a global byte budget (least recently used sessions evicted first) and a TTL.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lru::LruCache;
use parking_lot::Mutex;

use super::{RecentConfig, RecentStore};
use crate::clock::SharedClock;
use crate::error::Result;
use crate::model::{Order, Scope, SessionId, Timestamp, Turn, TurnId};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    scope: Scope,
    session: SessionId,
}

#[derive(Debug)]
struct Entry {
    /// Ascending by id. Boxed (behind an `Arc`) so a slot is a pointer: a deque grows by
    /// doubling, and slots of whole turns would hold up to twice a session's turns in
    /// spare capacity that the byte budget does not see.
    turns: VecDeque<Arc<Turn>>,
    bytes: usize,
    touched: Timestamp,
    /// Filled from the archive: only then does it answer reads.
    complete: bool,
}

#[derive(Debug)]
struct Inner {
    /// Most recently used first.
    sessions: LruCache<SessionKey, Entry>,
    /// Sessions cached per user, so forgetting a user touches only their sessions.
    by_user: HashMap<Scope, HashSet<SessionId>>,
    bytes: usize,
}

impl Inner {
    fn remove(&mut self, key: &SessionKey) {
        if let Some(entry) = self.sessions.pop(key) {
            self.bytes -= entry.bytes;
            self.unlink(key);
        }
    }

    fn unlink(&mut self, key: &SessionKey) {
        if let Some(set) = self.by_user.get_mut(&key.scope) {
            set.remove(&key.session);
            if set.is_empty() {
                self.by_user.remove(&key.scope);
            }
        }
    }

    fn evict_lru(&mut self) {
        if let Some((key, entry)) = self.sessions.pop_lru() {
            self.bytes -= entry.bytes;
            self.unlink(&key);
        }
    }

    /// The session's entry, promoted to most recently used, creating it if needed.
    fn entry(&mut self, key: &SessionKey, now: Timestamp) -> &mut Entry {
        if !self.sessions.contains(key) {
            self.by_user
                .entry(key.scope.clone())
                .or_default()
                .insert(key.session.clone());
            self.sessions.put(
                key.clone(),
                Entry {
                    turns: VecDeque::new(),
                    bytes: 0,
                    touched: now,
                    complete: false,
                },
            );
        }
        let entry = self
            .sessions
            .get_mut(key)
            .expect("entry was inserted just above");
        entry.touched = now;
        entry
    }
}

/// The embedded, in-process recent tier.
#[derive(Debug)]
pub struct MemoryRecent {
    config: RecentConfig,
    clock: SharedClock,
    inner: Mutex<Inner>,
}

impl MemoryRecent {
    /// An empty cache with the given limits, reading time from `clock`.
    pub fn new(config: RecentConfig, clock: SharedClock) -> Self {
        Self {
            config,
            clock,
            inner: Mutex::new(Inner {
                sessions: LruCache::unbounded(),
                by_user: HashMap::new(),
                bytes: 0,
            }),
        }
    }

    /// Bytes currently held (approximate), for health and metrics.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Sessions currently cached.
    pub fn sessions(&self) -> usize {
        self.inner.lock().sessions.len()
    }

    fn ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(Duration::from_secs(self.config.ttl_secs))
            .unwrap_or(chrono::Duration::MAX)
    }

    fn is_expired(&self, entry: &Entry, now: Timestamp) -> bool {
        now.signed_duration_since(entry.touched) >= self.ttl()
    }

    /// Drops expired sessions from the least recently used end, then evicts until the
    /// byte budget holds.
    fn enforce_limits(&self, inner: &mut Inner, now: Timestamp) {
        while let Some((_, entry)) = inner.sessions.peek_lru() {
            if !self.is_expired(entry, now) {
                break;
            }
            inner.evict_lru();
        }
        while inner.bytes > self.config.max_bytes && !inner.sessions.is_empty() {
            inner.evict_lru();
        }
    }

    fn insert_turn(&self, entry: &mut Entry, turn: &Turn) -> isize {
        let pos = match entry.turns.binary_search_by_key(&turn.id, |t| t.id) {
            Ok(_) => return 0,
            Err(pos) => pos,
        };
        let mut delta = cached_bytes(turn) as isize;
        entry.turns.insert(pos, Arc::new(turn.clone()));
        while entry.turns.len() > self.config.max_turns_per_session {
            if let Some(old) = entry.turns.pop_front() {
                delta -= cached_bytes(&old) as isize;
            }
        }
        delta
    }
}

/// Bytes a cached turn holds: the turn, its `Arc` counts and its deque slot.
fn cached_bytes(turn: &Turn) -> usize {
    turn.approx_bytes() + std::mem::size_of::<Arc<Turn>>() + 2 * std::mem::size_of::<usize>()
}

fn apply_delta(total: &mut usize, delta: isize) {
    *total = total.saturating_add_signed(delta);
}

#[async_trait]
impl RecentStore for MemoryRecent {
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn push(&self, turns: &[Turn]) -> Result<()> {
        if self.config.max_turns_per_session == 0 {
            return Ok(());
        }
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        for turn in turns {
            let key = SessionKey {
                scope: turn.scope.clone(),
                session: turn.session_id.clone(),
            };
            let entry = inner.entry(&key, now);
            let delta = self.insert_turn(entry, turn);
            apply_delta(&mut entry.bytes, delta);
            apply_delta(&mut inner.bytes, delta);
        }
        self.enforce_limits(&mut inner, now);
        Ok(())
    }

    async fn fill(&self, scope: &Scope, session: &SessionId, turns: &[Turn]) -> Result<()> {
        let now = self.clock.now();
        let key = SessionKey {
            scope: scope.clone(),
            session: session.clone(),
        };
        let mut inner = self.inner.lock();
        if self.config.max_turns_per_session == 0 {
            return Ok(());
        }
        let entry = inner.entry(&key, now);
        entry.complete = true;
        let mut delta = 0;
        for turn in turns
            .iter()
            .filter(|t| &t.scope == scope && &t.session_id == session)
        {
            delta += self.insert_turn(entry, turn);
        }
        apply_delta(&mut entry.bytes, delta);
        apply_delta(&mut inner.bytes, delta);
        self.enforce_limits(&mut inner, now);
        Ok(())
    }

    async fn recent(
        &self,
        scope: &Scope,
        session: &SessionId,
        limit: usize,
        order: Order,
    ) -> Result<Option<Vec<Turn>>> {
        let now = self.clock.now();
        let key = SessionKey {
            scope: scope.clone(),
            session: session.clone(),
        };
        let mut inner = self.inner.lock();
        let expired = match inner.sessions.peek(&key) {
            None => return Ok(None),
            Some(entry) if !entry.complete => return Ok(None),
            Some(entry) => self.is_expired(entry, now),
        };
        if expired {
            inner.remove(&key);
            return Ok(None);
        }
        let entry = inner.entry(&key, now);
        let skip = entry.turns.len().saturating_sub(limit);
        let newest = entry.turns.iter().skip(skip).map(|t| Turn::clone(t));
        let turns = match order {
            Order::OldestFirst => newest.collect(),
            Order::NewestFirst => {
                let mut v: Vec<Turn> = newest.collect();
                v.reverse();
                v
            }
        };
        Ok(Some(turns))
    }

    async fn forget_user(&self, scope: &Scope) -> Result<()> {
        let mut inner = self.inner.lock();
        let sessions = inner.by_user.remove(scope).unwrap_or_default();
        for session in sessions {
            let key = SessionKey {
                scope: scope.clone(),
                session,
            };
            if let Some(entry) = inner.sessions.pop(&key) {
                inner.bytes -= entry.bytes;
            }
        }
        Ok(())
    }

    async fn forget_turn(&self, scope: &Scope, id: TurnId) -> Result<()> {
        // The session is dropped whole, not trimmed: the turn that would slide into the
        // window in its place is only in the archive, so the next read refills from there.
        let mut inner = self.inner.lock();
        let holding: Vec<SessionKey> = inner
            .by_user
            .get(scope)
            .into_iter()
            .flatten()
            .map(|session| SessionKey {
                scope: scope.clone(),
                session: session.clone(),
            })
            .filter(|key| {
                inner
                    .sessions
                    .peek(key)
                    .is_some_and(|entry| entry.turns.binary_search_by_key(&id, |t| t.id).is_ok())
            })
            .collect();
        for key in holding {
            inner.remove(&key);
        }
        Ok(())
    }
}
