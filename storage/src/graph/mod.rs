//! The graph tier: per user, the entities they talk about and how those relate. Nodes are
//! the user and their entities (kind, canonical name, aliases); edges are MENTIONS
//! (user -> entity) and RELATED_TO (entity -- entity, co-occurrence in a turn), each with
//! weight, count, first and last seen, and the turns that support it.
//!
//! Upserts are idempotent per turn: applying the same turn twice changes nothing, so a
//! processor may replay its outbox after a restart.
//!
//! Backends: [`sql::SqliteGraph`] (embedded: tables in a SQLite file beside the archive's,
//! with a writer of its own), [`sql::PostgresGraph`] (the same tables in the archive's
//! database when it is on PostgreSQL), both one
//! implementation over the SQL core, and [`neo4j::Neo4jGraph`] (a Bolt graph server).
//! They share their read logic ([`reads`]).

pub mod neo4j;
mod reads;
pub mod sql;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::limits::check_id;
use crate::model::{Scope, Timestamp, TurnId};

/// Which graph backend to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GraphBackend {
    /// SQL tables: in the archive's database on PostgreSQL, in a file beside the
    /// archive's on SQLite.
    #[default]
    Embedded,
    /// A Bolt graph server (Neo4j 5, or FalkorDB through a Bolt 4 bridge), settings in
    /// `[storage.graph.neo4j]`.
    Neo4j,
}

/// Settings of the graph tier. Section `[storage.graph]` of `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphConfig {
    /// Run the graph tier at all (off: no entities in context, no graph sync).
    pub enabled: bool,
    /// Which backend.
    pub backend: GraphBackend,
    /// Most supporting turn ids returned per edge.
    pub max_support_per_edge: usize,
    /// Connection settings of the `neo4j` backend.
    pub neo4j: neo4j::Neo4jConfig,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            backend: GraphBackend::Embedded,
            max_support_per_edge: 20,
            neo4j: neo4j::Neo4jConfig::default(),
        }
    }
}

/// The kind of an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EdgeKind {
    /// The user mentioned the entity.
    Mentions,
    /// Two entities were mentioned in the same turn.
    RelatedTo,
}

impl EdgeKind {
    /// The kind's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Mentions => "MENTIONS",
            EdgeKind::RelatedTo => "RELATED_TO",
        }
    }

    /// Parses a stored kind name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "MENTIONS" => Some(EdgeKind::Mentions),
            "RELATED_TO" => Some(EdgeKind::RelatedTo),
            _ => None,
        }
    }
}

/// One entity found in a turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityMention {
    /// Canonical name.
    pub name: String,
    /// What it is (`person`, `place`, `topic`, ...).
    pub kind: String,
    /// Other names it goes by.
    pub aliases: Vec<String>,
    /// How strongly the turn is about it (> 0).
    pub weight: f64,
}

impl EntityMention {
    /// A mention of `name` as `kind` with weight 1 and no aliases.
    pub fn new(name: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            aliases: Vec::new(),
            weight: 1.0,
        }
    }
}

/// What one turn adds to a user's graph.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphUpdate {
    /// Whose graph.
    pub scope: Scope,
    /// The turn that supports every edge of this update.
    pub turn_id: TurnId,
    /// The turn's event time.
    pub time: Timestamp,
    /// The entities the turn mentions; each pair becomes a RELATED_TO edge.
    pub entities: Vec<EntityMention>,
}

impl EntityMention {
    /// Refuses a mention with an unusable name, kind, alias or weight.
    pub fn validate(&self) -> Result<()> {
        check_id("entity name", &self.name)?;
        check_id("entity kind", &self.kind)?;
        for alias in &self.aliases {
            check_id("entity alias", alias)?;
        }
        if !(self.weight.is_finite() && self.weight > 0.0) {
            return Err(Error::invalid(
                "entity weight",
                format!("{} is not a positive number", self.weight),
            ));
        }
        Ok(())
    }
}

impl GraphUpdate {
    /// Refuses updates with unusable names, kinds or weights.
    pub fn validate(&self) -> Result<()> {
        self.entities.iter().try_for_each(EntityMention::validate)
    }
}

/// A stored entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Its id within the backend.
    pub id: i64,
    /// What it is.
    pub kind: String,
    /// Canonical name.
    pub name: String,
    /// Other names it goes by.
    pub aliases: Vec<String>,
    /// Event time of the first turn that mentioned it.
    pub first_seen: Timestamp,
    /// Event time of the last turn that mentioned it.
    pub last_seen: Timestamp,
}

