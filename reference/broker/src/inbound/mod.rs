//! Inbound registry webhooks: one module per registry kind, each an
//! [`Adapter`] that parses the registry's payload, authenticates it on top of
//! the unguessable path token, and turns it into normalized events.
//!
//! Every authentic request is acknowledged with 2xx, even when all its events
//! are ignored: a registry that gets anything else retries and (CNCF
//! Distribution) blocks its queue. Ignored events are recorded with a reason.

pub mod acr;
pub mod artifactory;
pub mod dedup;
pub mod distribution;
pub mod dockerhub;
pub mod ecr;
pub mod gar;
pub mod generic;
pub mod ghcr;
pub mod gitea;
pub mod harbor;
pub mod oidc;
pub mod quay;
pub mod signature;

use axum::http::HeaderMap;
use sha2::Digest as _;
use tagcast_spec::subscription::RegistryKind;
use tagcast_spec::{Digest, Repository, Tag};

use crate::store::{Disposition, HookSource, NewInboundEvent};

/// Why an inbound request is refused before anything is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The registry's own authentication (signature, header) failed: 401.
    #[error("{0}")]
    Unauthorized(String),
    /// The request is authentic (or the kind cannot tell) but its body is
    /// not the kind's format: 400, nothing stored.
    #[error("{0}")]
    Malformed(String),
}

/// What the operator configured on top of the path tokens.
#[derive(Clone, Default)]
pub struct HookAuth {
    /// `--hook-token`: registries that can only send a fixed header
    /// (Distribution) must send `Authorization: Bearer <this>`.
    pub bearer: Option<String>,
    /// Per registry host (lowercase): the OIDC token check of its Pub/Sub
    /// pushes (`gar`), for registries whose entry sets `oidc-audience`.
    pub push_tokens: std::collections::HashMap<String, std::sync::Arc<oidc::PushTokens>>,
}

impl std::fmt::Debug for HookAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookAuth")
            .field("bearer", &self.bearer.as_ref().map(|_| crate::store::REDACTED))
            .finish()
    }
}

impl HookAuth {
    /// Checks `Authorization: Bearer <token>` in constant time, if a token is configured.
    ///
    /// # Errors
    ///
    /// [`Rejection::Unauthorized`] for a missing or wrong header.
    pub fn check_bearer(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        use subtle::ConstantTimeEq as _;
        let Some(expected) = &self.bearer else {
            return Ok(());
        };
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| Rejection::Unauthorized("this hook needs Authorization: Bearer <hook token>".into()))?;
        let expected = sha2::Sha256::digest(expected.as_bytes());
        let given = sha2::Sha256::digest(given.as_bytes());
        if bool::from(expected.ct_eq(&given)) {
            Ok(())
        } else {
            Err(Rejection::Unauthorized(
                "the hook's Authorization header is wrong".into(),
            ))
        }
    }
}

/// One registry kind's webhook format.
pub trait Adapter: Send + Sync {
    /// The parsed payload.
    type Payload;

    /// The kind this adapter serves, as in `/hooks/{kind}/{token}`.
    fn kind(&self) -> RegistryKind;

    /// Parses the request. `Err` is the reason a body is not this kind's
    /// payload; an authentic request with such a body is refused with 400
    /// and nothing is stored.
    fn parse(&self, headers: &HeaderMap, body: &[u8]) -> Result<Self::Payload, String>;

    /// Authenticates the request on top of the path token, which the caller
    /// has already matched to `source`. `payload` is `None` when parsing failed.
    ///
    /// # Errors
    ///
    /// [`Rejection`]: nothing is stored.
    fn authenticate(
        &self,
        auth: &HookAuth,
        source: &HookSource,
        headers: &HeaderMap,
        body: &[u8],
        payload: Option<&Self::Payload>,
    ) -> Result<(), Rejection>;

    /// The normalized events of a payload, accepted or ignored with a reason.
    fn normalize(&self, source: &HookSource, payload: Self::Payload) -> Vec<NewInboundEvent>;
}

/// An [`Adapter`] with its payload type erased, for the hook route.
pub trait Receive: Send + Sync {
    /// The kind served.
    fn kind(&self) -> RegistryKind;

