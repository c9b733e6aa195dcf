//! `mnemo migrate` between real stores: the embedded store (SQLite) and the server one
//! (PostgreSQL, a database of each test's own, and Redis), both ways, and into a graph
//! on a Bolt server (FalkorDB behind the Bolt bridge). A copy keeps every id, time,
//! metadata, summary, emotion state and the graph, and the target serves it; a dry run
//! writes nothing; an interrupted copy resumes; a rollback leaves the target as it was;
//! a target holding other rows under the same ids is refused. Fails, saying so, without
//! a PostgreSQL server.

use std::collections::BTreeMap;

use mnemo_engine::cli::migrate::{self, MigrateOptions, UserFilter};
use mnemo_engine::{Config, ContextRequest};
use mnemo_storage::archive::ArchiveStore;
use mnemo_storage::clock::SharedClock;
use mnemo_storage::index::SearchQuery;
use mnemo_storage::model::{
    EmotionState, ExternalId, NewTurn, Role, Scope, SessionId, Summary, SummaryId, Turn, TurnId,
};
use mnemo_storage::{archive_exists, open_archive, StorageConfig};
use mnemo_tests::{scope, within, Backend, Harness};

/// Everything a store's archive holds that a migration copies.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    turns: Vec<Turn>,
    summaries: Vec<Summary>,
    emotion: BTreeMap<Scope, EmotionState>,
    checkpoints: BTreeMap<String, TurnId>,
}

async fn snapshot(storage: &StorageConfig, clock: SharedClock) -> Snapshot {
    let archive = open_archive(storage, clock)
        .await
        .expect("the archive opens");
    let snap = snapshot_of(&*archive).await;
    archive.close().await;
    snap
}

async fn snapshot_of(archive: &dyn ArchiveStore) -> Snapshot {
    let mut turns = Vec::new();
    loop {
        let after = turns.last().map_or(TurnId(0), |t: &Turn| t.id);
        let page = archive.turns_after(after, 500).await.expect("turns");
        if page.is_empty() {
            break;
        }
        turns.extend(page);
    }
    let mut summaries = Vec::new();
    loop {
        let after = summaries.last().map_or(SummaryId(0), |s: &Summary| s.id);
        let page = archive
            .summaries_after(after, 500)
            .await
            .expect("summaries");
        if page.is_empty() {
            break;
        }
        summaries.extend(page);
    }
    let mut users: Vec<Scope> = turns.iter().map(|t| t.scope.clone()).collect();
    users.sort();
    users.dedup();
    let emotion = archive
        .emotion_states(&users)
        .await
        .expect("emotion states");
    let checkpoints = archive.checkpoints().await.expect("checkpoints");
    Snapshot {
        turns,
        summaries,
        emotion,
        checkpoints,
    }
}

fn rich_turn(scope: &Scope, session: &str, i: usize) -> NewTurn {
    let places = ["Lisbon", "Kyoto", "Nairobi", "Oslo"];
    let friends = ["Maria Lopez", "Kenji", "Amara", "Olaf"];
    NewTurn {
        scope: scope.clone(),
        session_id: SessionId::new(session).expect("session id"),
        role: if i.is_multiple_of(2) {
            Role::User
        } else {
            Role::Assistant
        },
        speaker: i.is_multiple_of(3).then(|| "Ann".to_owned()),
        content: format!(
            "Turn {i}: I was so happy to visit {} with {} and talk about the garden, number {i}.",
            places[i % places.len()],
            friends[(i / 2) % friends.len()]
        ),
        event_time: Some(mnemo_storage::conformance::t0() + chrono::Duration::minutes(i as i64)),
        metadata: serde_json::json!({"i": i, "quote": "it's \"fine\""}),
        external_id: Some(ExternalId::new(format!("ext-{}-{i}", scope.user)).expect("id")),
    }
}

