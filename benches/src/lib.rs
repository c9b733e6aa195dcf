//! Mnemo's benchmarks: the workload generator and what the load, scale, ingest and
//! retrieval runners (`src/bin/`) share. The criterion micro-benches are in `benches/`
//! (`cargo bench -p mnemo-benches`).
//!
//! The runners and their exact commands are listed in `BENCHMARKS.md`.

#![warn(missing_docs)]

pub mod error;
pub mod errors;
pub mod latency;
pub mod micro;
pub mod recall;
pub mod setup;
pub mod system;
pub mod target;
pub mod words;
pub mod workload;
pub mod zipf;

pub use error::{BenchError, Result};

// The runners measure the engine as the `mnemo` binary runs it: with jemalloc.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
