//! Metrics of a whole embedded engine: after traffic of every kind (including a degraded
//! answer, an error and a restart), the Prometheus text names every family with its HELP
//! and TYPE, and passes `promtool check metrics`.

use std::time::Duration;

use mnemo_engine::actors::metrics::OPERATIONS;
use mnemo_engine::metrics::{Kind, FAMILIES};
use mnemo_engine::{ContextRequest, Engine, ErrorKind};
use mnemo_storage::archive::HistoryPage;
use mnemo_storage::index::SearchQuery;
use mnemo_tests::metrics_text::{has_sample, samples};
use mnemo_tests::{promtool_check, scope, session, turn, within, Harness};

async fn drive_traffic(engine: &Engine) {
    let alice = scope("acme", "alice");
    let bob = scope("acme", "bob");
    let stored = engine
        .store(turn(&alice, "s1", "Biscuit chased a squirrel in Paris."))
        .await
        .expect("store");
    engine
        .store_batch(vec![
            turn(&alice, "s1", "Then Biscuit slept by the fire."),
            turn(&alice, "s1", "Anna walked Biscuit at noon."),
            turn(&bob, "s9", "Bob likes chess."),
        ])
        .await
        .expect("store_batch");
    // A refused turn: an error by kind.
    let refused = engine.store(turn(&alice, "s1", "")).await;
    assert_eq!(
        refused.expect_err("empty content is refused").kind(),
        ErrorKind::InvalidInput
    );
    within("the processors to catch up", engine.wait_processed())
        .await
        .expect("processing completes");

    // The same request twice: a miss, then a hit.
    for _ in 0..2 {
        let request = ContextRequest::new(
            alice.clone(),
            Some(session("s1")),
            "What did Biscuit chase?",
        );
        engine.context(request).await.expect("context");
    }
    engine
        .search(&alice, SearchQuery::new("Biscuit", 10))
        .await
        .expect("search");
    engine
        .history(
            &alice,
            &session("s1"),
            HistoryPage {
                before: None,
                limit: 10,
            },
        )
        .await
        .expect("history");
    engine.graph(&alice, "Biscuit", 1, 10).await.expect("graph");
    engine
        .forget_turn(&alice, stored.turn.id)
        .await
        .expect("forget_turn");
    engine.forget_user(&bob).await.expect("forget_user");

    // A degraded answer: the index is slower than the deadline.
    engine.faults().delay("index", Duration::from_secs(5));
    let mut request = ContextRequest::new(alice.clone(), Some(session("s1")), "Biscuit by fire");
    request.deadline = Some(Duration::from_millis(50));
    let answer = engine.context(request).await.expect("a degraded context");
    assert!(
        answer.degraded.contains(&"index".to_owned()),
        "{:?}",
        answer.degraded
    );
    engine.faults().clear();

    // A panic in the assembler: an error, then a restart.
    engine.faults().panic_next("context", 1);
    let failed = engine
        .context(ContextRequest::new(alice.clone(), None, "anything"))
        .await;
    assert!(failed.is_err(), "the injected panic fails the request");
    within(
        "the assembler to restart",
        engine.wait_restarts("context", 1),
    )
    .await
    .expect("the assembler restarts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_name_every_family_and_pass_promtool() {
    let h = Harness::new(|_| {});
    let engine = h.start().await;
    drive_traffic(&engine).await;
    let text = engine.metrics_text();

    for &(family, kind, _) in FAMILIES {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "no HELP for {family}:\n{text}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} {}\n", kind.as_str())),
            "no TYPE {} for {family}:\n{text}",
            kind.as_str()
        );
        let sample_family = match kind {
            Kind::Histogram => format!("{family}_bucket"),
            Kind::Counter | Kind::Gauge => family.to_owned(),
        };
        assert!(
            samples(&text, &sample_family).next().is_some(),
            "no samples of {family}:\n{text}"
        );
    }

    for operation in OPERATIONS {
        assert!(
            has_sample(
                &text,
                "mnemo_requests_total",
                &[("operation", operation), ("status", "ok")]
            ),
            "no successful {operation} counted:\n{text}"
        );
        assert!(
            has_sample(
                &text,
                "mnemo_request_duration_seconds_bucket",
                &[("operation", operation), ("le", "0.0001")]
            ),
            "no latency buckets for {operation}:\n{text}"
        );
    }
    let checks: [(&str, &[(&str, &str)]); 10] = [
        (
            "mnemo_requests_total",
            &[("operation", "store"), ("status", "invalid_input")],
        ),
        (
            "mnemo_errors_total",
            &[("operation", "store"), ("kind", "invalid_input")],
        ),
        (
            "mnemo_errors_total",
            &[("operation", "context"), ("kind", "unavailable")],
        ),
        ("mnemo_context_degraded_total", &[("tier", "index")]),
        (
            "mnemo_context_tier_duration_seconds_count",
            &[("tier", "recent")],
        ),
        (
            "mnemo_context_tier_duration_seconds_count",
            &[("tier", "total")],
        ),
        (
            "mnemo_actor_restarts_total",
            &[("actor", "context"), ("cause", "panic")],
        ),
        (
            "mnemo_actor_state",
            &[("actor", "context"), ("state", "up")],
        ),
        ("mnemo_mailbox_depth", &[("actor", "archive")]),
        ("mnemo_processor_lag_turns", &[("processor", "indexer")]),
    ];
    for (family, labels) in checks {
        assert!(
            has_sample(&text, family, labels),
            "no {family} sample with {labels:?}:\n{text}"
        );
    }
    assert!(
        has_sample(&text, "mnemo_ingest_batch_turns_bucket", &[("le", "8192")]),
        "batch size buckets:\n{text}"
    );

    promtool_check(&text);
    engine.shutdown().await.expect("shutdown");
}

