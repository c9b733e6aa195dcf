//! The archive actor: serves the archive tier and does group commit. Appends that arrive
//! while a transaction is in flight are gathered into the next one (up to a batch size,
//! optionally waiting a little for company), and each caller is answered only once its
//! turns are durable. After each commit it publishes the archive head, which wakes the
//! processors. After a failure it serves again only once the archive answers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::{ActorFutureExt, AsyncContext};
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use mnemo_storage::archive::{
    Appended, ArchiveStats, ArchiveStore, ForgetReport, HistoryPage, OutboxPage, RecentGap,
};
use mnemo_storage::model::{
    EmotionState, NewSummary, NewTurn, Scope, ScoredTurn, SessionId, Summary, SummaryId, Timestamp,
    Turn, TurnAnnotation, TurnId,
};
use mnemo_storage::ErrorKind as StorageKind;
use tokio::sync::watch;

use super::tier::{serve_call, Call, Tier};
use crate::config::GroupCommitConfig;
use crate::error::{Error, Result};
use crate::metrics;
use crate::processors::backlog::Backlog;
use crate::runtime::faults::Faults;
use crate::runtime::mailbox::Reply;
use crate::runtime::panic::catch_async;
use crate::runtime::{Behaviour, Cause, Child, ChildContext, Handles, Responder};

/// The archive actor's name.
pub const NAME: &str = "archive";

/// Append turns (one caller's, all or nothing) through group commit, each with the
/// scores its caller made.
#[derive(Debug)]
pub struct AppendTurns(pub Vec<ScoredTurn>);

/// Forget a user's rows (`turn: None`) or one turn's; the forget's place in the outbox
/// becomes the head, which wakes the processors to apply it.
#[derive(Debug)]
pub struct ForgetRows {
    /// Whose rows.
    pub scope: Scope,
    /// One turn, or every turn of the user.
    pub turn: Option<TurnId>,
}

struct Pending {
    turns: Vec<ScoredTurn>,
    reply: Reply<Vec<Appended>>,
}

/// The archive actor's behaviour.
pub struct ArchiveActor {
    store: Arc<dyn ArchiveStore>,
    faults: Arc<Faults>,
    config: GroupCommitConfig,
    backlog: Arc<Backlog>,
    pending: VecDeque<Pending>,
    /// Turns in `pending`.
    pending_turns: usize,
    in_flight: bool,
    flush_scheduled: bool,
    head: Arc<watch::Sender<TurnId>>,
    /// How often to read the head for turns other nodes stored (`None`: alone).
    follow: Option<Duration>,
    /// A read of the head is under way.
    following: bool,
    /// The head when the planner's statistics were last refreshed (`None`: not yet).
    analyzed: Option<TurnId>,
    /// A refresh of the statistics is under way.
    analyzing: bool,
}

/// Turns the archive must grow by, at least, before its statistics are refreshed again.
const ANALYZE_AFTER_TURNS: i64 = 10_000;

/// Whether the archive has grown enough since its statistics were refreshed at head
/// `then` to refresh them: by a tenth, and by [`ANALYZE_AFTER_TURNS`] at least.
fn grown_enough(then: TurnId, now: TurnId) -> bool {
    let grown = now.0 - then.0;
    grown >= ANALYZE_AFTER_TURNS && grown.saturating_mul(10) >= then.0
}

/// What one group commit gave each of its callers.
type Committed = std::result::Result<Vec<Result<Vec<Appended>>>, String>;

impl ArchiveActor {
    /// An archive actor over `store`, publishing the head on `head` (also read every
    /// `follow`, when other nodes write to the same archive), refusing writes past the
    /// bounds of `config` and of `backlog`.
    pub fn new(
        store: Arc<dyn ArchiveStore>,
        faults: Arc<Faults>,
        config: GroupCommitConfig,
        backlog: Arc<Backlog>,
        head: watch::Sender<TurnId>,
        follow: Option<Duration>,
    ) -> Self {
        Self {
            store,
            faults,
            config,
            backlog,
            pending: VecDeque::new(),
            pending_turns: 0,
            in_flight: false,
            flush_scheduled: false,
            head: Arc::new(head),
            follow,
            following: false,
            analyzed: None,
            analyzing: false,
        }
    }

