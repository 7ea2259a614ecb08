//! One-time codes: drawn from a CSPRNG, parsed from user input, and stored only as an
//! HMAC-SHA256 keyed by the pepper secret, compared in constant time.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::{CryptoRng, Rng};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How many digits a code has: 4 to 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLength(u8);

impl CodeLength {
    pub const MIN: u8 = 4;
    pub const MAX: u8 = 10;

    pub fn new(digits: u8) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&digits).then_some(Self(digits))
    }

    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for CodeLength {
    fn default() -> Self {
        Self(6)
    }
}

/// A code, either freshly generated or parsed from a request. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

/// The submitted code is not exactly the configured number of ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the code must be exactly {0} digits")]
pub struct CodeFormatError(pub usize);

impl OtpCode {
    /// A new code from the thread-local CSPRNG (ChaCha, seeded by the OS).
    pub fn generate(length: CodeLength) -> Self {
        Self::generate_with(length, &mut rand::rng())
    }

    /// A new code from `rng`. Each digit is drawn uniformly (`random_range` has no
    /// modulo bias), so every code of the length is equally likely.
    pub fn generate_with<R: Rng + CryptoRng + ?Sized>(length: CodeLength, rng: &mut R) -> Self {
        let digits = (0..length.get()).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect();
        Self(digits)
    }

    pub fn parse(raw: &str, length: CodeLength) -> Result<Self, CodeFormatError> {
        if raw.len() == length.get() && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(CodeFormatError(length.get()))
        }
    }

    /// The digits, for the SMS text only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(<redacted>)")
    }
}

/// The HMAC key for everything we hash: codes, and the store keys of numbers and IPs.
#[derive(Clone)]
pub struct Pepper(SecretSlice<u8>);

