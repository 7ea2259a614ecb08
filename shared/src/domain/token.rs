//! Session tokens: ES256 JWTs (ECDSA P-256 with SHA-256), signed with the first configured
//! key and checkable by any backend with the public keys of all of them, published as a JWK
//! Set (RFC 7517) whose `kid`s are the keys' RFC 7638 thumbprints. No backend that checks a
//! token holds anything that could mint one.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::phone::E164Phone;

/// How the number proved itself, as RFC 8176 names it in `amr`: a text (SMS, WhatsApp) or
/// a phone call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Sms,
    Tel,
}

impl AuthMethod {
    pub fn amr(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Tel => "tel",
        }
    }
}

/// The claims of a session token (API.md, "POST /api/verify-otp").
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub sub: String,
    pub phone_number: String,
    pub phone_number_verified: bool,
    pub amr: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

impl std::fmt::Debug for SessionClaims {
    // `sub` and `phone_number` are the full number: never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionClaims")
            .field("amr", &self.amr)
            .field("iss", &self.iss)
            .field("aud", &self.aud)
            .field("iat", &self.iat)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct SessionToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for SessionToken {
    // The token signs a person in: like the other secrets, it never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionToken").field("token", &"<redacted>").field("expires_at", &self.expires_at).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("session token could not be signed or read: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("session token names no published key")]
    UnknownKey,
}

/// One signing key: the private half for jsonwebtoken, the public half as JWK coordinates.
struct TokenKey {
    kid: String,
    x: String,
    y: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// The session tokens' keys, parsed once per load of the secrets: the first signs, every
/// one is published and checks. Never empty, no key twice.
pub struct TokenKeys(Vec<TokenKey>);

/// A public key as the JWK Set lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

/// `GET /.well-known/jwks.json`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<PublicJwk>,
}

impl TokenKeys {
    /// One or more PKCS#8 PEM P-256 private keys, concatenated. A reason names the key by
    /// its place in the list and never shows any of its material.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys: Vec<TokenKey> = Vec::new();
        for (index, (label, block)) in pem_blocks(text)?.into_iter().enumerate() {
            let place = index + 1;
            let key = match label {
                "PRIVATE KEY" => p256::SecretKey::from_pkcs8_pem(block)
                    .map_err(|_| format!("key {place} is not a P-256 (prime256v1) EC private key"))?,
                "EC PRIVATE KEY" => {
                    return Err(format!(
                        "key {place} is in SEC1 form (BEGIN EC PRIVATE KEY); convert it to PKCS#8 with \
                         `openssl pkcs8 -topk8 -nocrypt`"
                    ));
                }
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(format!(
                        "key {place} is encrypted; store it unencrypted (the SecureString parameter is)"
                    ));
                }
                other => return Err(format!("key {place} is a PEM \"{other}\" block, not a PKCS#8 private key")),
            };
            let key = TokenKey::new(&key).map_err(|reason| format!("key {place}: {reason}"))?;
            if let Some(earlier) = keys.iter().position(|k| k.kid == key.kid) {
                return Err(format!("key {place} repeats key {}", earlier + 1));
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err("no key: one or more PKCS#8 PEM P-256 private keys".into());
        }
        Ok(Self(keys))
    }

    /// A new random P-256 key as PKCS#8 PEM (the local run's key when none is given).
    pub fn generate_pem() -> String {
        loop {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            // All but about 2^-32 of 256-bit strings are valid scalars.
            if let Ok(key) = p256::SecretKey::from_slice(&bytes)
                && let Ok(pem) = key.to_pkcs8_pem(LineEnding::LF)
            {
                return pem.to_string();
            }
        }
    }

    /// The `kid` of the key that signs.
    pub fn signing_kid(&self) -> &str {
        &self.0[0].kid
    }

    /// Every key's `kid`, the signing one first.
    pub fn kids(&self) -> Vec<&str> {
        self.0.iter().map(|k| k.kid.as_str()).collect()
    }

