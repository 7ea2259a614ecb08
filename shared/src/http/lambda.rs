//! The Lambda side of the edge: API Gateway's request in, the same handler, its
//! response out. The client IP is `requestContext.identity.sourceIp`, never a header.

use std::net::IpAddr;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use super::{Api, Endpoint};

/// The caller's address as API Gateway saw it.
pub fn source_ip(request: &Request) -> Option<IpAddr> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(context) => context.identity.source_ip.as_deref()?.parse().ok(),
        // Only REST API events reach these functions.
        _ => None,
    }
}

/// Answers one API Gateway request to `endpoint`; never fails.
pub async fn handle(api: &Api, endpoint: Endpoint, request: Request) -> Response<Body> {
    let ip = source_ip(&request);
    api.handle(endpoint, &request, ip).await.map(Body::from)
}
