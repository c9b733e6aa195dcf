//! The embedded graph: tables in a SQL database, so a deployment needs no graph server.
//! Written once for every [`Dialect`]: [`SqliteGraph`] in a SQLite file of its own beside
//! the SQLite archive's (its own writer, so the graph sync processor never holds the
//! archive's write lock while turns wait to be committed), [`PostgresGraph`] in the
//! PostgreSQL archive's database (same migrations, same connections).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::reads::{self, GraphLookups, MentionStat};
use super::{
    name_key, ContextEntities, Edge, EdgeKind, Entity, GraphConfig, GraphStore, GraphUpdate,
    Neighbourhood, RankedEntity, Recency,
};
use crate::archive::sql::{PostgresArchive, SqliteArchive};
use crate::archive::ArchiveConfig;
use crate::error::Result;
use crate::model::{Scope, TimestampExt, TurnId};
use crate::sql::postgres::PostgresDb;
use crate::sql::rows::{self, Columns};
use crate::sql::sqlite::{SqliteDb, SqliteSchema};
use crate::sql::{select_by_ids, Arg, Dialect, Statement};

/// The embedded graph in a SQLite database beside the SQLite archive's.
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
    /// Updates applied by this process, when the graph refreshes its own planner
    /// statistics (a database of its own; the archive refreshes a shared one).
    applied: Option<Arc<AtomicU64>>,
}

/// The graph in a database of its own asks SQLite to refresh its planner statistics
/// (`PRAGMA optimize`, which analyzes only the tables that need it) every this many
/// applied updates.
const OPTIMIZE_EVERY_UPDATES: u64 = 10_000;

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

/// The graph's tables, parents first.
const TABLES: [&str; 4] = [
    "graph_entities",
    "graph_aliases",
    "graph_edges",
    "graph_edge_support",
];

/// The graph's tables whose ids AUTOINCREMENT hands out, as an SQL list.
const AUTOINCREMENT_TABLES: &str = "('graph_entities', 'graph_edges')";

/// The graph's database file beside the archive's: `archive.db` -> `archive-graph.db`.
pub fn graph_path(archive: &Path) -> PathBuf {
    let mut name = archive.file_stem().unwrap_or_default().to_os_string();
    name.push("-graph");
    if let Some(ext) = archive.extension() {
        name.push(".");
        name.push(ext);
    }
    archive.with_file_name(name)
}

impl SqlGraph<SqliteDb> {
    /// Opens (creating if needed) the graph's database beside `archive`'s ([`graph_path`])
    /// with the archive's connection settings, and moves into it the graph rows an
    /// earlier layout kept in the archive's own database.
    pub async fn open_beside(
        archive: &SqliteArchive,
        connections: &ArchiveConfig,
        config: &GraphConfig,
    ) -> Result<Self> {
        let path = graph_path(archive.path());
        let db = SqliteDb::open(&path, connections, SqliteSchema::Graph).await?;
        move_from_archive(&db, archive).await?;
        // Tables never analyzed (a new file, or rows just moved) get statistics now, as
        // SQLite advises for a connection that stays open.
        db.write(
            SqliteDb::GRAPH,
            &Statement::new("PRAGMA optimize = 0x10002"),
        )
        .await?;
        Ok(Self {
            applied: Some(Arc::new(AtomicU64::new(0))),
            ..Self::new(db, config)
        })
    }
}

/// Copies the graph rows of an archive database written before the graph had a file of
/// its own, once (the copy and its mark commit together), then deletes them there (in a
/// later transaction of the archive's, so a crash between leaves them to be deleted at
/// the next open, never lost).
async fn move_from_archive(db: &SqliteDb, archive: &SqliteArchive) -> Result<()> {
    let backend = SqliteDb::GRAPH;
    let marks = Statement::new("SELECT count(*) AS n FROM graph_moved_from_archive");
    let moved = match db.read(backend, &marks).await?.first() {
        Some(row) => Columns::new(backend, row).int("n")? > 0,
        None => false,
    };
    if !moved {
        let mut copy: Vec<Statement> = TABLES
            .iter()
            .map(|table| {
                Statement::new(format!(
                    "INSERT INTO main.{table} SELECT * FROM other.{table}"
                ))
            })
            .collect();
        // AUTOINCREMENT's high-water marks too, so no id the archive handed out comes back.
        copy.push(Statement::new(format!(
            "DELETE FROM main.sqlite_sequence WHERE name IN {AUTOINCREMENT_TABLES}"
        )));
        copy.push(Statement::new(format!(
            "INSERT INTO main.sqlite_sequence (name, seq) SELECT name, seq \
             FROM other.sqlite_sequence WHERE name IN {AUTOINCREMENT_TABLES}"
        )));
        copy.push(
            Statement::new("INSERT INTO graph_moved_from_archive (moved_at) VALUES ($1)")
                .arg(archive.clock().now().to_micros()),
        );
        let copied = db.with_attached(backend, archive.path(), &copy).await?;
        // Rows copied per table, in the order of TABLES.
        let rows_of = |table: &str| {
            TABLES
                .iter()
                .position(|t| *t == table)
                .and_then(|i| copied.get(i).copied())
                .unwrap_or(0)
        };
        if TABLES.iter().any(|table| rows_of(table) > 0) {
            tracing::info!(
                graph = %db.path().display(),
                entities = rows_of("graph_entities"),
                edges = rows_of("graph_edges"),
                "moved the embedded graph out of the archive's database into its own file"
            );
        }
    }
    let leftover = Statement::new(format!(
        "SELECT {} AS n",
        TABLES
            .iter()
            .map(|table| format!("EXISTS (SELECT 1 FROM {table})"))
            .collect::<Vec<_>>()
            .join(" + ")
    ));
    let left = match archive.db().read(backend, &leftover).await?.first() {
        Some(row) => Columns::new(backend, row).int("n")? > 0,
        None => false,
    };
    if left {
        let mut tx = archive.db().begin(backend).await?;
        for table in TABLES.iter().rev() {
            let stmt = Statement::new(format!("DELETE FROM {table}"));
            SqliteDb::execute(&mut tx, backend, &stmt).await?;
        }
        SqliteDb::commit(tx, backend).await?;
    }
    Ok(())
}

