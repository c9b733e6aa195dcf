//! What every criterion bench of this crate shares: short, bounded measurements (the
//! whole `cargo bench -p mnemo-benches` stays within minutes on 2 cores), the run mode
//! and a runtime to drive async tiers on.

// Each bench binary compiles this module and uses only some of it.
#![allow(dead_code)]

use std::time::Duration;

use criterion::Criterion;
use mnemo_benches::micro::Mode;
use tokio::runtime::Runtime;

/// The criterion settings of every bench: 1 s warm-up, 4 s of measurement, 30 samples.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30)
        .configure_from_args()
}

/// Whether this run measures or only checks (small sizes), from the binary's arguments.
pub fn mode() -> Mode {
    Mode::from_args(std::env::args())
}

/// A single-threaded runtime: the tiers' own threads (tantivy's searchers, SQLite's
/// connections, the engine's actors) do the work, the bench thread only awaits, so no
/// runtime worker competes with them for the 2 cores.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
