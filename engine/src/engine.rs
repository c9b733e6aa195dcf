//! The [`Engine`] handle: the library's public API. It runs the actor system on a thread
//! it owns, so a host service awaits its methods from its own tokio runtime and never
//! deals with actix.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use mnemo_actors::analysis::emotion_scoring::{turn_scores, EmotionLexicon};
use mnemo_actors::context::tokens::TokenCounter;
use mnemo_actors::context::{AssembleContext, ContextAnswer, ContextRequest};
use mnemo_actors::runtime::faults::Faults;
use mnemo_actors::runtime::supervisor::StopRestarts;
use mnemo_actors::runtime::State;
use mnemo_actors::system::{self, Handles, Setup};
use mnemo_actors::Error as ActorsError;
use mnemo_storage::archive::{Appended, ForgetReport, HistoryPage};
use mnemo_storage::clock::{SharedClock, SystemClock};
use mnemo_storage::graph::Neighbourhood;
use mnemo_storage::index::{DocKind, SearchHit, SearchQuery};
use mnemo_storage::model::{NewTurn, Scope, ScoredTurn, SessionId, Turn, TurnId};
use mnemo_storage::Tiers;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Notify;

use crate::admission::{Admission, Gate};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::{self, observe, Metrics};
use crate::refusals::Refusals;

/// The tokenizer of token budgets, built once per process (it is immutable data).
fn tokenizer() -> Result<Arc<TokenCounter>> {
    static BPE: OnceLock<Arc<TokenCounter>> = OnceLock::new();
    if let Some(bpe) = BPE.get() {
        return Ok(bpe.clone());
    }
    let bpe = tiktoken_rs::cl100k_base()
        .map_err(|e| Error::Startup(format!("cannot build the tokenizer: {e}")))?;
    Ok(BPE.get_or_init(|| Arc::new(TokenCounter::new(bpe))).clone())
}

/// Whether a failure tells that the engine is loaded (a deadline passed, a queue inside
/// was full), so the admission limit should shrink.
fn is_load(error: &ActorsError) -> bool {
    matches!(error, ActorsError::Deadline(_) | ActorsError::Busy { .. })
}

/// The emotion lexicon, parsed once per process.
fn lexicon() -> Arc<EmotionLexicon> {
    static LEXICON: OnceLock<Arc<EmotionLexicon>> = OnceLock::new();
    LEXICON
        .get_or_init(|| Arc::new(EmotionLexicon::builtin()))
        .clone()
}

/// One actor as health shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActorHealth {
    /// Its name.
    pub name: String,
    /// `up`, `restarting` or `disabled`.
    pub state: String,
    /// Restarts per cause.
    pub restarts: BTreeMap<String, u64>,
    /// The last failure, if any.
    pub last_failure: Option<String>,
    /// Messages waiting in its mailbox (`None` for an actor switched off).
    pub mailbox_depth: Option<usize>,
}

/// One processor as health shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessorHealth {
    /// Its name.
    pub name: String,
    /// Whether its loop runs.
    pub running: bool,
    /// Whether this node runs it now: a shared processor (emotion, summarizer, graph
    /// sync) runs on one node of a cluster at a time, the others stand by and show the
    /// shared checkpoint; the indexer runs on every node.
    pub holds_lease: bool,
    /// The last turn it has fully handled.
    pub checkpoint: i64,
    /// Turns stored but not yet handled (archive head minus checkpoint).
    pub lag: i64,
    /// Whether it waits between steps for requests to come back within their target
    /// (`[actors.processors] yield_ms`): background work giving way to requests.
    pub yielding: bool,
}

/// The engine's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// This node's name (`[storage] node`).
    pub node: String,
    /// Whether the engine takes requests.
    pub accepting: bool,
    /// The highest turn id stored.
    pub head: i64,
    /// Every actor, including those switched off.
    pub actors: Vec<ActorHealth>,
    /// The processors that run.
    pub processors: Vec<ProcessorHealth>,
    /// Stored turns the slowest processor has not handled yet.
    pub backlog: u64,
    /// The backlog past which writes are refused (0: none).
    pub backlog_limit: u64,
    /// Whether the backlog is at its bound: writes are refused until the processors
    /// catch up.
    pub behind: bool,
    /// Requests in flight and the admission limit, per operation.
    pub admission: Vec<AdmissionHealth>,
}