    /// Refreshes the planner's statistics at the first start and whenever the archive has
    /// grown enough since, one refresh at a time, off the request path.
    fn maybe_analyze(&mut self, ctx: &mut ChildContext<Self>) {
        let head = *self.head.borrow();
        if self.analyzing || self.analyzed.is_some_and(|then| !grown_enough(then, head)) {
            return;
        }
        self.analyzing = true;
        let store = self.store.clone();
        let work = async move { store.analyze().await };
        ctx.spawn(
            actix::fut::wrap_future::<_, Child<Self>>(work).map(move |done, child, _| {
                let archive = child.behaviour();
                archive.analyzing = false;
                match done {
                    Ok(()) => {
                        archive.analyzed = Some(head);
                        tracing::debug!(head = head.0, "refreshed the archive's statistics");
                    }
                    // Tried again after the next commit; the archive works without.
                    Err(e) => tracing::warn!(
                        error = %e,
                        "could not refresh the archive's query-planner statistics"
                    ),
                }
            }),
        );
    }

    /// Reads the head, for turns other nodes stored, and publishes it if it moved.
    fn follow_head(&mut self, ctx: &mut ChildContext<Self>) {
        if self.following {
            return;
        }
        self.following = true;
        let store = self.store.clone();
        let read = async move { store.head().await };
        ctx.spawn(
            actix::fut::wrap_future::<_, Child<Self>>(read).map(|head, child, _| {
                let archive = child.behaviour();
                archive.following = false;
                // A failed read is the next one's to retry; a down archive shows itself
                // on the requests.
                if let Ok(head) = head {
                    archive.publish_head(head);
                }
            }),
        );
    }

    fn publish_head(&self, newest: TurnId) {
        publish_head(&self.head, newest);
    }

    fn schedule_flush(&mut self, ctx: &mut ChildContext<Self>) {
        if self.in_flight || self.flush_scheduled || self.pending.is_empty() {
            return;
        }
        if self.config.max_wait_us == 0 {
            self.flush(ctx);
        } else {
            self.flush_scheduled = true;
            ctx.run_later(
                Duration::from_micros(self.config.max_wait_us),
                |child, ctx| {
                    let archive = child.behaviour();
                    archive.flush_scheduled = false;
                    archive.flush(ctx);
                },
            );
        }
    }

    /// Commits what is pending, up to a batch, in one transaction.
    fn flush(&mut self, ctx: &mut ChildContext<Self>) {
        if self.in_flight || self.pending.is_empty() {
            return;
        }
        let mut group = Vec::new();
        let mut turns = 0;
        while let Some(next) = self.pending.front() {
            if !group.is_empty() && turns + next.turns.len() > self.config.max_batch_turns {
                break;
            }
            turns += next.turns.len();
            group.extend(self.pending.pop_front());
        }
        self.pending_turns -= turns;
        ::metrics::histogram!(metrics::INGEST_BATCH_TURNS).record(turns as f64);
        self.in_flight = true;
        let (requests, replies): (Vec<Vec<ScoredTurn>>, Vec<Reply<Vec<Appended>>>) =
            group.into_iter().map(|p| (p.turns, p.reply)).unzip();
        let store = self.store.clone();
        let faults = self.faults.clone();
        let work = catch_async(async move {
            faults.before(NAME).await;
            append_group(&*store, requests).await
        });
        ctx.spawn(
            actix::fut::wrap_future::<_, Child<Self>>(work)
                .map(move |outcome, child, ctx| committed(child, ctx, outcome, replies)),
        );
    }

    /// Publishes a new head.
    fn advance_head(&self, appended: &[Appended]) {
        if let Some(max) = appended.iter().map(|a| a.turn.id).max() {
            self.publish_head(max);
        }
    }
}

/// Publishes `newest` as the head if it is newer.
fn publish_head(head: &watch::Sender<TurnId>, newest: TurnId) {
    head.send_if_modified(|head| {
        let newer = newest > *head;
        if newer {
            *head = newest;
        }
        newer
    });
}

