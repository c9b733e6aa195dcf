//! Conformance suite of [`RecentStore`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{scope, session, stored_turn, t0, UNICODE_SAMPLES};
use crate::clock::{ManualClock, SharedClock};
use crate::model::{Order, Scope, Turn, TurnId};
use crate::recent::{RecentConfig, RecentStore};

/// Opens a fresh recent-tier backend for one test.
#[async_trait]
pub trait RecentFactory: Send + Sync {
    /// A new, empty store with `config`'s limits.
    async fn open(&self, config: RecentConfig, clock: SharedClock) -> Arc<dyn RecentStore>;

    /// Whether the backend evicts whole sessions to honour `max_bytes` itself.
    fn enforces_memory_cap(&self) -> bool {
        true
    }
}

/// Expands to one `#[tokio::test]` per body of this suite, each opening its backend with
/// `$factory` (an expression evaluating to a [`RecentFactory`]).
#[macro_export]
macro_rules! recent_conformance {
    ($factory:expr) => {
        $crate::recent_conformance!(@tests $factory;
            push_then_read_both_orders,
            a_reachable_backend_answers_ping,
            keeps_only_last_n_per_session,
            limit_caps_the_answer,
            unknown_session_is_a_miss,
            sessions_are_separate,
            same_user_id_in_two_tenants_is_isolated,
            users_of_one_tenant_are_isolated,
            pushing_a_turn_twice_keeps_one,
            turns_pushed_out_of_order_come_back_in_order,
            fill_merges_turns_pushed_before_it,
            forget_user_drops_only_that_user,
            forget_turn_drops_the_sessions_holding_it,
            untouched_sessions_expire_after_ttl,
            memory_cap_evicts_least_recently_used_sessions,
            unicode_round_trips,
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let factory = $factory;
                $crate::conformance::recent::$name(&factory).await;
            }
        )*
    };
}

fn clock() -> (Arc<ManualClock>, SharedClock) {
    let manual = ManualClock::new(t0());
    let shared: SharedClock = manual.clone();
    (manual, shared)
}

fn config(max_turns: usize) -> RecentConfig {
    RecentConfig {
        max_turns_per_session: max_turns,
        ..RecentConfig::default()
    }
}

async fn open(factory: &dyn RecentFactory, max_turns: usize) -> Arc<dyn RecentStore> {
    factory.open(config(max_turns), clock().1).await
}

/// Fills `sessions` (empty) so they answer reads, as a first read-through would.
async fn filled(store: &dyn RecentStore, scope: &Scope, sessions: &[&str]) {
    for s in sessions {
        store.fill(scope, &session(s), &[]).await.unwrap();
    }
}

fn ids(turns: &[Turn]) -> Vec<i64> {
    turns.iter().map(|t| t.id.0).collect()
}

/// Pushed turns come back newest-first or oldest-first as asked, whole.
pub async fn push_then_read_both_orders(factory: &dyn RecentFactory) {
    let store = open(factory, 10).await;
    let alice = scope("acme", "alice");
    let turns: Vec<Turn> = (1..=4)
        .map(|i| stored_turn(i, &alice, "s1", &format!("turn {i}")))
        .collect();
    filled(&*store, &alice, &["s1"]).await;
    store.push(&turns).await.unwrap();
    let s1 = session("s1");
    let newest = store
        .recent(&alice, &s1, 10, Order::NewestFirst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&newest), vec![4, 3, 2, 1]);
    let oldest = store
        .recent(&alice, &s1, 10, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&oldest), vec![1, 2, 3, 4]);
    assert_eq!(oldest, turns, "turns come back with every field intact");
}

/// A session keeps its last N turns; older ones fall out.
pub async fn keeps_only_last_n_per_session(factory: &dyn RecentFactory) {
    let store = open(factory, 3).await;
    let alice = scope("acme", "alice");
    filled(&*store, &alice, &["s1"]).await;
    for i in 1..=5 {
        store
            .push(&[stored_turn(i, &alice, "s1", &format!("turn {i}"))])
            .await
            .unwrap();
    }
    let got = store
        .recent(&alice, &session("s1"), 10, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&got), vec![3, 4, 5]);
}