/// One operation's admission gate as health shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdmissionHealth {
    /// The operation (`store`, `context`).
    pub operation: String,
    /// Requests in flight now.
    pub in_flight: usize,
    /// How many may be in flight now; more are refused as busy.
    pub limit: usize,
    /// Whether more than one of the last hundred admitted requests overran its target
    /// (the processors step less often meanwhile).
    pub overrunning: bool,
}

impl AdmissionHealth {
    fn of(gate: &Gate) -> Self {
        let (in_flight, limit) = gate.load();
        Self {
            operation: gate.operation().to_owned(),
            in_flight,
            limit,
            overrunning: gate.overrunning(),
        }
    }
}

impl Health {
    /// The actor named `name`.
    pub fn actor(&self, name: &str) -> Option<&ActorHealth> {
        self.actors.iter().find(|a| a.name == name)
    }
}

struct ActixThread {
    system: actix::System,
    thread: JoinHandle<()>,
}

struct Inner {
    handles: Handles,
    tiers: Tiers,
    config: Config,
    /// Reached only through `faults()`, which exists with the `test-faults` feature.
    #[cfg_attr(not(feature = "test-faults"), allow(dead_code))]
    faults: Arc<Faults>,
    accepting: AtomicBool,
    in_flight: AtomicUsize,
    drained: Notify,
    actix: Mutex<Option<ActixThread>>,
    /// The process's Prometheus recorder; `None` when the host installed its own.
    metrics: Option<Metrics>,
    /// Refused writes, for the log.
    refusals: Refusals,
    /// Requests in flight per operation, limited by the latency they get.
    admission: Admission,
    /// Scores each stored turn's emotions and importance before its insert, when the
    /// emotion processor runs (`None`: it does not, and turns are stored unscored).
    scorer: Option<Arc<EmotionLexicon>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // An engine dropped without `shutdown` still closes its stores (on the actor
        // thread, where their connections live: dropped elsewhere, the pools would have
        // no runtime to close on) and then stops its threads.
        if let Some(actix) = self.actix.lock().take() {
            let tiers = self.tiers.clone();
            let system = actix.system.clone();
            let spawned = actix.system.arbiter().spawn(async move {
                let _ = tiers.close().await;
                system.stop();
            });
            if !spawned {
                actix.system.stop();
            }
        }
    }
}

/// The memory engine. Cheap to clone; every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("data_dir", &self.inner.config.storage.data_dir)
            .finish_non_exhaustive()
    }
}

/// Counts a request in flight, so shutdown can wait for it.
struct InFlight<'a>(&'a Inner);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

impl Engine {
    /// Starts an engine with the wall clock.
    pub async fn start(config: Config) -> Result<Self> {
        Self::start_with_clock(config, SystemClock::shared()).await
    }

    /// Starts an engine reading time from `clock`: opens the tiers, then starts every
    /// actor under the supervisor on a thread of its own.
    pub async fn start_with_clock(config: Config, clock: SharedClock) -> Result<Self> {
        let described = config.storage.describe();
        let tier = |name: &str| {
            described
                .iter()
                .find(|(tier, _)| *tier == name)
                .map_or("", |(_, place)| place.as_str())
                .to_owned()
        };
        tracing::info!(
            recent = %tier("recent"),
            archive = %tier("archive"),
            index = %tier("index"),
            graph = %tier("graph"),
            "engine starting"
        );
        let engine = Self::boot(config, clock).await;
        match &engine {
            Ok(engine) => {
                let h = &engine.inner.handles;
                let processors: Vec<&str> = h.processors.iter().map(|p| p.name).collect();
                tracing::info!(
                    node = %engine.inner.tiers.node,
                    head = h.head.borrow().0,
                    processors = %processors.join(","),
                    "engine started"
                );
            }
            Err(e) => tracing::error!(error = %e, "engine failed to start"),
        }
        engine
    }

