//! A thread an actor owns for CPU-bound work (scoring, extraction, summarising), fed
//! through a crossbeam channel so the async executor never runs it. A panic in a job is
//! caught on the thread and returned as an error; the thread lives on.

use crossbeam_channel::Sender;
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::runtime::panic::catch;

type Job = Box<dyn FnOnce() + Send>;

/// Worker threads sharing one queue of jobs; they stop when the handle is dropped.
#[derive(Debug)]
pub struct Worker {
    name: &'static str,
    jobs: Sender<Job>,
}

impl Worker {
    /// Starts a thread named `mnemo-<name>` for background work, at niceness `nice`
    /// (0-19; 0: the requests' priority).
    pub fn start_background(name: &'static str, nice: i32) -> Result<Self> {
        Self::start_at(name, 1, nice)
    }

    /// Starts `threads` (at least one) threads named `mnemo-<name>`, each taking the next
    /// job from the queue when it is free.
    pub fn start_threads(name: &'static str, threads: usize) -> Result<Self> {
        Self::start_at(name, threads, 0)
    }

    fn start_at(name: &'static str, threads: usize, nice: i32) -> Result<Self> {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        for _ in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("mnemo-{name}"))
                .spawn(move || {
                    mnemo_storage::priority::lower_this_thread(nice);
                    for job in queue {
                        job();
                    }
                })
                .map_err(|e| Error::Internal(format!("cannot start the {name} thread: {e}")))?;
        }
        Ok(Self { name, jobs })
    }

    /// Runs `job` on a thread and waits for its result.
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::Worker;
    use crate::error::Error;

    /// Jobs run at once on as many threads as were started: two jobs that each wait for
    /// the other to start both finish.
    #[tokio::test]
    async fn jobs_run_side_by_side_on_the_threads() {
        let worker = Worker::start_threads("test-pair", 2).expect("threads start");
        let both = Arc::new(Barrier::new(2));
        let job = |n: u32| {
            let both = both.clone();
            move || {
                both.wait();
                n
            }
        };
        let (a, b) = tokio::join!(worker.run(job(1)), worker.run(job(2)));
        assert_eq!((a.expect("ran"), b.expect("ran")), (1, 2));
    }

    /// A panicking job is an error for its caller; the threads live on.
    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_threads_live_on() {
        let worker = Worker::start_threads("test-panic", 2).expect("threads start");
        for _ in 0..3 {
            let err = worker
                .run(|| -> u32 { panic!("boom") })
                .await
                .expect_err("the job panicked");
            assert!(matches!(err, Error::Panicked { .. }), "{err}");
        }
        assert_eq!(worker.run(|| 7).await.expect("still serving"), 7);
    }
}
