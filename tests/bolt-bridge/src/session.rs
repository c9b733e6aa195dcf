//! One client connection: a Bolt 4 server state machine in front of one Bolt 5
//! connection to FalkorDB.
//!
//! The bridge keeps the protocol state itself (failed or not, transaction open or not,
//! open results) and only asks FalkorDB to run queries: FalkorDB's BEGIN, COMMIT,
//! ROLLBACK, PULL, DISCARD, RESET and GOODBYE are no-ops or harmful (each is described
//! where the bridge answers it). Requests are answered strictly in order, so pipelined
//! clients work; a request is read only after the previous one is answered.

use std::collections::VecDeque;
use std::net::SocketAddr;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::chunking;
use crate::cypher_params;
use crate::error::{Error, Result};
use crate::handshake::{self, BoltVersion};
use crate::message::{self, code, tag};
use crate::packstream::{Quirks, Structure, Value};
use crate::translate::{self, ClientDialect};
use crate::upstream::{Metadata, RunOutcome, Summary, Upstream};

/// The graph a query runs on when the client names no database (neo4rs always names
/// one: `neo4j` unless configured). FalkorDB's own default for an empty extra map is the
/// same name.
pub const DEFAULT_GRAPH: &str = "falkordb";

/// What the server says it is in the HELLO reply.
const SERVER_AGENT: &str = "Neo4j/4.4.0";

/// Serves one client connection until it leaves; errors end only this connection.
pub async fn serve(stream: TcpStream, upstream: SocketAddr) -> Result<()> {
    stream
        .set_nodelay(true)
        .map_err(|e| Error::io("setting TCP_NODELAY", e))?;
    let mut stream = stream;
    let Some(version) = handshake::accept_client(&mut stream).await? else {
        return Ok(());
    };
    let (read, write) = stream.into_split();
    let mut session = Session {
        reader: BufReader::new(read),
        writer: write,
        out: Vec::new(),
        upstream_addr: upstream,
        upstream: None,
        version,
        dialect: ClientDialect::default(),
        failed: false,
        tx: None,
        results: Vec::new(),
        next_qid: 0,
    };
    session.run().await
}

struct Session {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// Framed replies to the request being handled, written in one go.
    out: Vec<u8>,
    upstream_addr: SocketAddr,
    /// FalkorDB, once HELLO has been answered.
    upstream: Option<Upstream>,
    version: BoltVersion,
    dialect: ClientDialect,
    /// A request failed: everything but RESET (and GOODBYE) is IGNORED until RESET.
    failed: bool,
    tx: Option<Transaction>,
    /// Results not yet pulled to the end, oldest first.
    results: Vec<OpenResult>,
    next_qid: i64,
}

struct Transaction {
    /// The database named in BEGIN, for RUNs that name none.
    graph: Option<String>,
}

struct OpenResult {
    qid: i64,
    records: VecDeque<Vec<Value>>,
    summary: Summary,
}

/// Whether the connection goes on after a request.
enum Flow {
    Continue,
    Close,
}

impl Session {
    async fn run(&mut self) -> Result<()> {
        loop {
            let Some(body) = chunking::read_message(&mut self.reader)
                .await
                .map_err(|e| Error::io("reading from a client", e))?
            else {
                return Ok(());
            };
            let flow = match message::parse(&body, Quirks::default()) {
                Ok(request) => self.handle(request).await,
                Err(e) => {
                    self.reply(&message::failure(code::REQUEST_INVALID, e.to_string()));
                    Flow::Close
                }
            };
            self.flush().await?;
            if let Flow::Close = flow {
                return Ok(());
            }
        }
    }

