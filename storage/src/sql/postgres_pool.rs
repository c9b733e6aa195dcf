//! The PostgreSQL connections of the archive and the graph tables: a pool of our own.
//!
//! Why not sqlx's pool: it pings a connection when it is handed out and again, always,
//! when it is given back (holding it for that round trip), so a one-statement read cost
//! three round trips to the server, and the context path is bound by its round trips,
//! not by CPU (BENCHMARKS.md, "The server configuration, measured again").
//!
//! Here a connection goes back to the idle list as it is, and is checked with a ping
//! only when it has sat idle for a while (the server may have closed it meanwhile).
//! One that turns out closed anyway (the server restarted within that while) empties
//! the idle list, whose connections went with it, and the statement runs once more on
//! a new connection: it never reached a live server. A
//! statement cut short (its caller gave up at a deadline) leaves replies on the wire:
//! that connection is pinged off the caller's path, which reads them, and only then
//! goes back. A connection whose socket failed is closed, and so is one given back
//! inside a transaction that was neither committed nor rolled back.
//!
//! A caller that finds every connection taken waits up to the acquire timeout and is
//! then told the pool is busy (a timeout, retried by the caller); one whose new
//! connection cannot be opened is told the server is unavailable.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::{
    PgArguments, PgConnectOptions, PgConnection, PgDatabaseError, PgRow, PgSeverity,
};
use sqlx::query::Query;
use sqlx::{Connection, Executor, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// How long a connection may sit idle before it is pinged when handed out again.
const IDLE_CHECK_AFTER: Duration = Duration::from_secs(1);

/// An idle connection, and since when.
struct Idle {
    conn: PgConnection,
    since: Instant,
}

/// What the handles of one pool share.
struct Shared {
    options: PgConnectOptions,
    /// `host:port/database`, for messages.
    place: String,
    acquire_timeout: Duration,
    /// After how long idle a connection is pinged before use.
    idle_check_after: Duration,
    /// One per connection the pool may hold, idle or handed out.
    permits: Arc<Semaphore>,
    /// Connections not handed out; the most recently used last.
    idle: Mutex<Vec<Idle>>,
    closed: AtomicBool,
    /// Connections opened so far.
    #[cfg(test)]
    opened: std::sync::atomic::AtomicUsize,
}

/// A pool of at most `size` connections to one database.
#[derive(Clone)]
pub(crate) struct PgConnections {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PgConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConnections")
            .field("place", &self.shared.place)
            .field("available", &self.shared.permits.available_permits())
            .finish()
    }
}

impl PgConnections {
    /// A pool of at most `size` connections opened with `options`; none is opened yet.
    pub(crate) fn new(
        options: PgConnectOptions,
        place: String,
        size: u32,
        acquire_timeout: Duration,
    ) -> Self {
        Self::with_idle_check(options, place, size, acquire_timeout, IDLE_CHECK_AFTER)
    }

