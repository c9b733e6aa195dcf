//! The server archive: PostgreSQL through sqlx, with versioned migrations of its own
//! (`storage/migrations/postgres/`, run at open). The same database holds the tables of
//! the embedded graph backend ([`crate::graph::postgres::PostgresGraph`]).
//!
//! # Outbox order
//!
//! Processors read the outbox by id (`turns_after`, `outbox`) and keep the last id they
//! handled, so a turn must never become visible after a turn with a higher id: a reader
//! would move past it and never see it. A PostgreSQL sequence does not give that: two
//! transactions draw 5 and 6, the one holding 6 commits first, a reader sees 6, and 5
//! appears later below its checkpoint.
//!
//! Here ids come from one counter row, `archive_head`, instead. Every append starts with
//! `UPDATE archive_head SET seq = seq + n ... RETURNING seq`, which takes that row's lock
//! and holds it until the transaction ends; the batch's turns get the ids just above the
//! old value, and the transaction commits while still holding the lock. So appends run
//! one at a time (the archive actor already gathers many callers into one batch), a
//! later append only gets its ids after the earlier one has committed (or rolled back,
//! which rolls the counter back too), and ids become visible in strictly increasing
//! order. PostgreSQL marks a transaction committed for new snapshots before it releases
//! its locks, so no snapshot can see the later append without the earlier one. The
//! counter never moves back: forgetting turns leaves it alone, so ids are never reused,
//! and it is the head the outbox reports, read in the same REPEATABLE READ snapshot as
//! the page.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::MigrateError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};

use super::postgres_pool::PgConnections;
use super::sqlite::{emotion_state_from_row, emotion_state_rows, prepare_batch};
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

pub(crate) const BACKEND: &str = "postgres archive";

const TURN_COLUMNS: &str = "seq, external_id, tenant, user_id, session_id, role, speaker, \
     content, event_time, ingest_time, metadata, emotion, importance";

const SUMMARY_COLUMNS: &str = "id, tenant, user_id, session_id, first_turn, last_turn, text, \
     keywords, start_time, end_time, created";

pub(crate) fn db_err(err: sqlx::Error) -> Error {
    Error::from_sqlx(BACKEND, err)
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The archive on a PostgreSQL server.
#[derive(Debug, Clone)]
pub struct PostgresArchive {
    db: PgConnections,
    limits: InputLimits,
    clock: SharedClock,
}

impl PostgresArchive {
    /// Connects to the database named by a `postgres://` url and runs the migrations.
    pub async fn open(
        url: &str,
        config: &ArchiveConfig,
        limits: InputLimits,
        clock: SharedClock,
    ) -> Result<Self> {
        Self::open_with(connect_options(url)?, config, limits, clock).await
    }

    /// Connects with `options` (the url's settings) and runs the migrations. The pool
    /// size, statement timeout and durability come from `config`.
    pub async fn open_with(
        options: PgConnectOptions,
        config: &ArchiveConfig,
        limits: InputLimits,
        clock: SharedClock,
    ) -> Result<Self> {
        let place = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        let mut settings = vec![("statement_timeout", config.statement_timeout_ms.to_string())];
        if config.durability == Durability::Normal {
            // A commit is acknowledged before its WAL reaches disk: a crash of Mnemo loses
            // nothing, a crash of the database server may lose the last moments.
            settings.push(("synchronous_commit", "off".into()));
        }
        let options = options.application_name("mnemo").options(settings);
        let acquire_timeout = Duration::from_millis(config.acquire_timeout_ms);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .connect_with(options.clone())
            .await
            .map_err(|e| Error::unavailable(BACKEND, format!("cannot connect to {place}: {e}")))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| match e {
                MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => db_err(e),
                other => Error::corrupt(BACKEND, format!("migrating {place}: {other}")),
            })?;
        Ok(Self {
            db: PgConnections::new(pool, options, place, acquire_timeout),
            limits,
            clock,
        })
    }

    /// The connection pool, shared with the graph tables of the same database.
    pub(crate) fn connections(&self) -> &PgConnections {
        &self.db
    }

    /// The input limits this archive enforces.
    pub fn limits(&self) -> &InputLimits {
        &self.limits
    }

    /// The clock this archive stamps ingest times with.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    async fn fetch_turns(&self, query: &mut QueryBuilder<'_, Postgres>) -> Result<Vec<Turn>> {
        let rows = query
            .build()
            .fetch_all(&mut *self.db.acquire(BACKEND).await?)
            .await
            .map_err(db_err)?;
        rows.iter().map(turn_from_row).collect()
    }

    async fn fetch_summaries(
        &self,
        query: &mut QueryBuilder<'_, Postgres>,
    ) -> Result<Vec<Summary>> {
        let rows = query
            .build()
            .fetch_all(&mut *self.db.acquire(BACKEND).await?)
            .await
            .map_err(db_err)?;
        rows.iter().map(summary_from_row).collect()
    }
}