    async fn handle(&mut self, request: Structure) -> Flow {
        match request.tag {
            // GOODBYE is never passed on: FalkorDB's Bolt listener stops accepting
            // connections after one. Dropping the session closes FalkorDB's socket.
            tag::GOODBYE => return Flow::Close,
            tag::HELLO => return self.hello(&request).await,
            _ if self.upstream.is_none() => {
                self.reply(&message::failure(
                    code::REQUEST_INVALID,
                    format!("{} before HELLO", message::name(request.tag)),
                ));
                return Flow::Close;
            }
            tag::RESET => self.reset(),
            _ if self.failed => self.reply(&message::ignored()),
            tag::RUN => return self.run_query(&request).await,
            tag::PULL => self.pull(&request, true),
            tag::DISCARD => self.pull(&request, false),
            tag::BEGIN => self.begin(&request),
            tag::COMMIT | tag::ROLLBACK => self.end_transaction(request.tag),
            other => self.fail(
                code::REQUEST_INVALID,
                format!(
                    "the Bolt bridge does not serve {} (it serves HELLO, GOODBYE, RESET, RUN, \
                     PULL, DISCARD, BEGIN, COMMIT and ROLLBACK)",
                    message::name(other)
                ),
            ),
        }
        Flow::Continue
    }

    /// HELLO: the Bolt 4 client's credentials are in here; FalkorDB gets HELLO and a
    /// LOGON with the scheme `none` instead (see [`Upstream::connect`]).
    async fn hello(&mut self, request: &Structure) -> Flow {
        if self.upstream.is_some() {
            self.reply(&message::failure(code::REQUEST_INVALID, "a second HELLO"));
            return Flow::Close;
        }
        let extra = message::map_field(request, 0);
        let client_agent = extra
            .and_then(|e| e.get("user_agent"))
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        // Bolt 4.3+ clients may ask for the UTC date-time shapes.
        let wants_utc = matches!(
            extra.and_then(|e| e.get("patch_bolt")),
            Some(Value::List(patches)) if patches.iter().any(|p| p.as_str() == Some("utc"))
        );
        self.dialect.utc_date_times = wants_utc && self.version.minor >= 3;
        let agent = format!(
            "mnemo-bolt-bridge/{} for {client_agent}",
            env!("CARGO_PKG_VERSION")
        );
        match Upstream::connect(self.upstream_addr, &agent).await {
            Ok(upstream) => {
                let mut metadata = vec![
                    ("server".to_string(), Value::string(SERVER_AGENT)),
                    (
                        "connection_id".to_string(),
                        Value::String(format!(
                            "bolt-bridge-{}",
                            upstream.connection_id().unwrap_or("unknown")
                        )),
                    ),
                ];
                if self.dialect.utc_date_times {
                    metadata.push((
                        "patch_bolt".to_string(),
                        Value::List(vec![Value::string("utc")]),
                    ));
                }
                self.upstream = Some(upstream);
                self.reply(&message::success(metadata));
                Flow::Continue
            }
            Err(e) => {
                self.reply(&message::failure(
                    code::UPSTREAM_FAILED,
                    format!("the Bolt bridge cannot reach FalkorDB: {e}"),
                ));
                Flow::Close
            }
        }
    }

    /// RESET is answered here and not passed on. FalkorDB keeps no state the bridge
    /// could leave behind (every RUN is read to its end, transactions are the bridge's),
    /// and after a FAILURE FalkorDB answers RESET with a stale IGNORED before its
    /// SUCCESS.
    fn reset(&mut self) {
        self.failed = false;
        self.tx = None;
        self.results.clear();
        self.reply(&message::success(Vec::new()));
    }

    async fn run_query(&mut self, request: &Structure) -> Flow {
        let (Some(Value::String(query)), Some(Value::Map(params))) =
            (request.fields.first(), request.fields.get(1))
        else {
            self.fail(
                code::REQUEST_INVALID,
                "RUN needs a query string and a parameter map",
            );
            return Flow::Continue;
        };
        if self.tx.is_none() {
            // A new auto-commit query ends whatever result the client left unread.
            self.results.clear();
        }
        let graph = self.graph_for(message::map_field(request, 2));
        let text = match self.inline_params(query, params) {
            Ok(text) => text,
            Err((status, why)) => {
                self.fail(status, why);
                return Flow::Continue;
            }
        };
        let Some(upstream) = self.upstream.as_mut() else {
            return Flow::Close;
        };
        let outcome = match upstream.run(&text, &graph).await {
            Ok(outcome) => outcome,
            Err(e) => {
                self.fail(
                    code::UPSTREAM_FAILED,
                    format!("the Bolt bridge lost FalkorDB: {e}"),
                );
                return Flow::Close;
            }
        };
        match outcome {
            RunOutcome::Failed(metadata) => self.fail_from_falkordb(metadata),
            RunOutcome::Ran {
                header,
                records,
                summary,
            } => self.open_result(header, records, summary),
        }
        Flow::Continue
    }

