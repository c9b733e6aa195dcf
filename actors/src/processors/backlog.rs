//! How far the processors are behind the archive: turns stored that the slowest running
//! processor has not handled yet. Past a configured bound the archive refuses new writes
//! (busy, retry later) instead of letting the backlog grow: new turns would otherwise
//! wait ever longer to become searchable while the engine still looked healthy.

use std::sync::Arc;

use mnemo_storage::model::TurnId;
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::error::{Error, Result};

/// The backlog of one engine.
#[derive(Debug)]
pub struct Backlog {
    head: watch::Receiver<TurnId>,
    checkpoints: RwLock<Vec<watch::Receiver<TurnId>>>,
    limit: u64,
}

impl Backlog {
    /// The backlog behind the archive head `head`; writes are refused past `limit` turns
    /// (0: never).
    pub fn new(head: watch::Receiver<TurnId>, limit: u64) -> Arc<Self> {
        Arc::new(Self {
            head,
            checkpoints: RwLock::new(Vec::new()),
            limit,
        })
    }

    /// Counts the processor whose checkpoint is `progress`.
    pub fn follow(&self, progress: watch::Receiver<TurnId>) {
        self.checkpoints.write().push(progress);
    }

    /// Turns stored that the slowest processor has not handled (0 with no processor).
    pub fn turns(&self) -> u64 {
        let head = *self.head.borrow();
        let slowest = self.checkpoints.read().iter().map(|c| *c.borrow()).min();
        slowest.map_or(0, |slowest| (head.0 - slowest.0).max(0) as u64)
    }

    /// The bound (0: none).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether writes are refused now.
    pub fn is_over(&self) -> bool {
        self.limit > 0 && self.turns() >= self.limit
    }

    /// Whether `adding` more turns may be written, counting `pending` already accepted
    /// and not yet committed.
    pub fn admit(&self, adding: usize, pending: usize) -> Result<()> {
        if self.limit == 0 {
            return Ok(());
        }
        let behind = self.turns();
        if behind + (adding + pending) as u64 > self.limit && behind > 0 {
            return Err(Error::Behind {
                behind,
                limit: self.limit,
            });
        }
        Ok(())
    }

    /// Waits until the backlog is under half its bound, so a bulk writer resumes with
    /// room to spare.
    pub async fn wait_room(&self) {
        loop {
            if self.limit == 0 || self.turns() < self.limit / 2 {
                return;
            }
            let mut checkpoints = self.checkpoints.read().clone();
            if checkpoints.is_empty() {
                return;
            }
            let changes: Vec<_> = checkpoints
                .iter_mut()
                .map(|c| Box::pin(c.changed()))
                .collect();
            if futures_util::future::select_all(changes).await.0.is_err() {
                // A processor stopped for good (shutdown): nothing will make room.
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_are_refused_past_the_bound_until_the_slowest_processor_catches_up() {
        let (head_tx, head) = watch::channel(TurnId(0));
        let backlog = Backlog::new(head, 100);
        let (fast_tx, fast) = watch::channel(TurnId(0));
        let (slow_tx, slow) = watch::channel(TurnId(0));
        backlog.follow(fast);
        backlog.follow(slow);
        head_tx.send_replace(TurnId(150));
        fast_tx.send_replace(TurnId(150));
        slow_tx.send_replace(TurnId(40));
        assert_eq!(backlog.turns(), 110);
        assert!(backlog.is_over());
        let refused = backlog.admit(1, 0).expect_err("110 behind, bound 100");
        assert!(
            matches!(
                refused,
                Error::Behind {
                    behind: 110,
                    limit: 100
                }
            ),
            "{refused:?}"
        );
        assert!(refused.is_retryable());

        let waiting = tokio::spawn({
            let backlog = backlog.clone();
            async move { backlog.wait_room().await }
        });
        slow_tx.send_replace(TurnId(80));
        assert!(!backlog.is_over());
        slow_tx.send_replace(TurnId(120));
        waiting
            .await
            .expect("room: 30 behind, under half the bound");
        backlog.admit(10, 5).expect("room for 15 more");
        assert!(backlog.admit(71, 0).is_err(), "30 + 71 is past 100");
    }
}
