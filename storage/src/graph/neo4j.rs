//! The graph tier on a Bolt graph server (Neo4j, or FalkorDB through a Bolt 4 bridge)
//! through neo4rs.
//!
//! Model, with `tenant` and `user` on every node and relationship and in every `MATCH`:
//! - `(:MnemoUser {tenant, user, id: 0})`: the user's own node;
//! - `(:MnemoEntity {tenant, user, key, id, name, kind, first_seen, last_seen})`, `key`
//!   being [`name_key`] of the name;
//! - `(:MnemoAlias {tenant, user, key, name, entity})`: an alias, owned by the first
//!   entity that claimed it (as in the embedded backend);
//! - `(:MnemoUser)-[:MENTIONS]->(:MnemoEntity)` and `(:MnemoEntity)-[:RELATED_TO]->
//!   (:MnemoEntity)` (from the smaller id to the larger), each holding its supporting
//!   turns as three parallel lists (`turns`, `weights`, `times`) plus their sums.
//!
//! Times are integer microseconds since the epoch, so no temporal type crosses the wire.
//! Entity ids are derived from (tenant, user, key) by hash, so a write needs no id
//! allocation round trip and replays produce the same ids. Every user value travels as
//! a query parameter; no query text is ever built from user input.
//!
//! A write is one transaction of at most five `UNWIND` statements (users, entities,
//! aliases, MENTIONS, RELATED_TO) whatever the batch size. Idempotence per turn comes
//! from the support lists: a turn already listed on an edge adds nothing.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use neo4rs::{query, BoltType, ConfigBuilder, Graph, Query, Txn};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::reads::{self, GraphLookups, MentionStat};
use super::{
    name_key, ContextEntities, Edge, EdgeKind, Entity, GraphConfig, GraphStore, GraphUpdate,
    Neighbourhood, RankedEntity, Recency,
};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Scope, Timestamp, TimestampExt, TurnId};

const BACKEND: &str = "neo4j graph";

/// Which server speaks Bolt at the configured url; they differ only in how the schema
/// is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BoltServer {
    /// Neo4j 5: uniqueness constraints and composite indexes, `IF NOT EXISTS`.
    #[default]
    Neo4j,
    /// FalkorDB: its Cypher has no `CREATE CONSTRAINT` and indexes one property per
    /// index, so single-property indexes are created instead.
    Falkordb,
}

/// Settings of the Neo4j graph backend. Section `[storage.graph.neo4j]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Neo4jConfig {
    /// Bolt address, e.g. `bolt://127.0.0.1:7687` (or `127.0.0.1:7687`).
    pub url: String,
    /// User name for basic auth.
    pub user: String,
    /// Password (set it through `MNEMO__STORAGE__GRAPH__NEO4J__PASSWORD`, not the file).
    pub password: String,
    /// Database to use (on FalkorDB: the graph name).
    pub database: String,
    /// Which server it is.
    pub server: BoltServer,
    /// Connections in the pool.
    pub max_connections: usize,
    /// Records fetched per PULL.
    pub fetch_size: usize,
    /// Longest one graph operation may take before it fails with a timeout.
    pub timeout_ms: u64,
}

impl Default for Neo4jConfig {
    fn default() -> Self {
        Self {
            url: "bolt://127.0.0.1:7687".into(),
            user: "neo4j".into(),
            password: String::new(),
            database: "neo4j".into(),
            server: BoltServer::Neo4j,
            max_connections: 16,
            fetch_size: 500,
            timeout_ms: 5_000,
        }
    }
}

/// Schema statements for Neo4j 5. A uniqueness constraint brings its own index.
const NEO4J_SCHEMA: &[&str] = &[
    "CREATE CONSTRAINT mnemo_user_key IF NOT EXISTS FOR (u:MnemoUser) \
     REQUIRE (u.tenant, u.user) IS UNIQUE",
    "CREATE CONSTRAINT mnemo_entity_key IF NOT EXISTS FOR (e:MnemoEntity) \
     REQUIRE (e.tenant, e.user, e.key) IS UNIQUE",
    "CREATE CONSTRAINT mnemo_alias_key IF NOT EXISTS FOR (a:MnemoAlias) \
     REQUIRE (a.tenant, a.user, a.key) IS UNIQUE",
    "CREATE INDEX mnemo_entity_id IF NOT EXISTS FOR (e:MnemoEntity) ON (e.tenant, e.user, e.id)",
    "CREATE INDEX mnemo_alias_entity IF NOT EXISTS FOR (a:MnemoAlias) \
     ON (a.tenant, a.user, a.entity)",
];

