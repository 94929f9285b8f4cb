//! The generator's rules, each checked on what it writes. The checks take
//! the page text, so each can be pointed at an older page to see it fail.

use serde_json::{Value, json};

use super::{Document, JSON_SCHEMA_FORMATS, LONG_PATTERN, NO_NEWLINE, Page, pages, spec_text, text::esc};

fn generated() -> (Vec<Document>, Vec<Page>) {
    let documents = crate::schema::documents();
    let pages = pages(&documents);
    (documents, pages)
}

fn page<'a>(pages: &'a [Page], name: &str) -> &'a str {
    &pages
        .iter()
        .find(|p| p.file_name == name)
        .expect("the page is generated")
        .text
}

/// Every string value of `key` anywhere in the documents (not in examples).
fn values_of<'a>(value: &'a Value, key: &str, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(object) => {
            for (k, v) in object {
                if k == key {
                    if let Some(s) = v.as_str() {
                        out.push(s);
                    }
                } else if k != "examples" && k != "example" {
                    values_of(v, key, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| values_of(v, key, out)),
        _ => {}
    }
}

pub(super) fn check_no_rustdoc_syntax(text: &str) -> Result<(), String> {
    for (i, _) in text.match_indices("[`") {
        let rest = &text[i..];
        if let Some(end) = rest.find("`]") {
            let inner = &rest[2..end];
            // A Markdown link to a file or anchor is fine; a Rust path is not.
            let target = rest[end + 2..]
                .strip_prefix('(')
                .map(|t| &t[..t.find(')').unwrap_or(0)]);
            let markdown_link = target.is_some_and(|t| t.contains(['/', '.', '#']) && !t.contains("::"));
            if !inner.is_empty() && !inner.contains(['`', ' ', '\n']) && !markdown_link {
                return Err(format!("rustdoc link syntax: {}", &rest[..end + 2]));
            }
        }
    }
    // In HTML, a code span inside rustdoc's brackets.
    if let Some(i) = text.find("[<code>") {
        let rest = &text[i..];
        if rest
            .find("</code>]")
            .is_some_and(|end| !rest[7..end].contains(['<', ' ']))
        {
            return Err(format!("rustdoc link syntax: {}", &rest[..rest.len().min(40)]));
        }
    }
    for target in ["](crate::", "](super::", "](Self::", "](self::"] {
        if let Some(i) = text.find(target) {
            return Err(format!("rustdoc link target: {}", &text[i.saturating_sub(30)..i + 30]));
        }
    }
    Ok(())
}

pub(super) fn check_formats(text: &str) -> Result<(), String> {
    for marker in ["format: <code>", "format: `"] {
        for (i, _) in text.match_indices(marker) {
            let rest = &text[i + marker.len()..];
            let format = &rest[..rest.find(['<', '`']).unwrap_or(rest.len())];
            if !JSON_SCHEMA_FORMATS.contains(&format) {
                return Err(format!("format {format:?} is not a JSON Schema format"));
            }
        }
    }
    for rust in ["uint8", "uint16", "uint32", "uint64", "int32", "int64", "\"uint\""] {
        if text.contains(&format!("<code>{rust}</code>")) || text.contains(&format!("`{rust}`")) {
            return Err(format!("{rust} shown"));
        }
    }
    Ok(())
}

pub(super) fn check_property_names(html: &str, documents: &[Document]) -> Result<(), String> {
    let style = html
        .split("<style>")
        .nth(1)
        .and_then(|s| s.split("</style>").next())
        .unwrap_or_default();
    let rule = style
        .split('}')
        .find(|r| {
            r.split('{')
                .next()
                .is_some_and(|sel| sel.split(',').any(|s| s.trim() == "code.prop"))
        })
        .ok_or("no CSS rule for code.prop")?;
    if !rule.contains("white-space:nowrap") {
        return Err(format!("code.prop may wrap: {rule}"));
    }
    let mut names = Vec::new();
    for d in documents {
        let mut props: Vec<&Value> = Vec::new();
        collect_properties(&d.schema, &mut props);
        names.extend(
            props
                .iter()
                .filter_map(|p| p.as_object())
                .flat_map(|o| o.keys().cloned()),
        );
    }
    for name in names {
        if !html.contains(&format!("<code class=\"prop\">{}</code>", esc(&name))) {
            return Err(format!("property {name} is not in <code class=\"prop\">"));
        }
    }
    Ok(())
}

fn collect_properties<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(object) => {
            for (k, v) in object {
                if k == "properties" {
                    out.push(v);
                    v.as_object()
                        .into_iter()
                        .flat_map(|o| o.values())
                        .for_each(|p| collect_properties(p, out));
                } else if k != "examples" && k != "example" {
                    collect_properties(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_properties(v, out)),
        _ => {}
    }
}

pub(super) fn check_long_patterns(html: &str, documents: &[Document]) -> Result<(), String> {
    let mut patterns = Vec::new();
    for d in documents {
        values_of(&d.schema, "pattern", &mut patterns);
    }
    let long: Vec<&str> = patterns.into_iter().filter(|p| p.len() > LONG_PATTERN).collect();
    if long.is_empty() {
        return Err("no long pattern to check".into());
    }
    for pattern in long {
        let shown = esc(pattern);
        let folded = format!(
            "<details class=\"pattern\"><summary>show pattern ({} characters)</summary><code class=\"pattern\">{shown}</code></details>",
            pattern.chars().count()
        );
        let total = html.matches(shown.as_str()).count();
        if total == 0 || html.matches(folded.as_str()).count() != total {
            return Err(format!("pattern {}… is shown unfolded", &pattern[..40]));
        }
        if let Some(abnf) = spec_text::abnf_for_pattern(pattern) {
            if !html.contains(&format!("<pre>{}</pre>", esc(abnf.text))) {
                return Err(format!("the ABNF of {} is not shown", abnf.rule));
            }
        }
    }
    Ok(())
}

/// Every `href="#x"` has an element `id="x"` in the page.
pub(super) fn check_internal_links(html: &str) -> Result<(), String> {
    let mut broken = Vec::new();
    for (i, _) in html.match_indices("href=\"#") {
        let rest = &html[i + 7..];
        let target = &rest[..rest.find('"').unwrap_or(0)];
        if !html.contains(&format!("id=\"{target}\"")) {
            broken.push(target.to_owned());
        }
    }
    broken.dedup();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!("links to missing anchors: {broken:?}"))
    }
}

