//! The embedded graph: tables of its own in the archive's SQL database (same migrations,
//! same connections), so a deployment needs no graph server. Written once for every
//! [`Dialect`]: [`SqliteGraph`] beside the SQLite archive, [`PostgresGraph`] beside the
//! PostgreSQL one.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use super::reads::{self, GraphLookups, MentionStat};
use super::{
    name_key, ContextEntities, Edge, EdgeKind, Entity, EntityMention, GraphConfig, GraphStore,
    GraphUpdate, Neighbourhood, RankedEntity, Recency,
};
use crate::archive::sql::SqlArchive;
use crate::error::Result;
use crate::model::{Scope, TimestampExt, TurnId};
use crate::sql::postgres::PostgresDb;
use crate::sql::rows::{self, Columns};
use crate::sql::sqlite::SqliteDb;
use crate::sql::{Arg, Dialect, Statement};

/// The embedded graph in the SQLite archive's database.
pub type SqliteGraph = SqlGraph<SqliteDb>;

/// The embedded graph in the PostgreSQL archive's database.
pub type PostgresGraph = SqlGraph<PostgresDb>;

/// The user's own node in MENTIONS edges.
const USER_NODE: i64 = 0;

/// The graph tables of the SQL database `D`.
#[derive(Debug, Clone)]
pub struct SqlGraph<D: Dialect> {
    db: D,
    max_support_per_edge: usize,
}

/// `WHERE tenant = $1 AND user_id = $2` of `scope`, to continue.
fn scoped<'a>(statement: &str, scope: &'a Scope) -> Statement<'a> {
    Statement::new(format!("{statement} WHERE tenant = $1 AND user_id = $2"))
        .arg(scope.tenant.as_str())
        .arg(scope.user.as_str())
}

/// Binds `keys` as a set of rows for `IN (...)`.
fn text_rows<'a, D: Dialect>(stmt: &mut Statement<'a>, keys: &'a [String]) -> String {
    D::rows(
        stmt,
        vec![Arg::Texts(
            keys.iter().map(|k| Some(k.as_str().into())).collect(),
        )],
    )
}

impl<D: Dialect> SqlGraph<D> {
    /// The graph kept in `archive`'s database.
    pub fn new(archive: &SqlArchive<D>, config: &GraphConfig) -> Self {
        Self {
            db: archive.db().clone(),
            max_support_per_edge: config.max_support_per_edge,
        }
    }

    async fn read(&self, stmt: &Statement<'_>) -> Result<Vec<D::Row>> {
        self.db.read(D::GRAPH, stmt).await
    }

    /// `rows` of `graph_entities` as entities, with their aliases.
    async fn entities_from_rows(&self, scope: &Scope, rows: &[D::Row]) -> Result<Vec<Entity>> {
        let mut entities = rows
            .iter()
            .map(|row| rows::entity(D::GRAPH, row))
            .collect::<Result<Vec<Entity>>>()?;
        if entities.is_empty() {
            return Ok(entities);
        }
        let mut stmt = scoped("SELECT entity_id, alias FROM graph_aliases", scope);
        let ids: Vec<i64> = entities.iter().map(|e| e.id).collect();
        let in_ids = D::in_ids(&mut stmt, &ids);
        stmt.push(" AND entity_id")
            .push(&in_ids)
            .push(" ORDER BY alias");
        let mut aliases: HashMap<i64, Vec<String>> = HashMap::new();
        for row in self.read(&stmt).await? {
            let c = Columns::new(D::GRAPH, &row);
            aliases
                .entry(c.int("entity_id")?)
                .or_default()
                .push(c.text("alias")?);
        }
        for e in &mut entities {
            e.aliases = aliases.remove(&e.id).unwrap_or_default();
        }
        Ok(entities)
    }