/// Schema statements for FalkorDB: one property per index (its indexes are per
/// attribute, and a second index naming an indexed attribute fails whole).
const FALKORDB_SCHEMA: &[&str] = &[
    "CREATE INDEX FOR (u:MnemoUser) ON (u.user)",
    "CREATE INDEX FOR (e:MnemoEntity) ON (e.key)",
    "CREATE INDEX FOR (e:MnemoEntity) ON (e.id)",
    "CREATE INDEX FOR (e:MnemoEntity) ON (e.user)",
    "CREATE INDEX FOR (a:MnemoAlias) ON (a.key)",
    "CREATE INDEX FOR (a:MnemoAlias) ON (a.entity)",
];

/// Adds one supporting turn per `row.support` entry not yet on `r`, keeping the sums,
/// count and first/last seen in step; ends inside a `SET` on `r`, so the MENTIONS upsert
/// can append the entity's times to it. The new values are computed in one `WITH` first:
/// FalkorDB lets a later clause read a property set by an earlier `SET` of the same
/// query as it was before.
const SUPPORT_EDGE: &str = "ON CREATE SET r.tenant = row.tenant, r.user = row.user, r.turns = [], \
     r.weights = [], r.times = [], r.weight = 0.0, r.count = 0, \
     r.first_seen = row.support[0].time, r.last_seen = row.support[0].time \
     WITH b, r, [s IN row.support WHERE NOT s.turn IN r.turns] AS fresh \
     WITH b, r, fresh, \
     reduce(m = r.first_seen, s IN fresh | CASE WHEN s.time < m THEN s.time ELSE m END) AS first_seen, \
     reduce(m = r.last_seen, s IN fresh | CASE WHEN s.time > m THEN s.time ELSE m END) AS last_seen \
     SET r.turns = r.turns + [s IN fresh | s.turn], \
     r.weights = r.weights + [s IN fresh | s.weight], \
     r.times = r.times + [s IN fresh | s.time], \
     r.weight = reduce(acc = r.weight, s IN fresh | acc + s.weight), \
     r.count = r.count + size(fresh), \
     r.first_seen = first_seen, r.last_seen = last_seen";

/// The graph tier on a Bolt server.
#[derive(Clone)]
pub struct Neo4jGraph {
    /// The connection pool, made (and the schema declared) on first use that succeeds:
    /// a graph server unreachable at start leaves the tier down, not the engine.
    graph: tokio::sync::OnceCell<Graph>,
    bolt: neo4rs::Config,
    server: BoltServer,
    timeout: Duration,
    max_support_per_edge: usize,
}

impl std::fmt::Debug for Neo4jGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jGraph")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Neo4jGraph {
    /// Connects to the server `config.neo4j` names and declares the schema (idempotent).
    pub async fn open(config: &GraphConfig) -> Result<Self> {
        let settings = &config.neo4j;
        let bolt = ConfigBuilder::default()
            .uri(settings.url.as_str())
            .user(settings.user.as_str())
            .password(settings.password.as_str())
            .db(settings.database.as_str())
            .max_connections(settings.max_connections.max(1))
            .fetch_size(settings.fetch_size.max(1))
            .build()
            .map_err(|e| Error::invalid("storage.graph.neo4j", e.to_string()))?;
        let store = Self {
            graph: tokio::sync::OnceCell::new(),
            bolt,
            server: settings.server,
            timeout: Duration::from_millis(settings.timeout_ms.max(1)),
            max_support_per_edge: config.max_support_per_edge,
        };
        match store.graph().await {
            Ok(_) => {}
            // The graph is optional: the engine starts, the graph actor shows the tier
            // down and connects once the server answers.
            Err(e) if e.kind() == ErrorKind::Unavailable || e.kind() == ErrorKind::Timeout => {
                tracing::warn!(
                    error = %e,
                    "the graph server does not answer; the graph tier starts down and \
                     connects when it does"
                );
            }
            Err(e) => return Err(e),
        }
        Ok(store)
    }

    /// The connection pool, connecting and declaring the schema first if not yet done.
    async fn graph(&self) -> Result<&Graph> {
        self.graph
            .get_or_try_init(|| async {
                let connect = async { Graph::connect(self.bolt.clone()).await.map_err(bolt_err) };
                let graph = self.bounded(connect).await.map_err(|e| match e.kind() {
                    ErrorKind::Timeout => Error::unavailable(BACKEND, e.to_string()),
                    _ => e,
                })?;
                self.bounded(declare_schema(&graph, self.server)).await?;
                Ok(graph)
            })
            .await
    }
}

