//! The PostgreSQL connection pool of the archive and the graph tables, telling a server
//! that cannot be reached from a pool whose connections are all busy.
//!
//! sqlx's pool retries a refused connection until its acquire timeout and then reports
//! only that it timed out, whatever the cause. Here a timed-out acquire makes one direct
//! connection attempt: if that fails too the server is unavailable (the tier actor then
//! fails fast and is restarted once the server is back), else the pool was busy (a
//! timeout, retried by the caller).

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use sqlx::{Connection, Postgres, Transaction};

use crate::error::{Error, Result};

/// A pool of connections to one database, shared by the archive and the graph.
#[derive(Debug, Clone)]
pub(crate) struct PgConnections {
    pool: PgPool,
    options: PgConnectOptions,
    /// `host:port/database`, for messages.
    place: String,
    acquire_timeout: Duration,
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
        let attempt = tokio::time::timeout(
            self.acquire_timeout,
            PgConnection::connect_with(&self.options),
        )
        .await;
        match attempt {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                Error::Timeout {
                    backend,
                    message: format!("no database connection became free within {waited} ms"),
                }
            }
            Ok(Err(e)) => {
                Error::unavailable(backend, format!("cannot connect to {}: {e}", self.place))
            }
            Err(_) => Error::unavailable(
                backend,
                format!("{} did not answer within {waited} ms", self.place),
            ),
        }
    }
}
