//! `POST /v1/context`: the memories to put into the next prompt.

use std::time::Duration;

use actix_web::web;
use mnemo_storage::model::{Scope, SessionId, TenantId, UserId};

use crate::config::ServerConfig;
use crate::http::api::{ContextIn, ContextOut, ErrorBody};
use crate::http::auth::Tenant;
use crate::http::body::read_json;
use crate::http::error::ApiError;
use crate::http::no_query::NoQuery;
use crate::http::State;
use crate::ContextRequest;

/// Assembles context for the user's next prompt within a deadline.
#[utoipa::path(
    post,
    path = "/v1/context",
    tag = "context",
    request_body = ContextIn,
    responses(
        (status = 200, description = "The assembled context; late or down tiers are named in `degraded`", body = ContextOut),
        (status = 400, description = "Malformed JSON; missing, unknown or mistyped fields", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 413, description = "Body or query over its limit", body = ErrorBody),
        (status = 422, description = "Invalid values", body = ErrorBody),
        (status = 429, description = "The assembler's queue is full", body = ErrorBody),
        (status = 503, description = "Unavailable or shutting down", body = ErrorBody),
        (status = 504, description = "The deadline passed with nothing to answer", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn context(
    state: web::Data<State>,
    tenant: Tenant,
    _: NoQuery,
    payload: web::Payload,
) -> Result<web::Json<ContextOut>, ApiError> {
    let body: ContextIn = read_json(payload, &state.server).await?;
    let request = context_request(tenant.0, body, &state.server)?;
    let answer = state.engine.context(request).await?;
    Ok(web::Json(answer.into()))
}

/// The engine's request for `body`, checked against the server's limits (query size,
/// page sizes, token budget, deadline): shared by the HTTP route and the MCP `recall` tool.
pub(crate) fn context_request(
    tenant: TenantId,
    body: ContextIn,
    server: &ServerConfig,
) -> Result<ContextRequest, ApiError> {
    if body.query.len() > server.max_query_bytes {
        return Err(ApiError::too_large(format!(
            "query is {} bytes, the limit is {}",
            body.query.len(),
            server.max_query_bytes
        )));
    }
    for (field, value) in [
        ("max_recent", body.max_recent),
        ("max_items", body.max_items),
    ] {
        if value.is_some_and(|v| v > server.max_page) {
            return Err(ApiError::invalid_input(format!(
                "{field} is over the limit of {}",
                server.max_page
            )));
        }
    }
    if body.token_budget == Some(0) {
        return Err(ApiError::invalid_input("token_budget must be at least 1"));
    }
    if let Some(ms) = body.deadline_ms {
        if ms == 0 || ms > server.max_deadline_ms {
            return Err(ApiError::invalid_input(format!(
                "deadline_ms must be between 1 and {}",
                server.max_deadline_ms
            )));
        }
    }
    let scope = Scope::new(tenant, UserId::new(body.user_id)?);
    let session = body.session_id.map(SessionId::new).transpose()?;
    let mut request = ContextRequest::new(scope, session, body.query);
    request.max_recent = body.max_recent;
    request.max_items = body.max_items;
    request.token_budget = body.token_budget;
    request.deadline = body.deadline_ms.map(Duration::from_millis);
    Ok(request)
}
