//! GitHub Container Registry: the `package` event of a repository or
//! organisation webhook, and the legacy `registry_package` event.
//!
//! Facts, checked against GitHub's own documentation and examples:
//! - Headers `X-GitHub-Event` (the event name), `X-GitHub-Delivery` (a GUID
//!   per delivery, kept on a redelivery) and `X-Hub-Signature-256:
//!   sha256=<hex HMAC-SHA256 of the raw body>` when the hook has a secret —
//!   <https://docs.github.com/en/webhooks/webhook-events-and-payloads>,
//!   <https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries>.
//! - A hook's `content_type` is `json` or `form` (the default): `form` sends
//!   `application/x-www-form-urlencoded` with the JSON in the `payload`
//!   field; the signature covers the raw body either way —
//!   <https://docs.github.com/en/rest/repos/webhooks> (`config.content_type`).
//! - `package` actions `published` and `updated`; the container's tag and
//!   digest in `package.package_version.container_metadata.tag.{name,digest}`,
//!   the name empty for the untagged per-platform versions of a multi-arch
//!   push; `package_type` `CONTAINER` — octokit/webhooks
//!   `payload-examples/api.github.com/package/published.docker.payload.json`
//!   and the `webhook-registry-package-published` schema of GitHub's REST
//!   description (`registry_package` has the same object under that name).
//! - `ping` is sent when a hook is created; any 2xx answer is a success.
//!
//! The image is the `package_version.package_url` without its host and tag
//! (`ghcr.io/<owner>/<name>:<tag>`, the tag possibly empty), else
//! `<owner.login>/<name>`, lowercase (GHCR names are), on the hook's
//! registry. `namespace` is not used: GitHub's own example puts
//! `<owner>/<source repository>` there. The package type is checked in
//! `package_type` and `ecosystem` alike, since the examples disagree.

use axum::http::HeaderMap;
use serde::Deserialize;
use tagcast_spec::subscription::RegistryKind;

use super::{Adapter, HookAuth, MANIFEST_MEDIA_TYPES, Push, Rejection, body_hash, content_type, header, signature};
use crate::store::{Disposition, HookSource, NewInboundEvent};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The event name header.
pub const EVENT_HEADER: &str = "x-github-event";
/// The delivery GUID header.
pub const DELIVERY_HEADER: &str = "x-github-delivery";

/// The `ghcr` adapter.
#[derive(Debug, Clone, Copy)]
pub struct Ghcr;

/// A parsed delivery.
#[derive(Debug)]
pub struct Delivery {
    /// `X-GitHub-Delivery`, or the body's hash.
    id: String,
    event: Event,
}

#[derive(Debug)]
enum Event {
    /// The hook was created or pinged.
    Ping,
    /// `package` or `registry_package`.
    Package { action: String, package: Box<Package> },
    /// Any other event the hook was set up to send.
    Other(String),
}

#[derive(Debug, Deserialize)]
struct PackageEnvelope {
    action: String,
    #[serde(alias = "registry_package")]
    package: Package,
}

#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    #[serde(default)]
    owner: Option<Owner>,
    #[serde(default)]
    package_type: Option<String>,
    #[serde(default)]
    ecosystem: Option<String>,
    #[serde(default)]
    package_version: Option<PackageVersion>,
}

#[derive(Debug, Deserialize)]
struct Owner {
    login: String,
}

#[derive(Debug, Default, Deserialize)]
struct PackageVersion {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    package_url: Option<String>,
    #[serde(default)]
    container_metadata: Option<ContainerMetadata>,
}

/// `ghcr.io/owner/name:tag` → `owner/name`; `None` when it has no path.
fn path_of_package_url(url: &str) -> Option<String> {
    let (host, rest) = url.split_once('/')?;
    if !(host.contains('.') || host.contains(':')) {
        return None;
    }
    let rest = rest.split_once('@').map_or(rest, |(name, _)| name);
    let rest = match rest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => rest,
    };
    (!rest.is_empty()).then(|| rest.to_ascii_lowercase())
}

#[derive(Debug, Default, Deserialize)]
struct ContainerMetadata {
    #[serde(default)]
    tag: Option<TagInfo>,
    #[serde(default)]
    manifest: Option<Manifest>,
}