/// The shipped alert rules pass `promtool check rules` and name only families Mnemo
/// exports (that the series they watch exist before any traffic is
/// `tests/metrics_at_start.rs`, in a process of its own).
#[test]
fn the_shipped_alert_rules_check_and_name_only_exported_families() {
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/prometheus/alerts.yml"
    );
    let text = std::fs::read_to_string(rules).expect("deploy/prometheus/alerts.yml");
    let named = families_in(&text);
    assert!(named.len() > 5, "{named:?}");
    for family in &named {
        assert!(
            FAMILIES.iter().any(|(name, _, _)| name == family),
            "alerts.yml names {family}, which Mnemo does not export"
        );
    }
    mnemo_tests::promtool_check_rules(rules);
}

/// The alert rules' unit tests (`deploy/prometheus/alerts_test.yml`): every alert fires
/// on the series it watches after its wait, and none fires on a healthy engine.
#[test]
fn the_alert_rules_pass_their_unit_tests() {
    mnemo_tests::promtool_test_rules(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/prometheus/alerts_test.yml"
    ));
}

/// The family names in a PromQL expression (histogram series back to their family).
fn families_in(expr: &str) -> Vec<String> {
    let mut named = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("mnemo_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name)
            .to_owned();
        named.push(family);
    }
    named
}

/// Every query of the shipped Grafana dashboard names only families Mnemo exports, and
/// every panel but rows and text queries something.
#[test]
fn the_grafana_dashboard_queries_only_exported_families() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/mnemo-dashboard.json"
    );
    let text = std::fs::read_to_string(path).expect("deploy/grafana/mnemo-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queried = 0;
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or_default();
        if panel["type"] == "row" || panel["type"] == "text" {
            continue;
        }
        let exprs: Vec<&str> = panel["targets"]
            .as_array()
            .map(|targets| targets.iter().filter_map(|t| t["expr"].as_str()).collect())
            .unwrap_or_default();
        assert!(!exprs.is_empty(), "panel {title:?} queries nothing");
        for expr in exprs {
            let families = families_in(expr);
            assert!(
                !families.is_empty(),
                "panel {title:?}: {expr} names no Mnemo family"
            );
            for family in families {
                assert!(
                    FAMILIES.iter().any(|(name, _, _)| *name == family),
                    "panel {title:?} queries {family}, which Mnemo does not export"
                );
            }
            queried += 1;
        }
    }
    assert!(queried >= 10, "{queried} queries");
}
