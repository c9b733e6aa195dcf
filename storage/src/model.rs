//! The data model shared by every tier: identifiers and scope, turns, summaries,
//! emotion scores and state.
//!
//! Every stored item carries its tenant and user; every query takes a [`Scope`], so no
//! code path can ask for data without saying whose.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::limits::{check_id, check_metadata, check_text, InputLimits};

/// A point in time, UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Conversions between [`Timestamp`] and the microseconds since the Unix epoch that the
/// stores keep.
pub trait TimestampExt {
    /// Microseconds since the Unix epoch.
    fn to_micros(&self) -> i64;
    /// The timestamp `micros` microseconds after the Unix epoch (clamped to the
    /// representable range).
    fn from_micros(micros: i64) -> Self;
}

impl TimestampExt for Timestamp {
    fn to_micros(&self) -> i64 {
        self.timestamp_micros()
    }

    fn from_micros(micros: i64) -> Self {
        chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier: non-empty, at most 256 bytes, no control
            /// characters.
            pub fn new(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                check_id($field, &value)?;
                Ok(Self(value))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(value: &str) -> Result<Self> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A tenant: one customer of a Mnemo deployment. Comes from the API key, never the body.
    TenantId,
    "tenant"
);
string_id!(
    /// A user of a tenant, as the tenant names them.
    UserId,
    "user_id"
);
string_id!(
    /// A conversation session of a user.
    SessionId,
    "session_id"
);
string_id!(
    /// A caller-chosen stable id for a turn; storing the same one twice stores one turn.
    ExternalId,
    "external_id"
);

/// Whose data a call concerns: every read and write is scoped by tenant and user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Scope {
    /// The tenant.
    pub tenant: TenantId,
    /// The user within the tenant.
    pub user: UserId,
}

impl Scope {
    /// The scope of `user` in `tenant`.
    pub fn new(tenant: TenantId, user: UserId) -> Self {
        Self { tenant, user }
    }

    /// Builds a scope from raw strings, validating both.
    pub fn parse(tenant: &str, user: &str) -> Result<Self> {
        Ok(Self::new(TenantId::new(tenant)?, UserId::new(user)?))
    }

    /// One string naming the scope, unambiguous because ids hold no control characters.
    /// Used as a filter key by the index and as a key prefix by caches.
    pub fn key(&self) -> String {
        format!("{}\u{1f}{}", self.tenant, self.user)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.user)
    }
}

/// A turn's id: its sequence number in the archive. Monotonic, never reused.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct TurnId(pub i64);

impl fmt::Display for TurnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A summary's id in the archive. Monotonic, never reused.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct SummaryId(pub i64);

impl fmt::Display for SummaryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who spoke a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The human.
    User,
    /// The bot or agent.
    Assistant,
    /// Instructions or events injected by the host application.
    System,
}

impl Role {
    /// The role's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }

    /// Parses a stored or requested role name.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "system" => Ok(Role::System),
            other => Err(Error::invalid(
                "role",
                format!("{other:?} is not one of user, assistant, system"),
            )),
        }
    }
}

/// A turn as a caller submits it, before it has an id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTurn {
    /// Whose turn this is.
    pub scope: Scope,
    /// The session it belongs to.
    pub session_id: SessionId,
    /// Who spoke.
    pub role: Role,
    /// The speaker's display name, if any.
    pub speaker: Option<String>,
    /// What was said.
    pub content: String,
    /// When it was said: client-supplied for imports, else the ingest time.
    pub event_time: Option<Timestamp>,
    /// Free-form metadata; must be a JSON object.
    pub metadata: serde_json::Value,
    /// Idempotency key: the same external id twice (same tenant and user) is one turn.
    pub external_id: Option<ExternalId>,
}

impl NewTurn {
    /// A plain turn with no speaker, event time, metadata or external id.
    pub fn new(
        scope: Scope,
        session_id: SessionId,
        role: Role,
        content: impl Into<String>,
    ) -> Self {
        Self {
            scope,
            session_id,
            role,
            speaker: None,
            content: content.into(),
            event_time: None,
            metadata: serde_json::Value::Object(Default::default()),
            external_id: None,
        }
    }

    /// Refuses the turn if any field breaks `limits`.
    pub fn validate(&self, limits: &InputLimits) -> Result<()> {
        check_text("content", &self.content, limits.max_content_bytes)?;
        check_metadata(&self.metadata, limits.max_metadata_bytes)?;
        if let Some(speaker) = &self.speaker {
            check_id("speaker", speaker)?;
        }
        Ok(())
    }
}

/// A turn to store with the scores its caller already made: stored with the turn in its
/// insert, so no processor has to write the row again (a rewrite costs SQLite WAL pages
/// and PostgreSQL a new tuple and its index entries).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredTurn {
    /// The turn.
    pub turn: NewTurn,
    /// Its emotion scores, if already made.
    pub emotion: Option<EmotionScores>,
    /// Its importance in [0, 1], if already made.
    pub importance: Option<f32>,
}

