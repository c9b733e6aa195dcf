//! The HTTP service of `mnemo serve`: actix-web hosting one [`Engine`].
//!
//! Routes are listed once, in [`routes`]; each lives in a file of its own with its
//! OpenAPI description ([`openapi`]). Every `/v1` route takes the tenant from the API key
//! ([`auth`]); every error is JSON ([`error`]). [`run`] takes a bound listener and a
//! shutdown future, so tests bind port 0 and stop the server when they like.

pub mod api;
pub mod auth;
pub(crate) mod body;
pub(crate) mod context;
pub mod error;
pub(crate) mod forget;
mod graph;
mod head_limits;
mod health;
mod history;
mod mcp;
mod no_query;
pub mod openapi;
pub(crate) mod search;
pub(crate) mod turns;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};

use actix_web::{web, App, HttpRequest, HttpServer, Resource, Route};
use mnemo_storage::limits::InputLimits;

use crate::config::{Config, ServerConfig};
use crate::Engine;

pub use auth::{config_entry, generate_key, key_hash, Keys, Tenant};
pub use error::{ApiError, ServeError};

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) engine: Engine,
    pub(crate) keys: Keys,
    pub(crate) server: ServerConfig,
    pub(crate) limits: InputLimits,
    pub(crate) healthz_open: bool,
    pub(crate) openapi: String,
    /// The MCP tools over HTTP (`/mcp`), per tenant.
    pub(crate) mcp: crate::mcp::McpOverHttp,
}

/// A resource serving `route` (for method `allow`) at `path`; other methods get a JSON
/// 405 whose `Allow` header names it.
fn at(path: &str, allow: &'static str, route: Route) -> Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(move |req: HttpRequest| {
            error::no_method(req, allow)
        }))
}

/// Every route of the service, one line each.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/healthz", "GET", web::get().to(health::healthz)))
        .service(at("/readyz", "GET", web::get().to(health::readyz)))
        .service(at("/metrics", "GET", web::get().to(health::metrics)))
        .service(at("/openapi.json", "GET", web::get().to(openapi::serve)))
        .service(at("/v1/turns", "POST", web::post().to(turns::store)))
        .service(at(
            "/v1/turns/{id}",
            "DELETE",
            web::delete().to(forget::forget_turn),
        ))
        .service(at("/v1/context", "POST", web::post().to(context::context)))
        .service(at("/v1/search", "GET", web::get().to(search::search)))
        .service(at(
            "/v1/users/{user_id}/sessions/{session_id}/turns",
            "GET",
            web::get().to(history::history),
        ))
        .service(at(
            "/v1/users/{user_id}/graph",
            "GET",
            web::get().to(graph::graph),
        ))
        .service(
            web::resource("/mcp")
                .route(web::post().to(mcp::post))
                .route(web::get().to(mcp::get))
                .route(web::delete().to(mcp::delete))
                .default_service(web::to(|req: HttpRequest| {
                    error::no_method(req, "GET, POST, DELETE")
                })),
        )
        .service(at(
            "/v1/users/{user_id}",
            "DELETE",
            web::delete().to(forget::forget_user),
        ));
}

/// Binds `address` (`host:port`; port 0 picks a free port).
pub fn bind(address: &str) -> Result<TcpListener, ServeError> {
    let addr: SocketAddr = address.parse().map_err(|e| ServeError::Address {
        address: address.to_owned(),
        reason: format!("{e}"),
    })?;
    Ok(TcpListener::bind(addr)?)
}

/// Serves `engine` on `listener` with the `[server]` and `[auth]` sections of `config`
/// (input limits come from the engine's own configuration) until `shutdown` completes;
/// then stops accepting, lets requests in flight finish (at most
/// `server.shutdown_timeout_secs`) and returns. The engine keeps running: the caller
/// shuts it down. Must be awaited inside a tokio runtime.
pub async fn run(
    listener: TcpListener,
    engine: Engine,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let closing = tokio_util::sync::CancellationToken::new();
    let server = start(listener, engine, &config, closing.clone())?;
    let handle = server.handle();
    let mut server = std::pin::pin!(server);
    tokio::select! {
        done = &mut server => return Ok(done?),
        () = shutdown => {}
    }
    // Open MCP event streams would hold the stop until its timeout.
    closing.cancel();
    // The server future handles the stop command, so it is polled while stopping.
    let (done, ()) = tokio::join!(server, handle.stop(true));
    Ok(done?)
}

/// Builds the server and starts its workers; the returned future runs it.
fn start(
    listener: TcpListener,
    engine: Engine,
    config: &Config,
    closing: tokio_util::sync::CancellationToken,
) -> Result<actix_web::dev::Server, ServeError> {
    let keys = Keys::from_config(&config.auth)?;
    let openapi = openapi::document()
        .to_json()
        .map_err(|e| ServeError::Io(std::io::Error::other(e)))?;
    let mcp = crate::mcp::McpOverHttp::new(
        engine.clone(),
        mnemo_storage::clock::SystemClock::shared(),
        config.server.max_body_bytes,
        closing,
    );
    let state = web::Data::new(State {
        mcp,
        limits: engine.config().storage.limits.clone(),
        engine,
        keys,
        server: config.server.clone(),
        healthz_open: config.auth.healthz_open,
        openapi,
    });
    let max_body = config.server.max_body_bytes;
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body)
                    .content_type_required(false)
                    .error_handler(error::json_error),
            )
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .configure(routes)
            .default_service(web::to(error::no_route))
            .wrap(actix_web::middleware::from_fn(head_limits::head_limits))
    })
    .disable_signals()
    .shutdown_timeout(config.server.shutdown_timeout_secs);
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    Ok(server.listen(listener)?.run())
}
