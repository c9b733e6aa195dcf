//! [`NoQuery`]: routes that take no query parameters refuse any, so a parameter sent by
//! mistake is an error instead of being ignored: `DELETE /v1/users/zed?tenant=globex`
//! must not quietly delete the caller's own `zed`.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use crate::http::error::ApiError;

/// Extracts nothing; refuses a request with a query string (400 `invalid_request`).
pub(crate) struct NoQuery;

impl FromRequest for NoQuery {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let query = req.query_string();
        if query.is_empty() {
            return ready(Ok(NoQuery));
        }
        let name = query
            .split('&')
            .next()
            .and_then(|pair| pair.split('=').next())
            .unwrap_or(query);
        let name: String = name.chars().take(64).collect();
        ready(Err(ApiError::invalid_request(format!(
            "unknown query parameter `{name}`: {} {} takes none",
            req.method(),
            req.match_pattern().unwrap_or_else(|| req.path().to_owned())
        ))))
    }
}
