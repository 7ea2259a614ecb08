//! CORS: only the configured frontend origins, never `*`, and `Vary: Origin` always.

use http::HeaderValue;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, VARY,
};

/// Cheap to clone: the edge's CORS layer takes one per request.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: std::sync::Arc<[HeaderValue]>,
}

impl Cors {
    /// Origins that are not valid header values are dropped (config checks them earlier).
    pub fn new(origins: &[String]) -> Self {
        Self { origins: origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect::<Vec<_>>().into() }
    }

    /// The origin to allow: the caller's if it is configured, else the first configured
    /// one (which a browser on any other origin will refuse).
    fn allowed(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        origin
            .and_then(|o| self.origins.iter().find(|allowed| allowed.as_bytes().eq_ignore_ascii_case(o.as_bytes())))
            .or_else(|| self.origins.first())
            .cloned()
    }

    pub fn decorate<B>(&self, origin: Option<&HeaderValue>, mut response: http::Response<B>) -> http::Response<B> {
        let headers = response.headers_mut();
        if let Some(allowed) = self.allowed(origin) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        }
        headers.insert(VARY, HeaderValue::from_static("Origin"));
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Retry-After"));
        response
    }

    /// The `204` answer to a preflight `OPTIONS`.
    pub fn preflight(&self, origin: Option<&HeaderValue>) -> http::Response<String> {
        let mut response = http::Response::new(String::new());
        *response.status_mut() = http::StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
        headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Content-Type, X-Api-Key"));
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        self.decorate(origin, response)
    }
}
