//! Azure Container Registry webhooks.
//!
//! https://learn.microsoft.com/azure/container-registry/container-registry-webhook-reference :
//! one event per request, no envelope: `{"id", "timestamp", "action":
//! "push", "target": {"mediaType", "size", "digest", "length",
//! "repository", "tag"}, "request": {"id", "host", "method", "useragent"}}`.
//! Other actions: `delete`, `quarantine`, `chart_push`, `chart_delete`,
//! and `ping` (the portal's and `az acr webhook ping`'s test event), all
//! acknowledged and ignored. `Content-Type` is `application/json` unless a
//! custom header overrides it, so it is not checked.
//!
//! Authentication: ACR adds only the webhook's `customHeaders`; with
//! `--hook-token` the broker requires `Authorization: Bearer <hook token>`
//! there, compared in constant time.

use axum::http::HeaderMap;
use serde::Deserialize;
use tagcast_spec::subscription::RegistryKind;

use super::{Adapter, HookAuth, Push, Rejection};
use crate::store::{Disposition, HookSource, NewInboundEvent};

/// The `acr` adapter.
#[derive(Debug, Clone, Copy)]
pub struct Acr;

/// An ACR webhook event.
#[derive(Debug, Deserialize)]
pub struct Event {
    id: String,
    action: String,
    #[serde(default)]
    target: Option<Target>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

impl Adapter for Acr {
    type Payload = Event;

    fn kind(&self) -> RegistryKind {
        RegistryKind::Acr
    }

    fn parse(&self, _headers: &HeaderMap, body: &[u8]) -> Result<Event, String> {
        super::json(body).map_err(|err| format!("expected an ACR event (id, action, target): {err}"))
    }

    fn authenticate(
        &self,
        auth: &HookAuth,
        _source: &HookSource,
        headers: &HeaderMap,
        _body: &[u8],
        _payload: Option<&Event>,
    ) -> Result<(), Rejection> {
        auth.check_bearer(headers)
    }

    fn normalize(&self, source: &HookSource, event: Event) -> Vec<NewInboundEvent> {
        let Some(target) = event.target else {
            // `ping` carries no target.
            return vec![NewInboundEvent {
                kind: source.kind.clone(),
                registry: source.registry.clone(),
                source_event_id: Some(event.id).filter(|id| !id.is_empty()),
                repository: None,
                tag: None,
                digest: None,
                media_type: None,
                is_index: false,
                disposition: Disposition::Ignored(format!("action {:?} is not a push", event.action)),
            }];
        };
        vec![
            Push {
                event_id: Some(event.id).filter(|id| !id.is_empty()),
                action: event.action,
                repository: target.repository,
                tag: target.tag.filter(|t| !t.is_empty()),
                digest: target.digest.filter(|d| !d.is_empty()),
                media_type: target.media_type.filter(|m| !m.is_empty()),
            }
            .normalize(source),
        ]
    }
}
