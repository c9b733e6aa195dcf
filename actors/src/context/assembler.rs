//! The context assembler actor and its messages. For each request it asks every tier it
//! needs in parallel, each under the request's deadline, gathers what came back in time,
//! and ranks, cuts and renders it on its own thread ([`super::assembly`]). A tier that is
//! late or down is left out and named in `degraded`. Each tier is asked at most once per
//! request; identical requests are answered from a per-user cache until the next write
//! for that user.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::AsyncContext;

use mnemo_storage::clock::SharedClock;
use mnemo_storage::graph::RankedEntity;
use mnemo_storage::model::{EmotionState, Scope, SessionId, Turn};
use serde::{Deserialize, Serialize};

use super::answer_cache::{self, AnswerCache};
use super::assembly::{Assembly, Sources};
use super::generations::Generations;
use super::ranking::ContextItem;
use super::reserve::Reserve;
use super::tokens::TokenCounter;
use crate::config::ContextConfig;
use crate::error::Result;
use crate::metrics;
use crate::runtime::worker::Worker;
use crate::runtime::{Behaviour, Child, ChildContext, Handles, Responder};

/// The assembler's name.
pub const NAME: &str = "context";

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

/// The context assembler's behaviour.
pub struct ContextAssembler {
    sources: Sources,
    config: ContextConfig,
    recent_fill: usize,
    bpe: Arc<TokenCounter>,
    generations: Arc<Generations>,
    cache: Arc<AnswerCache>,
    clock: SharedClock,
    worker: Arc<Worker>,
    reserve: Arc<Reserve>,
    /// How often to read the recent-tier gaps other nodes marked (`None`: alone).
    follow_gaps: Option<Duration>,
}

impl ContextAssembler {
    /// An assembler over `sources`. `recent_fill` is how many turns to load into the
    /// recent tier after a miss.
    pub fn new(
        sources: Sources,
        config: ContextConfig,
        recent_fill: usize,
        bpe: Arc<TokenCounter>,
        generations: Arc<Generations>,
        clock: SharedClock,
    ) -> Result<Self> {
        Ok(Self {
            sources,
            cache: Arc::new(AnswerCache::new(config.cache_entries)),
            worker: Arc::new(Worker::start_threads(NAME, config.rank_threads)?),
            reserve: Arc::new(Reserve::default()),
            config,
            recent_fill,
            bpe,
            generations,
            clock,
            follow_gaps: None,
        })
    }

    /// Reads the recent-tier gaps in the archive every `every` (other nodes mark them
    /// when a write to the shared recent tier fails on their side).
    pub fn follow_gaps(mut self, every: Option<Duration>) -> Self {
        self.follow_gaps = every;
        self
    }

    fn read_gaps(&self, ctx: &mut ChildContext<Self>) {
        let (archive, gaps) = (self.sources.archive.clone(), self.sources.gaps.clone());
        ctx.spawn(actix::fut::wrap_future::<_, Child<Self>>(async move {
            // A failed read is the next one's to retry.
            if let Ok(marked) = archive.recent_gaps().await {
                gaps.load(marked);
            }
        }));
    }
}

impl Behaviour for ContextAssembler {
    fn serving(&mut self, ctx: &mut ChildContext<Self>) {
        // A restart starts from an empty cache.
        self.cache.clear();
        if let Some(every) = self.follow_gaps {
            ctx.run_interval(every, |child, ctx| child.behaviour().read_gaps(ctx));
        }
    }
}

impl Handles<AssembleContext, ContextAnswer> for ContextAssembler {
    fn handle(
        &mut self,
        AssembleContext { request, sent }: AssembleContext,
        reply: Responder<Self, ContextAnswer>,
        _: &mut ChildContext<Self>,
    ) {
        let key = answer_cache::key_of(&request, &self.config);
        let generation = self.generations.current(&request.scope);
        if let Some(mut answer) = self.cache.get(&key, generation) {
            ::metrics::counter!(metrics::CONTEXT_CACHE_HITS_TOTAL).increment(1);
            answer.cached = true;
            answer.timings_ms = BTreeMap::from([("cache".to_owned(), 0.0)]);
            return reply.serve(async move { Ok(answer) });
        }
        ::metrics::counter!(metrics::CONTEXT_CACHE_MISSES_TOTAL).increment(1);
        let assembly = Assembly {
            sources: self.sources.clone(),
            config: self.config.clone(),
            recent_fill: self.recent_fill,
            bpe: self.bpe.clone(),
            clock: self.clock.clone(),
            worker: self.worker.clone(),
            reserve: self.reserve.clone(),
        };
        let cache = self.cache.clone();
        let generations = self.generations.clone();
        // On the caller's runtime: the assembly and the tier reads it makes run on the
        // threads serving requests, not queued behind the actor thread's other work.
        reply.serve_for_caller(async move {
            let answer = assembly.run(request, sent).await?;
            // Only complete answers are reused, and only if no write came meanwhile.
            if answer.degraded.is_empty() && generations.current(&key.0) == generation {
                cache.put(key, generation, answer.clone());
            }
            Ok(answer)
        });
    }
}
