//! The actor runtime: how every actor of Mnemo lives, written once.
//!
//! - [`spawn::Spawner`] starts an actor: a [`Behaviour`] (what the actor does) run as a
//!   supervised [`Child`] (what every actor needs) with a bounded mailbox, its
//!   [`Status`] and mailbox depth registered for health and metrics.
//! - [`child`]: failing fast while down, catching panics, failing on a backend failure,
//!   probing the backend before serving again, counting restarts by cause.
//! - [`supervisor`]: the restart policy, exponential backoff that resets after a quiet
//!   spell.
//! - [`mailbox`]: how callers talk to an actor: a request and a reply channel, refused at
//!   once when the mailbox is full ([`mailbox::Mailbox::ask`]) or waiting for room for
//!   work that must not be dropped ([`mailbox::Mailbox::ask_waiting`]).
//! - [`worker`]: a thread an actor owns for CPU-bound work.
//! - [`panic`]: catching panics wherever an actor's code runs.
//! - [`faults`]: fault hooks for tests (slow or panicking actors).

pub mod child;
pub mod faults;
pub mod mailbox;
pub mod panic;
pub mod spawn;
pub mod status;
pub mod supervisor;
pub mod worker;

pub use child::{Behaviour, Child, ChildContext, Handles, Responder};
pub use mailbox::Mailbox;
pub use spawn::{Limits, Registry, Spawner};
pub use status::{Cause, State, Status};
