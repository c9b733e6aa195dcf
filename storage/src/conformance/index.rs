//! Conformance suite of [`IndexStore`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{at, scope, session, t0, UNICODE_SAMPLES};
use crate::archive::sql::SqliteArchive;
use crate::archive::{ArchiveConfig, ArchiveStore};
use crate::clock::{ManualClock, SharedClock};
use crate::error::ErrorKind;
use crate::index::{
    rebuild_from_archive, DocKind, IndexConfig, IndexDoc, IndexMark, IndexStore, RebuildReport,
    SearchHit, SearchQuery,
};
use crate::limits::InputLimits;
use crate::model::{NewSummary, NewTurn, Role, Scope, SummaryId, TurnId};

/// Opens a backend of the index tier at one location per factory.
#[async_trait]
pub trait IndexFactory: Send + Sync {
    /// Opens the index at the factory's location with `config`; the caller closes the
    /// previous one first.
    async fn open(&self, config: IndexConfig) -> Arc<dyn IndexStore>;

    /// Whether data survives close and reopen (false for RAM indexes).
    fn persistent(&self) -> bool;

    /// A receiver whose value changes on every commit of the index this factory opened
    /// last, or `None` when the backend has no such signal (the interval-commit tests are
    /// then skipped).
    fn commit_signal(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}

/// Expands to one `#[tokio::test]` per body of this suite, each opening its backend with
/// `$factory` (an expression evaluating to an [`IndexFactory`]).
#[macro_export]
macro_rules! index_conformance {
    ($factory:expr) => {
        $crate::index_conformance!(@tests $factory;
            add_then_search_after_commit,
            the_speaker_is_searchable_but_not_in_the_text,
            writes_are_invisible_until_commit,
            interval_commit_makes_writes_visible,
            interval_commit_happens_under_steady_writes,
            more_occurrences_of_a_rare_word_rank_higher,
            matching_more_query_words_ranks_higher,
            dates_a_query_names_favour_turns_of_and_about_them,
            same_user_id_in_two_tenants_is_isolated,
            users_of_one_tenant_are_isolated,
            scope_filter_applies_before_top_k,
            time_range_is_from_inclusive_to_exclusive,
            kind_and_session_filters,
            paging_covers_the_same_hits_as_one_search,
            re_adding_a_doc_replaces_it,
            delete_user_removes_only_that_user,
            delete_doc_removes_one_doc_of_its_user,
            clear_removes_everything_including_pending_writes,
            data_survives_close_and_reopen,
            unicode_is_searchable_and_round_trips,
            invalid_queries_are_refused,
            num_docs_counts_searchable_documents,
            closed_index_refuses_work,
            rebuild_from_archive_indexes_turns_and_summaries,
            a_commit_records_its_mark_with_the_documents,
            a_replay_after_a_reopen_replaces_what_was_committed,
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let factory = $factory;
                $crate::conformance::index::$name(&factory).await;
            }
        )*
    };
}

/// Longest a test waits for an event before it fails instead of hanging.
const GUARD: Duration = Duration::from_secs(10);

/// Settings under which only an explicit `commit` (or `close`) commits.
fn config() -> IndexConfig {
    IndexConfig {
        commit_interval_ms: 3_600_000,
        writer_memory_mb: 16,
        max_limit: 1_000,
        ..IndexConfig::default()
    }
}

async fn open(factory: &dyn IndexFactory) -> Arc<dyn IndexStore> {
    factory.open(config()).await
}

fn doc(kind: DocKind, id: i64, scope: &Scope, session_id: &str, secs: i64, text: &str) -> IndexDoc {
    IndexDoc {
        kind,
        id,
        scope: scope.clone(),
        session_id: session(session_id),
        event_time: at(secs),
        text: text.to_owned(),
        speaker: None,
    }
}

fn turn(id: i64, scope: &Scope, text: &str) -> IndexDoc {
    doc(DocKind::Turn, id, scope, "s1", id, text)
}

fn ids(hits: &[SearchHit]) -> Vec<i64> {
    hits.iter().map(|h| h.id).collect()
}

fn sorted_ids(hits: &[SearchHit]) -> Vec<i64> {
    let mut ids = ids(hits);
    ids.sort_unstable();
    ids
}

async fn search(index: &dyn IndexStore, scope: &Scope, query: SearchQuery) -> Vec<SearchHit> {
    index.search(scope, &query).await.unwrap()
}

/// Ids of every hit of `text` for `scope`, sorted.
async fn find(index: &dyn IndexStore, scope: &Scope, text: &str) -> Vec<i64> {
    sorted_ids(&search(index, scope, SearchQuery::new(text, 1_000)).await)
}

/// A document added and committed is found, with every field as it was indexed.
pub async fn add_then_search_after_commit(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    let wanted = doc(
        DocKind::Turn,
        7,
        &alice,
        "trip",
        42,
        "We had sushi in Osaka",
    );
    index
        .add(vec![
            wanted.clone(),
            turn(8, &alice, "The weather was rainy"),
        ])
        .await
        .unwrap();
    index.commit().await.unwrap();
    let hits = search(&*index, &alice, SearchQuery::new("sushi", 10)).await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    let hit = &hits[0];
    assert_eq!(hit.kind, DocKind::Turn);
    assert_eq!(hit.id, 7);
    assert_eq!(hit.turn_id(), Some(TurnId(7)));
    assert_eq!(hit.summary_id(), None);
    assert_eq!(hit.session_id, session("trip"));
    assert_eq!(hit.event_time, at(42));
    assert_eq!(hit.text, wanted.text);
    assert!(hit.score > 0.0, "a match has a positive score");
    assert!(find(&*index, &alice, "pizza").await.is_empty());
    index.close().await.unwrap();
}

