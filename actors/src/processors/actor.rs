//! The processor actor: consumes the archive's outbox in id order from its own
//! checkpoint, runs one [`Processor`] over each batch (the CPU part on a thread the
//! actor owns), writes the results, then advances the checkpoint. Writing is idempotent
//! per turn, so a restart that replays a batch loses nothing and counts nothing twice.
//!
//! Progress is published on a watch channel (the checkpoint), which is what callers
//! wait on to know a turn has been processed. The engine pokes a processor through its
//! [`ProcessorHandle`]: run the idle step now, or stop after the step in hand.

use std::sync::Arc;
use std::time::Duration;

use actix::{ActorFutureExt, AsyncContext};
use mnemo_storage::cluster::Lease;
use mnemo_storage::model::{Scope, Turn, TurnId};
use tokio::sync::{watch, Notify};

use super::tombstones::Tombstones;
use super::{Deps, MakeProcessor, Pace, Processor, Step};
use crate::error::{Error, Result};
use crate::metrics;
use crate::runtime::child::Fail;
use crate::runtime::panic::catch_async;
use crate::runtime::worker::Worker;
use crate::runtime::{Behaviour, Cause, Child, ChildContext};

/// What a processor actor shares with the engine.
#[derive(Debug, Clone)]
pub struct ProcessorHandle {
    /// Its name.
    pub name: &'static str,
    /// Its checkpoint, as it advances.
    pub progress: watch::Receiver<TurnId>,
    /// Whether its loop is running.
    pub running: watch::Receiver<bool>,
    /// Idle steps completed.
    pub idle_runs: watch::Receiver<u64>,
    /// Whether this node holds the processor's lease and runs it (a shared processor
    /// runs on one node of a cluster at a time; a node-local one always holds it).
    pub leased: watch::Receiver<bool>,
    /// Whether it waits, between steps, for requests to come back within their target.
    pub yielding: watch::Receiver<bool>,
    idle: Arc<Notify>,
    stop: Arc<watch::Sender<bool>>,
}

impl ProcessorHandle {
    /// Runs the idle step now (e.g. after a test moved the clock), or as soon as the
    /// step in hand is done.
    pub fn run_idle(&self) {
        self.idle.notify_one();
    }

    /// Finishes the step in hand, then stops processing (shutdown).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

/// The behaviour running processor `P`.
pub struct ProcessorActor<P: Processor> {
    make: MakeProcessor<P>,
    deps: Deps,
    tombstones: Arc<Tombstones>,
    head: watch::Receiver<TurnId>,
    progress: Arc<watch::Sender<TurnId>>,
    running: Arc<watch::Sender<bool>>,
    idle_runs: Arc<watch::Sender<u64>>,
    leased: Arc<watch::Sender<bool>>,
    yielding: Arc<watch::Sender<bool>>,
    idle: Arc<Notify>,
    stop: Arc<watch::Sender<bool>>,
    pace: Pace,
    name: &'static str,
    worker: Option<Arc<Worker>>,
}

impl<P: Processor> ProcessorActor<P> {
    /// An actor named `name` for the processors `make` builds, woken by `head`. Returns
    /// it and its handle.
    pub fn new(
        name: &'static str,
        make: MakeProcessor<P>,
        deps: Deps,
        tombstones: Arc<Tombstones>,
        head: watch::Receiver<TurnId>,
        pace: Pace,
    ) -> (Self, ProcessorHandle) {
        let (progress, progress_rx) = watch::channel(TurnId(0));
        let (running, running_rx) = watch::channel(false);
        let (idle_runs, idle_runs_rx) = watch::channel(0);
        let (leased, leased_rx) = watch::channel(false);
        let (yielding, yielding_rx) = watch::channel(false);
        let idle = Arc::new(Notify::new());
        let stop = Arc::new(watch::channel(false).0);
        let actor = Self {
            make,
            deps,
            tombstones,
            head,
            progress: Arc::new(progress),
            running: Arc::new(running),
            idle_runs: Arc::new(idle_runs),
            leased: Arc::new(leased),
            yielding: Arc::new(yielding),
            idle: idle.clone(),
            stop: stop.clone(),
            pace: Pace {
                batch: pace.batch.max(1),
                ..pace
            },
            name,
            worker: None,
        };
        let handle = ProcessorHandle {
            name,
            progress: progress_rx,
            running: running_rx,
            idle_runs: idle_runs_rx,
            leased: leased_rx,
            yielding: yielding_rx,
            idle,
            stop,
        };
        (actor, handle)
    }

