//! A factory that opens [`Neo4jGraph`] stores on a Bolt server, for the graph suite.
//!
//! The server is the caller's: the integration tests run the suite on FalkorDB behind
//! the Bolt bridge of `tests/bolt-bridge` (a graph of its own per factory), and on a real
//! Neo4j when `MNEMO_TEST_NEO4J_URL` names one.

use std::sync::Arc;

use async_trait::async_trait;

use super::graph::GraphFactory;
use crate::clock::SharedClock;
use crate::graph::neo4j::{Neo4jConfig, Neo4jGraph};
use crate::graph::{GraphBackend, GraphConfig, GraphStore};

/// Opens [`Neo4jGraph`] stores with fixed connection settings; every open reaches the
/// same data, as a restart would.
#[derive(Debug, Clone)]
pub struct Neo4jGraphFactory {
    settings: Neo4jConfig,
}

impl Neo4jGraphFactory {
    /// A factory connecting with `settings`.
    pub fn new(settings: Neo4jConfig) -> Self {
        Self { settings }
    }

    /// The graph config its stores are opened with.
    pub fn config(&self) -> GraphConfig {
        GraphConfig {
            backend: GraphBackend::Neo4j,
            neo4j: self.settings.clone(),
            ..GraphConfig::default()
        }
    }
}

#[async_trait]
impl GraphFactory for Neo4jGraphFactory {
    async fn open(&self, _clock: SharedClock) -> Arc<dyn GraphStore> {
        let store = Neo4jGraph::open(&self.config())
            .await
            .unwrap_or_else(|e| panic!("the graph server at {} opens: {e}", self.settings.url));
        Arc::new(store)
    }
}
