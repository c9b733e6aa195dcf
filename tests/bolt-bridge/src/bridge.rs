//! The bridge's listener: accepts Bolt 4 clients and serves each over a connection of
//! its own to FalkorDB.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{Error, ErrorKind, Result};
use crate::session;

/// Serves Bolt 4 clients on `listener`, each through its own Bolt 5 connection to
/// FalkorDB at `upstream`, until `shutdown` completes. Open client connections are closed
/// when it returns.
pub async fn run(
    listener: TcpListener,
    upstream: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    sessions.spawn(async move {
                        if let Err(e) = session::serve(stream, upstream).await {
                            // A client that hangs up is routine; a protocol error is a bug
                            // worth seeing in the test's output.
                            if e.kind() == ErrorKind::Protocol {
                                eprintln!("bolt-bridge: a session ended: {e}");
                            }
                        }
                    });
                }
                Err(e) if is_per_connection(&e) => {}
                Err(e) => return Err(Error::io("accepting a Bolt client", e)),
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// Accept errors that concern one connection only; the listener goes on.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::Interrupted | K::WouldBlock
    )
}

/// A bridge running in the background on 127.0.0.1, on a port of its own; it stops when
/// dropped (and closes the connections it serves).
#[derive(Debug)]
pub struct BoltBridge {
    addr: SocketAddr,
    task: JoinHandle<Result<()>>,
}

impl BoltBridge {
    /// Starts a bridge to FalkorDB's Bolt port at `upstream`, listening on a free port of
    /// 127.0.0.1. Must be called inside a tokio runtime, which runs it.
    pub async fn start(upstream: SocketAddr) -> Result<BoltBridge> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::io("binding the Bolt bridge's port", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the Bolt bridge's address", e))?;
        let task = tokio::spawn(run(listener, upstream, std::future::pending()));
        Ok(BoltBridge { addr, task })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URI for a driver: `bolt://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("bolt://{}", self.addr)
    }
}

impl Drop for BoltBridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}
