//! Graph tier: the neighbourhood of one of a user's entities at depth 1 and 2 (20 edges
//! per hop, the HTTP API's default), on the embedded SQLite graph, for a few users with a
//! few hundred entities each; the searches cycle over the first user's strongest
//! entities.
//!
//! The graph is built from generated turns with the graph sync processor's extraction
//! (`extract_entities`), except that one update takes the entities of 4 consecutive turns
//! of a session: a generated turn names about one entity, so one update per turn would
//! leave almost no RELATED_TO edges to walk, where real conversation names several.

mod common;

use std::cell::Cell;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mnemo_benches::workload::{Workload, WorkloadConfig};
use mnemo_engine::actors::analysis::entities::extract_entities;
use mnemo_engine::storage::archive::sql::SqliteArchive;
use mnemo_engine::storage::archive::{ArchiveConfig, ArchiveStore};
use mnemo_engine::storage::clock::SystemClock;
use mnemo_engine::storage::graph::sql::SqliteGraph;
use mnemo_engine::storage::graph::{
    name_key, EntityMention, GraphConfig, GraphStore, GraphUpdate, Recency,
};
use mnemo_engine::storage::limits::InputLimits;
use mnemo_engine::storage::model::{Scope, TurnId};

/// Edges per hop: the HTTP graph endpoint's default limit.
const EDGES_PER_HOP: usize = 20;
/// Entities the searches cycle through.
const CENTERS: usize = 20;
/// Consecutive turns of a session whose entities make one update (see the module doc).
const WINDOW: usize = 4;

fn graph(c: &mut Criterion) {
    let mode = common::mode();
    let rt = common::runtime();
    let (users, turns_per_user) = mode.pick((3, 3_000), (2, 200));
    let dir = tempfile::Builder::new()
        .prefix("mnemo-crit-graph-")
        .tempdir()
        .expect("a temporary directory");
    let clock = SystemClock::shared();
    let archive = rt
        .block_on(SqliteArchive::open(
            &dir.path().join("archive.db"),
            &ArchiveConfig::default(),
            InputLimits::default(),
            clock.clone(),
        ))
        .expect("open the archive");
    let graph = rt
        .block_on(SqliteGraph::open_beside(
            &archive,
            &ArchiveConfig::default(),
            &GraphConfig::default(),
        ))
        .expect("open the graph");
    let mut workload = Workload::new(WorkloadConfig {
        users,
        entities_per_user: 100,
        ..WorkloadConfig::default()
    });
    let mut updates: Vec<GraphUpdate> = Vec::new();
    let mut turn_id = 0i64;
    for u in 0..users {
        let turns: Vec<_> = (0..turns_per_user)
            .map(|_| workload.user(u).next_turn())
            .collect();
        for session in turns.chunk_by(|a, b| a.session_id == b.session_id) {
            for window in session.chunks(WINDOW) {
                turn_id += 1;
                let mut entities: Vec<EntityMention> = Vec::new();
                for generated in window {
                    for entity in extract_entities(&generated.content) {
                        let known = entities
                            .iter()
                            .any(|e| name_key(&e.name) == name_key(&entity.name));
                        if entity.validate().is_ok() && !known {
                            entities.push(entity);
                        }
                    }
                }
                let last = &window[window.len() - 1];
                if !entities.is_empty() {
                    updates.push(GraphUpdate {
                        scope: Scope::parse(&last.tenant, &last.user_id).expect("a valid scope"),
                        turn_id: TurnId(turn_id),
                        time: last.event_time,
                        entities,
                    });
                }
            }
        }
    }
    let scope = workload.user(0).scope().expect("a valid scope");
    let recency = Recency {
        now: clock.now(),
        half_life: Duration::from_secs(14 * 24 * 3600),
    };
    let entities = rt.block_on(async {
        for batch in updates.chunks(100) {
            graph.apply(batch).await.expect("apply graph updates");
        }
        graph
            .user_entities(&scope, recency, 100_000)
            .await
            .expect("the user's entities")
    });
    let centers: Vec<String> = entities
        .iter()
        .take(CENTERS)
        .map(|e| e.entity.name.clone())
        .collect();
    assert!(!centers.is_empty(), "the user has entities");
    eprintln!(
        "graph: {} users, the benched user has {} entities",
        users,
        entities.len()
    );

    let mut group = c.benchmark_group("graph/neighbourhood");
    for depth in [1usize, 2] {
        let mut n = 0usize;
        let reached = Cell::new(0usize);
        group.bench_function(BenchmarkId::new("depth", depth), |b| {
            b.to_async(&rt).iter(|| {
                let name = &centers[n % centers.len()];
                n += 1;
                let (graph, scope, reached) = (&graph, &scope, &reached);
                async move {
                    let hood = graph
                        .neighbourhood(scope, name, depth, EDGES_PER_HOP)
                        .await
                        .expect("neighbourhood")
                        .expect("a known entity");
                    reached.set(reached.get() + hood.entities.len());
                }
            });
        });
        eprintln!(
            "graph: depth {depth} reached {:.1} entities per call on average",
            reached.get() as f64 / n.max(1) as f64
        );
    }
    group.finish();
    rt.block_on(archive.close());
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = graph
}
criterion_main!(benches);
