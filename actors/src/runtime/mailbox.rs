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

/// Reads one actor's mailbox depth.
pub type DepthProbe = Arc<dyn Fn() -> usize + Send + Sync>;

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
    /// Whether the actor may refuse it when busy (a caller's request) rather than keep
    /// it until it has room (work between actors, which must not be dropped).
    refusable: bool,
    /// Whether its work may stop once its caller stops waiting (a read: nothing is left
    /// half done).
    abandonable: bool,
    /// The runtime the caller asked from, where work that can move runs (see
    /// [`Responder::serve_for_caller`](super::child::Responder::serve_for_caller)).
    origin: Option<tokio::runtime::Handle>,
    _ticket: Ticket,
}

/// Where an actor sends one answer.
pub type Reply<Resp> = oneshot::Sender<Result<Resp>>;

impl<Req, Resp> Envelope<Req, Resp> {
    /// Takes the request and its reply channel out; the message leaves the queue count.
    pub fn open(self) -> (Req, Reply<Resp>) {
        (self.request, self.reply)
    }

    /// The runtime the caller asked from (none outside a tokio runtime).
    pub fn origin(&self) -> Option<tokio::runtime::Handle> {
        self.origin.clone()
    }

    /// Whether the actor may refuse it when busy.
    pub fn is_refusable(&self) -> bool {
        self.refusable
    }

    /// Whether its work may stop once its caller stops waiting.
    pub fn is_abandonable(&self) -> bool {
        self.abandonable
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

    /// Reads the depth later, without holding the address.
    pub fn depth_probe(&self) -> DepthProbe {
        let depth = self.depth.clone();
        Arc::new(move || depth.load(Ordering::Relaxed))
    }

    /// The actor's address.
    pub fn addr(&self) -> &Addr<A> {
        &self.addr
    }

    fn envelope<Req, Resp>(
        &self,
        request: Req,
        refusable: bool,
        abandonable: bool,
    ) -> (Envelope<Req, Resp>, oneshot::Receiver<Result<Resp>>) {
        let (reply, answer) = oneshot::channel();
        self.depth.fetch_add(1, Ordering::Relaxed);
        let envelope = Envelope {
            request,
            reply,
            refusable,
            abandonable,
            origin: tokio::runtime::Handle::try_current().ok(),
            _ticket: Ticket(self.depth.clone()),
        };
        (envelope, answer)
    }

    /// Sends `request`, failing at once with [`Error::Busy`] when the mailbox is full or
    /// the actor has all the work in flight it takes, and waits for the answer. The send
    /// happens now; the returned future only waits, and borrows nothing.
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
        self.try_ask(request, false)
    }

    /// Sends a read as [`Mailbox::ask`] does; its work is dropped where it stands once
    /// its caller stops waiting (a deadline passed), giving its unit of work in flight
    /// and its connection to requests still awaited. Only for requests that leave
    /// nothing half done when dropped.
    pub fn ask_read<Req, Resp>(
        &self,
        request: Req,
    ) -> impl Future<Output = Result<Resp>> + Send + 'static
    where
        Req: Send + 'static,
        Resp: Send + 'static,
        A: Handler<Envelope<Req, Resp>>,
        A::Context: ToEnvelope<A, Envelope<Req, Resp>>,
    {
        self.try_ask(request, true)
    }

