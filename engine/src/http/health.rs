//! `/healthz` (the process answers), `/readyz` (each actor's state) and `/metrics`
//! (Prometheus).

use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::api::{AliveOut, ErrorBody, ReadyOut};
use crate::http::error::ApiError;
use crate::http::State;

/// Asks for a key unless `[auth] healthz_open`.
fn check_key(state: &State, req: &HttpRequest) -> Result<(), ApiError> {
    if state.healthz_open {
        Ok(())
    } else {
        state.keys.authenticate(req).map(|_| ())
    }
}

/// The process is alive and serving HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses(
        (status = 200, description = "Alive", body = AliveOut),
        (status = 401, description = "No valid API key (when `[auth] healthz_open = false`)", body = ErrorBody),
    )
)]
pub(crate) async fn healthz(
    state: web::Data<State>,
    req: HttpRequest,
) -> Result<web::Json<AliveOut>, ApiError> {
    check_key(&state, &req)?;
    Ok(web::Json(AliveOut {
        status: "ok".into(),
    }))
}

/// Each actor's state (up, restarting, disabled), restarts and mailbox depth, and each
/// processor's lag and the backlog; 503 while the archive is not up, the engine is
/// shutting down, or the processors are too far behind to take writes.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = ReadyOut),
        (status = 401, description = "No valid API key (when `[auth] healthz_open = false`)", body = ErrorBody),
        (status = 503, description = "Not ready: the archive is not up, the engine is shutting down, or it is behind (writes refused until the processors catch up)", body = ReadyOut),
    )
)]
pub(crate) async fn readyz(
    state: web::Data<State>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    check_key(&state, &req)?;
    let ready = ReadyOut::from(state.engine.health());
    let mut response = if ready.ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    Ok(response.json(ready))
}

/// The engine's metrics in the Prometheus text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 401, description = "No valid API key (when `[auth] healthz_open = false`)", body = ErrorBody),
    )
)]
pub(crate) async fn metrics(
    state: web::Data<State>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    check_key(&state, &req)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.engine.metrics_text()))
}