/// Every requirement link goes to a requirement rendered in the page or to
/// an anchor of the spec file it names.
pub(super) fn check_requirement_links(text: &str) -> Result<(), String> {
    let mut count = 0;
    for (i, _) in text.match_indices("<a class=\"req\" href=\"") {
        let rest = &text[i + 21..];
        let href = &rest[..rest.find('"').unwrap_or(0)];
        let Some(id) = href.strip_prefix('#') else {
            return Err(format!("requirement link {href} leaves the page"));
        };
        if !text.contains(&format!("<section class=\"requirement\" id=\"{id}\">")) {
            return Err(format!("requirement {id} is not rendered"));
        }
        count += 1;
    }
    for (i, _) in text.match_indices("](../../spec/") {
        let rest = &text[i + 13..];
        let href = &rest[..rest.find(')').unwrap_or(0)];
        let (file, id) = href.split_once('#').ok_or(format!("no anchor in {href}"))?;
        let (_, spec) = spec_text::FILES
            .iter()
            .find(|(name, _)| *name == file)
            .ok_or(format!("no spec file {file}"))?;
        if !spec.contains(&format!("<a id=\"{id}\"></a>")) {
            return Err(format!("{file} has no anchor {id}"));
        }
        count += 1;
    }
    if count == 0 {
        return Err("no requirement links".into());
    }
    Ok(())
}

