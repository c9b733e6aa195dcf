//! Archive tier: one group commit (`append_batch`: one transaction) of 1, 64 and 1,024
//! turns on the embedded SQLite archive (WAL, the default `durability = "full"`: fsync
//! on every commit) in a temporary directory. Criterion's time is per batch; its
//! throughput (elements/s) is turns per second.

mod common;

use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use mnemo_benches::workload::{Workload, WorkloadConfig};
use mnemo_engine::storage::archive::sql::SqliteArchive;
use mnemo_engine::storage::archive::{ArchiveConfig, ArchiveStore};
use mnemo_engine::storage::clock::SystemClock;
use mnemo_engine::storage::limits::InputLimits;
use mnemo_engine::storage::model::NewTurn;

fn archive(c: &mut Criterion) {
    let rt = common::runtime();
    let dir = tempfile::Builder::new()
        .prefix("mnemo-crit-archive-")
        .tempdir()
        .expect("a temporary directory");
    let archive = rt
        .block_on(SqliteArchive::open(
            &dir.path().join("archive.db"),
            &ArchiveConfig::default(),
            InputLimits::default(),
            SystemClock::shared(),
        ))
        .expect("open the archive");
    let mut workload = Workload::new(WorkloadConfig {
        users: 1_000,
        ..WorkloadConfig::default()
    });

    let mut group = c.benchmark_group("archive/group_commit");
    // A commit waits for an fsync (milliseconds): equal samples keep the run to its
    // measurement time instead of criterion's growing ones.
    group.sampling_mode(SamplingMode::Flat);
    for size in [1usize, 64, 1_024] {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.to_async(&rt).iter_batched(
                || -> Vec<NewTurn> {
                    workload
                        .next_turns(size)
                        .iter()
                        .map(|t| t.to_new_turn().expect("a valid generated turn"))
                        .collect()
                },
                |turns| {
                    let archive = &archive;
                    async move {
                        let stored = archive.append_batch(turns).await.expect("append");
                        assert!(stored.iter().all(|a| a.created), "every turn is new");
                        stored
                    }
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
    let stats = rt.block_on(archive.stats()).expect("archive stats");
    eprintln!("archive: {} turns stored during the run", stats.turns);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = archive
}
criterion_main!(benches);
