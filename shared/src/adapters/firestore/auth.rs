//! How the store authenticates to Firestore: the emulator's stub token, or Google
//! credentials from the service's secrets (`secrets::GCP_CREDENTIALS`: a service-account key, or a
//! workload identity federation configuration that trades the Lambda role's AWS
//! credentials for Google tokens), or the Application Default Credentials.

use std::sync::Arc;

use firestore::gcloud_sdk::google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag, external_account, service_account,
};
use firestore::gcloud_sdk::google_cloud_auth::errors::CredentialsError;
use firestore::{FirestoreDb, FirestoreDbOptions};
use http::{Extensions, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::ports::SecretSource;

const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Where the store's Google credentials come from.
#[derive(Clone)]
pub enum FirestoreAuth {
    /// The emulator at `host:port`: plain HTTP/2, no credentials.
    Emulator(String),
    /// A credentials JSON: a service-account key (`"type": "service_account"`) or a workload
    /// identity federation configuration (`"type": "external_account"`).
    CredentialsJson(SecretString),
    /// The service's secrets, read when the store first connects: their `secrets::GCP_CREDENTIALS`
    /// as [`FirestoreAuth::CredentialsJson`], else the Application Default Credentials.
    Secrets(Arc<dyn SecretSource>),
    /// Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, metadata server).
    ApplicationDefault,
}

impl std::fmt::Debug for FirestoreAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Emulator(_) => "FirestoreAuth::Emulator",
            Self::CredentialsJson(_) => "FirestoreAuth::CredentialsJson(<redacted>)",
            Self::Secrets(_) => "FirestoreAuth::Secrets",
            Self::ApplicationDefault => "FirestoreAuth::ApplicationDefault",
        })
    }
}

/// Why no client could be built. Never carries credential content.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// The credentials are wrong in themselves: retrying will not help.
    #[error("Firestore credentials unusable: {0}")]
    Credentials(String),
    /// Firestore or the secret store could not be reached.
    #[error("Firestore unreachable: {0}")]
    Unreachable(String),
}

/// Google credentials from a credentials JSON, checked without any network call. Call it
/// inside a Tokio runtime: the credentials start their token refresher on it.
pub fn credentials_from_json(json: &SecretString) -> Result<Credentials, ConnectError> {
    // serde_json's messages give a position, never the input.
    let value: serde_json::Value =
        serde_json::from_str(json.expose_secret()).map_err(|e| ConnectError::Credentials(format!("not JSON ({e})")))?;
    let kind = value.get("type").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
    let built = match kind.as_str() {
        "service_account" => service_account::Builder::new(value).build(),
        "external_account" => external_account::Builder::new(value).with_scopes([CLOUD_PLATFORM_SCOPE]).build(),
        other => {
            return Err(ConnectError::Credentials(format!(
                "type `{other}` is not supported; use a service-account key or an external_account configuration"
            )));
        }
    };
    built.map_err(|e| ConnectError::Credentials(format!("{kind} credentials: {e}")))
}

/// A client of the database `options` names, authenticated as `auth` says.
pub async fn connect(options: FirestoreDbOptions, auth: &FirestoreAuth) -> Result<FirestoreDb, ConnectError> {
    let unreachable = |e: firestore::errors::FirestoreError| ConnectError::Unreachable(e.to_string());
    match auth {
        FirestoreAuth::Emulator(host) => {
            let options = options.with_firebase_api_url(format!("http://{host}"));
            FirestoreDb::with_options_auth(options, Credentials::from(EmulatorOwner::default()))
                .await
                .map_err(unreachable)
        }
        FirestoreAuth::CredentialsJson(json) => {
            FirestoreDb::with_options_auth(options, credentials_from_json(json)?).await.map_err(unreachable)
        }
        FirestoreAuth::Secrets(source) => {
            let secrets = source.load().await.map_err(|e| ConnectError::Unreachable(e.to_string()))?;
            match secrets.providers.get(crate::secrets::GCP_CREDENTIALS) {
                Some(json) => {
                    FirestoreDb::with_options_auth(options, credentials_from_json(json)?).await.map_err(unreachable)
                }
                None => FirestoreDb::with_options(options).await.map_err(unreachable),
            }
        }
        FirestoreAuth::ApplicationDefault => FirestoreDb::with_options(options).await.map_err(unreachable),
    }
}

/// The token the Firebase tools send to the emulator, which authenticates nothing: with it
/// the emulator treats requests as the project owner's, whatever security rules it has.
#[derive(Debug, Default)]
struct EmulatorOwner {
    tag: EntityTag,
}

impl CredentialsProvider for EmulatorOwner {
    async fn headers(&self, extensions: Extensions) -> Result<CacheableResource<HeaderMap>, CredentialsError> {
        if extensions.get::<EntityTag>() == Some(&self.tag) {
            return Ok(CacheableResource::NotModified);
        }
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, HeaderValue::from_static("Bearer owner"));
        Ok(CacheableResource::New { entity_tag: self.tag.clone(), data: headers })
    }

    async fn universe_domain(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_credentials_are_named_without_their_content() {
        for json in ["{not json", r#"{"type":"authorized_user","refresh_token":"s3cr3t"}"#, r#"{"x":"s3cr3t"}"#] {
            match credentials_from_json(&SecretString::from(json)) {
                Err(ConnectError::Credentials(reason)) => assert!(!reason.contains("s3cr3t"), "{reason}"),
                other => panic!("expected a credentials error, got {:?}", other.map(|_| ())),
            }
        }
    }

    // Built credentials start their token refresher on the runtime, hence the runtime here.
    #[tokio::test]
    async fn workload_identity_federation_configuration_builds_offline() {
        // What `gcloud iam workload-identity-pools create-cred-config ... --aws` writes.
        let config = serde_json::json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/aws/providers/lambda",
            "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
            "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/otp@p.iam.gserviceaccount.com:generateAccessToken",
            "token_url": "https://sts.googleapis.com/v1/token",
            "credential_source": {
                "environment_id": "aws1",
                "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
                "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
                "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
            }
        });
        assert!(credentials_from_json(&SecretString::from(config.to_string())).is_ok());
    }

    #[tokio::test]
    async fn a_service_account_key_builds_offline() {
        // The private key is parsed on the first token request, not here.
        let key = serde_json::json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "k1",
            "private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
            "client_email": "otp@p.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token"
        });
        assert!(credentials_from_json(&SecretString::from(key.to_string())).is_ok());
    }
}
