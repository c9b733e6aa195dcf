//! `GET /v1/users/{user_id}/graph`: an entity of the user and its neighbourhood.

use actix_web::web;
use mnemo_storage::model::{Scope, UserId};

use crate::http::api::{ErrorBody, GraphOut, GraphParams};
use crate::http::auth::Tenant;
use crate::http::error::ApiError;
use crate::http::State;

/// The entity named `entity` (or an alias) and what it relates to, up to `depth` hops.
#[utoipa::path(
    get,
    path = "/v1/users/{user_id}/graph",
    tag = "graph",
    params(
        ("user_id" = String, Path, description = "The user"),
        GraphParams,
    ),
    responses(
        (status = 200, description = "The entity and its neighbourhood", body = GraphOut),
        (status = 400, description = "Missing, unknown or mistyped parameters", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "The user has no such entity", body = ErrorBody),
        (status = 422, description = "Invalid values (depth not 1 or 2)", body = ErrorBody),
        (status = 503, description = "The graph tier is down or switched off", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn graph(
    state: web::Data<State>,
    tenant: Tenant,
    path: web::Path<String>,
    params: web::Query<GraphParams>,
) -> Result<web::Json<GraphOut>, ApiError> {
    let params = params.into_inner();
    let depth = params.depth.unwrap_or(1);
    if !(1..=2).contains(&depth) {
        return Err(ApiError::invalid_input("depth must be 1 or 2"));
    }
    let limit = params.limit.unwrap_or(20);
    if limit == 0 || limit > state.server.max_page {
        return Err(ApiError::invalid_input(format!(
            "limit must be between 1 and {}",
            state.server.max_page
        )));
    }
    if params.entity.trim().is_empty() {
        return Err(ApiError::invalid_input("entity must not be empty"));
    }
    let scope = Scope::new(tenant.0, UserId::new(path.into_inner())?);
    match state
        .engine
        .graph(&scope, &params.entity, depth, limit)
        .await?
    {
        Some(found) => Ok(web::Json(found.into())),
        None => Err(ApiError::not_found(format!(
            "the user has no entity named {:?}",
            params.entity
        ))),
    }
}
