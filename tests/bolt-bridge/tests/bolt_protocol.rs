//! The bridge's Bolt 4 behaviour message by message, with a bare client, against a real
//! FalkorDB: the cases where FalkorDB on its own answers wrongly or not at all.

mod common;

use common::{graph_list, start, within};
use mnemo_bolt_bridge::message::{self, code, tag};
use mnemo_bolt_bridge::packstream::{Structure, Value};
use mnemo_bolt_bridge::{chunking, handshake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// neo4rs's proposals: 4.1, then 4.0.
const BOLT_4_1: [[u8; 4]; 4] = [[0, 0, 1, 4], [0, 0, 0, 4], [0; 4], [0; 4]];

/// A Bolt client that sends and reads one message at a time, as the test says.
struct Client {
    stream: TcpStream,
}

impl Client {
    /// Connects, proposes `versions`, and returns the client and the server's choice.
    async fn handshake(addr: std::net::SocketAddr, versions: [[u8; 4]; 4]) -> (Client, [u8; 4]) {
        within("a handshake", async {
            let mut stream = TcpStream::connect(addr).await.expect("the bridge accepts");
            let mut hello = handshake::MAGIC.to_vec();
            for v in versions {
                hello.extend_from_slice(&v);
            }
            stream
                .write_all(&hello)
                .await
                .expect("the preamble is sent");
            let mut chosen = [0u8; 4];
            stream.read_exact(&mut chosen).await.expect("a version");
            (Client { stream }, chosen)
        })
        .await
    }

    /// Connects as neo4rs does (Bolt 4.1, basic auth inside HELLO).
    async fn connect(addr: std::net::SocketAddr) -> Client {
        let (mut client, chosen) = Self::handshake(addr, BOLT_4_1).await;
        assert_eq!(chosen, [0, 0, 1, 4]);
        client
            .send(
                tag::HELLO,
                vec![Value::map([
                    ("user_agent", Value::string("bolt-protocol-test")),
                    ("scheme", Value::string("basic")),
                    ("principal", Value::string("neo4j")),
                    (
                        "credentials",
                        Value::string("wrong, and it does not matter"),
                    ),
                ])],
            )
            .await;
        client.expect(tag::SUCCESS).await;
        client
    }

    async fn send(&mut self, t: u8, fields: Vec<Value>) {
        let body = message::encode(&Structure::new(t, fields));
        within(
            "a request to be sent",
            chunking::write_message(&mut self.stream, &body),
        )
        .await
        .expect("the request is sent");
    }

    async fn run(&mut self, query: &str, db: Option<&str>) {
        let extra = db.map_or(Vec::new(), |db| vec![("db".to_string(), Value::string(db))]);
        self.send(
            tag::RUN,
            vec![
                Value::string(query),
                Value::Map(Vec::new()),
                Value::Map(extra),
            ],
        )
        .await;
    }

    async fn pull(&mut self, t: u8, n: i64) {
        self.send(t, vec![Value::map([("n", Value::Int(n))])]).await;
    }

    /// The next reply; `None` when the bridge closed the connection.
    async fn recv(&mut self) -> Option<Structure> {
        let body = within("a reply", chunking::read_message(&mut self.stream))
            .await
            .expect("a reply is read")?;
        Some(message::parse(&body, Default::default()).expect("a reply is Bolt"))
    }

    /// The next reply, which must have tag `t`.
    async fn expect(&mut self, t: u8) -> Structure {
        let reply = self.recv().await.expect("the connection stays open");
        assert_eq!(
            message::name(reply.tag),
            message::name(t),
            "reply: {reply:?}"
        );
        reply
    }

    /// The rows and the closing SUCCESS of a PULL of everything.
    async fn pull_all(&mut self) -> (Vec<Vec<Value>>, Structure) {
        self.pull(tag::PULL, -1).await;
        let mut rows = Vec::new();
        loop {
            let reply = self.recv().await.expect("the connection stays open");
            match reply.tag {
                tag::RECORD => match reply.fields.into_iter().next() {
                    Some(Value::List(row)) => rows.push(row),
                    other => panic!("a row, not {other:?}"),
                },
                tag::SUCCESS => return (rows, reply),
                _ => panic!("a record or SUCCESS, not {reply:?}"),
            }
        }
    }
}

fn metadata<'a>(reply: &'a Structure, key: &str) -> Option<&'a Value> {
    reply.fields.first().and_then(|m| m.get(key))
}

