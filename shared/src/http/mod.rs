//! The HTTP edge: one function per endpoint from `http::Request` to `http::Response`,
//! used unchanged by the Lambda binaries (`lambda`) and the local run.

pub mod cors;
mod jwks;
pub mod lambda;
mod request;
mod response;
mod send;
mod verify;

use std::net::IpAddr;

use futures_util::FutureExt;

pub use cors::Cors;
pub use request::MAX_BODY_BYTES;
pub use response::{SECURITY_HEADERS, error_response, with_security_headers};

use crate::error::ApiError;
use crate::service::OtpService;

/// The endpoints: send-otp serves the first, verify-otp the other two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    SendOtp,
    VerifyOtp,
    /// `GET /.well-known/jwks.json`: the session tokens' public keys.
    Jwks,
}

impl Endpoint {
    pub const ALL: [Self; 3] = [Self::SendOtp, Self::VerifyOtp, Self::Jwks];

    pub fn path(self) -> &'static str {
        match self {
            Self::SendOtp => "/api/send-otp",
            Self::VerifyOtp => "/api/verify-otp",
            Self::Jwks => "/.well-known/jwks.json",
        }
    }

    pub fn from_path(path: &str) -> Option<Self> {
        let path = path.trim_end_matches('/');
        Self::ALL.into_iter().find(|endpoint| endpoint.path() == path)
    }
}

/// The routes of the send-otp Lambda function (template.yaml).
pub const SEND_OTP_FUNCTION: &[Endpoint] = &[Endpoint::SendOtp];
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
        let origin = request.headers().get(http::header::ORIGIN);
        if request.method() == http::Method::OPTIONS {
            return with_security_headers(self.cors.preflight(origin));
        }
        // A bug that panics must still get the contract's answer, not a dropped connection
        // (or API Gateway's bare 502): caught here, logged, answered `500`.
        let answer = std::panic::AssertUnwindSafe(self.answer(endpoint, request, client_ip)).catch_unwind();
        let response = answer.await.unwrap_or_else(|_| {
            tracing::error!(event = "handler_panicked", "a handler panicked; answering 500");
            error_response(&ApiError::Internal)
        });
        let response = with_security_headers(self.cors.decorate(origin, response));
        if endpoint == Endpoint::Jwks { jwks::cacheable(response) } else { response }
    }

    async fn answer<B: AsRef<[u8]>>(
        &self,
        endpoint: Endpoint,
        request: &http::Request<B>,
        client_ip: Option<IpAddr>,
    ) -> http::Response<String> {
        if endpoint == Endpoint::Jwks {
            return jwks::answer(self.service.as_ref().ok(), request.method()).await;
        }
        let result = match request::json_body(request) {
            Err(error) => Err(error),
            Ok(body) => match (&self.service, endpoint) {
                (Err(_), _) => Err(ApiError::ServiceUnavailable),
                (Ok(service), Endpoint::SendOtp) => send::send_otp(service, &body, client_ip).await,
                (Ok(service), Endpoint::VerifyOtp) => verify::verify_otp(service, &body, client_ip).await,
                (Ok(_), Endpoint::Jwks) => Err(ApiError::NotFound),
            },
        };
        result.unwrap_or_else(|error| error_response(&error))
    }

    /// An error answer with every header of the contract, for answers the endpoints never
    /// give (unknown paths of the local run, a deadline reached in Lambda).
    pub fn error<B>(&self, request: &http::Request<B>, error: &ApiError) -> http::Response<String> {
        with_security_headers(self.cors.decorate(request.headers().get(http::header::ORIGIN), error_response(error)))
    }
}
