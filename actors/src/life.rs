//! The life of a supervised actor: up, or down after a failure until the supervisor
//! restarts it. Handlers run through [`serve`], which fails fast while the actor is
//! down, catches panics (actix does not) and turns them, and backend failures, into a
//! restart.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use actix::{Actor, AsyncContext, Context, Handler, Message, Recipient, Supervised};
use futures_util::FutureExt;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::faults::Faults;
use crate::mailbox::{Envelope, Reply};
use crate::metrics;

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

/// What health shows of one actor; shared between the actor and the engine.
#[derive(Debug)]
pub struct Status {
    name: &'static str,
    inner: Mutex<StatusInner>,
    /// Total restarts, for waiting on the next one.
    restarted: tokio::sync::watch::Sender<u64>,
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
        })
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

    /// What the last failure was.
    pub fn last_failure(&self) -> Option<String> {
        self.inner.lock().last_failure.clone()
    }
}

/// Tells the supervisor an actor failed and must be restarted.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Failed {
    /// The actor's name.
    pub name: &'static str,
    /// Why.
    pub cause: Cause,
    /// Where to send the restart order.
    pub restart: Recipient<Restart>,
}

/// The supervisor's order to restart (sent after the backoff).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Restart;

/// An actor's life: its status and where to report failures.
#[derive(Debug)]
pub struct Life {
    status: Arc<Status>,
    supervisor: Recipient<Failed>,
    failed_with: Option<Cause>,
    /// Restarts of this actor so far: a request begun before a restart must not fail
    /// the actor that came after it.
    epoch: u64,
}

impl Life {
    /// The life of actor `status.name()`, reporting to `supervisor`.
    pub fn new(status: Arc<Status>, supervisor: Recipient<Failed>) -> Self {
        Self {
            status,
            supervisor,
            failed_with: None,
            epoch: 0,
        }
    }

    /// The actor's name.
    pub fn name(&self) -> &'static str {
        self.status.name
    }

    /// Fails fast while the actor is down.
    pub fn check(&self) -> Result<()> {
        match &self.failed_with {
            None => Ok(()),
            Some(cause) => Err(Error::Down {
                actor: self.status.name,
                reason: format!("restarting after a failure ({})", cause.label()),
            }),
        }
    }

    /// Marks the actor down and asks the supervisor for a restart (once per failure).
    pub fn fail<A>(&mut self, ctx: &mut Context<A>, cause: Cause, detail: String)
    where
        A: Actor<Context = Context<A>> + Handler<Restart>,
    {
        if self.failed_with.is_some() {
            return;
        }
        {
            let mut inner = self.status.inner.lock();
            inner.state = State::Restarting;
            inner.last_failure = Some(detail);
        }
        self.failed_with = Some(cause.clone());
        self.supervisor.do_send(Failed {
            name: self.status.name,
            cause,
            restart: ctx.address().recipient(),
        });
    }

    /// Keeps the actor down after a restart that found its backend still failing, and
    /// asks the supervisor for another restart (after the next, longer, backoff). The
    /// restart is counted under the original cause once the actor is up again.
    pub fn still_failing<A>(&mut self, ctx: &mut Context<A>, detail: String)
    where
        A: Actor<Context = Context<A>> + Handler<Restart>,
    {
        let Some(cause) = self.failed_with.clone() else {
            return;
        };
        self.status.inner.lock().last_failure = Some(detail);
        self.supervisor.do_send(Failed {
            name: self.status.name,
            cause,
            restart: ctx.address().recipient(),
        });
    }

    /// Called from `Supervised::restarting`: counts the restart and marks the actor up.
    pub fn restarted(&mut self) {
        self.epoch += 1;
        let mut inner = self.status.inner.lock();
        if let Some(cause) = self.failed_with.take() {
            let label = cause.label();
            ::metrics::counter!(
                metrics::ACTOR_RESTARTS_TOTAL,
                metrics::LABEL_ACTOR => self.status.name,
                metrics::LABEL_CAUSE => label.clone()
            )
            .increment(1);
            *inner.restarts.entry(label).or_default() += 1;
        }
        inner.state = State::Up;
        let total = inner.restarts.values().sum();
        drop(inner);
        self.status.restarted.send_replace(total);
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

impl Settle {
    /// Fails `act` (unless it restarted since the request began), then answers.
    pub fn apply<A: Child>(self, act: &mut A, ctx: &mut Context<A>) {
        if act.life().epoch == self.epoch {
            act.life().fail(ctx, self.cause, self.detail);
        }
        (self.answer)();
    }
}

/// An actor run under the supervisor. Its `Handler<Settle>` calls [`Settle::apply`].
pub trait Child:
    Actor<Context = Context<Self>> + Supervised + Handler<Restart> + Handler<Settle>
{
    /// Its life.
    fn life(&mut self) -> &mut Life;
    /// The shared fault hooks.
    fn faults(&self) -> Arc<Faults>;
}

/// The panic payload as text.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Handles one request of actor `A`: fails fast while down; otherwise builds the work
/// with `work` and runs it as a task of its own on the actor's thread (concurrently with
/// other requests), answers on the envelope's reply channel, and fails the actor on a
/// panic or a backend failure.
///
/// A task of its own, not a future spawned into the actor's context: actix polls every
/// future of a context whenever any of them is woken, so a thousand requests in flight
/// would cost a thousand polls per wake-up.
pub fn serve<A, Req, Resp, Fut>(
    act: &mut A,
    ctx: &mut Context<A>,
    envelope: Envelope<Req, Resp>,
    work: impl FnOnce(&mut A, Req) -> Fut,
) where
    A: Child,
    Req: 'static,
    Resp: Send + 'static,
    Fut: Future<Output = Result<Resp>> + 'static,
{
    let (request, reply) = envelope.open();
    if let Err(e) = act.life().check() {
        let _ = reply.send(Err(e));
        return;
    }
    let name = act.life().name();
    let epoch = act.life().epoch;
    let faults = act.faults();
    let built = std::panic::catch_unwind(AssertUnwindSafe(|| work(act, request)));
    let fut = match built {
        Ok(fut) => fut,
        Err(payload) => {
            return on_panic(act, ctx, name, panic_message(&*payload), reply);
        }
    };
    let actor = ctx.address();
    actix::spawn(async move {
        let outcome = AssertUnwindSafe(async move {
            faults.before(name).await;
            fut.await
        })
        .catch_unwind()
        .await;
        let (cause, detail, result) = match outcome {
            Ok(Err(e)) if e.is_backend_failure() => {
                (Cause::Backend(e.kind().to_string()), e.to_string(), Err(e))
            }
            Ok(result) => {
                let _ = reply.send(result);
                return;
            }
            Err(payload) => {
                let message = panic_message(&*payload);
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
    });
}

fn on_panic<A: Child, Resp>(
    act: &mut A,
    ctx: &mut Context<A>,
    name: &'static str,
    message: String,
    reply: Reply<Resp>,
) {
    // Failed first, so whoever gets the error already sees the actor restarting.
    act.life().fail(ctx, Cause::Panic, message.clone());
    let _ = reply.send(Err(Error::Panicked {
        actor: name,
        message,
    }));
}
