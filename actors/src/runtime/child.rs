//! A supervised actor: a [`Child`] runs one [`Behaviour`] (a tier, a processor, the
//! context assembler) and gives it what every actor here needs, written once: it fails
//! fast while down, catches panics (actix does not), turns a backend failure or a panic
//! into a restart by the [supervisor](super::supervisor), probes the backend before
//! serving again, and keeps its [`Status`] for health and metrics.
//!
//! A behaviour handles requests ([`Handles`]) and answers each through its
//! [`Responder`]: at once, from a task of its own ([`Responder::serve`]), or later, by
//! keeping the reply (the archive's group commit).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Arc;

use actix::{Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message};
use futures_util::future::LocalBoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::faults::Faults;
use super::mailbox::{Envelope, Reply};
use super::panic::{catch, catch_async};
use super::status::{Cause, Status};
use super::supervisor::{Failed, Restart, Supervisor};
use crate::error::{Error, Result};
use crate::metrics;

/// The context a behaviour's code runs in.
pub type ChildContext<B> = Context<Child<B>>;

/// What one actor does; its [`Child`] does the rest.
pub trait Behaviour: Sized + Unpin + 'static {
    /// The actor serves: at start, and after each restart once its backend answers.
    fn serving(&mut self, _ctx: &mut ChildContext<Self>) {}

    /// The actor has failed and waits for its restart; `down` is what requests are told
    /// meanwhile.
    fn failed(&mut self, _ctx: &mut ChildContext<Self>, _down: &Error) {}

    /// Before serving again after a restart: a check that the backend answers. While it
    /// fails with a backend failure the actor stays down and the supervisor tries again
    /// after its next backoff. `None`: serve again at once.
    fn probe(&self) -> Option<LocalBoxFuture<'static, Result<()>>> {
        None
    }
}

/// A behaviour that answers requests `Req` with `Resp`.
pub trait Handles<Req, Resp>: Behaviour {
    /// Whether the request takes one of the actor's units of work in flight. A request
    /// the behaviour bounds itself (the archive's appends, bounded by group commit) does
    /// not, so that reads holding every unit cannot refuse it.
    const IN_FLIGHT: bool = true;

    /// Handles one request; answers it through `reply`. Not called while the actor is
    /// down (the caller is told at once).
    fn handle(&mut self, request: Req, reply: Responder<Self, Resp>, ctx: &mut ChildContext<Self>);
}

/// The actor running behaviour `B` under the supervisor.
pub struct Child<B: Behaviour> {
    behaviour: B,
    status: Arc<Status>,
    supervisor: Addr<Supervisor>,
    faults: Arc<Faults>,
    /// Why it is down, while it is.
    failed_with: Option<Cause>,
    /// Restarts so far: a request begun before a restart must not fail the actor that
    /// came after it.
    epoch: u64,
    /// A restart waits for its probe.
    probing: bool,
    /// Units of work in flight the actor may still start.
    in_flight: Arc<Semaphore>,
    /// Work that must not be dropped, waiting for a unit of work in flight.
    waiting: VecDeque<Waiting<B>>,
    /// How many wait, for the tasks that end a request (they tell the actor then).
    waiters: Arc<AtomicUsize>,
}

/// A request waiting to be handed to the behaviour.
type Waiting<B> = Box<dyn FnOnce(&mut Child<B>, &mut ChildContext<B>, OwnedSemaphorePermit)>;

impl<B: Behaviour> Child<B> {
    /// The actor running `behaviour` with at most `in_flight` requests in flight,
    /// keeping `status` and reporting to `supervisor`.
    pub fn new(
        behaviour: B,
        in_flight: usize,
        status: Arc<Status>,
        supervisor: Addr<Supervisor>,
        faults: Arc<Faults>,
    ) -> Self {
        Self {
            behaviour,
            status,
            supervisor,
            faults,
            failed_with: None,
            epoch: 0,
            probing: false,
            in_flight: Arc::new(Semaphore::new(in_flight.max(1))),
            waiting: VecDeque::new(),
            waiters: Arc::default(),
        }
    }

