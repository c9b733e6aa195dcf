//! How callers talk to actors: a request and a oneshot for its answer in an
//! [`Envelope`], sent through a [`Mailbox`] that counts its depth and either fails fast
//! when the actor's bounded mailbox is full (requests from outside) or waits for room
//! (work between actors, which must not be dropped).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Message};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Counts one queued message; dropping it (when the handler opens the envelope, or when
/// the message is discarded) takes it off the count.
#[derive(Debug)]
pub struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request `Req` to an actor, with the channel its `Resp` goes back on.
#[derive(Debug)]
pub struct Envelope<Req, Resp> {
    request: Req,
    reply: Reply<Resp>,
    _ticket: Ticket,
}

/// Where an actor sends one answer.
pub type Reply<Resp> = oneshot::Sender<Result<Resp>>;

impl<Req, Resp> Envelope<Req, Resp> {
    /// Takes the request and its reply channel out; the message leaves the queue count.
    pub fn open(self) -> (Req, Reply<Resp>) {
        (self.request, self.reply)
    }
}

impl<Req: 'static, Resp: 'static> Message for Envelope<Req, Resp> {
    type Result = ();
}

/// A handle to one actor: its address, its name and its queue depth.
pub struct Mailbox<A: Actor> {
    name: &'static str,
    addr: Addr<A>,
    depth: Arc<AtomicUsize>,
}

impl<A: Actor> Clone for Mailbox<A> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            addr: self.addr.clone(),
            depth: self.depth.clone(),
        }
    }
}

impl<A: Actor> std::fmt::Debug for Mailbox<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("name", &self.name)
            .field("depth", &self.depth())
            .finish()
    }
}

impl<A: Actor> Mailbox<A> {
    /// Wraps an actor's address.
    pub fn new(name: &'static str, addr: Addr<A>) -> Self {
        Self {
            name,
            addr,
            depth: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The actor's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Messages queued and not yet picked up.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// The actor's address.
    pub fn addr(&self) -> &Addr<A> {
        &self.addr
    }

    fn envelope<Req, Resp>(
        &self,
        request: Req,
    ) -> (Envelope<Req, Resp>, oneshot::Receiver<Result<Resp>>) {
        let (reply, answer) = oneshot::channel();
        self.depth.fetch_add(1, Ordering::Relaxed);
        let envelope = Envelope {
            request,
            reply,
            _ticket: Ticket(self.depth.clone()),
        };
        (envelope, answer)
    }

    /// Sends `request`, failing at once with [`Error::Busy`] when the mailbox is full,
    /// and waits for the answer. The send happens now; the returned future only waits,
    /// and borrows nothing.
    pub fn ask<Req, Resp>(
        &self,
        request: Req,
    ) -> impl Future<Output = Result<Resp>> + Send + 'static
    where
        Req: Send + 'static,
        Resp: Send + 'static,
        A: Handler<Envelope<Req, Resp>>,
        A::Context: ToEnvelope<A, Envelope<Req, Resp>>,
    {
        let (envelope, answer) = self.envelope(request);
        let name = self.name;
        let sent = self.addr.try_send(envelope).map_err(|e| match e {
            actix::prelude::SendError::Full(_) => Error::Busy { actor: name },
            actix::prelude::SendError::Closed(_) => Error::Down {
                actor: name,
                reason: "it has stopped".into(),
            },
        });
        async move {
            sent?;
            answer.await.map_err(|_| lost(name))?
        }
    }

    /// Sends `request`, waiting for room in the mailbox, and waits for the answer.
    pub fn ask_waiting<Req, Resp>(
        &self,
        request: Req,
    ) -> impl Future<Output = Result<Resp>> + Send + 'static
    where
        Req: Send + 'static,
        Resp: Send + 'static,
        A: Handler<Envelope<Req, Resp>>,
        A::Context: ToEnvelope<A, Envelope<Req, Resp>>,
    {
        let (envelope, answer) = self.envelope(request);
        let name = self.name;
        let queued = self.addr.send(envelope);
        async move {
            queued.await.map_err(|_| Error::Down {
                actor: name,
                reason: "it has stopped".into(),
            })?;
            answer.await.map_err(|_| lost(name))?
        }
    }
}

fn lost(name: &'static str) -> Error {
    Error::Down {
        actor: name,
        reason: "it stopped before answering (restart or shutdown)".into(),
    }
}
