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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0)).into_response()
    }
}
