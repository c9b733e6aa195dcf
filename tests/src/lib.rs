//! Mnemo's integration-test crate: the harness that starts whole engines for the tests
//! under `tests/`, and lets them look into the stores afterwards; and servers of a test's
//! own ([`RedisServer`], [`PostgresServer`]) that it can stop and start again.

mod child_log;
mod postgres_server;
mod redis_server;

pub use child_log::ChildLog;
pub use postgres_server::PostgresServer;
pub use redis_server::RedisServer;

use std::future::Future;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mnemo_engine::{Config, Engine};
use mnemo_storage::archive::sql::SqliteArchive;
use mnemo_storage::clock::{ManualClock, SharedClock};
use mnemo_storage::conformance::t0;
use mnemo_storage::index::tantivy::TantivyIndex;
use mnemo_storage::model::{NewTurn, Role, Scope, SessionId};
use tempfile::TempDir;

pub mod graph_server;
pub mod metrics_text;
pub mod served;

/// How long a test waits for an event before calling it lost. Only a guard against a
/// hang: tests wait on events, never on time.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Awaits `fut`, failing the test if the event never comes.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("gave up waiting for {what}"))
}

/// A configuration for tests: embedded backends in `dir`, small batches.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.storage.data_dir = dir.to_owned();
    config.storage.archive.durability = mnemo_storage::archive::Durability::Normal;
    config.storage.index.writer_memory_mb = 16;
    config.storage.index.search_threads = 1;
    config.actors.supervisor.initial_backoff_ms = 5;
    config.actors.supervisor.max_backoff_ms = 50;
    config.actors.context.default_deadline_ms = 2_000;
    config
}

/// Which backends a harness runs its engines on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Everything embedded: memory recent tier, SQLite archive and graph, tantivy.
    Embedded,
    /// The server configuration: Redis recent tier, PostgreSQL archive and graph (a
    /// database and a key prefix of the harness's own), tantivy.
    Server,
    /// The server configuration with the graph on a Bolt graph server through neo4rs:
    /// FalkorDB of the harness's own behind the Bolt bridge.
    Neo4jGraph,
}

/// An engine in a temporary directory, with a manual clock.
pub struct Harness {
    /// The data directory (kept for restarts).
    pub dir: TempDir,
    /// The clock the engine reads.
    pub clock: Arc<ManualClock>,
    /// The configuration it was started with.
    pub config: Config,
    /// The PostgreSQL database of a server harness, dropped with it.
    pub database: Option<mnemo_storage::conformance::postgres::TestDatabase>,
    /// The graph server of a [`Backend::Neo4jGraph`] harness, stopped with it.
    pub graph_server: Option<graph_server::GraphServer>,
}

impl Harness {
    /// A harness whose engines use `tweak`ed test settings.
    pub fn new(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = TempDir::new().expect("a temporary directory");
        let mut config = test_config(dir.path());
        tweak(&mut config);
        Self {
            dir,
            clock: ManualClock::new(t0()),
            config,
            database: None,
            graph_server: None,
        }
    }

    /// A harness on `backend`, with `tweak`ed test settings. A server harness gets a
    /// PostgreSQL database and a Redis key prefix of its own (keys expire within the hour).
    pub async fn on(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        match backend {
            Backend::Embedded => Self::new(tweak),
            Backend::Server => Self::on_server(tweak).await,
            Backend::Neo4jGraph => {
                let server = graph_server::GraphServer::start().await;
                let settings = server.settings("mnemo");
                let mut harness = Self::on_server(|c| {
                    c.storage.graph.backend = mnemo_storage::graph::GraphBackend::Neo4j;
                    c.storage.graph.neo4j = settings;
                    tweak(c);
                })
                .await;
                harness.graph_server = Some(server);
                harness
            }
        }
    }

    async fn on_server(tweak: impl FnOnce(&mut Config)) -> Self {
        let database = mnemo_storage::conformance::postgres::TestDatabase::create().await;
        let url = database.url();
        let name = url.rsplit('/').next().unwrap_or_default().to_owned();
        let mut harness = Self::new(|c| {
            c.storage.archive.url = url;
            c.storage.recent.backend = mnemo_storage::recent::RecentBackend::Redis;
            c.storage.recent.key_prefix = format!("mnemo-test-{name}");
            c.storage.recent.ttl_secs = 3600;
            tweak(c);
        });
        harness.database = Some(database);
        harness
    }

    /// Opens the stores of a stopped engine, to look into them; close them after.
    pub async fn tiers(&self) -> mnemo_storage::Tiers {
        let clock: SharedClock = self.clock.clone();
        mnemo_storage::Tiers::open(&self.config.storage, clock)
            .await
            .expect("the stores open")
    }

