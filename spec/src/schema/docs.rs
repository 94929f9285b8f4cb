//! Readable documentation of the schema documents: one Markdown page per
//! schema and one self-contained HTML page (`schemas/docs/`).
//!
//! Both are rendered from one model of each schema, so they say the same
//! thing; `tagcast schema docs` writes them and a test fails on drift.

use std::fmt::Write as _;

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
/// schema, `README.md` listing them, and `index.html` with all of them.
pub fn pages(documents: &[Document]) -> Vec<Page> {
    let mut schemas: Vec<Schema> = documents
        .iter()
        .filter(|d| d.file_name.ends_with(".schema.json"))
        .map(Schema::from_document)
        .collect();
    schemas.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    let mut pages: Vec<Page> = schemas
        .iter()
        .map(|s| Page {
            file_name: format!("{}.md", s.slug),
            text: markdown(s),
        })
        .collect();
    pages.push(Page {
        file_name: "README.md".into(),
        text: readme(&schemas),
    });
    pages.push(Page {
        file_name: "index.html".into(),
        text: html(&schemas),
    });
    pages
}

/// Where requirement IDs are defined, relative to `schemas/docs/`.
fn requirement_file(prefix: &str) -> Option<&'static str> {
    match prefix {
        "TAG" | "REF" => Some("../../spec/tags.md"),
        "API" => Some("../../spec/service-api.md"),
        "CB" => Some("../../spec/callbacks.md"),
        _ => None,
    }
}

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
    kind: String,
    constraints: Vec<String>,
    rows: Vec<Row>,
    values: Vec<(String, String)>,
    examples: Vec<Value>,
}

struct Row {
    name: String,
    anchor: String,
    ty: Vec<TypePart>,
    required: bool,
    constraints: Vec<String>,
    description: String,
}

/// A type as text, parts of which may link to a definition's anchor.
enum TypePart {
    Text(String),
    Link(String, String),
}

impl Schema {
    fn from_document(document: &Document) -> Self {
        let slug = document.file_name.trim_end_matches(".schema.json").to_owned();
        let value = &document.schema;
        let title = value["title"].as_str().unwrap_or(&slug).to_owned();
        let mut root = section(&slug, &slug, &title, value);
        root.name = title.clone();
        let definitions = value
            .get("$defs")
            .and_then(Value::as_object)
            .map(|defs| {
                defs.iter()
                    .map(|(name, def)| section(&slug, &format!("{slug}--{}", name.to_lowercase()), name, def))
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

fn section(slug: &str, anchor: &str, name: &str, schema: &Value) -> Section {
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
                    ty: type_of(slug, s),
                    required: required.contains(&prop.as_str()),
                    constraints: constraints(s),
                    description: s["description"].as_str().unwrap_or_default().to_owned(),
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
                .map(|o| {
                    (
                        o["const"].to_string(),
                        o["description"].as_str().unwrap_or_default().to_owned(),
                    )
                })
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
        description: schema["description"].as_str().unwrap_or_default().to_owned(),
        kind: plain(&type_of(slug, schema)),
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

fn type_of(slug: &str, schema: &Value) -> Vec<TypePart> {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let name = target.rsplit('/').next().unwrap_or(target).to_owned();
        let anchor = format!("{slug}--{}", name.to_lowercase());
        return vec![TypePart::Link(name, anchor)];
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
                parts.extend(type_of(slug, option));
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
                Some(items) => parts.extend(type_of(slug, items)),
                None => parts.push(TypePart::Text("any".into())),
            }
            parts
        }
        Some(Value::String(t)) => vec![TypePart::Text(t.clone())],
        Some(Value::Array(ts)) => vec![TypePart::Text(
            ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        )],
        _ if schema.as_object().is_some_and(Map::is_empty) => vec![TypePart::Text("any".into())],
        _ => vec![TypePart::Text("any".into())],
    }
}

fn plain(parts: &[TypePart]) -> String {
    parts
        .iter()
        .map(|p| match p {
            TypePart::Text(t) | TypePart::Link(t, _) => t.as_str(),
        })
        .collect()
}

fn constraints(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let keys = [
        ("format", "format"),
        ("pattern", "pattern"),
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
            let shown = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
            out.push(format!("{label}: `{shown}`"));
        }
    }
    if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
        out.push("unique items".into());
    }
    if schema.get("writeOnly") == Some(&Value::Bool(true)) {
        out.push("write-only".into());
    }
    if schema.get("additionalProperties") == Some(&Value::Bool(true)) {
        out.push("other properties allowed".into());
    }
    out
}

