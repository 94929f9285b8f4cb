//! The language-neutral vectors of `conformance/vectors/`, embedded so that
//! the runner and the tests use exactly the checked-in data.
//!
//! - `callbacks.json`: Standard Webhooks signing and verification cases
//!   (CB-3 to CB-6);
//! - `events/*.json`: one CloudEvent each, valid or not, with the
//!   requirement an invalid one breaks and whether the JSON Schema alone
//!   sees it (`schemaValid`).

use serde::Deserialize;
use serde_json::Value;

/// `conformance/vectors/callbacks.json`.
pub const CALLBACKS: &str = include_str!("../vectors/callbacks.json");

/// The files of `conformance/vectors/events/`, by name (a test checks that
/// this list and the directory agree).
pub const EVENT_FILES: &[(&str, &str)] = &[
    (
        "invalid-api-version-short.json",
        include_str!("../vectors/events/invalid-api-version-short.json"),
    ),
    (
        "invalid-datacontenttype.json",
        include_str!("../vectors/events/invalid-datacontenttype.json"),
    ),
    (
        "invalid-derived-api-version.json",
        include_str!("../vectors/events/invalid-derived-api-version.json"),
    ),
    (
        "invalid-derived-reference.json",
        include_str!("../vectors/events/invalid-derived-reference.json"),
    ),
    (
        "invalid-derived-stage.json",
        include_str!("../vectors/events/invalid-derived-stage.json"),
    ),
    (
        "invalid-derived-timestamp.json",
        include_str!("../vectors/events/invalid-derived-timestamp.json"),
    ),
    (
        "invalid-digest.json",
        include_str!("../vectors/events/invalid-digest.json"),
    ),
    ("invalid-id.json", include_str!("../vectors/events/invalid-id.json")),
    (
        "invalid-missing-digest.json",
        include_str!("../vectors/events/invalid-missing-digest.json"),
    ),
    (
        "invalid-previous-tag-cross-stage.json",
        include_str!("../vectors/events/invalid-previous-tag-cross-stage.json"),
    ),
    (
        "invalid-previous-tag-newer.json",
        include_str!("../vectors/events/invalid-previous-tag-newer.json"),
    ),
    (
        "invalid-specversion.json",
        include_str!("../vectors/events/invalid-specversion.json"),
    ),
    (
        "invalid-stage.json",
        include_str!("../vectors/events/invalid-stage.json"),
    ),
    (
        "invalid-subject.json",
        include_str!("../vectors/events/invalid-subject.json"),
    ),
    ("invalid-tag.json", include_str!("../vectors/events/invalid-tag.json")),
    ("invalid-type.json", include_str!("../vectors/events/invalid-type.json")),
    (
        "valid-first-delivery.json",
        include_str!("../vectors/events/valid-first-delivery.json"),
    ),
    (
        "valid-short-form.json",
        include_str!("../vectors/events/valid-short-form.json"),
    ),
    (
        "valid-upgrade.json",
        include_str!("../vectors/events/valid-upgrade.json"),
    ),
];

/// One event vector.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventVector {
    /// What the case is about.
    pub description: String,
    /// Whether the event keeps the contract.
    pub valid: bool,
    /// Whether `schemas/image-published.schema.json` accepts it (some
    /// violations, such as a subject that disagrees with the data, only a
    /// parser sees).
    pub schema_valid: bool,
    /// The requirement an invalid event breaks.
    #[serde(default)]
    pub requirement: Option<String>,
    /// The CloudEvent.
    pub event: Value,
}

/// Every event vector with its file name.
///
/// # Panics
///
/// When a checked-in vector is not of the documented shape (a test proves
/// they are).
pub fn events() -> Vec<(&'static str, EventVector)> {
    EVENT_FILES
        .iter()
        .map(|(name, text)| {
            (
                *name,
                serde_json::from_str(text).unwrap_or_else(|e| panic!("vector {name}: {e}")),
            )
        })
        .collect()
}