/// Stores `per_user` turns for each of four users of two tenants through an engine on
/// `h`, forgets one, and lets every processor finish (summaries, emotion, graph).
async fn fill(h: &Harness, per_user: usize) -> Vec<Scope> {
    let users = vec![
        scope("acme", "alice"),
        scope("acme", "bob"),
        scope("globex", "alice"),
        scope("globex", "carol"),
    ];
    let engine = h.start().await;
    let mut turns = Vec::new();
    for i in 0..per_user {
        for (u, user) in users.iter().enumerate() {
            turns.push(rich_turn(user, &format!("s{}", (i / 6) + u), i));
        }
    }
    for chunk in turns.chunks(100) {
        engine.store_batch(chunk.to_vec()).await.expect("stored");
    }
    within("the processors", engine.wait_processed())
        .await
        .expect("processed");
    let some = engine
        .search(&users[1], SearchQuery::new("garden", 1))
        .await
        .expect("search");
    engine
        .forget_turn(&users[1], TurnId(some[0].id))
        .await
        .expect("forgotten");
    within("the processors", engine.wait_processed())
        .await
        .expect("processed");
    engine.shutdown().await.expect("shut down");
    users
}

fn summarizing(c: &mut Config) {
    c.actors.processors.summarizer.every_turns = 4;
}

fn options(batch: usize) -> MigrateOptions {
    MigrateOptions {
        batch,
        ..MigrateOptions::default()
    }
}

/// Embedded -> PostgreSQL + Redis -> embedded: each copy holds exactly the source's
/// turns (ids, times, metadata, annotations), summaries, emotion states and checkpoints,
/// verifies at 100%, and serves search and context; new turns get ids above the copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_to_postgres_and_back_keeps_everything() {
    let source = Harness::new(summarizing);
    let users = fill(&source, 30).await;
    let before = snapshot(&source.config.storage, source.clock.clone()).await;
    assert!(!before.summaries.is_empty(), "the source has summaries");
    assert_eq!(before.emotion.len(), users.len());

    let server = Harness::on(Backend::Server, summarizing).await;
    let report = migrate::migrate(
        &source.config.storage,
        &server.config.storage,
        &options(17),
        server.clock.clone(),
    )
    .await
    .expect("migrated");
    assert!(report.finished);
    assert_eq!(report.turns, before.turns.len() as u64);
    assert_eq!(report.summaries, before.summaries.len() as u64);
    assert_eq!(report.indexed, before.turns.len() as u64);
    let copied = snapshot(&server.config.storage, server.clock.clone()).await;
    assert_eq!(
        copied, before,
        "the PostgreSQL copy holds what the source holds"
    );
    let verified = migrate::verify(
        &source.config,
        &server.config,
        &options(50),
        server.clock.clone(),
    )
    .await
    .expect("verified");
    assert_eq!(verified.mismatches, Vec::<String>::new());
    assert_eq!(verified.score(), 100.0);
    assert!(verified.checks >= users.len() as u64 * 4);

    // The copy serves: search from the built index, context with entities, new ids.
    let engine = server.start().await;
    let hits = engine
        .search(&users[0], SearchQuery::new("Kyoto", 50))
        .await
        .expect("search");
    assert!(!hits.is_empty());
    let answer = engine
        .context(ContextRequest::new(users[2].clone(), None, "Maria Lopez"))
        .await
        .expect("context");
    assert!(answer.degraded.is_empty(), "{:?}", answer.degraded);
    assert!(answer
        .entities
        .iter()
        .any(|e| e.entity.name.contains("Maria")));
    let new = engine
        .store(rich_turn(&users[0], "later", 999))
        .await
        .expect("stored");
    let head = before.turns.last().expect("turns").id;
    assert!(new.turn.id > head, "{:?} after {head:?}", new.turn.id);
    within("the processors", engine.wait_processed())
        .await
        .expect("processed");
    engine.shutdown().await.expect("shut down");

    // And back into a new embedded store.
    let back = Harness::new(summarizing);
    migrate::migrate(
        &server.config.storage,
        &back.config.storage,
        &options(1_000),
        back.clock.clone(),
    )
    .await
    .expect("migrated back");
    let returned = snapshot(&back.config.storage, back.clock.clone()).await;
    let server_now = snapshot(&server.config.storage, server.clock.clone()).await;
    assert_eq!(returned, server_now);
    assert!(returned.turns.iter().any(|t| t.id == new.turn.id));
    let verified = migrate::verify(
        &server.config,
        &back.config,
        &options(1_000),
        back.clock.clone(),
    )
    .await
    .expect("verified");
    assert_eq!(verified.mismatches, Vec::<String>::new());
}

