//! The processors' CPU work per turn, on generated turns (the text every other bench
//! stores):
//! - `emotion`: the emotion processor's `analyze` (lexicon scores and importance) of one
//!   turn;
//! - `entities`: the graph sync processor's `analyze` (entities of one turn, ready to
//!   apply);
//! - `summary`: the summarizer's `summarize` of 20 turns of one session (its default
//!   `every_turns`) with the default sentence and character budgets; its throughput
//!   (elements/s) is turns per second.
//!
//! What they then write (annotations, graph upserts, summaries) is the archive and graph
//! benches' part.

mod common;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mnemo_benches::workload::{Workload, WorkloadConfig};
use mnemo_engine::actors::analysis::emotion_scoring::EmotionLexicon;
use mnemo_engine::actors::analysis::extractive_summary::summarize;
use mnemo_engine::actors::config::{EmotionConfig, SummarizerConfig};
use mnemo_engine::actors::processors::emotion::EmotionProcessor;
use mnemo_engine::actors::processors::graph_sync::GraphSync;
use mnemo_engine::actors::processors::Processor;
use mnemo_engine::storage::model::Turn;

/// `users * turns_per_user` stored turns, user after user, each user's in order.
fn turns(users: usize, turns_per_user: usize, turns_per_session: (usize, usize)) -> Vec<Turn> {
    let mut workload = Workload::new(WorkloadConfig {
        users,
        turns_per_session,
        ..WorkloadConfig::default()
    });
    let mut id = 0;
    (0..users)
        .flat_map(|u| {
            (0..turns_per_user)
                .map(|_| workload.user(u).next_turn())
                .collect::<Vec<_>>()
        })
        .map(|generated| {
            id += 1;
            generated.to_turn(id).expect("a valid generated turn")
        })
        .collect()
}

fn processors(c: &mut Criterion) {
    let mode = common::mode();
    let (users, turns_per_user) = mode.pick((50, 40), (2, 40));
    let pool = turns(
        users,
        turns_per_user,
        WorkloadConfig::default().turns_per_session,
    );

    let mut group = c.benchmark_group("processors");
    group.throughput(Throughput::Elements(1));
    let emotion = EmotionProcessor::new(
        Arc::new(EmotionLexicon::builtin()),
        &EmotionConfig::default(),
    );
    let mut n = 0usize;
    group.bench_function("emotion", |b| {
        b.iter(|| {
            let turn = &pool[n % pool.len()];
            n += 1;
            emotion.analyze(std::slice::from_ref(turn))
        });
    });
    let graph_sync = GraphSync;
    let mut n = 0usize;
    group.bench_function("entities", |b| {
        b.iter(|| {
            let turn = &pool[n % pool.len()];
            n += 1;
            graph_sync.analyze(std::slice::from_ref(turn))
        });
    });

    // Sessions of exactly `every_turns` turns (and as many per user), so every chunk is
    // one summarizer step.
    let settings = SummarizerConfig::default();
    let every = settings.every_turns;
    let sessions = turns(users, 2 * every, (every, every));
    let chunks: Vec<&[Turn]> = sessions.chunks_exact(every).collect();
    assert!(chunks
        .iter()
        .all(|chunk| chunk.iter().all(|t| t.session_id == chunk[0].session_id)));
    group.throughput(Throughput::Elements(every as u64));
    let mut n = 0usize;
    group.bench_function("summary", |b| {
        b.iter(|| {
            let chunk = chunks[n % chunks.len()];
            n += 1;
            let summary = summarize(chunk, settings.max_sentences, settings.max_chars);
            assert!(summary.is_some(), "a session of words has a summary");
            summary
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = processors
}
criterion_main!(benches);