// ---- Markdown ----

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}

/// Link requirement IDs outside code spans.
fn md_text(text: &str) -> String {
    let mut out = String::new();
    for (i, piece) in text.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(piece);
        } else {
            out.push_str(&link_requirements(piece, |id, file| format!("[{id}]({file}#{id})")));
        }
    }
    out
}

fn link_requirements(text: &str, link: impl Fn(&str, &str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some((before, id, after)) = next_requirement(rest) {
        out.push_str(before);
        let prefix = &id[..id.find('-').unwrap_or(0)];
        match requirement_file(prefix) {
            Some(file) => out.push_str(&link(id, file)),
            None => out.push_str(id),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The first `PREFIX-n` requirement ID in `text`, with what comes before and after.
fn next_requirement(text: &str) -> Option<(&str, &str, &str)> {
    let bytes = text.as_bytes();
    let mut search = 0;
    while let Some(offset) = text[search..].find('-') {
        let dash = search + offset;
        let start = text[..dash]
            .rfind(|c: char| !c.is_ascii_uppercase())
            .map_or(0, |p| p + 1);
        let digits = text[dash + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(text.len(), |p| dash + 1 + p);
        let word_start = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        if dash > start && digits > dash + 1 && word_start && requirement_file(&text[start..dash]).is_some() {
            return Some((&text[..start], &text[start..digits], &text[digits..]));
        }
        search = dash + 1;
    }
    None
}

fn md_type(parts: &[TypePart]) -> String {
    parts
        .iter()
        .map(|p| match p {
            TypePart::Text(t) => md_cell(t),
            TypePart::Link(name, anchor) => format!("[{name}](#{anchor})"),
        })
        .collect()
}

fn md_section(out: &mut String, section: &Section, level: &str) {
    let _ = writeln!(out, "{level} <a id=\"{}\"></a>{}\n", section.anchor, section.name);
    if !section.description.is_empty() {
        let _ = writeln!(out, "{}\n", md_text(&section.description));
    }
    if section.rows.is_empty() {
        let _ = writeln!(out, "Type: {}\n", md_cell(&section.kind));
        for c in &section.constraints {
            let _ = writeln!(out, "- {}", c.replace('\n', " "));
        }
        if !section.constraints.is_empty() {
            out.push('\n');
        }
    } else {
        out.push_str("| Property | Type | Required | Constraints | Description |\n| --- | --- | --- | --- | --- |\n");
        for row in &section.rows {
            let _ = writeln!(
                out,
                "| <a id=\"{}\"></a>`{}` | {} | {} | {} | {} |",
                row.anchor,
                row.name,
                md_type(&row.ty),
                if row.required { "yes" } else { "no" },
                md_cell(&row.constraints.join("; ")),
                md_cell(&md_text(&row.description)),
            );
        }
        out.push('\n');
    }
    if !section.values.is_empty() {
        out.push_str("| Value | Meaning |\n| --- | --- |\n");
        for (value, meaning) in &section.values {
            let _ = writeln!(out, "| `{}` | {} |", value, md_cell(&md_text(meaning)));
        }
        out.push('\n');
    }
    if !section.examples.is_empty() {
        let label = if section.examples.len() == 1 {
            "Example"
        } else {
            "Examples"
        };
        let _ = writeln!(out, "{label}:\n");
    }
    for example in &section.examples {
        let pretty = serde_json::to_string_pretty(example).expect("an example serializes");
        let _ = writeln!(out, "```json\n{pretty}\n```\n");
    }
}

fn markdown(schema: &Schema) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "<!-- Generated by `tagcast schema docs`; do not edit. -->\n");
    let _ = writeln!(out, "# {}\n", schema.title);
    let _ = writeln!(
        out,
        "Schema: [`{0}`](../{0}) (`$id` {1})\n",
        schema.file_name, schema.id
    );
    let mut root = String::new();
    md_section(&mut root, &schema.root, "##");
    // The root's heading repeats the title; keep its body only.
    out.push_str(root.split_once('\n').map_or("", |(_, rest)| rest).trim_start());
    if !schema.definitions.is_empty() {
        out.push_str("## Definitions\n\n");
        for def in &schema.definitions {
            md_section(&mut out, def, "###");
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn readme(schemas: &[Schema]) -> String {
    let mut out = String::from(
        "<!-- Generated by `tagcast schema docs`; do not edit. -->\n\n# Schema documentation\n\n\
         One page per schema of `schemas/`, and all of them in [`index.html`](index.html).\n\
         Regenerate with `tagcast schema docs` (or `TAGCAST_BLESS=1 cargo test`).\n\n\
         | Schema | Title |\n| --- | --- |\n",
    );
    for s in schemas {
        let _ = writeln!(out, "| [`{}`]({}.md) | {} |", s.file_name, s.slug, s.title);
    }
    out
}

// ---- HTML ----

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escape, turn `code` spans into `<code>` and link requirement IDs outside them.
fn html_text(text: &str) -> String {
    let mut out = String::new();
    for (i, piece) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(piece));
        } else {
            out.push_str(&link_requirements(&esc(piece), |id, file| {
                format!("<a class=\"req\" href=\"{file}#{id}\">{id}</a>")
            }));
        }
    }
    out.replace("\n\n", "</p><p>")
}

fn html_type(parts: &[TypePart]) -> String {
    parts
        .iter()
        .map(|p| match p {
            TypePart::Text(t) => esc(t),
            TypePart::Link(name, anchor) => format!("<a href=\"#{anchor}\">{}</a>", esc(name)),
        })
        .collect()
}

fn html_section(out: &mut String, section: &Section, heading: &str) {
    let _ = writeln!(
        out,
        "<section id=\"{0}\"><{heading}><a class=\"self\" href=\"#{0}\">{1}</a></{heading}>",
        section.anchor,
        esc(&section.name)
    );
    if !section.description.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", html_text(&section.description));
    }
    if section.rows.is_empty() {
        let _ = writeln!(out, "<p>Type: <code>{}</code></p>", esc(&section.kind));
        if !section.constraints.is_empty() {
            out.push_str("<ul>");
            for c in &section.constraints {
                let _ = write!(out, "<li>{}</li>", html_text(c));
            }
            out.push_str("</ul>\n");
        }
    } else {
        out.push_str(
            "<table><thead><tr><th>Property</th><th>Type</th><th>Required</th><th>Constraints</th><th>Description</th></tr></thead><tbody>\n",
        );
        for row in &section.rows {
            let _ = writeln!(
                out,
                "<tr id=\"{0}\"><td><a class=\"self\" href=\"#{0}\"><code>{1}</code></a></td><td>{2}</td><td>{3}</td><td>{4}</td><td>{5}</td></tr>",
                row.anchor,
                esc(&row.name),
                html_type(&row.ty),
                if row.required { "yes" } else { "no" },
                row.constraints
                    .iter()
                    .map(|c| html_text(c))
                    .collect::<Vec<_>>()
                    .join("<br>"),
                html_text(&row.description),
            );
        }
        out.push_str("</tbody></table>\n");
    }
    if !section.values.is_empty() {
        out.push_str("<table><thead><tr><th>Value</th><th>Meaning</th></tr></thead><tbody>\n");
        for (value, meaning) in &section.values {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                esc(value),
                html_text(meaning)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    for example in &section.examples {
        let pretty = serde_json::to_string_pretty(example).expect("an example serializes");
        let _ = writeln!(
            out,
            "<details open><summary>Example</summary><pre>{}</pre></details>",
            esc(&pretty)
        );
    }
    out.push_str("</section>\n");
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1b1f24;background:#fff;line-height:1.45}\
header{background:#0b3d5c;color:#fff;padding:1rem 2rem}header h1{margin:0;font-size:1.5rem}header p{margin:.3rem 0 0}header code{background:#1d5a80;color:#fff}\
.layout{display:flex;gap:2rem;padding:0 2rem}nav{min-width:16rem;max-width:18rem;position:sticky;top:0;align-self:flex-start;max-height:100vh;overflow:auto;padding:1rem 0}\
nav ul{list-style:none;padding-left:.8rem;margin:.2rem 0}nav>ul{padding-left:0}main{flex:1;min-width:0;padding:1rem 0 4rem}\
table{border-collapse:collapse;width:100%;margin:.6rem 0;font-size:.92rem}th,td{border:1px solid #d0d7de;padding:.35rem .5rem;vertical-align:top;text-align:left}\
th{background:#f3f5f7}tr:target,section:target>h2,section:target>h3{background:#fff5c2}code{background:#f3f5f7;padding:0 .2rem;border-radius:3px;word-break:break-word}\
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.6rem;overflow:auto;font-size:.85rem}a{color:#0a58a0}a.self{color:inherit;text-decoration:none}\
a.req{font-weight:600}article{border-top:2px solid #0b3d5c;margin-top:2rem}h3{margin-top:1.6rem}\
@media print{nav{display:none}}";

fn html(schemas: &[Schema]) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>tagcast schemas</title>\n");
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    out.push_str(
        "<header><h1>tagcast schemas</h1><p>Generated by <code>tagcast schema docs</code> from <code>schemas/*.schema.json</code>; requirement IDs link to the normative text in <code>spec/</code>.</p></header>\n",
    );
    out.push_str("<div class=\"layout\"><nav aria-label=\"Contents\"><strong>Contents</strong><ul>\n");
    for s in schemas {
        let _ = write!(out, "<li><a href=\"#{}\">{}</a>", s.slug, esc(&s.title));
        if !s.definitions.is_empty() {
            out.push_str("<ul>");
            for d in &s.definitions {
                let _ = write!(out, "<li><a href=\"#{}\">{}</a></li>", d.anchor, esc(&d.name));
            }
            out.push_str("</ul>");
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul></nav>\n<main>\n");
    for s in schemas {
        let _ = writeln!(out, "<article>");
        html_section(&mut out, &s.root, "h2");
        let _ = writeln!(
            out,
            "<p>Schema file: <a href=\"../{0}\"><code>{0}</code></a> &middot; <code>$id</code> {1}</p>",
            esc(&s.file_name),
            esc(&s.id)
        );
        for d in &s.definitions {
            html_section(&mut out, d, "h3");
        }
        out.push_str("</article>\n");
    }
    out.push_str("</main></div>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::{html_text, md_text};

    #[test]
    fn requirement_ids_link_outside_code() {
        assert_eq!(
            md_text("see API-3 and `CB-5`, not XAPI-3 or API-x"),
            "see [API-3](../../spec/service-api.md#API-3) and `CB-5`, not XAPI-3 or API-x"
        );
        assert_eq!(
            html_text("a <b> (TAG-10)"),
            "a &lt;b&gt; (<a class=\"req\" href=\"../../spec/tags.md#TAG-10\">TAG-10</a>)"
        );
    }
}
