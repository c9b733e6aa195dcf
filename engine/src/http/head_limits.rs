//! Request heads over Mnemo's own limits are answered with the documented JSON error:
//! a URI over [`MAX_URI_BYTES`] is 414 `uri_too_long`, headers over
//! [`MAX_HEADER_BYTES`] in all are 431 `headers_too_large`. Heads past actix-http's own
//! 32 KiB buffer never reach an application: actix answers those 431 with an empty body
//! itself, before any middleware (see the README).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;

use crate::http::error::ApiError;

/// Longest request URI (path and query) served.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Most bytes of header names and values together.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The middleware: refuses an oversized head, else calls the service.
pub(crate) async fn head_limits(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        let error = ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request URI is {uri} bytes, the limit is {MAX_URI_BYTES}"),
        );
        return Ok(req.error_response(error).map_into_right_body());
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        let error = ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the request headers are {headers} bytes, the limit is {MAX_HEADER_BYTES}"),
        );
        return Ok(req.error_response(error).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}
