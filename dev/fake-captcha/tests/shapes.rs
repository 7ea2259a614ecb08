//! The fake's own answers over HTTP: each provider's shape, the secret and token
//! checks, faults and the control endpoints.

use fake_captcha::{FakeCaptcha, Fault, Flavor};
use serde_json::Value;

const SECRET: &str = "fake-secret";

async fn verify(fake: &FakeCaptcha, flavor: Flavor, form: &[(&str, &str)]) -> (u16, String) {
    let response = reqwest::Client::new().post(fake.verify_url(flavor)).form(form).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn verify_json(fake: &FakeCaptcha, flavor: Flavor, form: &[(&str, &str)]) -> Value {
    let (status, body) = verify(fake, flavor, form).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn each_provider_answers_a_pass_in_its_own_shape() {
    let fake = FakeCaptcha::start(SECRET).await.unwrap();
    let form = |token| [("secret", SECRET), ("response", token), ("remoteip", "192.0.2.1")];

    let turnstile = verify_json(&fake, Flavor::Turnstile, &form("pass:app.example:login:0.4")).await;
    assert_eq!(turnstile["success"], true);
    assert_eq!(turnstile["error-codes"], serde_json::json!([]));
    assert_eq!(turnstile["hostname"], "app.example");
    assert_eq!(turnstile["action"], "login");
    assert_eq!(turnstile["cdata"], "");
    assert!(turnstile["challenge_ts"].as_str().unwrap().ends_with('Z'));
    assert!(turnstile.get("score").is_none());

    let hcaptcha = verify_json(&fake, Flavor::Hcaptcha, &form("pass")).await;
    assert_eq!(hcaptcha["success"], true);
    assert_eq!(hcaptcha["hostname"], "localhost");
    assert_eq!(hcaptcha["credit"], false);
    assert!(hcaptcha.get("score").is_none() && hcaptcha.get("action").is_none());

    let recaptcha = verify_json(&fake, Flavor::Recaptcha, &form("pass:app.example:send_otp:0.3")).await;
    assert_eq!(recaptcha["success"], true);
    assert_eq!(recaptcha["hostname"], "app.example");
    assert_eq!(recaptcha["action"], "send_otp");
    assert_eq!(recaptcha["score"], 0.3);
    let defaulted = verify_json(&fake, Flavor::Recaptcha, &form("pass")).await;
    assert_eq!((defaulted["action"].as_str(), defaulted["score"].as_f64()), (Some("send_otp"), Some(0.9)));

    let calls = fake.calls();
    assert_eq!(calls.len(), 4);
    assert!(calls.iter().all(|c| c.secret_ok && c.form_encoded && c.remoteip.as_deref() == Some("192.0.2.1")));
}

#[tokio::test]
async fn secrets_tokens_and_reuse_are_checked() {
    let fake = FakeCaptcha::start(SECRET).await.unwrap();
    for flavor in Flavor::ALL {
        fake.reset();
        let wrong = verify_json(&fake, flavor, &[("secret", "nope"), ("response", "pass")]).await;
        assert_eq!(
            (wrong["success"].as_bool(), &wrong["error-codes"]),
            (Some(false), &serde_json::json!(["invalid-input-secret"]))
        );
        let missing = verify_json(&fake, flavor, &[]).await;
        assert_eq!(missing["error-codes"], serde_json::json!(["missing-input-secret", "missing-input-response"]));
        let bogus = verify_json(&fake, flavor, &[("secret", SECRET), ("response", "bogus")]).await;
        assert_eq!(bogus["error-codes"], serde_json::json!(["invalid-input-response"]));
        // A wrong secret did not use the token up.
        let first = verify_json(&fake, flavor, &[("secret", SECRET), ("response", "pass")]).await;
        assert_eq!(first["success"], true, "{flavor:?}");
        let again = verify_json(&fake, flavor, &[("secret", SECRET), ("response", "pass")]).await;
        let duplicate = if flavor == Flavor::Hcaptcha { "already-seen-response" } else { "timeout-or-duplicate" };
        assert_eq!(again["error-codes"], serde_json::json!([duplicate]), "{flavor:?}");
    }
}

#[tokio::test]
async fn turnstile_also_reads_json_the_others_only_forms() {
    let fake = FakeCaptcha::start(SECRET).await.unwrap();
    let body = serde_json::json!({ "secret": SECRET, "response": "pass" });
    let client = reqwest::Client::new();
    let post =
        |flavor| client.post(fake.verify_url(flavor)).header("content-type", "application/json").body(body.to_string());
    let turnstile: Value =
        serde_json::from_str(&post(Flavor::Turnstile).send().await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(turnstile["success"], true);
    let hcaptcha: Value =
        serde_json::from_str(&post(Flavor::Hcaptcha).send().await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(hcaptcha["error-codes"], serde_json::json!(["missing-input-secret", "missing-input-response"]));
}

#[tokio::test]
async fn faults_are_served_in_order_and_recorded() {
    let fake = FakeCaptcha::start(SECRET).await.unwrap();
    let form = [("secret", SECRET), ("response", "pass")];
    fake.push_faults([Fault::Status { status: 503 }, Fault::NotJson]);
    assert_eq!(verify(&fake, Flavor::Turnstile, &form).await.0, 503);
    let (status, body) = verify(&fake, Flavor::Turnstile, &form).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    assert_eq!(verify_json(&fake, Flavor::Turnstile, &form).await["success"], true);

    // Through the control endpoint, as the local run would.
    let client = reqwest::Client::new();
    let scripted = client
        .post(format!("{}/_fake/faults", fake.url()))
        .body(r#"{"count": 1, "fault": {"kind": "status", "status": 500}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(scripted.status().as_u16(), 204);
    assert_eq!(verify(&fake, Flavor::Recaptcha, &form).await.0, 500);
    // The slow fault as the docs spell it (camelCase fields): parsed, nothing queued.
    let slow = client
        .post(format!("{}/_fake/faults", fake.url()))
        .body(r#"{"count": 0, "fault": {"kind": "slow", "delayMs": 1}}"#);
    assert_eq!(slow.send().await.unwrap().status().as_u16(), 204);
    let calls = client.get(format!("{}/_fake/calls", fake.url())).send().await.unwrap().text().await.unwrap();
    let calls: Value = serde_json::from_str(&calls).unwrap();
    let statuses: Vec<_> = calls.as_array().unwrap().iter().map(|c| c["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [503, 200, 200, 500]);
    assert_eq!(client.post(format!("{}/_fake/reset", fake.url())).send().await.unwrap().status().as_u16(), 204);
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn a_slow_answer_comes_late() {
    let fake = FakeCaptcha::start(SECRET).await.unwrap();
    fake.push_faults([Fault::Slow { delay_ms: 5_000 }]);
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_millis(300)).build().unwrap();
    let outcome =
        client.post(fake.verify_url(Flavor::Hcaptcha)).form(&[("secret", SECRET), ("response", "pass")]).send().await;
    assert!(outcome.is_err_and(|e| e.is_timeout()));
    // Judged all the same: the token is used up.
    assert_eq!(fake.calls()[0].success, Some(true));
}
