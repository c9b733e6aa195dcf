//! # mnemo-engine
//!
//! The public face of Mnemo: the [`Engine`] handle (`start`, `store`, `store_batch`,
//! `context`, `search`, `history`, `forget_user`, `forget_turn`, `health`,
//! `shutdown`), configuration loading ([`config`]), the HTTP service ([`http`]),
//! Prometheus metrics ([`metrics`]), logs ([`logging`]: the library emits through
//! `tracing`, the binary installs the subscriber), the demo ([`demo`]), the command-line
//! functions ([`cli`]), the MCP server ([`mcp`]) and the `mnemo` binary.

#![warn(missing_docs)]

mod admission;
pub mod cli;
pub mod config;
pub mod demo;
mod engine;
pub mod error;
pub mod http;
pub mod logging;
pub mod mcp;
pub mod metrics;
mod refusals;

pub use admission::AdmissionConfig;
pub use config::Config;
pub use engine::{ActorHealth, AdmissionHealth, Engine, Health, ProcessorHealth, Stored};
pub use error::{Error, ErrorKind, Result};
pub use metrics::Metrics;
pub use mnemo_actors as actors;
pub use mnemo_actors::context::{ContextAnswer, ContextRequest};
pub use mnemo_storage as storage;