/// A turn is found by its speaker's name, and its hit's text is the content alone.
pub async fn the_speaker_is_searchable_but_not_in_the_text(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    let mut by_sam = turn(1, &alice, "Try physical therapy for the knee");
    by_sam.speaker = Some("Sam".into());
    let mut by_evan = turn(2, &alice, "My knee hurts after the run");
    by_evan.speaker = Some("Evan".into());
    index.add(vec![by_sam.clone(), by_evan]).await.unwrap();
    index.commit().await.unwrap();
    let hits = search(&*index, &alice, SearchQuery::new("Sam", 10)).await;
    assert_eq!(ids(&hits), vec![1]);
    assert_eq!(hits[0].text, by_sam.text);
    let hits = search(
        &*index,
        &alice,
        SearchQuery::new("what did Sam say about the knee", 10),
    )
    .await;
    assert_eq!(ids(&hits), vec![1, 2], "the speaker's turn first");
    index.close().await.unwrap();
}

/// Adds and deletes are invisible to searches and counts until `commit`, visible after.
pub async fn writes_are_invisible_until_commit(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    index
        .add(vec![turn(1, &alice, "pending lighthouse")])
        .await
        .unwrap();
    assert!(find(&*index, &alice, "lighthouse").await.is_empty());
    assert_eq!(index.num_docs().await.unwrap(), 0);
    index.commit().await.unwrap();
    assert_eq!(find(&*index, &alice, "lighthouse").await, vec![1]);
    assert_eq!(index.num_docs().await.unwrap(), 1);

    index.delete_doc(&alice, DocKind::Turn, 1).await.unwrap();
    assert_eq!(
        find(&*index, &alice, "lighthouse").await,
        vec![1],
        "a delete is not visible before commit"
    );
    index.commit().await.unwrap();
    assert!(find(&*index, &alice, "lighthouse").await.is_empty());
    assert_eq!(index.num_docs().await.unwrap(), 0);
    index.close().await.unwrap();
}

/// With a short commit interval, writes become searchable without an explicit commit.
pub async fn interval_commit_makes_writes_visible(factory: &dyn IndexFactory) {
    let index = factory
        .open(IndexConfig {
            commit_interval_ms: 20,
            ..config()
        })
        .await;
    let Some(mut commits) = factory.commit_signal() else {
        index.close().await.unwrap();
        return;
    };
    commits.borrow_and_update();
    let alice = scope("acme", "alice");
    index
        .add(vec![turn(1, &alice, "committed by the timer")])
        .await
        .unwrap();
    tokio::time::timeout(GUARD, commits.changed())
        .await
        .expect("an interval commit happens")
        .expect("the index is alive");
    assert_eq!(find(&*index, &alice, "timer").await, vec![1]);
    assert_eq!(index.num_docs().await.unwrap(), 1);
    index.close().await.unwrap();
}

/// The interval commit also happens while writes keep arriving without a pause.
pub async fn interval_commit_happens_under_steady_writes(factory: &dyn IndexFactory) {
    let index = factory
        .open(IndexConfig {
            commit_interval_ms: 20,
            ..config()
        })
        .await;
    let Some(mut commits) = factory.commit_signal() else {
        index.close().await.unwrap();
        return;
    };
    commits.borrow_and_update();
    let alice = scope("acme", "alice");
    let stop = Arc::new(AtomicBool::new(false));
    // Enough writers that the backend always has another write queued.
    let writers: Vec<_> = (0..32_i64)
        .map(|w| {
            let (index, alice, stop) = (index.clone(), alice.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let docs = (0..100)
                        .map(|i| turn(w * 100 + i, &alice, "steady"))
                        .collect();
                    index.add(docs).await.unwrap();
                }
            })
        })
        .collect();
    let committed = tokio::time::timeout(GUARD, commits.changed()).await;
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    committed
        .expect("an interval commit happens while writes keep coming")
        .expect("the index is alive");
    assert!(!find(&*index, &alice, "steady").await.is_empty());
    index.close().await.unwrap();
}

/// A document with more occurrences of a rare query word ranks above one with fewer.
pub async fn more_occurrences_of_a_rare_word_rank_higher(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    let mut docs = vec![
        turn(1, &alice, "zebra apple banana cherry date"),
        turn(2, &alice, "zebra zebra zebra cherry date"),
        turn(3, &alice, "zebra zebra apple cherry date"),
    ];
    docs.extend((10..20).map(|i| turn(i, &alice, "apple banana cherry date elder")));
    index.add(docs).await.unwrap();
    index.commit().await.unwrap();
    let hits = search(&*index, &alice, SearchQuery::new("zebra", 10)).await;
    assert_eq!(ids(&hits), vec![2, 3, 1]);
    assert!(hits[0].score > hits[1].score && hits[1].score > hits[2].score);
    index.close().await.unwrap();
}

