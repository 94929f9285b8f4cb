//! The schema documents of the Service API extension and the callback
//! contract (`spec/service-api.md`, `spec/callbacks.md`), and the OpenAPI
//! document of the broker.

use serde_json::{Map, Value};

use super::{Document, document};
use crate::{delivery, error_body, event, generic, service, subscription};

/// The contract's schema documents plus `openapi.json`.
pub(super) fn documents() -> Vec<Document> {
    let mut image_published = document::<event::CloudEvent<event::ImagePublished>>(
        "image-published.schema.json",
        "tagcast image.published callback event",
    );
    image_published.schema["examples"] = Value::Array(vec![event::example_event()]);
    let mut docs = vec![
        document::<service::Service>("service.schema.json", "GA4GH service-info Service"),
        document::<service::ServiceRegistration>("service-registration.schema.json", "tagcast service registration"),
        document::<service::RegisteredService>("registered-service.schema.json", "tagcast registered service"),
        document::<subscription::Subscription>("subscription.schema.json", "tagcast subscription"),
        image_published,
        document::<delivery::Delivery>("delivery.schema.json", "tagcast delivery"),
        document::<delivery::SubscriptionStatus>("subscription-status.schema.json", "tagcast subscription status"),
        document::<error_body::ErrorBody>("error.schema.json", "tagcast error body"),
        document::<generic::GenericEvent>("generic-event.schema.json", "tagcast generic push event"),
    ];
    for doc in &mut docs {
        tidy(&mut doc.schema);
    }
    docs.push(crate::openapi::document());
    docs
}

/// Make generated schemas say what the contract says and read well:
///
/// - an optional property is absent, never `null`: serde accepts `null` for
///   an `Option`, but the contract does not allow senders to write it, and
///   GA4GH's optional fields are plain strings;
/// - doc-comment line breaks inside a paragraph become spaces (list items
///   keep theirs), and rustdoc link syntax goes.
pub(crate) fn tidy(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(description)) = object.get_mut("description") {
                *description = super::docs::text::strip_rustdoc_links(&super::docs::text::unwrap_lines(description));
            }
            let required: Vec<String> = object
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if let Some(Value::Object(properties)) = object.get_mut("properties") {
                for (name, property) in properties.iter_mut() {
                    if !required.contains(name) {
                        strip_null(property);
                    }
                }
            }
            for (key, child) in object.iter_mut() {
                // `examples` and `const` are data, not schemas.
                if key != "examples" && key != "const" && key != "example" {
                    tidy(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

fn strip_null(property: &mut Value) {
    let Some(object) = property.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            object.insert("type".into(), only);
        }
    }
    let non_null = match object.get("anyOf") {
        Some(Value::Array(options)) if options.len() == 2 => options
            .iter()
            .find(|o| o.get("type").and_then(Value::as_str) != Some("null"))
            .filter(|_| {
                options
                    .iter()
                    .any(|o| o.get("type").and_then(Value::as_str) == Some("null"))
            })
            .cloned(),
        _ => None,
    };
    if let Some(Value::Object(schema)) = non_null {
        object.remove("anyOf");
        let rest: Map<String, Value> = std::mem::take(object);
        object.extend(schema);
        object.extend(rest);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::tidy;

    #[test]
    fn optional_properties_lose_null_and_descriptions_unwrap() {
        let mut schema = json!({
            "properties": {
                "a": {"type": ["string", "null"], "description": "one\ntwo\n\nthree"},
                "b": {"anyOf": [{"$ref": "#/$defs/B"}, {"type": "null"}], "description": "b"},
                "c": {"type": ["string", "null"]}
            },
            "required": ["c"],
            "examples": [{"a": "x\ny"}]
        });
        tidy(&mut schema);
        assert_eq!(
            schema,
            json!({
                "properties": {
                    "a": {"type": "string", "description": "one two\n\nthree"},
                    "b": {"$ref": "#/$defs/B", "description": "b"},
                    "c": {"type": ["string", "null"]}
                },
                "required": ["c"],
                "examples": [{"a": "x\ny"}]
            })
        );
    }
}
