//! `GET /.well-known/jwks.json`: the public keys of the session tokens, for any backend
//! and any standard JWT library. Public, so cacheable: `Cache-Control: public, max-age=300`
//! instead of the API's `no-store` (a rotation waits that long before a new key signs).

use http::header::{ALLOW, CACHE_CONTROL};
use http::{HeaderValue, Method, StatusCode};

use super::response::{error_response, json_response};
use crate::error::ApiError;
use crate::service::OtpService;

/// How long a backend or a shared cache may keep the key set (docs/DEPLOY.md's rotation
/// waits for it).
pub const JWKS_MAX_AGE_SECONDS: u64 = 300;

pub(super) async fn answer(service: Option<&OtpService>, method: &Method) -> http::Response<String> {
    if method != Method::GET {
        let mut response = error_response(&ApiError::MethodNotAllowed);
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, OPTIONS"));
        return response;
    }
    let keys = match service {
        Some(service) => service.jwk_set().await.map_err(ApiError::from),
        None => Err(ApiError::ServiceUnavailable),
    };
    match keys.and_then(|keys| serde_json::to_value(keys).map_err(|_| ApiError::Internal)) {
        Ok(body) => cacheable(json_response(StatusCode::OK, &body)),
        // An error is never cached: it gets the API's `no-store` like any other.
        Err(error) => error_response(&error),
    }
}

/// The key set may be cached; the security headers' layer keeps this `Cache-Control`.
fn cacheable(mut response: http::Response<String>) -> http::Response<String> {
    let value = format!("public, max-age={JWKS_MAX_AGE_SECONDS}");
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(CACHE_CONTROL, value);
    }
    response
}
