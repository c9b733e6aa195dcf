//! Deterministic, local text analysis used by the processors: no network, no model.
//!
//! - [`emotion`]: lexicon-based emotion scores with negation and intensifiers, importance,
//!   and the decayed per-user aggregate.
//! - [`entities`]: names, multi-word proper nouns and salient noun phrases of a turn.
//! - [`keywords`]: statistical keywords of a set of texts.
//! - [`summary`]: extractive, deterministic session summaries.

pub mod emotion;
pub mod entities;
pub mod keywords;
pub mod summary;
