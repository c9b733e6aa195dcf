//! `DELETE /v1/users/{user_id}` and `DELETE /v1/turns/{id}`: forgetting, in every tier.

use actix_web::web;
use mnemo_storage::model::{Scope, TurnId, UserId};

use crate::http::api::{ErrorBody, ForgetOut, ForgetTurnParams};
use crate::http::auth::Tenant;
use crate::http::error::ApiError;
use crate::http::no_query::NoQuery;
use crate::http::State;
use crate::Engine;

/// Forgets a user: turns, summaries, index entries, graph, emotion state and caches.
#[utoipa::path(
    delete,
    path = "/v1/users/{user_id}",
    tag = "forget",
    params(("user_id" = String, Path, description = "The user")),
    responses(
        (status = 200, description = "What was removed (zero counts for an unknown user)", body = ForgetOut),
        (status = 400, description = "A query parameter (this route takes none)", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 422, description = "Invalid user id", body = ErrorBody),
        (status = 503, description = "A tier is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn forget_user(
    state: web::Data<State>,
    tenant: Tenant,
    _: NoQuery,
    path: web::Path<String>,
) -> Result<web::Json<ForgetOut>, ApiError> {
    let scope = Scope::new(tenant.0, UserId::new(path.into_inner())?);
    let report = state.engine.forget_user(&scope).await?;
    Ok(web::Json(report.into()))
}

/// Forgets one turn of a user (named by `?user_id=`, since a turn belongs to one user):
/// the turn, the summaries covering it, its index entries and its graph support.
#[utoipa::path(
    delete,
    path = "/v1/turns/{id}",
    tag = "forget",
    params(
        ("id" = i64, Path, description = "The turn id"),
        ForgetTurnParams,
    ),
    responses(
        (status = 200, description = "What was removed", body = ForgetOut),
        (status = 400, description = "Missing user_id or a non-numeric id", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "The user has no such turn", body = ErrorBody),
        (status = 503, description = "A tier is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn forget_turn(
    state: web::Data<State>,
    tenant: Tenant,
    path: web::Path<i64>,
    params: web::Query<ForgetTurnParams>,
) -> Result<web::Json<ForgetOut>, ApiError> {
    let id = path.into_inner();
    let scope = Scope::new(tenant.0, UserId::new(params.into_inner().user_id)?);
    Ok(web::Json(forget_one_turn(&state.engine, &scope, id).await?))
}

/// Forgets turn `id` of `scope`'s user; a turn the user does not have is `not_found`
/// (shared by the HTTP route and the MCP `forget_turn` tool).
pub(crate) async fn forget_one_turn(
    engine: &Engine,
    scope: &Scope,
    id: i64,
) -> Result<ForgetOut, ApiError> {
    let report = engine.forget_turn(scope, TurnId(id)).await?;
    if report.turns == 0 {
        return Err(ApiError::not_found(format!("the user has no turn {id}")));
    }
    Ok(report.into())
}
