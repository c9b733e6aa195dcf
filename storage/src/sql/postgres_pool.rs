//! The PostgreSQL connection pool of the archive and the graph tables, telling a server
//! that cannot be reached from a pool whose connections are all busy.
//!
//! sqlx's pool retries a refused connection until its acquire timeout and then reports
//! only that it timed out, whatever the cause. Here a timed-out acquire makes one direct
//! connection attempt: if that fails too the server is unavailable (the tier actor then
//! fails fast and is restarted once the server is back), else the pool was busy (a
//! timeout, retried by the caller).
//!
//! Only one such attempt runs at a time, and its finding serves every caller that timed
//! out within the next acquire timeout: under overload hundreds of callers time out
//! together, and as many direct attempts would exhaust the server's own connection slots
//! and make a busy server look unreachable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use sqlx::{Connection, Postgres, Transaction};

use crate::error::{Error, Result};

/// A direct connection attempt: when it was made, and why it failed (`None`: it
/// connected).
#[derive(Debug)]
struct Probe {
    at: Instant,
    failure: Option<String>,
}

/// A pool of connections to one database, shared by the archive and the graph.
#[derive(Debug, Clone)]
pub(crate) struct PgConnections {
    pool: PgPool,
    options: PgConnectOptions,
    /// `host:port/database`, for messages.
    place: String,
    acquire_timeout: Duration,
    /// The last direct attempt, held while one is made.
    last_probe: Arc<tokio::sync::Mutex<Option<Probe>>>,
    /// Direct attempts made so far.
    #[cfg(test)]
    probes_made: Arc<std::sync::atomic::AtomicUsize>,
}

impl PgConnections {
    /// Wraps `pool`, opened with `options` and `acquire_timeout`.
    pub(crate) fn new(
        pool: PgPool,
        options: PgConnectOptions,
        place: String,
        acquire_timeout: Duration,
    ) -> Self {
        Self {
            pool,
            options,
            place,
            acquire_timeout,
            last_probe: Arc::default(),
            #[cfg(test)]
            probes_made: Arc::default(),
        }
    }

    /// The pool itself (migrations, close).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A connection for `backend`'s statements.
    pub(crate) async fn acquire(&self, backend: &'static str) -> Result<PoolConnection<Postgres>> {
        match self.pool.acquire().await {
            Ok(conn) => Ok(conn),
            Err(sqlx::Error::PoolTimedOut) => Err(self.no_connection(backend).await),
            Err(e) => Err(Error::from_sqlx(backend, e)),
        }
    }

    /// A transaction for `backend`, begun with `BEGIN` or with `statement`.
    pub(crate) async fn begin(
        &self,
        backend: &'static str,
        statement: Option<&'static str>,
    ) -> Result<Transaction<'static, Postgres>> {
        let conn = self.acquire(backend).await?;
        Transaction::begin(conn, statement.map(Into::into))
            .await
            .map_err(|e| Error::from_sqlx(backend, e))
    }

    /// Why no connection came in time: one direct attempt tells an unreachable server
    /// (unavailable) from a busy pool (timeout).
    async fn no_connection(&self, backend: &'static str) -> Error {
        let waited = self.acquire_timeout.as_millis();
        match self.probe().await {
            None => Error::Timeout {
                backend,
                message: format!("no database connection became free within {waited} ms"),
            },
            Some(why) => Error::unavailable(backend, why),
        }
    }

    /// Whether the server takes a new connection (`None`) or why not: the finding of an
    /// attempt made within the last acquire timeout, else of a new one (one at a time).
    async fn probe(&self) -> Option<String> {
        let mut last = self.last_probe.lock().await;
        if let Some(probe) = &*last {
            if probe.at.elapsed() < self.acquire_timeout {
                return probe.failure.clone();
            }
        }
        #[cfg(test)]
        self.probes_made
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let waited = self.acquire_timeout.as_millis();
        let attempt = tokio::time::timeout(
            self.acquire_timeout,
            PgConnection::connect_with(&self.options),
        )
        .await;
        let failure = match attempt {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                None
            }
            Ok(Err(e)) => Some(format!("cannot connect to {}: {e}", self.place)),
            Err(_) => Some(format!("{} did not answer within {waited} ms", self.place)),
        };
        *last = Some(Probe {
            at: Instant::now(),
            failure: failure.clone(),
        });
        failure
    }
}

#[cfg(all(test, feature = "conformance"))]
mod tests {
    use std::str::FromStr;
    use std::time::Duration;

    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

    use super::PgConnections;
    use crate::conformance::postgres::test_server_url;
    use crate::error::ErrorKind;

    /// Hundreds of callers timing out on a busy pool together are all told it is busy,
    /// from one direct attempt: as many attempts would take the server's connection
    /// slots and could make it look unreachable.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_timing_out_together_share_one_direct_attempt() {
        let options = PgConnectOptions::from_str(&test_server_url()).expect("a valid url");
        let timeout = Duration::from_millis(300);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(timeout)
            .connect_with(options.clone())
            .await
            .expect("the test server is reachable (.ci/run starts it)");
        let connections = PgConnections::new(pool, options, "test".into(), timeout);
        let held = connections
            .acquire("archive")
            .await
            .expect("the one connection");
        let callers: Vec<_> = (0..300)
            .map(|_| {
                let connections = connections.clone();
                tokio::spawn(async move { connections.acquire("archive").await.map(drop) })
            })
            .collect();
        for caller in callers {
            let error = caller
                .await
                .expect("the caller ran")
                .expect_err("the pool is busy");
            assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
        }
        let probes = connections
            .probes_made
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(probes >= 1, "a direct attempt was made");
        // Another attempt only once a finding is older than the acquire timeout (a slow
        // machine may spread the callers' timeouts over more than one).
        assert!(probes < 10, "{probes} direct attempts for 300 callers");
        drop(held);
    }
}
