//! Device tokens (API.md, "Genuine users first"): what an approval gives the device that
//! proved the number, so that its later requests are limited apart from a stranger's. A
//! token is opaque to the client: a version, its expiry, a random device id, all under an
//! HMAC-SHA256 keyed with the session secret and bound to the number. It is no session and
//! grants nothing alone. Reading one never fails loudly: a malformed, expired, tampered or
//! foreign token is `None`, the same as no token, and costs the same work (one HMAC).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::phone::E164Phone;

/// The longest `deviceToken` the contract allows (the request field is refused as absent
/// beyond it, before any decoding).
pub const MAX_TOKEN_CHARS: usize = 512;

const VERSION: u8 = 1;
const ID_BYTES: usize = 16;
const MAC_BYTES: usize = 32;
/// version, expiry (i64 seconds, big-endian), id, MAC.
const TOKEN_BYTES: usize = 1 + 8 + ID_BYTES + MAC_BYTES;

/// A device as a valid token names it: the id its per-device limits are kept under.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceId([u8; ID_BYTES]);

impl DeviceId {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for DeviceId {
    // The id picks the device's limits; like a key, it stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceId(<redacted>)")
    }
}

/// A token handed out with an approval.
#[derive(Clone)]
pub struct IssuedDeviceToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub device: DeviceId,
}

impl std::fmt::Debug for IssuedDeviceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedDeviceToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// Issues and reads device tokens with one key (the session secret's bytes).
pub struct DeviceTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for DeviceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceTokens(<redacted>)")
    }
}

/// A device token we issued, as read: its device and its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDevice {
    pub device: DeviceId,
    pub expires_at: DateTime<Utc>,
}

impl SignedDevice {
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

impl DeviceTokens {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    /// A token for a new device of `phone`, valid until `expires_at`.
    pub fn issue(&self, phone: &E164Phone, expires_at: DateTime<Utc>) -> IssuedDeviceToken {
        let mut id = [0u8; ID_BYTES];
        rand::rng().fill_bytes(&mut id);
        self.issue_for(phone, DeviceId(id), expires_at)
    }

    /// A token for a device already known (an approval on it renews its token: same id).
    pub fn issue_for(&self, phone: &E164Phone, device: DeviceId, expires_at: DateTime<Utc>) -> IssuedDeviceToken {
        let seconds = expires_at.timestamp();
        let mut bytes = Vec::with_capacity(TOKEN_BYTES);
        bytes.push(VERSION);
        bytes.extend_from_slice(&seconds.to_be_bytes());
        bytes.extend_from_slice(&device.0);
        let mac = self.mac(phone, &bytes);
        bytes.extend_from_slice(&mac);
        IssuedDeviceToken { token: URL_SAFE_NO_PAD.encode(&bytes), expires_at, device }
    }

    /// The device a token names, if it is one we issued for `phone` and it has not
    /// expired at `now`. Anything else is `None`, with one HMAC computed whatever the input
    /// (absent, too long, not base64, the wrong length, tampered, foreign or expired), so
    /// that neither the answer nor its time tells a stranger which it was.
    pub fn read(&self, phone: &E164Phone, token: Option<&str>, now: DateTime<Utc>) -> Option<DeviceId> {
        self.read_signed(phone, token).filter(|read| read.is_valid_at(now)).map(|read| read.device)
    }

    /// The device a token we issued for `phone` names, and its expiry, whether or not it
    /// has expired; `None` for anything else, with one HMAC whatever the input, as `read`.
    pub fn read_signed(&self, phone: &E164Phone, token: Option<&str>) -> Option<SignedDevice> {
        let decoded = token
            .filter(|t| t.len() <= MAX_TOKEN_CHARS && t.is_ascii())
            .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
            .filter(|bytes| bytes.len() == TOKEN_BYTES);
        let mut bytes = decoded.unwrap_or_else(|| vec![0u8; TOKEN_BYTES]);
        let valid_shape = bytes[0] == VERSION;
        let given = bytes.split_off(TOKEN_BYTES - MAC_BYTES);
        let expected = self.mac(phone, &bytes);
        let signed = bool::from(expected.as_slice().ct_eq(&given));
        let mut seconds = [0u8; 8];
        seconds.copy_from_slice(&bytes[1..9]);
        let expires_at = DateTime::from_timestamp(i64::from_be_bytes(seconds), 0);
        let mut id = [0u8; ID_BYTES];
        id.copy_from_slice(&bytes[9..9 + ID_BYTES]);
        match (token.is_some() && valid_shape && signed, expires_at) {
            (true, Some(expires_at)) => Some(SignedDevice { device: DeviceId(id), expires_at }),
            _ => None,
        }
    }

