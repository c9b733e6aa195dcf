//! The archive actor: serves the archive tier and does group commit. Appends that arrive
//! while a transaction is in flight are gathered into the next one (up to a batch size,
//! optionally waiting a little for company), and each caller is answered only once its
//! turns are durable. After each commit it publishes the archive head, which wakes the
//! processors.

use std::collections::{BTreeMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Supervised};
use futures_util::FutureExt;
use mnemo_storage::archive::{
    Appended, ArchiveStats, ArchiveStore, ForgetReport, HistoryPage, OutboxPage,
};
use mnemo_storage::model::{
    EmotionState, NewSummary, NewTurn, Scope, SessionId, Summary, SummaryId, Turn, TurnAnnotation,
    TurnId,
};
use mnemo_storage::ErrorKind as StorageKind;
use tokio::sync::watch;

use crate::config::GroupCommitConfig;
use crate::error::{Error, Result};
use crate::faults::Faults;
use crate::life::{panic_message, serve, Cause, Child, Life, Restart, Settle};
use crate::mailbox::{Envelope, Reply};
use crate::metrics;
use crate::tier::{Call, Tier};

/// Append turns (one caller's, all or nothing) through group commit.
#[derive(Debug)]
pub struct AppendTurns(pub Vec<NewTurn>);

struct Pending {
    turns: Vec<NewTurn>,
    reply: Reply<Vec<Appended>>,
}

/// The archive actor.
pub struct ArchiveActor {
    store: Arc<dyn ArchiveStore>,
    life: Life,
    faults: Arc<Faults>,
    config: GroupCommitConfig,
    pending: VecDeque<Pending>,
    in_flight: bool,
    flush_scheduled: bool,
    head: watch::Sender<TurnId>,
}

impl ArchiveActor {
    /// An archive actor over `store`, publishing the head on `head`.
    pub fn new(
        store: Arc<dyn ArchiveStore>,
        life: Life,
        faults: Arc<Faults>,
        config: GroupCommitConfig,
        head: watch::Sender<TurnId>,
    ) -> Self {
        Self {
            store,
            life,
            faults,
            config,
            pending: VecDeque::new(),
            in_flight: false,
            flush_scheduled: false,
            head,
        }
    }

    fn schedule_flush(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight || self.flush_scheduled || self.pending.is_empty() {
            return;
        }
        if self.config.max_wait_us == 0 {
            self.flush(ctx);
        } else {
            self.flush_scheduled = true;
            ctx.run_later(
                Duration::from_micros(self.config.max_wait_us),
                |act, ctx| {
                    act.flush_scheduled = false;
                    act.flush(ctx);
                },
            );
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
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
        ::metrics::histogram!(metrics::INGEST_BATCH_TURNS).record(turns as f64);
        self.in_flight = true;
        let (requests, replies): (Vec<Vec<NewTurn>>, Vec<Reply<Vec<Appended>>>) =
            group.into_iter().map(|p| (p.turns, p.reply)).unzip();
        let store = self.store.clone();
        let faults = self.faults.clone();
        let name = self.life.name();
        let work = AssertUnwindSafe(async move {
            faults.before(name).await;
            append_group(&*store, requests).await
        })
        .catch_unwind();
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(work).map(move |outcome, act, ctx| {
                act.in_flight = false;
                match outcome {
                    Ok(results) => {
                        if let Some(e) = results.iter().find_map(|r| {
                            r.as_ref().err().filter(|e| e.is_backend_failure()).cloned()
                        }) {
                            act.fail(ctx, Cause::Backend(e.kind().to_string()), e.to_string());
                        }
                        for (result, reply) in results.into_iter().zip(replies) {
                            let max = result
                                .as_ref()
                                .ok()
                                .and_then(|appended| appended.iter().map(|a| a.turn.id).max());
                            if let Some(max) = max {
                                act.head.send_if_modified(|head| {
                                    let newer = max > *head;
                                    if newer {
                                        *head = max;
                                    }
                                    newer
                                });
                            }
                            let _ = reply.send(result);
                        }
                    }
                    Err(payload) => {
                        // Failed first, so the callers already see the actor restarting.
                        let message = panic_message(&*payload);
                        act.fail(ctx, Cause::Panic, message.clone());
                        for reply in replies {
                            let _ = reply.send(Err(Error::Panicked {
                                actor: name,
                                message: message.clone(),
                            }));
                        }
                    }
                }
                act.schedule_flush(ctx);
            }),
        );
    }

    fn fail(&mut self, ctx: &mut Context<Self>, cause: Cause, detail: String) {
        self.life.fail(ctx, cause, detail);
        // Nothing waits on a down actor: queued appends are refused now, not after the
        // restart.
        while let Some(pending) = self.pending.pop_front() {
            let _ = pending.reply.send(self.life.check().map(|()| Vec::new()));
        }
    }
}