impl From<NewTurn> for ScoredTurn {
    fn from(turn: NewTurn) -> Self {
        Self {
            turn,
            emotion: None,
            importance: None,
        }
    }
}

/// A stored turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Sequence number in the archive.
    pub id: TurnId,
    /// Stable external id (caller-supplied, or generated at ingest).
    pub external_id: ExternalId,
    /// Whose turn this is.
    pub scope: Scope,
    /// The session it belongs to.
    pub session_id: SessionId,
    /// Who spoke.
    pub role: Role,
    /// The speaker's display name, if any.
    pub speaker: Option<String>,
    /// What was said.
    pub content: String,
    /// When it was said.
    pub event_time: Timestamp,
    /// When Mnemo stored it.
    pub ingest_time: Timestamp,
    /// Free-form metadata (a JSON object).
    pub metadata: serde_json::Value,
    /// Emotion scores, once the emotion processor has seen the turn.
    pub emotion: Option<EmotionScores>,
    /// Importance in [0, 1], once processed.
    pub importance: Option<f32>,
}

impl Turn {
    /// Approximate bytes this turn holds in memory, for cache budgets.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Turn>()
            + self.content.len()
            + self.external_id.as_str().len()
            + self.scope.tenant.as_str().len()
            + self.scope.user.as_str().len()
            + self.session_id.as_str().len()
            + self.speaker.as_ref().map_or(0, String::len)
            + self.metadata.to_string().len()
            + self.emotion.as_ref().map_or(0, |e| e.labels.len() * 32)
    }
}

/// Emotion scores of one turn, or a user's aggregate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EmotionScores {
    /// Score per emotion label, each in [0, 1].
    pub labels: BTreeMap<String, f32>,
    /// Pleasantness in [-1, 1].
    pub valence: f32,
    /// Activation in [0, 1].
    pub arousal: f32,
}

/// Scores the processors attach to a stored turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnAnnotation {
    /// The turn.
    pub id: TurnId,
    /// Its emotion scores.
    pub emotion: Option<EmotionScores>,
    /// Its importance in [0, 1].
    pub importance: Option<f32>,
}

/// A user's emotion state: a decayed running aggregate of their turns' emotions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmotionState {
    /// The decayed aggregate.
    pub scores: EmotionScores,
    /// How many turns went into it.
    pub turns: u64,
    /// The last turn folded in; folding is idempotent by turn id.
    pub last_turn: TurnId,
    /// Event time of the last turn folded in.
    pub updated: Timestamp,
}

/// A forget as the archive records it in the outbox: its place among the turns (an id
/// of the same sequence), and what it removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forget {
    /// Its place in the outbox: turns with lower ids were stored before it.
    pub seq: TurnId,
    /// Whose data was forgotten.
    pub scope: Scope,
    /// The one turn forgotten, or `None` for every turn of the user.
    pub turn: Option<TurnId>,
    /// The summaries removed with the turn (a whole user's go by user).
    pub summaries: Vec<SummaryId>,
}

/// A summary as the summarizer submits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSummary {
    /// Whose summary this is.
    pub scope: Scope,
    /// The session it summarises.
    pub session_id: SessionId,
    /// First turn covered.
    pub first_turn: TurnId,
    /// Last turn covered.
    pub last_turn: TurnId,
    /// The summary text.
    pub text: String,
    /// Salient keywords.
    pub keywords: Vec<String>,
    /// Event time of the first turn covered.
    pub start_time: Timestamp,
    /// Event time of the last turn covered.
    pub end_time: Timestamp,
}

impl NewSummary {
    /// Refuses the summary if any field breaks `limits`.
    pub fn validate(&self, limits: &InputLimits) -> Result<()> {
        check_text("text", &self.text, limits.max_content_bytes)?;
        if self.first_turn > self.last_turn {
            return Err(Error::invalid(
                "first_turn",
                format!(
                    "{} comes after last_turn {}",
                    self.first_turn, self.last_turn
                ),
            ));
        }
        for keyword in &self.keywords {
            check_id("keywords", keyword)?;
        }
        Ok(())
    }
}

/// A stored summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Its id in the archive.
    pub id: SummaryId,
    /// Whose summary this is.
    pub scope: Scope,
    /// The session it summarises.
    pub session_id: SessionId,
    /// First turn covered.
    pub first_turn: TurnId,
    /// Last turn covered.
    pub last_turn: TurnId,
    /// The summary text.
    pub text: String,
    /// Salient keywords.
    pub keywords: Vec<String>,
    /// Event time of the first turn covered.
    pub start_time: Timestamp,
    /// Event time of the last turn covered.
    pub end_time: Timestamp,
    /// When it was stored.
    pub created: Timestamp,
}

/// Which end of a session to read first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Newest turn first.
    #[default]
    NewestFirst,
    /// Oldest turn first.
    OldestFirst,
}
