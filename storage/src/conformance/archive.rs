//! Conformance suite of [`ArchiveStore`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{at, new_turn, scope, session, t0, HOSTILE_SAMPLES, MULTILINE_SAMPLE, UNICODE_SAMPLES};
use crate::archive::{ArchiveStore, HistoryPage, RecentGap};
use crate::clock::{ManualClock, SharedClock};
use crate::error::ErrorKind;
use crate::limits::InputLimits;
use crate::model::{
    EmotionScores, EmotionState, ExternalId, NewSummary, NewTurn, Role, Scope, ScoredTurn,
    SessionId, SummaryId, TenantId, Turn, TurnAnnotation, TurnId, UserId,
};

/// Opens a backend of the archive tier at one location per factory.
#[async_trait]
pub trait ArchiveFactory: Send + Sync {
    /// Opens the archive at the factory's location; a second call closes the first
    /// archive and reopens the same data, as a restart would.
    async fn open(&self, limits: InputLimits, clock: SharedClock) -> Arc<dyn ArchiveStore>;
}

/// Expands to one `#[tokio::test]` per body of this suite, each opening its backend with
/// `$factory` (an expression evaluating to an [`ArchiveFactory`]).
#[macro_export]
macro_rules! archive_conformance {
    ($factory:expr) => {
        $crate::archive_conformance!(@tests $factory;
            append_assigns_increasing_ids_and_keeps_every_field,
            event_time_defaults_to_ingest_time,
            same_external_id_twice_stores_one_turn,
            same_external_id_twice_in_one_batch_stores_one_turn,
            external_ids_are_per_user,
            group_commit_stores_thousands_in_one_call,
            concurrent_appends_are_all_stored_with_distinct_ids,
            outbox_reads_every_tenant_in_id_order,
            head_never_moves_back,
            outbox_head_lets_readers_pass_ids_never_stored,
            history_pages_newest_first_without_gaps_or_repeats,
            history_is_scoped_to_user_and_session,
            lookups_by_id_never_cross_users,
            turns_around_are_the_turns_and_their_session_neighbours,
            same_user_id_in_two_tenants_is_isolated,
            bad_turns_are_refused_and_store_nothing,
            bad_ids_are_refused,
            unicode_round_trips,
            hostile_text_round_trips_verbatim,
            annotations_attach_to_turns,
            scores_made_before_storing_are_stored_with_the_turn,
            summaries_are_idempotent_per_range,
            bad_summaries_are_refused,
            summaries_in_one_call_answer_each_with_its_outcome,
            unsummarized_turns_of_many_sessions_in_one_read,
            outbox_turns_are_read_back_by_id_for_every_user,
            checkpoints_are_per_processor,
            emotion_state_is_per_user,
            emotion_states_of_many_users_in_one_call,
            forget_user_removes_every_row_of_that_user_only,
            forget_turn_removes_the_turn_and_its_summaries,
            forgets_are_in_the_outbox_in_order_with_the_turns,
            nothing_derived_from_forgotten_turns_is_written_back,
            recent_gaps_keep_the_highest_stamp_until_a_later_refill_clears_them,
            sessions_between_ids_are_listed_once_newest_first,
            everything_survives_close_and_reopen,
            stats_count_what_is_stored,
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let factory = $factory;
                $crate::conformance::archive::$name(&factory).await;
            }
        )*
    };
}

fn clock() -> (Arc<ManualClock>, SharedClock) {
    let manual = ManualClock::new(t0());
    let shared: SharedClock = manual.clone();
    (manual, shared)
}

async fn open(factory: &dyn ArchiveFactory) -> Arc<dyn ArchiveStore> {
    factory.open(InputLimits::default(), clock().1).await
}

async fn store(archive: &dyn ArchiveStore, turns: Vec<NewTurn>) -> Vec<Turn> {
    archive
        .append_batch(turns)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.turn)
        .collect()
}

/// Stores `count` turns of `scope` in session "s", their texts `prefix` and their number.
async fn store_numbered(
    archive: &dyn ArchiveStore,
    scope: &Scope,
    prefix: &str,
    count: usize,
) -> Vec<Turn> {
    let turns = (0..count)
        .map(|i| new_turn(scope, "s", &format!("{prefix}{i}")))
        .collect();
    store(archive, turns).await
}

fn with_ext(mut turn: NewTurn, ext: &str) -> NewTurn {
    turn.external_id = Some(ExternalId::new(ext).unwrap());
    turn
}

fn ids(turns: &[Turn]) -> Vec<i64> {
    turns.iter().map(|t| t.id.0).collect()
}

async fn all_history(archive: &dyn ArchiveStore, scope: &Scope, s: &str) -> Vec<Turn> {
    archive
        .history(
            scope,
            &session(s),
            HistoryPage {
                before: None,
                limit: 100_000,
            },
        )
        .await
        .unwrap()
}

fn summary(scope: &Scope, s: &str, first: i64, last: i64, text: &str) -> NewSummary {
    NewSummary {
        scope: scope.clone(),
        session_id: session(s),
        first_turn: TurnId(first),
        last_turn: TurnId(last),
        text: text.into(),
        keywords: vec!["alpha".into(), "beta".into()],
        start_time: at(first),
        end_time: at(last),
    }
}

fn emotion(joy: f32) -> EmotionScores {
    EmotionScores {
        labels: [("joy".to_string(), joy), ("sadness".to_string(), 1.0 - joy)]
            .into_iter()
            .collect(),
        valence: joy * 2.0 - 1.0,
        arousal: 0.5,
    }
}

/// Ids increase in submission order and the stored turn keeps every submitted field.
pub async fn append_assigns_increasing_ids_and_keeps_every_field(factory: &dyn ArchiveFactory) {
    let (_, clock) = clock();
    let archive = factory.open(InputLimits::default(), clock).await;
    let alice = scope("acme", "alice");
    let mut first = new_turn(&alice, "s1", "I adopted a cat named Miso");
    first.speaker = Some("Alice".into());
    first.event_time = Some(at(-3600));
    first.metadata = serde_json::json!({"source": "import", "tags": ["pets"]});
    let mut second = new_turn(&alice, "s1", "That is lovely!");
    second.role = Role::Assistant;
    let stored = archive
        .append_batch(vec![first.clone(), second])
        .await
        .unwrap();
    assert!(stored.iter().all(|a| a.created));
    let (a, b) = (&stored[0].turn, &stored[1].turn);
    assert!(
        a.id.0 > 0 && b.id > a.id,
        "ids increase: {} then {}",
        a.id,
        b.id
    );
    assert_eq!(a.content, first.content);
    assert_eq!(a.speaker.as_deref(), Some("Alice"));
    assert_eq!(a.role, Role::User);
    assert_eq!(b.role, Role::Assistant);
    assert_eq!(a.event_time, at(-3600));
    assert_eq!(a.ingest_time, t0());
    assert_eq!(a.metadata, first.metadata);
    assert!(!a.external_id.as_str().is_empty());
    assert_ne!(
        a.external_id, b.external_id,
        "generated external ids are unique"
    );
    let read = archive.get_turns(&alice, &[a.id, b.id]).await.unwrap();
    assert_eq!(
        read,
        vec![a.clone(), b.clone()],
        "what is read is what was returned"
    );
}

