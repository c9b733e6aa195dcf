//! The archive on a SQL database, written once for every [`Dialect`]: SQLite embedded
//! ([`SqliteArchive`]) and PostgreSQL on a server ([`PostgresArchive`]). What differs
//! between them (connections, how ids are assigned on insert, how lists are bound) is
//! the dialect's; every statement here is the same text on both.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use async_trait::async_trait;
use sqlx::postgres::PgConnectOptions;

use super::batch::{key_of, prepare_batch, PreparedTurn, TurnKey};
use super::{
    Appended, ArchiveConfig, ArchiveStats, ArchiveStore, ForgetReport, HistoryPage, OutboxPage,
    RecentGap,
};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::limits::InputLimits;
use crate::model::{
    EmotionState, ExternalId, Forget, NewSummary, Scope, ScoredTurn, SessionId, Summary, SummaryId,
    Timestamp, TimestampExt, Turn, TurnAnnotation, TurnId,
};
use crate::sql::postgres::{connect_options, PostgresDb};
use crate::sql::rows::{self, Columns, SUMMARY_COLUMNS, TURN_COLUMNS};
use crate::sql::sqlite::{sqlite_path, SqliteDb, SqliteSchema};
use crate::sql::{select_by_ids, user_of_rows_by_id};
use crate::sql::{Arg, Dialect, Statement};

/// The embedded archive: SQLite in WAL mode.
pub type SqliteArchive = SqlArchive<SqliteDb>;

/// The server archive: PostgreSQL.
pub type PostgresArchive = SqlArchive<PostgresDb>;

/// The archive on the SQL database `D`.
#[derive(Debug, Clone)]
pub struct SqlArchive<D: Dialect> {
    db: D,
    limits: InputLimits,
    clock: SharedClock,
}

impl<D: Dialect> SqlArchive<D> {
    /// The archive in `db`, whose migrations have run.
    pub fn new(db: D, limits: InputLimits, clock: SharedClock) -> Self {
        Self { db, limits, clock }
    }

    /// The database (on PostgreSQL, the embedded graph's tables are in it too).
    pub fn db(&self) -> &D {
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

    async fn read_turns(&self, stmt: &Statement<'_>) -> Result<Vec<Turn>> {
        self.db.read_as(D::ARCHIVE, stmt, rows::turn).await
    }

    async fn read_summaries(&self, stmt: &Statement<'_>) -> Result<Vec<Summary>> {
        self.db.read_as(D::ARCHIVE, stmt, rows::summary).await
    }

    /// The stored turns with these keys, read in `tx`.
    pub(super) async fn turns_by_keys(
        tx: &mut D::Tx,
        keys: &[&TurnKey],
    ) -> Result<HashMap<TurnKey, Turn>> {
        let mut found = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(D::max_rows(3)) {
            // A join from the keys, which both databases run as index lookups (SQLite
            // scans the table for a row-value IN).
            let mut stmt = Statement::new("WITH k (k_tenant, k_user, k_external) AS (");
            let column = |pick: fn(&TurnKey) -> &str| {
                Arg::Texts(chunk.iter().map(|k| Some(pick(k).into())).collect())
            };
            let keys = D::rows(
                &mut stmt,
                vec![column(|k| &k.0), column(|k| &k.1), column(|k| &k.2)],
            );
            stmt.push(&keys).push(&format!(
                ") SELECT {TURN_COLUMNS} FROM k JOIN turns ON turns.tenant = k.k_tenant \
                 AND turns.user_id = k.k_user AND turns.external_id = k.k_external"
            ));
            for row in D::fetch(tx, D::ARCHIVE, &stmt).await? {
                let turn = rows::turn(D::ARCHIVE, &row)?;
                found.insert(key_of(&turn.scope, &turn.external_id), turn);
            }
        }
        Ok(found)
    }

    async fn head_in(tx: &mut D::Tx) -> Result<TurnId> {
        let rows = D::fetch(tx, D::ARCHIVE, &Statement::new(D::HEAD)).await?;
        head_of::<D>(&rows)
    }
}

fn forget_of<D: Dialect>(row: &D::Row) -> Result<Forget> {
    let c = Columns::new(D::ARCHIVE, row);
    let scope = c.scope("a forget's user")?;
    let summaries = c
        .text("summaries")?
        .split(',')
        .filter(|id| !id.is_empty())
        .map(|id| {
            id.parse()
                .map(SummaryId)
                .map_err(|_| Error::corrupt(D::ARCHIVE, "a forget's summary ids"))
        })
        .collect::<Result<_>>()?;
    Ok(Forget {
        seq: TurnId(c.int("seq")?),
        scope,
        turn: c.opt_int("turn_id")?.map(TurnId),
        summaries,
    })
}

/// Records a forget in the outbox, in `tx` (the one that deletes the rows).
async fn record_forget<D: Dialect>(
    tx: &mut D::Tx,
    scope: &Scope,
    turn: Option<TurnId>,
    summaries: &[i64],
    at: Timestamp,
) -> Result<TurnId> {
    let seq = D::take_seq(tx).await?;
    let summaries: Vec<String> = summaries.iter().map(i64::to_string).collect();
    let stmt = Statement::new(
        "INSERT INTO forgets (seq, tenant, user_id, turn_id, summaries, at)          VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .arg(seq)
    .arg(scope.tenant.as_str())
    .arg(scope.user.as_str())
    .arg(turn.map(|t| t.0))
    .arg(summaries.join(","))
    .arg(at.to_micros());
    D::execute(tx, D::ARCHIVE, &stmt).await?;
    Ok(TurnId(seq))
}

fn head_of<D: Dialect>(rows: &[D::Row]) -> Result<TurnId> {
    match rows.first() {
        Some(row) => Ok(TurnId(Columns::new(D::ARCHIVE, row).int("seq")?)),
        None => Ok(TurnId(0)),
    }
}

/// `WHERE tenant = $1 AND user_id = $2` of `scope`, to continue.
fn scoped<'a>(select: String, scope: &'a Scope) -> Statement<'a> {
    Statement::new(format!("{select} WHERE tenant = $1 AND user_id = $2"))
        .arg(scope.tenant.as_str())
        .arg(scope.user.as_str())
}

