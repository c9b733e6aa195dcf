//! The command-line functions (`import`, `export`, `search`, `health`) on whole
//! embedded engines.

use std::collections::BTreeMap;
use std::io::Cursor;

use chrono::{DateTime, Duration, Utc};
use mnemo_engine::cli::export::{export, ExportFilter};
use mnemo_engine::cli::import::{import, Format, ImportOptions, ImportReport};
use mnemo_engine::cli::locomo::parse_session_date;
use mnemo_engine::cli::progress::ProgressBar;
use mnemo_engine::cli::query::{health, search, SearchArgs};
use mnemo_engine::cli::{CliError, StoreArgs};
use mnemo_engine::Engine;
use mnemo_tests::{within, Harness};
use serde_json::{json, Value};

/// Two made-up conversations in the LoCoMo file format, in the repository (the
/// benchmark split itself stays outside it).
const LOCOMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/locomo-sample.json");

async fn import_text(engine: &Engine, text: &str, options: &ImportOptions) -> ImportReport {
    within(
        "the import",
        import(engine, Cursor::new(text), options, &ProgressBar::hidden()),
    )
    .await
    .expect("the import completes")
}

async fn export_all(engine: &Engine) -> Vec<Value> {
    let mut out = Vec::new();
    let written = within(
        "the export",
        export(
            engine,
            &ExportFilter::default(),
            &mut out,
            &ProgressBar::hidden(),
        ),
    )
    .await
    .expect("the export completes");
    let text = String::from_utf8(out).expect("the export is UTF-8");
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each exported line is JSON"))
        .collect();
    assert_eq!(records.len() as u64, written);
    records
}

