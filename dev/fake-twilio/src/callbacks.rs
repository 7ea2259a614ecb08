//! The status callbacks the fake sends after each message and call it accepts, as Twilio
//! does: a signed `application/x-www-form-urlencoded` POST to the `StatusCallback` URL of
//! the create call, with `X-Twilio-Signature` (HMAC-SHA1 of the URL and the sorted
//! parameters, keyed with the auth token). What each number gets is scripted
//! ([`Delivery`]); by default a message is `sent` then `delivered`, a call `completed`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;

use crate::Shared;

/// What becomes of the messages and calls to one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "kind")]
pub enum Delivery {
    /// `sent`, then `delivered` (a call: `completed`).
    #[default]
    Delivered,
    /// `sent`, then `undelivered` with this `ErrorCode` (30003 unreachable, 30005 unknown
    /// number, 30006 landline, 30007 filtered); a call: `no-answer`.
    Undelivered { error_code: u32 },
    /// `failed` with this `ErrorCode` (30008, say); a call: `failed`.
    Failed { error_code: u32 },
    /// `sent` at once, `delivered` only after this delay.
    Delayed { delay_ms: u64 },
    /// Each callback twice: `sent`, `sent`, `delivered`, `delivered`.
    Repeated,
    /// The final state first, then the `sent` that came before it.
    OutOfOrder,
    /// No callbacks at all.
    Silent,
}

/// One callback the fake sent, whatever the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Callback {
    pub url: String,
    /// The form, in the order sent.
    pub params: Vec<(String, String)>,
    pub signature: String,
    /// The HTTP status answered, or `None` when the post failed.
    pub answered: Option<u16>,
    pub at: DateTime<Utc>,
}

/// The signature Twilio puts on a post of `params` to `url`, keyed with `auth_token`:
/// written here apart from the service's, and checked against Twilio's own library by the
/// same vectors (`shared/tests/fixtures/twilio_signatures.json`).
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = match Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    BASE64.encode(mac.finalize().into_bytes())
}

/// What a created message or call needs for its callbacks.
pub(crate) struct Sent {
    pub url: String,
    pub sid: String,
    pub account_sid: String,
    pub from: String,
    pub to: String,
    pub call: bool,
}

/// The callbacks of `delivery`, in the order they go out, each with the pause before it.
fn plan(delivery: Delivery, call: bool, gap: Duration) -> Vec<(Duration, &'static str, Option<u32>)> {
    let (sent, done) = if call { ("in-progress", "completed") } else { ("sent", "delivered") };
    match (delivery, call) {
        (Delivery::Silent, _) => vec![],
        (Delivery::Delivered, _) => vec![(gap, sent, None), (gap, done, None)],
        (Delivery::Undelivered { error_code }, false) => {
            vec![(gap, sent, None), (gap, "undelivered", Some(error_code))]
        }
        (Delivery::Undelivered { .. }, true) => vec![(gap, sent, None), (gap, "no-answer", None)],
        (Delivery::Failed { error_code }, false) => vec![(gap, "failed", Some(error_code))],
        (Delivery::Failed { .. }, true) => vec![(gap, "failed", None)],
        (Delivery::Delayed { delay_ms }, _) => vec![(gap, sent, None), (Duration::from_millis(delay_ms), done, None)],
        (Delivery::Repeated, _) => vec![(gap, sent, None), (gap, sent, None), (gap, done, None), (gap, done, None)],
        (Delivery::OutOfOrder, _) => vec![(gap, done, None), (gap, sent, None)],
    }
}

/// The form of one callback: the fields Twilio's status callbacks carry.
fn form(sent: &Sent, status: &str, error_code: Option<u32>) -> Vec<(String, String)> {
    let mut params: Vec<(&str, String)> = if sent.call {
        vec![
            ("AccountSid", sent.account_sid.clone()),
            ("ApiVersion", "2010-04-01".into()),
            ("CallSid", sent.sid.clone()),
            ("CallStatus", status.into()),
            ("Direction", "outbound-api".into()),
            ("From", sent.from.clone()),
            ("To", sent.to.clone()),
        ]
    } else {
        vec![
            ("AccountSid", sent.account_sid.clone()),
            ("ApiVersion", "2010-04-01".into()),
            ("From", sent.from.clone()),
            ("MessageSid", sent.sid.clone()),
            ("MessageStatus", status.into()),
            ("SmsSid", sent.sid.clone()),
            ("SmsStatus", status.into()),
            ("To", sent.to.clone()),
        ]
    };
    if sent.call && status == "completed" {
        params.push(("CallDuration", "9".into()));
    }
    if let Some(code) = error_code {
        params.push(("ErrorCode", code.to_string()));
    }
    params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Sends the callbacks of `sent` in the background, as its number's script says.
pub(crate) fn schedule(shared: Arc<Shared>, sent: Sent, delivery: Delivery, gap: Duration) {
    let steps = plan(delivery, sent.call, gap);
    if steps.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build();
        let Ok(client) = client else { return };
        for (pause, status, error_code) in steps {
            tokio::time::sleep(pause).await;
            let params = form(&sent, status, error_code);
            let signature = sign(&shared.auth_token, &sent.url, &params);
            let answer = client
                .post(&sent.url)
                .header("x-twilio-signature", &signature)
                .header("i-twilio-idempotency-token", uuidish())
                .form(&params)
                .send()
                .await;
            let answered = answer.ok().map(|response| response.status().as_u16());
            shared.state().callbacks.push(Callback {
                url: sent.url.clone(),
                params,
                signature,
                answered,
                at: Utc::now(),
            });
        }
    });
}

fn uuidish() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors Twilio's own library computed (scripts/lib/twilio_signature_vectors.py).
    #[test]
    fn the_fakes_signatures_are_those_of_twilios_library() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../../shared/tests/fixtures/twilio_signatures.json"))
                .unwrap_or_default();
        let token = fixture["authToken"].as_str().unwrap_or_default();
        let vectors = fixture["vectors"].as_array().cloned().unwrap_or_default();
        assert!(vectors.len() >= 6);
        for vector in vectors {
            let params: Vec<(String, String)> = vector["params"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            let url = vector["url"].as_str().unwrap_or_default();
            assert_eq!(sign(token, url, &params), vector["signature"].as_str().unwrap_or_default(), "{url}");
        }
    }

    #[test]
    fn scripts_plan_their_callbacks() {
        let gap = Duration::from_millis(5);
        let statuses = |d, call| plan(d, call, gap).into_iter().map(|(_, s, c)| (s, c)).collect::<Vec<_>>();
        assert_eq!(statuses(Delivery::Delivered, false), [("sent", None), ("delivered", None)]);
        assert_eq!(
            statuses(Delivery::Undelivered { error_code: 30003 }, false),
            [("sent", None), ("undelivered", Some(30003))]
        );
        assert_eq!(statuses(Delivery::OutOfOrder, false), [("delivered", None), ("sent", None)]);
        assert_eq!(statuses(Delivery::Repeated, false).len(), 4);
        assert_eq!(statuses(Delivery::Delivered, true), [("in-progress", None), ("completed", None)]);
        assert!(statuses(Delivery::Silent, false).is_empty());
    }
}
