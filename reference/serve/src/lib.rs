//! The HTTP server loop of the broker and the deployer, with the limits
//! that keep slow or many clients from exhausting them (issue 11,
//! finding 2). Both services serve through it; each says in its own error
//! body why a request was cut off ([`Overrun`]).
//!
//! `axum::serve` gives hyper no timer, so hyper's header read timeout is off
//! and a client that sends half a request line and goes quiet holds its
//! socket for ever (slowloris). [`serve`] serves each connection with
//! `hyper::server::conn::http1::Builder`, `timer(TokioTimer)` and
//! `header_read_timeout` (hyper: "if a client does not transmit the entire
//! header within this time, the connection is closed"; since hyper 1.6 the
//! timer also runs on an idle keep-alive connection, hyper PR #3828), and
//! caps open connections with a semaphore: a connection beyond the cap is
//! answered `503` with `Connection: close` and closed at once. hyper's
//! HTTP/1 serves one request at a time per connection, so the cap also
//! bounds concurrent requests.
//!
//! [`limit_request`] bounds the rest: the body must arrive whole within the
//! body read timeout (else `408`, connection closed) and the request must be
//! answered within the request timeout (else `503` with `Retry-After`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderValue;
use axum::http::header::{CONNECTION, RETRY_AFTER};
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// The limits of the server loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's headers (also the
    /// idle time allowed between requests on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// The largest number of connections open at once (at least 1).
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open
/// connections finish their request and waits for them. Each request
/// carries the peer's address as axum's `ConnectInfo<SocketAddr>`. A
/// connection beyond the cap is told `refused_body` (a JSON error body) with
/// `503` before it is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    refused_body: &'static str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let cap = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(cap));
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let (closing, _) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors or a connection reset before
                    // accept: back off briefly rather than spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, cap, "connection refused: the connection cap is reached");
            refuse(stream, refused_body, &refusing);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            })
            .service(router.clone());
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let mut closing = closing.subscribe();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = async { let _ = closing.wait_for(|closing| *closing).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%peer, error = %err, timeout = err.is_timeout(), "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    closing.send_replace(true);
    // Every open connection holds a permit: all permits back means all closed.
    let _ = permits.acquire_many(u32::try_from(cap).unwrap_or(u32::MAX)).await;
}

/// Tells a connection beyond the cap why, then closes it. At most
/// [`REFUSING`] refusals are in progress at once, each for at most
/// [`REFUSAL_TIME`]; beyond that a connection is closed without a word, so
/// refusing costs next to nothing however many connect.
fn refuse(stream: TcpStream, body: &'static str, refusing: &Arc<Semaphore>) {
    let Ok(permit) = refusing.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let mut stream = stream;
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await?;
            // Read what the client sent, so that closing does not reset the
            // connection and discard the answer before the client reads it.
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, std::io::Error>(())
        })
        .await;
        drop(permit);
    });
}

/// Refusals in progress at once.
const REFUSING: usize = 64;
/// How long a refusal may take.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// The limits of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// How long the whole body may take to arrive.
    pub body_read_timeout: Duration,
    /// How long the whole request may take, body and handler.
    pub request_timeout: Duration,
    /// The largest body, in bytes.
    pub body_limit: usize,
}

/// Why [`limit_request`] cut a request off; the service turns it into its
/// error body (the status is the service's to choose: 413, 400, 408, 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overrun {
    /// The body is larger than this many bytes.
    TooLarge(usize),
    /// The body could not be read (the client broke off).
    Unreadable,
    /// The body did not arrive within this time.
    BodyTimeout(Duration),
    /// The request was not answered within this time.
    RequestTimeout(Duration),
}

/// Reads the body whole within the body read timeout, then runs the
/// handler, all within the request timeout: a client dribbling its body
/// cannot hold a handler (or a database transaction), and a handler cannot
/// hang a connection. A request cut off is answered `answer(overrun)`, with
/// `Connection: close` when its body may still be on its way and
/// `Retry-After: 1` after a request timeout.
pub async fn limit_request(
    limits: RequestLimits,
    request: Request,
    next: Next,
    answer: impl FnOnce(Overrun) -> Response,
) -> Response {
    let run = async move {
        let (parts, body) = request.into_parts();
        let read = tokio::time::timeout(limits.body_read_timeout, axum::body::to_bytes(body, limits.body_limit));
        let bytes = match read.await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(err)) => return Err(body_overrun(&err, limits.body_limit)),
            Err(_) => return Err(Overrun::BodyTimeout(limits.body_read_timeout)),
        };
        Ok::<_, Overrun>(next.run(Request::from_parts(parts, Body::from(bytes))).await)
    };
    let overrun = match tokio::time::timeout(limits.request_timeout, run).await {
        Ok(Ok(response)) => return response,
        Ok(Err(overrun)) => overrun,
        Err(_) => Overrun::RequestTimeout(limits.request_timeout),
    };
    tracing::warn!(?overrun, "request cut off");
    let mut response = answer(overrun);
    let headers = response.headers_mut();
    match overrun {
        Overrun::RequestTimeout(_) => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Overrun::TooLarge(_) | Overrun::Unreadable | Overrun::BodyTimeout(_) => {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}

fn body_overrun(err: &axum::Error, limit: usize) -> Overrun {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            return Overrun::TooLarge(limit);
        }
        cause = error.source();
    }
    Overrun::Unreadable
}
