//! Request checks shared by both endpoints: method, size, media type, JSON shape.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Bodies above this are refused with `413`.
pub const MAX_BODY_BYTES: usize = 4096;

/// The checks every POST route makes first: the method, then the size (the body's, and the
/// one `Content-Length` declares).
pub(super) fn post_within_limit<B: AsRef<[u8]>>(request: &http::Request<B>) -> Result<(), ApiError> {
    if request.method() != http::Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    let declared_too_large = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len > MAX_BODY_BYTES as u64);
    if request.body().as_ref().len() > MAX_BODY_BYTES || declared_too_large {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok(())
}

/// Checks method, size and content type, then parses the body as a JSON object.
pub(super) fn json_body<B: AsRef<[u8]>>(request: &http::Request<B>) -> Result<Map<String, Value>, ApiError> {
    post_within_limit(request)?;
    let body = request.body().as_ref();
    if !is_json(request.headers().get(http::header::CONTENT_TYPE)) {
        return Err(ApiError::UnsupportedMediaType);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::InvalidRequest("the body must be a JSON object")),
        Err(_) => Err(ApiError::InvalidRequest("the body is not valid JSON")),
    }
}

/// `application/json`, with any parameters (`; charset=utf-8`), in any case.
fn is_json(content_type: Option<&http::HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// A required string field.
pub(super) fn required_str<'a>(
    body: &'a Map<String, Value>,
    field: &str,
    problem: &'static str,
) -> Result<&'a str, ApiError> {
    match body.get(field) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(ApiError::InvalidRequest(problem)),
    }
}

/// An optional string field: absent or `null` is `None`, any other type is an error.
pub(super) fn optional_str<'a>(
    body: &'a Map<String, Value>,
    field: &str,
    problem: &'static str,
) -> Result<Option<&'a str>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::InvalidRequest(problem)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        let ok = [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            " application/json ",
        ];
        for v in ok {
            assert!(is_json(Some(&http::HeaderValue::from_static(v))), "{v}");
        }
        let bad = ["text/plain", "application/x-www-form-urlencoded", "application/jsonp", "multipart/form-data", ""];
        for v in bad {
            assert!(!is_json(Some(&http::HeaderValue::from_static(v))), "{v}");
        }
        assert!(!is_json(None));
    }
}