impl SqlGraph<PostgresDb> {
    /// The graph in the PostgreSQL archive's own database (its migrations made the
    /// tables; its connections serve them).
    pub fn beside(archive: &PostgresArchive, config: &GraphConfig) -> Self {
        Self::new(archive.db().clone(), config)
    }
}

impl<D: Dialect> SqlGraph<D> {
    /// The graph kept in `db`, whose migrations made its tables.
    pub fn new(db: D, config: &GraphConfig) -> Self {
        Self {
            db,
            max_support_per_edge: config.max_support_per_edge,
            applied: None,
        }
    }

    async fn read(&self, stmt: &Statement<'_>) -> Result<Vec<D::Row>> {
        self.db.read(D::GRAPH, stmt).await
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
/// An entity of one user, by its name key.
type EntityKey<'u> = (&'u str, &'u str, String);

/// An edge of one user: kind, source, destination.
type EdgeKey<'u> = (&'u str, &'u str, &'static str, i64, i64);

/// One turn's support of one edge.
struct Support<'u> {
    edge: EdgeKey<'u>,
    turn: TurnId,
    weight: f64,
    time: i64,
}

/// Creates or touches every entity the updates mention (and their aliases); returns
/// their ids. An entity keeps the kind and name it was first stored with, and its first
/// and last seen times widen to the mentions'.
async fn upsert_entities<'u, D: Dialect>(
    tx: &mut D::Tx,
    updates: &'u [GraphUpdate],
) -> Result<HashMap<EntityKey<'u>, i64>> {
    struct Row<'u> {
        kind: &'u str,
        name: &'u str,
        first: i64,
        last: i64,
    }
    // One row per entity (a statement may not upsert a row twice), in first-mention order.
    let mut order: Vec<EntityKey<'u>> = Vec::new();
    let mut rows: HashMap<EntityKey<'u>, Row<'u>> = HashMap::new();
    let mut aliases: Vec<(EntityKey<'u>, String, &'u str)> = Vec::new();
    for update in updates {
        let time = update.time.to_micros();
        let (tenant, user) = (update.scope.tenant.as_str(), update.scope.user.as_str());
        for mention in &update.entities {
            let key = (tenant, user, name_key(&mention.name));
            let row = rows.entry(key.clone()).or_insert_with(|| {
                order.push(key.clone());
                Row {
                    kind: mention.kind.trim(),
                    name: mention.name.trim(),
                    first: time,
                    last: time,
                }
            });
            row.first = row.first.min(time);
            row.last = row.last.max(time);
            for alias in &mention.aliases {
                aliases.push((key.clone(), name_key(alias), alias.trim()));
            }
        }
    }
    let mut ids = HashMap::with_capacity(order.len());
    for chunk in order.chunks(D::max_rows(7)) {
        let row = |k: &EntityKey<'u>| &rows[k];
        let mut stmt = Statement::new(
            "INSERT INTO graph_entities (tenant, user_id, kind, name, name_key, first_seen, \
             last_seen) ",
        );
        let values = D::rows(
            &mut stmt,
            vec![
                texts(chunk.iter().map(|k| k.0)),
                texts(chunk.iter().map(|k| k.1)),
                texts(chunk.iter().map(|k| row(k).kind)),
                texts(chunk.iter().map(|k| row(k).name)),
                texts(chunk.iter().map(|k| k.2.as_str())),
                Arg::Ints(chunk.iter().map(|k| Some(row(k).first)).collect()),
                Arg::Ints(chunk.iter().map(|k| Some(row(k).last)).collect()),
            ],
        );
        stmt.push(&values).push(&format!(
            " ON CONFLICT (tenant, user_id, name_key) DO UPDATE SET \
             first_seen = {least}(graph_entities.first_seen, excluded.first_seen), \
             last_seen = {greatest}(graph_entities.last_seen, excluded.last_seen) \
             RETURNING id, tenant, user_id, name_key",
            least = D::LEAST,
            greatest = D::GREATEST,
        ));
        // Back from the returned row to the key the caller holds.
        let keys: HashMap<(&str, &str, &str), &EntityKey<'u>> = chunk
            .iter()
            .map(|k| ((k.0, k.1, k.2.as_str()), k))
            .collect();
        for returned in D::fetch(tx, D::GRAPH, &stmt).await? {
            let c = Columns::new(D::GRAPH, &returned);
            let (tenant, user, key) = (c.text("tenant")?, c.text("user_id")?, c.text("name_key")?);
            if let Some(k) = keys.get(&(tenant.as_str(), user.as_str(), key.as_str())) {
                ids.insert((*k).clone(), c.int("id")?);
            }
        }
    }
    if ids.len() != order.len() {
        return Err(crate::error::Error::internal(
            D::GRAPH,
            "an entity upsert returned no id",
        ));
    }
    let mut seen = HashSet::new();
    let aliases: Vec<(&str, &str, String, i64, &str)> = aliases
        .into_iter()
        .filter_map(|(entity, key, alias)| {
            let id = ids[&entity];
            seen.insert((entity.0, entity.1, key.clone(), id))
                .then_some((entity.0, entity.1, key, id, alias))
        })
        .collect();
    for chunk in aliases.chunks(D::max_rows(5)) {
        let mut stmt = Statement::new(
            "INSERT INTO graph_aliases (tenant, user_id, alias_key, entity_id, alias) ",
        );
        let values = D::rows(
            &mut stmt,
            vec![
                texts(chunk.iter().map(|a| a.0)),
                texts(chunk.iter().map(|a| a.1)),
                texts(chunk.iter().map(|a| a.2.as_str())),
                Arg::Ints(chunk.iter().map(|a| Some(a.3)).collect()),
                texts(chunk.iter().map(|a| a.4)),
            ],
        );
        stmt.push(&values).push(" ON CONFLICT DO NOTHING");
        D::execute(tx, D::GRAPH, &stmt).await?;
    }
    Ok(ids)
}