    fn try_ask<Req, Resp>(
        &self,
        request: Req,
        abandonable: bool,
    ) -> impl Future<Output = Result<Resp>> + Send + 'static
    where
        Req: Send + 'static,
        Resp: Send + 'static,
        A: Handler<Envelope<Req, Resp>>,
        A::Context: ToEnvelope<A, Envelope<Req, Resp>>,
    {
        let (envelope, answer) = self.envelope(request, true, abandonable);
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

    /// Sends `request`, waiting for room in the mailbox and in the actor's work in
    /// flight, and waits for the answer.
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
        let (envelope, answer) = self.envelope(request, false, false);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::Mailbox;
    use crate::config::SupervisorConfig;
    use crate::error::{Error, ErrorKind};
    use crate::runtime::{Behaviour, Child, ChildContext, Handles, Limits, Responder, Spawner};

    /// Answers each request with its number.
    struct Echo;

    impl Behaviour for Echo {}

    impl Handles<u32, u32> for Echo {
        fn handle(&mut self, n: u32, reply: Responder<Self, u32>, _: &mut ChildContext<Self>) {
            reply.answer(Ok(n));
        }
    }

    /// Requests sent faster than the actor takes them (here: all before it runs, on one
    /// thread) fill its mailbox; the rest are refused at once as busy, and the ones taken
    /// are all answered.
    #[actix::test]
    async fn a_full_mailbox_refuses_at_once_and_answers_what_it_took() {
        let (_spawner, mailbox) = spawn_one("echo", 4, 1, Echo);
        let asks: Vec<_> = (0..32u32).map(|n| mailbox.ask(n)).collect();
        assert!(mailbox.depth() > 0, "queued, not yet taken");
        let mut answered = Vec::new();
        let mut busy = 0;
        for ask in asks {
            match ask.await {
                Ok(n) => answered.push(n),
                Err(e) => {
                    assert!(matches!(e, Error::Busy { actor: "echo" }), "{e:?}");
                    assert_eq!(e.kind(), ErrorKind::Busy);
                    assert!(e.is_retryable());
                    busy += 1;
                }
            }
        }
        assert!(busy > 0, "a mailbox of 4 took all 32");
        assert!(answered.len() >= 4, "{answered:?}");
        assert_eq!(answered, (0..answered.len() as u32).collect::<Vec<_>>());
        assert_eq!(mailbox.depth(), 0, "every message taken off the count");
        // Once there is room again, requests are taken.
        assert_eq!(mailbox.ask(99).await.expect("room again"), 99);
    }

    /// Answers with the name of the thread its work ran on.
    struct WhereServed;

    impl Behaviour for WhereServed {}

    impl Handles<(), String> for WhereServed {
        fn handle(&mut self, (): (), reply: Responder<Self, String>, _: &mut ChildContext<Self>) {
            reply.serve_for_caller(async {
                Ok(std::thread::current()
                    .name()
                    .unwrap_or("unnamed")
                    .to_owned())
            });
        }
    }

    /// Work served for the caller runs on the runtime the caller asked from, so the
    /// requests of many callers run on their threads, not queued on the actor's one.
    #[actix::test]
    async fn work_served_for_the_caller_runs_on_the_callers_runtime() {
        let (_spawner, mailbox) = spawn_one("where", 8, 8, WhereServed);
        let actor_thread = std::thread::current().name().map(str::to_owned);
        let here = mailbox.ask(()).await.expect("served");
        assert_eq!(
            Some(here),
            actor_thread,
            "asked from the actor's own runtime"
        );

        let (tx, rx) = tokio::sync::oneshot::channel();
        let asking = mailbox.clone();
        std::thread::Builder::new()
            .name("the-caller".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                // Asked inside the runtime: `ask` sends, and notes the runtime, when called.
                let _ = tx.send(runtime.block_on(async move { asking.ask(()).await }));
            })
            .expect("a thread");
        let there = rx.await.expect("the caller answered").expect("served");
        assert_eq!(there, "the-caller");
    }

    /// A spawner (kept by the caller for the test's length) and one actor under it.
    fn spawn_one<B: Behaviour>(
        name: &'static str,
        mailbox: usize,
        in_flight: usize,
        behaviour: B,
    ) -> (Spawner, Mailbox<Child<B>>) {
        let mut spawner = Spawner::new(SupervisorConfig::default(), Arc::default());
        let mailbox = spawner.spawn(name, Limits { mailbox, in_flight }, behaviour);
        (spawner, mailbox)
    }

    /// Sends `0..n` as work between actors, all at once, and sees each answered with
    /// itself, in order.
    async fn assert_all_served_in_order<B: Handles<u32, u32>>(mailbox: &Mailbox<Child<B>>, n: u32) {
        let asks: Vec<_> = (0..n).map(|i| mailbox.ask_waiting(i)).collect();
        let answers = futures_util::future::join_all(asks).await;
        let answers: Vec<u32> = answers.into_iter().map(|a| a.expect("served")).collect();
        assert_eq!(answers, (0..n).collect::<Vec<_>>());
    }

    /// Work between actors waits for room instead of being refused.
    #[actix::test]
    async fn asking_and_waiting_for_room_is_never_refused() {
        let (_spawner, mailbox) = spawn_one("echo", 2, 1, Echo);
        assert_all_served_in_order(&mailbox, 32).await;
    }

    /// Work that waits for a unit of work in flight is started when one is given back,
    /// also when the answer comes from another thread while the actor queues more.
    #[actix::test]
    async fn waiting_work_is_started_when_answers_come_from_other_threads() {
        let (_spawner, mailbox) = spawn_one("threaded", 8, 1, AnswersFromThread);
        assert_all_served_in_order(&mailbox, 500).await;
    }

    /// A read whose caller stops waiting gives its unit of work in flight back at once;
    /// a request the behaviour bounds itself is taken even when every unit is held.
    #[actix::test]
    async fn abandoned_requests_free_their_unit_and_self_bounded_ones_need_none() {
        let (_spawner, mailbox) = spawn_one("stuck", 8, 1, StuckOnZero);
        // Holds the only unit, forever, until its caller gives up.
        let stuck = mailbox.ask_read(0u32);
        tokio::task::yield_now().await;
        let e = mailbox.ask(1u32).await.expect_err("the only unit is held");
        assert!(matches!(e, Error::Busy { actor: "stuck" }), "{e:?}");
        assert_eq!(mailbox.ask(SelfBounded(7)).await.expect("needs no unit"), 7);
        // Waits for the unit; gets it once the stuck request's caller gives up.
        let waiting = mailbox.ask_waiting(2u32);
        drop(stuck);
        let served = tokio::time::timeout(Duration::from_secs(60), waiting)
            .await
            .expect("the abandoned request gave its unit back");
        assert_eq!(served.expect("served"), 2);
    }

