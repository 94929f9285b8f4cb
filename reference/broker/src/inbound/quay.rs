//! Quay repository notifications, event `repo_push`, method `webhook`.
//!
//! The body is the event data alone (no envelope, no event name), built by
//! Quay's `build_repository_event_data` (quay/quay `notifications/__init__.py`;
//! https://docs.redhat.com/en/documentation/red_hat_quay/3.4/html/use_red_hat_quay/repository_notifications):
//! `{"repository": "ns/repo", "namespace", "name", "docker_url":
//! "host/ns/repo", "homepage", "updated_tags": ["tag", …]}`. Quay sends one
//! notification per manifest PUT by tag (pushes by digest, such as the
//! platform manifests of a multi-arch image, send none), so each listed
//! tag is one event. There is no digest (resolved from the registry before
//! delivery) and no event id (the body hash stands in). The 2013 format
//! with `updated_tags` as a map of tag to image id is read too.
//!
//! Quay sends no secret, signature or custom header: the path token is the
//! only credential.

use axum::http::HeaderMap;
use serde::Deserialize;
use tagcast_spec::subscription::RegistryKind;

use super::{Adapter, HookAuth, Push, Rejection, body_hash};
use crate::store::{Disposition, HookSource, NewInboundEvent};

/// The `quay` adapter.
#[derive(Debug, Clone, Copy)]
pub struct Quay;

/// A `repo_push` notification, with the hash of its body.
#[derive(Debug)]
pub struct Notification {
    hash: String,
    payload: Payload,
}

#[derive(Debug, Deserialize)]
struct Payload {
    repository: String,
    #[serde(default)]
    docker_url: Option<String>,
    /// Absent in the other events' data (`vulnerability_found`, builds, …).
    #[serde(default)]
    updated_tags: Option<UpdatedTags>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum UpdatedTags {
    List(Vec<String>),
    Map(serde_json::Map<String, serde_json::Value>),
}

impl Adapter for Quay {
    type Payload = Notification;

    fn kind(&self) -> RegistryKind {
        RegistryKind::Quay
    }

    fn parse(&self, _headers: &HeaderMap, body: &[u8]) -> Result<Notification, String> {
        let payload = super::json(body)
            .map_err(|err| format!("expected a Quay notification (repository, updated_tags): {err}"))?;
        Ok(Notification {
            hash: body_hash(body),
            payload,
        })
    }

    fn authenticate(
        &self,
        _auth: &HookAuth,
        _source: &HookSource,
        _headers: &HeaderMap,
        _body: &[u8],
        _payload: Option<&Notification>,
    ) -> Result<(), Rejection> {
        // Quay can send no credential: the path token is all there is.
        Ok(())
    }

    fn normalize(&self, source: &HookSource, notification: Notification) -> Vec<NewInboundEvent> {
        let payload = notification.payload;
        let tags = match payload.updated_tags {
            Some(UpdatedTags::List(tags)) => tags,
            Some(UpdatedTags::Map(map)) => map.into_iter().map(|(tag, _)| tag).collect(),
            None => Vec::new(),
        };
        // `docker_url` is `SERVER_HOSTNAME/namespace/repo`: a notification
        // from another Quay than the hook's is not about this registry.
        let foreign = payload.docker_url.as_deref().and_then(|url| {
            let host = url.split('/').next().unwrap_or_default();
            (!host.eq_ignore_ascii_case(&source.registry)).then(|| host.to_owned())
        });
        if tags.is_empty() {
            return vec![NewInboundEvent {
                kind: source.kind.clone(),
                registry: source.registry.clone(),
                source_event_id: Some(notification.hash),
                repository: None,
                tag: None,
                digest: None,
                media_type: None,
                is_index: false,
                disposition: Disposition::Ignored("no updated_tags: not a repo_push notification".into()),
            }];
        }
        let several = tags.len() > 1;
        tags.into_iter()
            .map(|tag| {
                let event_id = if several {
                    format!("{}/{tag}", notification.hash)
                } else {
                    notification.hash.clone()
                };
                let mut event = Push {
                    event_id: Some(event_id),
                    action: "push".into(),
                    repository: Some(payload.repository.clone()),
                    tag: Some(tag).filter(|t| !t.is_empty()),
                    digest: None,
                    media_type: None,
                }
                .normalize(source);
                if let Some(host) = &foreign {
                    event.disposition = Disposition::Ignored(format!(
                        "docker_url names the registry {host}, not the hook's registry {}",
                        source.registry
                    ));
                }
                event
            })
            .collect()
    }
}
