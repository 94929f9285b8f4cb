//! The broker's OpenAPI 3.1 document (API-1 to API-14).

use std::process::Command;

use serde_json::{Value, json};
use tagcast_spec::openapi;

fn document() -> Value {
    openapi::document().schema
}

/// Validate `instance` against `schema`, a schema that may `$ref` into the
/// OpenAPI document's components.
fn errors(doc: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let mut root = doc.clone();
    let object = root.as_object_mut().unwrap();
    object.retain(|k, _| k == "components");
    object.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
    object.insert("allOf".into(), json!([schema]));
    super::schemas::validator(&root)
        .iter_errors(instance)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect()
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for section in ["paths", "webhooks"] {
        for (path, item) in doc[section].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method != "parameters" {
                    out.push((path.clone(), method.clone(), op.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn it_is_openapi_3_1_with_the_contracts_paths() {
    let doc = document();
    assert_eq!(doc["openapi"], json!("3.1.0"));
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        [
            "/ga4gh/registry/v1/service-info",
            "/ga4gh/registry/v1/services",
            "/ga4gh/registry/v1/services/types",
            "/ga4gh/registry/v1/services/{serviceId}",
            "/ga4gh/registry/v1/services/{serviceId}/subscription/status",
            "/ga4gh/registry/v1/services/{serviceId}/deliveries",
            "/ga4gh/registry/v1/services/{serviceId}/deliveries/{deliveryId}",
            "/ga4gh/registry/v1/services/{serviceId}/subscription/status/images/{image}",
            "/ga4gh/registry/v1/services/{serviceId}/deliveries/{deliveryId}/redeliver",
            "/hooks/{kind}/{token}",
            "/hooks/sources/{kind}/{registry}/rotate",
            "/hooks/sources/{kind}/{registry}/revoke",
        ]
    );
    let mut ids: Vec<String> = operations(&doc)
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let unique = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), unique, "operationIds are unique");
}

#[test]
fn writes_need_the_admin_token_and_ga4gh_reads_do_not() {
    let doc = document();
    for (path, method, op) in operations(&doc) {
        let secured = op.get("security") == Some(&json!([{"adminToken": []}]));
        let expected = matches!(method.as_str(), "post" | "put" | "delete") && path.starts_with("/ga4gh/")
            || path.contains("/deliveries")
            || path.starts_with("/hooks/sources/");
        assert_eq!(secured, expected, "{method} {path}");
    }
}

#[test]
fn every_ref_resolves_and_every_example_validates() {
    let doc = document();
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"").skip(1) {
        let target = &piece[..piece.find('"').unwrap()];
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("$ref {target} leaves the document"));
        assert!(doc.pointer(pointer).is_some(), "$ref {target} does not resolve");
    }
    let mut checked = 0;
    for (path, method, op) in operations(&doc) {
        let mut media: Vec<Value> = Vec::new();
        if let Some(content) = op["requestBody"]["content"].as_object() {
            media.extend(content.values().cloned());
        }
        for response in op["responses"].as_object().unwrap().values() {
            let response = match response.get("$ref").and_then(Value::as_str) {
                Some(r) => doc.pointer(r.strip_prefix('#').unwrap()).unwrap().clone(),
                None => response.clone(),
            };
            if let Some(content) = response["content"].as_object() {
                media.extend(content.values().cloned());
            }
        }
        for m in media {
            let mut examples: Vec<Value> = m.get("example").cloned().into_iter().collect();
            if let Some(named) = m["examples"].as_object() {
                examples.extend(named.values().map(|e| e["value"].clone()));
            }
            for example in examples {
                assert_eq!(
                    errors(&doc, &m["schema"], &example),
                    Vec::<String>::new(),
                    "{method} {path}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} examples");
    // The check can fail: a wrong example is caught.
    let bad = json!({"status": 404, "title": "Not Found", "code": "Not Found!"});
    assert_eq!(
        errors(&doc, &json!({"$ref": "#/components/schemas/ErrorBody"}), &bad).len(),
        1,
        "a code that is not a snake_case word is rejected"
    );
    // API-13: a code added by a later minor version is valid.
    let later = json!({"status": 404, "title": "Not Found", "code": "no_such_code"});
    assert_eq!(
        errors(&doc, &json!({"$ref": "#/components/schemas/ErrorBody"}), &later),
        Vec::<String>::new(),
        "an unknown snake_case code is accepted"
    );
}

#[test]
fn components_agree_with_the_schema_documents() {
    let doc = document();
    let components = &doc["components"]["schemas"];
    let standalone = super::schemas::doc("service-registration.schema.json").schema;
    for key in ["properties", "required"] {
        let mut from_openapi = components["ServiceRegistration"][key].to_string();
        from_openapi = from_openapi.replace("#/components/schemas/", "#/$defs/");
        assert_eq!(from_openapi, standalone[key].to_string(), "{key}");
    }
}

/// A real OpenAPI validator (the `openapi-spec-validator` package) accepts
/// the document; `.ci/install-parts` installs it.
#[test]
#[ignore = "needs openapi-spec-validator"]
fn a_real_validator_accepts_the_document() {
    let dir = std::env::temp_dir().join(format!("tagcast-openapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("openapi.json");
    std::fs::write(&good, tagcast_spec::schema::render(&openapi::document())).unwrap();
    let out = Command::new("openapi-spec-validator")
        .arg(&good)
        .output()
        .expect("openapi-spec-validator runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // And it can fail: a response without a description is not OpenAPI.
    let mut broken = openapi::document().schema;
    broken["paths"]["/ga4gh/registry/v1/service-info"]["get"]["responses"]["200"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    let bad = dir.join("broken.json");
    std::fs::write(&bad, broken.to_string()).unwrap();
    let out = Command::new("openapi-spec-validator").arg(&bad).output().unwrap();
    assert!(!out.status.success(), "the validator accepted a broken document");
    std::fs::remove_dir_all(&dir).unwrap();
}