/// A document matching two query words ranks above those matching one of them.
pub async fn matching_more_query_words_ranks_higher(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    let mut docs = vec![
        turn(1, &alice, "quantum physics lecture notes"),
        turn(2, &alice, "quantum guitar lecture notes"),
        turn(3, &alice, "jazz guitar lecture notes"),
    ];
    docs.extend((10..20).map(|i| turn(i, &alice, "plain lecture notes here")));
    index.add(docs).await.unwrap();
    index.commit().await.unwrap();
    let hits = search(&*index, &alice, SearchQuery::new("Quantum GUITAR", 10)).await;
    assert_eq!(
        hits.len(),
        3,
        "a doc matching any one word is a hit: {hits:?}"
    );
    assert_eq!(hits[0].id, 2);
    assert!(hits[0].score > hits[1].score);
    assert_eq!(sorted_ids(&hits[1..]), vec![1, 3]);
    index.close().await.unwrap();
}

/// A query naming a date ranks first the turns said on that day or about it ("yesterday"
/// said the day after), then the others that share its words; with `date_weight` 0 dates
/// play no part.
pub async fn dates_a_query_names_favour_turns_of_and_about_them(factory: &dyn IndexFactory) {
    const DAY: i64 = 86_400;
    let alice = scope("acme", "alice");
    // t0 is 2026-01-01.
    let docs = || {
        let mut docs = vec![
            doc(
                DocKind::Turn,
                1,
                &alice,
                "s1",
                0,
                "we had dinner at the harbour",
            ),
            doc(
                DocKind::Turn,
                2,
                &alice,
                "s2",
                4 * DAY,
                "dinner with my sister was lovely",
            ),
            doc(
                DocKind::Turn,
                3,
                &alice,
                "s3",
                10 * DAY,
                "I had dinner with Sam yesterday",
            ),
            doc(
                DocKind::Turn,
                4,
                &alice,
                "s3",
                9 * DAY,
                "the weather is grey",
            ),
            doc(
                DocKind::Turn,
                5,
                &alice,
                "s4",
                40 * DAY,
                "a long walk by the river",
            ),
        ];
        docs.extend(
            (10..20).map(|i| doc(DocKind::Turn, i, &alice, "s5", 60 * DAY, "dinner again")),
        );
        docs
    };
    let index = open(factory).await;
    index.add(docs()).await.unwrap();
    index.commit().await.unwrap();

    // Said on January 11 about the day before.
    let hits = search(
        &*index,
        &alice,
        SearchQuery::new("Who had dinner on January 10, 2026?", 20),
    )
    .await;
    assert_eq!(hits[0].id, 3, "{hits:?}");
    // The turn said that day shares no word but is about the day asked for.
    assert!(ids(&hits).contains(&4), "{hits:?}");
    // A month of any year, and a month and year.
    let hits = search(
        &*index,
        &alice,
        SearchQuery::new("What did she do in February?", 5),
    )
    .await;
    assert_eq!(ids(&hits), vec![5]);
    let hits = search(
        &*index,
        &alice,
        SearchQuery::new("a walk in February 2026", 5),
    )
    .await;
    assert_eq!(hits[0].id, 5);
    // Without a date the words alone decide.
    let hits = search(&*index, &alice, SearchQuery::new("Who had dinner?", 20)).await;
    assert!(!ids(&hits).contains(&4), "{hits:?}");
    index.close().await.unwrap();
    drop(index);

    let without_dates = factory
        .open(IndexConfig {
            date_weight: 0.0,
            ..config()
        })
        .await;
    without_dates.clear().await.unwrap();
    without_dates.add(docs()).await.unwrap();
    without_dates.commit().await.unwrap();
    let hits = search(
        &*without_dates,
        &alice,
        SearchQuery::new("Who had dinner on January 10, 2026?", 20),
    )
    .await;
    assert!(!ids(&hits).contains(&4), "{hits:?}");
    let hits = search(
        &*without_dates,
        &alice,
        SearchQuery::new("What did she do in February?", 5),
    )
    .await;
    assert!(hits.is_empty(), "{hits:?}");
    without_dates.close().await.unwrap();
}

/// The same user id (and doc id, session) in two tenants are two users' documents.
pub async fn same_user_id_in_two_tenants_is_isolated(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let a = scope("tenant-a", "sam");
    let b = scope("tenant-b", "sam");
    index
        .add(vec![
            turn(1, &a, "secret plan alpha"),
            turn(1, &b, "secret plan beta"),
        ])
        .await
        .unwrap();
    index.commit().await.unwrap();
    let hits_a = search(&*index, &a, SearchQuery::new("secret", 10)).await;
    let hits_b = search(&*index, &b, SearchQuery::new("secret", 10)).await;
    assert_eq!(hits_a.len(), 1);
    assert_eq!(hits_a[0].text, "secret plan alpha");
    assert_eq!(hits_b.len(), 1);
    assert_eq!(hits_b[0].text, "secret plan beta");
    assert!(find(&*index, &a, "beta").await.is_empty());
    assert!(find(&*index, &b, "alpha").await.is_empty());
    assert_eq!(index.num_docs().await.unwrap(), 2);
    index.close().await.unwrap();
}