/// Parses a `postgres://` url into connection options, refusing anything else.
pub fn connect_options(url: &str) -> Result<PgConnectOptions> {
    if !is_postgres_url(url) {
        return Err(Error::invalid(
            "storage.archive.url",
            "is not a postgres:// url".to_string(),
        ));
    }
    // The error text of a bad url may quote the url, password included: leave it out.
    PgConnectOptions::from_str(url)
        .map_err(|_| Error::invalid("storage.archive.url", "is not a valid postgres:// url"))
}

fn corrupt(what: &str, err: impl std::fmt::Display) -> Error {
    Error::corrupt(BACKEND, format!("{what}: {err}"))
}

fn turn_from_row(row: &PgRow) -> Result<Turn> {
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

fn summary_from_row(row: &PgRow) -> Result<Summary> {
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

type TurnKey = (String, String, String);

fn key_of(scope: &Scope, external_id: &ExternalId) -> TurnKey {
    (
        scope.tenant.to_string(),
        scope.user.to_string(),
        external_id.to_string(),
    )
}

#[async_trait]
impl ArchiveStore for PostgresArchive {
    async fn append_batch(&self, turns: Vec<NewTurn>) -> Result<Vec<Appended>> {
        let now = self.clock.now();
        let prepared = prepare_batch(turns, &self.limits, now)?;
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        let ingest = now.to_micros();
        // A repeated external id within the batch is inserted once, at its first place.
        let mut first_of: HashMap<TurnKey, usize> = HashMap::with_capacity(prepared.len());
        let mut unique = Vec::with_capacity(prepared.len());
        for (i, p) in prepared.iter().enumerate() {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                first_of.entry(key_of(&p.new.scope, &p.external_id))
            {
                slot.insert(i);
                unique.push(p);
            }
        }
        let n = unique.len() as i64;

        let mut tx = self.db.begin(BACKEND, None).await?;
        // Takes the counter row's lock until commit: appends run one at a time and their
        // ids become visible in commit order (see the module docs).
        let new_head: i64 =
            sqlx::query_scalar("UPDATE archive_head SET seq = seq + $1 WHERE id = 1 RETURNING seq")
                .bind(n)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
        let base = new_head - n;
        // The whole batch in one statement: one array per column, the n-th turn of the
        // batch getting id base + n. A turn whose external id is already stored is
        // skipped, leaving its id unused (the outbox head lets readers pass it).
        let rows = sqlx::query(
            "INSERT INTO turns (seq, external_id, tenant, user_id, session_id, role, speaker, \
             content, event_time, ingest_time, metadata) \
             SELECT $1 + t.ord, t.external_id, t.tenant, t.user_id, t.session_id, t.role, \
             t.speaker, t.content, t.event_time, $2, t.metadata \
             FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
             $8::text[], $9::text[], $10::int8[], $11::text[]) WITH ORDINALITY \
             AS t(external_id, tenant, user_id, session_id, role, speaker, content, \
             event_time, metadata, ord) \
             ON CONFLICT (tenant, user_id, external_id) DO NOTHING \
             RETURNING seq, tenant, user_id, external_id",
        )
        .bind(base)
        .bind(ingest)
        .bind(
            unique
                .iter()
                .map(|p| p.external_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            unique
                .iter()
                .map(|p| p.new.scope.tenant.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            unique
                .iter()
                .map(|p| p.new.scope.user.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            unique
                .iter()
                .map(|p| p.new.session_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            unique
                .iter()
                .map(|p| p.new.role.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            unique
                .iter()
                .map(|p| p.new.speaker.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            unique
                .iter()
                .map(|p| p.new.content.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            unique
                .iter()
                .map(|p| p.event_time.to_micros())
                .collect::<Vec<_>>(),
        )
        .bind(
            unique
                .iter()
                .map(|p| p.metadata.as_str())
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let mut inserted: HashMap<TurnKey, i64> = HashMap::with_capacity(rows.len());
        for row in rows {
            let key = (
                row.try_get::<String, _>("tenant").map_err(db_err)?,
                row.try_get::<String, _>("user_id").map_err(db_err)?,
                row.try_get::<String, _>("external_id").map_err(db_err)?,
            );
            inserted.insert(key, row.try_get("seq").map_err(db_err)?);
        }
        // Turns whose external id was stored before this batch: answer with what is
        // stored, read in one statement.
        let mut existing: HashMap<TurnKey, Turn> = HashMap::new();
        let missing: Vec<TurnKey> = first_of
            .into_keys()
            .filter(|k| !inserted.contains_key(k))
            .collect();
        if !missing.is_empty() {
            let rows = sqlx::query(&format!(
                "SELECT {TURN_COLUMNS} FROM turns \
                 JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS k(tenant, user_id, external_id) \
                 USING (tenant, user_id, external_id)"
            ))
            .bind(missing.iter().map(|k| k.0.as_str()).collect::<Vec<_>>())
            .bind(missing.iter().map(|k| k.1.as_str()).collect::<Vec<_>>())
            .bind(missing.iter().map(|k| k.2.as_str()).collect::<Vec<_>>())
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
            for row in &rows {
                let turn = turn_from_row(row)?;
                existing.insert(key_of(&turn.scope, &turn.external_id), turn);
            }
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
                metadata: p.new.metadata,
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
        // Both reads in one REPEATABLE READ snapshot: the head is exactly as of the page.
        let mut tx = self
            .db
            .begin(
                BACKEND,
                Some("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
            )
            .await?;
        let rows = sqlx::query(&format!(
            "SELECT {TURN_COLUMNS} FROM turns WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after.0)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let head: i64 = sqlx::query_scalar("SELECT seq FROM archive_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(OutboxPage {
            turns: rows.iter().map(turn_from_row).collect::<Result<_>>()?,
            head: TurnId(head),
        })
    }

    async fn head(&self) -> Result<TurnId> {
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM archive_head WHERE id = 1")
            .fetch_one(&mut *self.db.acquire(BACKEND).await?)
            .await
            .map_err(db_err)?;
        Ok(TurnId(seq))
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
        let rows = sqlx::query(&format!(
            "SELECT {TURN_COLUMNS} FROM turns WHERE tenant = $1 AND user_id = $2 \
             AND seq = ANY($3) ORDER BY seq"
        ))
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .bind(ids.iter().map(|id| id.0).collect::<Vec<_>>())
        .fetch_all(&mut *self.db.acquire(BACKEND).await?)
        .await
        .map_err(db_err)?;
        rows.iter().map(turn_from_row).collect()
    }

    async fn turns_around(&self, scope: &Scope, ids: &[TurnId]) -> Result<Vec<Turn>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The given turns of the user, and for each the largest seq below it and the
        // smallest above it in its session: index seeks on turns_by_session.
        let rows = sqlx::query(&format!(
            "SELECT {TURN_COLUMNS} FROM turns WHERE tenant = $1 AND user_id = $2 AND seq IN ( \
             SELECT h.seq FROM turns h WHERE h.tenant = $1 AND h.user_id = $2 \
             AND h.seq = ANY($3) \
             UNION \
             SELECT (SELECT MAX(o.seq) FROM turns o WHERE o.tenant = h.tenant \
             AND o.user_id = h.user_id AND o.session_id = h.session_id AND o.seq < h.seq) \
             FROM turns h WHERE h.tenant = $1 AND h.user_id = $2 AND h.seq = ANY($3) \
             UNION \
             SELECT (SELECT MIN(o.seq) FROM turns o WHERE o.tenant = h.tenant \
             AND o.user_id = h.user_id AND o.session_id = h.session_id AND o.seq > h.seq) \
             FROM turns h WHERE h.tenant = $1 AND h.user_id = $2 AND h.seq = ANY($3)) \
             ORDER BY seq"
        ))
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .bind(ids.iter().map(|id| id.0).collect::<Vec<_>>())
        .fetch_all(&mut *self.db.acquire(BACKEND).await?)
        .await
        .map_err(db_err)?;
        rows.iter().map(turn_from_row).collect()
    }

    async fn find_by_external_id(
        &self,
        scope: &Scope,
        external_id: &ExternalId,
    ) -> Result<Option<Turn>> {
        let row = sqlx::query(&format!(
            "SELECT {TURN_COLUMNS} FROM turns \
             WHERE tenant = $1 AND user_id = $2 AND external_id = $3"
        ))
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .bind(external_id.as_str())
        .fetch_optional(&mut *self.db.acquire(BACKEND).await?)
        .await
        .map_err(db_err)?;
        row.as_ref().map(turn_from_row).transpose()
    }

    async fn annotate(&self, annotations: &[TurnAnnotation]) -> Result<()> {
        if annotations.is_empty() {
            return Ok(());
        }
        let mut emotions = Vec::with_capacity(annotations.len());
        for a in annotations {
            emotions.push(
                a.emotion
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| Error::invalid("emotion", e.to_string()))?,
            );
        }
        // One statement for the whole batch; a turn annotated twice in it takes the last
        // value given for each field, as applying them one by one would.
        sqlx::query(
            "UPDATE turns SET emotion = COALESCE(a.emotion, turns.emotion), \
             importance = COALESCE(a.importance, turns.importance) \
             FROM (SELECT seq, \
                   (array_agg(emotion ORDER BY ord DESC) \
                     FILTER (WHERE emotion IS NOT NULL))[1] AS emotion, \
                   (array_agg(importance ORDER BY ord DESC) \
                     FILTER (WHERE importance IS NOT NULL))[1] AS importance \
                   FROM UNNEST($1::int8[], $2::text[], $3::float8[]) WITH ORDINALITY \
                   AS u(seq, emotion, importance, ord) GROUP BY seq) AS a \
             WHERE turns.seq = a.seq",
        )
        .bind(annotations.iter().map(|a| a.id.0).collect::<Vec<_>>())
        .bind(emotions)
        .bind(
            annotations
                .iter()
                .map(|a| a.importance.map(f64::from))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *self.db.acquire(BACKEND).await?)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn put_summary(&self, summary: NewSummary) -> Result<Summary> {
        summary.validate(&self.limits)?;
        let keywords = serde_json::to_string(&summary.keywords)
            .map_err(|e| Error::invalid("keywords", e.to_string()))?;
        let row = sqlx::query(&format!(
            "INSERT INTO summaries (tenant, user_id, session_id, first_turn, last_turn, text, \
             keywords, start_time, end_time, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
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
        .fetch_one(&mut *self.db.acquire(BACKEND).await?)
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
        let rows = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM summaries WHERE tenant = $1 AND user_id = $2 \
             AND id = ANY($3) ORDER BY id"
        ))
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .bind(ids.iter().map(|id| id.0).collect::<Vec<_>>())
        .fetch_all(&mut *self.db.acquire(BACKEND).await?)
        .await
        .map_err(db_err)?;
        rows.iter().map(summary_from_row).collect()
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
            sqlx::query_scalar("SELECT seq FROM checkpoints WHERE processor = $1")
                .bind(processor)
                .fetch_optional(&mut *self.db.acquire(BACKEND).await?)
                .await
                .map_err(db_err)?;
        Ok(TurnId(seq.unwrap_or(0)))
    }

    async fn set_checkpoint(&self, processor: &str, id: TurnId) -> Result<()> {
        crate::limits::check_id("processor", processor)?;
        sqlx::query(
            "INSERT INTO checkpoints (processor, seq) VALUES ($1, $2) \
             ON CONFLICT (processor) DO UPDATE SET seq = excluded.seq",
        )
        .bind(processor)
        .bind(id.0)
        .execute(&mut *self.db.acquire(BACKEND).await?)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn emotion_state(&self, scope: &Scope) -> Result<Option<EmotionState>> {
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state FROM emotion_state WHERE tenant = $1 AND user_id = $2",
        )
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .fetch_optional(&mut *self.db.acquire(BACKEND).await?)
        .await
        .map_err(db_err)?;
        state
            .map(|s| serde_json::from_str(&s).map_err(|e| corrupt("emotion state", e)))
            .transpose()
    }

    async fn emotion_states(&self, scopes: &[Scope]) -> Result<BTreeMap<Scope, EmotionState>> {
        if scopes.is_empty() {
            return Ok(BTreeMap::new());
        }
        let rows = sqlx::query(
            "SELECT e.tenant, e.user_id, e.state FROM emotion_state e \
             JOIN UNNEST($1::text[], $2::text[]) AS k(tenant, user_id) \
             ON e.tenant = k.tenant AND e.user_id = k.user_id",
        )
        .bind(scopes.iter().map(|s| s.tenant.as_str()).collect::<Vec<_>>())
        .bind(scopes.iter().map(|s| s.user.as_str()).collect::<Vec<_>>())
        .fetch_all(&mut *self.db.acquire(BACKEND).await?)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                emotion_state_from_row(
                    BACKEND,
                    row.try_get("tenant").map_err(db_err)?,
                    row.try_get("user_id").map_err(db_err)?,
                    row.try_get("state").map_err(db_err)?,
                )
            })
            .collect()
    }

    async fn put_emotion_states(&self, states: &[(Scope, EmotionState)]) -> Result<()> {
        let rows = emotion_state_rows(states)?;
        if rows.is_empty() {
            return Ok(());
        }
        // One statement; the rows name each user once, as ON CONFLICT DO UPDATE needs.
        sqlx::query(
            "INSERT INTO emotion_state (tenant, user_id, state) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) \
             ON CONFLICT (tenant, user_id) DO UPDATE SET state = excluded.state",
        )
        .bind(rows.keys().map(|s| s.tenant.as_str()).collect::<Vec<_>>())
        .bind(rows.keys().map(|s| s.user.as_str()).collect::<Vec<_>>())
        .bind(rows.values().map(String::as_str).collect::<Vec<_>>())
        .execute(&mut *self.db.acquire(BACKEND).await?)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn forget_user(&self, scope: &Scope) -> Result<ForgetReport> {
        let mut tx = self.db.begin(BACKEND, None).await?;
        let mut report = ForgetReport::default();
        for (table, counter) in [
            ("turns", Some(&mut report.turns)),
            ("summaries", Some(&mut report.summaries)),
            ("emotion_state", None),
        ] {
            let done = sqlx::query(&format!(
                "DELETE FROM {table} WHERE tenant = $1 AND user_id = $2"
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
        let mut tx = self.db.begin(BACKEND, None).await?;
        let session: Option<String> = sqlx::query_scalar(
            "DELETE FROM turns WHERE tenant = $1 AND user_id = $2 AND seq = $3 \
             RETURNING session_id",
        )
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(session) = session else {
            tx.rollback().await.map_err(db_err)?;
            return Ok(ForgetReport::default());
        };
        let summaries = sqlx::query(
            "DELETE FROM summaries WHERE tenant = $1 AND user_id = $2 AND session_id = $3 \
             AND first_turn <= $4 AND last_turn >= $4",
        )
        .bind(scope.tenant.as_str())
        .bind(scope.user.as_str())
        .bind(&session)
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
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM turns) AS turns, \
             (SELECT COUNT(*) FROM summaries) AS summaries, \
             (SELECT seq FROM archive_head WHERE id = 1) AS head",
        )
        .fetch_one(&mut *self.db.acquire(BACKEND).await?)
        .await
        .map_err(db_err)?;
        Ok(ArchiveStats {
            turns: row.try_get::<i64, _>("turns").map_err(db_err)? as u64,
            summaries: row.try_get::<i64, _>("summaries").map_err(db_err)? as u64,
            head: TurnId(row.try_get("head").map_err(db_err)?),
        })
    }

    async fn close(&self) {
        self.db.pool().close().await;
    }
}
