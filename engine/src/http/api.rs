//! The request and response bodies of the HTTP API, with their OpenAPI schemas. They are
//! the wire format: field names here are what clients send and read. Request bodies
//! refuse unknown fields.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mnemo_actors::context::ranking::{ContextItem, ItemKind};
use mnemo_storage::archive::ForgetReport;
use mnemo_storage::graph::{Edge, Entity, Neighbourhood, RankedEntity};
use mnemo_storage::index::SearchHit;
use mnemo_storage::model::{EmotionScores, EmotionState, Role, Turn};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::engine::{ActorHealth, Health, ProcessorHealth};
use crate::ContextAnswer;

/// Who spoke a turn.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RoleDto {
    /// The human.
    User,
    /// The bot or agent.
    Assistant,
    /// Instructions or events injected by the host application.
    System,
}

impl From<RoleDto> for Role {
    fn from(role: RoleDto) -> Self {
        match role {
            RoleDto::User => Role::User,
            RoleDto::Assistant => Role::Assistant,
            RoleDto::System => Role::System,
        }
    }
}

impl From<Role> for RoleDto {
    fn from(role: Role) -> Self {
        match role {
            Role::User => RoleDto::User,
            Role::Assistant => RoleDto::Assistant,
            Role::System => RoleDto::System,
        }
    }
}

/// A turn to store. The tenant comes from the API key.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TurnIn {
    /// The user, as the tenant names them.
    pub user_id: String,
    /// The conversation session.
    pub session_id: String,
    /// Who spoke.
    pub role: RoleDto,
    /// What was said (UTF-8, at most `storage.limits.max_content_bytes`).
    pub content: String,
    /// The speaker's display name.
    #[serde(default)]
    pub speaker: Option<String>,
    /// When it was said (RFC 3339); default: the time it is stored.
    #[serde(default)]
    pub event_time: Option<DateTime<Utc>>,
    /// Free-form metadata, a JSON object (at most `storage.limits.max_metadata_bytes`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Idempotency key: storing the same external id twice for a user stores one turn.
    #[serde(default)]
    pub external_id: Option<String>,
}

/// A batch of turns, stored all or nothing.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TurnsIn {
    /// The turns, in order.
    pub turns: Vec<TurnIn>,
}

/// The body of `POST /v1/turns`: one turn, or `{ "turns": [...] }`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StoreIn {
    /// A batch.
    Batch(TurnsIn),
    /// One turn.
    One(TurnIn),
}

/// One stored turn, as `POST /v1/turns` answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoredTurn {
    /// The turn's id.
    pub id: i64,
    /// Its external id (the one sent, or one generated).
    pub external_id: String,
    /// False when the external id was already stored and nothing new was written.
    pub created: bool,
}

/// The answer of `POST /v1/turns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoreOut {
    /// The ids of the turns, in the order sent.
    pub ids: Vec<i64>,
    /// Each turn with its external id and whether it was new.
    pub turns: Vec<StoredTurn>,
}

/// Emotion scores of a turn or a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EmotionScoresOut {
    /// Score per emotion label, each in [0, 1].
    pub labels: BTreeMap<String, f32>,
    /// Pleasantness in [-1, 1].
    pub valence: f32,
    /// Activation in [0, 1].
    pub arousal: f32,
}

impl From<EmotionScores> for EmotionScoresOut {
    fn from(s: EmotionScores) -> Self {
        Self {
            labels: s.labels,
            valence: s.valence,
            arousal: s.arousal,
        }
    }
}

/// A stored turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TurnOut {
    /// Its id.
    pub id: i64,
    /// Its external id.
    pub external_id: String,
    /// The user.
    pub user_id: String,
    /// The session.
    pub session_id: String,
    /// Who spoke.
    pub role: RoleDto,
    /// The speaker's display name.
    pub speaker: Option<String>,
    /// What was said.
    pub content: String,
    /// When it was said.
    pub event_time: DateTime<Utc>,
    /// When Mnemo stored it.
    pub ingest_time: DateTime<Utc>,
    /// Its metadata object.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Emotion scores, once processed.
    pub emotion: Option<EmotionScoresOut>,
    /// Importance in [0, 1], once processed.
    pub importance: Option<f32>,
}

