//! The tier actors: one per storage tier, each reached through a typed [`tier::Tier`]
//! handle whose methods are its requests.
//!
//! - [`tier`]: the actor serving a tier's store (recent, index, graph) and the handle.
//! - [`archive`]: the archive's actor, which also does group commit and publishes the
//!   archive head.
//! - [`recent`], [`index`], [`graph`]: each tier's requests; [`recent`] also keeps the
//!   sessions the recent tier missed a write for, and the refills under way.

pub mod archive;
pub mod graph;
pub mod index;
pub mod recent;
pub mod tier;

pub use archive::ArchiveTier;
pub use graph::GraphTier;
pub use index::IndexTier;
pub use recent::RecentTier;