/// Users of one tenant never see each other's documents, not even with similar ids.
pub async fn users_of_one_tenant_are_isolated(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let ali = scope("acme", "ali");
    index
        .add(vec![
            turn(1, &alice, "alice gardens and goes hiking"),
            turn(2, &bob, "bob gardens and plays chess"),
        ])
        .await
        .unwrap();
    index.commit().await.unwrap();
    assert_eq!(find(&*index, &alice, "gardens").await, vec![1]);
    assert_eq!(find(&*index, &bob, "gardens").await, vec![2]);
    assert!(find(&*index, &bob, "hiking").await.is_empty());
    assert!(find(&*index, &ali, "gardens hiking").await.is_empty());
    assert!(find(&*index, &scope("acm", "alice"), "hiking")
        .await
        .is_empty());
    index.close().await.unwrap();
}

/// The scope filter is applied inside the search, so a user's only match is found even
/// when another user has hundreds of better-scoring matches.
pub async fn scope_filter_applies_before_top_k(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let a = scope("acme", "a");
    let b = scope("acme", "b");
    let many: Vec<IndexDoc> = (1..=500)
        .map(|i| turn(i, &a, "apple apple apple"))
        .collect();
    index.add(many).await.unwrap();
    index
        .add(vec![turn(
            1_000,
            &b,
            "an apple among many other longer words that dilute its score",
        )])
        .await
        .unwrap();
    index.commit().await.unwrap();
    let hits = search(&*index, &b, SearchQuery::new("apple", 1)).await;
    assert_eq!(ids(&hits), vec![1_000]);
    let filtered = search(
        &*index,
        &b,
        SearchQuery {
            kind: Some(DocKind::Turn),
            session: Some(session("s1")),
            ..SearchQuery::new("apple", 1)
        },
    )
    .await;
    assert_eq!(ids(&filtered), vec![1_000]);
    let hits_a = search(&*index, &a, SearchQuery::new("apple", 1_000)).await;
    assert_eq!(hits_a.len(), 500);
    assert!(hits_a.iter().all(|h| h.id != 1_000));
    index.close().await.unwrap();
}

/// `from` is inclusive and `to` exclusive; either may be left open.
pub async fn time_range_is_from_inclusive_to_exclusive(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    index
        .add(
            [10, 20, 30, 40]
                .iter()
                .map(|&secs| doc(DocKind::Turn, secs, &alice, "s", secs, "weekly meeting"))
                .collect(),
        )
        .await
        .unwrap();
    index.commit().await.unwrap();
    let range = |from: Option<i64>, to: Option<i64>| SearchQuery {
        from: from.map(at),
        to: to.map(at),
        ..SearchQuery::new("meeting", 100)
    };
    let got = |hits: Vec<SearchHit>| sorted_ids(&hits);
    assert_eq!(
        got(search(&*index, &alice, range(Some(20), Some(40))).await),
        vec![20, 30]
    );
    assert_eq!(
        got(search(&*index, &alice, range(Some(30), None)).await),
        vec![30, 40]
    );
    assert_eq!(
        got(search(&*index, &alice, range(None, Some(20))).await),
        vec![10]
    );
    assert_eq!(
        got(search(&*index, &alice, range(Some(11), Some(30))).await),
        vec![20]
    );
    assert!(search(&*index, &alice, range(Some(20), Some(20)))
        .await
        .is_empty());
    assert!(search(&*index, &alice, range(Some(41), None))
        .await
        .is_empty());
    let before_epoch = SearchQuery {
        from: Some(t0() - chrono::Duration::days(365 * 60)),
        ..SearchQuery::new("meeting", 100)
    };
    assert_eq!(
        got(search(&*index, &alice, before_epoch).await),
        vec![10, 20, 30, 40]
    );
    index.close().await.unwrap();
}