    /// Parse, authenticate, normalize.
    ///
    /// # Errors
    ///
    /// [`Rejection`] for an unauthentic request.
    fn receive(
        &self,
        auth: &HookAuth,
        source: &HookSource,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<NewInboundEvent>, Rejection>;
}

impl<A: Adapter> Receive for A {
    fn kind(&self) -> RegistryKind {
        Adapter::kind(self)
    }

    fn receive(
        &self,
        auth: &HookAuth,
        source: &HookSource,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<NewInboundEvent>, Rejection> {
        let parsed = self.parse(headers, body);
        self.authenticate(auth, source, headers, body, parsed.as_ref().ok())?;
        match parsed {
            Ok(payload) => Ok(self.normalize(source, payload)),
            Err(reason) => Err(Rejection::Malformed(format!(
                "the body is not a {} webhook: {reason}",
                source.kind
            ))),
        }
    }
}

/// The adapter of a kind, if this broker serves it.
pub fn adapter(kind: &str) -> Option<&'static dyn Receive> {
    match kind.parse::<RegistryKind>().ok()? {
        RegistryKind::Distribution => Some(&distribution::Distribution),
        RegistryKind::Generic => Some(&generic::Generic),
        RegistryKind::Ghcr => Some(&ghcr::Ghcr),
        RegistryKind::Gitea => Some(&gitea::Gitea),
        RegistryKind::Artifactory => Some(&artifactory::Artifactory),
        RegistryKind::Dockerhub => Some(&dockerhub::Dockerhub),
        RegistryKind::Harbor => Some(&harbor::Harbor),
        RegistryKind::Quay => Some(&quay::Quay),
        RegistryKind::Acr => Some(&acr::Acr),
        RegistryKind::Ecr => Some(&ecr::Ecr),
        RegistryKind::Gar => Some(&gar::Gar),
    }
}

/// The kinds this broker serves.
pub const SERVED_KINDS: [RegistryKind; 11] = [
    RegistryKind::Distribution,
    RegistryKind::Generic,
    RegistryKind::Ghcr,
    RegistryKind::Gitea,
    RegistryKind::Artifactory,
    RegistryKind::Dockerhub,
    RegistryKind::Harbor,
    RegistryKind::Quay,
    RegistryKind::Acr,
    RegistryKind::Ecr,
    RegistryKind::Gar,
];

/// Whether the registry of a kind signs its requests with a secret, so
/// that the broker generates one per hook source (issue 10 item 2) and the
/// operator pastes it into the registry's webhook form.
pub fn signs(kind: RegistryKind) -> bool {
    matches!(
        kind,
        RegistryKind::Generic | RegistryKind::Ghcr | RegistryKind::Gitea | RegistryKind::Artifactory
    )
}

/// Whether the tag events of a kind carry no digest, so that an event
/// without one is accepted and the digest is resolved from the registry
/// before delivery (issue 10 item 3) instead of being ignored.
pub fn resolves_digest(kind: &str) -> bool {
    matches!(kind, "dockerhub" | "quay" | "gitea")
}

/// Manifest media types; anything else pushed is a blob.
pub const MANIFEST_MEDIA_TYPES: [&str; 6] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// Index media types: the manifest a multi-arch tag points to.
pub const INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// A push as a registry reports it, before the tagcast rules apply.
#[derive(Debug, Clone, Default)]
pub struct Push {
    /// The registry's event id.
    pub event_id: Option<String>,
    /// The action (`push`, `pull`, `delete`, `mount`, …).
    pub action: String,
    /// The repository path inside the registry, or a full repository name.
    pub repository: Option<String>,
    /// The tag, absent for a push by digest.
    pub tag: Option<String>,
    /// The digest.
    pub digest: Option<String>,
    /// The media type, if reported.
    pub media_type: Option<String>,
}

impl Push {
    /// Applies the rules every kind shares: only pushes of tagged manifests
    /// whose tag is of the grammar are accepted; the repository is
    /// normalized onto the hook source's registry.
    pub fn normalize(self, source: &HookSource) -> NewInboundEvent {
        let mut event = NewInboundEvent {
            kind: source.kind.clone(),
            registry: source.registry.clone(),
            source_event_id: self.event_id.clone(),
            repository: None,
            tag: self.tag.clone(),
            digest: self.digest.clone(),
            media_type: self.media_type.clone(),
            is_index: self
                .media_type
                .as_deref()
                .is_some_and(|m| INDEX_MEDIA_TYPES.contains(&m)),
            disposition: Disposition::Accepted,
        };
        let ignore = |mut event: NewInboundEvent, reason: String| {
            event.disposition = Disposition::Ignored(reason);
            event
        };
        let repository = match self.repository.as_deref().map(|r| qualify(&source.registry, r)) {
            Some(Ok(repository)) => repository,
            Some(Err(reason)) => return ignore(event, reason),
            None => return ignore(event, "no repository".into()),
        };
        event.repository = Some(repository.to_string());
        if repository.domain() != source.registry {
            let reason = format!(
                "repository {repository} is not on the hook's registry {}",
                source.registry
            );
            return ignore(event, reason);
        }
        if self.action != "push" {
            let reason = format!("action {:?} is not a push", self.action);
            return ignore(event, reason);
        }
        if let Some(media_type) = self.media_type.as_deref() {
            if !MANIFEST_MEDIA_TYPES.contains(&media_type) {
                let reason = format!("{BLOB_PUSH} ({media_type}), not a manifest");
                return ignore(event, reason);
            }
        }
        let Some(tag) = self.tag.as_deref().filter(|t| !t.is_empty()) else {
            return ignore(event, "untagged manifest (pushed by digest)".into());
        };
        if let Err(err) = Tag::parse(tag) {
            return ignore(event, format!("tag outside the grammar: {err}"));
        }
        match self.digest.as_deref().map(Digest::parse) {
            Some(Ok(digest)) => event.digest = Some(digest.to_string()),
            Some(Err(err)) => return ignore(event, format!("invalid digest: {err}")),
            None if resolves_digest(&source.kind) => {}
            None => return ignore(event, "no digest".into()),
        }
        event
    }
}

/// How [`Push::normalize`] names a blob push.
const BLOB_PUSH: &str = "blob push";

/// Whether an ignored event is registry traffic rather than a release — a
/// pull, or a blob push (a registry notifies one per layer): such events
/// are counted in a metric and not stored (issue 11, finding 6), so that
/// a busy registry's downloads cannot grow the event log. `Some(label)`
/// for the metric.
pub fn traffic(event: &NewInboundEvent) -> Option<&'static str> {
    let Disposition::Ignored(reason) = &event.disposition else {
        return None;
    };
    if reason.starts_with("action \"pull\"") {
        Some("pull")
    } else if reason.starts_with(BLOB_PUSH) {
        Some("blob")
    } else {
        None
    }
}