    /// The public keys, as `GET /.well-known/jwks.json` serves them.
    pub fn jwk_set(&self) -> JwkSet {
        let keys = self
            .0
            .iter()
            .map(|k| PublicJwk {
                kty: "EC".into(),
                crv: "P-256".into(),
                x: k.x.clone(),
                y: k.y.clone(),
                kid: k.kid.clone(),
                alg: "ES256".into(),
                use_: "sig".into(),
            })
            .collect();
        JwkSet { keys }
    }
}

impl TokenKey {
    fn new(secret: &p256::SecretKey) -> Result<Self, String> {
        let point = secret.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else { return Err("no public point".into()) };
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        let der = secret.to_pkcs8_der().map_err(|_| "cannot be encoded as PKCS#8".to_owned())?;
        let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| format!("public key unusable: {e}"))?;
        Ok(Self { kid: thumbprint(&x, &y), encoding: EncodingKey::from_ec_der(der.as_bytes()), decoding, x, y })
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The PEM blocks of `text` as (label, whole block), in order; anything outside a block
/// but whitespace is an error.
fn pem_blocks(text: &str) -> Result<Vec<(&str, &str)>, String> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let place = blocks.len() + 1;
        let Some(after) = rest.strip_prefix(BEGIN) else {
            return Err(format!("text where key {place} should begin: each key is a PEM block (-----BEGIN ...)"));
        };
        let label =
            after.split_once("-----").map(|(label, _)| label).ok_or(format!("key {place}: a broken PEM header"))?;
        let end = format!("-----END {label}-----");
        let length = rest.find(&end).ok_or(format!("key {place}: no {end} line"))? + end.len();
        blocks.push((label, &rest[..length]));
        rest = rest[length..].trim_start();
    }
    Ok(blocks)
}

/// Signs session tokens for approved numbers, and checks them as a backend would.
#[derive(Clone)]
pub struct SessionTokenIssuer {
    keys: Arc<TokenKeys>,
    issuer: String,
    audience: String,
    ttl: TimeDelta,
}

impl SessionTokenIssuer {
    pub fn new(keys: Arc<TokenKeys>, issuer: impl Into<String>, audience: impl Into<String>, ttl: TimeDelta) -> Self {
        install_jwt_crypto();
        Self { keys, issuer: issuer.into(), audience: audience.into(), ttl }
    }

    pub fn issue(&self, phone: &E164Phone, method: AuthMethod, now: DateTime<Utc>) -> Result<SessionToken, TokenError> {
        let expires_at = now + self.ttl;
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let claims = SessionClaims {
            sub: phone.as_str().to_owned(),
            phone_number: phone.as_str().to_owned(),
            phone_number_verified: true,
            amr: vec![method.amr().to_owned()],
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            jti: hex::encode(jti),
        };
        let signing = &self.keys.0[0];
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("JWT".into());
        header.kid = Some(signing.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &signing.encoding)?;
        Ok(SessionToken { token, expires_at })
    }

    /// Checks the key (by `kid`, any published one), the signature, the algorithm, the
    /// issuer, the audience and the expiry, as a backend would.
    pub fn decode(&self, token: &str) -> Result<SessionClaims, TokenError> {
        let kid = jsonwebtoken::decode_header(token)?.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.keys.0.iter().find(|k| k.kid == kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        Ok(jsonwebtoken::decode::<SessionClaims>(token, &key.decoding, &validation)?.claims)
    }
}

/// Chooses jsonwebtoken's crypto backend once per process. With the Firestore client's
/// auth crate in the build, both of jsonwebtoken's backends are compiled in, and it then
/// refuses to guess: every encode and decode would panic. Either backend signs and checks
/// ES256 to the same standard, so if another one is installed first, that is fine too.
/// `SessionTokenIssuer::new` calls it; call it first in any other code that uses
/// jsonwebtoken directly.
pub fn install_jwt_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ =
            jsonwebtoken::crypto::CryptoProvider::install_default(&jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER);
    });
}

