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

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
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

    /// The pending turn ids of `sessions`, read back from the archive in one read: each
    /// one's turns after its last summary and before `before` (the newest window of
    /// them), in id order. A session with none is absent.
    async fn load(
        &self,
        step: &Step,
        sessions: Vec<SessionKey>,
        before: TurnId,
    ) -> Result<HashMap<SessionKey, Vec<TurnId>>> {
        let mut loaded: HashMap<SessionKey, Vec<TurnId>> = HashMap::new();
        if sessions.is_empty() {
            return Ok(loaded);
        }
        let found = step
            .deps
            .archive
            .unsummarized(sessions, before, self.config.every_turns.max(1))
            .await?;
        for (scope, session, id) in found {
            loaded.entry((scope, session)).or_default().push(id);
        }
        Ok(loaded)
    }

    /// Summarises windows of turns `ids` of their sessions, reading the turns from the
    /// archive, and writes the summaries, all in one read, one run on the worker and one
    /// transaction. Returns the users a summary was written for.
    async fn write(
        &self,
        step: &Step,
        windows: Vec<(SessionKey, Vec<TurnId>)>,
        guard: &Guard<'_>,
    ) -> Result<Vec<Scope>> {
        let ids: Vec<TurnId> = windows
            .iter()
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // A turn forgotten since it was pending is absent, and the guard drops one whose
        // forget is still being applied.
        let mut read: HashMap<TurnId, Turn> = step
            .deps
            .archive
            .outbox_turns(ids)
            .await?
            .into_iter()
            .filter(|t| guard.keeps(t))
            .map(|t| (t.id, t))
            .collect();
        let windows: Vec<(SessionKey, Vec<Turn>)> = windows
            .into_iter()
            .map(|(key, ids)| {
                let turns = ids
                    .iter()
                    .filter_map(|id| read.remove(id))
                    // Only the session's own turns, whatever the ids were.
                    .filter(|t| t.scope == key.0 && t.session_id == key.1)
                    .collect();
                (key, turns)
            })
            .filter(|(_, turns): &(SessionKey, Vec<Turn>)| !turns.is_empty())
            .collect();
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let (max_sentences, max_chars) = (self.config.max_sentences, self.config.max_chars);
        let summaries: Vec<NewSummary> = step
            .worker
            .run(move || {
                windows
                    .into_iter()
                    .filter_map(|((scope, session_id), turns)| {
                        let summary = summarize(&turns, max_sentences, max_chars)?;
                        let (first, last) = (turns.first()?, turns.last()?);
                        Some(NewSummary {
                            scope,
                            session_id,
                            first_turn: first.id,
                            last_turn: last.id,
                            text: summary.text,
                            keywords: summary.keywords,
                            start_time: first.event_time,
                            end_time: last.event_time,
                        })
                    })
                    .collect()
            })
            .await?;
        if summaries.is_empty() {
            return Ok(Vec::new());
        }
        let mut stored = Vec::with_capacity(summaries.len());
        for outcome in step.deps.archive.put_summaries(summaries).await? {
            match outcome {
                Ok(summary) => stored.push(summary),
                // A summary the archive refuses is skipped, not retried forever; one whose
                // turns were forgotten since they were read has nothing to summarise.
                Err(e)
                    if matches!(
                        e.kind(),
                        mnemo_storage::ErrorKind::InvalidInput | mnemo_storage::ErrorKind::NotFound
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if stored.is_empty() {
            return Ok(Vec::new());
        }
        step.deps
            .index
            .add(stored.iter().map(IndexDoc::from_summary).collect())
            .await?;
        Ok(stored.into_iter().map(|s| s.scope).collect())
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
        let unknown: Vec<(SessionKey, Timestamp)> = {
            let pending = self.pending.lock();
            sessions
                .into_iter()
                .map(|(scope, session, last_activity)| ((scope, session), last_activity))
                .filter(|(key, _)| !pending.contains_key(key))
                .collect()
        };
        let keys = unknown.iter().map(|(key, _)| key.clone()).collect();
        let mut loaded = self.load(step, keys, TurnId(checkpoint.0 + 1)).await?;
        let mut recovered = 0;
        {
            let mut pending = self.pending.lock();
            for (key, last_activity) in unknown {
                // A session with nothing unsummarised is not pending.
                let Some(turns) = loaded.remove(&key) else {
                    continue;
                };
                pending.entry(key).or_insert(PendingSession {
                    turns,
                    last_activity: Some(last_activity),
                });
                recovered += 1;
            }
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
        let Some(first) = turns.first() else {
            return Ok(());
        };
        // Sessions met for the first time: their earlier turns are read back in one go.
        // A session's turns before its first one here are all before the step's first.
        let unknown: Vec<SessionKey> = {
            let pending = self.pending.lock();
            let mut seen = HashSet::new();
            turns
                .iter()
                .map(|t| (t.scope.clone(), t.session_id.clone()))
                .filter(|key| !pending.contains_key(key) && seen.insert(key.clone()))
                .collect()
        };
        let mut loaded = self.load(step, unknown, first.id).await?;
        let every = self.config.every_turns.max(1);
        let mut windows = Vec::new();
        {
            let mut pending = self.pending.lock();
            for turn in turns {
                let key = (turn.scope.clone(), turn.session_id.clone());
                let session = pending
                    .entry(key.clone())
                    .or_insert_with(|| PendingSession {
                        turns: loaded.remove(&key).unwrap_or_default(),
                        last_activity: None,
                    });
                if session.turns.last().is_none_or(|id| *id < turn.id) {
                    session.turns.push(turn.id);
                }
                session.last_activity = Some(turn.ingest_time);
                if session.turns.len() >= every {
                    windows.push((key, session.turns.drain(..every).collect::<Vec<TurnId>>()));
                }
            }
        }
        let wrote = !self.write(step, windows, guard).await?.is_empty();
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
        let written = self.write(step, idle, guard).await?;
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