    async fn boot(config: Config, clock: SharedClock) -> Result<Self> {
        let bpe = tokenizer()?;
        let lexicon = lexicon();
        let scorer = lexicon.clone();
        // Installed before the actors start, so their first records are kept.
        let metrics = Metrics::global().ok();
        let faults = Arc::new(Faults::default());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let boot_config = config.clone();
        let boot_faults = faults.clone();
        let thread = std::thread::Builder::new()
            .name("mnemo-actors".into())
            .spawn(move || {
                let runner = actix::System::new();
                let booted = runner.block_on(async move {
                    let storage = &boot_config.storage;
                    let tiers = Tiers::open(storage, clock.clone()).await?;
                    let head = tiers.archive.head().await?;
                    let index_mark = tiers.index.mark().await?;
                    let recent_gaps = tiers.archive.recent_gaps().await?;
                    if !recent_gaps.is_empty() {
                        tracing::info!(
                            sessions = recent_gaps.len(),
                            "sessions missing recent-tier writes are read from the archive \
                             until refilled"
                        );
                    }
                    let handles = system::start(Setup {
                        tiers: tiers.clone(),
                        index_mark,
                        recent_gaps,
                        graph_enabled: storage.graph.enabled,
                        config: boot_config.actors.clone(),
                        recent_fill: storage.recent.max_turns_per_session,
                        clock,
                        head,
                        lexicon,
                        bpe,
                        faults: boot_faults,
                    })?;
                    Ok::<_, Error>((tiers, handles, actix::System::current()))
                });
                let ok = booted.is_ok();
                let _ = tx.send(booted);
                if ok {
                    let _ = runner.run();
                }
            })
            .map_err(|e| Error::Startup(format!("cannot start the actor thread: {e}")))?;
        let (tiers, handles, system) = rx
            .await
            .map_err(|_| Error::Startup("the actor thread died while starting".into()))??;
        let admission = Admission::new(&config.engine.admission, handles.pressure.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                handles,
                tiers,
                faults,
                accepting: AtomicBool::new(true),
                in_flight: AtomicUsize::new(0),
                drained: Notify::new(),
                actix: Mutex::new(Some(ActixThread { system, thread })),
                metrics,
                refusals: Refusals::default(),
                admission,
                scorer: config.actors.processors.emotion.enabled.then_some(scorer),
                config,
            }),
        })
    }

    fn enter(&self) -> Result<InFlight<'_>> {
        self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(&self.inner);
        if !self.inner.accepting.load(Ordering::Acquire) {
            return Err(mnemo_actors::Error::ShuttingDown.into());
        }
        Ok(guard)
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Stores one turn; answers once it is durable in the archive.
    pub async fn store(&self, turn: NewTurn) -> Result<Appended> {
        observe("store", async {
            let mut stored = self.store_turns(vec![turn]).await?;
            stored.pop().ok_or_else(|| {
                mnemo_actors::Error::Internal("a stored turn went missing".into()).into()
            })
        })
        .await
    }

    /// Stores turns all or nothing; answers once they are durable in the archive.
    pub async fn store_batch(&self, turns: Vec<NewTurn>) -> Result<Vec<Appended>> {
        observe("store_batch", self.store_turns(turns)).await
    }

    /// Stores turns as [`Engine::store_batch`] does, but while the processors are too far
    /// behind to take more writes it waits until they have caught up with half the
    /// backlog, instead of being refused, and while the engine is at capacity for stores
    /// it waits for one to end: for bulk imports, which go as fast as the engine can
    /// process rather than as fast as it can store.
    pub async fn store_batch_paced(&self, turns: Vec<NewTurn>) -> Result<Vec<Appended>> {
        let gate = &self.inner.admission.store;
        loop {
            let room = gate.room();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.store_batch(turns.clone()).await {
                Err(Error::Actor(ActorsError::Behind { .. })) => {
                    self.inner.handles.backlog.wait_room().await;
                }
                Err(Error::Actor(ActorsError::AtCapacity { .. })) => room.await,
                other => return other,
            }
        }
    }

    async fn store_turns(&self, turns: Vec<NewTurn>) -> Result<Vec<Appended>> {
        let _in_flight = self.enter().inspect_err(|e| {
            self.inner.refusals.write_refused(turns.len(), e);
        })?;
        let limits = &self.inner.config.storage.limits;
        // Refused here, each caller's bad turn cannot fail another caller's group commit.
        if turns.len() > limits.max_batch_turns {
            return Err(mnemo_storage::Error::invalid(
                "turns",
                format!(
                    "a batch of {} turns is over the limit of {}",
                    turns.len(),
                    limits.max_batch_turns
                ),
            )
            .into());
        }
        for turn in &turns {
            turn.validate(limits)?;
        }
        let gate = &self.inner.admission.store;
        let ticket = gate.enter().inspect_err(|e| {
            self.inner.refusals.write_refused(turns.len(), e);
        })?;
        // Scored here, on the caller's thread, so the turn is written once: an annotation
        // after the insert rewrote every row (BENCHMARKS.md).
        let turns: Vec<ScoredTurn> = turns
            .into_iter()
            .map(|turn| match &self.inner.scorer {
                Some(lexicon) => {
                    let (emotion, importance) = turn_scores(lexicon, &turn.content);
                    ScoredTurn {
                        turn,
                        emotion: Some(emotion),
                        importance: Some(importance),
                    }
                }
                None => ScoredTurn::from(turn),
            })
            .collect();
        let handles = &self.inner.handles;
        let count = turns.len();
        let appended = match handles.archive.append_scored(turns).await {
            Ok(appended) => appended,
            Err(e) => {
                if is_load(&e) {
                    ticket.overran();
                }
                let e = Error::from(e);
                self.inner.refusals.write_refused(count, &e);
                return Err(e);
            }
        };
        let created: Vec<Turn> = {
            let guard = handles.tombstones.guard().await;
            appended
                .iter()
                .filter(|a| a.created && guard.keeps(&a.turn))
                .map(|a| a.turn.clone())
                .collect()
        };
        if !created.is_empty() {
            handles
                .generations
                .bump_all(created.iter().map(|t| &t.scope));
            // The recent tier is a cache: if it cannot take the turns, the store still
            // succeeds, and those sessions are read from the archive until refilled.
            if let Err(e) = handles.recent.push(created.clone()).await {
                self.inner.refusals.recent_missed(created.len(), &e);
                let gaps = handles.recent_gaps.record(&created);
                // Kept in the archive so a restart and the other nodes see them too; a
                // cache in this process dies with it and is no other node's, so its marks
                // stay in memory (an archive write per refused push, on the store's path,
                // cost 10,000 simulated users 62% of their stores: BENCHMARKS.md).
                let marked = if handles.recent_gaps.in_archive() {
                    handles.archive.mark_recent_gaps(gaps).await
                } else {
                    Ok(())
                };
                if let Err(e) = marked {
                    tracing::warn!(
                        error = %e,
                        "could not keep a recent-tier gap in the archive: after a restart \
                         these sessions may be served from the cache without the missed turns"
                    );
                }
            }
        }
        // A batch takes longer than one turn by its size, not by the engine's load: only
        // single stores teach the gate.
        if count == 1 {
            let target = self.inner.config.engine.admission.store_target_ms;
            ticket.finish(Duration::from_millis(target));
        }
        Ok(appended)
    }

    /// Assembles context for the next prompt.
    ///
    /// The assembler answers within the request's deadline once it takes the request;
    /// the caller stops waiting at twice the deadline, for a request stuck behind a long
    /// queue (the assembler then refuses it unasked when it gets to it).
    pub async fn context(&self, request: ContextRequest) -> Result<ContextAnswer> {
        observe("context", async {
            let _in_flight = self.enter()?;
            mnemo_storage::limits::check_query("query", &request.query)?;
            let ticket = self.inner.admission.context.enter()?;
            let budget = request.deadline.unwrap_or(Duration::from_millis(
                self.inner.config.actors.context.default_deadline_ms,
            ));
            let message = AssembleContext::now(request);
            let give_up = message.sent + budget * 2;
            let asked = self.inner.handles.context.ask_read(message);
            let answered = tokio::time::timeout_at(give_up, asked)
                .await
                .map_err(|_| {
                    ActorsError::Deadline(format!(
                        "no answer within twice the {} ms deadline: the context assembler is \
                         behind",
                        budget.as_millis()
                    ))
                })
                .and_then(|answered| answered);
            let answer = match answered {
                Ok(answer) => answer,
                Err(e) => {
                    if is_load(&e) {
                        ticket.overran();
                    }
                    return Err(e.into());
                }
            };
            let share = self.inner.config.engine.admission.context_target_share;
            ticket.finish(budget.mul_f64(share));
            metrics::record_context(&answer);
            Ok(answer)
        })
        .await
    }

    /// BM25 search over the user's turns and summaries.
    pub async fn search(&self, scope: &Scope, query: SearchQuery) -> Result<Vec<SearchHit>> {
        observe("search", async {
            let _in_flight = self.enter()?;
            mnemo_storage::limits::check_query("q", &query.text)?;
            Ok(self
                .inner
                .handles
                .index
                .search(scope.clone(), query)
                .await?)
        })
        .await
    }

    /// A page of a session's turns, newest first.
    pub async fn history(
        &self,
        scope: &Scope,
        session: &SessionId,
        page: HistoryPage,
    ) -> Result<Vec<Turn>> {
        observe("history", async {
            let _in_flight = self.enter()?;
            Ok(self
                .inner
                .handles
                .archive
                .history(scope.clone(), session.clone(), page)
                .await?)
        })
        .await
    }

    /// Every stored turn after `after`, in id order, at most `limit`, across all tenants
    /// and users: for exports and administration, never for a tenant's request.
    pub async fn turns_after(&self, after: TurnId, limit: usize) -> Result<Vec<Turn>> {
        let _in_flight = self.enter()?;
        Ok(self.inner.handles.archive.turns_after(after, limit).await?)
    }

    /// The neighbourhood of one of the user's entities in the graph.
    pub async fn graph(
        &self,
        scope: &Scope,
        entity: &str,
        depth: usize,
        limit: usize,
    ) -> Result<Option<Neighbourhood>> {
        observe("graph", async {
            let _in_flight = self.enter()?;
            // Refused here, before any store: a graph server would answer an error.
            mnemo_storage::limits::check_id("entity", entity)?;
            let graph =
                self.inner
                    .handles
                    .graph
                    .as_ref()
                    .ok_or_else(|| mnemo_actors::Error::Down {
                        actor: "graph",
                        reason: "the graph tier is switched off".into(),
                    })?;
            Ok(graph
                .neighbourhood(scope.clone(), entity.to_owned(), depth, limit)
                .await?)
        })
        .await
    }

    /// Forgets a user: every tier and cache, including what processors derive from turns
    /// read just before.
    pub async fn forget_user(&self, scope: &Scope) -> Result<ForgetReport> {
        observe("forget_user", async {
            let _in_flight = self.enter()?;
            let h = &self.inner.handles;
            let head = h.archive.head().await?.max(*h.head.borrow());
            h.tombstones.bury_user(scope.clone(), head).await;
            let report = h.archive.forget_user(scope.clone()).await?;
            h.recent.forget_user(scope.clone()).await?;
            h.index.delete_user(scope.clone()).await?;
            h.index.commit().await?;
            if let Some(graph) = &h.graph {
                graph.forget_user(scope.clone()).await?;
            }
            h.generations.bump(scope);
            self.prune_tombstones().await;
            Ok(report)
        })
        .await
    }

    /// Forgets one turn of the user: the turn, the summaries covering it, its index
    /// entries, its support in the graph, and cached sessions holding it.
    pub async fn forget_turn(&self, scope: &Scope, id: TurnId) -> Result<ForgetReport> {
        observe("forget_turn", async {
            let _in_flight = self.enter()?;
            let h = &self.inner.handles;
            let Some(turn) = h.archive.get_turns(scope.clone(), vec![id]).await?.pop() else {
                return Ok(ForgetReport::default());
            };
            let covering: Vec<i64> = h
                .archive
                .summaries(
                    scope.clone(),
                    Some(turn.session_id.clone()),
                    usize::MAX >> 1,
                )
                .await?
                .into_iter()
                .filter(|s| s.first_turn <= id && id <= s.last_turn)
                .map(|s| s.id.0)
                .collect();
            h.tombstones.bury_turn(id).await;
            let report = h.archive.forget_turn(scope.clone(), id).await?;
            h.recent.forget_turn(scope.clone(), id).await?;
            h.index
                .delete_doc(scope.clone(), DocKind::Turn, id.0)
                .await?;
            for summary in covering {
                h.index
                    .delete_doc(scope.clone(), DocKind::Summary, summary)
                    .await?;
            }
            h.index.commit().await?;
            if let Some(graph) = &h.graph {
                graph.forget_turn(scope.clone(), id).await?;
            }
            h.generations.bump(scope);
            self.prune_tombstones().await;
            Ok(report)
        })
        .await
    }

    async fn prune_tombstones(&self) {
        let h = &self.inner.handles;
        let slowest = h
            .processors
            .iter()
            .map(|p| *p.progress.borrow())
            .min()
            .unwrap_or(*h.head.borrow());
        h.tombstones.prune(slowest).await;
    }

    /// Each actor's state, restarts and mailbox depth, and each processor's lag.
    pub fn health(&self) -> Health {
        let h = &self.inner.handles;
        let head = *h.head.borrow();
        let actors = h
            .registry
            .statuses
            .iter()
            .map(|status| ActorHealth {
                name: status.name().to_owned(),
                state: status.state().as_str().to_owned(),
                restarts: status.restarts(),
                last_failure: status.last_failure(),
                mailbox_depth: h.registry.depth(status.name()),
            })
            .collect();
        let processors = h
            .processors
            .iter()
            .map(|p| {
                let checkpoint = *p.progress.borrow();
                ProcessorHealth {
                    name: p.name.to_owned(),
                    running: *p.running.borrow(),
                    holds_lease: *p.leased.borrow(),
                    checkpoint: checkpoint.0,
                    lag: (head.0 - checkpoint.0).max(0),
                    yielding: *p.yielding.borrow(),
                }
            })
            .collect();
        Health {
            node: self.inner.tiers.node.clone(),
            accepting: self.inner.accepting.load(Ordering::Acquire),
            head: head.0,
            actors,
            processors,
            backlog: h.backlog.turns(),
            backlog_limit: h.backlog.limit(),
            behind: h.backlog.is_over(),
            admission: [&self.inner.admission.store, &self.inner.admission.context]
                .into_iter()
                .map(AdmissionHealth::of)
                .collect(),
        }
    }

    /// The Prometheus text exposition of the process's metrics, after sampling this
    /// engine's gauges (mailbox depth, actor state, processor lag) from [`Engine::health`].
    /// Empty when the host installed its own `metrics` recorder before the first engine
    /// started (Mnemo's metrics are then recorded there).
    pub fn metrics_text(&self) -> String {
        let Some(recorder) = &self.inner.metrics else {
            return String::new();
        };
        metrics::sample(&self.health());
        recorder.render()
    }

    /// Whether every actor is up (none restarting).
    pub fn all_up(&self) -> bool {
        self.inner
            .handles
            .registry
            .statuses
            .iter()
            .all(|s| s.state() != State::Restarting)
    }

    /// Waits until every running processor has handled every turn stored before the
    /// call: the engine's own progress signal, for tests, the demo and imports.
    pub async fn wait_processed(&self) -> Result<()> {
        let h = &self.inner.handles;
        let target = h.archive.head().await?.max(*h.head.borrow());
        for p in &h.processors {
            let mut progress = p.progress.clone();
            progress
                .wait_for(|checkpoint| *checkpoint >= target)
                .await
                .map_err(|_| processor_stopped(p.name))?;
        }
        self.prune_tombstones().await;
        Ok(())
    }

    /// Waits until the processor `name` waits between steps for requests to come back
    /// within their target (`[actors.processors] yield_ms`).
    pub async fn wait_yielding(&self, name: &str) -> Result<()> {
        let processor = self
            .inner
            .handles
            .processors
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                mnemo_storage::Error::invalid("processor", format!("no processor {name} runs"))
            })?;
        let mut yielding = processor.yielding.clone();
        yielding
            .wait_for(|yielding| *yielding)
            .await
            .map_err(|_| processor_stopped(processor.name))?;
        Ok(())
    }

    /// Runs the processors' idle step now (e.g. summaries of idle sessions) instead of
    /// at their next periodic check, and waits for it to complete.
    pub async fn run_idle(&self) -> Result<()> {
        for p in &self.inner.handles.processors {
            let mut runs = p.idle_runs.clone();
            let before = *runs.borrow_and_update();
            p.run_idle();
            runs.wait_for(|n| *n > before)
                .await
                .map_err(|_| processor_stopped(p.name))?;
        }
        Ok(())
    }

    /// Waits until no refill of the recent tier is under way. After a recent-tier miss the
    /// context assembler refills the session from the archive once it has answered; this
    /// waits for those refills (tests, warm-ups), whether they succeed or fail.
    pub async fn wait_refills(&self) -> Result<()> {
        self.inner.handles.refills.wait_idle().await;
        Ok(())
    }

    /// Waits until the actor `name` has failed (been marked down) at least `count` times
    /// in all.
    pub async fn wait_failures(&self, name: &str, count: u64) -> Result<()> {
        self.wait_count(name, count, |status| status.failed()).await
    }

    /// Waits until the actor `name` has been restarted at least `count` times in all.
    pub async fn wait_restarts(&self, name: &str, count: u64) -> Result<()> {
        self.wait_count(name, count, |status| status.restarted())
            .await
    }

    /// Waits until the counter `watch` picks from the actor's status reaches `count`.
    async fn wait_count(
        &self,
        name: &str,
        count: u64,
        watch: impl FnOnce(&mnemo_actors::runtime::Status) -> tokio::sync::watch::Receiver<u64>,
    ) -> Result<()> {
        let status = self
            .inner
            .handles
            .registry
            .status(name)
            .ok_or_else(|| mnemo_actors::Error::Internal(format!("no actor named {name}")))?;
        watch(&status)
            .wait_for(|n| *n >= count)
            .await
            .map_err(|_| mnemo_actors::Error::Internal(format!("{name} is gone")))?;
        Ok(())
    }

    /// The fault hooks, for tests: make an actor slow or make it panic.
    #[cfg(feature = "test-faults")]
    pub fn faults(&self) -> &Arc<Faults> {
        &self.inner.faults
    }

    /// Stops taking work, waits for requests in flight, lets processors finish the step
    /// in hand (bounded by `engine.shutdown_timeout_ms`), commits the index, closes the
    /// stores and stops the actor thread. What processors have not reached is processed
    /// after the next start, from their checkpoints.
    pub async fn shutdown(&self) -> Result<()> {
        let inner = &self.inner;
        if inner.accepting.swap(false, Ordering::AcqRel) {
            tracing::info!(
                in_flight = inner.in_flight.load(Ordering::Acquire),
                "engine shutting down: no new requests; finishing those in flight"
            );
        }
        loop {
            let drained = inner.drained.notified();
            if inner.in_flight.load(Ordering::Acquire) == 0 {
                break;
            }
            drained.await;
        }
        let h = &inner.handles;
        h.registry.supervisor.do_send(StopRestarts);
        for p in &h.processors {
            p.stop();
        }
        let timeout = Duration::from_millis(inner.config.engine.shutdown_timeout_ms);
        let stopped = tokio::time::timeout(timeout, async {
            for p in &h.processors {
                let mut running = p.running.clone();
                let _ = running.wait_for(|running| !*running).await;
            }
            // Refills of the recent tier still read and write the stores: they finish
            // before the stores close (a refill cut off would fail on a closed pool).
            h.refills.wait_idle().await;
        })
        .await;
        let behind: Vec<String> = self
            .health()
            .processors
            .iter()
            .filter(|p| p.lag > 0)
            .map(|p| format!("{} by {} turns", p.name, p.lag))
            .collect();
        let behind = if behind.is_empty() {
            "none".to_owned()
        } else {
            behind.join(", ")
        };
        match stopped {
            Ok(()) => tracing::info!(
                behind = %behind,
                "processors stopped; what they have not reached is processed after the next start"
            ),
            Err(_) => tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                behind = %behind,
                "processors did not stop in time; their step in hand is redone after the next start"
            ),
        }
        let Some(actix) = inner.actix.lock().take() else {
            return Ok(());
        };
        // Work still in flight (a poll, a refill) may meet the closed stores: that is
        // the closing, not an outage to report or restart.
        for status in &inner.handles.registry.statuses {
            status.mark_closing();
        }
        // Close the stores on the actor thread, where their connections live.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tiers = inner.tiers.clone();
        actix.system.arbiter().spawn(async move {
            let _ = tx.send(tiers.close().await);
        });
        let closed = rx.await.unwrap_or(Ok(()));
        actix.system.stop();
        let _ = tokio::task::spawn_blocking(move || actix.thread.join()).await;
        match &closed {
            Ok(()) => tracing::info!("engine stopped"),
            Err(e) => tracing::error!(error = %e, "engine stopped; closing the stores failed"),
        }
        Ok(closed?)
    }
}

/// A turn stored through the engine, as `store` answers it.
pub type Stored = Appended;

/// The error of a wait on a processor that stopped meanwhile.
fn processor_stopped(name: &'static str) -> mnemo_actors::Error {
    mnemo_actors::Error::Down {
        actor: name,
        reason: "it stopped".into(),
    }
}
