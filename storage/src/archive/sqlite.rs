//! The embedded archive: SQLite in WAL mode through sqlx.
//!
//! Writes go through one connection of their own (SQLite has one writer at a time, so a
//! pool of writers would only contend on the lock); reads use a pool of read-only
//! connections that WAL lets run beside the writer.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{
    Appended, ArchiveConfig, ArchiveStats, ArchiveStore, Durability, ForgetReport, HistoryPage,
    OutboxPage,
};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::limits::InputLimits;
use crate::model::{
    EmotionScores, EmotionState, ExternalId, NewSummary, NewTurn, Role, Scope, SessionId, Summary,
    SummaryId, TenantId, Timestamp, TimestampExt, Turn, TurnAnnotation, TurnId, UserId,
};

pub(crate) const BACKEND: &str = "sqlite archive";

/// Rows per multi-row INSERT: 12 bound values a row stays far below SQLite's limit of
/// 32,766 variables per statement.
const INSERT_CHUNK: usize = 512;

const TURN_COLUMNS: &str = "seq, external_id, tenant, user_id, session_id, role, speaker, \
     content, event_time, ingest_time, metadata, emotion, importance";

const SUMMARY_COLUMNS: &str = "id, tenant, user_id, session_id, first_turn, last_turn, text, \
     keywords, start_time, end_time, created";

pub(crate) fn db_err(err: sqlx::Error) -> Error {
    Error::from_sqlx(BACKEND, err)
}

/// The embedded archive on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteArchive {
    writer: SqlitePool,
    readers: SqlitePool,
    path: PathBuf,
    limits: InputLimits,
    clock: SharedClock,
}

impl SqliteArchive {
    /// Opens (creating if needed) the archive at `path` and runs its migrations.
    pub async fn open(
        path: &Path,
        config: &ArchiveConfig,
        limits: InputLimits,
        clock: SharedClock,
    ) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::unavailable(BACKEND, format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let synchronous = match config.durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_millis(config.busy_timeout_ms))
            .foreign_keys(true);
        let acquire = Duration::from_millis(config.acquire_timeout_ms);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(acquire)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(|e| {
                Error::unavailable(BACKEND, format!("cannot open {}: {e}", path.display()))
            })?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| Error::corrupt(BACKEND, format!("migrating {}: {e}", path.display())))?;
        let readers = SqlitePoolOptions::new()
            .max_connections(config.read_connections.max(1))
            .acquire_timeout(acquire)
            .connect_with(base.read_only(true))
            .await
            .map_err(db_err)?;
        Ok(Self {
            writer,
            readers,
            path: path.to_owned(),
            limits,
            clock,
        })
    }

    /// Opens the archive named by a `sqlite:PATH` url, resolving a relative PATH against
    /// `data_dir`.
    pub async fn open_url(
        url: &str,
        data_dir: &Path,
        config: &ArchiveConfig,
        limits: InputLimits,
        clock: SharedClock,
    ) -> Result<Self> {
        let path = sqlite_path(url, data_dir)?;
        Self::open(&path, config, limits, clock).await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The write connection, shared with the embedded graph tier (same database).
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The read connections, shared with the embedded graph tier.
    pub(crate) fn readers(&self) -> &SqlitePool {
        &self.readers
    }

    /// The input limits this archive enforces.
    pub fn limits(&self) -> &InputLimits {
        &self.limits
    }

    /// The clock this archive stamps ingest times with.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    async fn fetch_turns(&self, query: &mut QueryBuilder<'_, Sqlite>) -> Result<Vec<Turn>> {
        let rows = query
            .build()
            .fetch_all(&self.readers)
            .await
            .map_err(db_err)?;
        rows.iter().map(turn_from_row).collect()
    }

    async fn fetch_summaries(&self, query: &mut QueryBuilder<'_, Sqlite>) -> Result<Vec<Summary>> {
        let rows = query
            .build()
            .fetch_all(&self.readers)
            .await
            .map_err(db_err)?;
        rows.iter().map(summary_from_row).collect()
    }
}

/// Resolves a `sqlite:PATH` (or `sqlite://PATH`) url to a file path.
pub fn sqlite_path(url: &str, data_dir: &Path) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| {
            Error::invalid(
                "storage.archive.url",
                format!("{url:?} is not a sqlite:PATH url"),
            )
        })?;
    let rest = rest.split('?').next().unwrap_or_default();
    if rest.is_empty() {
        return Err(Error::invalid(
            "storage.archive.url",
            format!("{url:?} names no file"),
        ));
    }
    let path = PathBuf::from_str(rest)
        .map_err(|e| Error::invalid("storage.archive.url", e.to_string()))?;
    Ok(if path.is_absolute() {
        path
    } else {
        data_dir.join(path)
    })
}

