//! Catching panics: actix does not, and a panic unwinding through its event loop would
//! take every actor on the thread down with it. Every place that runs an actor's code
//! (a handler, a task it started, a probe, a job on its thread) runs it through one of
//! these, and turns a caught panic into a failure of that actor.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

/// The panic payload as text.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Runs `work`; a panic comes back as its message.
pub fn catch<R>(work: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(AssertUnwindSafe(work)).map_err(|payload| panic_message(&*payload))
}

/// Runs the future `work`; a panic while it is polled comes back as its message.
pub async fn catch_async<F: Future>(work: F) -> Result<F::Output, String> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .map_err(|payload| panic_message(&*payload))
}