/// Every anchored pattern is followed by the words for the `not` clause
/// that refuses a trailing newline, and no `not` clause is shown as JSON.
pub(super) fn check_not_clauses(text: &str) -> Result<(), String> {
    let mut anchored = 0;
    for end in ["$</code>", "$`"] {
        for (i, _) in text.match_indices(end) {
            let rest = &text[i + end.len()..];
            let rest = rest.strip_prefix("</details>").unwrap_or(rest);
            let next: String = rest.chars().take(NO_NEWLINE.len() + 12).collect();
            if !next.contains(NO_NEWLINE) {
                let start = text[..i].char_indices().rev().nth(40).map_or(0, |(j, _)| j);
                return Err(format!("no {NO_NEWLINE:?} after the pattern …{}", &text[start..i + 1]));
            }
            anchored += 1;
        }
    }
    for noise in ["not: <code>", "not: `", "&quot;not&quot;", "\"not\":"] {
        if text.contains(noise) {
            return Err(format!("a not clause shown as JSON: {noise}"));
        }
    }
    if anchored == 0 {
        return Err("no anchored pattern to check".into());
    }
    Ok(())
}

pub(super) fn check_operations(html: &str, openapi: &Value) -> Result<(), String> {
    let mut seen = 0;
    for (key, base) in [("paths", None), ("webhooks", Some("{callbackUrl}"))] {
        for (path, item) in openapi[key].as_object().into_iter().flatten() {
            for (method, op) in item
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(m, _)| *m != "parameters")
            {
                let id = op["operationId"]
                    .as_str()
                    .ok_or(format!("{method} {path} has no operationId"))?;
                let start = html
                    .find(&format!("<section class=\"op\" id=\"op-{id}\">"))
                    .ok_or(format!("{method} {path} is not rendered"))?;
                let section = html[start..start + html[start..].find("</section>").unwrap_or(0)].replace("<wbr>", "");
                let head = format!(
                    "<span class=\"method {method}\">{}</span> <code class=\"path\">{}</code>",
                    method.to_uppercase(),
                    esc(base.unwrap_or(path))
                );
                if !section.contains(&head) {
                    return Err(format!("{method} {path}: no method and path heading"));
                }
                for (status, response) in op["responses"].as_object().into_iter().flatten() {
                    if !section.contains(&format!(">{status}</code></dt>")) {
                        return Err(format!("{method} {path}: response {status} missing"));
                    }
                    let has_example = response.pointer("/content/application~1json/example").is_some();
                    if has_example && !section.contains("<pre>") {
                        return Err(format!("{method} {path}: the example of {status} is missing"));
                    }
                }
                if op.get("requestBody").is_some() && !section.contains("<h4>Request body</h4>") {
                    return Err(format!("{method} {path}: no request body"));
                }
                seen += 1;
            }
        }
    }
    if seen < 10 {
        return Err(format!("only {seen} operations"));
    }
    Ok(())
}

pub(super) fn check_definitions_once(html: &str, documents: &[Document]) -> Result<(), String> {
    let mut ids: Vec<&str> = html
        .match_indices(" id=\"")
        .map(|(i, _)| {
            let rest = &html[i + 5..];
            &rest[..rest.find('"').unwrap_or(0)]
        })
        .collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("anchor {} twice", w[0]));
    }
    for (name, _) in super::html::all_definitions(documents) {
        let heading = format!(">{}</a></h3>", esc(name));
        if html.matches(heading.as_str()).count() > 1 {
            return Err(format!("definition {name} rendered more than once"));
        }
    }
    Ok(())
}

#[test]
fn no_rustdoc_link_syntax() {
    let (_, pages) = generated();
    for p in &pages {
        check_no_rustdoc_syntax(&p.text).unwrap_or_else(|e| panic!("{}: {e}", p.file_name));
    }
    assert!(check_no_rustdoc_syntax("see [`ATTEMPT_TIMEOUT`]").is_err());
}

