//! The OpenAPI 3.1 document of a tagcast broker (`schemas/openapi.json`),
//! generated from the same types as the JSON Schemas so that the two cannot
//! disagree (`spec/service-api.md`).

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::delivery::{Delivery, SubscriptionStatus};
use crate::error_body::{ErrorBody, ErrorCode};
use crate::event::{CONTENT_TYPE, CloudEvent, ImagePublished};
use crate::generic::GenericEvent;
use crate::schema::Document;
use crate::service::{RegisteredService, Service, ServiceRegistration, ServiceType};
use crate::webhook::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

/// The GA4GH Service Registry base path that the broker serves (API-1).
pub const BASE_PATH: &str = "/ga4gh/registry/v1";

/// The inbound registry webhook path, outside [`BASE_PATH`] (API-14).
pub const HOOK_PATH: &str = "/hooks/{kind}/{token}";

/// The OpenAPI document as `schemas/openapi.json`.
pub fn document() -> Document {
    Document {
        file_name: "openapi.json",
        schema: openapi(),
    }
}

struct Components {
    generator: SchemaGenerator,
}

impl Components {
    fn new() -> Self {
        let mut settings = SchemaSettings::draft2020_12();
        settings.definitions_path = "/components/schemas".into();
        settings.meta_schema = None;
        Self {
            generator: settings.into_generator(),
        }
    }

    /// A `$ref` to `T` in `components/schemas`.
    fn schema<T: JsonSchema>(&mut self) -> Value {
        let mut schema = self.generator.subschema_for::<T>().to_value();
        if schema.get("$ref").is_none() {
            // Types that schemars inlines (none today) still get a name.
            let name = T::schema_name().into_owned();
            self.generator.definitions_mut().insert(name.clone(), schema);
            schema = json!({"$ref": format!("#/components/schemas/{name}")});
        }
        schema
    }

    fn finish(mut self) -> Map<String, Value> {
        let mut definitions = self.generator.take_definitions(true);
        for schema in definitions.values_mut() {
            crate::schema::contract::tidy(schema);
        }
        definitions.sort_keys();
        definitions
    }
}

