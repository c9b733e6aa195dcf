//! The recent tier on a Redis server.
//!
//! # Keys
//!
//! Every key of one user carries the same Redis Cluster hash tag, so all of them land in
//! one slot and each script below touches a single slot:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `PREFIX:{TENANT.USER}:s:SESSION` | sorted set | the session's turns as JSON, scored by turn id |
//! | `PREFIX:{TENANT.USER}:m:SESSION` | hash | `t`: last touch (ms, engine clock); `c`: `1` once filled |
//! | `PREFIX:{TENANT.USER}:idx` | set | the user's `SESSION`s, so forgetting a user needs no `KEYS` |
//!
//! `TENANT`, `USER` and `SESSION` are the lower-case hex of the ids' UTF-8 bytes, so no
//! id can close the hash tag or add a `:`; `PREFIX` is `key_prefix` from the config.
//!
//! # Semantics
//!
//! The same as [`MemoryRecent`](super::memory::MemoryRecent): a session answers reads only
//! once `fill`ed (`c` in its state hash); turns pushed before are kept and merged by the
//! fill; the last N turns by id are kept, a turn id already held is not added twice. A
//! session untouched for `ttl_secs` by the engine's clock is treated as gone (checked
//! against `t` by the scripts, so an injected clock is honoured); Redis also expires the
//! keys after the same TTL of its own clock, so idle sessions never pile up. The memory
//! cap is the server's own `maxmemory` policy; `max_bytes` is not used here.
//!
//! # Round trips
//!
//! Each operation runs as Lua scripts (`EVAL`, atomic per session): a push is one
//! pipeline with one script per touched session, a fill and a read are one script each.
//! Forgetting reads the user's index first, then drops in a second round trip.
//!
//! Turn ids are scores, i.e. doubles: exact up to 2^53, far beyond any archive.
//!
//! # Outages
//!
//! Reads have a connection of their own, writes another: one group commit releases a
//! thousand stores whose pushes reach Redis together, and a context's read pipelined
//! behind them on one connection waited for all of them (Redis serves each connection's
//! commands in order, and the connections in turn). Each is a [`ConnectionManager`],
//! opened on first use and re-established by itself after the server restarts. While the server is unreachable every call fails
//! fast with [`Error::Unavailable`], so the caller falls back to the archive.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError};
use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::{RecentConfig, RecentStore};
use crate::clock::SharedClock;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Order, Scope, SessionId, Turn, TurnId};

const BACKEND: &str = "redis recent";

/// How long one connection attempt may take before the call fails as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may wait for its answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest TTL handed to Redis (ten years): larger values are refused by `PEXPIRE`.
const MAX_TTL_MS: u64 = 10 * 365 * 24 * 60 * 60 * 1000;

/// Shared prologue: `now`, `ttl`, and a session whose last touch is older than the TTL
/// (by the engine's clock) is dropped first. KEYS[1] turns, KEYS[2] state.
const PROLOGUE: &str = r#"
local ttl = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local touched = redis.call('HGET', KEYS[2], 't')
if touched and now - tonumber(touched) >= ttl then
  redis.call('DEL', KEYS[1], KEYS[2])
end
"#;

/// Adds turns, trims to the last N, touches. KEYS: turns, state, user index. ARGV: ttl
/// ms, now ms, max turns, session (index member), `1` to mark filled or `0`, then pairs
/// of turn id and JSON.
const ADD_SCRIPT: &str = r#"
local max = tonumber(ARGV[3])
for i = 6, #ARGV, 2 do
  if redis.call('ZCOUNT', KEYS[1], ARGV[i], ARGV[i]) == 0 then
    redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
local n = redis.call('ZCARD', KEYS[1])
if n > max then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - max - 1)
end
redis.call('HSET', KEYS[2], 't', ARGV[2])
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[2], 'c', '1')
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ttl)
return 1
"#;

/// Reads the newest turns of a filled session, or nil. KEYS: turns, state, user index.
/// ARGV: ttl ms, now ms, limit.
const READ_SCRIPT: &str = r#"
if redis.call('HGET', KEYS[2], 'c') ~= '1' then
  return false
