//! Index tier: one BM25 search within one user (the context assembler's query: a
//! question about something said before, 30 hits) over an index of 100,000 turns and
//! one of 1,000,000, both over 10,000 users as in DESIGN.md's scale goals. Each index is
//! built once, on disk in a temporary directory with the default settings, and searched
//! for every iteration; the build time is printed (about 30 s for 1M on 2 cores).

mod common;

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mnemo_benches::workload::{Workload, WorkloadConfig};
use mnemo_engine::storage::index::tantivy::TantivyIndex;
use mnemo_engine::storage::index::{IndexConfig, IndexDoc, IndexStore, SearchQuery};
use mnemo_engine::storage::model::Scope;
use tempfile::TempDir;
use tokio::runtime::Runtime;

/// Hits asked for: the context assembler asks for 3 x `max_items` (10).
const HITS: usize = 30;
/// Documents sent to the index per `add`.
const CHUNK: usize = 10_000;
/// Distinct (user, question) pairs the searches cycle through.
const QUERIES: usize = 1_000;

struct Built {
    index: TantivyIndex,
    queries: Vec<(Scope, SearchQuery)>,
    _dir: TempDir,
}

fn build(rt: &Runtime, docs: usize, users: usize) -> Built {
    let dir = tempfile::Builder::new()
        .prefix("mnemo-crit-index-")
        .tempdir()
        .expect("a temporary directory");
    let index =
        TantivyIndex::open(Some(dir.path()), &IndexConfig::default()).expect("open the index");
    let mut workload = Workload::new(WorkloadConfig {
        users,
        ..WorkloadConfig::default()
    });
    let started = Instant::now();
    rt.block_on(async {
        let mut id = 0i64;
        while (id as usize) < docs {
            let n = CHUNK.min(docs - id as usize);
            let chunk = workload
                .next_turns(n)
                .iter()
                .map(|generated| {
                    id += 1;
                    IndexDoc::from_turn(&generated.to_turn(id).expect("a valid generated turn"))
                })
                .collect();
            index.add(chunk).await.expect("index documents");
        }
        index.commit().await.expect("commit");
    });
    let indexed = rt.block_on(index.num_docs()).expect("count documents");
    assert_eq!(indexed, docs as u64);
    eprintln!(
        "index: {docs} documents over {users} users built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let step = (users / QUERIES).max(1);
    let queries: Vec<(Scope, SearchQuery)> = (0..QUERIES.min(users))
        .map(|i| {
            let user = workload.user(i * step);
            let scope = user.scope().expect("a valid scope");
            (scope, SearchQuery::new(user.question(), HITS))
        })
        .collect();
    let hits: usize = rt.block_on(async {
        let mut hits = 0;
        for (scope, query) in &queries {
            hits += index.search(scope, query).await.expect("search").len();
        }
        hits
    });
    eprintln!(
        "index: {:.1} hits per query on average (at most {HITS})",
        hits as f64 / queries.len() as f64
    );
    Built {
        index,
        queries,
        _dir: dir,
    }
}

fn index(c: &mut Criterion) {
    let mode = common::mode();
    let rt = common::runtime();
    let (sizes, users) = mode.pick((vec![100_000, 1_000_000], 10_000), (vec![2_000], 100));
    let mut group = c.benchmark_group("index/search");
    for docs in sizes {
        let built = build(&rt, docs, users);
        let mut n = 0usize;
        group.bench_function(BenchmarkId::from_parameter(docs), |b| {
            b.to_async(&rt).iter(|| {
                let (scope, query) = &built.queries[n % built.queries.len()];
                n += 1;
                let index = &built.index;
                async move { index.search(scope, query).await.expect("search") }
            });
        });
        rt.block_on(built.index.close()).expect("close the index");
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = index
}
criterion_main!(benches);
