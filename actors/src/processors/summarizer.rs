//! The summarizer: gathers each session's new turns and writes an extractive summary
//! every N turns, and of what is pending when a session has gone idle. Summaries go to
//! the archive and the index.
//!
//! What is pending lives in memory as turn ids only: the turns themselves are in the
//! archive, and an engine with many open sessions would otherwise hold a copy of each
//! one's unsummarised turns. They are read back when a window is summarised. After a
//! restart the pending ids are rebuilt from the archive (the session's turns after its
//! last summary), and a summary of the same turn range is replaced, not duplicated, so
//! replaying the outbox is harmless.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use mnemo_storage::archive::HistoryPage;
use mnemo_storage::index::IndexDoc;
use mnemo_storage::model::{Forget, NewSummary, Scope, SessionId, Timestamp, Turn, TurnId};
use parking_lot::Mutex;

use super::tombstones::Guard;
use super::{Processor, Step};
use crate::analysis::extractive_summary::summarize;
use crate::config::SummarizerConfig;
use crate::error::Result;

/// Checkpoint key and actor name.
pub const NAME: &str = "summarizer";

type SessionKey = (Scope, SessionId);

/// Most sessions whose pending windows are rebuilt at a start.
const RECOVER_SESSIONS: usize = 100_000;

#[derive(Debug, Default)]
struct PendingSession {
    /// Ids of the turns not yet summarised, in id order.
    turns: Vec<TurnId>,
    /// Ingest time of the newest of them.
    last_activity: Option<Timestamp>,
}

/// The summarizer.
#[derive(Debug)]
pub struct Summarizer {
    config: SummarizerConfig,
    pending: Mutex<HashMap<SessionKey, PendingSession>>,
}

