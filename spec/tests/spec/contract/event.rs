//! The callback event (CB-1, CB-2).

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use tagcast_spec::event::{
    CONTENT_TYPE, CloudEvent, EventError, IMAGE_PUBLISHED_DATA_SCHEMA, IMAGE_PUBLISHED_TYPE, ImagePublished,
};
use tagcast_spec::schema::BASE_URI;
use tagcast_spec::{Digest, Repository, Stage, Tag};

pub(crate) const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

pub(crate) fn data(previous: Option<&str>) -> ImagePublished {
    ImagePublished::new(
        "org.example.cwl-wes",
        Repository::parse("elixircloud/cwl-wes").unwrap(),
        Tag::parse("1.1-production-201108-195630").unwrap(),
        Digest::parse(DIGEST).unwrap(),
        previous.map(|t| Tag::parse(t).unwrap()),
    )
}

pub(crate) fn event() -> CloudEvent<ImagePublished> {
    CloudEvent::new(
        "evt_01JDQ4Z8Y1S0V2W3X4Y5Z6A7B8",
        "https://registry.example.org/ga4gh/registry/v1",
        Utc.with_ymd_and_hms(2020, 11, 8, 19, 57, 2).unwrap(),
        data(Some("1.1.0-production-201001-120000")),
    )
}

#[test]
fn constants() {
    assert_eq!(IMAGE_PUBLISHED_TYPE, "org.elixir-cloud.tagcast.image.published.v1");
    assert_eq!(CONTENT_TYPE, "application/cloudevents+json");
    assert!(IMAGE_PUBLISHED_DATA_SCHEMA.starts_with(BASE_URI));
}

#[test]
fn the_constructor_derives_reference_version_stage_and_time() {
    let data = data(None);
    assert_eq!(
        data.tag.to_string(),
        "1.1-production-201108-195630",
        "the tag stays as pushed"
    );
    assert_eq!(data.api_version.to_string(), "1.1.0");
    assert_eq!(data.stage, Stage::Production);
    assert_eq!(
        data.reference.to_string(),
        format!("docker.io/elixircloud/cwl-wes:1.1-production-201108-195630@{DIGEST}")
    );
    assert_eq!(data.timestamp, Utc.with_ymd_and_hms(2020, 11, 8, 19, 56, 30).unwrap());
    data.check().unwrap();
}

#[test]
fn the_envelope_serializes_as_structured_cloudevent() {
    let value = serde_json::to_value(event()).unwrap();
    assert_eq!(
        value,
        json!({
            "specversion": "1.0",
            "id": "evt_01JDQ4Z8Y1S0V2W3X4Y5Z6A7B8",
            "source": "https://registry.example.org/ga4gh/registry/v1",
            "type": "org.elixir-cloud.tagcast.image.published.v1",
            "subject": format!("docker.io/elixircloud/cwl-wes:1.1-production-201108-195630@{DIGEST}"),
            "time": "2020-11-08T19:57:02Z",
            "datacontenttype": "application/json",
            "dataschema": IMAGE_PUBLISHED_DATA_SCHEMA,
            "data": {
                "serviceId": "org.example.cwl-wes",
                "image": "docker.io/elixircloud/cwl-wes",
                "tag": "1.1-production-201108-195630",
                "digest": DIGEST,
                "reference": format!("docker.io/elixircloud/cwl-wes:1.1-production-201108-195630@{DIGEST}"),
                "apiVersion": "1.1.0",
                "stage": "production",
                "timestamp": "2020-11-08T19:56:30Z",
                "previousTag": "1.1.0-production-201001-120000"
            }
        })
    );
    let back: CloudEvent<ImagePublished> = serde_json::from_value(value).unwrap();
    assert_eq!(back, event());
}

fn parse_with(edit: impl FnOnce(&mut Value)) -> String {
    let mut value = serde_json::to_value(event()).unwrap();
    edit(&mut value);
    serde_json::from_value::<CloudEvent<ImagePublished>>(value)
        .unwrap_err()
        .to_string()
}

#[test]
fn parsing_rejects_what_the_contract_forbids() {
    type Edit = fn(&mut Value);
    let cases: Vec<(Edit, &str)> = vec![
        (
            |v| v["specversion"] = json!("0.3"),
            r#"invalid event: attribute specversion is "0.3", it must be "1.0" (CB-1)"#,
        ),
        (
            |v| v["type"] = json!("org.elixir-cloud.tagcast.image.published.v2"),
            r#"invalid event: attribute type is "org.elixir-cloud.tagcast.image.published.v2", it must be "org.elixir-cloud.tagcast.image.published.v1" (CB-1)"#,
        ),
        (
            |v| v["datacontenttype"] = json!("text/plain"),
            r#"invalid event: attribute datacontenttype is "text/plain", it must be "application/json" (CB-1)"#,
        ),
        (
            |v| v["id"] = json!("evt.1"),
            r#"invalid event: id "evt.1" must be 1 to 128 characters of A-Z a-z 0-9 _ - (CB-1)"#,
        ),
        (
            |v| v["data"]["apiVersion"] = json!("1.2.0"),
            r#"invalid event: apiVersion is "1.2.0", but image, tag and digest make it "1.1.0" (CB-2)"#,
        ),
        (
            |v| v["data"]["stage"] = json!("demo"),
            r#"invalid event: stage is "demo", but image, tag and digest make it "production" (CB-2)"#,
        ),
        (
            |v| v["data"]["timestamp"] = json!("2020-11-08T19:56:31Z"),
            r#"invalid event: timestamp is "2020-11-08T19:56:31Z", but image, tag and digest make it "2020-11-08T19:56:30Z" (CB-2)"#,
        ),
        (
            |v| v["data"]["previousTag"] = json!("1.1.0-production-201108-195630"),
            "invalid event: tag 1.1-production-201108-195630 is not newer than previousTag 1.1.0-production-201108-195630 of the same stage (CB-15)",
        ),
        (
            |v| v["data"]["apiVersion"] = json!("1.1"),
            r#"invalid apiVersion "1.1": it must be the canonical three-part form 1.1.0"#,
        ),
        (
            |v| v["subject"] = json!("docker.io/elixircloud/cwl-wes:1.1-production-201108-195630"),
            concat!(
                r#"invalid event: subject is "docker.io/elixircloud/cwl-wes:1.1-production-201108-195630", "#,
                r#"but image, tag and digest make it "docker.io/elixircloud/cwl-wes:1.1-production-201108-195630"#,
                r#"@sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b" (CB-2)"#
            ),
        ),
    ];
    for (edit, message) in cases {
        assert_eq!(parse_with(edit), message);
    }
    let reference = EventError::Derived {
        field: "reference",
        found: "x".into(),
        expected: "y".into(),
    };
    assert_eq!(
        reference.to_string(),
        r#"invalid event: reference is "x", but image, tag and digest make it "y" (CB-2)"#
    );
}

#[test]
fn a_previous_tag_of_another_stage_is_rejected() {
    let data = data(Some("1.0.0-demo-190101-000000"));
    assert!(matches!(data.check(), Err(EventError::NotNewer { .. })));
}
