//! The actor that serves one storage tier (recent, index, graph), and [`Tier`], the typed
//! handle every tier actor is reached through. A request is a closure over the tier's
//! store, run as a task of its own; a backend failure restarts the actor (the
//! [runtime](crate::runtime) does that). The archive has an actor of its own
//! ([`super::archive`]) because it also does group commit.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use actix::dev::ToEnvelope;
use actix::{Actor, Handler};
use actix::{ActorFutureExt, AsyncContext};
use futures_util::future::{BoxFuture, LocalBoxFuture};
use futures_util::FutureExt;

use crate::error::Result;
use crate::runtime::mailbox::{Envelope, Mailbox};
use crate::runtime::{Behaviour, Cause, Child, ChildContext, Handles, Responder};

/// A request to a tier: a closure over its store.
pub type Call<S, T> =
    Box<dyn FnOnce(Arc<S>) -> BoxFuture<'static, mnemo_storage::Result<T>> + Send>;

/// The behaviour of a tier whose store is `S` (a trait object).
pub struct TierActor<S: ?Sized + Send + Sync + 'static> {
    store: Arc<S>,
}

impl<S: ?Sized + Send + Sync + 'static> TierActor<S> {
    /// An actor over `store`.
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }
}

/// A store whose backend can be asked whether it answers.
pub trait Ping: Send + Sync + 'static {
    /// Asks the backend.
    fn ping(self: Arc<Self>) -> BoxFuture<'static, mnemo_storage::Result<()>>;
}

impl Ping for dyn mnemo_storage::recent::RecentStore {
    fn ping(self: Arc<Self>) -> BoxFuture<'static, mnemo_storage::Result<()>> {
        Box::pin(async move { mnemo_storage::recent::RecentStore::ping(&*self).await })
    }
}

impl Ping for dyn mnemo_storage::index::IndexStore {
    fn ping(self: Arc<Self>) -> BoxFuture<'static, mnemo_storage::Result<()>> {
        Box::pin(async move { mnemo_storage::index::IndexStore::ping(&*self).await })
    }
}

impl Ping for dyn mnemo_storage::graph::GraphStore {
    fn ping(self: Arc<Self>) -> BoxFuture<'static, mnemo_storage::Result<()>> {
        Box::pin(async move { mnemo_storage::graph::GraphStore::ping(&*self).await })
    }
}

// The store handle is stateless towards this actor (connections reconnect on their own).
// Health is asked, not assumed: at start the backend is pinged and a failure fails the
// actor at once (it shows restarting, with the backend's error, instead of up), and after
// each restart it serves again only once the backend answers.
impl<S: ?Sized + Ping> Behaviour for TierActor<S> {
    fn serving(&mut self, ctx: &mut ChildContext<Self>) {
        let ping = self.store.clone().ping();
        ctx.spawn(
            actix::fut::wrap_future::<_, Child<Self>>(ping).map(|answered, child, ctx| {
                if let Err(e) = answered {
                    let e = crate::error::Error::from(e);
                    if e.is_backend_failure() {
                        child.fail(ctx, Cause::Backend(e.kind().to_string()), e.to_string());
                    }
                }
            }),
        );
    }

    fn probe(&self) -> Option<LocalBoxFuture<'static, Result<()>>> {
        let ping = self.store.clone().ping();
        Some(async move { ping.await.map_err(crate::error::Error::from) }.boxed_local())
    }
}

impl<S, T> Handles<Call<S, T>, T> for TierActor<S>
where
    S: ?Sized + Ping,
    T: Send + 'static,
{
    fn handle(&mut self, call: Call<S, T>, reply: Responder<Self, T>, _: &mut ChildContext<Self>) {
        serve_call(&self.store, call, reply);
    }
}

/// Answers `call` over `store` from a task of its own, on the caller's runtime.
pub(crate) fn serve_call<S, T, B>(store: &Arc<S>, call: Call<S, T>, reply: Responder<B, T>)
where
    S: ?Sized + Send + Sync + 'static,
    T: Send + 'static,
    B: Behaviour,
{
    let fut = call(store.clone());
    reply.serve_for_caller(async move { Ok(fut.await?) });
}

/// A typed handle to the actor `A` serving a tier whose store is `S`: each method is one
/// request. `A` is the [`TierActor`] but for the archive, whose actor also does group
/// commit.
pub struct Tier<S: ?Sized + Send + Sync + 'static, A: Actor = Child<TierActor<S>>> {
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

    /// Runs the read `call` on the tier as [`Tier::call`] does; it is dropped where it
    /// stands once its caller stops waiting (a deadline passed).
    pub fn read<T, F>(&self, call: F) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(Arc<S>) -> BoxFuture<'static, mnemo_storage::Result<T>> + Send + 'static,
        A: Handler<Envelope<Call<S, T>, T>>,
        A::Context: ToEnvelope<A, Envelope<Call<S, T>, T>>,
    {
        let call: Call<S, T> = Box::new(call);
        self.mailbox.ask_read(call)
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