/// Parses a JSON body into a kind's payload type; an error names the
/// member that failed (`events[0].target.tag: invalid type …`), because
/// plain serde says `unknown variant` or `missing field` without saying
/// where, and the operator reading the 400 has to find the member in the
/// registry's payload (issue 14 item 4).
///
/// # Errors
///
/// The path of the member and serde's message.
pub fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|err| err.to_string())
}

/// [`json`] for a value already parsed (a format told apart by a member).
///
/// # Errors
///
/// The path of the member and serde's message.
pub fn json_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|err| err.to_string())
}

/// A stand-in event id for registries that send none: `sha256:<hex>` of
/// the raw body, so that a retried request is recognised as a duplicate.
pub fn body_hash(body: &[u8]) -> String {
    let hash = sha2::Sha256::digest(body);
    format!("sha256:{}", hash.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The essence of a `Content-Type` header (`application/json` of
/// `application/json; charset=utf-8`), lowercase.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The value of a header, if it is present and text.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The normalized repository of a path reported by the registry at `registry`.
fn qualify(registry: &str, path: &str) -> Result<Repository, String> {
    let full = if registry == tagcast_spec::DOCKER_HUB {
        path.to_owned()
    } else {
        format!("{registry}/{path}")
    };
    Repository::parse(&full).map_err(|err| format!("invalid repository: {err}"))
}