/// Declares the schema `server` takes (constraints and indexes, where it has them).
async fn declare_schema(graph: &Graph, server: BoltServer) -> Result<()> {
    {
        let statements = match server {
            BoltServer::Neo4j => NEO4J_SCHEMA,
            BoltServer::Falkordb => FALKORDB_SCHEMA,
        };
        for statement in statements {
            match graph.run(query(statement)).await {
                Ok(()) => {}
                // FalkorDB has no IF NOT EXISTS: a second start finds its indexes there.
                Err(neo4rs::Error::Neo4j(e))
                    if server == BoltServer::Falkordb
                        && e.message().contains("already indexed") => {}
                Err(e) => {
                    return Err(Error::unavailable(
                        BACKEND,
                        format!("declaring the schema ({statement}): {}", bolt_err(e)),
                    ))
                }
            }
        }
        Ok(())
    }
}

impl Neo4jGraph {
    /// Runs `fut` under the configured timeout.
    async fn bounded<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| Error::Timeout {
                backend: BACKEND,
                message: format!("no answer within {:?}", self.timeout),
            })?
    }

    /// Every row of a read query, deserialised.
    async fn rows<T: serde::de::DeserializeOwned>(&self, q: Query) -> Result<Vec<T>> {
        let mut stream = self.graph().await?.execute(q).await.map_err(bolt_err)?;
        let mut out = Vec::new();
        while let Some(row) = stream.next().await.map_err(bolt_err)? {
            out.push(row.to::<T>().map_err(|e| Error::corrupt(BACKEND, e))?);
        }
        Ok(out)
    }
}

/// Every row of a query inside `txn`, deserialised.
async fn txn_rows<T: serde::de::DeserializeOwned>(txn: &mut Txn, q: Query) -> Result<Vec<T>> {
    let mut stream = txn.execute(q).await.map_err(bolt_err)?;
    let mut out = Vec::new();
    while let Some(row) = stream.next(txn.handle()).await.map_err(bolt_err)? {
        out.push(row.to::<T>().map_err(|e| Error::corrupt(BACKEND, e))?);
    }
    Ok(out)
}

/// Classifies a neo4rs error.
fn bolt_err(err: neo4rs::Error) -> Error {
    use neo4rs::Error as E;
    let kind = match &err {
        E::IOError { .. } | E::ConnectionError => ErrorKind::Unavailable,
        E::Neo4j(e) if e.kind() == neo4rs::Neo4jErrorKind::Transient => ErrorKind::Unavailable,
        E::DeserializationError(_) | E::ConversionError | E::InvalidTypeMarker(_) => {
            ErrorKind::Corrupt
        }
        _ => ErrorKind::Internal,
    };
    Error::backend(BACKEND, kind, err)
}

/// A Bolt map from named values.
fn map<const N: usize>(entries: [(&str, BoltType); N]) -> BoltType {
    BoltType::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect::<neo4rs::BoltMap>(),
    )
}

/// The id of the entity `key` of `scope`: 62 bits of SHA-256, never 0 (the user's
/// node). Stable across versions: it is stored.
fn entity_id(scope: &Scope, key: &str) -> i64 {
    let mut hasher = Sha256::new();
    for part in [scope.tenant.as_str(), scope.user.as_str(), key] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    let id = (u64::from_be_bytes(bytes) >> 2) as i64;
    id.max(1)
}

/// One supporting turn of an edge.
#[derive(Debug, Clone, Copy)]
struct Support {
    turn: i64,
    weight: f64,
    time: i64,
}

impl Support {
    /// An edge's new supporting turns as a Bolt list of maps (`row.support`).
    fn list(support: Vec<Support>) -> BoltType {
        support
            .into_iter()
            .map(|s| {
                map([
                    ("turn", s.turn.into()),
                    ("weight", s.weight.into()),
                    ("time", s.time.into()),
                ])
            })
            .collect::<Vec<_>>()
            .into()
    }
}

/// What a batch of updates writes, with repeats folded: each user, entity and alias
/// once (first name wins), each edge once with every new supporting turn.
#[derive(Default)]
struct WritePlan {
    users: BTreeSet<(String, String)>,
    entities: BTreeMap<(String, String, String), (i64, String, String)>,
    aliases: BTreeMap<(String, String, String), (String, i64)>,
    mentions: BTreeMap<(String, String, i64), Vec<Support>>,
    related: BTreeMap<(String, String, i64, i64), Vec<Support>>,
}

