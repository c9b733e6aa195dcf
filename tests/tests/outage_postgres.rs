//! A PostgreSQL outage under a running engine (Redis recent tier, PostgreSQL archive and
//! graph tables, on a cluster this test starts and stops itself): with PostgreSQL
//! stopped, writes are refused with an unavailable error naming the archive (never
//! acknowledged), context still answers what the other tiers hold and names the archive
//! in `degraded`, and health shows the archive down; once PostgreSQL is back the engine
//! recovers by itself, and the archive holds every acknowledged write and no refused one.

use std::collections::BTreeSet;

use mnemo_engine::{ContextAnswer, ContextRequest, Engine, ErrorKind};
use mnemo_storage::model::{Scope, TurnId};
use mnemo_tests::{free_port, scope, session, turn, within, Backend, Harness, PostgresServer};

async fn context(engine: &Engine, user: &Scope, query: &str) -> ContextAnswer {
    engine
        .context(ContextRequest::new(
            user.clone(),
            Some(session("s1")),
            query,
        ))
        .await
        .expect("context is answered")
}

fn contents(answer: &ContextAnswer) -> Vec<String> {
    answer.recent.iter().map(|t| t.content.clone()).collect()
}

async fn store(engine: &Engine, user: &Scope, session_id: &str, text: &str) -> String {
    engine
        .store(turn(user, session_id, text))
        .await
        .unwrap_or_else(|e| panic!("{text:?} is acknowledged: {e}"))
        .turn
        .content
}

fn archive_state(engine: &Engine) -> String {
    engine
        .health()
        .actor("archive")
        .map(|a| a.state.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_refuses_writes_answers_reads_and_heals_by_itself() {
    let mut postgres = PostgresServer::start(free_port());
    let url = postgres.url();
    let h = Harness::on(Backend::Server, |c| {
        c.storage.archive.url = url;
        // A write that finds the server gone gives up on the pool after this long.
        c.storage.archive.acquire_timeout_ms = 1_000;
    })
    .await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    // Every acknowledged write, in the order stored; `recent` those of session s1.
    let mut acked = vec![store(&engine, &alice, "s0", "Biscuit was adopted in spring").await];
    let mut recent = Vec::new();
    for text in [
        "Biscuit naps before the outage",
        "Biscuit barks before the outage",
    ] {
        recent.push(store(&engine, &alice, "s1", text).await);
    }
    acked.extend(recent.clone());
    within("the processors to catch up", engine.wait_processed())
        .await
        .unwrap();
    let answer = context(&engine, &alice, "Biscuit").await;
    assert!(answer.degraded.is_empty(), "{:?}", answer.degraded);
    assert_eq!(contents(&answer), recent);
    // The session is now cached in Redis (refilled from the archive after that miss).
    within("the recent tier's refill", engine.wait_refills())
        .await
        .unwrap();

    postgres.stop();
    let restarts = engine
        .health()
        .actor("archive")
        .map_or(0, |a| a.restarts.values().sum::<u64>());
    let refused = ["refused while PostgreSQL is down", "refused again"];
    for text in refused {
        let err = engine
            .store(turn(&alice, "s1", text))
            .await
            .expect_err("a write the archive cannot take is not acknowledged");
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("archive"), "{err}");
    }
    assert_eq!(
        archive_state(&engine),
        "restarting",
        "{:?}",
        engine.health()
    );
    // A question not asked before (an answer cached before the outage would still be
    // served, as no write has come since).
    let answer = context(&engine, &alice, "How is Biscuit?").await;
    assert!(!answer.cached);
    assert_eq!(
        contents(&answer),
        recent,
        "the recent tier answers from Redis"
    );
    assert!(
        answer.items.iter().any(|i| i.text.contains("adopted")),
        "the index still answers: {:?}",
        answer.items
    );
    for tier in ["archive", "emotion", "graph"] {
        assert!(
            answer.degraded.iter().any(|d| d == tier),
            "{tier} is named: {:?}",
            answer.degraded
        );
    }
    assert_eq!(
        archive_state(&engine),
        "restarting",
        "{:?}",
        engine.health()
    );

    postgres.start_again();
    within(
        "the archive to come back by itself",
        engine.wait_restarts("archive", restarts + 1),
    )
    .await
    .unwrap();
    assert_eq!(archive_state(&engine), "up");
    for text in ["after one", "after two"] {
        recent.push(store(&engine, &alice, "s1", text).await);
    }
    acked.extend(recent[2..].iter().cloned());
    within("the processors to catch up", engine.wait_processed())
        .await
        .unwrap();
    let answer = context(&engine, &alice, "Biscuit").await;
    assert!(answer.degraded.is_empty(), "{:?}", answer.degraded);
    assert_eq!(
        contents(&answer),
        recent,
        "every acknowledged write, in order"
    );
    engine.shutdown().await.unwrap();

    let tiers = h.tiers().await;
    let stored: Vec<String> = tiers
        .archive
        .turns_after(TurnId(0), 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.content)
        .collect();
    tiers.close().await.unwrap();
    assert_eq!(stored, acked, "the archive holds every acknowledged write");
    let stored: BTreeSet<&str> = stored.iter().map(String::as_str).collect();
    for text in refused {
        assert!(!stored.contains(text), "{text:?} was refused yet stored");
    }
}