    /// The actor's thread for CPU work, started once and kept across restarts.
    fn worker(&mut self) -> Result<Arc<Worker>> {
        if let Some(worker) = &self.worker {
            return Ok(worker.clone());
        }
        let worker = Arc::new(Worker::start_background(self.name, self.pace.nice)?);
        self.worker = Some(worker.clone());
        Ok(worker)
    }
}

impl<P: Processor> Behaviour for ProcessorActor<P> {
    /// Starts the loop: at start, and after a restart with a fresh processor, which
    /// resumes from the checkpoint in the archive.
    fn serving(&mut self, ctx: &mut ChildContext<Self>) {
        let worker = match self.worker() {
            Ok(worker) => worker,
            Err(e) => {
                let (cause, detail) = (Cause::Processing(e.kind().to_string()), e.to_string());
                // The supervisor restarts it, which tries the thread again.
                ctx.notify(Fail { cause, detail });
                return;
            }
        };
        let run = Loop {
            processor: Arc::new((self.make)()),
            step: Step {
                deps: self.deps.clone(),
                worker,
            },
            tombstones: self.tombstones.clone(),
            head: self.head.clone(),
            progress: self.progress.clone(),
            stop: self.stop.subscribe(),
            idle_runs: self.idle_runs.clone(),
            leased: self.leased.clone(),
            yielding: self.yielding.clone(),
            pace: self.pace,
            idle: self.idle.clone(),
        };
        self.running.send_replace(true);
        let work = actix::fut::wrap_future::<_, Child<Self>>(catch_async(run.run()));
        ctx.spawn(work.map(|outcome, child, ctx| {
            child.behaviour().running.send_replace(false);
            child.behaviour().leased.send_replace(false);
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e @ Error::Panicked { .. })) => Some((Cause::Panic, e.to_string())),
                Ok(Err(e)) => Some((Cause::Processing(e.kind().to_string()), e.to_string())),
                Err(panic) => Some((Cause::Panic, panic)),
            };
            if let Some((cause, detail)) = failure {
                child.fail(ctx, cause, detail);
            }
        }));
    }
}

struct Loop<P: Processor> {
    processor: Arc<P>,
    step: Step,
    tombstones: Arc<Tombstones>,
    head: watch::Receiver<TurnId>,
    progress: Arc<watch::Sender<TurnId>>,
    stop: watch::Receiver<bool>,
    idle_runs: Arc<watch::Sender<u64>>,
    leased: Arc<watch::Sender<bool>>,
    yielding: Arc<watch::Sender<bool>>,
    pace: Pace,
    idle: Arc<Notify>,
}

