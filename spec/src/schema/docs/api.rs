//! The broker's HTTP operations, read from `openapi.json` (its `paths` and
//! `webhooks`), as `index.html` shows them: method, path, who may call it,
//! parameters, request body and responses with their examples.

use std::fmt::Write as _;

use serde_json::Value;

use super::html::{Resolve, blocks_html, constraint_html, inline, type_html};
use super::text::esc;
use super::{TypePart, constraints, ref_name, type_of};

/// One operation of `paths` or `webhooks`.
pub(super) struct Operation {
    /// `operationId`; the anchor is `op-<id>`.
    pub id: String,
    pub method: String,
    /// The path, or `{callbackUrl}` for a webhook.
    pub path: String,
    /// The first OpenAPI tag: the group it is shown in.
    pub group: String,
    summary: String,
    description: String,
    security: Vec<String>,
    parameters: Vec<Parameter>,
    request: Vec<Content>,
    responses: Vec<Response>,
}

struct Parameter {
    name: String,
    location: String,
    required: bool,
    ty: Vec<TypePart>,
    schema: Value,
    description: String,
}

struct Content {
    media_type: String,
    ty: Option<Vec<TypePart>>,
    examples: Vec<(String, Value)>,
}

struct Response {
    status: String,
    description: String,
    headers: Vec<(String, String)>,
    content: Vec<Content>,
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Every operation of the document, paths first, in document order.
pub(super) fn operations(openapi: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (key, path_base) in [("paths", None), ("webhooks", Some("{callbackUrl}"))] {
        let Some(items) = openapi.get(key).and_then(Value::as_object) else {
            continue;
        };
        for (path, item) in items {
            let shared: Vec<&Value> = item
                .get("parameters")
                .and_then(Value::as_array)
                .map(|p| p.iter().collect())
                .unwrap_or_default();
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    out.push(operation(openapi, path_base.unwrap_or(path), method, &shared, op));
                }
            }
        }
    }
    out
}