/// Answers the callers of a group commit: fails the actor first on a backend failure or
/// a panic, so they already see it restarting.
fn committed(
    child: &mut Child<ArchiveActor>,
    ctx: &mut ChildContext<ArchiveActor>,
    outcome: Committed,
    replies: Vec<Reply<Vec<Appended>>>,
) {
    child.behaviour().in_flight = false;
    match outcome {
        Ok(results) => {
            let failure = results
                .iter()
                .find_map(|r| r.as_ref().err().filter(|e| e.is_backend_failure()));
            if let Some(e) = failure {
                let (cause, detail) = (Cause::Backend(e.kind().to_string()), e.to_string());
                child.fail(ctx, cause, detail);
            }
            for (result, reply) in results.into_iter().zip(replies) {
                if let Ok(appended) = &result {
                    child.behaviour().advance_head(appended);
                }
                let _ = reply.send(result);
            }
        }
        Err(message) => {
            child.fail(ctx, Cause::Panic, message.clone());
            let name = child.name();
            for reply in replies {
                let _ = reply.send(Err(Error::Panicked {
                    actor: name,
                    message: message.clone(),
                }));
            }
        }
    }
    child.behaviour().schedule_flush(ctx);
    child.behaviour().maybe_analyze(ctx);
}

/// Appends a group of requests in one transaction. If the group is refused as invalid
/// (one request slipped past validation), each request is retried alone so one caller's
/// bad turn never fails another's.
async fn append_group(
    store: &dyn ArchiveStore,
    requests: Vec<Vec<ScoredTurn>>,
) -> Vec<Result<Vec<Appended>>> {
    if requests.len() == 1 {
        let only = requests.into_iter().flatten().collect();
        return vec![store.append_scored(only).await.map_err(Error::from)];
    }
    let sizes: Vec<usize> = requests.iter().map(Vec::len).collect();
    let all: Vec<ScoredTurn> = requests.iter().flatten().cloned().collect();
    match store.append_scored(all).await {
        Ok(appended) => {
            let mut appended = appended.into_iter();
            sizes
                .into_iter()
                .map(|n| Ok(appended.by_ref().take(n).collect()))
                .collect()
        }
        Err(e) if e.kind() == StorageKind::InvalidInput => {
            let mut out = Vec::with_capacity(requests.len());
            for request in requests {
                out.push(store.append_scored(request).await.map_err(Error::from));
            }
            out
        }
        Err(e) => {
            let e = Error::from(e);
            sizes.iter().map(|_| Err(e.clone())).collect()
        }
    }
}

impl Behaviour for ArchiveActor {
    fn serving(&mut self, ctx: &mut ChildContext<Self>) {
        // A restart dropped the commit that was in flight, if any (its callers were told
        // the actor stopped); what is pending goes now.
        self.in_flight = false;
        self.flush_scheduled = false;
        self.following = false;
        self.analyzing = false;
        self.schedule_flush(ctx);
        self.maybe_analyze(ctx);
        if let Some(every) = self.follow {
            ctx.run_interval(every, |child, ctx| child.behaviour().follow_head(ctx));
        }
    }

    fn failed(&mut self, _: &mut ChildContext<Self>, down: &Error) {
        // Nothing waits on a down actor: queued appends are refused now, not after the
        // restart.
        while let Some(pending) = self.pending.pop_front() {
            let _ = pending.reply.send(Err(down.clone()));
        }
        self.pending_turns = 0;
    }

    fn probe(&self) -> Option<LocalBoxFuture<'static, Result<()>>> {
        // Serve again only once the archive answers: while its server is down the actor
        // stays down (requests fail fast, health shows it restarting) and asks again
        // after the supervisor's next backoff, so it comes back by itself.
        let store = self.store.clone();
        Some(async move { store.head().await.map(drop).map_err(Error::from) }.boxed_local())
    }
}

impl Handles<AppendTurns, Vec<Appended>> for ArchiveActor {
    // Bounded by group commit's pending turns instead, so reads cannot crowd them out.
    const IN_FLIGHT: bool = false;

    fn handle(
        &mut self,
        AppendTurns(turns): AppendTurns,
        reply: Responder<Self, Vec<Appended>>,
        ctx: &mut ChildContext<Self>,
    ) {
        if turns.is_empty() {
            return reply.answer(Ok(Vec::new()));
        }
        if self.pending_turns + turns.len() > self.config.max_pending_turns.max(1)
            && self.pending_turns > 0
        {
            return reply.answer(Err(Error::Busy { actor: NAME }));
        }
        if let Err(behind) = self.backlog.admit(turns.len(), self.pending_turns) {
            return reply.answer(Err(behind));
        }
        self.pending_turns += turns.len();
        self.pending.push_back(Pending {
            turns,
            reply: reply.into_reply(),
        });
        self.schedule_flush(ctx);
    }
}

