//! Description text as the docs show it. Descriptions come from doc
//! comments written for `cargo doc`, so they may carry rustdoc link syntax
//! and Markdown lists; a reader of the schema docs should see neither the
//! syntax nor a list run together into one line.

use std::fmt::Write as _;

/// One block of a description: a paragraph or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Block {
    /// Lines joined with spaces.
    Paragraph(String),
    /// `- item` lines, each with its continuation lines.
    List(Vec<String>),
    /// `1. item` lines.
    Ordered(Vec<String>),
}

/// Remove rustdoc's intra-doc link syntax, which means nothing outside
/// `cargo doc`: ``[`Foo`]`` and ``[`Foo`](crate::x::Foo)`` become `` `Foo` ``,
/// `[Foo](crate::Foo)` becomes `Foo`. Brackets that are not such links
/// (`host[:port]`, `[lo, hi)`, character classes in code spans) stay.
pub(crate) fn strip_rustdoc_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['`', '[']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with('`') {
            // A code span is copied as is.
            let end = rest[1..].find('`').map_or(rest.len(), |e| e + 2);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        match rustdoc_link(rest) {
            Some((shown, len)) => {
                out.push_str(shown);
                rest = &rest[len..];
            }
            None => {
                out.push('[');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// At a `[`: the text a rustdoc link shows and the link's length.
fn rustdoc_link(text: &str) -> Option<(&str, usize)> {
    let close = text.find(']')?;
    let inner = &text[1..close];
    let after = &text[close + 1..];
    let code = inner.len() > 2 && inner.starts_with('`') && inner.ends_with('`');
    let name = if code { &inner[1..inner.len() - 1] } else { inner };
    if name.is_empty() || name.contains(['`', '[', ' ']) {
        return None;
    }
    if let Some(target) = after.strip_prefix('(') {
        let end = target.find(')')?;
        let target = &target[..end];
        let rust_path = !target.is_empty()
            && !target.contains("://")
            && !target.starts_with(['#', '.', '/'])
            && target.chars().all(|c| c.is_alphanumeric() || "_:<>!@".contains(c));
        return rust_path.then_some((inner, close + 1 + end + 2));
    }
    // `[Foo]` without a target links only when it is a code span; a bare
    // `[:port]` or `[0-9]` is text.
    code.then_some((inner, close + 1))
}

pub(crate) fn list_item(line: &str) -> Option<(bool, &str)> {
    let line = line.trim_start();
    if let Some(item) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
        return Some((false, item));
    }
    let digits = line.find(|c: char| !c.is_ascii_digit())?;
    (digits > 0)
        .then(|| line[digits..].strip_prefix(". "))
        .flatten()
        .map(|item| (true, item))
}

/// Split a description into paragraphs (blank-line separated) and lists.
pub(crate) fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    for chunk in text.split("\n\n").map(str::trim).filter(|c| !c.is_empty()) {
        let mut paragraph: Vec<&str> = Vec::new();
        let mut items: Vec<String> = Vec::new();
        let mut ordered = false;
        for line in chunk.lines().map(str::trim) {
            if let Some((is_ordered, item)) = list_item(line) {
                if !paragraph.is_empty() {
                    out.push(Block::Paragraph(paragraph.join(" ")));
                    paragraph.clear();
                }
                ordered = is_ordered;
                items.push(item.to_owned());
            } else if let Some(last) = items.last_mut() {
                last.push(' ');
                last.push_str(line);
            } else {
                paragraph.push(line);
            }
        }
        if !paragraph.is_empty() {
            out.push(Block::Paragraph(paragraph.join(" ")));
        }
        if !items.is_empty() {
            out.push(if ordered {
                Block::Ordered(items)
            } else {
                Block::List(items)
            });
        }
    }
    out
}

/// Join the lines of each paragraph with spaces, keeping list items on
/// their own lines and blank lines between paragraphs.
pub(crate) fn unwrap_lines(text: &str) -> String {
    blocks(text)
        .into_iter()
        .map(|block| match block {
            Block::Paragraph(p) => p,
            Block::List(items) => items.iter().map(|i| format!("- {i}")).collect::<Vec<_>>().join("\n"),
            Block::Ordered(items) => items
                .iter()
                .enumerate()
                .map(|(n, i)| format!("{}. {i}", n + 1))
                .collect::<Vec<_>>()
                .join("\n"),
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Escape text for HTML.
pub(crate) fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The first `PREFIX-n` requirement ID in `text` for which `known(prefix)`
/// holds, with what comes before and after.
pub(crate) fn next_requirement(text: &str, known: impl Fn(&str) -> bool) -> Option<(&str, &str, &str)> {
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
        let word_end = digits == text.len() || !bytes[digits].is_ascii_alphanumeric();
        if dash > start && digits > dash + 1 && word_start && word_end && known(&text[start..dash]) {
            return Some((&text[..start], &text[start..digits], &text[digits..]));
        }
        search = dash + 1;
    }
    None
}

/// Inline text as HTML: escaped, `code` spans as `<code>`, `**strong**`,
/// `[text](target)` as its text, requirement IDs outside code linked by
/// `link` (which gets the ID and answers the `href`, or `None`).
pub(crate) fn html_inline(text: &str, link: &dyn Fn(&str) -> Option<String>) -> String {
    let text = markdown_links_as_text(&strip_rustdoc_links(text));
    let mut out = String::new();
    // Strong text may hold code spans (`**API-6** (The `x` object).`), so
    // its state carries across them.
    let mut strong = false;
    for (i, piece) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(piece));
            continue;
        }
        for (j, part) in piece.split("**").enumerate() {
            if j > 0 {
                out.push_str(if strong { "</strong>" } else { "<strong>" });
                strong = !strong;
            }
            out.push_str(&link_ids(&esc(part), |id| {
                link(id).map(|href| format!("<a class=\"req\" href=\"{href}\">{id}</a>"))
            }));
        }
    }
    if strong {
        out.push_str("</strong>");
    }
    out
}

