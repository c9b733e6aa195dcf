//! One Bolt 5 connection to FalkorDB, used strictly one request at a time.
//!
//! It only ever sends HELLO, LOGON and RUN: FalkorDB's other messages are no-ops or
//! harmful (see `session.rs`), so the bridge answers them itself. It never sends GOODBYE:
//! FalkorDB 4.16 frees the connection inside its request handler and its Bolt listener
//! stops accepting connections afterwards (redis keeps answering; new Bolt handshakes go
//! unanswered). Dropping an [`Upstream`] just closes the socket, which FalkorDB handles.

use std::net::SocketAddr;

use tokio::io::BufReader;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::chunking;
use crate::error::{Error, Result};
use crate::handshake::{self, BoltVersion};
use crate::message::{self, tag};
use crate::packstream::{Quirks, Structure, Value};

/// A map's entries.
pub type Metadata = Vec<(String, Value)>;

/// A connection to FalkorDB's Bolt port, past HELLO and LOGON.
#[derive(Debug)]
pub struct Upstream {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    version: BoltVersion,
    connection_id: Option<String>,
}

/// How FalkorDB answered a RUN.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// The query failed before any result: the FAILURE's metadata.
    Failed(Metadata),
    /// The query ran: the header (`fields`, ...), every record, and how it ended.
    Ran {
        /// The RUN SUCCESS metadata.
        header: Metadata,
        /// All rows, in order.
        records: Vec<Vec<Value>>,
        /// The closing SUCCESS (statistics) or FAILURE.
        summary: Summary,
    },
}

/// How a result stream ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Summary {
    /// SUCCESS with this metadata.
    Success(Metadata),
    /// FAILURE with this metadata.
    Failure(Metadata),
}

impl Upstream {
    /// Connects to FalkorDB at `addr`, runs the handshake, HELLO (as `user_agent`) and
    /// LOGON.
    ///
    /// LOGON always uses the scheme `none`: FalkorDB refuses `basic` unless the principal
    /// is `falkordb` and the credentials pass redis AUTH (it answers FAILURE
    /// `FalkorDB.ClientError.Security.Unauthorized`), while `none` is let in whenever
    /// redis answers PING. A test server has no password, so whatever the client sent is
    /// not passed on.
    pub async fn connect(addr: SocketAddr, user_agent: &str) -> Result<Upstream> {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| Error::io(format!("connecting to FalkorDB at {addr}"), e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::io("setting TCP_NODELAY", e))?;
        let version = handshake::connect_upstream(&mut stream).await?;
        let (read, writer) = stream.into_split();
        let mut upstream = Upstream {
            reader: BufReader::new(read),
            writer,
            version,
            connection_id: None,
        };
        let hello = Structure::new(
            tag::HELLO,
            vec![Value::map([("user_agent", Value::string(user_agent))])],
        );
        let reply = upstream.request(&hello).await?;
        upstream.connection_id = reply
            .get("connection_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let logon = Structure::new(
            tag::LOGON,
            vec![Value::map([("scheme", Value::string("none"))])],
        );
        upstream.request(&logon).await?;
        Ok(upstream)
    }

    /// The Bolt version FalkorDB agreed to.
    pub fn version(&self) -> BoltVersion {
        self.version
    }

    /// The connection id FalkorDB gave in its HELLO reply.
    pub fn connection_id(&self) -> Option<&str> {
        self.connection_id.as_deref()
    }

    /// Runs `query` (parameters already written into it) on the graph `graph`, and
    /// collects the whole answer.
    ///
    /// FalkorDB takes the graph name from the first *key* of RUN's extra map (it reads
    /// the map's size and then one string, the first key, and ignores the rest), so the
    /// extra map sent is `{graph: null}` rather than `{db: graph}`, which would run on a
    /// graph named `db`. It answers RUN with the header, every record and the closing
    /// SUCCESS at once, without waiting for PULL, and never answers PULL or DISCARD
    /// (after DISCARD it answers nothing more on that connection until RESET), so the
    /// bridge sends neither and reads the whole stream here.
    pub async fn run(&mut self, query: &str, graph: &str) -> Result<RunOutcome> {
        let run = Structure::new(
            tag::RUN,
            vec![
                Value::string(query),
                Value::Map(Vec::new()),
                Value::map([(graph, Value::Null)]),
            ],
        );
        self.send(&run).await?;
        let first = self.recv().await?;
        let header = match first.tag {
            tag::SUCCESS => metadata(first),
            tag::FAILURE => return Ok(RunOutcome::Failed(metadata(first))),
            other => return Err(unexpected(other, "RUN")),
        };
        let mut records = Vec::new();
        loop {
            let reply = self.recv().await?;
            match reply.tag {
                tag::RECORD => match reply.fields.into_iter().next() {
                    Some(Value::List(row)) => records.push(row),
                    _ => return Err(Error::protocol("FalkorDB sent a RECORD without a row")),
                },
                tag::SUCCESS => {
                    return Ok(RunOutcome::Ran {
                        header,
                        records,
                        summary: Summary::Success(metadata(reply)),
                    })
                }
                tag::FAILURE => {
                    return Ok(RunOutcome::Ran {
                        header,
                        records,
                        summary: Summary::Failure(metadata(reply)),
                    })
                }
                other => return Err(unexpected(other, "a result stream")),
            }
        }
    }

    /// Sends `message` and expects SUCCESS; returns its metadata.
    async fn request(&mut self, message: &Structure) -> Result<Value> {
        self.send(message).await?;
        let reply = self.recv().await?;
        match reply.tag {
            tag::SUCCESS => Ok(reply.fields.into_iter().next().unwrap_or(Value::Null)),
            tag::FAILURE => Err(Error::protocol(format!(
                "FalkorDB refused {}: {:?}",
                message::name(message.tag),
                reply.fields
            ))),
            other => Err(unexpected(other, &message::name(message.tag))),
        }
    }

    async fn send(&mut self, message: &Structure) -> Result<()> {
        chunking::write_message(&mut self.writer, &message::encode(message))
            .await
            .map_err(|e| Error::io("writing to FalkorDB", e))
    }

    /// The next reply that is not a stale IGNORED.
    ///
    /// After a FAILURE, FalkorDB keeps an IGNORED back and sends it in front of the
    /// answer to a later message (a RESET is answered IGNORED, SUCCESS). The bridge never
    /// sends FalkorDB anything that should be ignored, so every IGNORED is stale.
    async fn recv(&mut self) -> Result<Structure> {
        loop {
            let body = chunking::read_falkordb_message(&mut self.reader)
                .await
                .map_err(|e| Error::io("reading from FalkorDB", e))?
                .ok_or_else(|| {
                    Error::io(
                        "reading from FalkorDB",
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "FalkorDB closed the connection (it crashes on some queries: \
                             returning a temporal value over Bolt is one)",
                        ),
                    )
                })?;
            // A Point2D comes with a stray null after it; decode as the specification
            // says first, so a FalkorDB that gets it right is read right too.
            let reply = message::parse(&body, Quirks::default()).or_else(|_| {
                message::parse(
                    &body,
                    Quirks {
                        point2d_trailing_null: true,
                    },
                )
            })?;
            if reply.tag != tag::IGNORED {
                return Ok(reply);
            }
        }
    }
}

fn metadata(reply: Structure) -> Metadata {
    match reply.fields.into_iter().next() {
        Some(Value::Map(entries)) => entries,
        _ => Vec::new(),
    }
}

fn unexpected(t: u8, during: &str) -> Error {
    Error::protocol(format!(
        "FalkorDB sent {} while answering {during}",
        message::name(t)
    ))
}