fn to_jsonl(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

fn sample_turns() -> Vec<Value> {
    vec![
        json!({"user_id": "alice", "session_id": "s1", "role": "user", "speaker": "Alice",
               "content": "I adopted a golden retriever named Biscuit.",
               "event_time": "2023-05-08T13:56:00.123456Z",
               "metadata": {"mood": "happy", "tags": ["dog", 1, null], "nested": {"a": 1.5}},
               "external_id": "a-1"}),
        json!({"user_id": "alice", "session_id": "s1", "role": "assistant",
               "content": "Congratulations on Biscuit!", "event_time": "2023-05-08T13:57:00Z",
               "external_id": "a-2"}),
        json!({"tenant": "acme", "user_id": "bob", "session_id": "x", "role": "user",
               "speaker": "Bob", "content": "My sister Lena is getting married in June.",
               "event_time": "2023-06-01T09:00:00+02:00", "metadata": {"source": "chat"}}),
        json!({"user_id": "alice", "session_id": "s2", "role": "system",
               "content": "Session resumed after a week.",
               "event_time": "2023-05-15T08:00:00Z", "external_id": "a-3"}),
        json!({"user_id": "alice", "session_id": "s2", "role": "user", "speaker": "Alice",
               "content": "Biscuit learned to sit today!", "external_id": "a-4"}),
    ]
}

/// A record without what differs between stores by nature (the ingest time).
fn comparable(record: &Value) -> Value {
    let mut record = record.clone();
    if let Some(map) = record.as_object_mut() {
        map.remove("ingest_time");
    }
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_into_an_empty_store_gives_the_same_turns() {
    let first = Harness::new(|_| {});
    let engine = first.start().await;
    let input = sample_turns();
    let options = ImportOptions {
        batch: 2,
        ..ImportOptions::default()
    };
    let report = import_text(&engine, &to_jsonl(&input), &options).await;
    assert_eq!(
        report,
        ImportReport {
            read: 5,
            stored: 5,
            already_present: 0,
            failures: vec![],
        }
    );
    let exported = export_all(&engine).await;
    assert_eq!(exported.len(), 5);

    // The export holds what was imported, in order.
    for (record, line) in exported.iter().zip(&input) {
        for field in ["user_id", "session_id", "role", "content", "speaker"] {
            assert_eq!(record.get(field), line.get(field), "{field} of {line}");
        }
        let tenant = line
            .get("tenant")
            .and_then(Value::as_str)
            .unwrap_or("default");
        assert_eq!(record["tenant"], tenant);
        assert_eq!(
            record["metadata"],
            line.get("metadata").cloned().unwrap_or(json!({}))
        );
        if let Some(external_id) = line.get("external_id") {
            assert_eq!(&record["external_id"], external_id);
        } else {
            assert!(record["external_id"].is_string(), "one is generated");
        }
        if let Some(time) = line.get("event_time").and_then(Value::as_str) {
            let want: DateTime<Utc> = time.parse().expect("an RFC 3339 time");
            let got: DateTime<Utc> = record["event_time"]
                .as_str()
                .expect("an event time")
                .parse()
                .expect("an RFC 3339 time");
            assert_eq!(got, want, "event time of {line}");
        }
    }
    let ids: Vec<i64> = exported.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "id order: {ids:?}");

    // Importing the export again into the same store stores nothing new.
    let again = import_text(&engine, &to_jsonl(&exported), &options).await;
    assert_eq!((again.read, again.stored, again.already_present), (5, 0, 5));
    engine.shutdown().await.unwrap();

    // Into an empty store: the same turns, ids, times, metadata and external ids.
    let second = Harness::new(|_| {});
    let fresh = second.start().await;
    let report = import_text(&fresh, &to_jsonl(&exported), &ImportOptions::default()).await;
    assert_eq!((report.read, report.stored), (5, 5));
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let round_trip = export_all(&fresh).await;
    assert_eq!(
        round_trip.iter().map(comparable).collect::<Vec<_>>(),
        exported.iter().map(comparable).collect::<Vec<_>>()
    );

    // The imported turns are searchable, and health reports the head.
    within("processing", fresh.wait_processed()).await.unwrap();
    let mut out = Vec::new();
    let args = SearchArgs {
        user: "alice".into(),
        tenant: "default".into(),
        limit: 10,
        json: true,
        query: "Biscuit".into(),
        store: StoreArgs::default(),
        remote: Default::default(),
    };
    search(&fresh, &args, &mut out).await.unwrap();
    let hits: Vec<Value> = serde_json::from_slice(&out).unwrap();
    assert!(
        hits.iter().any(|h| h["text"]
            .as_str()
            .is_some_and(|t| t.contains("golden retriever"))),
        "hits: {hits:?}"
    );
    let mut out = Vec::new();
    health(&fresh, &mut out).unwrap();
    let health: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(health["head"], 5);
    fresh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_are_reported_and_skipped_or_with_strict_abort_everything() {
    let good = sample_turns();
    let text = format!(
        "{}\n{{\"user_id\": \"alice\", \"session_id\": \n{}\n\n{}\n{}\n",
        good[0],
        json!({"user_id": "alice", "session_id": "s1", "role": "bot", "content": "x"}),
        good[1],
        good[3],
    );

    let h = Harness::new(|_| {});
    let engine = h.start().await;
    let report = import_text(&engine, &text, &ImportOptions::default()).await;
    assert_eq!((report.read, report.stored), (5, 3), "{report:?}");
    let lines: Vec<Option<usize>> = report.failures.iter().map(|f| f.line()).collect();
    assert_eq!(lines, vec![Some(2), Some(3)]);
    assert!(report.failures[1].reason.contains("bot"), "{report:?}");
    let mut summary = Vec::new();
    report.write_summary(&mut summary, 1).unwrap();
    let summary = String::from_utf8(summary).unwrap();
    assert!(
        summary.contains("3 stored") && summary.contains("2 failed"),
        "{summary}"
    );
    assert!(
        summary.contains("line 2:") && !summary.contains("line 3:"),
        "{summary}"
    );
    assert_eq!(export_all(&engine).await.len(), 3);
    engine.shutdown().await.unwrap();

    let strict = Harness::new(|_| {});
    let engine = strict.start().await;
    let options = ImportOptions {
        strict: true,
        batch: 1,
        ..ImportOptions::default()
    };
    let err = within(
        "the strict import",
        import(
            &engine,
            Cursor::new(&text),
            &options,
            &ProgressBar::hidden(),
        ),
    )
    .await
    .expect_err("a strict import of a bad file fails");
    let CliError::Strict { failures } = &err else {
        panic!("expected a strict failure, got {err}");
    };
    assert_eq!(
        failures.iter().map(|f| f.line()).collect::<Vec<_>>(),
        vec![Some(2), Some(3)]
    );
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(export_all(&engine).await.is_empty(), "nothing was written");
    assert_eq!(engine.health().head, 0);
    engine.shutdown().await.unwrap();
}

/// The turns of a LoCoMo document, counted independently of the importer: per
/// `sample_id`, the turns of every `session_N` list.
fn locomo_turns(document: &Value) -> BTreeMap<String, Vec<(String, Value)>> {
    let mut out = BTreeMap::new();
    for sample in document.as_array().expect("an array of conversations") {
        let id = sample["sample_id"]
            .as_str()
            .expect("a sample id")
            .to_owned();
        let conversation = sample["conversation"].as_object().expect("a conversation");
        let mut turns = Vec::new();
        for (key, value) in conversation {
            let Some(n) = key.strip_prefix("session_") else {
                continue;
            };
            if n.parse::<u32>().is_err() {
                continue;
            }
            if let Some(list) = value.as_array() {
                for turn in list {
                    turns.push((key.clone(), turn.clone()));
                }
            }
        }
        out.insert(id, turns);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locomo_import_ingests_every_turn_with_session_times_and_captions() {
    let text = std::fs::read_to_string(LOCOMO).expect("the LoCoMo-format sample");
    let document: Value = serde_json::from_str(&text).expect("LoCoMo JSON");
    let expected = locomo_turns(&document);
    assert_eq!(expected.len(), 2, "two conversations");
    let total: usize = expected.values().map(Vec::len).sum();

    let h = Harness::new(|_| {});
    let engine = h.start().await;
    let options = ImportOptions {
        format: Format::Locomo,
        tenant: "bench".into(),
        batch: 500,
        ..ImportOptions::default()
    };
    let report = import_text(&engine, &text, &options).await;
    assert!(
        report.failures.is_empty(),
        "{:?}",
        &report.failures[..report.failures.len().min(5)]
    );
    assert_eq!(report.read as usize, total);
    assert_eq!(report.stored as usize, total);

    let exported = export_all(&engine).await;
    assert_eq!(exported.len(), total, "every turn is stored");
    let by_external: BTreeMap<String, &Value> = exported
        .iter()
        .map(|r| (r["external_id"].as_str().unwrap().to_owned(), r))
        .collect();
    for (sample_id, turns) in &expected {
        let stored = exported
            .iter()
            .filter(|r| r["user_id"] == sample_id.as_str())
            .count();
        assert_eq!(stored, turns.len(), "turns of {sample_id}");
        for (session, turn) in turns {
            let dia_id = turn["dia_id"].as_str().unwrap();
            let record = by_external
                .get(&format!("{sample_id}:{dia_id}"))
                .unwrap_or_else(|| panic!("{sample_id}:{dia_id} is stored"));
            assert_eq!(record["tenant"], "bench");
            assert_eq!(record["session_id"], session.as_str());
            assert_eq!(record["speaker"], turn["speaker"]);
            assert_eq!(record["role"], "user");
            assert_eq!(record["metadata"]["dia_id"], dia_id);
            let content = record["content"].as_str().unwrap();
            assert!(content.starts_with(turn["text"].as_str().unwrap()));
            if let Some(caption) = turn.get("blip_caption").and_then(Value::as_str) {
                assert!(
                    content.ends_with(&format!(" [shares a photo: {caption}]")),
                    "caption folded into {content:?}"
                );
                assert_eq!(record["metadata"]["img_url"], turn["img_url"]);
            }
        }
    }
    assert!(
        exported
            .iter()
            .any(|r| r["content"].as_str().unwrap().contains("[shares a photo: ")),
        "some turn shares a photo"
    );

    // Event times follow the session dates, a minute apart within a session.
    let time = |r: &Value| -> DateTime<Utc> { r["event_time"].as_str().unwrap().parse().unwrap() };
    let first = by_external["conv-a:D1:1"];
    assert_eq!(
        time(first),
        "2023-05-08T13:56:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(
        time(by_external["conv-a:D1:2"]) - time(first),
        Duration::minutes(1)
    );
    assert_eq!(
        time(by_external["conv-a:D2:1"]),
        "2023-05-25T13:14:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    for sample in document.as_array().unwrap() {
        let sample_id = sample["sample_id"].as_str().unwrap();
        let conversation = &sample["conversation"];
        for record in exported.iter().filter(|r| r["user_id"] == sample_id) {
            let session = record["session_id"].as_str().unwrap();
            let date = conversation[format!("{session}_date_time")]
                .as_str()
                .unwrap();
            let start = parse_session_date(date).expect("a session date");
            let dia_id = record["metadata"]["dia_id"].as_str().unwrap();
            let index = conversation[session]
                .as_array()
                .unwrap()
                .iter()
                .position(|t| t["dia_id"] == dia_id)
                .unwrap();
            assert_eq!(
                time(record),
                start + Duration::minutes(index as i64),
                "{sample_id}:{dia_id}"
            );
        }
    }

    // Importing the same file again stores nothing new.
    let again = import_text(&engine, &text, &options).await;
    assert_eq!(again.stored, 0);
    assert_eq!(again.already_present as usize, total);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_rebuild_indexes_the_whole_archive_and_the_indexer_resumes_after_it() {
    use mnemo_engine::cli::index::rebuild;
    use mnemo_engine::storage::index::SearchQuery;

    let harness = Harness::new(|_| {});
    let engine = harness.start().await;
    let maya = mnemo_tests::scope("acme", "maya");
    for i in 0..45 {
        let content = format!("day {i}: we walked the cliffs and talked about kites");
        engine
            .store(mnemo_tests::turn(&maya, "walks", &content))
            .await
            .expect("stored");
    }
    within("the processors", engine.wait_processed())
        .await
        .expect("processed");
    let head = engine.health().head;
    engine.shutdown().await.expect("shut down");

    // The index is lost.
    let storage = &harness.config.storage;
    std::fs::remove_dir_all(storage.resolve(&storage.index.path)).expect("the index is removed");
    let tiers = harness.tiers().await;
    let stats = tiers.archive.stats().await.expect("stats");
    assert!(stats.summaries >= 1, "the summarizer wrote summaries");
    let bar = ProgressBar::hidden();
    let rebuilt = within("the rebuild", rebuild(&tiers, 7, &bar))
        .await
        .expect("the rebuild completes");
    assert_eq!(rebuilt.report.turns, 45);
    assert_eq!(rebuilt.report.summaries, stats.summaries);
    assert_eq!(bar.position(), 45 + stats.summaries);
    // The engine's indexer will resume after what the rebuild indexed.
    let mark = tiers.index.mark().await.expect("the index's mark");
    assert_eq!(mark.turns.0, head);
    tiers.close().await.expect("closed");

    let engine = harness.start().await;
    within("the processors", engine.wait_processed())
        .await
        .expect("processed");
    let hits = engine
        .search(&maya, SearchQuery::new("kites", 100))
        .await
        .expect("a search");
    assert_eq!(hits.len() as u64, 45 + stats.summaries);
    engine.shutdown().await.expect("shut down");
}
