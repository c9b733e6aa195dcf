//! The graph is optional: a graph server that does not answer at start leaves the graph
//! tier down (and says why), not the engine, which stores and answers context without
//! it.

use mnemo_engine::ContextRequest;
use mnemo_storage::graph::neo4j::{BoltServer, Neo4jConfig};
use mnemo_storage::graph::GraphBackend;
use mnemo_tests::{scope, session, turn, within, Backend, Harness, RefusingPort};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_server_unreachable_at_start_leaves_only_the_graph_down() {
    // Held for the whole test: nothing another test starts can answer on it.
    let refusing = RefusingPort::reserve();
    let port = refusing.port();
    let h = Harness::on(Backend::Server, |c| {
        c.storage.graph.backend = GraphBackend::Neo4j;
        c.storage.graph.neo4j = Neo4jConfig {
            url: format!("bolt://127.0.0.1:{port}"),
            server: BoltServer::Falkordb,
            timeout_ms: 2_000,
            ..Neo4jConfig::default()
        };
    })
    .await;
    // Nothing listens on the port; before, the engine refused to start.
    let engine = h.start().await;
    within("the graph tier to fail", engine.wait_failures("graph", 1))
        .await
        .unwrap();
    let graph = engine.health().actor("graph").cloned().expect("graph");
    assert_ne!(graph.state, "up", "{graph:?}");
    assert!(
        graph
            .last_failure
            .as_deref()
            .unwrap_or_default()
            .contains("neo4j"),
        "the failure names the graph server: {graph:?}"
    );
    let alice = scope("acme", "alice");
    engine
        .store(turn(&alice, "s1", "Biscuit the dog loves the beach."))
        .await
        .expect("stored without the graph");
    let answer = engine
        .context(ContextRequest::new(alice, Some(session("s1")), "Biscuit"))
        .await
        .expect("context is answered");
    assert!(
        answer.degraded.contains(&"graph".to_string()),
        "{:?}",
        answer.degraded
    );
    assert_eq!(answer.recent.len(), 1);
    engine.shutdown().await.unwrap();
}
