//! The supervisor: owns the restart policy of every actor. A failed actor reports here;
//! after an exponential backoff the supervisor orders its restart, which actix performs
//! in place (`actix::Supervisor`), so the actor keeps its address and its mailbox. A run
//! of failures waits longer each time; an actor that stayed up for `reset_after_ms`
//! starts again from the first backoff.

use std::collections::HashMap;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, Message, Recipient};
use tokio::time::Instant;

use super::status::Cause;
use crate::config::SupervisorConfig;

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

/// Stops restarting actors: the engine is shutting down.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopRestarts;

#[derive(Debug, Clone, Copy)]
struct Run {
    /// Failures in a row (each further one waits longer).
    attempts: u32,
    last_failure: Instant,
}

/// The supervisor actor.
#[derive(Debug)]
pub struct Supervisor {
    config: SupervisorConfig,
    runs: HashMap<&'static str, Run>,
    stopping: bool,
}

impl Supervisor {
    /// A supervisor with the given restart policy.
    pub fn new(config: SupervisorConfig) -> Self {
        Self {
            config,
            runs: HashMap::new(),
            stopping: false,
        }
    }

    /// The wait before restarting `name`, which failed now; counts the failure.
    fn backoff(&mut self, name: &'static str) -> Duration {
        let now = Instant::now();
        let reset_after = Duration::from_millis(self.config.reset_after_ms);
        let run = self.runs.entry(name).or_insert(Run {
            attempts: 0,
            last_failure: now,
        });
        if now.duration_since(run.last_failure) > reset_after {
            run.attempts = 0;
        }
        let backoff = self.config.backoff(run.attempts);
        run.attempts += 1;
        run.last_failure = now;
        backoff
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

impl Handler<Failed> for Supervisor {
    type Result = ();

    fn handle(&mut self, failed: Failed, ctx: &mut Context<Self>) {
        if self.stopping {
            return;
        }
        let backoff = self.backoff(failed.name);
        tracing::info!(
            actor = failed.name,
            cause = %failed.cause.label(),
            backoff_ms = backoff.as_millis() as u64,
            "restart scheduled"
        );
        let restart = failed.restart;
        ctx.run_later(backoff, move |supervisor, _| {
            if !supervisor.stopping {
                restart.do_send(Restart);
            }
        });
    }
}

impl Handler<StopRestarts> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: StopRestarts, _: &mut Context<Self>) {
        self.stopping = true;
    }
}

