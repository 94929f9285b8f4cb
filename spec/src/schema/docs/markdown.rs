//! One Markdown page per schema, read on GitHub: requirement IDs link to
//! the anchors of `spec/*.md`, which GitHub renders.

use std::fmt::Write as _;

use super::text::{self, Block};
use super::{Constraint, LONG_PATTERN, Schema, Section, TypePart, spec_text};

/// Where a requirement ID is defined, relative to `schemas/docs/`.
pub(super) fn requirement_href(id: &str) -> Option<String> {
    spec_text::requirements()
        .iter()
        .find(|r| r.id == id)
        .map(|r| format!("../../spec/{}#{id}", r.file))
}

fn cell(text: &str) -> String {
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
            out.push_str(&text::link_ids(piece, |id| {
                requirement_href(id).map(|href| format!("[{id}]({href})"))
            }));
        }
    }
    out
}

/// A description as Markdown blocks; in a table cell, with `<br>` and `•`.
fn md_blocks(description: &str, in_cell: bool) -> String {
    let blocks = text::blocks(description);
    let rendered: Vec<String> = blocks
        .iter()
        .map(|block| match block {
            Block::Paragraph(p) => md_text(p),
            Block::List(items) | Block::Ordered(items) => {
                let ordered = matches!(block, Block::Ordered(_));
                items
                    .iter()
                    .enumerate()
                    .map(|(n, item)| match (ordered, in_cell) {
                        (true, _) => format!("{}. {}", n + 1, md_text(item)),
                        (false, true) => format!("• {}", md_text(item)),
                        (false, false) => format!("- {}", md_text(item)),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        })
        .collect();
    if in_cell {
        cell(&rendered.join("\n"))
    } else {
        rendered.join("\n\n")
    }
}

fn md_type(slug: &str, parts: &[TypePart]) -> String {
    parts
        .iter()
        .map(|p| match p {
            TypePart::Text(t) => cell(t),
            TypePart::Definition(name) => format!("[{name}](#{slug}--{})", name.to_lowercase()),
        })
        .collect()
}

fn md_constraint(c: &Constraint) -> String {
    match c {
        Constraint::Value(label, value) => format!("{label}: `{value}`"),
        Constraint::Flag(flag) => (*flag).to_owned(),
        Constraint::Pattern(pattern) if pattern.len() > LONG_PATTERN => {
            let grammar = spec_text::abnf_for_pattern(pattern)
                .and_then(|abnf| {
                    requirement_href(abnf.requirement)
                        .map(|href| format!("the ABNF `{}` of [{}]({href}); ", abnf.rule, abnf.requirement))
                })
                .unwrap_or_default();
            format!(
                "pattern: {grammar}<details><summary>show pattern ({} characters)</summary><code>{}</code></details>",
                pattern.chars().count(),
                super::text::esc(pattern).replace('|', "&#124;")
            )
        }
        Constraint::Pattern(pattern) => format!("pattern: `{pattern}`"),
    }
}

fn section(out: &mut String, slug: &str, section: &Section, level: &str) {
    let _ = writeln!(out, "{level} <a id=\"{}\"></a>{}\n", section.anchor, section.name);
    if !section.description.is_empty() {
        let _ = writeln!(out, "{}\n", md_blocks(&section.description, false));
    }
    if section.rows.is_empty() {
        let _ = writeln!(out, "Type: {}\n", cell(&super::plain(&section.kind)));
        for c in &section.constraints {
            let _ = writeln!(out, "- {}", md_constraint(c).replace('\n', " "));
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
                md_type(slug, &row.ty),
                if row.required { "yes" } else { "no" },
                cell(&row.constraints.iter().map(md_constraint).collect::<Vec<_>>().join("; ")),
                md_blocks(&row.description, true),
            );
        }
        out.push('\n');
    }
    if !section.values.is_empty() {
        out.push_str("| Value | Meaning |\n| --- | --- |\n");
        for (value, meaning) in &section.values {
            let _ = writeln!(out, "| `{}` | {} |", value, md_blocks(meaning, true));
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

/// The Markdown page of one schema.
pub(super) fn page(schema: &Schema) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "<!-- Generated by `tagcast schema docs`; do not edit. -->\n");
    let _ = writeln!(out, "# {}\n", schema.title);
    let _ = writeln!(
        out,
        "Schema: [`{0}`](../{0}) (`$id` {1})\n",
        schema.file_name, schema.id
    );
    let mut root = String::new();
    section(&mut root, &schema.slug, &schema.root, "##");
    // The root's heading repeats the title; keep its body only.
    out.push_str(root.split_once('\n').map_or("", |(_, rest)| rest).trim_start());
    if !schema.definitions.is_empty() {
        out.push_str("## Definitions\n\n");
        for def in &schema.definitions {
            section(&mut out, &schema.slug, def, "###");
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// `schemas/docs/README.md`: the list of pages.
pub(super) fn readme(schemas: &[Schema]) -> String {
    let mut out = String::from(
        "<!-- Generated by `tagcast schema docs`; do not edit. -->\n\n# Schema documentation\n\n\
         One page per schema of `schemas/`, and all of them in [`index.html`](index.html) with an\n\
         overview of the flow, the broker's HTTP operations and the requirements they cite.\n\
         Regenerate with `tagcast schema docs` (or `TAGCAST_BLESS=1 cargo test`).\n\n\
         | Schema | Title |\n| --- | --- |\n",
    );
    for s in schemas {
        let _ = writeln!(out, "| [`{}`]({}.md) | {} |", s.file_name, s.slug, s.title);
    }
    out
}
