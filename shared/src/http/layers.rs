//! The edge's cross-cutting answers as tower layers around the endpoints: the security
//! headers and CORS on every answer, the panic catch, and the deadline. Each wraps any
//! service from a request to a `Response<String>` that never fails, so the stack reads in
//! one place (`Api::handle`) and each layer is tested once, here, on its own.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use http::{HeaderValue, Method, Request, Response};
use tower::{Layer, Service};

use super::cors::Cors;
use super::response::{error_response, with_security_headers};
use crate::error::ApiError;

type Answer = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;

/// The time a request may take before the edge answers `503` itself (Lambda's deadline,
/// less a margin), as a request extension; none: no limit.
#[derive(Debug, Clone, Copy)]
pub struct TimeLeft(pub Duration);

/// The headers every answer carries (API.md, "Headers"). An answer that set its own
/// `Cache-Control` (the JWK Set's) keeps it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecurityHeadersLayer;

#[derive(Debug, Clone)]
pub struct SecurityHeaders<S>(S);

impl<S> Layer<S> for SecurityHeadersLayer {
    type Service = SecurityHeaders<S>;
    fn layer(&self, inner: S) -> Self::Service {
        SecurityHeaders(inner)
    }
}

impl<S, B> Service<Request<B>> for SecurityHeaders<S>
where
    S: Service<Request<B>, Response = Response<String>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let answer = self.0.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let own = response.headers().get(http::header::CACHE_CONTROL).cloned();
            let mut response = with_security_headers(response);
            if let Some(own) = own {
                response.headers_mut().insert(http::header::CACHE_CONTROL, own);
            }
            Ok(response)
        })
    }
}

/// CORS (API.md, "Headers"): a preflight is answered here, never by an endpoint; every
/// other answer names an allowed origin.
#[derive(Debug, Clone)]
pub struct CorsLayer(pub Cors);

#[derive(Debug, Clone)]
pub struct CorsService<S> {
    cors: Cors,
    inner: S,
}

impl<S> Layer<S> for CorsLayer {
    type Service = CorsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CorsService { cors: self.0.clone(), inner }
    }
}

impl<S, B> Service<Request<B>> for CorsService<S>
where
    S: Service<Request<B>, Response = Response<String>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let origin: Option<HeaderValue> = request.headers().get(http::header::ORIGIN).cloned();
        let cors = self.cors.clone();
        if request.method() == Method::OPTIONS {
            return Box::pin(std::future::ready(Ok(cors.preflight(origin.as_ref()))));
        }
        let answer = self.inner.call(request);
        Box::pin(async move { Ok(cors.decorate(origin.as_ref(), answer.await?)) })
    }
}

/// A bug that panics still gets the contract's answer, not a dropped connection (or API
/// Gateway's bare 502): caught here, logged, answered `500`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

#[derive(Debug, Clone)]
pub struct CatchPanic<S>(S);

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic(inner)
    }
}

impl<S, B> Service<Request<B>> for CatchPanic<S>
where
    S: Service<Request<B>, Response = Response<String>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The call itself may panic before it hands back a future, or the future while it runs.
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.0.call(request)));
        Box::pin(async move {
            let outcome = match answer {
                Ok(answer) => std::panic::AssertUnwindSafe(answer).catch_unwind().await,
                Err(panic) => Err(panic),
            };
            outcome.unwrap_or_else(|_| {
                tracing::error!(event = "handler_panicked", "a handler panicked; answering 500");
                Ok(error_response(&ApiError::Internal))
            })
        })
    }
}

/// Slow backends (store, SMS provider) that would outlast the invocation get a `503` just
/// before its deadline ([`TimeLeft`]), instead of API Gateway's bare 5xx.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

