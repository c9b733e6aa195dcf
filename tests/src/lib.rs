//! Mnemo's integration-test crate. The test targets under `tests/` run the storage
//! conformance suites against every backend.
