//! The PostgreSQL dialect: a server through sqlx, with versioned migrations of its own
//! (`storage/migrations/postgres/`, run at connect), lists and row sets bound as arrays.
//!
//! # Turn ids and outbox order
//!
//! Processors read the outbox by id and keep the last id they handled, so a turn must
//! never become visible after a turn with a higher id: a reader would move past it and
//! never see it. A PostgreSQL sequence does not give that: two transactions draw 5 and
//! 6, the one holding 6 commits first, a reader sees 6, and 5 appears later below its
//! checkpoint.
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

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::MigrateError;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgRow};
use sqlx::query::Query;
use sqlx::Postgres;

use super::postgres_pool::{PgConnections, PgTransaction};
use super::{convert_all, Arg, Convert, Counters, Dialect, Statement};
use crate::archive::batch::PreparedTurn;
use crate::archive::{ArchiveConfig, Durability};
use crate::error::{Error, Result};

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
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

/// A PostgreSQL database: a pool for transactions that write (group commit, the
/// processors' writes) and one for reads, so an acknowledgement never waits for a
/// connection behind the context requests' reads.
#[derive(Debug, Clone)]
pub struct PostgresDb {
    reads: PgConnections,
    writes: PgConnections,
}

/// How `max_connections` is split: (reads, writes). From 4 connections up a quarter, at
/// least 2, is kept for writes; below that one pool serves both (`writes` = 0).
fn split_pool(max_connections: u32) -> (u32, u32) {
    let total = max_connections.max(1);
    if total < 4 {
        return (total, 0);
    }
    let writes = (total / 4).max(2);
    (total - writes, writes)
}

impl PostgresDb {
    /// Connects with `options` (a url's settings) and runs the migrations. The pool
    /// sizes, statement timeout and durability come from `config`.
    pub async fn connect(options: PgConnectOptions, config: &ArchiveConfig) -> Result<Self> {
        let backend = Self::ARCHIVE;
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
        let (read_connections, write_connections) = split_pool(config.max_connections);
        let reads = PgConnections::new(
            options.clone(),
            place.clone(),
            read_connections,
            acquire_timeout,
        );
        let writes = if write_connections == 0 {
            reads.clone()
        } else {
            PgConnections::new(options, place.clone(), write_connections, acquire_timeout)
        };
        let mut conn = writes.acquire(backend).await?;
        sqlx::migrate!("./migrations/postgres")
            .run_direct(&mut *conn)
            .await
            .map_err(|e| match e {
                MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => {
                    Error::from_sqlx(backend, e)
                }
                other => Error::corrupt(backend, format!("migrating {place}: {other}")),
            })?;
        drop(conn);
        Ok(Self { reads, writes })
    }
}

fn query<'q>(stmt: &'q Statement<'q>) -> Query<'q, Postgres, PgArguments> {
    stmt.args().iter().fold(sqlx::query(stmt.sql()), bind)
}

fn bind<'q>(
    query: Query<'q, Postgres, PgArguments>,
    arg: &'q Arg<'q>,
) -> Query<'q, Postgres, PgArguments> {
    match arg {
        Arg::Int(v) => query.bind(*v),
        Arg::Float(v) => query.bind(*v),
        Arg::Text(v) => query.bind(v.as_deref()),
        Arg::Ints(values) => query.bind(values.as_slice()),
        Arg::Floats(values) => query.bind(values.as_slice()),
        Arg::Texts(values) => query.bind(
            values
                .iter()
                .map(|v| v.as_deref())
                .collect::<Vec<Option<&str>>>(),
        ),
    }
}

/// Binds `columns` as arrays and returns `UNNEST(...)` over them, each cast to its type.
fn unnest<'a>(stmt: &mut Statement<'a>, columns: Vec<Arg<'a>>) -> String {
    let arrays: Vec<String> = columns
        .into_iter()
        .map(|column| {
            let ty = match column {
                Arg::Int(_) | Arg::Ints(_) => "int8[]",
                Arg::Float(_) | Arg::Floats(_) => "float8[]",
                Arg::Text(_) | Arg::Texts(_) => "text[]",
            };
            format!("{}::{ty}", stmt.bind(column))
        })
        .collect();
    format!("UNNEST({})", arrays.join(", "))
}

