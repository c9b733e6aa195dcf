//! SQLite's read connections, each on a thread of its own: a read is handed to whichever
//! thread is free with its statement and values, runs there to its last row, and comes
//! back as one answer. A snapshot (several reads that must see one state of the
//! database) holds one thread for its reads until it is dropped.
//!
//! Why not sqlx's pool for these: its SQLite driver sends each row across threads on a
//! channel of its own, and pings the connection when it goes back to the pool, so a read
//! of 30 rows woke the caller's thread dozens of times; thread switching was the largest
//! share of an uncached context request's CPU (BENCHMARKS.md). Writes stay on sqlx.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::owned_row::{OwnedRow, Value};
use super::Arg;
use crate::error::{Error, Result};

/// Prepared statements each connection keeps (the archive's and the graph's reads, and
/// the lengths of their id lists).
const STATEMENT_CACHE: usize = 128;

/// One read: the statement (placeholders already `?`), its values, and where its rows go.
struct Read {
    backend: &'static str,
    sql: String,
    values: Vec<SqlValue>,
    reply: oneshot::Sender<Result<Vec<OwnedRow>>>,
}

/// What a reader thread is given.
enum Job {
    Read(Read),
    /// Serve the reads of one snapshot, in one read transaction, until its sender is
    /// dropped.
    Snapshot {
        backend: &'static str,
        reads: Receiver<Read>,
        begun: oneshot::Sender<Result<()>>,
    },
}

/// Reads that all see one state of the database; dropping it ends the read transaction.
#[derive(Debug)]
pub struct Snapshot {
    reads: Sender<Read>,
}

impl Snapshot {
    /// Runs `sql` with `args` in the snapshot and returns all its rows.
    pub(crate) async fn read(
        &self,
        backend: &'static str,
        sql: String,
        args: &[&Arg<'_>],
    ) -> Result<Vec<OwnedRow>> {
        Read::run(backend, sql, args, |read| {
            self.reads
                .send(read)
                .map_err(|_| Error::unavailable(backend, "the snapshot's reader thread stopped"))
        })
        .await
    }
}

/// The reader threads and the queue they take reads from.
#[derive(Debug)]
pub(crate) struct SqliteReaders {
    /// `None` once closed.
    queue: Mutex<Option<Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Read {
    /// Reads `sql` with `args`: hands the read over with `send`, then waits for its rows.
    async fn run(
        backend: &'static str,
        sql: String,
        args: &[&Arg<'_>],
        send: impl FnOnce(Read) -> Result<()>,
    ) -> Result<Vec<OwnedRow>> {
        let (read, answer) = Read::new(backend, sql, args)?;
        send(read)?;
        answer
            .await
            .map_err(|_| Error::unavailable(backend, "a reader thread stopped"))?
    }

    /// A read of `sql` with `args`, and where its answer will come.
    fn new(
        backend: &'static str,
        sql: String,
        args: &[&Arg<'_>],
    ) -> Result<(Self, oneshot::Receiver<Result<Vec<OwnedRow>>>)> {
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            values.push(match arg {
                Arg::Int(v) => v.map_or(SqlValue::Null, SqlValue::Integer),
                Arg::Float(v) => v.map_or(SqlValue::Null, SqlValue::Real),
                Arg::Text(v) => v
                    .as_ref()
                    .map_or(SqlValue::Null, |t| SqlValue::Text(t.to_string())),
                array => {
                    return Err(Error::internal(
                        backend,
                        format!("SQLite binds no arrays (a list is written as values): {array:?}"),
                    ))
                }
            });
        }
        let (reply, answer) = oneshot::channel();
        let read = Read {
            backend,
            sql,
            values,
            reply,
        };
        Ok((read, answer))
    }
}

impl std::fmt::Debug for Read {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Read").field("sql", &self.sql).finish()
    }
}

impl SqliteReaders {
    /// Opens `connections` read-only connections to the database at `path` (which must
    /// exist), each on its own thread.
    pub(crate) fn open(
        backend: &'static str,
        path: &Path,
        connections: usize,
        busy_timeout: Duration,
    ) -> Result<Self> {
        let (queue, reads) = crossbeam_channel::unbounded::<Job>();
        let mut threads = Vec::new();
        for n in 0..connections.max(1) {
            let conn = open_reader(backend, path, busy_timeout)?;
            let reads = reads.clone();
            let thread = std::thread::Builder::new()
                .name(format!("mnemo-sqlite-read-{n}"))
                .spawn(move || serve(conn, reads))
                .map_err(|e| {
                    Error::unavailable(backend, format!("cannot start a reader thread: {e}"))
                })?;
            threads.push(thread);
        }
        Ok(Self {
            queue: Mutex::new(Some(queue)),
            threads: Mutex::new(threads),
        })
    }

