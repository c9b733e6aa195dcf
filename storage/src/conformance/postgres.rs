//! Factories that open the PostgreSQL backends on a database of their own, for the
//! suites.
//!
//! Each factory creates a fresh database `mnemo_test_<unix seconds>_<random>` on the
//! server named by `MNEMO_TEST_POSTGRES_URL` (default [`DEFAULT_TEST_URL`]) and drops it
//! when the factory is dropped, even after a failed test (`DROP DATABASE ... WITH
//! (FORCE)` from a connection of its own). Databases of killed runs are dropped by the
//! next run once they are an hour old, so they never pile up and a run in progress
//! elsewhere is left alone. When the server cannot be reached, the factory panics with a
//! message saying so: a test that needs PostgreSQL fails rather than passing unchecked.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use parking_lot::Mutex;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use super::archive::ArchiveFactory;
use super::graph::GraphFactory;
use crate::archive::sql::PostgresArchive;
use crate::archive::{ArchiveConfig, ArchiveStore};
use crate::clock::SharedClock;
use crate::graph::sql::PostgresGraph;
use crate::graph::{GraphConfig, GraphStore};
use crate::limits::InputLimits;

/// The server the tests use when `MNEMO_TEST_POSTGRES_URL` is not set: the one `.ci/run`
/// starts (its `postgres` role has this password; with trust auth it is ignored).
pub const DEFAULT_TEST_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/test";

/// Prefix of the databases the tests create.
const PREFIX: &str = "mnemo_test_";

/// Databases of other runs older than this are leftovers of a killed run.
const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

static SWEPT: AtomicBool = AtomicBool::new(false);

/// The url of the test server: `MNEMO_TEST_POSTGRES_URL`, else [`DEFAULT_TEST_URL`].
/// Test code only; the engine reads no environment outside its config loader.
pub fn test_server_url() -> String {
    std::env::var("MNEMO_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_TEST_URL.to_string())
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A database of its own on the test server, dropped with this value.
#[derive(Debug)]
pub struct TestDatabase {
    admin: PgConnectOptions,
    name: String,
}

impl TestDatabase {
    /// Creates a fresh database on the server of [`test_server_url`]; panics with a clear
    /// message when the server cannot be reached.
    pub async fn create() -> Self {
        let url = test_server_url();
        let admin = PgConnectOptions::from_str(&url)
            .unwrap_or_else(|e| panic!("MNEMO_TEST_POSTGRES_URL is not a postgres url: {e}"));
        let mut conn = admin.connect().await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {}:{} as {:?} ({e}). These tests need a \
                 running PostgreSQL server: `.ci/run` installs and starts one, or set \
                 MNEMO_TEST_POSTGRES_URL to a server where this role may CREATE DATABASE.",
                admin.get_host(),
                admin.get_port(),
                admin.get_username(),
            )
        });
        if !SWEPT.swap(true, Ordering::SeqCst) {
            sweep_leftovers(&mut conn).await;
        }
        let name = format!(
            "{PREFIX}{}_{}",
            unix_secs(),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let _ = conn.close().await;
        Self { admin, name }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `postgres://` url of this database: the test server's url with the database
    /// name replaced (for configs, which take a url).
    pub fn url(&self) -> String {
        let server = test_server_url();
        let (base, query) = match server.split_once('?') {
            Some((base, query)) => (base.to_string(), format!("?{query}")),
            None => (server, String::new()),
        };
        let authority_end = base.find("://").map_or(0, |i| i + 3);
        let host_part = match base[authority_end..].find('/') {
            Some(slash) => &base[..authority_end + slash],
            None => base.as_str(),
        };
        format!("{host_part}/{}{query}", self.name)
    }

    /// Connection options for this database.
    pub fn options(&self) -> PgConnectOptions {
        self.admin.clone().database(&self.name)
    }
}

/// Drops databases of earlier runs that were killed before they could drop their own.
async fn sweep_leftovers(conn: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'mnemo\\_test\\_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    let now = unix_secs();
    for name in names {
        let created = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|c| now.saturating_sub(c) > LEFTOVER_AGE.as_secs()) {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut *conn)
                .await;
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: drop the
        // database from a thread with a runtime of its own, and wait for it.
        let admin = self.admin.clone();
        let name = self.name.clone();
        let done = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => return Err(e.to_string()),
            };
            runtime.block_on(async move {
                let mut conn = admin.connect().await.map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                Ok(())
            })
        })
        .join();
        if let Ok(Err(e)) | Err(e) = done.map_err(|_| "the thread panicked".to_string()) {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// Opens [`PostgresArchive`]s (and [`PostgresGraph`]s) on one fresh database; each `open`
/// closes the archive the previous one returned and connects a new pool, as a restart
/// would.
#[derive(Debug)]
pub struct PostgresArchiveFactory {
    last: Mutex<Option<PostgresArchive>>,
    database: TestDatabase,
}

impl PostgresArchiveFactory {
    /// A factory over a fresh database on the test server (see [`TestDatabase::create`]).
    pub async fn create() -> Self {
        Self {
            last: Mutex::new(None),
            database: TestDatabase::create().await,
        }
    }

    /// The database this factory opens.
    pub fn database(&self) -> &TestDatabase {
        &self.database
    }

    async fn reopen(&self, limits: InputLimits, clock: SharedClock) -> PostgresArchive {
        let previous = self.last.lock().take();
        if let Some(previous) = previous {
            previous.close().await;
        }
        let config = ArchiveConfig {
            max_connections: 8,
            ..ArchiveConfig::default()
        };
        let archive = PostgresArchive::open_with(self.database.options(), &config, limits, clock)
            .await
            .expect("the archive opens");
        *self.last.lock() = Some(archive.clone());
        archive
    }
}

#[async_trait]
impl ArchiveFactory for PostgresArchiveFactory {
    async fn open(&self, limits: InputLimits, clock: SharedClock) -> Arc<dyn ArchiveStore> {
        Arc::new(self.reopen(limits, clock).await)
    }
}

#[async_trait]
impl GraphFactory for PostgresArchiveFactory {
    async fn open(&self, clock: SharedClock) -> Arc<dyn GraphStore> {
        let archive = self.reopen(InputLimits::default(), clock).await;
        Arc::new(PostgresGraph::beside(&archive, &GraphConfig::default()))
    }
}