impl WritePlan {
    fn new(updates: &[GraphUpdate]) -> Self {
        let mut plan = Self::default();
        let mut turns_seen: HashSet<(&str, &str, i64)> = HashSet::new();
        for update in updates {
            let (tenant, user) = (update.scope.tenant.as_str(), update.scope.user.as_str());
            if !turns_seen.insert((tenant, user, update.turn_id.0)) {
                continue;
            }
            let owner = || (tenant.to_owned(), user.to_owned());
            plan.users.insert(owner());
            let time = update.time.to_micros();
            // The same entity named twice in one turn counts once, with its larger weight.
            let mut mentioned: BTreeMap<i64, f64> = BTreeMap::new();
            for mention in &update.entities {
                let key = name_key(&mention.name);
                let id = entity_id(&update.scope, &key);
                plan.entities
                    .entry((tenant.to_owned(), user.to_owned(), key))
                    .or_insert_with(|| {
                        (
                            id,
                            mention.name.trim().to_owned(),
                            mention.kind.trim().to_owned(),
                        )
                    });
                for alias in &mention.aliases {
                    plan.aliases
                        .entry((tenant.to_owned(), user.to_owned(), name_key(alias)))
                        .or_insert_with(|| (alias.trim().to_owned(), id));
                }
                let w = mentioned.entry(id).or_insert(0.0);
                *w = w.max(mention.weight);
            }
            let turn = update.turn_id.0;
            for (&id, &weight) in &mentioned {
                plan.mentions
                    .entry((tenant.to_owned(), user.to_owned(), id))
                    .or_default()
                    .push(Support { turn, weight, time });
            }
            let ids: Vec<(i64, f64)> = mentioned.into_iter().collect();
            for (i, &(a, wa)) in ids.iter().enumerate() {
                for &(b, wb) in &ids[i + 1..] {
                    plan.related
                        .entry((tenant.to_owned(), user.to_owned(), a, b))
                        .or_default()
                        .push(Support {
                            turn,
                            weight: (wa * wb).sqrt(),
                            time,
                        });
                }
            }
        }
        plan
    }

    /// The statements that write the plan, in dependency order; empty parts are left out.
    fn statements(self) -> Vec<Query> {
        let mut out = Vec::new();
        let users: Vec<BoltType> = self
            .users
            .into_iter()
            .map(|(t, u)| map([("tenant", t.into()), ("user", u.into())]))
            .collect();
        if !users.is_empty() {
            out.push(
                query(
                    "UNWIND $rows AS row \
                     MERGE (u:MnemoUser {tenant: row.tenant, user: row.user}) \
                     ON CREATE SET u.id = 0",
                )
                .param("rows", users),
            );
        }
        let entities: Vec<BoltType> = self
            .entities
            .into_iter()
            .map(|((t, u, key), (id, name, kind))| {
                map([
                    ("tenant", t.into()),
                    ("user", u.into()),
                    ("key", key.into()),
                    ("id", id.into()),
                    ("name", name.into()),
                    ("kind", kind.into()),
                ])
            })
            .collect();
        if !entities.is_empty() {
            out.push(
                query(
                    "UNWIND $rows AS row \
                     MERGE (e:MnemoEntity {tenant: row.tenant, user: row.user, key: row.key}) \
                     ON CREATE SET e.id = row.id, e.name = row.name, e.kind = row.kind, \
                     e.first_seen = 0, e.last_seen = 0",
                )
                .param("rows", entities),
            );
        }
        let aliases: Vec<BoltType> = self
            .aliases
            .into_iter()
            .map(|((t, u, key), (name, entity))| {
                map([
                    ("tenant", t.into()),
                    ("user", u.into()),
                    ("key", key.into()),
                    ("name", name.into()),
                    ("entity", entity.into()),
                ])
            })
            .collect();
        if !aliases.is_empty() {
            out.push(
                query(
                    "UNWIND $rows AS row \
                     MERGE (a:MnemoAlias {tenant: row.tenant, user: row.user, key: row.key}) \
                     ON CREATE SET a.name = row.name, a.entity = row.entity",
                )
                .param("rows", aliases),
            );
        }
        let mentions: Vec<BoltType> = self
            .mentions
            .into_iter()
            .map(|((t, u, dst), support)| {
                map([
                    ("tenant", t.into()),
                    ("user", u.into()),
                    ("dst", dst.into()),
                    ("support", Support::list(support)),
                ])
            })
            .collect();
        if !mentions.is_empty() {
            // The entity's first and last seen follow its MENTIONS edge.
            out.push(
                query(&format!(
                    "UNWIND $rows AS row \
                     MATCH (a:MnemoUser {{tenant: row.tenant, user: row.user}}) \
                     MATCH (b:MnemoEntity {{tenant: row.tenant, user: row.user, id: row.dst}}) \
                     MERGE (a)-[r:MENTIONS]->(b) {SUPPORT_EDGE}, \
                     b.first_seen = first_seen, b.last_seen = last_seen"
                ))
                .param("rows", mentions),
            );
        }
        let related: Vec<BoltType> = self
            .related
            .into_iter()
            .map(|((t, u, src, dst), support)| {
                map([
                    ("tenant", t.into()),
                    ("user", u.into()),
                    ("src", src.into()),
                    ("dst", dst.into()),
                    ("support", Support::list(support)),
                ])
            })
            .collect();
        if !related.is_empty() {
            out.push(
                query(&format!(
                    "UNWIND $rows AS row \
                     MATCH (a:MnemoEntity {{tenant: row.tenant, user: row.user, id: row.src}}) \
                     MATCH (b:MnemoEntity {{tenant: row.tenant, user: row.user, id: row.dst}}) \
                     MERGE (a)-[r:RELATED_TO]->(b) {SUPPORT_EDGE}"
                ))
                .param("rows", related),
            );
        }
        out
    }
}