#[tokio::test]
async fn a_failure_is_followed_by_ignored_until_reset_even_pipelined() {
    let servers = start().await;
    let mut client = Client::connect(servers.bridge.addr()).await;
    client.run("RETURN nosuchfn(1)", Some("g")).await;
    let failure = client.expect(tag::FAILURE).await;
    assert_eq!(
        metadata(&failure, "code").and_then(Value::as_str),
        Some("Neo.ClientError.Statement.SyntaxError")
    );
    client.pull(tag::PULL, -1).await;
    client.expect(tag::IGNORED).await;
    client.run("RETURN 1", Some("g")).await;
    client.expect(tag::IGNORED).await;
    client.send(tag::RESET, vec![]).await;
    client.expect(tag::SUCCESS).await;
    client.run("RETURN 1 AS one", Some("g")).await;
    client.expect(tag::SUCCESS).await;
    let (rows, _) = client.pull_all().await;
    assert_eq!(rows, [[Value::Int(1)]]);

    // The same, every request sent before any reply is read.
    client.run("RETURN nosuchfn(2)", Some("g")).await;
    client.pull(tag::PULL, -1).await;
    client.send(tag::RESET, vec![]).await;
    client.run("RETURN 2 AS two", Some("g")).await;
    client.pull(tag::PULL, -1).await;
    client.expect(tag::FAILURE).await;
    client.expect(tag::IGNORED).await;
    client.expect(tag::SUCCESS).await;
    client.expect(tag::SUCCESS).await;
    let record = client.expect(tag::RECORD).await;
    assert_eq!(record.fields, [Value::List(vec![Value::Int(2)])]);
    client.expect(tag::SUCCESS).await;
}

#[tokio::test]
async fn pull_hands_out_n_records_at_a_time_and_discard_drops_the_rest() {
    let servers = start().await;
    let mut client = Client::connect(servers.bridge.addr()).await;
    client
        .run("UNWIND range(1, 10) AS x RETURN x", Some("g"))
        .await;
    let header = client.expect(tag::SUCCESS).await;
    assert_eq!(
        metadata(&header, "fields"),
        Some(&Value::List(vec![Value::string("x")]))
    );
    for batch in [[1, 2, 3], [4, 5, 6]] {
        client.pull(tag::PULL, 3).await;
        for x in batch {
            let record = client.expect(tag::RECORD).await;
            assert_eq!(record.fields, [Value::List(vec![Value::Int(x)])]);
        }
        let more = client.expect(tag::SUCCESS).await;
        assert_eq!(metadata(&more, "has_more"), Some(&Value::Bool(true)));
    }
    client.pull(tag::DISCARD, -1).await;
    let done = client.expect(tag::SUCCESS).await;
    assert_eq!(metadata(&done, "has_more"), None);
    // Nothing is left to pull.
    client.pull(tag::PULL, -1).await;
    client.expect(tag::FAILURE).await;
    client.send(tag::RESET, vec![]).await;
    client.expect(tag::SUCCESS).await;
}

