//! One context request, step by step:
//!
//! 1. [`Plan`]: the deadline (from when the request was sent, keeping a slice for
//!    ranking and rendering, as long as that stage took lately: [`Reserve`]) and the
//!    limits.
//! 2. [`Assembly::scatter_gather`]: the recent tier (falling back to the archive), the
//!    index, the graph and the emotion state are asked at once, each under the deadline;
//!    a tier that is late or down is left out and named in `degraded`. Past the time kept
//!    for gathering, tiers are waited for only while none has answered yet. As soon as the
//!    index answers, the hit turns' details and their session neighbours are read from
//!    the archive in one read, while the other tiers are still being waited for.
//! 3. [`Assembly::expand_neighbours`]: the hits become ranking candidates with those
//!    details, their neighbours lifted.
//! 4. [`Assembly::rank_and_render`]: ranking, cutting and rendering, on the assembler's
//!    thread.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mnemo_storage::archive::HistoryPage;
use mnemo_storage::clock::SharedClock;
use mnemo_storage::graph::{ContextEntities, RankedEntity, Recency};
use mnemo_storage::index::{SearchHit, SearchQuery};
use mnemo_storage::model::{EmotionState, Order, Timestamp, Turn, TurnId};

use super::assembler::{ContextAnswer, ContextRequest};
use super::ranking::{lift_neighbours, rank, Candidate, ContextItem, Gathered};
use super::refill::Refill;
use super::render::render;
use super::reserve::Reserve;
use super::tokens::TokenCounter;
use crate::analysis::entities::extract_entities;
use crate::config::ContextConfig;
use crate::error::{Error, Result};
use crate::metrics;
use crate::runtime::faults::Faults;
use crate::runtime::worker::Worker;
use crate::tiers::recent::{RecentGaps, Refills};
use crate::tiers::{ArchiveTier, GraphTier, IndexTier, RecentTier};

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
    /// The fault hooks tests arm (refills wait on [`super::refill::FAULT_NAME`]).
    pub faults: Arc<Faults>,
}

/// What one request is assembled with.
pub(crate) struct Assembly {
    pub(crate) sources: Sources,
    pub(crate) config: ContextConfig,
    /// Turns loaded into the recent tier after a miss.
    pub(crate) recent_fill: usize,
    pub(crate) bpe: Arc<TokenCounter>,
    pub(crate) clock: SharedClock,
    pub(crate) worker: Arc<Worker>,
    /// The slice of the deadline kept for ranking and rendering.
    pub(crate) reserve: Arc<Reserve>,
}

/// The request's limits and deadline.
struct Plan {
    started: Instant,
    /// How long the request waited for the assembler.
    queued: Duration,
    /// The whole time the caller gave.
    budget: Duration,
    /// Until when the tiers are gathered.
    gather_by: tokio::time::Instant,
    /// Past `gather_by`, tiers are still waited for while none has answered, until this.
    deadline: tokio::time::Instant,
    max_recent: usize,
    max_items: usize,
    token_budget: usize,
    now: Timestamp,
    recency: Recency,
}

/// How one tier did within the deadline.
#[derive(Debug, Clone, Copy)]
struct TierReport {
    tier: &'static str,
    /// Milliseconds it took, or until it was given up on.
    ms: f64,
    /// Whether it answered in time.
    answered: bool,
    /// Whether it missed the deadline.
    late: bool,
    /// Whether the request needed it at all.
    asked: bool,
}

/// What one tier gave within the deadline, and how it did.
struct TierOutcome<T> {
    report: TierReport,
    /// Its answer; `None` when it failed or was late.
    value: Option<T>,
}

/// When one request's tiers are waited for, and when the first of them answered.
struct Gathering {
    gather_by: tokio::time::Instant,
    deadline: tokio::time::Instant,
    first_answer: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
}

impl Gathering {
    fn new(plan: &Plan) -> Self {
        Self {
            gather_by: plan.gather_by,
            deadline: plan.deadline,
            first_answer: tokio::sync::watch::Sender::new(None),
        }
    }
}

