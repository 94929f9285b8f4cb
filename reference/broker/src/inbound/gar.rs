//! Google Artifact Registry notifications, as a Pub/Sub push subscription
//! delivers them.
//!
//! Artifact Registry has no webhooks: it publishes a message to the Pub/Sub
//! topic `gcr` of its project for each image upload, new tag and deletion
//! ("Configuring Pub/Sub notifications",
//! <https://cloud.google.com/artifact-registry/docs/configure-notifications>).
//! The message data is JSON: `{"action": "INSERT", "digest":
//! "<host>/<project>/<repo>/<image>@sha256:…", "tag":
//! "<host>/<project>/<repo>/<image>:<tag>"}` — full references, not bare
//! values; an untagged upload has no `tag`; a deletion is `"action":
//! "DELETE"`. A push subscription on the topic POSTs the envelope
//! `{"message": {"data": "<base64>", "messageId", "publishTime",
//! "attributes"}, "subscription": "projects/…/subscriptions/…"}`
//! ("Push subscriptions", <https://cloud.google.com/pubsub/docs/push>).
//! `messageId` is the event id (Pub/Sub delivers at least once and retries
//! what is not acknowledged with 2xx, so a redelivery is a duplicate).
//!
//! The registry is the reference's host (`<region>-docker.pkg.dev`), which
//! must be the hook's; the repository is the rest of the reference. Every
//! upload carries its digest: nothing is resolved.
//!
//! Authentication: the path token, and when the registry's entry sets
//! `oidc-audience`, the subscription's OIDC token ([`super::oidc`]).

use axum::http::HeaderMap;
use base64::Engine as _;
use serde::Deserialize;
use tagcast_spec::subscription::RegistryKind;

use super::{Adapter, HookAuth, Push, Rejection, body_hash};
use crate::store::{Disposition, HookSource, NewInboundEvent};

/// The `gar` adapter.
#[derive(Debug, Clone, Copy)]
pub struct Gar;

/// A push envelope, its message data decoded.
#[derive(Debug)]
pub struct Pushed {
    id: String,
    notification: Notification,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    message: Message,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    message_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Notification {
    action: String,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

/// Splits a full reference at its host: `("host", "path…")`.
fn split_host(reference: &str) -> Option<(&str, &str)> {
    reference
        .split_once('/')
        .filter(|(host, path)| !host.is_empty() && !path.is_empty())
}

impl Adapter for Gar {
    type Payload = Pushed;

    fn kind(&self) -> RegistryKind {
        RegistryKind::Gar
    }

    fn parse(&self, _headers: &HeaderMap, body: &[u8]) -> Result<Pushed, String> {
        let envelope: Envelope = super::json(body).map_err(|err| {
            format!("expected a Pub/Sub push envelope {{\"message\": {{\"data\", \"messageId\"}}}}: {err}")
        })?;
        let data = envelope.message.data.ok_or("the Pub/Sub message has no data")?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|err| format!("message.data is not base64: {err}"))?;
        let notification: Notification = super::json(&data).map_err(|err| {
            format!("message.data is not an Artifact Registry notification {{\"action\", \"digest\", \"tag\"}}: {err}")
        })?;
        let id = envelope
            .message
            .message_id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| body_hash(body));
        Ok(Pushed { id, notification })
    }

    fn authenticate(
        &self,
        auth: &HookAuth,
        source: &HookSource,
        headers: &HeaderMap,
        _body: &[u8],
        _payload: Option<&Pushed>,
    ) -> Result<(), Rejection> {
        match auth.push_tokens.get(&source.registry.to_ascii_lowercase()) {
            Some(tokens) => tokens.check(headers),
            None => Ok(()),
        }
    }

    fn normalize(&self, source: &HookSource, pushed: Pushed) -> Vec<NewInboundEvent> {
        let Pushed { id, notification } = pushed;
        let ignored = |reason: String| {
            vec![NewInboundEvent {
                kind: source.kind.clone(),
                registry: source.registry.clone(),
                source_event_id: Some(id.clone()),
                repository: None,
                tag: None,
                digest: None,
                media_type: None,
                is_index: false,
                disposition: Disposition::Ignored(reason),
            }]
        };
        // The tag reference names the image when there is one; an untagged
        // upload names it by digest only.
        let (path, tag) = match notification.tag.as_deref().filter(|t| !t.is_empty()) {
            Some(reference) => match reference
                .rsplit_once(':')
                .filter(|(path, tag)| !tag.contains('/') && path.contains('/'))
            {
                Some((path, tag)) => (path.to_owned(), Some(tag.to_owned())),
                None => return ignored(format!("the tag {reference:?} is not a reference <host>/<image>:<tag>")),
            },
            None => match notification.digest.as_deref().and_then(|d| d.split_once('@')) {
                Some((path, _)) => (path.to_owned(), None),
                None => return ignored("the notification names no image (neither tag nor digest)".into()),
            },
        };
        let Some((host, repository)) = split_host(&path) else {
            return ignored(format!("{path:?} is not a reference <host>/<image>"));
        };
        if !host.eq_ignore_ascii_case(&source.registry) {
            return ignored(format!(
                "the notification is about the registry {host}, not the hook's registry {}",
                source.registry
            ));
        }
        let digest = match notification.digest.as_deref().map(|d| d.split_once('@')) {
            Some(Some((digest_path, digest))) if digest_path == path => Some(digest.to_owned()),
            Some(_) => return ignored("the digest reference is not of the tagged image".into()),
            None => None,
        };
        let action = match notification.action.as_str() {
            "INSERT" => "push".to_owned(),
            other => other.to_ascii_lowercase(),
        };
        vec![
            Push {
                event_id: Some(id),
                action,
                repository: Some(repository.to_owned()),
                tag,
                digest,
                media_type: None,
            }
            .normalize(source),
        ]
    }
}