#[test]
fn only_json_schema_formats() {
    let (_, pages) = generated();
    for p in &pages {
        check_formats(&p.text).unwrap_or_else(|e| panic!("{}: {e}", p.file_name));
    }
    let html = page(&pages, "index.html");
    assert!(html.contains("format: <code>date-time</code>"));
    let document = Document {
        file_name: "x.schema.json",
        schema: json!({"title": "x", "type": "integer", "format": "uint16", "minimum": 0}),
    };
    let small = super::pages(&[document]);
    let html = page(&small, "index.html");
    assert!(
        html.contains("maximum: <code>65535</code>"),
        "uint16 shown as its bound"
    );
    check_formats(html).unwrap();
}

#[test]
fn property_names_do_not_wrap() {
    let (documents, pages) = generated();
    check_property_names(page(&pages, "index.html"), &documents).unwrap();
}

#[test]
fn long_patterns_are_folded_behind_the_abnf() {
    let (documents, pages) = generated();
    check_long_patterns(page(&pages, "index.html"), &documents).unwrap();
}

#[test]
fn every_requirement_link_resolves() {
    let (_, pages) = generated();
    let html = page(&pages, "index.html");
    check_requirement_links(html).unwrap();
    check_internal_links(html).unwrap();
    for p in pages
        .iter()
        .filter(|p| p.file_name.ends_with(".md") && p.file_name != "README.md")
    {
        check_requirement_links(&p.text).unwrap_or_else(|e| panic!("{}: {e}", p.file_name));
    }
    // REG-n, defined in service-api.md, links too.
    assert!(html.contains("<a class=\"req\" href=\"#REG-1\">REG-1</a>"));
}

#[test]
fn every_openapi_operation_is_rendered() {
    let (documents, pages) = generated();
    let openapi = &documents.iter().find(|d| d.file_name == "openapi.json").unwrap().schema;
    check_operations(page(&pages, "index.html"), openapi).unwrap();
}

#[test]
fn shared_definitions_once() {
    let (documents, pages) = generated();
    let html = page(&pages, "index.html");
    check_definitions_once(html, &documents).unwrap();
    // Same-named definitions are the same, so one rendering is right for all.
    let mut by_name: std::collections::BTreeMap<&str, Value> = std::collections::BTreeMap::new();
    for (name, def) in super::html::all_definitions(&documents) {
        let def = super::normalized(def);
        let first = by_name.entry(name).or_insert_with(|| def.clone());
        assert_eq!(*first, def, "two different definitions named {name}");
    }
    // A definition that is a top-level schema links there.
    assert!(html.contains("<a href=\"#subscription\">Subscription</a>"));
}

