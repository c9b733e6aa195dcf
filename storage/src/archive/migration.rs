//! The archive's side of `mnemo migrate`: storing another archive's turns and summaries
//! with their own ids, in batches that each commit with a record of how far the copy
//! got and what it wrote, so an interrupted migration resumes and a rollback removes
//! exactly what it wrote.
//!
//! A migration is named after its source (and user filter); the record lives in the
//! target archive (tables `migrations` and `migrated_ranges`). Implemented once for every
//! SQL dialect in [`super::sql`].

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Scope, Summary, SummaryId, Timestamp, Turn, TurnId};

/// A migration as the target archive records it.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationRecord {
    /// Its name: the source and the user filter.
    pub name: String,
    /// Source turns up to this id are copied.
    pub copied_turns: TurnId,
    /// Source summaries up to this id are copied.
    pub copied_summaries: SummaryId,
    /// The graph is built from the copied turns up to this id.
    pub graph_done: TurnId,
    /// The target's head before the migration.
    pub head_before: TurnId,
    /// The target's highest summary id before the migration.
    pub summary_before: SummaryId,
    /// The target's processor checkpoints before the migration.
    pub checkpoints_before: BTreeMap<String, TurnId>,
    /// When it first started.
    pub started: Timestamp,
    /// When it last finished, if it ever did.
    pub finished: Option<Timestamp>,
}

impl MigrationRecord {
    /// Whether the target held nothing when the migration started: then the source's
    /// processor checkpoints hold for the target as they are.
    pub fn target_was_empty(&self) -> bool {
        self.head_before.0 == 0
    }
}

/// A user whose turns a migration wrote, and how many turns the user has in all now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigratedUser {
    /// The user.
    pub scope: Scope,
    /// Turns of the user the migration wrote (still stored).
    pub migrated: u64,
    /// Turns of the user stored in all.
    pub total: u64,
}

/// What a rollback removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackReport {
    /// Turns removed.
    pub turns: u64,
    /// Summaries removed.
    pub summaries: u64,
    /// Users left with no turn, whose emotion state went with them.
    pub emptied_users: u64,
}

/// An archive that migrations copy into.
#[async_trait]
pub trait MigrationTarget {
    /// The record of the migration named `name`, if one ever started here.
    async fn migration(&self, name: &str) -> Result<Option<MigrationRecord>>;

    /// Records the migration `name` as started (reading this archive's counters and
    /// checkpoints as they are before it), or answers its record if it started before.
    async fn begin_migration(&self, name: &str, now: Timestamp) -> Result<MigrationRecord>;

    /// Every processor's checkpoint.
    async fn checkpoints(&self) -> Result<BTreeMap<String, TurnId>>;

    /// Why `turns` and `summaries` cannot be copied here by the migration `name`, one
    /// line each (empty: they can): an id, or a user's external id or summary range,
    /// already stored and not written by this migration. Writes nothing.
    async fn copy_conflicts(
        &self,
        name: &str,
        turns: &[Turn],
        summaries: &[Summary],
    ) -> Result<Vec<String>>;

    /// Stores `turns` as they are (ids, times, annotations) in one transaction with the
    /// record of what was written and `copied` as the migration's progress; turns this
    /// migration wrote before are skipped. Refused, writing nothing, on a conflict (see
    /// [`Self::copy_conflicts`]). Answers how many turns were written.
    async fn copy_turns(&self, name: &str, turns: &[Turn], copied: TurnId) -> Result<u64>;

    /// As [`Self::copy_turns`], for summaries.
    async fn copy_summaries(
        &self,
        name: &str,
        summaries: &[Summary],
        copied: SummaryId,
    ) -> Result<u64>;

    /// Records that the graph is built from the copied turns up to `done`.
    async fn set_migration_graph_done(&self, name: &str, done: TurnId) -> Result<()>;

    /// Ends the migration: raises this archive's counters to the source's (`head`,
    /// `summary`), so it never hands out a copied id again, and sets each processor's
    /// checkpoint to where the source's stands, when this archive was empty before, or
    /// else to the lower of the two (processors are idempotent per turn, so turns seen
    /// again change nothing).
    async fn finish_migration(
        &self,
        name: &str,
        head: TurnId,
        summary: SummaryId,
        checkpoints: &BTreeMap<String, TurnId>,
        now: Timestamp,
    ) -> Result<()>;

    /// The users whose turns the migration wrote.
    async fn migrated_users(&self, name: &str) -> Result<Vec<MigratedUser>>;

    /// Up to `limit` turns the migration wrote with an id above `after`, in id order, as
    /// (user, id).
    async fn migrated_turns(
        &self,
        name: &str,
        after: TurnId,
        limit: usize,
    ) -> Result<Vec<(Scope, TurnId)>>;

    /// Removes, in one transaction, every turn and summary the migration wrote, the
    /// emotion state of each user left with no turn, and the migration's record; puts
    /// the processor checkpoints back to at most where they were before it, and the
    /// counters back to where they were when nothing newer is stored.
    async fn rollback_migration(&self, name: &str) -> Result<RollbackReport>;
}

/// Runs of consecutive ids in `ids` (sorted, distinct), as (first, last).
pub fn id_runs(ids: &[i64]) -> Vec<(i64, i64)> {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &id in ids {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == id => *last = id,
            _ => runs.push((id, id)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::id_runs;

    #[test]
    fn runs_of_consecutive_ids() {
        assert_eq!(id_runs(&[]), vec![]);
        assert_eq!(id_runs(&[4]), vec![(4, 4)]);
        assert_eq!(id_runs(&[1, 2, 3, 7, 9, 10]), vec![(1, 3), (7, 7), (9, 10)]);
    }
}