    /// `rows` of `graph_edges` as edges, each with its most recent supporting turns.
    async fn edges_from_rows(&self, rows: &[D::Row]) -> Result<Vec<Edge>> {
        let mut edges = Vec::with_capacity(rows.len());
        for row in rows {
            let id = Columns::new(D::GRAPH, row).int("id")?;
            let mut edge = rows::edge(D::GRAPH, row)?;
            // One index range read per edge, newest first: a single statement for all
            // edges ranks every supporting turn of each, and measured slower.
            let stmt = Statement::new(
                "SELECT turn_id FROM graph_edge_support WHERE edge_id = $1 \
                 ORDER BY turn_id DESC LIMIT $2",
            )
            .arg(id)
            .arg(self.max_support_per_edge as i64);
            edge.turns = self
                .read(&stmt)
                .await?
                .iter()
                .map(|row| Columns::new(D::GRAPH, row).int("turn_id").map(TurnId))
                .collect::<Result<_>>()?;
            edges.push(edge);
        }
        Ok(edges)
    }
}

/// Upserts one mentioned entity and its aliases in `tx`; returns its id.
async fn upsert_entity<D: Dialect>(
    tx: &mut D::Tx,
    scope: &Scope,
    mention: &EntityMention,
    time: i64,
) -> Result<i64> {
    let key = name_key(&mention.name);
    let stmt = Statement::new(format!(
        "INSERT INTO graph_entities (tenant, user_id, kind, name, name_key, first_seen, \
         last_seen) VALUES ($1, $2, $3, $4, $5, $6, $6) \
         ON CONFLICT (tenant, user_id, name_key) DO UPDATE SET \
         first_seen = {least}(graph_entities.first_seen, excluded.first_seen), \
         last_seen = {greatest}(graph_entities.last_seen, excluded.last_seen) RETURNING id",
        least = D::LEAST,
        greatest = D::GREATEST,
    ))
    .arg(scope.tenant.as_str())
    .arg(scope.user.as_str())
    .arg(mention.kind.trim())
    .arg(mention.name.trim())
    .arg(key.as_str())
    .arg(time);
    let rows = D::fetch(tx, D::GRAPH, &stmt).await?;
    let id = returned_id::<D>(&rows)?;
    for alias in &mention.aliases {
        let key = name_key(alias);
        let stmt = Statement::new(
            "INSERT INTO graph_aliases (tenant, user_id, alias_key, entity_id, alias) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .arg(scope.tenant.as_str())
        .arg(scope.user.as_str())
        .arg(key.as_str())
        .arg(id)
        .arg(alias.trim());
        D::execute(tx, D::GRAPH, &stmt).await?;
    }
    Ok(id)
}

fn returned_id<D: Dialect>(rows: &[D::Row]) -> Result<i64> {
    let row = rows
        .first()
        .ok_or_else(|| crate::error::Error::internal(D::GRAPH, "an upsert returned no id"))?;
    Columns::new(D::GRAPH, row).int("id")
}

/// One turn's support of one edge.
struct Support {
    kind: EdgeKind,
    ends: (i64, i64),
    turn: TurnId,
    weight: f64,
    time: i64,
}

/// Adds one turn's support to an edge in `tx`, creating the edge if needed; a turn
/// already supporting the edge adds nothing.
async fn support_edge<D: Dialect>(tx: &mut D::Tx, scope: &Scope, support: Support) -> Result<()> {
    let stmt = Statement::new(
        "INSERT INTO graph_edges (tenant, user_id, kind, src, dst, weight, count, first_seen, \
         last_seen) VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $6) \
         ON CONFLICT (tenant, user_id, kind, src, dst) DO UPDATE SET src = graph_edges.src \
         RETURNING id",
    )
    .arg(scope.tenant.as_str())
    .arg(scope.user.as_str())
    .arg(support.kind.as_str())
    .arg(support.ends.0)
    .arg(support.ends.1)
    .arg(support.time);
    let edge = returned_id::<D>(&D::fetch(tx, D::GRAPH, &stmt).await?)?;
    let stmt = Statement::new(
        "INSERT INTO graph_edge_support (edge_id, turn_id, weight, time) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .arg(edge)
    .arg(support.turn.0)
    .arg(support.weight)
    .arg(support.time);
    if D::execute(tx, D::GRAPH, &stmt).await? == 1 {
        let stmt = Statement::new(format!(
            "UPDATE graph_edges SET weight = weight + $1, count = count + 1, \
             first_seen = {least}(first_seen, $2), last_seen = {greatest}(last_seen, $2) \
             WHERE id = $3",
            least = D::LEAST,
            greatest = D::GREATEST,
        ))
        .arg(support.weight)
        .arg(support.time)
        .arg(edge);
        D::execute(tx, D::GRAPH, &stmt).await?;
    }
    Ok(())
}

#[async_trait]
impl<D: Dialect> GraphLookups for SqlGraph<D> {
    async fn mention_stats(&self, scope: &Scope) -> Result<Vec<MentionStat>> {
        let mut stmt = scoped(
            "SELECT dst, weight, count, last_seen FROM graph_edges",
            scope,
        );
        stmt.push(" AND kind = 'MENTIONS'");
        self.read(&stmt)
            .await?
            .iter()
            .map(|row| {
                let c = Columns::new(D::GRAPH, row);
                Ok(MentionStat {
                    entity: c.int("dst")?,
                    weight: c.float("weight")?,
                    count: c.int("count")? as u64,
                    last_seen: c.time("last_seen")?,
                })
            })
            .collect()
    }

    async fn id_by_name_key(&self, scope: &Scope, key: &str) -> Result<Option<i64>> {
        let mut stmt = scoped("SELECT id FROM graph_entities", scope);
        stmt.push(" AND name_key = ").push_bind(key);
        match self.read(&stmt).await?.first() {
            Some(row) => Ok(Some(Columns::new(D::GRAPH, row).int("id")?)),
            None => Ok(None),
        }
    }

    async fn entities_by_ids(&self, scope: &Scope, ids: &[i64]) -> Result<Vec<Entity>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut stmt = scoped(
            "SELECT id, kind, name, first_seen, last_seen FROM graph_entities",
            scope,
        );
        let in_ids = D::in_ids(&mut stmt, ids);
        stmt.push(" AND id").push(&in_ids);
        let rows = self.read(&stmt).await?;
        self.entities_from_rows(scope, &rows).await
    }

    async fn ids_by_keys(&self, scope: &Scope, keys: &[String]) -> Result<Vec<i64>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut stmt = scoped("SELECT id FROM graph_entities", scope);
        let names = text_rows::<D>(&mut stmt, keys);
        stmt.push(&format!(
            " AND name_key IN ({names}) UNION SELECT entity_id AS id FROM graph_aliases \
             WHERE tenant = $1 AND user_id = $2 AND alias_key IN ({names})"
        ));
        self.read(&stmt)
            .await?
            .iter()
            .map(|row| Columns::new(D::GRAPH, row).int("id"))
            .collect()
    }

    async fn related_edges(&self, scope: &Scope, nodes: &[i64], limit: usize) -> Result<Vec<Edge>> {
        let mut stmt = scoped(
            "SELECT id, kind, src, dst, weight, count, first_seen, last_seen FROM graph_edges",
            scope,
        );
        let in_nodes = D::in_ids(&mut stmt, nodes);
        stmt.push(&format!(
            " AND kind = 'RELATED_TO' AND (src{in_nodes} OR dst{in_nodes}) \
             ORDER BY weight DESC, last_seen DESC, id LIMIT "
        ))
        .push_bind(limit as i64);
        let rows = self.read(&stmt).await?;
        self.edges_from_rows(&rows).await
    }
}

