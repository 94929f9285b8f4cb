//! The HTTP API: one module per resource, each ending in `router()`.

pub mod deliveries;
pub mod hook_sources;
pub mod hooks;
pub mod ops;
pub mod services;

use axum::Json;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tagcast_spec::error_body::{ErrorBody, ErrorCode};

use crate::AppState;
use crate::store::StoreError;

/// The base path of the GA4GH Service Registry API.
pub const BASE_PATH: &str = "/ga4gh/registry/v1";

/// An error answer in the spec's error body (`spec/service-api.md` API-13).
/// Internal causes are logged, never sent.
#[derive(Debug)]
pub struct ApiError(pub ErrorBody);

impl ApiError {
    /// An error of a code with a detail.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self(ErrorBody::new(code, detail))
    }

    /// The same, naming the contract rule that was broken.
    #[must_use]
    pub fn requirement(mut self, id: &str) -> Self {
        self.0 = self.0.with_requirement(id);
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => ApiError::new(ErrorCode::Conflict, format!("{what} exists already")),
            other => {
                tracing::error!(error = %other, source = ?std::error::Error::source(&other), "store error");
                ApiError::new(ErrorCode::Internal, "the broker's database failed; try again")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let unauthorized = status == StatusCode::UNAUTHORIZED;
        let mut response = (status, Json(self.0)).into_response();
        if unauthorized {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The SHA-256 of an admin token: only the hash is kept and compared.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether the request carries the admin token; compared in constant time.
pub fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    bearer(headers).is_some_and(|token| bool::from(token_hash(token).ct_eq(&state.admin_token_hash)))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Writes need `Authorization: Bearer <admin token>`: 401 without, 403 wrong.
///
/// # Errors
///
/// The 401 or 403 answer.
pub fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match bearer(headers) {
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "this request needs Authorization: Bearer <admin token>",
        )),
        Some(_) if is_admin(state, headers) => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::Forbidden,
            "the bearer token is not the admin token",
        )),
    }
}

/// A body that could not be read: 413 over the limit, else 400.
pub fn body_rejection(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::PayloadTooLarge, "the body exceeds the broker's limit")
    } else {
        ApiError::new(ErrorCode::InvalidRequest, rejection.body_text())
    }
}

/// A query string that does not parse: 400.
pub fn query_rejection(rejection: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, rejection.body_text())
}

/// Unknown paths answer the error body too (API-13).
pub async fn fallback() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such resource")
}

/// Known paths with another method answer the error body too (API-13).
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "this resource does not take this method")
}
