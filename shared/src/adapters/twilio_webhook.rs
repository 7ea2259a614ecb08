//! Twilio's webhook signature, `X-Twilio-Signature`: the base64 HMAC-SHA1, keyed with the
//! account's auth token, of the public URL Twilio posted to followed by each form parameter's
//! name and value, sorted by name (then value). Twilio's format, so it lives beside the
//! Twilio adapter; the status callback's route calls it. Checked against Twilio's own
//! helper library: the vectors in shared/tests/fixtures/twilio_signatures.json are its output
//! (scripts/lib/twilio_signature_vectors.py).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The signature Twilio sends for a post of `params` to `url`.
pub fn signature(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    // Twilio's libraries sort the names, and each name's distinct values.
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut mac = match Hmac::<Sha1>::new_from_slice(auth_token) {
        Ok(mac) => mac,
        // HMAC takes a key of any length; this arm never runs.
        Err(_) => return String::new(),
    };
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `header` is Twilio's signature of this post, compared in constant time. Any
/// header of another length (a SHA-1 signature is 28 base64 characters) is refused at once:
/// its length is no secret.
pub fn is_signed(auth_token: &[u8], url: &str, params: &[(String, String)], header: &str) -> bool {
    let expected = signature(auth_token, url, params);
    expected.len() == header.len() && bool::from(expected.as_bytes().ct_eq(header.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A post Twilio signed: its URL, its form parameters, its signature.
    type Signed = (String, Vec<(String, String)>, String);

    fn vectors() -> (String, Vec<Signed>) {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/twilio_signatures.json")).unwrap_or_default();
        let token = fixture["authToken"].as_str().unwrap_or_default().to_owned();
        let cases = fixture["vectors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                let params = v["params"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                (
                    v["url"].as_str().unwrap_or_default().to_owned(),
                    params,
                    v["signature"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        (token, cases)
    }

    #[test]
    fn signatures_are_those_twilios_own_library_computes() {
        let (token, cases) = vectors();
        assert!(cases.len() >= 6, "the fixture was read");
        for (url, params, expected) in cases {
            assert_eq!(signature(token.as_bytes(), &url, &params), expected, "{url} {params:?}");
            // The order the form arrived in does not matter.
            let reversed: Vec<_> = params.iter().rev().cloned().collect();
            assert!(is_signed(token.as_bytes(), &url, &reversed, &expected), "{url}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        let (token, cases) = vectors();
        let (url, params, good) = cases[1].clone();
        let key = token.as_bytes();
        assert!(is_signed(key, &url, &params, &good));
        assert!(!is_signed(b"another-auth-token", &url, &params, &good), "another account's token");
        assert!(!is_signed(key, "https://api.example.com/prod/api/sms-status/", &params, &good), "another URL");
        let mut changed = params.clone();
        changed[4].1 = "failed".into(); // MessageStatus
        assert!(!is_signed(key, &url, &changed, &good), "a changed parameter");
        let mut added = params.clone();
        added.push(("ErrorCode".into(), "30003".into()));
        assert!(!is_signed(key, &url, &added, &good), "an added parameter");
        assert!(!is_signed(key, &url, &params, ""), "no signature");
        assert!(!is_signed(key, &url, &params, &good[..27]), "one character short");
        assert!(!is_signed(key, &url, &params, &format!("{good}=")), "one character long");
        let flipped: String =
            good.chars().enumerate().map(|(i, c)| if i == 3 { if c == 'A' { 'B' } else { 'A' } } else { c }).collect();
        assert!(!is_signed(key, &url, &params, &flipped), "one character flipped");
    }
}