    /// The actor's name.
    pub fn name(&self) -> &'static str {
        self.status.name()
    }

    /// Its behaviour.
    pub fn behaviour(&mut self) -> &mut B {
        &mut self.behaviour
    }

    /// The fault hooks tests arm.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// Fails fast while the actor is down.
    pub fn check(&self) -> Result<()> {
        match &self.failed_with {
            None => Ok(()),
            Some(cause) => Err(Error::Down {
                actor: self.name(),
                reason: format!("restarting after a failure ({})", cause.label()),
            }),
        }
    }

    /// Marks the actor down and asks the supervisor for a restart (once per failure).
    pub fn fail(&mut self, ctx: &mut ChildContext<B>, cause: Cause, detail: String) {
        if self.failed_with.is_some() {
            return;
        }
        if self.status.is_closing() {
            tracing::debug!(
                actor = self.name(),
                error = %detail,
                "work in flight failed as the engine closed its stores"
            );
            return;
        }
        tracing::warn!(
            actor = self.name(),
            cause = %cause.label(),
            error = %detail,
            "actor failed; it is down until the supervisor restarts it"
        );
        self.status.mark_down(detail);
        self.failed_with = Some(cause.clone());
        // Failed first, so whoever is told next already sees the actor restarting.
        let down = self.check().err().unwrap_or(Error::ShuttingDown);
        self.behaviour.failed(ctx, &down);
        self.supervisor.do_send(Failed {
            name: self.name(),
            cause,
            restart: ctx.address().recipient(),
        });
    }

    /// Keeps the actor down after a restart whose probe found the backend still failing,
    /// and asks for another restart (after the next, longer, backoff). The restart is
    /// counted under the original cause once the actor is up again.
    fn still_failing(&mut self, ctx: &mut ChildContext<B>, detail: String) {
        let Some(cause) = self.failed_with.clone() else {
            return;
        };
        tracing::warn!(
            actor = self.name(),
            error = %detail,
            "actor's backend still failing; it stays down"
        );
        self.status.still_down(detail);
        self.supervisor.do_send(Failed {
            name: self.name(),
            cause,
            restart: ctx.address().recipient(),
        });
    }

    /// Counts the restart and marks the actor up.
    fn restarted(&mut self) {
        self.epoch += 1;
        if let Some(cause) = self.failed_with.take() {
            let label = cause.label();
            // Logged before the status changes: whoever waits on the restart finds the
            // line already written.
            tracing::info!(actor = self.name(), cause = %label, "actor restarted; serving again");
            ::metrics::counter!(
                metrics::ACTOR_RESTARTS_TOTAL,
                metrics::LABEL_ACTOR => self.name(),
                metrics::LABEL_CAUSE => label
            )
            .increment(1);
            self.status.mark_restarted(&cause);
        }
    }
}

impl<B: Behaviour> Actor for Child<B> {
    type Context = ChildContext<B>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Also called after every restart; a restart waiting for its probe serves later.
        if !self.probing {
            self.behaviour.serving(ctx);
        }
    }
}

impl<B: Behaviour> actix::Supervised for Child<B> {
    fn restarting(&mut self, ctx: &mut Self::Context) {
        let Some(probe) = self.behaviour.probe() else {
            self.restarted();
            return;
        };
        self.probing = true;
        let probed = actix::fut::wrap_future::<_, Self>(catch_async(probe));
        ctx.spawn(probed.map(|outcome, child, ctx| {
            child.probing = false;
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e)
                    .filter(Error::is_backend_failure)
                    .map(|e| e.to_string()),
                Err(panic) => Some(panic),
            };
            match failure {
                Some(detail) => child.still_failing(ctx, detail),
                None => {
                    child.restarted();
                    child.behaviour.serving(ctx);
                }
            }
        }));
    }
}

impl<B: Behaviour> Handler<Restart> for Child<B> {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Self::Context) {
        // actix restarts a stopped supervised actor in place: same address, same mailbox.
        ctx.stop();
    }
}

/// Fails the actor from its own code outside a handler (e.g. `ctx.notify(Fail { .. })`
/// when it cannot start serving).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Fail {
    /// Why.
    pub cause: Cause,
    /// What happened.
    pub detail: String,
}

impl<B: Behaviour> Handler<Fail> for Child<B> {
    type Result = ();

    fn handle(&mut self, fail: Fail, ctx: &mut Self::Context) {
        self.fail(ctx, fail.cause, fail.detail);
    }
}