impl Handles<ForgetRows, ForgetReport> for ArchiveActor {
    fn handle(
        &mut self,
        ForgetRows { scope, turn }: ForgetRows,
        reply: Responder<Self, ForgetReport>,
        _: &mut ChildContext<Self>,
    ) {
        let (store, head) = (self.store.clone(), self.head.clone());
        reply.serve(async move {
            let report = match turn {
                None => store.forget_user(&scope).await?,
                Some(id) => store.forget_turn(&scope, id).await?,
            };
            if let Some(recorded) = report.recorded {
                publish_head(&head, recorded);
            }
            Ok(report)
        });
    }
}

impl<T: Send + 'static> Handles<Call<dyn ArchiveStore, T>, T> for ArchiveActor {
    fn handle(
        &mut self,
        call: Call<dyn ArchiveStore, T>,
        reply: Responder<Self, T>,
        _: &mut ChildContext<Self>,
    ) {
        serve_call(&self.store, call, reply);
    }
}

/// Handle to the archive actor: each method is one request.
pub type ArchiveTier = Tier<dyn ArchiveStore, Child<ArchiveActor>>;

impl Tier<dyn ArchiveStore, Child<ArchiveActor>> {
    /// Stores turns through group commit; answers once they are durable. Fails fast when
    /// the queue is full.
    pub async fn append(&self, turns: Vec<NewTurn>) -> Result<Vec<Appended>> {
        self.append_scored(turns.into_iter().map(ScoredTurn::from).collect())
            .await
    }

    /// Stores turns as [`Self::append`] does, each with the scores its caller made,
    /// written in the same insert.
    pub async fn append_scored(&self, turns: Vec<ScoredTurn>) -> Result<Vec<Appended>> {
        self.mailbox().ask(AppendTurns(turns)).await
    }

    /// The outbox: turns after `after`, in id order.
    pub async fn turns_after(&self, after: TurnId, limit: usize) -> Result<Vec<Turn>> {
        self.call_waiting(move |s| async move { s.turns_after(after, limit).await }.boxed())
            .await
    }

    /// The outbox with the head of the same read (processors).
    pub async fn outbox(&self, after: TurnId, limit: usize) -> Result<OutboxPage> {
        self.call_waiting(move |s| async move { s.outbox(after, limit).await }.boxed())
            .await
    }

    /// The highest turn id assigned.
    pub async fn head(&self) -> Result<TurnId> {
        self.read(|s| async move { s.head().await }.boxed()).await
    }

    /// A page of a session's history, newest first.
    pub async fn history(
        &self,
        scope: Scope,
        session: SessionId,
        page: HistoryPage,
    ) -> Result<Vec<Turn>> {
        self.read(move |s| async move { s.history(&scope, &session, page).await }.boxed())
            .await
    }

    /// The user's turns among `ids`.
    pub async fn get_turns(&self, scope: Scope, ids: Vec<TurnId>) -> Result<Vec<Turn>> {
        self.read(move |s| async move { s.get_turns(&scope, &ids).await }.boxed())
            .await
    }

    /// The user's turns among `ids` and the turns just before and after each in its
    /// session, in one read.
    pub async fn turns_around(&self, scope: Scope, ids: Vec<TurnId>) -> Result<Vec<Turn>> {
        self.read(move |s| async move { s.turns_around(&scope, &ids).await }.boxed())
            .await
    }

    /// Attaches processor scores to turns.
    pub async fn annotate(&self, annotations: Vec<TurnAnnotation>) -> Result<()> {
        self.call_waiting(move |s| async move { s.annotate(&annotations).await }.boxed())
            .await
    }

    /// Stores a summary.
    pub async fn put_summary(&self, summary: NewSummary) -> Result<Summary> {
        self.call_waiting(move |s| async move { s.put_summary(summary).await }.boxed())
            .await
    }

    /// Stores summaries in one transaction, each answered with its own outcome (see
    /// [`ArchiveStore::put_summaries`]).
    pub async fn put_summaries(
        &self,
        summaries: Vec<NewSummary>,
    ) -> Result<Vec<mnemo_storage::Result<Summary>>> {
        self.call_waiting(move |s| async move { s.put_summaries(summaries).await }.boxed())
            .await
    }