impl Pepper {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(SecretSlice::from(bytes.into()))
    }

    fn mac(&self, domain: &str, parts: &[&[u8]]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(domain.as_bytes());
        for part in parts {
            // Length-prefix each part so that no two different inputs share an encoding.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The stored form of `code` sent to `phone`.
    pub fn hash_code(&self, phone: &str, code: &OtpCode) -> CodeHash {
        CodeHash(self.mac("otp-code/v1", &[phone.as_bytes(), code.0.as_bytes()]))
    }

    /// The store key of a phone number: the number itself is never stored.
    pub fn number_key(&self, phone: &str) -> SubjectKey {
        SubjectKey(hex::encode(self.mac("otp-number/v1", &[phone.as_bytes()])))
    }

    /// The store key of a message's or call's provider sid: the delivery record's key.
    pub fn message_key(&self, sid: &str) -> SubjectKey {
        SubjectKey(hex::encode(self.mac("otp-message/v1", &[sid.as_bytes()])))
    }

    /// The store key of a client IP address.
    pub fn client_key(&self, client: &str) -> SubjectKey {
        SubjectKey(hex::encode(self.mac("otp-client/v1", &[client.as_bytes()])))
    }

    /// The store key of a device (the id a valid device token names): its lane in the
    /// number's record.
    pub fn device_key(&self, device: &super::device::DeviceId) -> SubjectKey {
        SubjectKey(hex::encode(self.mac("otp-device/v1", &[device.as_bytes()])))
    }

    /// The store key of the range of `phone` (E.164): the number without its last `digits`
    /// digits, so the numbers of one block share it. The range itself is never stored.
    pub fn range_key(&self, phone: &str, digits: u8) -> SubjectKey {
        let keep = phone.len().saturating_sub(usize::from(digits));
        // E.164 is ASCII; should a caller pass anything else, cut at a character boundary
        // rather than panic.
        let range = (0..=keep).rev().find_map(|end| phone.get(..end)).unwrap_or_default();
        SubjectKey(hex::encode(self.mac("otp-range/v1", &[range.as_bytes()])))
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

/// HMAC-SHA256 of a (number, code) pair. Equality is constant-time.
#[derive(Clone, Copy)]
pub struct CodeHash([u8; 32]);

impl CodeHash {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time comparison: timing says nothing about how many bytes matched.
    pub fn matches(&self, other: &CodeHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl PartialEq for CodeHash {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other)
    }
}

impl Eq for CodeHash {}

impl fmt::Debug for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHash(<redacted>)")
    }
}

/// A keyed hash naming a number or a client in the store (hex, 64 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectKey(String);

impl SubjectKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key as a store read it back (stores keep device keys inside a number's record).
    pub fn from_stored(key: String) -> Self {
        Self(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn length_is_bounded() {
        assert!(CodeLength::new(3).is_none());
        assert!(CodeLength::new(11).is_none());
        assert_eq!(CodeLength::new(4).map(CodeLength::get), Some(4));
        assert_eq!(CodeLength::new(10).map(CodeLength::get), Some(10));
    }

    #[test]
    fn generated_codes_have_the_length_and_only_digits() {
        for len in CodeLength::MIN..=CodeLength::MAX {
            let length = CodeLength::new(len).unwrap();
            let code = OtpCode::generate(length);
            assert_eq!(code.expose().len(), usize::from(len));
            assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(OtpCode::parse(code.expose(), length), Ok(code));
        }
    }

    #[test]
    fn codes_are_uniform() {
        // 4-digit codes: 200_000 draws over 10_000 codes; chi-square against uniform.
        let mut rng = StdRng::seed_from_u64(7);
        let length = CodeLength::new(4).unwrap();
        let mut counts = vec![0u32; 10_000];
        let draws = 200_000u32;
        for _ in 0..draws {
            let code = OtpCode::generate_with(length, &mut rng);
            counts[code.expose().parse::<usize>().unwrap()] += 1;
        }
        let expected = f64::from(draws) / 10_000.0;
        let chi2: f64 = counts.iter().map(|&c| (f64::from(c) - expected).powi(2) / expected).sum();
        // 9_999 degrees of freedom: mean 9_999, sd ~141; 10_600 is beyond 4 sd.
        assert!(chi2 < 10_600.0, "chi2 = {chi2}");
        // Each position, each digit: close to a tenth of all draws.
        let mut per_digit = [[0u32; 10]; 4];
        for _ in 0..50_000 {
            let code = OtpCode::generate_with(length, &mut rng);
            for (pos, b) in code.expose().bytes().enumerate() {
                per_digit[pos][usize::from(b - b'0')] += 1;
            }
        }
        for row in per_digit {
            for count in row {
                assert!((4_700..=5_300).contains(&count), "{row:?}");
            }
        }
    }

    #[test]
    fn parse_refuses_anything_but_exact_ascii_digits() {
        let six = CodeLength::default();
        for bad in ["", "12345", "1234567", "12345a", " 123456", "12 456", "١٢٣٤٥٦", "+12345", "-12345"] {
            assert_eq!(OtpCode::parse(bad, six), Err(CodeFormatError(6)), "{bad:?}");
        }
        assert!(OtpCode::parse("000000", six).is_ok());
    }

    #[test]
    fn hashes_depend_on_key_number_and_code() {
        let six = CodeLength::default();
        let code = OtpCode::parse("123456", six).unwrap();
        let other = OtpCode::parse("123457", six).unwrap();
        let a = Pepper::new(b"pepper-a".to_vec());
        let b = Pepper::new(b"pepper-b".to_vec());
        let h = a.hash_code("+14155550123", &code);
        assert!(h.matches(&a.hash_code("+14155550123", &code)));
        assert!(!h.matches(&a.hash_code("+14155550123", &other)));
        assert!(!h.matches(&a.hash_code("+14155550124", &code)));
        assert!(!h.matches(&b.hash_code("+14155550123", &code)));
        assert_ne!(a.number_key("+14155550123"), a.client_key("+14155550123"));
        assert_eq!(a.number_key("+14155550123").as_str().len(), 64);
        assert!(!a.number_key("+14155550123").as_str().contains("4155550123"));
    }

    #[test]
    fn range_keys_name_blocks_of_numbers() {
        let a = Pepper::new(b"pepper-a".to_vec());
        let range = a.range_key("+14155550123", 3);
        assert_eq!(range, a.range_key("+14155550999", 3), "one block of 1000");
        assert_eq!(range, a.range_key("+14155550000", 3));
        assert_ne!(range, a.range_key("+14155551123", 3), "the next block");
        assert_eq!(a.range_key("+14155550123", 1), a.range_key("+14155550129", 1));
        assert_ne!(a.range_key("+14155550123", 1), a.range_key("+14155550133", 1));
        assert_eq!(a.range_key("+14155000000", 6), a.range_key("+14155999999", 6));
        assert_ne!(range, Pepper::new(b"pepper-b".to_vec()).range_key("+14155550123", 3), "keyed");
        // Its own domain: never the key of a number or client, even of the range's text.
        assert_ne!(range, a.number_key("+14155550"));
        assert_ne!(range, a.client_key("+14155550"));
        assert_eq!(range.as_str().len(), 64);
        assert!(!range.as_str().contains("4155550"));
        // Odd input cannot panic.
        let _ = a.range_key("+1", 6);
        let _ = a.range_key("+1415555012é", 1);
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let code = OtpCode::parse("987654", CodeLength::default()).unwrap();
        let pepper = Pepper::new(b"super-secret-pepper".to_vec());
        let hash = pepper.hash_code("+14155550123", &code);
        let shown = format!("{code:?} {pepper:?} {hash:?}");
        assert!(!shown.contains("987654"));
        assert!(!shown.contains("super-secret"));
    }

    proptest! {
        #[test]
        fn any_digit_string_of_the_length_parses(s in "[0-9]{4,10}") {
            let length = CodeLength::new(s.len() as u8).unwrap();
            let code = OtpCode::parse(&s, length).unwrap();
            prop_assert_eq!(code.expose(), s.as_str());
        }

        #[test]
        fn parse_never_accepts_a_non_digit(s in "\\PC{0,12}") {
            let length = CodeLength::default();
            let ok = OtpCode::parse(&s, length).is_ok();
            prop_assert_eq!(ok, s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