/// Appends a group of requests in one transaction. If the group is refused as invalid
/// (one request slipped past validation), each request is retried alone so one caller's
/// bad turn never fails another's.
async fn append_group(
    store: &dyn ArchiveStore,
    requests: Vec<Vec<NewTurn>>,
) -> Vec<Result<Vec<Appended>>> {
    if requests.len() == 1 {
        let only = requests.into_iter().flatten().collect();
        return vec![store.append_batch(only).await.map_err(Error::from)];
    }
    let sizes: Vec<usize> = requests.iter().map(Vec::len).collect();
    let all: Vec<NewTurn> = requests.iter().flatten().cloned().collect();
    match store.append_batch(all).await {
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
                out.push(store.append_batch(request).await.map_err(Error::from));
            }
            out
        }
        Err(e) => {
            let e = Error::from(e);
            sizes.iter().map(|_| Err(e.clone())).collect()
        }
    }
}

impl Actor for ArchiveActor {
    type Context = Context<Self>;
}

impl Supervised for ArchiveActor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.in_flight = false;
        self.flush_scheduled = false;
        // Serve again only once the archive answers: while its server is down the actor
        // stays down (requests fail fast, health shows it restarting) and asks again
        // after the supervisor's next backoff, so it comes back by itself.
        let store = self.store.clone();
        let probe = AssertUnwindSafe(async move { store.head().await }).catch_unwind();
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(probe).map(|outcome, act, ctx| {
                let failure = match outcome {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(Error::from(e)).filter(Error::is_backend_failure),
                    Err(payload) => Some(Error::Panicked {
                        actor: act.life.name(),
                        message: panic_message(&*payload),
                    }),
                };
                match failure {
                    Some(e) => act.life.still_failing(ctx, e.to_string()),
                    None => {
                        act.life.restarted();
                        act.schedule_flush(ctx);
                    }
                }
            }),
        );
    }
}

impl Handler<Restart> for ArchiveActor {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Settle> for ArchiveActor {
    type Result = ();

    fn handle(&mut self, settle: Settle, ctx: &mut Context<Self>) {
        settle.apply(self, ctx);
    }
}

impl Child for ArchiveActor {
    fn life(&mut self) -> &mut Life {
        &mut self.life
    }

    fn faults(&self) -> Arc<Faults> {
        self.faults.clone()
    }
}

impl Handler<Envelope<AppendTurns, Vec<Appended>>> for ArchiveActor {
    type Result = ();

    fn handle(&mut self, envelope: Envelope<AppendTurns, Vec<Appended>>, ctx: &mut Context<Self>) {
        let (AppendTurns(turns), reply) = envelope.open();
        if let Err(e) = self.life.check() {
            let _ = reply.send(Err(e));
            return;
        }
        if turns.is_empty() {
            let _ = reply.send(Ok(Vec::new()));
            return;
        }
        self.pending.push_back(Pending { turns, reply });
        self.schedule_flush(ctx);
    }
}

impl<T: Send + 'static> Handler<Envelope<Call<dyn ArchiveStore, T>, T>> for ArchiveActor {
    type Result = ();

    fn handle(
        &mut self,
        envelope: Envelope<Call<dyn ArchiveStore, T>, T>,
        ctx: &mut Context<Self>,
    ) {
        serve(self, ctx, envelope, |act, call| {
            let fut = call(act.store.clone());
            async move { fut.await.map_err(Into::into) }
        });
    }
}

/// Handle to the archive actor: each method is one request.
pub type ArchiveTier = Tier<dyn ArchiveStore, ArchiveActor>;

impl Tier<dyn ArchiveStore, ArchiveActor> {
    /// Stores turns through group commit; answers once they are durable. Fails fast when
    /// the queue is full.
    pub async fn append(&self, turns: Vec<NewTurn>) -> Result<Vec<Appended>> {
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
        self.call(|s| async move { s.head().await }.boxed()).await
    }

    /// A page of a session's history, newest first.
    pub async fn history(
        &self,
        scope: Scope,
        session: SessionId,
        page: HistoryPage,
    ) -> Result<Vec<Turn>> {
        self.call(move |s| async move { s.history(&scope, &session, page).await }.boxed())
            .await
    }

    /// The user's turns among `ids`.
    pub async fn get_turns(&self, scope: Scope, ids: Vec<TurnId>) -> Result<Vec<Turn>> {
        self.call(move |s| async move { s.get_turns(&scope, &ids).await }.boxed())
            .await
    }

    /// The user's turns among `ids` and the turns just before and after each in its
    /// session, in one read.
    pub async fn turns_around(&self, scope: Scope, ids: Vec<TurnId>) -> Result<Vec<Turn>> {
        self.call(move |s| async move { s.turns_around(&scope, &ids).await }.boxed())
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
        self.call(move |s| async move { s.get_summaries(&scope, &ids).await }.boxed())
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
        self.call(move |s| async move { s.emotion_state(&scope).await }.boxed())
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
        self.call_waiting(move |s| async move { s.forget_user(&scope).await }.boxed())
            .await
    }

    /// Removes one turn and the summaries covering it.
    pub async fn forget_turn(&self, scope: Scope, id: TurnId) -> Result<ForgetReport> {
        self.call_waiting(move |s| async move { s.forget_turn(&scope, id).await }.boxed())
            .await
    }

    /// Counts over the archive.
    pub async fn stats(&self) -> Result<ArchiveStats> {
        self.call(|s| async move { s.stats().await }.boxed()).await
    }
}
