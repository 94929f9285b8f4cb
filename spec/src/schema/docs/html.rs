//! `index.html`: every schema and operation in one self-contained page,
//! ordered by the flow a reader follows (tag, register, push, callback,
//! delivery, errors), each shared definition once, and the spec's
//! requirements rendered in the page so that requirement links work
//! wherever the page is published (no `../../spec/*.md`, which a static site
//! would serve as plain text).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::api::{self, Operation};
use super::text::{self, Block, esc};
use super::{Constraint, Document, LONG_PATTERN, Schema, Section, TypePart, normalized, section, spec_text};

/// Maps a definition's name to its anchor in the page.
pub(super) type Resolve<'a> = dyn Fn(&str) -> String + 'a;

/// A requirement ID's link: its rendered statement in this page.
fn requirement_href(id: &str) -> Option<String> {
    spec_text::defines(id).then(|| format!("#{id}"))
}

/// Inline description text as HTML, requirement IDs linked.
pub(super) fn inline(text: &str) -> String {
    text::html_inline(text, &requirement_href)
}

/// A description's paragraphs and lists.
pub(super) fn blocks_html(description: &str) -> String {
    let mut out = String::new();
    for block in text::blocks(description) {
        match block {
            Block::Paragraph(p) => {
                let _ = write!(out, "<p>{}</p>", inline(&p));
            }
            Block::List(items) | Block::Ordered(items) if items.is_empty() => {}
            Block::List(items) => list_html(&mut out, "ul", &items),
            Block::Ordered(items) => list_html(&mut out, "ol", &items),
        }
    }
    out
}

fn list_html(out: &mut String, tag: &str, items: &[String]) {
    let _ = write!(out, "<{tag}>");
    for item in items {
        let _ = write!(out, "<li>{}</li>", inline(item));
    }
    let _ = write!(out, "</{tag}>");
}

pub(super) fn type_html(parts: &[TypePart], resolve: &Resolve<'_>) -> String {
    parts
        .iter()
        .map(|p| match p {
            TypePart::Text(t) => esc(t),
            TypePart::Definition(name) => format!("<a href=\"#{}\">{}</a>", resolve(name), esc(name)),
        })
        .collect()
}

pub(super) fn constraint_html(c: &Constraint) -> String {
    match c {
        Constraint::Value(label, value) => format!("{label}: <code>{}</code>", esc(value)),
        Constraint::Flag(flag) => (*flag).to_owned(),
        Constraint::Pattern(pattern) if pattern.len() > LONG_PATTERN => {
            let grammar = spec_text::abnf_for_pattern(pattern)
                .map(|abnf| {
                    format!(
                        "<div class=\"abnf\">grammar: <code>{}</code> of {}<pre>{}</pre></div>",
                        esc(abnf.rule),
                        inline(abnf.requirement),
                        esc(abnf.text)
                    )
                })
                .unwrap_or_default();
            format!(
                "{grammar}<details class=\"pattern\"><summary>show pattern ({} characters)</summary><code class=\"pattern\">{}</code></details>",
                pattern.chars().count(),
                esc(pattern)
            )
        }
        Constraint::Pattern(pattern) => format!("pattern: <code class=\"pattern\">{}</code>", esc(pattern)),
    }
}

