//! A Redis outage under a running engine (Redis recent tier, PostgreSQL archive): with
//! Redis stopped, writes are still acknowledged and context is still answered (recent
//! turns from the archive, `degraded` naming the recent tier); once Redis is back the
//! engine recovers by itself, and every acknowledged write is there.

use mnemo_engine::{ContextAnswer, ContextRequest, Engine};
use mnemo_storage::model::Scope;
use mnemo_tests::{
    free_port, scope, session, turn, within, Backend, Harness, RedisServer, RefusingPort,
};

async fn context(engine: &Engine, user: &Scope) -> ContextAnswer {
    engine
        .context(ContextRequest::new(
            user.clone(),
            Some(session("s1")),
            "dog",
        ))
        .await
        .expect("context is answered")
}

fn contents(answer: &ContextAnswer) -> Vec<String> {
    answer.recent.iter().map(|t| t.content.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_degrades_context_loses_no_write_and_heals_by_itself() {
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let h = Harness::on(Backend::Server, |c| {
        c.storage.recent.redis_url = format!("redis://127.0.0.1:{port}");
    })
    .await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    let mut acked = Vec::new();
    for text in ["before one", "before two"] {
        acked.push(
            engine
                .store(turn(&alice, "s1", text))
                .await
                .unwrap()
                .turn
                .content,
        );
    }
    assert_eq!(contents(&context(&engine, &alice).await), acked);

    redis.stop();
    for text in ["during one", "during two"] {
        let stored = engine.store(turn(&alice, "s1", text)).await;
        acked.push(
            stored
                .expect("writes are acknowledged without Redis")
                .turn
                .content,
        );
    }
    let answer = context(&engine, &alice).await;
    assert!(
        answer.degraded.contains(&"recent".to_string()),
        "{:?}",
        answer.degraded
    );
    assert_eq!(
        contents(&answer),
        acked,
        "the archive answers for the recent tier"
    );

    let _redis = RedisServer::start(port);
    // Recovery is the engine's own: each failed call restarts the recent actor after its
    // backoff, and its connection manager reconnects. Wait on those restarts, bounded.
    // The count is read before each request, so a failure that request meets restarts
    // the actor after the read.
    let mut healed = None;
    for _ in 0..50 {
        let restarts = engine
            .health()
            .actor("recent")
            .map_or(0, |a| a.restarts.values().sum::<u64>());
        let answer = context(&engine, &alice).await;
        if answer.degraded.is_empty() {
            healed = Some(answer);
            break;
        }
        within(
            "the recent actor to restart",
            engine.wait_restarts("recent", restarts + 1),
        )
        .await
        .unwrap();
    }
    let healed = healed.expect("the engine recovers once Redis is back");
    assert_eq!(contents(&healed), acked);
    acked.push(
        engine
            .store(turn(&alice, "s1", "after"))
            .await
            .unwrap()
            .turn
            .content,
    );
    let answer = context(&engine, &alice).await;
    assert!(answer.degraded.is_empty(), "{:?}", answer.degraded);
    assert_eq!(
        contents(&answer),
        acked,
        "every acknowledged write, in order"
    );
    engine.shutdown().await.unwrap();
}

/// Sets a configuration parameter of the Redis on `port`.
fn redis_config(port: u16, key: &str, value: &str) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("a url");
    let mut conn = client.get_connection().expect("Redis answers");
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(key)
        .arg(value)
        .query::<()>(&mut conn)
        .expect("CONFIG SET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_redis_refused_are_in_context_after_a_restart() {
    let port = free_port();
    let _redis = RedisServer::start(port);
    let h = Harness::on(Backend::Server, |c| {
        c.storage.recent.redis_url = format!("redis://127.0.0.1:{port}");
    })
    .await;
    let engine = h.start().await;
    let alice = scope("acme", "alice");
    let mut acked = Vec::new();
    for text in ["before one", "before two"] {
        acked.push(
            engine
                .store(turn(&alice, "s1", text))
                .await
                .unwrap()
                .turn
                .content,
        );
    }
    assert_eq!(contents(&context(&engine, &alice).await), acked);

    // Redis keeps what it has and answers reads, but refuses every write.
    redis_config(port, "maxmemory-policy", "noeviction");
    redis_config(port, "maxmemory", "1");
    for text in ["during one", "during two"] {
        let stored = engine.store(turn(&alice, "s1", text)).await;
        acked.push(stored.expect("acknowledged without the cache").turn.content);
    }
    engine.shutdown().await.unwrap();

    // Restarted with Redis taking writes again, and still holding the session without
    // the two turns: the session is read from the archive, and refilled.
    redis_config(port, "maxmemory", "0");
    let engine = h.start().await;
    assert_eq!(
        contents(&context(&engine, &alice).await),
        acked,
        "the turns Redis refused are in context after the restart"
    );
    within("the refill", engine.wait_refills()).await.unwrap();
    let answer = context(&engine, &alice).await;
    assert!(answer.degraded.is_empty(), "{:?}", answer.degraded);
    assert_eq!(contents(&answer), acked);
    engine.shutdown().await.unwrap();

    // Refilled: the mark is gone from the archive too, so the next start reads the cache.
    let tiers = h.tiers().await;
    assert!(tiers.archive.recent_gaps().await.unwrap().is_empty());
    tiers.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_at_start_shows_the_recent_tier_down_until_it_answers() {
    // Held until Redis starts: a server another test started on a port it freed would
    // answer the first ping (seen once in CI: the tier never failed).
    let refusing = RefusingPort::reserve();
    let port = refusing.port();
    let h = Harness::on(Backend::Server, |c| {
        c.storage.recent.redis_url = format!("redis://127.0.0.1:{port}");
    })
    .await;
    // Nothing listens on the port: the engine starts, and says the recent tier is down.
    let engine = h.start().await;
    within(
        "the recent tier to fail its first ping",
        engine.wait_failures("recent", 1),
    )
    .await
    .unwrap();
    let recent = engine.health().actor("recent").cloned().expect("recent");
    assert_ne!(recent.state, "up", "{recent:?}");
    let why = recent.last_failure.clone().unwrap_or_default();
    assert!(why.contains("redis"), "the failure names Redis: {why}");
    let alice = scope("acme", "alice");
    let stored = engine
        .store(turn(&alice, "s1", "stored without Redis"))
        .await;
    assert!(stored.is_ok(), "writes go on: {stored:?}");
    let answer = context(&engine, &alice).await;
    assert!(answer.degraded.contains(&"recent".to_string()));
    assert_eq!(contents(&answer), vec!["stored without Redis".to_string()]);

    // Redis comes up: the next restart's probe finds it, and the tier is up again.
    let _redis = RedisServer::start(refusing.release());
    let mut up = false;
    for _ in 0..50 {
        let restarts = engine
            .health()
            .actor("recent")
            .map_or(0, |a| a.restarts.values().sum::<u64>());
        if engine
            .health()
            .actor("recent")
            .is_some_and(|a| a.state == "up")
        {
            up = true;
            break;
        }
        within(
            "the recent actor to try again",
            engine.wait_restarts("recent", restarts + 1),
        )
        .await
        .unwrap();
    }
    assert!(up, "the recent tier is up once Redis answers");
    let answer = context(&engine, &alice).await;
    assert!(answer.degraded.is_empty(), "{:?}", answer.degraded);
    engine.shutdown().await.unwrap();
}