/// Without a client event time, a turn's event time is its ingest time.
pub async fn event_time_defaults_to_ingest_time(factory: &dyn ArchiveFactory) {
    let (manual, clock) = clock();
    let archive = factory.open(InputLimits::default(), clock).await;
    manual.advance(Duration::from_secs(42));
    let alice = scope("acme", "alice");
    let turn = &store(&*archive, vec![new_turn(&alice, "s", "hi")]).await[0];
    assert_eq!(turn.event_time, at(42));
    assert_eq!(turn.ingest_time, at(42));
}

/// The same external id stored twice is one turn; the second answer is the first turn.
pub async fn same_external_id_twice_stores_one_turn(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let first = archive
        .append_batch(vec![with_ext(new_turn(&alice, "s", "original"), "msg-1")])
        .await
        .unwrap();
    let again = archive
        .append_batch(vec![
            with_ext(new_turn(&alice, "s", "retried, different text"), "msg-1"),
            new_turn(&alice, "s", "a new one"),
        ])
        .await
        .unwrap();
    assert!(first[0].created);
    assert!(
        !again[0].created,
        "a repeated external id is not created again"
    );
    assert_eq!(
        again[0].turn, first[0].turn,
        "the answer is the turn stored first"
    );
    assert!(again[1].created);
    let history = all_history(&*archive, &alice, "s").await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].content, "original");
}

/// Within one batch, the same turn sent twice under one external id is stored once and
/// both answers match; two different turns under one external id are refused (the second
/// would be dropped unseen), and nothing of the batch is stored.
pub async fn same_external_id_twice_in_one_batch_stores_one_turn(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let got = archive
        .append_batch(vec![
            with_ext(new_turn(&alice, "s", "one"), "dup"),
            with_ext(new_turn(&alice, "s", "one"), "dup"),
        ])
        .await
        .unwrap();
    assert!(got[0].created);
    assert!(!got[1].created);
    assert_eq!(got[0].turn, got[1].turn);
    assert_eq!(all_history(&*archive, &alice, "s").await.len(), 1);

    let refused = archive
        .append_batch(vec![
            with_ext(new_turn(&alice, "s", "three"), "other"),
            with_ext(new_turn(&alice, "s", "four"), "dup2"),
            with_ext(new_turn(&alice, "s", "five"), "dup2"),
        ])
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), crate::ErrorKind::InvalidInput, "{refused}");
    assert_eq!(all_history(&*archive, &alice, "s").await.len(), 1);
}

/// Two users may use the same external id; each gets their own turn.
pub async fn external_ids_are_per_user(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let a = &store(
        &*archive,
        vec![with_ext(new_turn(&alice, "s", "alice's"), "m1")],
    )
    .await[0];
    let b = &store(
        &*archive,
        vec![with_ext(new_turn(&bob, "s", "bob's"), "m1")],
    )
    .await[0];
    assert_ne!(a.id, b.id);
    let ext = ExternalId::new("m1").unwrap();
    let found = archive
        .find_by_external_id(&bob, &ext)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.content, "bob's");
}

/// Thousands of turns in one call are stored in one go, in order.
pub async fn group_commit_stores_thousands_in_one_call(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let users: Vec<Scope> = (0..10)
        .map(|u| scope("acme", &format!("user-{u}")))
        .collect();
    let batch: Vec<NewTurn> = (0..3_000)
        .map(|i| {
            new_turn(
                &users[i % 10],
                &format!("s{}", i % 3),
                &format!("turn number {i}"),
            )
        })
        .collect();
    let stored = store(&*archive, batch).await;
    assert_eq!(stored.len(), 3_000);
    assert!(
        stored.windows(2).all(|w| w[0].id < w[1].id),
        "ids follow submission order"
    );
    for (i, t) in stored.iter().enumerate() {
        assert_eq!(t.content, format!("turn number {i}"));
        assert_eq!(t.scope, users[i % 10]);
    }
    let outbox = archive.turns_after(TurnId(0), 10_000).await.unwrap();
    assert_eq!(ids(&outbox), ids(&stored));
}

/// Appends racing from many tasks are all stored, each with its own id.
pub async fn concurrent_appends_are_all_stored_with_distinct_ids(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let mut tasks = Vec::new();
    for w in 0..16 {
        let archive = archive.clone();
        tasks.push(tokio::spawn(async move {
            let user = scope("acme", &format!("writer-{w}"));
            let mut got = Vec::new();
            for i in 0..20 {
                let t = archive
                    .append_batch(vec![new_turn(&user, "s", &format!("{w}/{i}"))])
                    .await
                    .unwrap();
                got.push(t[0].turn.id);
            }
            got
        }));
    }
    let mut all = HashSet::new();
    for task in tasks {
        for id in task.await.unwrap() {
            assert!(all.insert(id), "id {id} given twice");
        }
    }
    assert_eq!(all.len(), 320);
    assert_eq!(
        archive.turns_after(TurnId(0), 1_000).await.unwrap().len(),
        320
    );
}

/// The outbox returns turns of every tenant in id order, paged by the last id seen.
pub async fn outbox_reads_every_tenant_in_id_order(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let a = scope("tenant-a", "u");
    let b = scope("tenant-b", "u");
    let mut expected = Vec::new();
    for i in 0..25 {
        let user = if i % 2 == 0 { &a } else { &b };
        expected.extend(ids(&store(
            &*archive,
            vec![new_turn(user, "s", &format!("t{i}"))],
        )
        .await));
    }
    let mut seen = Vec::new();
    let mut after = TurnId(0);
    loop {
        let page = archive.turns_after(after, 7).await.unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        after = last.id;
        seen.extend(ids(&page));
    }
    assert_eq!(seen, expected);
}

/// `head` is the highest id ever assigned, even after the newest turn is forgotten (the
/// forget takes an id of its own, above it).
pub async fn head_never_moves_back(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    assert_eq!(archive.head().await.unwrap(), TurnId(0));
    let alice = scope("acme", "alice");
    let stored = store(
        &*archive,
        vec![new_turn(&alice, "s", "a"), new_turn(&alice, "s", "b")],
    )
    .await;
    let last = stored[1].id;
    assert_eq!(archive.head().await.unwrap(), last);
    archive.forget_turn(&alice, last).await.unwrap();
    let after_forget = archive.head().await.unwrap();
    assert!(after_forget > last, "the forget's place is above the turn");
    let next = &store(&*archive, vec![new_turn(&alice, "s", "c")]).await[0];
    assert!(next.id > after_forget, "ids are never reused");
}