fn section_html(out: &mut String, section: &Section, heading: &str, resolve: &Resolve<'_>) {
    let _ = writeln!(
        out,
        "<section id=\"{0}\"><{heading}><a class=\"self\" href=\"#{0}\">{1}</a></{heading}>",
        section.anchor,
        esc(&section.name)
    );
    out.push_str(&blocks_html(&section.description));
    if section.rows.is_empty() {
        let _ = writeln!(out, "<p>Type: {}</p>", type_html(&section.kind, resolve));
        if !section.constraints.is_empty() {
            out.push_str("<ul class=\"constraints\">");
            for c in &section.constraints {
                let _ = write!(out, "<li>{}</li>", constraint_html(c));
            }
            out.push_str("</ul>\n");
        }
    } else {
        out.push_str(
            "<table class=\"props\"><thead><tr><th>Property</th><th>Type</th><th>Required</th><th>Constraints</th><th>Description</th></tr></thead><tbody>\n",
        );
        for row in &section.rows {
            let _ = writeln!(
                out,
                "<tr id=\"{0}\"><td data-label=\"Property\"><a class=\"self\" href=\"#{0}\"><code class=\"prop\">{1}</code></a></td><td data-label=\"Type\">{2}</td><td data-label=\"Required\">{3}</td><td data-label=\"Constraints\">{4}</td><td data-label=\"Description\">{5}</td></tr>",
                row.anchor,
                esc(&row.name),
                type_html(&row.ty, resolve),
                if row.required { "yes" } else { "no" },
                row.constraints
                    .iter()
                    .map(constraint_html)
                    .collect::<Vec<_>>()
                    .join("<br>"),
                blocks_html(&row.description),
            );
        }
        out.push_str("</tbody></table>\n");
    }
    if !section.values.is_empty() {
        out.push_str("<table class=\"props\"><thead><tr><th>Value</th><th>Meaning</th></tr></thead><tbody>\n");
        for (value, meaning) in &section.values {
            let _ = writeln!(
                out,
                "<tr><td data-label=\"Value\"><code class=\"prop\">{}</code></td><td data-label=\"Meaning\">{}</td></tr>",
                esc(value),
                blocks_html(meaning)
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

/// Every definition of every document, once: a definition equal to a
/// top-level schema links to that schema, the others are rendered in the
/// shared-definitions part, keyed by name (the first wins; the generator's
/// test proves same-named definitions are equal).
struct Shared {
    anchors: BTreeMap<String, String>,
    sections: Vec<Section>,
}

impl Shared {
    fn collect(documents: &[Document], schemas: &[Schema]) -> Self {
        let roots: Vec<(Value, &str)> = documents
            .iter()
            .filter(|d| d.file_name.ends_with(".schema.json"))
            .map(|d| (normalized(&d.schema), d.file_name.trim_end_matches(".schema.json")))
            .collect();
        let mut anchors = BTreeMap::new();
        let mut defs: BTreeMap<String, &Value> = BTreeMap::new();
        for (name, def) in all_definitions(documents) {
            if anchors.contains_key(name) || defs.contains_key(name) {
                continue;
            }
            let def_normalized = normalized(def);
            match roots.iter().find(|(root, _)| *root == def_normalized) {
                Some((_, slug)) => {
                    anchors.insert(name.to_owned(), (*slug).to_owned());
                }
                None => {
                    defs.insert(name.to_owned(), def);
                }
            }
        }
        let mut sections = Vec::new();
        for (name, def) in defs {
            let anchor = format!("def-{}", name.to_lowercase());
            anchors.insert(name.clone(), anchor.clone());
            sections.push(section(&anchor, &name, def));
        }
        debug_assert!(schemas.iter().all(|s| !s.slug.starts_with("def-")));
        Self { anchors, sections }
    }
}

/// `(name, schema)` of every `$defs` entry and OpenAPI component schema.
pub(super) fn all_definitions(documents: &[Document]) -> Vec<(&str, &Value)> {
    let mut out = Vec::new();
    for d in documents {
        let defs = d
            .schema
            .get("$defs")
            .or_else(|| d.schema.pointer("/components/schemas"));
        if let Some(defs) = defs.and_then(Value::as_object) {
            out.extend(defs.iter().map(|(k, v)| (k.as_str(), v)));
        }
    }
    out
}

/// A step of the flow: the schemas and OpenAPI tag groups it covers.
struct Step {
    id: &'static str,
    title: &'static str,
    /// Markdown-ish text: `code`, requirement IDs.
    summary: &'static str,
    schemas: &'static [&'static str],
    groups: &'static [&'static str],
}

const STEPS: &[Step] = &[
    Step {
        id: "step-tag",
        title: "Tag and push",
        summary: "CI computes a tag `<api-version>-<stage>-<timestamp>` (`tagcast tag new`, TAG-1 to TAG-4), \
                  builds the image and pushes it to a container registry under an image reference (REF-1). \
                  Tags of one stage are ordered by api-version, then build time (TAG-9).",
        schemas: &["tag", "image-reference"],
        groups: &[],
    },
    Step {
        id: "step-register",
        title: "Register and subscribe",
        summary: "An operator registers the service with `POST /services` (API-5): its GA4GH service-info \
                  plus a `subscription` naming the images, the stage, the API requirement and the \
                  `callbackUrl` of its CD endpoint (API-6). The answer carries the registered service, the \
                  subscription's signing secret (returned only then) and the hook URLs to configure in the \
                  registry (API-8).",
        schemas: &["service-registration", "subscription", "service", "registered-service"],
        groups: &["Registration (ELIXIR cloud-registry)"],
    },
    Step {
        id: "step-push",
        title: "The registry reports the push",
        summary: "The registry posts its webhook to the hook URL `/hooks/{kind}/{token}` (API-14); the \
                  `generic` kind takes a signed generic event (API-16). The broker stores the request, \
                  answers 202 and, for each subscription, delivers the tag only if it has the subscribed \
                  stage, its api-version matches the requirement and it is newer than the current tag \
                  (TAG-11).",
        schemas: &["generic-event"],
        groups: &["Inbound registry webhooks"],
    },
    Step {
        id: "step-callback",
        title: "The broker calls back",
        summary: "For each subscription the tag qualifies for, the broker POSTs an `image.published` \
                  CloudEvent to the `callbackUrl` (CB-1, CB-2), signed the Standard Webhooks way with the \
                  subscription's secret (CB-3, CB-5). The CD endpoint verifies it, answers quickly and \
                  deploys (CB-8, CB-9).",
        schemas: &["image-published"],
        groups: &["Callbacks"],
    },
    Step {
        id: "step-deliver",
        title: "Delivery, retries and status",
        summary: "Each callback is a delivery, retried on a schedule until a 2xx answer or a permanent \
                  failure (CB-11, CB-12, CB-14). The subscription status (API-10) and the delivery log \
                  (API-11) show what reached the endpoint; a delivery can be sent again (API-12).",
        schemas: &["delivery", "subscription-status"],
        groups: &["Subscriptions"],
    },
    Step {
        id: "step-read",
        title: "Reading the registry",
        summary: "The GA4GH Service Registry reads are public and never show a secret (API-3).",
        schemas: &[],
        groups: &["GA4GH Service Registry"],
    },
    Step {
        id: "step-errors",
        title: "Errors",
        summary: "Every 4xx and 5xx answer has one body: the status, a stable `code`, a `detail` naming the \
                  input and the rule, and the ID of the requirement it enforces (API-13).",
        schemas: &["error"],
        groups: &[],
    },
    Step {
        id: "step-conformance",
        title: "Conformance",
        summary: "`tagcast conformance` checks CI outputs, registries, brokers and CD endpoints against \
                  these requirements and reports in this shape.",
        schemas: &["conformance-report"],
        groups: &[],
    },
];

/// The flow as a picture, no external asset, scaled to the page's width:
/// left to right on a wide screen, top to bottom on a phone.
const FLOW_SVG: &str = r##"<svg class="flow wide" viewBox="0 0 760 170" role="img" aria-labelledby="flow-wide"><title id="flow-wide">CI pushes a tagged image to a registry; the registry notifies the broker; the broker calls the subscribed CD endpoint back; the operator registers the subscription</title>
<g font-family="system-ui,sans-serif" font-size="13" text-anchor="middle">
<rect x="4" y="110" width="130" height="52" rx="6" fill="#e8f1f8" stroke="#0b3d5c"/><text x="69" y="132">CI</text><text x="69" y="150" font-size="11">tag, build, push</text>
<rect x="200" y="110" width="150" height="52" rx="6" fill="#e8f1f8" stroke="#0b3d5c"/><text x="275" y="132">container registry</text><text x="275" y="150" font-size="11">Distribution, Harbor, …</text>
<rect x="416" y="110" width="150" height="52" rx="6" fill="#0b3d5c" stroke="#0b3d5c"/><text x="491" y="132" fill="#fff">broker</text><text x="491" y="150" font-size="11" fill="#fff">Service Registry</text>
<rect x="630" y="110" width="126" height="52" rx="6" fill="#e8f1f8" stroke="#0b3d5c"/><text x="693" y="132">CD endpoint</text><text x="693" y="150" font-size="11">deploys the tag</text>
<rect x="416" y="8" width="150" height="44" rx="6" fill="#fff5c2" stroke="#0b3d5c"/><text x="491" y="35">operator</text>
<g stroke="#0b3d5c" stroke-width="2"><line x1="134" y1="136" x2="192" y2="136"/><line x1="350" y1="136" x2="408" y2="136"/><line x1="566" y1="136" x2="622" y2="136"/><line x1="491" y1="52" x2="491" y2="102"/></g>
<g fill="#0b3d5c"><polygon points="200,136 190,131 190,141"/><polygon points="416,136 406,131 406,141"/><polygon points="630,136 620,131 620,141"/><polygon points="491,110 486,100 496,100"/></g>
<g font-size="11"><text x="167" y="104">1 push</text><text x="383" y="104">2 hook</text><text x="598" y="104">3 callback</text><text x="540" y="84">register</text><text x="540" y="98">(subscribe)</text></g>
</g></svg>
<svg class="flow narrow" viewBox="0 0 360 332" role="img" aria-labelledby="flow-narrow"><title id="flow-narrow">CI pushes a tagged image to a registry; the registry notifies the broker; the broker calls the subscribed CD endpoint back; the operator registers the subscription</title>
<g font-family="system-ui,sans-serif" font-size="14" text-anchor="middle">
<rect x="10" y="4" width="200" height="48" rx="6" fill="#e8f1f8" stroke="#0b3d5c"/><text x="110" y="25">CI</text><text x="110" y="43" font-size="12">tag, build, push</text>
<rect x="10" y="96" width="200" height="48" rx="6" fill="#e8f1f8" stroke="#0b3d5c"/><text x="110" y="117">container registry</text><text x="110" y="135" font-size="12">Distribution, Harbor, …</text>
<rect x="10" y="188" width="200" height="48" rx="6" fill="#0b3d5c" stroke="#0b3d5c"/><text x="110" y="209" fill="#fff">broker</text><text x="110" y="227" font-size="12" fill="#fff">Service Registry</text>
<rect x="10" y="280" width="200" height="48" rx="6" fill="#e8f1f8" stroke="#0b3d5c"/><text x="110" y="301">CD endpoint</text><text x="110" y="319" font-size="12">deploys the tag</text>
<rect x="256" y="188" width="100" height="48" rx="6" fill="#fff5c2" stroke="#0b3d5c"/><text x="306" y="217">operator</text>
<g stroke="#0b3d5c" stroke-width="2"><line x1="110" y1="52" x2="110" y2="88"/><line x1="110" y1="144" x2="110" y2="180"/><line x1="110" y1="236" x2="110" y2="272"/><line x1="256" y1="212" x2="218" y2="212"/></g>
<g fill="#0b3d5c"><polygon points="110,96 105,86 115,86"/><polygon points="110,188 105,178 115,178"/><polygon points="110,280 105,270 115,270"/><polygon points="210,212 220,207 220,217"/></g>
<g font-size="12" text-anchor="start"><text x="122" y="78">1 push</text><text x="122" y="170">2 hook</text><text x="122" y="262">3 callback</text><text x="260" y="256">registers</text></g>
</g></svg>"##;

const STYLE: &str = "*{box-sizing:border-box}body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1b1f24;background:#fff;line-height:1.45}\
header{background:#0b3d5c;color:#fff;padding:1rem 2rem}header h1{margin:0;font-size:1.5rem}header p{margin:.3rem 0 0}header code{background:#1d5a80;color:#fff}\
.layout{display:flex;gap:2rem;padding:0 2rem}nav{flex:0 0 16rem;position:sticky;top:0;align-self:flex-start;max-height:100vh;overflow:auto;padding:1rem 0}\
nav ul{list-style:none;padding-left:.8rem;margin:.2rem 0}nav details>ul{padding-left:0}nav summary{font-weight:700;cursor:pointer}main{flex:1;min-width:0;padding:1rem 0 4rem}\
table{border-collapse:collapse;width:100%;margin:.6rem 0;font-size:.92rem}th,td{border:1px solid #d0d7de;padding:.35rem .5rem;vertical-align:top;text-align:left}\
th{background:#f3f5f7}td p{margin:0 0 .3rem}tr:target,section:target>h2,section:target>h3,section:target>h4{background:#fff5c2}\
code{background:#f3f5f7;padding:0 .2rem;border-radius:3px;overflow-wrap:anywhere}code.prop{white-space:nowrap;overflow-wrap:normal}nav a{overflow-wrap:anywhere}\
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.6rem;font-size:.85rem;white-space:pre-wrap;overflow-wrap:anywhere}\
details.pattern code.pattern{display:block;margin-top:.3rem}.abnf pre{margin:.2rem 0}a{color:#0a58a0}a.self{color:inherit;text-decoration:none}\
a.req{font-weight:600;white-space:nowrap}article{border-top:2px solid #0b3d5c;margin-top:2rem}h3{margin-top:1.6rem}\
.method{display:inline-block;min-width:4.2em;text-align:center;border-radius:4px;padding:0 .3rem;color:#fff;background:#555;font-size:.85em}\
.method.get{background:#1a7f37}.method.post{background:#0a58a0}.method.put{background:#9a6700}.method.delete{background:#cf222e}\
dl.responses dt{margin-top:.4rem}dl.responses dd{margin-left:1.2rem}dd p{margin:.2rem 0}.summary{font-weight:600}\
svg.flow{width:100%;max-width:48rem;height:auto;display:block;margin:1rem 0}svg.flow.narrow{display:none;max-width:24rem}main{overflow-wrap:break-word}ol.flow li{margin:.3rem 0}\
.scroll{overflow-x:auto}section.requirement{border-left:3px solid #d0d7de;padding-left:.8rem;margin:1rem 0}\
@media (max-width:50rem){.layout{display:block;padding:0 1rem}svg.flow.wide{display:none}svg.flow.narrow{display:block}header{padding:1rem}nav{position:static;max-height:none}\
table.props,table.props tbody,table.props tr,table.props td{display:block;width:100%}table.props thead{display:none}\
table.props tr{border:1px solid #d0d7de;margin:.6rem 0}table.props td{border:0;padding:.15rem .5rem}\
table.props td[data-label]::before{content:attr(data-label) ': ';font-weight:600}}\
@media (min-width:50.0625rem){@supports selector(::details-content){nav details::details-content{content-visibility:visible}nav summary{display:block;cursor:auto;pointer-events:none}}}\
@media print{nav{display:none}}";

/// Spec Markdown (a requirement's text) as HTML: paragraphs, lists,
/// tables and code blocks.
fn spec_html(markdown: &str) -> String {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.is_empty() {
            i += 1;
        } else if line.starts_with("```") {
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| !l.starts_with("```"))
                .copied()
                .collect();
            let _ = write!(out, "<pre>{}</pre>", esc(&body.join("\n")));
            i += body.len() + 2;
        } else if line.starts_with('|') {
            let rows: Vec<&str> = lines[i..]
                .iter()
                .map(|l| l.trim())
                .take_while(|l| l.starts_with('|'))
                .collect();
            i += rows.len();
            out.push_str("<div class=\"scroll\"><table>");
            for (n, row) in rows.iter().enumerate() {
                if n == 1 && row.chars().all(|c| "|-: ".contains(c)) {
                    continue;
                }
                let cell = if n == 0 { "th" } else { "td" };
                out.push_str("<tr>");
                let row = row.replace("\\|", "\u{0}");
                let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
                for c in inner.split('|') {
                    let _ = write!(out, "<{cell}>{}</{cell}>", inline(&c.trim().replace('\u{0}', "|")));
                }
                out.push_str("</tr>");
            }
            out.push_str("</table></div>");
        } else if let Some((ordered, _)) = text::list_item(line) {
            let mut items: Vec<String> = Vec::new();
            while i < lines.len() && !lines[i].trim().is_empty() {
                match text::list_item(lines[i]) {
                    Some((_, item)) => items.push(item.to_owned()),
                    None if lines[i].starts_with(' ') => {
                        if let Some(last) = items.last_mut() {
                            last.push(' ');
                            last.push_str(lines[i].trim());
                        }
                    }
                    None => break,
                }
                i += 1;
            }
            list_html(&mut out, if ordered { "ol" } else { "ul" }, &items);
        } else {
            let mut paragraph = Vec::new();
            while i < lines.len() {
                let l = lines[i].trim();
                if l.is_empty()
                    || l.starts_with("```")
                    || l.starts_with('|')
                    || (!paragraph.is_empty() && text::list_item(l).is_some())
                {
                    break;
                }
                paragraph.push(l);
                i += 1;
            }
            let _ = write!(out, "<p>{}</p>", inline(&paragraph.join(" ")));
        }
    }
    out
}

