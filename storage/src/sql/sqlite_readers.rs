//! SQLite's read connections, each on a thread of its own: a read is handed to whichever
//! thread is free with its statement and values, runs there to its last row, and comes
//! back as one answer: the rows, or the values they make (turns, summaries), converted
//! on that thread so that the caller's thread (the actors' one) is spared the parsing. A
//! snapshot (several reads that must see one state of the database) holds one thread
//! for its reads until it is dropped.
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
use super::sqlite::worth_caching;
use super::{convert_all, Arg, Convert};
use crate::error::{Error, Result};

/// Prepared statements each connection keeps (the archive's and the graph's reads, and
/// the lengths of their id lists).
const STATEMENT_CACHE: usize = 128;

/// One read: the statement (placeholders already `?`), its values, and where its rows go.
pub(crate) struct Read {
    backend: &'static str,
    sql: String,
    values: Vec<SqlValue>,
    reply: Box<dyn Reply>,
}

/// Where the rows of a read go.
trait Reply: Send {
    /// Whether the caller has stopped waiting (past its deadline): nobody needs the rows.
    fn is_closed(&self) -> bool;
    /// Sends the rows, or what they make.
    fn send(self: Box<Self>, backend: &'static str, rows: Result<Vec<OwnedRow>>);
}

/// The rows as they are.
impl Reply for oneshot::Sender<Result<Vec<OwnedRow>>> {
    fn is_closed(&self) -> bool {
        oneshot::Sender::is_closed(self)
    }

    fn send(self: Box<Self>, _: &'static str, rows: Result<Vec<OwnedRow>>) {
        let _ = (*self).send(rows);
    }
}

/// Each row made a `T`.
struct Converted<T> {
    convert: Convert<OwnedRow, T>,
    sender: oneshot::Sender<Result<Vec<T>>>,
}

impl<T: Send + 'static> Reply for Converted<T> {
    fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    fn send(self: Box<Self>, backend: &'static str, rows: Result<Vec<OwnedRow>>) {
        let values = rows.and_then(|rows| convert_all(backend, &rows, self.convert));
        let _ = self.sender.send(values);
    }
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

/// Where reads are handed to: the first free reader thread ([`SqliteReaders`]), or a
/// snapshot's thread ([`Snapshot`]).
pub(crate) trait HandOver {
    /// Hands `read` over to a thread.
    fn hand_over(&self, read: Read) -> Result<()>;

    /// Runs `sql` with `args` and returns all its rows.
    async fn read(
        &self,
        backend: &'static str,
        sql: String,
        args: &[&Arg<'_>],
    ) -> Result<Vec<OwnedRow>> {
        let (reply, answer) = oneshot::channel();
        self.hand_over(Read::new(backend, sql, args, Box::new(reply))?)?;
        Read::wait(backend, answer).await
    }

    /// Runs `sql` with `args` and returns what `convert` makes of each row, converted
    /// on the thread that read them.
    async fn read_as<T: Send + 'static>(
        &self,
        backend: &'static str,
        sql: String,
        args: &[&Arg<'_>],
        convert: Convert<OwnedRow, T>,
    ) -> Result<Vec<T>> {
        let (sender, answer) = oneshot::channel();
        let reply = Box::new(Converted { convert, sender });
        self.hand_over(Read::new(backend, sql, args, reply)?)?;
        Read::wait(backend, answer).await
    }
}

impl HandOver for Snapshot {
    fn hand_over(&self, read: Read) -> Result<()> {
        let backend = read.backend;
        self.reads
            .send(read)
            .map_err(|_| Error::unavailable(backend, "the snapshot's reader thread stopped"))
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
    /// Waits for the answer of a read handed over.
    async fn wait<T>(backend: &'static str, answer: oneshot::Receiver<Result<T>>) -> Result<T> {
        answer
            .await
            .map_err(|_| Error::unavailable(backend, "a reader thread stopped"))?
    }

    /// A read of `sql` with `args`, answered through `reply`.
    fn new(
        backend: &'static str,
        sql: String,
        args: &[&Arg<'_>],
        reply: Box<dyn Reply>,
    ) -> Result<Self> {
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
        Ok(Read {
            backend,
            sql,
            values,
            reply,
        })
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

impl HandOver for SqliteReaders {
    fn hand_over(&self, read: Read) -> Result<()> {
        self.send(read.backend, Job::Read(read))
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
    read.reply.send(read.backend, rows);
}

fn run(conn: &Connection, read: &Read) -> rusqlite::Result<Vec<OwnedRow>> {
    // Kept prepared only when of fixed shape (see `worth_caching`).
    let (mut cached, mut fresh);
    let stmt: &mut rusqlite::Statement<'_> = if worth_caching(read.values.len()) {
        cached = conn.prepare_cached(&read.sql)?;
        &mut cached
    } else {
        fresh = conn.prepare(&read.sql)?;
        &mut fresh
    };
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

    /// A row as the test's value, with the thread that made it.
    fn numbered(
        backend: &'static str,
        row: &super::OwnedRow,
    ) -> crate::error::Result<(i64, String)> {
        let n = row
            .int("n")
            .map_err(|e| crate::error::Error::corrupt(backend, e.to_string()))?;
        if n == 13 {
            return Err(crate::error::Error::corrupt(backend, "row 13 is unlucky"));
        }
        let thread = std::thread::current().name().unwrap_or_default().to_owned();
        Ok((n, thread))
    }

    #[tokio::test]
    async fn rows_are_made_values_on_the_reader_thread_and_a_bad_row_fails_the_read() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir).await;
        db.write("test", &Statement::new("CREATE TABLE t (n INTEGER)"))
            .await
            .unwrap();
        for n in 0..20i64 {
            let insert = Statement::new("INSERT INTO t VALUES ($1)").arg(n);
            db.write("test", &insert).await.unwrap();
        }
        let below = |n: i64| Statement::new("SELECT n FROM t WHERE n < $1 ORDER BY n").arg(n);

        let values = db.read_as("test", &below(10), numbered).await.unwrap();
        assert_eq!(
            values.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        for (_, thread) in &values {
            assert!(
                thread.starts_with("mnemo-sqlite-read-"),
                "made on {thread:?}"
            );
        }
        let err = db.read_as("test", &below(20), numbered).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        assert!(err.to_string().contains("unlucky"), "{err}");

        // In a snapshot, on the snapshot's thread.
        let mut snapshot = db.begin_snapshot("test").await.unwrap();
        let values = SqliteDb::fetch_as(&mut snapshot, "test", &below(3), numbered)
            .await
            .unwrap();
        assert_eq!(values.len(), 3);
        for (_, thread) in &values {
            assert!(
                thread.starts_with("mnemo-sqlite-read-"),
                "made on {thread:?}"
            );
        }
        SqliteDb::rollback(snapshot, "test").await.unwrap();
        db.close().await;
    }
}
