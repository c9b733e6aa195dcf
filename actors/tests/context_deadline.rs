//! Context assembly under its deadline: a tier that does not answer in time is left out
//! and named in `degraded`, and the answer comes from the tiers that did; a tier that is
//! down is named too, and a request that no tier can serve is an error, not a late or
//! empty answer.
//!
//! The late tier is held by a fault hook for an hour, far past any deadline: what the test
//! waits on is the answer, which the deadline alone releases.

mod common;

use std::sync::Arc;
use std::time::Duration;

use mnemo_actors::context::{AssembleContext, ContextAnswer, ContextRequest};
use mnemo_actors::runtime::faults::Faults;
use mnemo_actors::system::Handles;
use mnemo_actors::Error;
use mnemo_storage::conformance::{new_turn, scope, session};
use mnemo_storage::model::Scope;

const HELD: Duration = Duration::from_secs(3_600);

async fn ask(
    handles: &Handles,
    user: &Scope,
    deadline_ms: u64,
) -> mnemo_actors::Result<ContextAnswer> {
    let mut request = ContextRequest::new(user.clone(), Some(session("s1")), "Biscuit the dog");
    request.deadline = Some(Duration::from_millis(deadline_ms));
    handles.context.ask(AssembleContext::now(request)).await
}

#[test]
fn a_tier_past_the_deadline_is_left_out_and_named() {
    common::in_actix(async {
        let stores = common::open_stores().await;
        let faults = Arc::new(Faults::default());
        let handles = common::start_actors(&stores, faults.clone());
        let maya = scope("acme", "maya");
        handles
            .archive
            .append(vec![new_turn(&maya, "s1", "Biscuit the dog ate a sock")])
            .await
            .expect("stored");

        faults.delay("graph", HELD);
        let answer = ask(&handles, &maya, 300)
            .await
            .expect("answered without the graph");
        assert!(
            answer.degraded.contains(&"graph".to_owned()),
            "{:?}",
            answer.degraded
        );
        assert!(answer.entities.is_empty());
        assert_eq!(answer.recent.len(), 1, "the recent turns came in time");
        assert!(
            answer.timings_ms.contains_key("graph"),
            "{:?}",
            answer.timings_ms
        );
        assert!(
            answer.prompt.contains("Biscuit the dog ate a sock"),
            "{}",
            answer.prompt
        );
        assert!(!answer.cached);
        // A degraded answer is not cached: the next request asks the tiers again.
        faults.clear();
        let answer = ask(&handles, &maya, 5_000).await.expect("answered");
        assert!(answer.degraded.is_empty(), "{:?}", answer.degraded);
        assert!(!answer.cached);
    });
}

#[test]
fn with_every_tier_past_the_deadline_the_request_is_a_deadline_error() {
    common::in_actix(async {
        let stores = common::open_stores().await;
        let faults = Arc::new(Faults::default());
        let handles = common::start_actors(&stores, faults.clone());
        for tier in ["recent", "archive", "index", "graph"] {
            faults.delay(tier, HELD);
        }
        let err = ask(&handles, &scope("acme", "maya"), 200)
            .await
            .expect_err("no tier answered");
        assert!(matches!(err, Error::Deadline(_)), "{err:?}");
        assert!(
            err.to_string().contains("no tier answered within 200 ms"),
            "{err}"
        );
    });
}

#[test]
fn a_tier_that_fails_is_left_out_and_named_at_once() {
    common::in_actix(async {
        let stores = common::open_stores().await;
        let faults = Arc::new(Faults::default());
        let handles = common::start_actors(&stores, faults.clone());
        faults.panic_next("index", 1);
        // A generous deadline: the answer does not wait for it, the index failed at once.
        let answer = ask(&handles, &scope("acme", "maya"), 60_000)
            .await
            .expect("answered without the index");
        assert!(
            answer.degraded.contains(&"index".to_owned()),
            "{:?}",
            answer.degraded
        );
    });
}
