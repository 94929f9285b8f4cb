//! The JSON Schemas (draft 2020-12) generated from the contract's types.
//!
//! `schemas/` holds these documents; they are never edited by hand.
//! `tagcast schema export` writes them, and a test fails when a checked-in
//! file differs from what [`documents`] generates.

pub(crate) mod contract;
pub mod docs;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

/// Where the schemas are published; each document's `$id` is this plus its
/// file name, so relative `$ref`s resolve inside `schemas/`.
pub const BASE_URI: &str = "https://elixir-cloud-aai.github.io/tagcast/schemas/";

/// One generated schema document.
#[derive(Debug, Clone)]
pub struct Document {
    /// File name in `schemas/`, e.g. `tag.schema.json`.
    pub file_name: &'static str,
    /// The schema.
    pub schema: Value,
}

/// The schema of `T` as a standalone draft 2020-12 document named
/// `file_name`, with `$id` and `title`.
pub fn document<T: JsonSchema>(file_name: &'static str, title: &str) -> Document {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let root = generator.into_root_schema_for::<T>();
    let mut schema = root.to_value();
    let object = schema.as_object_mut().expect("a root schema is an object");
    let mut ordered = serde_json::Map::new();
    ordered.insert(
        "$schema".into(),
        object
            .remove("$schema")
            .unwrap_or_else(|| Value::String("https://json-schema.org/draft/2020-12/schema".into())),
    );
    ordered.insert("$id".into(), Value::String(format!("{BASE_URI}{file_name}")));
    ordered.insert("title".into(), Value::String(title.to_owned()));
    object.remove("title");
    ordered.extend(std::mem::take(object));
    Document {
        file_name,
        schema: Value::Object(ordered),
    }
}

/// Every schema document of this crate, in file-name order.
pub fn documents() -> Vec<Document> {
    let mut docs = vec![
        document::<crate::Tag>("tag.schema.json", "tagcast image tag"),
        document::<crate::ImageReference>("image-reference.schema.json", "OCI image reference"),
    ];
    docs.extend(contract::documents());
    docs.sort_by_key(|d| d.file_name);
    docs
}

/// The text written to `schemas/<file_name>`: pretty JSON and a final newline.
pub fn render(document: &Document) -> String {
    let mut text = serde_json::to_string_pretty(&document.schema).expect("a schema serializes");
    text.push('\n');
    text
}
