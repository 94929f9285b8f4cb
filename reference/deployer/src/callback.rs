//! The callback resource: `POST <route>` receives a signed CloudEvent,
//! `OPTIONS <route>` answers the CloudEvents webhook validation handshake
//! (DESIGN.md §6, `spec/callbacks.md`).
//!
//! Order of checks, each with its answer: body limit (413), content type
//! (415), signature and timestamp (401), event schema (400), then the
//! deployer's own decision: a seen `webhook-id` (200, nothing done), an
//! event that is not an update for what is deployed (200, refused, in the
//! history), otherwise queued durably and 202 at once; the worker applies
//! it.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tagcast_spec::event::{CONTENT_TYPE, CloudEvent};
use tagcast_spec::webhook::{self, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, VerifyError};
use tagcast_spec::{ImagePublished, Tag};

use tagcast_spec::error_body::ErrorCode;

use crate::AppState;
use crate::error::ApiError;
use crate::store::{Outcome, entry};

/// The handshake's request header (CloudEvents HTTP Web Hooks 1.0, §4).
pub const REQUEST_ORIGIN: &str = "webhook-request-origin";
/// The handshake's optional rate request header.
pub const REQUEST_RATE: &str = "webhook-request-rate";
/// The handshake's grant header.
pub const ALLOWED_ORIGIN: &str = "webhook-allowed-origin";
/// The handshake's rate grant header.
pub const ALLOWED_RATE: &str = "webhook-allowed-rate";

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(&state.config.route, post(receive_callback).options(validate_origin))
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            close_after_unread_body,
        ))
}

/// A 413 is answered before the body is read, so the connection cannot
/// carry another request; say so, or a client that pools connections
/// sends its next request into a closing socket.
/// axum's own 413 has a text body; the contract wants the error body
/// (API-13).
async fn close_after_unread_body(State(state): State<AppState>, response: Response) -> Response {
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    let mut response = ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the body is larger than {} bytes", state.config.body_limit),
    )
    .requirement("CB-9")
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the request's media type is `application/cloudevents+json`
/// (parameters such as `charset=utf-8` allowed, case-insensitive).
fn is_cloudevents_json(headers: &HeaderMap) -> bool {
    header_str(headers, header::CONTENT_TYPE.as_str())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(CONTENT_TYPE))
}

async fn receive_callback(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !is_cloudevents_json(&headers) {
        state.metrics.callback("unsupported_media_type");
        return ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("content type must be {CONTENT_TYPE} (CB-9)"),
        )
        .requirement("CB-9")
        .into_response();
    }

    let now = chrono::Utc::now().timestamp();
    if let Err(err) = webhook::verify(
        &state.config.secrets,
        header_str(&headers, HEADER_ID),
        header_str(&headers, HEADER_TIMESTAMP),
        header_str(&headers, HEADER_SIGNATURE),
        &body,
        now,
        state.config.tolerance,
    ) {
        tracing::warn!(requirement = err.requirement(), "rejected callback: {err}");
        state.metrics.callback("unauthorized");
        let requirement = err.requirement();
        let message = match err {
            // Say which rule, but not how many secrets were tried.
            VerifyError::NoMatchingSignature { .. } => "invalid signature (CB-5)".to_owned(),
            other => other.to_string(),
        };
        return ApiError::new(ErrorCode::InvalidSignature, message)
            .requirement(requirement)
            .into_response();
    }
    let webhook_id = header_str(&headers, HEADER_ID).unwrap_or_default().trim().to_owned();

    let event: CloudEvent<ImagePublished> = match parse_event(&body) {
        Ok(event) => event,
        Err(message) => {
            tracing::warn!(%webhook_id, "malformed callback: {message}");
            state.metrics.callback("invalid");
            return ApiError::new(ErrorCode::InvalidRequest, format!("malformed callback: {message}"))
                .requirement("CB-9")
                .into_response();
        }
    };
    if event.id != webhook_id {
        state.metrics.callback("invalid");
        return ApiError::new(
            ErrorCode::InvalidRequest,
            format!("event id {:?} differs from webhook-id {webhook_id:?} (CB-3)", event.id),
        )
        .requirement("CB-3")
        .into_response();
    }

    match decide(&state, &event, &body).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(%webhook_id, "state store failed: {err}");
            ApiError::new(
                ErrorCode::Internal,
                "the deployer could not record the event; retry later",
            )
            .into_response()
        }
    }
}

