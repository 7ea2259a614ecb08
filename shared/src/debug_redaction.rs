//! Debug output reaches logs (`?value` in a `tracing` call, a panic message): every type
//! that holds a phone number, a client address, a code or a secret prints none of them.

use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::SecretString;

use crate::adapters::captcha::{CaptchaProvider, ChallengeConfig, SiteVerify};
use crate::adapters::firestore::FirestoreAuth;
use crate::adapters::outbox::OutboxEntry;
use crate::config::Settings;
use crate::domain::Channel;
use crate::domain::message::{voice_script, whatsapp_template};
use crate::domain::token::{AuthMethod, TokenKeys};
use crate::domain::{CodeLength, E164Phone, OtpCode, Pepper, SessionTokenIssuer};
use crate::ports::{CodeContent, CodeMessage, SecretSource};
use crate::secrets::env::EnvSecrets;
use crate::service::{Approval, Caller, SendAccepted};

const NUMBER: &str = "+14155550123";
const NATIONAL: &str = "4155550123";
const CODE: &str = "739164";
const ADDRESS: &str = "203.0.113.77";
const SECRET: &str = "s3cret-value-that-must-never-be-printed";

/// `debug` shows none of `hidden`, and is not empty (a type that prints nothing at all
/// would pass the first check without saying what it is).
fn assert_hides(what: &str, debug: String, hidden: &[&str]) {
    assert!(debug.len() > 3, "{what}: {debug:?}");
    for value in hidden {
        assert!(!debug.contains(value), "{what} prints {value:?}: {debug}");
    }
}

fn phone() -> E164Phone {
    E164Phone::parse(NUMBER, None).expect("a valid US number")
}

fn code() -> OtpCode {
    OtpCode::parse(CODE, CodeLength::new(6).expect("6 digits")).expect("six digits")
}

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_532_400, 0).unwrap_or_default()
}

#[test]
fn numbers_codes_and_addresses_are_not_printed() {
    assert_hides("E164Phone", format!("{:?}", phone()), &[NATIONAL]);
    assert_hides("OtpCode", format!("{:?}", code()), &[CODE]);
    let body = format!("Your code is {CODE}.");
    assert_hides(
        "CodeMessage",
        format!("{:?}", CodeMessage { to: NUMBER.into(), content: CodeContent::Sms { body: body.clone() } }),
        &[NATIONAL, CODE],
    );
    // A call says the code in words: none of them may show.
    let script = voice_script(Some("en"), &code());
    let words = ["seven", "three", "nine", "one", "six", "four"];
    assert_hides("VoiceScript", format!("{script:?}"), &words);
    let call = CodeMessage { to: NUMBER.into(), content: CodeContent::Voice(script) };
    assert_hides("CodeMessage (voice)", format!("{call:?}"), &[&[NATIONAL, CODE][..], &words[..]].concat());
    let template = whatsapp_template(Some("pt"), &code());
    assert_hides("WhatsappTemplate", format!("{template:?}"), &[CODE]);
    let whatsapp = CodeMessage { to: NUMBER.into(), content: CodeContent::Whatsapp(template) };
    assert_hides("CodeMessage (WhatsApp)", format!("{whatsapp:?}"), &[NATIONAL, CODE]);
    let entry = OutboxEntry { to: NUMBER.into(), channel: Channel::Sms, body, sent_at: at() };
    assert_hides("OutboxEntry", format!("{entry:?}"), &[NATIONAL, CODE]);
    let ip = IpAddr::V4(ADDRESS.parse::<Ipv4Addr>().expect("an address"));
    assert_hides("Caller", format!("{:?}", Caller { client: ADDRESS, ip: Some(ip) }), &[ADDRESS]);
    let accepted = SendAccepted { to: phone(), channel: Channel::Voice, expires_at: at(), resend_after_seconds: 60 };
    assert_hides("SendAccepted", format!("{accepted:?}"), &[NATIONAL]);
}