/// `select` over the user's turns `ids` (`$1`, `$2`: tenant and user).
fn by_ids<'a, D: Dialect>(select: &str, scope: &'a Scope, ids: &[TurnId]) -> Statement<'a> {
    let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
    select_by_ids::<D>(select, "", "seq", scope, &ids)
}

impl SqlArchive<SqliteDb> {
    /// Opens (creating if needed) the embedded archive at `path` and runs its migrations.
    pub async fn open(
        path: &Path,
        config: &ArchiveConfig,
        limits: InputLimits,
        clock: SharedClock,
    ) -> Result<Self> {
        Ok(Self::new(
            SqliteDb::open(path, config, SqliteSchema::Archive).await?,
            limits,
            clock,
        ))
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
        Self::open(&sqlite_path(url, data_dir)?, config, limits, clock).await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.db.path()
    }
}

impl SqlArchive<PostgresDb> {
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
        Ok(Self::new(
            PostgresDb::connect(options, config).await?,
            limits,
            clock,
        ))
    }
}

#[async_trait]
impl<D: Dialect> ArchiveStore for SqlArchive<D> {
    async fn append_scored(&self, turns: Vec<ScoredTurn>) -> Result<Vec<Appended>> {
        let now = self.clock.now();
        let prepared = prepare_batch(turns, &self.limits, now)?;
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        let ingest = now.to_micros();
        // A repeated external id within the batch is inserted once, at its first place.
        let mut keys: HashSet<TurnKey> = HashSet::with_capacity(prepared.len());
        let unique: Vec<&PreparedTurn> = prepared.iter().filter(|p| keys.insert(p.key())).collect();

        let mut tx = self.db.begin(D::ARCHIVE).await?;
        let mut inserted: HashMap<TurnKey, i64> = HashMap::with_capacity(unique.len());
        for row in D::insert_turns(&mut tx, &unique, ingest).await? {
            let c = Columns::new(D::ARCHIVE, &row);
            let key = (
                c.text("tenant")?,
                c.text("user_id")?,
                c.text("external_id")?,
            );
            inserted.insert(key, c.int("seq")?);
        }
        // Turns whose external id was stored before this batch: answer with what is
        // stored.
        let missing: Vec<&TurnKey> = keys.iter().filter(|k| !inserted.contains_key(*k)).collect();
        let existing = if missing.is_empty() {
            HashMap::new()
        } else {
            Self::turns_by_keys(&mut tx, &missing).await?
        };
        D::commit(tx, D::ARCHIVE).await?;

        let mut seen: HashMap<TurnKey, Turn> = HashMap::new();
        let mut out = Vec::with_capacity(prepared.len());
        for p in prepared {
            let key = p.key();
            if let Some(turn) = existing.get(&key).or_else(|| seen.get(&key)) {
                out.push(Appended {
                    turn: turn.clone(),
                    created: false,
                });
                continue;
            }
            let id = inserted.get(&key).copied().ok_or_else(|| {
                Error::internal(
                    D::ARCHIVE,
                    "an inserted turn was not returned by the database",
                )
            })?;
            let turn = Turn {
                id: TurnId(id),
                external_id: p.external_id,
                scope: p.new.scope,
                session_id: p.new.session_id,
                role: p.new.role,
                speaker: p.new.speaker,
                content: p.new.content,
                // As stored: microseconds.
                event_time: Timestamp::from_micros(p.event_time.to_micros()),
                ingest_time: Timestamp::from_micros(ingest),
                metadata: p.new.metadata,
                emotion: p.emotion,
                importance: p.importance,
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
        let stmt = Statement::new(format!(
            "SELECT {TURN_COLUMNS} FROM turns WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .arg(after.0)
        .arg(limit as i64);
        self.read_turns(&stmt).await
    }

    async fn outbox(&self, after: TurnId, limit: usize) -> Result<OutboxPage> {
        // Both reads in one snapshot: the head is exactly as of the page.
        let mut tx = self.db.begin_snapshot(D::ARCHIVE).await?;
        let stmt = Statement::new(format!(
            "SELECT {TURN_COLUMNS} FROM turns WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .arg(after.0)
        .arg(limit as i64);
        let turns = D::fetch_as(&mut tx, D::ARCHIVE, &stmt, rows::turn).await?;
        let head = Self::head_in(&mut tx).await?;
        // Forgets among these turns: up to the page's last turn when it is full (the
        // next page holds what follows), else up to the head.
        let end = match turns.last() {
            Some(last) if turns.len() >= limit => last.id,
            _ => head,
        };
        let stmt = Statement::new(
            "SELECT seq, tenant, user_id, turn_id, summaries FROM forgets              WHERE seq > $1 AND seq <= $2 ORDER BY seq",
        )
        .arg(after.0)
        .arg(end.0);
        let forgets = D::fetch(&mut tx, D::ARCHIVE, &stmt)
            .await?
            .iter()
            .map(|row| forget_of::<D>(row))
            .collect::<Result<_>>()?;
        D::rollback(tx, D::ARCHIVE).await?;
        Ok(OutboxPage {
            turns,
            forgets,
            head,
        })
    }

    async fn head(&self) -> Result<TurnId> {
        let rows = self.db.read(D::ARCHIVE, &Statement::new(D::HEAD)).await?;
        head_of::<D>(&rows)
    }

    async fn history(
        &self,
        scope: &Scope,
        session: &SessionId,
        page: HistoryPage,
    ) -> Result<Vec<Turn>> {
        let mut stmt = scoped(format!("SELECT {TURN_COLUMNS} FROM turns"), scope);
        stmt.push(" AND session_id = ").push_bind(session.as_str());
        if let Some(before) = page.before {
            stmt.push(" AND seq < ").push_bind(before.0);
        }
        stmt.push(" ORDER BY seq DESC LIMIT ")
            .push_bind(page.limit as i64);
        self.read_turns(&stmt).await
    }

    async fn get_turns(&self, scope: &Scope, ids: &[TurnId]) -> Result<Vec<Turn>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut stmt = by_ids::<D>(&format!("SELECT {TURN_COLUMNS} FROM turns"), scope, ids);
        stmt.push(" ORDER BY seq");
        self.read_turns(&stmt).await
    }

    async fn turns_around(&self, scope: &Scope, ids: &[TurnId]) -> Result<Vec<Turn>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The given turns of the user (looked up once, by id), and for each the largest
        // seq below it and the smallest above it in its session: index seeks on
        // turns_by_session.
        let mut stmt = by_ids::<D>("WITH h AS (SELECT seq, session_id FROM turns", scope, ids);
        let next = |pick: &str, compare: &str| {
            format!(
                "SELECT (SELECT {pick}(o.seq) FROM turns o WHERE o.tenant = $1 \
                 AND o.user_id = $2 AND o.session_id = h.session_id AND o.seq {compare} h.seq) \
                 FROM h"
            )
        };
        stmt.push(&format!(
            ") SELECT {TURN_COLUMNS} FROM turns WHERE seq IN (SELECT seq FROM h UNION {} \
             UNION {}) AND {} ORDER BY seq",
            next("MAX", "<"),
            next("MIN", ">"),
            user_of_rows_by_id("")
        ));
        self.read_turns(&stmt).await
    }

    async fn find_by_external_id(
        &self,
        scope: &Scope,
        external_id: &ExternalId,
    ) -> Result<Option<Turn>> {
        let mut stmt = scoped(format!("SELECT {TURN_COLUMNS} FROM turns"), scope);
        stmt.push(" AND external_id = ")
            .push_bind(external_id.as_str());
        Ok(self.read_turns(&stmt).await?.pop())
    }

    async fn annotate(&self, annotations: &[TurnAnnotation]) -> Result<()> {
        // A turn annotated twice in one call takes the last value given for each field,
        // as applying the annotations one by one would.
        let mut merged: BTreeMap<i64, (Option<String>, Option<f64>)> = BTreeMap::new();
        for a in annotations {
            let entry = merged.entry(a.id.0).or_default();
            if let Some(emotion) = &a.emotion {
                entry.0 = Some(
                    serde_json::to_string(emotion)
                        .map_err(|e| Error::invalid("emotion", e.to_string()))?,
                );
            }
            if let Some(importance) = a.importance {
                entry.1 = Some(f64::from(importance));
            }
        }
        if merged.is_empty() {
            return Ok(());
        }
        let merged: Vec<(i64, (Option<String>, Option<f64>))> = merged.into_iter().collect();
        let mut tx = self.db.begin(D::ARCHIVE).await?;
        for chunk in merged.chunks(D::max_rows(3)) {
            let mut stmt = Statement::new("WITH a (seq, emotion, importance) AS (");
            let rows = D::rows(
                &mut stmt,
                vec![
                    Arg::Ints(chunk.iter().map(|(id, _)| Some(*id)).collect()),
                    Arg::Texts(
                        chunk
                            .iter()
                            .map(|(_, (e, _))| e.as_deref().map(Into::into))
                            .collect(),
                    ),
                    Arg::Floats(chunk.iter().map(|(_, (_, i))| *i).collect()),
                ],
            );
            stmt.push(&rows).push(
                ") UPDATE turns SET emotion = COALESCE(a.emotion, turns.emotion), \
                 importance = COALESCE(a.importance, turns.importance) \
                 FROM a WHERE turns.seq = a.seq",
            );
            D::execute(&mut tx, D::ARCHIVE, &stmt).await?;
        }
        D::commit(tx, D::ARCHIVE).await
    }

    async fn put_summaries(&self, summaries: Vec<NewSummary>) -> Result<Vec<Result<Summary>>> {
        let now = self.clock.now().to_micros();
        let mut outcomes: Vec<Option<Result<Summary>>> = Vec::with_capacity(summaries.len());
        // The valid ones in rounds: a statement may not upsert one row twice, so the
        // n-th summary of a range goes in round n, and a later one overwrites an earlier
        // one as when stored one by one. Almost always one round.
        let mut rounds: Vec<Vec<(usize, String)>> = Vec::new();
        let mut occurrences: HashMap<SummaryKey<'_>, usize> = HashMap::new();
        for (i, summary) in summaries.iter().enumerate() {
            let keywords = summary.validate(&self.limits).and_then(|()| {
                serde_json::to_string(&summary.keywords)
                    .map_err(|e| Error::invalid("keywords", e.to_string()))
            });
            match keywords {
                Ok(keywords) => {
                    let seen = occurrences.entry(summary_key(summary)).or_insert(0);
                    if rounds.len() <= *seen {
                        rounds.push(Vec::new());
                    }
                    rounds[*seen].push((i, keywords));
                    *seen += 1;
                    outcomes.push(None);
                }
                Err(e) => outcomes.push(Some(Err(e))),
            }
        }
        if !rounds.is_empty() {
            let mut tx = self.db.begin(D::ARCHIVE).await?;
            for round in &rounds {
                for chunk in round.chunks(D::max_rows(10)) {
                    let stmt = insert_summaries::<D>(&summaries, chunk, now);
                    let mut stored = HashMap::with_capacity(chunk.len());
                    for row in D::fetch(&mut tx, D::ARCHIVE, &stmt).await? {
                        let summary = rows::summary(D::ARCHIVE, &row)?;
                        stored.insert(
                            (
                                summary.scope.tenant.as_str().to_owned(),
                                summary.scope.user.as_str().to_owned(),
                                summary.session_id.as_str().to_owned(),
                                summary.first_turn.0,
                                summary.last_turn.0,
                            ),
                            summary,
                        );
                    }
                    for (i, _) in chunk {
                        let (tenant, user, session, first, last) = summary_key(&summaries[*i]);
                        let key = (tenant.into(), user.into(), session.into(), first, last);
                        // Not returned: a turn it covers was forgotten since it was read.
                        outcomes[*i] = Some(stored.remove(&key).ok_or_else(|| {
                            Error::NotFound("the turns of this summary have been forgotten".into())
                        }));
                    }
                }
            }
            D::commit(tx, D::ARCHIVE).await?;
        }
        Ok(outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or_else(|| {
                    Err(Error::internal(D::ARCHIVE, "a summary was left unanswered"))
                })
            })
            .collect())
    }

    async fn unsummarized(
        &self,
        sessions: &[(Scope, SessionId)],
        before: TurnId,
        limit: usize,
    ) -> Result<Vec<(Scope, SessionId, TurnId)>> {
        let mut found = Vec::new();
        for chunk in sessions.chunks(D::max_rows(3)) {
            // A join from the sessions to their turns and their newest summary: index
            // lookups in both databases.
            let mut stmt = Statement::new("WITH k (k_tenant, k_user, k_session) AS (");
            let column = |pick: fn(&(Scope, SessionId)) -> &str| {
                Arg::Texts(chunk.iter().map(|k| Some(pick(k).into())).collect())
            };
            let keys = D::rows(
                &mut stmt,
                vec![
                    column(|k| k.0.tenant.as_str()),
                    column(|k| k.0.user.as_str()),
                    column(|k| k.1.as_str()),
                ],
            );
            stmt.push(&keys).push(
                "), newest AS (SELECT turns.tenant, turns.user_id, turns.session_id, turns.seq, \
                 ROW_NUMBER() OVER (PARTITION BY turns.tenant, turns.user_id, turns.session_id \
                 ORDER BY turns.seq DESC) AS n \
                 FROM k JOIN turns ON turns.tenant = k.k_tenant AND turns.user_id = k.k_user \
                 AND turns.session_id = k.k_session WHERE turns.seq < ",
            );
            stmt.push_bind(before.0).push(
                " AND turns.seq > COALESCE((SELECT MAX(summaries.last_turn) FROM summaries \
                 WHERE summaries.tenant = k.k_tenant AND summaries.user_id = k.k_user \
                 AND summaries.session_id = k.k_session), 0)) \
                 SELECT tenant, user_id, session_id, seq FROM newest WHERE n <= ",
            );
            stmt.push_bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .push(" ORDER BY seq");
            let rows = self.db.read(D::ARCHIVE, &stmt).await?;
            for row in &rows {
                let c = Columns::new(D::ARCHIVE, row);
                found.push((
                    c.scope("a turn's user")?,
                    c.session("a turn's session")?,
                    TurnId(c.int("seq")?),
                ));
            }
        }
        // Chunks each in id order: the whole, too.
        found.sort_by_key(|(_, _, id)| *id);
        Ok(found)
    }

    async fn outbox_turns(&self, ids: &[TurnId]) -> Result<Vec<Turn>> {
        let mut found = Vec::with_capacity(ids.len());
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        for chunk in ids.chunks(D::max_rows(1)) {
            let mut stmt = Statement::new(format!("SELECT {TURN_COLUMNS} FROM turns WHERE seq"));
            let in_ids = D::in_ids(&mut stmt, chunk);
            stmt.push(&in_ids).push(" ORDER BY seq");
            found.extend(self.read_turns(&stmt).await?);
        }
        found.sort_by_key(|t| t.id);
        Ok(found)
    }

    async fn summaries(
        &self,
        scope: &Scope,
        session: Option<&SessionId>,
        limit: usize,
    ) -> Result<Vec<Summary>> {
        let mut stmt = scoped(format!("SELECT {SUMMARY_COLUMNS} FROM summaries"), scope);
        if let Some(session) = session {
            stmt.push(" AND session_id = ").push_bind(session.as_str());
        }
        stmt.push(" ORDER BY last_turn DESC, id DESC LIMIT ")
            .push_bind(limit as i64);
        self.read_summaries(&stmt).await
    }

    async fn get_summaries(&self, scope: &Scope, ids: &[SummaryId]) -> Result<Vec<Summary>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut stmt = scoped(format!("SELECT {SUMMARY_COLUMNS} FROM summaries"), scope);
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let in_ids = D::in_ids(&mut stmt, &ids);
        stmt.push(" AND id").push(&in_ids).push(" ORDER BY id");
        self.read_summaries(&stmt).await
    }

    async fn summaries_after(&self, after: SummaryId, limit: usize) -> Result<Vec<Summary>> {
        let stmt = Statement::new(format!(
            "SELECT {SUMMARY_COLUMNS} FROM summaries WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .arg(after.0)
        .arg(limit as i64);
        self.read_summaries(&stmt).await
    }

    async fn checkpoint(&self, processor: &str) -> Result<TurnId> {
        let stmt =
            Statement::new("SELECT seq FROM checkpoints WHERE processor = $1").arg(processor);
        let rows = self.db.read(D::ARCHIVE, &stmt).await?;
        head_of::<D>(&rows)
    }

    async fn set_checkpoint(&self, processor: &str, id: TurnId) -> Result<()> {
        crate::limits::check_id("processor", processor)?;
        let stmt = Statement::new(
            "INSERT INTO checkpoints (processor, seq) VALUES ($1, $2) \
             ON CONFLICT (processor) DO UPDATE SET seq = excluded.seq",
        )
        .arg(processor)
        .arg(id.0);
        self.db.write(D::ARCHIVE, &stmt).await?;
        Ok(())
    }

    async fn emotion_state(&self, scope: &Scope) -> Result<Option<EmotionState>> {
        let stmt = scoped(
            "SELECT tenant, user_id, state FROM emotion_state".into(),
            scope,
        );
        let states = self
            .db
            .read_as(D::ARCHIVE, &stmt, rows::emotion_state)
            .await?;
        Ok(states.into_iter().next().map(|(_, state)| state))
    }

    async fn emotion_states(&self, scopes: &[Scope]) -> Result<BTreeMap<Scope, EmotionState>> {
        let mut found = BTreeMap::new();
        for chunk in scopes.chunks(D::max_rows(2)) {
            // A join from the users: index lookups in both databases.
            let mut stmt = Statement::new("WITH k (k_tenant, k_user) AS (");
            let users = D::rows(
                &mut stmt,
                vec![
                    Arg::Texts(
                        chunk
                            .iter()
                            .map(|s| Some(s.tenant.as_str().into()))
                            .collect(),
                    ),
                    Arg::Texts(chunk.iter().map(|s| Some(s.user.as_str().into())).collect()),
                ],
            );
            stmt.push(&users).push(
                ") SELECT tenant, user_id, state FROM k JOIN emotion_state \
                 ON emotion_state.tenant = k.k_tenant AND emotion_state.user_id = k.k_user",
            );
            found.extend(
                self.db
                    .read_as(D::ARCHIVE, &stmt, rows::emotion_state)
                    .await?,
            );
        }
        Ok(found)
    }

    async fn put_emotion_states(&self, states: &[(Scope, EmotionState)]) -> Result<()> {
        // One row per user, the last state given winning: an upsert may not name a row
        // twice.
        let mut rows: BTreeMap<&Scope, (String, i64)> = BTreeMap::new();
        for (scope, state) in states {
            let text = serde_json::to_string(state)
                .map_err(|e| Error::invalid("emotion", e.to_string()))?;
            rows.insert(scope, (text, state.last_turn.0));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let rows: Vec<(&Scope, (String, i64))> = rows.into_iter().collect();
        let mut tx = self.db.begin(D::ARCHIVE).await?;
        for chunk in rows.chunks(D::max_rows(4)) {
            let mut stmt = Statement::new("WITH r (r_tenant, r_user, r_state, r_last) AS (");
            let values = D::rows(
                &mut stmt,
                vec![
                    Arg::Texts(
                        chunk
                            .iter()
                            .map(|(s, _)| Some(s.tenant.as_str().into()))
                            .collect(),
                    ),
                    Arg::Texts(
                        chunk
                            .iter()
                            .map(|(s, _)| Some(s.user.as_str().into()))
                            .collect(),
                    ),
                    Arg::Texts(
                        chunk
                            .iter()
                            .map(|(_, (t, _))| Some(t.as_str().into()))
                            .collect(),
                    ),
                    Arg::Ints(chunk.iter().map(|(_, (_, last))| Some(*last)).collect()),
                ],
            );
            // Not a state folded from turns the user was forgotten after.
            stmt.push(&values).push(
                ") INSERT INTO emotion_state (tenant, user_id, state) \
                 SELECT r_tenant, r_user, r_state FROM r WHERE NOT EXISTS \
                 (SELECT 1 FROM forgets WHERE tenant = r_tenant AND user_id = r_user \
                 AND turn_id IS NULL AND seq > r_last) \
                 ON CONFLICT (tenant, user_id) DO UPDATE SET state = excluded.state",
            );
            D::execute(&mut tx, D::ARCHIVE, &stmt).await?;
        }
        D::commit(tx, D::ARCHIVE).await
    }

    async fn forget_user(&self, scope: &Scope) -> Result<ForgetReport> {
        let mut tx = self.db.begin(D::ARCHIVE).await?;
        let mut report = ForgetReport::default();
        for (table, counter) in [
            ("turns", Some(&mut report.turns)),
            ("summaries", Some(&mut report.summaries)),
            ("emotion_state", None),
            ("recent_gaps", None),
        ] {
            let stmt = scoped(format!("DELETE FROM {table}"), scope);
            let deleted = D::execute(&mut tx, D::ARCHIVE, &stmt).await?;
            if let Some(counter) = counter {
                *counter = deleted;
            }
        }
        report.recorded =
            Some(record_forget::<D>(&mut tx, scope, None, &[], self.clock.now()).await?);
        D::commit(tx, D::ARCHIVE).await?;
        Ok(report)
    }

    async fn forget_turn(&self, scope: &Scope, id: TurnId) -> Result<ForgetReport> {
        let mut tx = self.db.begin(D::ARCHIVE).await?;
        let mut stmt = scoped("DELETE FROM turns".into(), scope);
        stmt.push(" AND seq = ")
            .push_bind(id.0)
            .push(" RETURNING session_id");
        let deleted = D::fetch(&mut tx, D::ARCHIVE, &stmt).await?;
        let Some(row) = deleted.first() else {
            D::rollback(tx, D::ARCHIVE).await?;
            return Ok(ForgetReport::default());
        };
        let session = Columns::new(D::ARCHIVE, row).text("session_id")?;
        let mut stmt = scoped("DELETE FROM summaries".into(), scope);
        stmt.push(" AND session_id = ")
            .push_bind(session)
            .push(" AND first_turn <= ")
            .push_bind(id.0)
            .push(" AND last_turn >= ")
            .push_bind(id.0)
            .push(" RETURNING id");
        let summaries: Vec<i64> = D::fetch(&mut tx, D::ARCHIVE, &stmt)
            .await?
            .iter()
            .map(|row| Columns::new(D::ARCHIVE, row).int("id"))
            .collect::<Result<_>>()?;
        let recorded =
            record_forget::<D>(&mut tx, scope, Some(id), &summaries, self.clock.now()).await?;
        D::commit(tx, D::ARCHIVE).await?;
        Ok(ForgetReport {
            turns: 1,
            summaries: summaries.len() as u64,
            recorded: Some(recorded),
        })
    }

    async fn sessions_between(
        &self,
        after: TurnId,
        up_to: TurnId,
        limit: usize,
    ) -> Result<Vec<(Scope, SessionId, Timestamp)>> {
        let stmt = Statement::new(
            "SELECT tenant, user_id, session_id, MAX(ingest_time) AS last FROM turns \
             WHERE seq > $1 AND seq <= $2 GROUP BY tenant, user_id, session_id \
             ORDER BY last DESC LIMIT $3",
        )
        .arg(after.0)
        .arg(up_to.0)
        .arg(limit as i64);
        let rows = self.db.read(D::ARCHIVE, &stmt).await?;
        rows.iter()
            .map(|row| {
                let c = Columns::new(D::ARCHIVE, row);
                Ok((
                    c.scope("a turn's user")?,
                    c.session("a turn's session")?,
                    c.time("last")?,
                ))
            })
            .collect()
    }

    async fn mark_recent_gaps(&self, gaps: &[RecentGap]) -> Result<()> {
        // One row per session, the highest stamp given: an upsert may not name a row twice.
        let mut rows: BTreeMap<(&Scope, &SessionId), i64> = BTreeMap::new();
        for gap in gaps {
            let stamp = rows.entry((&gap.scope, &gap.session)).or_default();
            *stamp = (*stamp).max(gap.stamp.0);
        }
        if rows.is_empty() {
            return Ok(());
        }
        let rows: Vec<((&Scope, &SessionId), i64)> = rows.into_iter().collect();
        let mut tx = self.db.begin(D::ARCHIVE).await?;
        for chunk in rows.chunks(D::max_rows(4)) {
            let mut stmt =
                Statement::new("INSERT INTO recent_gaps (tenant, user_id, session_id, stamp) ");
            let values = D::rows(
                &mut stmt,
                vec![
                    Arg::Texts(
                        chunk
                            .iter()
                            .map(|((s, _), _)| Some(s.tenant.as_str().into()))
                            .collect(),
                    ),
                    Arg::Texts(
                        chunk
                            .iter()
                            .map(|((s, _), _)| Some(s.user.as_str().into()))
                            .collect(),
                    ),
                    Arg::Texts(
                        chunk
                            .iter()
                            .map(|((_, session), _)| Some(session.as_str().into()))
                            .collect(),
                    ),
                    Arg::Ints(chunk.iter().map(|(_, stamp)| Some(*stamp)).collect()),
                ],
            );
            stmt.push(&values).push(&format!(
                " ON CONFLICT (tenant, user_id, session_id) DO UPDATE SET \
                 stamp = {}(recent_gaps.stamp, excluded.stamp)",
                D::GREATEST
            ));
            D::execute(&mut tx, D::ARCHIVE, &stmt).await?;
        }
        D::commit(tx, D::ARCHIVE).await
    }

    async fn recent_gaps(&self) -> Result<Vec<RecentGap>> {
        let stmt = Statement::new(
            "SELECT tenant, user_id, session_id, stamp FROM recent_gaps \
             ORDER BY tenant, user_id, session_id",
        );
        let rows = self.db.read(D::ARCHIVE, &stmt).await?;
        rows.iter()
            .map(|row| {
                let c = Columns::new(D::ARCHIVE, row);
                Ok(RecentGap {
                    scope: c.scope("a recent gap's user")?,
                    session: c.session("a recent gap's session")?,
                    stamp: TurnId(c.int("stamp")?),
                })
            })
            .collect()
    }

    async fn clear_recent_gap(&self, gap: &RecentGap) -> Result<()> {
        let mut stmt = scoped("DELETE FROM recent_gaps".into(), &gap.scope);
        stmt.push(" AND session_id = ")
            .push_bind(gap.session.as_str())
            .push(" AND stamp <= ")
            .push_bind(gap.stamp.0);
        self.db.write(D::ARCHIVE, &stmt).await?;
        Ok(())
    }

    async fn analyze(&self) -> Result<()> {
        self.db
            .write(D::ARCHIVE, &Statement::new(D::ANALYZE))
            .await?;
        Ok(())
    }

    async fn stats(&self) -> Result<ArchiveStats> {
        let stmt = Statement::new(
            "SELECT (SELECT COUNT(*) FROM turns) AS turns, \
             (SELECT COUNT(*) FROM summaries) AS summaries",
        );
        let rows = self.db.read(D::ARCHIVE, &stmt).await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::internal(D::ARCHIVE, "counting returned no row"))?;
        let c = Columns::new(D::ARCHIVE, row);
        Ok(ArchiveStats {
            turns: c.int("turns")? as u64,
            summaries: c.int("summaries")? as u64,
            head: self.head().await?,
        })
    }

    async fn close(&self) {
        self.db.close().await;
    }
}

/// The columns tenant, user, session, first turn and last turn of summaries' ranges, for
/// [`Dialect::rows`].
pub(super) fn summary_range_columns<'a>(
    ranges: impl Iterator<Item = (&'a Scope, &'a SessionId, TurnId, TurnId)> + Clone,
) -> Vec<Arg<'a>> {
    let texts = |pick: fn(&(&'a Scope, &'a SessionId, TurnId, TurnId)) -> &'a str| {
        Arg::Texts(ranges.clone().map(|r| Some(pick(&r).into())).collect())
    };
    let ints = |pick: fn(&(&'a Scope, &'a SessionId, TurnId, TurnId)) -> i64| {
        Arg::Ints(ranges.clone().map(|r| Some(pick(&r))).collect())
    };
    vec![
        texts(|r| r.0.tenant.as_str()),
        texts(|r| r.0.user.as_str()),
        texts(|r| r.1.as_str()),
        ints(|r| r.2 .0),
        ints(|r| r.3 .0),
    ]
}

