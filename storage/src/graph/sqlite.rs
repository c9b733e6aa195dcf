//! The embedded graph: tables of its own in the archive's SQLite database (same
//! migrations, same connections), so an embedded deployment needs no graph server.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::reads::{self, GraphLookups, MentionStat};
use super::{
    name_key, ContextEntities, Edge, EdgeKind, Entity, GraphStore, GraphUpdate, Neighbourhood,
    RankedEntity, Recency,
};
use crate::archive::sqlite::{db_err, SqliteArchive};
use crate::error::{Error, Result};
use crate::model::{Scope, Timestamp, TimestampExt, TurnId};

const BACKEND: &str = "sqlite graph";

/// The user's own node in MENTIONS edges.
const USER_NODE: i64 = 0;

/// The embedded graph tier.
#[derive(Debug, Clone)]
pub struct SqliteGraph {
    writer: SqlitePool,
    readers: SqlitePool,
    max_support_per_edge: usize,
}

impl SqliteGraph {
    /// The graph kept in `archive`'s database.
    pub fn new(archive: &SqliteArchive, config: &super::GraphConfig) -> Self {
        Self {
            writer: archive.writer().clone(),
            readers: archive.readers().clone(),
            max_support_per_edge: config.max_support_per_edge,
        }
    }

    async fn entities_from_rows(&self, scope: &Scope, rows: &[SqliteRow]) -> Result<Vec<Entity>> {
        let mut entities = rows
            .iter()
            .map(|row| {
                Ok(Entity {
                    id: row.try_get("id").map_err(db_err)?,
                    kind: row.try_get("kind").map_err(db_err)?,
                    name: row.try_get("name").map_err(db_err)?,
                    aliases: Vec::new(),
                    first_seen: Timestamp::from_micros(row.try_get("first_seen").map_err(db_err)?),
                    last_seen: Timestamp::from_micros(row.try_get("last_seen").map_err(db_err)?),
                })
            })
            .collect::<Result<Vec<Entity>>>()?;
        if entities.is_empty() {
            return Ok(entities);
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT entity_id, alias FROM graph_aliases WHERE tenant = ",
        );
        q.push_bind(scope.tenant.as_str())
            .push(" AND user_id = ")
            .push_bind(scope.user.as_str())
            .push(" AND entity_id IN (");
        let mut list = q.separated(", ");
        for e in &entities {
            list.push_bind(e.id);
        }
        q.push(") ORDER BY alias");
        let mut aliases: HashMap<i64, Vec<String>> = HashMap::new();
        for row in q.build().fetch_all(&self.readers).await.map_err(db_err)? {
            aliases
                .entry(row.try_get("entity_id").map_err(db_err)?)
                .or_default()
                .push(row.try_get("alias").map_err(db_err)?);
        }
        for e in &mut entities {
            e.aliases = aliases.remove(&e.id).unwrap_or_default();
        }
        Ok(entities)
    }

    async fn edges_from_rows(&self, rows: &[SqliteRow]) -> Result<Vec<Edge>> {
        let mut edges = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id").map_err(db_err)?;
            let kind: String = row.try_get("kind").map_err(db_err)?;
            let turns: Vec<i64> = sqlx::query_scalar(
                "SELECT turn_id FROM graph_edge_support WHERE edge_id = ? \
                 ORDER BY turn_id DESC LIMIT ?",
            )
            .bind(id)
            .bind(self.max_support_per_edge as i64)
            .fetch_all(&self.readers)
            .await
            .map_err(db_err)?;
            edges.push(Edge {
                kind: EdgeKind::parse(&kind)
                    .ok_or_else(|| Error::corrupt(BACKEND, format!("edge kind {kind:?}")))?,
                src: row.try_get("src").map_err(db_err)?,
                dst: row.try_get("dst").map_err(db_err)?,
                weight: row.try_get("weight").map_err(db_err)?,
                count: row.try_get::<i64, _>("count").map_err(db_err)? as u64,
                first_seen: Timestamp::from_micros(row.try_get("first_seen").map_err(db_err)?),
                last_seen: Timestamp::from_micros(row.try_get("last_seen").map_err(db_err)?),
                turns: turns.into_iter().map(TurnId).collect(),
            });
        }
        Ok(edges)
    }
}

