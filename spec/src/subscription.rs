//! tagcast's extension of a GA4GH service: the `subscription` object, its
//! stored form with the registry hooks, and the registry kinds
//! (`spec/service-api.md` API-6 to API-9).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::service::ServiceType;
use crate::webhook::Secret;
use crate::{ApiRequirement, ApiVersion, Repository, Stage};

/// The `subscription` of a service registration, as written (API-6).
///
/// "A service subscribes to the tags of one stage pushed to one or more
/// image repositories; the broker delivers a callback to `callbackUrl` for
/// each tag that is an update (TAG-11)."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", schemars(
    description = "The `subscription` extension of a GA4GH service, as written in `POST /services` and `PUT /services/{serviceId}` (spec/service-api.md API-6).",
    example = serde_json::json!({
        "images": ["docker.io/elixircloud/cwl-wes"],
        "stage": "production",
        "apiVersion": "^1.1",
        "callbackUrl": "https://cd.example.org/tagcast",
        "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "registry": {"kind": "dockerhub"}
    })
))]
pub struct Subscription {
    /// Normalized repositories whose tags the service wants (REF-6); at
    /// least one, no duplicates.
    // No `uniqueItems`: two entries that are equal, or equal once
    // normalized, are one rule (API-6, 422), not a schema error (400).
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub images: Vec<Repository>,
    /// The one stage the service follows; tags of other stages are never
    /// delivered (TAG-9).
    pub stage: Stage,
    /// Which api-versions the service accepts; "default `^` + the service's
    /// `type.version`" (API-7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<ApiRequirement>,
    /// Where the broker `POST`s signed callbacks: an absolute `https` URL
    /// (`http` only where the operator allows it), checked against the SSRF
    /// rule at subscribe time and at connect time (CB-16).
    #[cfg_attr(feature = "schema", schemars(url, regex(pattern = "^https?://[^/?#]+")))]
    pub callback_url: String,
    /// The signing secret. Write-only: "generated if absent, returned once"
    /// (API-6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("writeOnly" = true)))]
    pub secret: Option<Secret>,
    /// Which kind of container registry hosts the images, when the broker
    /// cannot derive it from the host (API-9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistrySource>,
}

impl Subscription {
    /// Check what the schema cannot: no repository twice, an absolute
    /// `http(s)` callback URL without credentials, and a registry kind for
    /// every image host that does not imply one (API-6, API-9).
    ///
    /// # Errors
    ///
    /// [`SubscriptionError`] naming the field and the rule.
    pub fn check(&self) -> Result<(), SubscriptionError> {
        if self.images.is_empty() {
            return Err(SubscriptionError::NoImages);
        }
        let mut seen = BTreeSet::new();
        for image in &self.images {
            if !seen.insert(image) {
                return Err(SubscriptionError::DuplicateImage { image: image.clone() });
            }
        }
        check_callback_url(&self.callback_url)?;
        if self.registry.is_none() {
            if let Some(image) = self
                .images
                .iter()
                .find(|i| RegistryKind::from_host(i.domain()).is_none())
            {
                return Err(SubscriptionError::UnknownRegistry { image: image.clone() });
            }
        }
        Ok(())
    }

    /// The effective API requirement: `apiVersion` if given, else `^` + the
    /// service's `type.version` (API-7).
    ///
    /// # Errors
    ///
    /// [`SubscriptionError::NoDefaultRequirement`] when `apiVersion` is absent
    /// and `type.version` is not a version (`MAJOR.MINOR[.PATCH]`).
    ///
    /// # Examples
    ///
    /// ```
    /// use tagcast_spec::service::ServiceType;
    /// use tagcast_spec::subscription::Subscription;
    ///
    /// let sub: Subscription = serde_json::from_value(serde_json::json!({
    ///     "images": ["elixircloud/cwl-wes"], "stage": "production",
    ///     "callbackUrl": "https://cd.example.org/tagcast"
    /// })).unwrap();
    /// let wes = ServiceType { group: "org.ga4gh".into(), artifact: "wes".into(), version: "1.1".into() };
    /// assert_eq!(sub.requirement(&wes).unwrap().to_string(), "^1.1.0");
    /// ```
    pub fn requirement(&self, service_type: &ServiceType) -> Result<ApiRequirement, SubscriptionError> {
        if let Some(requirement) = &self.api_version {
            return Ok(requirement.clone());
        }
        let version =
            ApiVersion::parse(&service_type.version).map_err(|_| SubscriptionError::NoDefaultRequirement {
                version: service_type.version.clone(),
            })?;
        Ok(ApiRequirement::caret(&version.to_semver()))
    }
}