fn json_body(schema: Value, example: Option<Value>) -> Value {
    let mut media = json!({"schema": schema});
    if let Some(example) = example {
        media["example"] = example;
    }
    json!({"required": true, "content": {"application/json": media}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn error(code: ErrorCode) -> Value {
    json!({"$ref": format!("#/components/responses/{}", response_name(code))})
}

fn response_name(code: ErrorCode) -> String {
    code.as_str()
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn responses(success: &[(&str, Value)], errors: &[ErrorCode]) -> Value {
    let mut map = Map::new();
    for (status, response) in success {
        map.insert((*status).to_owned(), response.clone());
    }
    for code in errors {
        map.entry(code.status().to_string()).or_insert_with(|| error(*code));
    }
    map.insert("500".into(), error(ErrorCode::Internal));
    Value::Object(map)
}

fn service_id() -> Value {
    json!({
        "name": "serviceId", "in": "path", "required": true,
        "description": "The service's `id`.",
        "schema": {"type": "string", "minLength": 1}
    })
}

fn delivery_id() -> Value {
    json!({
        "name": "deliveryId", "in": "path", "required": true,
        "description": "The delivery's id, equal to its event id and `webhook-id`.",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}
    })
}

/// The path parameters of a hook source: its kind and its registry host.
fn hook_source_parameters() -> Value {
    json!([
        {"name": "kind", "in": "path", "required": true, "description": "The registry kind of the hook source.",
         "schema": {"$ref": "#/components/schemas/RegistryKind"}},
        {"name": "registry", "in": "path", "required": true, "description": "The registry host (and port) the source receives hooks from, as in the image references.",
         "schema": {"type": "string", "minLength": 1}}
    ])
}

/// The answer of a hook token rotation or revocation: an object with
/// `kind`, `registry`, `url` (the hook URL with the new token) and
/// `previousTokenValidUntil` (RFC 3339, or null after a revocation). Its
/// members are described in prose: it is no component of the contract.
fn hook_token_answer() -> Value {
    json!({
        "type": "object",
        "description": "`kind` and `registry` of the hook source; `url`, the hook URL with the new token to configure in the registry; `previousTokenValidUntil`, until when the old token is still accepted (RFC 3339), null after a revocation."
    })
}

fn admin() -> Value {
    json!([{"adminToken": []}])
}

fn openapi() -> Value {
    let mut c = Components::new();
    let service = c.schema::<Service>();
    let service_type = c.schema::<ServiceType>();
    let registration = c.schema::<ServiceRegistration>();
    let registered = c.schema::<RegisteredService>();
    let status = c.schema::<SubscriptionStatus>();
    let delivery = c.schema::<Delivery>();
    let event = c.schema::<CloudEvent<ImagePublished>>();
    let generic = c.schema::<GenericEvent>();
    let error_body = c.schema::<ErrorBody>();

    let registration_example = crate::service::example_registration();
    let registered_example = crate::service::example_registered();
    let mut created_example = registered_example.clone();
    created_example["subscription"]["secret"] = json!("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");

    let write_errors = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::InvalidSubscription,
    ];
    let mut post_errors = write_errors.to_vec();
    post_errors.push(ErrorCode::Conflict);
    let admin_read_errors = [ErrorCode::Unauthorized, ErrorCode::Forbidden, ErrorCode::NotFound];

    let registry = BASE_PATH;
    let paths = json!({
        format!("{registry}/service-info"): {
            "get": {
                "operationId": "getServiceInfo",
                "tags": ["GA4GH Service Registry"],
                "summary": "The broker's own service-info (API-1)",
                "description": "Its `type` is `{\"group\": \"org.ga4gh\", \"artifact\": \"service-registry\", \"version\": \"1.0.0\"}`.",
                "responses": responses(&[("200", ok("The broker as a GA4GH service.", service.clone()))], &[])
            }
        },
        format!("{registry}/services"): {
            "get": {
                "operationId": "getServices",
                "tags": ["GA4GH Service Registry"],
                "summary": "List every registered service, or one page of them (API-3)",
                "description": "Public. Subscriptions are listed without their secrets. Without parameters: every service. With `limit` (and a `cursor` from a previous page): one page in `id` order, the next page's URL in `Link: <…>; rel=\"next\"` (RFC 8288), absent on the last page.",
                "parameters": [
                    {"name": "limit", "in": "query", "required": false, "description": "At most this many services (default 100 when only `cursor` is given).",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                    {"name": "cursor", "in": "query", "required": false, "description": "Where the page starts: the opaque value of the previous answer's `Link` `rel=\"next\"` URL.",
                     "schema": {"type": "string"}}
                ],
                "responses": responses(
                    &[("200", json!({
                        "description": "Every service, or one page.",
                        "headers": {"Link": {"description": "`<{base}/services?limit=N&cursor=…>; rel=\"next\"` when more services follow.", "schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": {"type": "array", "items": registered.clone()}}}
                    }))],
                    &[ErrorCode::InvalidRequest]
                )
            },
            "post": {
                "operationId": "createService",
                "tags": ["Registration (ELIXIR cloud-registry)"],
                "summary": "Register a service, optionally with a subscription (API-5, API-6)",
                "description": "Creates the service with the body's `id`. The answer carries `subscription.secret` (given or generated) and `subscription.hooks` — the only time the secret is returned.",
                "security": admin(),
                "requestBody": json_body(registration.clone(), Some(registration_example.clone())),
                "responses": responses(
                    &[("201", json!({
                        "description": "Registered. `Location` names the new resource.",
                        "headers": {"Location": {"description": "`{base}/services/{serviceId}`", "schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": registered.clone(), "example": created_example.clone()}}
                    }))],
                    &post_errors
                )
            }
        },
        format!("{registry}/services/types"): {
            "get": {
                "operationId": "getServiceTypes",
                "tags": ["GA4GH Service Registry"],
                "summary": "Every distinct `type` of the registered services (API-4)",
                "responses": responses(&[("200", ok("The distinct types.", json!({"type": "array", "items": service_type})))], &[])
            }
        },
        format!("{registry}/services/{{serviceId}}"): {
            "parameters": [service_id()],
            "get": {
                "operationId": "getServiceById",
                "tags": ["GA4GH Service Registry"],
                "summary": "One registered service (API-3)",
                "responses": responses(&[("200", json!({
                    "description": "The service, without its secret.",
                    "content": {"application/json": {"schema": registered.clone(), "example": registered_example}}
                }))], &[ErrorCode::NotFound])
            },
            "put": {
                "operationId": "putService",
                "tags": ["Registration (ELIXIR cloud-registry)"],
                "summary": "Create or replace a service (API-5)",
                "description": "The body's `id` must equal the path's. A body without `subscription.secret` keeps the stored secret; another secret rotates it (the replaced one signs beside it for 24 hours, CB-5); a new subscription without one gets a generated secret, returned in this answer only.",
                "security": admin(),
                "requestBody": json_body(registration, Some(registration_example)),
                "responses": responses(
                    &[
                        ("200", ok("Replaced.", registered.clone())),
                        ("201", ok("Created.", registered.clone())),
                    ],
                    &write_errors
                )
            },
            "delete": {
                "operationId": "deleteService",
                "tags": ["Registration (ELIXIR cloud-registry)"],
                "summary": "Remove a service and its subscription (API-5)",
                "description": "Pending deliveries are cancelled; the delivery log stays readable until the operator prunes it.",
                "security": admin(),
                "responses": responses(&[("204", json!({"description": "Removed."}))], &[ErrorCode::Unauthorized, ErrorCode::Forbidden, ErrorCode::NotFound])
            }
        },
        format!("{registry}/services/{{serviceId}}/subscription/status"): {
            "parameters": [service_id()],
            "get": {
                "operationId": "getSubscriptionStatus",
                "tags": ["Subscriptions"],
                "summary": "What was delivered, what is pending (API-10)",
                "responses": responses(&[("200", ok("The status.", status))], &[ErrorCode::NotFound])
            }
        },
        format!("{registry}/services/{{serviceId}}/deliveries"): {
            "parameters": [service_id()],
            "get": {
                "operationId": "listDeliveries",
                "tags": ["Subscriptions"],
                "summary": "The delivery log, newest first (API-11)",
                "security": admin(),
                "parameters": [
                    {"name": "outcome", "in": "query", "required": false, "description": "Only deliveries with this outcome.",
                     "schema": {"$ref": "#/components/schemas/DeliveryOutcome"}},
                    {"name": "limit", "in": "query", "required": false, "description": "At most this many (default 100).",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}
                ],
                "responses": responses(&[("200", ok("Deliveries.", json!({"type": "array", "items": delivery.clone()})))], &admin_read_errors)
            }
        },
        format!("{registry}/services/{{serviceId}}/deliveries/{{deliveryId}}"): {
            "parameters": [service_id(), delivery_id()],
            "get": {
                "operationId": "getDelivery",
                "tags": ["Subscriptions"],
                "summary": "One delivery with every attempt (API-11)",
                "security": admin(),
                "responses": responses(&[("200", ok("The delivery.", delivery.clone()))], &admin_read_errors)
            }
        },
        format!("{registry}/services/{{serviceId}}/subscription/status/images/{{image}}"): {
            "parameters": [service_id(), {
                "name": "image", "in": "path", "required": true,
                "description": "The normalized repository (REF-6), percent-encoded: `docker.io%2Felixircloud%2Fcwl-wes`.",
                "schema": {"type": "string", "minLength": 1}
            }],
            "delete": {
                "operationId": "resetDelivered",
                "tags": ["Subscriptions"],
                "summary": "Forget the last delivered tag of an image (API-17)",
                "description": "The next matching push of the image's channel is delivered as if none had been, without `previousTag`: how an operator recovers from a wrong delivered tag, such as a future-dated one (CB-18).",
                "security": admin(),
                "responses": responses(
                    &[("204", json!({"description": "Forgotten."}))],
                    &[ErrorCode::Unauthorized, ErrorCode::Forbidden, ErrorCode::NotFound]
                )
            }
        },
        format!("{registry}/services/{{serviceId}}/deliveries/{{deliveryId}}/redeliver"): {
            "parameters": [service_id(), delivery_id()],
            "post": {
                "operationId": "redeliver",
                "tags": ["Subscriptions"],
                "summary": "Send a delivery again (API-12)",
                "description": "Queues a new attempt of the same event (same `webhook-id`) now, whatever its outcome; 409 while it is `pending`.",
                "security": admin(),
                "responses": responses(
                    &[("202", ok("Queued; `outcome` is `pending`.", delivery))],
                    &[ErrorCode::Unauthorized, ErrorCode::Forbidden, ErrorCode::NotFound, ErrorCode::Conflict]
                )
            }
        },
        HOOK_PATH: {
            "parameters": [
                {"name": "kind", "in": "path", "required": true, "description": "The registry kind the hook was made for.",
                 "schema": {"$ref": "#/components/schemas/RegistryKind"}},
                {"name": "token", "in": "path", "required": true, "description": "The hook's token: at least 128 random bits, base64url or hex.",
                 "schema": {"type": "string", "minLength": 22, "pattern": "^[A-Za-z0-9_-]+$"}}
            ],
            "post": {
                "operationId": "receiveHook",
                "tags": ["Inbound registry webhooks"],
                "summary": "A container registry reports a push (API-14)",
                "description": "The body is the registry's own webhook payload; for `generic`, a `GenericEvent` signed with Standard Webhooks headers. The broker stores the request before answering and answers 202 to every authentic request, ignored events included.",
                "security": [],
                "requestBody": {
                    "required": true,
                    "content": {
                        "application/json": {
                            "schema": {"anyOf": [generic, {"type": "object"}], "description": "A `GenericEvent` for the `generic` kind; the registry's payload otherwise."},
                            "examples": {"generic": {"value": schema_example::<GenericEvent>()}}
                        },
                        "application/vnd.docker.distribution.events.v1+json": {"schema": {}},
                        "application/vnd.docker.distribution.events.v2+json": {"schema": {}},
                        "application/cloudevents+json": {"schema": {}}
                    }
                },
                "responses": responses(
                    &[("202", json!({"description": "Stored; processed asynchronously."}))],
                    &[ErrorCode::InvalidSignature, ErrorCode::NotFound, ErrorCode::PayloadTooLarge, ErrorCode::UnsupportedMediaType, ErrorCode::TooManyRequests]
                )
            }
        },
        "/hooks/sources/{kind}/{registry}/rotate": {
            "parameters": hook_source_parameters(),
            "post": {
                "operationId": "rotateHookToken",
                "tags": ["Inbound registry webhooks"],
                "summary": "Give a hook source a new token; the old one stays valid for a grace period",
                "description": "The answer carries the new hook URL (the only place besides admin reads of the services) and when the old token stops being accepted (`--hook-token-grace`, default 24 h). Managed hooks are moved to the new URL by the broker.",
                "security": admin(),
                "responses": responses(
                    &[("200", ok("The new token's hook URL.", hook_token_answer()))],
                    &[ErrorCode::Unauthorized, ErrorCode::Forbidden, ErrorCode::NotFound]
                )
            }
        },
        "/hooks/sources/{kind}/{registry}/revoke": {
            "parameters": hook_source_parameters(),
            "post": {
                "operationId": "revokeHookToken",
                "tags": ["Inbound registry webhooks"],
                "summary": "Give a hook source a new token; the old one is refused at once",
                "description": "For a leaked token: hooks with it are answered 404 from now on. The answer carries the new hook URL; `previousTokenValidUntil` is null.",
                "security": admin(),
                "responses": responses(
                    &[("200", ok("The new token's hook URL.", hook_token_answer()))],
                    &[ErrorCode::Unauthorized, ErrorCode::Forbidden, ErrorCode::NotFound]
                )
            }
        }
    });

    let webhook_header = |name: &str, description: &str, schema: Value| json!({"name": name, "in": "header", "required": true, "description": description, "schema": schema});
    let webhooks = json!({
        "imagePublished": {
            "post": {
                "operationId": "imagePublished",
                "tags": ["Callbacks"],
                "summary": "The broker tells a CD endpoint about a new tag (CB-1 to CB-10)",
                "description": "Sent to the subscription's `callbackUrl`. The endpoint verifies the signature in constant time, rejects a timestamp more than 5 minutes off, deduplicates by `webhook-id`, answers within 10 s and upgrades asynchronously.",
                "parameters": [
                    webhook_header(HEADER_ID, "The event id, the same on every attempt (CB-3).", json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"})),
                    webhook_header(HEADER_TIMESTAMP, "The attempt's time, integer seconds since the Unix epoch (CB-3).", json!({"type": "string", "pattern": "^[0-9]{1,18}$"})),
                    webhook_header(HEADER_SIGNATURE, "Space-separated `v1,<base64 HMAC-SHA256 of \"id.timestamp.body\">` entries (CB-3, CB-5).", json!({"type": "string", "pattern": "^v1,[A-Za-z0-9+/=]+( [^ ]+)*$"}))
                ],
                "requestBody": {
                    "required": true,
                    "content": {CONTENT_TYPE: {"schema": event, "example": crate::event::example_event()}}
                },
                "responses": {
                    "2XX": {"description": "Accepted (CB-8); the broker stops retrying."},
                    "400": {"description": "Malformed body (CB-9); permanent."},
                    "401": {"description": "Bad signature or stale timestamp (CB-6); permanent."},
                    "410": {"description": "Unsubscribe me (CB-10)."},
                    "413": {"description": "Body too large (CB-9); permanent."},
                    "415": {"description": "Not `application/cloudevents+json` (CB-9); permanent."},
                    "429": {"description": "Slow down; `Retry-After` is honoured (CB-13)."},
                    "default": {"description": "Other 4xx are permanent except 408 and 409; 5xx and timeouts are retried (CB-14)."}
                }
            }
        }
    });

    let mut error_responses = Map::new();
    for code in ErrorCode::ALL {
        let example = ErrorBody::new(code, error_detail(code));
        error_responses.insert(
            response_name(code),
            json!({
                "description": format!("{} `{}`", code.title(), code.as_str()),
                "content": {"application/json": {"schema": error_body.clone(), "example": example}}
            }),
        );
    }

    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "tagcast broker",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "GA4GH Service Registry 1.0.0 with the tagcast subscription extension",
            "description": "A GA4GH Service Registry (read endpoints as GA4GH, write endpoints as the ELIXIR cloud-registry) whose services may subscribe to container image updates. Normative text: spec/service-api.md (API-n) and spec/callbacks.md (CB-n). Errors use the body of `error.schema.json` (API-13).",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        },
        "servers": [{
            "url": "{scheme}://{host}",
            "description": "A broker deployment.",
            "variables": {
                "scheme": {"default": "https", "enum": ["https", "http"]},
                "host": {"default": "registry.example.org"}
            }
        }],
        "tags": [
            {"name": "GA4GH Service Registry", "description": "Read-only endpoints of GA4GH Service Registry 1.0.0; public."},
            {"name": "Registration (ELIXIR cloud-registry)", "description": "Write endpoints; `Authorization: Bearer <admin token>`."},
            {"name": "Subscriptions", "description": "Status, delivery log and redelivery (tagcast)."},
            {"name": "Inbound registry webhooks", "description": "Where container registries report pushes (tagcast)."},
            {"name": "Callbacks", "description": "What the broker sends to CD endpoints (tagcast)."}
        ],
        "paths": paths,
        "webhooks": webhooks,
        "components": {
            "schemas": c.finish(),
            "responses": error_responses,
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The operator's admin token (API-5). Reads of GA4GH resources need none."
                }
            }
        }
    })
}

