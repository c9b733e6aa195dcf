//! In a process of its own, where nothing has been counted yet: the series dashboards
//! and the shipped alert rules divide by or watch exist from the engine's start, at 0,
//! so a quiet engine reads 0 rather than "no data".

use mnemo_engine::actors::metrics::OPERATIONS;
use mnemo_tests::metrics_text::has_sample;
use mnemo_tests::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_series_exist_before_any_traffic() {
    let h = Harness::new(|_| {});
    let engine = h.start().await;
    let text = engine.metrics_text();
    for tier in ["recent", "index", "graph", "emotion", "archive"] {
        assert!(
            has_sample(&text, "mnemo_context_degraded_total", &[("tier", tier)]),
            "no degraded series for {tier} before traffic:\n{text}"
        );
    }
    for operation in OPERATIONS {
        assert!(has_sample(
            &text,
            "mnemo_requests_total",
            &[("operation", operation), ("status", "ok")]
        ));
        assert!(has_sample(
            &text,
            "mnemo_errors_total",
            &[("operation", operation), ("kind", "busy")]
        ));
    }
    engine.shutdown().await.unwrap();
}
