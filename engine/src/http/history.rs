//! `GET /v1/users/{user_id}/sessions/{session_id}/turns`: a session's turns, paged.

use actix_web::web;
use mnemo_storage::archive::HistoryPage;
use mnemo_storage::model::{Scope, SessionId, TurnId, UserId};

use crate::http::api::{ErrorBody, HistoryOut, HistoryParams};
use crate::http::auth::Tenant;
use crate::http::error::ApiError;
use crate::http::State;

/// A page of a session's turns, newest first.
#[utoipa::path(
    get,
    path = "/v1/users/{user_id}/sessions/{session_id}/turns",
    tag = "history",
    params(
        ("user_id" = String, Path, description = "The user"),
        ("session_id" = String, Path, description = "The session"),
        HistoryParams,
    ),
    responses(
        (status = 200, description = "Turns, newest first", body = HistoryOut),
        (status = 400, description = "Unknown or mistyped parameters", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 422, description = "Invalid values", body = ErrorBody),
        (status = 503, description = "The archive is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn history(
    state: web::Data<State>,
    tenant: Tenant,
    path: web::Path<(String, String)>,
    params: web::Query<HistoryParams>,
) -> Result<web::Json<HistoryOut>, ApiError> {
    let (user_id, session_id) = path.into_inner();
    let limit = params.limit.unwrap_or(50);
    if limit == 0 || limit > state.server.max_page {
        return Err(ApiError::invalid_input(format!(
            "limit must be between 1 and {}",
            state.server.max_page
        )));
    }
    let scope = Scope::new(tenant.0, UserId::new(user_id)?);
    let session = SessionId::new(session_id)?;
    let page = HistoryPage {
        before: params.before.map(TurnId),
        limit,
    };
    let turns = state.engine.history(&scope, &session, page).await?;
    let next_before = if turns.len() == limit {
        turns.last().map(|t| t.id.0)
    } else {
        None
    };
    Ok(web::Json(HistoryOut {
        turns: turns.into_iter().map(Into::into).collect(),
        next_before,
    }))
}