/// The outbox answers the head of the same read; with nothing left to read, a reader
/// can move up to it past ids a repeated external id used up or a forget removed.
pub async fn outbox_head_lets_readers_pass_ids_never_stored(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let first = &store(&*archive, vec![with_ext(new_turn(&alice, "s", "one"), "x")]).await[0];
    let page = archive.outbox(TurnId(0), 10).await.unwrap();
    assert_eq!(ids(&page.turns), vec![first.id.0]);
    assert!(page.head >= first.id);
    // A repeat of the external id stores nothing, whatever it does to the id sequence.
    store(
        &*archive,
        vec![with_ext(new_turn(&alice, "s", "again"), "x")],
    )
    .await;
    let page = archive.outbox(first.id, 10).await.unwrap();
    assert!(page.turns.is_empty());
    assert_eq!(page.head, archive.head().await.unwrap());
    // A turn forgotten before anyone read it is gone from the page; its forget is there,
    // and is the head.
    let second = &store(&*archive, vec![new_turn(&alice, "s", "two")]).await[0];
    archive.forget_turn(&alice, second.id).await.unwrap();
    let page = archive.outbox(first.id, 10).await.unwrap();
    assert!(page.turns.is_empty());
    assert_eq!(page.forgets.len(), 1);
    assert_eq!(page.forgets[0].turn, Some(second.id));
    assert_eq!(page.head, page.forgets[0].seq);
    let third = &store(&*archive, vec![new_turn(&alice, "s", "three")]).await[0];
    let page = archive.outbox(page.head, 10).await.unwrap();
    assert_eq!(ids(&page.turns), vec![third.id.0]);
}

/// History pages run newest first and together hold every turn exactly once.
pub async fn history_pages_newest_first_without_gaps_or_repeats(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let stored = store_numbered(&*archive, &alice, "m", 23).await;
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = archive
            .history(&alice, &session("s"), HistoryPage { before, limit: 5 })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        before = page.last().map(|t| t.id);
        pages.extend(ids(&page));
    }
    let mut expected = ids(&stored);
    expected.reverse();
    assert_eq!(pages, expected);
}

/// History shows one user's one session only.
pub async fn history_is_scoped_to_user_and_session(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    store(
        &*archive,
        vec![
            new_turn(&alice, "s1", "alice s1"),
            new_turn(&alice, "s2", "alice s2"),
            new_turn(&bob, "s1", "bob s1"),
        ],
    )
    .await;
    let h = all_history(&*archive, &alice, "s1").await;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].content, "alice s1");
    assert!(all_history(&*archive, &bob, "s2").await.is_empty());
}

/// Lookups by id or external id answer only the caller's own turns.
pub async fn lookups_by_id_never_cross_users(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let a = &store(
        &*archive,
        vec![with_ext(new_turn(&alice, "s", "private"), "x")],
    )
    .await[0];
    let b = &store(&*archive, vec![new_turn(&bob, "s", "bob")]).await[0];
    let got = archive.get_turns(&bob, &[a.id, b.id]).await.unwrap();
    assert_eq!(ids(&got), vec![b.id.0]);
    let ext = ExternalId::new("x").unwrap();
    assert!(archive
        .find_by_external_id(&bob, &ext)
        .await
        .unwrap()
        .is_none());
    assert!(archive.get_turns(&bob, &[]).await.unwrap().is_empty());
}

/// `turns_around` answers the given turns of the user and the turn before and after each
/// in its own session, skipping other sessions and users written in between, and never
/// another user's turns.
pub async fn turns_around_are_the_turns_and_their_session_neighbours(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let t = store(
        &*archive,
        vec![
            new_turn(&alice, "s1", "a1"),
            new_turn(&alice, "s2", "other session"),
            new_turn(&bob, "s1", "bob"),
            new_turn(&alice, "s1", "a2"),
            new_turn(&alice, "s1", "a3"),
            new_turn(&alice, "s1", "a4"),
            new_turn(&alice, "s1", "a5"),
        ],
    )
    .await;
    let (a1, other, b, a2, a3, a4, a5) = (&t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6]);
    let around = |who: Scope, of: Vec<TurnId>| {
        let archive = archive.clone();
        async move { ids(&archive.turns_around(&who, &of).await.unwrap()) }
    };
    let id = |t: &Turn| t.id.0;
    assert_eq!(
        around(alice.clone(), vec![a2.id]).await,
        vec![id(a1), id(a2), id(a3)]
    );
    assert_eq!(
        around(alice.clone(), vec![a1.id]).await,
        vec![id(a1), id(a2)]
    );
    assert_eq!(
        around(alice.clone(), vec![a5.id]).await,
        vec![id(a4), id(a5)]
    );
    assert_eq!(
        around(alice.clone(), vec![a4.id, a2.id]).await,
        vec![id(a1), id(a2), id(a3), id(a4), id(a5)],
        "each turn once, in id order"
    );
    assert_eq!(
        around(alice.clone(), vec![other.id]).await,
        vec![id(other)],
        "alone in its session"
    );
    assert!(
        around(alice.clone(), vec![b.id]).await.is_empty(),
        "not alice's turn"
    );
    assert!(
        around(bob.clone(), vec![a2.id]).await.is_empty(),
        "not bob's turn"
    );
    assert_eq!(around(bob, vec![b.id]).await, vec![id(b)]);
    assert!(around(alice.clone(), vec![]).await.is_empty());
    assert!(around(alice, vec![TurnId(999_999)]).await.is_empty());
}

/// The same user id in two tenants is two users in every read.
pub async fn same_user_id_in_two_tenants_is_isolated(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let a = scope("tenant-a", "sam");
    let b = scope("tenant-b", "sam");
    let ta = &store(
        &*archive,
        vec![with_ext(new_turn(&a, "s", "a's secret"), "e")],
    )
    .await[0];
    let tb = &store(
        &*archive,
        vec![with_ext(new_turn(&b, "s", "b's secret"), "e")],
    )
    .await[0];
    assert_ne!(ta.id, tb.id);
    assert_eq!(ids(&all_history(&*archive, &a, "s").await), vec![ta.id.0]);
    assert_eq!(ids(&all_history(&*archive, &b, "s").await), vec![tb.id.0]);
    assert!(archive.get_turns(&b, &[ta.id]).await.unwrap().is_empty());
    archive
        .put_summary(summary(&a, "s", ta.id.0, ta.id.0, "a summary"))
        .await
        .unwrap();
    assert!(archive.summaries(&b, None, 10).await.unwrap().is_empty());
    archive.forget_user(&a).await.unwrap();
    assert_eq!(ids(&all_history(&*archive, &b, "s").await), vec![tb.id.0]);
}