    fn with_idle_check(
        options: PgConnectOptions,
        place: String,
        size: u32,
        acquire_timeout: Duration,
        idle_check_after: Duration,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                options,
                place,
                acquire_timeout,
                idle_check_after,
                permits: Arc::new(Semaphore::new(size.max(1) as usize)),
                idle: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
                #[cfg(test)]
                opened: Default::default(),
            }),
        }
    }

    /// A connection for `backend`'s statements: an idle one, else a new one.
    pub(crate) async fn acquire(&self, backend: &'static str) -> Result<PooledConnection> {
        let shared = &self.shared;
        let waited = shared.acquire_timeout.as_millis();
        let permit = match tokio::time::timeout(
            shared.acquire_timeout,
            shared.permits.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(Error::unavailable(backend, "the pool is closed")),
            Err(_) => {
                return Err(Error::Timeout {
                    backend,
                    message: format!("no database connection became free within {waited} ms"),
                })
            }
        };
        while let Some(idle) = self.take_idle() {
            let mut conn = idle.conn;
            // A connection idle for a while may have been closed by the server.
            if idle.since.elapsed() < shared.idle_check_after || self.ping(&mut conn).await {
                return Ok(self.hand_out(conn, permit, true));
            }
        }
        let conn = self.open(backend).await?;
        Ok(self.hand_out(conn, permit, false))
    }

    /// Runs the query `make` builds on a connection of the pool and returns its rows;
    /// once more on a new connection when the one taken from the idle list turns out
    /// closed. Only for statements that may run twice (reads, idempotent writes): a
    /// connection that broke mid-statement cannot say whether the server ran it.
    pub(crate) async fn fetch_all<'q>(
        &self,
        backend: &'static str,
        make: impl Fn() -> Query<'q, Postgres, PgArguments>,
    ) -> Result<Vec<PgRow>> {
        let mut conn = self.acquire(backend).await?;
        match conn.fetch_all(backend, make()).await {
            Err(_) if conn.was_stale() => {
                drop(conn);
                self.acquire(backend)
                    .await?
                    .fetch_all(backend, make())
                    .await
            }
            result => result,
        }
    }

    /// A transaction for `backend`, begun with `BEGIN` or with `statement`.
    pub(crate) async fn begin(
        &self,
        backend: &'static str,
        statement: Option<&'static str>,
    ) -> Result<PgTransaction> {
        let statement = statement.unwrap_or("BEGIN");
        let mut conn = self.acquire(backend).await?;
        match conn.execute_text(backend, statement).await {
            Ok(()) => {}
            Err(_) if conn.was_stale() => {
                drop(conn);
                conn = self.acquire(backend).await?;
                conn.execute_text(backend, statement).await?;
            }
            Err(e) => return Err(e),
        }
        Ok(PgTransaction { conn, open: true })
    }

    /// Refuses new callers and closes the idle connections; those handed out are
    /// closed when given back.
    pub(crate) async fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.permits.close();
        let idle: Vec<Idle> = std::mem::take(&mut *self.lock_idle());
        for idle in idle {
            let _ = idle.conn.close().await;
        }
    }

    fn take_idle(&self) -> Option<Idle> {
        self.lock_idle().pop()
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // The list stays whole whatever a panicking holder was doing: push and pop only.
        self.shared
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn hand_out(
        &self,
        conn: PgConnection,
        permit: OwnedSemaphorePermit,
        from_idle: bool,
    ) -> PooledConnection {
        PooledConnection {
            conn: Some(conn),
            pool: self.clone(),
            from_idle,
            reusable: true,
            in_flight: false,
            permit: Some(permit),
        }
    }

    /// A new connection, or why the server cannot give one.
    async fn open(&self, backend: &'static str) -> Result<PgConnection> {
        let shared = &self.shared;
        let waited = shared.acquire_timeout.as_millis();
        #[cfg(test)]
        shared.opened.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(
            shared.acquire_timeout,
            PgConnection::connect_with(&shared.options),
        )
        .await
        {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(Error::unavailable(
                backend,
                format!("cannot connect to {}: {e}", shared.place),
            )),
            Err(_) => Err(Error::unavailable(
                backend,
                format!("{} did not answer within {waited} ms", shared.place),
            )),
        }
    }

    /// Whether `conn` answers a ping within the acquire timeout (reading whatever a
    /// statement cut short left on the wire).
    async fn ping(&self, conn: &mut PgConnection) -> bool {
        matches!(
            tokio::time::timeout(self.shared.acquire_timeout, conn.ping()).await,
            Ok(Ok(()))
        )
    }

    /// Closes the idle connections: one of them was found closed by the server, which
    /// closes them all when it restarts.
    fn forget_idle(&self) {
        let closed = std::mem::take(&mut *self.lock_idle());
        drop(closed);
    }

    fn give_back(&self, conn: PgConnection) {
        if self.shared.closed.load(Ordering::Acquire) {
            return;
        }
        self.lock_idle().push(Idle {
            conn,
            since: Instant::now(),
        });
    }
}

/// A connection handed out by [`PgConnections`]; given back when dropped.
pub(crate) struct PooledConnection {
    conn: Option<PgConnection>,
    pool: PgConnections,
    /// Whether it was taken from the idle list rather than opened for this caller.
    from_idle: bool,
    /// False once the connection must not serve another caller.
    reusable: bool,
    /// Whether a statement was sent and its replies not all read (true when the caller
    /// dropped it mid-statement).
    in_flight: bool,
    /// Released once the connection is back in the idle list or closed.
    permit: Option<OwnedSemaphorePermit>,
}

