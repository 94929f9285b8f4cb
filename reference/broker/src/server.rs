//! The HTTP server loop, with the limits that keep slow or many clients
//! from exhausting the broker (issue 11, finding 2).
//!
//! `axum::serve` sets no timer on hyper's HTTP/1 connections, so hyper's
//! header read timeout is off: a client that sends half a request line and
//! goes quiet holds its socket (and a file descriptor) for ever. This loop
//! serves each connection with `hyper::server::conn::http1::Builder`,
//! `timer(TokioTimer)` and `header_read_timeout` (hyper: "if a client does not
//! transmit the entire header within this time, the connection is closed";
//! since hyper 1.6 the timer also runs on an idle keep-alive connection,
//! hyper PR #3828), and caps open connections with a semaphore: a connection
//! beyond the cap is answered `503` with `Connection: close` and closed at
//! once, so an attacker cannot hold more than the cap. hyper's HTTP/1 serves one
//! request at a time per connection, so the cap also bounds concurrent
//! requests.
//!
//! Bodies and handlers are bounded by [`limit_request`], a middleware of
//! [`crate::app`]: the body must arrive completely within the body read
//! timeout (else `408`, connection closed), and the whole request must be
//! answered within the request timeout (else `503` with `Retry-After`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CONNECTION, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tagcast_spec::error_body::ErrorCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::AppState;
use crate::api::ApiError;

/// The limits of the server loop, from [`crate::Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request's headers (also the
    /// idle time allowed between requests on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// The largest number of connections open at once.
    pub max_connections: usize,
}

/// The error body a connection beyond the cap is told before it is closed.
const REFUSED_BODY: &str = r#"{"status":503,"title":"Service Unavailable","detail":"the broker's connection cap is reached; try again","code":"unavailable"}"#;

/// Serves `router` on `listener` until `shutdown` completes, then lets open
/// connections finish their request and waits for them.
///
/// # Errors
///
/// The listener's address cannot be read.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
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
            refuse(stream, peer, &refusing);
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
                tracing::debug!(error = %err, timeout = err.is_timeout(), "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    closing.send_replace(true);
    // Every open connection holds a permit: all permits back means all closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    Ok(())
}

/// Tells a connection beyond the cap why, then closes it. At most
/// [`REFUSING`] refusals are in progress at once, each for at most
/// [`REFUSAL_TIME`]; beyond that a connection is closed without a word, so
/// refusing costs next to nothing however many connect.
fn refuse(stream: TcpStream, peer: SocketAddr, refusing: &Arc<Semaphore>) {
    tracing::warn!(%peer, "connection refused: the connection cap is reached");
    let Ok(permit) = refusing.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let mut stream = stream;
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{REFUSED_BODY}",
            REFUSED_BODY.len()
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

/// The timeouts of one request, from [`crate::Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// How long the whole body may take to arrive.
    pub body_read_timeout: Duration,
    /// How long the whole request may take, body and handler.
    pub request_timeout: Duration,
    /// The largest body.
    pub body_limit: usize,
}

/// Reads the body within the body read timeout and runs the handler within
/// the request timeout. The body is read here, whole, so that a client
/// dribbling it cannot hold a handler (or a database transaction) open.
pub async fn limit_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = state.config.request_limits();
    let run = async move {
        let (parts, body) = request.into_parts();
        let read = tokio::time::timeout(limits.body_read_timeout, axum::body::to_bytes(body, limits.body_limit));
        let bytes = match read.await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(err)) => return body_error(&err, limits.body_limit),
            Err(_) => return body_timeout(limits.body_read_timeout),
        };
        Ok::<_, Infallible>(next.run(Request::from_parts(parts, Body::from(bytes))).await)
    };
    match tokio::time::timeout(limits.request_timeout, run).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => {
            tracing::warn!(timeout = ?limits.request_timeout, "request timed out");
            let mut response = ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "the request took longer than the broker's request timeout ({} ms); try again",
                    limits.request_timeout.as_millis()
                ),
            )
            .into_response();
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

fn body_error(err: &axum::Error, limit: usize) -> Result<Response, Infallible> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut too_large = false;
    while let Some(error) = cause {
        too_large |= error.is::<http_body_util::LengthLimitError>();
        cause = error.source();
    }
    let response = if too_large {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body exceeds the limit of {limit} bytes"),
        )
        .into_response()
    } else {
        ApiError::new(ErrorCode::InvalidRequest, "the request body could not be read").into_response()
    };
    Ok(response)
}

/// 408: the spec has no code of its own for it, so the body carries the
/// generic `invalid_request` code with status 408; the connection is closed
/// because the rest of the body may still be on its way.
fn body_timeout(timeout: Duration) -> Result<Response, Infallible> {
    let mut body = ApiError::new(
        ErrorCode::InvalidRequest,
        format!(
            "the request body did not arrive within the broker's body read timeout ({} ms)",
            timeout.as_millis()
        ),
    );
    body.0.status = StatusCode::REQUEST_TIMEOUT.as_u16();
    body.0.title = "Request Timeout".into();
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    Ok(response)
}
