//! # mnemo-actors
//!
//! Mnemo's actors, on actix: one actor per storage tier ([`recent`], [`archive`],
//! [`index`], [`graph`]) and per processor ([`processor`] runs [`emotion`],
//! [`indexer`], [`summarizer`], [`graph_sync`]), the [`supervisor`] that restarts
//! failed actors, and the [`context`] assembler. Callers talk to actors through
//! [`mailbox::Mailbox`] handles; every handler runs through [`life::serve`], which fails
//! fast while an actor is down and turns panics into restarts.

#![warn(missing_docs)]

pub mod analysis;
pub mod archive;
pub mod config;
pub mod context;
pub mod emotion;
pub mod error;
pub mod faults;
pub mod generations;
pub mod graph;
pub mod graph_sync;
pub mod index;
pub mod indexer;
pub mod life;
pub mod mailbox;
pub mod metrics;
pub mod processor;
pub mod ranking;
pub mod recent;
pub mod summarizer;
pub mod supervisor;
pub mod system;
pub mod tier;
pub mod tombstones;
pub mod worker;

pub use error::{Error, ErrorKind, Result};
pub use mnemo_storage as storage;
