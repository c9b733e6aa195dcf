//! Whole engines on the server configuration of `config.server.toml`: the recent tier on
//! Redis, the archive and the graph tables on PostgreSQL (a database of its own per test; see
//! `mnemo_storage::conformance::postgres`). Fails, saying so, without a PostgreSQL server.

use mnemo_engine::{Config, ContextRequest};
use mnemo_storage::archive::HistoryPage;
use mnemo_storage::conformance::postgres::TestDatabase;
use mnemo_storage::index::SearchQuery;
use mnemo_tests::{scope, session, turn, within, Harness};

/// The shipped server example, pointed at `db`; the index stays in the test's directory.
fn server_harness(db: &TestDatabase) -> Harness {
    let server = Config::from_toml(include_str!("../../config.server.toml"))
        .expect("config.server.toml is a valid configuration");
    assert!(server.storage.archive.url.starts_with("postgres://"));
    Harness::new(|c| {
        c.storage.archive = server.storage.archive.clone();
        c.storage.archive.url = db.url();
        c.storage.graph = server.storage.graph.clone();
        c.storage.recent = server.storage.recent.clone();
        // Keys of this test only, under the database's own (random) name.
        let database = db.url().rsplit('/').next().unwrap_or_default().to_owned();
        c.storage.recent.key_prefix = format!("mnemo-test-{database}");
    })
}

/// Stores, processes, answers context and search, forgets, and keeps everything over a
/// restart, with PostgreSQL as the source of truth; content with quotes, backslashes and
/// SQL fragments is stored and found verbatim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_on_postgres_stores_processes_forgets_and_restarts() {
    let db = TestDatabase::create().await;
    let h = server_harness(&db);
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let tricky = "Robert'); DROP TABLE turns;-- said \"hi\" \\ to Zanzibar";
    let stored = engine
        .store_batch(vec![
            turn(&alice, "s1", "I adopted a cat named Miso in Lisbon."),
            turn(&alice, "s1", tricky),
            turn(&bob, "s1", "Bob's own secret about Zanzibar."),
        ])
        .await
        .expect("stored");
    assert!(stored.iter().all(|a| a.created));
    within("the processors to catch up", engine.wait_processed())
        .await
        .expect("processing completes");
    let hits = engine
        .search(&alice, SearchQuery::new("Zanzibar", 10))
        .await
        .expect("search is answered");
    assert_eq!(hits.len(), 1, "alice finds her turn only: {hits:?}");
    let answer = engine
        .context(ContextRequest::new(
            alice.clone(),
            Some(session("s1")),
            "Miso the cat",
        ))
        .await
        .expect("context is answered");
    let text = serde_json::to_string(&answer).expect("json");
    assert!(text.contains("Miso"), "{text}");
    assert!(!text.contains("Bob's own secret"), "{text}");
    let page = HistoryPage {
        before: None,
        limit: 100,
    };
    let history = engine
        .history(&alice, &session("s1"), page)
        .await
        .expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].content, tricky, "stored verbatim");
    let report = engine.forget_user(&bob).await.expect("forget");
    assert_eq!(report.turns, 1);
    engine.shutdown().await.expect("shutdown");

    let engine = h.start().await;
    let history = engine
        .history(&alice, &session("s1"), page)
        .await
        .expect("history after restart");
    assert_eq!(history.len(), 2, "every acked turn is still there");
    assert!(engine
        .history(&bob, &session("s1"), page)
        .await
        .expect("history")
        .is_empty());
    engine.shutdown().await.expect("shutdown");
}