impl From<Turn> for TurnOut {
    fn from(t: Turn) -> Self {
        Self {
            id: t.id.0,
            external_id: t.external_id.into(),
            user_id: t.scope.user.into(),
            session_id: t.session_id.into(),
            role: t.role.into(),
            speaker: t.speaker,
            content: t.content,
            event_time: t.event_time,
            ingest_time: t.ingest_time,
            metadata: t.metadata,
            emotion: t.emotion.map(Into::into),
            importance: t.importance,
        }
    }
}

/// The body of `POST /v1/context`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextIn {
    /// The user.
    pub user_id: String,
    /// The current session, whose last turns come first.
    #[serde(default)]
    pub session_id: Option<String>,
    /// What the next prompt is about.
    pub query: String,
    /// Recent turns of the session, at most (default from config).
    #[serde(default)]
    pub max_recent: Option<usize>,
    /// Relevant items, at most (default from config).
    #[serde(default)]
    pub max_items: Option<usize>,
    /// Tokens of the rendered prompt, at most (default from config).
    #[serde(default)]
    pub token_budget: Option<usize>,
    /// How long the caller can wait, in milliseconds (default from config).
    #[serde(default)]
    pub deadline_ms: Option<u64>,
}

/// One ranked piece of context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ItemOut {
    /// `turn`, `summary` or `entity`.
    pub kind: String,
    /// The turn, summary or entity id.
    pub id: i64,
    /// The text shown to the model.
    pub text: String,
    /// The ranking score.
    pub score: f64,
    /// When it was said (entities: last mentioned).
    pub event_time: Option<DateTime<Utc>>,
    /// Its session, for turns and summaries.
    pub session_id: Option<String>,
}

impl From<ContextItem> for ItemOut {
    fn from(i: ContextItem) -> Self {
        let kind = match i.kind {
            ItemKind::Turn => "turn",
            ItemKind::Summary => "summary",
            ItemKind::Entity => "entity",
        };
        Self {
            kind: kind.to_owned(),
            id: i.id,
            text: i.text,
            score: i.score,
            event_time: i.event_time,
            session_id: i.session_id.map(Into::into),
        }
    }
}

/// An entity of a user's graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EntityOut {
    /// Its id.
    pub id: i64,
    /// What it is (`person`, `place`, `topic`, ...).
    pub kind: String,
    /// Canonical name.
    pub name: String,
    /// Other names it goes by.
    pub aliases: Vec<String>,
    /// Event time of the first turn that mentioned it.
    pub first_seen: DateTime<Utc>,
    /// Event time of the last turn that mentioned it.
    pub last_seen: DateTime<Utc>,
}

impl From<Entity> for EntityOut {
    fn from(e: Entity) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            name: e.name,
            aliases: e.aliases,
            first_seen: e.first_seen,
            last_seen: e.last_seen,
        }
    }
}

/// An entity with the strength of the user's mentions of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RankedEntityOut {
    /// The entity.
    pub entity: EntityOut,
    /// Sum of the mention weights.
    pub weight: f64,
    /// Turns that mention it.
    pub mentions: u64,
    /// `weight` decayed by the time since it was last mentioned.
    pub score: f64,
}

impl From<RankedEntity> for RankedEntityOut {
    fn from(e: RankedEntity) -> Self {
        Self {
            entity: e.entity.into(),
            weight: e.weight,
            mentions: e.mentions,
            score: e.score,
        }
    }
}

/// A user's emotion state: a decayed aggregate of their turns' emotions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EmotionStateOut {
    /// The aggregate scores.
    pub scores: EmotionScoresOut,
    /// Turns folded in.
    pub turns: u64,
    /// The last turn folded in.
    pub last_turn: i64,
    /// Event time of the last turn folded in.
    pub updated: DateTime<Utc>,
}

impl From<EmotionState> for EmotionStateOut {
    fn from(s: EmotionState) -> Self {
        Self {
            scores: s.scores.into(),
            turns: s.turns,
            last_turn: s.last_turn.0,
            updated: s.updated,
        }
    }
}

/// The answer of `POST /v1/context`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContextOut {
    /// The session's recent turns, oldest first.
    pub recent: Vec<TurnOut>,
    /// Relevant turns, summaries and entities, best first.
    pub items: Vec<ItemOut>,
    /// Entities named in the query and the user's strongest ones.
    pub entities: Vec<RankedEntityOut>,
    /// The user's emotion state.
    pub emotion: Option<EmotionStateOut>,
    /// Tiers that were late or down and are missing from this answer.
    pub degraded: Vec<String>,
    /// Milliseconds each tier took, and the total.
    pub timings_ms: BTreeMap<String, f64>,
    /// The rendered prompt text.
    pub prompt: String,
    /// Tokens in `prompt` (cl100k).
    pub tokens: usize,
    /// Whether the answer came from the per-user cache.
    pub cached: bool,
}