/// Runs `fut` until the gathering's `gather_by`, then on only while no other tier has
/// answered and until its `deadline`, timing it.
async fn timed<T>(
    tier: &'static str,
    asked: bool,
    gathering: &Gathering,
    fut: impl Future<Output = Result<T>>,
) -> TierOutcome<T> {
    let start = Instant::now();
    let mut fut = std::pin::pin!(fut);
    let outcome = match tokio::time::timeout_at(gathering.gather_by, &mut fut).await {
        Ok(result) => Some(result),
        Err(_) => {
            let mut first_answer = gathering.first_answer.subscribe();
            tokio::select! {
                result = tokio::time::timeout_at(gathering.deadline, &mut fut) => result.ok(),
                _ = first_answer.wait_for(Option::is_some) => None,
            }
        }
    };
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let (value, late) = match outcome {
        Some(Ok(value)) => (Some(value), false),
        Some(Err(_)) => (None, false),
        None => (None, true),
    };
    if asked && value.is_some() {
        let now = tokio::time::Instant::now();
        gathering.first_answer.send_if_modified(|first| {
            let was_first = first.is_none();
            first.get_or_insert(now);
            was_first
        });
    }
    TierOutcome {
        report: TierReport {
            tier,
            ms,
            answered: value.is_some(),
            late,
            asked,
        },
        value,
    }
}

/// What the tiers gave.
struct Scattered {
    /// When the first tier answered.
    first_answer: Option<tokio::time::Instant>,
    recent: Vec<Turn>,
    hits: Vec<SearchHit>,
    /// The archive read of the hit turns (and their neighbours), when there were any:
    /// how it did, and what it gave.
    hit_details: Option<(TierReport, Option<Vec<Turn>>)>,
    entities: ContextEntities,
    emotion: Option<EmotionState>,
    timings: BTreeMap<String, f64>,
    degraded: Vec<String>,
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

impl Assembly {
    /// Assembles the answer to `request`, sent at `sent`.
    pub(crate) async fn run(
        self,
        request: ContextRequest,
        sent: tokio::time::Instant,
    ) -> Result<ContextAnswer> {
        let plan = self.plan(&request, sent)?;
        let mut scattered = self.scatter_gather(&request, &plan).await?;
        // The last stage is timed from the time kept for gathering, or from the end of
        // the gathering when that came first, or when no tier had answered by then (the
        // wait for the first one is not the last stage's).
        let now = tokio::time::Instant::now();
        let gathered = match scattered.first_answer {
            Some(first) if first <= plan.gather_by => now.min(plan.gather_by),
            _ => now,
        };
        let candidates = self.expand_neighbours(&mut scattered);
        let answer = self.rank_and_render(plan, scattered, candidates).await;
        self.reserve.record(gathered.elapsed());
        answer
    }

    /// The deadline and limits of `request`; refuses one that waited in the mailbox
    /// past its deadline without asking any tier.
    fn plan(&self, request: &ContextRequest, sent: tokio::time::Instant) -> Result<Plan> {
        let started = Instant::now();
        let queued = sent.elapsed();
        let budget = request
            .deadline
            .unwrap_or(Duration::from_millis(self.config.default_deadline_ms));
        // Keep a slice of the deadline for ranking and rendering.
        let gather_by = sent + budget.saturating_sub(self.reserve.of(budget));
        let deadline = sent + budget.saturating_sub(Reserve::floor(budget));
        if tokio::time::Instant::now() >= deadline {
            ::metrics::counter!(metrics::CONTEXT_EXPIRED_IN_QUEUE_TOTAL).increment(1);
            return Err(Error::Deadline(format!(
                "the request waited {} ms for the context assembler, past its {} ms deadline",
                sent.elapsed().as_millis(),
                budget.as_millis()
            )));
        }
        let now = self.clock.now();
        Ok(Plan {
            started,
            queued,
            budget,
            gather_by,
            deadline,
            max_recent: request.max_recent.unwrap_or(self.config.max_recent),
            max_items: request.max_items.unwrap_or(self.config.max_items),
            token_budget: request.token_budget.unwrap_or(self.config.token_budget),
            now,
            recency: Recency {
                now,
                half_life: Duration::from_secs_f64(
                    self.config.recency_half_life_hours.max(0.001) * 3600.0,
                ),
            },
        })
    }