impl PooledConnection {
    /// Runs `query` and returns its rows.
    pub(crate) async fn fetch_all(
        &mut self,
        backend: &'static str,
        query: Query<'_, Postgres, PgArguments>,
    ) -> Result<Vec<PgRow>> {
        self.in_flight = true;
        let result = query.fetch_all(&mut **self).await;
        self.in_flight = false;
        result.map_err(|e| self.failed(backend, e))
    }

    /// Runs `query` and returns how many rows it changed.
    pub(crate) async fn execute_query(
        &mut self,
        backend: &'static str,
        query: Query<'_, Postgres, PgArguments>,
    ) -> Result<u64> {
        self.in_flight = true;
        let result = query.execute(&mut **self).await;
        self.in_flight = false;
        Ok(result.map_err(|e| self.failed(backend, e))?.rows_affected())
    }

    /// Runs `sql`, statements without parameters (one round trip, nothing prepared).
    pub(crate) async fn execute_text(&mut self, backend: &'static str, sql: &str) -> Result<()> {
        self.in_flight = true;
        let result = (&mut **self).execute(sql).await;
        self.in_flight = false;
        result.map(drop).map_err(|e| self.failed(backend, e))
    }

    /// Whether the connection came from the idle list and turned out closed.
    fn was_stale(&self) -> bool {
        self.from_idle && !self.reusable
    }

    /// `e` as this crate's error; a connection that broke is not reused, and neither
    /// are the idle ones (see the module docs).
    fn failed(&mut self, backend: &'static str, e: sqlx::Error) -> Error {
        if breaks_connection(&e) {
            self.reusable = false;
            self.pool.forget_idle();
        }
        Error::from_sqlx(backend, e)
    }
}

/// Whether `e` leaves the connection unusable: its socket failed, or the server ended
/// the session (a FATAL error, e.g. on shutdown). A statement's error or a row that did
/// not decode leaves it in step: its remaining replies are read before the next one.
fn breaks_connection(e: &sqlx::Error) -> bool {
    use sqlx::Error as E;
    match e {
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::WorkerCrashed | E::Configuration(_) => true,
        E::Database(db) => db
            .try_downcast_ref::<PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic)),
        _ => false,
    }
}

impl Deref for PooledConnection {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.conn
            .as_ref()
            .expect("present until the connection is dropped")
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn
            .as_mut()
            .expect("present until the connection is dropped")
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let (Some(mut conn), Some(permit)) = (self.conn.take(), self.permit.take()) else {
            return;
        };
        if !self.reusable {
            return;
        }
        if !self.in_flight {
            self.pool.give_back(conn);
            return;
        }
        // Cut short: the ping reads the statement's remaining replies before anyone else
        // gets the connection, off the caller's path; the permit is held until then so
        // the pool never holds more connections than its size. Outside a runtime (never
        // in the engine) the connection is closed instead.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pool = self.pool.clone();
            runtime.spawn(async move {
                if pool.ping(&mut conn).await {
                    pool.give_back(conn);
                }
                drop(permit);
            });
        }
    }
}

/// A transaction on one connection: `COMMIT` or `ROLLBACK` ends it. Dropped before
/// either (its caller failed or gave up), its connection is closed: the server then
/// rolls the transaction back.
pub struct PgTransaction {
    conn: PooledConnection,
    open: bool,
}

impl PgTransaction {
    /// Runs `query` in the transaction and returns its rows.
    pub(crate) async fn fetch_all(
        &mut self,
        backend: &'static str,
        query: Query<'_, Postgres, PgArguments>,
    ) -> Result<Vec<PgRow>> {
        self.conn.fetch_all(backend, query).await
    }

    /// Runs `query` in the transaction and returns how many rows it changed.
    pub(crate) async fn execute_query(
        &mut self,
        backend: &'static str,
        query: Query<'_, Postgres, PgArguments>,
    ) -> Result<u64> {
        self.conn.execute_query(backend, query).await
    }

    /// Commits the transaction.
    pub(crate) async fn commit(self, backend: &'static str) -> Result<()> {
        self.end(backend, "COMMIT").await
    }

    /// Rolls the transaction back.
    pub(crate) async fn rollback(self, backend: &'static str) -> Result<()> {
        self.end(backend, "ROLLBACK").await
    }

