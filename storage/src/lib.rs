//! # mnemo-storage
//!
//! Mnemo's data model and its four storage tiers. Each tier is one async trait in its
//! module's `mod.rs`, with its backends in files beside it:
//!
//! | tier | trait | embedded backend |
//! |---|---|---|
//! | recent: last N turns per session | [`recent::RecentStore`] | [`recent::memory::MemoryRecent`] |
//! | archive: every turn, summary, checkpoint; source of truth | [`archive::ArchiveStore`] | [`archive::sql::SqliteArchive`] (server: [`archive::sql::PostgresArchive`]) |
//! | index: BM25 full-text search per user | [`index::IndexStore`] | [`index::tantivy::TantivyIndex`] |
//! | graph: entities and relationships per user | [`graph::GraphStore`] | [`graph::sql::SqliteGraph`] (on PostgreSQL: [`graph::sql::PostgresGraph`]) |
//!
//! The archive and the embedded graph are written once over the SQL core ([`sql`]),
//! whose dialects hold what differs between SQLite and PostgreSQL.
//!
//! The data model is in [`model`]; every stored item carries a tenant and a user, and
//! every query takes a [`model::Scope`]. Errors are one type, [`Error`], whose
//! [`ErrorKind`] says whether a retry can help. Time comes from a [`clock::Clock`] passed
//! in. [`Tiers::open`] opens the tiers a [`StorageConfig`] selects.
//!
//! With the `conformance` feature, [`conformance`] holds the test bodies every backend of
//! a trait must pass.

#![warn(missing_docs)]

pub mod archive;
pub mod clock;
pub mod cluster;
pub mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod graph;
pub mod index;
pub mod limits;
pub mod model;
pub mod priority;
pub mod recent;
pub mod sql;
mod stores;

pub use config::StorageConfig;
pub use error::{Error, ErrorKind, Result};
pub use stores::{archive_exists, open_archive, Tiers};