/// Each update's supports: one MENTIONS edge from the user to each entity it names (the
/// same entity named twice counts once, with its larger weight), and one RELATED_TO edge
/// between each pair of them.
fn supports_of<'u>(
    updates: &'u [GraphUpdate],
    entities: &HashMap<EntityKey<'u>, i64>,
) -> Vec<Support<'u>> {
    let mut supports = Vec::new();
    for update in updates {
        let time = update.time.to_micros();
        let (tenant, user) = (update.scope.tenant.as_str(), update.scope.user.as_str());
        let mut mentioned: BTreeMap<i64, f64> = BTreeMap::new();
        for mention in &update.entities {
            let id = entities[&(tenant, user, name_key(&mention.name))];
            let w = mentioned.entry(id).or_insert(0.0);
            *w = w.max(mention.weight);
        }
        let support = |kind: EdgeKind, (src, dst), weight| Support {
            edge: (tenant, user, kind.as_str(), src, dst),
            turn: update.turn_id,
            weight,
            time,
        };
        for (&id, &weight) in &mentioned {
            supports.push(support(EdgeKind::Mentions, (USER_NODE, id), weight));
        }
        let ids: Vec<(i64, f64)> = mentioned.into_iter().collect();
        for (i, &(a, wa)) in ids.iter().enumerate() {
            for &(b, wb) in &ids[i + 1..] {
                supports.push(support(EdgeKind::RelatedTo, (a, b), (wa * wb).sqrt()));
            }
        }
    }
    supports
}

/// What one apply adds to an edge: weight, supports, earliest and latest time.
#[derive(Clone, Copy)]
struct Added {
    weight: f64,
    count: i64,
    first: i64,
    last: i64,
}

impl Added {
    /// Nothing added yet, at `time`.
    fn none_at(time: i64) -> Self {
        Self {
            weight: 0.0,
            count: 0,
            first: time,
            last: time,
        }
    }

    /// One more support, of `weight` at `time`.
    fn support(&mut self, weight: f64, time: i64) {
        self.weight += weight;
        self.count += 1;
        self.first = self.first.min(time);
        self.last = self.last.max(time);
    }
}

/// How [`upsert_edges`] treats an edge that exists already.
#[derive(Clone, Copy, PartialEq)]
enum OnExisting {
    /// Leaves it as it is (its supports are added to it afterwards).
    Keep,
    /// Adds the weight and supports given, and widens its times to theirs.
    Add,
}

