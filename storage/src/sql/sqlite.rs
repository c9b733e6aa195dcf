//! The SQLite dialect: a database file in WAL mode through sqlx.
//!
//! Writes go through one connection of their own (SQLite has one writer at a time, so a
//! pool of writers would only contend on the lock); reads run on read-only connections
//! that WAL lets run beside the writer, each on a thread of ours
//! ([`super::sqlite_readers`]), and so do read-only transactions (one snapshot over
//! several statements), on threads of their own. Turn ids come from the `turns`
//! table's AUTOINCREMENT, which never reuses an id.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use super::owned_row::OwnedRow;
use super::sqlite_readers::{HandOver, Snapshot, SqliteReaders};
use super::{convert_all, Arg, Convert, Counters, Dialect, Statement};
use crate::archive::batch::PreparedTurn;
use crate::archive::{ArchiveConfig, Durability};
use crate::error::{Error, Result};

/// SQLite allows 32,766 bound values per statement; stay well below.
const MAX_ARGS: usize = 30_000;

/// Rows per multi-row INSERT of turns (12 values each).
const INSERT_CHUNK: usize = 512;

/// What a SQLite database holds: the archive's tables, or the embedded graph's (a file of
/// its own, so the graph sync processor's writes never hold the archive's write lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSchema {
    /// Turns, summaries, checkpoints and the rest of the archive.
    Archive,
    /// The graph tier's tables.
    Graph,
}

impl SqliteSchema {
    fn backend(self) -> &'static str {
        match self {
            Self::Archive => SqliteDb::ARCHIVE,
            Self::Graph => SqliteDb::GRAPH,
        }
    }

    fn migrator(self) -> Migrator {
        match self {
            Self::Archive => sqlx::migrate!("./migrations/sqlite"),
            Self::Graph => sqlx::migrate!("./migrations/sqlite-graph"),
        }
    }

    /// Threads for read-only transactions: the graph reads with none.
    fn snapshot_threads(self, config: &ArchiveConfig) -> usize {
        match self {
            Self::Archive => config.read_connections as usize,
            Self::Graph => 1,
        }
    }
}

/// A SQLite database: its write connection and its read connections.
#[derive(Debug, Clone)]
pub struct SqliteDb {
    writer: SqlitePool,
    readers: Arc<SqliteReaders>,
    /// Read-only transactions: a snapshot holds its thread until it ends, so plain reads
    /// never wait behind one.
    snapshots: Arc<SqliteReaders>,
    path: PathBuf,
}

/// Turns off SQLite's memory statistics, once, before the process's first connection:
/// while they are on, every allocation and free inside SQLite takes one process-wide
/// mutex (5% of the writer thread's samples in a profile of `ingest`, and shared with
/// every reader thread). Nothing reads them. Refused by SQLite once it has been
/// initialized (something else in the process opened a database first): then they stay.
fn turn_off_memory_statistics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use rusqlite::ffi;
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int; sqlite3_config is only acted on
        // before sqlite3_initialize and otherwise returns SQLITE_MISUSE, changing nothing.
        let off: std::os::raw::c_int = 0;
        let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, off) };
        if rc != ffi::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was initialized before Mnemo opened a database: \
                 its memory statistics stay on"
            );
        }
    });
}

