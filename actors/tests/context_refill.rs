//! The context assembler refills the recent tier after a miss off the request path: the
//! answer goes out before the refill is done, a push that lands while the refill runs is
//! kept, and a failed refill only leaves the session to be read from the archive again.
//!
//! The recent tier here is the real in-memory one behind a gate that holds each `fill`
//! until the test opens it, so the test decides when the refill completes.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use mnemo_actors::context::{AssembleContext, ContextAnswer, ContextRequest};
use mnemo_actors::system::Handles;
use mnemo_storage::conformance::{new_turn, scope, session};
use mnemo_storage::model::{Order, Scope, SessionId, Turn, TurnId};
use mnemo_storage::recent::memory::MemoryRecent;
use mnemo_storage::recent::{RecentConfig, RecentStore};
use tokio::sync::{mpsc, Semaphore};

/// The in-memory recent tier, with each `fill` held until a permit is given, and
/// reporting each fill it holds.
#[derive(Debug)]
struct GatedRecent {
    inner: MemoryRecent,
    permits: Semaphore,
    held: mpsc::UnboundedSender<()>,
    /// Whether a released fill fails instead of filling.
    fail: bool,
}

#[async_trait]
impl RecentStore for GatedRecent {
    async fn push(&self, turns: &[Turn]) -> mnemo_storage::Result<()> {
        self.inner.push(turns).await
    }

    async fn ping(&self) -> mnemo_storage::Result<()> {
        self.inner.ping().await
    }

    async fn fill(
        &self,
        scope: &Scope,
        session: &SessionId,
        turns: &[Turn],
    ) -> mnemo_storage::Result<()> {
        let _ = self.held.send(());
        self.permits
            .acquire()
            .await
            .map_err(|e| mnemo_storage::Error::internal("gate", e))?
            .forget();
        if self.fail {
            return Err(mnemo_storage::Error::Timeout {
                backend: "gate",
                message: "the refill was made to fail".into(),
            });
        }
        self.inner.fill(scope, session, turns).await
    }

    async fn recent(
        &self,
        scope: &Scope,
        session: &SessionId,
        limit: usize,
        order: Order,
    ) -> mnemo_storage::Result<Option<Vec<Turn>>> {
        self.inner.recent(scope, session, limit, order).await
    }

    async fn forget_user(&self, scope: &Scope) -> mnemo_storage::Result<()> {
        self.inner.forget_user(scope).await
    }

    async fn forget_turn(&self, scope: &Scope, id: TurnId) -> mnemo_storage::Result<()> {
        self.inner.forget_turn(scope, id).await
    }
}

struct Setting {
    _stores: common::Stores,
    recent: Arc<GatedRecent>,
    held: mpsc::UnboundedReceiver<()>,
    handles: Handles,
}

/// Starts the actors over embedded stores, with the gated recent tier.
async fn start(fail: bool) -> Setting {
    let mut stores = common::open_stores().await;
    let (held_tx, held) = mpsc::unbounded_channel();
    let recent = Arc::new(GatedRecent {
        inner: MemoryRecent::new(RecentConfig::default(), stores.clock.clone()),
        permits: Semaphore::new(0),
        held: held_tx,
        fail,
    });
    stores.tiers.recent = recent.clone();
    let handles = common::start_actors(&stores, Arc::default());
    Setting {
        _stores: stores,
        recent,
        held,
        handles,
    }
}

async fn context(handles: &Handles, user: &Scope, query: &str) -> ContextAnswer {
    handles
        .context
        .ask(AssembleContext::now(ContextRequest::new(
            user.clone(),
            Some(session("s1")),
            query,
        )))
        .await
        .expect("context is answered")
}

fn contents(turns: &[Turn]) -> Vec<&str> {
    turns.iter().map(|t| t.content.as_str()).collect()
}

#[test]
fn context_answers_before_the_refill_and_a_push_during_it_is_kept() {
    common::in_actix(async {
        let mut s = start(false).await;
        let alice = scope("acme", "alice");
        s.handles
            .archive
            .append(vec![
                new_turn(&alice, "s1", "one"),
                new_turn(&alice, "s1", "two"),
            ])
            .await
            .expect("stored");

        // A miss: the archive answers, and the refill is still held at the gate.
        let answer = context(&s.handles, &alice, "anything").await;
        assert_eq!(contents(&answer.recent), ["one", "two"]);
        assert!(answer.degraded.is_empty(), "{:?}", answer.degraded);
        s.held.recv().await.expect("the refill reached the tier");
        assert_eq!(
            s.handles.refills.under_way(),
            1,
            "answered before the refill"
        );

        // A turn stored while the refill is held reaches the tier by a push.
        let third = s
            .handles
            .archive
            .append(vec![new_turn(&alice, "s1", "three")])
            .await
            .expect("stored");
        let third: Vec<Turn> = third.into_iter().map(|a| a.turn).collect();
        s.handles.recent.push(third).await.expect("pushed");

        s.recent.permits.add_permits(1);
        s.handles.refills.wait_idle().await;
        let cached = s
            .recent
            .inner
            .recent(&alice, &session("s1"), 10, Order::OldestFirst)
            .await
            .unwrap()
            .expect("the session is cached after the refill");
        assert_eq!(contents(&cached), ["one", "two", "three"]);
        let answer = context(&s.handles, &alice, "anything else").await;
        assert_eq!(contents(&answer.recent), ["one", "two", "three"]);
    });
}

#[test]
fn a_failed_refill_only_leaves_the_session_to_the_archive() {
    common::in_actix(async {
        let mut s = start(true).await;
        let alice = scope("acme", "alice");
        s.handles
            .archive
            .append(vec![new_turn(&alice, "s1", "one")])
            .await
            .expect("stored");
        let answer = context(&s.handles, &alice, "anything").await;
        assert_eq!(contents(&answer.recent), ["one"]);
        s.held.recv().await.expect("the refill reached the tier");
        s.recent.permits.add_permits(1);
        s.handles.refills.wait_idle().await;
        let cached = s
            .recent
            .inner
            .recent(&alice, &session("s1"), 10, Order::OldestFirst)
            .await
            .unwrap();
        assert!(cached.is_none(), "a failed refill caches nothing");
        // The next read misses again and the archive answers again, whole.
        s.recent.permits.add_permits(1);
        let answer = context(&s.handles, &alice, "anything else").await;
        assert_eq!(contents(&answer.recent), ["one"]);
        assert!(answer.degraded.is_empty(), "{:?}", answer.degraded);
    });
}

/// A request whose deadline passed while it waited to be served is refused at once with
/// a deadline error that says so, and no tier is asked (the gated recent tier would hold
/// it); a request within its deadline is answered.
#[test]
fn a_request_that_waited_past_its_deadline_is_refused_without_asking_a_tier() {
    common::in_actix(async {
        let s = start(false).await;
        let alice = scope("acme", "alice");
        let mut request = ContextRequest::new(alice.clone(), Some(session("s1")), "anything");
        request.deadline = Some(std::time::Duration::from_millis(50));
        let sent = tokio::time::Instant::now() - std::time::Duration::from_secs(1);
        let refused = s
            .handles
            .context
            .ask(AssembleContext { request, sent })
            .await
            .expect_err("too late to answer");
        assert!(
            matches!(refused, mnemo_actors::Error::Deadline(_)),
            "{refused:?}"
        );
        let message = refused.to_string();
        assert!(
            message.contains("waited") && message.contains("50 ms deadline"),
            "{message}"
        );
        assert_eq!(s.handles.refills.under_way(), 0, "no tier was asked");
    });
}
