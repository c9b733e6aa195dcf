//! `mnemo mcp` as an MCP client runs it: the binary on an embedded store, spoken to over
//! its stdin and stdout in newline-delimited JSON-RPC 2.0 (the handshake, `tools/list`,
//! `tools/call` of every tool, bad arguments, an unknown tool, a line that is not JSON),
//! then stdin closed: a clean exit 0 with nothing but JSON-RPC on stdout. A second run on
//! the same store for another tenant sees none of the first tenant's memories.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Generous: a debug build on a busy machine; a test never waits this long when it passes.
const WAIT: Duration = Duration::from_secs(60);

struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line the server wrote to stdout.
    seen: Vec<String>,
    next_id: u64,
}

impl Session {
    fn start(config: &Path, tenant: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mnemo"))
            .arg("--config")
            .arg(config)
            .args(["mcp", "--tenant", tenant])
            .env_remove("RUST_LOG")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mnemo mcp starts");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut session = Self {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            next_id: 1,
        };
        let init = session.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": { "name": "mnemo-test", "version": "1" }
            }),
        );
        let result = &init["result"];
        assert_eq!(result["protocolVersion"], "2025-06-18", "{init}");
        assert_eq!(result["serverInfo"]["name"], "mnemo", "{init}");
        assert!(result["capabilities"]["tools"].is_object(), "{init}");
        session.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        session
    }

    fn send(&mut self, message: &Value) {
        self.send_line(&message.to_string());
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("written");
        stdin.flush().expect("flushed");
    }

    /// The response to `id`, skipping notifications the server sends meanwhile.
    fn response(&mut self, id: &Value) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => panic!("no answer to request {id}"),
                Err(RecvTimeoutError::Disconnected) => panic!("stdout closed before {id}"),
            };
            self.seen.push(line.clone());
            let message: Value = serde_json::from_str(&line).expect("stdout is JSON");
            if message.get("id") == Some(id) {
                return message;
            }
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = json!(self.next_id);
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        self.response(&id)
    }

    /// `tools/call`: the result (success or tool error).
    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let answer = self.request(
            "tools/call",
            json!({ "name": tool, "arguments": arguments }),
        );
        assert!(answer.get("error").is_none(), "{tool}: {answer}");
        answer["result"].clone()
    }

    /// Calls `tool` until `done` holds for its result (the processors index a turn a
    /// few milliseconds after it is stored); each call is the wait.
    fn call_until(&mut self, tool: &str, arguments: Value, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let result = self.call(tool, arguments.clone());
            if done(&result) {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "{tool} never got there: {result}"
            );
        }
    }

    /// Closes stdin; the server must exit 0 by itself, having written only JSON-RPC.
    fn close(mut self) {
        drop(self.stdin.take());
        let status = exit_of(self.child).status;
        assert!(status.success(), "exit status {status}");
        for line in self.lines.try_iter() {
            self.seen.push(line);
        }
        for line in &self.seen {
            let message: Value = serde_json::from_str(line).expect("stdout is JSON-RPC only");
            assert_eq!(message["jsonrpc"], "2.0", "{line}");
        }
    }
}

/// How `child` ended, waiting for it (at most `WAIT`) on a thread of its own.
fn exit_of(child: Child) -> std::process::Output {
    let (send, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || send.send(child.wait_with_output()));
    exited
        .recv_timeout(WAIT)
        .expect("mnemo mcp exits by itself")
        .expect("waited")
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn is_error(result: &Value) -> bool {
    result["isError"] == json!(true)
}

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("mnemo.toml");
    std::fs::write(
        &path,
        format!(
            "[storage]\ndata_dir = {:?}\n",
            dir.join("data").display().to_string()
        ),
    )
    .expect("written");
    path
}

