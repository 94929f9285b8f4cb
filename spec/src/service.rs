//! GA4GH service-info 1.0.0 and Service Registry 1.0.0 objects, and the
//! tagcast read and write shapes built on them (`spec/service-api.md`
//! API-1 to API-3).
//!
//! Field names, types and which fields are required follow the GA4GH
//! specifications exactly; unknown top-level properties are kept, because
//! "extra top-level properties are allowed" (GA4GH service-info) and
//! tagcast's own extension, `subscription`, is one of them (API-2).

#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::subscription::{Subscription, SubscriptionRecord};

/// GA4GH service-info 1.0.0 `Service`: "GA4GH service" (API-1).
///
/// Required: `id`, `name`, `type`, `organization`, `version`; optional:
/// `description`, `contactUrl`, `documentationUrl`, `createdAt`,
/// `updatedAt`, `environment`. Any other top-level property is kept in
/// [`Service::extra`] and written back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", schemars(
    description = "GA4GH service-info 1.0.0 `Service` (spec/service-api.md API-1). Extra top-level properties are allowed, as GA4GH allows extension; tagcast's `subscription` is one (API-2).",
    example = example_service()
))]
pub struct Service {
    /// "Unique ID of this service. Reverse domain name notation is
    /// recommended, though not required. The identifier should attempt to be
    /// globally unique so it can be used in downstream aggregator services
    /// e.g. Service Registry."
    pub id: String,
    /// "Name of this service. Should be human readable."
    pub name: String,
    /// The API the service implements.
    #[serde(rename = "type")]
    pub service_type: ServiceType,
    /// "Description of the service. Should be human readable and provide
    /// information about the service."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// "Organization providing the service."
    pub organization: Organization,
    /// "URL of the contact for the provider of this service, e.g. a link to a
    /// contact form (RFC 3986 format), or an email (RFC 2368 format)."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(url))]
    pub contact_url: Option<String>,
    /// "URL of the documentation of this service (RFC 3986 format)."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(url))]
    pub documentation_url: Option<String>,
    /// "Timestamp describing when the service was first deployed and
    /// available (RFC 3339 format)."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("format" = "date-time")))]
    pub created_at: Option<String>,
    /// "Timestamp describing when the service was last updated (RFC 3339
    /// format)."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("format" = "date-time")))]
    pub updated_at: Option<String>,
    /// "Environment the service is running in. Use this to distinguish
    /// between production, development and testing/staging deployments.
    /// Suggested values are prod, test, dev, staging. However this is
    /// advised and not enforced."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// "Version of the service being described. Semantic versioning is
    /// recommended, but other identifiers, such as dates or commit hashes,
    /// are also allowed. The version should be changed whenever the service
    /// is updated."
    pub version: String,
    /// Every other top-level property, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// GA4GH service-info 1.0.0 `ServiceType`: "Type of a GA4GH service".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(feature = "schema", schemars(
    description = "GA4GH service-info 1.0.0 `ServiceType`. For a subscriber, `version` is the API version its image tags carry (spec/tags.md TAG-1) and the default `subscription.apiVersion` is `^` + this version (API-7).",
    example = serde_json::json!({"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"})
))]
pub struct ServiceType {
    /// "Namespace in reverse domain name format. Use `org.ga4gh` for
    /// implementations compliant with official GA4GH specifications."
    pub group: String,
    /// "Name of the API or GA4GH specification implemented."
    pub artifact: String,
    /// "Version of the API or specification. GA4GH specifications use
    /// semantic versioning."
    pub version: String,
}

/// GA4GH service-info 1.0.0 organization: "Organization providing the
/// service"; both fields required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(description = "Organization providing the service (GA4GH service-info 1.0.0).")
)]
pub struct Organization {
    /// "Name of the organization responsible for the service."
    pub name: String,
    /// "URL of the website of the organization (RFC 3986 format)."
    #[cfg_attr(feature = "schema", schemars(url))]
    pub url: String,
}