/// The kind filter separates turns from summaries (even with equal ids), the session
/// filter keeps one session, and both combine.
pub async fn kind_and_session_filters(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    index
        .add(vec![
            doc(DocKind::Turn, 1, &alice, "s1", 1, "talk about gardening"),
            doc(DocKind::Summary, 1, &alice, "s1", 2, "summary of gardening"),
            doc(DocKind::Turn, 2, &alice, "s2", 3, "more gardening"),
        ])
        .await
        .unwrap();
    index.commit().await.unwrap();
    let keys = |hits: Vec<SearchHit>| {
        let mut keys: Vec<(&'static str, i64)> =
            hits.iter().map(|h| (h.kind.as_str(), h.id)).collect();
        keys.sort_unstable();
        keys
    };
    let query = |kind: Option<DocKind>, s: Option<&str>| SearchQuery {
        kind,
        session: s.map(session),
        ..SearchQuery::new("gardening", 100)
    };
    assert_eq!(
        keys(search(&*index, &alice, query(None, None)).await),
        vec![("summary", 1), ("turn", 1), ("turn", 2)]
    );
    assert_eq!(
        keys(search(&*index, &alice, query(Some(DocKind::Turn), None)).await),
        vec![("turn", 1), ("turn", 2)]
    );
    let summaries = search(&*index, &alice, query(Some(DocKind::Summary), None)).await;
    assert_eq!(keys(summaries.clone()), vec![("summary", 1)]);
    assert_eq!(summaries[0].summary_id().map(|s| s.0), Some(1));
    assert_eq!(summaries[0].turn_id(), None);
    assert_eq!(
        keys(search(&*index, &alice, query(None, Some("s1"))).await),
        vec![("summary", 1), ("turn", 1)]
    );
    assert_eq!(
        keys(search(&*index, &alice, query(Some(DocKind::Turn), Some("s2"))).await),
        vec![("turn", 2)]
    );
    assert!(
        search(&*index, &alice, query(Some(DocKind::Summary), Some("s2")))
            .await
            .is_empty()
    );
    assert!(search(&*index, &alice, query(None, Some("s3")))
        .await
        .is_empty());
    index.close().await.unwrap();
}

/// Pages (offset + limit) together hold exactly the hits of one big search, in order,
/// with no gaps or repeats, across several segments and with tied scores.
pub async fn paging_covers_the_same_hits_as_one_search(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    let other = scope("acme", "other");
    for batch in 0..3_i64 {
        let docs: Vec<IndexDoc> = (0..19)
            .map(|i| {
                let id = batch * 100 + i;
                let repeats = (i % 5 + 1) as usize;
                turn(
                    id,
                    &alice,
                    &format!("{} filler words", "river ".repeat(repeats)),
                )
            })
            .chain((0..5).map(|i| turn(batch * 100 + i, &other, "river river")))
            .collect();
        index.add(docs).await.unwrap();
        index.commit().await.unwrap();
    }
    let all = search(&*index, &alice, SearchQuery::new("river", 1_000)).await;
    assert_eq!(all.len(), 57);
    let mut paged = Vec::new();
    for page in 0..7 {
        let hits = search(
            &*index,
            &alice,
            SearchQuery {
                offset: page * 10,
                ..SearchQuery::new("river", 10)
            },
        )
        .await;
        assert_eq!(hits.len(), 57_usize.saturating_sub(page * 10).min(10));
        paged.extend(hits);
    }
    assert_eq!(ids(&paged), ids(&all), "pages are the big search, in order");
    let distinct: HashSet<i64> = paged.iter().map(|h| h.id).collect();
    assert_eq!(distinct.len(), 57, "no repeats");
    for pair in all.windows(2) {
        assert!(pair[0].score >= pair[1].score, "best first");
    }
    for offset in [57, 500, 1 << 40, usize::MAX] {
        let past_the_end = SearchQuery {
            offset,
            ..SearchQuery::new("river", 10)
        };
        assert!(
            search(&*index, &alice, past_the_end).await.is_empty(),
            "offset {offset}"
        );
    }
    index.close().await.unwrap();
}

/// Adding a document with the kind, id and scope of an indexed one replaces it; equal
/// ids of another kind or user are other documents.
pub async fn re_adding_a_doc_replaces_it(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    index
        .add(vec![
            turn(1, &alice, "old alpha text"),
            doc(DocKind::Summary, 1, &alice, "s1", 1, "summary alpha text"),
            turn(1, &bob, "bob alpha text"),
        ])
        .await
        .unwrap();
    index.commit().await.unwrap();
    index
        .add(vec![turn(1, &alice, "new beta text")])
        .await
        .unwrap();
    index.commit().await.unwrap();
    let alpha = search(&*index, &alice, SearchQuery::new("alpha", 10)).await;
    assert_eq!(alpha.len(), 1);
    assert_eq!(alpha[0].kind, DocKind::Summary);
    let beta = search(&*index, &alice, SearchQuery::new("beta", 10)).await;
    assert_eq!(beta.len(), 1);
    assert_eq!(beta[0].text, "new beta text");
    assert_eq!(find(&*index, &bob, "alpha").await, vec![1]);
    assert_eq!(index.num_docs().await.unwrap(), 3);

    // Twice in one batch, and again before the commit: still one document.
    index
        .add(vec![
            turn(2, &alice, "gamma first"),
            turn(2, &alice, "gamma second"),
        ])
        .await
        .unwrap();
    index
        .add(vec![turn(2, &alice, "gamma third")])
        .await
        .unwrap();
    index.commit().await.unwrap();
    let gamma = search(&*index, &alice, SearchQuery::new("gamma", 10)).await;
    assert_eq!(gamma.len(), 1, "{gamma:?}");
    assert_eq!(gamma[0].text, "gamma third");
    assert_eq!(index.num_docs().await.unwrap(), 4);
    index.close().await.unwrap();
}

/// `delete_user` removes every document of that user and nobody else's.
pub async fn delete_user_removes_only_that_user(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let alice_elsewhere = scope("globex", "alice");
    index
        .add(vec![
            doc(DocKind::Turn, 1, &alice, "s1", 1, "private diary"),
            doc(DocKind::Turn, 2, &alice, "s2", 2, "private notes"),
            doc(DocKind::Summary, 3, &alice, "s1", 3, "private summary"),
            doc(DocKind::Turn, 1, &bob, "s1", 1, "private bob"),
            doc(
                DocKind::Turn,
                1,
                &alice_elsewhere,
                "s1",
                1,
                "private globex",
            ),
        ])
        .await
        .unwrap();
    index.commit().await.unwrap();
    index.delete_user(&alice).await.unwrap();
    index.commit().await.unwrap();
    assert!(find(&*index, &alice, "private").await.is_empty());
    assert_eq!(find(&*index, &bob, "private").await, vec![1]);
    assert_eq!(find(&*index, &alice_elsewhere, "private").await, vec![1]);
    assert_eq!(index.num_docs().await.unwrap(), 2);
    // Deleting a user with no documents is not an error.
    index.delete_user(&scope("acme", "nobody")).await.unwrap();
    index.close().await.unwrap();
}

/// `delete_doc` removes one document of its user, never another user's with that id.
pub async fn delete_doc_removes_one_doc_of_its_user(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    index
        .add(vec![
            turn(1, &alice, "orange one"),
            turn(2, &alice, "orange two"),
            doc(DocKind::Summary, 1, &alice, "s1", 1, "orange summary"),
            turn(1, &bob, "orange bob"),
        ])
        .await
        .unwrap();
    index.commit().await.unwrap();
    index.delete_doc(&alice, DocKind::Turn, 1).await.unwrap();
    // Bob cannot delete Alice's turn 2, and a missing doc is not an error.
    index.delete_doc(&bob, DocKind::Turn, 2).await.unwrap();
    index
        .delete_doc(&scope("globex", "alice"), DocKind::Turn, 2)
        .await
        .unwrap();
    index.commit().await.unwrap();
    let left = search(&*index, &alice, SearchQuery::new("orange", 10)).await;
    let mut keys: Vec<(DocKind, i64)> = left.iter().map(|h| (h.kind, h.id)).collect();
    keys.sort_by_key(|(kind, id)| (kind.as_str(), *id));
    assert_eq!(keys, vec![(DocKind::Summary, 1), (DocKind::Turn, 2)]);
    assert_eq!(find(&*index, &bob, "orange").await, vec![1]);
    assert_eq!(index.num_docs().await.unwrap(), 3);
    index.close().await.unwrap();
}

/// `clear` removes every document of every user, those not yet committed too, and the
/// index takes new documents after it.
pub async fn clear_removes_everything_including_pending_writes(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    let bob = scope("globex", "bob");
    index
        .add(vec![
            turn(1, &alice, "walrus one"),
            turn(2, &bob, "walrus two"),
        ])
        .await
        .unwrap();
    index.commit().await.unwrap();
    index
        .add(vec![turn(3, &alice, "walrus pending")])
        .await
        .unwrap();
    index.clear().await.unwrap();
    index.commit().await.unwrap();
    assert_eq!(index.num_docs().await.unwrap(), 0);
    assert!(find(&*index, &alice, "walrus").await.is_empty());
    assert!(find(&*index, &bob, "walrus").await.is_empty());

    index
        .add(vec![turn(3, &alice, "walrus again")])
        .await
        .unwrap();
    index.commit().await.unwrap();
    assert_eq!(find(&*index, &alice, "walrus").await, vec![3]);
    assert_eq!(index.num_docs().await.unwrap(), 1);
    // A doc re-added after the clear is later replaced and deleted like any other.
    index
        .add(vec![turn(3, &alice, "walrus replaced")])
        .await
        .unwrap();
    index.commit().await.unwrap();
    let hits = search(&*index, &alice, SearchQuery::new("walrus", 10)).await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].text, "walrus replaced");
    index.delete_doc(&alice, DocKind::Turn, 3).await.unwrap();
    index.commit().await.unwrap();
    assert_eq!(index.num_docs().await.unwrap(), 0);
    index.close().await.unwrap();
}