#[test]
fn every_tool_over_stdio_then_a_clean_exit() {
    let dir = tempfile::TempDir::new().expect("dir");
    let config = config(dir.path());
    let mut mcp = Session::start(&config, "acme");

    let listed = mcp.request("tools/list", json!({}));
    let tools = listed["result"]["tools"].as_array().expect("tools").clone();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
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
    for tool in &tools {
        let schema = &tool["inputSchema"];
        assert_eq!(schema["type"], "object", "{tool}");
        let required: Vec<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(required.contains(&"user_id"), "{tool}");
        assert!(tool["description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let remember = &tools[0]["inputSchema"];
    assert!(
        remember["properties"]["event_time"].is_object(),
        "{remember}"
    );
    assert!(remember["properties"]["role"].is_object(), "{remember}");

    let stored = mcp.call(
        "remember",
        json!({ "user_id": "maya", "content": "My dog Biscuit ate a sock at the beach in Lisbon.",
                "session_id": "s1", "speaker": "Maya", "event_time": "2026-10-27T09:30:00Z",
                "metadata": { "channel": "app" }, "external_id": "msg-1" }),
    );
    assert!(!is_error(&stored), "{stored}");
    let id = stored["structuredContent"]["id"].as_i64().expect("an id");
    assert_eq!(stored["structuredContent"]["created"], true);
    let again = mcp.call(
        "remember",
        json!({ "user_id": "maya", "content": "My dog Biscuit ate a sock at the beach in Lisbon.",
                "session_id": "s1", "external_id": "msg-1" }),
    );
    assert_eq!(again["structuredContent"]["id"], json!(id), "{again}");
    assert_eq!(again["structuredContent"]["created"], false, "{again}");
    // No session: the day of the event time; role defaults to user.
    let dated = mcp.call(
        "remember",
        json!({ "user_id": "maya", "content": "I started pottery classes on Tuesdays.",
                "event_time": "2026-11-03T18:00:00Z" }),
    );
    assert_eq!(
        dated["structuredContent"]["session_id"], "2026-11-03",
        "{dated}"
    );
    let answer = mcp.call(
        "remember",
        json!({ "user_id": "maya", "role": "assistant", "session_id": "s1",
                "content": "Oh no! Is Biscuit feeling better?" }),
    );
    assert!(!is_error(&answer), "{answer}");

    let recalled = mcp.call_until(
        "recall",
        json!({ "user_id": "maya", "query": "How is my dog doing?", "session_id": "s2" }),
        |r| text(r).contains("sock"),
    );
    assert!(!is_error(&recalled), "{recalled}");
    let structured = &recalled["structuredContent"];
    assert_eq!(
        structured["prompt"].as_str(),
        Some(text(&recalled).as_str())
    );
    assert!(structured["items"]
        .as_array()
        .is_some_and(|i| !i.is_empty()));
    assert!(structured["degraded"].is_array() && structured["timings_ms"].is_object());

    let found = mcp.call_until(
        "search_memory",
        json!({ "user_id": "maya", "query": "pottery", "limit": 5 }),
        |r| {
            r["structuredContent"]["hits"]
                .as_array()
                .is_some_and(|h| !h.is_empty())
        },
    );
    assert!(text(&found).contains("pottery"), "{found}");
    let found = mcp.call(
        "search_memory",
        json!({ "user_id": "maya", "query": "sock" }),
    );
    assert_eq!(
        found["structuredContent"]["hits"][0]["id"],
        json!(id),
        "{found}"
    );

    // Bad arguments and refused requests are tool errors the model can read.
    for (tool, arguments, code) in [
        ("remember", json!({ "user_id": "maya" }), "invalid_request"),
        (
            "remember",
            json!({ "user_id": "maya", "content": "x", "mood": "?" }),
            "invalid_request",
        ),
        (
            "remember",
            json!({ "user_id": "maya", "content": "" }),
            "invalid_input",
        ),
        (
            "remember",
            json!({ "user_id": "m".repeat(300), "content": "x" }),
            "invalid_input",
        ),
        (
            "remember",
            json!({ "user_id": "maya", "content": "x", "role": "robot" }),
            "invalid_request",
        ),
        (
            "remember",
            json!({ "user_id": "maya", "content": "x", "event_time": "2026-01-01T00:00:00" }),
            "invalid_request",
        ),
        (
            "recall",
            json!({ "user_id": "maya", "query": "a\u{0}b" }),
            "invalid_input",
        ),
        (
            "recall",
            json!({ "user_id": "maya", "query": "dog", "deadline_ms": 0 }),
            "invalid_input",
        ),
        (
            "search_memory",
            json!({ "user_id": "maya", "query": "dog", "limit": 0 }),
            "invalid_input",
        ),
        (
            "forget_turn",
            json!({ "user_id": "maya", "turn_id": "seven" }),
            "invalid_request",
        ),
        (
            "forget_turn",
            json!({ "user_id": "maya", "turn_id": id + 1000 }),
            "not_found",
        ),
        ("forget_user", json!({}), "invalid_request"),
    ] {
        let result = mcp.call(tool, arguments.clone());
        assert!(is_error(&result), "{tool} {arguments}: {result}");
        assert_eq!(
            result["structuredContent"]["error"]["code"], code,
            "{tool} {arguments}: {result}"
        );
        assert!(text(&result).starts_with(code), "{result}");
    }
    let unzoned = mcp.call(
        "remember",
        json!({ "user_id": "maya", "content": "x", "event_time": "2026-01-01T00:00:00" }),
    );
    assert!(
        text(&unzoned).contains("event_time"),
        "the field is named: {unzoned}"
    );
    // No arguments at all is a tool error too.
    let bare = mcp.request("tools/call", json!({ "name": "recall" }));
    assert!(is_error(&bare["result"]), "{bare}");
    // An unknown tool is a protocol error naming the tools; a line that is not JSON does
    // not end the session.
    let unknown = mcp.request("tools/call", json!({ "name": "teleport", "arguments": {} }));
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    assert!(unknown["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("remember")));
    mcp.send_line("{ this is not json");
    let pong = mcp.request("ping", json!({}));
    assert!(pong.get("result").is_some(), "{pong}");

    let forgot = mcp.call("forget_turn", json!({ "user_id": "maya", "turn_id": id }));
    assert!(!is_error(&forgot), "{forgot}");
    assert_eq!(forgot["structuredContent"]["turns"], 1);
    let gone = mcp.call(
        "search_memory",
        json!({ "user_id": "maya", "query": "sock" }),
    );
    assert_eq!(gone["structuredContent"]["hits"], json!([]), "{gone}");
    let forgot = mcp.call("forget_user", json!({ "user_id": "maya" }));
    assert_eq!(forgot["structuredContent"]["turns"], 2, "{forgot}");
    let gone = mcp.call(
        "search_memory",
        json!({ "user_id": "maya", "query": "pottery" }),
    );
    assert_eq!(gone["structuredContent"]["hits"], json!([]), "{gone}");

    // A memory that stays, for the next sessions.
    let kept = mcp.call(
        "remember",
        json!({ "user_id": "maya", "content": "My sister Ana is getting married in June." }),
    );
    assert!(!is_error(&kept), "{kept}");
    mcp.call_until(
        "search_memory",
        json!({ "user_id": "maya", "query": "married" }),
        |r| {
            r["structuredContent"]["hits"]
                .as_array()
                .is_some_and(|h| !h.is_empty())
        },
    );
    mcp.close();

    // Another tenant on the same store sees nothing of acme's user of the same name.
    let mut other = Session::start(&config, "globex");
    let none = other.call(
        "search_memory",
        json!({ "user_id": "maya", "query": "married" }),
    );
    assert_eq!(none["structuredContent"]["hits"], json!([]), "{none}");
    let recalled = other.call(
        "recall",
        json!({ "user_id": "maya", "query": "Who is Ana?" }),
    );
    assert!(!text(&recalled).contains("married"), "{recalled}");
    other.close();

    // And acme's memory survived the restart.
    let mut again = Session::start(&config, "acme");
    let found = again.call(
        "search_memory",
        json!({ "user_id": "maya", "query": "married" }),
    );
    assert_eq!(
        found["structuredContent"]["hits"].as_array().map(Vec::len),
        Some(1),
        "{found}"
    );
    again.close();
}

#[test]
fn closing_stdin_before_the_handshake_exits_cleanly() {
    let dir = tempfile::TempDir::new().expect("dir");
    let config = config(dir.path());
    let child = Command::new(env!("CARGO_BIN_EXE_mnemo"))
        .arg("--config")
        .arg(&config)
        .arg("mcp")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mnemo mcp starts");
    let output = exit_of(child);
    let status = output.status;
    assert!(
        status.success(),
        "{status}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty(), "stdout: {:?}", output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("serving MCP on stdio"), "{log}");
}

#[test]
fn a_bad_tenant_is_refused_before_anything_starts() {
    let dir = tempfile::TempDir::new().expect("dir");
    let config = config(dir.path());
    let output = Command::new(env!("CARGO_BIN_EXE_mnemo"))
        .arg("--config")
        .arg(&config)
        .args(["mcp", "--tenant", "bad\ttenant"])
        .stdin(Stdio::null())
        .output()
        .expect("ran");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("invalid --tenant"), "{said}");
}
