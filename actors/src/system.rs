//! What is started: every actor under one supervisor, inside a running actix system.
//! The engine calls [`start`] on the thread it owns for actix, and keeps the [`Handles`].

use std::sync::Arc;
use std::time::Duration;

use mnemo_storage::archive::RecentGap;
use mnemo_storage::clock::SharedClock;
use mnemo_storage::index::IndexMark;
use mnemo_storage::model::TurnId;
use mnemo_storage::Tiers;
use tokio::sync::watch;

use crate::analysis::emotion_scoring::EmotionLexicon;
use crate::config::ActorsConfig;
use crate::context::generations::Generations;
use crate::context::tokens::TokenCounter;
use crate::context::{ContextAssembler, Sources};
use crate::error::Result;
use crate::processors::backlog::Backlog;
use crate::processors::emotion::EmotionProcessor;
use crate::processors::graph_sync::GraphSync;
use crate::processors::indexing::Indexer;
use crate::processors::pressure::Pressure;
use crate::processors::summarizer::Summarizer;
use crate::processors::tombstones::Tombstones;
use crate::processors::{Deps, Pace, Processor, ProcessorActor, ProcessorHandle};
use crate::runtime::faults::Faults;
use crate::runtime::{Child, Limits, Mailbox, Registry, Spawner};
use crate::tiers::archive::{self, ArchiveActor};
use crate::tiers::recent::{RecentGaps, Refills};
use crate::tiers::tier::{Tier, TierActor};
use crate::tiers::{ArchiveTier, GraphTier, IndexTier, RecentTier};

/// Limits of a processor: it takes no requests (the engine pokes it through its
/// handle); only the runtime's own messages reach it.
const PROCESSOR_LIMITS: Limits = Limits {
    mailbox: 16,
    in_flight: 1,
};

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
    /// How far the index had followed the archive when it opened.
    pub index_mark: IndexMark,
    /// Sessions marked in the archive as missing recent-tier writes.
    pub recent_gaps: Vec<RecentGap>,
    /// The emotion lexicon.
    pub lexicon: Arc<EmotionLexicon>,
    /// The tokenizer of token budgets.
    pub bpe: Arc<TokenCounter>,
    /// Fault hooks.
    pub faults: Arc<Faults>,
}

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
    pub context: Mailbox<Child<ContextAssembler>>,
    /// The processors that run.
    pub processors: Vec<ProcessorHandle>,
    /// Every actor's status and mailbox depth, and the supervisor.
    pub registry: Registry,
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
    /// How far the processors are behind the archive.
    pub backlog: Arc<Backlog>,
    /// Whether requests overrun their target (the engine's admission reports it; the
    /// processors step less often meanwhile).
    pub pressure: Arc<Pressure>,
}

