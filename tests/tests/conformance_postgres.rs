//! The storage conformance suites run against the PostgreSQL backends: the archive and
//! the embedded graph tables. Each test gets a database of its own on the server named by
//! `MNEMO_TEST_POSTGRES_URL` (default: the one `.ci/run` starts on 127.0.0.1:5432), and
//! fails with a clear message when that server cannot be reached.

mod archive_postgres {
    mnemo_storage::archive_conformance!(
        mnemo_storage::conformance::postgres::PostgresArchiveFactory::create().await
    );
}

mod postgres_graph {
    mnemo_storage::graph_conformance!(
        mnemo_storage::conformance::postgres::PostgresArchiveFactory::create().await
    );
}

/// With many appends racing, a reader that follows the outbox (moving to the last id it
/// read, or to the head when a page is empty) still sees every turn: ids become visible
/// in commit order, so none appears behind a reader's checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_reader_misses_nothing_while_appends_race() {
    use mnemo_storage::clock::{ManualClock, SharedClock};
    use mnemo_storage::conformance::archive::ArchiveFactory;
    use mnemo_storage::conformance::postgres::PostgresArchiveFactory;
    use mnemo_storage::conformance::{new_turn, scope, t0};
    use mnemo_storage::limits::InputLimits;
    use mnemo_storage::model::TurnId;
    use std::collections::HashSet;

    const WRITERS: usize = 8;
    const TURNS: usize = 40;
    let factory = PostgresArchiveFactory::create().await;
    let clock: SharedClock = ManualClock::new(t0());
    let archive = factory.open(InputLimits::default(), clock).await;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let archive = archive.clone();
        writers.push(tokio::spawn(async move {
            let user = scope("acme", &format!("writer-{w}"));
            for i in 0..TURNS {
                archive
                    .append_batch(vec![new_turn(&user, "s", &format!("{w}/{i}"))])
                    .await
                    .unwrap();
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut after = TurnId(0);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while seen.len() < WRITERS * TURNS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reader saw {} of {} turns: some became visible behind its checkpoint",
            seen.len(),
            WRITERS * TURNS
        );
        // Whether the writers were done is taken before the page is read: a writer that
        // finishes after the read may have appended a turn the page does not show.
        let writers_done = writers.iter().all(|w| w.is_finished());
        let page = archive.outbox(after, 7).await.unwrap();
        match page.turns.last() {
            Some(last) => {
                for t in &page.turns {
                    assert!(t.id > after, "the outbox went back");
                    assert!(seen.insert(t.id), "turn {} read twice", t.id);
                }
                after = last.id;
            }
            None => {
                if writers_done && page.head == after {
                    break;
                }
                after = page.head;
                tokio::task::yield_now().await;
            }
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(seen.len(), WRITERS * TURNS, "the reader saw every turn");
}

/// `analyze` refreshes the planner's statistics of the archive's tables (PostgreSQL
/// records a never-analysed table's row estimate as -1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_refreshes_the_planner_statistics() {
    use mnemo_storage::clock::{ManualClock, SharedClock};
    use mnemo_storage::conformance::archive::ArchiveFactory;
    use mnemo_storage::conformance::postgres::PostgresArchiveFactory;
    use mnemo_storage::conformance::{new_turn, scope, t0};
    use mnemo_storage::limits::InputLimits;
    use sqlx::{ConnectOptions, Connection};

    let factory = PostgresArchiveFactory::create().await;
    let clock: SharedClock = ManualClock::new(t0());
    let archive = factory.open(InputLimits::default(), clock).await;
    let alice = scope("acme", "alice");
    archive
        .append_batch(
            (0..3)
                .map(|i| new_turn(&alice, "s", &format!("turn {i}")))
                .collect(),
        )
        .await
        .unwrap();
    let mut conn = factory.database().options().connect().await.unwrap();
    let estimate = "SELECT reltuples FROM pg_class WHERE relname = 'turns'";
    let before: f32 = sqlx::query_scalar(estimate)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(before, -1.0, "never analysed yet");
    archive.analyze().await.unwrap();
    let after: f32 = sqlx::query_scalar(estimate)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(after, 3.0);
    conn.close().await.unwrap();
}
