//! The bot challenge adapter against the fake siteverify over real HTTP, for each
//! provider: what passes, what is rejected (the client's fault), what is unavailable
//! (the provider's or our configuration's), what is sent, and what is logged.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use fake_captcha::{FakeCaptcha, Fault, Flavor, Pass};
use otp_core::adapters::captcha::{CaptchaProvider, ChallengeConfig, SiteVerify};
use otp_core::config::EndpointUrl;
use otp_core::ports::{BotChallenge, ChallengeError};
use otp_testkit::{CAPTCHA_SECRET, capture_logs};
use secrecy::SecretString;
use serde_json::Value;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 77));
const HOST: &str = "app.example";

fn flavor(provider: CaptchaProvider) -> Flavor {
    match provider {
        CaptchaProvider::Turnstile => Flavor::Turnstile,
        CaptchaProvider::Hcaptcha => Flavor::Hcaptcha,
        CaptchaProvider::Recaptcha => Flavor::Recaptcha,
    }
}

/// The adapter for `provider`, pointed at the fake, expecting the hosts of
/// `https://app.example` and `http://localhost:5173`.
fn config(fake: &FakeCaptcha, provider: CaptchaProvider) -> ChallengeConfig {
    let mut config = ChallengeConfig::new(provider, vec![HOST.into(), "localhost".into()]);
    config.verify_url = EndpointUrl::parse(&fake.verify_url(flavor(provider))).expect("the fake's URL is loopback");
    config
}

fn challenge(config: ChallengeConfig, secret: &str) -> SiteVerify {
    SiteVerify::new(config, SecretString::from(secret)).expect("a fit config")
}

fn rejected(reasons: &[&str]) -> Result<(), ChallengeError> {
    Err(ChallengeError::Rejected { reasons: reasons.iter().map(|r| (*r).to_owned()).collect() })
}

fn is_unavailable(outcome: &Result<(), ChallengeError>) -> bool {
    matches!(outcome, Err(ChallengeError::Unavailable(_)))
}

#[tokio::test]
async fn each_provider_passes_a_good_token_and_gets_the_form_it_expects() {
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    for provider in CaptchaProvider::ALL {
        let check = challenge(config(&fake, provider), CAPTCHA_SECRET);
        let token = format!("pass:{HOST}");
        assert_eq!(check.check(&token, CLIENT).await, Ok(()), "{provider}");
        // Where the answer leaves the hostname to the fake's default (localhost).
        assert_eq!(check.check("pass", CLIENT).await, Ok(()), "{provider}");
    }
    let calls = fake.calls();
    assert_eq!(calls.len(), 6);
    for (call, provider) in calls.iter().step_by(2).zip(CaptchaProvider::ALL) {
        assert_eq!(call.flavor, flavor(provider));
        assert!(call.form_encoded, "{provider}: a form body");
        assert!(call.secret_ok, "{provider}: the secret sent");
        assert_eq!(call.response.as_deref(), Some(format!("pass:{HOST}").as_str()), "{provider}: the token sent");
        assert_eq!(call.remoteip.as_deref(), Some("203.0.113.77"), "{provider}: the client IP sent");
        assert_eq!((call.status, call.success), (200, Some(true)));
    }
}

#[tokio::test]
async fn the_remoteip_sent_is_the_client_ip() {
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    let check = challenge(config(&fake, CaptchaProvider::Turnstile), CAPTCHA_SECRET);
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x42));
    let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 9).to_ipv6_mapped());
    for (i, ip) in [CLIENT, v6, mapped].into_iter().enumerate() {
        assert_eq!(check.check(&format!("pass:{HOST}:a{i}:0.9"), ip).await, Ok(()));
    }
    let sent: Vec<_> = fake.calls().into_iter().map(|c| c.remoteip).collect();
    // An IPv4 client seen through an IPv6 socket is sent as the IPv4 address it is.
    assert_eq!(sent, [Some("203.0.113.77".into()), Some("2001:db8::42".into()), Some("198.51.100.9".into())]);
}

