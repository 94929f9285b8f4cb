//! The JSON examples of `spec/service-api.md` and `spec/callbacks.md`: each
//! is tagged with its schema and must validate against it and parse into the
//! matching Rust type.

use std::path::Path;

use serde_json::{Value, json};
use tagcast_spec::{CloudEvent, ImagePublished, delivery, error_body, generic, service};

use super::schemas::{doc, validator};

/// One example: where it is, which schema it claims, and the JSON.
#[derive(Debug)]
struct Example {
    line: usize,
    schema: String,
    json: String,
}

/// Every ```json block, with the `<!-- schema: NAME -->` comment before it.
/// A block without such a comment is an error: every example is checked.
fn examples(markdown: &str) -> Result<Vec<Example>, String> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "```json" {
            let schema = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_prefix("<!-- schema:"))
                .and_then(|l| l.strip_suffix("-->"))
                .map(|s| s.trim().to_owned())
                .ok_or_else(|| format!("line {}: a json example without a `<!-- schema: … -->` comment", i + 1))?;
            let end = lines[i + 1..]
                .iter()
                .position(|l| l.trim() == "```")
                .ok_or_else(|| format!("line {}: unclosed json block", i + 1))?;
            out.push(Example {
                line: i + 1,
                schema,
                json: lines[i + 1..i + 1 + end].join("\n"),
            });
            i += end + 2;
        } else {
            i += 1;
        }
    }
    Ok(out)
}

/// The schema a tag names: `file`, `file#/$defs/X`, either with `[]` for an
/// array of it. Sub-schemas keep the document's `$defs`.
fn schema_for(tag: &str) -> Value {
    let (tag, array) = match tag.strip_suffix("[]") {
        Some(t) => (t, true),
        None => (tag, false),
    };
    let (file, pointer) = tag.split_once('#').unwrap_or((tag, ""));
    let root = doc(file).schema;
    let target = if pointer.is_empty() {
        root.clone()
    } else {
        assert!(root.pointer(pointer).is_some(), "{tag}: no such definition");
        json!({"$ref": format!("#{pointer}")})
    };
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": root.get("$defs").cloned().unwrap_or(json!({}))
    });
    if array {
        schema["type"] = json!("array");
        schema["items"] = if pointer.is_empty() {
            json!({"$ref": "#/$defs/__root"})
        } else {
            target
        };
        if pointer.is_empty() {
            schema["$defs"]["__root"] = root;
        }
    } else if pointer.is_empty() {
        return root;
    } else {
        schema["$ref"] = target["$ref"].clone();
    }
    schema
}

/// The problems of one example: JSON syntax, schema errors, and what the
/// Rust type (the reference implementation's parser) says.
fn problems(example: &Example) -> Vec<String> {
    let value: Value = match serde_json::from_str(&example.json) {
        Ok(v) => v,
        Err(e) => return vec![format!("not JSON: {e}")],
    };
    let schema = schema_for(&example.schema);
    let mut out: Vec<String> = validator(&schema)
        .iter_errors(&value)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect();
    if !out.is_empty() {
        return out;
    }
    let parsed = match example.schema.as_str() {
        "service.schema.json" => serde_json::from_value::<service::Service>(value).map(drop),
        "registered-service.schema.json" => serde_json::from_value::<service::RegisteredService>(value).map(drop),
        "service-registration.schema.json" => serde_json::from_value::<service::ServiceRegistration>(value).map(|r| {
            if let Some(sub) = r.subscription {
                if let Err(e) = sub.check() {
                    out.push(e.to_string());
                }
            }
        }),
        "subscription-status.schema.json" => serde_json::from_value::<delivery::SubscriptionStatus>(value).map(drop),
        "delivery.schema.json" => serde_json::from_value::<delivery::Delivery>(value).map(drop),
        "error.schema.json" => serde_json::from_value::<error_body::ErrorBody>(value).map(drop),
        "generic-event.schema.json" => serde_json::from_value::<generic::GenericEvent>(value).map(drop),
        "image-published.schema.json" => serde_json::from_value::<CloudEvent<ImagePublished>>(value).map(drop),
        "image-published.schema.json#/$defs/ImagePublished" => {
            serde_json::from_value::<ImagePublished>(value).map(|data| {
                if let Err(e) = data.check() {
                    out.push(e.to_string());
                }
            })
        }
        _ => Ok(()),
    };
    if let Err(e) = parsed {
        out.push(format!("the Rust type rejects it: {e}"));
    }
    out
}

