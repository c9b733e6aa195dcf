//! A processor working through a backlog in full batches checkpoints at most every
//! `checkpoint_ms` (each checkpoint is an archive transaction, and the indexer's an index
//! commit that makes a segment), and at once when it has caught up; with 0 it
//! checkpoints after every step. What it publishes as its progress is what it saved.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{in_actix, open_stores, start_actors_with};
use mnemo_actors::runtime::faults::Faults;
use mnemo_storage::conformance::{new_turn, scope};
use mnemo_storage::model::TurnId;

/// Longest the test waits for the processor before it fails instead of hanging.
const GUARD: Duration = Duration::from_secs(30);

/// Stores 40 turns while the emotion processor (batches of 4, each step delayed) is
/// held, lets it go, and answers every progress it published on the way to the last
/// turn, and the checkpoint the archive holds then.
async fn progress_through_a_backlog(checkpoint_ms: u64) -> (Vec<TurnId>, TurnId, TurnId) {
    let stores = open_stores().await;
    let faults = Arc::new(Faults::default());
    faults.hold("emotion");
    let handles = start_actors_with(&stores, faults.clone(), |config| {
        config.processors.emotion.enabled = true;
        config.processors.batch_turns = 4;
        config.processors.checkpoint_ms = checkpoint_ms;
    });
    let emotion = handles
        .processors
        .iter()
        .find(|p| p.name == "emotion")
        .expect("the emotion processor runs")
        .clone();
    let alice = scope("acme", "alice");
    let turns = (0..40)
        .map(|i| new_turn(&alice, "s1", &format!("a happy day, number {i}")))
        .collect();
    let appended = handles.archive.append(turns).await.expect("stored");
    let last = appended.last().expect("turns stored").turn.id;

    let mut progress = emotion.progress.clone();
    let mut seen = Vec::new();
    // A step long enough that the test sees every progress it publishes.
    faults.delay("emotion", Duration::from_millis(20));
    faults.release("emotion");
    tokio::time::timeout(GUARD, async {
        loop {
            progress.changed().await.expect("the processor runs");
            let at = *progress.borrow_and_update();
            // The checkpoint it starts from, published as it starts.
            if at > TurnId(0) {
                seen.push(at);
            }
            if at >= last {
                return;
            }
        }
    })
    .await
    .expect("the processor catches up");
    let saved = handles
        .archive
        .checkpoint("emotion")
        .await
        .expect("a checkpoint");
    (seen, last, saved)
}

#[test]
fn a_backlog_in_full_batches_is_checkpointed_once_caught_up() {
    in_actix(async {
        let (seen, last, saved) = progress_through_a_backlog(3_600_000).await;
        assert_eq!(seen, vec![last], "no checkpoint before catching up");
        assert_eq!(saved, last);
    });
}

#[test]
fn with_no_checkpoint_interval_every_step_is_checkpointed() {
    in_actix(async {
        let (seen, last, saved) = progress_through_a_backlog(0).await;
        assert!(seen.len() >= 5, "a checkpoint per step of 4: {seen:?}");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert_eq!(seen.last(), Some(&last));
        assert_eq!(saved, last);
    });
}
