//! Gitea and Forgejo: the `package` event of an organisation, user or
//! repository webhook of type `gitea` or `forgejo`.
//!
//! Facts, checked against the servers' source:
//! - Headers `X-Gitea-Event` / `X-Forgejo-Event` / `X-Gogs-Event` (the
//!   event name, `package`), `X-Gitea-Delivery` / `X-Forgejo-Delivery` (a
//!   UUID per hook task), and, when the hook has a secret, the bare hex
//!   HMAC-SHA256 of the JSON payload in `X-Gitea-Signature`,
//!   `X-Forgejo-Signature`, `X-Gogs-Signature`, and `sha256=<hex>` in
//!   `X-Hub-Signature-256`. The HMAC covers the JSON document itself, also
//!   when the hook's content type is `form` and the JSON travels in the
//!   `payload` field — forgejo/forgejo `services/webhook/default.go`
//!   (`NewRequest`, `addDefaultHeaders`), go-gitea/gitea
//!   `services/webhook/deliver.go`.
//! - `PackagePayload`: `action` `created` or `deleted`, `package` with
//!   `owner.login`, `type` (`container`), `name`, `version` — go-gitea/gitea
//!   `modules/structs/hook.go`, `modules/structs/package.go`.
//! - Every manifest PUT creates a package version and fires `created`, the
//!   version being the reference it was pushed by: the tag, or `sha256:…`
//!   for the per-platform manifests of a multi-arch push — go-gitea/gitea
//!   `routers/api/packages/container/manifest.go`. No digest is sent: the
//!   broker resolves the tag on the registry before delivering.
//!
//! The image is `<gitea host>/<owner>/<name>`, lowercase (the container
//! registry of Gitea serves lowercase names).

use axum::http::HeaderMap;
use serde::Deserialize;
use tagcast_spec::subscription::RegistryKind;

use super::{Adapter, HookAuth, Push, Rejection, body_hash, content_type, header, signature};
use crate::store::{Disposition, HookSource, NewInboundEvent};

/// The event name headers, Forgejo's first.
const EVENT_HEADERS: [&str; 3] = ["x-forgejo-event", "x-gitea-event", "x-gogs-event"];
/// The delivery UUID headers.
const DELIVERY_HEADERS: [&str; 3] = ["x-forgejo-delivery", "x-gitea-delivery", "x-gogs-delivery"];

/// The `gitea` adapter (Gitea and Forgejo).
#[derive(Debug, Clone, Copy)]
pub struct Gitea;

/// A parsed delivery.
#[derive(Debug)]
pub struct Delivery {
    /// The delivery UUID, or the payload's hash.
    id: String,
    /// The bytes the HMAC covers: the JSON document.
    signed: Vec<u8>,
    event: Event,
}

#[derive(Debug)]
enum Event {
    Package { action: String, package: Package },
    Other(String),
}

#[derive(Debug, Deserialize)]
struct PackagePayload {
    action: String,
    package: Package,
}

#[derive(Debug, Deserialize)]
struct Package {
    #[serde(default)]
    owner: Option<Owner>,
    #[serde(rename = "type", default)]
    package_type: String,
    name: String,
    #[serde(default)]
    version: String,
}

#[derive(Debug, Deserialize)]
struct Owner {
    login: String,
}

/// The JSON document of a request and whether it is the whole body.
fn json_document(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, String> {
    match content_type(headers).as_str() {
        "application/json" => Ok(body.to_vec()),
        "application/x-www-form-urlencoded" => url::form_urlencoded::parse(body)
            .find(|(name, _)| name == "payload")
            .map(|(_, value)| value.into_owned().into_bytes())
            .ok_or_else(|| "the form has no payload field".to_owned()),
        other => Err(format!(
            "content type {other:?} is not application/json or application/x-www-form-urlencoded"
        )),
    }
}

impl Adapter for Gitea {
    type Payload = Delivery;

    fn kind(&self) -> RegistryKind {
        RegistryKind::Gitea
    }

    fn parse(&self, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, String> {
        let name = EVENT_HEADERS
            .iter()
            .find_map(|h| header(headers, h))
            .ok_or("no X-Gitea-Event or X-Forgejo-Event header")?;
        let signed = json_document(headers, body)?;
        let id = DELIVERY_HEADERS
            .iter()
            .find_map(|h| header(headers, h))
            .map_or_else(|| body_hash(&signed), str::to_owned);
        let event = if name == "package" {
            let payload: PackagePayload =
                super::json(&signed).map_err(|err| format!("not a Gitea package event: {err}"))?;
            Event::Package {
                action: payload.action,
                package: payload.package,
            }
        } else {
            Event::Other(name.to_owned())
        };
        Ok(Delivery { id, signed, event })
    }

    fn authenticate(
        &self,
        _auth: &HookAuth,
        source: &HookSource,
        headers: &HeaderMap,
        body: &[u8],
        payload: Option<&Delivery>,
    ) -> Result<(), Rejection> {
        let secret = signature::secret(source)?;
        // What the HMAC covers: the JSON document, even inside a form.
        let signed = match payload {
            Some(delivery) => delivery.signed.clone(),
            None => json_document(headers, body).unwrap_or_else(|_| body.to_vec()),
        };
        let given = if let Some(hex) = header(headers, "x-forgejo-signature").or(header(headers, "x-gitea-signature")) {
            hex
        } else if let Some(hub) = header(headers, "x-hub-signature-256") {
            hub.strip_prefix("sha256=")
                .ok_or_else(|| Rejection::Unauthorized("X-Hub-Signature-256 must be sha256=<hex>".into()))?
        } else {
            return Err(Rejection::Unauthorized(
                "no X-Gitea-Signature, X-Forgejo-Signature or X-Hub-Signature-256 header: set the hook's secret".into(),
            ));
        };
        if signature::hmac_hex_matches(secret, &signed, given) {
            Ok(())
        } else {
            Err(Rejection::Unauthorized(
                "the hook signature does not match the payload".into(),
            ))
        }
    }

    fn normalize(&self, source: &HookSource, payload: Delivery) -> Vec<NewInboundEvent> {
        let (action, package) = match payload.event {
            Event::Package { action, package } => (action, package),
            Event::Other(name) => {
                return vec![NewInboundEvent {
                    kind: source.kind.clone(),
                    registry: source.registry.clone(),
                    source_event_id: Some(payload.id),
                    repository: None,
                    tag: None,
                    digest: None,
                    media_type: None,
                    is_index: false,
                    disposition: Disposition::Ignored(format!("event {name:?} is not a package event")),
                }];
            }
        };
        let mut push = Push {
            event_id: Some(payload.id),
            action: if action == "created" { "push".to_owned() } else { action },
            repository: package
                .owner
                .map(|owner| format!("{}/{}", owner.login, package.name).to_ascii_lowercase()),
            tag: None,
            digest: None,
            media_type: None,
        };
        // A version pushed by digest is a platform manifest, not a tag.
        if package.version.starts_with("sha256:") {
            push.digest = Some(package.version);
        } else if !package.version.is_empty() {
            push.tag = Some(package.version);
        }
        let mut event = push.normalize(source);
        if !package.package_type.eq_ignore_ascii_case("container") {
            event.disposition = Disposition::Ignored(format!(
                "package type {:?} is not a container image",
                package.package_type
            ));
        }
        vec![event]
    }
}