    /// Asks every tier at once, each under the deadline, and gathers what came back in
    /// time. Fails only when no tier answered.
    async fn scatter_gather(&self, request: &ContextRequest, plan: &Plan) -> Result<Scattered> {
        let s = &self.sources;
        let scope = &request.scope;
        let has_query = !request.query.trim().is_empty();
        // Whether the recent tier failed: its turns then come from the archive, and the
        // tier is still named in `degraded`.
        let recent_failed = AtomicBool::new(false);
        let gathering = Gathering::new(plan);
        let recent = timed(
            "recent",
            request.session.is_some(),
            &gathering,
            self.recent_turns(request, plan, &recent_failed),
        );
        let index = async {
            let index = timed("index", has_query, &gathering, async {
                if !has_query {
                    return Ok(Vec::new());
                }
                let limit = (plan.max_items * 3).max(10);
                s.index
                    .search(
                        scope.clone(),
                        SearchQuery::new(request.query.clone(), limit),
                    )
                    .await
            })
            .await;
            // Started at once, not after the slowest of the other tiers.
            let details = match &index.value {
                Some(hits) => self.hit_details(request, &gathering, hits).await,
                None => None,
            };
            (index, details)
        };
        let graph = timed("graph", s.graph.is_some(), &gathering, async {
            let Some(graph) = &s.graph else {
                return Ok(ContextEntities::default());
            };
            // The entities the query names, with their weights, and the user's top few.
            let names = query_names(&request.query);
            graph
                .context_entities(scope.clone(), plan.recency, names, 5)
                .await
        });
        let emotion = timed(
            "emotion",
            true,
            &gathering,
            s.archive.emotion_state(scope.clone()),
        );
        let (recent, (index, hit_details), graph, emotion) =
            tokio::join!(recent, index, graph, emotion);

        let mut timings = BTreeMap::new();
        let mut degraded = Vec::new();
        let asked: Vec<TierReport> = [recent.report, index.report, emotion.report, graph.report]
            .into_iter()
            .filter(|r| r.asked)
            .collect();
        for report in &asked {
            timings.insert(report.tier.to_owned(), report.ms);
            if !report.answered {
                degraded.push(report.tier.to_owned());
            }
        }
        // With nothing from any tier there is nothing to answer: a deadline error when
        // some tier was late, else the tiers are down.
        if !asked.iter().any(|r| r.answered) {
            return Err(if asked.iter().any(|r| r.late) {
                Error::Deadline(format!(
                    "no tier answered within {} ms",
                    plan.budget.as_millis()
                ))
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
        let first_answer = *gathering.first_answer.borrow();
        Ok(Scattered {
            first_answer,
            recent: recent.value.unwrap_or_default(),
            hits: index.value.unwrap_or_default(),
            hit_details,
            entities: graph.value.unwrap_or_default(),
            emotion: emotion.value.flatten(),
            timings,
            degraded,
        })
    }

    /// The session's last turns: from the recent tier, or from the archive on a miss, a
    /// gap or a recent tier that is down. After a miss the session is refilled off the
    /// request path.
    async fn recent_turns(
        &self,
        request: &ContextRequest,
        plan: &Plan,
        recent_failed: &AtomicBool,
    ) -> Result<Vec<Turn>> {
        let s = &self.sources;
        let Some(session) = request.session.clone() else {
            return Ok(Vec::new());
        };
        let scope = &request.scope;
        // A session the recent tier missed a write for is read from the archive; the
        // tier is still asked, only to learn whether it is up.
        let gap = s.gaps.mark(scope, &session);
        let cached = s
            .recent
            .recent(
                scope.clone(),
                session.clone(),
                plan.max_recent,
                Order::OldestFirst,
            )
            .await;
        if let (Ok(Some(turns)), None) = (&cached, gap) {
            return Ok(turns.clone());
        }
        let up = cached.is_ok();
        if !up {
            recent_failed.store(true, Ordering::Relaxed);
        }
        let fill = plan.max_recent.max(self.recent_fill);
        let page = HistoryPage {
            before: None,
            limit: fill,
        };
        let mut turns = s
            .archive
            .history(scope.clone(), session.clone(), page)
            .await?;
        turns.reverse();
        if up {
            // Warm the cache for the next request, off this one's path.
            let refill = Refill {
                recent: s.recent.clone(),
                archive: s.archive.clone(),
                gaps: s.gaps.clone(),
                ticket: s.refills.start(),
                scope: scope.clone(),
                session,
                turns: turns.clone(),
                gap,
                faults: s.faults.clone(),
            };
            tokio::spawn(refill.run());
        }
        let skip = turns.len().saturating_sub(plan.max_recent);
        Ok(turns.split_off(skip))
    }

    /// The hit turns' details (importance, emotion, speaker) and, unless switched off,
    /// their session neighbours (the turn after a matching question is usually its
    /// answer), from the archive in one read; `None` when no hit is a turn.
    async fn hit_details(
        &self,
        request: &ContextRequest,
        gathering: &Gathering,
        hits: &[SearchHit],
    ) -> Option<(TierReport, Option<Vec<Turn>>)> {
        let turn_ids: Vec<TurnId> = hits.iter().filter_map(|h| h.turn_id()).collect();
        if turn_ids.is_empty() {
            return None;
        }
        let archive = &self.sources.archive;
        let scope = request.scope.clone();
        let read = timed("archive", true, gathering, async {
            if self.expands_neighbours() {
                archive.turns_around(scope, turn_ids).await
            } else {
                archive.get_turns(scope, turn_ids).await
            }
        })
        .await;
        Some((read.report, read.value))
    }

    fn expands_neighbours(&self) -> bool {
        self.config.neighbour_next > 0.0 || self.config.neighbour_previous > 0.0
    }

    /// The index hits as ranking candidates with their turns' details, their session
    /// neighbours lifted.
    fn expand_neighbours(&self, scattered: &mut Scattered) -> Vec<Candidate> {
        let hits = std::mem::take(&mut scattered.hits);
        let turn_ids: Vec<TurnId> = hits.iter().filter_map(|h| h.turn_id()).collect();
        let expand = self.expands_neighbours();
        let mut details: HashMap<i64, Turn> = HashMap::new();
        if let Some((report, turns)) = scattered.hit_details.take() {
            let tier = report.tier.to_owned();
            scattered.timings.insert(tier.clone(), report.ms);
            match turns {
                Some(turns) => details.extend(turns.into_iter().map(|t| (t.id.0, t))),
                None => scattered.degraded.push(tier),
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
        candidates
    }

    /// Ranks, cuts and renders on the assembler's thread, and builds the answer.
    async fn rank_and_render(
        &self,
        plan: Plan,
        scattered: Scattered,
        candidates: Vec<Candidate>,
    ) -> Result<ContextAnswer> {
        let rank_started = Instant::now();
        let Scattered {
            recent,
            entities: ContextEntities { matched, top },
            emotion,
            mut timings,
            degraded,
            ..
        } = scattered;
        let entities: Vec<RankedEntity> = {
            let mut all = matched.clone();
            for e in &top {
                if !all.iter().any(|m| m.entity.id == e.entity.id) {
                    all.push(e.clone());
                }
            }
            all
        };
        let config = self.config.clone();
        let bpe = self.bpe.clone();
        let emotion_for_render = emotion.clone();
        let Plan {
            max_items,
            token_budget,
            now,
            ..
        } = plan;
        let rank_and_render = move || {
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
        };
        let rendered = self.worker.run(rank_and_render).await?;
        timings.insert("rank".into(), rank_started.elapsed().as_secs_f64() * 1000.0);
        timings.insert("queued".into(), plan.queued.as_secs_f64() * 1000.0);
        timings.insert(
            "total".into(),
            plan.started.elapsed().as_secs_f64() * 1000.0,
        );
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::{sleep, Instant};

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Gathering until 20 ms from now, a tier waited for until 40 ms while none answered.
    fn gathering() -> Gathering {
        let now = Instant::now();
        Gathering {
            gather_by: now + 20 * MS,
            deadline: now + 40 * MS,
            first_answer: tokio::sync::watch::Sender::new(None),
        }
    }

    async fn answer_after(ms: u64) -> Result<u64> {
        sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    }

    #[tokio::test(start_paused = true)]
    async fn a_tier_later_than_the_gathering_is_left_out_once_another_answered() {
        let g = gathering();
        let started = Instant::now();
        let (fast, slow) = tokio::join!(
            timed("fast", true, &g, answer_after(10)),
            timed("slow", true, &g, answer_after(30)),
        );
        assert_eq!(fast.value, Some(10));
        assert!(slow.value.is_none() && slow.report.late);
        assert_eq!(
            started.elapsed(),
            20 * MS,
            "given up at the end of the gathering"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_answer_by_then_the_first_tier_to_answer_is_waited_for() {
        let g = gathering();
        let started = Instant::now();
        let (first, second, unasked) = tokio::join!(
            timed("first", true, &g, answer_after(30)),
            timed("second", true, &g, answer_after(35)),
            // A tier the request did not need answers at once, and does not count.
            timed("unasked", false, &g, answer_after(0)),
        );
        assert_eq!(first.value, Some(30));
        assert_eq!(unasked.value, Some(0));
        assert!(second.value.is_none() && second.report.late);
        assert_eq!(
            started.elapsed(),
            30 * MS,
            "the rest given up once one answered"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_tier_is_waited_for_past_the_deadline() {
        let g = gathering();
        let started = Instant::now();
        let late = timed("late", true, &g, answer_after(100)).await;
        assert!(late.value.is_none() && late.report.late);
        assert_eq!(started.elapsed(), 40 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_tier_is_not_an_answer() {
        let g = gathering();
        let started = Instant::now();
        let (failed, slow) = tokio::join!(
            timed("failed", true, &g, async {
                Err::<u64, _>(Error::Internal("down".into()))
            }),
            timed("slow", true, &g, answer_after(30)),
        );
        assert!(failed.value.is_none() && !failed.report.late);
        assert_eq!(slow.value, Some(30));
        assert_eq!(started.elapsed(), 30 * MS);
    }
}
