//! Errors of the HTTP service: [`ApiError`] is what a request gets back, always as JSON
//! `{ "error": { "code": "...", "message": "..." } }` with a status that says whose fault
//! it is; [`ServeError`] is why the server could not start or run.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::error::{Error, ErrorKind};
use crate::http::api::{ErrorBody, ErrorDetail};

/// An error answer: status, stable code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code (see [`ErrorDetail::code`]).
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the body is not JSON (syntax, truncation, invalid UTF-8).
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    /// 400: fields are missing, unknown or of the wrong type; a query or path is unusable.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401: no valid API key.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404: nothing of that name in the caller's scope.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 413: the body or a field is over its limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    /// 422: a value is well-formed but not acceptable.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
    }

    /// Classifies a JSON parse error: syntax errors are `malformed_json`, data errors
    /// (missing, unknown or mistyped fields) are `invalid_request`.
    pub fn from_json(err: &serde_json::Error) -> Self {
        match err.classify() {
            serde_json::error::Category::Data => Self::invalid_request(err.to_string()),
            _ => Self::malformed(err.to_string()),
        }
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let kind = err.kind();
        let status = match kind {
            ErrorKind::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Busy => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable | ErrorKind::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Corrupt | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let code = match kind {
            ErrorKind::Corrupt => "internal",
            other => other.as_str(),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // A backend's message (SQL, paths, data) is for the operator, not the client.
            tracing::error!(error = %err, "a request failed with an internal error");
            return Self::new(
                status,
                code,
                "an internal error occurred; the server's log has the details",
            );
        }
        Self::new(status, code, err.to_string())
    }
}

impl From<mnemo_storage::Error> for ApiError {
    fn from(err: mnemo_storage::Error) -> Self {
        Error::from(err).into()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if matches!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of a body that came too slowly is not waited for.
            response.force_close();
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
            },
        })
    }
}

/// Error handler of actix-web's JSON extractor.
pub(crate) fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::too_large(err.to_string())
        }
        JsonPayloadError::Deserialize(e) => ApiError::from_json(e),
        _ => ApiError::invalid_request(err.to_string()),
    };
    api.into()
}

/// Error handler of actix-web's query extractor.
pub(crate) fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::invalid_request(format!("invalid query string: {err}")).into()
}

/// Error handler of actix-web's path extractor.
pub(crate) fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::invalid_request(format!("invalid path: {err}")).into()
}

/// The answer to a path no route serves.
pub(crate) async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!("no route for {}", req.path())))
}

/// The answer to a method a route does not serve.
pub(crate) async fn no_method(req: HttpRequest, allow: &'static str) -> HttpResponse {
    let error = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not served on {}; {allow} is",
            req.method(),
            req.path()
        ),
    );
    let mut response = error.error_response();
    // RFC 9110: a 405 names the methods the resource does serve.
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

/// Why the HTTP service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// An `[auth]` key is unusable.
    #[error("invalid API key for tenant {tenant:?}: {reason}")]
    InvalidKey {
        /// The tenant it names.
        tenant: String,
        /// What is wrong.
        reason: String,
    },
    /// The listen address is not an address.
    #[error("invalid listen address {address:?}: {reason}")]
    Address {
        /// The address given.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// Binding, accepting or serving failed.
    #[error("HTTP server I/O: {0}")]
    Io(#[from] std::io::Error),
    /// No randomness for a new key.
    #[error("cannot draw random bytes: {0}")]
    Random(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_500_never_carries_the_backends_message() {
        let backend = mnemo_storage::Error::corrupt(
            "postgres archive",
            "invalid byte sequence for encoding \"UTF8\": 0x00",
        );
        let answer = ApiError::from(backend);
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(answer.code, "internal");
        assert!(!answer.message.contains("UTF8"), "{}", answer.message);
        let internal = ApiError::from(mnemo_storage::Error::internal("sqlite archive", "x.db"));
        assert!(!internal.message.contains("x.db"), "{}", internal.message);
        // Client errors keep saying what was wrong.
        let invalid = ApiError::from(mnemo_storage::Error::invalid("content", "is empty"));
        assert!(invalid.message.contains("content"), "{}", invalid.message);
    }
}
