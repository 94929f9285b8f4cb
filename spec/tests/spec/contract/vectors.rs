//! The language-neutral vectors of `conformance/vectors/` (callback
//! signatures, callback events) hold for this crate's `webhook` and `event`
//! modules and for `image-published.schema.json`: the reference
//! implementation and the vectors cannot drift apart.

use std::path::PathBuf;

use serde_json::Value;
use tagcast_spec::webhook::{DEFAULT_TOLERANCE, Secret, sign, verify};
use tagcast_spec::{CloudEvent, ImagePublished};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors")
}

fn read(path: PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn signature_vectors() {
    let doc = read(vectors().join("callbacks.json"));
    let mut count = 0;
    for group in doc["groups"].as_array().unwrap() {
        for case in group["cases"].as_array().unwrap() {
            let name = case["description"].as_str().unwrap();
            let input = &case["input"];
            let body = input["body"].as_str().unwrap().as_bytes();
            let valid = case["valid"].as_bool().unwrap();
            if let Some(expected) = case.get("expected") {
                let secret = Secret::parse(input["secret"].as_str().unwrap()).unwrap();
                let ts: i64 = input["timestamp"].as_str().unwrap().parse().unwrap();
                assert_eq!(
                    sign(&secret, input["id"].as_str().unwrap(), ts, body),
                    expected.as_str().unwrap(),
                    "{name}"
                );
            } else {
                let secrets: Vec<Secret> = input["secrets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| Secret::parse(s.as_str().unwrap()).unwrap())
                    .collect();
                let result = verify(
                    &secrets,
                    input["id"].as_str(),
                    input["timestamp"].as_str(),
                    input["signature"].as_str(),
                    body,
                    input["now"].as_i64().unwrap(),
                    DEFAULT_TOLERANCE,
                );
                assert_eq!(result.is_ok(), valid, "{name}: {result:?}");
                if let (Err(err), Some(requirement)) = (result, case["requirement"].as_str()) {
                    assert_eq!(err.requirement(), requirement, "{name}: {err}");
                }
            }
            count += 1;
        }
    }
    assert!(count >= 20, "only {count} signature vectors");
}

#[test]
fn event_vectors() {
    let schema = super::schemas::doc("image-published.schema.json").schema;
    let validator = super::schemas::validator(&schema);
    let mut count = 0;
    for entry in std::fs::read_dir(vectors().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let case = read(path.clone());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let event = &case["event"];
        let valid = case["valid"].as_bool().unwrap();
        let schema_valid = case["schemaValid"].as_bool().unwrap_or(valid);
        assert_eq!(validator.is_valid(event), schema_valid, "{name}: schema");
        let parsed = serde_json::from_value::<CloudEvent<ImagePublished>>(event.clone());
        assert_eq!(parsed.is_ok(), valid, "{name}: {parsed:?}");
        count += 1;
    }
    assert!(count >= 10, "only {count} event vectors");
}