/// `limit` returns the newest `limit` turns, in either order.
pub async fn limit_caps_the_answer(factory: &dyn RecentFactory) {
    let store = open(factory, 10).await;
    let alice = scope("acme", "alice");
    let turns: Vec<Turn> = (1..=6).map(|i| stored_turn(i, &alice, "s1", "x")).collect();
    filled(&*store, &alice, &["s1"]).await;
    store.push(&turns).await.unwrap();
    let s1 = session("s1");
    let newest = store
        .recent(&alice, &s1, 2, Order::NewestFirst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&newest), vec![6, 5]);
    let oldest = store
        .recent(&alice, &s1, 2, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&oldest), vec![5, 6]);
    let none = store
        .recent(&alice, &s1, 0, Order::NewestFirst)
        .await
        .unwrap()
        .unwrap();
    assert!(none.is_empty());
}

/// A session never filled is a miss (`None`), not an empty session, even when turns
/// were pushed to it: the archive may hold older ones.
pub async fn unknown_session_is_a_miss(factory: &dyn RecentFactory) {
    let store = open(factory, 10).await;
    let alice = scope("acme", "alice");
    assert_eq!(
        store
            .recent(&alice, &session("nope"), 10, Order::NewestFirst)
            .await
            .unwrap(),
        None
    );
    store
        .push(&[stored_turn(7, &alice, "pushed", "x")])
        .await
        .unwrap();
    assert_eq!(
        store
            .recent(&alice, &session("pushed"), 10, Order::NewestFirst)
            .await
            .unwrap(),
        None
    );
}

/// Turns of two sessions of one user never mix.
pub async fn sessions_are_separate(factory: &dyn RecentFactory) {
    let store = open(factory, 10).await;
    let alice = scope("acme", "alice");
    filled(&*store, &alice, &["s1", "s2"]).await;
    store
        .push(&[
            stored_turn(1, &alice, "s1", "one"),
            stored_turn(2, &alice, "s2", "two"),
            stored_turn(3, &alice, "s1", "three"),
        ])
        .await
        .unwrap();
    let s1 = store
        .recent(&alice, &session("s1"), 10, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    let s2 = store
        .recent(&alice, &session("s2"), 10, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&s1), vec![1, 3]);
    assert_eq!(ids(&s2), vec![2]);
}

/// The same user id and session id in two tenants are two different users.
pub async fn same_user_id_in_two_tenants_is_isolated(factory: &dyn RecentFactory) {
    let store = open(factory, 10).await;
    let a = scope("tenant-a", "sam");
    let b = scope("tenant-b", "sam");
    filled(&*store, &a, &["s"]).await;
    filled(&*store, &b, &["s"]).await;
    store
        .push(&[stored_turn(1, &a, "s", "secret of a")])
        .await
        .unwrap();
    store
        .push(&[stored_turn(2, &b, "s", "secret of b")])
        .await
        .unwrap();
    let got_a = store
        .recent(&a, &session("s"), 10, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    let got_b = store
        .recent(&b, &session("s"), 10, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&got_a), vec![1]);
    assert_eq!(ids(&got_b), vec![2]);
    store.forget_user(&a).await.unwrap();
    assert!(store
        .recent(&b, &session("s"), 10, Order::OldestFirst)
        .await
        .unwrap()
        .is_some());
}

/// Two users of one tenant with the same session id never see each other's turns.
pub async fn users_of_one_tenant_are_isolated(factory: &dyn RecentFactory) {
    let store = open(factory, 10).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    filled(&*store, &alice, &["s"]).await;
    store
        .push(&[stored_turn(1, &alice, "s", "alice's")])
        .await
        .unwrap();
    assert_eq!(
        store
            .recent(&bob, &session("s"), 10, Order::OldestFirst)
            .await
            .unwrap(),
        None
    );
    filled(&*store, &bob, &["s"]).await;
    let bobs = store
        .recent(&bob, &session("s"), 10, Order::OldestFirst)
        .await
        .unwrap();
    assert_eq!(bobs, Some(Vec::new()));
}