/// A step with the schemas and operations placed in it.
struct Placed<'a> {
    id: &'static str,
    title: &'static str,
    summary: String,
    schemas: Vec<&'a Schema>,
    operations: Vec<&'a Operation>,
}

/// Every schema and operation in the step that names it; what no step
/// names goes into a last one, so nothing is left out.
fn place<'a>(schemas: &'a [Schema], operations: &'a [Operation]) -> Vec<Placed<'a>> {
    let mut placed: Vec<Placed<'a>> = STEPS
        .iter()
        .map(|step| Placed {
            id: step.id,
            title: step.title,
            summary: inline(step.summary),
            schemas: step
                .schemas
                .iter()
                .filter_map(|slug| schemas.iter().find(|s| s.slug == *slug))
                .collect(),
            operations: operations
                .iter()
                .filter(|op| step.groups.contains(&op.group.as_str()))
                .collect(),
        })
        .collect();
    let other = Placed {
        id: "step-other",
        title: "Other",
        summary: String::new(),
        schemas: schemas
            .iter()
            .filter(|s| !STEPS.iter().any(|step| step.schemas.contains(&s.slug.as_str())))
            .collect(),
        operations: operations
            .iter()
            .filter(|op| !STEPS.iter().any(|step| step.groups.contains(&op.group.as_str())))
            .collect(),
    };
    if !other.schemas.is_empty() || !other.operations.is_empty() {
        placed.push(other);
    }
    placed
}