fn corrupt(what: &str, err: impl std::fmt::Display) -> Error {
    Error::corrupt(BACKEND, format!("{what}: {err}"))
}

fn turn_from_row(row: &SqliteRow) -> Result<Turn> {
    let get_str = |col: &str| -> Result<String> { row.try_get::<String, _>(col).map_err(db_err) };
    let emotion: Option<String> = row.try_get("emotion").map_err(db_err)?;
    let emotion = emotion
        .map(|e| serde_json::from_str::<EmotionScores>(&e))
        .transpose()
        .map_err(|e| corrupt("turn emotion", e))?;
    let metadata =
        serde_json::from_str(&get_str("metadata")?).map_err(|e| corrupt("turn metadata", e))?;
    Ok(Turn {
        id: TurnId(row.try_get("seq").map_err(db_err)?),
        external_id: ExternalId::new(get_str("external_id")?)
            .map_err(|e| corrupt("turn external_id", e))?,
        scope: Scope::new(
            TenantId::new(get_str("tenant")?).map_err(|e| corrupt("turn tenant", e))?,
            UserId::new(get_str("user_id")?).map_err(|e| corrupt("turn user_id", e))?,
        ),
        session_id: SessionId::new(get_str("session_id")?)
            .map_err(|e| corrupt("turn session_id", e))?,
        role: Role::parse(&get_str("role")?).map_err(|e| corrupt("turn role", e))?,
        speaker: row.try_get("speaker").map_err(db_err)?,
        content: get_str("content")?,
        event_time: Timestamp::from_micros(row.try_get("event_time").map_err(db_err)?),
        ingest_time: Timestamp::from_micros(row.try_get("ingest_time").map_err(db_err)?),
        metadata,
        emotion,
        importance: row
            .try_get::<Option<f64>, _>("importance")
            .map_err(db_err)?
            .map(|v| v as f32),
    })
}

fn summary_from_row(row: &SqliteRow) -> Result<Summary> {
    let get_str = |col: &str| -> Result<String> { row.try_get::<String, _>(col).map_err(db_err) };
    let get_i64 = |col: &str| -> Result<i64> { row.try_get::<i64, _>(col).map_err(db_err) };
    Ok(Summary {
        id: SummaryId(get_i64("id")?),
        scope: Scope::new(
            TenantId::new(get_str("tenant")?).map_err(|e| corrupt("summary tenant", e))?,
            UserId::new(get_str("user_id")?).map_err(|e| corrupt("summary user_id", e))?,
        ),
        session_id: SessionId::new(get_str("session_id")?)
            .map_err(|e| corrupt("summary session_id", e))?,
        first_turn: TurnId(get_i64("first_turn")?),
        last_turn: TurnId(get_i64("last_turn")?),
        text: get_str("text")?,
        keywords: serde_json::from_str(&get_str("keywords")?)
            .map_err(|e| corrupt("summary keywords", e))?,
        start_time: Timestamp::from_micros(get_i64("start_time")?),
        end_time: Timestamp::from_micros(get_i64("end_time")?),
        created: Timestamp::from_micros(get_i64("created")?),
    })
}

/// A validated turn with everything but its id decided.
pub(crate) struct PreparedTurn {
    pub(crate) new: NewTurn,
    pub(crate) external_id: ExternalId,
    pub(crate) event_time: Timestamp,
    pub(crate) metadata: String,
}

type TurnKey = (String, String, String);

fn key_of(scope: &Scope, external_id: &ExternalId) -> TurnKey {
    (
        scope.tenant.to_string(),
        scope.user.to_string(),
        external_id.to_string(),
    )
}