impl SqliteDb {
    /// Opens (creating if needed) the database of `schema` at `path` and runs its
    /// migrations.
    pub async fn open(path: &Path, config: &ArchiveConfig, schema: SqliteSchema) -> Result<Self> {
        turn_off_memory_statistics();
        let backend = schema.backend();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::unavailable(backend, format!("cannot create {}: {e}", parent.display()))
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
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    // The writer walks every index of every insert and processor write.
                    // Statement journals of multi-row writes in memory, not in a temp
                    // file created, written and deleted per statement.
                    .pragma("temp_store", "memory")
                    .pragma(
                        "cache_size",
                        format!("-{}", u64::from(config.cache_mib.max(1)) * 1024),
                    ),
            )
            .await
            .map_err(|e| {
                Error::unavailable(backend, format!("cannot open {}: {e}", path.display()))
            })?;
        schema
            .migrator()
            .run(&writer)
            .await
            .map_err(|e| Error::corrupt(backend, format!("migrating {}: {e}", path.display())))?;
        let open_readers = |threads| {
            SqliteReaders::open(
                backend,
                path,
                threads,
                Duration::from_millis(config.busy_timeout_ms),
            )
            .map(Arc::new)
        };
        Ok(Self {
            writer,
            readers: open_readers(config.read_connections as usize)?,
            snapshots: open_readers(schema.snapshot_threads(config))?,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `statements` in one write transaction with the database file `other` attached
    /// as `other` (its tables named `other.TABLE`), then detaches it whatever happened;
    /// returns the rows each statement changed. On one connection of the writer's pool:
    /// an attachment belongs to a connection.
    pub async fn with_attached(
        &self,
        backend: &'static str,
        other: &Path,
        statements: &[Statement<'_>],
    ) -> Result<Vec<u64>> {
        let err = |e| Error::from_sqlx(backend, e);
        let other = other.to_str().ok_or_else(|| {
            Error::invalid(
                "storage.data_dir",
                format!("{} is not a UTF-8 path", other.display()),
            )
        })?;
        let mut conn = self.writer.acquire().await.map_err(err)?;
        sqlx::query("ATTACH DATABASE ? AS other")
            .bind(other)
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        let run = async {
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(err)?;
            let mut changed = Vec::with_capacity(statements.len());
            for stmt in statements {
                let (sql, args) = anonymous(stmt);
                let done = query(backend, &sql, &args)?
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                changed.push(done.rows_affected());
            }
            tx.commit().await.map_err(err)?;
            Ok(changed)
        };
        let changed = run.await;
        let detached = sqlx::query("DETACH DATABASE other")
            .execute(&mut *conn)
            .await
            .map_err(err);
        let changed = changed?;
        detached?;
        Ok(changed)
    }
}

/// Resolves a `sqlite:PATH` (or `sqlite://PATH`) url to a file path, a relative PATH
/// against `data_dir`.
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

/// The statement as SQLite takes it fastest: every `$N` becomes an anonymous `?` and the
/// N-th value is bound at that place (again where `$N` comes again). SQLite keeps every
/// named or numbered placeholder in a list it searches linearly, at preparation and at
/// each bind, so a statement of thousands of values (a batch of turns) took quadratic
/// time; anonymous ones are never listed.
fn anonymous<'s, 'q>(stmt: &'s Statement<'q>) -> (String, Vec<&'s Arg<'q>>) {
    let sql = stmt.sql();
    let mut out = String::with_capacity(sql.len());
    let mut order = Vec::with_capacity(stmt.args().len());
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        let digits = rest[at + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - at - 1);
        let number = rest[at + 1..at + 1 + digits].parse::<usize>().ok();
        match number
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| stmt.args().get(i))
        {
            Some(arg) => {
                out.push_str(&rest[..at]);
                out.push('?');
                order.push(arg);
            }
            None => out.push_str(&rest[..=at + digits]),
        }
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    (out, order)
}

/// sqlx's rows as the dialect's own.
fn owned(backend: &'static str, rows: Vec<SqliteRow>) -> Result<Vec<OwnedRow>> {
    let mut columns = None;
    rows.iter()
        .map(|row| {
            OwnedRow::from_sqlite(row, &mut columns).map_err(|e| Error::from_sqlx(backend, e))
        })
        .collect()
}

/// A transaction: a write on the write connection, or a read-only snapshot.
#[derive(Debug)]
pub enum SqliteTx {
    /// On the write connection.
    Write(Transaction<'static, Sqlite>),
    /// Reads of one snapshot, on a reader thread.
    Snapshot(Snapshot),
}

/// Whether a statement with `params` bound values is worth keeping prepared on its
/// connection. Few values: a statement of fixed shape, run again and again. Many: a
/// multi-row write or a long id list, whose text changes with its row count; each kept
/// one holds its bound values and program (megabytes for thousands of rows), and a
/// connection kept up to a hundred of them (hundreds of MiB resident at 1M turns,
/// BENCHMARKS.md), while its parse is a small part of writing that many rows.
pub(crate) fn worth_caching(params: usize) -> bool {
    params <= MOST_PARAMS_CACHED
}

/// See [`worth_caching`].
const MOST_PARAMS_CACHED: usize = 64;

fn query<'q>(
    backend: &'static str,
    sql: &'q str,
    args: &[&'q Arg<'q>],
) -> Result<Query<'q, Sqlite, SqliteArguments<'q>>> {
    let mut query = sqlx::query(sql).persistent(worth_caching(args.len()));
    for arg in args {
        query = match arg {
            Arg::Int(v) => query.bind(*v),
            Arg::Float(v) => query.bind(*v),
            Arg::Text(v) => query.bind(v.as_deref()),
            array => {
                return Err(Error::internal(
                    backend,
                    format!("SQLite binds no arrays (a list is written as values): {array:?}"),
                ))
            }
        };
    }
    Ok(query)
}

#[async_trait]
impl Dialect for SqliteDb {
    type Row = OwnedRow;
    type Tx = SqliteTx;

    const ARCHIVE: &'static str = "sqlite archive";
    const GRAPH: &'static str = "sqlite graph";
    const LEAST: &'static str = "min";
    const GREATEST: &'static str = "max";
    const HEAD: &'static str = "SELECT seq FROM sqlite_sequence WHERE name = 'turns'";
    // Analyses the tables whose statistics are stale or missing, as SQLite recommends.
    const ANALYZE: &'static str = "PRAGMA optimize";

    fn in_ids(stmt: &mut Statement<'_>, ids: &[i64]) -> String {
        let list: Vec<String> = ids.iter().map(|id| stmt.bind(*id)).collect();
        format!(" IN ({})", list.join(", "))
    }

    fn rows<'a>(stmt: &mut Statement<'a>, columns: Vec<Arg<'a>>) -> String {
        let count = columns.first().map_or(0, Arg::len);
        let mut columns: Vec<_> = columns.into_iter().map(Arg::into_scalars).collect();
        // Written in place: a string per value and per row made this a twentieth of a
        // bulk ingest's CPU, on the actor thread (BENCHMARKS.md).
        let mut sql = String::with_capacity(8 + count * columns.len() * 8);
        sql.push_str("VALUES ");
        for row in 0..count {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for (i, column) in columns.iter_mut().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                stmt.bind_into(column.next().unwrap_or(Arg::Text(None)), &mut sql);
            }
            sql.push(')');
        }
        sql
    }

