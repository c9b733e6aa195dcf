//! Whole engines driven end to end through the `Engine` API, on the embedded backends and
//! on the server configuration (Redis recent tier, PostgreSQL archive and graph), and on
//! the server configuration with the graph on a Bolt server (FalkorDB behind the bridge).

use std::time::{Duration, Instant};

use chrono::TimeZone;

use mnemo_actors::analysis::entities::extract_entities;
use mnemo_engine::{ContextRequest, Engine, ErrorKind};
use mnemo_storage::archive::HistoryPage;
use mnemo_storage::conformance::{HOSTILE_SAMPLES, MULTILINE_SAMPLE};
use mnemo_storage::graph::Recency;
use mnemo_storage::index::{DocKind, SearchQuery};
use mnemo_storage::model::{Scope, TurnId};
use mnemo_tests::{scope, session, turn, within, Backend, Harness};

const PROCESSORS: [&str; 4] = ["emotion", "indexer", "summarizer", "graph_sync"];

async fn processed(engine: &Engine) {
    within("the processors to catch up", engine.wait_processed())
        .await
        .expect("processing completes");
}

async fn context(
    engine: &Engine,
    scope: &Scope,
    session_id: Option<&str>,
    query: &str,
) -> mnemo_engine::ContextAnswer {
    let request = ContextRequest::new(scope.clone(), session_id.map(session), query);
    engine.context(request).await.expect("context is answered")
}

async fn search(
    engine: &Engine,
    scope: &Scope,
    query: &str,
) -> Vec<mnemo_storage::index::SearchHit> {
    engine
        .search(scope, SearchQuery::new(query, 50))
        .await
        .expect("search is answered")
}

async fn all_history(
    engine: &Engine,
    scope: &Scope,
    session_id: &str,
) -> Vec<mnemo_storage::model::Turn> {
    engine
        .history(
            scope,
            &session(session_id),
            HistoryPage {
                before: None,
                limit: 10_000,
            },
        )
        .await
        .expect("history is answered")
}

async fn store_then_context_ranks_stored_turns_within_the_budget(backend: Backend) {
    let h = Harness::on(backend, |_| {}).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    let mut turns = vec![
        turn(
            &alice,
            "s1",
            "I adopted a golden retriever named Biscuit last spring.",
        ),
        turn(
            &alice,
            "s1",
            "My sister Lena is getting married at Crescent Lake Lodge in June.",
        ),
        turn(
            &alice,
            "s1",
            "Work is stressful because of the promotion review at Northwind Labs.",
        ),
    ];
    for i in 0..30 {
        turns.push(turn(
            &alice,
            "s2",
            &format!("Filler chat number {i} about the weather and lunch."),
        ));
    }
    turns.push(turn(&alice, "s3", "Good morning! Ready for a walk?"));
    engine.store_batch(turns).await.unwrap();
    processed(&engine).await;

    let mut request = ContextRequest::new(
        alice.clone(),
        Some(session("s3")),
        "How is my dog Biscuit doing?",
    );
    request.token_budget = Some(120);
    let answer = engine.context(request).await.unwrap();
    assert!(
        answer.degraded.is_empty(),
        "degraded: {:?}",
        answer.degraded
    );
    assert!(
        answer.tokens <= 120,
        "{} tokens over a budget of 120",
        answer.tokens
    );
    assert_eq!(answer.recent.len(), 1, "the session's recent turn");
    assert_eq!(answer.recent[0].content, "Good morning! Ready for a walk?");
    assert!(!answer.items.is_empty());
    assert!(
        answer.items.windows(2).all(|w| w[0].score >= w[1].score),
        "ranked best first"
    );
    let best_memory = answer
        .items
        .iter()
        .find(|i| i.kind != mnemo_actors::context::ranking::ItemKind::Entity)
        .expect("a memory");
    assert!(
        best_memory.text.contains("Biscuit"),
        "best memory: {}",
        best_memory.text
    );
    assert!(answer.prompt.contains("Biscuit"));
    assert!(
        answer.entities.iter().any(|e| e.entity.name == "Biscuit"),
        "entities: {:?}",
        answer
            .entities
            .iter()
            .map(|e| &e.entity.name)
            .collect::<Vec<_>>()
    );
    assert!(answer.timings_ms.contains_key("index") && answer.timings_ms.contains_key("total"));

    // The same question again is served from the cache, until a write for the user.
    let again = context(&engine, &alice, Some("s3"), "How is my dog Biscuit doing?").await;
    let again_cached = context(&engine, &alice, Some("s3"), "How is my dog Biscuit doing?").await;
    assert!(again_cached.cached);
    assert_eq!(again_cached.items, again.items);
    engine
        .store(turn(&alice, "s3", "Biscuit loves the beach."))
        .await
        .unwrap();
    let fresh = context(&engine, &alice, Some("s3"), "How is my dog Biscuit doing?").await;
    assert!(
        !fresh.cached,
        "a write invalidates the user's cached answers"
    );
    assert_eq!(
        fresh.recent.last().unwrap().content,
        "Biscuit loves the beach."
    );
    engine.shutdown().await.unwrap();
}

