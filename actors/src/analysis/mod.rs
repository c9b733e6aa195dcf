//! Deterministic, local text analysis used by the processors and by context assembly:
//! no network, no model. Pure functions over text, so they run on whichever thread an
//! actor owns for CPU work.
//!
//! - [`emotion_scoring`]: lexicon-based emotion scores with negation and intensifiers,
//!   importance, and the decayed per-user aggregate.
//! - [`entities`]: names, multi-word proper nouns and salient noun phrases of a turn.
//! - [`keywords`]: statistical keywords of a set of texts.
//! - [`extractive_summary`]: extractive, deterministic session summaries.
//! - [`word_set`]: a text's words as a set, for near-duplicate checks.

pub mod emotion_scoring;
pub mod entities;
pub mod extractive_summary;
pub mod keywords;
pub mod word_set;