fn error_detail(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidRequest => "body: missing field `url` at line 1 column 212",
        ErrorCode::Unauthorized => "missing or wrong Authorization: Bearer token",
        ErrorCode::InvalidSignature => {
            "stale header webhook-timestamp 1649367553: more than 300 s before the verifier's clock 1649367913 (CB-6)"
        }
        ErrorCode::Forbidden => "this token may not write services",
        ErrorCode::NotFound => "no service \"org.example.unknown\"",
        ErrorCode::MethodNotAllowed => "PATCH is not defined for /ga4gh/registry/v1/services",
        ErrorCode::Conflict => "a service \"org.example.cwl-wes.production\" exists; use PUT to replace it",
        ErrorCode::Gone => "this deployment takes no more callbacks (CB-10)",
        ErrorCode::PayloadTooLarge => "the body has 2097152 bytes, at most 1048576 are accepted",
        ErrorCode::UnsupportedMediaType => "Content-Type text/plain is not application/json",
        ErrorCode::InvalidSubscription => {
            "invalid subscription: image docker.io/library/cwl-wes is listed twice (API-6)"
        }
        ErrorCode::CallbackUrlRefused => {
            "callbackUrl \"https://10.0.0.7/tagcast\" resolves to a private address (CB-16)"
        }
        ErrorCode::TooManyRequests => "retry after 30 s",
        ErrorCode::Internal => "internal error; the broker logged it as incident 7f3a9c1e",
        ErrorCode::Unavailable => "the database is not reachable",
    }
}

fn schema_example<T: JsonSchema>() -> Value {
    let schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    schema
        .get("examples")
        .and_then(|e| e.get(0))
        .cloned()
        .unwrap_or(Value::Null)
}