impl From<ContextAnswer> for ContextOut {
    fn from(a: ContextAnswer) -> Self {
        Self {
            recent: a.recent.into_iter().map(Into::into).collect(),
            items: a.items.into_iter().map(Into::into).collect(),
            entities: a.entities.into_iter().map(Into::into).collect(),
            emotion: a.emotion.map(Into::into),
            degraded: a.degraded,
            timings_ms: a.timings_ms,
            prompt: a.prompt,
            tokens: a.tokens,
            cached: a.cached,
        }
    }
}

/// The query of `GET /v1/search`.
#[derive(Debug, Clone, PartialEq, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The user.
    pub user_id: String,
    /// Words to look for (free text).
    pub q: String,
    /// Most hits (default 10).
    pub limit: Option<usize>,
    /// Hits to skip (default 0).
    pub offset: Option<usize>,
    /// Only turns and summaries at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only turns and summaries before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HitOut {
    /// `turn` or `summary`.
    pub kind: String,
    /// The turn or summary id.
    pub id: i64,
    /// Its session.
    pub session_id: String,
    /// When it was said.
    pub event_time: DateTime<Utc>,
    /// Its text.
    pub text: String,
    /// BM25 relevance.
    pub score: f32,
}

impl From<SearchHit> for HitOut {
    fn from(h: SearchHit) -> Self {
        Self {
            kind: h.kind.as_str().to_owned(),
            id: h.id,
            session_id: h.session_id.into(),
            event_time: h.event_time,
            text: h.text,
            score: h.score,
        }
    }
}

/// The answer of `GET /v1/search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchOut {
    /// Hits, best first.
    pub hits: Vec<HitOut>,
}

/// The query of `GET /v1/users/{user_id}/sessions/{session_id}/turns`.
#[derive(Debug, Clone, PartialEq, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Most turns (default 50).
    pub limit: Option<usize>,
    /// Only turns older than this turn id (the `next_before` of the previous page).
    pub before: Option<i64>,
}

/// A page of a session's turns, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryOut {
    /// The turns, newest first.
    pub turns: Vec<TurnOut>,
    /// `before` of the next page, when this page is full.
    pub next_before: Option<i64>,
}

/// The query of `GET /v1/users/{user_id}/graph`.
#[derive(Debug, Clone, PartialEq, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GraphParams {
    /// The entity's name or alias.
    pub entity: String,
    /// Hops to walk: 1 or 2 (default 1).
    pub depth: Option<usize>,
    /// Most edges per hop (default 20).
    pub limit: Option<usize>,
}

/// An edge of a user's graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EdgeOut {
    /// `MENTIONS` or `RELATED_TO`.
    pub kind: String,
    /// Source entity id (0: the user).
    pub src: i64,
    /// Destination entity id.
    pub dst: i64,
    /// Sum of the supporting weights.
    pub weight: f64,
    /// Supporting turns.
    pub count: u64,
    /// Event time of the first supporting turn.
    pub first_seen: DateTime<Utc>,
    /// Event time of the last supporting turn.
    pub last_seen: DateTime<Utc>,
    /// The most recent supporting turn ids, newest first.
    pub turns: Vec<i64>,
}

impl From<Edge> for EdgeOut {
    fn from(e: Edge) -> Self {
        Self {
            kind: e.kind.as_str().to_owned(),
            src: e.src,
            dst: e.dst,
            weight: e.weight,
            count: e.count,
            first_seen: e.first_seen,
            last_seen: e.last_seen,
            turns: e.turns.into_iter().map(|t| t.0).collect(),
        }
    }
}

/// An entity and its neighbourhood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphOut {
    /// The entity asked for.
    pub center: EntityOut,
    /// Every other entity reached.
    pub entities: Vec<EntityOut>,
    /// The RELATED_TO edges walked, strongest first.
    pub edges: Vec<EdgeOut>,
}

impl From<Neighbourhood> for GraphOut {
    fn from(n: Neighbourhood) -> Self {
        Self {
            center: n.center.into(),
            entities: n.entities.into_iter().map(Into::into).collect(),
            edges: n.edges.into_iter().map(Into::into).collect(),
        }
    }
}