#[derive(Debug, Default, Deserialize)]
struct TagInfo {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    digest: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Manifest {
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    media_type: Option<String>,
}

/// The JSON document of a request, from either content type.
fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, String> {
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

impl Adapter for Ghcr {
    type Payload = Delivery;

    fn kind(&self) -> RegistryKind {
        RegistryKind::Ghcr
    }

    fn parse(&self, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, String> {
        let name = header(headers, EVENT_HEADER).ok_or("no X-GitHub-Event header")?;
        let id = header(headers, DELIVERY_HEADER).map_or_else(|| body_hash(body), str::to_owned);
        let json = json_body(headers, body)?;
        let event = match name {
            "ping" => {
                super::json::<serde_json::Value>(&json)
                    .ok()
                    .filter(serde_json::Value::is_object)
                    .ok_or("a ping that is not a JSON object")?;
                Event::Ping
            }
            "package" | "registry_package" => {
                let envelope: PackageEnvelope =
                    super::json(&json).map_err(|err| format!("not a GitHub {name} event: {err}"))?;
                Event::Package {
                    action: envelope.action,
                    package: Box::new(envelope.package),
                }
            }
            other => Event::Other(other.to_owned()),
        };
        Ok(Delivery { id, event })
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
        let given = header(headers, SIGNATURE_HEADER)
            .ok_or_else(|| Rejection::Unauthorized("no X-Hub-Signature-256 header: set the hook's secret".into()))?;
        let hex = given
            .strip_prefix("sha256=")
            .ok_or_else(|| Rejection::Unauthorized("X-Hub-Signature-256 must be sha256=<hex>".into()))?;
        if signature::hmac_hex_matches(secret, body, hex) {
            Ok(())
        } else {
            Err(Rejection::Unauthorized(
                "X-Hub-Signature-256 does not match the body".into(),
            ))
        }
    }

    fn normalize(&self, source: &HookSource, payload: Delivery) -> Vec<NewInboundEvent> {
        let ignored = |reason: String| NewInboundEvent {
            kind: source.kind.clone(),
            registry: source.registry.clone(),
            source_event_id: Some(payload.id.clone()),
            repository: None,
            tag: None,
            digest: None,
            media_type: None,
            is_index: false,
            disposition: Disposition::Ignored(reason),
        };
        let (action, package) = match payload.event {
            Event::Ping => return vec![ignored("ping: the hook is set up".into())],
            Event::Other(name) => return vec![ignored(format!("event {name:?} is not a package event"))],
            Event::Package { action, package } => (action, *package),
        };
        let is_container = |t: &Option<String>| {
            t.as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("container") || t.eq_ignore_ascii_case("docker"))
        };
        if !(is_container(&package.package_type) || is_container(&package.ecosystem)) {
            return vec![ignored(format!(
                "package type {:?} is not a container image",
                package.package_type.unwrap_or_default()
            ))];
        }
        let version = package.package_version.unwrap_or_default();
        let repository = version
            .package_url
            .as_deref()
            .and_then(path_of_package_url)
            .or_else(|| {
                package
                    .owner
                    .map(|o| format!("{}/{}", o.login, package.name).to_ascii_lowercase())
            });
        let metadata = version.container_metadata.unwrap_or_default();
        let tag = metadata.tag.unwrap_or_default();
        let manifest = metadata.manifest.unwrap_or_default();
        let digest = tag
            .digest
            .filter(|d| !d.is_empty())
            .or(manifest.digest.filter(|d| !d.is_empty()))
            .or(version.version.filter(|v| v.starts_with("sha256:")));
        let event = Push {
            event_id: Some(payload.id),
            // Only a new version (or a tag moved onto one) is a push.
            action: if matches!(action.as_str(), "published" | "updated") {
                "push".to_owned()
            } else {
                action
            },
            repository,
            tag: tag.name.filter(|t| !t.is_empty()),
            digest,
            // Only the manifest types tagcast knows: an unfamiliar one is not a blob.
            media_type: manifest
                .media_type
                .filter(|m| MANIFEST_MEDIA_TYPES.contains(&m.as_str())),
        }
        .normalize(source);
        vec![event]
    }
}

#[cfg(test)]
mod tests {
    use super::path_of_package_url;

    #[test]
    fn package_urls() {
        let cases = [
            ("ghcr.io/Codertocat/hello-world:", Some("codertocat/hello-world")),
            ("ghcr.io/my-org/app:1.4.2", Some("my-org/app")),
            ("ghcr.io/my-org/team/app:1.4.2", Some("my-org/team/app")),
            ("ghcr.io/my-org/app@sha256:00", Some("my-org/app")),
            ("localhost:5000/app", Some("app")),
            ("my-org/app:1.4.2", None),
            ("ghcr.io/", None),
        ];
        for (url, expected) in cases {
            assert_eq!(path_of_package_url(url).as_deref(), expected, "{url}");
        }
    }
}
