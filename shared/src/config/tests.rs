use super::*;
use std::collections::HashMap;

fn with(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults_match_the_contract() {
    let s = Settings::default();
    assert_eq!(s.service.code_length.get(), 6);
    assert_eq!(s.service.policy.code_ttl, TimeDelta::seconds(600));
    assert_eq!(s.service.policy.max_attempts, 5);
    assert_eq!(s.service.policy.resend_cooldown, TimeDelta::seconds(60));
    assert_eq!(s.service.policy.per_number, WindowLimit { max: 5, window: TimeDelta::seconds(3600) });
    assert_eq!(s.service.policy.per_client, WindowLimit { max: 5, window: TimeDelta::seconds(900) });
    assert_eq!(s.service.policy.per_range, None, "the per-range limit is off by default");
    assert_eq!(s.service.range_digits, 3);
    assert_eq!(s.service.token_ttl, TimeDelta::seconds(3600));
    assert_eq!(s.service.token_issuer, "otp-service");
    assert_eq!(s.service.token_audience, "otp-service-clients");
    assert_eq!(s.service.allowed_countries, CountryAllowList::default());
    assert_eq!(s.allowed_origins, vec!["http://localhost:5173".to_string()]);
    assert_eq!((s.store, s.sms), (StoreKind::Memory, SmsKind::Outbox));
    assert_eq!(
        s.firestore,
        FirestoreSettings {
            project_id: None,
            database_id: "(default)".into(),
            collection_prefix: "otp_".into(),
            emulator_host: None,
        }
    );
}

#[test]
fn every_variable_is_read() {
    let s = with(&[
        ("OTP_CODE_LENGTH", "8"),
        ("OTP_CODE_TTL_SECONDS", "120"),
        ("OTP_MAX_ATTEMPTS", "3"),
        ("OTP_RESEND_COOLDOWN_SECONDS", "0"),
        ("OTP_SENDS_PER_NUMBER", "2"),
        ("OTP_SENDS_PER_NUMBER_WINDOW_SECONDS", "60"),
        ("OTP_SENDS_PER_IP", "9"),
        ("OTP_SENDS_PER_IP_WINDOW_SECONDS", "30"),
        ("OTP_SENDS_PER_RANGE", "40"),
        ("OTP_SENDS_PER_RANGE_WINDOW_SECONDS", "7200"),
        ("OTP_RANGE_DIGITS", "4"),
        ("OTP_TOKEN_TTL_SECONDS", "90"),
        ("OTP_TOKEN_ISSUER", "acme"),
        ("OTP_TOKEN_AUDIENCE", "acme-backends"),
        ("OTP_ALLOWED_COUNTRIES", "us,gb"),
        ("OTP_ALLOWED_ORIGINS", "https://a.example, https://b.example/"),
        ("OTP_WEBOTP_DOMAIN", "a.example"),
        ("OTP_STORE", "firestore"),
        ("OTP_FIRESTORE_PROJECT_ID", "acme-prod"),
        ("OTP_FIRESTORE_DATABASE_ID", "otp"),
        ("OTP_FIRESTORE_COLLECTION_PREFIX", "staging_"),
        ("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8080"),
        ("OTP_SMS", "twilio"),
        ("TWILIO_API_BASE", "http://127.1.2.3:3002/"),
        ("OTP_CAPTCHA", "recaptcha"),
        ("OTP_CAPTCHA_VERIFY_URL", "http://localhost:3003/recaptcha/api/siteverify"),
        ("OTP_CAPTCHA_ACTION", "login"),
        ("OTP_CAPTCHA_MIN_SCORE", "0.7"),
        ("PORT", "4000"),
        ("OTP_DEMO_DIR", "/srv/demo"),
    ])
    .unwrap();
    assert_eq!((s.local_port, s.local_demo_dir.as_deref()), (4000, Some(std::path::Path::new("/srv/demo"))));
    assert_eq!(s.twilio_api_base.as_ref().map(EndpointUrl::base), Some("http://127.1.2.3:3002"));
    let captcha = s.captcha.as_ref().expect("a challenge");
    assert_eq!(captcha.provider, CaptchaProvider::Recaptcha);
    assert_eq!(captcha.verify_url.as_str(), "http://localhost:3003/recaptcha/api/siteverify");
    assert_eq!((captcha.expected_action.as_deref(), captcha.min_score.get()), (Some("login"), 0.7));
    assert_eq!(s.service.code_length.get(), 8);
    assert_eq!(s.service.policy.code_ttl, TimeDelta::seconds(120));
    assert_eq!(s.service.policy.max_attempts, 3);
    assert_eq!(s.service.policy.resend_cooldown, TimeDelta::zero());
    assert_eq!(s.service.policy.per_number, WindowLimit { max: 2, window: TimeDelta::seconds(60) });
    assert_eq!(s.service.policy.per_client, WindowLimit { max: 9, window: TimeDelta::seconds(30) });
    assert_eq!(s.service.policy.per_range, Some(WindowLimit { max: 40, window: TimeDelta::seconds(7200) }));
    assert_eq!(s.service.range_digits, 4);
    assert_eq!(s.service.token_ttl, TimeDelta::seconds(90));
    assert_eq!(s.service.token_issuer, "acme");
    assert_eq!(s.service.token_audience, "acme-backends");
    assert_eq!(s.service.allowed_countries, CountryAllowList::parse("GB,US").unwrap());
    assert_eq!(s.allowed_origins, vec!["https://a.example", "https://b.example"]);
    assert_eq!(s.service.webotp_domain.as_deref(), Some("a.example"));
    assert_eq!((s.store, s.sms), (StoreKind::Firestore, SmsKind::Twilio));
    assert_eq!(
        s.firestore,
        FirestoreSettings {
            project_id: Some("acme-prod".into()),
            database_id: "otp".into(),
            collection_prefix: "staging_".into(),
            emulator_host: Some("127.0.0.1:8080".into()),
        }
    );
}

#[test]
fn the_per_range_limit_is_off_at_zero_and_capped_like_the_others() {
    assert_eq!(with(&[("OTP_SENDS_PER_RANGE", "0")]).unwrap().service.policy.per_range, None);
    assert_eq!(with(&[("OTP_SENDS_PER_RANGE", " ")]).unwrap().service.policy.per_range, None);
    assert_eq!(
        with(&[("OTP_SENDS_PER_RANGE", "1")]).unwrap().service.policy.per_range,
        Some(WindowLimit { max: 1, window: TimeDelta::seconds(3600) })
    );
    assert_eq!(
        with(&[("OTP_SENDS_PER_RANGE", &MAX_SEND_LIMIT.to_string())]).unwrap().service.policy.per_range,
        Some(WindowLimit { max: MAX_SEND_LIMIT, window: TimeDelta::seconds(3600) })
    );
    assert_eq!(with(&[("OTP_RANGE_DIGITS", "1")]).unwrap().service.range_digits, 1);
    assert_eq!(with(&[("OTP_RANGE_DIGITS", "6")]).unwrap().service.range_digits, 6);
}

#[test]
fn firestore_needs_a_project_id() {
    let err = with(&[("OTP_STORE", "firestore")]).unwrap_err();
    assert_eq!(err.variable, "OTP_FIRESTORE_PROJECT_ID");
    assert!(with(&[("OTP_STORE", "memory")]).is_ok(), "the memory store needs none");
}

#[test]
fn bad_values_name_their_variable() {
    for (name, value) in [
        ("OTP_CODE_LENGTH", "3"),
        ("OTP_CODE_LENGTH", "11"),
        ("OTP_CODE_LENGTH", "six"),
        ("OTP_MAX_ATTEMPTS", "0"),
        ("OTP_CODE_TTL_SECONDS", "-5"),
        ("OTP_CODE_TTL_SECONDS", "99999999999"),
        ("OTP_SENDS_PER_IP", "0"),
        ("OTP_SENDS_PER_IP", "10001"),
        ("OTP_SENDS_PER_NUMBER", "1000000"),
        ("OTP_SENDS_PER_RANGE", "10001"),
        ("OTP_SENDS_PER_RANGE", "-1"),
        ("OTP_SENDS_PER_RANGE", "many"),
        ("OTP_SENDS_PER_RANGE_WINDOW_SECONDS", "0"),
        ("OTP_RANGE_DIGITS", "0"),
        ("OTP_RANGE_DIGITS", "7"),
        ("OTP_RANGE_DIGITS", "300"),
        ("OTP_ALLOWED_COUNTRIES", "US,Atlantis"),
        ("OTP_ALLOWED_ORIGINS", "*"),
        ("OTP_STORE", "redis"),
        ("OTP_FIRESTORE_COLLECTION_PREFIX", "a/b"),
        ("OTP_SMS", "carrier-pigeon"),
        // A bad URL fails as a setting, not as a 503 at the first request.
        ("TWILIO_API_BASE", "http://api.twilio.com"),
        ("TWILIO_API_BASE", "http://127.0.0.1.evil.example"),
        ("TWILIO_API_BASE", "https://user:pass@api.twilio.com"),
    ] {
        let err = with(&[(name, value)]).unwrap_err();
        assert_eq!(err.variable, name, "{name}={value}");
    }
}

#[test]
fn the_captcha_verify_url_is_https_or_loopback() {
    let with_url = |url: &str| with(&[("OTP_CAPTCHA", "hcaptcha"), ("OTP_CAPTCHA_VERIFY_URL", url)]);
    assert!(with_url("https://hcaptcha.example/siteverify").is_ok());
    assert!(with_url("http://127.0.0.1:8000/siteverify").is_ok());
    assert!(with_url("http://[::1]:8000/siteverify").is_ok());
    assert!(with_url("http://localhost:8000/siteverify").is_ok());
    assert_eq!(with_url("http://captcha.example/siteverify").unwrap_err().variable, "OTP_CAPTCHA_VERIFY_URL");
    assert_eq!(with_url("http://127.0.0.1.evil.example/").unwrap_err().variable, "OTP_CAPTCHA_VERIFY_URL");
}

#[test]
fn origins_are_compared_as_browsers_send_them() {
    for (configured, browser) in [
        ("https://App.Example.com/", "https://app.example.com"),
        ("HTTPS://app.example.com:443", "https://app.example.com"),
        ("http://localhost:80", "http://localhost"),
        ("http://localhost:5173", "http://localhost:5173"),
        ("https://app.example.com:8443", "https://app.example.com:8443"),
        ("http://[::1]:3000", "http://[::1]:3000"),
    ] {
        assert_eq!(normalise_origin(configured).as_deref(), Ok(browser), "{configured}");
    }
    let s = with(&[("OTP_ALLOWED_ORIGINS", "https://a.example, https://A.example:443")]).unwrap();
    assert_eq!(s.allowed_origins, vec!["https://a.example"], "duplicates collapse");
}

#[test]
fn the_longest_lifetime_the_settings_accept_is_within_the_texts_checked_bound() {
    // domain::message checks every text up to this lifetime for one segment.
    let mut accepted = 0;
    for seconds in [600_u64, 86_400, 315_360_000, 315_360_001, 599_999_940, 599_999_941, u64::MAX] {
        let value = seconds.to_string();
        let lookup = |name: &str| (name == "OTP_CODE_TTL_SECONDS").then(|| value.clone());
        if let Ok(settings) = Settings::from_lookup(lookup) {
            let minutes = crate::domain::message::ttl_minutes(settings.service.policy.code_ttl);
            assert!(
                minutes <= crate::domain::message::MAX_TTL_MINUTES,
                "{seconds} s is accepted: {minutes} min is beyond the bound"
            );
            accepted += 1;
        }
    }
    assert!(accepted >= 2, "the probes include lifetimes the settings accept");
}

/// The variables named in the second column of README's settings tables.
fn readme_variables() -> std::collections::BTreeSet<String> {
    let readme = include_str!("../../../README.md");
    readme
        .lines()
        .filter(|line| line.starts_with("| "))
        .filter_map(|line| line.split('|').nth(2))
        .flat_map(|cell| cell.split('`').skip(1).step_by(2))
        .filter(|name| {
            name.len() > 2 && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
        .map(str::to_owned)
        .collect()
}

/// Every variable of README's settings tables is read here (but those read elsewhere, named
/// below), and every variable read here is in those tables: a new setting cannot be left out
/// of either, nor a listed one stop being read.
#[test]
fn the_settings_read_exactly_the_variables_readme_lists() {
    // Read by the log subscriber before the settings (telemetry.rs).
    const READ_ELSEWHERE: [&str; 1] = ["RUST_LOG"];
    // Set by Lambda itself, not by anyone configuring the service (README says so in prose).
    const NOT_A_SETTING: [&str; 1] = ["AWS_LAMBDA_FUNCTION_NAME"];
    let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
    // A challenge provider, so that its companions are read too.
    let settings = Settings::from_lookup(|name| {
        read.borrow_mut().insert(name.to_owned());
        (name == "OTP_CAPTCHA").then(|| "recaptcha".to_owned())
    });
    assert!(settings.is_ok(), "{settings:?}");
    let read = read.into_inner();
    let listed = readme_variables();
    assert!(listed.len() > 30, "README's tables were found: {listed:?}");
    // Secrets that README's tables list as settings (`OTP_TEST_NUMBERS`): read with the
    // other secrets (secrets::env, secrets::ssm), never by the settings.
    let secret = |v: &str| crate::secrets::ALL.iter().any(|name| name.env == v);
    let unread: Vec<&String> =
        listed.iter().filter(|v| !read.contains(*v) && !READ_ELSEWHERE.contains(&v.as_str()) && !secret(v)).collect();
    assert!(unread.is_empty(), "README lists settings that are not read: {unread:?}");
    let unlisted: Vec<&String> =
        read.iter().filter(|v| !listed.contains(*v) && !NOT_A_SETTING.contains(&v.as_str())).collect();
    assert!(unlisted.is_empty(), "settings read but not in README's tables: {unlisted:?}");
}

#[test]
fn the_channels_are_sms_by_default_and_whatsapp_needs_its_sender_with_twilio() {
    assert_eq!(Settings::default().service.channels.names(), ["sms"]);
    assert_eq!(Settings::default().twilio_whatsapp, None);
    let s = with(&[("OTP_CHANNELS", "voice,sms")]).unwrap();
    assert_eq!(s.service.channels.names(), ["voice", "sms"]);
    for bad in ["fax", "sms,sms", " , "] {
        assert_eq!(with(&[("OTP_CHANNELS", bad)]).unwrap_err().variable, "OTP_CHANNELS", "{bad:?}");
    }
    let sid = "HX0123456789abcdef0123456789abcdef";
    let whatsapp = [("OTP_CHANNELS", "sms,whatsapp"), ("OTP_SMS", "twilio")];
    assert_eq!(with(&whatsapp).unwrap_err().variable, "TWILIO_WHATSAPP_FROM", "Twilio needs the sender");
    assert!(with(&[("OTP_CHANNELS", "sms,whatsapp")]).is_ok(), "the outbox needs none");
    let mut full = whatsapp.to_vec();
    full.extend([("TWILIO_WHATSAPP_FROM", "whatsapp:+14155550123"), ("TWILIO_WHATSAPP_CONTENT_SID", sid)]);
    let s = with(&full).unwrap();
    assert_eq!(
        s.twilio_whatsapp,
        Some(WhatsappSender { from: "whatsapp:+14155550123".into(), content_sid: sid.into() })
    );
    for (name, value) in [
        ("TWILIO_WHATSAPP_FROM", "+14155550123"),
        ("TWILIO_WHATSAPP_FROM", "whatsapp:14155550123"),
        ("TWILIO_WHATSAPP_FROM", "whatsapp:+1415"),
        ("TWILIO_WHATSAPP_CONTENT_SID", "HX123"),
        ("TWILIO_WHATSAPP_CONTENT_SID", "MG0123456789abcdef0123456789abcdef"),
    ] {
        let mut pairs = full.clone();
        pairs.retain(|(k, _)| *k != name);
        pairs.push((name, value));
        assert_eq!(with(&pairs).unwrap_err().variable, name, "{name}={value}");
    }
    // Half a pair is refused even with WhatsApp off.
    assert_eq!(
        with(&[("TWILIO_WHATSAPP_FROM", "whatsapp:+14155550123")]).unwrap_err().variable,
        "TWILIO_WHATSAPP_CONTENT_SID"
    );
    assert_eq!(with(&[("TWILIO_WHATSAPP_CONTENT_SID", sid)]).unwrap_err().variable, "TWILIO_WHATSAPP_FROM");
}
