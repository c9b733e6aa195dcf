//! Reading JSON request bodies under the body limit and in time, with errors as the API
//! documents them: 413 over the limit, 408 when the body does not arrive in time, 400
//! for malformed JSON (invalid UTF-8 included) or for missing, unknown or mistyped
//! fields.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web;
use serde::de::DeserializeOwned;

use crate::config::ServerConfig;
use crate::http::error::ApiError;

/// Reads the whole body, refusing more than `max_body_bytes` or a body slower than
/// `body_timeout_ms`.
pub(crate) async fn read_body(
    payload: web::Payload,
    server: &ServerConfig,
) -> Result<web::Bytes, ApiError> {
    let limit = server.max_body_bytes;
    let timeout = Duration::from_millis(server.body_timeout_ms.max(1));
    let Ok(read) = tokio::time::timeout(timeout, payload.to_bytes_limited(limit)).await else {
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the body did not arrive within {} ms",
                server.body_timeout_ms
            ),
        ));
    };
    match read {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(err)) => Err(ApiError::invalid_request(format!(
            "cannot read the body: {err}"
        ))),
        Err(_) => Err(ApiError::too_large(format!(
            "the body is over the limit of {limit} bytes"
        ))),
    }
}

/// Reads the body and parses it as `T`.
pub(crate) async fn read_json<T: DeserializeOwned>(
    payload: web::Payload,
    server: &ServerConfig,
) -> Result<T, ApiError> {
    let bytes = read_body(payload, server).await?;
    let mut json = serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(&mut json).map_err(|e| {
        // Classified as any JSON error; a data error names its field.
        let mut error = ApiError::from_json(e.inner());
        if error.code == "invalid_request" {
            error.message = at_field(&e);
        }
        error
    })?;
    json.end().map_err(|e| ApiError::from_json(&e))?;
    Ok(value)
}

/// Parses a JSON value (a turn of a batch, a tool's arguments) as `T`; a value that does
/// not fit is `invalid_request` naming the field at fault (`event_time: ...`).
pub(crate) fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| ApiError::invalid_request(at_field(&e)))
}

/// The error with the path of the field it concerns, when it concerns one: chrono and
/// serde say "premature end of input" or "invalid type" without naming the field.
fn at_field(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    if path == "." {
        e.inner().to_string()
    } else {
        format!("{path}: {}", e.inner())
    }
}
