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
        if self.limit == 0 {
            return;
        }
        let mut checkpoints = self.checkpoints.read().clone();
        if checkpoints.is_empty() {
            return;
        }
        loop {
            // Seen before the check, so only a checkpoint that moves after it wakes the
            // wait below (a clone remembers what its original saw: waiting on fresh clones
            // each round returned at once, and bulk writers spun on the cores the
            // processors needed).
            for checkpoint in &mut checkpoints {
                checkpoint.borrow_and_update();
            }
            if self.turns() < self.limit / 2 {
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

    /// Counts the wakes of the task it stands for.
    #[derive(Default)]
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl futures_util::task::ArcWake for Wakes {
        fn wake_by_ref(wakes: &Arc<Self>) {
            wakes.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn a_writer_waiting_for_room_sleeps_until_a_processor_moves() {
        use std::future::Future;
        use std::sync::atomic::Ordering;
        use std::task::Context;

        let (head_tx, head) = watch::channel(TurnId(0));
        let backlog = Backlog::new(head, 100);
        let (slow_tx, slow) = watch::channel(TurnId(0));
        backlog.follow(slow);
        head_tx.send_replace(TurnId(150));
        // Moved before anyone waits: what the backlog's own receiver has not seen.
        slow_tx.send_replace(TurnId(10));
        // Polled by hand on a thread of its own: a wait that spins never returns from a
        // poll, and the guard below says so instead of hanging.
        let (done, polls) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let wakes = Arc::new(Wakes::default());
            let waker = futures_util::task::waker(wakes.clone());
            let mut cx = Context::from_waker(&waker);
            let mut waiting = Box::pin(backlog.wait_room());
            let mut outcomes = vec![waiting.as_mut().poll(&mut cx).is_pending()];
            slow_tx.send_replace(TurnId(40));
            outcomes.push(wakes.0.load(Ordering::SeqCst) == 1);
            // 110 behind: still no room, and nothing wakes it until a processor moves.
            outcomes.push(waiting.as_mut().poll(&mut cx).is_pending());
            outcomes.push(wakes.0.load(Ordering::SeqCst) == 1);
            slow_tx.send_replace(TurnId(120));
            outcomes.push(waiting.as_mut().poll(&mut cx).is_ready());
            let _ = done.send(outcomes);
        });
        let outcomes = polls
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("every poll of the wait returns");
        assert_eq!(
            outcomes,
            vec![true; 5],
            "pending, woken once, pending, not woken again, ready"
        );
    }
}
