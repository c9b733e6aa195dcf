//! The recent-tier conformance suite on a Redis server (`MNEMO_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`; `.ci/run` starts one), and reconnection after a restart of
//! a Redis server this test starts itself.

use std::sync::Arc;

use mnemo_storage::clock::{ManualClock, SharedClock};
use mnemo_storage::conformance::{scope, session, stored_turn, t0};
use mnemo_storage::model::Order;
use mnemo_storage::recent::redis::RedisRecent;
use mnemo_storage::recent::{RecentBackend, RecentConfig, RecentStore};
use mnemo_storage::ErrorKind;
use mnemo_tests::{free_port, RedisServer};

fn redis_url() -> String {
    std::env::var("MNEMO_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

mod recent_redis {
    mnemo_storage::recent_conformance!(mnemo_storage::conformance::redis::RedisRecentFactory::new(
        super::redis_url()
    ));
}

#[tokio::test]
async fn reconnects_after_the_server_restarts() {
    let port = free_port();
    let mut server = RedisServer::start(port);
    let clock: SharedClock = ManualClock::new(t0());
    let store: Arc<dyn RecentStore> = Arc::new(
        RedisRecent::new(
            RecentConfig {
                backend: RecentBackend::Redis,
                redis_url: format!("redis://127.0.0.1:{port}"),
                ..RecentConfig::default()
            },
            clock,
        )
        .unwrap(),
    );
    let alice = scope("acme", "alice");
    let s = session("s");
    store.fill(&alice, &s, &[]).await.unwrap();
    store
        .push(&[stored_turn(1, &alice, "s", "before")])
        .await
        .unwrap();
    let got = store
        .recent(&alice, &s, 10, Order::OldestFirst)
        .await
        .unwrap();
    assert_eq!(got.map(|t| t.len()), Some(1));

    server.stop();
    let err = store
        .recent(&alice, &s, 10, Order::OldestFirst)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let err = store
        .push(&[stored_turn(2, &alice, "s", "during")])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");

    let _server = RedisServer::start(port);
    // The same store recovers by itself: the connection manager reconnects on the calls
    // that follow (a call may still report the outage while the reconnect is under way).
    let mut recovered = false;
    for _ in 0..20 {
        match store.fill(&alice, &s, &[]).await {
            Ok(()) => {
                recovered = true;
                break;
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}"),
        }
    }
    assert!(recovered, "the store did not reconnect");
    store
        .push(&[stored_turn(3, &alice, "s", "after")])
        .await
        .unwrap();
    let got = store
        .recent(&alice, &s, 10, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    // The restarted server kept nothing on disk: only the turn pushed after the restart.
    assert_eq!(got.iter().map(|t| t.id.0).collect::<Vec<_>>(), vec![3]);
}
