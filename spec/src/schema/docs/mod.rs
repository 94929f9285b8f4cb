//! Readable documentation of the schema documents: one Markdown page per
//! schema and one self-contained HTML page (`schemas/docs/`).
//!
//! Both are rendered from one model of each schema, so they say the same
//! thing; `tagcast schema docs` writes them and a test fails on drift.
//! `index.html` adds what a reader needs to see how the pieces fit: an
//! overview of the flow, the broker's HTTP operations from `openapi.json`,
//! each shared definition once, and the spec's requirements, so that every
//! requirement ID links to text in the same page wherever it is published.
//! The Markdown pages, read on GitHub, link requirement IDs to the anchors
//! of `spec/*.md` instead.

mod api;
mod html;
mod markdown;
mod spec_text;
#[cfg(test)]
mod tests;
pub(crate) mod text;

use serde_json::{Map, Value};

use super::Document;

/// One generated documentation file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// File name in `schemas/docs/`, e.g. `service.md` or `index.html`.
    pub file_name: String,
    /// The file's text.
    pub text: String,
}

/// The pages for every `*.schema.json` in `documents`: `<name>.md` per
/// schema, `README.md` listing them, and `index.html` with all of them and
/// the operations of `openapi.json`, when it is among `documents`.
pub fn pages(documents: &[Document]) -> Vec<Page> {
    let mut schemas: Vec<Schema> = documents
        .iter()
        .filter(|d| d.file_name.ends_with(".schema.json"))
        .map(Schema::from_document)
        .collect();
    schemas.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    let openapi = documents
        .iter()
        .find(|d| d.file_name == "openapi.json")
        .map(|d| &d.schema);
    let mut pages: Vec<Page> = schemas
        .iter()
        .map(|s| Page {
            file_name: format!("{}.md", s.slug),
            text: markdown::page(s),
        })
        .collect();
    pages.push(Page {
        file_name: "README.md".into(),
        text: markdown::readme(&schemas),
    });
    pages.push(Page {
        file_name: "index.html".into(),
        text: html::page(documents, &schemas, openapi),
    });
    pages
}

/// Patterns longer than this are folded away; the grammar's ABNF is shown
/// instead when the spec has one.
const LONG_PATTERN: usize = 80;

struct Schema {
    file_name: String,
    slug: String,
    title: String,
    id: String,
    root: Section,
    definitions: Vec<Section>,
}

struct Section {
    anchor: String,
    name: String,
    description: String,
    kind: Vec<TypePart>,
    constraints: Vec<Constraint>,
    rows: Vec<Row>,
    values: Vec<(String, String)>,
    examples: Vec<Value>,
}

struct Row {
    name: String,
    anchor: String,
    ty: Vec<TypePart>,
    required: bool,
    constraints: Vec<Constraint>,
    description: String,
}

/// A type as text, parts of which name a definition (`$ref`).
enum TypePart {
    Text(String),
    Definition(String),
}

/// One constraint of a schema.
enum Constraint {
    /// `label: value`, the value shown as code.
    Value(&'static str, String),
    /// A flag such as "unique items".
    Flag(&'static str),
    /// A `pattern`; long ones are folded.
    Pattern(String),
}

impl Schema {
    fn from_document(document: &Document) -> Self {
        let slug = document.file_name.trim_end_matches(".schema.json").to_owned();
        let value = &document.schema;
        let title = value["title"].as_str().unwrap_or(&slug).to_owned();
        let mut root = section(&slug, &title, value);
        root.name = title.clone();
        let definitions = value
            .get("$defs")
            .and_then(Value::as_object)
            .map(|defs| {
                defs.iter()
                    .map(|(name, def)| section(&format!("{slug}--{}", name.to_lowercase()), name, def))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            file_name: document.file_name.to_owned(),
            slug,
            title,
            id: value["$id"].as_str().unwrap_or_default().to_owned(),
            root,
            definitions,
        }
    }
}

fn section(anchor: &str, name: &str, schema: &Value) -> Section {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let rows: Vec<Row> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(prop, s)| Row {
                    name: prop.clone(),
                    anchor: format!("{anchor}.{}", prop.to_lowercase()),
                    ty: type_of(s),
                    required: required.contains(&prop.as_str()),
                    constraints: constraints(s),
                    description: description(s),
                })
                .collect()
        })
        .unwrap_or_default();
    let values = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .filter(|options| options.iter().all(|o| o.get("const").is_some()))
        .map(|options| {
            options
                .iter()
                .map(|o| (o["const"].to_string(), description(o)))
                .collect()
        })
        .or_else(|| {
            schema
                .get("enum")
                .and_then(Value::as_array)
                .map(|e| e.iter().map(|v| (v.to_string(), String::new())).collect())
        })
        .unwrap_or_default();
    Section {
        anchor: anchor.to_owned(),
        name: name.to_owned(),
        description: description(schema),
        kind: type_of(schema),
        constraints: if rows.is_empty() {
            constraints(schema)
        } else {
            Vec::new()
        },
        rows,
        values,
        examples: schema
            .get("examples")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    }
}

