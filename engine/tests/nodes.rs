//! Several nodes, one memory: real `mnemo serve` processes, each with a data directory of
//! its own, on one PostgreSQL database and one Redis key prefix. Any node serves any
//! request; what one node stores, every other finds; a node killed with SIGKILL is
//! replaced by one that catches up by itself; shared processors run once in the cluster
//! and their leases move when a holder dies.
//!
//! The nodes are other processes: the harness waits for what it expects by asking them
//! again (every 50 ms), with a long guard against a hang; it records how long the
//! cluster took and prints it, but never fails on time.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mnemo_engine::http;
use mnemo_engine::storage::conformance::postgres::TestDatabase;
use mnemo_engine::storage::conformance::redis::delete_keys;
use parking_lot::Mutex;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const KEY: &str = "nodes-test-key";

/// Longest the harness waits for the cluster to show what a test expects: a guard
/// against a hang, not a goal (the goal is measured in BENCHMARKS.md).
const PATIENCE: Duration = Duration::from_secs(90);

/// One cluster at a time in this binary: each is three server processes with their
/// connections, on a 2-core machine.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A `mnemo serve` process of the cluster.
struct Node {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// Starts `mnemo serve` on `config` and waits until it says where it listens.
    fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mnemo"))
            .args(["serve", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mnemo serve starts");
        let stderr = BufReader::new(child.stderr.take().expect("its stderr"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        // Reads stderr for as long as the process lives, so it never blocks on a full
        // pipe; tells where it listens once.
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(base) = common::serving_base(&line) {
                    let _ = tx.send(base);
                }
                lines.lock().push(line);
            }
        });
        match rx.recv_timeout(PATIENCE) {
            Ok(base) => Self { child, base, log },
            Err(_) => {
                let _ = child.kill();
                panic!("mnemo serve did not start: {:#?}", log.lock());
            }
        }
    }

    /// SIGKILL: no shutdown of any kind.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL is sent");
        self.child.wait().expect("the process is reaped");
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().clone()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Nodes on one PostgreSQL database and one Redis key prefix (or one node on the
/// embedded defaults).
struct Cluster {
    embedded: bool,
    database: TestDatabase,
    prefix: String,
    dir: tempfile::TempDir,
    nodes: Vec<Option<Node>>,
    started: usize,
    client: Client,
    _one: tokio::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    async fn start(nodes: usize) -> Self {
        Self::start_on(nodes, false).await
    }

    /// One node on the embedded defaults (SQLite, in-memory recent tier).
    async fn embedded() -> Self {
        Self::start_on(1, true).await
    }

    async fn start_on(nodes: usize, embedded: bool) -> Self {
        let one = ONE_CLUSTER.lock().await;
        let database = TestDatabase::create().await;
        let prefix = format!("mnemo-nodes-{}", database.name());
        let mut cluster = Self {
            embedded,
            database,
            prefix,
            dir: tempfile::TempDir::new().expect("a temporary directory"),
            nodes: Vec::new(),
            started: 0,
            // No kept-alive connections: a node stopped and woken (or killed) must not leave
            // the harness a connection the server has since closed.
            client: Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("an HTTP client"),
            _one: one,
        };
        // The first node runs the migrations alone; the others find them done.
        for _ in 0..nodes {
            cluster.add_node();
        }
        cluster
    }

    /// Starts one more node, with a new, empty data directory; answers its number.
    fn add_node(&mut self) -> usize {
        let n = self.started;
        self.started += 1;
        let home = self.dir.path().join(format!("node-{n}"));
        std::fs::create_dir_all(&home).expect("the node's directory");
        let config = home.join("mnemo.toml");
        std::fs::write(&config, self.config(n, &home.join("data"))).expect("the config is written");
        self.nodes.push(Some(Node::start(&config)));
        n
    }

    /// Starts node `n` again, on its data directory.
    fn restart(&mut self, n: usize) {
        assert!(self.nodes[n].is_none(), "node {n} is stopped first");
        let config = self.dir.path().join(format!("node-{n}")).join("mnemo.toml");
        self.nodes[n] = Some(Node::start(&config));
    }

    fn config(&self, n: usize, data_dir: &Path) -> String {
        let shared = if self.embedded {
            String::new()
        } else {
            format!(
                "[storage.recent]\nbackend = \"redis\"\nkey_prefix = {prefix:?}\nttl_secs = 3600\n\n\
                 [storage.archive]\nurl = {url:?}\ndurability = \"normal\"\nmax_connections = 4\n\n",
                prefix = self.prefix,
                url = self.database.url(),
            )
        };
        format!(
            "[storage]\ndata_dir = {data:?}\nnode = \"node-{n}\"\n\n{shared}\
             [storage.index]\nwriter_memory_mb = 16\nsearch_threads = 1\n\n\
             [actors.processors]\nfollow_ms = 100\nlease_retry_ms = 200\n\n\
             [actors.processors.summarizer]\nevery_turns = 4\n\n\
             [server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n\n\
             [auth]\nkeys = [{key}]\n\n[log]\nlevel = \"info\"\n",
            data = data_dir.display().to_string(),
            key = http::config_entry("acme", KEY),
        )
    }

    fn node(&self, n: usize) -> &Node {
        self.nodes[n].as_ref().expect("the node runs")
    }

    fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|n| self.nodes[*n].is_some())
            .collect()
    }

