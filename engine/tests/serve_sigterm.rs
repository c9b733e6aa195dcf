//! `mnemo serve` as a real process: SIGTERM while writers are storing turns. Every
//! write that was answered 2xx must be in the store after the process has stopped.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mnemo_engine::storage::archive::HistoryPage;
use mnemo_engine::storage::model::{Scope, SessionId};
use mnemo_engine::{Config, Engine};
use tokio::sync::Notify;

const KEY: &str = "sigterm-test-key";
const WRITERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_writes_keeps_every_acknowledged_write() {
    let mut served = common::serve(KEY, "");
    // The server says where it listens once it is ready.
    let (_, base) = served.wait_listening();
    // Keep draining stderr so the server never blocks on a full pipe.
    let drain = served.drain();

    let acked = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(Notify::new());
    let client = reqwest::Client::new();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (client, base, acked, count, enough) = (
            client.clone(),
            base.clone(),
            acked.clone(),
            count.clone(),
            enough.clone(),
        );
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let external_id = format!("w{w}-{i}");
                let body = serde_json::json!({
                    "turns": (0..5).map(|j| serde_json::json!({
                        "user_id": "maya",
                        "session_id": format!("writer-{w}"),
                        "role": "user",
                        "content": format!("writer {w} batch {i} turn {j}"),
                        "external_id": format!("{external_id}-{j}"),
                    })).collect::<Vec<_>>()
                });
                let sent = client
                    .post(format!("{base}/v1/turns"))
                    .bearer_auth(KEY)
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        acked
                            .lock()
                            .extend((0..5).map(|j| format!("{external_id}-{j}")));
                        if count.fetch_add(1, Ordering::SeqCst) + 1 == 20 * WRITERS {
                            enough.notify_one();
                        }
                    }
                    // Refused or cut off by the shutdown: not acknowledged, may or may
                    // not be stored.
                    Ok(_) | Err(_) => return,
                }
            }
        }));
    }
    tokio::time::timeout(Duration::from_secs(120), enough.notified())
        .await
        .expect("writes are acknowledged");
    served.terminate();
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(120), writer)
            .await
            .expect("writers stop once the server does")
            .unwrap();
    }
    let mut child = served.child;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let log = drain.join().unwrap();
    assert!(
        status.success(),
        "mnemo serve exited with {status}: {log:?}"
    );
    assert!(log.iter().any(|l| l.contains("draining")), "{log:?}");

    let mut config = Config::load(Some(&served.config_path), Vec::new()).unwrap();
    config.actors.processors.emotion.enabled = false;
    let engine = Engine::start(config).await.unwrap();
    let maya = Scope::parse("acme", "maya").unwrap();
    let mut stored = HashSet::new();
    for w in 0..WRITERS {
        let history = engine
            .history(
                &maya,
                &SessionId::new(format!("writer-{w}")).unwrap(),
                HistoryPage {
                    before: None,
                    limit: 1_000_000,
                },
            )
            .await
            .unwrap();
        stored.extend(
            history
                .into_iter()
                .map(|t| t.external_id.as_str().to_owned()),
        );
    }
    let acked = acked.lock().clone();
    assert!(acked.len() >= 100 * WRITERS, "{} acknowledged", acked.len());
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    engine.shutdown().await.unwrap();
}