/// Creates every edge of `added` that does not exist yet, with the values given; an
/// existing one is kept or added to (see [`OnExisting`]). Returns the edges' ids.
async fn upsert_edges<'u, D: Dialect>(
    tx: &mut D::Tx,
    added: &[(EdgeKey<'u>, Added)],
    on_existing: OnExisting,
) -> Result<HashMap<EdgeKey<'u>, i64>> {
    let on_conflict = match on_existing {
        OnExisting::Keep => "src = graph_edges.src".to_owned(),
        OnExisting::Add => format!(
            "weight = graph_edges.weight + excluded.weight, \
             count = graph_edges.count + excluded.count, \
             first_seen = {least}(graph_edges.first_seen, excluded.first_seen), \
             last_seen = {greatest}(graph_edges.last_seen, excluded.last_seen)",
            least = D::LEAST,
            greatest = D::GREATEST,
        ),
    };
    let mut ids = HashMap::with_capacity(added.len());
    for chunk in added.chunks(D::max_rows(9)) {
        let mut stmt = Statement::new(
            "INSERT INTO graph_edges (tenant, user_id, kind, src, dst, weight, count, \
             first_seen, last_seen) ",
        );
        let values = D::rows(
            &mut stmt,
            vec![
                texts(chunk.iter().map(|(e, _)| e.0)),
                texts(chunk.iter().map(|(e, _)| e.1)),
                texts(chunk.iter().map(|(e, _)| e.2)),
                Arg::Ints(chunk.iter().map(|(e, _)| Some(e.3)).collect()),
                Arg::Ints(chunk.iter().map(|(e, _)| Some(e.4)).collect()),
                Arg::Floats(chunk.iter().map(|(_, a)| Some(a.weight)).collect()),
                Arg::Ints(chunk.iter().map(|(_, a)| Some(a.count)).collect()),
                Arg::Ints(chunk.iter().map(|(_, a)| Some(a.first)).collect()),
                Arg::Ints(chunk.iter().map(|(_, a)| Some(a.last)).collect()),
            ],
        );
        stmt.push(&values).push(&format!(
            " ON CONFLICT (tenant, user_id, kind, src, dst) DO UPDATE SET {on_conflict} \
             RETURNING id, tenant, user_id, kind, src, dst"
        ));
        let keys: HashMap<(&str, &str, &str, i64, i64), EdgeKey<'u>> = chunk
            .iter()
            .map(|(e, _)| ((e.0, e.1, e.2, e.3, e.4), *e))
            .collect();
        for returned in D::fetch(tx, D::GRAPH, &stmt).await? {
            let c = Columns::new(D::GRAPH, &returned);
            let (tenant, user, kind) = (c.text("tenant")?, c.text("user_id")?, c.text("kind")?);
            let (src, dst) = (c.int("src")?, c.int("dst")?);
            if let Some(edge) = keys.get(&(tenant.as_str(), user.as_str(), kind.as_str(), src, dst))
            {
                ids.insert(*edge, c.int("id")?);
            }
        }
    }
    if ids.len() != added.len() {
        return Err(crate::error::Error::internal(
            D::GRAPH,
            "an edge upsert returned no id",
        ));
    }
    Ok(ids)
}