/// A schema's description without rustdoc syntax.
fn description(schema: &Value) -> String {
    text::strip_rustdoc_links(schema["description"].as_str().unwrap_or_default())
}

/// The definition a `$ref` names, in `$defs` or in OpenAPI's components.
fn ref_name(target: &str) -> &str {
    target.rsplit('/').next().unwrap_or(target)
}

fn type_of(schema: &Value) -> Vec<TypePart> {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        return vec![TypePart::Definition(ref_name(target).to_owned())];
    }
    if let Some(c) = schema.get("const") {
        return vec![TypePart::Text(format!("const {c}"))];
    }
    for combinator in ["anyOf", "oneOf"] {
        if let Some(options) = schema.get(combinator).and_then(Value::as_array) {
            if options.iter().all(|o| o.get("const").is_some()) {
                return vec![TypePart::Text("enum".into())];
            }
            let mut parts = Vec::new();
            for (i, option) in options.iter().enumerate() {
                if i > 0 {
                    parts.push(TypePart::Text(" or ".into()));
                }
                parts.extend(type_of(option));
            }
            return parts;
        }
    }
    if schema.get("enum").is_some() {
        return vec![TypePart::Text("enum".into())];
    }
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => {
            let mut parts = vec![TypePart::Text("array of ".into())];
            match schema.get("items") {
                Some(items) => parts.extend(type_of(items)),
                None => parts.push(TypePart::Text("any".into())),
            }
            parts
        }
        Some(Value::String(t)) => vec![TypePart::Text(t.clone())],
        Some(Value::Array(ts)) => vec![TypePart::Text(
            ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        )],
        _ => vec![TypePart::Text("any".into())],
    }
}

fn plain(parts: &[TypePart]) -> String {
    parts
        .iter()
        .map(|p| match p {
            TypePart::Text(t) | TypePart::Definition(t) => t.as_str(),
        })
        .collect()
}

/// The `format`s JSON Schema draft 2020-12 defines (§7.3). schemars adds
/// its own (`uint16`, `int64`, …) for Rust integers, which no validator
/// knows; the docs show a standard one or the bound it implies, never those.
const JSON_SCHEMA_FORMATS: [&str; 19] = [
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// The maximum a Rust integer format implies, where it says something a
/// reader can use (a 64-bit bound does not).
fn implied_maximum(format: &str) -> Option<&'static str> {
    match format {
        "uint8" => Some("255"),
        "uint16" => Some("65535"),
        "uint32" => Some("4294967295"),
        "int8" => Some("127"),
        "int16" => Some("32767"),
        "int32" => Some("2147483647"),
        _ => None,
    }
}

fn constraints(schema: &Value) -> Vec<Constraint> {
    let mut out = Vec::new();
    let shown = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        if JSON_SCHEMA_FORMATS.contains(&format) {
            out.push(Constraint::Value("format", format.to_owned()));
        } else if let Some(max) = implied_maximum(format).filter(|_| schema.get("maximum").is_none()) {
            out.push(Constraint::Value("maximum", max.to_owned()));
        }
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        out.push(Constraint::Pattern(pattern.to_owned()));
    }
    if let Some(not) = schema.get("not") {
        out.push(not_constraint(not));
    }
    let keys = [
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "minimum"),
        ("maximum", "maximum"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("default", "default"),
    ];
    for (key, label) in keys {
        if let Some(v) = schema.get(key) {
            out.push(Constraint::Value(label, shown(v)));
        }
    }
    if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
        out.push(Constraint::Flag("unique items"));
    }
    if schema.get("writeOnly") == Some(&Value::Bool(true)) {
        out.push(Constraint::Flag("write-only"));
    }
    if schema.get("additionalProperties") == Some(&Value::Bool(true)) {
        out.push(Constraint::Flag("other properties allowed"));
    }
    out
}

/// A `not` clause in words where it is the one the generator adds to
/// anchored patterns (`schema::end_at_end_of_text`): `$` lets Python's `re`,
/// PCRE and Java accept a final newline, and the clause refuses it in every
/// dialect. Any other `not` is shown as its JSON.
fn not_constraint(not: &Value) -> Constraint {
    if *not == serde_json::json!({"type": "string", "pattern": "\\n"}) {
        Constraint::Flag(NO_NEWLINE)
    } else {
        Constraint::Value("not", not.to_string())
    }
}

/// How the docs read `not: {type: string, pattern: "\n"}`.
const NO_NEWLINE: &str = "no newline, not even a trailing one";

/// A schema with what does not change its meaning removed, and OpenAPI's
/// component references written as `$defs` ones, so that a definition can be
/// recognised as the same as a top-level schema.
fn normalized(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "$schema" | "$id" | "title" | "$defs" | "examples"))
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::String(s) => Value::String(s.replace("#/components/schemas/", "#/$defs/")),
        other => other.clone(),
    }
}
