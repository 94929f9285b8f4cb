//! `tagcast schema docs`: the readable schema documentation under
//! `schemas/docs/`, its drift test and its rendering in a real browser.

use std::process::Command;

use crate::support::{bless, path, run, stderr};

fn generate(dir: &std::path::Path) {
    let out = run(&["schema", "docs", "--out", dir.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The checked-in `schemas/docs/` equal what `tagcast schema docs` writes;
/// `TAGCAST_BLESS=1 cargo test` rewrites them.
#[test]
fn schema_docs_do_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let checked_in_dir = path("schemas/docs");
    let mut generated_names = Vec::new();
    let mut drifted = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        generated_names.push(entry.file_name());
        let generated = std::fs::read_to_string(entry.path()).unwrap();
        let checked_in = checked_in_dir.join(entry.file_name());
        if bless() {
            std::fs::create_dir_all(&checked_in_dir).unwrap();
            std::fs::write(&checked_in, &generated).unwrap();
        } else if std::fs::read_to_string(&checked_in).ok().as_deref() != Some(generated.as_str()) {
            drifted.push(checked_in.display().to_string());
        }
    }
    // A page whose schema is gone is drift too.
    for entry in std::fs::read_dir(&checked_in_dir).unwrap() {
        let name = entry.unwrap().file_name();
        if !generated_names.contains(&name) {
            drifted.push(format!("{} (no longer generated)", checked_in_dir.join(name).display()));
        }
    }
    assert!(
        drifted.is_empty(),
        "generated schema docs differ from the checked-in ones (run `TAGCAST_BLESS=1 cargo test` or \
         `cargo run -- schema docs`): {drifted:?}"
    );
}

#[test]
fn there_is_a_page_per_schema_and_index_html_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    for entry in std::fs::read_dir(path("schemas")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(slug) = name.strip_suffix(".schema.json") {
            assert!(dir.path().join(format!("{slug}.md")).exists(), "no page for {name}");
        }
    }
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    for external in ["<script", "<link", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(
            !html.contains(external),
            "index.html refers to an external asset: {external}"
        );
    }
    assert!(html.contains("<nav aria-label=\"Contents\">"));
    assert!(
        html.contains("id=\"subscription.callbackurl\""),
        "an anchor per property"
    );
    assert!(
        html.contains("<a class=\"req\" href=\"../../spec/callbacks.md#CB-16\">CB-16</a>"),
        "requirement IDs link to spec/"
    );
}

/// Headless Chromium renders `index.html`: not blank, every schema's title there.
#[test]
#[ignore = "needs chromium"]
fn index_html_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let profile = tempfile::tempdir().unwrap();
    let index = dir.path().join("index.html");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", index.display()))
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout);
    let body = dom.split("<body>").nth(1).unwrap_or_default();
    assert!(
        body.len() > 10_000,
        "the rendered page is (nearly) blank: {} bytes",
        body.len()
    );
    let mut titles = Vec::new();
    for entry in std::fs::read_dir(path("schemas")).unwrap() {
        let p = entry.unwrap().path();
        if p.to_string_lossy().ends_with(".schema.json") {
            let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            titles.push(schema["title"].as_str().unwrap().to_owned());
        }
    }
    assert!(titles.len() >= 9, "{titles:?}");
    for title in titles {
        assert!(dom.contains(&format!(">{title}</a></h2>")), "{title} is not rendered");
    }
}
