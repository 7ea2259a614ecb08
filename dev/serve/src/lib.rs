//! What the local programs share: the local run (`dev/local`), the fake Twilio and the fake
//! siteverify each bind a port of 127.0.0.1, serve HTTP/1.1 connections with one handler,
//! stop on Ctrl-C or SIGTERM, and print what they record to the developer's terminal. One
//! accept loop, one shutdown signal and one printer, here. Never deployed.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A response of a local program.
pub type Answer = http::Response<Full<Bytes>>;

/// Serves every connection `listener` accepts with `handle` (the request and the peer's
/// address), each connection on a task of its own, until the returned task is aborted;
/// `on_accept` hears of each connection first (a fake counts them, to show reuse). An
/// accept that fails (out of file descriptors, say) waits a moment rather than spinning; a
/// client that closes a connection mid-call (a timeout) is not an error of ours.
pub fn spawn_accept_loop<H, F>(
    listener: TcpListener,
    on_accept: impl Fn(SocketAddr) + Send + 'static,
    handle: H,
) -> JoinHandle<()>
where
    H: Fn(http::Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Answer> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::debug!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            on_accept(peer);
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let answer = handle(request, peer);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                    tracing::debug!(%error, "connection closed with an error");
                }
            });
        }
    })
}

/// Binds `address` and serves it with `handle` (see [`spawn_accept_loop`]): the address
/// bound (port 0 picks a free one) and the serving task.
pub async fn serve<H, F>(address: SocketAddr, handle: H) -> std::io::Result<(SocketAddr, JoinHandle<()>)>
where
    H: Fn(http::Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Answer> + Send + 'static,
{
    serve_counting(address, |_| {}, handle).await
}

/// [`serve`], with `on_accept` told of each connection accepted.
pub async fn serve_counting<H, F>(
    address: SocketAddr,
    on_accept: impl Fn(SocketAddr) + Send + 'static,
    handle: H,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)>
where
    H: Fn(http::Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Answer> + Send + 'static,
{
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    Ok((bound, spawn_accept_loop(listener, on_accept, handle)))
}

/// Resolves on Ctrl-C, or on SIGTERM (how scripts stop a program).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Prints each new record of `records` (polled every 200 ms, oldest first) with `print`,
/// until the program is stopped. A list that shrank was reset through a control endpoint:
/// printing starts again from its start.
pub async fn print_new_records<T>(records: impl Fn() -> Vec<T>, mut print: impl FnMut(&T)) {
    let mut printer = Printer::default();
    every_tick_until_shutdown(|| printer.print_new(&records(), &mut print)).await;
}

/// Calls `tick` every 200 ms until the program is stopped (a printer of several lists
/// keeps a [`Printer`] for each).
pub async fn every_tick_until_shutdown(mut tick: impl FnMut()) {
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        tick();
    }
}

/// How far a list of records has been printed.
#[derive(Debug, Default)]
pub struct Printer {
    shown: usize,
}

impl Printer {
    /// Prints the records of `records` not printed yet (all of them, after a reset).
    pub fn print_new<T>(&mut self, records: &[T], mut print: impl FnMut(&T)) {
        if records.len() < self.shown {
            self.shown = 0;
        }
        for record in &records[self.shown..] {
            print(record);
        }
        self.shown = records.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printer_prints_each_record_once_and_all_again_after_a_reset() {
        let mut printer = Printer::default();
        let mut printed = Vec::new();
        printer.print_new(&[1, 2], |n| printed.push(*n));
        printer.print_new(&[1, 2, 3], |n| printed.push(*n));
        printer.print_new(&[1, 2, 3], |n| printed.push(*n));
        printer.print_new(&[7], |n| printed.push(*n));
        assert_eq!(printed, [1, 2, 3, 7]);
    }

    #[tokio::test]
    async fn the_accept_loop_serves_each_connection_with_the_peer_address() {
        let (address, server) = serve(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            |request: http::Request<Incoming>, peer: SocketAddr| async move {
                http::Response::new(Full::new(Bytes::from(format!(
                    "{} {} from {}",
                    request.method(),
                    request.uri().path(),
                    peer.ip()
                ))))
            },
        )
        .await
        .expect("binds a free port");
        let client = reqwest::Client::new();
        for path in ["/a", "/b"] {
            let text = client.get(format!("http://{address}{path}")).send().await.unwrap().text().await.unwrap();
            assert_eq!(text, format!("GET {path} from 127.0.0.1"));
        }
        server.abort();
    }

    #[tokio::test]
    async fn each_connection_is_counted_once_however_many_requests_it_carries() {
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        let on_accept = move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        };
        let answer = |_: http::Request<Incoming>, _: SocketAddr| async { http::Response::new(Full::new(Bytes::new())) };
        let (address, server) =
            serve_counting(SocketAddr::from(([127, 0, 0, 1], 0)), on_accept, answer).await.expect("binds a free port");
        let client = reqwest::Client::new();
        for _ in 0..3 {
            client.get(format!("http://{address}/")).send().await.unwrap();
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "one kept-alive connection");
        server.abort();
    }
}
