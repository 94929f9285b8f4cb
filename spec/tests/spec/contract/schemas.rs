//! The generated schema documents: metadata, examples, self-containment,
//! agreement with the Rust types, and the GA4GH compatibility fixtures.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tagcast_spec::schema::{BASE_URI, Document, documents};
use tagcast_spec::{CloudEvent, ImagePublished, delivery, error_body, generic, service, subscription};

/// The schema documents of this contract (tag and reference schemas are the
/// grammar's).
pub(crate) const CONTRACT_SCHEMAS: [&str; 9] = [
    "delivery.schema.json",
    "error.schema.json",
    "generic-event.schema.json",
    "image-published.schema.json",
    "registered-service.schema.json",
    "service-registration.schema.json",
    "service.schema.json",
    "subscription-status.schema.json",
    "subscription.schema.json",
];

pub(crate) fn doc(file_name: &str) -> Document {
    documents()
        .into_iter()
        .find(|d| d.file_name == file_name)
        .unwrap_or_else(|| panic!("no document {file_name}"))
}

pub(crate) fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .expect("the schema compiles")
}

/// The validation errors of `instance` against the schema in `file_name`,
/// as "path: message" lines.
pub(crate) fn errors(file_name: &str, instance: &Value) -> Vec<String> {
    let schema = doc(file_name).schema;
    validator(&schema)
        .iter_errors(instance)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect()
}

fn fixture(name: &str) -> Value {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn every_contract_schema_has_id_title_description_and_examples() {
    for name in CONTRACT_SCHEMAS {
        let schema = doc(name).schema;
        assert!(
            jsonschema::meta::is_valid(&schema),
            "{name} is not a valid 2020-12 schema"
        );
        assert_eq!(
            schema["$schema"],
            json!("https://json-schema.org/draft/2020-12/schema"),
            "{name}"
        );
        assert_eq!(schema["$id"], json!(format!("{BASE_URI}{name}")), "{name}");
        for key in ["title", "description"] {
            assert!(
                schema[key].as_str().is_some_and(|s| !s.is_empty()),
                "{name} has no {key}"
            );
        }
        let examples = schema["examples"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no examples"));
        assert!(!examples.is_empty(), "{name}");
        for example in examples {
            assert_eq!(errors(name, example), Vec::<String>::new(), "{name}");
        }
    }
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                match (key.as_str(), child) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    ("examples" | "const", _) => {}
                    _ => refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_ref_resolves_inside_its_document() {
    for name in CONTRACT_SCHEMAS {
        let schema = doc(name).schema;
        let mut found = Vec::new();
        refs(&schema, &mut found);
        for r in found {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{name}: $ref {r} leaves the document"));
            assert!(schema.pointer(pointer).is_some(), "{name}: $ref {r} does not resolve");
        }
    }
}

/// Every schema example is accepted by the Rust type it was generated from
/// and serializes back unchanged.
#[test]
fn examples_round_trip_through_the_types() {
    fn round_trip<T: DeserializeOwned + serde::Serialize>(name: &str) {
        for example in doc(name).schema["examples"].as_array().unwrap() {
            let value: T = serde_json::from_value(example.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&serde_json::to_value(&value).unwrap(), example, "{name}");
        }
    }
    round_trip::<delivery::Delivery>("delivery.schema.json");
    round_trip::<error_body::ErrorBody>("error.schema.json");
    round_trip::<generic::GenericEvent>("generic-event.schema.json");
    round_trip::<CloudEvent<ImagePublished>>("image-published.schema.json");
    round_trip::<service::RegisteredService>("registered-service.schema.json");
    round_trip::<service::ServiceRegistration>("service-registration.schema.json");
    round_trip::<service::Service>("service.schema.json");
    round_trip::<delivery::SubscriptionStatus>("subscription-status.schema.json");
    round_trip::<subscription::Subscription>("subscription.schema.json");
}

#[test]
fn a_read_carries_no_secret_and_a_write_may() {
    let read = &doc("registered-service.schema.json").schema["examples"][0];
    let record: service::RegisteredService = serde_json::from_value(read.clone()).unwrap();
    assert!(record.subscription.unwrap().secret.is_none());
    let write = doc("subscription.schema.json").schema;
    assert_eq!(write["properties"]["secret"]["writeOnly"], json!(true));
}

#[test]
fn published_ga4gh_documents_validate_against_service_schema() {
    let ga4gh = fixture("ga4gh-service-info-1.0.0.schema.json");
    for name in [
        "ga4gh-service-info-example.json",
        "wes-1.1.0-service-info.json",
        "cloud-registry-service.json",
        "service-with-subscription.json",
    ] {
        let instance = fixture(name);
        assert_eq!(errors("service.schema.json", &instance), Vec::<String>::new(), "{name}");
        let plain: Vec<String> = validator(&ga4gh)
            .iter_errors(&instance)
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            plain,
            Vec::<String>::new(),
            "{name} against the transcribed GA4GH schema"
        );
        let service: service::Service = serde_json::from_value(instance.clone()).unwrap();
        assert_eq!(
            serde_json::to_value(&service).unwrap(),
            instance,
            "{name} round-trips unchanged"
        );
    }
    for name in ["cloud-registry-service.json", "service-with-subscription.json"] {
        assert_eq!(
            errors("registered-service.schema.json", &fixture(name)),
            Vec::<String>::new(),
            "{name}"
        );
    }
    // The GA4GH example is a service-info, not a listed service: it has no `url`.
    assert_eq!(
        errors(
            "registered-service.schema.json",
            &fixture("ga4gh-service-info-example.json")
        ),
        [": \"url\" is a required property"]
    );
}

#[test]
fn the_service_schema_rejects_what_ga4gh_rejects() {
    let mut missing = fixture("ga4gh-service-info-example.json");
    missing["organization"].as_object_mut().unwrap().remove("url");
    assert_eq!(
        errors("service.schema.json", &missing),
        ["/organization: \"url\" is a required property"]
    );
    let mut wrong = fixture("ga4gh-service-info-example.json");
    wrong["createdAt"] = json!("yesterday");
    assert_eq!(
        errors("service.schema.json", &wrong),
        ["/createdAt: \"yesterday\" is not a \"date-time\""]
    );
    let mut null = fixture("ga4gh-service-info-example.json");
    null["description"] = Value::Null;
    assert_eq!(
        errors("service.schema.json", &null),
        ["/description: null is not of type \"string\""]
    );
}

#[test]
fn the_subscription_schema_rejects_what_the_types_reject() {
    let good = doc("subscription.schema.json").schema["examples"][0].clone();
    let cases = [
        ("images", json!([]), "/images: [] has less than 1 item"),
        (
            "stage",
            json!("prod"),
            "/stage: \"prod\" is not valid under any of the schemas listed in the 'oneOf' keyword",
        ),
        (
            "secret",
            json!("whsec_AAAA"),
            "/secret: \"whsec_AAAA\" is shorter than 38 characters",
        ),
        (
            "callbackUrl",
            json!("cd.example.org"),
            "/callbackUrl: \"cd.example.org\" is not a \"uri\"",
        ),
    ];
    for (field, value, message) in cases {
        let mut bad = good.clone();
        bad[field] = value.clone();
        let found = errors("subscription.schema.json", &bad);
        assert!(found.iter().any(|e| e == message), "{field}: {found:?}");
        assert!(
            serde_json::from_value::<subscription::Subscription>(bad).is_err()
                || field == "images"
                || field == "callbackUrl",
            "{field}: the type accepts what the schema rejects"
        );
    }
}