#[test]
fn overview_first_and_steps_in_flow_order() {
    let (_, pages) = generated();
    let html = page(&pages, "index.html");
    assert!(
        html.contains("<main>\n<section id=\"overview\">"),
        "the page opens with the overview"
    );
    let overview = &html[html.find("<section id=\"overview\">").unwrap()..];
    let overview = &overview[..overview.find("</section>").unwrap()];
    assert!(overview.contains("<svg class=\"flow wide\"") && overview.contains("<svg class=\"flow narrow\""));
    let order = [
        "step-tag",
        "step-register",
        "step-push",
        "step-callback",
        "step-deliver",
        "step-errors",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|id| {
            html.find(&format!("<article id=\"{id}\">"))
                .unwrap_or_else(|| panic!("no {id}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{order:?} at {at:?}");
    for (id, schema) in [
        ("step-tag", "tag"),
        ("step-register", "service-registration"),
        ("step-callback", "image-published"),
    ] {
        let article = &html[html.find(&format!("<article id=\"{id}\">")).unwrap()..];
        let article = &article[..article.find("</article>").unwrap()];
        assert!(
            article.contains(&format!("<section id=\"{schema}\">")),
            "{schema} in {id}"
        );
    }
}

#[test]
fn descriptions_keep_their_lists_and_examples_wrap() {
    let document = Document {
        file_name: "x.schema.json",
        schema: json!({
            "title": "x", "type": "string",
            "description": "Outcomes:\n\n- `pass`: fine;\n- `fail`: a\n  MUST broken.",
            "examples": ["a very long line"]
        }),
    };
    let pages = pages(&[document]);
    let html = page(&pages, "index.html");
    assert!(
        html.contains(
            "<p>Outcomes:</p><ul><li><code>pass</code>: fine;</li><li><code>fail</code>: a MUST broken.</li></ul>"
        ),
        "{html}"
    );
    assert!(page(&pages, "x.md").contains("Outcomes:\n\n- `pass`: fine;\n- `fail`: a MUST broken."));
    let style = html.split("<style>").nth(1).unwrap();
    let pre = style.split('}').find(|r| r.starts_with("pre{")).unwrap();
    assert!(pre.contains("white-space:pre-wrap"), "{pre}");
}

/// The longest tag in the prose of `spec/tags.md` is the schema's
/// `maxLength`, and the parser takes a tag that long.
#[test]
fn tag_length_limit_agrees_with_the_prose() {
    let (_, tags) = spec_text::FILES[0];
    let prose = tags.split_whitespace().collect::<Vec<_>>().join(" ");
    let sentence = prose
        .split("the longest possible tag has")
        .nth(1)
        .expect("tags.md states the longest tag");
    let stated: usize = sentence
        .split(" characters")
        .next()
        .and_then(|s| s.rsplit("= ").next())
        .and_then(|n| n.trim().parse().ok())
        .expect("a number of characters");
    let schema = crate::schema::documents()
        .into_iter()
        .find(|d| d.file_name == "tag.schema.json")
        .unwrap()
        .schema;
    assert_eq!(
        schema["maxLength"],
        json!(stated),
        "tag.schema.json maxLength vs spec/tags.md"
    );
    let max = u64::MAX;
    let longest = format!("{max}.{max}.{max}-development-991231-235959");
    assert_eq!(longest.len(), stated);
    assert!(crate::Tag::parse(&longest).is_ok());
    let html = page(&generated().1, "index.html").to_owned();
    assert!(html.contains(&format!("max length: <code>{stated}</code>")));
}

/// The `not: {type: string, pattern: "\n"}` added to every anchored pattern
/// reads as words next to the pattern, not as JSON, on every page that shows
/// a pattern.
#[test]
fn the_trailing_newline_clause_reads_as_words() {
    let (_, pages) = generated();
    let mut checked = 0;
    for p in pages.iter().filter(|p| p.text.contains("pattern")) {
        match check_not_clauses(&p.text) {
            Ok(()) => checked += 1,
            Err(e) if e.starts_with("no anchored") => {}
            Err(e) => panic!("{}: {e}", p.file_name),
        }
    }
    assert!(checked >= 5, "{checked} pages with anchored patterns");
    let document = Document {
        file_name: "x.schema.json",
        schema: json!({"title": "x", "type": "string", "pattern": "^a$",
                       "not": {"type": "string", "pattern": "\\n"}}),
    };
    let small = super::pages(&[document]);
    let html = page(&small, "index.html");
    assert!(
        html.contains(&format!(
            "pattern: <code class=\"pattern\">^a$</code></li><li>{NO_NEWLINE}</li>"
        )),
        "{html}"
    );
    assert!(page(&small, "x.md").contains(&format!("- pattern: `^a$`\n- {NO_NEWLINE}\n")));
    // Another `not` is not dressed up as the newline rule.
    let document = Document {
        file_name: "y.schema.json",
        schema: json!({"title": "y", "type": "string", "not": {"const": "x"}}),
    };
    let small = super::pages(&[document]);
    assert!(page(&small, "index.html").contains("not: <code>{&quot;const&quot;:&quot;x&quot;}</code>"));
}
