//! One full context assembly on a warm engine: an [`Engine`] on the embedded defaults
//! in a temporary directory, preloaded with a few thousand generated turns of some users
//! through `store_batch`, every processor caught up (`wait_processed`), then
//! `engine.context(...)` for a question about something the user said before, in the
//! user's current session.
//!
//! Two figures: `assemble`, where every request is assembled (the answer cache is cut
//! to one entry and the requests cycle through 500 different ones, so none is a hit),
//! and `cached`, the same request again (a hit of the per-user answer cache).
//!
//! [`Engine`]: mnemo_engine::Engine

mod common;

use std::cell::Cell;

use criterion::{criterion_group, criterion_main, Criterion};
use mnemo_benches::setup::{load_config, LocalEngine};
use mnemo_benches::workload::{Workload, WorkloadConfig};
use mnemo_engine::storage::model::SessionId;
use mnemo_engine::ContextRequest;

/// Turns per `store_batch` call while preloading.
const BATCH: usize = 500;
/// Questions per user the `assemble` requests cycle through.
const QUESTIONS_PER_USER: usize = 25;

fn context(c: &mut Criterion) {
    let mode = common::mode();
    let rt = common::runtime();
    let (users, turns_per_user) = mode.pick((20, 250), (4, 30));
    let mut config = load_config(None, std::iter::empty()).expect("the default configuration");
    config.actors.context.cache_entries = 1;
    let local = rt
        .block_on(LocalEngine::start(config, None))
        .expect("start the engine");
    let engine = &local.engine;

    let mut workload = Workload::new(WorkloadConfig {
        users,
        ..WorkloadConfig::default()
    });
    let turns: Vec<_> = workload
        .next_turns(users * turns_per_user)
        .iter()
        .map(|t| t.to_new_turn().expect("a valid generated turn"))
        .collect();
    rt.block_on(async {
        for batch in turns.chunks(BATCH) {
            engine.store_batch(batch.to_vec()).await.expect("store");
        }
        engine.wait_processed().await.expect("processors catch up");
    });
    eprintln!(
        "context: {} turns of {users} users stored and processed",
        turns.len()
    );

    let requests: Vec<ContextRequest> = (0..users * QUESTIONS_PER_USER)
        .map(|i| {
            let user = workload.user(i % users);
            let session = SessionId::new(user.session_id()).expect("a valid session id");
            ContextRequest::new(
                user.scope().expect("a valid scope"),
                Some(session),
                user.question(),
            )
        })
        .collect();

    let mut group = c.benchmark_group("context");
    let mut n = 0usize;
    let degraded = Cell::new(0usize);
    group.bench_function("assemble", |b| {
        b.to_async(&rt).iter(|| {
            let request = requests[n % requests.len()].clone();
            n += 1;
            let degraded = &degraded;
            async move {
                let answer = engine.context(request).await.expect("context");
                assert!(!answer.cached, "every request is assembled");
                if !answer.degraded.is_empty() {
                    degraded.set(degraded.get() + 1);
                }
                answer
            }
        });
    });
    eprintln!(
        "context: {} of {n} assembled answers were degraded (a tier late or down)",
        degraded.get()
    );
    let request = &requests[0];
    rt.block_on(engine.context(request.clone()))
        .expect("context");
    group.bench_function("cached", |b| {
        b.to_async(&rt).iter(|| async {
            let answer = engine.context(request.clone()).await.expect("context");
            assert!(answer.cached, "the same request again is a cache hit");
            answer
        });
    });
    group.finish();
    rt.block_on(engine.shutdown())
        .expect("shut the engine down");
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = context
}
criterion_main!(benches);