impl<P: Processor> Loop<P> {
    async fn run(mut self) -> Result<()> {
        let name = P::NAME;
        let faults = self.step.deps.faults.clone();
        let mut lease = if P::SHARED {
            match self.take_lease().await? {
                Some(lease) => Some(lease),
                // Stopped while standing by.
                None => return Ok(()),
            }
        } else {
            None
        };
        self.leased.send_replace(true);
        let mut checkpoint = self.processor.checkpoint(&self.step).await?;
        self.progress.send_replace(checkpoint);
        let idle_every = self.processor.idle_every();
        // Steps handled since the last checkpoint (see `Pace::checkpoint_every`).
        let mut unsaved = Unsaved::new();
        // Turns the next step reads (see `Pace::next_batch`).
        let mut batch = self.pace.batch;
        loop {
            if *self.stop.borrow() {
                self.save(&mut unsaved, checkpoint).await?;
                return Ok(());
            }
            // Mark the head seen before reading, so a commit after the read wakes us.
            self.head.borrow_and_update();
            let page = self.step.deps.archive.outbox(checkpoint, batch).await?;
            // A forget is applied on its own, after the turns below it and before those
            // above: what was derived from the user's older turns is undone, and newer
            // turns are theirs again.
            ::metrics::gauge!(metrics::FORGETS_PENDING, metrics::LABEL_PROCESSOR => name)
                .set(page.forgets.len() as f64);
            let mut turns = page.turns;
            let forget = page.forgets.into_iter().next();
            if let Some(forget) = &forget {
                turns.retain(|t| t.id < forget.seq);
            }
            let turns_read = turns.len();
            let Some(last) = turns.last().map(|t| t.id) else {
                // Caught up, or a forget next: what was handled is saved first.
                self.save(&mut unsaved, checkpoint).await?;
                if let Some(forget) = forget {
                    faults.before(name).await;
                    if let Some(lease) = lease.as_mut() {
                        lease.check().await?;
                    }
                    self.processor.forget(&forget, &self.step).await?;
                    self.processor
                        .set_checkpoint(&self.step, forget.seq)
                        .await?;
                    self.step.deps.generations.bump(&forget.scope);
                    checkpoint = forget.seq;
                    self.progress.send_replace(checkpoint);
                    continue;
                }
                // Nothing left up to the head: ids in between were never stored or are
                // forgotten, so the checkpoint moves up to it.
                if page.head > checkpoint {
                    self.processor.set_checkpoint(&self.step, page.head).await?;
                    checkpoint = page.head;
                    self.progress.send_replace(checkpoint);
                    continue;
                }
                // A lease held while idle is checked now and then: the server ends a
                // lease session that stays silent (see storage::cluster), so a node that
                // hangs hands its processors on, and one that works keeps them.
                let heartbeat = lease.is_some().then_some(LEASE_HEARTBEAT);
                tokio::select! {
                    changed = self.head.changed() => {
                        if changed.is_err() {
                            return Ok(());
                        }
                    }
                    _ = self.stop.changed() => {}
                    _ = self.idle.notified() => self.idle_step().await?,
                    _ = sleep_or_never(idle_every) => self.idle_step().await?,
                    _ = sleep_or_never(heartbeat) => {
                        if let Some(lease) = lease.as_mut() {
                            lease.check().await?;
                        }
                    }
                }
                continue;
            };
            faults.before(name).await;
            if let Some(lease) = lease.as_mut() {
                // Another node may have taken over since the last step: write nothing.
                lease.check().await?;
            }
            let mut touched = Vec::new();
            {
                let guard = self.tombstones.guard().await;
                let kept: Vec<Turn> = turns.into_iter().filter(|t| guard.keeps(t)).collect();
                if !kept.is_empty() {
                    let processor = self.processor.clone();
                    let (kept, analysis) = self
                        .step
                        .worker
                        .run(move || {
                            let analysis = processor.analyze(&kept);
                            (kept, analysis)
                        })
                        .await?;
                    self.processor
                        .apply(&kept, analysis, &self.step, &guard)
                        .await?;
                    touched = kept.into_iter().map(|t| t.scope).collect();
                }
            }
            checkpoint = last;
            unsaved.handled(touched);
            // A full batch with more waiting: the next step follows at once, and a
            // checkpoint per step (an index commit, an archive transaction) is most of
            // what a backlog costs. Saved at least every `checkpoint_every` meanwhile.
            let behind = turns_read >= batch && *self.head.borrow() > last;
            if !behind || unsaved.since.elapsed() >= self.pace.checkpoint_every {
                self.save(&mut unsaved, checkpoint).await?;
            }
            // More turns were committed during a step that had fewer than a batch: a
            // stream of small writes. Let it gather into a bigger step. (After a quiet
            // step the next read is at once, so a lone write is processed without delay.)
            let streaming = *self.head.borrow() > last && forget.is_none();
            if streaming && turns_read < batch && !self.pace.gather.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(self.pace.gather) => {}
                    _ = self.stop.changed() => {}
                }
            }
            // Requests overrun their target: a short next step, and give them the cores
            // this processor's next step would take in the database servers (see
            // `pressure`). Else a step through a backlog grows.
            let pressure = &self.step.deps.pressure;
            let pressed = pressure.is_on();
            batch = self.pace.next_batch(batch, behind, pressed);
            if pressed && !self.pace.yield_to_requests.is_zero() {
                self.yielding.send_replace(true);
                tokio::select! {
                    () = pressure.wait_off(self.pace.yield_to_requests) => {}
                    _ = self.stop.changed() => {}
                }
                self.yielding.send_replace(false);
            }
        }
    }

    /// Records `checkpoint` if steps were handled since the last one, then publishes it.
    async fn save(&self, unsaved: &mut Unsaved, checkpoint: TurnId) -> Result<()> {
        if !unsaved.any {
            return Ok(());
        }
        self.processor
            .set_checkpoint(&self.step, checkpoint)
            .await?;
        // Only now are the results visible (the indexer's commit is its checkpoint): an
        // answer cached before this could not have seen them.
        let touched = std::mem::take(&mut unsaved.touched);
        self.step.deps.generations.bump_all(touched.iter());
        *unsaved = Unsaved::new();
        self.progress.send_replace(checkpoint);
        Ok(())
    }

    /// Waits until this node holds the processor's lease; `None` if stopped first.
    /// Meanwhile the progress shown is the shared checkpoint, as the node running it
    /// advances it, so lag and backlog are the cluster's.
    async fn take_lease(&mut self) -> Result<Option<Box<dyn Lease>>> {
        let name = P::NAME;
        let cluster = self.step.deps.cluster.clone();
        let mut standing_by = false;
        loop {
            if *self.stop.borrow() {
                return Ok(None);
            }
            if let Some(lease) = cluster.try_lease(name).await? {
                if standing_by {
                    tracing::info!(processor = name, "took over the processor's lease");
                }
                return Ok(Some(lease));
            }
            if !standing_by {
                // Who holds it is only for the log: not knowing changes nothing.
                let holder = cluster.lease_holder(name).await.ok().flatten();
                tracing::info!(
                    processor = name,
                    holder = holder.as_deref().unwrap_or("unknown"),
                    "another node runs this processor; standing by to take over"
                );
                standing_by = true;
            }
            let shared = self.step.deps.archive.checkpoint(name).await?;
            self.progress.send_replace(shared);
            tokio::select! {
                _ = tokio::time::sleep(self.pace.lease_retry) => {}
                _ = self.stop.changed() => {}
            }
        }
    }

    async fn idle_step(&self) -> Result<()> {
        let guard = self.tombstones.guard().await;
        self.processor.on_idle(&self.step, &guard).await?;
        self.idle_runs.send_modify(|n| *n += 1);
        Ok(())
    }
}

/// Steps handled since the last checkpoint.
struct Unsaved {
    /// Whether there were any.
    any: bool,
    /// When the last checkpoint was saved.
    since: tokio::time::Instant,
    /// The users whose results they wrote.
    touched: Vec<Scope>,
}

impl Unsaved {
    fn new() -> Self {
        Self {
            any: false,
            since: tokio::time::Instant::now(),
            touched: Vec::new(),
        }
    }

    fn handled(&mut self, touched: Vec<Scope>) {
        self.any = true;
        self.touched.extend(touched);
    }
}

/// How often an idle processor checks the lease it holds: well inside the silence after
/// which the server ends a lease session
/// ([`mnemo_storage::cluster::LEASE_SILENCE`]).
const LEASE_HEARTBEAT: Duration = Duration::from_secs(2);

async fn sleep_or_never(every: Option<Duration>) {
    match every {
        Some(every) => tokio::time::sleep(every).await,
        None => std::future::pending().await,
    }
}