    fn mac(&self, phone: &E164Phone, body: &[u8]) -> [u8; MAC_BYTES] {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            // HMAC takes a key of any length; this arm never runs.
            Err(_) => return [0u8; MAC_BYTES],
        };
        // The purpose first, so that no other HMAC of the session secret is a device token.
        mac.update(b"otp-device-token/v1\0");
        mac.update(phone.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use proptest::prelude::*;

    fn phone(raw: &str) -> E164Phone {
        E164Phone::parse(raw, None).unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_532_400, 0).unwrap_or_default()
    }

    fn tokens() -> DeviceTokens {
        DeviceTokens::new(b"test-session-secret-1a2b3c4d5e6f7a8b".to_vec())
    }

    #[test]
    fn a_token_names_its_device_for_its_number_until_it_expires() {
        let number = phone("+14155550123");
        let issued = tokens().issue(&number, now() + TimeDelta::days(90));
        assert!(issued.token.len() <= MAX_TOKEN_CHARS && issued.token.is_ascii());
        assert_eq!(tokens().read(&number, Some(&issued.token), now()), Some(issued.device.clone()));
        let later = now() + TimeDelta::days(90);
        assert_eq!(tokens().read(&number, Some(&issued.token), later - TimeDelta::seconds(1)), Some(issued.device));
        assert_eq!(tokens().read(&number, Some(&issued.token), later), None, "expired at its expiry");
        let other = tokens().issue(&number, now() + TimeDelta::days(90));
        assert_ne!(other.device, tokens().issue(&number, now()).device, "each device its own id");
    }

    #[test]
    fn a_signed_read_gives_the_expiry_also_of_an_expired_token_and_nothing_of_a_foreign_one() {
        let number = phone("+14155550123");
        let expires_at = now() + TimeDelta::days(90);
        let issued = tokens().issue(&number, expires_at);
        let read = tokens().read_signed(&number, Some(&issued.token)).expect("ours");
        assert_eq!(read, SignedDevice { device: issued.device, expires_at });
        assert!(read.is_valid_at(expires_at - TimeDelta::seconds(1)) && !read.is_valid_at(expires_at));
        assert_eq!(tokens().read_signed(&phone("+14155550124"), Some(&issued.token)), None, "another number");
        assert_eq!(DeviceTokens::new(b"another-key".to_vec()).read_signed(&number, Some(&issued.token)), None);
        assert_eq!(tokens().read_signed(&number, None), None);
    }

    #[test]
    fn foreign_and_malformed_tokens_are_absent() {
        let number = phone("+14155550123");
        let issued = tokens().issue(&number, now() + TimeDelta::days(90));
        let read = |token: &str| tokens().read(&number, Some(token), now());
        assert_eq!(tokens().read(&phone("+14155550124"), Some(&issued.token), now()), None, "another number");
        assert_eq!(DeviceTokens::new(b"another-key".to_vec()).read(&number, Some(&issued.token), now()), None);
        assert_eq!(read(""), None);
        assert_eq!(read(&"A".repeat(600)), None, "600 characters");
        assert_eq!(read("é".repeat(20).as_str()), None, "not ASCII");
        assert_eq!(read("not base64 !"), None);
        assert_eq!(read(&issued.token[..issued.token.len() - 2]), None, "cut short");
        assert_eq!(read(&format!("{}AA", issued.token)), None, "too long");
        assert_eq!(tokens().read(&number, None, now()), None);
        // A token of the right shape for another version.
        let mut bytes = URL_SAFE_NO_PAD.decode(&issued.token).unwrap();
        bytes[0] = 2;
        assert_eq!(read(&URL_SAFE_NO_PAD.encode(&bytes)), None);
        // All zeros (what an unreadable input is read as) is never valid.
        assert_eq!(read(&URL_SAFE_NO_PAD.encode([0u8; TOKEN_BYTES])), None);
    }

    proptest! {
        /// Any one bit flipped anywhere in a token makes it absent.
        #[test]
        fn one_flipped_bit_makes_a_token_absent(byte in 0usize..TOKEN_BYTES, bit in 0u8..8) {
            let number = phone("+14155550123");
            let issued = tokens().issue(&number, now() + TimeDelta::days(90));
            let mut bytes = URL_SAFE_NO_PAD.decode(&issued.token).unwrap();
            bytes[byte] ^= 1 << bit;
            prop_assert_eq!(tokens().read(&number, Some(&URL_SAFE_NO_PAD.encode(&bytes)), now()), None);
        }

        /// Any string at all is read without a panic, and none but ours is a device.
        #[test]
        fn any_input_is_read_without_a_panic(token in ".{0,700}") {
            let number = phone("+14155550123");
            prop_assert_eq!(tokens().read(&number, Some(&token), now()), None);
        }
    }
}
