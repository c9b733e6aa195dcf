//! The context assembler: for each request it asks every tier it needs in parallel,
//! each under the request's deadline, gathers what came back in time, and ranks, cuts
//! and renders it (on its own thread). A tier that is late or down is left out and named
//! in `degraded`. Each tier is asked at most once per request; identical requests are
//! answered from a per-user cache until the next write for that user.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, Context, Handler, Supervised};
use lru::LruCache;
use mnemo_storage::archive::HistoryPage;
use mnemo_storage::clock::SharedClock;
use mnemo_storage::graph::{ContextEntities, RankedEntity, Recency};
use mnemo_storage::index::SearchQuery;
use mnemo_storage::model::{EmotionState, Order, Scope, SessionId, Turn, TurnId};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tiktoken_rs::CoreBPE;

use crate::analysis::entities::extract_entities;
use crate::archive::ArchiveTier;
use crate::config::ContextConfig;
use crate::error::{Error, Result};
use crate::faults::Faults;
use crate::generations::Generations;
use crate::graph::GraphTier;
use crate::index::IndexTier;
use crate::life::{serve, Child, Life, Restart, Settle};
use crate::mailbox::Envelope;
use crate::metrics;
use crate::ranking::{lift_neighbours, rank, render, Candidate, ContextItem, Gathered};
use crate::recent::{RecentGaps, RecentTier, RefillTicket, Refills};
use crate::worker::Worker;

/// A request for context.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextRequest {
    /// Whose memories.
    pub scope: Scope,
    /// The current session, whose last turns come first.
    pub session: Option<SessionId>,
    /// What the next prompt is about.
    pub query: String,
    /// Recent turns of the session, at most.
    pub max_recent: Option<usize>,
    /// Relevant items, at most.
    pub max_items: Option<usize>,
    /// Tokens of the rendered prompt, at most.
    pub token_budget: Option<usize>,
    /// How long the caller can wait.
    pub deadline: Option<Duration>,
}

/// A context request as sent to the assembler: its deadline runs from when it was sent,
/// so a request that waited in the mailbox past it fails at once instead of answering
/// late.
#[derive(Debug, Clone)]
pub struct AssembleContext {
    /// The request.
    pub request: ContextRequest,
    /// When the caller sent it.
    pub sent: tokio::time::Instant,
}

impl AssembleContext {
    /// `request`, sent now.
    pub fn now(request: ContextRequest) -> Self {
        Self {
            request,
            sent: tokio::time::Instant::now(),
        }
    }
}

impl ContextRequest {
    /// A request with the configured defaults.
    pub fn new(scope: Scope, session: Option<SessionId>, query: impl Into<String>) -> Self {
        Self {
            scope,
            session,
            query: query.into(),
            max_recent: None,
            max_items: None,
            token_budget: None,
            deadline: None,
        }
    }
}

/// The assembled context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextAnswer {
    /// The session's recent turns kept, oldest first.
    pub recent: Vec<Turn>,
    /// Relevant turns, summaries and entities, best first.
    pub items: Vec<ContextItem>,
    /// Entities named in the query and the user's strongest ones.
    pub entities: Vec<RankedEntity>,
    /// The user's emotion state.
    pub emotion: Option<EmotionState>,
    /// Tiers that were late or down and are missing from this answer.
    pub degraded: Vec<String>,
    /// Milliseconds each tier took (or until it was given up on), and the total.
    pub timings_ms: BTreeMap<String, f64>,
    /// The rendered prompt text.
    pub prompt: String,
    /// Tokens in `prompt`.
    pub tokens: usize,
    /// Whether this answer came from the per-user cache.
    pub cached: bool,
}