/// What makes a summary one row: whose, which session, which range of turns.
type SummaryKey<'a> = (&'a str, &'a str, &'a str, i64, i64);

fn summary_key(summary: &NewSummary) -> SummaryKey<'_> {
    (
        summary.scope.tenant.as_str(),
        summary.scope.user.as_str(),
        summary.session_id.as_str(),
        summary.first_turn.0,
        summary.last_turn.0,
    )
}

/// One statement storing the summaries `chunk` picks out of `summaries` (each with its
/// keywords as JSON), none twice, returning the rows stored; one over a turn forgotten
/// since it was read (the user after it, or the turn itself) is left out.
fn insert_summaries<'a, D: Dialect>(
    summaries: &'a [NewSummary],
    chunk: &'a [(usize, String)],
    now: i64,
) -> Statement<'a> {
    let mut stmt = Statement::new(
        "WITH s (s_tenant, s_user, s_session, s_first, s_last, s_text, s_keywords, s_start, \
         s_end) AS (",
    );
    let picked = || chunk.iter().map(|(i, _)| &summaries[*i]);
    let ints = |pick: fn(&NewSummary) -> i64| Arg::Ints(picked().map(|s| Some(pick(s))).collect());
    let mut columns = summary_range_columns(
        picked().map(|s| (&s.scope, &s.session_id, s.first_turn, s.last_turn)),
    );
    columns.extend([
        Arg::Texts(picked().map(|s| Some(s.text.as_str().into())).collect()),
        Arg::Texts(chunk.iter().map(|(_, k)| Some(k.as_str().into())).collect()),
        ints(|s| s.start_time.to_micros()),
        ints(|s| s.end_time.to_micros()),
    ]);
    let values = D::rows(&mut stmt, columns);
    stmt.push(&values).push(
        ") INSERT INTO summaries (tenant, user_id, session_id, first_turn, last_turn, text, \
         keywords, start_time, end_time, created) \
         SELECT s_tenant, s_user, s_session, s_first, s_last, s_text, s_keywords, s_start, \
         s_end, ",
    );
    stmt.push_bind(now).push(&format!(
        " FROM s WHERE NOT EXISTS (SELECT 1 FROM forgets WHERE tenant = s.s_tenant \
         AND user_id = s.s_user AND ((turn_id IS NULL AND seq > s.s_last) \
         OR (turn_id >= s.s_first AND turn_id <= s.s_last))) \
         ON CONFLICT (tenant, user_id, session_id, first_turn, last_turn) DO UPDATE SET \
         text = excluded.text, keywords = excluded.keywords, \
         start_time = excluded.start_time, end_time = excluded.end_time \
         RETURNING {SUMMARY_COLUMNS}"
    ));
    stmt
}