/// A request that ended in a backend failure or a panic, passed back to its actor so the
/// actor is failed before the caller hears of it (the caller then already sees it down).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Settle {
    epoch: u64,
    cause: Cause,
    detail: String,
    answer: Box<dyn FnOnce() + Send>,
}

impl<B: Behaviour> Handler<Settle> for Child<B> {
    type Result = ();

    fn handle(&mut self, settle: Settle, ctx: &mut Self::Context) {
        if self.epoch == settle.epoch {
            self.fail(ctx, settle.cause, settle.detail);
        }
        (settle.answer)();
    }
}

impl<B, Req, Resp> Handler<Envelope<Req, Resp>> for Child<B>
where
    B: Handles<Req, Resp>,
    Req: 'static,
    Resp: Send + 'static,
{
    type Result = ();

    fn handle(&mut self, envelope: Envelope<Req, Resp>, ctx: &mut Self::Context) {
        let (refusable, abandonable) = (envelope.is_refusable(), envelope.is_abandonable());
        let origin = envelope.origin();
        let (request, reply) = envelope.open();
        if let Err(down) = self.check() {
            let _ = reply.send(Err(down));
            return;
        }
        if !<B as Handles<Req, Resp>>::IN_FLIGHT {
            return self.dispatch(request, reply, None, abandonable, origin, ctx);
        }
        if self.waiting.is_empty() {
            if let Ok(permit) = self.in_flight.clone().try_acquire_owned() {
                return self.dispatch(request, reply, Some(permit), abandonable, origin, ctx);
            }
        }
        if refusable {
            // At its bound of work in flight: a caller is told at once.
            let _ = reply.send(Err(Error::Busy { actor: self.name() }));
            return;
        }
        // Work that must not be dropped waits, in order, for a request in flight to end.
        self.waiting.push_back(Box::new(move |child, ctx, permit| {
            child.dispatch(request, reply, Some(permit), false, origin, ctx)
        }));
        // A request that ended before the count was published sent no `Ended`: try now.
        self.start_waiting(ctx);
    }
}

/// A request in flight ended: starts waiting work, if any.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Ended;

impl<B: Behaviour> Handler<Ended> for Child<B> {
    type Result = ();

    fn handle(&mut self, _: Ended, ctx: &mut Self::Context) {
        self.start_waiting(ctx);
    }
}

impl<B: Behaviour> Child<B> {
    /// Starts waiting work while units of work in flight are free.
    fn start_waiting(&mut self, ctx: &mut ChildContext<B>) {
        loop {
            // Published before trying the semaphore; an ending request gives its unit back
            // before reading the count, so one of the two always sees the other.
            self.waiters.store(self.waiting.len(), Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if self.waiting.is_empty() {
                return;
            }
            let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
                return;
            };
            if let Some(next) = self.waiting.pop_front() {
                next(self, ctx, permit);
            }
        }
    }
}

impl<B: Behaviour> Child<B> {
    /// Hands one request to the behaviour, holding its unit of work in flight (if it takes
    /// one) until it is answered. An `abandonable` request (a caller's read) is stopped
    /// when its caller stops waiting.
    fn dispatch<Req, Resp>(
        &mut self,
        request: Req,
        reply: Reply<Resp>,
        permit: Option<OwnedSemaphorePermit>,
        abandonable: bool,
        origin: Option<tokio::runtime::Handle>,
        ctx: &mut ChildContext<B>,
    ) where
        B: Handles<Req, Resp>,
        Resp: Send + 'static,
    {
        if let Err(down) = self.check() {
            let _ = reply.send(Err(down));
            return;
        }
        let responder = Responder {
            reply,
            name: self.name(),
            epoch: self.epoch,
            faults: self.faults.clone(),
            actor: ctx.address(),
            abandonable,
            origin,
            in_flight: InFlight {
                permit,
                waiters: self.waiters.clone(),
                actor: ctx.address(),
            },
        };
        let behaviour = &mut self.behaviour;
        if let Err(panic) = catch(|| behaviour.handle(request, responder, ctx)) {
            // The reply went down with the handler: its caller hears the actor stopped.
            self.fail(ctx, Cause::Panic, panic);
        }
    }
}