/// The tiers the assembler asks.
#[derive(Clone, Debug)]
pub struct Sources {
    /// Recent tier.
    pub recent: RecentTier,
    /// Archive (fallback for recent, turn details, emotion state).
    pub archive: ArchiveTier,
    /// Index.
    pub index: IndexTier,
    /// Graph, when enabled.
    pub graph: Option<GraphTier>,
    /// Sessions the recent tier missed a write for.
    pub gaps: Arc<RecentGaps>,
    /// Refills of the recent tier under way.
    pub refills: Arc<Refills>,
}

type CacheKey = (Scope, Option<SessionId>, String, usize, usize, usize);

/// Answers computed per user, valid while the user's write counter is unchanged.
#[derive(Debug)]
struct AnswerCache {
    entries: LruCache<CacheKey, (u64, ContextAnswer)>,
}

/// The context assembler actor.
pub struct ContextAssembler {
    sources: Sources,
    config: ContextConfig,
    recent_fill: usize,
    bpe: Arc<CoreBPE>,
    generations: Arc<Generations>,
    cache: Arc<Mutex<AnswerCache>>,
    clock: SharedClock,
    worker: Arc<Worker>,
    life: Life,
    faults: Arc<Faults>,
}

impl ContextAssembler {
    /// An assembler over `sources`. `recent_fill` is how many turns to load into the
    /// recent tier after a miss.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sources: Sources,
        config: ContextConfig,
        recent_fill: usize,
        bpe: Arc<CoreBPE>,
        generations: Arc<Generations>,
        clock: SharedClock,
        life: Life,
        faults: Arc<Faults>,
    ) -> Result<Self> {
        let capacity = std::num::NonZeroUsize::new(config.cache_entries.max(1))
            .ok_or_else(|| Error::Internal("cache capacity".into()))?;
        Ok(Self {
            sources,
            config,
            recent_fill,
            bpe,
            generations,
            cache: Arc::new(Mutex::new(AnswerCache {
                entries: LruCache::new(capacity),
            })),
            clock,
            worker: Arc::new(Worker::start("context")?),
            life,
            faults,
        })
    }
}

/// Runs `fut` until `deadline`: answers the tier's name, how long it took in
/// milliseconds, its value (`None` when it failed or was late) and whether it was late.
async fn timed<T>(
    name: &'static str,
    deadline: tokio::time::Instant,
    fut: impl Future<Output = Result<T>>,
) -> (&'static str, f64, Option<T>, bool) {
    let start = Instant::now();
    let outcome = tokio::time::timeout_at(deadline, fut).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Ok(Ok(value)) => (name, ms, Some(value), false),
        Ok(Err(_)) => (name, ms, None, false),
        Err(_) => (name, ms, None, true),
    }
}

/// Names worth looking up in the graph: entities the extractor finds in the query, and
/// its capitalised words (questions are often lower-case apart from names).
fn query_names(query: &str) -> Vec<String> {
    let mut names: Vec<String> = extract_entities(query)
        .into_iter()
        .map(|e| e.name)
        .collect();
    for word in query.split(|c: char| !(c.is_alphanumeric() || c == '\'')) {
        let word = word.trim_end_matches("'s").trim_matches('\'');
        if word.chars().next().is_some_and(char::is_uppercase) && word.chars().count() > 1 {
            names.push(word.to_owned());
        }
    }
    names.sort();
    names.dedup();
    names
}

/// A refill of one session of the recent tier from an archive read, run after the answer
/// that read it has gone out. It only warms the cache: a failure is counted and the next
/// read misses again. Turns pushed while it runs are not lost (`fill` merges them), and
/// a write the tier missed after the archive read keeps its gap mark.
struct Refill {
    recent: RecentTier,
    gaps: Arc<RecentGaps>,
    /// Counts this refill as under way until it is done.
    ticket: RefillTicket,
    scope: Scope,
    session: SessionId,
    turns: Vec<Turn>,
    /// The session's gap mark when the archive was read.
    gap: Option<u64>,
}

