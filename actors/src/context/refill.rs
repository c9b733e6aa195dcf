//! Refilling one session of the recent tier from an archive read, after the context
//! answer that read it has gone out. It only warms the cache: a failure is counted and
//! the next read misses again. Turns pushed while it runs are not lost (`fill` merges
//! them), and a write the tier missed after the archive read keeps its gap mark.

use std::sync::Arc;

use mnemo_storage::archive::RecentGap;
use mnemo_storage::model::{Scope, SessionId, Turn, TurnId};

use crate::metrics;
use crate::runtime::faults::Faults;
use crate::tiers::recent::{RecentGaps, RefillTicket};
use crate::tiers::{ArchiveTier, RecentTier};

/// The name a test holds refills by ([`Faults`]): each waits on it before it starts.
pub const FAULT_NAME: &str = "refill";

/// One refill, ready to run.
pub(crate) struct Refill {
    pub(crate) recent: RecentTier,
    /// Where the gap marks are kept for every node and restart.
    pub(crate) archive: ArchiveTier,
    pub(crate) gaps: Arc<RecentGaps>,
    /// Counts this refill as under way until it is done.
    pub(crate) ticket: RefillTicket,
    pub(crate) scope: Scope,
    pub(crate) session: SessionId,
    pub(crate) turns: Vec<Turn>,
    /// The session's gap mark when the archive was read.
    pub(crate) gap: Option<TurnId>,
    pub(crate) faults: Arc<Faults>,
}

impl Refill {
    pub(crate) async fn run(self) {
        self.faults.before(FAULT_NAME).await;
        let filled = self
            .recent
            .fill(self.scope.clone(), self.session.clone(), self.turns)
            .await;
        match filled {
            Ok(()) => {
                if let Some(stamp) = self.gap {
                    let gap = RecentGap {
                        scope: self.scope.clone(),
                        session: self.session.clone(),
                        stamp,
                    };
                    // The archive's mark first: if clearing it fails, the session stays
                    // marked here too and the next read refills it again.
                    let cleared = if self.gaps.in_archive() {
                        self.archive.clear_recent_gap(gap).await
                    } else {
                        Ok(())
                    };
                    match cleared {
                        Ok(()) => self.gaps.clear(&self.scope, &self.session, stamp),
                        Err(e) => tracing::debug!(
                            error = %e,
                            "clearing a recent-tier gap in the archive failed"
                        ),
                    }
                }
            }
            Err(e) => {
                ::metrics::counter!(metrics::RECENT_REFILL_FAILURES_TOTAL).increment(1);
                tracing::debug!(error = %e, "refilling a session of the recent tier failed");
            }
        }
        drop(self.ticket);
    }
}
