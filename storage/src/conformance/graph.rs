//! Conformance suite of [`GraphStore`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{at, scope, t0, HOSTILE_SAMPLES, UNICODE_SAMPLES};
use crate::clock::{ManualClock, SharedClock};
use crate::error::ErrorKind;
use crate::graph::{
    name_key, ContextEntities, Edge, EdgeKind, Entity, EntityMention, GraphStore, GraphUpdate,
    Neighbourhood, RankedEntity, Recency,
};
use crate::model::{Scope, TurnId};

/// Opens a backend of the graph tier at one location per factory.
#[async_trait]
pub trait GraphFactory: Send + Sync {
    /// Opens the graph at the factory's location; a second call closes the first and
    /// reopens the same data, as a restart would.
    async fn open(&self, clock: SharedClock) -> Arc<dyn GraphStore>;
}

/// Expands to one `#[tokio::test]` per body of this suite, each opening its backend with
/// `$factory` (an expression evaluating to a [`GraphFactory`]). Attributes after the
/// factory (`$factory, #[ignore = "why"]`) go on every test.
#[macro_export]
macro_rules! graph_conformance {
    ($factory:expr $(, #[$attr:meta])* $(,)?) => {
        $crate::graph_conformance!(@tests [$(#[$attr])*] $factory;
            same_entity_upserted_twice_is_one_node,
            a_reachable_graph_answers_ping,
            weights_and_counts_accumulate_across_turns,
            applying_a_turn_twice_changes_nothing,
            a_batch_is_its_updates_applied_one_by_one,
            edges_keep_their_supporting_turns_newest_first,
            related_to_links_every_pair_of_a_turn,
            user_entities_rank_by_weight_and_recency,
            ranking_considers_every_entity,
            neighbourhood_walks_one_or_two_hops,
            neighbourhood_limits_each_hop_strongest_first,
            neighbourhood_of_unknown_entity_is_none_and_depth_is_checked,
            find_entities_by_name_or_alias_case_insensitively,
            context_entities_are_the_named_and_the_top_ranked,
            tenants_and_users_are_isolated,
            forget_user_removes_only_that_user,
            forget_turn_takes_back_its_support,
            invalid_input_is_refused_and_nothing_is_applied,
            unicode_names_round_trip,
            hostile_names_round_trip_verbatim,
            data_survives_reopening,
        );
    };
    (@tests $attrs:tt $factory:expr; $($name:ident),* $(,)?) => {
        $( $crate::graph_conformance!(@test $attrs $factory; $name); )*
    };
    (@test [$(#[$attr:meta])*] $factory:expr; $name:ident) => {
        #[tokio::test]
        $(#[$attr])*
        async fn $name() {
            let factory = $factory;
            $crate::conformance::graph::$name(&factory).await;
        }
    };
}

/// Tolerance when comparing weights and scores.
const EPS: f64 = 1e-9;

/// Seconds in a day.
const DAY: i64 = 86_400;

fn clock() -> SharedClock {
    ManualClock::new(t0())
}

async fn open(factory: &dyn GraphFactory) -> Arc<dyn GraphStore> {
    factory.open(clock()).await
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() < EPS,
        "{what}: got {got}, expected {want}"
    );
}

/// A turn mentioning `names`, each as a `topic` with weight 1.
fn update(scope: &Scope, turn: i64, secs: i64, names: &[&str]) -> GraphUpdate {
    GraphUpdate {
        scope: scope.clone(),
        turn_id: TurnId(turn),
        time: at(secs),
        entities: names
            .iter()
            .map(|n| EntityMention::new(*n, "topic"))
            .collect(),
    }
}

/// A turn mentioning `entities` with the given weights.
fn weighted(scope: &Scope, turn: i64, secs: i64, entities: &[(&str, f64)]) -> GraphUpdate {
    GraphUpdate {
        scope: scope.clone(),
        turn_id: TurnId(turn),
        time: at(secs),
        entities: entities
            .iter()
            .map(|(n, w)| EntityMention {
                weight: *w,
                ..EntityMention::new(*n, "topic")
            })
            .collect(),
    }
}

/// Scores at `t0()` with a long half-life: for reading weights and counts.
fn plain() -> Recency {
    Recency {
        now: t0(),
        half_life: Duration::from_secs(365 * DAY as u64),
    }
}

/// Every entity of the user with its MENTIONS stats.
async fn ranked(store: &dyn GraphStore, scope: &Scope) -> Vec<RankedEntity> {
    store.user_entities(scope, plain(), 10_000).await.unwrap()
}

/// The MENTIONS stats of the user's entity named `name`.
async fn stats(store: &dyn GraphStore, scope: &Scope, name: &str) -> Option<RankedEntity> {
    ranked(store, scope)
        .await
        .into_iter()
        .find(|r| name_key(&r.entity.name) == name_key(name))
}

/// The user's entities matching `name`.
async fn find(store: &dyn GraphStore, scope: &Scope, name: &str) -> Vec<Entity> {
    store
        .find_entities(scope, &[name.to_owned()])
        .await
        .unwrap()
}

/// The neighbourhood of `name`, which must exist.
async fn hood(
    store: &dyn GraphStore,
    scope: &Scope,
    name: &str,
    depth: usize,
    limit: usize,
) -> Neighbourhood {
    store
        .neighbourhood(scope, name, depth, limit)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{name} has a neighbourhood"))
}

/// The name keys of `entities`, sorted.
fn keys(entities: &[Entity]) -> Vec<String> {
    let mut keys: Vec<String> = entities.iter().map(|e| name_key(&e.name)).collect();
    keys.sort();
    keys
}

/// The edges of `hood` as unordered pairs of name keys.
fn pairs(hood: &Neighbourhood) -> BTreeSet<(String, String)> {
    let name = |id: i64| {
        std::iter::once(&hood.center)
            .chain(&hood.entities)
            .find(|e| e.id == id)
            .map(|e| name_key(&e.name))
            .unwrap_or_else(|| panic!("edge end {id} is among the entities returned"))
    };
    hood.edges
        .iter()
        .map(|e| {
            assert_eq!(e.kind, EdgeKind::RelatedTo);
            let (a, b) = (name(e.src), name(e.dst));
            if a <= b {
                (a, b)
            } else {
                (b, a)
            }
        })
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    let (a, b) = (name_key(a), name_key(b));
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// The RELATED_TO edge between `a` and `b`, seen from `a`.
async fn related(store: &dyn GraphStore, scope: &Scope, a: &str, b: &str) -> Option<Edge> {
    let hood = store.neighbourhood(scope, a, 1, 10_000).await.unwrap()?;
    let other = hood
        .entities
        .iter()
        .find(|e| name_key(&e.name) == name_key(b))?;
    let ends = BTreeSet::from([hood.center.id, other.id]);
    let edge = hood
        .edges
        .iter()
        .find(|e| BTreeSet::from([e.src, e.dst]) == ends)?
        .clone();
    assert_eq!(edge.kind, EdgeKind::RelatedTo);
    Some(edge)
}

/// Everything the user's graph answers, for before/after comparisons.
async fn snapshot(
    store: &dyn GraphStore,
    scope: &Scope,
    names: &[&str],
) -> (Vec<RankedEntity>, Vec<Option<Neighbourhood>>) {
    let mut hoods = Vec::new();
    for name in names {
        hoods.push(store.neighbourhood(scope, name, 2, 100).await.unwrap());
    }
    (ranked(store, scope).await, hoods)
}

/// One entity named with different case and spacing, across turns and within one, is
/// one node, counted once per turn.
pub async fn same_entity_upserted_twice_is_one_node(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    store
        .apply(&[update(&alice, 1, 10, &["Ada Lovelace"])])
        .await
        .unwrap();
    store
        .apply(&[update(&alice, 2, 20, &["  ada   LOVELACE "])])
        .await
        .unwrap();
    store
        .apply(&[update(&alice, 3, 30, &["ADA LOVELACE", "ada  lovelace"])])
        .await
        .unwrap();
    for spelling in ["Ada Lovelace", "ada lovelace", " ADA  lovelace"] {
        let found = find(&*store, &alice, spelling).await;
        assert_eq!(found.len(), 1, "{spelling:?} finds exactly one entity");
        assert_eq!(name_key(&found[0].name), "ada lovelace");
    }
    let all = ranked(&*store, &alice).await;
    assert_eq!(all.len(), 1, "one node for every spelling");
    assert_eq!(all[0].mentions, 3, "one mention per turn");
    assert_close(all[0].weight, 3.0, "named twice in turn 3, counted once");
    assert_eq!(all[0].entity.first_seen, at(10));
    assert_eq!(all[0].entity.last_seen, at(30));
    let hood = hood(&*store, &alice, "ada lovelace", 2, 10).await;
    assert!(
        hood.edges.is_empty() && hood.entities.is_empty(),
        "an entity named twice in a turn is not related to itself"
    );
}

/// MENTIONS and RELATED_TO weights and counts add up over turns applied out of time
/// order; first and last seen are the earliest and latest turn times.
pub async fn weights_and_counts_accumulate_across_turns(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    // Turn 2 (t=20) first, then turn 3 (t=30), then turn 1 (t=10).
    store
        .apply(&[weighted(&alice, 2, 20, &[("Paris", 0.5), ("Lyon", 0.5)])])
        .await
        .unwrap();
    store
        .apply(&[weighted(&alice, 3, 30, &[("Paris", 1.5), ("Lyon", 1.5)])])
        .await
        .unwrap();
    store
        .apply(&[weighted(&alice, 1, 10, &[("Paris", 2.0), ("Lyon", 2.0)])])
        .await
        .unwrap();
    store
        .apply(&[weighted(&alice, 4, 5, &[("Lyon", 0.25)])])
        .await
        .unwrap();
    let paris = stats(&*store, &alice, "Paris").await.unwrap();
    assert_eq!(paris.mentions, 3);
    assert_close(paris.weight, 4.0, "Paris weight");
    assert_eq!(paris.entity.first_seen, at(10));
    assert_eq!(paris.entity.last_seen, at(30));
    let lyon = stats(&*store, &alice, "Lyon").await.unwrap();
    assert_eq!(lyon.mentions, 4);
    assert_close(lyon.weight, 4.25, "Lyon weight");
    assert_eq!(lyon.entity.first_seen, at(5));
    assert_eq!(lyon.entity.last_seen, at(30));
    let edge = related(&*store, &alice, "Paris", "Lyon").await.unwrap();
    assert_eq!(edge.count, 3, "three turns relate Paris and Lyon");
    // Both ends carry the same weight in each turn, so the pair's weight per turn is
    // that weight under any sensible combination.
    assert_close(edge.weight, 4.0, "Paris-Lyon weight");
    assert_eq!(edge.first_seen, at(10));
    assert_eq!(edge.last_seen, at(30));
}

/// A batch of updates of several users (entities and pairs shared between turns, turns
/// out of time order, a turn given twice, an entity named twice, aliases) leaves each
/// user's graph as applying the updates one call at a time does.
pub async fn a_batch_is_its_updates_applied_one_by_one(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let turns = |scope: &Scope| {
        let mut with_alias = weighted(scope, 3, 15, &[("Paris", 0.5), ("Marie Curie", 2.0)]);
        with_alias.entities[1].aliases = vec!["Madame Curie".into(), "M. Curie".into()];
        vec![
            weighted(
                scope,
                2,
                20,
                &[("Paris", 1.0), ("Lyon", 0.5), ("Nice", 0.25)],
            ),
            with_alias,
            weighted(
                scope,
                4,
                40,
                &[("lyon", 2.0), ("PARIS", 1.5), ("Lyon", 0.75)],
            ),
            weighted(
                scope,
                2,
                20,
                &[("Paris", 1.0), ("Lyon", 0.5), ("Nice", 0.25)],
            ),
            weighted(scope, 1, 5, &[("Nice", 1.0), ("Marie Curie", 1.0)]),
        ]
    };
    let (one_by_one, batched, other) = (
        scope("acme", "alice"),
        scope("acme", "bob"),
        scope("globex", "alice"),
    );
    for update in turns(&one_by_one) {
        store.apply(&[update]).await.unwrap();
    }
    let mut batch = turns(&batched);
    batch.extend(turns(&other));
    store.apply(&batch).await.unwrap();

    let names = ["Paris", "Lyon", "Nice", "Marie Curie"];
    for scope in [&batched, &other] {
        let (want, got) = (
            ranked(&*store, &one_by_one).await,
            ranked(&*store, scope).await,
        );
        assert_eq!(got.len(), want.len(), "{scope:?}: entities");
        for name in names {
            let want = stats(&*store, &one_by_one, name).await.unwrap();
            let got = stats(&*store, scope, name).await.unwrap();
            assert_eq!(got.entity.name, want.entity.name, "{name}");
            assert_eq!(got.entity.kind, want.entity.kind, "{name}");
            assert_eq!(got.mentions, want.mentions, "{name} mentions");
            assert_close(got.weight, want.weight, name);
            assert_eq!(got.entity.first_seen, want.entity.first_seen, "{name}");
            assert_eq!(got.entity.last_seen, want.entity.last_seen, "{name}");
        }
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                let want = related(&*store, &one_by_one, a, b).await;
                let got = related(&*store, scope, a, b).await;
                assert_eq!(got.is_some(), want.is_some(), "{a}-{b}");
                if let (Some(got), Some(want)) = (got, want) {
                    assert_eq!(got.count, want.count, "{a}-{b} count");
                    assert_close(got.weight, want.weight, "{a}-{b} weight");
                    assert_eq!(got.first_seen, want.first_seen, "{a}-{b}");
                    assert_eq!(got.last_seen, want.last_seen, "{a}-{b}");
                }
            }
        }
        let found = find(&*store, scope, "madame curie").await;
        assert_eq!(found.len(), 1, "found by its alias");
        assert_eq!(found[0].name, "Marie Curie");
    }
    let paris = stats(&*store, &batched, "Paris").await.unwrap();
    assert_eq!(paris.mentions, 3, "turn 2 given twice counts once");
    assert_close(paris.weight, 3.0, "1.0 + 0.5 + 1.5");
}

/// The same turn applied again, in a later call or twice in one call, counts once.
pub async fn applying_a_turn_twice_changes_nothing(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    let names = ["Paris", "Lyon", "Nice"];
    let u1 = weighted(&alice, 1, 10, &[("Paris", 2.0), ("Lyon", 1.0)]);
    let u2 = weighted(&alice, 2, 20, &[("Lyon", 1.0), ("Nice", 0.5)]);
    store.apply(&[u1.clone(), u2.clone()]).await.unwrap();
    let before = snapshot(&*store, &alice, &names).await;
    store.apply(std::slice::from_ref(&u1)).await.unwrap();
    store.apply(&[u2.clone(), u2.clone()]).await.unwrap();
    store
        .apply(&[u1.clone(), u2.clone(), u1.clone()])
        .await
        .unwrap();
    assert_eq!(snapshot(&*store, &alice, &names).await, before);

    // A new turn given twice in one call counts once.
    let u3 = weighted(&alice, 3, 30, &[("Paris", 1.0), ("Lyon", 1.0)]);
    store.apply(&[u3.clone(), u3.clone()]).await.unwrap();
    let paris = stats(&*store, &alice, "Paris").await.unwrap();
    assert_eq!(paris.mentions, 2);
    assert_close(paris.weight, 3.0, "Paris weight");
    let edge = related(&*store, &alice, "Paris", "Lyon").await.unwrap();
    assert_eq!(edge.count, 2);
    assert_eq!(edge.turns, vec![TurnId(3), TurnId(1)]);
    let after_u3 = snapshot(&*store, &alice, &names).await;
    store.apply(std::slice::from_ref(&u3)).await.unwrap();
    assert_eq!(snapshot(&*store, &alice, &names).await, after_u3);

    // A batch of an applied turn and a new one (a step replayed after a restart reads
    // past where it had got to): only the new one counts.
    let u4 = weighted(&alice, 4, 40, &[("Paris", 0.5), ("Nice", 2.0)]);
    store.apply(&[u3, u4]).await.unwrap();
    let paris = stats(&*store, &alice, "Paris").await.unwrap();
    assert_eq!(paris.mentions, 3);
    assert_close(paris.weight, 3.5, "Paris weight with turn 4");
    let nice = stats(&*store, &alice, "Nice").await.unwrap();
    assert_eq!(nice.mentions, 2);
    assert_close(nice.weight, 2.5, "Nice weight with turn 4");
    let edge = related(&*store, &alice, "Paris", "Nice").await.unwrap();
    assert_eq!(edge.count, 1);
    assert_eq!(edge.turns, vec![TurnId(4)]);
    let edge = related(&*store, &alice, "Paris", "Lyon").await.unwrap();
    assert_eq!(edge.count, 2, "turn 3 counted once");
}

/// Edges name the turns that support them, newest first; MENTIONS support is per turn
/// (forgetting one turn takes back exactly its weight).
pub async fn edges_keep_their_supporting_turns_newest_first(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    for turn in [5, 2, 9] {
        store
            .apply(&[update(&alice, turn, turn * 10, &["tea", "scones"])])
            .await
            .unwrap();
    }
    let edge = related(&*store, &alice, "tea", "scones").await.unwrap();
    assert_eq!(edge.turns, vec![TurnId(9), TurnId(5), TurnId(2)]);
    assert_eq!(edge.count, 3);
    // Seen from the other end, it is the same edge.
    assert_eq!(related(&*store, &alice, "scones", "tea").await, Some(edge));

    // With many supporting turns, the ones listed are the newest, newest first.
    for turn in 10..=40 {
        store
            .apply(&[update(&alice, turn, turn * 10, &["tea", "scones"])])
            .await
            .unwrap();
    }
    let edge = related(&*store, &alice, "tea", "scones").await.unwrap();
    assert_eq!(edge.count, 34);
    assert!(!edge.turns.is_empty() && edge.turns.len() <= 34);
    let mut all: Vec<TurnId> = [2, 5, 9].into_iter().chain(10..=40).map(TurnId).collect();
    all.reverse();
    assert_eq!(edge.turns[..], all[..edge.turns.len()]);

    // The MENTIONS edge of tea holds turn 5 with its own weight.
    store
        .apply(&[weighted(&alice, 41, 410, &[("milk", 3.0)])])
        .await
        .unwrap();
    store
        .apply(&[weighted(&alice, 42, 420, &[("milk", 0.5)])])
        .await
        .unwrap();
    store.forget_turn(&alice, TurnId(5)).await.unwrap();
    let tea = stats(&*store, &alice, "tea").await.unwrap();
    assert_eq!(tea.mentions, 33);
    assert_close(tea.weight, 33.0, "tea weight");
    store.forget_turn(&alice, TurnId(41)).await.unwrap();
    let milk = stats(&*store, &alice, "milk").await.unwrap();
    assert_eq!(milk.mentions, 1);
    assert_close(milk.weight, 0.5, "milk weight after turn 41 is forgotten");
}

/// A turn relates every pair of its entities, undirected; other turns' entities are not
/// related to them.
pub async fn related_to_links_every_pair_of_a_turn(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    store
        .apply(&[update(&alice, 1, 10, &["alpha", "beta", "gamma"])])
        .await
        .unwrap();
    store
        .apply(&[update(&alice, 2, 20, &["delta"])])
        .await
        .unwrap();
    let mut all_pairs = BTreeSet::new();
    for (name, others) in [
        ("alpha", ["beta", "gamma"]),
        ("beta", ["alpha", "gamma"]),
        ("gamma", ["alpha", "beta"]),
    ] {
        let hood = hood(&*store, &alice, name, 1, 10).await;
        assert_eq!(name_key(&hood.center.name), name);
        assert_eq!(
            keys(&hood.entities),
            others.to_vec(),
            "neighbours of {name}"
        );
        assert_eq!(hood.edges.len(), 2, "edges of {name}");
        all_pairs.extend(pairs(&hood));
    }
    assert_eq!(
        all_pairs,
        BTreeSet::from([
            pair("alpha", "beta"),
            pair("alpha", "gamma"),
            pair("beta", "gamma")
        ]),
        "three entities, three undirected edges"
    );
    let delta = hood(&*store, &alice, "delta", 2, 10).await;
    assert!(delta.entities.is_empty() && delta.edges.is_empty());
    assert_eq!(ranked(&*store, &alice).await.len(), 4);
}

/// Ranking trades weight against recency by the half-life; ties and the limit are
/// respected.
pub async fn user_entities_rank_by_weight_and_recency(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    // Rome: eight mentions long ago. Kyoto and Nara: one each, just now, same turn.
    let mut updates: Vec<GraphUpdate> = (1..=8).map(|i| update(&alice, i, i, &["Rome"])).collect();
    updates.push(update(&alice, 9, 10 * DAY, &["Kyoto", "Nara"]));
    store.apply(&updates).await.unwrap();
    let now = at(10 * DAY);
    let short = Recency {
        now,
        half_life: Duration::from_secs(DAY as u64),
    };
    let long = Recency {
        now,
        half_life: Duration::from_secs(1000 * DAY as u64),
    };

    let got = store.user_entities(&alice, short, 10).await.unwrap();
    assert_eq!(got.len(), 3);
    let top: BTreeSet<String> = got[..2].iter().map(|r| name_key(&r.entity.name)).collect();
    assert_eq!(
        top,
        BTreeSet::from(["kyoto".to_owned(), "nara".to_owned()]),
        "with a short half-life the recent light entities lead"
    );
    assert_eq!(name_key(&got[2].entity.name), "rome");
    assert_close(got[0].score, 1.0, "a mention made now is not decayed");
    assert_close(got[1].score, 1.0, "the tie scores the same");
    assert_eq!(got[2].mentions, 8);
    assert_close(got[2].weight, 8.0, "Rome's weight");
    assert_close(
        got[2].score,
        short.decay(8.0, at(8)),
        "Rome's decayed score",
    );
    assert!(got[2].score < 0.01);

    let got = store.user_entities(&alice, long, 10).await.unwrap();
    assert_eq!(
        name_key(&got[0].entity.name),
        "rome",
        "with a long half-life the heavy old entity leads"
    );
    assert!(got[0].score > 7.9);
    assert!(got.windows(2).all(|w| w[0].score >= w[1].score));

    let one = store.user_entities(&alice, short, 1).await.unwrap();
    assert_eq!(one.len(), 1);
    assert!(["kyoto", "nara"].contains(&name_key(&one[0].entity.name).as_str()));
    let two = store.user_entities(&alice, short, 2).await.unwrap();
    assert_eq!(two, store.user_entities(&alice, short, 2).await.unwrap());
    assert_eq!(
        two[..],
        store.user_entities(&alice, short, 10).await.unwrap()[..2]
    );
    assert!(store
        .user_entities(&alice, short, 0)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .user_entities(&scope("acme", "nobody"), short, 10)
        .await
        .unwrap()
        .is_empty());
}

/// The best-scoring entity wins even when many entities are heavier and many are more
/// recent than it.
pub async fn ranking_considers_every_entity(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    let mut updates = Vec::new();
    let mut turn = 0;
    for i in 0..100 {
        turn += 1;
        let name = format!("heavy {i}");
        updates.push(weighted(&alice, turn, i, &[(&name, 100.0)]));
        turn += 1;
        let name = format!("light {i}");
        updates.push(weighted(&alice, turn, 10 * DAY - i, &[(&name, 1.0)]));
    }
    updates.push(weighted(&alice, turn + 1, 9 * DAY, &[("middle", 50.0)]));
    store.apply(&updates).await.unwrap();
    let recency = Recency {
        now: at(10 * DAY),
        half_life: Duration::from_secs(DAY as u64),
    };
    // heavy: 100 / 2^10 < 0.1; light: at most 1; middle: 50 / 2 = 25.
    for limit in [1, 5] {
        let got = store.user_entities(&alice, recency, limit).await.unwrap();
        assert_eq!(got.len(), limit);
        assert_eq!(name_key(&got[0].entity.name), "middle");
        assert_close(got[0].score, 25.0, "middle's score");
    }
    let all = store.user_entities(&alice, recency, 1000).await.unwrap();
    assert_eq!(all.len(), 201);
    assert!(all.windows(2).all(|w| w[0].score >= w[1].score));
}

/// In a chain A-B-C-D, depth 1 reaches the direct neighbours and depth 2 one hop more.
pub async fn neighbourhood_walks_one_or_two_hops(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    store
        .apply(&[
            update(&alice, 1, 10, &["A", "B"]),
            update(&alice, 2, 20, &["B", "C"]),
            update(&alice, 3, 30, &["C", "D"]),
        ])
        .await
        .unwrap();
    let one = hood(&*store, &alice, "A", 1, 10).await;
    assert_eq!(name_key(&one.center.name), "a");
    assert_eq!(keys(&one.entities), ["b"]);
    assert_eq!(pairs(&one), BTreeSet::from([pair("A", "B")]));
    let two = hood(&*store, &alice, "A", 2, 10).await;
    assert_eq!(keys(&two.entities), ["b", "c"]);
    assert_eq!(
        pairs(&two),
        BTreeSet::from([pair("A", "B"), pair("B", "C")])
    );
    assert!(two.entities.iter().all(|e| e.id != two.center.id));
    let from_c = hood(&*store, &alice, "c", 1, 10).await;
    assert_eq!(keys(&from_c.entities), ["b", "d"]);
    let from_d = hood(&*store, &alice, "D", 2, 10).await;
    assert_eq!(keys(&from_d.entities), ["b", "c"]);
    assert_eq!(
        pairs(&from_d),
        BTreeSet::from([pair("C", "D"), pair("B", "C")])
    );
}

/// Each hop walks at most `limit` edges, the strongest first, and an edge walked on the
/// first hop does not use up the second hop's budget.
pub async fn neighbourhood_limits_each_hop_strongest_first(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    let mut updates = Vec::new();
    // hub-x is related 3 times, hub-y twice, hub-z once; x-far once.
    for turn in 1..=3 {
        updates.push(update(&alice, turn, turn, &["hub", "x"]));
    }
    for turn in 4..=5 {
        updates.push(update(&alice, turn, turn, &["hub", "y"]));
    }
    updates.push(update(&alice, 6, 6, &["hub", "z"]));
    updates.push(update(&alice, 7, 7, &["x", "far"]));
    store.apply(&updates).await.unwrap();

    let all = hood(&*store, &alice, "hub", 1, 10).await;
    assert_eq!(keys(&all.entities), ["x", "y", "z"]);
    let weights: Vec<f64> = all.edges.iter().map(|e| e.weight).collect();
    assert_eq!(weights.len(), 3);
    assert_close(weights[0], 3.0, "strongest edge first");
    assert_close(weights[1], 2.0, "then the next");
    assert_close(weights[2], 1.0, "weakest last");
    assert_eq!(all.edges[0].count, 3);

    let two = hood(&*store, &alice, "hub", 1, 2).await;
    assert_eq!(keys(&two.entities), ["x", "y"]);
    assert_eq!(two.edges.len(), 2);
    let one = hood(&*store, &alice, "hub", 1, 1).await;
    assert_eq!(keys(&one.entities), ["x"]);

    // Depth 2, one edge per hop: hub-x, then x's strongest other edge, x-far.
    let deep = hood(&*store, &alice, "hub", 2, 1).await;
    assert_eq!(keys(&deep.entities), ["far", "x"]);
    assert_eq!(
        pairs(&deep),
        BTreeSet::from([pair("hub", "x"), pair("x", "far")])
    );
    let wide = hood(&*store, &alice, "hub", 2, 10).await;
    assert_eq!(keys(&wide.entities), ["far", "x", "y", "z"]);
    assert_eq!(wide.edges.len(), 4);
}

/// An entity the user does not have is `None`; depth must be 1 or 2.
pub async fn neighbourhood_of_unknown_entity_is_none_and_depth_is_checked(
    factory: &dyn GraphFactory,
) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    store
        .apply(&[update(&alice, 1, 10, &["Paris", "Lyon"])])
        .await
        .unwrap();
    assert_eq!(
        store
            .neighbourhood(&alice, "Atlantis", 1, 10)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .neighbourhood(&scope("acme", "bob"), "Paris", 1, 10)
            .await
            .unwrap(),
        None
    );
    // Names no entity can have (control characters are refused on write; PostgreSQL
    // refuses a NUL in a query) find nothing, without an error.
    for name in ["\0", "Par\0is", "Paris\u{7}"] {
        assert_eq!(
            store.neighbourhood(&alice, name, 1, 10).await.unwrap(),
            None,
            "{name:?}"
        );
        assert!(store
            .find_entities(&alice, &[name.to_owned()])
            .await
            .unwrap()
            .is_empty());
    }
    for depth in [0, 3] {
        let err = store
            .neighbourhood(&alice, "Paris", depth, 10)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "depth {depth}");
    }
    let found = hood(&*store, &alice, "  pARIS ", 1, 10).await;
    assert_eq!(found.center.name, "Paris");
    assert_eq!(keys(&found.entities), ["lyon"]);
}

/// What a context answer shows of the graph, in one read: the entities the names match
/// (by name or alias, the user's only) with their rank, and the top few exactly as
/// `user_entities` ranks them.
pub async fn context_entities_are_the_named_and_the_top_ranked(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let mut robert = EntityMention::new("Robert Smith", "person");
    robert.aliases = vec!["Bob".to_owned()];
    let mut updates: Vec<GraphUpdate> = (1..=3).map(|i| update(&alice, i, i, &["Rome"])).collect();
    updates.push(update(&alice, 4, 4, &["Kyoto", "Nara"]));
    updates.push(GraphUpdate {
        scope: alice.clone(),
        turn_id: TurnId(5),
        time: at(5),
        entities: vec![robert, EntityMention::new("Kyoto", "place")],
    });
    updates.push(update(&bob, 6, 6, &["Lima", "Nara"]));
    store.apply(&updates).await.unwrap();
    let recency = plain();
    let all = ranked(&*store, &alice).await;
    assert_eq!(all.len(), 4, "Rome, Kyoto, Nara, Robert Smith");

    let names: Vec<String> = ["nara", "BOB", "Lima", "  ", "Atlantis"]
        .map(str::to_owned)
        .to_vec();
    let got = store
        .context_entities(&alice, recency, &names, 2)
        .await
        .unwrap();
    assert_eq!(
        got.top,
        store.user_entities(&alice, recency, 2).await.unwrap(),
        "the top two as user_entities ranks them"
    );
    let mut want: Vec<RankedEntity> = all
        .iter()
        .filter(|r| ["nara", "robert smith"].contains(&name_key(&r.entity.name).as_str()))
        .cloned()
        .collect();
    want.sort_by_key(|r| r.entity.id);
    assert_eq!(
        got.matched, want,
        "Nara by name and Robert Smith by alias, with their ranks; not bob's Lima"
    );
    assert_eq!(
        got.matched
            .iter()
            .find(|r| r.entity.name == "Robert Smith")
            .map(|r| &r.entity.aliases),
        Some(&vec!["Bob".to_owned()]),
        "aliases are filled in"
    );

    let none = store
        .context_entities(&alice, recency, &[], 0)
        .await
        .unwrap();
    assert_eq!(
        none,
        ContextEntities::default(),
        "nothing asked, nothing read"
    );
    let stranger = store
        .context_entities(&scope("acme", "nobody"), recency, &names, 5)
        .await
        .unwrap();
    assert_eq!(stranger, ContextEntities::default());
}

/// Entities are found by canonical name or alias, ignoring case and spacing, and only
/// among the asking user's own.
pub async fn find_entities_by_name_or_alias_case_insensitively(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    let carol = scope("acme", "carol");
    let mut robert = EntityMention::new("Robert Smith", "person");
    robert.aliases = vec!["Bob".to_owned()];
    store
        .apply(&[GraphUpdate {
            scope: alice.clone(),
            turn_id: TurnId(1),
            time: at(10),
            entities: vec![robert.clone(), EntityMention::new("Lisbon", "place")],
        }])
        .await
        .unwrap();
    // A later turn adds an alias.
    robert.aliases = vec!["Bobby Smith".to_owned()];
    store
        .apply(&[GraphUpdate {
            scope: alice.clone(),
            turn_id: TurnId(2),
            time: at(20),
            entities: vec![robert],
        }])
        .await
        .unwrap();
    // Carol has her own "Bob", a different entity.
    store
        .apply(&[update(&carol, 3, 30, &["Bob"])])
        .await
        .unwrap();

    for query in [
        "Robert Smith",
        "robert  SMITH",
        "BOB",
        " bob ",
        "bobby smith",
    ] {
        let found = find(&*store, &alice, query).await;
        assert_eq!(found.len(), 1, "{query:?} finds alice's Robert only");
        assert_eq!(found[0].name, "Robert Smith");
        assert_eq!(found[0].kind, "person");
        let aliases: BTreeSet<String> = found[0].aliases.iter().map(|a| name_key(a)).collect();
        assert_eq!(
            aliases,
            BTreeSet::from(["bob".to_owned(), "bobby smith".to_owned()])
        );
    }
    let both = store
        .find_entities(
            &alice,
            &[
                "bob".to_owned(),
                "Robert Smith".to_owned(),
                "LISBON".to_owned(),
                "nobody".to_owned(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        keys(&both),
        ["lisbon", "robert smith"],
        "each entity once, unknown names ignored"
    );
    assert!(find(&*store, &alice, "nobody").await.is_empty());
    assert!(store.find_entities(&alice, &[]).await.unwrap().is_empty());

    let carols = find(&*store, &carol, "bob").await;
    assert_eq!(carols.len(), 1);
    assert_eq!(carols[0].name, "Bob");
    assert!(carols[0].aliases.is_empty());
    assert!(find(&*store, &carol, "Robert Smith").await.is_empty());
    assert!(find(&*store, &carol, "lisbon").await.is_empty());
    assert_ne!(carols[0].id, find(&*store, &alice, "bob").await[0].id);
}

/// The same user id in two tenants, and two users of one tenant, never see each other's
/// entities or edges, even with the same names and turn ids.
pub async fn tenants_and_users_are_isolated(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let sam_a = scope("tenant-a", "sam");
    let sam_b = scope("tenant-b", "sam");
    let kim_a = scope("tenant-a", "kim");
    store
        .apply(&[
            weighted(
                &sam_a,
                1,
                10,
                &[("Paris", 1.0), ("Lyon", 1.0), ("Secret A", 1.0)],
            ),
            weighted(&sam_a, 2, 20, &[("Paris", 1.0), ("Lyon", 1.0)]),
            weighted(&sam_b, 1, 30, &[("Paris", 5.0), ("Nice", 5.0)]),
            weighted(&kim_a, 1, 40, &[("Paris", 2.0), ("Lyon", 2.0)]),
        ])
        .await
        .unwrap();

    let names = |r: Vec<RankedEntity>| {
        let mut v: Vec<String> = r.iter().map(|r| name_key(&r.entity.name)).collect();
        v.sort();
        v
    };
    assert_eq!(
        names(ranked(&*store, &sam_a).await),
        ["lyon", "paris", "secret a"]
    );
    assert_eq!(names(ranked(&*store, &sam_b).await), ["nice", "paris"]);
    assert_eq!(names(ranked(&*store, &kim_a).await), ["lyon", "paris"]);

    let paris_a = stats(&*store, &sam_a, "Paris").await.unwrap();
    assert_eq!(paris_a.mentions, 2);
    assert_close(paris_a.weight, 2.0, "sam@a's Paris");
    assert_eq!(paris_a.entity.first_seen, at(10));
    assert_eq!(paris_a.entity.last_seen, at(20));
    let paris_b = stats(&*store, &sam_b, "Paris").await.unwrap();
    assert_eq!(paris_b.mentions, 1);
    assert_close(paris_b.weight, 5.0, "sam@b's Paris");
    assert_eq!(paris_b.entity.first_seen, at(30));
    let paris_k = stats(&*store, &kim_a, "Paris").await.unwrap();
    assert_eq!(paris_k.mentions, 1);
    assert_close(paris_k.weight, 2.0, "kim@a's Paris");
    let ids = BTreeSet::from([paris_a.entity.id, paris_b.entity.id, paris_k.entity.id]);
    assert_eq!(ids.len(), 3, "three different nodes");

    let edge = related(&*store, &sam_a, "Paris", "Lyon").await.unwrap();
    assert_eq!(
        (edge.count, edge.turns.clone()),
        (2, vec![TurnId(2), TurnId(1)])
    );
    let edge = related(&*store, &kim_a, "Paris", "Lyon").await.unwrap();
    assert_eq!((edge.count, edge.turns.clone()), (1, vec![TurnId(1)]));
    assert_eq!(related(&*store, &sam_b, "Paris", "Lyon").await, None);
    let hood_b = hood(&*store, &sam_b, "paris", 2, 10).await;
    assert_eq!(keys(&hood_b.entities), ["nice"]);
    let hood_k = hood(&*store, &kim_a, "paris", 2, 10).await;
    assert_eq!(keys(&hood_k.entities), ["lyon"]);

    for other in [&sam_b, &kim_a] {
        assert!(find(&*store, other, "Secret A").await.is_empty());
        assert_eq!(
            store.neighbourhood(other, "Secret A", 1, 10).await.unwrap(),
            None
        );
    }
    assert!(find(&*store, &sam_a, "Nice").await.is_empty());

    // Forgetting turn 1 of kim@a touches nobody else's turn 1.
    let before_a = snapshot(&*store, &sam_a, &["Paris", "Lyon", "Secret A"]).await;
    let before_b = snapshot(&*store, &sam_b, &["Paris", "Nice"]).await;
    store.forget_turn(&kim_a, TurnId(1)).await.unwrap();
    assert!(ranked(&*store, &kim_a).await.is_empty());
    assert_eq!(
        snapshot(&*store, &sam_a, &["Paris", "Lyon", "Secret A"]).await,
        before_a
    );
    assert_eq!(
        snapshot(&*store, &sam_b, &["Paris", "Nice"]).await,
        before_b
    );
}

/// Forgetting a user removes all of their graph and nothing of anyone else's; the user
/// can then start again from zero.
pub async fn forget_user_removes_only_that_user(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let alice_elsewhere = scope("other", "alice");
    let mut robert = EntityMention::new("Robert", "person");
    robert.aliases = vec!["Bob".to_owned()];
    let alice_turn = GraphUpdate {
        scope: alice.clone(),
        turn_id: TurnId(1),
        time: at(10),
        entities: vec![robert, EntityMention::new("Paris", "place")],
    };
    store
        .apply(&[
            alice_turn.clone(),
            update(&alice, 2, 20, &["Paris", "Lyon"]),
            update(&bob, 1, 10, &["Paris", "Lyon"]),
            update(&alice_elsewhere, 1, 10, &["Paris", "Robert"]),
        ])
        .await
        .unwrap();
    let bob_before = snapshot(&*store, &bob, &["Paris", "Lyon"]).await;
    let elsewhere_before = snapshot(&*store, &alice_elsewhere, &["Paris", "Robert"]).await;

    store.forget_user(&alice).await.unwrap();
    assert!(ranked(&*store, &alice).await.is_empty());
    for name in ["Robert", "Bob", "Paris", "Lyon"] {
        assert!(find(&*store, &alice, name).await.is_empty(), "{name}");
        assert_eq!(
            store.neighbourhood(&alice, name, 2, 10).await.unwrap(),
            None,
            "{name}"
        );
    }
    assert_eq!(
        snapshot(&*store, &bob, &["Paris", "Lyon"]).await,
        bob_before
    );
    assert_eq!(
        snapshot(&*store, &alice_elsewhere, &["Paris", "Robert"]).await,
        elsewhere_before
    );
    // Forgetting a user with nothing stored is fine.
    store.forget_user(&alice).await.unwrap();

    // The same turn applied again counts from zero.
    store.apply(&[alice_turn]).await.unwrap();
    let all = ranked(&*store, &alice).await;
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|r| r.mentions == 1));
    let robert = stats(&*store, &alice, "Robert").await.unwrap();
    assert_close(robert.weight, 1.0, "Robert's weight after re-adding");
    assert_eq!(robert.entity.first_seen, at(10));
    assert_eq!(find(&*store, &alice, "bob").await.len(), 1);
    let edge = related(&*store, &alice, "Robert", "Paris").await.unwrap();
    assert_eq!((edge.count, edge.turns), (1, vec![TurnId(1)]));
    assert_eq!(related(&*store, &alice, "Paris", "Lyon").await, None);
}

/// Forgetting a turn takes its support back out: weights and counts drop, first and
/// last seen are recomputed, and edges and entities only it supported go.
pub async fn forget_turn_takes_back_its_support(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    store
        .apply(&[
            weighted(&alice, 1, 10, &[("A", 1.0), ("B", 1.0)]),
            weighted(&alice, 2, 20, &[("A", 2.0), ("B", 2.0), ("C", 2.0)]),
            weighted(&alice, 3, 30, &[("A", 4.0)]),
        ])
        .await
        .unwrap();
    let a = stats(&*store, &alice, "A").await.unwrap();
    assert_eq!((a.mentions, a.entity.last_seen), (3, at(30)));
    assert_close(a.weight, 7.0, "A before");

    store.forget_turn(&alice, TurnId(3)).await.unwrap();
    let a = stats(&*store, &alice, "A").await.unwrap();
    assert_eq!(a.mentions, 2);
    assert_close(a.weight, 3.0, "A without turn 3");
    assert_eq!(a.entity.first_seen, at(10));
    assert_eq!(a.entity.last_seen, at(20), "last seen recomputed");

    store.forget_turn(&alice, TurnId(2)).await.unwrap();
    assert!(
        find(&*store, &alice, "C").await.is_empty(),
        "C was only mentioned in turn 2"
    );
    assert_eq!(store.neighbourhood(&alice, "C", 1, 10).await.unwrap(), None);
    let all = ranked(&*store, &alice).await;
    assert_eq!(
        keys(&all.into_iter().map(|r| r.entity).collect::<Vec<_>>()),
        ["a", "b"]
    );
    for name in ["A", "B"] {
        let s = stats(&*store, &alice, name).await.unwrap();
        assert_eq!(s.mentions, 1, "{name}");
        assert_close(s.weight, 1.0, name);
        assert_eq!(s.entity.first_seen, at(10), "{name}");
        assert_eq!(s.entity.last_seen, at(10), "{name}");
    }
    let hood_a = hood(&*store, &alice, "A", 2, 10).await;
    assert_eq!(
        keys(&hood_a.entities),
        ["b"],
        "A-C and B-C went with turn 2"
    );
    assert_eq!(hood_a.edges.len(), 1);
    let edge = &hood_a.edges[0];
    assert_eq!((edge.count, edge.turns.clone()), (1, vec![TurnId(1)]));
    assert_close(edge.weight, 1.0, "A-B without turn 2");
    assert_eq!((edge.first_seen, edge.last_seen), (at(10), at(10)));

    // A turn that supports nothing of this user changes nothing.
    let before = snapshot(&*store, &alice, &["A", "B"]).await;
    store.forget_turn(&alice, TurnId(99)).await.unwrap();
    store.forget_turn(&alice, TurnId(2)).await.unwrap();
    assert_eq!(snapshot(&*store, &alice, &["A", "B"]).await, before);

    store.forget_turn(&alice, TurnId(1)).await.unwrap();
    assert!(ranked(&*store, &alice).await.is_empty());
    assert!(find(&*store, &alice, "A").await.is_empty());
    assert_eq!(store.neighbourhood(&alice, "A", 1, 10).await.unwrap(), None);
}

/// Unusable names, kinds, aliases and weights are refused as invalid input, and a batch
/// holding one applies nothing.
pub async fn invalid_input_is_refused_and_nothing_is_applied(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    let good = update(&alice, 1, 10, &["Paris", "Lyon"]);
    let mention = |name: &str, kind: &str, alias: Option<&str>, weight: f64| EntityMention {
        name: name.to_owned(),
        kind: kind.to_owned(),
        aliases: alias.map(str::to_owned).into_iter().collect(),
        weight,
    };
    let bad_mentions = [
        mention("", "topic", None, 1.0),
        mention("   ", "topic", None, 1.0),
        mention("line\nbreak", "topic", None, 1.0),
        mention("nul\0byte", "topic", None, 1.0),
        mention("bell\u{7}", "topic", None, 1.0),
        mention("Nice", "", None, 1.0),
        mention("Nice", "place", Some("tab\there"), 1.0),
        mention("Nice", "place", Some(""), 1.0),
        mention("Nice", "place", None, 0.0),
        mention("Nice", "place", None, -1.0),
        mention("Nice", "place", None, f64::NAN),
        mention("Nice", "place", None, f64::INFINITY),
    ];
    for bad in bad_mentions {
        let bad_update = GraphUpdate {
            scope: alice.clone(),
            turn_id: TurnId(2),
            time: at(20),
            entities: vec![EntityMention::new("Marseille", "place"), bad.clone()],
        };
        let err = store.apply(&[good.clone(), bad_update]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        assert!(
            ranked(&*store, &alice).await.is_empty(),
            "nothing of the batch with {bad:?} was applied"
        );
        for name in ["Paris", "Marseille", "Nice"] {
            assert!(find(&*store, &alice, name).await.is_empty(), "{name}");
        }
    }
    // The good update alone goes through, with nothing left over from the refusals.
    store.apply(&[good]).await.unwrap();
    let all = ranked(&*store, &alice).await;
    assert_eq!(
        keys(&all.into_iter().map(|r| r.entity).collect::<Vec<_>>()),
        ["lyon", "paris"]
    );
    let edge = related(&*store, &alice, "Paris", "Lyon").await.unwrap();
    assert_eq!(edge.count, 1);
}

/// Emoji, CJK, Arabic, Hebrew and combining names, kinds and aliases come back byte for
/// byte, and match ignoring case.
pub async fn unicode_names_round_trip(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let user = scope("テナント", "用户-😀");
    let entities: Vec<EntityMention> = UNICODE_SAMPLES
        .iter()
        .enumerate()
        .map(|(i, name)| EntityMention {
            name: (*name).to_owned(),
            kind: "مكان 🗺️".to_owned(),
            aliases: vec![format!("別名 {i} 🍣")],
            weight: 1.0,
        })
        .collect();
    store
        .apply(&[GraphUpdate {
            scope: user.clone(),
            turn_id: TurnId(1),
            time: at(10),
            entities,
        }])
        .await
        .unwrap();
    for (i, name) in UNICODE_SAMPLES.iter().enumerate() {
        for query in [
            name.to_string(),
            name.to_uppercase(),
            format!("別名 {i} 🍣"),
        ] {
            let found = find(&*store, &user, &query).await;
            assert_eq!(found.len(), 1, "{query:?}");
            assert_eq!(found[0].name, *name);
            assert_eq!(found[0].kind, "مكان 🗺️");
            assert_eq!(found[0].aliases, vec![format!("別名 {i} 🍣")]);
        }
        let hood = hood(&*store, &user, name, 1, 100).await;
        assert_eq!(hood.center.name, *name);
        assert_eq!(hood.entities.len(), UNICODE_SAMPLES.len() - 1);
    }
    let got: BTreeSet<String> = ranked(&*store, &user)
        .await
        .into_iter()
        .map(|r| r.entity.name)
        .collect();
    let want: BTreeSet<String> = UNICODE_SAMPLES.iter().map(|s| s.to_string()).collect();
    assert_eq!(got, want);
}

/// Quotes, backslashes, SQL and Cypher fragments and template syntax, in tenant and user
/// ids, entity names, kinds and aliases, come back byte for byte, are found by name and
/// alias, and are never run: forgetting that user leaves another user's graph whole.
pub async fn hostile_names_round_trip_verbatim(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    let alice = scope("acme", "alice");
    store
        .apply(&[update(&alice, 1, 10, &["Paris"])])
        .await
        .unwrap();
    let user = scope(HOSTILE_SAMPLES[3], HOSTILE_SAMPLES[1]);
    let alias = |i: usize| format!("{} alias {i}", HOSTILE_SAMPLES[i]);
    let entities: Vec<EntityMention> = HOSTILE_SAMPLES
        .iter()
        .enumerate()
        .map(|(i, name)| EntityMention {
            name: (*name).to_owned(),
            kind: HOSTILE_SAMPLES[(i + 1) % HOSTILE_SAMPLES.len()].to_owned(),
            aliases: vec![alias(i)],
            weight: 1.0,
        })
        .collect();
    store
        .apply(&[GraphUpdate {
            scope: user.clone(),
            turn_id: TurnId(2),
            time: at(20),
            entities: entities.clone(),
        }])
        .await
        .unwrap();
    for (i, mention) in entities.iter().enumerate() {
        for query in [mention.name.clone(), alias(i)] {
            let found = find(&*store, &user, &query).await;
            assert_eq!(found.len(), 1, "{query:?}");
            assert_eq!(found[0].name, mention.name);
            assert_eq!(found[0].kind, mention.kind);
            assert_eq!(found[0].aliases, mention.aliases);
        }
        let hood = hood(&*store, &user, &mention.name, 1, 100).await;
        assert_eq!(hood.center.name, mention.name);
        assert_eq!(hood.entities.len(), HOSTILE_SAMPLES.len() - 1);
    }
    let got: BTreeSet<String> = ranked(&*store, &user)
        .await
        .into_iter()
        .map(|r| r.entity.name)
        .collect();
    let want: BTreeSet<String> = HOSTILE_SAMPLES.iter().map(|s| s.to_string()).collect();
    assert_eq!(got, want);
    store.forget_user(&user).await.unwrap();
    assert!(ranked(&*store, &user).await.is_empty());
    assert_eq!(keys(&find(&*store, &alice, "Paris").await), ["paris"]);
}

/// What was applied is still there after the store is closed and reopened, and turns
/// applied before the restart still count once.
pub async fn data_survives_reopening(factory: &dyn GraphFactory) {
    let alice = scope("acme", "alice");
    let names = ["Paris", "Lyon", "Nice", "Robert"];
    let mut robert = EntityMention::new("Robert", "person");
    robert.aliases = vec!["Bob".to_owned()];
    let updates = vec![
        weighted(&alice, 1, 10, &[("Paris", 2.0), ("Lyon", 1.0)]),
        update(&alice, 2, 20, &["Lyon", "Nice"]),
        GraphUpdate {
            scope: alice.clone(),
            turn_id: TurnId(3),
            time: at(30),
            entities: vec![robert, EntityMention::new("Paris", "place")],
        },
    ];
    let before = {
        let store = open(factory).await;
        store.apply(&updates).await.unwrap();
        snapshot(&*store, &alice, &names).await
    };
    assert_eq!(before.0.len(), 4);

    let store = open(factory).await;
    assert_eq!(snapshot(&*store, &alice, &names).await, before);
    assert_eq!(find(&*store, &alice, "bob").await.len(), 1);
    store.apply(&updates).await.unwrap();
    assert_eq!(
        snapshot(&*store, &alice, &names).await,
        before,
        "turns applied before the restart are not counted again"
    );
    store.forget_turn(&alice, TurnId(2)).await.unwrap();
    let after_forget = snapshot(&*store, &alice, &names).await;
    assert!(find(&*store, &alice, "Nice").await.is_empty());

    let store = open(factory).await;
    assert_eq!(snapshot(&*store, &alice, &names).await, after_forget);
    assert_eq!(related(&*store, &alice, "Lyon", "Nice").await, None);
    let lyon = stats(&*store, &alice, "Lyon").await.unwrap();
    assert_eq!(lyon.mentions, 1);
}

/// A backend that serves answers a ping (health asks it before calling the tier up).
pub async fn a_reachable_graph_answers_ping(factory: &dyn GraphFactory) {
    let store = open(factory).await;
    store.ping().await.expect("the backend answers");
}