impl Refill {
    async fn run(self) {
        let filled = self
            .recent
            .fill(self.scope.clone(), self.session.clone(), self.turns)
            .await;
        match filled {
            Ok(()) => {
                if let Some(stamp) = self.gap {
                    self.gaps.clear(&self.scope, &self.session, stamp);
                }
            }
            Err(_) => ::metrics::counter!(metrics::RECENT_REFILL_FAILURES_TOTAL).increment(1),
        }
        drop(self.ticket);
    }
}

struct Assembly {
    sources: Sources,
    config: ContextConfig,
    recent_fill: usize,
    bpe: Arc<CoreBPE>,
    clock: SharedClock,
    worker: Arc<Worker>,
}

impl Assembly {
    async fn run(
        self,
        request: ContextRequest,
        sent: tokio::time::Instant,
    ) -> Result<ContextAnswer> {
        let started = Instant::now();
        let budget = request
            .deadline
            .unwrap_or(Duration::from_millis(self.config.default_deadline_ms));
        // Keep a slice of the deadline for ranking and rendering.
        let reserve = (budget / 10).min(Duration::from_millis(2));
        let deadline = sent + budget.saturating_sub(reserve);
        let queued = sent.elapsed();
        if tokio::time::Instant::now() >= deadline {
            ::metrics::counter!(metrics::CONTEXT_EXPIRED_IN_QUEUE_TOTAL).increment(1);
            return Err(Error::Deadline(format!(
                "the request waited {} ms for the context assembler, past its {} ms deadline",
                queued.as_millis(),
                budget.as_millis()
            )));
        }
        let max_recent = request.max_recent.unwrap_or(self.config.max_recent);
        let max_items = request.max_items.unwrap_or(self.config.max_items);
        let token_budget = request.token_budget.unwrap_or(self.config.token_budget);
        let scope = request.scope.clone();
        let now = self.clock.now();
        let recency = Recency {
            now,
            half_life: Duration::from_secs_f64(
                self.config.recency_half_life_hours.max(0.001) * 3600.0,
            ),
        };

        let s = &self.sources;
        // The recent tier's answer, and whether the tier failed (its turns then come from
        // the archive, and the tier is still named in `degraded`).
        let recent_failed = std::sync::atomic::AtomicBool::new(false);
        let recent = timed("recent", deadline, async {
            let Some(session) = request.session.clone() else {
                return Ok(Vec::new());
            };
            // A session the recent tier missed a write for is read from the archive; the
            // tier is still asked, only to learn whether it is up.
            let gap = s.gaps.mark(&scope, &session);
            let cached = s
                .recent
                .recent(
                    scope.clone(),
                    session.clone(),
                    max_recent,
                    Order::OldestFirst,
                )
                .await;
            if let (Ok(Some(turns)), None) = (&cached, gap) {
                return Ok(turns.clone());
            }
            // A miss, a gap, or a recent tier that is down: the archive answers.
            let up = cached.is_ok();
            if !up {
                recent_failed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let fill = max_recent.max(self.recent_fill);
            let mut turns = s
                .archive
                .history(
                    scope.clone(),
                    session.clone(),
                    HistoryPage {
                        before: None,
                        limit: fill,
                    },
                )
                .await?;
            turns.reverse();
            if up {
                // Warm the cache for the next request, off this one's path.
                let refill = Refill {
                    recent: s.recent.clone(),
                    gaps: s.gaps.clone(),
                    ticket: s.refills.start(),
                    scope: scope.clone(),
                    session,
                    turns: turns.clone(),
                    gap,
                };
                actix::spawn(refill.run());
            }
            let skip = turns.len().saturating_sub(max_recent);
            Ok(turns.split_off(skip))
        });
        let index = timed("index", deadline, async {
            if request.query.trim().is_empty() {
                return Ok(Vec::new());
            }
            let hits = s
                .index
                .search(
                    scope.clone(),
                    SearchQuery::new(request.query.clone(), (max_items * 3).max(10)),
                )
                .await?;
            Ok(hits)
        });
        let graph = timed("graph", deadline, async {
            let Some(graph) = &s.graph else {
                return Ok(ContextEntities::default());
            };
            // The entities the query names, with their weights, and the user's top few.
            graph
                .context_entities(scope.clone(), recency, query_names(&request.query), 5)
                .await
        });
        let emotion = timed("emotion", deadline, s.archive.emotion_state(scope.clone()));
        let (recent, index, graph, emotion) = tokio::join!(recent, index, graph, emotion);

        let mut timings = BTreeMap::new();
        let mut degraded = Vec::new();
        // (tier, ms, answered, late, asked at all)
        let outcomes = [
            (
                recent.0,
                recent.1,
                recent.2.is_some(),
                recent.3,
                request.session.is_some(),
            ),
            (
                index.0,
                index.1,
                index.2.is_some(),
                index.3,
                !request.query.trim().is_empty(),
            ),
            (emotion.0, emotion.1, emotion.2.is_some(), emotion.3, true),
            (
                graph.0,
                graph.1,
                graph.2.is_some(),
                graph.3,
                s.graph.is_some(),
            ),
        ];
        for (name, ms, answered, _, asked) in outcomes {
            if asked {
                timings.insert(name.to_owned(), ms);
                if !answered {
                    degraded.push(name.to_owned());
                }
            }
        }
        // With nothing from any tier there is nothing to answer: a deadline error when
        // some tier was late, else the tiers are down.
        if !outcomes.iter().any(|o| o.4 && o.2) {
            return Err(if outcomes.iter().any(|o| o.4 && o.3) {
                Error::Deadline(format!("no tier answered within {} ms", budget.as_millis()))
            } else {
                Error::Down {
                    actor: "context",
                    reason: "no tier could answer".into(),
                }
            });
        }
        if recent_failed.into_inner() && !degraded.iter().any(|d| d == "recent") {
            degraded.push("recent".to_owned());
        }
        let recent = recent.2.unwrap_or_default();
        let hits = index.2.unwrap_or_default();
        let ContextEntities { matched, top } = graph.2.unwrap_or_default();
        let emotion = emotion.2.flatten();

        // Details of the hit turns (importance, emotion, speaker) for ranking and, unless
        // switched off, the session neighbours of every hit, from the archive in one read.
        let turn_ids: Vec<TurnId> = hits.iter().filter_map(|h| h.turn_id()).collect();
        let expand = self.config.neighbour_next > 0.0 || self.config.neighbour_previous > 0.0;
        let mut details: HashMap<i64, Turn> = HashMap::new();
        if !turn_ids.is_empty() {
            let ids = turn_ids.clone();
            let (_, ms, turns, _) = timed("archive", deadline, async {
                if expand {
                    s.archive.turns_around(scope.clone(), ids).await
                } else {
                    s.archive.get_turns(scope.clone(), ids).await
                }
            })
            .await;
            timings.insert("archive".into(), ms);
            match turns {
                Some(turns) => details.extend(turns.into_iter().map(|t| (t.id.0, t))),
                None => degraded.push("archive".into()),
            }
        }
        let mut candidates: Vec<Candidate> = hits
            .into_iter()
            .map(|hit| Candidate {
                // Summary ids are another sequence than turn ids: only turns take details.
                turn: hit.turn_id().and_then(|id| details.remove(&id.0)),
                hit,
                lifted_by: None,
            })
            .collect();
        // What is left of the details are the neighbours.
        if expand && !details.is_empty() {
            let expanded: Vec<i64> = turn_ids.iter().map(|id| id.0).collect();
            lift_neighbours(
                &mut candidates,
                &expanded,
                details.into_values().collect(),
                self.config.neighbour_next,
                self.config.neighbour_previous,
            );
        }

        let rank_started = Instant::now();
        let config = self.config.clone();
        let bpe = self.bpe.clone();
        let entities: Vec<RankedEntity> = {
            let mut all = matched.clone();
            for e in &top {
                if !all.iter().any(|m| m.entity.id == e.entity.id) {
                    all.push(e.clone());
                }
            }
            all
        };
        let emotion_for_render = emotion.clone();
        let rendered = self
            .worker
            .run(move || {
                let items: Vec<ContextItem> = rank(
                    Gathered {
                        recent: &recent,
                        candidates,
                        matched,
                        top,
                        emotion: emotion_for_render.as_ref(),
                        now,
                    },
                    &config,
                    max_items,
                );
                render(
                    &bpe,
                    &recent,
                    items,
                    emotion_for_render.as_ref(),
                    token_budget,
                )
            })
            .await?;
        timings.insert("rank".into(), rank_started.elapsed().as_secs_f64() * 1000.0);
        timings.insert("total".into(), started.elapsed().as_secs_f64() * 1000.0);
        Ok(ContextAnswer {
            recent: rendered.recent,
            items: rendered.items,
            entities,
            emotion,
            degraded,
            timings_ms: timings,
            prompt: rendered.prompt,
            tokens: rendered.tokens,
            cached: false,
        })
    }
}

impl Actor for ContextAssembler {
    type Context = Context<Self>;
}

impl Supervised for ContextAssembler {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.cache.lock().entries.clear();
        self.life.restarted();
    }
}

