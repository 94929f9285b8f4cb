//! The tag schema read by another language's validator: Python's
//! `jsonschema` searches `pattern` with `re`, where `$` also matches before
//! a final newline (spec/tags.md, the note after the introduction).

use std::process::Command;

use tagcast_spec::schema::{documents, render};

/// Validates every tag vector against `schemas/tag.schema.json` with
/// Python's `jsonschema` and prints the inputs whose verdict differs.
const SCRIPT: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
vectors = json.load(open(sys.argv[2]))
validator = Draft202012Validator(schema)
checked = 0
for group in vectors["groups"]:
    for case in group["cases"]:
        checked += 1
        if validator.is_valid(case["input"]) != case["valid"]:
            print("disagrees:", json.dumps(case["input"]), "vector says", case["valid"])
print("checked", checked)
"#;

/// `tagcast-ci-python` is the Python of `.ci/install-parts`' virtual
/// environment, which has `jsonschema`.
#[test]
#[ignore = "needs Python with jsonschema (tagcast-ci-python, .ci/install-parts)"]
fn python_jsonschema_agrees_with_every_tag_vector() {
    let dir = std::env::temp_dir().join(format!("tagcast-python-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let schema = dir.join("tag.schema.json");
    let tag = documents()
        .into_iter()
        .find(|d| d.file_name == "tag.schema.json")
        .expect("the tag schema");
    std::fs::write(&schema, render(&tag)).unwrap();
    let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/vectors/tags.json");
    let out = Command::new("tagcast-ci-python")
        .arg("-c")
        .arg(SCRIPT)
        .arg(&schema)
        .arg(vectors)
        .output()
        .expect("tagcast-ci-python runs");
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("checked "), "{stdout}");
    assert!(!stdout.contains("disagrees"), "{stdout}");
}
