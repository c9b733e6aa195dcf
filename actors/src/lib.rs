//! Mnemo's actors: one actix actor per storage tier and per processor, the supervisor
//! that owns them, and the context assembler.

pub mod analysis;

pub use mnemo_storage as storage;
