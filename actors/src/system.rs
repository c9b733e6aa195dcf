//! Starting every actor under one supervisor, inside a running actix system. The engine
//! calls [`start`] on the thread it owns for actix, and keeps the [`Handles`].

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Context, Supervisor as ActixSupervisor};
use mnemo_storage::clock::SharedClock;
use mnemo_storage::model::TurnId;
use mnemo_storage::Tiers;
use tiktoken_rs::CoreBPE;
use tokio::sync::watch;

use crate::analysis::emotion::EmotionLexicon;
use crate::archive::{ArchiveActor, ArchiveTier};
use crate::config::ActorsConfig;
use crate::context::{ContextAssembler, Sources};
use crate::emotion::EmotionProcessor;
use crate::error::Result;
use crate::faults::Faults;
use crate::generations::Generations;
use crate::graph::GraphTier;
use crate::graph_sync::GraphSync;
use crate::index::IndexTier;
use crate::indexer::Indexer;
use crate::life::{Life, Status};
use crate::mailbox::Mailbox;
use crate::processor::{
    Deps, MakeProcessor, Pace, Processor, ProcessorActor, ProcessorHandle, RunIdle, StopProcessing,
};
use crate::recent::{RecentGaps, RecentTier, Refills};
use crate::summarizer::Summarizer;
use crate::supervisor::Supervisor;
use crate::tier::{Tier, TierActor};
use crate::tombstones::Tombstones;

/// What the actor system is started from.
pub struct Setup {
    /// The opened tiers.
    pub tiers: Tiers,
    /// Whether the graph tier is on.
    pub graph_enabled: bool,
    /// Settings.
    pub config: ActorsConfig,
    /// Turns the recent tier keeps per session (for refills after a miss).
    pub recent_fill: usize,
    /// The clock.
    pub clock: SharedClock,
    /// The archive head at start.
    pub head: TurnId,
    /// The emotion lexicon.
    pub lexicon: Arc<EmotionLexicon>,
    /// The tokenizer of token budgets.
    pub bpe: Arc<CoreBPE>,
    /// Fault hooks.
    pub faults: Arc<Faults>,
}

/// A processor as the engine sees it: its progress and how to poke it.
#[derive(Debug, Clone)]
pub struct ProcessorControl {
    /// Progress and running state.
    pub handle: ProcessorHandle,
    /// Runs its idle step now.
    pub run_idle: actix::Recipient<RunIdle>,
    /// Stops it after the step in hand.
    pub stop: actix::Recipient<StopProcessing>,
}

/// Reads one actor's mailbox depth.
pub type DepthProbe = Arc<dyn Fn() -> usize + Send + Sync>;

/// Handles to every actor.
#[derive(Clone)]
pub struct Handles {
    /// Recent tier.
    pub recent: RecentTier,
    /// Archive.
    pub archive: ArchiveTier,
    /// Index.
    pub index: IndexTier,
    /// Graph, when enabled.
    pub graph: Option<GraphTier>,
    /// The context assembler.
    pub context: Mailbox<ContextAssembler>,
    /// The processors that run.
    pub processors: Vec<ProcessorControl>,
    /// Every actor's status, including those switched off.
    pub statuses: Vec<Arc<Status>>,
    /// Mailbox depths per actor name.
    pub depths: Vec<(&'static str, DepthProbe)>,
    /// The archive head, as it advances.
    pub head: watch::Receiver<TurnId>,
    /// Tombstones of forgotten users and turns.
    pub tombstones: Arc<Tombstones>,
    /// Sessions the recent tier missed a write for.
    pub recent_gaps: Arc<RecentGaps>,
    /// Refills of the recent tier under way.
    pub refills: Arc<Refills>,
    /// Per-user write counters.
    pub generations: Arc<Generations>,
    /// The supervisor.
    pub supervisor: Addr<Supervisor>,
}

fn start_tier<S: ?Sized + Send + Sync + 'static>(
    name: &'static str,
    store: Arc<S>,
    capacity: usize,
    supervisor: &Addr<Supervisor>,
    faults: &Arc<Faults>,
    statuses: &mut Vec<Arc<Status>>,
) -> Tier<S> {
    let status = Status::new(name);
    statuses.push(status.clone());
    let life = Life::new(status, supervisor.clone().recipient());
    let faults = faults.clone();
    let addr = ActixSupervisor::start(move |ctx: &mut Context<TierActor<S>>| {
        ctx.set_mailbox_capacity(capacity);
        TierActor::new(store, life, faults)
    });
    Tier::new(Mailbox::new(name, addr))
}

/// What every processor actor is started with.
struct ProcessorStarter<'a> {
    deps: &'a Deps,
    setup: &'a Setup,
    tombstones: &'a Arc<Tombstones>,
    head: &'a watch::Receiver<TurnId>,
    supervisor: &'a Addr<Supervisor>,
}