impl std::fmt::Debug for SessionTokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTokenIssuer")
            .field("kids", &self.keys.kids())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TokenKeys {
    // The kids are public (the JWK Set lists them); the keys are not.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TokenKeys").field(&self.kids()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` (the
    // deploy guide's command), so the parse is checked on OpenSSL's output, not only ours.
    const OPENSSL_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQguCKzPGI/2ipl516f
qn9/sYeRZDTpwoLiZnR6OwR9A8ehRANCAASFdWH0TRdsQxomY0st3+hnO6BtWqeq
ttRzkoMwDj2OX4natDqD1FTZMjVaWzXGhcQWA81yzTUW3xtL9LH9KIkZ
-----END PRIVATE KEY-----
";
    // The same command with ec_paramgen_curve:P-384, and `openssl genpkey -algorithm ED25519`:
    // PKCS#8 keys, but not P-256.
    const P384_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDTgy6CUr93LH84rAeR
/4wCpFmWJcd0Otwg5Ssgy5fWyxR3E6FirHKOG5r79rTMBb+hZANiAAS3KN9OyRH5
dIN/ovsys8iCl9lhxErj/fzBc6J7WYlJIZZ62LBn8QIteFaxvB8hnAax9EIFKvj+
w88j+JmR7KKs26Zd1lma60lusStosqOwZkHnld34N9jHAwkr2SX6Mr8=
-----END PRIVATE KEY-----
";
    const ED25519_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIPqRStczoWOr+qcRVp2W8aPR8QO/gEOKm71Eb+9wpgBn
-----END PRIVATE KEY-----
";

    fn phone() -> E164Phone {
        E164Phone::parse("+14155550123", None).unwrap()
    }

    fn keys(pem: &str) -> Arc<TokenKeys> {
        Arc::new(TokenKeys::parse(pem).unwrap())
    }

    fn issuer(keys: Arc<TokenKeys>) -> SessionTokenIssuer {
        SessionTokenIssuer::new(keys, "https://otp.example", "app-backends", TimeDelta::seconds(3600))
    }

    #[test]
    fn a_token_debug_is_redacted() {
        let token =
            SessionToken { token: "eyJhbGciOiJFUzI1NiJ9.secret.sig".into(), expires_at: DateTime::<Utc>::UNIX_EPOCH };
        let shown = format!("{token:?}");
        assert!(!shown.contains("eyJ") && shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn token_carries_the_claims_and_verifies() {
        let keys = keys(&TokenKeys::generate_pem());
        let issuer = issuer(keys.clone());
        let now = Utc::now();
        let token = issuer.issue(&phone(), AuthMethod::Sms, now).unwrap();
        assert_eq!(token.expires_at, now + TimeDelta::seconds(3600));
        let claims = issuer.decode(&token.token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.phone_number.as_str()), ("+14155550123", "+14155550123"));
        assert!(claims.phone_number_verified);
        assert_eq!(claims.amr, ["sms"]);
        assert_eq!((claims.iss.as_str(), claims.aud.as_str()), ("https://otp.example", "app-backends"));
        assert_eq!((claims.iat, claims.exp), (now.timestamp(), now.timestamp() + 3600));
        assert_eq!(claims.jti.len(), 32);
        let header = jsonwebtoken::decode_header(&token.token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some(keys.signing_kid()));
        let call = issuer.issue(&phone(), AuthMethod::Tel, now).unwrap();
        assert_eq!(issuer.decode(&call.token).unwrap().amr, ["tel"]);
    }

    #[test]
    fn every_token_has_its_own_jti() {
        let issuer = issuer(keys(&TokenKeys::generate_pem()));
        let now = Utc::now();
        let ids: std::collections::HashSet<_> = (0..100)
            .map(|_| issuer.decode(&issuer.issue(&phone(), AuthMethod::Sms, now).unwrap().token).unwrap().jti)
            .collect();
        assert_eq!(ids.len(), 100);
    }

    #[test]
    fn other_keys_issuers_audiences_and_expired_tokens_are_refused() {
        let one = keys(&TokenKeys::generate_pem());
        let issuer = issuer(one.clone());
        let token = issuer.issue(&phone(), AuthMethod::Sms, Utc::now()).unwrap().token;
        let other = keys(&TokenKeys::generate_pem());
        assert!(matches!(self::issuer(other).decode(&token), Err(TokenError::UnknownKey)));
        let ttl = TimeDelta::seconds(1);
        assert!(SessionTokenIssuer::new(one.clone(), "other", "app-backends", ttl).decode(&token).is_err());
        assert!(SessionTokenIssuer::new(one.clone(), "https://otp.example", "other", ttl).decode(&token).is_err());
        let old = issuer.issue(&phone(), AuthMethod::Sms, Utc::now() - TimeDelta::seconds(7200)).unwrap().token;
        assert!(issuer.decode(&old).is_err());
        // The same kid with a forged signature: a bit of the signature flipped.
        let (head, signature) = token.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[7] ^= 1;
        assert!(issuer.decode(&format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes))).is_err());
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 7638 section 3.1 gives an RSA example; for EC the members are crv, kty, x, y.
        // Recomputed here from the served JWK by the RFC's rule, independently of `thumbprint`.
        let keys = keys(OPENSSL_KEY);
        let jwk = keys.jwk_set().keys.remove(0);
        let members = serde_json::json!({ "crv": jwk.crv, "kty": jwk.kty, "x": jwk.x, "y": jwk.y });
        // serde_json's maps are sorted by key without the preserve_order feature, and
        // to_string writes no whitespace: exactly the RFC's canonical form.
        let digest = Sha256::digest(members.to_string().as_bytes());
        assert_eq!(jwk.kid, URL_SAFE_NO_PAD.encode(digest));
        assert_eq!(
            (jwk.kty.as_str(), jwk.crv.as_str(), jwk.alg.as_str(), jwk.use_.as_str()),
            ("EC", "P-256", "ES256", "sig")
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&jwk.x).unwrap().len(), 32);
        let json = serde_json::to_value(keys.jwk_set()).unwrap();
        assert_eq!(json["keys"][0]["use"], "sig");
    }

    #[test]
    fn the_first_key_signs_and_every_key_checks() {
        let (a, b) = (TokenKeys::generate_pem(), TokenKeys::generate_pem());
        let old = issuer(keys(&a)).issue(&phone(), AuthMethod::Sms, Utc::now()).unwrap().token;
        let both = keys(&format!("{b}{a}"));
        assert_eq!(both.kids().len(), 2);
        let issuer = issuer(both.clone());
        assert!(issuer.decode(&old).is_ok(), "a token of the second key still checks");
        let new = issuer.issue(&phone(), AuthMethod::Sms, Utc::now()).unwrap().token;
        assert_eq!(jsonwebtoken::decode_header(&new).unwrap().kid.as_deref(), Some(both.kids()[0]));
        assert_eq!(keys(&b).kids(), [both.kids()[0]]);
    }

    #[test]
    fn unfit_keys_are_refused_with_a_reason_that_shows_no_key() {
        let reason = |text: &str| TokenKeys::parse(text).err().unwrap_or_default();
        assert!(reason("").contains("no key"));
        assert!(reason("  \n").contains("no key"));
        assert!(reason("hello").contains("PEM block"));
        assert!(reason(&format!("{OPENSSL_KEY}{OPENSSL_KEY}")).contains("key 2 repeats key 1"));
        let broken = OPENSSL_KEY.replace("MIGHAgEA", "MIGHAgEB");
        assert!(reason(&broken).contains("key 1 is not a P-256"), "{}", reason(&broken));
        assert!(reason(&format!("{OPENSSL_KEY}{P384_KEY}")).contains("key 2 is not a P-256"));
        assert!(reason(ED25519_KEY).contains("key 1 is not a P-256"));
        let truncated = &OPENSSL_KEY[..OPENSSL_KEY.len() - 10];
        assert!(reason(truncated).contains("no -----END PRIVATE KEY----- line"), "{}", reason(truncated));
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(reason(&format!("{OPENSSL_KEY}{sec1}")).contains("key 2 is in SEC1 form"));
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(reason(rsa).contains("not a PKCS#8 private key"));
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(reason(encrypted).contains("encrypted"));
        for text in [broken.as_str(), truncated, OPENSSL_KEY, P384_KEY] {
            let shown = reason(&format!("{text}x"));
            assert!(!shown.contains("MIG") && !shown.contains("uCKzPGI"), "{shown}");
        }
    }
}
