//! A write counter per user: any write that can change a user's context answer (a new
//! turn, processed results, a forget) bumps it, and cached answers carry the counter
//! they were computed at, so a stale answer is never served.

use std::collections::HashMap;

use mnemo_storage::model::Scope;
use parking_lot::Mutex;

/// Write counters per user.
#[derive(Debug, Default)]
pub struct Generations {
    counters: Mutex<HashMap<Scope, u64>>,
}

impl Generations {
    /// The user's counter now.
    pub fn current(&self, scope: &Scope) -> u64 {
        self.counters.lock().get(scope).copied().unwrap_or(0)
    }

    /// Records a write for the user.
    pub fn bump(&self, scope: &Scope) {
        *self.counters.lock().entry(scope.clone()).or_default() += 1;
    }

    /// Records a write for each user of `scopes`.
    pub fn bump_all<'a>(&self, scopes: impl IntoIterator<Item = &'a Scope>) {
        let mut counters = self.counters.lock();
        for scope in scopes {
            *counters.entry(scope.clone()).or_default() += 1;
        }
    }
}