    fn kill(&mut self, n: usize) {
        self.nodes[n].take().expect("the node runs").kill();
    }

    async fn send(&self, n: usize, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request
            .bearer_auth(KEY)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|e| panic!("node {n} answers: {e}"));
        let status = response.status();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, body)
    }

    async fn store(&self, n: usize, user: &str, session: &str, content: &str) -> i64 {
        let url = format!("{}/v1/turns", self.node(n).base);
        let body =
            json!({"user_id": user, "session_id": session, "role": "user", "content": content});
        let (status, body) = self.send(n, self.client.post(url).json(&body)).await;
        assert_eq!(status, StatusCode::OK, "node {n} stores: {body}");
        body["turns"][0]["id"].as_i64().expect("an id")
    }

    async fn search(&self, n: usize, user: &str, q: &str) -> Vec<i64> {
        let url = format!("{}/v1/search", self.node(n).base);
        let request = self
            .client
            .get(url)
            .query(&[("user_id", user), ("q", q), ("limit", "1000")]);
        let (status, body) = self.send(n, request).await;
        assert_eq!(status, StatusCode::OK, "node {n} searches: {body}");
        body["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .filter(|h| h["kind"] == "turn")
            .map(|h| h["id"].as_i64().expect("an id"))
            .collect()
    }

    async fn forget_user(&self, n: usize, user: &str) -> (StatusCode, Value) {
        let url = format!("{}/v1/users/{user}", self.node(n).base);
        self.send(n, self.client.delete(url)).await
    }

    async fn history(&self, n: usize, user: &str, session: &str) -> Vec<i64> {
        let url = format!(
            "{}/v1/users/{user}/sessions/{session}/turns",
            self.node(n).base
        );
        let (status, body) = self
            .send(n, self.client.get(url).query(&[("limit", "100")]))
            .await;
        assert_eq!(status, StatusCode::OK, "node {n} reads history: {body}");
        body["turns"]
            .as_array()
            .expect("turns")
            .iter()
            .map(|t| t["id"].as_i64().expect("an id"))
            .collect()
    }

    async fn context(&self, n: usize, user: &str, query: &str) -> Value {
        let url = format!("{}/v1/context", self.node(n).base);
        let body = json!({"user_id": user, "query": query, "deadline_ms": 10_000});
        let (status, body) = self.send(n, self.client.post(url).json(&body)).await;
        assert_eq!(status, StatusCode::OK, "node {n} assembles context: {body}");
        body
    }

    async fn ready(&self, n: usize) -> Value {
        let url = format!("{}/readyz", self.node(n).base);
        self.send(n, self.client.get(url)).await.1
    }

    /// Asks `check` again every 50 ms until it answers `Some`; answers it and how long
    /// it took. Panics with every live node's log after [`PATIENCE`].
    async fn until<T, F, Fut>(&self, what: &str, mut check: F) -> (T, Duration)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let start = Instant::now();
        loop {
            if let Some(found) = check().await {
                return (found, start.elapsed());
            }
            if start.elapsed() > PATIENCE {
                let logs: Vec<(usize, Vec<String>)> = self
                    .live()
                    .into_iter()
                    .map(|n| (n, self.node(n).log()))
                    .collect();
                panic!("gave up waiting for {what}; the nodes' logs: {logs:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until node `n` has every processor caught up with `head` at least.
    async fn caught_up(&self, n: usize, head: i64) {
        self.until(
            &format!("node {n} to catch up with turn {head}"),
            || async {
                let ready = self.ready(n).await;
                let caught = ready["head"].as_i64().unwrap_or(0) >= head
                    && ready["processors"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().all(|p| p["lag"] == 0));
                caught.then_some(())
            },
        )
        .await;
    }

    /// Which live node holds the lease of `processor`, when exactly one does.
    async fn lease_holder(&self, processor: &str) -> Option<usize> {
        let mut holders = Vec::new();
        for n in self.live() {
            let ready = self.ready(n).await;
            let holds = ready["processors"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == processor && p["holds_lease"] == true)
            });
            if holds {
                holders.push(n);
            }
        }
        (holders.len() == 1).then(|| holders[0])
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut().filter_map(Option::take) {
            node.kill();
        }
        delete_keys(
            &mnemo_engine::storage::recent::RecentConfig::default().redis_url,
            &format!("{}:*", self.prefix),
        );
    }
}

fn data_dir_of(cluster: &Cluster, n: usize) -> PathBuf {
    cluster.dir.path().join(format!("node-{n}")).join("data")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_stored_through_any_node_is_found_by_search_and_context_on_every_other() {
    let cluster = Cluster::start(3).await;
    let mut waits = Vec::new();
    for writer in 0..3 {
        let word = format!("zanzibar{writer}");
        let content = format!("we should sail to {word} in the spring");
        let id = cluster.store(writer, "maya", "trip", &content).await;
        for reader in (0..3).filter(|r| *r != writer) {
            let (_, took) = cluster
                .until(&format!("node {reader} to find turn {id}"), || async {
                    cluster
                        .search(reader, "maya", &word)
                        .await
                        .contains(&id)
                        .then_some(())
                })
                .await;
            waits.push(took);
            let context = cluster.context(reader, "maya", &word).await;
            let prompt = context["prompt"].as_str().unwrap_or_default();
            assert!(
                prompt.contains(&word),
                "node {reader}'s context holds the turn stored through node {writer}: {context}"
            );
        }
    }
    eprintln!("searchable on another node after: {waits:?}");

    // A cached answer on one node gives way to a write through another.
    let first = cluster.context(1, "maya", "kites").await;
    let again = cluster.context(1, "maya", "kites").await;
    assert_eq!(
        again["cached"], true,
        "the second answer is cached: {again}"
    );
    assert!(!first["prompt"]
        .as_str()
        .unwrap_or_default()
        .contains("festival"));
    cluster
        .store(0, "maya", "trip", "the kites festival is in june")
        .await;
    cluster
        .until("node 1's cached answer to give way", || async {
            let answer = cluster.context(1, "maya", "kites").await;
            answer["prompt"]
                .as_str()
                .unwrap_or_default()
                .contains("festival")
                .then_some(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_through_every_node_are_stored_once_and_counted_once() {
    let cluster = Arc::new(Cluster::start(3).await);
    const PER_NODE: usize = 40;
    let mut writers = Vec::new();
    for n in 0..3 {
        let cluster = cluster.clone();
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..PER_NODE {
                let content = format!("node {n} turn {i}: I am so happy and grateful today");
                ids.push(cluster.store(n, "maya", &format!("s{n}"), &content).await);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for writer in writers {
        ids.extend(writer.await.expect("a writer"));
    }
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        total,
        "every acknowledged turn has an id of its own"
    );
    let head = *ids.last().expect("turns");
    for n in 0..3 {
        cluster.caught_up(n, head).await;
    }
    for n in 0..3 {
        let found = cluster.search(n, "maya", "happy grateful").await;
        let mut found_sorted = found.clone();
        found_sorted.sort_unstable();
        assert_eq!(found_sorted, ids, "node {n} finds each turn exactly once");
        let context = cluster.context(n, "maya", "how is maya feeling").await;
        assert_eq!(
            context["emotion"]["turns"].as_u64(),
            Some(total as u64),
            "node {n}: the emotion state folds every turn exactly once: {}",
            context["emotion"]
        );
    }
    for n in 0..3 {
        let url = format!("{}/v1/users/maya/sessions/s{n}/turns", cluster.node(n).base);
        let (status, body) = cluster
            .send(n, cluster.client.get(url).query(&[("limit", "100")]))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["turns"].as_array().map(Vec::len), Some(PER_NODE));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_and_replaced_with_an_empty_data_directory_catches_up_by_itself() {
    let mut cluster = Cluster::start(2).await;
    let mut ids = Vec::new();
    for i in 0..60 {
        let content = format!("turn {i} of the long story about the lighthouse keeper");
        ids.push(cluster.store(i % 2, "maya", "story", &content).await);
    }
    let head = *ids.last().expect("turns");
    cluster.caught_up(0, head).await;
    cluster.kill(0);
    assert!(
        data_dir_of(&cluster, 0).join("index").exists(),
        "the killed node had an index of its own"
    );
    // Stored while the replacement is not there yet.
    ids.push(
        cluster
            .store(1, "maya", "story", "the lighthouse keeper retired")
            .await,
    );
    let replacement = cluster.add_node();
    let (_, took) = cluster
        .until("the replacement to index the whole archive", || async {
            let mut found = cluster.search(replacement, "maya", "lighthouse").await;
            found.sort_unstable();
            (found == ids).then_some(())
        })
        .await;
    eprintln!("the replacement node caught up after {took:?}");
    let ready = cluster.ready(replacement).await;
    let indexer = ready["processors"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "indexer"))
        .cloned()
        .expect("an indexer");
    assert_eq!(indexer["holds_lease"], true, "every node runs its indexer");
    cluster
        .caught_up(replacement, *ids.last().expect("ids"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_processors_lease_moves_to_another_node_when_its_holder_is_killed() {
    let mut cluster = Cluster::start(3).await;
    for processor in ["emotion", "summarizer", "graph_sync"] {
        cluster
            .until(&format!("one node to hold the {processor} lease"), || {
                cluster.lease_holder(processor)
            })
            .await;
    }
    let first = cluster
        .store(0, "maya", "s", "I feel wonderful today")
        .await;
    cluster.caught_up(1, first).await;
    let (holder, _) = cluster
        .until("one node to hold the emotion lease", || {
            cluster.lease_holder("emotion")
        })
        .await;
    cluster.kill(holder);
    let (taker, took) = cluster
        .until("another node to take the emotion lease", || {
            cluster.lease_holder("emotion")
        })
        .await;
    assert_ne!(taker, holder);
    eprintln!("the emotion lease moved after {took:?}");
    assert_eq!(cluster.ready(taker).await["node"], format!("node-{taker}"));
    assert!(
        cluster
            .node(taker)
            .log()
            .iter()
            .any(|l| l.contains("standing by")
                && l.contains("emotion")
                && l.contains(&format!("holder=\"node-{holder}\""))),
        "a node standing by names the holder: {:#?}",
        cluster.node(taker).log()
    );
    assert!(
        cluster
            .node(taker)
            .log()
            .iter()
            .any(|l| l.contains("took over the processor's lease")),
        "the node that takes over says so in its log"
    );
    // The new holder goes on from the shared checkpoint.
    let writer = cluster.live()[0];
    let second = cluster
        .store(writer, "maya", "s", "and I am still so happy")
        .await;
    cluster.caught_up(taker, second).await;
    let context = cluster.context(taker, "maya", "feelings").await;
    assert_eq!(
        context["emotion"]["turns"].as_u64(),
        Some(2),
        "both turns folded once: {}",
        context["emotion"]
    );
}

#[test]
fn a_second_process_on_an_embedded_data_directory_is_refused_naming_it() {
    let dir = tempfile::TempDir::new().expect("a temporary directory");
    let data = dir.path().join("data");
    let config = dir.path().join("mnemo.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndata_dir = {:?}\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n[auth]\nkeys = [{}]\n",
            data.display().to_string(),
            http::config_entry("acme", KEY)
        ),
    )
    .expect("the config is written");
    let first = Node::start(&config);
    let second = Command::new(env!("CARGO_BIN_EXE_mnemo"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .output()
        .expect("mnemo serve runs");
    assert!(!second.status.success(), "the second process is refused");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&data.display().to_string()) && stderr.contains("in use"),
        "the refusal names the directory: {stderr}"
    );
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forget_through_one_node_is_gone_from_every_node() {
    let cluster = Cluster::start(3).await;
    let mut last = 0;
    for i in 0..20 {
        let content = format!("secret number {i} about the harbour lighthouse");
        last = cluster.store(i % 3, "zed", "diary", &content).await;
    }
    cluster
        .store(0, "maya", "diary", "maya likes the lighthouse too")
        .await;
    for n in 0..3 {
        cluster.caught_up(n, last).await;
        assert_eq!(cluster.search(n, "zed", "lighthouse").await.len(), 20);
    }
    let (status, body) = cluster.forget_user(1, "zed").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for n in 0..3 {
        let (_, took) = cluster
            .until(
                &format!("zed's turns to leave node {n}'s search"),
                || async {
                    cluster
                        .search(n, "zed", "lighthouse")
                        .await
                        .is_empty()
                        .then_some(())
                },
            )
            .await;
        eprintln!("gone from node {n} after {took:?}");
        let context = cluster.context(n, "zed", "lighthouse").await;
        assert!(
            !context["prompt"]
                .as_str()
                .unwrap_or_default()
                .contains("secret"),
            "node {n}'s context keeps nothing of zed: {context}"
        );
        assert!(cluster.history(n, "zed", "diary").await.is_empty());
        assert_eq!(
            cluster.search(n, "maya", "lighthouse").await.len(),
            1,
            "another user's turns stay"
        );
    }
}

/// Kills the node at a spread of moments after a forget was sent, restarts it, and
/// checks that what search finds of the user is still in the archive: a forget that
/// reached the archive is finished after the restart, one that did not is not half done.
async fn a_forget_cut_short_by_sigkill_is_finished_after_restart(mut cluster: Cluster) {
    for (round, delay_ms) in [0u64, 1, 2, 4, 8, 15, 30].into_iter().enumerate() {
        let user = format!("user{round}");
        let mut last = 0;
        for i in 0..40 {
            let content = format!("round {round} memory {i} of the orchard");
            last = cluster.store(0, &user, "s", &content).await;
        }
        cluster.caught_up(0, last).await;
        let url = format!("{}/v1/users/{user}", cluster.node(0).base);
        let forget = cluster.client.delete(url).bearer_auth(KEY).send();
        let forget = tokio::spawn(forget);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        cluster.kill(0);
        let answered = matches!(forget.await, Ok(Ok(r)) if r.status().is_success());
        cluster.restart(0);
        let head = cluster.ready(0).await["head"].as_i64().unwrap_or(0);
        cluster.caught_up(0, head).await;
        let stored = cluster.history(0, &user, "s").await;
        let mut found = cluster.search(0, &user, "orchard").await;
        found.sort_unstable();
        let mut kept = stored.clone();
        kept.sort_unstable();
        assert_eq!(
            found, kept,
            "round {round} (killed {delay_ms} ms after the forget, answered: {answered}): \
             search finds exactly what the archive still holds"
        );
        if answered {
            assert!(stored.is_empty(), "an answered forget is complete");
        }
        assert!(
            stored.is_empty() || stored.len() == 40,
            "a forget is all or nothing in the archive"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forget_cut_short_by_sigkill_is_finished_after_restart_embedded() {
    a_forget_cut_short_by_sigkill_is_finished_after_restart(Cluster::embedded().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forget_cut_short_by_sigkill_is_finished_after_restart_on_postgres_and_redis() {
    a_forget_cut_short_by_sigkill_is_finished_after_restart(Cluster::start(1).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_that_hangs_hands_its_processors_on_and_gives_them_up_when_it_wakes() {
    let cluster = Cluster::start(2).await;
    let (holder, _) = cluster
        .until("one node to hold the emotion lease", || {
            cluster.lease_holder("emotion")
        })
        .await;
    let other = 1 - holder;
    let pid = cluster.node(holder).child.id().to_string();
    let signal = |sig: &str| {
        let sent = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    };
    // Stopped, not killed: its connections stay open, only silent.
    signal("-STOP");
    let (_, took) = cluster
        .until("the other node to take the emotion lease", || async {
            let ready = cluster.ready(other).await;
            ready["processors"]
                .as_array()
                .is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p["name"] == "emotion" && p["holds_lease"] == true)
                })
                .then_some(())
        })
        .await;
    eprintln!("a hung holder's emotion lease moved after {took:?}");
    signal("-CONT");
    // Awake again, it finds its lease gone and stands by.
    cluster
        .until("the woken node to give the lease up", || async {
            let ready = cluster.ready(holder).await;
            ready["processors"]
                .as_array()
                .is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p["name"] == "emotion" && p["holds_lease"] == false)
                })
                .then_some(())
        })
        .await;
    assert_eq!(cluster.lease_holder("emotion").await, Some(other));
}
