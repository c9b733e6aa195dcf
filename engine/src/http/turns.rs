//! `POST /v1/turns`: one turn, or a batch stored all or nothing.

use actix_web::{web, HttpResponse};
use mnemo_storage::limits::InputLimits;
use mnemo_storage::model::{ExternalId, NewTurn, Scope, SessionId, TenantId, UserId};
use serde_json::Value;

use crate::http::api::{ErrorBody, StoreIn, StoreOut, StoredTurn, TurnIn};
use crate::http::auth::Tenant;
use crate::http::body::{from_value, read_body};
use crate::http::error::ApiError;
use crate::http::no_query::NoQuery;
use crate::http::State;

/// Stores one turn or `{ "turns": [...] }`, all or nothing; answers the ids.
#[utoipa::path(
    post,
    path = "/v1/turns",
    tag = "turns",
    request_body = StoreIn,
    responses(
        (status = 200, description = "Stored (durable in the archive)", body = StoreOut),
        (status = 400, description = "Malformed JSON; missing, unknown or mistyped fields", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 413, description = "Body, content, metadata or batch over its limit", body = ErrorBody),
        (status = 422, description = "Invalid values (empty content, bad ids)", body = ErrorBody),
        (status = 429, description = "The archive's queue is full", body = ErrorBody),
        (status = 503, description = "The archive is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn store(
    state: web::Data<State>,
    tenant: Tenant,
    _: NoQuery,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = read_body(payload, &state.server).await?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::from_json(&e))?;
    let turns = parse_turns(value, &state.limits)?;
    let new_turns = turns
        .into_iter()
        .map(|t| new_turn(&tenant.0, t, &state.limits))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let stored = state.engine.store_batch(new_turns).await?;
    let turns: Vec<StoredTurn> = stored
        .into_iter()
        .map(|a| StoredTurn {
            id: a.turn.id.0,
            external_id: a.turn.external_id.into(),
            created: a.created,
        })
        .collect();
    Ok(HttpResponse::Ok().json(StoreOut {
        ids: turns.iter().map(|t| t.id).collect(),
        turns,
    }))
}

/// One turn, or the turns of `{ "turns": [...] }`, each checked for its fields.
fn parse_turns(value: Value, limits: &InputLimits) -> Result<Vec<TurnIn>, ApiError> {
    let Value::Object(mut map) = value else {
        return Err(ApiError::invalid_request(
            "the body must be a JSON object: one turn, or { \"turns\": [...] }",
        ));
    };
    let Some(turns) = map.remove("turns") else {
        return Ok(vec![from_value(Value::Object(map))?]);
    };
    if let Some(other) = map.keys().next() {
        return Err(ApiError::invalid_request(format!(
            "unknown field `{other}` beside `turns`"
        )));
    }
    let Value::Array(items) = turns else {
        return Err(ApiError::invalid_request("`turns` must be an array"));
    };
    if items.is_empty() {
        return Err(ApiError::invalid_input("`turns` must not be empty"));
    }
    if items.len() > limits.max_batch_turns {
        return Err(ApiError::too_large(format!(
            "a batch of {} turns is over the limit of {}",
            items.len(),
            limits.max_batch_turns
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            from_value(item)
                .map_err(|e| ApiError::invalid_request(format!("turns[{i}].{}", e.message)))
        })
        .collect()
}

/// The engine's turn for `turn` of `tenant`; sizes over their limits are 413, other
/// unacceptable values 422.
pub(crate) fn new_turn(
    tenant: &TenantId,
    turn: TurnIn,
    limits: &InputLimits,
) -> Result<NewTurn, ApiError> {
    if turn.content.len() > limits.max_content_bytes {
        return Err(ApiError::too_large(format!(
            "content is {} bytes, the limit is {}",
            turn.content.len(),
            limits.max_content_bytes
        )));
    }
    let metadata = Value::Object(turn.metadata.unwrap_or_default());
    let metadata_bytes = metadata.to_string().len();
    if metadata_bytes > limits.max_metadata_bytes {
        return Err(ApiError::too_large(format!(
            "metadata is {metadata_bytes} bytes of JSON, the limit is {}",
            limits.max_metadata_bytes
        )));
    }
    let scope = Scope::new(tenant.clone(), UserId::new(turn.user_id)?);
    let external_id = turn.external_id.map(ExternalId::new).transpose()?;
    let new = NewTurn {
        scope,
        session_id: SessionId::new(turn.session_id)?,
        role: turn.role.into(),
        speaker: turn.speaker,
        content: turn.content,
        event_time: turn.event_time,
        metadata,
        external_id,
    };
    new.validate(limits)?;
    Ok(new)
}