end
redis.call('HSET', KEYS[2], 't', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
local limit = tonumber(ARGV[3])
if limit == 0 then
  return {}
end
return redis.call('ZRANGE', KEYS[1], -limit, -1)
"#;

/// Drops every session (turns and state key pairs in KEYS) holding turn ARGV[1].
const FORGET_TURN_SCRIPT: &str = r#"
for i = 1, #KEYS, 2 do
  if redis.call('ZCOUNT', KEYS[i], ARGV[1], ARGV[1]) > 0 then
    redis.call('DEL', KEYS[i], KEYS[i + 1])
  end
end
return 1
"#;

fn hex(text: &str) -> String {
    use std::fmt::Write;
    text.bytes()
        .fold(String::with_capacity(text.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Names of the keys of one user.
struct UserKeys {
    /// `PREFIX:{TENANT.USER}:`
    base: String,
}

impl UserKeys {
    fn new(prefix: &str, scope: &Scope) -> Self {
        Self {
            base: format!(
                "{prefix}:{{{}.{}}}:",
                hex(scope.tenant.as_str()),
                hex(scope.user.as_str())
            ),
        }
    }

    fn turns(&self, session_hex: &str) -> String {
        format!("{}s:{session_hex}", self.base)
    }

    fn state(&self, session_hex: &str) -> String {
        format!("{}m:{session_hex}", self.base)
    }

    fn index(&self) -> String {
        format!("{}idx", self.base)
    }
}

fn map_err(err: RedisError) -> Error {
    use ::redis::ErrorKind as K;
    let transient = err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_timeout()
        || err.is_cluster_error()
        || matches!(
            err.kind(),
            K::BusyLoadingError | K::TryAgain | K::ClusterDown | K::MasterDown | K::ReadOnly
        );
    let kind = if transient {
        ErrorKind::Unavailable
    } else if err.kind() == K::TypeError {
        ErrorKind::Corrupt
    } else {
        ErrorKind::Internal
    };
    Error::backend(BACKEND, kind, err)
}

/// The recent tier on a Redis server; see the [module docs](self) for its keys.
pub struct RedisRecent {
    config: RecentConfig,
    clock: SharedClock,
    client: Client,
    /// Pushes, fills, forgets and pings.
    writes: OnceCell<ConnectionManager>,
    /// Reads of a session's turns.
    reads: OnceCell<ConnectionManager>,
}

impl fmt::Debug for RedisRecent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRecent")
            .field("redis_url", &self.client.get_connection_info().addr)
            .field("key_prefix", &self.config.key_prefix)
            .field("connected", &self.writes.initialized())
            .finish()
    }
}

impl RedisRecent {
    /// A store on the server at `config.redis_url`, keys under `config.key_prefix`. Only
    /// checks the settings: the connection is opened on first use (and re-opened after
    /// an outage), so an engine starts while Redis is down and serves from the archive.
    pub fn new(config: RecentConfig, clock: SharedClock) -> Result<Self> {
        if config.key_prefix.is_empty() || config.key_prefix.contains(['{', '}']) {
            return Err(Error::InvalidInput {
                field: "storage.recent.key_prefix",
                reason: "must be non-empty and contain no '{' or '}'".to_owned(),
            });
        }
        let client = Client::open(config.redis_url.as_str()).map_err(|e| Error::InvalidInput {
            field: "storage.recent.redis_url",
            reason: e.to_string(),
        })?;
        Ok(Self {
            config,
            clock,
            client,
            writes: OnceCell::new(),
            reads: OnceCell::new(),
        })
    }

    /// The connection for writes.
    async fn conn(&self) -> Result<ConnectionManager> {
        Self::open(&self.client, &self.writes).await
    }

    /// The connection for reads.
    async fn read_conn(&self) -> Result<ConnectionManager> {
        Self::open(&self.client, &self.reads).await
    }

    async fn open(
        client: &Client,
        cell: &OnceCell<ConnectionManager>,
    ) -> Result<ConnectionManager> {
        let conn = cell
            .get_or_try_init(|| {
                let settings = ConnectionManagerConfig::new()
                    .set_number_of_retries(1)
                    .set_max_delay(200)
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT);
                ConnectionManager::new_with_config(client.clone(), settings)
            })
            .await
            .map_err(map_err)?;
        Ok(conn.clone())
    }

    fn keys(&self, scope: &Scope) -> UserKeys {
        UserKeys::new(&self.config.key_prefix, scope)
    }

    fn ttl_ms(&self) -> u64 {
        self.config
            .ttl_secs
            .saturating_mul(1000)
            .clamp(1, MAX_TTL_MS)
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// One `EVAL` of [`ADD_SCRIPT`] for one session.
    fn add_cmd(
        &self,
        scope: &Scope,
        session: &SessionId,
        turns: &[&Turn],
        fill: bool,
    ) -> Result<::redis::Cmd> {
        let keys = self.keys(scope);
        let session_hex = hex(session.as_str());
        let mut cmd = ::redis::cmd("EVAL");
        cmd.arg(format!("{PROLOGUE}{ADD_SCRIPT}"))
            .arg(3)
            .arg(keys.turns(&session_hex))
            .arg(keys.state(&session_hex))
            .arg(keys.index())
            .arg(self.ttl_ms())
            .arg(self.now_ms())
            .arg(self.config.max_turns_per_session)
            .arg(&session_hex)
            .arg(if fill { "1" } else { "0" });
        for turn in turns {
            let json = serde_json::to_string(turn).map_err(|e| Error::Internal {
                backend: BACKEND,
                message: format!("encoding turn {}: {e}", turn.id.0),
            })?;
            cmd.arg(turn.id.0).arg(json);
        }
        Ok(cmd)
    }

    /// The user's sessions, from their index.
    async fn sessions(&self, conn: &mut ConnectionManager, keys: &UserKeys) -> Result<Vec<String>> {
        ::redis::cmd("SMEMBERS")
            .arg(keys.index())
            .query_async(conn)
            .await
            .map_err(map_err)
    }
}

#[async_trait]
impl RecentStore for RedisRecent {
    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        ::redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(map_err)
    }

    fn shared(&self) -> bool {
        true
    }

    async fn push(&self, turns: &[Turn]) -> Result<()> {
        if self.config.max_turns_per_session == 0 || turns.is_empty() {
            return Ok(());
        }
        // Group by session, keeping the order sessions first appear in.
        let mut groups: Vec<(&Scope, &SessionId, Vec<&Turn>)> = Vec::new();
        let mut at: HashMap<(&Scope, &SessionId), usize> = HashMap::new();
        for turn in turns {
            let key = (&turn.scope, &turn.session_id);
            let i = *at.entry(key).or_insert_with(|| {
                groups.push((&turn.scope, &turn.session_id, Vec::new()));
                groups.len() - 1
            });
            groups[i].2.push(turn);
        }
        let mut pipe = ::redis::pipe();
        for (scope, session, turns) in &groups {
            pipe.add_command(self.add_cmd(scope, session, turns, false)?)
                .ignore();
        }
        let mut conn = self.conn().await?;
        pipe.query_async::<()>(&mut conn).await.map_err(map_err)
    }

    async fn fill(&self, scope: &Scope, session: &SessionId, turns: &[Turn]) -> Result<()> {
        if self.config.max_turns_per_session == 0 {
            return Ok(());
        }
        let mine: Vec<&Turn> = turns
            .iter()
            .filter(|t| &t.scope == scope && &t.session_id == session)
            .collect();
        let cmd = self.add_cmd(scope, session, &mine, true)?;
        let mut conn = self.conn().await?;
        cmd.query_async::<()>(&mut conn).await.map_err(map_err)
    }

    async fn recent(
        &self,
        scope: &Scope,
        session: &SessionId,
        limit: usize,
        order: Order,
    ) -> Result<Option<Vec<Turn>>> {
        let keys = self.keys(scope);
        let session_hex = hex(session.as_str());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut conn = self.read_conn().await?;
        let answer: Option<Vec<String>> = ::redis::cmd("EVAL")
            .arg(format!("{PROLOGUE}{READ_SCRIPT}"))
            .arg(3)
            .arg(keys.turns(&session_hex))
            .arg(keys.state(&session_hex))
            .arg(keys.index())
            .arg(self.ttl_ms())
            .arg(self.now_ms())
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(map_err)?;
        let Some(entries) = answer else {
            return Ok(None);
        };
        let mut turns = entries
            .iter()
            .map(|json| {
                serde_json::from_str::<Turn>(json).map_err(|e| Error::Corrupt {
                    backend: BACKEND,
                    message: format!("a cached turn of {}: {e}", keys.turns(&session_hex)),
                })
            })
            .collect::<Result<Vec<Turn>>>()?;
        if order == Order::NewestFirst {
            turns.reverse();
        }
        Ok(Some(turns))
    }

    async fn forget_user(&self, scope: &Scope) -> Result<()> {
        let keys = self.keys(scope);
        let mut conn = self.conn().await?;
        let sessions = self.sessions(&mut conn, &keys).await?;
        let mut del = ::redis::cmd("DEL");
        del.arg(keys.index());
        for session_hex in &sessions {
            del.arg(keys.turns(session_hex))
                .arg(keys.state(session_hex));
        }
        del.query_async::<()>(&mut conn).await.map_err(map_err)
    }

    async fn forget_turn(&self, scope: &Scope, id: TurnId) -> Result<()> {
        // The session is dropped whole, not trimmed: the turn that would slide into the
        // window in its place is only in the archive, so the next read refills from there.
        let keys = self.keys(scope);
        let mut conn = self.conn().await?;
        let sessions = self.sessions(&mut conn, &keys).await?;
        if sessions.is_empty() {
            return Ok(());
        }
        let mut cmd = ::redis::cmd("EVAL");
        cmd.arg(FORGET_TURN_SCRIPT).arg(sessions.len() * 2);
        for session_hex in &sessions {
            cmd.arg(keys.turns(session_hex))
                .arg(keys.state(session_hex));
        }
        cmd.arg(id.0)
            .query_async::<()>(&mut conn)
            .await
            .map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_break_the_hash_tag() {
        let scope = Scope::parse("a}b", "c:d{").unwrap();
        let keys = UserKeys::new("mnemo", &scope);
        assert_eq!(keys.index(), "mnemo:{617d62.633a647b}:idx");
        assert_eq!(keys.turns(&hex("s:1")), "mnemo:{617d62.633a647b}:s:733a31");
    }
}
