//! Error answers: the error body of `spec/service-api.md` API-13, which
//! every 4xx and 5xx answer with a body must carry (also a CD endpoint's).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tagcast_spec::error_body::{ErrorBody, ErrorCode};

/// An error answer; internal causes are logged by the caller, never put
/// into `detail`.
#[derive(Debug)]
pub(crate) struct ApiError(ErrorBody);

impl ApiError {
    pub(crate) fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self(ErrorBody::new(code, detail))
    }

    pub(crate) fn requirement(self, requirement: &str) -> Self {
        Self(self.0.with_requirement(requirement))
    }

    /// Another status than the code's usual one (408: API-13 has no code
    /// of its own for it); the title follows the status.
    pub(crate) fn status(mut self, status: StatusCode) -> Self {
        self.0.status = status.as_u16();
        self.0.title = status.canonical_reason().unwrap_or("Error").to_owned();
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0)).into_response()
    }
}
