//! Subscription status, the delivery log and manual redelivery
//! (`spec/service-api.md` API-10 to API-12), and the inbound event log.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, TimeZone as _, Utc};
use serde::Deserialize;
use serde_json::json;
use tagcast_spec::delivery::{
    Attempt, AttemptOutcome, Delivery, DeliveryCounts, DeliveryOutcome, ImageStatus, SubscriptionStatus, classify,
};
use tagcast_spec::error_body::ErrorCode;
use tagcast_spec::subscription::SubscriptionState;

use super::services::not_found;
use super::{ApiError, require_admin};
use crate::AppState;
use crate::store::{DeliveryRecord, InboundEvent, Millis, StoredDecision, now_ms};

/// The routes under the registry base path.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/services/{service_id}/subscription/status", get(get_status))
        .route(
            "/services/{service_id}/subscription/status/images/{image}",
            axum::routing::delete(reset_delivered),
        )
        .route("/services/{service_id}/deliveries", get(list_deliveries))
        .route("/services/{service_id}/deliveries/{delivery_id}", get(get_delivery))
        .route(
            "/services/{service_id}/deliveries/{delivery_id}/redeliver",
            post(redeliver),
        )
}

/// The route of the inbound event log, at the root.
pub fn events_router() -> Router<AppState> {
    Router::new()
        .route("/hooks/events", get(list_events))
        .route("/hooks/events/{event_id}", get(get_event))
}

#[derive(Debug, Deserialize)]
struct Limit {
    limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct DeliveryQuery {
    limit: Option<i64>,
    outcome: Option<DeliveryOutcome>,
}

fn limit(query: &Limit) -> i64 {
    query.limit.unwrap_or(100).clamp(1, 1000)
}

fn time(ms: Millis) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// A stored delivery in the spec's shape.
fn delivery(record: &DeliveryRecord) -> Option<Delivery> {
    let outcome = match record.state.as_str() {
        "pending" => DeliveryOutcome::Pending,
        "succeeded" => DeliveryOutcome::Delivered,
        "dead" => DeliveryOutcome::Dead,
        "skipped" => DeliveryOutcome::Superseded,
        _ if record.last_status == Some(410) => DeliveryOutcome::Unsubscribed,
        _ => DeliveryOutcome::Failed,
    };
    let attempts = record
        .attempt_log
        .iter()
        .map(|a| Attempt {
            number: u32::try_from(a.attempt).unwrap_or(u32::MAX),
            started_at: time(a.started_at),
            duration_ms: u64::try_from(a.duration_ms).unwrap_or_default(),
            response_code: a.status.and_then(|s| u16::try_from(s).ok()),
            outcome: match a.status.and_then(|s| u16::try_from(s).ok()) {
                Some(status) => classify(status),
                None if a
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("--allow-private-callbacks")) =>
                {
                    AttemptOutcome::Refused
                }
                None => AttemptOutcome::Retry,
            },
            error: a.error.clone(),
        })
        .collect();
    Some(Delivery {
        id: record.id.clone(),
        service_id: record.service_id.clone(),
        image: record.repository.parse().ok()?,
        tag: record.tag.parse().ok()?,
        digest: tagcast_spec::Digest::parse(&record.digest).ok()?,
        outcome,
        created_at: time(record.created_at),
        next_attempt_at: (record.state == "pending")
            .then(|| record.next_attempt_at.map(time))
            .flatten(),
        response_code: record.last_status.and_then(|s| u16::try_from(s).ok()),
        attempts,
        event_id: Some(record.event_id.clone()),
    })
}

async fn get_status(State(state): State<AppState>, Path(service_id): Path<String>) -> Result<Response, ApiError> {
    state
        .store
        .service(&service_id)
        .await?
        .ok_or_else(|| not_found(&service_id))?;
    let sub = state.store.subscription_state(&service_id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("service {service_id:?} has no subscription"),
        )
    })?;
    let mut counts = DeliveryCounts::default();
    for (name, n) in &sub.counts {
        let n = u64::try_from(*n).unwrap_or_default();
        match name.as_str() {
            "pending" => counts.pending += n,
            "succeeded" => counts.delivered += n,
            "failed" => counts.failed += n,
            "dead" => counts.dead += n,
            _ => {}
        }
    }
    let last = state.store.deliveries(&service_id, 1).await?;
    let last_delivery = match last.first() {
        Some(d) => state
            .store
            .delivery(&service_id, &d.id)
            .await?
            .as_ref()
            .and_then(delivery),
        None => None,
    };
    let status = SubscriptionStatus {
        service_id: service_id.clone(),
        state: if sub.enabled {
            SubscriptionState::Active
        } else {
            SubscriptionState::Unsubscribed
        },
        images: sub
            .images
            .iter()
            .filter_map(|i| {
                Some(ImageStatus {
                    image: i.repository.parse().ok()?,
                    delivered_tag: i.last_tag.as_deref().and_then(|t| t.parse().ok()),
                    delivered_digest: i
                        .last_digest
                        .as_deref()
                        .and_then(|d| tagcast_spec::Digest::parse(d).ok()),
                    delivered_at: i.last_delivered_at.map(time),
                    last_decision: i.last_decision.clone(),
                })
            })
            .collect(),
        deliveries: counts,
        last_delivery,
    };
    Ok(axum::Json(status).into_response())
}

