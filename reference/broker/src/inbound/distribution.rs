//! CNCF Distribution (`docker-registry`, `registry:2`, `registry:3`)
//! notifications: an envelope `{"events": [...]}` sent as
//! `application/vnd.docker.distribution.events.v1+json` (2.x) or
//! `…events.v2+json` (3.x).
//!
//! Distribution signs nothing; the path token authenticates it. The
//! registry host is the hook source's, never `request.host` (which is the
//! Host header a client used and may be an internal name).

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use serde::Deserialize;
use tagcast_spec::subscription::RegistryKind;

use super::{Adapter, HookAuth, Push, Rejection};
use crate::store::{HookSource, NewInboundEvent};

/// The envelope media type of Distribution 2.x.
pub const EVENTS_V1: &str = "application/vnd.docker.distribution.events.v1+json";
/// The envelope media type of Distribution 3.x.
pub const EVENTS_V2: &str = "application/vnd.docker.distribution.events.v2+json";

/// The `distribution` adapter.
#[derive(Debug, Clone, Copy)]
pub struct Distribution;

/// A notification envelope.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    events: Vec<Event>,
}

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
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

impl Adapter for Distribution {
    type Payload = Envelope;

    fn kind(&self) -> RegistryKind {
        RegistryKind::Distribution
    }

    fn parse(&self, headers: &HeaderMap, body: &[u8]) -> Result<Envelope, String> {
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if !matches!(essence, EVENTS_V1 | EVENTS_V2 | "application/json") {
            return Err(format!(
                "content type {content_type:?} is not {EVENTS_V1} or {EVENTS_V2}"
            ));
        }
        super::json(body).map_err(|err| format!("not a notification envelope: {err}"))
    }

    fn authenticate(
        &self,
        auth: &HookAuth,
        _source: &HookSource,
        headers: &HeaderMap,
        _body: &[u8],
        _payload: Option<&Envelope>,
    ) -> Result<(), Rejection> {
        // Distribution signs nothing: the unguessable path token, already
        // matched, is the credential, plus the fixed Authorization header of
        // the registry's endpoint configuration when the operator set one.
        auth.check_bearer(headers)
    }

    fn normalize(&self, source: &HookSource, payload: Envelope) -> Vec<NewInboundEvent> {
        payload
            .events
            .into_iter()
            .map(|event| {
                let target = event.target.unwrap_or_default();
                Push {
                    event_id: event.id.filter(|id| !id.is_empty()),
                    action: event.action,
                    repository: target.repository,
                    tag: target.tag.filter(|t| !t.is_empty()),
                    digest: target.digest.filter(|d| !d.is_empty()),
                    media_type: target.media_type.filter(|m| !m.is_empty()),
                }
                .normalize(source)
            })
            .collect()
    }
}
