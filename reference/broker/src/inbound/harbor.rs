//! Harbor webhook policies, both payload formats.
//!
//! goharbor/harbor `src/pkg/notifier/formats/default.go` and
//! `cloudevents.go`, `src/pkg/notifier/model/event.go`,
//! `src/controller/event/handler/webhook/artifact/artifact.go`
//! (https://goharbor.io/docs/main/working-with-projects/project-configuration/configure-webhooks/):
//!
//! - `Default` (`application/json`): `{"type": "PUSH_ARTIFACT", "occur_at",
//!   "operator", "event_data": {"resources": [{"digest", "tag",
//!   "resource_url"}], "repository": {"repo_full_name": "project/repo", …}}}`.
//!   No event id: the body hash stands in.
//! - `CloudEvents` (Harbor ≥ 2.8, `application/cloudevents+json`,
//!   structured mode): `{"specversion": "1.0", "id", "type":
//!   "harbor.artifact.pushed", "data": <event_data>}`. `id` is the event id.
//!
//! When the artifact has no tag Harbor puts the digest in `tag`: that is a
//! push by digest (the platform manifests of a multi-arch push), ignored;
//! the tagged index is its own event. Harbor reports only the first tag.
//!
//! Authentication: the policy's `auth_header` is sent verbatim as
//! `Authorization`; with `--hook-token` the broker requires it to be
//! `Bearer <hook token>`, compared in constant time.

use axum::http::HeaderMap;
use serde::Deserialize;
use tagcast_spec::subscription::RegistryKind;

use super::{Adapter, HookAuth, Push, Rejection, body_hash, content_type};
use crate::store::{Disposition, HookSource, NewInboundEvent};

/// The `harbor` adapter.
#[derive(Debug, Clone, Copy)]
pub struct Harbor;

/// A Harbor event in either format, reduced to what both carry.
#[derive(Debug)]
pub struct Event {
    /// `PUSH_ARTIFACT` or `harbor.artifact.pushed`, …
    kind: String,
    /// Whether `kind` is the push of an artifact.
    push: bool,
    /// The CloudEvents `id`, or the body hash.
    id: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct DefaultPayload {
    #[serde(rename = "type")]
    kind: String,
    event_data: EventData,
}

#[derive(Debug, Deserialize)]
struct CloudEvent {
    specversion: String,
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Default, Deserialize)]
struct EventData {
    #[serde(default)]
    resources: Vec<Resource>,
    #[serde(default)]
    repository: Option<RepositoryData>,
}

#[derive(Debug, Deserialize)]
struct Resource {
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RepositoryData {
    repo_full_name: String,
}

/// The CloudEvents media type of structured mode.
pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

impl Adapter for Harbor {
    type Payload = Event;

    fn kind(&self) -> RegistryKind {
        RegistryKind::Harbor
    }

    fn parse(&self, headers: &HeaderMap, body: &[u8]) -> Result<Event, String> {
        let value: serde_json::Value = super::json(body).map_err(|err| format!("not JSON: {err}"))?;
        // The Content-Type tells the formats apart; a CloudEvent sent as
        // `application/json` is recognised by its `specversion`.
        if content_type(headers) == CLOUDEVENTS_JSON || value.get("specversion").is_some() {
            let event: CloudEvent = super::json_value(value)
                .map_err(|err| format!("not a Harbor CloudEvent (specversion, id, type, data): {err}"))?;
            if event.specversion != "1.0" {
                return Err(format!("CloudEvents specversion {:?} is not 1.0", event.specversion));
            }
            Ok(Event {
                push: event.kind == "harbor.artifact.pushed",
                kind: event.kind,
                id: event.id,
                data: event.data,
            })
        } else {
            let event: DefaultPayload = super::json_value(value)
                .map_err(|err| format!("not a Harbor Default payload (type, event_data): {err}"))?;
            Ok(Event {
                // `pushImage` is Harbor 1.x's name for the same event.
                push: matches!(event.kind.as_str(), "PUSH_ARTIFACT" | "pushImage"),
                kind: event.kind,
                id: body_hash(body),
                data: event.event_data,
            })
        }
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
        let repository = event.data.repository.map(|r| r.repo_full_name);
        let action = if event.push {
            "push".to_owned()
        } else {
            event.kind.clone()
        };
        if event.data.resources.is_empty() {
            return vec![NewInboundEvent {
                kind: source.kind.clone(),
                registry: source.registry.clone(),
                source_event_id: Some(event.id),
                repository: None,
                tag: None,
                digest: None,
                media_type: None,
                is_index: false,
                disposition: Disposition::Ignored(format!("{} event without resources", event.kind)),
            }];
        }
        let several = event.data.resources.len() > 1;
        event
            .data
            .resources
            .into_iter()
            .enumerate()
            .map(|(n, resource)| {
                let event_id = if several {
                    format!("{}/{n}", event.id)
                } else {
                    event.id.clone()
                };
                // Harbor's stand-in for "no tag" is the digest itself.
                let tag = resource.tag.filter(|t| !t.is_empty() && !t.starts_with("sha256:"));
                Push {
                    event_id: Some(event_id),
                    action: action.clone(),
                    repository: repository.clone(),
                    tag,
                    digest: resource.digest.filter(|d| !d.is_empty()),
                    media_type: None,
                }
                .normalize(source)
            })
            .collect()
    }
}