/// Every kind of bad turn is refused as invalid input, naming the field, and a batch
/// holding one bad turn stores nothing at all.
pub async fn bad_turns_are_refused_and_store_nothing(factory: &dyn ArchiveFactory) {
    let limits = InputLimits {
        max_content_bytes: 100,
        max_metadata_bytes: 64,
        max_batch_turns: 50,
    };
    let archive = factory.open(limits, clock().1).await;
    let alice = scope("acme", "alice");
    let ok = || new_turn(&alice, "s", "fine");
    let mut cases: Vec<(&str, NewTurn)> = vec![
        ("content", new_turn(&alice, "s", "")),
        ("content", new_turn(&alice, "s", " \n\t ")),
        ("content", new_turn(&alice, "s", &"x".repeat(101))),
        ("content", new_turn(&alice, "s", "nul \0 inside")),
    ];
    for metadata in [
        serde_json::json!([1, 2]),
        serde_json::json!("text"),
        serde_json::json!(null),
        serde_json::json!({"big": "y".repeat(100)}),
    ] {
        let mut t = ok();
        t.metadata = metadata;
        cases.push(("metadata", t));
    }
    let mut t = ok();
    t.speaker = Some("bad\u{1b}[31m".into());
    cases.push(("speaker", t));
    for (field, bad) in cases {
        let err = archive
            .append_batch(vec![ok(), bad.clone(), ok()])
            .await
            .expect_err("a bad turn is refused");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains(field), "{err} names {field}");
    }
    let too_many: Vec<NewTurn> = (0..51).map(|_| ok()).collect();
    let err = archive.append_batch(too_many).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        all_history(&*archive, &alice, "s").await.is_empty(),
        "nothing was stored"
    );
    assert_eq!(archive.head().await.unwrap(), TurnId(0));
    assert_eq!(
        store(&*archive, vec![ok()]).await.len(),
        1,
        "the archive still works"
    );
}

/// Ids that are empty, too long or hold control characters cannot even be built, nor
/// arrive through JSON.
pub async fn bad_ids_are_refused(factory: &dyn ArchiveFactory) {
    let _archive = open(factory).await;
    for bad in ["", "   ", "a\nb", "tab\there", "\u{0}", &"x".repeat(257)] {
        assert_eq!(
            UserId::new(bad).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert!(TenantId::new(bad).is_err());
        assert!(SessionId::new(bad).is_err());
        assert!(ExternalId::new(bad).is_err());
    }
    assert!(UserId::new("x".repeat(256)).is_ok());
    let json = serde_json::json!({
        "scope": {"tenant": "acme", "user": "bad\u{7}user"},
        "session_id": "s", "role": "user", "speaker": null, "content": "hi",
        "event_time": null, "metadata": {}, "external_id": null
    });
    let err = serde_json::from_value::<NewTurn>(json).unwrap_err();
    assert!(err.to_string().contains("user_id"), "{err}");
}

/// Emoji, CJK, right-to-left and combining text, in content, ids, speaker and
/// metadata, come back byte for byte.
pub async fn unicode_round_trips(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let user = scope("テナント", "用户-😀");
    let turns: Vec<NewTurn> = UNICODE_SAMPLES
        .iter()
        .map(|text| {
            let mut t = new_turn(&user, "جلسة", text);
            t.speaker = Some("Zoë 🦊".into());
            t.metadata = serde_json::json!({"نص": text, "emoji": "🎉"});
            t
        })
        .collect();
    let stored = store(&*archive, turns.clone()).await;
    let read = all_history(&*archive, &user, "جلسة").await;
    assert_eq!(read.len(), turns.len());
    for (original, got) in turns.iter().zip(read.iter().rev()) {
        assert_eq!(got.content, original.content);
        assert_eq!(got.speaker, original.speaker);
        assert_eq!(got.metadata, original.metadata);
        assert_eq!(got.scope, user);
    }
    assert_eq!(ids(&stored).len(), UNICODE_SAMPLES.len());
}

/// Quotes, backslashes, SQL and Cypher fragments and template syntax, in ids, content,
/// speaker, external ids, metadata and summaries, are stored and read back byte for
/// byte, found by every lookup, and never run: another user's rows are untouched.
pub async fn hostile_text_round_trips_verbatim(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = store(
        &*archive,
        vec![new_turn(&scope("acme", "alice"), "s", "safe")],
    )
    .await;
    let user = scope(HOSTILE_SAMPLES[0], HOSTILE_SAMPLES[2]);
    let contents: Vec<&str> = HOSTILE_SAMPLES
        .iter()
        .copied()
        .chain([MULTILINE_SAMPLE])
        .collect();
    let turns: Vec<NewTurn> = contents
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let name = HOSTILE_SAMPLES[i % HOSTILE_SAMPLES.len()];
            let mut t = with_ext(new_turn(&user, name, text), &format!("{name} #{i}"));
            t.speaker = Some(name.to_owned());
            t.metadata = serde_json::json!({ name: text, "list": [name, text] });
            t
        })
        .collect();
    let stored = store(&*archive, turns.clone()).await;
    assert_eq!(stored.len(), turns.len());
    for (original, got) in turns.iter().zip(&stored) {
        let session_id = original.session_id.as_str();
        let history = all_history(&*archive, &user, session_id).await;
        assert!(history.contains(got), "history of {session_id:?}");
        let by_id = archive.get_turns(&user, &[got.id]).await.unwrap();
        assert_eq!(by_id, vec![got.clone()]);
        let external = original.external_id.as_ref().expect("an external id");
        let found = archive.find_by_external_id(&user, external).await.unwrap();
        assert_eq!(found.as_ref(), Some(got));
        assert_eq!(got.content, original.content);
        assert_eq!(got.speaker, original.speaker);
        assert_eq!(got.metadata, original.metadata);
        assert_eq!(got.external_id, *external);
        assert_eq!(got.scope, user);
    }
    for (i, name) in HOSTILE_SAMPLES.iter().enumerate() {
        let text = format!("{name}\n{MULTILINE_SAMPLE}");
        let keywords = [*name, HOSTILE_SAMPLES[(i + 1) % HOSTILE_SAMPLES.len()]];
        let mut new = summary(&user, name, stored[i].id.0, stored[i].id.0, &text);
        new.keywords = keywords.iter().map(|k| (*k).to_owned()).collect();
        let put = archive.put_summary(new).await.unwrap();
        let got = archive
            .summaries(&user, Some(&session(name)), 10)
            .await
            .unwrap();
        assert_eq!(got, vec![put.clone()]);
        assert_eq!(put.text, text);
        assert_eq!(put.keywords, keywords);
    }
    let other = scope("acme", "alice");
    assert_eq!(all_history(&*archive, &other, "s").await, alice);
    let report = archive.forget_user(&user).await.unwrap();
    assert_eq!(
        (report.turns, report.summaries),
        (turns.len() as u64, HOSTILE_SAMPLES.len() as u64)
    );
    assert_eq!(
        archive.turns_after(TurnId(0), 100).await.unwrap(),
        alice,
        "only the hostile user's rows went"
    );
}

