//! The contract's JSON Schemas (from `tagcast_spec::schema`) as validators,
//! for checking what peers send.

use serde_json::Value;

/// A validator for the document `file_name` of `tagcast_spec::schema`.
///
/// # Panics
///
/// When the spec crate has no such document or it does not compile; both
/// are bugs caught by the tests.
pub(crate) fn validator(file_name: &str) -> jsonschema::Validator {
    let document = tagcast_spec::schema::documents()
        .into_iter()
        .find(|d| d.file_name == file_name)
        .unwrap_or_else(|| panic!("tagcast-spec has no schema {file_name}"));
    jsonschema::validator_for(&document.schema).unwrap_or_else(|e| panic!("{file_name} does not compile: {e}"))
}

/// The schema violations of `instance`, one line each (empty when valid).
pub(crate) fn violations(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// The schema of a callback: the whole CloudEvent.
pub(crate) const IMAGE_PUBLISHED: &str = "image-published.schema.json";
