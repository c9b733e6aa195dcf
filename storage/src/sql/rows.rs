//! Reading rows, once for every dialect: a [`SqlRow`] is any sqlx row whose columns
//! decode to the handful of types the schema uses, and the readers here turn rows into
//! turns, summaries, entities and edges. A value that does not decode means the store
//! holds something Mnemo did not write: corrupt.

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::error::{Error, Result};
use crate::graph::{Edge, EdgeKind, Entity};
use crate::model::{
    EmotionScores, EmotionState, ExternalId, Role, Scope, SessionId, Summary, SummaryId, TenantId,
    Timestamp, TimestampExt, Turn, TurnId, UserId,
};

/// The columns of `turns` a turn is read from, in the order every reader selects them.
pub const TURN_COLUMNS: &str = "seq, external_id, tenant, user_id, session_id, role, speaker, \
     content, event_time, ingest_time, metadata, emotion, importance";

/// The columns of `summaries` a summary is read from.
pub const SUMMARY_COLUMNS: &str = "id, tenant, user_id, session_id, first_turn, last_turn, \
     text, keywords, start_time, end_time, created";

/// A row of any SQL dialect, read by column name.
pub trait SqlRow: Send + Sync + 'static {
    /// An integer column.
    fn int(&self, column: &str) -> std::result::Result<i64, sqlx::Error>;
    /// An integer column that may be NULL.
    fn opt_int(&self, column: &str) -> std::result::Result<Option<i64>, sqlx::Error>;
    /// A double column.
    fn float(&self, column: &str) -> std::result::Result<f64, sqlx::Error>;
    /// A double column that may be NULL.
    fn opt_float(&self, column: &str) -> std::result::Result<Option<f64>, sqlx::Error>;
    /// A text column.
    fn text(&self, column: &str) -> std::result::Result<String, sqlx::Error>;
    /// A text column that may be NULL.
    fn opt_text(&self, column: &str) -> std::result::Result<Option<String>, sqlx::Error>;
}

impl<R> SqlRow for R
where
    R: Row + Send + Sync + 'static,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> f64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    fn int(&self, column: &str) -> std::result::Result<i64, sqlx::Error> {
        self.try_get(column)
    }

    fn opt_int(&self, column: &str) -> std::result::Result<Option<i64>, sqlx::Error> {
        self.try_get(column)
    }

    fn float(&self, column: &str) -> std::result::Result<f64, sqlx::Error> {
        self.try_get(column)
    }

    fn opt_float(&self, column: &str) -> std::result::Result<Option<f64>, sqlx::Error> {
        self.try_get(column)
    }

    fn text(&self, column: &str) -> std::result::Result<String, sqlx::Error> {
        self.try_get(column)
    }

    fn opt_text(&self, column: &str) -> std::result::Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }
}

/// One row of `backend`, read with errors that name the backend.
pub struct Columns<'r, R> {
    row: &'r R,
    backend: &'static str,
}

impl<'r, R: SqlRow> Columns<'r, R> {
    /// Reads `row` of `backend`.
    pub fn new(backend: &'static str, row: &'r R) -> Self {
        Self { row, backend }
    }

    fn sql(&self, err: sqlx::Error) -> Error {
        Error::from_sqlx(self.backend, err)
    }

    /// A corrupt-data error naming what could not be read.
    pub fn corrupt(&self, what: &str, err: impl std::fmt::Display) -> Error {
        Error::corrupt(self.backend, format!("{what}: {err}"))
    }

    /// An integer column.
    pub fn int(&self, column: &str) -> Result<i64> {
        self.row.int(column).map_err(|e| self.sql(e))
    }

