//! The processor actor: consumes the archive's outbox in id order from its own
//! checkpoint, runs one [`Processor`] over each batch (the CPU part on a thread the
//! actor owns), writes the results, then advances the checkpoint. Writing is idempotent
//! per turn, so a restart that replays a batch loses nothing and counts nothing twice.
//!
//! Progress is published on a watch channel (the checkpoint), which is what callers
//! wait on to know a turn has been processed.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Supervised};
use async_trait::async_trait;
use futures_util::FutureExt;
use mnemo_storage::clock::SharedClock;
use mnemo_storage::model::{Turn, TurnId};
use tokio::sync::watch;

use crate::archive::ArchiveTier;
use crate::error::{Error, Result};
use crate::faults::Faults;
use crate::generations::Generations;
use crate::graph::GraphTier;
use crate::index::IndexTier;
use crate::life::{panic_message, Cause, Life, Restart};
use crate::tombstones::{Guard, Tombstones};
use crate::worker::Worker;

/// What processors reach: the tiers (through their actors), the write counters and the
/// clock.
#[derive(Clone, Debug)]
pub struct Deps {
    /// The archive.
    pub archive: ArchiveTier,
    /// The index.
    pub index: IndexTier,
    /// The graph, when enabled.
    pub graph: Option<GraphTier>,
    /// Per-user write counters (bumped after writing results).
    pub generations: Arc<Generations>,
    /// The clock.
    pub clock: SharedClock,
}

/// What a processor step can use: the dependencies and the actor's own CPU thread.
#[derive(Debug, Clone)]
pub struct Step {
    /// The tiers, write counters and clock.
    pub deps: Deps,
    /// The processor actor's thread, for CPU-bound work done while writing.
    pub worker: Arc<Worker>,
}

/// How big a processor's steps are and how often it takes one.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Most turns read from the outbox per step.
    pub batch: usize,
    /// When turns arrived during a step that was not a full batch, how long to let more
    /// gather before the next one: a stream of small commits is then processed in fewer,
    /// larger steps (each step costs archive transactions and, for the indexer, an index
    /// commit).
    pub gather: Duration,
}

/// One kind of background processing of new turns.
#[async_trait]
pub trait Processor: Send + Sync + 'static {
    /// What [`Processor::analyze`] produces for a batch.
    type Analysis: Send + 'static;

    /// The processor's name: its checkpoint key and actor name.
    fn name(&self) -> &'static str;

    /// The CPU-bound part, run on the actor's own thread.
    fn analyze(&self, turns: &[Turn]) -> Self::Analysis;

    /// Writes the results. Must be idempotent per turn. `turns` are already cleared of
    /// forgotten ones; anything else written from older turns must pass `guard.keeps`.
    async fn apply(
        &self,
        turns: &[Turn],
        analysis: Self::Analysis,
        step: &Step,
        guard: &Guard<'_>,
    ) -> Result<()>;

    /// Called when the outbox is empty, every [`Processor::idle_every`] or on demand.
    async fn on_idle(&self, _step: &Step, _guard: &Guard<'_>) -> Result<()> {
        Ok(())
    }

    /// How often to call [`Processor::on_idle`] while caught up (`None`: never).
    fn idle_every(&self) -> Option<Duration> {
        None
    }
}

/// Run the idle step now (e.g. after a test moved the clock).
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
pub struct RunIdle;

/// Finish the step in hand, then stop processing until restarted.
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
pub struct StopProcessing;

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
}

/// Builds a fresh processor (at start and at every restart).
pub type MakeProcessor<P> = Arc<dyn Fn() -> P + Send + Sync>;

/// The actor running processor `P`.
pub struct ProcessorActor<P: Processor> {
    make: MakeProcessor<P>,
    deps: Deps,
    tombstones: Arc<Tombstones>,
    head: watch::Receiver<TurnId>,
    progress: Arc<watch::Sender<TurnId>>,
    running: Arc<watch::Sender<bool>>,
    idle_runs: Arc<watch::Sender<u64>>,
    stop: Arc<watch::Sender<bool>>,
    pace: Pace,
    life: Life,
    faults: Arc<Faults>,
    worker: Option<Arc<Worker>>,
    idle: Option<Arc<tokio::sync::Notify>>,
}

