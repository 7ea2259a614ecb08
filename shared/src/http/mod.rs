//! The HTTP edge: one function per endpoint from `http::Request` to `http::Response`,
//! used unchanged by the Lambda binaries (`lambda`) and the local run.

pub mod cors;
mod jwks;
pub mod lambda;
pub mod layers;
mod request;
mod response;
mod send;
mod sms_status;
mod verify;

use std::convert::Infallible;
use std::net::IpAddr;

use bytes::Bytes;
use tower::{Service, ServiceBuilder, ServiceExt};

pub use cors::Cors;
pub use request::MAX_BODY_BYTES;
pub use response::{SECURITY_HEADERS, error_response, with_security_headers};
pub use sms_status::parse_callback as parse_status_callback;

use layers::{CatchPanicLayer, CorsLayer, DeadlineLayer, SecurityHeadersLayer, TimeLeft};

use crate::error::ApiError;
use crate::service::OtpService;

/// The endpoints: send-otp serves sends and the status callbacks, verify-otp the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    SendOtp,
    VerifyOtp,
    /// `GET /.well-known/jwks.json`: the session tokens' public keys.
    Jwks,
    /// `POST /api/sms-status`: Twilio's status callbacks (with `OTP_STATUS_CALLBACK_URL`).
    SmsStatus,
}

impl Endpoint {
    pub const ALL: [Self; 4] = [Self::SendOtp, Self::VerifyOtp, Self::Jwks, Self::SmsStatus];

    pub fn path(self) -> &'static str {
        match self {
            Self::SendOtp => "/api/send-otp",
            Self::VerifyOtp => "/api/verify-otp",
            Self::Jwks => "/.well-known/jwks.json",
            Self::SmsStatus => "/api/sms-status",
        }
    }

    pub fn from_path(path: &str) -> Option<Self> {
        let path = path.trim_end_matches('/');
        Self::ALL.into_iter().find(|endpoint| endpoint.path() == path)
    }
}

/// The routes of the send-otp Lambda function (template.yaml): it holds the Twilio auth
/// token, so it also checks the status callbacks' signatures.
pub const SEND_OTP_FUNCTION: &[Endpoint] = &[Endpoint::SendOtp, Endpoint::SmsStatus];
/// The routes of the verify-otp Lambda function: it holds the signing keys, so it also
/// publishes their public halves.
pub const VERIFY_OTP_FUNCTION: &[Endpoint] = &[Endpoint::VerifyOtp, Endpoint::Jwks];

/// Why the service could not start: it then answers `503` to every request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(pub String);

/// What a handler needs: CORS, and the service if it started.
pub struct Api {
    cors: Cors,
    service: Result<OtpService, StartupError>,
}

impl Api {
    pub fn new(cors: Cors, service: Result<OtpService, StartupError>) -> Self {
        Self { cors, service }
    }

    pub fn service(&self) -> Option<&OtpService> {
        self.service.as_ref().ok()
    }

    /// Answers one request to `endpoint`. `client_ip` is the caller as the platform saw
    /// it (never a header the caller controls). Every input gets a contract answer.
    pub async fn handle<B: AsRef<[u8]>>(
        &self,
        endpoint: Endpoint,
        request: &http::Request<B>,
        client_ip: Option<IpAddr>,
    ) -> http::Response<String> {
        self.handle_within(endpoint, request, client_ip, None).await
    }

    /// [`Api::handle`], answering `503` itself once `time_left` has passed (Lambda's
    /// deadline, less a margin).
    pub async fn handle_within<B: AsRef<[u8]>>(
        &self,
        endpoint: Endpoint,
        request: &http::Request<B>,
        client_ip: Option<IpAddr>,
        time_left: Option<std::time::Duration>,
    ) -> http::Response<String> {
        let service = self.service.as_ref().ok().cloned();
        let endpoint = tower::service_fn(move |request: http::Request<Bytes>| {
            let service = service.clone();
            async move { Ok::<_, Infallible>(answer(service.as_ref(), endpoint, &request, client_ip).await) }
        });
        let mut owned = copy_request(request);
        if let Some(left) = time_left {
            owned.extensions_mut().insert(TimeLeft(left));
        }
        self.stack(endpoint).oneshot(owned).await.unwrap_or_else(|never| match never {})
    }

