//! The operator's resource, mounted only when an admin token is configured
//! (`--admin-token`): `GET /status` (hold flag, applied tags, queue length,
//! history), `POST /hold` and `POST /release` — the HTTP twins of
//! `tagcast deployer status|hold|release`.
//!
//! The token is accepted as `Authorization: Bearer <token>`, or, for
//! `GET /status` only, as `?token=` so that tools that can only be given a
//! URL (`tagcast conformance cd --status-url`) can read it. Compared in
//! constant time.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
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
struct TokenQuery {
    token: Option<String>,
    history: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct HoldQuery {
    reason: Option<String>,
}

fn authorized(state: &AppState, headers: &HeaderMap, query_token: Option<&str>) -> bool {
    let Some(expected) = state.config.admin_token.as_deref() else {
        return false;
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let given = bearer.or(query_token).unwrap_or_default();
    // Equal lengths are compared in constant time; a length mismatch
    // reveals only the length.
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

fn unauthorized() -> Response {
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

async fn get_status(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<TokenQuery>) -> Response {
    if !authorized(&state, &headers, query.token.as_deref()) {
        return unauthorized();
    }
    match state.store.status(query.history.unwrap_or(20).min(1000)).await {
        Ok(status) => axum::Json(status).into_response(),
        Err(err) => store_failed(&err),
    }
}

async fn post_hold(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<HoldQuery>) -> Response {
    if !authorized(&state, &headers, None) {
        return unauthorized();
    }
    match state.store.set_hold(true, query.reason.as_deref()).await {
        Ok(()) => {
            tracing::warn!(reason = query.reason.as_deref().unwrap_or(""), "on hold");
            axum::Json(json!({ "held": true })).into_response()
        }
        Err(err) => store_failed(&err),
    }
}

async fn post_release(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers, None) {
        return unauthorized();
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
