//! The supervisor: owns the restart policy of every actor. A failed actor reports here;
//! after an exponential backoff the supervisor orders its restart, which actix performs
//! in place (`actix::Supervisor`), so the actor keeps its address and its mailbox.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, Context, Handler, Message};

use crate::config::SupervisorConfig;
use crate::life::{Failed, Restart};

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
        let now = Instant::now();
        let reset_after = Duration::from_millis(self.config.reset_after_ms);
        let run = self.runs.entry(failed.name).or_insert(Run {
            attempts: 0,
            last_failure: now,
        });
        if now.duration_since(run.last_failure) > reset_after {
            run.attempts = 0;
        }
        let backoff = self.config.backoff(run.attempts);
        run.attempts += 1;
        run.last_failure = now;
        let restart = failed.restart;
        ctx.run_later(backoff, move |supervisor, _| {
            if !supervisor.stopping {
                restart.do_send(Restart);
            }
        });
    }
}

/// Stops restarting actors: the engine is shutting down.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopRestarts;

impl Handler<StopRestarts> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: StopRestarts, _: &mut Context<Self>) {
        self.stopping = true;
    }
}
