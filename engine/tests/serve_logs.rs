//! `mnemo serve` writes its logs on stderr, as JSON lines when `[log] format = "json"`:
//! the start with the backends chosen, where it listens, and the shutdown on SIGTERM.

mod common;

const KEY: &str = "mk_serve_logs_test_key_0123456789abcdef";

#[test]
fn serve_logs_its_start_and_shutdown_on_stderr_as_json_lines() {
    let mut served = common::serve(KEY, "[log]\nformat = \"json\"\n");
    let (lines, _) = served.wait_listening();
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"))
        })
        .collect();
    let starting = events
        .iter()
        .find(|e| e["fields"]["message"] == "engine starting")
        .unwrap_or_else(|| panic!("no start line: {events:?}"));
    assert_eq!(starting["level"], "INFO");
    let archive = starting["fields"]["archive"].as_str().unwrap_or_default();
    assert!(archive.starts_with("sqlite "), "{starting}");
    assert_eq!(starting["fields"]["recent"], "memory");

    let drain = served.drain();
    served.terminate();
    let status = served.child.wait().unwrap();
    let rest: Vec<serde_json::Value> = drain
        .join()
        .unwrap()
        .iter()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert!(status.success(), "{status}: {rest:?}");
    let messages: Vec<&str> = rest
        .iter()
        .filter_map(|e| e["fields"]["message"].as_str())
        .collect();
    for expected in [
        "SIGTERM received: shutting down",
        "engine shutting down: no new requests; finishing those in flight",
        "engine stopped",
    ] {
        assert!(
            messages.contains(&expected),
            "{expected:?} not in {messages:?}"
        );
    }
}