impl ProcessorStarter<'_> {
    /// Starts the processor `make` builds, if `enabled`; records its status either way.
    fn start<P: Processor>(
        &self,
        enabled: bool,
        name: &'static str,
        make: impl Fn() -> P + Send + Sync + 'static,
        statuses: &mut Vec<Arc<Status>>,
    ) -> Option<ProcessorControl> {
        if !enabled {
            statuses.push(Status::disabled(name));
            return None;
        }
        let status = Status::new(name);
        statuses.push(status.clone());
        let life = Life::new(status, self.supervisor.clone().recipient());
        let make: MakeProcessor<P> = Arc::new(make);
        let (actor, handle) = ProcessorActor::new(
            make,
            self.deps.clone(),
            self.tombstones.clone(),
            self.head.clone(),
            Pace {
                batch: self.setup.config.processors.batch_turns,
                gather: Duration::from_millis(self.setup.config.processors.gather_ms),
            },
            life,
            self.setup.faults.clone(),
        );
        let addr = ActixSupervisor::start(move |_: &mut Context<ProcessorActor<P>>| actor);
        Some(ProcessorControl {
            handle,
            run_idle: addr.clone().recipient(),
            stop: addr.recipient(),
        })
    }
}

/// Starts the supervisor and every actor it owns. Must run inside an actix system.
pub fn start(setup: Setup) -> Result<Handles> {
    let config = &setup.config;
    let supervisor = Supervisor::new(config.supervisor.clone()).start();
    let mut statuses = Vec::new();
    let faults = &setup.faults;

    let recent = start_tier(
        "recent",
        setup.tiers.recent.clone(),
        config.mailbox.recent,
        &supervisor,
        faults,
        &mut statuses,
    );
    let index = start_tier(
        "index",
        setup.tiers.index.clone(),
        config.mailbox.index,
        &supervisor,
        faults,
        &mut statuses,
    );
    let graph = if setup.graph_enabled {
        Some(start_tier(
            "graph",
            setup.tiers.graph.clone(),
            config.mailbox.graph,
            &supervisor,
            faults,
            &mut statuses,
        ))
    } else {
        statuses.push(Status::disabled("graph"));
        None
    };
    let (head_tx, head) = watch::channel(setup.head);
    let archive = {
        let status = Status::new("archive");
        statuses.push(status.clone());
        let life = Life::new(status, supervisor.clone().recipient());
        let store = setup.tiers.archive.clone();
        let faults = faults.clone();
        let group = config.group_commit.clone();
        let capacity = config.mailbox.archive;
        let addr = ActixSupervisor::start(move |ctx: &mut Context<ArchiveActor>| {
            ctx.set_mailbox_capacity(capacity);
            ArchiveActor::new(store, life, faults, group, head_tx)
        });
        ArchiveTier::new(Mailbox::new("archive", addr))
    };

    let tombstones = Arc::new(Tombstones::default());
    let recent_gaps = Arc::new(RecentGaps::default());
    let refills = Arc::new(Refills::default());
    let generations = Arc::new(Generations::default());
    let deps = Deps {
        archive: archive.clone(),
        index: index.clone(),
        graph: graph.clone(),
        generations: generations.clone(),
        clock: setup.clock.clone(),
    };
    let processors_config = &config.processors;
    let starter = ProcessorStarter {
        deps: &deps,
        setup: &setup,
        tombstones: &tombstones,
        head: &head,
        supervisor: &supervisor,
    };
    let lexicon = setup.lexicon.clone();
    let emotion_config = processors_config.emotion.clone();
    let summarizer_config = processors_config.summarizer.clone();
    let processors: Vec<ProcessorControl> = [
        starter.start(
            processors_config.emotion.enabled,
            crate::emotion::NAME,
            move || EmotionProcessor::new(lexicon.clone(), &emotion_config),
            &mut statuses,
        ),
        starter.start(
            processors_config.indexer.enabled,
            crate::indexer::NAME,
            || Indexer,
            &mut statuses,
        ),
        starter.start(
            processors_config.summarizer.enabled,
            crate::summarizer::NAME,
            move || Summarizer::new(summarizer_config.clone()),
            &mut statuses,
        ),
        starter.start(
            processors_config.graph_sync.enabled && setup.graph_enabled,
            crate::graph_sync::NAME,
            || GraphSync,
            &mut statuses,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();

    let context = {
        let status = Status::new("context");
        statuses.push(status.clone());
        let life = Life::new(status, supervisor.clone().recipient());
        let assembler = ContextAssembler::new(
            Sources {
                recent: recent.clone(),
                archive: archive.clone(),
                index: index.clone(),
                graph: graph.clone(),
                gaps: recent_gaps.clone(),
                refills: refills.clone(),
            },
            config.context.clone(),
            setup.recent_fill,
            setup.bpe.clone(),
            generations.clone(),
            setup.clock.clone(),
            life,
            faults.clone(),
        )?;
        let capacity = config.mailbox.context;
        let addr = ActixSupervisor::start(move |ctx: &mut Context<ContextAssembler>| {
            ctx.set_mailbox_capacity(capacity);
            assembler
        });
        Mailbox::new("context", addr)
    };

    let mut depths: Vec<(&'static str, DepthProbe)> = Vec::new();
    {
        let m = recent.mailbox().clone();
        depths.push(("recent", Arc::new(move || m.depth())));
        let m = archive.mailbox().clone();
        depths.push(("archive", Arc::new(move || m.depth())));
        let m = index.mailbox().clone();
        depths.push(("index", Arc::new(move || m.depth())));
        if let Some(graph) = &graph {
            let m = graph.mailbox().clone();
            depths.push(("graph", Arc::new(move || m.depth())));
        }
        let m = context.clone();
        depths.push(("context", Arc::new(move || m.depth())));
    }
    Ok(Handles {
        recent,
        archive,
        index,
        graph,
        context,
        processors,
        statuses,
        depths,
        head,
        tombstones,
        recent_gaps,
        refills,
        generations,
        supervisor,
    })
}
