//! What health shows of one actor: its state, its restarts by cause, its last failure.
//! Shared between the actor, which updates it, and the engine, which reads it.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// Why an actor failed; restarts are counted per cause.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// A handler panicked.
    Panic,
    /// The backend cannot serve (unavailable or corrupt).
    Backend(String),
    /// A processor step failed.
    Processing(String),
}

impl Cause {
    /// The cause's label, as metrics and health show it.
    pub fn label(&self) -> String {
        match self {
            Cause::Panic => "panic".into(),
            Cause::Backend(kind) => format!("backend_{kind}"),
            Cause::Processing(kind) => format!("processing_{kind}"),
        }
    }
}

/// Whether an actor is serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Serving requests.
    Up,
    /// Failed; requests fail fast until the supervisor restarts it.
    Restarting,
    /// Switched off in config.
    Disabled,
}

impl State {
    /// The state's name, as health shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Restarting => "restarting",
            State::Disabled => "disabled",
        }
    }
}

/// What health shows of one actor.
#[derive(Debug)]
pub struct Status {
    name: &'static str,
    inner: Mutex<StatusInner>,
    /// Total restarts, for waiting on the next one.
    restarted: tokio::sync::watch::Sender<u64>,
    /// Total failures (each marks the actor down), for waiting on the next one.
    failed: tokio::sync::watch::Sender<u64>,
    /// Set once the engine closes the stores: a failure from then on is the closing's,
    /// not the backend's.
    closing: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct StatusInner {
    state: State,
    restarts: BTreeMap<String, u64>,
    last_failure: Option<String>,
}

impl Status {
    /// A fresh status, up.
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            inner: Mutex::new(StatusInner {
                state: State::Up,
                restarts: BTreeMap::new(),
                last_failure: None,
            }),
            restarted: tokio::sync::watch::channel(0).0,
            failed: tokio::sync::watch::channel(0).0,
            closing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Marks the engine as closing its stores: the actor's failures are no longer
    /// reported or restarted (work still in flight meets closed connections).
    pub fn mark_closing(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the engine is closing its stores.
    pub fn is_closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A status for an actor switched off in config.
    pub fn disabled(name: &'static str) -> Arc<Self> {
        let status = Self::new(name);
        status.inner.lock().state = State::Disabled;
        status
    }

    /// The actor's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its state now.
    pub fn state(&self) -> State {
        self.inner.lock().state
    }

    /// Restarts so far, per cause label.
    pub fn restarts(&self) -> BTreeMap<String, u64> {
        self.inner.lock().restarts.clone()
    }

    /// Restarts so far, all causes.
    pub fn total_restarts(&self) -> u64 {
        self.inner.lock().restarts.values().sum()
    }

    /// Total restarts, changing at each restart.
    pub fn restarted(&self) -> tokio::sync::watch::Receiver<u64> {
        self.restarted.subscribe()
    }

    /// Total failures, changing at each one.
    pub fn failed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.failed.subscribe()
    }

    /// What the last failure was.
    pub fn last_failure(&self) -> Option<String> {
        self.inner.lock().last_failure.clone()
    }

    /// Marks the actor down after a failure described by `detail`.
    pub(crate) fn mark_down(&self, detail: String) {
        let mut inner = self.inner.lock();
        inner.state = State::Restarting;
        inner.last_failure = Some(detail);
        drop(inner);
        self.failed.send_modify(|n| *n += 1);
    }

    /// Records what a restart that found the backend still failing saw.
    pub(crate) fn still_down(&self, detail: String) {
        self.inner.lock().last_failure = Some(detail);
    }

    /// Counts a restart after a failure of `cause` and marks the actor up.
    pub(crate) fn mark_restarted(&self, cause: &Cause) {
        let mut inner = self.inner.lock();
        *inner.restarts.entry(cause.label()).or_default() += 1;
        inner.state = State::Up;
        let total = inner.restarts.values().sum();
        drop(inner);
        self.restarted.send_replace(total);
    }
}
