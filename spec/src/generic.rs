//! The normalized inbound event of the `generic` registry kind
//! (`spec/service-api.md` API-14).
//!
//! A registry (or a CI job) that has no webhook format of its own posts this
//! event to a `generic` hook URL, signed with the hook's secret exactly like
//! a callback (CB-3 to CB-6).

use chrono::{DateTime, Utc};
#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Digest, Repository};

/// The pattern of an OCI tag (REF-4).
pub const OCI_TAG_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$";

/// What happened to the tag. Only `push` exists; the broker answers 2xx and
/// ignores anything else it cannot parse as an action (API-14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum GenericAction {
    /// A manifest was pushed under `tag`.
    Push,
}

/// `POST /hooks/generic/{token}` body: "one tag now points to one digest"
/// (API-14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", schemars(
    description = "The normalized push event of the `generic` registry kind, `POST`ed to `/hooks/generic/{token}` with Standard Webhooks headers signed by the hook's secret (spec/service-api.md API-14).",
    example = serde_json::json!({
        "id": "push_7f3a9c1e",
        "action": "push",
        "repository": "registry.example.org/tes/funnel",
        "tag": "1.1.0-staging-240229-235959",
        "digest": "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "timestamp": "2024-02-29T23:59:59Z"
    })
))]
pub struct GenericEvent {
    /// The sender's event id, equal to the `webhook-id` header; the broker
    /// deduplicates by it.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = "^[A-Za-z0-9_-]{1,128}$")))]
    pub id: String,
    /// What happened.
    pub action: GenericAction,
    /// The repository, normalized (REF-6).
    pub repository: Repository,
    /// The tag as pushed; any OCI tag (REF-4). Tags outside the tagcast
    /// grammar are acknowledged and ignored.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")))]
    pub tag: String,
    /// The manifest (or index) digest the tag points to.
    pub digest: Digest,
    /// The manifest's media type, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// When the push happened.
    pub timestamp: DateTime<Utc>,
}
