//! The recent tier: the last N turns of each session, answered in well under a
//! millisecond. A cache in front of the archive: a miss means "ask the archive".
//!
//! Backends: [`memory::MemoryRecent`] (embedded, in-process) and [`redis::RedisRecent`]
//! (a Redis server, shared by every engine process that points at it).

pub mod memory;
pub mod redis;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Order, Scope, SessionId, Turn, TurnId};

/// Which recent-tier backend to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecentBackend {
    /// In-process bounded cache.
    #[default]
    Memory,
    /// A Redis server (`redis_url`), keys under `key_prefix`.
    Redis,
}

/// Settings of the recent tier. Section `[storage.recent]` of `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecentConfig {
    /// Which backend.
    pub backend: RecentBackend,
    /// Turns kept per session; older ones fall out.
    pub max_turns_per_session: usize,
    /// Memory cap over all sessions, in bytes; least recently used sessions are evicted
    /// whole to stay under it.
    pub max_bytes: usize,
    /// A session untouched (no push, no read) for this many seconds expires.
    pub ttl_secs: u64,
    /// Where the Redis server is, for `backend = "redis"`: `redis://HOST:PORT[/DB]`.
    pub redis_url: String,
    /// Prefix of every Redis key this tier writes, so several deployments can share one
    /// server. Must not contain `{` or `}` (they delimit the Redis Cluster hash tag).
    pub key_prefix: String,
}

impl Default for RecentConfig {
    fn default() -> Self {
        Self {
            backend: RecentBackend::Memory,
            max_turns_per_session: 50,
            max_bytes: 256 * 1024 * 1024,
            ttl_secs: 24 * 60 * 60,
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            key_prefix: "mnemo".to_owned(),
        }
    }
}

/// The recent tier.
///
/// Sessions are cached whole or not at all: `recent` answers `None` when the session is
/// not cached (never read, evicted, expired), and the caller falls back to the archive
/// and `fill`s the session from it. Only a filled session answers, so an answer never
/// lacks turns the archive holds: turns pushed to a session before it is filled are
/// kept aside and merged in by the fill, which closes the race between a read that
/// misses and a write that lands meanwhile.
#[async_trait]
pub trait RecentStore: Send + Sync + std::fmt::Debug {
    /// Appends stored turns to their sessions, keeping the last N per session. Pushing a
    /// turn already cached is a no-op.
    async fn push(&self, turns: &[Turn]) -> Result<()>;

    /// Merges `turns` of one session (as read from the archive, any order) with what was
    /// pushed to it, keeps the last N by id, and makes the session answer reads.
    async fn fill(&self, scope: &Scope, session: &SessionId, turns: &[Turn]) -> Result<()>;

    /// Up to `limit` of the session's cached turns in `order`, or `None` when the session
    /// is not cached.
    async fn recent(
        &self,
        scope: &Scope,
        session: &SessionId,
        limit: usize,
        order: Order,
    ) -> Result<Option<Vec<Turn>>>;

    /// Drops every cached turn of the user.
    async fn forget_user(&self, scope: &Scope) -> Result<()>;

    /// Drops one turn of the user from every session it is cached in.
    async fn forget_turn(&self, scope: &Scope, id: TurnId) -> Result<()>;

    /// Asks the backend whether it answers (health: a tier is up only once it does).
    async fn ping(&self) -> Result<()>;

    /// Whether the cache outlives this process and is every node's (a server): the
    /// sessions it missed a write for are then marked in the archive too, for a restart
    /// and the other nodes. A cache in this process dies with it and is no other node's.
    fn shared(&self) -> bool {
        false
    }
}