/// A query with the scope's tenant and user bound as `$tenant` and `$user`.
fn scoped(text: &str, scope: &Scope) -> Query {
    query(text)
        .param("tenant", scope.tenant.as_str())
        .param("user", scope.user.as_str())
}

#[derive(Deserialize)]
struct MentionRow {
    entity: i64,
    weight: f64,
    count: i64,
    last_seen: i64,
}

#[derive(Deserialize)]
struct EntityRow {
    id: i64,
    kind: String,
    name: String,
    first_seen: i64,
    last_seen: i64,
    aliases: Vec<String>,
}

#[derive(Deserialize)]
struct IdRow {
    id: i64,
}

#[derive(Deserialize)]
struct EdgeRow {
    src: i64,
    dst: i64,
    weight: f64,
    count: i64,
    first_seen: i64,
    last_seen: i64,
    turns: Vec<i64>,
}

/// An edge's support lists, as stored.
#[derive(Deserialize)]
struct SupportRow {
    src: i64,
    dst: i64,
    turns: Vec<i64>,
    weights: Vec<f64>,
    times: Vec<i64>,
}

impl SupportRow {
    /// The edge with `turn` taken out: `None` when nothing supports it any more, else its
    /// new lists and sums as a parameter row.
    fn without(self, turn: i64) -> Option<BoltType> {
        let kept: Vec<(i64, f64, i64)> = self
            .turns
            .iter()
            .zip(&self.weights)
            .zip(&self.times)
            .map(|((&t, &w), &s)| (t, w, s))
            .filter(|&(t, _, _)| t != turn)
            .collect();
        let first = kept.iter().map(|k| k.2).min()?;
        let last = kept.iter().map(|k| k.2).max()?;
        // Recomputed from what is left rather than subtracted, so rounding never leaves
        // a ghost weight behind.
        let weight: f64 = kept.iter().map(|k| k.1).sum();
        Some(map([
            ("src", self.src.into()),
            ("dst", self.dst.into()),
            ("turns", kept.iter().map(|k| k.0).collect::<Vec<_>>().into()),
            (
                "weights",
                kept.iter().map(|k| k.1).collect::<Vec<_>>().into(),
            ),
            ("times", kept.iter().map(|k| k.2).collect::<Vec<_>>().into()),
            ("weight", weight.into()),
            ("count", (kept.len() as i64).into()),
            ("first_seen", first.into()),
            ("last_seen", last.into()),
        ]))
    }
}

/// Sets an edge's support lists and sums from `row`.
const SET_SUPPORT: &str = "SET r.turns = row.turns, r.weights = row.weights, r.times = row.times, \
     r.weight = row.weight, r.count = row.count, r.first_seen = row.first_seen, \
     r.last_seen = row.last_seen";

