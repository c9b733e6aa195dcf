//! Reading JSON request bodies under the body limit, with errors as the API documents
//! them: 413 over the limit, 400 for malformed JSON (invalid UTF-8 included) or for
//! missing, unknown or mistyped fields.

use actix_web::web;
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;

/// Reads the whole body, refusing more than `limit` bytes.
pub(crate) async fn read_body(payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    match payload.to_bytes_limited(limit).await {
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
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read_body(payload, limit).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::from_json(&e))
}