/// The contents list, in a `<details>` closed in the markup: on a phone the
/// list (longer than the first screen) is one "Contents" line above the
/// overview; on a wide screen the style shows it beside the page without a
/// click (`::details-content`, and only where the browser has it, so that
/// elsewhere the list stays one click away rather than hidden). No script:
/// the page is self-contained and readable without one.
fn contents_html(out: &mut String, placed: &[Placed<'_>]) {
    out.push_str(
        "<nav aria-label=\"Contents\"><details class=\"contents\"><summary>Contents</summary><ul>\n<li><a href=\"#overview\">Overview</a></li>\n",
    );
    for (n, step) in placed.iter().enumerate() {
        let _ = write!(
            out,
            "<li><a href=\"#{}\">{}. {}</a><ul>",
            step.id,
            n + 1,
            esc(step.title)
        );
        for op in &step.operations {
            let _ = write!(
                out,
                "<li><a href=\"#op-{}\">{} {}</a></li>",
                esc(&op.id),
                op.method,
                api::breakable_path(api::short_path(&op.path))
            );
        }
        for s in &step.schemas {
            let _ = write!(out, "<li><a href=\"#{}\">{}</a></li>", s.slug, esc(&s.title));
        }
        out.push_str("</ul></li>\n");
    }
    out.push_str("<li><a href=\"#definitions\">Shared definitions</a></li>\n<li><a href=\"#requirements\">Requirements</a></li>\n</ul></details></nav>\n");
}

fn overview_html(out: &mut String, placed: &[Placed<'_>]) {
    out.push_str("<section id=\"overview\"><h2><a class=\"self\" href=\"#overview\">Overview</a></h2>\n");
    out.push_str(&blocks_html(
        "Service developers tag the container images they push with one grammar; a broker — a GA4GH Service \
         Registry whose services may subscribe to their images — hears of each push from the registry and calls \
         back the CD endpoint of every subscribed deployment the new tag is meant for. This page describes every \
         message of that flow, in the order they happen.",
    ));
    out.push_str(FLOW_SVG);
    out.push_str("\n<ol class=\"flow\">\n");
    for step in placed {
        let _ = writeln!(
            out,
            "<li><a href=\"#{}\"><strong>{}</strong></a>: {}</li>",
            step.id,
            esc(step.title),
            step.summary
        );
    }
    out.push_str("</ol></section>\n");
}

fn step_html(out: &mut String, n: usize, step: &Placed<'_>, resolve: &Resolve<'_>) {
    let _ = writeln!(
        out,
        "<article id=\"{0}\"><h2><a class=\"self\" href=\"#{0}\">{1}. {2}</a></h2>",
        step.id,
        n + 1,
        esc(step.title)
    );
    if !step.summary.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", step.summary);
    }
    for op in &step.operations {
        api::operation_html(out, op, resolve);
    }
    for s in &step.schemas {
        section_html(out, &s.root, "h3", resolve);
        let _ = writeln!(
            out,
            "<p>Schema file: <a href=\"../{0}\"><code>{0}</code></a> &middot; <code>$id</code> <code>{1}</code></p>",
            esc(&s.file_name),
            esc(&s.id)
        );
    }
    out.push_str("</article>\n");
}

fn requirements_html(out: &mut String) {
    out.push_str(
        "<article id=\"requirements\"><h2><a class=\"self\" href=\"#requirements\">Requirements</a></h2>\n\
         <p>The normative statements the schemas and operations cite, quoted from the spec so that their IDs link here.</p>\n",
    );
    for (file, _) in spec_text::FILES {
        let _ = writeln!(out, "<h3>spec/{file}</h3>");
        for r in spec_text::requirements().iter().filter(|r| r.file == file) {
            let _ = writeln!(
                out,
                "<section class=\"requirement\" id=\"{}\">{}</section>",
                esc(&r.id),
                spec_html(&r.text)
            );
        }
    }
    out.push_str("</article>\n");
}

/// The whole page.
pub(super) fn page(documents: &[Document], schemas: &[Schema], openapi: Option<&Value>) -> String {
    let shared = Shared::collect(documents, schemas);
    let resolve = |name: &str| {
        shared
            .anchors
            .get(name)
            .cloned()
            .unwrap_or_else(|| format!("def-{}", name.to_lowercase()))
    };
    let operations = openapi.map(api::operations).unwrap_or_default();
    let placed = place(schemas, &operations);

    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>tagcast schemas and broker API</title>\n");
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    out.push_str(
        "<header><h1>tagcast schemas and broker API</h1><p>Generated by <code>tagcast schema docs</code> from \
         <code>schemas/*.schema.json</code> and <code>schemas/openapi.json</code>; the requirements are quoted \
         from <code>spec/</code>.</p></header>\n<div class=\"layout\">",
    );
    contents_html(&mut out, &placed);
    out.push_str("<main>\n");
    overview_html(&mut out, &placed);
    for (n, step) in placed.iter().enumerate() {
        step_html(&mut out, n, step, &resolve);
    }
    out.push_str(
        "<article id=\"definitions\"><h2><a class=\"self\" href=\"#definitions\">Shared definitions</a></h2>\n\
         <p>Types that the schemas above refer to, each once.</p>\n",
    );
    for def in &shared.sections {
        section_html(&mut out, def, "h3", &resolve);
    }
    out.push_str("</article>\n");
    requirements_html(&mut out);
    out.push_str("</main></div>\n</body>\n</html>\n");
    out
}