fn check_callback_url(url: &str) -> Result<(), SubscriptionError> {
    let invalid = |rule: &'static str| SubscriptionError::CallbackUrl {
        url: url.to_owned(),
        rule,
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid("it must be an absolute http or https URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(invalid("it must name a host"));
    }
    if authority.contains('@') {
        return Err(invalid("it must not carry credentials"));
    }
    if url.contains('#') {
        return Err(invalid("it must not have a fragment"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("it must not contain whitespace"));
    }
    Ok(())
}

/// A subscription breaks a rule the schema cannot express (API-6, API-7,
/// API-9).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// `images` is empty.
    #[error("invalid subscription: images must list at least one repository (API-6)")]
    NoImages,
    /// A repository appears twice.
    #[error("invalid subscription: image {image} is listed twice (API-6)")]
    DuplicateImage {
        /// The repeated repository.
        image: Repository,
    },
    /// `callbackUrl` is not acceptable.
    #[error("invalid subscription: callbackUrl {url:?}: {rule} (API-6)")]
    CallbackUrl {
        /// The URL.
        url: String,
        /// The rule broken.
        rule: &'static str,
    },
    /// No `registry.kind` and the host implies none.
    #[error(
        "invalid subscription: image {image} is on a host that does not imply a registry kind; give registry.kind (API-9)"
    )]
    UnknownRegistry {
        /// The first image without a kind.
        image: Repository,
    },
    /// No `apiVersion` and `type.version` is not a version.
    #[error(
        "invalid subscription: apiVersion is absent and type.version {version:?} is not MAJOR.MINOR[.PATCH], so there is no default requirement (API-7)"
    )]
    NoDefaultRequirement {
        /// The service's `type.version`.
        version: String,
    },
}

impl SubscriptionError {
    /// The requirement ID the message cites, for an error body's
    /// `requirement`: the two must name the same rule (API-13).
    pub fn requirement(&self) -> &'static str {
        match self {
            SubscriptionError::NoImages
            | SubscriptionError::DuplicateImage { .. }
            | SubscriptionError::CallbackUrl { .. } => "API-6",
            SubscriptionError::UnknownRegistry { .. } => "API-9",
            SubscriptionError::NoDefaultRequirement { .. } => "API-7",
        }
    }
}

/// Which container registry software sends the webhooks for a subscription's
/// images (API-9, DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RegistryKind {
    /// CNCF Distribution notifications (`registry` 2.x/3.x).
    Distribution,
    /// Docker Hub repository webhooks.
    Dockerhub,
    /// Harbor webhook policies (Default and CloudEvents payloads).
    Harbor,
    /// Quay repository notifications.
    Quay,
    /// GitHub Container Registry (`package` / `registry_package` events).
    Ghcr,
    /// Gitea and Forgejo package webhooks.
    Gitea,
    /// Azure Container Registry webhooks.
    Acr,
    /// JFrog Artifactory `docker` domain webhooks.
    Artifactory,
    /// AWS ECR "ECR Image Action" events, from an EventBridge API destination.
    Ecr,
    /// Google Artifact Registry notifications, from a Pub/Sub push subscription.
    Gar,
    /// tagcast's own normalized event (`generic-event.schema.json`), signed
    /// like a callback.
    Generic,
}

impl RegistryKind {
    /// Every kind, in declaration order.
    pub const ALL: [RegistryKind; 11] = [
        RegistryKind::Distribution,
        RegistryKind::Dockerhub,
        RegistryKind::Harbor,
        RegistryKind::Quay,
        RegistryKind::Ghcr,
        RegistryKind::Gitea,
        RegistryKind::Acr,
        RegistryKind::Artifactory,
        RegistryKind::Ecr,
        RegistryKind::Gar,
        RegistryKind::Generic,
    ];

    /// The kind's name as in JSON and in `/hooks/{kind}/{token}`.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryKind::Distribution => "distribution",
            RegistryKind::Dockerhub => "dockerhub",
            RegistryKind::Harbor => "harbor",
            RegistryKind::Quay => "quay",
            RegistryKind::Ghcr => "ghcr",
            RegistryKind::Gitea => "gitea",
            RegistryKind::Acr => "acr",
            RegistryKind::Artifactory => "artifactory",
            RegistryKind::Ecr => "ecr",
            RegistryKind::Gar => "gar",
            RegistryKind::Generic => "generic",
        }
    }

    /// "The kind is derived from the host where possible" (API-9):
    /// `docker.io` is Docker Hub, `ghcr.io` GitHub, `quay.io` Quay,
    /// `*.azurecr.io` Azure, `*.pkg.dev` Google Artifact Registry and
    /// `*.dkr.ecr.*.amazonaws.com` ECR; any other host needs an explicit
    /// `registry.kind`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tagcast_spec::subscription::RegistryKind;
    ///
    /// assert_eq!(RegistryKind::from_host("docker.io"), Some(RegistryKind::Dockerhub));
    /// assert_eq!(RegistryKind::from_host("myacr.azurecr.io"), Some(RegistryKind::Acr));
    /// assert_eq!(RegistryKind::from_host("europe-west1-docker.pkg.dev"), Some(RegistryKind::Gar));
    /// assert_eq!(
    ///     RegistryKind::from_host("123456789012.dkr.ecr.us-west-2.amazonaws.com"),
    ///     Some(RegistryKind::Ecr)
    /// );
    /// assert_eq!(RegistryKind::from_host("harbor.example.org"), None);
    /// ```
    pub fn from_host(host: &str) -> Option<RegistryKind> {
        let host = host.to_ascii_lowercase();
        match host.as_str() {
            "docker.io" | "registry-1.docker.io" | "index.docker.io" => Some(RegistryKind::Dockerhub),
            "ghcr.io" => Some(RegistryKind::Ghcr),
            "quay.io" => Some(RegistryKind::Quay),
            _ if host.ends_with(".azurecr.io") => Some(RegistryKind::Acr),
            // `<region>-docker.pkg.dev` (Artifact Registry).
            _ if host.ends_with(".pkg.dev") => Some(RegistryKind::Gar),
            // `<account>.dkr.ecr.<region>.amazonaws.com`.
            _ if host.ends_with(".amazonaws.com") && host.contains(".dkr.ecr.") => Some(RegistryKind::Ecr),
            _ => None,
        }
    }
}

