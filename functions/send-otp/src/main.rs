//! The `send-otp` Lambda function: wires settings and adapters once per cold start, then
//! hands every API Gateway request to the shared handler.

use otp_core::http::{self, lambda};

// One thread: Lambda hands a function one request at a time, and the start-up's waits
// (secrets, Firestore, Twilio) overlap on one thread as well as on several. Worker threads
// would cost about 0.5 ms of init CPU (docs/PERFORMANCE.md), 7 ms at the 128 MB share.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run(http::SEND_OTP_FUNCTION).await
}