async fn upsert_entity(
    conn: &mut SqliteConnection,
    scope: &Scope,
    mention: &super::EntityMention,
    time: i64,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO graph_entities (tenant, user_id, kind, name, name_key, first_seen, last_seen) \
         VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (tenant, user_id, name_key) DO UPDATE SET \
         first_seen = min(first_seen, excluded.first_seen), \
         last_seen = max(last_seen, excluded.last_seen) RETURNING id",
    )
    .bind(scope.tenant.as_str())
    .bind(scope.user.as_str())
    .bind(mention.kind.trim())
    .bind(mention.name.trim())
    .bind(name_key(&mention.name))
    .bind(time)
    .bind(time)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    for alias in &mention.aliases {
        sqlx::query(
            "INSERT OR IGNORE INTO graph_aliases (tenant, user_id, alias_key, entity_id, alias) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .bind(name_key(alias))
        .bind(id)
        .bind(alias.trim())
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(id)
}

/// Adds one turn's support to an edge, creating the edge if needed; a turn already
/// supporting the edge adds nothing.
async fn support_edge(
    conn: &mut SqliteConnection,
    scope: &Scope,
    kind: EdgeKind,
    (src, dst): (i64, i64),
    turn: TurnId,
    weight: f64,
    time: i64,
) -> Result<()> {
    let edge: i64 = sqlx::query_scalar(
        "INSERT INTO graph_edges (tenant, user_id, kind, src, dst, weight, count, first_seen, \
         last_seen) VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?) \
         ON CONFLICT (tenant, user_id, kind, src, dst) DO UPDATE SET src = src RETURNING id",
    )
    .bind(scope.tenant.as_str())
    .bind(scope.user.as_str())
    .bind(kind.as_str())
    .bind(src)
    .bind(dst)
    .bind(time)
    .bind(time)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    let added = sqlx::query(
        "INSERT OR IGNORE INTO graph_edge_support (edge_id, turn_id, weight, time) \
         VALUES (?, ?, ?, ?)",
    )
    .bind(edge)
    .bind(turn.0)
    .bind(weight)
    .bind(time)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?
    .rows_affected();
    if added == 1 {
        sqlx::query(
            "UPDATE graph_edges SET weight = weight + ?, count = count + 1, \
             first_seen = min(first_seen, ?), last_seen = max(last_seen, ?) WHERE id = ?",
        )
        .bind(weight)
        .bind(time)
        .bind(time)
        .bind(edge)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

#[async_trait]
impl GraphLookups for SqliteGraph {
    async fn mention_stats(&self, scope: &Scope) -> Result<Vec<MentionStat>> {
        let rows = sqlx::query(
            "SELECT dst, weight, count, last_seen FROM graph_edges \
             WHERE tenant = ? AND user_id = ? AND kind = 'MENTIONS'",
        )
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .fetch_all(&self.readers)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                Ok(MentionStat {
                    entity: row.try_get("dst").map_err(db_err)?,
                    weight: row.try_get("weight").map_err(db_err)?,
                    count: row.try_get::<i64, _>("count").map_err(db_err)? as u64,
                    last_seen: Timestamp::from_micros(row.try_get("last_seen").map_err(db_err)?),
                })
            })
            .collect()
    }

    async fn id_by_name_key(&self, scope: &Scope, key: &str) -> Result<Option<i64>> {
        sqlx::query_scalar(
            "SELECT id FROM graph_entities WHERE tenant = ? AND user_id = ? AND name_key = ?",
        )
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .bind(key)
        .fetch_optional(&self.readers)
        .await
        .map_err(db_err)
    }

    async fn entities_by_ids(&self, scope: &Scope, ids: &[i64]) -> Result<Vec<Entity>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, kind, name, first_seen, last_seen FROM graph_entities WHERE tenant = ",
        );
        q.push_bind(scope.tenant.as_str())
            .push(" AND user_id = ")
            .push_bind(scope.user.as_str())
            .push(" AND id IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        q.push(")");
        let rows = q.build().fetch_all(&self.readers).await.map_err(db_err)?;
        self.entities_from_rows(scope, &rows).await
    }

    /// The entity ids matching `keys` by name or alias.
    async fn ids_by_keys(&self, scope: &Scope, keys: &[String]) -> Result<Vec<i64>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::<Sqlite>::new("SELECT id FROM graph_entities WHERE tenant = ");
        q.push_bind(scope.tenant.as_str())
            .push(" AND user_id = ")
            .push_bind(scope.user.as_str())
            .push(" AND name_key IN (");
        let mut list = q.separated(", ");
        for k in keys {
            list.push_bind(k.as_str());
        }
        q.push(") UNION SELECT entity_id FROM graph_aliases WHERE tenant = ")
            .push_bind(scope.tenant.as_str())
            .push(" AND user_id = ")
            .push_bind(scope.user.as_str())
            .push(" AND alias_key IN (");
        let mut list = q.separated(", ");
        for k in keys {
            list.push_bind(k.as_str());
        }
        q.push(")");
        let rows = q.build().fetch_all(&self.readers).await.map_err(db_err)?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>(0).map_err(db_err))
            .collect()
    }

    /// RELATED_TO edges touching any of `nodes`, strongest first, at most `limit`.
    async fn related_edges(&self, scope: &Scope, nodes: &[i64], limit: usize) -> Result<Vec<Edge>> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, kind, src, dst, weight, count, first_seen, last_seen FROM graph_edges \
             WHERE tenant = ",
        );
        q.push_bind(scope.tenant.as_str())
            .push(" AND user_id = ")
            .push_bind(scope.user.as_str())
            .push(" AND kind = 'RELATED_TO' AND (src IN (");
        let mut list = q.separated(", ");
        for n in nodes {
            list.push_bind(*n);
        }
        q.push(") OR dst IN (");
        let mut list = q.separated(", ");
        for n in nodes {
            list.push_bind(*n);
        }
        q.push(")) ORDER BY weight DESC, last_seen DESC, id LIMIT ")
            .push_bind(limit as i64);
        let rows = q.build().fetch_all(&self.readers).await.map_err(db_err)?;
        self.edges_from_rows(&rows).await
    }
}