/// A dry run reads and checks everything and creates nothing: neither a PostgreSQL
/// table nor an embedded target's files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing() {
    let source = Harness::new(summarizing);
    let users = fill(&source, 12).await;
    let before = snapshot(&source.config.storage, source.clock.clone()).await;

    let server = Harness::on(Backend::Server, |_| {}).await;
    let report = migrate::dry_run(
        &source.config.storage,
        &server.config.storage,
        &options(7),
        server.clock.clone(),
    )
    .await
    .expect("checked");
    assert_eq!(report.turns, before.turns.len() as u64);
    assert_eq!(report.users, users.len() as u64);
    assert_eq!(report.summaries, before.summaries.len() as u64);
    assert_eq!(report.emotion_states, users.len() as u64);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        !archive_exists(&server.config.storage).await.expect("asked"),
        "the dry run created the target's tables"
    );

    let embedded = Harness::new(|_| {});
    let report = migrate::dry_run(
        &source.config.storage,
        &embedded.config.storage,
        &options(7),
        embedded.clock.clone(),
    )
    .await
    .expect("checked");
    assert_eq!(report.turns, before.turns.len() as u64);
    let files: Vec<_> = std::fs::read_dir(embedded.dir.path())
        .expect("the directory")
        .collect();
    assert!(files.is_empty(), "the dry run wrote {files:?}");
    // The source is as it was.
    assert_eq!(
        snapshot(&source.config.storage, source.clock.clone()).await,
        before
    );
}

/// A migration stopped after two batches resumes from the last committed batch: the
/// target ends with each row once, and a dry run in between counts only what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_migration_resumes() {
    let source = Harness::new(summarizing);
    fill(&source, 20).await;
    let before = snapshot(&source.config.storage, source.clock.clone()).await;
    let server = Harness::on(Backend::Server, |_| {}).await;
    let stopped = migrate::migrate(
        &source.config.storage,
        &server.config.storage,
        &MigrateOptions {
            batch: 10,
            stop_after_batches: Some(2),
            ..MigrateOptions::default()
        },
        server.clock.clone(),
    )
    .await
    .expect("stopped early");
    assert!(!stopped.finished);
    assert_eq!(stopped.turns, 20);
    let left = migrate::dry_run(
        &source.config.storage,
        &server.config.storage,
        &options(10),
        server.clock.clone(),
    )
    .await
    .expect("checked");
    assert_eq!(left.already_copied, before.turns[19].id);
    assert_eq!(left.turns, before.turns.len() as u64 - 20);
    assert!(left.problems.is_empty(), "{:?}", left.problems);

    let resumed = migrate::migrate(
        &source.config.storage,
        &server.config.storage,
        &options(10),
        server.clock.clone(),
    )
    .await
    .expect("resumed");
    assert!(resumed.finished);
    assert_eq!(resumed.turns, before.turns.len() as u64 - 20);
    assert_eq!(
        snapshot(&server.config.storage, server.clock.clone()).await,
        before
    );
    // Once more: nothing left to copy, nothing written twice.
    let again = migrate::migrate(
        &source.config.storage,
        &server.config.storage,
        &options(10),
        server.clock.clone(),
    )
    .await
    .expect("ran again");
    assert_eq!((again.turns, again.summaries), (0, 0));
    assert_eq!(
        snapshot(&server.config.storage, server.clock.clone()).await,
        before
    );
}