fn operation(openapi: &Value, path: &str, method: &str, shared: &[&Value], op: &Value) -> Operation {
    let text = |v: &Value| super::text::strip_rustdoc_links(v.as_str().unwrap_or_default());
    let parameters = shared
        .iter()
        .copied()
        .chain(op.get("parameters").and_then(Value::as_array).into_iter().flatten())
        .map(|p| Parameter {
            name: p["name"].as_str().unwrap_or_default().to_owned(),
            location: p["in"].as_str().unwrap_or_default().to_owned(),
            required: p["required"] == Value::Bool(true),
            ty: type_of(&p["schema"]),
            schema: p["schema"].clone(),
            description: text(&p["description"]),
        })
        .collect();
    let security = match op.get("security").or_else(|| openapi.get("security")) {
        Some(Value::Array(requirements)) => requirements
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|r| r.keys().cloned())
            .collect(),
        _ => Vec::new(),
    };
    let responses = op
        .get("responses")
        .and_then(Value::as_object)
        .map(|responses| {
            let mut list: Vec<Response> = responses
                .iter()
                .map(|(status, r)| {
                    let r = resolve_response(openapi, r);
                    Response {
                        status: status.clone(),
                        description: text(&r["description"]),
                        headers: r
                            .get("headers")
                            .and_then(Value::as_object)
                            .map(|h| {
                                h.iter()
                                    .map(|(name, h)| (name.clone(), text(&h["description"])))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        content: contents(r.get("content")),
                    }
                })
                .collect();
            list.sort_by(|a, b| a.status.cmp(&b.status));
            list
        })
        .unwrap_or_default();
    Operation {
        id: op["operationId"].as_str().unwrap_or(path).to_owned(),
        method: method.to_uppercase(),
        path: path.to_owned(),
        group: op["tags"][0].as_str().unwrap_or_default().to_owned(),
        summary: text(&op["summary"]),
        description: text(&op["description"]),
        security,
        parameters,
        request: contents(op.get("requestBody").and_then(|b| b.get("content"))),
        responses,
    }
}

/// A response, or the component one it refers to.
fn resolve_response<'a>(openapi: &'a Value, response: &'a Value) -> &'a Value {
    match response.get("$ref").and_then(Value::as_str) {
        Some(target) => &openapi["components"]["responses"][ref_name(target)],
        None => response,
    }
}

fn contents(content: Option<&Value>) -> Vec<Content> {
    content
        .and_then(Value::as_object)
        .map(|c| {
            c.iter()
                .map(|(media_type, media)| {
                    let schema = media
                        .get("schema")
                        .filter(|s| s.as_object().is_some_and(|o| !o.is_empty()));
                    let mut examples = Vec::new();
                    if let Some(example) = media.get("example") {
                        examples.push((String::new(), example.clone()));
                    }
                    if let Some(named) = media.get("examples").and_then(Value::as_object) {
                        for (name, example) in named {
                            examples.push((name.clone(), example.get("value").cloned().unwrap_or(Value::Null)));
                        }
                    }
                    Content {
                        media_type: media_type.clone(),
                        ty: schema.map(type_of),
                        examples,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The path without the GA4GH base path, for the contents.
pub(super) fn short_path(path: &str) -> &str {
    path.strip_prefix(crate::openapi::BASE_PATH)
        .filter(|p| !p.is_empty())
        .unwrap_or(path)
}

/// A path, escaped, that may break after each `/` on a narrow screen.
pub(super) fn breakable_path(path: &str) -> String {
    esc(path).replace('/', "/<wbr>")
}

fn example_html(out: &mut String, label: &str, example: &Value, open: bool) {
    let pretty = serde_json::to_string_pretty(example).expect("an example serializes");
    let _ = write!(
        out,
        "<details{}><summary>{}</summary><pre>{}</pre></details>",
        if open { " open" } else { "" },
        esc(label),
        esc(&pretty)
    );
}

fn contents_html(out: &mut String, contents: &[Content], resolve: &Resolve<'_>, open: bool) {
    for c in contents {
        let _ = write!(out, "<p><code>{}</code>", esc(&c.media_type));
        match &c.ty {
            Some(ty) => {
                let _ = write!(out, ": {}</p>", type_html(ty, resolve));
            }
            None => out.push_str(": the registry's own payload</p>"),
        }
        for (name, example) in &c.examples {
            let label = if name.is_empty() {
                "Example".to_owned()
            } else {
                format!("Example: {name}")
            };
            example_html(out, &label, example, open);
        }
    }
}

/// One operation as an HTML section with the anchor `op-<operationId>`.
pub(super) fn operation_html(out: &mut String, op: &Operation, resolve: &Resolve<'_>) {
    let _ = writeln!(
        out,
        "<section class=\"op\" id=\"op-{0}\"><h3><a class=\"self\" href=\"#op-{0}\"><span class=\"method {1}\">{2}</span> <code class=\"path\">{3}</code></a></h3>",
        esc(&op.id),
        op.method.to_lowercase(),
        esc(&op.method),
        breakable_path(&op.path),
    );
    let _ = writeln!(out, "<p class=\"summary\">{}</p>", inline(&op.summary));
    if !op.description.is_empty() {
        out.push_str(&blocks_html(&op.description));
    }
    let who = if op.security.is_empty() {
        "public".to_owned()
    } else {
        op.security
            .iter()
            .map(|s| format!("<code>{}</code>", esc(s)))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let _ = writeln!(out, "<p>Authorization: {who}</p>");
    if !op.parameters.is_empty() {
        out.push_str("<table class=\"props\"><thead><tr><th>Parameter</th><th>In</th><th>Type</th><th>Required</th><th>Description</th></tr></thead><tbody>\n");
        for p in &op.parameters {
            let constraints = constraints(&p.schema)
                .iter()
                .map(constraint_html)
                .collect::<Vec<_>>()
                .join("<br>");
            let _ = writeln!(
                out,
                "<tr><td data-label=\"Parameter\"><code class=\"prop\">{}</code></td><td data-label=\"In\">{}</td><td data-label=\"Type\">{}{}{}</td><td data-label=\"Required\">{}</td><td data-label=\"Description\">{}</td></tr>",
                esc(&p.name),
                esc(&p.location),
                type_html(&p.ty, resolve),
                if constraints.is_empty() { "" } else { "<br>" },
                constraints,
                if p.required { "yes" } else { "no" },
                blocks_html(&p.description),
            );
        }
        out.push_str("</tbody></table>\n");
    }
    if !op.request.is_empty() {
        out.push_str("<h4>Request body</h4>\n");
        contents_html(out, &op.request, resolve, true);
    }
    out.push_str("<h4>Responses</h4>\n<dl class=\"responses\">\n");
    for r in &op.responses {
        let _ = write!(
            out,
            "<dt><code class=\"status s{}\">{}</code></dt><dd>{}",
            r.status.chars().next().unwrap_or('x'),
            esc(&r.status),
            inline(&r.description)
        );
        for (name, description) in &r.headers {
            let _ = write!(
                out,
                "<p>Header <code class=\"prop\">{}</code>: {}</p>",
                esc(name),
                inline(description)
            );
        }
        contents_html(out, &r.content, resolve, r.status.starts_with('2'));
        out.push_str("</dd>\n");
    }
    out.push_str("</dl></section>\n");
}
