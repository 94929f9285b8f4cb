//! JFrog Artifactory: webhooks of the `docker` domain (event `pushed`).
//!
//! Facts, checked against JFrog's documentation and its Terraform provider:
//! - The event: `{"domain": "docker", "event_type": "pushed", "data": {…},
//!   "subscription_key", "jpd_origin", "source"}`; `data` has `repo_key`,
//!   `image_name`, `tag`, `name` (`manifest.json`, or `list.manifest.json`
//!   for a multi-arch tag) and `sha256`, the checksum of that manifest file,
//!   which is the manifest digest; events `pushed`, `deleted`, `promoted` —
//!   <https://jfrog.com/help/r/jfrog-platform-administration-documentation/domain-docker>.
//! - The handler's `secret` is sent as-is in `X-JFrog-Event-Auth`, or, with
//!   `use_secret_for_signing`, the hex HMAC-SHA256 of the body is sent
//!   there instead and the secret never travels —
//!   jfrog/terraform-provider-artifactory `docs/resources/docker_webhook.md`
//!   (`secret`, `use_secret_for_signing`).
//! - No delivery id header is documented: the body's hash stands in.
//!
//! The image is `<registry>/<repo_key>/<image_name>` (Artifactory's
//! "repository path" method), or `<registry>/<image_name>` when the hook's
//! registry host is `<repo_key>.<…>` (the "subdomain" method). The registry
//! is always the hook's: `jpd_origin` is not trusted.

use axum::http::HeaderMap;
use serde::Deserialize;
use tagcast_spec::subscription::RegistryKind;

use super::{Adapter, HookAuth, Push, Rejection, body_hash, header, signature};
use crate::store::{Disposition, HookSource, NewInboundEvent};

/// The authentication header.
pub const AUTH_HEADER: &str = "x-jfrog-event-auth";
/// The manifest file of a multi-arch tag.
const INDEX_FILE: &str = "list.manifest.json";

/// The `artifactory` adapter.
#[derive(Debug, Clone, Copy)]
pub struct Artifactory;

/// A parsed event.
#[derive(Debug)]
pub struct Delivery {
    id: String,
    event: Event,
}

#[derive(Debug, Deserialize)]
struct Event {
    domain: String,
    event_type: String,
    data: Data,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(default)]
    repo_key: Option<String>,
    #[serde(default)]
    image_name: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
}

impl Adapter for Artifactory {
    type Payload = Delivery;

    fn kind(&self) -> RegistryKind {
        RegistryKind::Artifactory
    }

    fn parse(&self, _headers: &HeaderMap, body: &[u8]) -> Result<Delivery, String> {
        let event: Event = super::json(body).map_err(|err| format!("not an Artifactory webhook event: {err}"))?;
        Ok(Delivery {
            id: body_hash(body),
            event,
        })
    }

    fn authenticate(
        &self,
        _auth: &HookAuth,
        source: &HookSource,
        headers: &HeaderMap,
        body: &[u8],
        _payload: Option<&Delivery>,
    ) -> Result<(), Rejection> {
        let secret = signature::secret(source)?;
        let given = header(headers, AUTH_HEADER)
            .ok_or_else(|| Rejection::Unauthorized("no X-JFrog-Event-Auth header: set the handler's secret".into()))?;
        // Either mode the operator picked; an attacker without the secret can
        // produce neither.
        if signature::hmac_hex_matches(secret, body, given) || signature::plain_matches(secret, given) {
            Ok(())
        } else {
            Err(Rejection::Unauthorized(
                "X-JFrog-Event-Auth is neither the secret nor the body's HMAC".into(),
            ))
        }
    }

    fn normalize(&self, source: &HookSource, payload: Delivery) -> Vec<NewInboundEvent> {
        let Delivery { id, event } = payload;
        if event.domain != "docker" {
            return vec![NewInboundEvent {
                kind: source.kind.clone(),
                registry: source.registry.clone(),
                source_event_id: Some(id),
                repository: None,
                tag: None,
                digest: None,
                media_type: None,
                is_index: false,
                disposition: Disposition::Ignored(format!("domain {:?} is not docker", event.domain)),
            }];
        }
        let data = event.data;
        let repository = data.image_name.map(|image| match data.repo_key {
            Some(key) if !source.registry.starts_with(&format!("{key}.")) => format!("{key}/{image}"),
            _ => image,
        });
        let is_index = data.name.as_deref() == Some(INDEX_FILE);
        let mut normalized = Push {
            event_id: Some(id),
            action: if event.event_type == "pushed" {
                "push".to_owned()
            } else {
                event.event_type
            },
            repository,
            tag: data.tag.filter(|t| !t.is_empty()),
            digest: data.sha256.filter(|d| !d.is_empty()).map(|hex| format!("sha256:{hex}")),
            media_type: None,
        }
        .normalize(source);
        normalized.is_index = is_index;
        vec![normalized]
    }
}
