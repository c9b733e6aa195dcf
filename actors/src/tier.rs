//! The actor that serves one storage tier (recent, index, graph): requests are closures
//! over the tier's trait object, run through [`serve`] so they fail fast while the actor
//! is down, and restart it on a panic or a backend failure. The archive has an actor of
//! its own ([`crate::archive`]) because it also does group commit.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use actix::dev::ToEnvelope;
use actix::{Actor, ActorContext, Context, Handler, Supervised};
use futures_util::future::BoxFuture;

use crate::error::Result;
use crate::faults::Faults;
use crate::life::{serve, Child, Life, Restart, Settle};
use crate::mailbox::{Envelope, Mailbox};

/// A request to a tier: a closure over its store.
pub type Call<S, T> =
    Box<dyn FnOnce(Arc<S>) -> BoxFuture<'static, mnemo_storage::Result<T>> + Send>;

/// The actor of a tier whose store is `S` (a trait object).
pub struct TierActor<S: ?Sized + Send + Sync + 'static> {
    store: Arc<S>,
    life: Life,
    faults: Arc<Faults>,
}

impl<S: ?Sized + Send + Sync + 'static> TierActor<S> {
    /// An actor over `store`.
    pub fn new(store: Arc<S>, life: Life, faults: Arc<Faults>) -> Self {
        Self {
            store,
            life,
            faults,
        }
    }
}

impl<S: ?Sized + Send + Sync + 'static> Actor for TierActor<S> {
    type Context = Context<Self>;
}

impl<S: ?Sized + Send + Sync + 'static> Supervised for TierActor<S> {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // The store handle is stateless towards this actor (connections reconnect on
        // their own); restarting clears the failure and serves again.
        self.life.restarted();
    }
}

impl<S: ?Sized + Send + Sync + 'static> Handler<Restart> for TierActor<S> {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl<S: ?Sized + Send + Sync + 'static> Handler<Settle> for TierActor<S> {
    type Result = ();

    fn handle(&mut self, settle: Settle, ctx: &mut Context<Self>) {
        settle.apply(self, ctx);
    }
}

impl<S: ?Sized + Send + Sync + 'static> Child for TierActor<S> {
    fn life(&mut self) -> &mut Life {
        &mut self.life
    }

    fn faults(&self) -> Arc<Faults> {
        self.faults.clone()
    }
}

impl<S, T> Handler<Envelope<Call<S, T>, T>> for TierActor<S>
where
    S: ?Sized + Send + Sync + 'static,
    T: Send + 'static,
{
    type Result = ();

    fn handle(&mut self, envelope: Envelope<Call<S, T>, T>, ctx: &mut Context<Self>) {
        serve(self, ctx, envelope, |act, call| {
            let fut = call(act.store.clone());
            async move { fut.await.map_err(Into::into) }
        });
    }
}

/// A typed handle to the actor `A` serving a tier whose store is `S`: each method is one
/// request. `A` is [`TierActor`] but for the archive, whose actor also does group commit.
pub struct Tier<S: ?Sized + Send + Sync + 'static, A: Actor = TierActor<S>> {
    mailbox: Mailbox<A>,
    store: PhantomData<fn() -> Arc<S>>,
}

impl<S: ?Sized + Send + Sync + 'static, A: Actor> Clone for Tier<S, A> {
    fn clone(&self) -> Self {
        Self {
            mailbox: self.mailbox.clone(),
            store: PhantomData,
        }
    }
}

impl<S: ?Sized + Send + Sync + 'static, A: Actor> std::fmt::Debug for Tier<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.mailbox.fmt(f)
    }
}

impl<S: ?Sized + Send + Sync + 'static, A: Actor> Tier<S, A> {
    /// Wraps a tier actor's mailbox.
    pub fn new(mailbox: Mailbox<A>) -> Self {
        Self {
            mailbox,
            store: PhantomData,
        }
    }

    /// The actor's mailbox.
    pub fn mailbox(&self) -> &Mailbox<A> {
        &self.mailbox
    }

    /// Runs `call` on the tier; fails fast when the actor is busy or down.
    pub fn call<T, F>(&self, call: F) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(Arc<S>) -> BoxFuture<'static, mnemo_storage::Result<T>> + Send + 'static,
        A: Handler<Envelope<Call<S, T>, T>>,
        A::Context: ToEnvelope<A, Envelope<Call<S, T>, T>>,
    {
        let call: Call<S, T> = Box::new(call);
        self.mailbox.ask(call)
    }

    /// Runs `call` on the tier, waiting for room in its mailbox (work that must not be
    /// dropped: processors, forget).
    pub fn call_waiting<T, F>(&self, call: F) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(Arc<S>) -> BoxFuture<'static, mnemo_storage::Result<T>> + Send + 'static,
        A: Handler<Envelope<Call<S, T>, T>>,
        A::Context: ToEnvelope<A, Envelope<Call<S, T>, T>>,
    {
        let call: Call<S, T> = Box::new(call);
        self.mailbox.ask_waiting(call)
    }
}