    /// Runs `sql` with `args` on the first free reader and returns all its rows.
    pub(crate) async fn read(
        &self,
        backend: &'static str,
        sql: String,
        args: &[&Arg<'_>],
    ) -> Result<Vec<OwnedRow>> {
        Read::run(backend, sql, args, |read| {
            self.send(backend, Job::Read(read))
        })
        .await
    }

    /// Begins a snapshot on the first free reader, which serves only it until it is
    /// dropped.
    pub(crate) async fn snapshot(&self, backend: &'static str) -> Result<Snapshot> {
        let (reads, taken) = crossbeam_channel::unbounded();
        let (begun, is_begun) = oneshot::channel();
        self.send(
            backend,
            Job::Snapshot {
                backend,
                reads: taken,
                begun,
            },
        )?;
        is_begun
            .await
            .map_err(|_| Error::unavailable(backend, "a reader thread stopped"))??;
        Ok(Snapshot { reads })
    }

    fn send(&self, backend: &'static str, job: Job) -> Result<()> {
        match &*self.queue.lock() {
            Some(queue) if queue.send(job).is_ok() => Ok(()),
            _ => Err(Error::unavailable(backend, "the database is closed")),
        }
    }

    /// Stops taking reads, lets the threads finish the reads queued, and waits for them.
    pub(crate) async fn close(&self) {
        self.queue.lock().take();
        let threads = std::mem::take(&mut *self.threads.lock());
        if threads.is_empty() {
            return;
        }
        // Joining blocks; the threads end once the queue is empty.
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

fn open_reader(backend: &'static str, path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::from_rusqlite(backend, e))?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| Error::from_rusqlite(backend, e))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// A reader thread: takes jobs until the queue is closed and empty.
fn serve(conn: Connection, jobs: Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Read(read) => answer(&conn, read),
            Job::Snapshot {
                backend,
                reads,
                begun,
            } => {
                // A deferred read transaction: its first read fixes the snapshot (WAL).
                if let Err(e) = conn.execute_batch("BEGIN") {
                    let _ = begun.send(Err(Error::from_rusqlite(backend, e)));
                    continue;
                }
                let _ = begun.send(Ok(()));
                while let Ok(read) = reads.recv() {
                    answer(&conn, read);
                }
                if let Err(e) = conn.execute_batch("ROLLBACK") {
                    tracing::warn!(backend, error = %e, "ending a read snapshot failed");
                }
            }
        }
    }
}

/// Runs `read` and sends its rows, unless its caller has stopped waiting.
fn answer(conn: &Connection, read: Read) {
    // A caller past its deadline has stopped waiting: nobody needs the rows.
    if read.reply.is_closed() {
        return;
    }
    let rows = run(conn, &read).map_err(|e| Error::from_rusqlite(read.backend, e));
    let _ = read.reply.send(rows);
}

fn run(conn: &Connection, read: &Read) -> rusqlite::Result<Vec<OwnedRow>> {
    let mut stmt = conn.prepare_cached(&read.sql)?;
    for (i, value) in read.values.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, value)?;
    }
    let columns: Arc<[String]> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let width = columns.len();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(v) => Value::Int(v),
                ValueRef::Real(v) => Value::Float(v),
                ValueRef::Text(t) => Value::Text(
                    std::str::from_utf8(t)
                        .map_err(rusqlite::Error::Utf8Error)?
                        .to_owned(),
                ),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        out.push(OwnedRow::new(columns.clone(), values));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::rows::SqlRow;
    use super::super::sqlite::{SqliteDb, SqliteSchema};
    use super::super::{Dialect, Statement};
    use crate::archive::ArchiveConfig;
    use crate::error::ErrorKind;

