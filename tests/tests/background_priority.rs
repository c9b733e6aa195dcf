//! In a process of its own, so that every thread it sees is this engine's: the
//! background threads (the processors, the index writer and the indexing and merge
//! threads tantivy starts from it) run at the configured niceness, and the threads that
//! answer requests at the process's own, so that when the cores are short it is the
//! processors' backlog that grows and not the requests' latency.

#![cfg(target_os = "linux")]

use std::collections::BTreeMap;

use mnemo_tests::{scope, turn, within, Harness};

/// Each thread of this process: its name and its niceness.
fn threads() -> Vec<(String, i32)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let dir = task.expect("a task").path();
        // A thread that ended between the listing and the read is skipped.
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue;
        };
        // Fields after the name, which is in parentheses: state is the 3rd field of the
        // line, niceness the 19th.
        let after_name = &stat[stat.rfind(')').expect("stat has a name") + 1..];
        let nice = after_name
            .split_whitespace()
            .nth(16)
            .and_then(|n| n.parse().ok())
            .expect("a niceness");
        threads.push((name.trim().to_owned(), nice));
    }
    threads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_threads_give_way_to_the_threads_that_answer_requests() {
    let own = mnemo_engine::storage::priority::this_thread_nice();
    let background = 7.max(own);
    let h = Harness::new(|c| {
        c.actors.processors.nice = 7;
        c.storage.index.writer_nice = 7;
    });
    let engine = h.start().await;
    let maya = scope("acme", "maya");
    // Every processor has stepped, so each has started its thread.
    engine
        .store(turn(&maya, "s1", "I adopted a cat called Miso in Lisbon"))
        .await
        .expect("stored");
    within("the processors", engine.wait_processed())
        .await
        .expect("processed");

    let mut seen: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (name, nice) in threads() {
        seen.entry(name).or_default().push(nice);
    }
    // Thread names are cut at 15 bytes.
    let expect = |prefix: &str, nice: i32| {
        let matching: Vec<_> = seen.iter().filter(|(n, _)| n.starts_with(prefix)).collect();
        assert!(!matching.is_empty(), "no thread named {prefix}*: {seen:?}");
        for (name, nices) in matching {
            assert!(
                nices.iter().all(|n| *n == nice),
                "{name} at {nices:?}, expected {nice}: {seen:?}"
            );
        }
    };
    for processor in [
        "mnemo-emotion",
        "mnemo-summarize",
        "mnemo-graph_syn",
        "mnemo-indexer",
        "mnemo-index-wri",
        "merge_thread",
        "segment_updat",
    ] {
        expect(processor, background);
    }
    for request_path in [
        "mnemo-actors",
        "mnemo-context",
        "mnemo-index-sea",
        "mnemo-sqlite-re",
    ] {
        expect(request_path, own);
    }
    engine.shutdown().await.expect("shut down");
}