#[async_trait]
impl GraphStore for SqliteGraph {
    async fn apply(&self, updates: &[GraphUpdate]) -> Result<()> {
        for update in updates {
            update.validate()?;
        }
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        for update in updates {
            let time = update.time.to_micros();
            // The same entity named twice in one turn counts once, with its larger weight.
            let mut mentioned: BTreeMap<i64, f64> = BTreeMap::new();
            for mention in &update.entities {
                let id = upsert_entity(&mut tx, &update.scope, mention, time).await?;
                let w = mentioned.entry(id).or_insert(0.0);
                *w = w.max(mention.weight);
            }
            for (&id, &weight) in &mentioned {
                support_edge(
                    &mut tx,
                    &update.scope,
                    EdgeKind::Mentions,
                    (USER_NODE, id),
                    update.turn_id,
                    weight,
                    time,
                )
                .await?;
            }
            let ids: Vec<(i64, f64)> = mentioned.into_iter().collect();
            for (i, &(a, wa)) in ids.iter().enumerate() {
                for &(b, wb) in &ids[i + 1..] {
                    support_edge(
                        &mut tx,
                        &update.scope,
                        EdgeKind::RelatedTo,
                        (a, b),
                        update.turn_id,
                        (wa * wb).sqrt(),
                        time,
                    )
                    .await?;
                }
            }
        }
        tx.commit().await.map_err(db_err)
    }