    fn max_rows(columns: usize) -> usize {
        MAX_ARGS / columns.max(1)
    }

    async fn read(&self, backend: &'static str, stmt: &Statement<'_>) -> Result<Vec<OwnedRow>> {
        let (sql, args) = anonymous(stmt);
        self.readers.read(backend, sql, &args).await
    }

    async fn read_as<T: Send + 'static>(
        &self,
        backend: &'static str,
        stmt: &Statement<'_>,
        convert: Convert<OwnedRow, T>,
    ) -> Result<Vec<T>> {
        let (sql, args) = anonymous(stmt);
        self.readers.read_as(backend, sql, &args, convert).await
    }

    async fn write(&self, backend: &'static str, stmt: &Statement<'_>) -> Result<Vec<OwnedRow>> {
        let (sql, args) = anonymous(stmt);
        let rows = query(backend, &sql, &args)?
            .fetch_all(&self.writer)
            .await
            .map_err(|e| Error::from_sqlx(backend, e))?;
        owned(backend, rows)
    }

    async fn begin(&self, backend: &'static str) -> Result<Self::Tx> {
        self.writer
            .begin()
            .await
            .map(SqliteTx::Write)
            .map_err(|e| Error::from_sqlx(backend, e))
    }

    async fn begin_snapshot(&self, backend: &'static str) -> Result<Self::Tx> {
        // In WAL mode every statement of a read transaction sees the same snapshot.
        self.snapshots
            .snapshot(backend)
            .await
            .map(SqliteTx::Snapshot)
    }

    async fn fetch(
        tx: &mut Self::Tx,
        backend: &'static str,
        stmt: &Statement<'_>,
    ) -> Result<Vec<OwnedRow>> {
        let (sql, args) = anonymous(stmt);
        match tx {
            SqliteTx::Write(tx) => {
                let rows = query(backend, &sql, &args)?
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(|e| Error::from_sqlx(backend, e))?;
                owned(backend, rows)
            }
            SqliteTx::Snapshot(snapshot) => snapshot.read(backend, sql, &args).await,
        }
    }

    async fn fetch_as<T: Send + 'static>(
        tx: &mut Self::Tx,
        backend: &'static str,
        stmt: &Statement<'_>,
        convert: Convert<OwnedRow, T>,
    ) -> Result<Vec<T>> {
        match tx {
            SqliteTx::Snapshot(snapshot) => {
                let (sql, args) = anonymous(stmt);
                snapshot.read_as(backend, sql, &args, convert).await
            }
            SqliteTx::Write(_) => {
                convert_all(backend, &Self::fetch(tx, backend, stmt).await?, convert)
            }
        }
    }

    async fn execute(
        tx: &mut Self::Tx,
        backend: &'static str,
        stmt: &Statement<'_>,
    ) -> Result<u64> {
        let SqliteTx::Write(tx) = tx else {
            return Err(Error::internal(backend, "a write in a read-only snapshot"));
        };
        let (sql, args) = anonymous(stmt);
        Ok(query(backend, &sql, &args)?
            .execute(&mut **tx)
            .await
            .map_err(|e| Error::from_sqlx(backend, e))?
            .rows_affected())
    }

    async fn commit(tx: Self::Tx, backend: &'static str) -> Result<()> {
        match tx {
            SqliteTx::Write(tx) => tx.commit().await.map_err(|e| Error::from_sqlx(backend, e)),
            // Nothing to keep: its thread ends the read transaction.
            SqliteTx::Snapshot(_) => Ok(()),
        }
    }

    async fn rollback(tx: Self::Tx, backend: &'static str) -> Result<()> {
        match tx {
            SqliteTx::Write(tx) => tx
                .rollback()
                .await
                .map_err(|e| Error::from_sqlx(backend, e)),
            SqliteTx::Snapshot(_) => Ok(()),
        }
    }

    async fn insert_turns(
        tx: &mut Self::Tx,
        turns: &[&PreparedTurn],
        ingest_time: i64,
    ) -> Result<Vec<OwnedRow>> {
        let mut inserted = Vec::with_capacity(turns.len());
        for chunk in turns.chunks(INSERT_CHUNK) {
            let mut stmt = Statement::new(
                "INSERT INTO turns (external_id, tenant, user_id, session_id, role, speaker, \
                 content, event_time, ingest_time, metadata, emotion, importance) ",
            );
            let rows = Self::rows(&mut stmt, PreparedTurn::columns(chunk, ingest_time));
            stmt.push(&rows).push(
                " ON CONFLICT (tenant, user_id, external_id) DO NOTHING \
                 RETURNING seq, tenant, user_id, external_id",
            );
            inserted.extend(Self::fetch(tx, Self::ARCHIVE, &stmt).await?);
        }
        Ok(inserted)
    }

    const GIVEN_IDS: &'static str = "";

    async fn counters(tx: &mut Self::Tx) -> Result<Counters> {
        let stmt = Statement::new(
            "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'turns') AS head, \
             (SELECT seq FROM sqlite_sequence WHERE name = 'summaries') AS summary",
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
        // AUTOINCREMENT hands out ids above sqlite_sequence's value for the table; there
        // is no row until the table's first insert.
        for (table, value) in [("turns", to.head), ("summaries", to.summary)] {
            let ensure = Statement::new(
                "INSERT INTO sqlite_sequence (name, seq) SELECT $1, 0 \
                 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = $1)",
            )
            .arg(table);
            Self::execute(tx, Self::ARCHIVE, &ensure).await?;
            let set = if raise {
                "UPDATE sqlite_sequence SET seq = max(seq, $2) WHERE name = $1"
            } else {
                "UPDATE sqlite_sequence SET seq = $2 WHERE name = $1"
            };
            let stmt = Statement::new(set).arg(table).arg(value);
            Self::execute(tx, Self::ARCHIVE, &stmt).await?;
        }
        Ok(())
    }

    async fn take_seq(tx: &mut Self::Tx) -> Result<i64> {
        // AUTOINCREMENT hands out ids above sqlite_sequence's value for `turns`, so moving
        // it on takes one; there is no row until the first turn is stored.
        let next = Statement::new(
            "UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = 'turns' RETURNING seq",
        );
        if let Some(row) = Self::fetch(tx, Self::ARCHIVE, &next).await?.first() {
            return super::rows::Columns::new(Self::ARCHIVE, row).int("seq");
        }
        let first = Statement::new("INSERT INTO sqlite_sequence (name, seq) VALUES ('turns', 1)");
        Self::execute(tx, Self::ARCHIVE, &first).await?;
        Ok(1)
    }

    async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
        self.snapshots.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::{anonymous, Arg, Statement};

    #[test]
    fn numbered_placeholders_become_anonymous_ones_bound_in_place() {
        let mut stmt = Statement::new("SELECT $1, $2 WHERE a = $1 AND b = '$x' AND c = ")
            .arg(1i64)
            .arg("two");
        stmt.push_bind(3.0);
        let (sql, args) = anonymous(&stmt);
        assert_eq!(sql, "SELECT ?, ? WHERE a = ? AND b = '$x' AND c = ?");
        let args: Vec<Arg> = args.into_iter().cloned().collect();
        assert_eq!(
            args,
            vec![1i64.into(), "two".into(), 1i64.into(), 3.0.into()]
        );
    }
}
