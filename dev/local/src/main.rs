//! The local run (`scripts/dev`): both functions on one port, through the same handler
//! as the Lambda binaries, with `/_dev/outbox` listing the codes sent (SMS, calls and
//! WhatsApp messages, each with its channel). Never deployed.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use otp_core::adapters::outbox::Outbox;
use otp_core::http::MAX_BODY_BYTES;
use otp_core::secrets::env::EnvSecrets;
use otp_core::wiring::{self, Overrides};
use otp_core::{Api, ApiError, Endpoint, Settings};

mod demo;

struct Local {
    api: Api,
    /// The demo page's build folder.
    demo_root: std::path::PathBuf,
    /// The codes sent (SMS, calls, WhatsApp), with `OTP_SMS=outbox`; with Twilio (or its fake) they are there.
    outbox: Option<Arc<Outbox>>,
}

#[tokio::main]
async fn main() {
    otp_core::telemetry::init(false);
    if let Err(message) = run().await {
        eprintln!("otp-dev: {message}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let mut secrets = EnvSecrets::from_env();
    for name in secrets.fill_missing_with_random() {
        println!("{name} not set: using a random value for this run");
    }
    let port = settings.local_port;
    let demo_root = demo::root(settings.local_demo_dir.as_deref());
    let store = match settings.store {
        otp_core::config::StoreKind::Memory => "memory".to_owned(),
        otp_core::config::StoreKind::Firestore => format!(
            "Firestore ({}), project {:?}",
            settings.firestore.emulator_host.as_deref().unwrap_or("Google Cloud"),
            settings.firestore.project_id.as_deref().unwrap_or("")
        ),
    };
    let overrides = Overrides { secrets: Some(Arc::new(secrets)), echo_outbox: true, ..Default::default() };
    let app = wiring::build(settings, overrides).await;
    // Locally a missing secret or an unreachable store is a setup mistake: say so at once.
    if !app.problems.is_empty() {
        return Err(app.problems.join("; "));
    }
    println!("store: {store}");
    let local = Arc::new(Local { api: app.api, demo_root, outbox: app.outbox });

    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let serving = local.clone();
    let (address, server) = dev_serve::serve(address, move |request, peer| {
        let local = serving.clone();
        async move { local.route(request, peer).await }
    })
    .await
    .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let extra = if local.outbox.is_some() { ", GET /_dev/outbox" } else { " (SMS through Twilio's API)" };
    println!(
        "OTP service (local run) on http://{address}: POST /api/send-otp, POST /api/verify-otp, GET /.well-known/jwks.json{extra}"
    );
    dev_serve::shutdown_signal().await;
    server.abort();
    Ok(())
}

impl Local {
    async fn route(&self, request: http::Request<Incoming>, peer: SocketAddr) -> http::Response<Full<Bytes>> {
        if let Some(page) = demo::serve(&self.demo_root, &request) {
            return page; // the demo sign-in page at `/` (demo.rs)
        }
        let (parts, body) = request.into_parts();
        let path = parts.uri.path().to_owned();
        let response = match (Endpoint::from_path(&path), path.as_str()) {
            (Some(endpoint), _) => match Limited::new(body, MAX_BODY_BYTES).collect().await {
                Ok(collected) => {
                    let request = http::Request::from_parts(parts, collected.to_bytes());
                    self.api.handle(endpoint, &request, Some(peer.ip())).await
                }
                Err(_) => self.api.error(&http::Request::from_parts(parts, ()), &ApiError::PayloadTooLarge).await,
            },
            (None, "/_dev/outbox") if parts.method == http::Method::GET => {
                let Some(outbox) = &self.outbox else {
                    return self
                        .api
                        .error(&http::Request::from_parts(parts, ()), &ApiError::NotFound)
                        .await
                        .map(Full::from);
                };
                let mut response = http::Response::new(serde_json::to_string(&outbox.list()).unwrap_or_default());
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json; charset=utf-8"),
                );
                response
            }
            (None, "/_dev/outbox") => {
                self.api.error(&http::Request::from_parts(parts, ()), &ApiError::MethodNotAllowed).await
            }
            (None, _) => self.api.error(&http::Request::from_parts(parts, ()), &ApiError::NotFound).await,
        };
        response.map(|body| Full::new(Bytes::from(body)))
    }
}