/// Processor scores attach to their turns and survive later partial annotations.
pub async fn annotations_attach_to_turns(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let t = &store(
        &*archive,
        vec![new_turn(&alice, "s", "I am so happy today")],
    )
    .await[0];
    archive
        .annotate(&[TurnAnnotation {
            id: t.id,
            emotion: Some(emotion(0.9)),
            importance: None,
        }])
        .await
        .unwrap();
    archive
        .annotate(&[
            TurnAnnotation {
                id: t.id,
                emotion: None,
                importance: Some(0.75),
            },
            TurnAnnotation {
                id: TurnId(999_999),
                emotion: None,
                importance: Some(1.0),
            },
        ])
        .await
        .unwrap();
    let read = &archive.get_turns(&alice, &[t.id]).await.unwrap()[0];
    assert_eq!(read.emotion, Some(emotion(0.9)));
    assert_eq!(read.importance, Some(0.75));
}

/// Scores made before storing are inserted with the turn and read back everywhere (the
/// answer, lookups, the outbox); an unscored turn of the same batch has none; a repeated
/// external id keeps the stored turn's scores; an importance outside [0, 1] refuses the
/// batch.
pub async fn scores_made_before_storing_are_stored_with_the_turn(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let mut first = new_turn(&alice, "s", "I am so happy today");
    first.external_id = Some(ExternalId::new("m1").unwrap());
    let scored = |turn: NewTurn, level: f32, importance: f32| ScoredTurn {
        turn,
        emotion: Some(emotion(level)),
        importance: Some(importance),
    };
    let appended = archive
        .append_scored(vec![
            scored(first.clone(), 0.9, 0.75),
            ScoredTurn::from(new_turn(&alice, "s", "plain")),
        ])
        .await
        .unwrap();
    let (a, b) = (&appended[0].turn, &appended[1].turn);
    assert_eq!(
        (a.emotion.clone(), a.importance),
        (Some(emotion(0.9)), Some(0.75))
    );
    assert_eq!((b.emotion.clone(), b.importance), (None, None));
    let read = archive.get_turns(&alice, &[a.id, b.id]).await.unwrap();
    assert_eq!(read, vec![a.clone(), b.clone()]);
    let outbox = archive.outbox(TurnId(0), 10).await.unwrap();
    assert_eq!(outbox.turns, vec![a.clone(), b.clone()]);

    // The same external id again, scored otherwise: the stored turn, as stored.
    let again = archive
        .append_scored(vec![scored(first.clone(), 0.1, 0.2)])
        .await
        .unwrap();
    assert!(!again[0].created);
    assert_eq!(&again[0].turn, a);

    for importance in [1.5, -0.1, f32::NAN] {
        let err = archive
            .append_scored(vec![scored(new_turn(&alice, "s", "x"), 0.5, importance)])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{importance}: {err}");
    }
    assert_eq!(archive.stats().await.unwrap().turns, 2);
}

/// A summary of the same range stored again replaces its text and keeps its id; lists
/// come newest first and stay within the user.
pub async fn summaries_are_idempotent_per_range(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let first = archive
        .put_summary(summary(&alice, "s", 1, 10, "first draft"))
        .await
        .unwrap();
    let again = archive
        .put_summary(summary(&alice, "s", 1, 10, "second draft"))
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(again.text, "second draft");
    let later = archive
        .put_summary(summary(&alice, "s", 11, 20, "later"))
        .await
        .unwrap();
    let other = archive
        .put_summary(summary(&alice, "t", 21, 30, "other session"))
        .await
        .unwrap();
    let all = archive.summaries(&alice, None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![other.id, later.id, first.id]
    );
    let s_only = archive
        .summaries(&alice, Some(&session("s")), 10)
        .await
        .unwrap();
    assert_eq!(s_only.len(), 2);
    assert_eq!(
        s_only[0].keywords,
        vec!["alpha".to_string(), "beta".to_string()]
    );
    assert_eq!(archive.summaries(&alice, None, 1).await.unwrap().len(), 1);
    let bob = scope("acme", "bob");
    assert!(archive
        .get_summaries(&bob, &[first.id])
        .await
        .unwrap()
        .is_empty());
    let mine = archive
        .get_summaries(&alice, &[later.id, first.id])
        .await
        .unwrap();
    assert_eq!(
        mine.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![first.id, later.id]
    );
    let after = archive.summaries_after(first.id, 10).await.unwrap();
    assert_eq!(
        after.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![later.id, other.id]
    );
    assert!(archive
        .summaries_after(SummaryId(i64::MAX - 1), 10)
        .await
        .unwrap()
        .is_empty());
}

