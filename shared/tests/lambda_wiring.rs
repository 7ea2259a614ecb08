//! `wiring::lambda_api` as a Lambda cold start builds it, from the environment alone:
//! secrets from SSM (moto) under `OTP_SSM_PREFIX` with one value overridden by the
//! environment, and `OTP_SMS=twilio` sending through the fake Twilio. Its own test
//! binary with one test, because it sets process-wide environment variables.

use fake_twilio::FakeTwilio;
use otp_core::Endpoint;
use otp_testkit::moto::{self, client, prefix, put_all};
use otp_testkit::{ACCOUNT_SID, AUTH_TOKEN, CLIENT_IP, code_in, post};
use serde_json::json;

#[tokio::test]
async fn lambda_api_reads_ssm_and_sends_through_twilio() {
    let Some(endpoint) = moto::endpoint() else { return };
    let prefix = prefix("lambda-wiring");
    put_all(&client(&endpoint, None), &prefix).await;
    let fake = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await.expect("fake Twilio starts");
    let env_from = "+15005550007";
    for (name, value) in [
        ("OTP_SSM_PREFIX", prefix.as_str()),
        ("OTP_SMS", "twilio"),
        ("TWILIO_API_BASE", &fake.url()),
        ("TWILIO_FROM", env_from),
        // The SDK's default configuration, as Lambda provides it, pointed at moto.
        ("AWS_ENDPOINT_URL_SSM", &endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ] {
        // SAFETY: the only test of this binary sets these before anything reads the
        // environment; no other thread of the process touches it meanwhile.
        unsafe { std::env::set_var(name, value) };
    }
    for name in ["OTP_SESSION_SECRET", "OTP_CODE_PEPPER", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "AWS_PROFILE"] {
        // SAFETY: as above.
        unsafe { std::env::remove_var(name) };
    }

    // verify-otp sends nothing, so it opens no connection to Twilio.
    let verify_api = otp_core::wiring::lambda_api(otp_core::http::VERIFY_OTP_FUNCTION).await;
    assert!(verify_api.service().is_some(), "verify-otp starts");
    assert_eq!((fake.account_fetches().len(), fake.connections()), (0, 0), "verify-otp left Twilio alone");
    // send-otp opens it at start-up, with the credentials from SSM, and sends over it.
    let api = otp_core::wiring::lambda_api(otp_core::http::SEND_OTP_FUNCTION).await;
    assert!(api.service().is_some(), "the service starts");
    assert_eq!(fake.account_fetches(), [200], "the Twilio connection was opened and the credentials accepted");
    let reply = post(&api, Endpoint::SendOtp, json!({ "phone": "+16505550100" }), CLIENT_IP).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(fake.connections(), 1, "the first send used the connection opened at start-up");
    let messages = fake.messages();
    assert_eq!(messages.len(), 1, "sent through Twilio with the credentials from SSM");
    assert_eq!(messages[0].from.as_deref(), Some(env_from), "TWILIO_FROM overrides the SSM sender");
    let code = code_in(&messages[0].body);
    // Each function asked SSM for its own secrets only (its role may read no others):
    // send-otp holds no signing key, so it cannot sign a session token...
    let reply = post(&api, Endpoint::VerifyOtp, json!({ "phone": "+16505550100", "code": code }), CLIENT_IP).await;
    assert_eq!((reply.status, reply.error_code()), (503, "service_unavailable"), "{}", reply.body);
    // ...and verify-otp publishes the one from SSM.
    let jwks = otp_testkit::request(&verify_api, Endpoint::Jwks, "GET", None, Vec::new(), CLIENT_IP).await;
    assert_eq!(jwks.status, 200, "{}", jwks.body);
    assert_eq!(jwks.body["keys"].as_array().map(Vec::len), Some(1), "{}", jwks.body);
}