/// An entity of a user with the strength of the user's MENTIONS edge to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedEntity {
    /// The entity.
    pub entity: Entity,
    /// Sum of the mention weights.
    pub weight: f64,
    /// Turns that mention it.
    pub mentions: u64,
    /// `weight` decayed by the time since it was last mentioned.
    pub score: f64,
}

/// The entities a context answer shows: those the query names and the user's best
/// ranked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextEntities {
    /// The user's entities whose name or an alias matches one of the names asked for, by
    /// id; one the user never mentioned has weight, mentions and score 0.
    pub matched: Vec<RankedEntity>,
    /// The user's best ranked entities, best first (as [`GraphStore::user_entities`]).
    pub top: Vec<RankedEntity>,
}

/// A stored edge. `src` 0 is the user's own node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// MENTIONS or RELATED_TO.
    pub kind: EdgeKind,
    /// Source entity id (0: the user).
    pub src: i64,
    /// Destination entity id.
    pub dst: i64,
    /// Sum of the supporting weights.
    pub weight: f64,
    /// Supporting turns.
    pub count: u64,
    /// Event time of the first supporting turn.
    pub first_seen: Timestamp,
    /// Event time of the last supporting turn.
    pub last_seen: Timestamp,
    /// The most recent supporting turn ids, newest first.
    pub turns: Vec<TurnId>,
}

/// An entity and what surrounds it, up to some depth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbourhood {
    /// The entity asked for.
    pub center: Entity,
    /// Every other entity reached.
    pub entities: Vec<Entity>,
    /// The RELATED_TO edges walked, strongest first.
    pub edges: Vec<Edge>,
}

/// How `user_entities` weighs recency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recency {
    /// The time scores are computed at.
    pub now: Timestamp,
    /// After this long without a mention, an entity's score halves.
    pub half_life: Duration,
}

impl Recency {
    /// `weight` decayed for the time since `last_seen`.
    pub fn decay(&self, weight: f64, last_seen: Timestamp) -> f64 {
        let age = (self.now - last_seen).num_milliseconds().max(0) as f64 / 1000.0;
        let half_life = self.half_life.as_secs_f64().max(1e-3);
        weight * 0.5f64.powf(age / half_life)
    }
}

/// The canonical matching key of a name: trimmed, lower-cased, inner spaces folded.
pub fn name_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The graph tier.
#[async_trait]
pub trait GraphStore: Send + Sync + std::fmt::Debug {
    /// Asks the backend whether it answers (health: a tier is up only once it does).
    async fn ping(&self) -> Result<()>;

    /// Applies the updates in one transaction, or none if any is refused. Idempotent per
    /// (user, turn): an update for a turn already applied changes nothing.
    async fn apply(&self, updates: &[GraphUpdate]) -> Result<()>;

    /// The user's entities ranked by MENTIONS weight decayed by recency, best first.
    async fn user_entities(
        &self,
        scope: &Scope,
        recency: Recency,
        limit: usize,
    ) -> Result<Vec<RankedEntity>>;

    /// The entity named `name` (or an alias) and its RELATED_TO neighbours up to `depth`
    /// hops (1 or 2), at most `limit` edges per hop, strongest first. `None` when the user
    /// has no such entity.
    async fn neighbourhood(
        &self,
        scope: &Scope,
        name: &str,
        depth: usize,
        limit: usize,
    ) -> Result<Option<Neighbourhood>>;

    /// The user's entities whose name or an alias matches one of `names` (case- and
    /// space-insensitive).
    async fn find_entities(&self, scope: &Scope, names: &[String]) -> Result<Vec<Entity>>;

    /// The entities a context answer shows, in one read: those matching `names` (as
    /// `find_entities`) with their rank, and the `top` best ranked (as `user_entities`).
    async fn context_entities(
        &self,
        scope: &Scope,
        recency: Recency,
        names: &[String],
        top: usize,
    ) -> Result<ContextEntities>;

    /// Removes every node and edge of the user.
    async fn forget_user(&self, scope: &Scope) -> Result<()>;

    /// Takes one turn's support out of the user's edges; edges left with no support go,
    /// and so do entities left with no edge.
    async fn forget_turn(&self, scope: &Scope, turn: TurnId) -> Result<()>;

    /// Closes the backend's connections (a backend with none of its own does nothing).
    async fn close(&self) {}
}