async fn users_and_tenants_never_see_each_other(backend: Backend) {
    let h = Harness::on(backend, |_| {}).await;
    let engine = h.start().await;
    let users = [
        scope("tenant-a", "alice"),
        scope("tenant-b", "alice"),
        scope("tenant-a", "bob"),
    ];
    for (n, user) in users.iter().enumerate() {
        let marker = format!("marker{n}");
        engine
            .store_batch(vec![
                turn(
                    user,
                    "shared-session",
                    &format!("My secret code is {marker} and my dog is Rex{n}."),
                ),
                turn(
                    user,
                    "shared-session",
                    &format!("Remember the secret code {marker} please."),
                ),
            ])
            .await
            .unwrap();
    }
    processed(&engine).await;
    for (n, user) in users.iter().enumerate() {
        let mine = format!("marker{n}");
        let others: Vec<String> = (0..users.len())
            .filter(|m| *m != n)
            .map(|m| format!("marker{m}"))
            .collect();
        let answer = context(
            &engine,
            user,
            Some("shared-session"),
            "what is my secret code?",
        )
        .await;
        let everything = serde_json::to_string(&answer).unwrap();
        assert!(everything.contains(&mine), "{user} sees their own data");
        for other in &others {
            assert!(
                !everything.contains(other.as_str()),
                "{user} must not see {other}: {everything}"
            );
        }
        let hits = search(&engine, user, "secret code").await;
        assert_eq!(hits.len(), 2);
        assert!(hits.iter().all(|h| h.text.contains(&mine)));
        let history = all_history(&engine, user, "shared-session").await;
        assert_eq!(history.len(), 2);
        assert!(history.iter().all(|t| t.content.contains(&mine)));
        let rex = format!("Rex{n}");
        let graph = engine.graph(user, &rex, 2, 10).await.unwrap();
        assert!(graph.is_some(), "{user} has their own entity {rex}");
        for m in (0..users.len()).filter(|m| *m != n) {
            assert!(engine
                .graph(user, &format!("Rex{m}"), 2, 10)
                .await
                .unwrap()
                .is_none());
        }
    }
    engine.shutdown().await.unwrap();
}

