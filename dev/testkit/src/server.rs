//! The service's HTTP handler on a real port of 127.0.0.1, as API Gateway would call it:
//! for the fake Twilio's status callbacks, which it posts over HTTP.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use otp_core::{Api, Endpoint};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A listening port, whose handler is set once the app is built (its URL is a setting).
pub struct ApiServer {
    pub address: SocketAddr,
    api: Arc<OnceLock<Arc<Api>>>,
    task: JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ApiServer {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("a free port");
        let address = listener.local_addr().expect("its address");
        let api: Arc<OnceLock<Arc<Api>>> = Arc::new(OnceLock::new());
        let task = tokio::spawn(serve(listener, api.clone()));
        Self { address, api, task }
    }

    /// The URL of `POST /api/sms-status` here.
    pub fn status_url(&self) -> String {
        format!("http://{}/api/sms-status", self.address)
    }

    pub fn serve(&self, api: Arc<Api>) {
        let _ = self.api.set(api);
    }
}

async fn serve(listener: TcpListener, api: Arc<OnceLock<Arc<Api>>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let api = api.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: http::Request<Incoming>| {
                let api = api.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let body = Limited::new(body, 2 << 20).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let request = http::Request::from_parts(parts, body);
                    let answer = match api.get() {
                        Some(api) => {
                            let endpoint = Endpoint::from_path(request.uri().path()).unwrap_or(Endpoint::SmsStatus);
                            api.handle(endpoint, &request, Some(IpAddr::V4(Ipv4Addr::LOCALHOST))).await
                        }
                        None => http::Response::builder().status(503).body(String::new()).unwrap_or_default(),
                    };
                    Ok::<_, Infallible>(answer.map(|body| Full::new(Bytes::from(body))))
                }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
