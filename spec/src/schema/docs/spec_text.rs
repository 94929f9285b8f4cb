//! The normative text the docs quote, read from the spec's own Markdown
//! when the docs are generated (`include_str!`), so that it is written once:
//! the ABNF of `spec/tags.md`, shown instead of the long regular
//! expressions the schemas carry, and each requirement's statement, which
//! `index.html` renders under the requirement's ID so that its links work
//! wherever the page is published.

use std::sync::OnceLock;

/// The spec files, by the name the Markdown pages link to (`../../spec/<name>`).
pub(crate) const FILES: [(&str, &str); 3] = [
    ("tags.md", include_str!("../../../tags.md")),
    ("service-api.md", include_str!("../../../service-api.md")),
    ("callbacks.md", include_str!("../../../callbacks.md")),
];

/// One requirement of the spec: `<a id="ID"></a>` and what follows it.
#[derive(Debug, Clone)]
pub(crate) struct Requirement {
    /// `TAG-1`, `API-13`, …
    pub id: String,
    /// The spec file that defines it, e.g. `tags.md`.
    pub file: &'static str,
    /// Its Markdown text, up to the next requirement or heading.
    pub text: String,
}

/// An ABNF block of `spec/tags.md` that a schema pattern encodes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Abnf {
    /// The requirement that gives the grammar (`TAG-1`, `TAG-10`, `REF-1`).
    pub requirement: &'static str,
    /// The rule the pattern matches.
    pub rule: &'static str,
    /// The ABNF block, as in the spec.
    pub text: &'static str,
}

/// The ABNF for one of the grammar's schema patterns, found in `spec/tags.md`
/// by the name of its first rule.
pub(crate) fn abnf_for_pattern(pattern: &str) -> Option<Abnf> {
    let (rule, requirement) = if pattern == crate::TAG_PATTERN {
        ("tag", "TAG-1")
    } else if pattern == crate::REQUIREMENT_PATTERN {
        ("requirement", "TAG-10")
    } else if pattern == crate::REFERENCE_PATTERN {
        ("reference", "REF-1")
    } else if pattern == crate::REPOSITORY_PATTERN {
        ("name", "REF-1")
    } else {
        return None;
    };
    let first_rule = if rule == "name" { "reference" } else { rule };
    abnf_blocks(FILES[0].1)
        .find(|block| block.split_whitespace().next() == Some(first_rule))
        .map(|text| Abnf {
            requirement,
            rule,
            text,
        })
}

fn abnf_blocks(markdown: &str) -> impl Iterator<Item = &str> {
    markdown
        .split("```abnf\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("\n```").map(|(block, _)| block))
}

/// The spec file that defines requirement IDs with this prefix.
pub(crate) fn file_of_prefix(prefix: &str) -> Option<&'static str> {
    requirements()
        .iter()
        .find(|r| r.id.split_once('-').is_some_and(|(p, _)| p == prefix))
        .map(|r| r.file)
}

/// Whether the spec defines this requirement ID.
pub(crate) fn defines(id: &str) -> bool {
    requirements().iter().any(|r| r.id == id)
}

/// Every requirement of the spec files, in file and text order.
pub(crate) fn requirements() -> &'static [Requirement] {
    static ALL: OnceLock<Vec<Requirement>> = OnceLock::new();
    ALL.get_or_init(|| FILES.iter().flat_map(|(file, text)| parse(file, text)).collect())
}

const ANCHOR: &str = "<a id=\"";

fn parse(file: &'static str, markdown: &str) -> Vec<Requirement> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut fenced = false;
    for (n, line) in lines.iter().enumerate() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let Some(at) = line.find(ANCHOR).filter(|_| !fenced) else {
            continue;
        };
        let Some((id, after)) = line[at + ANCHOR.len()..].split_once("\"></a>") else {
            continue;
        };
        let mut text = Vec::new();
        if line.trim_start().starts_with("- ") {
            // A list item: its first line and the indented lines after it.
            text.push(after.trim().to_owned());
            text.extend(
                lines[n + 1..]
                    .iter()
                    .take_while(|l| l.starts_with("  ") && !l.trim().is_empty())
                    .map(|l| l.trim().to_owned()),
            );
        } else {
            // An anchor line: the blocks after it, up to the next anchor,
            // heading, or schema marker comment.
            let mut in_code = false;
            for l in &lines[n + 1..] {
                if l.starts_with("```") {
                    in_code = !in_code;
                }
                if !in_code && (l.contains(ANCHOR) || l.starts_with('#') || l.starts_with("<!--")) {
                    break;
                }
                text.push((*l).to_owned());
            }
            while text.last().is_some_and(|l| l.trim().is_empty()) {
                text.pop();
            }
        }
        out.push(Requirement {
            id: id.to_owned(),
            file,
            text: text.join("\n"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{abnf_for_pattern, requirements};

    #[test]
    fn every_requirement_of_the_spec_is_read_with_its_text() {
        let ids: Vec<&str> = requirements().iter().map(|r| r.id.as_str()).collect();
        for id in ["TAG-1", "TAG-12", "REF-7", "API-1", "API-18", "REG-3", "CB-1", "CB-18"] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        for r in requirements() {
            assert!(r.text.contains(&format!("**{}", r.id)), "{}: {:?}", r.id, r.text);
        }
        let tag1 = requirements().iter().find(|r| r.id == "TAG-1").unwrap();
        assert!(tag1.text.ends_with("An empty string is not a tag."), "{:?}", tag1.text);
    }

    #[test]
    fn the_grammar_patterns_have_their_abnf() {
        let tag = abnf_for_pattern(crate::TAG_PATTERN).unwrap();
        assert!(
            tag.text
                .starts_with("tag          = api-version \"-\" stage \"-\" timestamp")
        );
        assert!(
            abnf_for_pattern(crate::REQUIREMENT_PATTERN)
                .unwrap()
                .text
                .starts_with("requirement = ")
        );
        assert!(
            abnf_for_pattern(crate::REFERENCE_PATTERN)
                .unwrap()
                .text
                .starts_with("reference ")
        );
        assert!(abnf_for_pattern("^x$").is_none());
    }
}