    /// Each session's turn ids after its newest summary and before `before`, the newest
    /// `limit` of them, in one read (see [`ArchiveStore::unsummarized`]).
    pub async fn unsummarized(
        &self,
        sessions: Vec<(Scope, SessionId)>,
        before: TurnId,
        limit: usize,
    ) -> Result<Vec<(Scope, SessionId, TurnId)>> {
        self.call_waiting(move |s| {
            async move { s.unsummarized(&sessions, before, limit).await }.boxed()
        })
        .await
    }

    /// The turns among `ids`, of every tenant, in id order (processors reading back
    /// turns they met in the outbox).
    pub async fn outbox_turns(&self, ids: Vec<TurnId>) -> Result<Vec<Turn>> {
        self.call_waiting(move |s| async move { s.outbox_turns(&ids).await }.boxed())
            .await
    }

    /// The user's summaries, newest first.
    pub async fn summaries(
        &self,
        scope: Scope,
        session: Option<SessionId>,
        limit: usize,
    ) -> Result<Vec<Summary>> {
        self.call_waiting(move |s| {
            async move { s.summaries(&scope, session.as_ref(), limit).await }.boxed()
        })
        .await
    }

    /// The user's summaries among `ids`.
    pub async fn get_summaries(&self, scope: Scope, ids: Vec<SummaryId>) -> Result<Vec<Summary>> {
        self.read(move |s| async move { s.get_summaries(&scope, &ids).await }.boxed())
            .await
    }

    /// Summaries of every tenant after `after`, in id order (the indexer follows them).
    pub async fn summaries_after(&self, after: SummaryId, limit: usize) -> Result<Vec<Summary>> {
        self.call_waiting(move |s| async move { s.summaries_after(after, limit).await }.boxed())
            .await
    }

    /// The sessions with turns in `(after, up_to]`, each with its newest ingest time.
    pub async fn sessions_between(
        &self,
        after: TurnId,
        up_to: TurnId,
        limit: usize,
    ) -> Result<Vec<(Scope, SessionId, Timestamp)>> {
        self.read(move |s| async move { s.sessions_between(after, up_to, limit).await }.boxed())
            .await
    }

    /// Marks sessions whose recent-tier cache missed writes.
    pub async fn mark_recent_gaps(&self, gaps: Vec<RecentGap>) -> Result<()> {
        self.call_waiting(move |s| async move { s.mark_recent_gaps(&gaps).await }.boxed())
            .await
    }

    /// Every session marked as missing recent-tier writes.
    pub async fn recent_gaps(&self) -> Result<Vec<RecentGap>> {
        self.read(|s| async move { s.recent_gaps().await }.boxed())
            .await
    }

    /// Clears a session's mark up to `gap.stamp`.
    pub async fn clear_recent_gap(&self, gap: RecentGap) -> Result<()> {
        self.call_waiting(move |s| async move { s.clear_recent_gap(&gap).await }.boxed())
            .await
    }

    /// A processor's checkpoint.
    pub async fn checkpoint(&self, processor: &'static str) -> Result<TurnId> {
        self.call_waiting(move |s| async move { s.checkpoint(processor).await }.boxed())
            .await
    }

    /// Records a processor's checkpoint.
    pub async fn set_checkpoint(&self, processor: &'static str, id: TurnId) -> Result<()> {
        self.call_waiting(move |s| async move { s.set_checkpoint(processor, id).await }.boxed())
            .await
    }

    /// The user's emotion state.
    pub async fn emotion_state(&self, scope: Scope) -> Result<Option<EmotionState>> {
        self.read(move |s| async move { s.emotion_state(&scope).await }.boxed())
            .await
    }

    /// The emotion states of those of `scopes` that have one, waiting for room
    /// (processors).
    pub async fn emotion_states(
        &self,
        scopes: Vec<Scope>,
    ) -> Result<BTreeMap<Scope, EmotionState>> {
        self.call_waiting(move |s| async move { s.emotion_states(&scopes).await }.boxed())
            .await
    }