/// Where a behaviour answers one request.
pub struct Responder<B: Behaviour, Resp> {
    reply: Reply<Resp>,
    name: &'static str,
    epoch: u64,
    faults: Arc<Faults>,
    actor: Addr<Child<B>>,
    /// Whether the work may stop once nobody waits for its answer.
    abandonable: bool,
    /// The runtime the caller asked from.
    origin: Option<tokio::runtime::Handle>,
    /// One unit of the actor's work in flight, given back when the request is answered.
    in_flight: InFlight<B>,
}

/// One unit of an actor's work in flight. Given back when dropped, telling the actor if
/// work waits for it.
struct InFlight<B: Behaviour> {
    permit: Option<OwnedSemaphorePermit>,
    waiters: Arc<AtomicUsize>,
    actor: Addr<Child<B>>,
}

impl<B: Behaviour> Drop for InFlight<B> {
    fn drop(&mut self) {
        drop(self.permit.take());
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.actor.do_send(Ended);
        }
    }
}

impl<B: Behaviour, Resp: Send + 'static> Responder<B, Resp> {
    /// Answers now.
    pub fn answer(self, result: Result<Resp>) {
        let _ = self.reply.send(result);
    }

    /// The reply channel, for a behaviour that answers later itself (and bounds that work
    /// itself: the unit of work in flight is given back now).
    pub fn into_reply(self) -> Reply<Resp> {
        self.reply
    }

    /// Answers with what `work` gives, run as a task of its own on the actor's thread
    /// (concurrently with other requests). A backend failure or a panic in it fails the
    /// actor, unless it restarted since the request began, before the caller is told.
    ///
    /// A task of its own, not a future spawned into the actor's context: actix polls
    /// every future of a context whenever any of them is woken, so a thousand requests
    /// in flight would cost a thousand polls per wake-up.
    ///
    /// A read whose caller stopped waiting (its deadline passed) is dropped where it
    /// stands, giving its unit of work and its connection to requests that are still
    /// awaited; every other request runs to its end.
    pub fn serve(self, work: impl Future<Output = Result<Resp>> + 'static) {
        actix::spawn(self.answering(work));
    }

    /// As [`Responder::serve`], but run on the runtime the caller asked from (on the
    /// actor's thread when it asked from none): a tier's reads and writes for requests
    /// then run on the threads serving those requests, in parallel, and a read does not
    /// wait behind the thousand pushes one group commit releases, queued as tasks on the
    /// one actor thread (issue 12's profile). The actor still admits the work, bounds it
    /// and is failed by it.
    pub fn serve_for_caller(self, work: impl Future<Output = Result<Resp>> + Send + 'static) {
        match self.origin.clone() {
            Some(origin) => {
                origin.spawn(self.answering(work));
            }
            None => self.serve(work),
        }
    }

    /// The task answering with what `work` gives.
    fn answering<W: Future<Output = Result<Resp>> + 'static>(
        self,
        work: W,
    ) -> impl Future<Output = ()> + 'static {
        let Responder {
            mut reply,
            name,
            epoch,
            faults,
            actor,
            abandonable,
            origin: _,
            in_flight,
        } = self;
        async move {
            let work = catch_async(async move {
                faults.before(name).await;
                work.await
            });
            let outcome = if abandonable {
                // The work is polled first: it always starts (its fault injection
                // included) and is dropped at a wake-up after its caller has left.
                tokio::select! {
                    biased;
                    outcome = work => outcome,
                    () = reply.closed() => return,
                }
            } else {
                work.await
            };
            drop(in_flight);
            let (cause, detail, result) = match outcome {
                Ok(Err(e)) if e.is_backend_failure() => {
                    (Cause::Backend(e.kind().to_string()), e.to_string(), Err(e))
                }
                Ok(result) => {
                    let _ = reply.send(result);
                    return;
                }
                Err(message) => {
                    let error = Error::Panicked {
                        actor: name,
                        message: message.clone(),
                    };
                    (Cause::Panic, message, Err(error))
                }
            };
            // An actor that has stopped for good drops the message, and with it the reply:
            // the caller then hears that the request was dropped.
            actor.do_send(Settle {
                epoch,
                cause,
                detail,
                answer: Box::new(move || {
                    let _ = reply.send(result);
                }),
            });
        }
    }
}