/// A rollback removes exactly what its migration wrote: the target keeps the users an
/// earlier migration copied and the turns it stored itself since, and its search finds
/// nothing of the rolled-back users; the source is never touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_leaves_the_target_as_it_was() {
    let source = Harness::new(summarizing);
    let users = fill(&source, 16).await;
    let source_before = snapshot(&source.config.storage, source.clock.clone()).await;
    let server = Harness::on(Backend::Server, summarizing).await;
    let only = |ids: &[&str]| MigrateOptions {
        users: UserFilter::new(&ids.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        batch: 25,
        ..MigrateOptions::default()
    };
    // The target: bob copied, then a turn of its own.
    migrate::migrate(
        &source.config.storage,
        &server.config.storage,
        &only(&["bob"]),
        server.clock.clone(),
    )
    .await
    .expect("bob migrated");
    let engine = server.start().await;
    engine
        .store(rich_turn(&scope("initech", "dave"), "own", 1))
        .await
        .expect("stored");
    within("the processors", engine.wait_processed())
        .await
        .expect("processed");
    engine.shutdown().await.expect("shut down");
    let target_before = snapshot(&server.config.storage, server.clock.clone()).await;

    let report = migrate::migrate(
        &source.config.storage,
        &server.config.storage,
        &only(&["alice", "carol"]),
        server.clock.clone(),
    )
    .await
    .expect("the rest migrated");
    assert!(report.turns > 0);
    let outcome = migrate::rollback(
        &source.config.storage,
        &server.config.storage,
        &only(&["alice", "carol"]),
        server.clock.clone(),
    )
    .await
    .expect("rolled back");
    assert_eq!(outcome.turns, report.turns);
    assert_eq!(outcome.summaries, report.summaries);
    assert_eq!(outcome.emptied_users, 3);

    let after = snapshot(&server.config.storage, server.clock.clone()).await;
    assert_eq!(after.turns, target_before.turns);
    assert_eq!(after.summaries, target_before.summaries);
    assert_eq!(after.emotion, target_before.emotion);
    for (processor, at) in &after.checkpoints {
        assert!(
            *at <= target_before.checkpoints[processor],
            "{processor} at {at:?}"
        );
    }
    let engine = server.start().await;
    within("the processors", engine.wait_processed())
        .await
        .expect("processed");
    for user in [&users[0], &users[2], &users[3]] {
        let hits = engine
            .search(user, SearchQuery::new("garden", 10))
            .await
            .expect("search");
        assert!(hits.is_empty(), "{user:?} still found: {hits:?}");
        let answer = engine
            .context(ContextRequest::new(user.clone(), None, "Maria Lopez"))
            .await
            .expect("context");
        assert!(answer.entities.is_empty(), "{:?}", answer.entities);
    }
    let bob = engine
        .search(&users[1], SearchQuery::new("garden", 10))
        .await
        .expect("search");
    assert!(!bob.is_empty());
    engine.shutdown().await.expect("shut down");
    assert_eq!(
        snapshot(&source.config.storage, source.clock.clone()).await,
        source_before
    );
    // Nothing left to roll back.
    let again = migrate::rollback(
        &source.config.storage,
        &server.config.storage,
        &only(&["alice", "carol"]),
        server.clock.clone(),
    )
    .await;
    assert!(again.is_err());
}

/// A target holding other turns under the source's ids is refused, naming them, and
/// nothing is written; the dry run lists the same conflicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_with_other_rows_under_the_ids_is_refused() {
    let source = Harness::new(|_| {});
    fill(&source, 5).await;
    let target = Harness::new(|_| {});
    let engine = target.start().await;
    engine
        .store(rich_turn(&scope("acme", "zed"), "z", 1))
        .await
        .expect("stored");
    engine.shutdown().await.expect("shut down");
    let target_before = snapshot(&target.config.storage, target.clock.clone()).await;

    let checked = migrate::dry_run(
        &source.config.storage,
        &target.config.storage,
        &options(100),
        target.clock.clone(),
    )
    .await
    .expect("checked");
    assert!(
        checked.problems.iter().any(|p| p.contains("turn 1 ")),
        "{:?}",
        checked.problems
    );
    let refused = migrate::migrate(
        &source.config.storage,
        &target.config.storage,
        &options(100),
        target.clock.clone(),
    )
    .await
    .expect_err("refused");
    let message = refused.to_string();
    assert!(
        message.contains("already stored in the target"),
        "{message}"
    );
    let after = snapshot(&target.config.storage, target.clock.clone()).await;
    assert_eq!(after.turns, target_before.turns);
}

/// The embedded graph copied into a graph server (FalkorDB behind the Bolt bridge): the
/// same entities per user, and context names them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_graph_into_a_bolt_graph_server() {
    let source = Harness::new(|_| {});
    let users = fill(&source, 8).await;
    let target = Harness::on(Backend::Neo4jGraph, |_| {}).await;
    migrate::migrate(
        &source.config.storage,
        &target.config.storage,
        &options(20),
        target.clock.clone(),
    )
    .await
    .expect("migrated");
    let verified = migrate::verify(
        &source.config,
        &target.config,
        &options(20),
        target.clock.clone(),
    )
    .await
    .expect("verified");
    assert_eq!(verified.mismatches, Vec::<String>::new());
    assert!(verified.checks >= users.len() as u64 * 4);
}