    /// Stores users' emotion states in one transaction.
    pub async fn put_emotion_states(&self, states: Vec<(Scope, EmotionState)>) -> Result<()> {
        self.call_waiting(move |s| async move { s.put_emotion_states(&states).await }.boxed())
            .await
    }

    /// Removes every row of the user.
    pub async fn forget_user(&self, scope: Scope) -> Result<ForgetReport> {
        self.mailbox()
            .ask_waiting(ForgetRows { scope, turn: None })
            .await
    }

    /// Removes one turn and the summaries covering it.
    pub async fn forget_turn(&self, scope: Scope, id: TurnId) -> Result<ForgetReport> {
        self.mailbox()
            .ask_waiting(ForgetRows {
                scope,
                turn: Some(id),
            })
            .await
    }

    /// Counts over the archive.
    pub async fn stats(&self) -> Result<ArchiveStats> {
        self.read(|s| async move { s.stats().await }.boxed()).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    use mnemo_storage::archive::sql::SqliteArchive;
    use mnemo_storage::archive::ArchiveConfig;
    use mnemo_storage::clock::Clock;
    use mnemo_storage::conformance::{new_turn, scope, t0};
    use mnemo_storage::model::{Timestamp, TimestampExt, TurnId};
    use tokio::sync::watch;

    use super::{grown_enough, ArchiveActor, ArchiveTier, NAME};

    #[test]
    fn statistics_are_refreshed_after_a_tenth_more_turns_and_ten_thousand_at_least() {
        assert!(!grown_enough(TurnId(0), TurnId(9_999)));
        assert!(grown_enough(TurnId(0), TurnId(10_000)));
        assert!(grown_enough(TurnId(50_000), TurnId(60_000)));
        assert!(!grown_enough(TurnId(1_000_000), TurnId(1_090_000)));
        assert!(grown_enough(TurnId(1_000_000), TurnId(1_100_000)));
    }
    use crate::config::{GroupCommitConfig, SupervisorConfig};
    use crate::processors::backlog::Backlog;
    use crate::runtime::{Limits, Spawner};
    use crate::tiers::tier::Tier;

    /// A clock a microsecond later at every reading: the archive reads it once per
    /// transaction (the turns' ingest time), so the distinct ingest times of the stored
    /// turns count the transactions that stored them.
    #[derive(Debug)]
    struct TickingClock(AtomicI64);

    impl Clock for TickingClock {
        fn now(&self) -> Timestamp {
            Timestamp::from_micros(t0().to_micros() + self.0.fetch_add(1, Ordering::Relaxed))
        }
    }

    #[actix::test]
    async fn concurrent_appends_are_committed_together_in_fewer_transactions() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteArchive::open(
            &dir.path().join("archive.db"),
            &ArchiveConfig::default(),
            Default::default(),
            Arc::new(TickingClock(AtomicI64::new(0))),
        )
        .await
        .expect("the archive opens");
        let (head_tx, mut head) = watch::channel(TurnId(0));
        let backlog = Backlog::new(head.clone(), 0);
        let mut spawner = Spawner::new(SupervisorConfig::default(), Arc::default());
        let archive: ArchiveTier = Tier::new(spawner.spawn(
            NAME,
            Limits {
                mailbox: 1_024,
                in_flight: 16,
            },
            ArchiveActor::new(
                Arc::new(store),
                Arc::default(),
                GroupCommitConfig::default(),
                backlog,
                head_tx,
                None,
            ),
        ));

        let callers = 64;
        let appends = (0..callers).map(|i| {
            let user = scope("acme", &format!("user-{i}"));
            archive.append(vec![new_turn(&user, "s1", &format!("turn of caller {i}"))])
        });
        let acked = futures_util::future::join_all(appends).await;
        let mut ingest_times = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for appended in acked {
            let appended = appended.expect("every caller is acknowledged");
            assert_eq!(appended.len(), 1);
            ingest_times.insert(appended[0].turn.ingest_time);
            ids.insert(appended[0].turn.id);
        }
        assert_eq!(ids.len(), callers, "each turn stored once");
        let transactions = ingest_times.len();
        assert!(
            transactions * 4 <= callers,
            "{callers} concurrent appends took {transactions} transactions"
        );
        // The head is published after the commits.
        head.wait_for(|h| *h == TurnId(callers as i64))
            .await
            .expect("the head advances");
    }
}
