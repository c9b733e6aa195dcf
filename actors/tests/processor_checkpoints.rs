//! A processor working through a backlog in full batches checkpoints at most every
//! `checkpoint_ms` (each checkpoint is an archive transaction, and the indexer's an index
//! commit that makes a segment), and at once when it has caught up; with 0 it
//! checkpoints after every step. What it publishes as its progress is what it saved.
//! Its steps through a backlog double up to `max_batch_turns` while requests keep within
//! their target, and stay at `batch_turns` while they overrun it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{in_actix, open_stores, start_actors_with};
use mnemo_actors::processors::pressure::Pressure;
use mnemo_actors::runtime::faults::Faults;
use mnemo_storage::conformance::{new_turn, scope};
use mnemo_storage::model::TurnId;

/// Longest the test waits for the processor before it fails instead of hanging.
const GUARD: Duration = Duration::from_secs(30);

/// How the backlog is worked through.
#[derive(Clone, Copy)]
struct Run {
    checkpoint_ms: u64,
    max_batch_turns: usize,
    /// Whether requests overrun their target throughout.
    pressed: bool,
}

/// Stores 40 turns while the emotion processor (batches of 4, each step delayed) is
/// held, lets it go, and answers every progress it published on the way to the last
/// turn, the checkpoint the archive holds then, and the ids stored.
async fn progress_through_a_backlog(run: Run) -> (Vec<TurnId>, TurnId, Vec<TurnId>) {
    let stores = open_stores().await;
    let faults = Arc::new(Faults::default());
    faults.hold("emotion");
    let handles = start_actors_with(&stores, faults.clone(), |config| {
        config.processors.emotion.enabled = true;
        config.processors.batch_turns = 4;
        config.processors.max_batch_turns = run.max_batch_turns;
        config.processors.checkpoint_ms = run.checkpoint_ms;
        // Under pressure a processor also waits after each step; not here.
        config.processors.yield_ms = 0;
    });
    // Requests overrunning, and answered often enough that their word stays fresh.
    let pressing = run.pressed.then(|| {
        let pressure: Arc<Pressure> = handles.pressure.clone();
        pressure.report(0, true);
        pressure.heard();
        tokio::spawn(async move {
            loop {
                pressure.heard();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
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
    let ids: Vec<TurnId> = appended.iter().map(|a| a.turn.id).collect();
    let last = *ids.last().expect("turns stored");

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
    if let Some(pressing) = pressing {
        pressing.abort();
    }
    (seen, saved, ids)
}

#[test]
fn a_backlog_in_full_batches_is_checkpointed_once_caught_up() {
    in_actix(async {
        let (seen, saved, ids) = progress_through_a_backlog(Run {
            checkpoint_ms: 3_600_000,
            max_batch_turns: 4,
            pressed: false,
        })
        .await;
        let last = ids[39];
        assert_eq!(seen, vec![last], "no checkpoint before catching up");
        assert_eq!(saved, last);
    });
}

/// Whether every progress seen is the end of a step of `sizes`, in order (the watch
/// channel may skip some, never invent one).
fn ends_of_steps(seen: &[TurnId], ids: &[TurnId], sizes: &[usize]) -> bool {
    let mut ends = Vec::new();
    let mut at = 0;
    for size in sizes {
        at = (at + size).min(ids.len());
        ends.push(ids[at - 1]);
    }
    seen.windows(2).all(|w| w[0] < w[1]) && seen.iter().all(|id| ends.contains(id))
}

#[test]
fn with_no_checkpoint_interval_every_step_is_checkpointed() {
    in_actix(async {
        let (seen, saved, ids) = progress_through_a_backlog(Run {
            checkpoint_ms: 0,
            max_batch_turns: 4,
            pressed: false,
        })
        .await;
        assert!(seen.len() >= 5, "a checkpoint per step of 4: {seen:?}");
        assert!(ends_of_steps(&seen, &ids, &[4; 10]), "{seen:?}");
        assert_eq!(seen.last(), Some(&ids[39]));
        assert_eq!(saved, ids[39]);
    });
}

#[test]
fn steps_through_a_backlog_double_while_requests_keep_within_their_target() {
    in_actix(async {
        let (seen, saved, ids) = progress_through_a_backlog(Run {
            checkpoint_ms: 0,
            max_batch_turns: 16,
            pressed: false,
        })
        .await;
        // Steps of 4, 8, 16, then the 12 left.
        assert!(ends_of_steps(&seen, &ids, &[4, 8, 16, 12]), "{seen:?}");
        assert_eq!(seen.last(), Some(&ids[39]));
        assert_eq!(saved, ids[39]);
    });
}

#[test]
fn steps_stay_at_the_batch_while_requests_overrun_their_target() {
    in_actix(async {
        let (seen, saved, ids) = progress_through_a_backlog(Run {
            checkpoint_ms: 0,
            max_batch_turns: 16,
            pressed: true,
        })
        .await;
        // Four steps at most had they grown.
        assert!(seen.len() >= 5, "a step of 4 at a time: {seen:?}");
        assert!(ends_of_steps(&seen, &ids, &[4; 10]), "{seen:?}");
        assert_eq!(saved, ids[39]);
    });
}