/// The restart policy, run under tokio's paused clock: every wait is exact, and a test
/// of a 10 s backoff takes no time.
#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use mnemo_storage::ErrorKind as StorageKind;
    use tokio::time::Instant;

    use crate::config::SupervisorConfig;
    use crate::error::{Error, ErrorKind};
    use crate::runtime::child::{Behaviour, ChildContext, Handles, Responder};
    use crate::runtime::mailbox::Mailbox;
    use crate::runtime::spawn::Spawner;
    use crate::runtime::status::{State, Status};
    use crate::runtime::{Child, Limits};

    /// An actor whose backend fails on request, or whose handler panics.
    struct Flaky;

    /// Make the backend fail.
    struct BackendDown;
    /// Panic while answering.
    struct Panic;
    /// Answer.
    struct Ping;

    impl Behaviour for Flaky {}

    impl Handles<BackendDown, ()> for Flaky {
        fn handle(
            &mut self,
            _: BackendDown,
            reply: Responder<Self, ()>,
            _: &mut ChildContext<Self>,
        ) {
            reply.serve(async {
                Err(mnemo_storage::Error::unavailable("test backend", "it is down").into())
            });
        }
    }

    impl Handles<Panic, ()> for Flaky {
        fn handle(&mut self, _: Panic, reply: Responder<Self, ()>, _: &mut ChildContext<Self>) {
            reply.serve(async { panic!("the handler broke") });
        }
    }

    impl Handles<Ping, ()> for Flaky {
        fn handle(&mut self, _: Ping, reply: Responder<Self, ()>, _: &mut ChildContext<Self>) {
            reply.answer(Ok(()));
        }
    }

    fn policy() -> SupervisorConfig {
        SupervisorConfig {
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            multiplier: 2.0,
            reset_after_ms: 5_000,
        }
    }

    fn start() -> (Mailbox<Child<Flaky>>, Arc<Status>) {
        let mut spawner = Spawner::new(policy(), Arc::default());
        let mailbox = spawner.spawn(
            "flaky",
            Limits {
                mailbox: 16,
                in_flight: 16,
            },
            Flaky,
        );
        let status = spawner.status("flaky").expect("registered");
        (mailbox, status)
    }

    /// Fails the actor through its backend and returns how long it stayed down.
    async fn down_for(mailbox: &Mailbox<Child<Flaky>>, status: &Status) -> Duration {
        let mut restarted = status.restarted();
        let before = *restarted.borrow_and_update();
        let failed_at = Instant::now();
        let err = mailbox
            .ask(BackendDown)
            .await
            .expect_err("the backend is down");
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert_eq!(status.state(), State::Restarting);
        restarted
            .wait_for(|n| *n > before)
            .await
            .expect("restarted");
        assert_eq!(status.state(), State::Up);
        failed_at.elapsed()
    }

    /// The clock is paused, so the wait is the backoff exactly, but for tokio rounding a
    /// timer up to its next millisecond.
    fn assert_waited(waited: Duration, backoff_ms: u64) {
        let backoff = Duration::from_millis(backoff_ms);
        assert!(
            waited >= backoff && waited <= backoff + Duration::from_millis(1),
            "waited {waited:?}, the backoff is {backoff:?}"
        );
    }

    #[actix::test]
    async fn backoff_grows_with_each_failure_in_a_run_and_resets_after_a_quiet_spell() {
        tokio::time::pause();
        let (mailbox, status) = start();
        for backoff in [100, 200, 400, 800, 1_000, 1_000] {
            assert_waited(down_for(&mailbox, &status).await, backoff);
        }

        // Up for longer than reset_after: the next failure starts a new run.
        tokio::time::advance(Duration::from_millis(5_001)).await;
        assert_waited(down_for(&mailbox, &status).await, 100);
        assert_waited(down_for(&mailbox, &status).await, 200);
        assert_eq!(
            status.restarts().get("backend_unavailable"),
            Some(&8),
            "{:?}",
            status.restarts()
        );
        mailbox.ask(Ping).await.expect("serving");
    }

    #[actix::test]
    async fn a_panic_is_caught_counted_by_cause_and_the_actor_restarts() {
        tokio::time::pause();
        let (mailbox, status) = start();
        let mut restarted = status.restarted();
        let err = mailbox.ask(Panic).await.expect_err("the handler panicked");
        assert!(
            matches!(&err, Error::Panicked { actor: "flaky", message } if message == "the handler broke"),
            "{err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        restarted.wait_for(|n| *n == 1).await.expect("restarted");
        assert_eq!(status.restarts().get("panic"), Some(&1));
        assert!(status
            .last_failure()
            .is_some_and(|f| f.contains("the handler broke")));
        mailbox.ask(Ping).await.expect("serving again");
    }

    #[actix::test]
    async fn a_down_actor_fails_fast_until_it_is_restarted() {
        tokio::time::pause();
        let (mailbox, status) = start();
        let mut restarted = status.restarted();
        mailbox.ask(BackendDown).await.expect_err("fails");
        let asked_at = Instant::now();
        let err = mailbox.ask(Ping).await.expect_err("down");
        assert!(matches!(err, Error::Down { actor: "flaky", .. }), "{err:?}");
        assert!(err.to_string().contains("backend_unavailable"), "{err}");
        assert_eq!(
            asked_at.elapsed(),
            Duration::ZERO,
            "answered without waiting"
        );
        restarted.wait_for(|n| *n == 1).await.expect("restarted");
        mailbox.ask(Ping).await.expect("serving again");
    }

    #[actix::test]
    async fn a_request_failing_for_its_own_input_does_not_restart_the_actor() {
        struct BadInput;
        impl Handles<BadInput, ()> for Flaky {
            fn handle(
                &mut self,
                _: BadInput,
                reply: Responder<Self, ()>,
                _: &mut ChildContext<Self>,
            ) {
                reply
                    .serve(async { Err(mnemo_storage::Error::invalid("content", "empty").into()) });
            }
        }
        tokio::time::pause();
        let (mailbox, status) = start();
        let err = mailbox.ask(BadInput).await.expect_err("refused");
        assert!(
            matches!(&err, Error::Storage(e) if e.kind() == StorageKind::InvalidInput),
            "{err:?}"
        );
        assert_eq!(status.state(), State::Up);
        assert_eq!(status.total_restarts(), 0);
    }
}
