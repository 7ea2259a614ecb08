//! The Lambda side of the edge: API Gateway's request in, the same handler, its
//! response out. The client IP is `requestContext.identity.sourceIp`, never a header.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use super::{Api, Endpoint};

/// Kept free before the function's deadline, to answer 503 in time ourselves: a function
/// that runs out of time gets API Gateway's bare 5xx instead of a contract answer.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// The caller's address as API Gateway saw it.
pub fn source_ip(request: &Request) -> Option<IpAddr> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(context) => context.identity.source_ip.as_deref()?.parse().ok(),
        // Only REST API events reach these functions.
        _ => None,
    }
}

/// Time left before the invocation's deadline, less the margin; `None` without a deadline.
fn time_left(request: &Request) -> Option<Duration> {
    let deadline_ms = request.lambda_context_ref()?.deadline;
    if deadline_ms == 0 {
        return None;
    }
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis();
    let left = Duration::from_millis(u64::try_from(u128::from(deadline_ms).saturating_sub(now_ms)).ok()?);
    Some(left.saturating_sub(DEADLINE_MARGIN))
}

/// Which of a function's `endpoints` a request is for: by its path as API Gateway received
/// it (no stage), else the first, the function's main route (API Gateway sends a function
/// only the paths the template routes to it).
pub fn endpoint_for(endpoints: &[Endpoint], request: &Request) -> Endpoint {
    let path = Endpoint::from_path(request.raw_http_path());
    let first = endpoints.first().copied().unwrap_or(Endpoint::SendOtp);
    endpoints.iter().copied().find(|endpoint| Some(*endpoint) == path).unwrap_or(first)
}

/// Answers one API Gateway request to one of `endpoints` (a function's routes); never
/// fails. Slow backends (store, SMS provider) that would outlast the invocation get a `503`
/// just before its deadline (`layers::DeadlineLayer`).
pub async fn handle(api: &Api, endpoints: &[Endpoint], request: Request) -> Response<Body> {
    let endpoint = endpoint_for(endpoints, &request);
    let ip = source_ip(&request);
    api.handle_within(endpoint, &request, ip, time_left(&request)).await.map(Body::from)
}

/// A Lambda function serving `endpoints` (its routes in template.yaml): the one body of
/// both binaries. Logs as JSON, wires the service once per cold start, then answers every
/// event.
pub async fn run(endpoints: &'static [Endpoint]) -> Result<(), lambda_http::Error> {
    crate::telemetry::init(true);
    let api = crate::wiring::lambda_api(endpoints).await;
    let api = &api;
    lambda_http::run(lambda_http::service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(handle(api, endpoints, request).await)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Context;

    fn request_with_deadline(deadline_ms: u64) -> Request {
        let mut context = Context::default();
        context.deadline = deadline_ms;
        let request = http::Request::builder()
            .method("POST")
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap_or_default();
        request.with_lambda_context(context)
    }

    #[test]
    fn time_left_follows_the_deadline() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let left = time_left(&request_with_deadline(now_ms + 3_000)).expect("a deadline");
        assert!(left <= Duration::from_millis(2_500) && left > Duration::from_millis(2_000), "{left:?}");
        assert_eq!(time_left(&request_with_deadline(now_ms.saturating_sub(10))), Some(Duration::ZERO));
        assert_eq!(time_left(&request_with_deadline(0)), None);
    }
}