/// Committed writes, and writes pending at `close`, survive close and reopen (for
/// persistent backends).
pub async fn data_survives_close_and_reopen(factory: &dyn IndexFactory) {
    if !factory.persistent() {
        return;
    }
    let alice = scope("acme", "alice");
    let index = open(factory).await;
    index
        .add(vec![
            turn(1, &alice, "durable committed"),
            turn(2, &alice, "durable doomed"),
        ])
        .await
        .unwrap();
    index.commit().await.unwrap();
    index
        .add(vec![turn(3, &alice, "durable pending")])
        .await
        .unwrap();
    index.delete_doc(&alice, DocKind::Turn, 2).await.unwrap();
    index.close().await.unwrap();
    drop(index);

    let index = open(factory).await;
    assert_eq!(find(&*index, &alice, "durable").await, vec![1, 3]);
    assert_eq!(index.num_docs().await.unwrap(), 2);
    let hits = search(&*index, &alice, SearchQuery::new("pending", 10)).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].text, "durable pending");
    assert_eq!(hits[0].event_time, at(3));
    index.close().await.unwrap();
}

/// Emoji, CJK (one word inside an unspaced sentence), Arabic, Hebrew and accented text
/// are searchable, and come back byte for byte.
pub async fn unicode_is_searchable_and_round_trips(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let user = scope("テナント", "用户-😀");
    index
        .add(
            UNICODE_SAMPLES
                .iter()
                .enumerate()
                .map(|(i, text)| doc(DocKind::Turn, i as i64, &user, "سجل", i as i64, text))
                .collect(),
        )
        .await
        .unwrap();
    index.commit().await.unwrap();
    for (word, sample) in [
        ("sushi", 0),
        ("trips", 0),
        ("东京", 1),
        ("寿司", 1),
        ("القهوة", 2),
        ("مرحبا", 2),
        ("עולם", 3),
        ("שלום", 3),
        ("café", 4),
        ("ZOË", 4),
        ("résumé", 4),
        ("precomposed", 5),
    ] {
        let hits = search(&*index, &user, SearchQuery::new(word, 10)).await;
        assert_eq!(ids(&hits), vec![sample], "searching {word:?}");
        assert_eq!(
            hits[0].text.as_bytes(),
            UNICODE_SAMPLES[sample as usize].as_bytes()
        );
        assert_eq!(hits[0].session_id, session("سجل"));
    }
    // A query of symbols only is not an error; it finds nothing, or the sample holding
    // them if the backend indexes symbols.
    assert!(index
        .search(&user, &SearchQuery::new("🍣 ❤️", 10))
        .await
        .unwrap()
        .iter()
        .all(|h| h.id == 0));
    assert!(find(&*index, &scope("テナント", "用户"), "东京")
        .await
        .is_empty());
    index.close().await.unwrap();
}