/// Pushing a turn already cached (same id) does not duplicate it.
pub async fn pushing_a_turn_twice_keeps_one(factory: &dyn RecentFactory) {
    let store = open(factory, 10).await;
    let alice = scope("acme", "alice");
    let turn = stored_turn(1, &alice, "s", "hello");
    filled(&*store, &alice, &["s"]).await;
    store.push(std::slice::from_ref(&turn)).await.unwrap();
    store.push(&[turn.clone(), turn]).await.unwrap();
    let got = store
        .recent(&alice, &session("s"), 10, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&got), vec![1]);
}

/// Turns pushed out of id order (concurrent writers) are read back in id order.
pub async fn turns_pushed_out_of_order_come_back_in_order(factory: &dyn RecentFactory) {
    let store = open(factory, 10).await;
    let alice = scope("acme", "alice");
    filled(&*store, &alice, &["s"]).await;
    for id in [3, 1, 2] {
        store
            .push(&[stored_turn(id, &alice, "s", "x")])
            .await
            .unwrap();
    }
    let got = store
        .recent(&alice, &session("s"), 10, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&got), vec![1, 2, 3]);
}

/// `fill` merges the archive's turns with those pushed before it (a write racing the
/// read-through is not lost), keeping the last N.
pub async fn fill_merges_turns_pushed_before_it(factory: &dyn RecentFactory) {
    let store = open(factory, 3).await;
    let alice = scope("acme", "alice");
    store
        .push(&[stored_turn(9, &alice, "s", "landed meanwhile")])
        .await
        .unwrap();
    let from_archive: Vec<Turn> = (1..=5)
        .rev()
        .map(|i| stored_turn(i, &alice, "s", "x"))
        .collect();
    store
        .fill(&alice, &session("s"), &from_archive)
        .await
        .unwrap();
    let got = store
        .recent(&alice, &session("s"), 10, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&got), vec![4, 5, 9]);
    store.fill(&alice, &session("empty"), &[]).await.unwrap();
    let empty = store
        .recent(&alice, &session("empty"), 10, Order::OldestFirst)
        .await
        .unwrap();
    assert_eq!(
        empty,
        Some(Vec::new()),
        "a filled empty session is a hit, not a miss"
    );
}

/// Forgetting a user drops every session of theirs and nobody else's.
pub async fn forget_user_drops_only_that_user(factory: &dyn RecentFactory) {
    let store = open(factory, 10).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    filled(&*store, &alice, &["s1", "s2"]).await;
    filled(&*store, &bob, &["s1"]).await;
    store
        .push(&[
            stored_turn(1, &alice, "s1", "a1"),
            stored_turn(2, &alice, "s2", "a2"),
            stored_turn(3, &bob, "s1", "b1"),
        ])
        .await
        .unwrap();
    store.forget_user(&alice).await.unwrap();
    for s in ["s1", "s2"] {
        assert_eq!(
            store
                .recent(&alice, &session(s), 10, Order::OldestFirst)
                .await
                .unwrap(),
            None
        );
    }
    let bob_s1 = store
        .recent(&bob, &session("s1"), 10, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&bob_s1), vec![3]);
}

/// Forgetting a turn makes it unreadable; the sessions holding it become misses so the
/// next read refills from the archive.
pub async fn forget_turn_drops_the_sessions_holding_it(factory: &dyn RecentFactory) {
    let store = open(factory, 10).await;
    let alice = scope("acme", "alice");
    filled(&*store, &alice, &["s1", "s2"]).await;
    store
        .push(&[
            stored_turn(1, &alice, "s1", "keep"),
            stored_turn(2, &alice, "s1", "forget me"),
            stored_turn(3, &alice, "s2", "other session"),
        ])
        .await
        .unwrap();
    store.forget_turn(&alice, TurnId(2)).await.unwrap();
    let s1 = store
        .recent(&alice, &session("s1"), 10, Order::OldestFirst)
        .await
        .unwrap();
    assert!(s1.is_none_or(|turns| turns.iter().all(|t| t.id != TurnId(2))));
    let s2 = store
        .recent(&alice, &session("s2"), 10, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&s2), vec![3]);
    // Another user's turn id is not theirs to forget.
    let bob = scope("acme", "bob");
    store.forget_turn(&bob, TurnId(3)).await.unwrap();
    assert!(store
        .recent(&alice, &session("s2"), 10, Order::OldestFirst)
        .await
        .unwrap()
        .is_some());
}