#[async_trait]
impl GraphLookups for Neo4jGraph {
    async fn mention_stats(&self, scope: &Scope) -> Result<Vec<MentionStat>> {
        let rows: Vec<MentionRow> = self
            .rows(scoped(
                "MATCH (u:MnemoUser {tenant: $tenant, user: $user})-[r:MENTIONS]->\
                 (e:MnemoEntity {tenant: $tenant, user: $user}) \
                 RETURN e.id AS entity, r.weight AS weight, r.count AS count, \
                 r.last_seen AS last_seen",
                scope,
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| MentionStat {
                entity: r.entity,
                weight: r.weight,
                count: r.count.max(0) as u64,
                last_seen: Timestamp::from_micros(r.last_seen),
            })
            .collect())
    }

    async fn entities_by_ids(&self, scope: &Scope, ids: &[i64]) -> Result<Vec<Entity>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<EntityRow> = self
            .rows(
                scoped(
                    "MATCH (e:MnemoEntity {tenant: $tenant, user: $user}) WHERE e.id IN $ids \
                     OPTIONAL MATCH (a:MnemoAlias {tenant: $tenant, user: $user, entity: e.id}) \
                     RETURN e.id AS id, e.kind AS kind, e.name AS name, \
                     e.first_seen AS first_seen, e.last_seen AS last_seen, \
                     collect(a.name) AS aliases",
                    scope,
                )
                .param("ids", ids.to_vec()),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let mut aliases = r.aliases;
                aliases.sort();
                Entity {
                    id: r.id,
                    kind: r.kind,
                    name: r.name,
                    aliases,
                    first_seen: Timestamp::from_micros(r.first_seen),
                    last_seen: Timestamp::from_micros(r.last_seen),
                }
            })
            .collect())
    }

    async fn id_by_name_key(&self, scope: &Scope, key: &str) -> Result<Option<i64>> {
        let rows: Vec<IdRow> = self
            .rows(
                scoped(
                    "MATCH (e:MnemoEntity {tenant: $tenant, user: $user, key: $key}) \
                     RETURN e.id AS id",
                    scope,
                )
                .param("key", key),
            )
            .await?;
        Ok(rows.first().map(|r| r.id))
    }

    async fn ids_by_keys(&self, scope: &Scope, keys: &[String]) -> Result<Vec<i64>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<IdRow> = self
            .rows(
                scoped(
                    "MATCH (e:MnemoEntity {tenant: $tenant, user: $user}) WHERE e.key IN $keys \
                     RETURN e.id AS id \
                     UNION \
                     MATCH (a:MnemoAlias {tenant: $tenant, user: $user}) WHERE a.key IN $keys \
                     RETURN a.entity AS id",
                    scope,
                )
                .param("keys", keys.to_vec()),
            )
            .await?;
        let mut ids: Vec<i64> = rows.into_iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    async fn related_edges(&self, scope: &Scope, nodes: &[i64], limit: usize) -> Result<Vec<Edge>> {
        let rows: Vec<EdgeRow> = self
            .rows(
                scoped(
                    "MATCH (a:MnemoEntity {tenant: $tenant, user: $user})-[r:RELATED_TO]->\
                     (b:MnemoEntity {tenant: $tenant, user: $user}) \
                     WHERE a.id IN $nodes OR b.id IN $nodes \
                     RETURN a.id AS src, b.id AS dst, r.weight AS weight, r.count AS count, \
                     r.first_seen AS first_seen, r.last_seen AS last_seen, r.turns AS turns \
                     ORDER BY weight DESC, last_seen DESC, src, dst LIMIT $limit",
                    scope,
                )
                .param("nodes", nodes.to_vec())
                .param("limit", i64::try_from(limit).unwrap_or(i64::MAX)),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let mut turns = r.turns;
                turns.sort_unstable_by(|a, b| b.cmp(a));
                turns.truncate(self.max_support_per_edge);
                Edge {
                    kind: EdgeKind::RelatedTo,
                    src: r.src,
                    dst: r.dst,
                    weight: r.weight,
                    count: r.count.max(0) as u64,
                    first_seen: Timestamp::from_micros(r.first_seen),
                    last_seen: Timestamp::from_micros(r.last_seen),
                    turns: turns.into_iter().map(TurnId).collect(),
                }
            })
            .collect())
    }
}