/// Summaries with no text or a backwards range are refused.
pub async fn bad_summaries_are_refused(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    for bad in [
        summary(&alice, "s", 1, 2, "  "),
        summary(&alice, "s", 5, 2, "backwards"),
    ] {
        let err = archive.put_summary(bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
    assert!(archive
        .summaries(&alice, None, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Summaries stored in one call are each answered in the order given: stored, refused
/// as invalid, or refused as not found (a turn they cover was forgotten); the same range
/// twice keeps one summary with the later text.
pub async fn summaries_in_one_call_answer_each_with_its_outcome(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let a = store_numbered(&*archive, &alice, "a", 4).await;
    let b = store(&*archive, vec![new_turn(&bob, "s", "b0")]).await;
    archive.forget_turn(&alice, a[3].id).await.unwrap();
    let outcomes = archive
        .put_summaries(vec![
            summary(&alice, "s", a[0].id.0, a[1].id.0, "first"),
            summary(&alice, "s", a[2].id.0, a[1].id.0, "backwards"),
            summary(&alice, "s", a[3].id.0, a[3].id.0, "over a forgotten turn"),
            summary(&bob, "s", b[0].id.0, b[0].id.0, "bob's"),
            summary(&alice, "s", a[0].id.0, a[1].id.0, "first, again"),
        ])
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 5);
    let first = outcomes[0].as_ref().unwrap();
    assert_eq!(
        (first.scope.clone(), first.text.as_str()),
        (alice.clone(), "first")
    );
    assert_eq!(
        outcomes[1].as_ref().unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        outcomes[2].as_ref().unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let bobs = outcomes[3].as_ref().unwrap();
    assert_eq!(
        (bobs.scope.clone(), bobs.text.as_str()),
        (bob.clone(), "bob's")
    );
    let again = outcomes[4].as_ref().unwrap();
    assert_eq!((again.id, again.text.as_str()), (first.id, "first, again"));
    let alices = archive.summaries(&alice, None, 10).await.unwrap();
    assert_eq!(
        alices
            .iter()
            .map(|s| (s.id, s.text.as_str()))
            .collect::<Vec<_>>(),
        vec![(first.id, "first, again")]
    );
    assert_eq!(archive.summaries(&bob, None, 10).await.unwrap().len(), 1);
    assert!(archive.put_summaries(Vec::new()).await.unwrap().is_empty());
}

/// The turns of many sessions after each one's newest summary, before a turn id, the
/// newest `limit` of each, in id order; other sessions, users and tenants stay out.
pub async fn unsummarized_turns_of_many_sessions_in_one_read(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let other_alice = scope("other", "alice");
    let mut a = Vec::new();
    let mut c = Vec::new();
    let mut b = Vec::new();
    // Interleaved, so each session's ids are not contiguous.
    for i in 0..5 {
        a.extend(store(&*archive, vec![new_turn(&alice, "s1", &format!("a{i}"))]).await);
        if i < 2 {
            c.extend(store(&*archive, vec![new_turn(&alice, "s2", &format!("c{i}"))]).await);
        }
        if i < 3 {
            b.extend(store(&*archive, vec![new_turn(&bob, "s1", &format!("b{i}"))]).await);
        }
        store(&*archive, vec![new_turn(&other_alice, "s1", "not hers")]).await;
    }
    archive
        .put_summary(summary(&alice, "s1", a[0].id.0, a[1].id.0, "a0 and a1"))
        .await
        .unwrap();
    let sessions = vec![
        (alice.clone(), session("s1")),
        (alice.clone(), session("s2")),
        (bob.clone(), session("s1")),
        (alice.clone(), session("s3")),
    ];
    let of = |found: &[(Scope, SessionId, TurnId)], user: &Scope, s: &str| -> Vec<i64> {
        found
            .iter()
            .filter(|(scope, sess, _)| scope == user && sess.as_str() == s)
            .map(|(_, _, id)| id.0)
            .collect()
    };
    let found = archive
        .unsummarized(&sessions, TurnId(i64::MAX), 10)
        .await
        .unwrap();
    assert_eq!(of(&found, &alice, "s1"), ids(&a[2..]));
    assert_eq!(of(&found, &alice, "s2"), ids(&c));
    assert_eq!(of(&found, &bob, "s1"), ids(&b));
    assert_eq!(
        found.len(),
        3 + 2 + 3,
        "nothing of other sessions or tenants"
    );
    assert!(
        found.windows(2).all(|w| w[0].2 < w[1].2),
        "in id order: {found:?}"
    );
    let newest = archive
        .unsummarized(&sessions, TurnId(i64::MAX), 2)
        .await
        .unwrap();
    assert_eq!(of(&newest, &alice, "s1"), ids(&a[3..]));
    assert_eq!(of(&newest, &bob, "s1"), ids(&b[1..]));
    let before = archive.unsummarized(&sessions, a[4].id, 10).await.unwrap();
    assert_eq!(of(&before, &alice, "s1"), ids(&a[2..4]));
    assert!(archive
        .unsummarized(&[], TurnId(i64::MAX), 10)
        .await
        .unwrap()
        .is_empty());
}

/// Turns read back by id are every user's and tenant's, as stored, in id order; ids
/// never stored find nothing.
pub async fn outbox_turns_are_read_back_by_id_for_every_user(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let stored = store(
        &*archive,
        vec![
            new_turn(&scope("acme", "alice"), "s", "hers"),
            new_turn(&scope("acme", "bob"), "s", "his"),
            new_turn(&scope("other", "alice"), "s", "another tenant's"),
        ],
    )
    .await;
    let read = archive
        .outbox_turns(&[stored[2].id, TurnId(999_999), stored[0].id, stored[1].id])
        .await
        .unwrap();
    assert_eq!(read, stored);
    assert!(archive.outbox_turns(&[]).await.unwrap().is_empty());
}

/// Each processor has its own checkpoint, 0 until set.
pub async fn checkpoints_are_per_processor(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    assert_eq!(archive.checkpoint("emotion").await.unwrap(), TurnId(0));
    archive.set_checkpoint("emotion", TurnId(41)).await.unwrap();
    archive.set_checkpoint("index", TurnId(7)).await.unwrap();
    archive.set_checkpoint("emotion", TurnId(42)).await.unwrap();
    assert_eq!(archive.checkpoint("emotion").await.unwrap(), TurnId(42));
    assert_eq!(archive.checkpoint("index").await.unwrap(), TurnId(7));
    assert_eq!(archive.checkpoint("graph").await.unwrap(), TurnId(0));
}

/// Emotion state is stored per user and replaced on each put.
pub async fn emotion_state_is_per_user(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let alice_b = scope("other", "alice");
    assert!(archive.emotion_state(&alice).await.unwrap().is_none());
    let mut state = EmotionState {
        scores: emotion(0.8),
        turns: 3,
        last_turn: TurnId(3),
        updated: at(30),
    };
    archive
        .put_emotion_states(&[(alice.clone(), state.clone())])
        .await
        .unwrap();
    state.turns = 4;
    state.last_turn = TurnId(9);
    archive
        .put_emotion_states(&[(alice.clone(), state.clone())])
        .await
        .unwrap();
    assert_eq!(archive.emotion_state(&alice).await.unwrap(), Some(state));
    assert!(archive.emotion_state(&alice_b).await.unwrap().is_none());
}

/// Many users' emotion states are written in one call and read back in one, each its
/// own; users without a state are left out, and a user named twice keeps the last.
pub async fn emotion_states_of_many_users_in_one_call(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let state = |n: i64| EmotionState {
        scores: emotion(n as f32 / 10_000.0),
        turns: n as u64,
        last_turn: TurnId(n),
        updated: at(n),
    };
    // More users than one read statement takes.
    let users: Vec<Scope> = (0..2_500)
        .map(|i| scope(if i % 2 == 0 { "acme" } else { "other" }, &format!("u{i}")))
        .collect();
    let mut states: Vec<(Scope, EmotionState)> = users
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 != 0)
        .map(|(i, u)| (u.clone(), state(i as i64)))
        .collect();
    states.push((users[1].clone(), state(9_999)));
    archive.put_emotion_states(&states).await.unwrap();
    let found = archive.emotion_states(&users).await.unwrap();
    assert_eq!(found.len(), 2_000, "every fifth user has no state");
    for (i, user) in users.iter().enumerate() {
        let expected = match i {
            _ if i % 5 == 0 => None,
            1 => Some(state(9_999)),
            _ => Some(state(i as i64)),
        };
        assert_eq!(found.get(user).cloned(), expected, "user {i}");
        if i % 500 == 1 {
            assert_eq!(archive.emotion_state(user).await.unwrap(), expected);
        }
    }
    assert!(archive.emotion_states(&[]).await.unwrap().is_empty());
    archive.put_emotion_states(&[]).await.unwrap();
}

/// Forgetting a user removes their turns, summaries and emotion state, and nothing of
/// anyone else's.
pub async fn forget_user_removes_every_row_of_that_user_only(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let a = store(
        &*archive,
        vec![new_turn(&alice, "s1", "a1"), new_turn(&alice, "s2", "a2")],
    )
    .await;
    let b = store(&*archive, vec![new_turn(&bob, "s1", "b1")]).await;
    for user in [&alice, &bob] {
        archive
            .put_summary(summary(user, "s1", 1, 2, "sum"))
            .await
            .unwrap();
        let state = EmotionState {
            scores: emotion(0.5),
            turns: 1,
            last_turn: TurnId(1),
            updated: at(1),
        };
        archive
            .put_emotion_states(&[(user.clone(), state)])
            .await
            .unwrap();
    }
    let report = archive.forget_user(&alice).await.unwrap();
    assert_eq!((report.turns, report.summaries), (2, 1));
    assert!(archive
        .get_turns(&alice, &[a[0].id, a[1].id])
        .await
        .unwrap()
        .is_empty());
    assert!(all_history(&*archive, &alice, "s1").await.is_empty());
    assert!(archive
        .summaries(&alice, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(archive.emotion_state(&alice).await.unwrap().is_none());
    let outbox = archive.turns_after(TurnId(0), 100).await.unwrap();
    assert_eq!(
        ids(&outbox),
        ids(&b),
        "the outbox no longer holds alice's turns"
    );
    assert_eq!(archive.summaries(&bob, None, 10).await.unwrap().len(), 1);
    assert!(archive.emotion_state(&bob).await.unwrap().is_some());
    let again = archive.forget_user(&alice).await.unwrap();
    assert_eq!((again.turns, again.summaries), (0, 0));
}

/// Forgetting a turn removes it and the summaries covering it; other turns, summaries
/// and users stay; another user cannot forget it.
pub async fn forget_turn_removes_the_turn_and_its_summaries(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let t = store_numbered(&*archive, &alice, "t", 4).await;
    let covering = summary(&alice, "s", t[0].id.0, t[1].id.0, "covers t0 and t1");
    let other = summary(&alice, "s", t[2].id.0, t[3].id.0, "covers t2 and t3");
    archive.put_summary(covering).await.unwrap();
    let kept = archive.put_summary(other).await.unwrap();
    let bob = scope("acme", "bob");
    let refused = archive.forget_turn(&bob, t[1].id).await.unwrap();
    assert_eq!(refused.turns, 0, "bob cannot forget alice's turn");
    let report = archive.forget_turn(&alice, t[1].id).await.unwrap();
    assert_eq!((report.turns, report.summaries), (1, 1));
    let left = all_history(&*archive, &alice, "s").await;
    assert_eq!(ids(&left), vec![t[3].id.0, t[2].id.0, t[0].id.0]);
    let sums = archive.summaries(&alice, None, 10).await.unwrap();
    assert_eq!(sums.iter().map(|s| s.id).collect::<Vec<_>>(), vec![kept.id]);
    assert_eq!(archive.forget_turn(&alice, t[1].id).await.unwrap().turns, 0);
}

/// Turns, summaries, checkpoints and emotion state survive close and reopen.
pub async fn everything_survives_close_and_reopen(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let stored = store(
        &*archive,
        vec![with_ext(new_turn(&alice, "s", "remember me"), "keep")],
    )
    .await;
    let sum = archive
        .put_summary(summary(&alice, "s", 1, 1, "a summary"))
        .await
        .unwrap();
    archive.set_checkpoint("index", stored[0].id).await.unwrap();
    let state = EmotionState {
        scores: emotion(0.3),
        turns: 1,
        last_turn: stored[0].id,
        updated: at(5),
    };
    archive
        .put_emotion_states(&[(alice.clone(), state.clone())])
        .await
        .unwrap();
    drop(archive);

    let reopened = open(factory).await;
    assert_eq!(
        reopened.get_turns(&alice, &[stored[0].id]).await.unwrap(),
        stored
    );
    assert_eq!(
        reopened.summaries(&alice, None, 10).await.unwrap(),
        vec![sum]
    );
    assert_eq!(reopened.checkpoint("index").await.unwrap(), stored[0].id);
    assert_eq!(reopened.emotion_state(&alice).await.unwrap(), Some(state));
    let again = reopened
        .append_batch(vec![with_ext(new_turn(&alice, "s", "dup"), "keep")])
        .await
        .unwrap();
    assert!(!again[0].created, "idempotency holds across restarts");
    let next = &store(&*reopened, vec![new_turn(&alice, "s", "after restart")]).await[0];
    assert!(next.id > stored[0].id);
}

/// Stats count turns and summaries and report the head.
pub async fn stats_count_what_is_stored(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let t = store_numbered(&*archive, &alice, "", 5).await;
    archive
        .put_summary(summary(&alice, "s", 1, 5, "five"))
        .await
        .unwrap();
    let stats = archive.stats().await.unwrap();
    assert_eq!(stats.turns, 5);
    assert_eq!(stats.summaries, 1);
    assert_eq!(stats.head, t[4].id);
}

/// A forget takes its place in the outbox among the turns: the next id of their
/// sequence, recorded with what it removed, read in order, and a full page holds only the
/// forgets below its last turn.
pub async fn forgets_are_in_the_outbox_in_order_with_the_turns(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let first = store(
        &*archive,
        vec![
            new_turn(&alice, "s1", "one"),
            new_turn(&alice, "s1", "two"),
            new_turn(&bob, "s1", "bob's"),
        ],
    )
    .await;
    let covering = archive
        .put_summary(summary(
            &alice,
            "s1",
            first[0].id.0,
            first[1].id.0,
            "one and two",
        ))
        .await
        .unwrap();
    archive.forget_turn(&alice, first[0].id).await.unwrap();
    let later = store(&*archive, vec![new_turn(&alice, "s2", "three")]).await;
    archive.forget_user(&bob).await.unwrap();
    // A turn that is not stored: nothing removed, nothing recorded.
    archive.forget_turn(&alice, TurnId(999_999)).await.unwrap();

    let page = archive.outbox(TurnId(0), 100).await.unwrap();
    assert_eq!(ids(&page.turns), vec![first[1].id.0, later[0].id.0]);
    assert_eq!(page.forgets.len(), 2, "{:?}", page.forgets);
    let (turn_forget, user_forget) = (&page.forgets[0], &page.forgets[1]);
    assert_eq!(turn_forget.scope, alice);
    assert_eq!(turn_forget.turn, Some(first[0].id));
    assert_eq!(turn_forget.summaries, vec![covering.id]);
    assert!(
        first[2].id < turn_forget.seq && turn_forget.seq < later[0].id,
        "a forget's place is between the turns stored before and after it"
    );
    assert_eq!(user_forget.scope, bob);
    assert_eq!(user_forget.turn, None);
    assert!(user_forget.summaries.is_empty());
    assert!(later[0].id < user_forget.seq);
    assert_eq!(page.head, user_forget.seq, "the head counts forgets too");

    // A full page stops at its last turn: the forgets above it are the next page's.
    let page = archive.outbox(TurnId(0), 1).await.unwrap();
    assert_eq!(ids(&page.turns), vec![first[1].id.0]);
    assert!(page.forgets.is_empty(), "{:?}", page.forgets);
    let page = archive.outbox(first[1].id, 1).await.unwrap();
    assert_eq!(ids(&page.turns), vec![later[0].id.0]);
    assert_eq!(page.forgets.len(), 1);
    assert_eq!(page.forgets[0].seq, turn_forget.seq);
    let page = archive.outbox(later[0].id, 1).await.unwrap();
    assert!(page.turns.is_empty());
    assert_eq!(page.forgets.len(), 1);
    assert_eq!(page.forgets[0].seq, user_forget.seq);
    // Past everything: nothing, and the head to move to.
    let page = archive.outbox(user_forget.seq, 10).await.unwrap();
    assert!(page.turns.is_empty() && page.forgets.is_empty());
    assert_eq!(page.head, user_forget.seq);
    // Ids are never reused: the next turn comes after the forget.
    let next = store(&*archive, vec![new_turn(&alice, "s2", "four")]).await;
    assert!(next[0].id > user_forget.seq);

    // A forget of a user with no turn ever stored is recorded too.
    let empty = open(factory).await;
    let before = empty.head().await.unwrap();
    empty.forget_user(&scope("acme", "nobody")).await.unwrap();
    let page = empty.outbox(before, 10).await.unwrap();
    assert_eq!(page.forgets.len(), 1);
    assert!(page.forgets[0].seq > before);
}

/// A summary or an emotion state folded from turns read just before they were
/// forgotten is not written back; one over turns stored after the forget is.
pub async fn nothing_derived_from_forgotten_turns_is_written_back(factory: &dyn ArchiveFactory) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let old = store(
        &*archive,
        vec![
            new_turn(&alice, "s1", "one"),
            new_turn(&alice, "s1", "two"),
            new_turn(&alice, "s1", "three"),
        ],
    )
    .await;
    // One turn forgotten: a summary covering it is refused, one beside it is not.
    archive.forget_turn(&alice, old[1].id).await.unwrap();
    let refused = archive
        .put_summary(summary(&alice, "s1", old[0].id.0, old[2].id.0, "all three"))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::NotFound, "{refused}");
    archive
        .put_summary(summary(&alice, "s1", old[2].id.0, old[2].id.0, "the third"))
        .await
        .expect("a summary beside the forgotten turn");

    // The user forgotten: nothing over the old turns comes back.
    archive.forget_user(&alice).await.unwrap();
    let stale = EmotionState {
        scores: emotion(0.9),
        turns: 3,
        last_turn: old[2].id,
        updated: at(3),
    };
    archive
        .put_emotion_states(&[(alice.clone(), stale)])
        .await
        .unwrap();
    assert_eq!(archive.emotion_state(&alice).await.unwrap(), None);
    let refused = archive
        .put_summary(summary(&alice, "s1", old[0].id.0, old[0].id.0, "the first"))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::NotFound, "{refused}");
    assert!(archive
        .summaries(&alice, None, 10)
        .await
        .unwrap()
        .is_empty());

    // What the user says after the forget is theirs again.
    let new = store(&*archive, vec![new_turn(&alice, "s2", "hello again")]).await;
    let fresh = EmotionState {
        scores: emotion(0.5),
        turns: 1,
        last_turn: new[0].id,
        updated: at(9),
    };
    archive
        .put_emotion_states(&[(alice.clone(), fresh.clone())])
        .await
        .unwrap();
    assert_eq!(archive.emotion_state(&alice).await.unwrap(), Some(fresh));
    archive
        .put_summary(summary(&alice, "s2", new[0].id.0, new[0].id.0, "hello"))
        .await
        .expect("a summary of a turn stored after the forget");
}

/// A session marked as missing recent-tier writes keeps its highest stamp; a clear up to
/// a lower stamp leaves it (a write was missed after that refill's read), one up to its
/// stamp removes it; the marks survive a reopen and go with a forgotten user.
pub async fn recent_gaps_keep_the_highest_stamp_until_a_later_refill_clears_them(
    factory: &dyn ArchiveFactory,
) {
    let archive = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let gap = |who: &Scope, s: &str, stamp: i64| RecentGap {
        scope: who.clone(),
        session: session(s),
        stamp: TurnId(stamp),
    };
    assert!(archive.recent_gaps().await.unwrap().is_empty());
    archive
        .mark_recent_gaps(&[
            gap(&alice, "s1", 5),
            gap(&alice, "s1", 3),
            gap(&bob, "s1", 4),
        ])
        .await
        .unwrap();
    archive
        .mark_recent_gaps(&[gap(&alice, "s1", 2), gap(&alice, "s2", 7)])
        .await
        .unwrap();
    assert_eq!(
        archive.recent_gaps().await.unwrap(),
        vec![
            gap(&alice, "s1", 5),
            gap(&alice, "s2", 7),
            gap(&bob, "s1", 4)
        ]
    );
    // A refill that read the archive before turn 5 was missed clears nothing.
    archive
        .clear_recent_gap(&gap(&alice, "s1", 4))
        .await
        .unwrap();
    archive
        .clear_recent_gap(&gap(&alice, "s1", 5))
        .await
        .unwrap();
    assert_eq!(
        archive.recent_gaps().await.unwrap(),
        vec![gap(&alice, "s2", 7), gap(&bob, "s1", 4)]
    );
    let archive = factory.open(InputLimits::default(), clock().1).await;
    assert_eq!(
        archive.recent_gaps().await.unwrap().len(),
        2,
        "they survive a reopen"
    );
    archive.forget_user(&alice).await.unwrap();
    assert_eq!(
        archive.recent_gaps().await.unwrap(),
        vec![gap(&bob, "s1", 4)]
    );
}

/// The sessions with turns in an id range, each once with its newest ingest time in the
/// range, the most recently active first, at most `limit`.
pub async fn sessions_between_ids_are_listed_once_newest_first(factory: &dyn ArchiveFactory) {
    let (manual, clock) = clock();
    let archive = factory.open(InputLimits::default(), clock).await;
    let alice = scope("acme", "alice");
    let bob = scope("other", "bob");
    let mut ids = Vec::new();
    for (who, s) in [(&alice, "s1"), (&alice, "s2"), (&bob, "s1"), (&alice, "s1")] {
        manual.advance(Duration::from_secs(10));
        ids.push(store(&*archive, vec![new_turn(who, s, "hello")]).await[0].id);
    }
    let all = archive
        .sessions_between(TurnId(0), ids[3], 10)
        .await
        .unwrap();
    let keys: Vec<(Scope, SessionId)> = all
        .iter()
        .map(|(s, id, _)| (s.clone(), id.clone()))
        .collect();
    assert_eq!(
        keys,
        vec![
            (alice.clone(), session("s1")),
            (bob.clone(), session("s1")),
            (alice.clone(), session("s2")),
        ]
    );
    assert_eq!(all[0].2, at(40));
    let some = archive.sessions_between(ids[0], ids[2], 10).await.unwrap();
    assert_eq!(some.len(), 2, "only turns in the range count: {some:?}");
    assert_eq!(
        archive
            .sessions_between(TurnId(0), ids[3], 1)
            .await
            .unwrap()
            .len(),
        1
    );
}