/// GA4GH Service Registry 1.0.0 `ExternalService`: a [`Service`] plus its
/// required base `url`, as listed by `GET /services` (API-3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(
        description = "GA4GH Service Registry 1.0.0 `ExternalService`: a `Service` plus `url` (spec/service-api.md API-3)."
    )
)]
pub struct ExternalService {
    /// The service-info fields.
    #[serde(flatten)]
    pub service: Service,
    /// "Base URL of the service (RFC 3986 format)": "the URL to which all
    /// endpoints should be relative".
    #[cfg_attr(feature = "schema", schemars(url))]
    pub url: String,
}

/// The body of `POST /services` and `PUT /services/{serviceId}` (API-5):
/// an [`ExternalService`] with an optional [`Subscription`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(feature = "schema", schemars(
    description = "The body of `POST /services` and `PUT /services/{serviceId}` (spec/service-api.md API-5): a GA4GH `ExternalService` with tagcast's optional `subscription` extension (API-6). `id` may be left out: a POST then gets a generated one, a PUT the path's.",
    example = example_registration(),
    transform = id_optional
))]
pub struct ServiceRegistration {
    /// The service as GA4GH describes it.
    #[serde(flatten)]
    pub service: ExternalService,
    /// The subscription to image updates, if the service wants them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Subscription>,
}

/// A service as the broker returns it from `GET /services`,
/// `GET /services/{serviceId}` and writes (API-3, API-8): an
/// [`ExternalService`] with the stored [`SubscriptionRecord`], which never
/// carries the secret except in the answer to the write that set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(feature = "schema", schemars(
    description = "A service as the broker returns it (spec/service-api.md API-3, API-8): a GA4GH `ExternalService`, with the stored subscription and the hooks that container registries must call.",
    example = example_registered()
))]
pub struct RegisteredService {
    /// The service as GA4GH describes it.
    #[serde(flatten)]
    pub service: ExternalService,
    /// The stored subscription, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<SubscriptionRecord>,
}

#[cfg(feature = "schema")]
pub(crate) fn example_service() -> Value {
    serde_json::json!({
        "id": "org.ga4gh.myservice",
        "name": "My project",
        "type": {"group": "org.ga4gh", "artifact": "beacon", "version": "1.0.0"},
        "description": "This service provides...",
        "organization": {"name": "My organization", "url": "https://example.com"},
        "contactUrl": "mailto:support@example.com",
        "documentationUrl": "https://docs.myservice.example.com",
        "createdAt": "2019-06-04T12:58:19Z",
        "updatedAt": "2019-06-04T12:58:19Z",
        "environment": "test",
        "version": "1.0.0"
    })
}

#[cfg(feature = "schema")]
pub(crate) fn example_registration() -> Value {
    serde_json::json!({
        "id": "org.example.cwl-wes.production",
        "name": "cwl-WES (production)",
        "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
        "organization": {"name": "Example University", "url": "https://www.example.org"},
        "version": "1.1.0-production-201108-195630",
        "environment": "prod",
        "url": "https://wes.example.org/ga4gh/wes/v1",
        "subscription": {
            "images": ["docker.io/elixircloud/cwl-wes"],
            "stage": "production",
            "apiVersion": "^1.1",
            "callbackUrl": "https://cd.example.org/tagcast"
        }
    })
}

#[cfg(feature = "schema")]
pub(crate) fn example_registered() -> Value {
    serde_json::json!({
        "id": "org.example.cwl-wes.production",
        "name": "cwl-WES (production)",
        "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
        "organization": {"name": "Example University", "url": "https://www.example.org"},
        "version": "1.1.0-production-201108-195630",
        "environment": "prod",
        "url": "https://wes.example.org/ga4gh/wes/v1",
        "subscription": {
            "images": ["docker.io/elixircloud/cwl-wes"],
            "stage": "production",
            "apiVersion": "^1.1",
            "callbackUrl": "https://cd.example.org/tagcast",
            "registry": {"kind": "dockerhub"},
            "hooks": [{
                "kind": "dockerhub",
                "registry": "docker.io"
            }],
            "state": "active"
        }
    })
}

/// API-5: a write may leave `id` out (the broker generates it on POST and
/// takes the path's on PUT), so the registration schema does not require it.
#[cfg(feature = "schema")]
fn id_optional(schema: &mut schemars::Schema) {
    if let Some(serde_json::Value::Array(required)) = schema.get_mut("required") {
        required.retain(|name| name != "id");
    }
}