#[derive(Debug, Clone)]
pub struct Deadline<S>(S);

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Deadline(inner)
    }
}

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<String>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let left = request.extensions().get::<TimeLeft>().copied();
        let answer = self.0.call(request);
        Box::pin(async move {
            let Some(TimeLeft(left)) = left else { return answer.await };
            match tokio::time::timeout(left, answer).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::error!(event = "deadline_reached", "backends too slow; answering 503 before the deadline");
                    Ok(error_response(&ApiError::ServiceUnavailable))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{ServiceBuilder, ServiceExt};

    const ORIGIN: &str = "https://app.example";

    fn request(method: &str, extension: Option<TimeLeft>) -> Request<()> {
        let mut request =
            Request::builder().method(method).header("origin", ORIGIN).body(()).unwrap_or_else(|_| Request::new(()));
        if let Some(left) = extension {
            request.extensions_mut().insert(left);
        }
        request
    }

    async fn ok(_: Request<()>) -> Result<Response<String>, Infallible> {
        Ok(Response::new("fine".into()))
    }

    #[tokio::test]
    async fn security_headers_reach_every_answer_and_keep_an_own_cache_control() {
        let plain = ServiceBuilder::new().layer(SecurityHeadersLayer).service_fn(ok);
        let response = plain.oneshot(request("POST", None)).await.unwrap_or_default();
        for (name, value) in super::super::SECURITY_HEADERS {
            assert_eq!(response.headers().get(name).and_then(|v| v.to_str().ok()), Some(value), "{name}");
        }
        let cached = ServiceBuilder::new().layer(SecurityHeadersLayer).service_fn(|_: Request<()>| async {
            let mut response = Response::new(String::new());
            response.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
            Ok::<_, Infallible>(response)
        });
        let response = cached.oneshot(request("GET", None)).await.unwrap_or_default();
        assert_eq!(response.headers()["cache-control"], "public, max-age=300");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
    }

    #[tokio::test]
    async fn cors_answers_preflights_itself_and_decorates_the_rest() {
        let cors = CorsLayer(Cors::new(&[ORIGIN.to_owned()]));
        let unreachable = |_: Request<()>| async {
            panic!("a preflight never reaches the endpoint");
            #[allow(unreachable_code)]
            Ok::<Response<String>, Infallible>(Response::default())
        };
        let preflight = ServiceBuilder::new().layer(cors.clone()).service_fn(unreachable);
        let response = preflight.oneshot(request("OPTIONS", None)).await.unwrap_or_default();
        assert_eq!(response.status(), 204);
        assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
        let response = ServiceBuilder::new().layer(cors).service_fn(ok).oneshot(request("POST", None)).await;
        let response = response.unwrap_or_default();
        assert_eq!(
            (response.body().as_str(), &response.headers()["vary"]),
            ("fine", &HeaderValue::from_static("Origin"))
        );
        assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    }

    #[tokio::test]
    async fn a_panic_becomes_the_contracts_500() {
        let panics = |_: Request<()>| async {
            panic!("a bug");
            #[allow(unreachable_code)]
            Ok::<Response<String>, Infallible>(Response::default())
        };
        let response = ServiceBuilder::new().layer(CatchPanicLayer).service_fn(panics).oneshot(request("POST", None));
        let response = response.await.unwrap_or_default();
        assert_eq!(response.status(), 500);
        assert!(response.body().contains("internal_error"), "{}", response.body());
        // A panic in the call itself, before any future exists.
        struct PanicsAtCall;
        impl Service<Request<()>> for PanicsAtCall {
            type Response = Response<String>;
            type Error = Infallible;
            type Future = std::future::Ready<Result<Response<String>, Infallible>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Request<()>) -> Self::Future {
                panic!("a bug before the future")
            }
        }
        let response = CatchPanicLayer.layer(PanicsAtCall).oneshot(request("POST", None)).await.unwrap_or_default();
        assert_eq!(response.status(), 500);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_answers_503_in_time_and_only_with_a_deadline() {
        let slow = |_: Request<()>| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, Infallible>(Response::new("late".to_owned()))
        };
        let limited = ServiceBuilder::new().layer(DeadlineLayer).service_fn(slow);
        let started = tokio::time::Instant::now();
        let response = limited.oneshot(request("POST", Some(TimeLeft(Duration::from_secs(2))))).await;
        let response = response.unwrap_or_default();
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(started.elapsed(), Duration::from_secs(2), "at the deadline, not after the backend");
        let unlimited = ServiceBuilder::new().layer(DeadlineLayer).service_fn(slow);
        let response = unlimited.oneshot(request("POST", None)).await.unwrap_or_default();
        assert_eq!(response.body(), "late", "no deadline: the answer, however slow");
    }
}
