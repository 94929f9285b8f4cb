//! The language-neutral vectors in `conformance/vectors/`, run against the
//! spec crate's signing, verification, parser and schemas.

use serde_json::Value;
use tagcast_conformance::vectors;
use tagcast_spec::event::{CloudEvent, ImagePublished};
use tagcast_spec::webhook::{self, Secret};

fn callbacks() -> Value {
    serde_json::from_str(vectors::CALLBACKS).expect("callbacks.json is JSON")
}

fn cases<'a>(doc: &'a Value, group: &str) -> &'a Vec<Value> {
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["description"] == group)
        .unwrap_or_else(|| panic!("no group {group}"))["cases"]
        .as_array()
        .unwrap()
}

fn text<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input[key].as_str()
}

#[test]
fn signing_vectors_match_the_spec_crate() {
    let doc = callbacks();
    let signing = cases(&doc, "signing");
    assert!(signing.len() >= 4);
    for case in signing {
        let input = &case["input"];
        let secret = Secret::parse(text(input, "secret").unwrap()).unwrap();
        let timestamp: i64 = text(input, "timestamp").unwrap().parse().unwrap();
        let signature = webhook::sign(
            &secret,
            text(input, "id").unwrap(),
            timestamp,
            text(input, "body").unwrap().as_bytes(),
        );
        assert_eq!(signature, case["expected"].as_str().unwrap(), "{}", case["description"]);
    }
}

#[test]
fn verification_vectors_match_the_spec_crate() {
    let doc = callbacks();
    let mut seen = (0, 0);
    for group in ["verification accepts", "verification rejects"] {
        for case in cases(&doc, group) {
            let input = &case["input"];
            let secrets: Vec<Secret> = input["secrets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| Secret::parse(s.as_str().unwrap()).unwrap())
                .collect();
            let result = webhook::verify(
                &secrets,
                text(input, "id"),
                text(input, "timestamp"),
                text(input, "signature"),
                text(input, "body").unwrap().as_bytes(),
                input["now"].as_i64().unwrap(),
                webhook::DEFAULT_TOLERANCE,
            );
            let valid = case["valid"].as_bool().unwrap();
            assert_eq!(result.is_ok(), valid, "{}: {result:?}", case["description"]);
            if let Err(e) = result {
                assert_eq!(
                    e.requirement(),
                    case["requirement"].as_str().unwrap(),
                    "{}",
                    case["description"]
                );
                seen.1 += 1;
            } else {
                seen.0 += 1;
            }
        }
    }
    assert!(seen.0 >= 5 && seen.1 >= 10, "{seen:?}");
}

#[test]
fn the_event_files_are_all_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/events");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let embedded: Vec<&str> = vectors::EVENT_FILES.iter().map(|(name, _)| *name).collect();
    assert_eq!(on_disk, embedded);
}

#[test]
fn event_vectors_agree_with_the_parser_and_the_schema() {
    let schema = tagcast_spec::schema::documents()
        .into_iter()
        .find(|d| d.file_name == "image-published.schema.json")
        .expect("the event schema")
        .schema;
    let validator = jsonschema::validator_for(&schema).unwrap();
    let events = vectors::events();
    assert!(events.iter().filter(|(_, v)| v.valid).count() >= 3);
    assert!(events.iter().filter(|(_, v)| !v.valid && !v.schema_valid).count() >= 8);
    for (file, vector) in events {
        assert_eq!(
            file.starts_with("valid-"),
            vector.valid,
            "{file}: the name says whether it is valid"
        );
        let parsed = serde_json::from_value::<CloudEvent<ImagePublished>>(vector.event.clone());
        assert_eq!(parsed.is_ok(), vector.valid, "{file}: parser says {parsed:?}");
        assert_eq!(validator.is_valid(&vector.event), vector.schema_valid, "{file}: schema");
        if !vector.valid {
            let requirement = vector
                .requirement
                .as_deref()
                .expect("an invalid vector names its requirement");
            assert!(requirement.starts_with("CB-"), "{file}");
        }
    }
}
