//! `POST /hooks/{kind}/{token}`: container registry push webhooks in.
//!
//! Unknown kind or token: 404, nothing stored. Unauthentic: 401, nothing
//! stored. Authentic but not the kind's format: 400, nothing stored. Authentic: every event stored durably (accepted, or ignored with
//! a reason), then 202 — matching and delivery run asynchronously.

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tagcast_spec::error_body::ErrorCode;

use super::ApiError;
use crate::AppState;
use crate::inbound::{self, Rejection};
use crate::store::Disposition;

/// The inbound route, with the body limit.
pub fn router(body_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/hooks/{kind}/{token}", post(receive_hook))
        .layer(DefaultBodyLimit::max(body_limit))
}

async fn receive_hook(
    State(state): State<AppState>,
    Path((kind, token)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such hook");
    let Some(adapter) = inbound::adapter(&kind) else {
        state.metrics.hook_rejected("unknown", "unknown_kind");
        // The token is a credential: never logged, not even a wrong one
        // (it may be a real token sent to the wrong kind).
        tracing::warn!(
            kind = %kind.escape_debug().take(64).collect::<String>(),
            served = %served_kinds(),
            "inbound hook refused: this broker serves no such kind (404)"
        );
        return Err(not_found());
    };
    let kind = adapter.kind().as_str();
    let source = match state.store.hook_source_by_token(&token).await? {
        Some(source) if source.kind == kind => source,
        found => {
            state.metrics.hook_rejected(kind, "unknown_token");
            let why = match found {
                Some(_) => "the token belongs to a hook of another kind",
                None => "no hook source has this token",
            };
            tracing::warn!(kind, reason = why, "inbound hook refused: unknown token (404)");
            return Err(not_found());
        }
    };
    if let Err(wait) = state.hook_limiter.check(&super::token_hash(&token)) {
        state.metrics.rate_limited("hook");
        state.metrics.hook_rejected(kind, "rate_limited");
        return Ok(crate::ratelimit::too_many("this hook token", wait));
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            state.metrics.hook_rejected(kind, "too_large");
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body exceeds the limit of {} bytes", state.config.body_limit),
            ));
        }
        Err(rejection) => {
            state.metrics.hook_rejected(kind, "unreadable");
            return Err(ApiError::new(ErrorCode::InvalidRequest, rejection.body_text()));
        }
    };
    let events = match adapter.receive(&state.hook_auth, &source, &headers, &body) {
        Ok(events) => events,
        Err(Rejection::Unauthorized(reason)) => {
            state.metrics.hook_rejected(kind, "unauthorized");
            tracing::warn!(kind, registry = %source.registry, %reason, "inbound hook rejected");
            return Err(ApiError::new(ErrorCode::InvalidSignature, reason));
        }
        Err(Rejection::Malformed(reason)) => {
            state.metrics.hook_rejected(kind, "malformed");
            tracing::warn!(kind, registry = %source.registry, %reason, "inbound hook body refused");
            return Err(ApiError::new(ErrorCode::InvalidRequest, reason));
        }
    };
    if events.len() > state.config.max_events_per_hook {
        // All of an envelope is written in one transaction: a cap keeps one
        // request from holding the writer for long.
        state.metrics.hook_rejected(kind, "too_many_events");
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the hook carries {} events; the broker takes at most {} per request (max-events-per-hook)",
                events.len(),
                state.config.max_events_per_hook
            ),
        ));
    }
    // Pulls and blob pushes are traffic, not releases: counted, not stored;
    // the answer keeps the envelope's order.
    let mut traffic = Vec::new();
    let mut stored = Vec::with_capacity(events.len());
    for (index, event) in events.into_iter().enumerate() {
        match (crate::inbound::traffic(&event), &event.disposition) {
            (Some(label), Disposition::Ignored(reason)) => {
                state.metrics.hook_event_not_stored(kind, label);
                traffic.push((index, reason.clone()));
            }
            _ => stored.push(event),
        }
    }
    let events = stored;
    let window = i64::try_from(state.config.dedup_window.as_millis()).unwrap_or(i64::MAX);
    let dedup_since = crate::store::now_ms().saturating_sub(window);
    let recorded = state.store.record_inbound(events, dedup_since).await?;
    // Durable now: acknowledge, and let matching run.
    state.wake_matcher.notify_one();
    state.metrics.hook_received(kind, started.elapsed().as_secs_f64());
    let mut out = Vec::with_capacity(recorded.len() + traffic.len());
    let mut traffic_left = traffic.iter().peekable();
    for (id, disposition) in &recorded {
        while let Some((_, reason)) = traffic_left.next_if(|(index, _)| *index == out.len()) {
            out.push(json!({"status": "ignored", "reason": reason, "stored": false}));
        }
        let accepted = *disposition == Disposition::Accepted;
        state.metrics.hook_event(kind, accepted);
        match disposition {
            Disposition::Accepted => out.push(json!({"id": id, "status": "accepted"})),
            Disposition::Ignored(reason) => out.push(json!({"id": id, "status": "ignored", "reason": reason})),
        }
    }
    for (_, reason) in traffic_left {
        out.push(json!({"status": "ignored", "reason": reason, "stored": false}));
    }
    tracing::info!(
        kind,
        registry = %source.registry,
        events = recorded.len(),
        accepted = recorded.iter().filter(|(_, d)| *d == Disposition::Accepted).count(),
        "inbound hook stored"
    );
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "events": out }))).into_response())
}

/// The served kinds, comma-separated, for log lines.
fn served_kinds() -> String {
    inbound::SERVED_KINDS.map(|k| k.as_str()).join(", ")
}
