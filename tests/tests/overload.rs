//! Overload is refused at the door, at once, instead of turning into waits: a full
//! mailbox answers busy (HTTP 429 with Retry-After), and a processor backlog at its bound
//! refuses writes until the processors catch up, while a bulk import waits for room.
//!
//! The overload is made by a fault-injection pause: the test holds an actor's requests
//! (or a processor's steps) and releases them when it chooses, so nothing depends on the
//! machine's speed.

use mnemo_engine::storage::conformance::scope;
use mnemo_engine::storage::index::SearchQuery;
use mnemo_engine::{Error, ErrorKind};
use mnemo_tests::served::{Served, ACME_KEY};
use mnemo_tests::{turn, within};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A search held in the index; the index takes one at a time and queues one more.
fn one_search_at_a_time(config: &mut mnemo_engine::Config) {
    config.actors.in_flight.index = 1;
    config.actors.mailbox.index = 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mailbox_is_busy_in_the_library_and_429_over_http() {
    let served = Served::start(one_search_at_a_time).await;
    let engine = served.engine.clone();
    let maya = scope("acme", "maya");
    engine.faults().hold("index");

    // In the library: one search in flight, held; the next fill the mailbox; the rest are
    // refused at once, so the first search to finish is a refusal.
    let searches: Vec<_> = (0..10)
        .map(|_| {
            let (engine, maya) = (engine.clone(), maya.clone());
            tokio::spawn(async move { engine.search(&maya, SearchQuery::new("sock", 5)).await })
        })
        .collect();
    let (first, _, held) = within("a refusal", futures_util::future::select_all(searches)).await;
    let refused = first
        .expect("the task ran")
        .expect_err("refused while the index is held");
    assert_eq!(refused.kind(), ErrorKind::Busy, "{refused}");
    assert!(refused.is_retryable());
    assert!(refused.to_string().contains("index is busy"), "{refused}");

    // Over HTTP: 429, a JSON error with code busy, and Retry-After. As above, the first
    // of several requests to be answered is the refusal (the others may take the last
    // places in the mailbox, and wait).
    let requests: Vec<_> = (0..10)
        .map(|_| {
            let request = served.request(
                Method::GET,
                "/v1/search?user_id=maya&q=sock",
                Some(ACME_KEY),
            );
            tokio::spawn(async move { request.send().await })
        })
        .collect();
    let (first, _, waiting) = within("a 429", futures_util::future::select_all(requests)).await;
    let response = first.expect("the task ran").expect("an answer");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "busy", "{body}");

    // Released, the requests that were taken are answered.
    engine.faults().release("index");
    let mut answered = 0;
    for search in held {
        match within("a held search", search).await.expect("the task ran") {
            Ok(_) => answered += 1,
            Err(e) => assert_eq!(e.kind(), ErrorKind::Busy, "{e}"),
        }
    }
    assert!(answered >= 1, "the search in flight is answered");
    for request in waiting {
        let response = within("a waiting request", request)
            .await
            .expect("the task ran")
            .expect("an answer");
        assert!(
            [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS].contains(&response.status()),
            "{}",
            response.status()
        );
    }
    engine
        .search(&maya, SearchQuery::new("sock", 5))
        .await
        .expect("the index takes requests again");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_refused_past_the_backlog_bound_and_taken_again_once_it_drains() {
    let served = Served::start(|c| c.actors.processors.max_backlog_turns = 10).await;
    let engine = served.engine.clone();
    let maya = scope("acme", "maya");
    // The emotion processor takes no step until released: the backlog grows.
    engine.faults().hold("emotion");
    let mut stored = 0;
    let refused = loop {
        match engine
            .store(turn(&maya, "s1", &format!("turn {stored}")))
            .await
        {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored <= 11, "{stored} stored past a bound of 10");
    };
    assert!(
        matches!(
            &refused,
            Error::Actor(mnemo_engine::actors::Error::Behind { limit: 10, .. })
        ),
        "{refused:?}"
    );
    assert_eq!(refused.kind(), ErrorKind::Busy);
    assert!(refused.to_string().contains("behind"), "{refused}");
    let health = engine.health();
    assert!(health.behind, "{health:?}");
    assert!(health.backlog >= 10, "{health:?}");

    // Over HTTP: the write is 429, and /readyz is 503 saying the engine is behind.
    let (status, body) = served
        .post(
            "/v1/turns",
            ACME_KEY,
            json!({ "user_id": "maya", "session_id": "s1", "role": "user", "content": "more" }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "busy", "{body}");
    let (status, ready) = served.get("/readyz", ACME_KEY).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["behind"], true, "{ready}");
    let metrics = engine.metrics_text();
    if !metrics.is_empty() {
        assert!(metrics.contains("mnemo_behind 1"), "{metrics}");
    }

    // A bulk import waits for room instead of being refused.
    let paced = tokio::spawn({
        let (engine, maya) = (engine.clone(), maya.clone());
        async move {
            engine
                .store_batch_paced(vec![turn(&maya, "s2", "imported while behind")])
                .await
        }
    });
    engine.faults().release("emotion");
    within("the paced import", paced)
        .await
        .expect("the task ran")
        .expect("stored once there was room");
    served.processed().await;
    let health = engine.health();
    assert!(!health.behind, "{health:?}");
    engine
        .store(turn(&maya, "s1", "taken again"))
        .await
        .expect("writes are taken again");
    let (status, ready) = served.get("/readyz", ACME_KEY).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    served.stop().await;
}

/// The engine's store gate, as health shows it.
fn store_gate(engine: &mnemo_engine::Engine) -> mnemo_engine::AdmissionHealth {
    engine
        .health()
        .admission
        .into_iter()
        .find(|g| g.operation == "store")
        .expect("a store gate")
}

/// A small store gate with a short target, so held and delayed stores overrun it.
fn small_store_gate(config: &mut mnemo_engine::Config) {
    let admission = &mut config.engine.admission;
    admission.store_max_in_flight = 8;
    admission.store_min_in_flight = 2;
    admission.store_target_ms = 100;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_admission_limit_stores_are_refused_at_once_and_the_limit_follows_latency() {
    let served = Served::start(small_store_gate).await;
    let engine = served.engine.clone();
    let maya = scope("acme", "maya");

    // Eight stores held in the archive fill the gate; the ninth is refused at once, so
    // it is the first to finish.
    engine.faults().hold("archive");
    let stores: Vec<_> = (0..9)
        .map(|i| {
            let (engine, maya) = (engine.clone(), maya.clone());
            tokio::spawn(async move { engine.store(turn(&maya, "s1", &format!("held {i}"))).await })
        })
        .collect();
    let (first, _, held) = within("a refusal", futures_util::future::select_all(stores)).await;
    let refused = first
        .expect("the task ran")
        .expect_err("refused while eight stores are in flight");
    assert!(
        matches!(
            &refused,
            Error::Actor(mnemo_engine::actors::Error::AtCapacity {
                operation: "store",
                limit: 8
            })
        ),
        "{refused:?}"
    );
    assert_eq!(refused.kind(), ErrorKind::Busy);
    assert!(refused.to_string().contains("at capacity"), "{refused}");
    let gate = store_gate(&engine);
    assert_eq!((gate.in_flight, gate.limit), (8, 8), "{gate:?}");

    // Over HTTP the same refusal is a 429 with Retry-After.
    let response = served
        .request(Method::POST, "/v1/turns", Some(ACME_KEY))
        .json(&json!({ "user_id": "maya", "session_id": "s1", "role": "user", "content": "x" }))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "busy", "{body}");

    // Released after their target had passed (every store now also waits 150 ms in the
    // archive), the held stores are all stored: they overran together, and shrink the
    // limit once, by a quarter.
    engine
        .faults()
        .delay("archive", std::time::Duration::from_millis(150));
    engine.faults().release("archive");
    for store in held {
        within("a held store", store)
            .await
            .expect("the task ran")
            .expect("a held store is stored once released");
    }
    assert_eq!(store_gate(&engine).limit, 6);

    // Each later store that overruns shrinks it again, down to the floor.
    for i in 0..4 {
        engine
            .store(turn(&maya, "s1", &format!("slow {i}")))
            .await
            .expect("stored");
    }
    assert_eq!(store_gate(&engine).limit, 2);

    // Answers within the target grow it back.
    engine.faults().clear();
    let mut stored = 0;
    while store_gate(&engine).limit < 4 {
        engine
            .store(turn(&maya, "s2", &format!("fast {stored}")))
            .await
            .expect("stored");
        stored += 1;
        assert!(stored < 1_000, "the limit did not grow back");
    }
    let metrics = engine.metrics_text();
    if !metrics.is_empty() {
        assert!(
            metrics.contains("mnemo_admission_limit{operation=\"store\"}"),
            "{metrics}"
        );
    }
    served.stop().await;
}

/// One group commit answers many single-turn stores at once, and each then pushes its
/// turn to the recent tier: the tier takes them all, so none leaves a gap (with Redis a
/// refused push costs a gap mark written to the archive, on the store's path: at 10,000
/// simulated users on Redis + PostgreSQL that made the stores' p99 2.3 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_one_group_commit_answers_reaches_the_recent_tier() {
    const STORES: usize = 1_000;
    let harness = mnemo_tests::Harness::on(mnemo_tests::Backend::Server, |_| {}).await;
    let engine = harness.start().await;
    // The first store's commit is held; the others gather behind it, to be committed in
    // one group when it is released.
    engine.faults().hold("archive");
    let stores: Vec<_> = (0..STORES)
        .map(|i| {
            let engine = engine.clone();
            let user = scope("acme", &format!("user-{i}"));
            tokio::spawn(async move { engine.store(turn(&user, "s1", "I planted tomatoes")).await })
        })
        .collect();
    within("every store pending in the archive", async {
        loop {
            let in_flight = store_gate(&engine).in_flight;
            let queued = engine
                .health()
                .actors
                .iter()
                .find(|a| a.name == "archive")
                .and_then(|a| a.mailbox_depth);
            if in_flight == STORES && queued == Some(0) {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    engine.faults().release("archive");
    for store in stores {
        within("a store", store)
            .await
            .expect("the task ran")
            .expect("stored");
    }
    engine.shutdown().await.expect("shut down");
    let tiers = harness.tiers().await;
    let gaps = tiers.archive.recent_gaps().await.expect("gaps read");
    tiers.close().await.expect("closed");
    assert!(
        gaps.is_empty(),
        "{} sessions were left out of the recent tier",
        gaps.len()
    );
}

/// While admitted requests overrun their target, the processors wait between steps
/// (their writes and reads in the database servers would take the cores the requests
/// need), and they take up their pace again once the requests answer within it: with an
/// hour's yield, the turns stored meanwhile are processed only because the pressure
/// went off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processors_give_way_while_requests_overrun_and_resume_once_they_do_not() {
    let served = Served::start(|config| {
        small_store_gate(config);
        config.actors.processors.yield_ms = 3_600_000;
    })
    .await;
    let engine = served.engine.clone();
    let maya = scope("acme", "maya");

    // Two stores that each overrun the 100 ms target: more than one of the last hundred.
    engine
        .faults()
        .delay("archive", std::time::Duration::from_millis(150));
    for i in 0..2 {
        engine
            .store(turn(&maya, "s1", &format!("slow {i}")))
            .await
            .expect("stored");
    }
    assert!(store_gate(&engine).overrunning, "{:?}", store_gate(&engine));
    // Slow stores go on (each overruns, and keeps the gate's word fresh: without answers
    // the pressure is taken as off) until every processor, its step done, gives way.
    let processors: Vec<String> = engine
        .health()
        .processors
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert!(!processors.is_empty());
    let all_yielding = async {
        for name in &processors {
            engine
                .wait_yielding(name)
                .await
                .expect("the processor runs");
        }
    };
    let slow_stores = async {
        for i in 2.. {
            engine
                .store(turn(&maya, "s1", &format!("slow {i}")))
                .await
                .expect("stored");
        }
    };
    within("every processor giving way", async {
        tokio::select! {
            () = all_yielding => {}
            () = slow_stores => {}
        }
    })
    .await;
    assert!(engine.health().processors.iter().all(|p| p.yielding));
    let metrics = engine.metrics_text();
    if !metrics.is_empty() {
        assert!(
            metrics.contains("mnemo_admission_overrunning{operation=\"store\"} 1"),
            "{metrics}"
        );
    }

    // Stores within the target push the overruns out of the window of a hundred: the
    // pressure goes off, the processors step again and handle every turn.
    engine.faults().clear();
    let mut stored = 0;
    while store_gate(&engine).overrunning {
        engine
            .store(turn(&maya, "s2", &format!("fast {stored}")))
            .await
            .expect("stored");
        stored += 1;
        assert!(stored < 10_000, "the stores never came back within target");
    }
    assert!(
        stored >= 99,
        "the last overrun but one leaves the window after 99 answers, not {stored}"
    );
    within("the processors catching up", engine.wait_processed())
        .await
        .expect("processed");
    let health = engine.health();
    assert!(
        health.processors.iter().all(|p| p.lag == 0 && !p.yielding),
        "{health:?}"
    );
    served.stop().await;
}