async fn list_deliveries(
    State(state): State<AppState>,
    Path(service_id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<DeliveryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let Query(query) = query.map_err(super::query_rejection)?;
    state
        .store
        .service(&service_id)
        .await?
        .ok_or_else(|| not_found(&service_id))?;
    let wanted = query.limit.unwrap_or(100).clamp(1, 1000);
    let fetch = if query.outcome.is_some() { 1000 } else { wanted };
    let mut out = Vec::new();
    for record in state.store.deliveries(&service_id, fetch).await? {
        // The list carries each delivery's attempts too.
        if let Some(full) = state.store.delivery(&service_id, &record.id).await? {
            out.extend(delivery(&full).filter(|d| query.outcome.is_none_or(|o| d.outcome == o)));
        }
        if out.len() as i64 >= wanted {
            break;
        }
    }
    Ok(axum::Json(out).into_response())
}

async fn get_delivery(
    State(state): State<AppState>,
    Path((service_id, delivery_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let record = state
        .store
        .delivery(&service_id, &delivery_id)
        .await?
        .ok_or_else(|| delivery_not_found(&service_id, &delivery_id))?;
    let body = delivery(&record).ok_or_else(|| ApiError::new(ErrorCode::Internal, "a stored delivery is malformed"))?;
    Ok(axum::Json(body).into_response())
}

fn delivery_not_found(service_id: &str, delivery_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("service {service_id:?} has no delivery {delivery_id:?}"),
    )
}

/// API-17: forgets the last delivered tag of one image, so that a wrong
/// (say future-dated, CB-18) delivery stops blocking its channel.
async fn reset_delivered(
    State(state): State<AppState>,
    Path((service_id, image)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    state
        .store
        .service(&service_id)
        .await?
        .ok_or_else(|| not_found(&service_id))?;
    let repository = tagcast_spec::Repository::parse(&image).map_err(|e| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("{image:?} is not an image repository: {e}"),
        )
        .requirement("API-17")
    })?;
    if !state
        .store
        .reset_delivered(&service_id, &repository.to_string())
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("service {service_id:?} does not subscribe to {repository}"),
        )
        .requirement("API-17"));
    }
    tracing::info!(service = %service_id, image = %repository, "last delivered tag reset (API-17)");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn redeliver(
    State(state): State<AppState>,
    Path((service_id, delivery_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let current = state
        .store
        .delivery(&service_id, &delivery_id)
        .await?
        .ok_or_else(|| delivery_not_found(&service_id, &delivery_id))?;
    let unsubscribed = state
        .store
        .subscription_state(&service_id)
        .await?
        .is_some_and(|s| !s.enabled);
    if unsubscribed {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("the subscription of service {service_id:?} is unsubscribed; a PUT of the service renews it"),
        )
        .requirement("API-12"));
    }
    if current.state == "pending" {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("delivery {delivery_id:?} is pending already; its next attempt is scheduled"),
        ));
    }
    if !state.store.redeliver(&service_id, &delivery_id, now_ms()).await? {
        return Err(delivery_not_found(&service_id, &delivery_id));
    }
    state.wake_worker.notify_one();
    tracing::info!(service = %service_id, delivery = %delivery_id, "manual redelivery");
    let record = state
        .store
        .delivery(&service_id, &delivery_id)
        .await?
        .ok_or_else(|| delivery_not_found(&service_id, &delivery_id))?;
    let body = delivery(&record).ok_or_else(|| ApiError::new(ErrorCode::Internal, "a stored delivery is malformed"))?;
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

async fn list_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Limit>, QueryRejection>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let Query(query) = query.map_err(super::query_rejection)?;
    let events = state.store.inbound_events(limit(&query)).await?;
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let decisions = state.store.decisions(&ids).await?;
    let out: Vec<_> = events.iter().map(|e| event_json(e, &decisions)).collect();
    Ok(axum::Json(out).into_response())
}

/// One event of the log with its decisions, each delivered one with its
/// delivery's outcome: the trail `tagcast broker explain` prints.
async fn get_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let event = state.store.inbound_event(&event_id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("no event {event_id:?} in the event log (it may have been pruned: retain-events)"),
        )
    })?;
    let decisions = state.store.decisions(std::slice::from_ref(&event.id)).await?;
    let mut body = event_json(&event, &decisions);
    for (decision, d) in body["decisions"].as_array_mut().into_iter().flatten().zip(&decisions) {
        if let Some(id) = &d.decision.delivery_id {
            let outcome = state
                .store
                .delivery(&d.service_id, id)
                .await?
                .as_ref()
                .and_then(delivery)
                .map(|delivery| delivery.outcome);
            decision["deliveryOutcome"] = json!(outcome);
        }
    }
    Ok(axum::Json(body).into_response())
}

/// An event of the log, with the decisions made for it (`decisions` holds
/// the decisions of several events: those of `e` are picked).
fn event_json(e: &InboundEvent, decisions: &[StoredDecision]) -> serde_json::Value {
    let mine: Vec<_> = decisions
        .iter()
        .filter(|d| d.decision.event_id == e.id)
        .map(|d| {
            json!({
                "serviceId": d.service_id,
                "decision": d.decision.decision,
                "reason": d.decision.reason,
                "deliveryId": d.decision.delivery_id,
                "decidedAt": d.decision.decided_at,
            })
        })
        .collect();
    json!({
        "id": e.id,
        "kind": e.kind,
        "registry": e.registry,
        "registryEventId": e.source_event_id,
        "image": e.repository,
        "tag": e.tag,
        "digest": e.digest,
        "status": e.status,
        "reason": e.reason,
        "receivedAt": time(e.received_at),
        "matchedAt": e.matched_at.map(time),
        "deliveries": e.matched,
        "decisions": mine,
    })
}