    /// An integer column that may be NULL.
    pub fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        self.row.opt_int(column).map_err(|e| self.sql(e))
    }

    /// A double column.
    pub fn float(&self, column: &str) -> Result<f64> {
        self.row.float(column).map_err(|e| self.sql(e))
    }

    /// A double column that may be NULL.
    pub fn opt_float(&self, column: &str) -> Result<Option<f64>> {
        self.row.opt_float(column).map_err(|e| self.sql(e))
    }

    /// A text column.
    pub fn text(&self, column: &str) -> Result<String> {
        self.row.text(column).map_err(|e| self.sql(e))
    }

    /// A text column that may be NULL.
    pub fn opt_text(&self, column: &str) -> Result<Option<String>> {
        self.row.opt_text(column).map_err(|e| self.sql(e))
    }

    /// A time column (microseconds since the epoch).
    pub fn time(&self, column: &str) -> Result<Timestamp> {
        Ok(Timestamp::from_micros(self.int(column)?))
    }

    /// The `tenant` and `user_id` columns.
    pub fn scope(&self, what: &str) -> Result<Scope> {
        Ok(Scope::new(
            TenantId::new(self.text("tenant")?).map_err(|e| self.corrupt(what, e))?,
            UserId::new(self.text("user_id")?).map_err(|e| self.corrupt(what, e))?,
        ))
    }

    /// The `session_id` column.
    pub fn session(&self, what: &str) -> Result<SessionId> {
        SessionId::new(self.text("session_id")?).map_err(|e| self.corrupt(what, e))
    }

    /// A JSON text column.
    pub fn json<T: serde::de::DeserializeOwned>(&self, column: &str, what: &str) -> Result<T> {
        serde_json::from_str(&self.text(column)?).map_err(|e| self.corrupt(what, e))
    }
}

/// A turn from a row selecting [`TURN_COLUMNS`].
pub fn turn<R: SqlRow>(backend: &'static str, row: &R) -> Result<Turn> {
    let c = Columns::new(backend, row);
    let emotion = c
        .opt_text("emotion")?
        .map(|e| serde_json::from_str::<EmotionScores>(&e))
        .transpose()
        .map_err(|e| c.corrupt("turn emotion", e))?;
    Ok(Turn {
        id: TurnId(c.int("seq")?),
        external_id: ExternalId::new(c.text("external_id")?)
            .map_err(|e| c.corrupt("turn external_id", e))?,
        scope: c.scope("turn scope")?,
        session_id: c.session("turn session_id")?,
        role: Role::parse(&c.text("role")?).map_err(|e| c.corrupt("turn role", e))?,
        speaker: c.opt_text("speaker")?,
        content: c.text("content")?,
        event_time: c.time("event_time")?,
        ingest_time: c.time("ingest_time")?,
        metadata: c.json("metadata", "turn metadata")?,
        emotion,
        importance: c.opt_float("importance")?.map(|v| v as f32),
    })
}

/// A summary from a row selecting [`SUMMARY_COLUMNS`].
pub fn summary<R: SqlRow>(backend: &'static str, row: &R) -> Result<Summary> {
    let c = Columns::new(backend, row);
    Ok(Summary {
        id: SummaryId(c.int("id")?),
        scope: c.scope("summary scope")?,
        session_id: c.session("summary session_id")?,
        first_turn: TurnId(c.int("first_turn")?),
        last_turn: TurnId(c.int("last_turn")?),
        text: c.text("text")?,
        keywords: c.json("keywords", "summary keywords")?,
        start_time: c.time("start_time")?,
        end_time: c.time("end_time")?,
        created: c.time("created")?,
    })
}

/// A user's emotion state from a row of `emotion_state`.
pub fn emotion_state<R: SqlRow>(backend: &'static str, row: &R) -> Result<(Scope, EmotionState)> {
    let c = Columns::new(backend, row);
    Ok((
        c.scope("emotion state scope")?,
        c.json("state", "emotion state")?,
    ))
}

/// An entity, without its aliases, from a row of `graph_entities`.
pub fn entity<R: SqlRow>(backend: &'static str, row: &R) -> Result<Entity> {
    let c = Columns::new(backend, row);
    Ok(Entity {
        id: c.int("id")?,
        kind: c.text("kind")?,
        name: c.text("name")?,
        aliases: Vec::new(),
        first_seen: c.time("first_seen")?,
        last_seen: c.time("last_seen")?,
    })
}

/// An edge, without its supporting turns, from a row of `graph_edges`.
pub fn edge<R: SqlRow>(backend: &'static str, row: &R) -> Result<Edge> {
    let c = Columns::new(backend, row);
    let kind = c.text("kind")?;
    Ok(Edge {
        kind: EdgeKind::parse(&kind)
            .ok_or_else(|| Error::corrupt(backend, format!("edge kind {kind:?}")))?,
        src: c.int("src")?,
        dst: c.int("dst")?,
        weight: c.float("weight")?,
        count: c.int("count")? as u64,
        first_seen: c.time("first_seen")?,
        last_seen: c.time("last_seen")?,
        turns: Vec::new(),
    })
}
