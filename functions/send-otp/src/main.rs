//! The `send-otp` Lambda function: wires settings and adapters once per cold start, then
//! hands every API Gateway request to the shared handler.

use lambda_http::{Error, Request, service_fn};
use otp_core::http::{self, lambda};

// One thread: Lambda hands a function one request at a time, and the start-up's waits
// (secrets, Firestore, Twilio) overlap on one thread as well as on several. Worker threads
// would cost about 0.5 ms of init CPU (docs/PERFORMANCE.md), 7 ms at the 128 MB share.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    otp_core::telemetry::init(true);
    let api = otp_core::wiring::lambda_api(http::SEND_OTP_FUNCTION).await;
    let api = &api;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(lambda::handle(api, http::SEND_OTP_FUNCTION, request).await)
    }))
    .await
}