#[tokio::test]
async fn a_token_the_provider_refuses_is_rejected() {
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    for provider in CaptchaProvider::ALL {
        let check = challenge(config(&fake, provider), CAPTCHA_SECRET);
        assert_eq!(check.check("not-a-real-token", CLIENT).await, rejected(&["invalid-input-response"]), "{provider}");
    }
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn a_token_used_twice_is_rejected_the_second_time() {
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    for (provider, code) in [
        (CaptchaProvider::Turnstile, "timeout-or-duplicate"),
        (CaptchaProvider::Hcaptcha, "already-seen-response"),
        (CaptchaProvider::Recaptcha, "timeout-or-duplicate"),
    ] {
        let check = challenge(config(&fake, provider), CAPTCHA_SECRET);
        let token = Pass::token(HOST, "send_otp", 0.8);
        fake.reset();
        assert_eq!(check.check(&token, CLIENT).await, Ok(()), "{provider}");
        assert_eq!(check.check(&token, CLIENT).await, rejected(&[code]), "{provider}");
    }
}

#[tokio::test]
async fn a_token_solved_on_another_site_is_rejected() {
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    for provider in CaptchaProvider::ALL {
        let check = challenge(config(&fake, provider), CAPTCHA_SECRET);
        let token = Pass::token("evil.example", "send_otp", 0.9);
        assert_eq!(check.check(&token, CLIENT).await, rejected(&["hostname-mismatch"]), "{provider}");
        fake.reset();
        // Hostnames compare without regard to case.
        let token = Pass::token("App.Example", "send_otp", 0.9);
        assert_eq!(check.check(&token, CLIENT).await, Ok(()), "{provider}");
    }
}

#[tokio::test]
async fn recaptcha_checks_the_action_and_the_score() {
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    let check = challenge(config(&fake, CaptchaProvider::Recaptcha), CAPTCHA_SECRET);
    let expect = |token: String, outcome: Result<(), ChallengeError>| (token, outcome);
    for (token, outcome) in [
        expect(Pass::token(HOST, "send_otp", 0.5), Ok(())),
        expect(Pass::token(HOST, "send_otp", 0.49), rejected(&["score-too-low"])),
        expect(Pass::token(HOST, "send_otp", 0.0), rejected(&["score-too-low"])),
        expect(Pass::token(HOST, "login", 0.9), rejected(&["action-mismatch"])),
        expect(Pass::token(HOST, "login", 0.1), rejected(&["score-too-low", "action-mismatch"])),
        expect(
            Pass::token("evil.example", "login", 0.1),
            rejected(&["hostname-mismatch", "score-too-low", "action-mismatch"]),
        ),
    ] {
        assert_eq!(check.check(&token, CLIENT).await, outcome, "{token}");
    }

    // A stricter threshold, set by configuration.
    let strict =
        challenge(ChallengeConfig { min_score: 0.8, ..config(&fake, CaptchaProvider::Recaptcha) }, CAPTCHA_SECRET);
    assert_eq!(strict.check(&Pass::token(HOST, "send_otp", 0.7), CLIENT).await, rejected(&["score-too-low"]));
    assert_eq!(strict.check(&Pass::token(HOST, "send_otp", 0.8), CLIENT).await, Ok(()));
}

#[tokio::test]
async fn turnstile_and_hcaptcha_are_not_judged_on_action_or_score_unless_configured() {
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    for provider in [CaptchaProvider::Turnstile, CaptchaProvider::Hcaptcha] {
        let check = challenge(config(&fake, provider), CAPTCHA_SECRET);
        assert_eq!(check.check(&Pass::token(HOST, "login", 0.1), CLIENT).await, Ok(()), "{provider}");
        fake.reset();
    }
    // OTP_CAPTCHA_ACTION with Turnstile: the widget's action must be the configured one.
    let strict =
        ChallengeConfig { expected_action: Some("send_otp".into()), ..config(&fake, CaptchaProvider::Turnstile) };
    let check = challenge(strict, CAPTCHA_SECRET);
    assert_eq!(check.check(&Pass::token(HOST, "send_otp", 0.9), CLIENT).await, Ok(()));
    assert_eq!(check.check(&Pass::token(HOST, "login", 0.9), CLIENT).await, rejected(&["action-mismatch"]));
    // A widget rendered without an action reports an empty one.
    assert_eq!(check.check(&format!("pass:{HOST}"), CLIENT).await, rejected(&["action-mismatch"]));
}

#[tokio::test]
async fn an_answer_without_a_hostname_is_refused_by_every_provider() {
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    for provider in CaptchaProvider::ALL {
        let check = challenge(config(&fake, provider), CAPTCHA_SECRET);
        let token = Pass::token(fake_captcha::NO_HOSTNAME, "send_otp", 0.9);
        assert_eq!(check.check(&token, CLIENT).await, rejected(&["hostname-missing"]), "{provider}");
        fake.reset();
    }
}

#[tokio::test]
async fn a_wrong_secret_is_our_fault_unavailable_and_logged_as_an_error() {
    let (logs, _guard) = capture_logs("info");
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    for provider in CaptchaProvider::ALL {
        let check = challenge(config(&fake, provider), "a-wrong-secret");
        let outcome = check.check(&format!("pass:{HOST}"), CLIENT).await;
        assert!(is_unavailable(&outcome), "{provider}: {outcome:?}");
    }
    assert!(fake.calls().iter().all(|c| !c.secret_ok && c.error_codes == ["invalid-input-secret"]));
    let lines = json_lines(&logs.text());
    let errors: Vec<_> = lines.iter().filter(|l| l["fields"]["event"] == "captcha_misconfigured").collect();
    assert_eq!(errors.len(), 3, "{lines:#?}");
    assert!(errors.iter().all(|l| l["level"] == "ERROR"), "{errors:#?}");
    assert!(errors.iter().any(|l| l["fields"]["provider"] == "hcaptcha"), "{errors:#?}");
}

#[tokio::test]
async fn a_slow_provider_is_unavailable_within_the_timeout() {
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    let quick = ChallengeConfig { timeout: Duration::from_millis(500), ..config(&fake, CaptchaProvider::Hcaptcha) };
    let check = challenge(quick, CAPTCHA_SECRET);
    fake.push_faults([Fault::Slow { delay_ms: 30_000 }]);
    let started = Instant::now();
    let outcome = check.check(&format!("pass:{HOST}"), CLIENT).await;
    assert!(is_unavailable(&outcome), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "gave up after {:?}", started.elapsed());
    // The token may have reached the provider: no second call.
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn the_default_timeout_bounds_a_slow_provider_too() {
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    let check = challenge(config(&fake, CaptchaProvider::Turnstile), CAPTCHA_SECRET);
    fake.push_faults([Fault::Slow { delay_ms: 60_000 }]);
    let started = Instant::now();
    assert!(is_unavailable(&check.check("pass", CLIENT).await));
    assert!(started.elapsed() < Duration::from_secs(20), "gave up after {:?}", started.elapsed());
}

#[tokio::test]
async fn server_errors_and_unreadable_answers_are_unavailable_and_not_retried() {
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    for provider in CaptchaProvider::ALL {
        let check = challenge(config(&fake, provider), CAPTCHA_SECRET);
        for fault in [Fault::Status { status: 500 }, Fault::Status { status: 503 }, Fault::NotJson] {
            fake.reset();
            fake.push_faults([fault]);
            let outcome = check.check(&format!("pass:{HOST}"), CLIENT).await;
            assert!(is_unavailable(&outcome), "{provider} {fault:?}: {outcome:?}");
            assert_eq!(fake.calls().len(), 1, "{provider} {fault:?}: one call only");
        }
    }
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable_after_one_retry() {
    let (logs, _guard) = capture_logs("info");
    // A port where nothing listens.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = ChallengeConfig::new(CaptchaProvider::Recaptcha, vec![HOST.into()]);
    config.verify_url = EndpointUrl::parse(&format!("http://127.0.0.1:{port}/recaptcha/api/siteverify")).unwrap();
    let check = challenge(config, CAPTCHA_SECRET);
    let started = Instant::now();
    let outcome = check.check("pass", CLIENT).await;
    assert!(is_unavailable(&outcome), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let lines = json_lines(&logs.text());
    let count = |event: &str| lines.iter().filter(|l| l["fields"]["event"] == event).count();
    assert_eq!(count("captcha_retry"), 1, "{lines:#?}");
    assert_eq!(count("captcha_unavailable"), 1, "{lines:#?}");
}

#[tokio::test]
async fn an_empty_or_oversized_token_is_rejected_without_a_call() {
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    let check = challenge(config(&fake, CaptchaProvider::Turnstile), CAPTCHA_SECRET);
    assert_eq!(check.check("", CLIENT).await, rejected(&["missing-input-response"]));
    assert_eq!(check.check(&"x".repeat(9000), CLIENT).await, rejected(&["token-too-long"]));
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn logs_name_the_provider_and_outcome_but_never_the_token_secret_or_ip() {
    // Debug: stricter than production's info, so a leak at a lower level is caught too.
    let (logs, _guard) = capture_logs("debug");
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.unwrap();
    let passing = Pass::token(HOST, "send_otp", 0.93);
    let low = Pass::token(HOST, "send_otp", 0.17);
    let refused = "tok-d41d8cd98f00b204e9800998ecf8427e";
    for provider in CaptchaProvider::ALL {
        fake.reset();
        let check = challenge(config(&fake, provider), CAPTCHA_SECRET);
        assert_eq!(check.check(&passing, CLIENT).await, Ok(()));
        assert!(check.check(&passing, CLIENT).await.is_err(), "used twice");
        assert!(check.check(refused, CLIENT).await.is_err());
        let _ = check.check(&low, CLIENT).await;
        fake.push_faults([Fault::Status { status: 500 }]);
        assert!(is_unavailable(&check.check(refused, CLIENT).await));
        let wrong_secret = challenge(config(&fake, provider), "wrong-secret-5b6c7d8e");
        assert!(is_unavailable(&wrong_secret.check(refused, CLIENT).await));
    }

    let text = logs.text();
    let lines = json_lines(&text);
    let events = |name: &str| lines.iter().filter(|l| l["fields"]["event"] == name).collect::<Vec<_>>();
    for name in ["captcha_passed", "captcha_rejected", "captcha_unavailable", "captcha_misconfigured"] {
        assert!(!events(name).is_empty(), "{name} in:\n{text}");
    }
    let rejected = events("captcha_rejected");
    assert!(
        rejected.iter().any(|l| l["fields"]["reasons"].as_str().is_some_and(|r| r.contains("invalid-input-response"))),
        "the provider's error codes are logged:\n{text}"
    );
    assert!(events("captcha_passed").iter().all(|l| l["fields"]["provider"].is_string()));
    for (what, value) in [
        ("the passing token", passing.as_str()),
        ("the low-score token", low.as_str()),
        ("the refused token", refused),
        ("the secret", CAPTCHA_SECRET),
        ("the wrong secret", "wrong-secret-5b6c7d8e"),
        ("the client IP", "203.0.113.77"),
    ] {
        assert!(!text.contains(value), "{what} ({value}) is in the logs:\n{text}");
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect()
}
