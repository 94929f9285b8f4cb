//! Admin routes over hook sources (issue 11, finding 5): a hook token that
//! leaked, or that an operator changes on a schedule, is replaced.
//!
//! - `POST /hooks/sources/{kind}/{registry}/rotate`: a new token; the old
//!   one stays valid for the grace period (`--hook-token-grace`, default
//!   24 h), time to paste the new URL into the registry.
//! - `POST /hooks/sources/{kind}/{registry}/revoke`: a new token; the old
//!   one is refused at once.
//!
//! The new hook URL is in this answer (and in admin reads of the services)
//! only. Managed hooks are re-pointed by the manager, woken here.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{TimeZone as _, Utc};
use serde_json::json;
use tagcast_spec::error_body::ErrorCode;

use super::{ApiError, require_admin};
use crate::AppState;
use crate::store::{Millis, now_ms};

/// The rotate and revoke routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/hooks/sources/{kind}/{registry}/rotate", post(rotate))
        .route("/hooks/sources/{kind}/{registry}/revoke", post(revoke))
}

async fn rotate(
    State(state): State<AppState>,
    Path((kind, registry)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let grace = Millis::try_from(state.config.hook_token_grace.as_millis()).unwrap_or(Millis::MAX);
    replace_token(&state, &kind, &registry, Some(now_ms().saturating_add(grace))).await
}

async fn revoke(
    State(state): State<AppState>,
    Path((kind, registry)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    replace_token(&state, &kind, &registry, None).await
}

async fn replace_token(
    state: &AppState,
    kind: &str,
    registry: &str,
    previous_until: Option<Millis>,
) -> Result<Response, ApiError> {
    let Some(source) = state.store.rotate_hook_token(kind, registry, previous_until).await? else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no hook source of kind {kind:?} for registry {registry:?}"),
        ));
    };
    state.manager.wake.notify_one();
    // Never the token: its source and what happened to the old one.
    tracing::info!(
        kind,
        registry,
        old_token = if previous_until.is_some() {
            "valid for the grace period"
        } else {
            "revoked"
        },
        "hook token replaced"
    );
    let until = previous_until.and_then(|ms| Utc.timestamp_millis_opt(ms).single());
    let body = json!({
        "kind": source.kind,
        "registry": source.registry,
        "url": format!("{}/hooks/{}/{}", state.config.public_url, source.kind, source.token),
        "previousTokenValidUntil": until,
    });
    Ok(axum::Json(body).into_response())
}
