//! The one way an actor is started: [`Spawner::spawn`] runs a [`Behaviour`] as a
//! supervised [`Child`] with a bounded mailbox, and registers its [`Status`] and its
//! mailbox depth, which health and metrics read.

use std::sync::Arc;

use actix::{Actor, Addr, Supervisor as ActixSupervisor};

use super::child::{Behaviour, Child};
use super::faults::Faults;
use super::mailbox::{DepthProbe, Mailbox};
use super::status::Status;
use super::supervisor::Supervisor;
use crate::config::SupervisorConfig;

/// How much work an actor takes on: requests it works on at once, and requests waiting
/// in its mailbox. Past either, callers are refused at once (busy); work that must not be
/// dropped waits for room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Messages queued, at most.
    pub mailbox: usize,
    /// Requests in flight, at most.
    pub in_flight: usize,
}

/// Every actor started, as health sees them.
#[derive(Clone)]
pub struct Registry {
    /// Every actor's status, including those switched off.
    pub statuses: Vec<Arc<Status>>,
    /// Mailbox depth per actor name.
    pub depths: Vec<(&'static str, DepthProbe)>,
    /// The supervisor.
    pub supervisor: Addr<Supervisor>,
    /// Every actor's address. actix restarts a failed supervised actor only while its
    /// address is held somewhere, and some actors (the processors) take no requests, so
    /// nobody else holds theirs.
    addresses: Vec<Arc<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("statuses", &self.statuses)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// The status of the actor `name`.
    pub fn status(&self, name: &str) -> Option<Arc<Status>> {
        self.statuses.iter().find(|s| s.name() == name).cloned()
    }

    /// The mailbox depth of the actor `name`, if it has a mailbox.
    pub fn depth(&self, name: &str) -> Option<usize> {
        self.depths
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, depth)| depth())
    }
}

/// Starts actors under one supervisor. Must be used inside an actix system.
pub struct Spawner {
    faults: Arc<Faults>,
    registry: Registry,
}

impl Spawner {
    /// Starts the supervisor with `policy`; actors started later report to it.
    pub fn new(policy: SupervisorConfig, faults: Arc<Faults>) -> Self {
        Self {
            faults,
            registry: Registry {
                statuses: Vec::new(),
                depths: Vec::new(),
                supervisor: Supervisor::new(policy).start(),
                addresses: Vec::new(),
            },
        }
    }

    /// Starts `behaviour` as the actor `name` within `limits`.
    pub fn spawn<B: Behaviour>(
        &mut self,
        name: &'static str,
        limits: Limits,
        behaviour: B,
    ) -> Mailbox<Child<B>> {
        let status = Status::new(name);
        self.registry.statuses.push(status.clone());
        let supervisor = self.registry.supervisor.clone();
        let faults = self.faults.clone();
        let addr = ActixSupervisor::start(move |ctx: &mut <Child<B> as Actor>::Context| {
            ctx.set_mailbox_capacity(limits.mailbox);
            Child::new(behaviour, limits.in_flight, status, supervisor, faults)
        });
        self.registry.addresses.push(Arc::new(addr.clone()));
        let mailbox = Mailbox::new(name, addr);
        self.registry.depths.push((name, mailbox.depth_probe()));
        mailbox
    }

    /// Records the actor `name` as switched off in config.
    pub fn disabled(&mut self, name: &'static str) {
        self.registry.statuses.push(Status::disabled(name));
    }

    /// The status of the actor `name`.
    pub fn status(&self, name: &str) -> Option<Arc<Status>> {
        self.registry.status(name)
    }

    /// The fault hooks every actor checks.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// Every actor started.
    pub fn finish(self) -> Registry {
        self.registry
    }
}