#[async_trait]
impl<D: Dialect> GraphStore for SqlGraph<D> {
    async fn apply(&self, updates: &[GraphUpdate]) -> Result<()> {
        for update in updates {
            update.validate()?;
        }
        let mut tx = self.db.begin(D::GRAPH).await?;
        for update in updates {
            let time = update.time.to_micros();
            let scope = &update.scope;
            // The same entity named twice in one turn counts once, with its larger weight.
            let mut mentioned: BTreeMap<i64, f64> = BTreeMap::new();
            for mention in &update.entities {
                let id = upsert_entity::<D>(&mut tx, scope, mention, time).await?;
                let w = mentioned.entry(id).or_insert(0.0);
                *w = w.max(mention.weight);
            }
            let support = |kind, ends, weight| Support {
                kind,
                ends,
                turn: update.turn_id,
                weight,
                time,
            };
            for (&id, &weight) in &mentioned {
                let mention = support(EdgeKind::Mentions, (USER_NODE, id), weight);
                support_edge::<D>(&mut tx, scope, mention).await?;
            }
            let ids: Vec<(i64, f64)> = mentioned.into_iter().collect();
            for (i, &(a, wa)) in ids.iter().enumerate() {
                for &(b, wb) in &ids[i + 1..] {
                    let related = support(EdgeKind::RelatedTo, (a, b), (wa * wb).sqrt());
                    support_edge::<D>(&mut tx, scope, related).await?;
                }
            }
        }
        D::commit(tx, D::GRAPH).await
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
        let mut tx = self.db.begin(D::GRAPH).await?;
        // Support rows and aliases go with their edges and entities (ON DELETE CASCADE).
        for table in ["graph_edges", "graph_entities", "graph_aliases"] {
            let stmt = scoped(&format!("DELETE FROM {table}"), scope);
            D::execute(&mut tx, D::GRAPH, &stmt).await?;
        }
        D::commit(tx, D::GRAPH).await
    }

