//! `GET /v1/search`: BM25 search over one user's turns and summaries.

use actix_web::web;
use mnemo_storage::index::SearchQuery;
use mnemo_storage::model::{Scope, TenantId, UserId};

use crate::config::ServerConfig;
use crate::http::api::{ErrorBody, SearchOut, SearchParams};
use crate::http::auth::Tenant;
use crate::http::error::ApiError;
use crate::http::State;

/// Searches the user's turns and summaries, best first, with paging and a time range.
#[utoipa::path(
    get,
    path = "/v1/search",
    tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "Hits, best first", body = SearchOut),
        (status = 400, description = "Missing, unknown or mistyped parameters", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 413, description = "Query over its limit", body = ErrorBody),
        (status = 422, description = "Invalid values (no words, limit too high, from after to)", body = ErrorBody),
        (status = 429, description = "The index's queue is full", body = ErrorBody),
        (status = 503, description = "The index is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn search(
    state: web::Data<State>,
    tenant: Tenant,
    params: web::Query<SearchParams>,
) -> Result<web::Json<SearchOut>, ApiError> {
    let (scope, query) = search_query(tenant.0, params.into_inner(), &state.server)?;
    let hits = state.engine.search(&scope, query).await?;
    Ok(web::Json(SearchOut {
        hits: hits.into_iter().map(Into::into).collect(),
    }))
}

/// The scope and index query for `params`, checked against the server's limits (query
/// size, page size): shared by the HTTP route and the MCP `search_memory` tool.
pub(crate) fn search_query(
    tenant: TenantId,
    params: SearchParams,
    server: &ServerConfig,
) -> Result<(Scope, SearchQuery), ApiError> {
    if params.q.len() > server.max_query_bytes {
        return Err(ApiError::too_large(format!(
            "q is {} bytes, the limit is {}",
            params.q.len(),
            server.max_query_bytes
        )));
    }
    let limit = params.limit.unwrap_or(10);
    if limit == 0 || limit > server.max_page {
        return Err(ApiError::invalid_input(format!(
            "limit must be between 1 and {}",
            server.max_page
        )));
    }
    let scope = Scope::new(tenant, UserId::new(params.user_id)?);
    let mut query = SearchQuery::new(params.q, limit);
    query.offset = params.offset.unwrap_or(0);
    query.from = params.from;
    query.to = params.to;
    Ok((scope, query))
}