    async fn user_entities(
        &self,
        scope: &Scope,
        recency: Recency,
        limit: usize,
    ) -> Result<Vec<RankedEntity>> {
        reads::user_entities(self, scope, recency, limit).await
    }

    async fn neighbourhood(
        &self,
        scope: &Scope,
        name: &str,
        depth: usize,
        limit: usize,
    ) -> Result<Option<Neighbourhood>> {
        reads::neighbourhood(self, scope, name, depth, limit).await
    }

    async fn find_entities(&self, scope: &Scope, names: &[String]) -> Result<Vec<Entity>> {
        reads::find_entities(self, scope, names).await
    }

    async fn context_entities(
        &self,
        scope: &Scope,
        recency: Recency,
        names: &[String],
        top: usize,
    ) -> Result<ContextEntities> {
        reads::context_entities(self, scope, recency, names, top).await
    }

    async fn forget_user(&self, scope: &Scope) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        // Support rows and aliases go with their edges and entities (ON DELETE CASCADE).
        for table in ["graph_edges", "graph_entities", "graph_aliases"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE tenant = ? AND user_id = ?"
            ))
            .bind(scope.tenant.as_str())
            .bind(scope.user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn forget_turn(&self, scope: &Scope, turn: TurnId) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let edges: Vec<i64> = sqlx::query_scalar(
            "SELECT s.edge_id FROM graph_edge_support s JOIN graph_edges e ON e.id = s.edge_id \
             WHERE s.turn_id = ? AND e.tenant = ? AND e.user_id = ?",
        )
        .bind(turn.0)
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        for edge in edges {
            sqlx::query("DELETE FROM graph_edge_support WHERE edge_id = ? AND turn_id = ?")
                .bind(edge)
                .bind(turn.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            // Recompute from what is left rather than subtracting, so rounding never
            // leaves a ghost weight behind.
            sqlx::query(
                "UPDATE graph_edges SET \
                   weight = (SELECT COALESCE(SUM(weight), 0) FROM graph_edge_support WHERE edge_id = ?1), \
                   count = (SELECT COUNT(*) FROM graph_edge_support WHERE edge_id = ?1), \
                   first_seen = COALESCE((SELECT MIN(time) FROM graph_edge_support WHERE edge_id = ?1), first_seen), \
                   last_seen = COALESCE((SELECT MAX(time) FROM graph_edge_support WHERE edge_id = ?1), last_seen) \
                 WHERE id = ?1",
            )
            .bind(edge)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        sqlx::query("DELETE FROM graph_edges WHERE tenant = ? AND user_id = ? AND count = 0")
            .bind(scope.tenant.as_str())
            .bind(scope.user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        // Entities no MENTIONS edge points at any more were only known from that turn.
        sqlx::query(
            "DELETE FROM graph_entities WHERE tenant = ?1 AND user_id = ?2 AND id NOT IN \
             (SELECT dst FROM graph_edges WHERE tenant = ?1 AND user_id = ?2 AND kind = 'MENTIONS')",
        )
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        // Entities still mentioned: their first and last seen follow their MENTIONS edge.
        sqlx::query(
            "UPDATE graph_entities SET \
               first_seen = (SELECT first_seen FROM graph_edges e WHERE e.tenant = ?1 AND e.user_id = ?2 \
                 AND e.kind = 'MENTIONS' AND e.dst = graph_entities.id), \
               last_seen = (SELECT last_seen FROM graph_edges e WHERE e.tenant = ?1 AND e.user_id = ?2 \
                 AND e.kind = 'MENTIONS' AND e.dst = graph_entities.id) \
             WHERE tenant = ?1 AND user_id = ?2",
        )
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }
}
