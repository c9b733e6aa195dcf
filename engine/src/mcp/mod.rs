//! `mnemo mcp`: the engine's memory as tools of the Model Context Protocol, for one
//! tenant, over a byte stream (stdio in `mnemo mcp`: newline-delimited JSON-RPC 2.0) or
//! over the streamable-HTTP transport (`/mcp` of `mnemo serve`, [`McpOverHttp`]),
//! framed, negotiated and dispatched by `rmcp`, the protocol's Rust SDK.
//!
//! The tools ([`MemoryTools`]) are a second front door beside HTTP: they build the same
//! requests through the same checks as the routes (`http::turns`, `http::context`,
//! `http::search`, `http::forget`) and answer the same JSON bodies, so a limit or a
//! validation is written once. A bad argument or a refused request is a tool error (the
//! agent reads why), never a protocol failure or a crash.

mod streamable;
mod tools;

use std::future::Future;

use rmcp::service::ServerInitializeError;
use rmcp::ServiceExt;
use tokio::io::{AsyncRead, AsyncWrite};

pub use streamable::{McpOverHttp, TenantService};
pub use tools::{MemoryTools, TOOL_NAMES};

/// Why an MCP session could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The client sent something other than the `initialize` handshake, or the stream
    /// failed during it.
    #[error("the MCP client did not complete the initialize handshake: {0}")]
    Handshake(#[source] Box<ServerInitializeError>),
    /// The task serving the session failed.
    #[error("the MCP session ended abnormally: {0}")]
    Session(#[source] tokio::task::JoinError),
}

/// Serves `tools` to one MCP client reading requests from `reader` and writing answers
/// to `writer`, until the client closes its end (end of input) or `shutdown` completes.
/// A client that leaves before the handshake is a clean end, not an error. The engine
/// keeps running: the caller shuts it down.
pub async fn run<R, W>(
    tools: MemoryTools,
    reader: R,
    writer: W,
    shutdown: impl Future<Output = ()>,
) -> Result<(), McpError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let running = match tools.serve((reader, writer)).await {
        Ok(running) => running,
        Err(ServerInitializeError::ConnectionClosed(_)) => {
            tracing::info!("the MCP client closed the connection before the handshake");
            return Ok(());
        }
        Err(e) => return Err(McpError::Handshake(Box::new(e))),
    };
    let cancel = running.cancellation_token();
    let waiting = running.waiting();
    let mut waiting = std::pin::pin!(waiting);
    let ended = tokio::select! {
        ended = &mut waiting => ended,
        () = shutdown => {
            cancel.cancel();
            waiting.await
        }
    };
    let reason = ended.map_err(McpError::Session)?;
    tracing::info!(?reason, "the MCP session ended");
    Ok(())
}