/// The query of `DELETE /v1/turns/{id}`.
#[derive(Debug, Clone, PartialEq, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForgetTurnParams {
    /// The user the turn belongs to.
    pub user_id: String,
}

/// What a forget removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ForgetOut {
    /// Turns removed.
    pub turns: u64,
    /// Summaries removed.
    pub summaries: u64,
}

impl From<ForgetReport> for ForgetOut {
    fn from(r: ForgetReport) -> Self {
        Self {
            turns: r.turns,
            summaries: r.summaries,
        }
    }
}

/// The answer of `/healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AliveOut {
    /// Always `ok`.
    pub status: String,
}

/// One actor in `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActorOut {
    /// Its name.
    pub name: String,
    /// `up`, `restarting` or `disabled`.
    pub state: String,
    /// Restarts per cause.
    pub restarts: BTreeMap<String, u64>,
    /// The last failure.
    pub last_failure: Option<String>,
    /// Messages waiting in its mailbox.
    pub mailbox_depth: Option<usize>,
}

impl From<ActorHealth> for ActorOut {
    fn from(a: ActorHealth) -> Self {
        Self {
            name: a.name,
            state: a.state,
            restarts: a.restarts,
            last_failure: a.last_failure,
            mailbox_depth: a.mailbox_depth,
        }
    }
}

/// One processor in `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProcessorOut {
    /// Its name.
    pub name: String,
    /// Whether its loop runs.
    pub running: bool,
    /// Whether this node runs it now (a shared processor runs on one node of a cluster
    /// at a time; the others stand by).
    pub holds_lease: bool,
    /// The last turn it has fully handled (on a node standing by: the cluster's).
    pub checkpoint: i64,
    /// Turns stored but not yet handled.
    pub lag: i64,
}

impl From<ProcessorHealth> for ProcessorOut {
    fn from(p: ProcessorHealth) -> Self {
        Self {
            name: p.name,
            running: p.running,
            holds_lease: p.holds_lease,
            checkpoint: p.checkpoint,
            lag: p.lag,
        }
    }
}

/// The answer of `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReadyOut {
    /// Whether the service takes requests: the engine accepts work, the archive is up and
    /// the processors are not too far behind to take writes.
    pub ready: bool,
    /// This node's name (`[storage] node`).
    pub node: String,
    /// Whether the engine accepts work (false while shutting down).
    pub accepting: bool,
    /// The highest turn id stored.
    pub head: i64,
    /// Every actor.
    pub actors: Vec<ActorOut>,
    /// The processors that run.
    pub processors: Vec<ProcessorOut>,
    /// Stored turns the slowest processor has not handled yet.
    pub backlog: u64,
    /// Whether the backlog is at its bound (`[actors.processors] max_backlog_turns`):
    /// writes are refused with 429 until the processors catch up.
    pub behind: bool,
    /// Per operation (`store`, `context`): requests in flight and how many may be (past
    /// the limit, 429 at once; `[engine.admission]`).
    pub admission: Vec<AdmissionOut>,
}

/// One operation's admission gate in `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdmissionOut {
    /// The operation.
    pub operation: String,
    /// Requests in flight now.
    pub in_flight: usize,
    /// How many may be in flight now, adapted to their latency.
    pub limit: usize,
}

impl From<Health> for ReadyOut {
    fn from(h: Health) -> Self {
        let archive_up = h.actor("archive").is_some_and(|a| a.state == "up");
        Self {
            ready: h.accepting && archive_up && !h.behind,
            node: h.node,
            accepting: h.accepting,
            backlog: h.backlog,
            behind: h.behind,
            head: h.head,
            actors: h.actors.into_iter().map(Into::into).collect(),
            processors: h.processors.into_iter().map(Into::into).collect(),
            admission: h
                .admission
                .into_iter()
                .map(|g| AdmissionOut {
                    operation: g.operation,
                    in_flight: g.in_flight,
                    limit: g.limit,
                })
                .collect(),
        }
    }
}

/// An error: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `malformed_json`, `invalid_request`, `unauthorized`,
    /// `not_found`, `method_not_allowed`, `too_large`, `invalid_input`, `busy`,
    /// `unavailable`, `shutting_down`, `timeout`, `internal`.
    pub code: String,
    /// What went wrong, naming the field.
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}