async fn forget_user_reaches_every_tier_even_while_processing(backend: Backend) {
    let h = Harness::on(backend, |c| c.actors.processors.batch_turns = 5).await;
    let engine = h.start().await;
    // Slow processors, so the forget lands while they still hold the user's turns.
    for p in PROCESSORS {
        engine.faults().delay(p, Duration::from_millis(15));
    }
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    for i in 0..30 {
        engine
            .store_batch(vec![
                turn(
                    &alice,
                    "s1",
                    &format!("Alice walked Biscuit to Green Lake, day {i}. I felt so happy!"),
                ),
                turn(
                    &bob,
                    "s1",
                    &format!("Bob fixed his bike with Carlos, day {i}. Great fun!"),
                ),
            ])
            .await
            .unwrap();
    }
    let report = engine.forget_user(&alice).await.unwrap();
    assert_eq!(report.turns, 30);
    engine.faults().clear();
    processed(&engine).await;
    engine.run_idle().await.unwrap();

    let answer = context(&engine, &alice, Some("s1"), "Biscuit Green Lake happy").await;
    assert!(
        answer.recent.is_empty() && answer.items.is_empty(),
        "{answer:?}"
    );
    assert!(
        answer.entities.is_empty() && answer.emotion.is_none(),
        "{answer:?}"
    );
    assert!(search(&engine, &alice, "Biscuit").await.is_empty());
    assert!(all_history(&engine, &alice, "s1").await.is_empty());
    assert!(engine
        .graph(&alice, "Biscuit", 2, 10)
        .await
        .unwrap()
        .is_none());
    let bobs = context(&engine, &bob, Some("s1"), "bike Carlos").await;
    assert!(!bobs.items.is_empty() && bobs.emotion.is_some());
    let bob_turns = search(&engine, &bob, "bike").await;
    assert_eq!(
        bob_turns.iter().filter(|h| h.kind == DocKind::Turn).count(),
        30
    );
    engine.shutdown().await.unwrap();

    // Nothing of alice's is left in any store.
    let tiers = h.tiers().await;
    let archive = tiers.archive.clone();
    assert!(archive
        .summaries(&alice, None, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(archive.emotion_state(&alice).await.unwrap().is_none());
    assert!(!archive.summaries(&bob, None, 100).await.unwrap().is_empty());
    let graph = tiers.graph.clone();
    let recency = Recency {
        now: mnemo_storage::conformance::t0(),
        half_life: Duration::from_secs(3600),
    };
    assert!(graph
        .user_entities(&alice, recency, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(!graph
        .user_entities(&bob, recency, 100)
        .await
        .unwrap()
        .is_empty());
    let index = tiers.index.clone();
    assert!(index
        .search(&alice, &SearchQuery::new("Biscuit walked happy day", 100))
        .await
        .unwrap()
        .is_empty());
    tiers.close().await.unwrap();
}

async fn forget_turn_reaches_every_tier(backend: Backend) {
    let h = Harness::on(backend, |c| c.actors.processors.summarizer.every_turns = 2).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    let stored = engine
        .store_batch(vec![
            turn(&alice, "s1", "My password hint is Zanzibar."),
            turn(&alice, "s1", "We talked about the weather."),
            turn(&alice, "s1", "Then about lunch."),
        ])
        .await
        .unwrap();
    processed(&engine).await;
    let secret = stored[0].turn.id;
    assert_eq!(
        search(&engine, &alice, "Zanzibar").await.len(),
        2,
        "the turn and its summary"
    );
    let report = engine.forget_turn(&alice, secret).await.unwrap();
    assert_eq!((report.turns, report.summaries), (1, 1));
    assert!(search(&engine, &alice, "Zanzibar").await.is_empty());
    let history = all_history(&engine, &alice, "s1").await;
    assert_eq!(history.len(), 2);
    assert!(engine
        .graph(&alice, "Zanzibar", 1, 10)
        .await
        .unwrap()
        .is_none());
    let answer = context(&engine, &alice, Some("s1"), "password hint Zanzibar").await;
    assert!(!serde_json::to_string(&answer).unwrap().contains("Zanzibar"));
    // Another user cannot forget it.
    let bob = scope("acme", "bob");
    let kept = stored[1].turn.id;
    assert_eq!(engine.forget_turn(&bob, kept).await.unwrap().turns, 0);
    assert_eq!(all_history(&engine, &alice, "s1").await.len(), 2);
    engine.shutdown().await.unwrap();
}

async fn restart_with_processors_behind_processes_every_turn_exactly_once(backend: Backend) {
    let h = Harness::on(backend, |c| {
        c.actors.processors.batch_turns = 4;
        c.actors.processors.summarizer.every_turns = 5;
        c.engine.shutdown_timeout_ms = 100;
    })
    .await;
    let engine = h.start().await;
    for p in PROCESSORS {
        engine.faults().delay(p, Duration::from_millis(25));
    }
    let alice = scope("acme", "alice");
    let turns = (0..40)
        .map(|i| {
            turn(
                &alice,
                "s1",
                &format!("I walked Biscuit today, word{i}, and I am happy."),
            )
        })
        .collect();
    engine.store_batch(turns).await.unwrap();
    let lag: i64 = engine.health().processors.iter().map(|p| p.lag).sum();
    engine.shutdown().await.unwrap();
    assert!(lag > 0, "processors were behind at shutdown");

    let engine = h.start().await;
    processed(&engine).await;
    assert!(engine.health().processors.iter().all(|p| p.lag == 0));
    for i in [0, 17, 39] {
        let hits = search(&engine, &alice, &format!("word{i}")).await;
        assert_eq!(
            hits.iter().filter(|h| h.kind == DocKind::Turn).count(),
            1,
            "word{i} indexed once"
        );
    }
    engine.shutdown().await.unwrap();

    let tiers = h.tiers().await;
    let archive = tiers.archive.clone();
    let emotion = archive
        .emotion_state(&alice)
        .await
        .unwrap()
        .expect("an emotion state");
    assert_eq!(
        emotion.turns, 40,
        "each turn folded into the emotion state once"
    );
    let summaries = archive.summaries(&alice, None, 100).await.unwrap();
    assert_eq!(summaries.len(), 8, "40 turns, a summary every 5");
    let mut ranges: Vec<(TurnId, TurnId)> = summaries
        .iter()
        .map(|s| (s.first_turn, s.last_turn))
        .collect();
    ranges.sort();
    assert!(
        ranges.windows(2).all(|w| w[0].1 < w[1].0),
        "summaries do not overlap: {ranges:?}"
    );
    let graph = tiers.graph.clone();
    let recency = Recency {
        now: mnemo_storage::conformance::t0(),
        half_life: Duration::from_secs(3600),
    };
    let biscuit = graph
        .user_entities(&alice, recency, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.entity.name == "Biscuit")
        .expect("Biscuit in the graph");
    assert_eq!(biscuit.mentions, 40, "each turn counted once in the graph");
    let index = tiers.index.clone();
    assert_eq!(
        index.num_docs().await.unwrap(),
        48,
        "40 turns and 8 summaries, once each"
    );
    tiers.close().await.unwrap();
}

/// Many sessions filling windows in the same steps are each summarised once per window,
/// over their own turns only; after a restart that rebuilds nothing pending, each
/// session's turns after its last summary are read back when it is met again.
async fn every_session_of_a_batch_is_summarised_once_per_window(backend: Backend) {
    let h = Harness::on(backend, |c| {
        c.actors.processors.summarizer.every_turns = 3;
        c.actors.processors.summarizer.recover_turns = 0;
    })
    .await;
    let users: Vec<Scope> = (0..12)
        .map(|u| scope("acme", &format!("user{u}")))
        .collect();
    let sessions = ["s1", "s2"];
    // Turns interleaved over every user and session, `from..to` of each session.
    let batch = |from: usize, to: usize| {
        let mut turns = Vec::new();
        for i in from..to {
            for user in &users {
                for s in sessions {
                    turns.push(turn(
                        user,
                        s,
                        &format!("In {s} I talk about topic{i} today."),
                    ));
                }
            }
        }
        turns
    };
    let engine = h.start().await;
    engine.store_batch(batch(0, 4)).await.unwrap();
    processed(&engine).await;
    engine.shutdown().await.unwrap();
    let engine = h.start().await;
    engine.store_batch(batch(4, 7)).await.unwrap();
    processed(&engine).await;
    engine.shutdown().await.unwrap();

    let tiers = h.tiers().await;
    let archive = tiers.archive.clone();
    for user in &users {
        for s in sessions {
            let mut ids: Vec<TurnId> = archive
                .history(
                    user,
                    &session(s),
                    HistoryPage {
                        before: None,
                        limit: 100,
                    },
                )
                .await
                .unwrap()
                .iter()
                .map(|t| t.id)
                .collect();
            ids.sort();
            assert_eq!(ids.len(), 7);
            let mut ranges: Vec<(TurnId, TurnId)> = archive
                .summaries(user, Some(&session(s)), 100)
                .await
                .unwrap()
                .iter()
                .map(|summary| (summary.first_turn, summary.last_turn))
                .collect();
            ranges.sort();
            assert_eq!(
                ranges,
                vec![(ids[0], ids[2]), (ids[3], ids[5])],
                "{user:?} {s}: two windows of three of its own turns, the seventh pending"
            );
        }
    }
    tiers.close().await.unwrap();
}

async fn a_slow_tier_is_left_out_and_named_within_the_deadline(backend: Backend) {
    let h = Harness::on(backend, |_| {}).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    engine
        .store_batch(vec![
            turn(&alice, "s1", "Biscuit chased a squirrel."),
            turn(&alice, "s1", "Then he slept."),
        ])
        .await
        .unwrap();
    processed(&engine).await;
    let slow = Duration::from_secs(5);
    for tier in ["index", "graph"] {
        engine.faults().delay(tier, slow);
    }
    let mut request = ContextRequest::new(
        alice.clone(),
        Some(session("s1")),
        "What did Biscuit chase?",
    );
    request.deadline = Some(Duration::from_millis(100));
    let started = Instant::now();
    let answer = engine.context(request).await.unwrap();
    let took = started.elapsed();
    assert!(
        took < slow,
        "answered in {took:?}, without waiting for the slow tiers"
    );
    assert!(
        answer.degraded.contains(&"index".to_string()),
        "{:?}",
        answer.degraded
    );
    assert!(
        answer.degraded.contains(&"graph".to_string()),
        "{:?}",
        answer.degraded
    );
    assert_eq!(answer.recent.len(), 2, "the recent tier still answered");
    assert!(!answer.cached);
    engine.faults().clear();
    engine.shutdown().await.unwrap();
}

async fn panics_restart_the_actor_and_lose_no_acked_turn(backend: Backend) {
    let h = Harness::on(backend, |_| {}).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    let mut acked = Vec::new();
    let mut acked_words = Vec::new();
    let actors = [
        "emotion",
        "indexer",
        "summarizer",
        "graph_sync",
        "recent",
        "index",
        "graph",
        "archive",
        "context",
    ];
    for (n, actor) in actors.iter().enumerate() {
        engine.faults().panic_next(actor, 1);
        // Traffic that reaches every actor: a store, its processing, a context request.
        match engine
            .store(turn(
                &alice,
                "s1",
                &format!("Turn number {n} mentions Biscuit and word{n}."),
            ))
            .await
        {
            Ok(stored) => {
                acked.push(stored.turn.id);
                acked_words.push(n);
            }
            Err(e) => assert_eq!(
                *actor, "archive",
                "only the archive's panic may refuse a store: {e}"
            ),
        }
        let _ = engine
            .context(ContextRequest::new(
                alice.clone(),
                Some(session("s1")),
                "Biscuit",
            ))
            .await;
        within(
            &format!("{actor} to restart"),
            engine.wait_restarts(actor, 1),
        )
        .await
        .unwrap();
        let health = engine.health();
        let restarts = &health.actor(actor).unwrap().restarts;
        assert_eq!(restarts.get("panic"), Some(&1), "{actor}: {restarts:?}");
    }
    let last = engine
        .store(turn(&alice, "s1", "After all the panics, word99."))
        .await
        .unwrap();
    acked.push(last.turn.id);
    processed(&engine).await;
    assert!(engine.all_up());
    let history: Vec<TurnId> = all_history(&engine, &alice, "s1")
        .await
        .iter()
        .map(|t| t.id)
        .collect();
    for id in &acked {
        assert!(history.contains(id), "acked turn {id} is stored");
    }
    for n in &acked_words {
        assert_eq!(
            search(&engine, &alice, &format!("word{n}")).await.len(),
            1,
            "word{n} indexed"
        );
    }
    assert_eq!(search(&engine, &alice, "word99").await.len(), 1);
    engine.shutdown().await.unwrap();
}

async fn shutdown_drains_and_the_next_start_finishes_processing(backend: Backend) {
    let h = Harness::on(backend, |c| c.engine.shutdown_timeout_ms = 50).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    let turns = (0..60)
        .map(|i| turn(&alice, "s1", &format!("Entry word{i} about Kyoto.")))
        .collect();
    let acked = engine.store_batch(turns).await.unwrap();
    engine.shutdown().await.unwrap();
    let refused = engine
        .store(turn(&alice, "s1", "too late"))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ShuttingDown);

    let engine = h.start().await;
    processed(&engine).await;
    assert_eq!(all_history(&engine, &alice, "s1").await.len(), acked.len());
    for i in [0, 30, 59] {
        assert_eq!(search(&engine, &alice, &format!("word{i}")).await.len(), 1);
    }
    engine.shutdown().await.unwrap();
}

async fn idle_sessions_are_summarised(backend: Backend) {
    let h = Harness::on(backend, |c| c.actors.processors.summarizer.idle_secs = 600).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    engine
        .store_batch(vec![
            turn(
                &alice,
                "s1",
                "I signed up for a pottery class with Mr. Okafor.",
            ),
            turn(&alice, "s1", "It is every Thursday evening."),
        ])
        .await
        .unwrap();
    processed(&engine).await;
    engine.run_idle().await.unwrap();
    let summaries = |engine: Engine| {
        let alice = alice.clone();
        async move {
            let mut query = SearchQuery::new("pottery Thursday", 10);
            query.kind = Some(DocKind::Summary);
            engine.search(&alice, query).await.unwrap()
        }
    };
    assert!(summaries(engine.clone()).await.is_empty(), "not idle yet");
    h.clock.advance(Duration::from_secs(601));
    engine.run_idle().await.unwrap();
    let found = summaries(engine.clone()).await;
    assert_eq!(found.len(), 1, "the idle session was summarised");
    assert!(found[0].text.contains("pottery"), "{}", found[0].text);
    engine.shutdown().await.unwrap();
}

async fn a_session_pending_at_a_restart_is_still_summarised_once_idle(backend: Backend) {
    let h = Harness::on(backend, |c| c.actors.processors.summarizer.idle_secs = 600).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    engine
        .store_batch(vec![
            turn(
                &alice,
                "s1",
                "I signed up for a pottery class with Mr. Okafor.",
            ),
            turn(&alice, "s1", "It is every Thursday evening."),
        ])
        .await
        .unwrap();
    processed(&engine).await;
    // Stopped while the two turns wait, in memory, for the session to go idle.
    engine.shutdown().await.unwrap();

    let engine = h.start().await;
    processed(&engine).await;
    h.clock.advance(Duration::from_secs(601));
    engine.run_idle().await.unwrap();
    let mut query = SearchQuery::new("pottery Thursday", 10);
    query.kind = Some(DocKind::Summary);
    let found = engine.search(&alice, query).await.unwrap();
    assert_eq!(
        found.len(),
        1,
        "the session pending at the restart was summarised"
    );
    assert!(found[0].text.contains("pottery"), "{}", found[0].text);
    engine.shutdown().await.unwrap();
}

async fn bad_input_is_refused_and_stores_nothing(backend: Backend) {
    let h = Harness::on(backend, |c| c.storage.limits.max_content_bytes = 1000).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    let err = engine
        .store_batch(vec![
            turn(&alice, "s1", "fine"),
            turn(&alice, "s1", &"x".repeat(1001)),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("content"), "{err}");
    let err = engine.store(turn(&alice, "s1", "   ")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(all_history(&engine, &alice, "s1").await.is_empty());
    assert_eq!(engine.health().head, 0);
    engine.shutdown().await.unwrap();
}

async fn switched_off_parts_are_reported_and_the_rest_works(backend: Backend) {
    let h = Harness::on(backend, |c| {
        c.storage.graph.enabled = false;
        c.actors.processors.emotion.enabled = false;
        c.actors.processors.summarizer.enabled = false;
    })
    .await;
    let engine = h.start().await;
    let health = engine.health();
    for off in ["graph", "emotion", "summarizer", "graph_sync"] {
        assert_eq!(health.actor(off).unwrap().state, "disabled", "{off}");
    }
    assert_eq!(health.processors.len(), 1, "only the indexer runs");
    let alice = scope("acme", "alice");
    engine
        .store(turn(&alice, "s1", "Biscuit is a golden retriever."))
        .await
        .unwrap();
    processed(&engine).await;
    let answer = context(&engine, &alice, Some("s1"), "golden retriever").await;
    assert!(answer.degraded.is_empty());
    assert!(answer.entities.is_empty() && answer.emotion.is_none());
    assert_eq!(search(&engine, &alice, "retriever").await.len(), 1);
    engine.shutdown().await.unwrap();
}

async fn concurrent_writers_are_group_committed_and_all_acked_turns_are_stored(backend: Backend) {
    let h = Harness::on(backend, |_| {}).await;
    let engine = h.start().await;
    let mut writers = Vec::new();
    for w in 0..50 {
        let engine = engine.clone();
        writers.push(tokio::spawn(async move {
            let user = scope("acme", &format!("writer-{w}"));
            let mut ids = Vec::new();
            for i in 0..8 {
                let stored = engine
                    .store(turn(&user, "s", &format!("writer {w} turn {i}")))
                    .await
                    .unwrap();
                ids.push(stored.turn.id);
            }
            (user, ids)
        }));
    }
    let mut all = std::collections::HashSet::new();
    for writer in writers {
        let (user, ids) = writer.await.unwrap();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "one writer's turns keep their order"
        );
        let history: Vec<TurnId> = all_history(&engine, &user, "s")
            .await
            .iter()
            .rev()
            .map(|t| t.id)
            .collect();
        assert_eq!(history, ids, "every acked turn of {user} is stored");
        all.extend(ids);
    }
    assert_eq!(all.len(), 400, "ids are unique");
    processed(&engine).await;
    assert_eq!(engine.health().head, all.iter().max().unwrap().0);
    engine.shutdown().await.unwrap();
}

async fn a_failing_recent_tier_is_named_and_the_archive_answers_for_it(backend: Backend) {
    let h = Harness::on(backend, |_| {}).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    engine
        .store_batch(vec![
            turn(&alice, "s1", "first"),
            turn(&alice, "s1", "second"),
        ])
        .await
        .unwrap();
    engine.faults().panic_next("recent", 1);
    let answer = context(&engine, &alice, Some("s1"), "anything").await;
    assert!(
        answer.degraded.contains(&"recent".to_string()),
        "{:?}",
        answer.degraded
    );
    assert_eq!(
        recent_contents(&answer),
        vec!["first", "second"],
        "the archive answered for the recent tier"
    );
    within(
        "the recent actor to restart",
        engine.wait_restarts("recent", 1),
    )
    .await
    .unwrap();
    let healthy = context(&engine, &alice, Some("s1"), "anything else").await;
    assert!(healthy.degraded.is_empty(), "{:?}", healthy.degraded);
    engine.shutdown().await.unwrap();
}

async fn processing_catches_up_past_repeated_and_forgotten_turns(backend: Backend) {
    let h = Harness::on(backend, |_| {}).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    let mut first = turn(&alice, "s1", "Hello there.");
    first.external_id = Some(mnemo_storage::model::ExternalId::new("msg-1").unwrap());
    engine.store(first.clone()).await.unwrap();
    let again = engine.store(first).await.unwrap();
    assert!(!again.created);
    let last = engine
        .store(turn(&alice, "s1", "Forget me soon."))
        .await
        .unwrap();
    engine.forget_turn(&alice, last.turn.id).await.unwrap();
    processed(&engine).await;
    assert!(
        engine.health().processors.iter().all(|p| p.lag == 0),
        "{:?}",
        engine.health().processors
    );
    engine.shutdown().await.unwrap();
}

async fn nothing_in_time_from_any_tier_is_a_deadline_error(backend: Backend) {
    let h = Harness::on(backend, |_| {}).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    engine
        .store(turn(&alice, "s1", "Biscuit naps a lot."))
        .await
        .unwrap();
    processed(&engine).await;
    let slow = Duration::from_secs(3);
    for tier in ["recent", "index", "graph", "archive"] {
        engine.faults().delay(tier, slow);
    }
    let mut request = ContextRequest::new(alice.clone(), Some(session("s1")), "Biscuit");
    request.deadline = Some(Duration::from_millis(100));
    let started = Instant::now();
    let err = engine.context(request).await.unwrap_err();
    assert!(
        started.elapsed() < slow,
        "answered without waiting for the tiers"
    );
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    engine.faults().clear();
    let answer = context(&engine, &alice, Some("s1"), "Biscuit").await;
    assert!(answer.degraded.is_empty());
    engine.shutdown().await.unwrap();
}

/// Stores `content` in session s1 while the recent actor panics on the push, and waits
/// for its restart.
async fn store_missed_by_the_cache(engine: &Engine, user: &Scope, content: &str) {
    engine.faults().panic_next("recent", 1);
    engine.store(turn(user, "s1", content)).await.unwrap();
    within(
        "the recent actor to restart",
        engine.wait_restarts("recent", 1),
    )
    .await
    .unwrap();
}

/// The contents of an answer's recent turns, oldest first.
fn recent_contents(answer: &mnemo_engine::ContextAnswer) -> Vec<&str> {
    answer.recent.iter().map(|t| t.content.as_str()).collect()
}

async fn a_write_the_recent_tier_missed_is_still_in_the_next_context(backend: Backend) {
    let h = Harness::on(backend, |_| {}).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    engine.store(turn(&alice, "s1", "first")).await.unwrap();
    // The session is now cached.
    assert_eq!(
        context(&engine, &alice, Some("s1"), "x").await.recent.len(),
        1
    );
    store_missed_by_the_cache(&engine, &alice, "second, missed by the cache").await;
    let answer = context(&engine, &alice, Some("s1"), "y").await;
    assert_eq!(
        recent_contents(&answer),
        vec!["first", "second, missed by the cache"]
    );
    // Refilled: the cache answers again, complete.
    engine.store(turn(&alice, "s1", "third")).await.unwrap();
    let answer = context(&engine, &alice, Some("s1"), "z").await;
    assert_eq!(answer.recent.len(), 3);
    assert!(answer.degraded.is_empty());
    engine.shutdown().await.unwrap();
}

/// A push the recent tier missed is marked in the archive only for a cache other nodes
/// and restarts share (Redis); an in-process cache dies with the process, so its marks
/// stay in memory and the store does not write them.
async fn a_missed_push_is_kept_in_the_archive_only_for_a_shared_cache(backend: Backend) {
    let h = Harness::on(backend, |_| {}).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    engine.store(turn(&alice, "s1", "first")).await.unwrap();
    store_missed_by_the_cache(&engine, &alice, "second, missed by the cache").await;
    engine.shutdown().await.unwrap();
    let tiers = h.tiers().await;
    let marks = tiers.archive.recent_gaps().await.unwrap();
    tiers.close().await.unwrap();
    match backend {
        Backend::Embedded => assert!(marks.is_empty(), "{marks:?}"),
        Backend::Server | Backend::Neo4jGraph => assert_eq!(marks.len(), 1, "{marks:?}"),
    }
    // Either way the next start serves the missed turn.
    let engine = h.start().await;
    let answer = context(&engine, &alice, Some("s1"), "x").await;
    assert_eq!(
        recent_contents(&answer),
        vec!["first", "second, missed by the cache"]
    );
    engine.shutdown().await.unwrap();
}

/// A refill clears the session's mark where it is kept: in the archive for a shared
/// cache, in memory only for an in-process one, whose refill then writes nothing to the
/// archive (a write per refilled context read queued on the one SQLite writer ahead of
/// group commit: BENCHMARKS.md).
async fn a_refill_clears_the_mark_where_it_is_kept(backend: Backend) {
    let h = Harness::on(backend, |_| {}).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    engine.store(turn(&alice, "s1", "first")).await.unwrap();
    store_missed_by_the_cache(&engine, &alice, "second, missed by the cache").await;
    processed(&engine).await;
    // The refill the next answer starts waits until the archive is held too.
    engine.faults().hold("refill");
    let answer = context(&engine, &alice, Some("s1"), "x").await;
    assert_eq!(
        recent_contents(&answer),
        vec!["first", "second, missed by the cache"]
    );
    if backend == Backend::Embedded {
        // Nothing the archive serves can finish now: the refill must not need it.
        engine.faults().hold("archive");
    }
    engine.faults().release("refill");
    within("the refill", engine.wait_refills()).await.unwrap();
    engine.faults().clear();
    // Refilled and unmarked: the cache answers, complete, and the next store lands in it.
    engine.store(turn(&alice, "s1", "third")).await.unwrap();
    let answer = context(&engine, &alice, Some("s1"), "y").await;
    assert_eq!(
        recent_contents(&answer),
        vec!["first", "second, missed by the cache", "third"]
    );
    engine.shutdown().await.unwrap();
    let tiers = h.tiers().await;
    let marks = tiers.archive.recent_gaps().await.unwrap();
    tiers.close().await.unwrap();
    assert!(marks.is_empty(), "{marks:?}");
}

async fn hostile_text_is_stored_and_found_verbatim(backend: Backend) {
    let h = Harness::on(backend, |_| {}).await;
    let engine = h.start().await;
    // Tenant and user ids with quotes and an SQL fragment; session ids from the samples.
    let user = scope(HOSTILE_SAMPLES[0], HOSTILE_SAMPLES[2]);
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    ];
    let samples: Vec<&str> = HOSTILE_SAMPLES
        .iter()
        .copied()
        .chain([MULTILINE_SAMPLE])
        .collect();
    assert!(samples.len() <= words.len());
    let mut stored = Vec::new();
    for (i, sample) in samples.iter().enumerate() {
        let session_id = HOSTILE_SAMPLES[i % HOSTILE_SAMPLES.len()];
        let content = format!(
            "{} I met O'Brien and Zoë D'Souza in Zürich. {sample}",
            words[i]
        );
        let appended = engine
            .store(turn(&user, session_id, &content))
            .await
            .unwrap_or_else(|e| panic!("{content:?} is stored: {e}"));
        assert_eq!(appended.turn.content, content);
        stored.push((session_id, content));
    }
    processed(&engine).await;

    for (i, (session_id, content)) in stored.iter().enumerate() {
        let history = all_history(&engine, &user, session_id).await;
        assert!(
            history.iter().any(|t| &t.content == content),
            "history of {session_id:?} holds {content:?}"
        );
        let hits = search(&engine, &user, words[i]).await;
        assert_eq!(hits.len(), 1, "searching {:?}", words[i]);
        assert_eq!(&hits[0].text, content);
        assert_eq!(hits[0].session_id.as_str(), *session_id);
        // The hostile text as a query is a query like any other.
        engine
            .search(&user, SearchQuery::new(content.as_str(), 10))
            .await
            .unwrap_or_else(|e| panic!("searching {content:?}: {e}"));
        // Context of the session shows the turn; a word of a turn in another session
        // brings that one in as an item.
        let other = (i + 1) % stored.len();
        let answer = context(&engine, &user, Some(session_id), words[other]).await;
        assert!(answer.degraded.is_empty(), "{:?}", answer.degraded);
        assert!(
            answer.recent.iter().any(|t| &t.content == content),
            "context of {session_id:?} shows {content:?}"
        );
        if stored[other].0 != *session_id {
            // A turn's item is shown as "role: content".
            let shown = format!("user: {}", stored[other].1);
            assert!(
                answer.items.iter().any(|item| item.text == shown),
                "context for {:?} holds {:?}: {:?}",
                words[other],
                stored[other].1,
                answer.items
            );
        }
        let answer = context(&engine, &user, Some(session_id), content).await;
        assert!(answer.degraded.is_empty(), "{:?}", answer.degraded);
    }

    // The entities the extractor finds in that text reach the graph with their names.
    let mut names: Vec<String> = stored
        .iter()
        .flat_map(|(_, content)| extract_entities(content))
        .filter(|e| e.validate().is_ok())
        .map(|e| e.name)
        .collect();
    names.sort();
    names.dedup();
    assert!(
        names.iter().any(|n| n.contains('\'')),
        "a name with an apostrophe is extracted: {names:?}"
    );
    for name in &names {
        let hood = engine
            .graph(&user, name, 1, 50)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name:?} is in the graph"));
        assert_eq!(&hood.center.name, name);
    }
    engine.shutdown().await.unwrap();
}

/// A question that names a date finds what was said that day, or about it ("yesterday"
/// said the day after), before what only shares its words.
async fn a_question_naming_a_date_finds_what_was_said_on_or_about_it(backend: Backend) {
    let h = Harness::on(backend, |_| {}).await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    let said = |session_id: &str, content: &str, y: i32, m: u32, d: u32| {
        let mut t = turn(&alice, session_id, content);
        t.event_time = Some(
            chrono::Utc
                .with_ymd_and_hms(y, m, d, 18, 0, 0)
                .single()
                .expect("a valid date"),
        );
        t
    };
    let mut turns = vec![
        said(
            "s1",
            "Dinner with the team at the harbour was fun.",
            2025,
            3,
            10,
        ),
        said("s2", "It rained all day, I stayed in.", 2025, 5, 3),
        said(
            "s3",
            "I had dinner with my mom yesterday, she loved the pasta.",
            2025,
            5,
            4,
        ),
        said("s4", "We hiked up the ridge last weekend.", 2025, 6, 9),
    ];
    for day in 10..25 {
        turns.push(said(
            "s5",
            &format!("dinner plans again, take {day}"),
            2025,
            7,
            day,
        ));
    }
    engine.store_batch(turns).await.unwrap();
    processed(&engine).await;

    let mut request = ContextRequest::new(
        alice.clone(),
        None,
        "Who did I have dinner with on May 3, 2025?",
    );
    request.max_items = Some(5);
    let answer = engine.context(request).await.unwrap();
    assert!(answer.degraded.is_empty(), "{:?}", answer.degraded);
    assert!(
        answer.items[0].text.contains("dinner with my mom"),
        "{:?}",
        answer.items
    );
    let hits = search(&engine, &alice, "dinner on May 3, 2025").await;
    assert!(hits[0].text.contains("dinner with my mom"), "{hits:?}");
    // A month of any year: no word of the question is in the turn said in June.
    let hits = search(&engine, &alice, "What did I do in June?").await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(hits[0].text.contains("hiked up the ridge"), "{hits:?}");
    engine.shutdown().await.unwrap();
}

/// A store scores its turns' emotions and importance before the insert: the answer and the
/// archive hold them at once, before any processor ran. A turn stored while the emotion
/// processor was off is scored by the processor once it runs; both fold into the user's
/// emotion state once.
async fn turns_are_scored_at_store_and_unscored_ones_by_the_processor(backend: Backend) {
    use mnemo_actors::analysis::emotion_scoring::{turn_scores, EmotionLexicon};
    let lexicon = EmotionLexicon::builtin();
    let h = Harness::on(backend, |_| {}).await;
    let alice = scope("acme", "alice");
    let calm = "We visited the lake on Sunday with my sister Anna.";
    let angry = "I am so angry and sad, my flight was cancelled again!";

    let engine = h
        .start_with(|c| c.actors.processors.emotion.enabled = false)
        .await;
    let unscored = engine.store(turn(&alice, "s1", calm)).await.unwrap().turn;
    assert_eq!((&unscored.emotion, unscored.importance), (&None, None));
    engine.shutdown().await.unwrap();

    let engine = h.start().await;
    engine.faults().hold("emotion");
    let scored = engine.store(turn(&alice, "s1", angry)).await.unwrap().turn;
    let (emotion, importance) = turn_scores(&lexicon, angry);
    assert_eq!(scored.emotion.as_ref(), Some(&emotion));
    assert_eq!(scored.importance, Some(importance));
    assert!(emotion.valence < 0.0, "{emotion:?}");
    // In the archive as answered, while the emotion processor has not run.
    let stored = all_history(&engine, &alice, "s1").await;
    assert_eq!(stored[0], scored);
    engine.faults().clear();
    processed(&engine).await;
    let stored = all_history(&engine, &alice, "s1").await;
    assert_eq!(stored[0], scored, "kept as stored");
    let (emotion, importance) = turn_scores(&lexicon, calm);
    assert_eq!(stored[1].id, unscored.id);
    assert_eq!(
        stored[1].emotion.as_ref(),
        Some(&emotion),
        "scored by the processor"
    );
    assert_eq!(stored[1].importance, Some(importance));
    engine.shutdown().await.unwrap();

    let tiers = h.tiers().await;
    let state = tiers
        .archive
        .emotion_state(&alice)
        .await
        .unwrap()
        .expect("an emotion state");
    assert_eq!(state.turns, 2);
    assert_eq!(state.last_turn, scored.id);
    tiers.close().await.unwrap();
}

/// Runs every body above on the embedded backends and on the server configuration.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Embedded).await;
                }
            )*
        }
        mod server {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Server).await;
                }
            )*
        }
        mod neo4j_graph {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Neo4jGraph).await;
                }
            )*
        }
    };
}

