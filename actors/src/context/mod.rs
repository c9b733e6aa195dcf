//! Context assembly: what goes into the next prompt.
//!
//! - [`assembler`]: the actor and its messages ([`ContextRequest`], [`ContextAnswer`]).
//! - [`assembly`]: one request step by step: scatter to the tiers and gather under the
//!   deadline, expand the hits' session neighbours, rank and render.
//! - [`ranking`]: the documented score, de-duplication and the cut to `max_items`.
//! - [`render`]: the prompt text within a token budget.
//! - [`reserve`]: the slice of the deadline kept for ranking and rendering.
//! - [`answer_cache`] and [`generations`]: answers cached per user until the user's
//!   next write.
//! - [`refill`]: warming the recent tier after a miss, off the request path.

pub mod answer_cache;
pub mod assembler;
pub mod assembly;
pub mod generations;
pub mod ranking;
pub mod refill;
pub mod render;
pub mod reserve;
pub mod tokens;

pub use assembler::{AssembleContext, ContextAnswer, ContextAssembler, ContextRequest};
pub use assembly::Sources;