/// Blank text, a limit over `max_limit`, and `from` after `to` are refused as invalid
/// input; the boundaries themselves are accepted.
pub async fn invalid_queries_are_refused(factory: &dyn IndexFactory) {
    let index = factory
        .open(IndexConfig {
            max_limit: 50,
            ..config()
        })
        .await;
    let alice = scope("acme", "alice");
    index
        .add(vec![turn(1, &alice, "valid words")])
        .await
        .unwrap();
    index.commit().await.unwrap();
    let refused = [
        SearchQuery::new("", 10),
        SearchQuery::new(" \t\n ", 10),
        SearchQuery::new("valid", 51),
        SearchQuery {
            from: Some(at(10)),
            to: Some(at(9)),
            ..SearchQuery::new("valid", 10)
        },
    ];
    for query in refused {
        let err = index.search(&alice, &query).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{query:?}: {err}");
    }
    assert_eq!(
        ids(&search(&*index, &alice, SearchQuery::new("valid", 50)).await),
        vec![1]
    );
    assert!(search(&*index, &alice, SearchQuery::new("valid", 0))
        .await
        .is_empty());
    let same_instant = SearchQuery {
        from: Some(at(1)),
        to: Some(at(1)),
        ..SearchQuery::new("valid", 10)
    };
    assert!(search(&*index, &alice, same_instant).await.is_empty());
    index.close().await.unwrap();
}

/// `num_docs` counts committed, live documents across users and kinds.
pub async fn num_docs_counts_searchable_documents(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    assert_eq!(index.num_docs().await.unwrap(), 0);
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let docs: Vec<IndexDoc> = (1..=40)
        .map(|i| turn(i, &alice, "counting"))
        .chain((1..=5).map(|i| doc(DocKind::Summary, i, &alice, "s1", i, "counting")))
        .chain((1..=7).map(|i| turn(i, &bob, "counting")))
        .collect();
    index.add(docs).await.unwrap();
    index.add(Vec::new()).await.unwrap();
    index.commit().await.unwrap();
    assert_eq!(index.num_docs().await.unwrap(), 52);
    index
        .add((1..=10).map(|i| turn(i, &alice, "recounted")).collect())
        .await
        .unwrap();
    index.delete_user(&bob).await.unwrap();
    index.delete_doc(&alice, DocKind::Summary, 5).await.unwrap();
    assert_eq!(index.num_docs().await.unwrap(), 52, "nothing committed yet");
    index.commit().await.unwrap();
    assert_eq!(index.num_docs().await.unwrap(), 44);
    index.close().await.unwrap();
}

/// A closed index refuses work as unavailable instead of hanging, and closing it again
/// is not an error.
pub async fn closed_index_refuses_work(factory: &dyn IndexFactory) {
    let index = open(factory).await;
    let alice = scope("acme", "alice");
    index
        .add(vec![turn(1, &alice, "last words")])
        .await
        .unwrap();
    index.close().await.unwrap();
    let refused = [
        index
            .add(vec![turn(2, &alice, "too late")])
            .await
            .unwrap_err(),
        index
            .search(&alice, &SearchQuery::new("words", 10))
            .await
            .unwrap_err(),
        index.commit().await.unwrap_err(),
    ];
    for err in refused {
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    }
    index.close().await.unwrap();
}

