//! The deployer's HTTP server loop and the per-request limits that keep a
//! slow or numerous client from holding it (issue 11, finding 2).
//!
//! `axum::serve` gives hyper no timer, so hyper's header read timeout is
//! off and a client that sends half a request line and goes quiet keeps its
//! socket for ever (slowloris). Here every connection is served by
//! `hyper::server::conn::http1::Builder` with `timer(TokioTimer)` and
//! `header_read_timeout` — hyper's documentation: "Set a timeout for
//! reading client request headers. If a client does not transmit the
//! entire header within this time, the connection is closed." — and the
//! number of open connections is capped by a semaphore: one beyond the cap
//! is answered `503` with `Connection: close` at once and closed, so an
//! attacker never holds more than the cap, and the operator sees why.
//!
//! [`limit_request`] (a middleware of [`crate::app`]) bounds the rest: the
//! body must arrive whole within the body read timeout (else `408`, the
//! connection closed) and the request must be answered within the request
//! timeout (else `503` with `Retry-After`).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tagcast_spec::error_body::ErrorCode;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::AppState;
use crate::error::ApiError;

/// Default time a client has to send a request's headers: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a client has to send a request's body: 30 s.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a request may take from its first body byte to its
/// answer: 60 s (callbacks are queued, so the handler itself is quick).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on open connections: 256 (a broker uses a few).
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// The limits of the server; every one configurable (`tagcast deployer
/// --header-read-timeout …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request's headers (also how
    /// long a kept-alive connection may stay idle between requests).
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body.
    pub body_read_timeout: Duration,
    /// How long a request may take, body and handler together.
    pub request_timeout: Duration,
    /// The largest number of connections open at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// The answer to a connection beyond the cap (an API-13 error body).
const OVER_CAP_BODY: &str = r#"{"status":503,"title":"Service Unavailable","detail":"the deployer's connection cap is reached; try again","code":"unavailable"}"#;

/// Serves `router` on `listener` until `shutdown` completes; then stops
/// accepting, lets each open connection finish its request, and waits for
/// all of them.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let cap = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(cap));
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
                    // Out of file descriptors, or reset before accept: back
                    // off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n{OVER_CAP_BODY}",
                OVER_CAP_BODY.len()
            );
            // Never wait on this client: a full socket buffer loses the answer.
            let _ = stream.try_write(answer.as_bytes());
            tracing::warn!(%peer, cap, "connection refused: the connection cap is reached");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
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
    // Each open connection holds a permit: all of them back, all closed.
    let _ = permits.acquire_many(u32::try_from(cap).unwrap_or(u32::MAX)).await;
}

/// Reads the body whole within the body read timeout, then runs the
/// handler, all within the request timeout: a client dribbling its body
/// cannot hold a handler, and a handler cannot hang a connection.
pub(crate) async fn limit_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = state.config.limits;
    let body_limit = state.config.body_limit;
    let run = async move {
        let (parts, body) = request.into_parts();
        let bytes = match tokio::time::timeout(limits.body_read_timeout, axum::body::to_bytes(body, body_limit)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(err)) => return Ok(body_error(&err, body_limit)),
            Err(_) => return Ok(body_timeout(limits.body_read_timeout)),
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
                    "the request took longer than the deployer's request timeout ({} ms); try again",
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

/// A body that could not be read: too large (413, answered by the
/// callback route's own 413 path with `Connection: close`), or broken.
fn body_error(err: &axum::Error, limit: usize) -> Response {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            let mut response = ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body is larger than {limit} bytes"),
            )
            .requirement("CB-9")
            .into_response();
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
        cause = error.source();
    }
    tracing::debug!(error = %err, "request body could not be read");
    let mut response = ApiError::new(ErrorCode::InvalidRequest, "the request body could not be read").into_response();
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// 408 with the error body (code `invalid_request`: API-13 has no code of
/// its own for it); the connection is closed, the rest of the body may
/// still be on its way.
fn body_timeout(timeout: Duration) -> Response {
    tracing::warn!(?timeout, "request body not received in time; connection closed");
    let mut response = ApiError::new(
        ErrorCode::InvalidRequest,
        format!(
            "the request body did not arrive within the deployer's body read timeout ({} ms)",
            timeout.as_millis()
        ),
    )
    .status(StatusCode::REQUEST_TIMEOUT)
    .into_response();
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}