/// Validates a batch and fills in generated fields; refuses the whole batch on the first
/// bad turn, naming its position.
pub(crate) fn prepare_batch(
    turns: Vec<NewTurn>,
    limits: &InputLimits,
    now: Timestamp,
) -> Result<Vec<PreparedTurn>> {
    if turns.len() > limits.max_batch_turns {
        return Err(Error::invalid(
            "turns",
            format!(
                "a batch of {} turns is over the limit of {}",
                turns.len(),
                limits.max_batch_turns
            ),
        ));
    }
    let many = turns.len() > 1;
    let mut prepared = Vec::with_capacity(turns.len());
    for (i, turn) in turns.into_iter().enumerate() {
        turn.validate(limits).map_err(|e| match e {
            Error::InvalidInput { field, reason } if many => {
                Error::invalid(field, format!("{reason} (turn {i} of the batch)"))
            }
            other => other,
        })?;
        let external_id = match &turn.external_id {
            Some(id) => id.clone(),
            None => ExternalId::new(uuid::Uuid::new_v4().to_string())?,
        };
        let event_time = turn.event_time.unwrap_or(now);
        let metadata = serde_json::to_string(&turn.metadata)
            .map_err(|e| Error::invalid("metadata", e.to_string()))?;
        prepared.push(PreparedTurn {
            new: turn,
            external_id,
            event_time,
            metadata,
        });
    }
    Ok(prepared)
}

/// Users per emotion-state read (two parameters each, well under SQLite's limit).
const EMOTION_STATES_PER_READ: usize = 1_000;

/// A stored emotion state row of `backend`, parsed.
pub(crate) fn emotion_state_from_row(
    backend: &'static str,
    tenant: String,
    user: String,
    state: String,
) -> Result<(Scope, EmotionState)> {
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| Error::corrupt(backend, format!("{what}: {e}"));
    let scope = Scope::parse(&tenant, &user).map_err(|e| corrupt("emotion state scope", &e))?;
    let state = serde_json::from_str(&state).map_err(|e| corrupt("emotion state", &e))?;
    Ok((scope, state))
}

/// Emotion states to store as rows: serialised, one per user, the last given winning.
pub(crate) fn emotion_state_rows(
    states: &[(Scope, EmotionState)],
) -> Result<BTreeMap<&Scope, String>> {
    let mut rows = BTreeMap::new();
    for (scope, state) in states {
        let text =
            serde_json::to_string(state).map_err(|e| Error::invalid("emotion", e.to_string()))?;
        rows.insert(scope, text);
    }
    Ok(rows)
}

#[async_trait]
impl ArchiveStore for SqliteArchive {
    async fn append_batch(&self, turns: Vec<NewTurn>) -> Result<Vec<Appended>> {
        let now = self.clock.now();
        let prepared = prepare_batch(turns, &self.limits, now)?;
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        let ingest = now.to_micros();
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let mut inserted: HashMap<TurnKey, i64> = HashMap::with_capacity(prepared.len());
        for chunk in prepared.chunks(INSERT_CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO turns (external_id, tenant, user_id, session_id, role, speaker, \
                 content, event_time, ingest_time, metadata, emotion, importance) ",
            );
            query.push_values(chunk, |mut row, p| {
                row.push_bind(p.external_id.as_str())
                    .push_bind(p.new.scope.tenant.as_str())
                    .push_bind(p.new.scope.user.as_str())
                    .push_bind(p.new.session_id.as_str())
                    .push_bind(p.new.role.as_str())
                    .push_bind(p.new.speaker.as_deref())
                    .push_bind(p.new.content.as_str())
                    .push_bind(p.event_time.to_micros())
                    .push_bind(ingest)
                    .push_bind(p.metadata.as_str())
                    .push_bind(None::<String>)
                    .push_bind(None::<f64>);
            });
            query.push(
                " ON CONFLICT (tenant, user_id, external_id) DO NOTHING \
                 RETURNING seq, tenant, user_id, external_id",
            );
            let rows = query.build().fetch_all(&mut *tx).await.map_err(db_err)?;
            for row in rows {
                let key = (
                    row.try_get::<String, _>("tenant").map_err(db_err)?,
                    row.try_get::<String, _>("user_id").map_err(db_err)?,
                    row.try_get::<String, _>("external_id").map_err(db_err)?,
                );
                inserted.insert(key, row.try_get("seq").map_err(db_err)?);
            }
        }
        // Turns whose external id was stored before this batch: answer with what is stored.
        let mut existing: HashMap<TurnKey, Turn> = HashMap::new();
        for p in &prepared {
            let key = key_of(&p.new.scope, &p.external_id);
            if inserted.contains_key(&key) || existing.contains_key(&key) {
                continue;
            }
            let row = sqlx::query(&format!(
                "SELECT {TURN_COLUMNS} FROM turns \
                 WHERE tenant = ? AND user_id = ? AND external_id = ?"
            ))
            .bind(&key.0)
            .bind(&key.1)
            .bind(&key.2)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            existing.insert(key, turn_from_row(&row)?);
        }
        tx.commit().await.map_err(db_err)?;