#[async_trait]
impl GraphStore for Neo4jGraph {
    async fn ping(&self) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct One {
            #[allow(dead_code)]
            one: i64,
        }
        // A server that does not answer a ping in time is not up: unavailable, which
        // keeps the tier down (a slow answer to a request is only a timeout).
        self.bounded(self.rows::<One>(Query::new("RETURN 1 AS one".into())))
            .await
            .map(drop)
            .map_err(|e| match e.kind() {
                ErrorKind::Timeout => Error::unavailable(BACKEND, e.to_string()),
                _ => e,
            })
    }

    async fn apply(&self, updates: &[GraphUpdate]) -> Result<()> {
        for update in updates {
            update.validate()?;
        }
        let statements = WritePlan::new(updates).statements();
        if statements.is_empty() {
            return Ok(());
        }
        self.bounded(async {
            let mut txn = self.graph().await?.start_txn().await.map_err(bolt_err)?;
            txn.run_queries(statements).await.map_err(bolt_err)?;
            txn.commit().await.map_err(bolt_err)
        })
        .await
    }

    async fn user_entities(
        &self,
        scope: &Scope,
        recency: Recency,
        limit: usize,
    ) -> Result<Vec<RankedEntity>> {
        self.bounded(reads::user_entities(self, scope, recency, limit))
            .await
    }

    async fn neighbourhood(
        &self,
        scope: &Scope,
        name: &str,
        depth: usize,
        limit: usize,
    ) -> Result<Option<Neighbourhood>> {
        self.bounded(reads::neighbourhood(self, scope, name, depth, limit))
            .await
    }

    async fn find_entities(&self, scope: &Scope, names: &[String]) -> Result<Vec<Entity>> {
        self.bounded(reads::find_entities(self, scope, names)).await
    }

    async fn context_entities(
        &self,
        scope: &Scope,
        recency: Recency,
        names: &[String],
        top: usize,
    ) -> Result<ContextEntities> {
        self.bounded(reads::context_entities(self, scope, recency, names, top))
            .await
    }

    async fn forget_user(&self, scope: &Scope) -> Result<()> {
        self.bounded(async {
            let mut txn = self.graph().await?.start_txn().await.map_err(bolt_err)?;
            txn.run_queries([
                scoped(
                    "MATCH (e:MnemoEntity {tenant: $tenant, user: $user}) DETACH DELETE e",
                    scope,
                ),
                scoped(
                    "MATCH (a:MnemoAlias {tenant: $tenant, user: $user}) DELETE a",
                    scope,
                ),
                scoped(
                    "MATCH (u:MnemoUser {tenant: $tenant, user: $user}) DETACH DELETE u",
                    scope,
                ),
            ])
            .await
            .map_err(bolt_err)?;
            txn.commit().await.map_err(bolt_err)
        })
        .await
    }

    async fn forget_turn(&self, scope: &Scope, turn: TurnId) -> Result<()> {
        self.bounded(async {
            let mut txn = self.graph().await?.start_txn().await.map_err(bolt_err)?;
            let mentions: Vec<SupportRow> = txn_rows(
                &mut txn,
                scoped(
                    "MATCH (u:MnemoUser {tenant: $tenant, user: $user})-[r:MENTIONS]->\
                     (e:MnemoEntity {tenant: $tenant, user: $user}) WHERE $turn IN r.turns \
                     RETURN 0 AS src, e.id AS dst, r.turns AS turns, r.weights AS weights, \
                     r.times AS times",
                    scope,
                )
                .param("turn", turn.0),
            )
            .await?;
            let related: Vec<SupportRow> = txn_rows(
                &mut txn,
                scoped(
                    "MATCH (a:MnemoEntity {tenant: $tenant, user: $user})-[r:RELATED_TO]->\
                     (b:MnemoEntity {tenant: $tenant, user: $user}) WHERE $turn IN r.turns \
                     RETURN a.id AS src, b.id AS dst, r.turns AS turns, r.weights AS weights, \
                     r.times AS times",
                    scope,
                )
                .param("turn", turn.0),
            )
            .await?;
            // An entity whose MENTIONS edge loses its last turn was only known from that
            // turn; its RELATED_TO edges were supported by the same turns, so they go too.
            let mut orphans: Vec<i64> = Vec::new();
            let mut kept_mentions: Vec<BoltType> = Vec::new();
            for row in mentions {
                let dst = row.dst;
                match row.without(turn.0) {
                    Some(kept) => kept_mentions.push(kept),
                    None => orphans.push(dst),
                }
            }
            let mut kept_related: Vec<BoltType> = Vec::new();
            let mut dropped_related: Vec<BoltType> = Vec::new();
            for row in related {
                let ends = map([("src", row.src.into()), ("dst", row.dst.into())]);
                match row.without(turn.0) {
                    Some(kept) => kept_related.push(kept),
                    None => dropped_related.push(ends),
                }
            }
            let mut statements = Vec::new();
            if !kept_mentions.is_empty() {
                statements.push(
                    scoped(
                        &format!(
                            "UNWIND $rows AS row \
                             MATCH (u:MnemoUser {{tenant: $tenant, user: $user}})-[r:MENTIONS]->\
                             (e:MnemoEntity {{tenant: $tenant, user: $user, id: row.dst}}) \
                             {SET_SUPPORT}, e.first_seen = row.first_seen, \
                             e.last_seen = row.last_seen"
                        ),
                        scope,
                    )
                    .param("rows", kept_mentions),
                );
            }
            if !kept_related.is_empty() {
                statements.push(
                    scoped(
                        &format!(
                            "UNWIND $rows AS row \
                             MATCH (a:MnemoEntity {{tenant: $tenant, user: $user, id: row.src}})\
                             -[r:RELATED_TO]->\
                             (b:MnemoEntity {{tenant: $tenant, user: $user, id: row.dst}}) \
                             {SET_SUPPORT}"
                        ),
                        scope,
                    )
                    .param("rows", kept_related),
                );
            }
            if !dropped_related.is_empty() {
                statements.push(
                    scoped(
                        "UNWIND $rows AS row \
                         MATCH (a:MnemoEntity {tenant: $tenant, user: $user, id: row.src})\
                         -[r:RELATED_TO]->\
                         (b:MnemoEntity {tenant: $tenant, user: $user, id: row.dst}) DELETE r",
                        scope,
                    )
                    .param("rows", dropped_related),
                );
            }
            if !orphans.is_empty() {
                statements.push(
                    scoped(
                        "MATCH (e:MnemoEntity {tenant: $tenant, user: $user}) \
                         WHERE e.id IN $ids DETACH DELETE e",
                        scope,
                    )
                    .param("ids", orphans.clone()),
                );
                statements.push(
                    scoped(
                        "MATCH (a:MnemoAlias {tenant: $tenant, user: $user}) \
                         WHERE a.entity IN $ids DELETE a",
                        scope,
                    )
                    .param("ids", orphans),
                );
            }
            if !statements.is_empty() {
                txn.run_queries(statements).await.map_err(bolt_err)?;
            }
            txn.commit().await.map_err(bolt_err)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{at, scope};
    use crate::graph::EntityMention;

    #[test]
    fn entity_ids_are_stable_positive_and_scoped() {
        let alice = scope("acme", "alice");
        let id = entity_id(&alice, "paris");
        assert!(id > 0);
        assert_eq!(id, entity_id(&alice, "paris"));
        assert_ne!(id, entity_id(&scope("acme", "bob"), "paris"));
        assert_ne!(id, entity_id(&scope("acm", "ealice"), "paris"));
        assert_ne!(id, entity_id(&alice, "lyon"));
    }

    #[test]
    fn a_plan_folds_repeated_turns_and_entities() {
        let alice = scope("acme", "alice");
        let update = |turn: i64, names: &[&str]| GraphUpdate {
            scope: alice.clone(),
            turn_id: TurnId(turn),
            time: at(turn),
            entities: names
                .iter()
                .map(|n| EntityMention::new(*n, "topic"))
                .collect(),
        };
        let plan = WritePlan::new(&[
            update(1, &["Paris", "paris ", "Lyon"]),
            update(1, &["Paris", "Nice"]),
            update(2, &["PARIS"]),
        ]);
        assert_eq!(plan.users.len(), 1);
        assert_eq!(plan.entities.len(), 2, "turn 1 again is skipped");
        let paris = entity_id(&alice, "paris");
        let support = &plan.mentions[&("acme".into(), "alice".into(), paris)];
        assert_eq!(
            support.iter().map(|s| s.turn).collect::<Vec<_>>(),
            [1, 2],
            "one support per turn"
        );
        assert_eq!(plan.related.len(), 1);
        let statements = plan.statements();
        assert_eq!(statements.len(), 4, "users, entities, MENTIONS, RELATED_TO");
    }

    #[test]
    fn taking_out_the_last_turn_leaves_nothing() {
        let row = SupportRow {
            src: 1,
            dst: 2,
            turns: vec![3],
            weights: vec![1.0],
            times: vec![10],
        };
        assert!(row.without(3).is_none());
        let row = SupportRow {
            src: 1,
            dst: 2,
            turns: vec![3, 4],
            weights: vec![1.0, 2.0],
            times: vec![10, 5],
        };
        assert!(row.without(3).is_some());
    }
}
