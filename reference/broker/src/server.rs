//! The broker's side of the shared server loop (`tagcast-serve`, issue 11,
//! finding 2): its limits from [`crate::Config`] and its error bodies for a
//! request cut off.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tagcast_serve::Overrun;
pub use tagcast_serve::{ConnectionLimits as Limits, RequestLimits};
use tagcast_spec::error_body::ErrorCode;

use crate::AppState;
use crate::api::ApiError;

/// The error body a connection beyond the cap is told before it is closed.
pub(crate) const REFUSED_BODY: &str = r#"{"status":503,"title":"Service Unavailable","detail":"the broker's connection cap is reached; try again","code":"unavailable"}"#;

/// Reads the body within the body read timeout and runs the handler within
/// the request timeout ([`tagcast_serve::limit_request`]).
pub async fn limit_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    tagcast_serve::limit_request(state.config.request_limits(), request, next, overrun).await
}

fn overrun(overrun: Overrun) -> Response {
    match overrun {
        Overrun::TooLarge(limit) => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body exceeds the limit of {limit} bytes"),
        )
        .into_response(),
        Overrun::Unreadable => {
            ApiError::new(ErrorCode::InvalidRequest, "the request body could not be read").into_response()
        }
        // 408: the spec has no code of its own for it, so the body carries
        // the generic `invalid_request` code with status 408.
        Overrun::BodyTimeout(timeout) => {
            let mut body = ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "the request body did not arrive within the broker's body read timeout ({} ms)",
                    timeout.as_millis()
                ),
            );
            body.0.status = StatusCode::REQUEST_TIMEOUT.as_u16();
            body.0.title = "Request Timeout".into();
            body.into_response()
        }
        Overrun::RequestTimeout(timeout) => ApiError::new(
            ErrorCode::Unavailable,
            format!(
                "the request took longer than the broker's request timeout ({} ms); try again",
                timeout.as_millis()
            ),
        )
        .into_response(),
    }
}