impl Handler<Restart> for ContextAssembler {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Settle> for ContextAssembler {
    type Result = ();

    fn handle(&mut self, settle: Settle, ctx: &mut Context<Self>) {
        settle.apply(self, ctx);
    }
}

impl Child for ContextAssembler {
    fn life(&mut self) -> &mut Life {
        &mut self.life
    }

    fn faults(&self) -> Arc<Faults> {
        self.faults.clone()
    }
}

impl Handler<Envelope<AssembleContext, ContextAnswer>> for ContextAssembler {
    type Result = ();

    fn handle(
        &mut self,
        envelope: Envelope<AssembleContext, ContextAnswer>,
        ctx: &mut Context<Self>,
    ) {
        serve(
            self,
            ctx,
            envelope,
            |act, AssembleContext { request, sent }| {
                let max_recent = request.max_recent.unwrap_or(act.config.max_recent);
                let max_items = request.max_items.unwrap_or(act.config.max_items);
                let budget = request.token_budget.unwrap_or(act.config.token_budget);
                let key: CacheKey = (
                    request.scope.clone(),
                    request.session.clone(),
                    request.query.clone(),
                    max_recent,
                    max_items,
                    budget,
                );
                let generation = act.generations.current(&request.scope);
                let cached = {
                    let mut cache = act.cache.lock();
                    match cache.entries.get(&key) {
                        Some((g, answer)) if *g == generation => Some(answer.clone()),
                        _ => None,
                    }
                };
                match cached {
                    Some(_) => ::metrics::counter!(metrics::CONTEXT_CACHE_HITS_TOTAL).increment(1),
                    None => ::metrics::counter!(metrics::CONTEXT_CACHE_MISSES_TOTAL).increment(1),
                }
                let assembly = Assembly {
                    sources: act.sources.clone(),
                    config: act.config.clone(),
                    recent_fill: act.recent_fill,
                    bpe: act.bpe.clone(),
                    clock: act.clock.clone(),
                    worker: act.worker.clone(),
                };
                let cache = act.cache.clone();
                let generations = act.generations.clone();
                async move {
                    if let Some(mut answer) = cached {
                        answer.cached = true;
                        answer.timings_ms = BTreeMap::from([("cache".to_owned(), 0.0)]);
                        return Ok(answer);
                    }
                    let answer = assembly.run(request, sent).await?;
                    // Only complete answers are reused, and only if no write came meanwhile.
                    if answer.degraded.is_empty() && generations.current(&key.0) == generation {
                        cache.lock().entries.put(key, (generation, answer.clone()));
                    }
                    Ok(answer)
                }
            },
        );
    }
}
