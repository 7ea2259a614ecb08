//! Session tokens: HS256 JWTs signed with the session secret, handed out on approval.

use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::phone::E164Phone;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub jti: String,
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
#[error("session token could not be signed or read: {0}")]
pub struct TokenError(#[from] jsonwebtoken::errors::Error);

/// Signs session tokens for approved numbers.
#[derive(Clone)]
pub struct SessionTokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    ttl: TimeDelta,
}

impl SessionTokenIssuer {
    pub fn new(secret: &[u8], issuer: impl Into<String>, ttl: TimeDelta) -> Self {
        install_jwt_crypto();
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            issuer: issuer.into(),
            ttl,
        }
    }

    pub fn issue(&self, phone: &E164Phone, now: DateTime<Utc>) -> Result<SessionToken, TokenError> {
        let expires_at = now + self.ttl;
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let claims = SessionClaims {
            sub: phone.as_str().to_owned(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            iss: self.issuer.clone(),
            jti: hex::encode(jti),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(SessionToken { token, expires_at })
    }

    /// Checks signature, algorithm, issuer and expiry, as a consumer of the token would.
    pub fn decode(&self, token: &str) -> Result<SessionClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        Ok(jsonwebtoken::decode::<SessionClaims>(token, &self.decoding, &validation)?.claims)
    }
}

/// Chooses jsonwebtoken's crypto backend once per process. With the Firestore client's
/// auth crate in the build, both of jsonwebtoken's backends are compiled in, and it then
/// refuses to guess: every encode and decode would panic. Either backend signs HS256 the
/// same, so if another one is installed first, that is fine too. `SessionTokenIssuer::new`
/// calls it; call it first in any other code that uses jsonwebtoken directly.
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
            .field("issuer", &self.issuer)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_debug_is_redacted() {
        let token =
            SessionToken { token: "eyJhbGciOiJIUzI1NiJ9.secret.sig".into(), expires_at: DateTime::<Utc>::UNIX_EPOCH };
        let shown = format!("{token:?}");
        assert!(!shown.contains("eyJ") && shown.contains("redacted"), "{shown}");
    }

    fn phone() -> E164Phone {
        E164Phone::parse("+14155550123", None).unwrap()
    }

    #[test]
    fn token_carries_the_claims_and_verifies() {
        let issuer = SessionTokenIssuer::new(b"secret-one", "otp-service", TimeDelta::seconds(3600));
        let now = Utc::now();
        let token = issuer.issue(&phone(), now).unwrap();
        assert_eq!(token.expires_at, now + TimeDelta::seconds(3600));
        let claims = issuer.decode(&token.token).unwrap();
        assert_eq!(claims.sub, "+14155550123");
        assert_eq!(claims.iss, "otp-service");
        assert_eq!(claims.iat, now.timestamp());
        assert_eq!(claims.exp, now.timestamp() + 3600);
        assert_eq!(claims.jti.len(), 32);
        let header = jsonwebtoken::decode_header(&token.token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
    }

    #[test]
    fn every_token_has_its_own_jti() {
        let issuer = SessionTokenIssuer::new(b"k", "otp-service", TimeDelta::seconds(60));
        let now = Utc::now();
        let ids: std::collections::HashSet<_> =
            (0..100).map(|_| issuer.decode(&issuer.issue(&phone(), now).unwrap().token).unwrap().jti).collect();
        assert_eq!(ids.len(), 100);
    }

    #[test]
    fn other_keys_issuers_and_expired_tokens_are_refused() {
        let issuer = SessionTokenIssuer::new(b"secret-one", "otp-service", TimeDelta::seconds(3600));
        let token = issuer.issue(&phone(), Utc::now()).unwrap().token;
        assert!(SessionTokenIssuer::new(b"secret-two", "otp-service", TimeDelta::seconds(1)).decode(&token).is_err());
        assert!(SessionTokenIssuer::new(b"secret-one", "other", TimeDelta::seconds(1)).decode(&token).is_err());
        let old = issuer.issue(&phone(), Utc::now() - TimeDelta::seconds(7200)).unwrap().token;
        assert!(issuer.decode(&old).is_err());
    }
}
