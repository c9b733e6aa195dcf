//! Mnemo's actors: one actix actor per storage tier and per processor, the supervisor
//! that owns them, and the context assembler. Built out by the actor-engine issue; today
//! it only re-exports the storage crate it will wrap.

pub use mnemo_storage as storage;
