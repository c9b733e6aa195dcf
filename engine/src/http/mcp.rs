//! `/mcp`: the MCP tools of `mnemo mcp` over the protocol's streamable-HTTP transport
//! (POST a JSON-RPC message, GET an event stream, DELETE a session), for the tenant of
//! the API key. The request is handed to the tenant's rmcp service as it came; its
//! answer goes back as it is, streamed.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use http_body_util::{BodyExt, Full};

use crate::http::api::ErrorBody;
use crate::http::auth::Tenant;
use crate::http::body::read_body;
use crate::http::error::ApiError;
use crate::http::State;

#[utoipa::path(
    post,
    path = "/mcp",
    tag = "mcp",
    request_body(content = String, description = "A JSON-RPC 2.0 message of the Model Context Protocol", content_type = "application/json"),
    responses(
        (status = 200, description = "The JSON-RPC answer (`Mcp-Session-Id` after `initialize`)"),
        (status = 202, description = "A notification or response was accepted"),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "An unknown or expired session", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn post(
    state: web::Data<State>,
    tenant: Tenant,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, &state.server).await?;
    forward(&state, &tenant, &req, body).await
}

#[utoipa::path(
    get,
    path = "/mcp",
    tag = "mcp",
    responses(
        (status = 200, description = "The session's event stream (server-sent events)"),
        (status = 401, description = "No valid API key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn get(
    state: web::Data<State>,
    tenant: Tenant,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    forward(&state, &tenant, &req, web::Bytes::new()).await
}

#[utoipa::path(
    delete,
    path = "/mcp",
    tag = "mcp",
    responses(
        (status = 200, description = "The session (`Mcp-Session-Id`) is closed"),
        (status = 401, description = "No valid API key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn delete(
    state: web::Data<State>,
    tenant: Tenant,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    forward(&state, &tenant, &req, web::Bytes::new()).await
}

/// Hands the request to the tenant's MCP service and streams its answer back.
async fn forward(
    state: &State,
    tenant: &Tenant,
    req: &HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let mut request = http::Request::builder()
        .method(req.method().as_str())
        .uri(req.uri().to_string());
    for (name, value) in req.headers() {
        request = request.header(name.as_str(), value.as_bytes());
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| ApiError::invalid_request(format!("unusable MCP request: {e}")))?;
    let service = state.mcp.for_tenant(&tenant.0);
    let (parts, body) = service.handle(request).await.into_parts();
    let status = StatusCode::from_u16(parts.status.as_u16())
        .map_err(|e| ApiError::invalid_request(format!("unusable MCP answer: {e}")))?;
    let mut response = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        response.append_header((name.as_str(), value.as_bytes()));
    }
    Ok(response.streaming(body.into_data_stream()))
}
