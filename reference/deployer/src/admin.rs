//! The operator's resource, mounted only when an admin token is configured
//! (`--admin-token`): `GET /status` (hold flag, applied tags, queue length,
//! history), `POST /hold` and `POST /release` — the HTTP twins of
//! `tagcast deployer status|hold|release`.
//!
//! The token is accepted only as `Authorization: Bearer <token>`: a token
//! in the query string ends up in access logs, proxies' logs and shell
//! history, so `?token=` is refused like a missing token (401). Both the
//! given and the expected token are hashed (SHA-256) and the digests
//! compared in constant time (`subtle`), so neither the content nor the
//! length of the token leaks through the answer's timing.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use tagcast_spec::error_body::ErrorCode;

use crate::AppState;
use crate::error::ApiError;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/status", get(get_status))
        .route("/hold", post(post_hold))
        .route("/release", post(post_release))
}

#[derive(Debug, Default, Deserialize)]
struct StatusQuery {
    history: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct HoldQuery {
    reason: Option<String>,
}

fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(expected) = state.config.admin_token.as_deref() else {
        return false;
    };
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return false;
    };
    // Fixed-length digests: the comparison takes the same time whatever
    // the given token's length or content.
    bool::from(Sha256::digest(given.as_bytes()).ct_eq(&Sha256::digest(expected.as_bytes())))
}

fn unauthorized(query: Option<&str>) -> Response {
    // Never the token itself: only whether one was put into the URL.
    if query.is_some_and(|q| q.split('&').any(|pair| pair.starts_with("token="))) {
        tracing::warn!("admin request refused: a token in the query string is not accepted; use Authorization: Bearer");
    } else {
        tracing::warn!("admin request refused: no valid Authorization: Bearer token");
    }
    let mut response = ApiError::new(ErrorCode::Unauthorized, "a valid admin token is required").into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn store_failed(err: &crate::StoreError) -> Response {
    tracing::error!("admin: {err}");
    ApiError::new(ErrorCode::Internal, "state store unavailable").into_response()
}

async fn get_status(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<StatusQuery>,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized(uri.query());
    }
    match state.store.status(query.history.unwrap_or(20).min(1000)).await {
        Ok(status) => axum::Json(status).into_response(),
        Err(err) => store_failed(&err),
    }
}

async fn post_hold(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HoldQuery>,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized(uri.query());
    }
    match state.store.set_hold(true, query.reason.as_deref()).await {
        Ok(()) => {
            tracing::warn!(reason = query.reason.as_deref().unwrap_or(""), "on hold");
            axum::Json(json!({ "held": true })).into_response()
        }
        Err(err) => store_failed(&err),
    }
}

async fn post_release(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized(uri.query());
    }
    match state.store.set_hold(false, None).await {
        Ok(()) => {
            tracing::warn!("released");
            state.wake.notify_one();
            axum::Json(json!({ "held": false })).into_response()
        }
        Err(err) => store_failed(&err),
    }
}
