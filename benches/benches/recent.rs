//! Recent tier: pushing one stored turn and reading a session's last 10 turns, on the
//! embedded memory backend and on Redis (127.0.0.1:6379, keys under a prefix of this run
//! that are deleted at the end; skipped with a note when no Redis answers).
//!
//! Every session is filled first (as after an archive read), so reads are hits, as on a
//! warm engine.

mod common;

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use mnemo_benches::workload::{Workload, WorkloadConfig};
use mnemo_engine::storage::clock::SystemClock;
use mnemo_engine::storage::model::{Order, Scope, SessionId, Turn};
use mnemo_engine::storage::recent::memory::MemoryRecent;
use mnemo_engine::storage::recent::redis::RedisRecent;
use mnemo_engine::storage::recent::{RecentBackend, RecentConfig, RecentStore};
use tokio::runtime::Runtime;

/// Turns read per request: the context assembler's default `max_recent`.
const READ_LIMIT: usize = 10;

/// The preloaded turns (grouped by session) and the workload to draw new turns from.
struct Preload {
    workload: Workload,
    sessions: Vec<(Scope, SessionId, Vec<Turn>)>,
    next_id: i64,
}

fn preload(users: usize, turns_per_user: usize) -> Preload {
    let mut workload = Workload::new(WorkloadConfig {
        users,
        ..WorkloadConfig::default()
    });
    let mut by_session: BTreeMap<(Scope, SessionId), Vec<Turn>> = BTreeMap::new();
    let mut next_id = 1;
    for generated in workload.next_turns(users * turns_per_user) {
        let turn = generated.to_turn(next_id).expect("a valid generated turn");
        next_id += 1;
        by_session
            .entry((turn.scope.clone(), turn.session_id.clone()))
            .or_default()
            .push(turn);
    }
    let sessions = by_session
        .into_iter()
        .map(|((scope, session), turns)| (scope, session, turns))
        .collect();
    Preload {
        workload,
        sessions,
        next_id,
    }
}

fn bench_backend(
    c: &mut Criterion,
    rt: &Runtime,
    name: &str,
    store: &dyn RecentStore,
    preload: &mut Preload,
) {
    rt.block_on(async {
        for (scope, session, turns) in &preload.sessions {
            store.fill(scope, session, turns).await.expect("fill");
        }
    });
    let mut group = c.benchmark_group(format!("recent/{name}"));
    let sessions = &preload.sessions;
    let mut n = 0usize;
    group.bench_function("read", |b| {
        b.to_async(rt).iter(|| {
            let (scope, session, _) = &sessions[n % sessions.len()];
            n += 1;
            async move {
                let turns = store
                    .recent(scope, session, READ_LIMIT, Order::OldestFirst)
                    .await
                    .expect("read");
                assert!(turns.is_some(), "a filled session answers");
                turns
            }
        });
    });
    let (workload, next_id) = (&mut preload.workload, &mut preload.next_id);
    group.bench_function("push", |b| {
        b.to_async(rt).iter_batched(
            || {
                let turn = workload.next_turns(1)[0]
                    .to_turn(*next_id)
                    .expect("a valid generated turn");
                *next_id += 1;
                turn
            },
            |turn| async move { store.push(&[turn]).await.expect("push") },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn recent(c: &mut Criterion) {
    let mode = common::mode();
    let rt = common::runtime();
    let (users, turns_per_user) = mode.pick((1_000, 50), (20, 10));

    let mut data = preload(users, turns_per_user);
    let memory = MemoryRecent::new(RecentConfig::default(), SystemClock::shared());
    bench_backend(c, &rt, "memory", &memory, &mut data);

    let config = RecentConfig {
        backend: RecentBackend::Redis,
        key_prefix: format!("mnemo-crit-{}", std::process::id()),
        ..RecentConfig::default()
    };
    let redis = RedisRecent::new(config, SystemClock::shared()).expect("a valid Redis config");
    let probe = &data.sessions[0];
    if let Err(e) = rt.block_on(redis.recent(&probe.0, &probe.1, 1, Order::OldestFirst)) {
        eprintln!("recent/redis skipped: no Redis at 127.0.0.1:6379 ({e})");
        return;
    }
    let mut data = preload(users, turns_per_user);
    bench_backend(c, &rt, "redis", &redis, &mut data);
    // Every key this run wrote belongs to one of the workload's users.
    rt.block_on(async {
        for i in 0..data.workload.len() {
            let scope = data.workload.user(i).scope().expect("a valid scope");
            redis
                .forget_user(&scope)
                .await
                .expect("delete the bench's keys");
        }
    });
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = recent
}
criterion_main!(benches);