    /// Starts an engine on the harness's directory.
    pub async fn start(&self) -> Engine {
        let clock: SharedClock = self.clock.clone();
        Engine::start_with_clock(self.config.clone(), clock)
            .await
            .expect("the engine starts")
    }

    /// Starts an engine with changed settings on the same directory.
    pub async fn start_with(&self, tweak: impl FnOnce(&mut Config)) -> Engine {
        let mut config = self.config.clone();
        tweak(&mut config);
        let clock: SharedClock = self.clock.clone();
        Engine::start_with_clock(config, clock)
            .await
            .expect("the engine starts")
    }

    /// Opens the archive of a stopped engine, to look into it.
    pub async fn archive(&self) -> SqliteArchive {
        let storage = &self.config.storage;
        let clock: SharedClock = self.clock.clone();
        SqliteArchive::open_url(
            &storage.archive.url,
            &storage.data_dir,
            &storage.archive,
            storage.limits.clone(),
            clock,
        )
        .await
        .expect("the archive opens")
    }

    /// Opens the index of a stopped engine, to look into it.
    pub fn index(&self) -> TantivyIndex {
        let storage = &self.config.storage;
        TantivyIndex::open(Some(&storage.resolve(&storage.index.path)), &storage.index)
            .expect("the index opens")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // A server harness removes its Redis keys (its database goes with `database`).
        if self.database.is_some() {
            let recent = &self.config.storage.recent;
            mnemo_storage::conformance::redis::delete_keys(
                &recent.redis_url,
                &format!("{}:*", recent.key_prefix),
            );
        }
    }
}

/// A scope from literals.
pub fn scope(tenant: &str, user: &str) -> Scope {
    Scope::parse(tenant, user).expect("valid ids")
}

/// A user turn in `session`.
pub fn turn(scope: &Scope, session: &str, content: &str) -> NewTurn {
    NewTurn::new(
        scope.clone(),
        SessionId::new(session).expect("valid id"),
        Role::User,
        content,
    )
}

/// A session id from a literal.
pub fn session(id: &str) -> SessionId {
    SessionId::new(id).expect("valid id")
}

/// Runs `promtool check metrics` on `text`. Without promtool the check fails under CI
/// (`CI` set) and is skipped, with a message, elsewhere.
pub fn promtool_check(text: &str) {
    let Some(mut spawned) = promtool(&["check", "metrics"], "check metrics") else {
        return;
    };
    let mut child = spawned
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool: {e}"));
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(text.as_bytes())
        .expect("promtool reads the metrics");
    let out = child.wait_with_output().expect("promtool finishes");
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- metrics ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// Runs `promtool check rules` on a rules file; skipped without promtool, unless `CI` is
/// set.
pub fn promtool_check_rules(path: &str) {
    promtool_on_file(&["check", "rules"], path);
}

/// Runs `promtool test rules` on a rules unit-test file; skipped without promtool,
/// unless `CI` is set.
pub fn promtool_test_rules(path: &str) {
    promtool_on_file(&["test", "rules"], path);
}

/// Runs `promtool ARGS PATH` and fails the test unless it succeeds.
fn promtool_on_file(args: &[&str], path: &str) {
    let what = args.join(" ");
    let mut all = args.to_vec();
    all.push(path);
    let Some(mut command) = promtool(&all, &what) else {
        return;
    };
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool: {e}"));
    assert!(
        out.status.success(),
        "promtool {what} {path} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// A promtool command with `args`, or `None` (the check of `what` skipped) when promtool
/// is not installed; under `CI` a missing promtool fails the test.
fn promtool(args: &[&str], what: &str) -> Option<Command> {
    let installed = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is missing under CI: install the Debian package `prometheus`"
        );
        eprintln!("skipping `promtool {what}`: promtool is not installed");
        return None;
    }
    let mut command = Command::new("promtool");
    command.args(args);
    Some(command)
}

/// A port on 127.0.0.1 that refuses connections: bound, never listening, and held while
/// this lives, so that no other test's [`free_port`] is given it meanwhile (a server
/// another test started there would answer where a test expects nothing to).
#[derive(Debug)]
pub struct RefusingPort {
    socket: socket2::Socket,
    port: u16,
}

impl RefusingPort {
    /// Reserves a free port.
    pub fn reserve() -> Self {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("a socket");
        socket
            .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("a free port");
        let port = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .expect("a bound port")
            .port();
        Self { socket, port }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Frees the port for a server to start on, and returns it.
    pub fn release(self) -> u16 {
        drop(self.socket);
        self.port
    }
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