/// A rebuild empties the index and indexes every turn and summary of the archive.
pub async fn rebuild_from_archive_indexes_turns_and_summaries(factory: &dyn IndexFactory) {
    let dir = tempfile::TempDir::new().unwrap();
    let clock: SharedClock = ManualClock::new(t0());
    let archive = SqliteArchive::open(
        &dir.path().join("archive.db"),
        &ArchiveConfig::default(),
        InputLimits::default(),
        clock,
    )
    .await
    .unwrap();
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let contents = [
        (&alice, "s1", "we planned a hike to the volcano"),
        (&alice, "s1", "bring water and boots"),
        (&bob, "s1", "bob also likes the volcano"),
        (&alice, "s2", "dinner was ramen"),
        (&alice, "s2", "東京のラーメン"),
    ];
    let appended = archive
        .append_batch(
            contents
                .iter()
                .enumerate()
                .map(|(i, (who, s, text))| NewTurn {
                    event_time: Some(at(i as i64 + 1)),
                    ..NewTurn::new((*who).clone(), session(s), Role::User, *text)
                })
                .collect(),
        )
        .await
        .unwrap();
    let turn_ids: Vec<i64> = appended.iter().map(|a| a.turn.id.0).collect();
    let summary = archive
        .put_summary(NewSummary {
            scope: alice.clone(),
            session_id: session("s1"),
            first_turn: TurnId(turn_ids[0]),
            last_turn: TurnId(turn_ids[1]),
            text: "alice prepares a volcano hike".into(),
            keywords: vec!["hike".into()],
            start_time: at(1),
            end_time: at(2),
        })
        .await
        .unwrap();

    let index = open(factory).await;
    // Stale documents, committed and pending, that the archive does not hold.
    index
        .add(vec![turn(9_999, &alice, "stale volcano")])
        .await
        .unwrap();
    index.commit().await.unwrap();
    index
        .add(vec![turn(9_998, &alice, "stale pending volcano")])
        .await
        .unwrap();
    let mut batches = Vec::new();
    let report = rebuild_from_archive(&archive, &*index, 2, |r| batches.push(*r))
        .await
        .unwrap();
    assert_eq!(
        report,
        RebuildReport {
            turns: 5,
            summaries: 1
        }
    );
    assert_eq!(
        batches.last(),
        Some(&report),
        "progress is told after each batch"
    );
    assert_eq!(batches.len(), 4, "three batches of turns, one of summaries");
    assert_eq!(
        index.mark().await.unwrap(),
        IndexMark {
            turns: TurnId(turn_ids[4]),
            summaries: summary.id,
        },
        "the rebuild records how far it indexed"
    );
    assert_eq!(index.num_docs().await.unwrap(), 6);
    let volcano = search(&*index, &alice, SearchQuery::new("volcano", 10)).await;
    let mut keys: Vec<(DocKind, i64)> = volcano.iter().map(|h| (h.kind, h.id)).collect();
    keys.sort_by_key(|(kind, id)| (kind.as_str(), *id));
    assert_eq!(
        keys,
        vec![
            (DocKind::Summary, summary.id.0),
            (DocKind::Turn, turn_ids[0])
        ]
    );
    let summary_hit = volcano.iter().find(|h| h.kind == DocKind::Summary).unwrap();
    assert_eq!(
        summary_hit.event_time,
        at(2),
        "a summary is dated by its end"
    );
    assert_eq!(summary_hit.session_id, session("s1"));
    assert_eq!(find(&*index, &bob, "volcano").await, vec![turn_ids[2]]);
    let ramen = search(&*index, &alice, SearchQuery::new("ラーメン", 10)).await;
    assert_eq!(ids(&ramen), vec![turn_ids[4]]);
    assert_eq!(ramen[0].text, "東京のラーメン");
    assert_eq!(ramen[0].event_time, at(5));
    index.close().await.unwrap();
    archive.close().await;
}

/// A commit records the mark it is given, with the documents: it survives a reopen, a
/// plain commit keeps it, and a cleared index commits zero (a new index reads zero).
pub async fn a_commit_records_its_mark_with_the_documents(factory: &dyn IndexFactory) {
    let alice = scope("acme", "alice");
    let index = open(factory).await;
    assert_eq!(index.mark().await.unwrap(), IndexMark::default());
    index
        .add(vec![turn(1, &alice, "the volcano hike")])
        .await
        .unwrap();
    let mark = IndexMark {
        turns: TurnId(7),
        summaries: SummaryId(3),
    };
    assert_eq!(
        index.mark().await.unwrap(),
        IndexMark::default(),
        "a mark is only read once committed"
    );
    index.commit_at(mark).await.unwrap();
    assert_eq!(index.mark().await.unwrap(), mark);
    index
        .add(vec![turn(2, &alice, "more about the volcano")])
        .await
        .unwrap();
    index.commit().await.unwrap();
    assert_eq!(index.mark().await.unwrap(), mark, "a plain commit keeps it");
    index.close().await.unwrap();

    if factory.persistent() {
        let index = open(factory).await;
        assert_eq!(index.mark().await.unwrap(), mark, "it survives a reopen");
        assert_eq!(find(&*index, &alice, "volcano").await.len(), 2);
        index.clear().await.unwrap();
        index.commit().await.unwrap();
        assert_eq!(
            index.mark().await.unwrap(),
            IndexMark::default(),
            "a cleared index starts from zero"
        );
        index.close().await.unwrap();
        let index = open(factory).await;
        assert_eq!(index.mark().await.unwrap(), IndexMark::default());
        index.close().await.unwrap();
    }
}

/// Documents committed without their mark (an interval commit) and added again after a
/// reopen, as the indexer's replay from its mark does, replace what was committed, while
/// new ones are added beside them.
pub async fn a_replay_after_a_reopen_replaces_what_was_committed(factory: &dyn IndexFactory) {
    if !factory.persistent() {
        return;
    }
    let alice = scope("acme", "alice");
    let index = open(factory).await;
    index
        .add(vec![
            turn(4, &alice, "heron first"),
            turn(5, &alice, "heron second"),
            doc(DocKind::Summary, 2, &alice, "s1", 5, "heron summary"),
        ])
        .await
        .unwrap();
    index.commit().await.unwrap();
    index.close().await.unwrap();
    drop(index);

    let index = open(factory).await;
    assert_eq!(index.mark().await.unwrap(), IndexMark::default());
    index
        .add(vec![
            turn(4, &alice, "heron first again"),
            turn(5, &alice, "heron second again"),
            doc(DocKind::Summary, 2, &alice, "s1", 5, "heron summary again"),
            turn(6, &alice, "heron third"),
            doc(DocKind::Summary, 3, &alice, "s1", 6, "heron later summary"),
        ])
        .await
        .unwrap();
    index.commit().await.unwrap();
    let mut texts: Vec<String> = search(&*index, &alice, SearchQuery::new("heron", 10))
        .await
        .into_iter()
        .map(|h| h.text)
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            "heron first again",
            "heron later summary",
            "heron second again",
            "heron summary again",
            "heron third"
        ]
    );
    assert_eq!(index.num_docs().await.unwrap(), 5);
    index.close().await.unwrap();
}