        let mut seen: HashMap<TurnKey, Turn> = HashMap::new();
        let mut out = Vec::with_capacity(prepared.len());
        for p in prepared {
            let key = key_of(&p.new.scope, &p.external_id);
            if let Some(turn) = existing.get(&key).or_else(|| seen.get(&key)) {
                out.push(Appended {
                    turn: turn.clone(),
                    created: false,
                });
                continue;
            }
            let id = inserted.get(&key).copied().ok_or_else(|| {
                Error::internal(BACKEND, "an inserted turn was not returned by the database")
            })?;
            let metadata = p.new.metadata;
            let turn = Turn {
                id: TurnId(id),
                external_id: p.external_id,
                scope: p.new.scope,
                session_id: p.new.session_id,
                role: p.new.role,
                speaker: p.new.speaker,
                content: p.new.content,
                event_time: Timestamp::from_micros(p.event_time.to_micros()),
                ingest_time: Timestamp::from_micros(ingest),
                metadata,
                emotion: None,
                importance: None,
            };
            seen.insert(key, turn.clone());
            out.push(Appended {
                turn,
                created: true,
            });
        }
        Ok(out)
    }

    async fn turns_after(&self, after: TurnId, limit: usize) -> Result<Vec<Turn>> {
        let mut query = QueryBuilder::new(format!("SELECT {TURN_COLUMNS} FROM turns WHERE seq > "));
        query
            .push_bind(after.0)
            .push(" ORDER BY seq LIMIT ")
            .push_bind(limit as i64);
        self.fetch_turns(&mut query).await
    }

    async fn outbox(&self, after: TurnId, limit: usize) -> Result<OutboxPage> {
        // One read transaction: in WAL mode both statements see the same snapshot.
        let mut tx = self.readers.begin().await.map_err(db_err)?;
        let rows = sqlx::query(&format!(
            "SELECT {TURN_COLUMNS} FROM turns WHERE seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(after.0)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let head: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'turns'")
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        tx.rollback().await.map_err(db_err)?;
        Ok(OutboxPage {
            turns: rows.iter().map(turn_from_row).collect::<Result<_>>()?,
            head: TurnId(head.unwrap_or(0)),
        })
    }

    async fn head(&self) -> Result<TurnId> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'turns'")
                .fetch_optional(&self.readers)
                .await
                .map_err(db_err)?;
        Ok(TurnId(seq.unwrap_or(0)))
    }

    async fn history(
        &self,
        scope: &Scope,
        session: &SessionId,
        page: HistoryPage,
    ) -> Result<Vec<Turn>> {
        let mut query =
            QueryBuilder::new(format!("SELECT {TURN_COLUMNS} FROM turns WHERE tenant = "));
        query
            .push_bind(scope.tenant.as_str())
            .push(" AND user_id = ")
            .push_bind(scope.user.as_str())
            .push(" AND session_id = ")
            .push_bind(session.as_str());
        if let Some(before) = page.before {
            query.push(" AND seq < ").push_bind(before.0);
        }
        query
            .push(" ORDER BY seq DESC LIMIT ")
            .push_bind(page.limit as i64);
        self.fetch_turns(&mut query).await
    }

    async fn get_turns(&self, scope: &Scope, ids: &[TurnId]) -> Result<Vec<Turn>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query =
            QueryBuilder::new(format!("SELECT {TURN_COLUMNS} FROM turns WHERE tenant = "));
        query
            .push_bind(scope.tenant.as_str())
            .push(" AND user_id = ")
            .push_bind(scope.user.as_str())
            .push(" AND seq IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.0);
        }
        query.push(") ORDER BY seq");
        self.fetch_turns(&mut query).await
    }

    async fn turns_around(&self, scope: &Scope, ids: &[TurnId]) -> Result<Vec<Turn>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The given turns of the user, and for each the largest seq below it and the
        // smallest above it in its session: index seeks on turns_by_session.
        let mut query =
            QueryBuilder::new(format!("SELECT {TURN_COLUMNS} FROM turns WHERE tenant = "));
        query
            .push_bind(scope.tenant.as_str())
            .push(" AND user_id = ")
            .push_bind(scope.user.as_str())
            .push(" AND seq IN (SELECT h.seq FROM turns h WHERE h.tenant = ")
            .push_bind(scope.tenant.as_str())
            .push(" AND h.user_id = ")
            .push_bind(scope.user.as_str())
            .push(" AND h.seq IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.0);
        }
        query.push(")");
        for (pick, compare) in [("MAX", "<"), ("MIN", ">")] {
            query
                .push(format!(
                    " UNION SELECT (SELECT {pick}(o.seq) FROM turns o WHERE o.tenant = h.tenant \
                     AND o.user_id = h.user_id AND o.session_id = h.session_id \
                     AND o.seq {compare} h.seq) FROM turns h WHERE h.tenant = "
                ))
                .push_bind(scope.tenant.as_str())
                .push(" AND h.user_id = ")
                .push_bind(scope.user.as_str())
                .push(" AND h.seq IN (");
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(id.0);
            }
            query.push(")");
        }
        query.push(") ORDER BY seq");
        self.fetch_turns(&mut query).await
    }

    async fn find_by_external_id(
        &self,
        scope: &Scope,
        external_id: &ExternalId,
    ) -> Result<Option<Turn>> {
        let row = sqlx::query(&format!(
            "SELECT {TURN_COLUMNS} FROM turns WHERE tenant = ? AND user_id = ? AND external_id = ?"
        ))
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .bind(external_id.as_str())
        .fetch_optional(&self.readers)
        .await
        .map_err(db_err)?;
        row.as_ref().map(turn_from_row).transpose()
    }

    async fn annotate(&self, annotations: &[TurnAnnotation]) -> Result<()> {
        if annotations.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        for a in annotations {
            let emotion = a
                .emotion
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| Error::invalid("emotion", e.to_string()))?;
            sqlx::query(
                "UPDATE turns SET emotion = COALESCE(?, emotion), \
                 importance = COALESCE(?, importance) WHERE seq = ?",
            )
            .bind(emotion)
            .bind(a.importance.map(f64::from))
            .bind(a.id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn put_summary(&self, summary: NewSummary) -> Result<Summary> {
        summary.validate(&self.limits)?;
        let keywords = serde_json::to_string(&summary.keywords)
            .map_err(|e| Error::invalid("keywords", e.to_string()))?;
        let row = sqlx::query(&format!(
            "INSERT INTO summaries (tenant, user_id, session_id, first_turn, last_turn, text, \
             keywords, start_time, end_time, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (tenant, user_id, session_id, first_turn, last_turn) DO UPDATE SET \
             text = excluded.text, keywords = excluded.keywords, \
             start_time = excluded.start_time, end_time = excluded.end_time \
             RETURNING {SUMMARY_COLUMNS}"
        ))
        .bind(summary.scope.tenant.as_str())
        .bind(summary.scope.user.as_str())
        .bind(summary.session_id.as_str())
        .bind(summary.first_turn.0)
        .bind(summary.last_turn.0)
        .bind(&summary.text)
        .bind(keywords)
        .bind(summary.start_time.to_micros())
        .bind(summary.end_time.to_micros())
        .bind(self.clock.now().to_micros())
        .fetch_one(&self.writer)
        .await
        .map_err(db_err)?;
        summary_from_row(&row)
    }

    async fn summaries(
        &self,
        scope: &Scope,
        session: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<Summary>> {
        let mut query = QueryBuilder::new(format!(
            "SELECT {SUMMARY_COLUMNS} FROM summaries WHERE tenant = "
        ));
        query
            .push_bind(scope.tenant.as_str())
            .push(" AND user_id = ")
            .push_bind(scope.user.as_str());
        if let Some(session) = session {
            query.push(" AND session_id = ").push_bind(session.as_str());
        }
        query
            .push(" ORDER BY last_turn DESC, id DESC LIMIT ")
            .push_bind(limit as i64);
        self.fetch_summaries(&mut query).await
    }

    async fn get_summaries(&self, scope: &Scope, ids: &[SummaryId]) -> Result<Vec<Summary>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::new(format!(
            "SELECT {SUMMARY_COLUMNS} FROM summaries WHERE tenant = "
        ));
        query
            .push_bind(scope.tenant.as_str())
            .push(" AND user_id = ")
            .push_bind(scope.user.as_str())
            .push(" AND id IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.0);
        }
        query.push(") ORDER BY id");
        self.fetch_summaries(&mut query).await
    }

    async fn summaries_after(&self, after: SummaryId, limit: usize) -> Result<Vec<Summary>> {
        let mut query = QueryBuilder::new(format!(
            "SELECT {SUMMARY_COLUMNS} FROM summaries WHERE id > "
        ));
        query
            .push_bind(after.0)
            .push(" ORDER BY id LIMIT ")
            .push_bind(limit as i64);
        self.fetch_summaries(&mut query).await
    }

    async fn checkpoint(&self, processor: &str) -> Result<TurnId> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM checkpoints WHERE processor = ?")
                .bind(processor)
                .fetch_optional(&self.readers)
                .await
                .map_err(db_err)?;
        Ok(TurnId(seq.unwrap_or(0)))
    }

    async fn set_checkpoint(&self, processor: &str, id: TurnId) -> Result<()> {
        crate::limits::check_id("processor", processor)?;
        sqlx::query(
            "INSERT INTO checkpoints (processor, seq) VALUES (?, ?) \
             ON CONFLICT (processor) DO UPDATE SET seq = excluded.seq",
        )
        .bind(processor)
        .bind(id.0)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn emotion_state(&self, scope: &Scope) -> Result<Option<EmotionState>> {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM emotion_state WHERE tenant = ? AND user_id = ?")
                .bind(scope.tenant.as_str())
                .bind(scope.user.as_str())
                .fetch_optional(&self.readers)
                .await
                .map_err(db_err)?;
        state
            .map(|s| serde_json::from_str(&s).map_err(|e| corrupt("emotion state", e)))
            .transpose()
    }

    async fn emotion_states(&self, scopes: &[Scope]) -> Result<BTreeMap<Scope, EmotionState>> {
        let mut found = BTreeMap::new();
        // Two parameters per user; SQLite allows 32,766 per statement.
        for chunk in scopes.chunks(EMOTION_STATES_PER_READ) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT tenant, user_id, state FROM emotion_state WHERE (tenant, user_id) IN (",
            );
            let mut pairs = query.separated(", ");
            for scope in chunk {
                pairs
                    .push("(")
                    .push_bind_unseparated(scope.tenant.as_str())
                    .push_unseparated(", ")
                    .push_bind_unseparated(scope.user.as_str())
                    .push_unseparated(")");
            }
            query.push(")");
            for row in query
                .build()
                .fetch_all(&self.readers)
                .await
                .map_err(db_err)?
            {
                let (scope, state) = emotion_state_from_row(
                    BACKEND,
                    row.try_get("tenant").map_err(db_err)?,
                    row.try_get("user_id").map_err(db_err)?,
                    row.try_get("state").map_err(db_err)?,
                )?;
                found.insert(scope, state);
            }
        }
        Ok(found)
    }

    async fn put_emotion_states(&self, states: &[(Scope, EmotionState)]) -> Result<()> {
        let rows = emotion_state_rows(states)?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        for (scope, text) in rows {
            sqlx::query(
                "INSERT INTO emotion_state (tenant, user_id, state) VALUES (?, ?, ?) \
                 ON CONFLICT (tenant, user_id) DO UPDATE SET state = excluded.state",
            )
            .bind(scope.tenant.as_str())
            .bind(scope.user.as_str())
            .bind(text)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn forget_user(&self, scope: &Scope) -> Result<ForgetReport> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let mut report = ForgetReport::default();
        for (table, counter) in [
            ("turns", Some(&mut report.turns)),
            ("summaries", Some(&mut report.summaries)),
            ("emotion_state", None),
        ] {
            let done = sqlx::query(&format!(
                "DELETE FROM {table} WHERE tenant = ? AND user_id = ?"
            ))
            .bind(scope.tenant.as_str())
            .bind(scope.user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if let Some(counter) = counter {
                *counter = done.rows_affected();
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(report)
    }

    async fn forget_turn(&self, scope: &Scope, id: TurnId) -> Result<ForgetReport> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let session: Option<String> = sqlx::query_scalar(
            "DELETE FROM turns WHERE tenant = ? AND user_id = ? AND seq = ? RETURNING session_id",
        )
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(session) = session else {
            return Ok(ForgetReport::default());
        };
        let summaries = sqlx::query(
            "DELETE FROM summaries WHERE tenant = ? AND user_id = ? AND session_id = ? \
             AND first_turn <= ? AND last_turn >= ?",
        )
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .bind(&session)
        .bind(id.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        tx.commit().await.map_err(db_err)?;
        Ok(ForgetReport {
            turns: 1,
            summaries,
        })
    }

    async fn stats(&self) -> Result<ArchiveStats> {
        let turns: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM turns")
            .fetch_one(&self.readers)
            .await
            .map_err(db_err)?;
        let summaries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM summaries")
            .fetch_one(&self.readers)
            .await
            .map_err(db_err)?;
        Ok(ArchiveStats {
            turns: turns as u64,
            summaries: summaries as u64,
            head: self.head().await?,
        })
    }

    async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
    }
}