/// The event in `body`, or why not with the member it is about:
/// serde_json's own message says `unknown variant "prod"` but not where,
/// the path does (`data.stage: unknown variant …`).
fn parse_event(body: &[u8]) -> Result<CloudEvent<ImagePublished>, String> {
    let mut json = serde_json::Deserializer::from_slice(body);
    let event = serde_path_to_error::deserialize(&mut json).map_err(|e| e.to_string())?;
    json.end().map_err(|e| e.to_string())?;
    Ok(event)
}

async fn decide(
    state: &AppState,
    event: &CloudEvent<ImagePublished>,
    body: &[u8],
) -> Result<Response, crate::store::StoreError> {
    let store = &state.store;
    let data = &event.data;
    let image = data.image.to_string();
    let tag = data.tag.to_string();
    let duplicate = || {
        state.metrics.callback("duplicate");
        tracing::info!(event = %event.id, "duplicate delivery, already handled");
        answer(StatusCode::OK, json!({ "status": "duplicate", "eventId": event.id }))
    };
    if store.seen(&event.id).await? {
        return Ok(duplicate());
    }

    let refusal = if !state.config.images.contains(&data.image) {
        Some(format!("image {image} is not deployed here"))
    } else {
        let applied = store.applied(&image).await?;
        let current = applied.as_ref().and_then(|a| Tag::parse(&a.tag).ok());
        state
            .config
            .policy
            .check(current.as_ref(), &data.tag)
            .err()
            .map(|why| format!("not an update: {why}"))
    };
    if let Some(reason) = refusal {
        let line = entry(
            &event.id,
            &image,
            &tag,
            Some(&data.digest.to_string()),
            Outcome::Refused,
            &reason,
        );
        if !store.record_refused(&event.id, &line).await? {
            return Ok(duplicate());
        }
        tracing::info!(event = %event, "refused: {reason}");
        state.metrics.callback("refused");
        return Ok(answer(
            StatusCode::OK,
            json!({ "status": "refused", "eventId": event.id, "reason": reason }),
        ));
    }

    if !store.enqueue(&event.id, &image, &tag, body).await? {
        return Ok(duplicate());
    }
    let held = store.hold().await?.held;
    tracing::info!(event = %event, held, "accepted");
    state.metrics.callback("accepted");
    state.wake.notify_one();
    Ok(answer(
        StatusCode::ACCEPTED,
        json!({ "status": "accepted", "eventId": event.id, "held": held }),
    ))
}

/// The CloudEvents webhook validation handshake: an `OPTIONS` request with
/// `WebHook-Request-Origin` is granted with `WebHook-Allowed-Origin` when
/// the origin is allowed (any, unless `--allowed-origin` lists some).
async fn validate_origin(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let allow = [(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"))];
    let Some(origin) = header_str(&headers, REQUEST_ORIGIN)
        .map(str::trim)
        .filter(|o| !o.is_empty())
    else {
        return (StatusCode::NO_CONTENT, allow).into_response();
    };
    let allowed = state.config.allowed_origins.is_empty()
        || state
            .config
            .allowed_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin));
    if !allowed {
        tracing::warn!(origin, "validation handshake refused: origin not allowed");
        return (StatusCode::FORBIDDEN, allow).into_response();
    }
    let Ok(origin_value) = HeaderValue::from_str(origin) else {
        return (StatusCode::BAD_REQUEST, allow).into_response();
    };
    let mut response = (StatusCode::OK, allow).into_response();
    let h = response.headers_mut();
    h.insert(ALLOWED_ORIGIN, origin_value);
    // No rate limit of our own: grant what was asked, or say "any".
    h.insert(ALLOWED_RATE, HeaderValue::from_static("*"));
    if headers.contains_key(REQUEST_RATE) {
        tracing::info!(origin, "validation handshake granted (rate: any)");
    } else {
        tracing::info!(origin, "validation handshake granted");
    }
    response
}
