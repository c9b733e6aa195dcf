//! # mnemo-actors
//!
//! Mnemo's actors, on actix, in five rooms:
//!
//! - [`runtime`]: how every actor lives: started by one [`runtime::Spawner`] under the
//!   supervisor, a bounded mailbox, failing fast while down, panics caught, restarts with
//!   backoff counted by cause.
//! - [`tiers`]: one actor per storage tier (recent, archive with group commit, index,
//!   graph), each reached through a typed handle.
//! - [`processors`]: background work on new turns (emotion, indexing, summaries, graph
//!   sync), each following the archive's outbox from its own checkpoint.
//! - [`context`]: the context assembler: scatter to the tiers under a deadline, gather,
//!   rank, render.
//! - [`analysis`]: deterministic text analysis (emotion lexicon, entities, keywords,
//!   extractive summaries), no model and no network.
//!
//! [`system::start`] starts them all; the engine keeps the [`system::Handles`].

#![warn(missing_docs)]

pub mod analysis;
pub mod config;
pub mod context;
pub mod error;
pub mod metrics;
pub mod processors;
pub mod runtime;
pub mod system;
pub mod tiers;

pub use error::{Error, ErrorKind, Result};
pub use mnemo_storage as storage;