    async fn end(mut self, backend: &'static str, statement: &'static str) -> Result<()> {
        self.conn.execute_text(backend, statement).await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for PgTransaction {
    fn drop(&mut self) {
        if self.open {
            self.conn.reusable = false;
        }
    }
}

#[cfg(all(test, feature = "conformance"))]
mod tests {
    use std::str::FromStr;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use sqlx::postgres::PgConnectOptions;
    use sqlx::{Executor, Row};

    use super::{PgConnections, PooledConnection};
    use crate::conformance::postgres::test_server_url;
    use crate::error::ErrorKind;

    fn pool(size: u32, acquire_timeout: Duration, idle_check_after: Duration) -> PgConnections {
        let options = PgConnectOptions::from_str(&test_server_url()).expect("a valid url");
        PgConnections::with_idle_check(
            options,
            "test".into(),
            size,
            acquire_timeout,
            idle_check_after,
        )
    }

    async fn backend_pid(pool: &PgConnections) -> i32 {
        pid_of(&mut pool.acquire("test").await.expect("a connection")).await
    }

    async fn pid_of(conn: &mut PooledConnection) -> i32 {
        sqlx::query("SELECT pg_backend_pid() AS pid")
            .fetch_one(&mut **conn)
            .await
            .expect("the server answers")
            .get("pid")
    }

    /// Callers finding every connection taken are told the pool is busy, and no
    /// connection is opened for them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_finding_every_connection_taken_are_told_it_is_busy() {
        let pool = pool(1, Duration::from_millis(300), Duration::from_secs(60));
        let held = pool.acquire("archive").await.expect("the one connection");
        let callers: Vec<_> = (0..300)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.acquire("archive").await.map(drop) })
            })
            .collect();
        for caller in callers {
            let error = caller
                .await
                .expect("the caller ran")
                .expect_err("the pool is busy");
            assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
            assert!(error.to_string().contains("300 ms"), "{error}");
        }
        assert_eq!(pool.shared.opened.load(Ordering::Relaxed), 1);
        drop(held);
        pool.acquire("archive").await.expect("free again");
    }

    /// A server that cannot be reached is unavailable, not busy.
    #[tokio::test]
    async fn an_unreachable_server_is_unavailable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("its address").port();
        drop(listener);
        let options = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(port)
            .username("postgres");
        let pool = PgConnections::new(options, "nowhere".into(), 2, Duration::from_secs(2));
        let error = pool
            .acquire("archive")
            .await
            .map(drop)
            .expect_err("no server");
        assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
        assert!(
            error.to_string().contains("cannot connect to nowhere"),
            "{error}"
        );
    }

    /// Connections are used again as they are, and one whose statement was cut short
    /// answers its next statement correctly.
    #[tokio::test]
    async fn a_connection_is_reused_even_after_a_statement_cut_short() {
        let pool = pool(1, Duration::from_secs(5), Duration::from_secs(60));
        let first = backend_pid(&pool).await;
        assert_eq!(backend_pid(&pool).await, first, "the same connection again");
        {
            let mut conn = pool.acquire("test").await.expect("the connection");
            let cut = tokio::time::timeout(
                Duration::from_millis(20),
                conn.fetch_all("test", sqlx::query("SELECT pg_sleep(0.3), 7 AS n")),
            )
            .await;
            assert!(cut.is_err(), "the statement was cut short");
        }
        let mut conn = pool.acquire("test").await.expect("the connection");
        let n: i32 = sqlx::query("SELECT 42 AS n")
            .fetch_one(&mut *conn)
            .await
            .expect("the next statement runs")
            .get("n");
        assert_eq!(
            n, 42,
            "the answer of this statement, not of the one cut short"
        );
        drop(conn);
        assert_eq!(backend_pid(&pool).await, first);
        assert_eq!(pool.shared.opened.load(Ordering::Relaxed), 1);
    }

    /// A transaction dropped before it ended is rolled back and its connection is not
    /// handed out again; one that ended leaves its connection for the next caller.
    #[tokio::test]
    async fn a_transaction_dropped_unfinished_leaves_nothing_behind() {
        let pool = pool(2, Duration::from_secs(5), Duration::from_secs(60));
        let table = format!("pool_tx_{}", std::process::id());
        let mut conn = pool.acquire("test").await.expect("a connection");
        conn.execute(
            format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (n INT)").as_str(),
        )
        .await
        .expect("the table");
        drop(conn);
        let count = |pool: PgConnections, table: String| async move {
            let mut conn = pool.acquire("test").await.expect("a connection");
            let n: i64 = sqlx::query(&format!("SELECT count(*) AS n FROM {table}"))
                .fetch_one(&mut *conn)
                .await
                .expect("the count")
                .get("n");
            n
        };

        let insert = |n: i32| format!("INSERT INTO {table} VALUES ({n})");
        let mut tx = pool.begin("test", None).await.expect("a transaction");
        tx.execute_query("test", sqlx::query(&insert(1)))
            .await
            .expect("the insert");
        drop(tx);
        assert_eq!(count(pool.clone(), table.clone()).await, 0, "rolled back");

        let mut tx = pool.begin("test", None).await.expect("a transaction");
        tx.execute_query("test", sqlx::query(&insert(2)))
            .await
            .expect("the insert");
        tx.commit("test").await.expect("the commit");
        assert_eq!(count(pool.clone(), table.clone()).await, 1, "committed");
        // Nothing of an open transaction follows a connection back into the pool: a
        // statement outside one commits by itself.
        let mut conn = pool.acquire("test").await.expect("a connection");
        conn.execute_query("test", sqlx::query(&insert(3)))
            .await
            .expect("the insert");
        drop(conn);
        assert_eq!(count(pool.clone(), table.clone()).await, 2);
        let mut conn = pool.acquire("test").await.expect("a connection");
        conn.execute(format!("DROP TABLE {table}").as_str())
            .await
            .expect("dropped");
    }

    /// Ends the session of server process `pid`, as a restart of the server does.
    async fn terminate(pid: i32) {
        let killer = pool(1, Duration::from_secs(5), Duration::ZERO);
        let mut conn = killer.acquire("test").await.expect("a connection");
        // Waits (up to 5 s) until the process has ended.
        sqlx::query("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .execute(&mut *conn)
            .await
            .expect("terminated");
    }

    /// A connection the server closed while it sat idle for a while is replaced when
    /// handed out (the ping finds it closed).
    #[tokio::test]
    async fn a_long_idle_connection_the_server_closed_is_replaced() {
        let pool = pool(2, Duration::from_secs(5), Duration::ZERO);
        let first = backend_pid(&pool).await;
        terminate(first).await;
        let next = backend_pid(&pool).await;
        assert_ne!(next, first, "a new connection");
        assert_eq!(pool.shared.opened.load(Ordering::Relaxed), 2);
    }

    /// A connection the server closed moments after it went idle (no ping yet) fails
    /// its statement; the statement runs again on a new connection, the caller sees
    /// its answer, and the other idle connections, closed too by a restart, go.
    #[tokio::test]
    async fn a_statement_on_a_connection_closed_while_idle_runs_again_on_a_new_one() {
        let pool = pool(3, Duration::from_secs(5), Duration::from_secs(3600));
        let (mut a, mut b) = (
            pool.acquire("test").await.expect("a"),
            pool.acquire("test").await.expect("b"),
        );
        let pids = [pid_of(&mut a).await, pid_of(&mut b).await];
        drop((a, b));
        for pid in pids {
            terminate(pid).await;
        }
        let rows = pool
            .fetch_all("test", || sqlx::query("SELECT 5 AS n"))
            .await
            .expect("answered on a new connection");
        assert_eq!(rows[0].get::<i32, _>("n"), 5);
        assert_eq!(pool.shared.opened.load(Ordering::Relaxed), 3, "one new");
        let tx = pool.begin("test", None).await.expect("a transaction");
        tx.commit("test").await.expect("committed");
        assert_eq!(
            pool.shared.opened.load(Ordering::Relaxed),
            3,
            "the new connection serves again; the other closed one was not handed out"
        );
        // A statement's own error is the caller's: not run again.
        let error = pool
            .fetch_all("test", || sqlx::query("SELECT no_such_column"))
            .await
            .expect_err("a bad statement");
        assert_eq!(error.kind(), ErrorKind::Internal, "{error}");
        assert_eq!(pool.shared.opened.load(Ordering::Relaxed), 3);
    }

    /// A closed pool refuses new callers as unavailable.
    #[tokio::test]
    async fn a_closed_pool_refuses_callers() {
        let pool = pool(2, Duration::from_secs(5), Duration::from_secs(60));
        backend_pid(&pool).await;
        pool.close().await;
        let error = pool.acquire("archive").await.map(drop).expect_err("closed");
        assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    }
}
