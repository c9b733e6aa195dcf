//! The MCP tools over the streamable-HTTP transport at `/mcp` of the HTTP service: the
//! handshake and a session id, `tools/list`, tool calls and tool errors, the API key
//! deciding the tenant (no key: 401; another tenant's key cannot use the session, and
//! sees none of the first tenant's memories), and closing a session with DELETE.

use mnemo_tests::served::{Served, ACME_KEY, GLOBEX_KEY};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SESSION: &str = "mcp-session-id";

/// POSTs one JSON-RPC message; the status, the session id it names and the JSON answer.
async fn rpc(
    s: &Served,
    key: Option<&str>,
    session: Option<&str>,
    message: Value,
) -> (StatusCode, Option<String>, Value) {
    let mut request = s
        .request(Method::POST, "/mcp", key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&message);
    if let Some(session) = session {
        request = request.header(SESSION, session);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status();
    let session = response
        .headers()
        .get(SESSION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.expect("a body");
    (status, session, json_of(&text))
}

/// The JSON answer of a body: JSON itself, or the last JSON `data:` event of a
/// server-sent event stream (the transport may answer either way).
fn json_of(text: &str) -> Value {
    if let Ok(value) = serde_json::from_str(text) {
        return value;
    }
    text.lines()
        .rev()
        .filter_map(|line| line.strip_prefix("data:"))
        .find_map(|data| serde_json::from_str(data.trim()).ok())
        .unwrap_or_else(|| Value::String(text.to_owned()))
}

async fn handshake(s: &Served, key: &str) -> String {
    let (status, session, answer) = rpc(
        s,
        Some(key),
        None,
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": { "name": "test", "version": "1" } } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"]["serverInfo"]["name"], "mnemo", "{answer}");
    let session = session.expect("a session id");
    let (status, _, answer) = rpc(
        s,
        Some(key),
        Some(&session),
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    session
}

async fn call(
    s: &Served,
    key: &str,
    session: &str,
    id: u64,
    tool: &str,
    arguments: Value,
) -> Value {
    let (status, _, answer) = rpc(
        s,
        Some(key),
        Some(session),
        json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": { "name": tool, "arguments": arguments } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_over_streamable_http_for_the_key_s_tenant() {
    let s = Served::start(|_| {}).await;

    // No key, no MCP.
    let (status, _, answer) = rpc(
        &s,
        None,
        None,
        json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["error"]["code"], "unauthorized");

    let acme = handshake(&s, ACME_KEY).await;
    let (_, _, listed) = rpc(
        &s,
        Some(ACME_KEY),
        Some(&acme),
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }),
    )
    .await;
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "remember",
            "recall",
            "search_memory",
            "forget_user",
            "forget_turn"
        ]
    );

    let stored = call(
        &s,
        ACME_KEY,
        &acme,
        3,
        "remember",
        json!({ "user_id": "maya", "content": "My dog Biscuit ate a sock at the beach." }),
    )
    .await;
    assert_eq!(stored["isError"], false, "{stored}");
    let id = stored["structuredContent"]["id"].as_i64().expect("an id");
    s.engine.wait_processed().await.expect("processed");
    let found = call(
        &s,
        ACME_KEY,
        &acme,
        4,
        "search_memory",
        json!({ "user_id": "maya", "query": "sock" }),
    )
    .await;
    assert_eq!(
        found["structuredContent"]["hits"][0]["id"],
        json!(id),
        "{found}"
    );
    let recalled = call(
        &s,
        ACME_KEY,
        &acme,
        5,
        "recall",
        json!({ "user_id": "maya", "query": "How is my dog?" }),
    )
    .await;
    assert!(
        recalled["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("sock")),
        "{recalled}"
    );
    let bad = call(
        &s,
        ACME_KEY,
        &acme,
        6,
        "remember",
        json!({ "user_id": "maya" }),
    )
    .await;
    assert_eq!(bad["isError"], true, "{bad}");
    assert_eq!(
        bad["structuredContent"]["error"]["code"], "invalid_request",
        "{bad}"
    );

    // Globex's key cannot use acme's session, and its own session sees nothing of acme.
    let (status, _, answer) = rpc(
        &s,
        Some(GLOBEX_KEY),
        Some(&acme),
        json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": { "name": "search_memory", "arguments": { "user_id": "maya", "query": "sock" } } }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let globex = handshake(&s, GLOBEX_KEY).await;
    let none = call(
        &s,
        GLOBEX_KEY,
        &globex,
        8,
        "search_memory",
        json!({ "user_id": "maya", "query": "sock" }),
    )
    .await;
    assert_eq!(none["structuredContent"]["hits"], json!([]), "{none}");

    // Closing the session: it is gone afterwards.
    let closed = s
        .request(Method::DELETE, "/mcp", Some(ACME_KEY))
        .header(SESSION, &acme)
        .send()
        .await
        .expect("an answer");
    assert!(closed.status().is_success(), "{}", closed.status());
    let (status, _, answer) = rpc(
        &s,
        Some(ACME_KEY),
        Some(&acme),
        json!({ "jsonrpc": "2.0", "id": 9, "method": "ping" }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    // Other methods are 405 naming the three.
    let put = s
        .request(Method::PUT, "/mcp", Some(ACME_KEY))
        .send()
        .await
        .expect("an answer");
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        put.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, POST, DELETE")
    );

    s.stop().await;
}