on_every_backend!(
    store_then_context_ranks_stored_turns_within_the_budget,
    a_question_naming_a_date_finds_what_was_said_on_or_about_it,
    users_and_tenants_never_see_each_other,
    forget_user_reaches_every_tier_even_while_processing,
    forget_turn_reaches_every_tier,
    restart_with_processors_behind_processes_every_turn_exactly_once,
    every_session_of_a_batch_is_summarised_once_per_window,
    a_slow_tier_is_left_out_and_named_within_the_deadline,
    panics_restart_the_actor_and_lose_no_acked_turn,
    shutdown_drains_and_the_next_start_finishes_processing,
    idle_sessions_are_summarised,
    a_session_pending_at_a_restart_is_still_summarised_once_idle,
    bad_input_is_refused_and_stores_nothing,
    switched_off_parts_are_reported_and_the_rest_works,
    turns_are_scored_at_store_and_unscored_ones_by_the_processor,
    concurrent_writers_are_group_committed_and_all_acked_turns_are_stored,
    a_failing_recent_tier_is_named_and_the_archive_answers_for_it,
    processing_catches_up_past_repeated_and_forgotten_turns,
    nothing_in_time_from_any_tier_is_a_deadline_error,
    a_write_the_recent_tier_missed_is_still_in_the_next_context,
    a_missed_push_is_kept_in_the_archive_only_for_a_shared_cache,
    a_refill_clears_the_mark_where_it_is_kept,
    hostile_text_is_stored_and_found_verbatim,
);