fn spec_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// Every ```json block of every `spec/*.md` is tagged and valid.
#[test]
fn every_example_of_the_spec_validates() {
    let mut counts = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(env!("CARGO_MANIFEST_DIR")).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if !file.ends_with(".md") {
            continue;
        }
        let found = examples(&spec_file(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for example in &found {
            assert_eq!(problems(example), Vec::<String>::new(), "{file} line {}", example.line);
        }
        counts.insert(file, found.len());
    }
    assert!(counts["service-api.md"] >= 10, "{counts:?}");
    assert!(counts["callbacks.md"] >= 3, "{counts:?}");
}

#[test]
fn a_wrong_example_fails() {
    let markdown = r#"
<!-- schema: service-registration.schema.json -->
```json
{
  "id": "org.example.wes",
  "name": "WES",
  "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
  "organization": {"name": "Example", "url": "https://example.org"},
  "version": "1.0.0",
  "subscription": {"images": ["elixircloud/cwl-wes"], "stage": "prod", "callbackUrl": "https://cd.example.org/"}
}
```

<!-- schema: image-published.schema.json#/$defs/ImagePublished -->
```json
{
  "serviceId": "org.example.wes",
  "image": "docker.io/elixircloud/cwl-wes",
  "tag": "1.1-demo-201108-195630",
  "digest": "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
  "reference": "docker.io/elixircloud/cwl-wes:1.1-demo-201108-195630@sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
  "apiVersion": "1.1.0",
  "stage": "production",
  "timestamp": "2020-11-08T19:56:30Z"
}
```

<!-- schema: service-registration.schema.json -->
```json
{"id": "x",
```
"#;
    let found = examples(markdown).unwrap();
    assert_eq!(found.len(), 3);
    assert_eq!(
        problems(&found[0]),
        [
            ": \"url\" is a required property",
            "/subscription/stage: \"prod\" is not valid under any of the schemas listed in the 'oneOf' keyword",
        ]
    );
    // Valid by the schema, but `stage` contradicts the tag: only the type sees it.
    assert_eq!(
        problems(&found[1]),
        [r#"invalid event: stage is "production", but image, tag and digest make it "demo" (CB-2)"#]
    );
    assert_eq!(
        problems(&found[2]),
        ["not JSON: EOF while parsing a value at line 1 column 11"]
    );

    let untagged = "Some text.\n\n```json\n{}\n```\n";
    assert_eq!(
        examples(untagged).unwrap_err(),
        "line 3: a json example without a `<!-- schema: … -->` comment"
    );
}

/// Every `API-n` and `CB-n` that the schemas, the OpenAPI document and the
/// error messages cite is defined (has an anchor) in the prose, and the IDs
/// run 1..=n without gaps.
#[test]
fn every_cited_requirement_is_defined() {
    let mut defined = Vec::new();
    for file in ["service-api.md", "callbacks.md"] {
        for piece in spec_file(file).split("<a id=\"").skip(1) {
            defined.push(piece[..piece.find('"').unwrap()].to_owned());
        }
    }
    for prefix in ["API", "CB"] {
        let mut numbers: Vec<u32> = defined
            .iter()
            .filter_map(|id| id.strip_prefix(prefix)?.strip_prefix('-')?.parse().ok())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=numbers.len() as u32).collect::<Vec<_>>(), "{prefix} IDs");
    }
    let mut cited = String::new();
    for d in tagcast_spec::schema::documents() {
        cited.push_str(&d.schema.to_string());
    }
    for code in error_body::ErrorCode::ALL {
        cited.push_str(&error_body::ErrorBody::new(code, "").to_string());
    }
    let words = cited.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'));
    for word in words {
        let is_ref = ["API-", "CB-"].iter().any(|p| {
            word.strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
        if is_ref {
            assert!(
                defined.iter().any(|d| d == word),
                "{word} is cited but not defined in spec/"
            );
        }
    }
}