impl fmt::Display for RegistryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RegistryKind {
    type Err = RegistryKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegistryKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| RegistryKindError(s.to_owned()))
    }
}

/// A string is not one of the registry kinds (API-9).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid registry kind {0:?}: it must be one of distribution, dockerhub, harbor, quay, ghcr, gitea, acr, artifactory, ecr, gar, generic (API-9)"
)]
pub struct RegistryKindError(String);

/// The `subscription.registry` object: which registry software hosts the
/// images (API-9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(description = "Which container registry hosts the subscription's images (spec/service-api.md API-9).")
)]
pub struct RegistrySource {
    /// The registry software; decides the inbound webhook format.
    pub kind: RegistryKind,
    /// The registry's API base URL, when it is not `https://<image host>`
    /// (the broker re-checks tag → digest there, DESIGN §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(url))]
    pub url: Option<String>,
}

/// An inbound URL that a container registry must call for a subscription's
/// images (API-8): "one per registry source, shared by every subscription
/// whose images live there".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(description = "Where a container registry must send its push webhooks (spec/service-api.md API-8).")
)]
pub struct Hook {
    /// The registry software, and so the payload format the URL accepts.
    pub kind: RegistryKind,
    /// The registry host (`host[:port]`, as in the normalized repositories).
    pub registry: String,
    /// The absolute inbound URL `…/hooks/{kind}/{token}`; the token has at
    /// least 128 random bits (API-8). The token is a credential: the URL is
    /// in the answer to a write and in reads with the admin token, never in
    /// a public read (API-3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(url))]
    pub url: Option<String>,
    /// For a kind whose registry signs its requests (`ghcr`, `gitea`,
    /// `artifactory`, `generic`): the secret the broker generated for this
    /// registry source, to paste into the registry's webhook form. Like
    /// `url`, it is in the answer to a write and in reads with the admin
    /// token, never in a public read (API-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Whether the broker set this hook up in the registry on the
    /// subscriber's behalf (API-18).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedHook>,
}

/// What the broker did about a hook in the registry (API-18).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(description = "Whether the broker set the hook up in the registry (spec/service-api.md API-18).")
)]
pub struct ManagedHook {
    /// The state.
    pub state: ManagedState,
    /// Why, for `manual` and `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The state of a hook the broker manages in the registry (API-18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ManagedState {
    /// Created by the broker.
    Created,
    /// A hook pointing at the same URL was already there; the broker uses it.
    Existing,
    /// Not managed by the broker (no manage credentials, or a registry
    /// without a webhook API): configured by hand.
    Manual,
    /// Managing it failed; retried with backoff. `reason` says why.
    Failed,
    /// Not tried yet.
    Pending,
}

/// Whether the broker delivers to a subscription (API-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionState {
    /// Callbacks are delivered.
    Active,
    /// The CD endpoint answered `410 Gone` (CB-10) and nothing is delivered
    /// until the service is written again.
    Unsubscribed,
}

/// The stored subscription, as the broker returns it (API-8).
///
/// "Secrets are never returned by a read": `secret` is present only in the
/// answer to the write that set or generated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "schema",
    schemars(description = "A stored subscription, as the broker returns it (spec/service-api.md API-8).")
)]
pub struct SubscriptionRecord {
    /// The subscribed repositories, normalized.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub images: Vec<Repository>,
    /// The subscribed stage.
    pub stage: Stage,
    /// The effective requirement, the default filled in (API-7).
    pub api_version: ApiRequirement,
    /// Where callbacks go.
    #[cfg_attr(feature = "schema", schemars(url))]
    pub callback_url: String,
    /// The registry source, given or derived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistrySource>,
    /// The inbound URLs for the images' registries, one per registry source.
    pub hooks: Vec<Hook>,
    /// Whether callbacks are delivered.
    pub state: SubscriptionState,
    /// Only in the answer to the write that set or generated it (API-6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
}
