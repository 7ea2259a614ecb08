//! Building responses: JSON bodies with the headers every answer carries.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};

use crate::error::ApiError;

pub(super) fn json_response(status: StatusCode, body: &serde_json::Value) -> http::Response<String> {
    let mut response = http::Response::new(body.to_string());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    // Codes and tokens must never be cached by a browser or a proxy.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

/// The contract's answer for `error`.
pub fn error_response(error: &ApiError) -> http::Response<String> {
    let mut response = json_response(error.status(), &error.body());
    if let Some(seconds) = error.retry_after() {
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    if matches!(error, ApiError::MethodNotAllowed) {
        response.headers_mut().insert(http::header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    }
    response
}
