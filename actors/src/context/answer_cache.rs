//! Context answers cached per user, valid while the user's write counter
//! ([`super::generations::Generations`]) is unchanged: any write that can change an
//! answer (a new turn, processed results, a forget) makes every cached answer of that
//! user stale.

use std::num::NonZeroUsize;

use lru::LruCache;
use mnemo_storage::model::{Scope, SessionId};
use parking_lot::Mutex;

use super::assembler::{ContextAnswer, ContextRequest};
use crate::config::ContextConfig;

/// What identifies an answer: the user, the session, the query and the limits.
pub(crate) type CacheKey = (Scope, Option<SessionId>, String, usize, usize, usize);

/// The key of `request` with the configured defaults filled in.
pub(crate) fn key_of(request: &ContextRequest, config: &ContextConfig) -> CacheKey {
    (
        request.scope.clone(),
        request.session.clone(),
        request.query.clone(),
        request.max_recent.unwrap_or(config.max_recent),
        request.max_items.unwrap_or(config.max_items),
        request.token_budget.unwrap_or(config.token_budget),
    )
}

/// Answers, each with the write counter it was computed at.
#[derive(Debug)]
pub(crate) struct AnswerCache {
    entries: Mutex<LruCache<CacheKey, (u64, ContextAnswer)>>,
}

impl AnswerCache {
    /// A cache of at most `capacity` answers.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// The answer for `key` if it was computed at `generation`.
    pub(crate) fn get(&self, key: &CacheKey, generation: u64) -> Option<ContextAnswer> {
        match self.entries.lock().get(key) {
            Some((g, answer)) if *g == generation => Some(answer.clone()),
            _ => None,
        }
    }

    /// Keeps `answer`, computed at `generation`.
    pub(crate) fn put(&self, key: CacheKey, generation: u64, answer: ContextAnswer) {
        self.entries.lock().put(key, (generation, answer));
    }

    /// Forgets every answer.
    pub(crate) fn clear(&self) {
        self.entries.lock().clear();
    }
}