    /// The edge's layers around `endpoint`, outermost first: the security headers and CORS
    /// on every answer (a preflight answered by CORS alone), then the deadline, then the
    /// panic catch.
    fn stack<S>(
        &self,
        endpoint: S,
    ) -> impl Service<http::Request<Bytes>, Response = http::Response<String>, Error = Infallible, Future: Send> + Send
    where
        S: Service<http::Request<Bytes>, Response = http::Response<String>, Error = Infallible> + Send + 'static,
        S::Future: Send + 'static,
    {
        ServiceBuilder::new()
            .layer(SecurityHeadersLayer)
            .layer(CorsLayer(self.cors.clone()))
            .layer(DeadlineLayer)
            .layer(CatchPanicLayer)
            .service(endpoint)
    }

    /// An error answer with every header of the contract, for answers the endpoints never
    /// give (unknown paths of the local run): the same layers around it.
    pub async fn error<B>(&self, request: &http::Request<B>, error: &ApiError) -> http::Response<String> {
        let answer = error_response(error);
        let fixed = tower::service_fn(move |_: http::Request<Bytes>| std::future::ready(Ok(answer.clone())));
        let mut owned = http::Request::new(Bytes::new());
        *owned.headers_mut() = request.headers().clone();
        self.stack(fixed).oneshot(owned).await.unwrap_or_else(|never| match never {})
    }
}

/// The request as the layers take it: owned, its body as bytes (at most a few KiB).
fn copy_request<B: AsRef<[u8]>>(request: &http::Request<B>) -> http::Request<Bytes> {
    let mut owned = http::Request::new(Bytes::copy_from_slice(request.body().as_ref()));
    *owned.method_mut() = request.method().clone();
    *owned.uri_mut() = request.uri().clone();
    *owned.headers_mut() = request.headers().clone();
    owned
}

/// The endpoint's own answer.
async fn answer(
    service: Option<&OtpService>,
    endpoint: Endpoint,
    request: &http::Request<Bytes>,
    client_ip: Option<IpAddr>,
) -> http::Response<String> {
    if endpoint == Endpoint::Jwks {
        return jwks::answer(service, request.method()).await;
    }
    if endpoint == Endpoint::SmsStatus {
        return sms_status::answer(service, request).await.unwrap_or_else(|error| error_response(&error));
    }
    let result = match request::json_body(request) {
        Err(error) => Err(error),
        Ok(body) => match (service, endpoint) {
            (None, _) => Err(ApiError::ServiceUnavailable),
            (Some(service), Endpoint::SendOtp) => send::send_otp(service, &body, client_ip).await,
            (Some(service), Endpoint::VerifyOtp) => verify::verify_otp(service, &body, client_ip).await,
            (Some(_), Endpoint::Jwks | Endpoint::SmsStatus) => Err(ApiError::NotFound),
        },
    };
    result.unwrap_or_else(|error| error_response(&error))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each endpoint is a section of docs/API.md (`## METHOD path`) and a path of
    /// docs/openapi.yaml, and the docs list no route the code does not serve.
    #[test]
    fn the_contract_docs_list_exactly_the_routes_served() {
        let method = |endpoint: Endpoint| if endpoint == Endpoint::Jwks { "GET" } else { "POST" };
        let served: Vec<String> = Endpoint::ALL.iter().map(|e| format!("{} {}", method(*e), e.path())).collect();
        let api_md = include_str!("../../../docs/API.md");
        let documented: Vec<String> = api_md
            .lines()
            .filter_map(|line| line.strip_prefix("## "))
            .filter(|heading| heading.starts_with("GET /") || heading.starts_with("POST /"))
            .map(str::to_owned)
            .collect();
        assert_eq!(documented, served, "docs/API.md's route sections");
        let openapi = include_str!("../../../docs/openapi.yaml");
        let paths: Vec<&str> =
            openapi.lines().filter_map(|line| line.strip_prefix("  /").and_then(|p| p.strip_suffix(':'))).collect();
        let served_paths: Vec<&str> = Endpoint::ALL.iter().map(|e| &e.path()[1..]).collect();
        assert_eq!(paths, served_paths, "docs/openapi.yaml's paths");
    }
}