/// Starts the supervisor and every actor it owns. Must run inside an actix system.
pub fn start(setup: Setup) -> Result<Handles> {
    let config = &setup.config;
    let mut spawner = Spawner::new(config.supervisor.clone(), setup.faults.clone());

    // The tiers.
    let recent = Tier::new(spawner.spawn(
        "recent",
        config.limits("recent"),
        TierActor::new(setup.tiers.recent.clone()),
    ));
    let index = Tier::new(spawner.spawn(
        "index",
        config.limits("index"),
        TierActor::new(setup.tiers.index.clone()),
    ));
    let graph = if setup.graph_enabled {
        Some(Tier::new(spawner.spawn(
            "graph",
            config.limits("graph"),
            TierActor::new(setup.tiers.graph.clone()),
        )))
    } else {
        spawner.disabled("graph");
        None
    };
    let (head_tx, head) = watch::channel(setup.head);
    let backlog = Backlog::new(head.clone(), config.processors.max_backlog_turns);
    // Other nodes' turns wake nothing here: look for them.
    let follow = (setup.tiers.cluster.shared() && config.processors.follow_ms > 0)
        .then(|| Duration::from_millis(config.processors.follow_ms));
    let archive: ArchiveTier = Tier::new(spawner.spawn(
        archive::NAME,
        config.limits(archive::NAME),
        ArchiveActor::new(
            setup.tiers.archive.clone(),
            setup.faults.clone(),
            config.group_commit.clone(),
            backlog.clone(),
            head_tx,
            follow,
        ),
    ));

    // The processors, each following the archive's outbox.
    let tombstones = Arc::new(Tombstones::default());
    let pressure = Arc::new(Pressure::default());
    let generations = Arc::new(Generations::default());
    let processors_config = &config.processors;
    let mut processors = Processors {
        spawner: &mut spawner,
        deps: Deps {
            recent: recent.clone(),
            archive: archive.clone(),
            index: index.clone(),
            graph: graph.clone(),
            generations: generations.clone(),
            clock: setup.clock.clone(),
            faults: setup.faults.clone(),
            cluster: setup.tiers.cluster.clone(),
            pressure: pressure.clone(),
        },
        tombstones: &tombstones,
        head: &head,
        backlog: &backlog,
        pace: Pace {
            batch: processors_config.batch_turns,
            max_batch: processors_config.max_batch_turns,
            gather: Duration::from_millis(processors_config.gather_ms),
            checkpoint_every: Duration::from_millis(processors_config.checkpoint_ms),
            lease_retry: Duration::from_millis(processors_config.lease_retry_ms.max(1)),
            nice: processors_config.nice,
            yield_to_requests: Duration::from_millis(processors_config.yield_ms),
        },
        started: Vec::new(),
    };
    let (lexicon, emotion) = (setup.lexicon.clone(), processors_config.emotion.clone());
    processors.start(processors_config.emotion.enabled, move || {
        EmotionProcessor::new(lexicon.clone(), &emotion)
    });
    // Summaries another node wrote wake nothing here either.
    let follow_summaries = follow;
    let committed = Arc::new(parking_lot::Mutex::new(setup.index_mark));
    processors.start(processors_config.indexer.enabled, move || {
        Indexer::new(committed.clone(), follow_summaries)
    });
    let summarizer = processors_config.summarizer.clone();
    processors.start(processors_config.summarizer.enabled, move || {
        Summarizer::new(summarizer.clone())
    });
    processors.start(
        processors_config.graph_sync.enabled && setup.graph_enabled,
        || GraphSync,
    );
    let processors = processors.started;

    // Context assembly, over the tiers.
    let recent_gaps = Arc::new(RecentGaps::new(setup.tiers.recent.shared()));
    recent_gaps.load(setup.recent_gaps);
    let refills = Arc::new(Refills::default());
    let assembler = ContextAssembler::new(
        Sources {
            recent: recent.clone(),
            archive: archive.clone(),
            index: index.clone(),
            graph: graph.clone(),
            gaps: recent_gaps.clone(),
            refills: refills.clone(),
            faults: setup.faults.clone(),
        },
        config.context.clone(),
        setup.recent_fill,
        setup.bpe.clone(),
        generations.clone(),
        setup.clock.clone(),
    )?
    .follow_gaps(follow);
    let context_name = crate::context::assembler::NAME;
    let context = spawner.spawn(context_name, config.limits(context_name), assembler);

    Ok(Handles {
        recent,
        archive,
        index,
        graph,
        context,
        processors,
        registry: spawner.finish(),
        head,
        tombstones,
        recent_gaps,
        refills,
        generations,
        backlog,
        pressure,
    })
}

/// Starts processor actors with what they share.
struct Processors<'a> {
    spawner: &'a mut Spawner,
    deps: Deps,
    tombstones: &'a Arc<Tombstones>,
    head: &'a watch::Receiver<TurnId>,
    backlog: &'a Arc<Backlog>,
    pace: Pace,
    started: Vec<ProcessorHandle>,
}

impl Processors<'_> {
    /// Starts the processor `make` builds, if `enabled`; records it as switched off
    /// otherwise.
    fn start<P: Processor>(&mut self, enabled: bool, make: impl Fn() -> P + Send + Sync + 'static) {
        let name = P::NAME;
        if !enabled {
            self.spawner.disabled(name);
            return;
        }
        let (actor, handle) = ProcessorActor::new(
            name,
            Arc::new(make),
            self.deps.clone(),
            self.tombstones.clone(),
            self.head.clone(),
            self.pace,
        );
        self.spawner.spawn(name, PROCESSOR_LIMITS, actor);
        self.backlog.follow(handle.progress.clone());
        self.started.push(handle);
    }
}