#[async_trait]
impl Dialect for PostgresDb {
    type Row = PgRow;
    type Tx = PgTransaction;

    const ARCHIVE: &'static str = "postgres archive";
    const GRAPH: &'static str = "postgres graph";
    const LEAST: &'static str = "LEAST";
    const GREATEST: &'static str = "GREATEST";
    const HEAD: &'static str = "SELECT seq FROM archive_head WHERE id = 1";
    // Only Mnemo's tables: the database may hold others'.
    const ANALYZE: &'static str = "ANALYZE turns, summaries, checkpoints, emotion_state, \
         forgets, recent_gaps, graph_entities, graph_aliases, graph_edges, graph_edge_support";

    fn in_ids(stmt: &mut Statement<'_>, ids: &[i64]) -> String {
        let placeholder = stmt.bind(Arg::Ints(ids.iter().copied().map(Some).collect()));
        format!(" = ANY({placeholder})")
    }

    fn rows<'a>(stmt: &mut Statement<'a>, columns: Vec<Arg<'a>>) -> String {
        format!("SELECT * FROM {}", unnest(stmt, columns))
    }

    fn max_rows(_columns: usize) -> usize {
        // One array per column, whatever the number of rows; a bound keeps one statement
        // from growing without end.
        50_000
    }

    async fn read(&self, backend: &'static str, stmt: &Statement<'_>) -> Result<Vec<PgRow>> {
        self.reads.fetch_all(backend, || query(stmt)).await
    }

    async fn read_as<T: Send + 'static>(
        &self,
        backend: &'static str,
        stmt: &Statement<'_>,
        convert: Convert<PgRow, T>,
    ) -> Result<Vec<T>> {
        convert_all(backend, &self.read(backend, stmt).await?, convert)
    }

    async fn write(&self, backend: &'static str, stmt: &Statement<'_>) -> Result<Vec<PgRow>> {
        // Every single-statement write is an upsert or a delete: running it twice, when
        // a connection broke under it, changes nothing.
        self.writes.fetch_all(backend, || query(stmt)).await
    }

    async fn begin(&self, backend: &'static str) -> Result<Self::Tx> {
        self.writes.begin(backend, None).await
    }

    async fn begin_snapshot(&self, backend: &'static str) -> Result<Self::Tx> {
        self.reads
            .begin(
                backend,
                Some("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
            )
            .await
    }

    async fn fetch(
        tx: &mut Self::Tx,
        backend: &'static str,
        stmt: &Statement<'_>,
    ) -> Result<Vec<PgRow>> {
        tx.fetch_all(backend, query(stmt)).await
    }

    async fn fetch_as<T: Send + 'static>(
        tx: &mut Self::Tx,
        backend: &'static str,
        stmt: &Statement<'_>,
        convert: Convert<PgRow, T>,
    ) -> Result<Vec<T>> {
        convert_all(backend, &Self::fetch(tx, backend, stmt).await?, convert)
    }

    async fn execute(
        tx: &mut Self::Tx,
        backend: &'static str,
        stmt: &Statement<'_>,
    ) -> Result<u64> {
        tx.execute_query(backend, query(stmt)).await
    }

    async fn commit(tx: Self::Tx, backend: &'static str) -> Result<()> {
        tx.commit(backend).await
    }

    async fn rollback(tx: Self::Tx, backend: &'static str) -> Result<()> {
        tx.rollback(backend).await
    }

    async fn insert_turns(
        tx: &mut Self::Tx,
        turns: &[&PreparedTurn],
        ingest_time: i64,
    ) -> Result<Vec<PgRow>> {
        let n = turns.len() as i64;
        // Takes the counter row's lock until commit: appends run one at a time and their
        // ids become visible in commit order (see the module docs).
        let counter =
            Statement::new("UPDATE archive_head SET seq = seq + $1 WHERE id = 1 RETURNING seq")
                .arg(n);
        let new_head = match Self::fetch(tx, Self::ARCHIVE, &counter).await?.first() {
            Some(row) => super::rows::Columns::new(Self::ARCHIVE, row).int("seq")?,
            None => return Err(Error::corrupt(Self::ARCHIVE, "archive_head has no row")),
        };
        // The whole batch in one statement, the n-th turn getting id base + n. A turn
        // whose external id is already stored is skipped, leaving its id unused (the
        // outbox head lets readers pass it).
        let mut stmt = Statement::new("");
        let base = stmt.bind(new_head - n);
        let rows = unnest(&mut stmt, PreparedTurn::columns(turns, ingest_time));
        stmt.push(&format!(
            "INSERT INTO turns (seq, external_id, tenant, user_id, session_id, role, speaker, \
             content, event_time, ingest_time, metadata, emotion, importance) \
             SELECT {base} + t.ord, t.external_id, t.tenant, t.user_id, t.session_id, t.role, \
             t.speaker, t.content, t.event_time, t.ingest_time, t.metadata, t.emotion, \
             t.importance \
             FROM {rows} WITH ORDINALITY AS t(external_id, tenant, user_id, session_id, role, \
             speaker, content, event_time, ingest_time, metadata, emotion, importance, ord) \
             ON CONFLICT (tenant, user_id, external_id) DO NOTHING \
             RETURNING seq, tenant, user_id, external_id"
        ));
        Self::fetch(tx, Self::ARCHIVE, &stmt).await
    }

    const GIVEN_IDS: &'static str = " OVERRIDING SYSTEM VALUE";

    async fn counters(tx: &mut Self::Tx) -> Result<Counters> {
        // The identity sequence of summaries.id, named as PostgreSQL names it.
        let stmt = Statement::new(
            "SELECT (SELECT seq FROM archive_head WHERE id = 1) AS head, \
             (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END \
             FROM summaries_id_seq) AS summary",
        );
        let rows = Self::fetch(tx, Self::ARCHIVE, &stmt).await?;
        let Some(row) = rows.first() else {
            return Ok(Counters::default());
        };
        let c = super::rows::Columns::new(Self::ARCHIVE, row);
        Ok(Counters {
            head: c.opt_int("head")?.unwrap_or(0),
            summary: c.opt_int("summary")?.unwrap_or(0),
        })
    }

    async fn set_counters(tx: &mut Self::Tx, to: Counters, raise: bool) -> Result<()> {
        let head = if raise {
            "UPDATE archive_head SET seq = GREATEST(seq, $1) WHERE id = 1"
        } else {
            "UPDATE archive_head SET seq = $1 WHERE id = 1"
        };
        Self::execute(tx, Self::ARCHIVE, &Statement::new(head).arg(to.head)).await?;
        let current = Self::counters(tx).await?.summary;
        let summary = if raise {
            current.max(to.summary)
        } else {
            to.summary
        };
        // setval(.., v, true) hands out v + 1 next; a sequence cannot be set to 0, so an
        // empty one is set to hand out 1 next.
        let stmt = Statement::new("SELECT setval('summaries_id_seq', $1, $2 > 0)")
            .arg(summary.max(1))
            .arg(summary);
        Self::fetch(tx, Self::ARCHIVE, &stmt).await?;
        Ok(())
    }

    async fn take_seq(tx: &mut Self::Tx) -> Result<i64> {
        // The counter row's lock, as an append takes it: ids stay visible in order.
        let counter =
            Statement::new("UPDATE archive_head SET seq = seq + 1 WHERE id = 1 RETURNING seq");
        match Self::fetch(tx, Self::ARCHIVE, &counter).await?.first() {
            Some(row) => super::rows::Columns::new(Self::ARCHIVE, row).int("seq"),
            None => Err(Error::corrupt(Self::ARCHIVE, "archive_head has no row")),
        }
    }

    async fn close(&self) {
        self.reads.close().await;
        self.writes.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::split_pool;

    #[test]
    fn a_quarter_of_the_connections_at_least_two_is_kept_for_writes() {
        assert_eq!(split_pool(0), (1, 0));
        assert_eq!(split_pool(3), (3, 0));
        assert_eq!(split_pool(4), (2, 2));
        assert_eq!(split_pool(10), (8, 2));
        assert_eq!(split_pool(16), (12, 4));
    }
}