impl Summarizer {
    /// A summarizer with the given cadence and sizes.
    pub fn new(config: SummarizerConfig) -> Self {
        Self {
            config,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Rebuilds a session's pending turn ids from the archive: those after its last
    /// summary and before `before`.
    async fn load(&self, step: &Step, key: &SessionKey, before: TurnId) -> Result<Vec<TurnId>> {
        let archive = &step.deps.archive;
        let last = archive
            .summaries(key.0.clone(), Some(key.1.clone()), 1)
            .await?
            .first()
            .map_or(TurnId(0), |s| s.last_turn);
        let turns = archive
            .history(
                key.0.clone(),
                key.1.clone(),
                HistoryPage {
                    before: Some(before),
                    limit: self.config.every_turns.max(1),
                },
            )
            .await?;
        let mut ids: Vec<TurnId> = turns.iter().map(|t| t.id).filter(|id| *id > last).collect();
        ids.reverse();
        Ok(ids)
    }

    /// Summarises the window of turns `ids` of a session, reading them from the archive.
    async fn write(
        &self,
        step: &Step,
        key: &SessionKey,
        ids: Vec<TurnId>,
        guard: &Guard<'_>,
    ) -> Result<bool> {
        if ids.is_empty() {
            return Ok(false);
        }
        // In id order; a turn forgotten since it was pending is absent, and the guard
        // drops one whose forget is still being applied.
        let mut turns = step.deps.archive.get_turns(key.0.clone(), ids).await?;
        turns.retain(|t| guard.keeps(t));
        let (Some(first), Some(last)) = (turns.first(), turns.last()) else {
            return Ok(false);
        };
        let (first_turn, last_turn) = (first.id, last.id);
        let (start_time, end_time) = (first.event_time, last.event_time);
        let (max_sentences, max_chars) = (self.config.max_sentences, self.config.max_chars);
        let summary = step
            .worker
            .run(move || summarize(&turns, max_sentences, max_chars))
            .await?;
        let Some(summary) = summary else {
            return Ok(false);
        };
        let stored = match step
            .deps
            .archive
            .put_summary(NewSummary {
                scope: key.0.clone(),
                session_id: key.1.clone(),
                first_turn,
                last_turn,
                text: summary.text,
                keywords: summary.keywords,
                start_time,
                end_time,
            })
            .await
        {
            Ok(stored) => stored,
            // A summary the archive refuses is skipped, not retried forever.
            Err(e) if e.kind() == crate::error::ErrorKind::InvalidInput => return Ok(false),
            // Its turns were forgotten since they were read: nothing to summarise.
            Err(e) if e.kind() == crate::error::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        step.deps
            .index
            .add(vec![IndexDoc::from_summary(&stored)])
            .await?;
        Ok(true)
    }

    /// Rebuilds the pending windows of the sessions active among the last
    /// `recover_turns` turns before `checkpoint`: what was pending in memory before a
    /// restart, or on the node that ran the summarizer before this one took over.
    async fn recover(&self, step: &Step, checkpoint: TurnId) -> Result<()> {
        let lookback = i64::try_from(self.config.recover_turns).unwrap_or(i64::MAX);
        if lookback == 0 || checkpoint.0 == 0 {
            return Ok(());
        }
        let after = TurnId(checkpoint.0.saturating_sub(lookback).max(0));
        let sessions = step
            .deps
            .archive
            .sessions_between(after, checkpoint, RECOVER_SESSIONS)
            .await?;
        let mut recovered = 0;
        for (scope, session, last_activity) in sessions {
            let key = (scope, session);
            if self.pending.lock().contains_key(&key) {
                continue;
            }
            let turns = self.load(step, &key, TurnId(checkpoint.0 + 1)).await?;
            if turns.is_empty() {
                continue;
            }
            recovered += 1;
            self.pending.lock().insert(
                key,
                PendingSession {
                    turns,
                    last_activity: Some(last_activity),
                },
            );
        }
        if recovered > 0 {
            tracing::info!(
                sessions = recovered,
                "the summarizer took back the unsummarised turns of recent sessions"
            );
        }
        Ok(())
    }

    /// Makes the summaries written in a step searchable and durable before the
    /// checkpoint moves past their turns.
    async fn commit(step: &Step, wrote: bool) -> Result<()> {
        if wrote {
            step.deps.index.commit().await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Processor for Summarizer {
    type Analysis = ();

    const NAME: &'static str = NAME;

    async fn checkpoint(&self, step: &Step) -> Result<TurnId> {
        let checkpoint = step.deps.archive.checkpoint(NAME).await?;
        self.recover(step, checkpoint).await?;
        Ok(checkpoint)
    }

    fn analyze(&self, _: &[Turn]) -> Self::Analysis {}

    async fn apply(&self, turns: &[Turn], _: (), step: &Step, guard: &Guard<'_>) -> Result<()> {
        let every = self.config.every_turns.max(1);
        let mut wrote = false;
        for turn in turns {
            let key = (turn.scope.clone(), turn.session_id.clone());
            let known = self.pending.lock().contains_key(&key);
            if !known {
                let loaded = self.load(step, &key, turn.id).await?;
                self.pending.lock().entry(key.clone()).or_default().turns = loaded;
            }
            let full = {
                let mut pending = self.pending.lock();
                let session = pending.entry(key.clone()).or_default();
                if session.turns.last().is_none_or(|id| *id < turn.id) {
                    session.turns.push(turn.id);
                }
                session.last_activity = Some(turn.ingest_time);
                (session.turns.len() >= every)
                    .then(|| session.turns.drain(..every).collect::<Vec<TurnId>>())
            };
            if let Some(window) = full {
                wrote |= self.write(step, &key, window, guard).await?;
            }
        }
        Self::commit(step, wrote).await
    }

    /// Pending turns of a forgotten user, or the forgotten turn, are dropped: they would
    /// be read back for nothing (and the archive refuses a summary over them).
    async fn forget(&self, forget: &Forget, _: &Step) -> Result<()> {
        let mut pending = self.pending.lock();
        match forget.turn {
            None => pending.retain(|(scope, _), _| *scope != forget.scope),
            Some(turn) => {
                for ((scope, _), session) in pending.iter_mut() {
                    if *scope == forget.scope {
                        session.turns.retain(|id| *id != turn);
                    }
                }
            }
        }
        Ok(())
    }

    async fn on_idle(&self, step: &Step, guard: &Guard<'_>) -> Result<()> {
        let now = step.deps.clock.now();
        let idle_for = chrono::Duration::seconds(self.config.idle_secs as i64);
        let idle: Vec<(SessionKey, Vec<TurnId>)> = {
            let mut pending = self.pending.lock();
            let keys: Vec<SessionKey> = pending
                .iter()
                .filter(|(_, s)| s.last_activity.is_some_and(|t| now - t >= idle_for))
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| pending.remove(&k).map(|s| (k, s.turns)))
                .collect()
        };
        let mut written = Vec::new();
        for (key, turns) in idle {
            if self.write(step, &key, turns, guard).await? {
                written.push(key.0);
            }
        }
        Self::commit(step, !written.is_empty()).await?;
        // After the commit: an answer cached before it could not have seen them. (A
        // step's own summaries are its turns' users, bumped after its checkpoint.)
        step.deps.generations.bump_all(written.iter());
        Ok(())
    }

    fn idle_every(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.config.idle_check_secs.max(1)))
    }
}
