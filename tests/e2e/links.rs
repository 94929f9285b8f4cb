//! Every Markdown file of the repository links only to files that exist
//! in it, and none sends the reader to the design notes the project was
//! built from (`DESIGN.md`, `STYLE.md`, `research/…`), which are not part
//! of the repository.

use std::path::{Path, PathBuf};

use crate::support::root;

/// Every `*.md` below `dir`, skipping build output and hidden directories.
fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            if name != "target" && !name.starts_with('.') {
                markdown_files(&path, found);
            }
        } else if name.ends_with(".md") {
            found.push(path);
        }
    }
}

/// The link targets of a Markdown text: inline links and images
/// `[text](target "title")`, reference definitions `[id]: target`, and
/// HTML `href`/`src` attributes.
fn link_targets(text: &str) -> Vec<String> {
    let patterns = [
        r#"\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)"#,
        r"(?m)^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)",
        r#"(?:href|src)="([^"]+)""#,
    ];
    let mut targets = Vec::new();
    for pattern in patterns {
        let re = regex::Regex::new(pattern).unwrap();
        targets.extend(re.captures_iter(text).map(|c| c[1].to_owned()));
    }
    targets
}

/// Where a relative target points, or `None` for URLs and in-page anchors.
fn local_path(file: &Path, target: &str) -> Option<PathBuf> {
    let is_url = target
        .split_once(':')
        .is_some_and(|(scheme, _)| scheme.chars().all(|c| c.is_ascii_alphabetic()));
    if is_url || target.starts_with('#') {
        return None;
    }
    let path = target.split(['#', '?']).next().unwrap();
    Some(if let Some(from_root) = path.strip_prefix('/') {
        root().join(from_root)
    } else {
        file.parent().unwrap().join(path)
    })
}

#[test]
fn markdown_links_resolve_inside_the_repository() {
    let mut files = Vec::new();
    markdown_files(root(), &mut files);
    assert!(files.len() >= 20, "found only {} Markdown files", files.len());
    let outside = regex::Regex::new(r"\b(DESIGN\.md|STYLE\.md|shared/research|research/[\w-]+\.md)").unwrap();
    let mut failures = Vec::new();
    let mut links = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(root()).unwrap().display();
        for target in link_targets(&text) {
            let Some(path) = local_path(file, &target) else {
                continue;
            };
            links += 1;
            if !path.exists() {
                failures.push(format!("{shown}: link to {target}, which does not exist"));
            }
        }
        for (number, line) in text.lines().enumerate() {
            if let Some(found) = outside.find(line) {
                let name = found.as_str();
                if !root().join(name).exists() {
                    failures.push(format!(
                        "{shown}:{}: refers to {name}, which is not in the repository",
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(links >= 50, "found only {links} relative links");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn link_targets_are_found_in_every_form() {
    let text = "see [a](spec/tags.md#TAG-1) and ![b](<img.png> \"t\")\n[c]: ../x.md\n<a href=\"y.html\">";
    assert_eq!(
        link_targets(text),
        ["spec/tags.md#TAG-1", "img.png", "../x.md", "y.html"]
    );
    let file = root().join("README.md");
    assert_eq!(local_path(&file, "https://example.org"), None);
    assert_eq!(local_path(&file, "#anchor"), None);
    assert_eq!(local_path(&file, "spec/tags.md#x"), Some(root().join("spec/tags.md")));
}
