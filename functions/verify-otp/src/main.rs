//! The `verify-otp` Lambda function: wires settings and adapters once per cold start, then
//! hands every API Gateway request to the shared handler.

use lambda_http::{Error, Request, service_fn};
use otp_core::Endpoint;
use otp_core::http::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    otp_core::telemetry::init(true);
    let api = otp_core::wiring::lambda_api(Endpoint::VerifyOtp).await;
    let api = &api;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(lambda::handle(api, Endpoint::VerifyOtp, request).await)
    }))
    .await
}
