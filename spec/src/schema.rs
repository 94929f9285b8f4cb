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
/// file name, so relative `$ref`s resolve inside `schemas/`. The path names
/// the contract's major version (spec/README.md, Versioning): a compatible
/// minor keeps every `$id`, a new major is published beside this one.
pub const BASE_URI: &str = "https://elixir-cloud-aai.github.io/tagcast/schemas/v1/";

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
    for doc in &mut docs {
        end_at_end_of_text(&mut doc.schema);
    }
    docs
}

/// Makes every `pattern` that ends in `$` refuse a trailing newline in
/// every regex dialect (spec/tags.md, TAG-1).
///
/// JSON Schema's `pattern` is an unanchored search, and `$` outside
/// multi-line mode means "end of text" in ECMA-262 and Rust's `regex` but
/// "end of text or before a final newline" in Python's `re` (which the
/// Python `jsonschema` package uses), PCRE and Java. No construct that all
/// of ECMA-262, RE2 and Python share anchors at the very end (`\z` and
/// lookaheads are not portable), so the pattern stays as it is and the
/// schema also says `not: {type: string, pattern: "\n"}`: a search for a
/// newline, which every dialect reads alike.
fn end_at_end_of_text(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let anchored = object
                .get("pattern")
                .and_then(Value::as_str)
                .is_some_and(|p| p.ends_with('$'));
            if anchored && !object.contains_key("not") {
                object.insert("not".into(), serde_json::json!({"type": "string", "pattern": "\\n"}));
            }
            object.values_mut().for_each(end_at_end_of_text);
        }
        Value::Array(items) => items.iter_mut().for_each(end_at_end_of_text),
        _ => {}
    }
}

/// The text written to `schemas/<file_name>`: pretty JSON and a final newline.
pub fn render(document: &Document) -> String {
    let mut text = serde_json::to_string_pretty(&document.schema).expect("a schema serializes");
    text.push('\n');
    text
}