/// A session untouched for the TTL is a miss; one read in time stays.
pub async fn untouched_sessions_expire_after_ttl(factory: &dyn RecentFactory) {
    let (manual, shared) = clock();
    let store = factory
        .open(
            RecentConfig {
                ttl_secs: 60,
                ..config(10)
            },
            shared,
        )
        .await;
    let alice = scope("acme", "alice");
    filled(&*store, &alice, &["idle", "busy"]).await;
    store
        .push(&[
            stored_turn(1, &alice, "idle", "x"),
            stored_turn(2, &alice, "busy", "y"),
        ])
        .await
        .unwrap();
    manual.advance(Duration::from_secs(40));
    assert!(store
        .recent(&alice, &session("busy"), 10, Order::NewestFirst)
        .await
        .unwrap()
        .is_some());
    manual.advance(Duration::from_secs(40));
    assert_eq!(
        store
            .recent(&alice, &session("idle"), 10, Order::NewestFirst)
            .await
            .unwrap(),
        None,
        "80 s untouched with a 60 s TTL"
    );
    assert!(store
        .recent(&alice, &session("busy"), 10, Order::NewestFirst)
        .await
        .unwrap()
        .is_some());
}

/// Over the byte budget, the least recently used sessions are evicted whole.
pub async fn memory_cap_evicts_least_recently_used_sessions(factory: &dyn RecentFactory) {
    if !factory.enforces_memory_cap() {
        return;
    }
    let alice = scope("acme", "alice");
    let big = "x".repeat(10_000);
    let one_session = stored_turn(1, &alice, "a", &big).approx_bytes() * 2;
    let store = factory
        .open(
            RecentConfig {
                max_bytes: one_session * 3 + one_session / 2,
                ..config(10)
            },
            clock().1,
        )
        .await;
    let mut id = 0;
    let mut push_session = |name: &'static str| {
        id += 2;
        vec![
            stored_turn(id - 1, &alice, name, &big),
            stored_turn(id, &alice, name, &big),
        ]
    };
    let (a, b, c, d) = (
        push_session("a"),
        push_session("b"),
        push_session("c"),
        push_session("d"),
    );
    store.fill(&alice, &session("a"), &a).await.unwrap();
    store.fill(&alice, &session("b"), &b).await.unwrap();
    store.fill(&alice, &session("c"), &c).await.unwrap();
    // Reading `a` makes `b` the least recently used.
    let got_a = store
        .recent(&alice, &session("a"), 10, Order::OldestFirst)
        .await
        .unwrap();
    assert_eq!(got_a.map(|t| t.len()), Some(2));
    store.fill(&alice, &session("d"), &d).await.unwrap();
    let hit = |name: &'static str| {
        let store = store.clone();
        let alice = alice.clone();
        async move {
            store
                .recent(&alice, &session(name), 10, Order::OldestFirst)
                .await
                .unwrap()
                .map(|t| t.len())
        }
    };
    assert_eq!(hit("b").await, None, "the least recently used session went");
    assert_eq!(
        hit("a").await,
        Some(2),
        "sessions are kept or evicted whole"
    );
    assert_eq!(hit("c").await, Some(2));
    assert_eq!(hit("d").await, Some(2));
}

/// Emoji, CJK, right-to-left and combining text come back byte for byte.
pub async fn unicode_round_trips(factory: &dyn RecentFactory) {
    let store = open(factory, 20).await;
    let user = scope("テナント", "用户-😀");
    let turns: Vec<Turn> = UNICODE_SAMPLES
        .iter()
        .enumerate()
        .map(|(i, text)| stored_turn(i as i64 + 1, &user, "سجل", text))
        .collect();
    filled(&*store, &user, &["سجل"]).await;
    store.push(&turns).await.unwrap();
    let got = store
        .recent(&user, &session("سجل"), 20, Order::OldestFirst)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, turns);
}

/// A backend that serves answers a ping (health asks it before calling the tier up).
pub async fn a_reachable_backend_answers_ping(factory: &dyn RecentFactory) {
    let recent = open(factory, 10).await;
    recent.ping().await.expect("the backend answers");
}