/// Replace each requirement ID for which `link` answers with that answer.
pub(crate) fn link_ids(text: &str, link: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some((before, id, after)) = next_requirement(rest, |p| super::spec_text::file_of_prefix(p).is_some()) {
        out.push_str(before);
        match link(id) {
            Some(linked) => out.push_str(&linked),
            None => out.push_str(id),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `[text](target)` → `text`: the spec's links are relative to `spec/` and
/// would not resolve from the docs.
fn markdown_links_as_text(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|c| open + c) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|e| close + e) else {
            break;
        };
        if rest[open + 1..close].contains('[') {
            out.push_str(&rest[..=open]);
            rest = &rest[open + 1..];
            continue;
        }
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{Block, blocks, html_inline, strip_rustdoc_links, unwrap_lines};

    #[test]
    fn rustdoc_links_lose_their_syntax_and_other_brackets_stay() {
        assert_eq!(
            strip_rustdoc_links("within [`ATTEMPT_TIMEOUT`], see [`Tag`](crate::Tag) and [Stage](crate::tag::Stage)"),
            "within `ATTEMPT_TIMEOUT`, see `Tag` and Stage"
        );
        for kept in [
            "host[:port]/path",
            "bounds [lo, hi)",
            "`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`",
            "[text](https://example.org)",
            "[x](#anchor)",
        ] {
            assert_eq!(strip_rustdoc_links(kept), kept);
        }
    }

    #[test]
    fn lists_stay_lists() {
        let text = "Outcomes:\n\n- `pass`: fine;\n- `warn`: a SHOULD\n  broken;\n- `fail`: a MUST.\n\nEnd\nhere.";
        assert_eq!(
            blocks(text),
            vec![
                Block::Paragraph("Outcomes:".into()),
                Block::List(vec![
                    "`pass`: fine;".into(),
                    "`warn`: a SHOULD broken;".into(),
                    "`fail`: a MUST.".into()
                ]),
                Block::Paragraph("End here.".into()),
            ]
        );
        assert_eq!(
            unwrap_lines("a\nb:\n- one\n  more\n- two\n\n1. x\n2. y"),
            "a b:\n\n- one more\n- two\n\n1. x\n2. y"
        );
    }

    #[test]
    fn inline_html_links_known_ids_outside_code() {
        let link = |id: &str| Some(format!("#{id}"));
        assert_eq!(
            html_inline("a <b> (TAG-10), `CB-5`, **API-3** not XAPI-3, API-x or TAG-1a", &link),
            "a &lt;b&gt; (<a class=\"req\" href=\"#TAG-10\">TAG-10</a>), <code>CB-5</code>, \
             <strong><a class=\"req\" href=\"#API-3\">API-3</a></strong> not XAPI-3, API-x or TAG-1a"
        );
        // Strong text around a code span stays strong (API-6's heading).
        assert_eq!(
            html_inline("**API-6 (The `subscription` object).** A", &link),
            "<strong><a class=\"req\" href=\"#API-6\">API-6</a> (The <code>subscription</code> object).</strong> A"
        );
        assert_eq!(
            html_inline("see [the vectors](../conformance/) and DESIGN-1", &link),
            "see the vectors and DESIGN-1"
        );
    }
}
