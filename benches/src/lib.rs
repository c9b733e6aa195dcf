//! Mnemo's benchmarks: criterion micro-benches and the load, scale and retrieval runners
//! (built out by the benchmarks issue).