    async fn forget_turn(&self, scope: &Scope, turn: TurnId) -> Result<()> {
        let mut tx = self.db.begin(D::GRAPH).await?;
        let stmt = Statement::new(
            "SELECT s.edge_id FROM graph_edge_support s JOIN graph_edges e ON e.id = s.edge_id \
             WHERE e.tenant = $1 AND e.user_id = $2 AND s.turn_id = $3",
        )
        .arg(scope.tenant.as_str())
        .arg(scope.user.as_str())
        .arg(turn.0);
        let edges = D::fetch(&mut tx, D::GRAPH, &stmt)
            .await?
            .iter()
            .map(|row| Columns::new(D::GRAPH, row).int("edge_id"))
            .collect::<Result<Vec<i64>>>()?;
        for edge in edges {
            let stmt = Statement::new(
                "DELETE FROM graph_edge_support WHERE edge_id = $1 AND turn_id = $2",
            )
            .arg(edge)
            .arg(turn.0);
            D::execute(&mut tx, D::GRAPH, &stmt).await?;
            // Recompute from what is left rather than subtracting, so rounding never
            // leaves a ghost weight behind.
            let stmt = Statement::new(
                "UPDATE graph_edges SET \
                 weight = (SELECT COALESCE(SUM(weight), 0) FROM graph_edge_support WHERE edge_id = $1), \
                 count = (SELECT COUNT(*) FROM graph_edge_support WHERE edge_id = $1), \
                 first_seen = COALESCE((SELECT MIN(time) FROM graph_edge_support WHERE edge_id = $1), first_seen), \
                 last_seen = COALESCE((SELECT MAX(time) FROM graph_edge_support WHERE edge_id = $1), last_seen) \
                 WHERE id = $1",
            )
            .arg(edge);
            D::execute(&mut tx, D::GRAPH, &stmt).await?;
        }
        let mut stmt = scoped("DELETE FROM graph_edges", scope);
        stmt.push(" AND count = 0");
        D::execute(&mut tx, D::GRAPH, &stmt).await?;
        // Entities no MENTIONS edge points at any more were only known from that turn.
        let mut stmt = scoped("DELETE FROM graph_entities", scope);
        stmt.push(
            " AND NOT EXISTS (SELECT 1 FROM graph_edges e WHERE e.tenant = $1 \
             AND e.user_id = $2 AND e.kind = 'MENTIONS' AND e.dst = graph_entities.id)",
        );
        D::execute(&mut tx, D::GRAPH, &stmt).await?;
        // Entities still mentioned: their first and last seen follow their MENTIONS edge.
        let stmt = Statement::new(
            "UPDATE graph_entities SET \
             first_seen = (SELECT first_seen FROM graph_edges e WHERE e.tenant = $1 \
               AND e.user_id = $2 AND e.kind = 'MENTIONS' AND e.dst = graph_entities.id), \
             last_seen = (SELECT last_seen FROM graph_edges e WHERE e.tenant = $1 \
               AND e.user_id = $2 AND e.kind = 'MENTIONS' AND e.dst = graph_entities.id) \
             WHERE tenant = $1 AND user_id = $2",
        )
        .arg(scope.tenant.as_str())
        .arg(scope.user.as_str());
        D::execute(&mut tx, D::GRAPH, &stmt).await?;
        D::commit(tx, D::GRAPH).await
    }
}