/// The supports that count (the first of each edge and turn, as when applied one by
/// one), and what they add to each edge, in first-support order.
fn first_supports<'s, 'u>(
    supports: &'s [Support<'u>],
) -> (Vec<&'s Support<'u>>, Vec<(EdgeKey<'u>, Added)>) {
    let mut seen = HashSet::new();
    let counted: Vec<&Support<'u>> = supports
        .iter()
        .filter(|s| seen.insert((s.edge, s.turn.0)))
        .collect();
    let mut order: Vec<EdgeKey<'u>> = Vec::new();
    let mut added: HashMap<EdgeKey<'u>, Added> = HashMap::new();
    for s in &counted {
        added
            .entry(s.edge)
            .or_insert_with(|| {
                order.push(s.edge);
                Added::none_at(s.time)
            })
            .support(s.weight, s.time);
    }
    let added = order.into_iter().map(|e| (e, added[&e])).collect();
    (counted, added)
}

/// Applies updates none of whose turns supports an edge yet (the graph sync's steps
/// through new turns): each edge gets its added weight, count and times in its upsert,
/// and the supports are inserted without reading anything back. Returns false, having
/// rolled back, when a turn turned out to support an edge already (a step replayed
/// after a restart): the caller applies them with [`add_supports`] instead.
async fn apply_new_turns<D: Dialect>(db: &D, updates: &[GraphUpdate]) -> Result<bool> {
    let mut tx = db.begin(D::GRAPH).await?;
    let entities = upsert_entities::<D>(&mut tx, updates).await?;
    let supports = supports_of(updates, &entities);
    let (counted, added) = first_supports(&supports);
    let edges = upsert_edges::<D>(&mut tx, &added, OnExisting::Add).await?;
    let rows: Vec<(i64, &Support<'_>)> = counted.iter().map(|s| (edges[&s.edge], *s)).collect();
    let mut inserted = 0;
    for chunk in rows.chunks(D::max_rows(4)) {
        let stmt = insert_supports::<D>(chunk, "");
        inserted += D::execute(&mut tx, D::GRAPH, &stmt).await?;
    }
    if inserted != rows.len() as u64 {
        D::rollback(tx, D::GRAPH).await?;
        return Ok(false);
    }
    D::commit(tx, D::GRAPH).await?;
    Ok(true)
}

/// Inserts `rows` (an edge's id and one turn's support of it) into `graph_edge_support`,
/// leaving a support already recorded as it is, then `returning`.
fn insert_supports<D: Dialect>(
    rows: &[(i64, &Support<'_>)],
    returning: &str,
) -> Statement<'static> {
    let mut stmt =
        Statement::new("INSERT INTO graph_edge_support (edge_id, turn_id, weight, time) ");
    let values = D::rows(
        &mut stmt,
        vec![
            Arg::Ints(rows.iter().map(|(e, _)| Some(*e)).collect()),
            Arg::Ints(rows.iter().map(|(_, s)| Some(s.turn.0)).collect()),
            Arg::Floats(rows.iter().map(|(_, s)| Some(s.weight)).collect()),
            Arg::Ints(rows.iter().map(|(_, s)| Some(s.time)).collect()),
        ],
    );
    stmt.push(&values)
        .push(" ON CONFLICT DO NOTHING")
        .push(returning);
    stmt
}

/// Records the `counted` supports (see [`first_supports`]); a turn already supporting an
/// edge adds nothing, the others add their weight, one to the count, and widen the edge's
/// times.
async fn add_supports<'u, D: Dialect>(
    tx: &mut D::Tx,
    counted: &[&Support<'u>],
    edges: &HashMap<EdgeKey<'u>, i64>,
) -> Result<()> {
    let rows: Vec<(i64, &Support<'u>)> = counted.iter().map(|s| (edges[&s.edge], *s)).collect();
    // Per edge, what the supports not recorded before add.
    let mut added: BTreeMap<i64, Added> = BTreeMap::new();
    for chunk in rows.chunks(D::max_rows(4)) {
        let stmt = insert_supports::<D>(chunk, " RETURNING edge_id, weight, time");
        for returned in D::fetch(tx, D::GRAPH, &stmt).await? {
            let c = Columns::new(D::GRAPH, &returned);
            let (edge, weight, time) = (c.int("edge_id")?, c.float("weight")?, c.int("time")?);
            added
                .entry(edge)
                .or_insert_with(|| Added::none_at(time))
                .support(weight, time);
        }
    }
    let added: Vec<(i64, Added)> = added.into_iter().collect();
    for chunk in added.chunks(D::max_rows(5)) {
        let mut stmt = Statement::new("WITH a (id, weight, count, first_seen, last_seen) AS (");
        let values = D::rows(
            &mut stmt,
            vec![
                Arg::Ints(chunk.iter().map(|(e, _)| Some(*e)).collect()),
                Arg::Floats(chunk.iter().map(|(_, a)| Some(a.weight)).collect()),
                Arg::Ints(chunk.iter().map(|(_, a)| Some(a.count)).collect()),
                Arg::Ints(chunk.iter().map(|(_, a)| Some(a.first)).collect()),
                Arg::Ints(chunk.iter().map(|(_, a)| Some(a.last)).collect()),
            ],
        );
        stmt.push(&values).push(&format!(
            ") UPDATE graph_edges SET weight = graph_edges.weight + a.weight, \
             count = graph_edges.count + a.count, \
             first_seen = {least}(graph_edges.first_seen, a.first_seen), \
             last_seen = {greatest}(graph_edges.last_seen, a.last_seen) \
             FROM a WHERE graph_edges.id = a.id",
            least = D::LEAST,
            greatest = D::GREATEST,
        ));
        D::execute(tx, D::GRAPH, &stmt).await?;
    }
    Ok(())
}

/// A text column of [`Dialect::rows`].
fn texts<'a>(values: impl Iterator<Item = &'a str>) -> Arg<'a> {
    Arg::Texts(values.map(|v| Some(v.into())).collect())
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
        // The entities and their aliases in one statement, a row per alias: each
        // statement is a round trip to a connection's thread.
        let mut stmt = select_by_ids::<D>(
            "SELECT e.id, e.kind, e.name, e.first_seen, e.last_seen, a.alias \
             FROM graph_entities e LEFT JOIN graph_aliases a \
             ON a.tenant = e.tenant AND a.user_id = e.user_id AND a.entity_id = e.id",
            "e",
            "id",
            scope,
            ids,
        );
        stmt.push(" ORDER BY e.id, a.alias");
        let mut entities: Vec<Entity> = Vec::new();
        for row in self.read(&stmt).await? {
            let c = Columns::new(D::GRAPH, &row);
            let id = c.int("id")?;
            if entities.last().is_none_or(|e| e.id != id) {
                entities.push(rows::entity(D::GRAPH, &row)?);
            }
            if let Some(alias) = c.opt_text("alias")? {
                if let Some(entity) = entities.last_mut() {
                    entity.aliases.push(alias);
                }
            }
        }
        Ok(entities)
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

    async fn mentions_and_matches(
        &self,
        scope: &Scope,
        keys: &[String],
    ) -> Result<(Vec<MentionStat>, Vec<i64>)> {
        if keys.is_empty() {
            return Ok((self.mention_stats(scope).await?, Vec::new()));
        }
        // One statement: the MENTIONS edges, then the ids the keys name (matched = 1).
        let mut stmt = scoped(
            "SELECT dst AS id, weight, count, last_seen, CAST(0 AS BIGINT) AS matched \
             FROM graph_edges",
            scope,
        );
        let names = text_rows::<D>(&mut stmt, keys);
        let named = "CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS BIGINT), \
                     CAST(NULL AS BIGINT), CAST(1 AS BIGINT)";
        stmt.push(&format!(
            " AND kind = 'MENTIONS' \
             UNION ALL SELECT id, {named} FROM graph_entities \
             WHERE tenant = $1 AND user_id = $2 AND name_key IN ({names}) \
             UNION ALL SELECT entity_id, {named} FROM graph_aliases \
             WHERE tenant = $1 AND user_id = $2 AND alias_key IN ({names})"
        ));
        let (mut stats, mut matched) = (Vec::new(), Vec::new());
        for row in self.read(&stmt).await? {
            let c = Columns::new(D::GRAPH, &row);
            let id = c.int("id")?;
            if c.int("matched")? == 1 {
                matched.push(id);
            } else {
                stats.push(MentionStat {
                    entity: id,
                    weight: c.float("weight")?,
                    count: c.int("count")? as u64,
                    last_seen: c.time("last_seen")?,
                });
            }
        }
        Ok((stats, matched))
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
    async fn ping(&self) -> Result<()> {
        self.db
            .read(D::GRAPH, &Statement::new("SELECT 1 AS one"))
            .await?;
        Ok(())
    }

    async fn apply(&self, updates: &[GraphUpdate]) -> Result<()> {
        for update in updates {
            update.validate()?;
        }
        if updates.is_empty() {
            return Ok(());
        }
        // A few multi-row statements for the whole batch rather than a few per edge: each
        // statement is a round trip to the connection (issue 12's ingest profile). New
        // turns, the common case, take fewer and read less back.
        if !apply_new_turns(&self.db, updates).await? {
            let mut tx = self.db.begin(D::GRAPH).await?;
            let entities = upsert_entities::<D>(&mut tx, updates).await?;
            let supports = supports_of(updates, &entities);
            let (counted, added) = first_supports(&supports);
            // Each edge created with nothing added yet: `add_supports` adds what is new.
            let created: Vec<_> = added
                .iter()
                .map(|(edge, a)| (*edge, Added::none_at(a.first)))
                .collect();
            let edges = upsert_edges::<D>(&mut tx, &created, OnExisting::Keep).await?;
            add_supports::<D>(&mut tx, &counted, &edges).await?;
            D::commit(tx, D::GRAPH).await?;
        }
        if let Some(applied) = &self.applied {
            let count = updates.len() as u64;
            let now = applied.fetch_add(count, Ordering::Relaxed) + count;
            if now / OPTIMIZE_EVERY_UPDATES > (now - count) / OPTIMIZE_EVERY_UPDATES {
                // Plans stay as they were if this fails; the next round tries again.
                if let Err(e) = self.db.write(D::GRAPH, &Statement::new(D::ANALYZE)).await {
                    tracing::warn!(error = %e, "could not refresh the graph's planner statistics");
                }
            }
        }
        Ok(())
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
        // Support rows go with their edges, by the edges' ids: on PostgreSQL no foreign key
        // cascades (see its migration 0005). The edges first: a graph sync step writing
        // this user's edges meanwhile is waited for, and its support rows are then seen.
        let mut stmt = scoped("DELETE FROM graph_edges", scope);
        stmt.push(" RETURNING id");
        let edges = D::fetch(&mut tx, D::GRAPH, &stmt)
            .await?
            .iter()
            .map(|row| Columns::new(D::GRAPH, row).int("id"))
            .collect::<Result<Vec<i64>>>()?;
        for chunk in edges.chunks(D::max_rows(1)) {
            let mut stmt = Statement::new("DELETE FROM graph_edge_support WHERE edge_id");
            let in_ids = D::in_ids(&mut stmt, chunk);
            stmt.push(&in_ids);
            D::execute(&mut tx, D::GRAPH, &stmt).await?;
        }
        for table in ["graph_entities", "graph_aliases"] {
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
        // Their aliases with them (no foreign key cascades on PostgreSQL).
        let mut stmt = scoped("DELETE FROM graph_aliases", scope);
        stmt.push(
            " AND NOT EXISTS (SELECT 1 FROM graph_entities e WHERE e.id = graph_aliases.entity_id)",
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

    async fn close(&self) {
        // For PostgreSQL these are the archive's connections: closing twice is harmless.
        self.db.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{graph_path, SqlGraph, SqliteGraph, TABLES};
    use crate::archive::sql::SqliteArchive;
    use crate::archive::{ArchiveConfig, ArchiveStore};
    use crate::clock::{SharedClock, SystemClock};
    use crate::graph::{EntityMention, GraphConfig, GraphStore, GraphUpdate, Recency};
    use crate::limits::InputLimits;
    use crate::model::{Scope, TurnId};
    use crate::sql::rows::Columns;
    use crate::sql::{Dialect, Statement};

    fn update(scope: &Scope, turn: i64, names: &[&str]) -> GraphUpdate {
        GraphUpdate {
            scope: scope.clone(),
            turn_id: TurnId(turn),
            time: chrono::Utc::now(),
            entities: names
                .iter()
                .map(|n| EntityMention::new(*n, "person"))
                .collect(),
        }
    }

    async fn archive(path: &std::path::Path, clock: SharedClock) -> SqliteArchive {
        SqliteArchive::open(
            path,
            &ArchiveConfig::default(),
            InputLimits::default(),
            clock,
        )
        .await
        .unwrap()
    }

    async fn rows_in(archive: &SqliteArchive, table: &str) -> i64 {
        let stmt = Statement::new(format!("SELECT count(*) AS n FROM {table}"));
        let rows = archive.db().read("test", &stmt).await.unwrap();
        Columns::new("test", &rows[0]).int("n").unwrap()
    }

    /// Rows in `table` of `graph`'s database that `condition` picks.
    async fn count<D: Dialect>(graph: &SqlGraph<D>, table: &str, condition: &str) -> i64 {
        let stmt = Statement::new(format!("SELECT count(*) AS n FROM {table} {condition}"));
        let rows = graph.db.read("test", &stmt).await.unwrap();
        Columns::new("test", &rows[0]).int("n").unwrap()
    }

    /// Support rows and aliases go with the edges and entities a forget deletes, with no
    /// foreign key to cascade (PostgreSQL has none since its migration 0005); another
    /// user's stay.
    async fn forgetting_leaves_no_support_or_alias_behind<D: Dialect>(graph: &SqlGraph<D>) {
        let alice = Scope::parse("t", "alice").unwrap();
        let bob = Scope::parse("t", "bob").unwrap();
        let mut alan = update(&alice, 2, &["Ada", "Alan"]);
        alan.entities[1].aliases = vec!["Al".into()];
        let mut grace = update(&alice, 1, &["Ada", "Grace"]);
        grace.entities[1].aliases = vec!["Amazing Grace".into()];
        graph
            .apply(&[grace, alan, update(&bob, 3, &["Ada", "Grace"])])
            .await
            .unwrap();
        let orphan_supports = "s WHERE NOT EXISTS (SELECT 1 FROM graph_edges e \
                               WHERE e.id = s.edge_id)";
        let orphan_aliases = "a WHERE NOT EXISTS (SELECT 1 FROM graph_entities e \
                              WHERE e.id = a.entity_id)";
        let of_alice = "WHERE tenant = 't' AND user_id = 'alice'";
        assert_eq!(count(graph, "graph_aliases", of_alice).await, 2);

        graph.forget_turn(&alice, TurnId(2)).await.unwrap();
        let names: Vec<String> = graph
            .find_entities(&alice, &["Alan".into(), "Grace".into()])
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec!["Grace".to_owned()]);
        assert_eq!(count(graph, "graph_aliases", of_alice).await, 1);
        assert_eq!(count(graph, "graph_edge_support", orphan_supports).await, 0);
        assert_eq!(count(graph, "graph_aliases", orphan_aliases).await, 0);
        assert_eq!(
            count(graph, "graph_edge_support", "WHERE turn_id = 2").await,
            0
        );

        graph.forget_user(&alice).await.unwrap();
        assert_eq!(count(graph, "graph_edge_support", orphan_supports).await, 0);
        assert_eq!(count(graph, "graph_aliases", orphan_aliases).await, 0);
        assert_eq!(
            count(graph, "graph_edge_support", "WHERE turn_id = 1").await,
            0
        );
        // Bob's: MENTIONS Ada, MENTIONS Grace, Ada RELATED_TO Grace, from turn 3.
        assert_eq!(
            count(graph, "graph_edge_support", "WHERE turn_id = 3").await,
            3
        );
        assert_eq!(
            count(graph, "graph_entities", "WHERE user_id = 'bob'").await,
            2
        );
    }

    #[tokio::test]
    async fn forgetting_leaves_no_support_or_alias_behind_in_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive(&dir.path().join("archive.db"), SystemClock::shared()).await;
        let graph =
            SqliteGraph::open_beside(&archive, &ArchiveConfig::default(), &GraphConfig::default())
                .await
                .unwrap();
        forgetting_leaves_no_support_or_alias_behind(&graph).await;
        graph.close().await;
        archive.close().await;
    }

    #[cfg(feature = "conformance")]
    #[tokio::test]
    async fn forgetting_leaves_no_support_or_alias_behind_in_postgres() {
        use crate::archive::sql::PostgresArchive;
        use crate::conformance::postgres::TestDatabase;
        use crate::graph::sql::PostgresGraph;
        let database = TestDatabase::create().await;
        let archive = PostgresArchive::open_with(
            database.options(),
            &ArchiveConfig::default(),
            InputLimits::default(),
            SystemClock::shared(),
        )
        .await
        .unwrap();
        let graph = PostgresGraph::beside(&archive, &GraphConfig::default());
        forgetting_leaves_no_support_or_alias_behind(&graph).await;
        archive.close().await;
    }

    #[test]
    fn the_graph_file_is_named_after_the_archive_file() {
        let dir = std::path::Path::new("/data");
        assert_eq!(
            graph_path(&dir.join("archive.db")),
            dir.join("archive-graph.db")
        );
        assert_eq!(graph_path(&dir.join("mnemo")), dir.join("mnemo-graph"));
    }

    /// An archive written when the graph's tables lived in its database: opening the graph
    /// beside it moves them, once, and the graph answers as before.
    #[tokio::test]
    async fn a_graph_kept_in_the_archive_database_moves_to_its_own_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive.db");
        let clock = SystemClock::shared();
        let scope = Scope::parse("t", "u").unwrap();
        let recency = Recency {
            now: chrono::Utc::now(),
            half_life: Duration::from_secs(86_400),
        };
        let config = GraphConfig::default();
        let old = archive(&path, clock.clone()).await;
        // The earlier layout: the graph on the archive's own connections and tables.
        let in_archive = SqliteGraph::new(old.db().clone(), &config);
        in_archive
            .apply(&[
                update(&scope, 1, &["Ada", "Grace"]),
                update(&scope, 3, &["Ada", "Edsger"]),
            ])
            .await
            .unwrap();
        // Alan takes id 4 and goes with turn 2: the highest id is 3, the high-water mark 4.
        in_archive
            .apply(&[update(&scope, 2, &["Ada", "Alan"])])
            .await
            .unwrap();
        in_archive.forget_turn(&scope, TurnId(2)).await.unwrap();
        let before = in_archive.user_entities(&scope, recency, 10).await.unwrap();
        let before_hood = in_archive
            .neighbourhood(&scope, "ada", 2, 10)
            .await
            .unwrap();
        assert_eq!(before.len(), 3, "{before:?}");
        let stmt =
            Statement::new("SELECT seq AS n FROM sqlite_sequence WHERE name = 'graph_entities'");
        let rows = old.db().read("test", &stmt).await.unwrap();
        let high_water = Columns::new("test", &rows[0]).int("n").unwrap();
        assert!(high_water >= 4, "{high_water}");
        old.close().await;

        for _ in 0..2 {
            let archive = archive(&path, clock.clone()).await;
            let graph = SqliteGraph::open_beside(&archive, &ArchiveConfig::default(), &config)
                .await
                .unwrap();
            assert_eq!(
                graph.user_entities(&scope, recency, 10).await.unwrap(),
                before
            );
            assert_eq!(
                graph.neighbourhood(&scope, "ada", 2, 10).await.unwrap(),
                before_hood
            );
            for table in TABLES {
                assert_eq!(rows_in(&archive, table).await, 0, "{table} left behind");
            }
            // The moved tables were analyzed at open.
            let stmt = Statement::new("SELECT count(*) AS n FROM sqlite_stat1");
            let rows = graph.db.read("test", &stmt).await.unwrap();
            let n = Columns::new("test", &rows[0]).int("n").unwrap();
            assert!(n > 0, "no planner statistics in the graph's file");
            graph.close().await;
            archive.close().await;
        }
        assert!(graph_path(&path).exists());

        // New entities take ids above every one the archive handed out (Alan's too).
        let archive = archive(&path, clock.clone()).await;
        let graph = SqliteGraph::open_beside(&archive, &ArchiveConfig::default(), &config)
            .await
            .unwrap();
        graph
            .apply(&[update(&scope, 4, &["Barbara"])])
            .await
            .unwrap();
        let barbara = graph
            .find_entities(&scope, &["Barbara".to_owned()])
            .await
            .unwrap();
        assert_eq!(barbara.len(), 1);
        assert_eq!(barbara[0].id, high_water + 1, "{barbara:?}");
        // The archive's own rows are untouched by the graph's writes.
        assert_eq!(archive.head().await.unwrap(), TurnId(0));
        graph.close().await;
        archive.close().await;
    }
}
