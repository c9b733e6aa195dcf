//! Mnemo's engine: the public `Engine` handle, configuration loading, the HTTP service
//! and the `mnemo` binary. Built out by the actor-engine and service issues.

pub use mnemo_actors as actors;