impl<P: Processor> ProcessorActor<P> {
    /// An actor for the processors `make` builds. Returns it and its handle.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        make: MakeProcessor<P>,
        deps: Deps,
        tombstones: Arc<Tombstones>,
        head: watch::Receiver<TurnId>,
        pace: Pace,
        life: Life,
        faults: Arc<Faults>,
    ) -> (Self, ProcessorHandle) {
        let name = life.name();
        let (progress, progress_rx) = watch::channel(TurnId(0));
        let (running, running_rx) = watch::channel(false);
        let (idle_runs, idle_runs_rx) = watch::channel(0);
        let (stop, _) = watch::channel(false);
        let actor = Self {
            make,
            deps,
            tombstones,
            head,
            progress: Arc::new(progress),
            running: Arc::new(running),
            idle_runs: Arc::new(idle_runs),
            stop: Arc::new(stop),
            pace: Pace {
                batch: pace.batch.max(1),
                gather: pace.gather,
            },
            life,
            faults,
            worker: None,
            idle: None,
        };
        let handle = ProcessorHandle {
            name,
            progress: progress_rx,
            running: running_rx,
            idle_runs: idle_runs_rx,
        };
        (actor, handle)
    }

    fn start_loop(&mut self, ctx: &mut Context<Self>) {
        let name = self.life.name();
        let worker = match &self.worker {
            Some(worker) => worker.clone(),
            None => match Worker::start(name) {
                Ok(worker) => {
                    let worker = Arc::new(worker);
                    self.worker = Some(worker.clone());
                    worker
                }
                Err(e) => {
                    self.life
                        .fail(ctx, Cause::Processing(e.kind().to_string()), e.to_string());
                    return;
                }
            },
        };
        let idle = Arc::new(tokio::sync::Notify::new());
        self.idle = Some(idle.clone());
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
            pace: self.pace,
            faults: self.faults.clone(),
            idle,
        };
        let running = self.running.clone();
        running.send_replace(true);
        let work = AssertUnwindSafe(run.run()).catch_unwind();
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(work).map(move |outcome, act, ctx| {
                act.running.send_replace(false);
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        let cause = if matches!(e, Error::Panicked { .. }) {
                            Cause::Panic
                        } else {
                            Cause::Processing(e.kind().to_string())
                        };
                        act.life.fail(ctx, cause, e.to_string());
                    }
                    Err(payload) => act.life.fail(ctx, Cause::Panic, panic_message(&*payload)),
                }
            }),
        );
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
    pace: Pace,
    faults: Arc<Faults>,
    idle: Arc<tokio::sync::Notify>,
}

impl<P: Processor> Loop<P> {
    async fn run(mut self) -> Result<()> {
        let name = self.processor.name();
        let mut checkpoint = self.step.deps.archive.checkpoint(name).await?;
        self.progress.send_replace(checkpoint);
        let idle_every = self.processor.idle_every();
        loop {
            if *self.stop.borrow() {
                return Ok(());
            }
            // Mark the head seen before reading, so a commit after the read wakes us.
            self.head.borrow_and_update();
            let page = self
                .step
                .deps
                .archive
                .outbox(checkpoint, self.pace.batch)
                .await?;
            let turns = page.turns;
            let turns_read = turns.len();
            let Some(last) = turns.last().map(|t| t.id) else {
                // Nothing left up to the head: ids in between were never stored or are
                // forgotten, so the checkpoint moves up to it.
                if page.head > checkpoint {
                    self.step
                        .deps
                        .archive
                        .set_checkpoint(name, page.head)
                        .await?;
                    checkpoint = page.head;
                    self.progress.send_replace(checkpoint);
                    continue;
                }
                tokio::select! {
                    changed = self.head.changed() => {
                        if changed.is_err() {
                            return Ok(());
                        }
                    }
                    _ = self.stop.changed() => {}
                    _ = self.idle.notified() => self.idle_step().await?,
                    _ = sleep_or_never(idle_every) => self.idle_step().await?,
                }
                continue;
            };
            self.faults.before(name).await;
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
                    self.step
                        .deps
                        .generations
                        .bump_all(kept.iter().map(|t| &t.scope));
                }
            }
            self.step.deps.archive.set_checkpoint(name, last).await?;
            checkpoint = last;
            self.progress.send_replace(checkpoint);
            // More turns were committed during a step that had fewer than a batch: a
            // stream of small writes. Let it gather into a bigger step. (After a quiet
            // step the next read is at once, so a lone write is processed without delay.)
            let streaming = *self.head.borrow() > last;
            if streaming && turns_read < self.pace.batch && !self.pace.gather.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(self.pace.gather) => {}
                    _ = self.stop.changed() => {}
                }
            }
        }
    }
}

impl<P: Processor> Loop<P> {
    async fn idle_step(&self) -> Result<()> {
        let guard = self.tombstones.guard().await;
        self.processor.on_idle(&self.step, &guard).await?;
        self.idle_runs.send_modify(|n| *n += 1);
        Ok(())
    }
}

async fn sleep_or_never(every: Option<Duration>) {
    match every {
        Some(every) => tokio::time::sleep(every).await,
        None => std::future::pending().await,
    }
}

impl<P: Processor> Actor for ProcessorActor<P> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.start_loop(ctx);
    }
}

impl<P: Processor> Supervised for ProcessorActor<P> {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // `started` runs again after this and builds a fresh processor, which resumes
        // from the checkpoint in the archive.
        self.life.restarted();
    }
}

impl<P: Processor> Handler<Restart> for ProcessorActor<P> {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl<P: Processor> Handler<RunIdle> for ProcessorActor<P> {
    type Result = ();

    fn handle(&mut self, _: RunIdle, _: &mut Context<Self>) {
        if let Some(idle) = &self.idle {
            idle.notify_one();
        }
    }
}

impl<P: Processor> Handler<StopProcessing> for ProcessorActor<P> {
    type Result = ();

    fn handle(&mut self, _: StopProcessing, _: &mut Context<Self>) {
        self.stop.send_replace(true);
    }
}