    /// A request that is not a read runs to its end when its caller stops waiting.
    #[actix::test]
    async fn other_requests_run_to_their_end_without_their_caller() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (_spawner, mailbox) = spawn_one(
            "finishing",
            8,
            1,
            Gated {
                gate: gate.clone(),
                working: Arc::default(),
                most: Arc::default(),
            },
        );
        let asked = mailbox.ask(1u32);
        tokio::task::yield_now().await;
        drop(asked);
        gate.add_permits(2);
        // Starts once request 1 has ended, which it does only by running to its end.
        assert_eq!(mailbox.ask_waiting(2u32).await.expect("served"), 2);
        assert_eq!(
            gate.available_permits(),
            0,
            "both requests went through the gate"
        );
    }

    /// Never answers request 0; answers the others at once.
    struct StuckOnZero;

    impl Behaviour for StuckOnZero {}

    impl Handles<u32, u32> for StuckOnZero {
        fn handle(&mut self, n: u32, reply: Responder<Self, u32>, _: &mut ChildContext<Self>) {
            reply.serve(async move {
                if n == 0 {
                    std::future::pending::<()>().await;
                }
                Ok(n)
            });
        }
    }

    /// A request the behaviour bounds itself.
    struct SelfBounded(u32);

    impl Handles<SelfBounded, u32> for StuckOnZero {
        const IN_FLIGHT: bool = false;

        fn handle(
            &mut self,
            SelfBounded(n): SelfBounded,
            reply: Responder<Self, u32>,
            _: &mut ChildContext<Self>,
        ) {
            reply.answer(Ok(n));
        }
    }

    /// Answers each request from a thread of its own.
    struct AnswersFromThread;

    impl Behaviour for AnswersFromThread {}

    impl Handles<u32, u32> for AnswersFromThread {
        fn handle(&mut self, n: u32, reply: Responder<Self, u32>, _: &mut ChildContext<Self>) {
            std::thread::spawn(move || {
                std::thread::yield_now();
                reply.answer(Ok(n));
            });
        }
    }

    /// Holds every request until the test opens the gate, counting how many it works on
    /// at once.
    struct Gated {
        gate: Arc<tokio::sync::Semaphore>,
        working: Arc<std::sync::atomic::AtomicUsize>,
        most: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Behaviour for Gated {}

    impl Handles<u32, u32> for Gated {
        fn handle(&mut self, n: u32, reply: Responder<Self, u32>, _: &mut ChildContext<Self>) {
            use std::sync::atomic::Ordering;
            let (gate, working, most) =
                (self.gate.clone(), self.working.clone(), self.most.clone());
            let now = working.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            reply.serve(async move {
                gate.acquire().await.expect("the gate stays open").forget();
                working.fetch_sub(1, Ordering::SeqCst);
                Ok(n)
            });
        }
    }

    /// Work in flight is bounded: an actor at its bound refuses a caller's request at
    /// once, while work between actors waits, in order, for a request in flight to end.
    #[actix::test]
    async fn work_in_flight_is_bounded_callers_refused_and_work_between_actors_kept() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (_spawner, mailbox) = spawn_one(
            "gated",
            64,
            2,
            Gated {
                gate: gate.clone(),
                working: Arc::default(),
                most: most.clone(),
            },
        );
        let taken = [mailbox.ask(0), mailbox.ask(1)];
        let kept: Vec<_> = (10..13u32).map(|n| mailbox.ask_waiting(n)).collect();
        // Sent a few at a time, letting the actor run in between, as callers do.
        let mut refused = Vec::new();
        for round in 0..4u32 {
            refused.extend((0..4).map(|i| mailbox.ask(100 + round * 4 + i)));
            tokio::task::yield_now().await;
        }
        for ask in refused {
            let e = ask
                .await
                .expect_err("refused at once while 2 are in flight");
            assert!(matches!(e, Error::Busy { actor: "gated" }), "{e:?}");
        }
        gate.add_permits(1_000);
        for (ask, n) in taken.into_iter().zip(0..) {
            assert_eq!(ask.await.expect("taken"), n);
        }
        let kept = futures_util::future::join_all(kept).await;
        let kept: Vec<u32> = kept
            .into_iter()
            .map(|k| k.expect("kept, then served"))
            .collect();
        assert_eq!(kept, [10, 11, 12]);
        assert_eq!(
            most.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "in flight at once"
        );
    }
}
