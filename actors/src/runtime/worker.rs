//! A thread an actor owns for CPU-bound work (scoring, extraction, summarising), fed
//! through a crossbeam channel so the async executor never runs it. A panic in a job is
//! caught on the thread and returned as an error; the thread lives on.

use crossbeam_channel::Sender;
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::runtime::panic::catch;

type Job = Box<dyn FnOnce() + Send>;

/// One worker thread; it stops when the handle is dropped.
#[derive(Debug)]
pub struct Worker {
    name: &'static str,
    jobs: Sender<Job>,
}

impl Worker {
    /// Starts a thread named `mnemo-<name>`.
    pub fn start(name: &'static str) -> Result<Self> {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        std::thread::Builder::new()
            .name(format!("mnemo-{name}"))
            .spawn(move || {
                for job in queue {
                    job();
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the {name} thread: {e}")))?;
        Ok(Self { name, jobs })
    }

    /// Runs `job` on the thread and waits for its result.
    pub async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = oneshot::channel();
        let name = self.name;
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(catch(job).map_err(|message| Error::Panicked {
                    actor: name,
                    message,
                }));
            }))
            .map_err(|_| Error::Internal(format!("the {name} thread has stopped")))?;
        rx.await
            .map_err(|_| Error::Internal(format!("the {name} thread dropped a job")))?
    }
}