#[tokio::test]
async fn commit_after_discard_is_answered_and_transactions_keep_their_database() {
    let servers = start().await;
    let mut client = Client::connect(servers.bridge.addr()).await;
    client
        .send(
            tag::BEGIN,
            vec![Value::map([("db", Value::string("g_tx"))])],
        )
        .await;
    client.expect(tag::SUCCESS).await;
    // No db in these RUNs: the transaction's applies.
    client.run("CREATE (:T {n: 1})", None).await;
    let header = client.expect(tag::SUCCESS).await;
    assert_eq!(metadata(&header, "qid"), Some(&Value::Int(0)));
    client.pull(tag::DISCARD, -1).await;
    client.expect(tag::SUCCESS).await;
    client.run("UNWIND [1, 2] AS x RETURN x", None).await;
    client.expect(tag::SUCCESS).await;
    client.pull(tag::DISCARD, -1).await;
    client.expect(tag::SUCCESS).await;
    // FalkorDB itself never answers a COMMIT that follows a DISCARD.
    client.send(tag::COMMIT, vec![]).await;
    client.expect(tag::SUCCESS).await;
    // Without any db, the default graph.
    client.run("CREATE (:D)", None).await;
    client.expect(tag::SUCCESS).await;
    client.pull(tag::PULL, -1).await;
    client.expect(tag::SUCCESS).await;
    let mut graphs = graph_list(servers.falkor.redis_port());
    graphs.sort();
    assert_eq!(graphs, [mnemo_bolt_bridge::DEFAULT_GRAPH, "g_tx"]);
}

#[tokio::test]
async fn goodbye_ends_the_session_without_stalling_falkordb() {
    let servers = start().await;
    let mut first = Client::connect(servers.bridge.addr()).await;
    first.send(tag::GOODBYE, vec![]).await;
    assert!(
        first.recv().await.is_none(),
        "GOODBYE closes the connection"
    );
    // FalkorDB would stop accepting Bolt connections had it seen the GOODBYE.
    for _ in 0..3 {
        let mut next = Client::connect(servers.bridge.addr()).await;
        next.run("RETURN 3 AS three", Some("g")).await;
        next.expect(tag::SUCCESS).await;
        let (rows, _) = next.pull_all().await;
        assert_eq!(rows, [[Value::Int(3)]]);
        next.send(tag::GOODBYE, vec![]).await;
        assert!(next.recv().await.is_none());
    }
}

#[tokio::test]
async fn only_bolt_4_is_spoken_to_clients_and_the_utc_patch_is_offered() {
    let servers = start().await;
    let (mut client, chosen) = Client::handshake(
        servers.bridge.addr(),
        [[0, 0, 0, 5], [0; 4], [0; 4], [0; 4]],
    )
    .await;
    assert_eq!(chosen, [0, 0, 0, 0], "Bolt 5 is not spoken");
    assert!(
        client.recv().await.is_none(),
        "and the connection is closed"
    );

    let (mut client, chosen) = Client::handshake(
        servers.bridge.addr(),
        [[0, 2, 4, 4], [0; 4], [0; 4], [0; 4]],
    )
    .await;
    assert_eq!(chosen, [0, 0, 4, 4]);
    client
        .send(
            tag::HELLO,
            vec![Value::map([
                ("user_agent", Value::string("t")),
                ("patch_bolt", Value::List(vec![Value::string("utc")])),
            ])],
        )
        .await;
    let hello = client.expect(tag::SUCCESS).await;
    assert_eq!(
        metadata(&hello, "patch_bolt"),
        Some(&Value::List(vec![Value::string("utc")]))
    );
    // What the bridge does not serve fails, and RESET recovers.
    client
        .send(
            tag::ROUTE,
            vec![Value::Map(vec![]), Value::List(vec![]), Value::Map(vec![])],
        )
        .await;
    let failure = client.expect(tag::FAILURE).await;
    assert_eq!(
        metadata(&failure, "code").and_then(Value::as_str),
        Some(code::REQUEST_INVALID)
    );
    client.send(tag::RESET, vec![]).await;
    client.expect(tag::SUCCESS).await;
}

#[tokio::test]
async fn falkordb_crashing_on_a_temporal_result_is_a_failure_not_a_hang() {
    let servers = start().await;
    let mut client = Client::connect(servers.bridge.addr()).await;
    // FalkorDB 4.16 has no Bolt encoding for temporal values: the server dies.
    client
        .run("RETURN date('2024-01-02') AS d", Some("g"))
        .await;
    let failure = client.expect(tag::FAILURE).await;
    assert_eq!(
        metadata(&failure, "code").and_then(Value::as_str),
        Some(code::UPSTREAM_FAILED)
    );
    assert!(client.recv().await.is_none(), "the session ends with it");
}