#[test]
fn keys_hashes_and_tokens_are_not_printed() {
    let pepper = Pepper::new(SECRET.as_bytes().to_vec());
    assert_hides("Pepper", format!("{pepper:?}"), &[SECRET]);
    let hash = pepper.hash_code(NUMBER, &code());
    assert_hides("CodeHash", format!("{hash:?}"), &[CODE]);
    let pem = TokenKeys::generate_pem();
    // The key's base64 body, line by line: no line of it may show.
    let key_lines: Vec<&str> = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let keys = std::sync::Arc::new(TokenKeys::parse(&pem).expect("a generated key"));
    assert_hides("TokenKeys", format!("{keys:?}"), &key_lines);
    let issuer = SessionTokenIssuer::new(keys, "otp-service", "clients", TimeDelta::hours(1));
    assert_hides("SessionTokenIssuer", format!("{issuer:?}"), &key_lines);
    let token = issuer.issue(&phone(), AuthMethod::Sms, at()).expect("a token");
    let jwt = token.token.clone();
    assert_hides("SessionToken", format!("{token:?}"), &[&jwt, NATIONAL]);
    // Issued now, so that it decodes (unexpired).
    let fresh = issuer.issue(&phone(), AuthMethod::Sms, Utc::now()).expect("a token");
    let claims = issuer.decode(&fresh.token).expect("claims");
    assert_hides("SessionClaims", format!("{claims:?}"), &[NATIONAL, &claims.jti]);
    let devices = crate::domain::device::DeviceTokens::new(SECRET.as_bytes().to_vec());
    assert_hides("DeviceTokens", format!("{devices:?}"), &[SECRET]);
    let device = devices.issue(&phone(), at());
    let id = hex::encode(device.device.as_bytes());
    assert_hides("IssuedDeviceToken", format!("{device:?}"), &[&device.token, &id, NATIONAL]);
    assert_hides("DeviceId", format!("{:?}", device.device), &[&id]);
    let approval = Approval { to: phone(), token, device_token: device.clone() };
    assert_hides("Approval", format!("{approval:?}"), &[&jwt, &device.token, &id, NATIONAL]);
}

#[tokio::test]
async fn secrets_and_settings_are_not_printed() {
    let pem = TokenKeys::generate_pem();
    let key_lines: Vec<&str> = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let lookup = |name: &str| match name {
        "OTP_SESSION_SECRET"
        | "OTP_CODE_PEPPER"
        | "TWILIO_AUTH_TOKEN"
        | "OTP_CAPTCHA_SECRET"
        | "OTP_GCP_CREDENTIALS" => Some(format!("{SECRET}-{name}")),
        "OTP_TOKEN_SIGNING_KEYS" => Some(pem.clone()),
        "TWILIO_ACCOUNT_SID" => Some("AC0123456789abcdef0123456789abcdef".into()),
        "TWILIO_FROM" => Some("+15005550006".into()),
        _ => None,
    };
    let env = EnvSecrets::from_lookup(lookup);
    assert_hides("EnvSecrets", format!("{env:?}"), &[SECRET]);
    assert_hides("EnvSecrets", format!("{env:?}"), &key_lines);
    let secrets = env.load().await.expect("every secret given");
    assert_hides("Secrets", format!("{secrets:?}"), &[SECRET]);
    assert_hides("Secrets", format!("{secrets:?}"), &key_lines);
    assert_hides("ProviderSecrets", format!("{:?}", secrets.providers), &[SECRET]);
    let twilio =
        crate::adapters::twilio::TwilioSecrets::from_providers(&secrets.providers).expect("the Twilio secrets");
    assert_hides("TwilioSecrets", format!("{twilio:?}"), &[SECRET]);

    let auth = FirestoreAuth::CredentialsJson(SecretString::from(SECRET));
    assert_hides("FirestoreAuth", format!("{auth:?}"), &[SECRET]);
    let config = ChallengeConfig::new(CaptchaProvider::Turnstile, vec!["app.example".into()]);
    let site_verify = SiteVerify::new(config, SecretString::from(SECRET)).expect("a challenge");
    assert_hides("SiteVerify", format!("{site_verify:?}"), &[SECRET]);

    let test_numbers = format!("{NUMBER}={CODE}");
    let settings = Settings::from_lookup(|name| (name == "OTP_TEST_NUMBERS").then(|| test_numbers.clone()))
        .expect("valid settings");
    assert_hides("Settings", format!("{settings:?}"), &[NATIONAL, CODE]);
}
