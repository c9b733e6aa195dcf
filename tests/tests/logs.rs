//! What an operator must know about is logged, through `tracing`: the engine's start with
//! the backends it chose (no secret), an actor's failure with its cause and its restart,
//! a refused write, and the shutdown. The test installs a subscriber of its own, as any
//! program embedding the engine does (the `mnemo` binary writes to stderr; see
//! `engine/tests/serve_logs.rs`), and reads what it wrote.

use std::io::Write;
use std::sync::Arc;

use mnemo_engine::storage::conformance::scope;
use mnemo_engine::storage::index::SearchQuery;
use mnemo_tests::{turn, within, Harness};
use parking_lot::Mutex;

/// Everything the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The lines written so far.
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock())
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The line holding every one of `parts`, or the test fails showing all lines.
    fn line_with(&self, parts: &[&str]) -> String {
        let lines = self.lines();
        lines
            .iter()
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .cloned()
            .unwrap_or_else(|| panic!("no log line with {parts:?} in:\n{}", lines.join("\n")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_failure_restart_refusal_and_shutdown_are_logged() {
    let captured = Captured::default();
    let writer = captured.clone();
    // The actors run on the engine's own thread: the subscriber must be the process's.
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let harness = Harness::new(|_| {});
    let engine = harness.start().await;
    let started = captured.line_with(&["engine starting", "archive=sqlite", "recent=memory"]);
    assert!(started.contains("INFO"), "{started}");
    captured.line_with(&["engine started"]);

    // An actor fails (a panic in the index) and comes back.
    let alice = scope("acme", "alice");
    engine.faults().panic_next("index", 1);
    engine
        .search(&alice, SearchQuery::new("anything", 5))
        .await
        .expect_err("the index panicked");
    within("the index to restart", engine.wait_restarts("index", 1))
        .await
        .unwrap();
    let failed = captured.line_with(&["actor failed", "actor=\"index\"", "cause=panic"]);
    assert!(failed.contains("WARN"), "{failed}");
    assert!(failed.contains("fault injected into index"), "{failed}");
    captured.line_with(&["restart scheduled", "actor=\"index\""]);
    captured.line_with(&["actor restarted", "actor=\"index\"", "cause=panic"]);

    // A write the archive cannot take is refused, and said so.
    engine.faults().panic_next("archive", 1);
    engine
        .store(turn(&alice, "s1", "refused while the archive restarts"))
        .await
        .expect_err("the archive panicked");
    let refused = captured.line_with(&["write refused", "turns=1"]);
    assert!(refused.contains("WARN"), "{refused}");
    within("the archive to restart", engine.wait_restarts("archive", 1))
        .await
        .unwrap();
    engine
        .store(turn(&alice, "s1", "stored once the archive is back"))
        .await
        .expect("stored");

    engine.shutdown().await.expect("shut down");
    captured.line_with(&["engine shutting down"]);
    captured.line_with(&["processors stopped"]);
    captured.line_with(&["engine stopped"]);
    // Nothing at info or above per request.
    let lines = captured.lines();
    assert!(
        lines.len() < 30,
        "{} lines for a handful of requests:\n{}",
        lines.len(),
        lines.join("\n")
    );
}