    async fn open(dir: &tempfile::TempDir) -> SqliteDb {
        let path = dir.path().join("a.db");
        SqliteDb::open(&path, &ArchiveConfig::default(), SqliteSchema::Archive)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn reads_see_committed_writes_whole_and_fail_clearly_once_closed() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir).await;
        let create = Statement::new("CREATE TABLE t (n INTEGER, x REAL, s TEXT)");
        db.write("test", &create).await.unwrap();
        for n in 0..300i64 {
            let insert = Statement::new("INSERT INTO t VALUES ($1, $2, $3)")
                .arg(n)
                .arg(n as f64 / 2.0)
                .arg(if n % 2 == 0 {
                    Some(format!("row {n}"))
                } else {
                    None
                });
            db.write("test", &insert).await.unwrap();
        }
        let select = Statement::new("SELECT n, x, s FROM t WHERE n >= $1 ORDER BY n").arg(100i64);
        let rows = db.read("test", &select).await.unwrap();
        assert_eq!(rows.len(), 200);
        assert_eq!(rows[0].int("n").unwrap(), 100);
        assert_eq!(rows[1].float("x").unwrap(), 50.5);
        assert_eq!(rows[0].opt_text("s").unwrap().as_deref(), Some("row 100"));
        assert_eq!(rows[1].opt_text("s").unwrap(), None);

        let wrong = Statement::new("SELECT nope FROM t");
        let err = db.read("test", &wrong).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
        assert!(err.to_string().contains("nope"), "{err}");

        db.close().await;
        let err = db.read("test", &select).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("closed"), "{err}");
    }

    #[tokio::test]
    async fn a_snapshot_sees_one_state_while_later_reads_see_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir).await;
        db.write("test", &Statement::new("CREATE TABLE t (n INTEGER)"))
            .await
            .unwrap();
        let insert = |n: i64| Statement::new("INSERT INTO t VALUES ($1)").arg(n);
        let count = Statement::new("SELECT count(*) AS c FROM t");
        db.write("test", &insert(1)).await.unwrap();

        let mut snapshot = db.begin_snapshot("test").await.unwrap();
        let first = SqliteDb::fetch(&mut snapshot, "test", &count)
            .await
            .unwrap();
        assert_eq!(first[0].int("c").unwrap(), 1);
        db.write("test", &insert(2)).await.unwrap();
        let again = SqliteDb::fetch(&mut snapshot, "test", &count)
            .await
            .unwrap();
        assert_eq!(
            again[0].int("c").unwrap(),
            1,
            "the snapshot keeps its state"
        );
        let outside = db.read("test", &count).await.unwrap();
        assert_eq!(outside[0].int("c").unwrap(), 2);
        let err = SqliteDb::execute(&mut snapshot, "test", &insert(3))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
        SqliteDb::commit(snapshot, "test").await.unwrap();

        // Its thread is free again: as many snapshots as threads, one after another.
        for _ in 0..(ArchiveConfig::default().read_connections * 3) {
            let mut snapshot = db.begin_snapshot("test").await.unwrap();
            let rows = SqliteDb::fetch(&mut snapshot, "test", &count)
                .await
                .unwrap();
            assert_eq!(rows[0].int("c").unwrap(), 2);
            SqliteDb::rollback(snapshot, "test").await.unwrap();
        }
        db.close().await;
    }
}