    /// The graph a RUN goes to: its own `db`, else the transaction's, else the default.
    fn graph_for(&self, extra: Option<&Value>) -> String {
        let named = |v: Option<&Value>| {
            v.and_then(|e| e.get("db"))
                .and_then(Value::as_str)
                .filter(|db| !db.is_empty())
                .map(str::to_string)
        };
        named(extra)
            .or_else(|| self.tx.as_ref().and_then(|t| t.graph.clone()))
            .unwrap_or_else(|| DEFAULT_GRAPH.to_string())
    }

    /// The query text with its parameters written in (see [`cypher_params`]).
    fn inline_params(
        &self,
        query: &str,
        params: &Metadata,
    ) -> std::result::Result<String, (&'static str, String)> {
        let params = params
            .iter()
            .map(|(name, value)| {
                translate::to_server(value.clone(), self.dialect)
                    .map(|v| (name.clone(), v))
                    .map_err(|why| (code::TYPE_ERROR, format!("parameter ${name}: {why}")))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        cypher_params::inline(query, &params).map_err(|why| (code::ARGUMENT_ERROR, why))
    }

    fn open_result(&mut self, header: Metadata, records: Vec<Vec<Value>>, summary: Summary) {
        let mut rows = VecDeque::with_capacity(records.len());
        for row in records {
            let row = row
                .into_iter()
                .map(|v| translate::to_client(v, self.dialect))
                .collect::<std::result::Result<Vec<_>, _>>();
            match row {
                Ok(row) => rows.push_back(row),
                Err(why) => {
                    self.fail(code::TYPE_ERROR, format!("a value of the result: {why}"));
                    return;
                }
            }
        }
        let qid = self.next_qid;
        self.next_qid += 1;
        // FalkorDB's header (`fields`, `t_first`) goes on as it is, but for its `qid`,
        // always 0: Bolt 4 sends one inside transactions only, and the bridge numbers
        // the results itself.
        let mut metadata: Metadata = header.into_iter().filter(|(k, _)| k != "qid").collect();
        if self.tx.is_some() {
            metadata.push(("qid".to_string(), Value::Int(qid)));
        }
        self.results.push(OpenResult {
            qid,
            records: rows,
            summary,
        });
        self.reply(&message::success(metadata));
    }

    /// PULL (`send` true) or DISCARD (`send` false) of `n` records.
    ///
    /// FalkorDB ignores PULL's `n` and sends every record right after RUN; the bridge
    /// keeps them and hands out `n` at a time with `has_more: true`, as drivers that pull
    /// with a fetch size (neo4rs: 200) expect. Neither message is passed on (FalkorDB
    /// never answers them, and a DISCARD leaves its connection answering nothing more).
    fn pull(&mut self, request: &Structure, send: bool) {
        let extra = message::map_field(request, 0);
        let n = extra
            .and_then(|e| e.get("n"))
            .and_then(Value::as_int)
            .unwrap_or(-1);
        let qid = extra
            .and_then(|e| e.get("qid"))
            .and_then(Value::as_int)
            .unwrap_or(-1);
        let what = if send { "PULL" } else { "DISCARD" };
        if n == 0 || n < -1 {
            self.fail(code::REQUEST_INVALID, format!("{what} with n = {n}"));
            return;
        }
        let found = if qid == -1 {
            self.results.len().checked_sub(1)
        } else {
            self.results.iter().position(|r| r.qid == qid)
        };
        let Some(index) = found else {
            self.fail(
                code::REQUEST_INVALID,
                format!("{what} without an open result (qid {qid})"),
            );
            return;
        };
        let result = &mut self.results[index];
        let take = if n == -1 {
            result.records.len()
        } else {
            usize::try_from(n).map_or(result.records.len(), |n| n.min(result.records.len()))
        };
        let batch: Vec<Vec<Value>> = result.records.drain(..take).collect();
        let more = !result.records.is_empty();
        if send {
            for row in batch {
                self.reply(&message::record(row));
            }
        }
        if more {
            self.reply(&message::success(vec![(
                "has_more".to_string(),
                Value::Bool(true),
            )]));
            return;
        }
        let done = self.results.remove(index);
        match done.summary {
            Summary::Success(metadata) => self.reply(&message::success(metadata)),
            Summary::Failure(metadata) => self.fail_from_falkordb(metadata),
        }
    }

    /// BEGIN is answered here and not passed on: FalkorDB's BEGIN only answers SUCCESS
    /// (it reads nothing of the message), and each RUN commits on its own. The database
    /// BEGIN names is kept for the transaction's RUNs.
    fn begin(&mut self, request: &Structure) {
        if self.tx.is_some() {
            self.fail(code::REQUEST_INVALID, "BEGIN inside a transaction");
            return;
        }
        self.results.clear();
        let graph = message::map_field(request, 0)
            .and_then(|e| e.get("db"))
            .and_then(Value::as_str)
            .filter(|db| !db.is_empty())
            .map(str::to_string);
        self.tx = Some(Transaction { graph });
        self.next_qid = 0;
        self.reply(&message::success(Vec::new()));
    }

    /// COMMIT and ROLLBACK are answered here and not passed on.
    ///
    /// COMMIT: FalkorDB's COMMIT does nothing (every RUN was committed as it ran), and
    /// after a DISCARD it is never answered. ROLLBACK: FalkorDB answers SUCCESS and
    /// undoes nothing, and neither can the bridge: what the transaction's queries wrote
    /// stays written. The bridge answers SUCCESS so that clients that roll back on their
    /// error paths go on working; tests must not rely on a rollback.
    fn end_transaction(&mut self, t: u8) {
        if self.tx.take().is_none() {
            self.fail(
                code::REQUEST_INVALID,
                format!("{} outside a transaction", message::name(t)),
            );
            return;
        }
        self.results.clear();
        self.reply(&message::success(Vec::new()));
    }

    /// A FAILURE from FalkorDB, passed on with a Neo4j-style code: FalkorDB reports
    /// every query error as `SyntaxError` (division by zero too), which becomes
    /// `Neo.ClientError.Statement.SyntaxError`; its `FalkorDB.` prefix becomes `Neo.`.
    fn fail_from_falkordb(&mut self, metadata: Metadata) {
        let get = |key: &str| {
            metadata
                .iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string)
        };
        let falkor_code = get("code").unwrap_or_else(|| "UnknownError".to_string());
        let status = if falkor_code.starts_with("Neo.") {
            falkor_code.clone()
        } else if let Some(rest) = falkor_code.strip_prefix("FalkorDB.") {
            format!("Neo.{rest}")
        } else {
            format!("Neo.ClientError.Statement.{falkor_code}")
        };
        let text = get("message").unwrap_or(falkor_code);
        self.fail(&status, text);
    }

    fn fail(&mut self, status: &str, text: impl Into<String>) {
        self.failed = true;
        self.reply(&message::failure(status, text));
    }

    fn reply(&mut self, message: &Structure) {
        chunking::frame(&message::encode(message), &mut self.out);
    }

    async fn flush(&mut self) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        self.writer
            .write_all(&out)
            .await
            .map_err(|e| Error::io("writing to a client", e))?;
        self.writer
            .flush()
            .await
            .map_err(|e| Error::io("writing to a client", e))
    }
}
