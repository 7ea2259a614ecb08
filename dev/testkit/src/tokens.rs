//! Checking a session token as a backend would: with nothing of ours but the served JWK
//! Set, by jsonwebtoken's own JWK support (the web and Python tests do the same with
//! `jose` and PyJWT).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// The issuer and audience of the test apps (the settings' defaults).
pub const ISSUER: &str = "otp-service";
pub const AUDIENCE: &str = "otp-service-clients";

/// The claims of `token` if a key of `jwks` (a `GET /.well-known/jwks.json` body) signed
/// it with ES256 for `ISSUER` and `AUDIENCE`. The expiry is not checked: the test apps'
/// clocks stand in the past.
pub fn check(token: &str, jwks: &Value) -> Result<Value, String> {
    otp_core::domain::token::install_jwt_crypto();
    let set: JwkSet = serde_json::from_value(jwks.clone()).map_err(|e| format!("not a JWK Set: {e}"))?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("no JWT header: {e}"))?;
    if header.alg != Algorithm::ES256 {
        return Err(format!("signed with {:?}, not ES256", header.alg));
    }
    let kid = header.kid.ok_or("the header names no kid")?;
    let jwk = set.find(&kid).ok_or_else(|| format!("no key {kid} in the JWK Set"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable JWK: {e}"))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|data| data.claims).map_err(|e| e.to_string())
}
