//! The deployer's side of the shared server loop (`tagcast-serve`, issue
//! 11, finding 2): its limits, configurable with `tagcast deployer
//! --header-read-timeout …`, and its error bodies for a request cut off.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tagcast_serve::{ConnectionLimits, Overrun, RequestLimits};
use tagcast_spec::error_body::ErrorCode;

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
pub(crate) const OVER_CAP_BODY: &str = r#"{"status":503,"title":"Service Unavailable","detail":"the deployer's connection cap is reached; try again","code":"unavailable"}"#;

impl Limits {
    /// The limits of the server loop.
    pub(crate) fn connections(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: self.header_read_timeout,
            max_connections: self.max_connections,
        }
    }
}

/// Reads the body whole within the body read timeout, then runs the
/// handler, all within the request timeout ([`tagcast_serve::limit_request`]).
pub(crate) async fn limit_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = RequestLimits {
        body_read_timeout: state.config.limits.body_read_timeout,
        request_timeout: state.config.limits.request_timeout,
        body_limit: state.config.body_limit,
    };
    tagcast_serve::limit_request(limits, request, next, overrun).await
}

fn overrun(overrun: Overrun) -> Response {
    match overrun {
        Overrun::TooLarge(limit) => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {limit} bytes"),
        )
        .requirement("CB-9")
        .into_response(),
        Overrun::Unreadable => {
            ApiError::new(ErrorCode::InvalidRequest, "the request body could not be read").into_response()
        }
        // API-13 has no code of its own for 408.
        Overrun::BodyTimeout(timeout) => ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "the request body did not arrive within the deployer's body read timeout ({} ms)",
                timeout.as_millis()
            ),
        )
        .status(StatusCode::REQUEST_TIMEOUT)
        .into_response(),
        Overrun::RequestTimeout(timeout) => ApiError::new(
            ErrorCode::Unavailable,
            format!(
                "the request took longer than the deployer's request timeout ({} ms); try again",
                timeout.as_millis()
            ),
        )
        .into_response(),
    }
}
