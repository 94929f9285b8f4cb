//! The Service API resources (API-1 to API-14).

use std::time::Duration;

use serde_json::json;
use tagcast_spec::delivery::{AttemptOutcome, MAX_ATTEMPTS, RETRY_SCHEDULE, classify, next_delay};
use tagcast_spec::error_body::{ErrorBody, ErrorCode};
use tagcast_spec::service::{Service, ServiceRegistration, ServiceType};
use tagcast_spec::subscription::{RegistryKind, Subscription, SubscriptionError};

fn registration() -> serde_json::Value {
    json!({
        "id": "org.example.cwl-wes.production",
        "name": "cwl-WES",
        "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
        "organization": {"name": "Example University", "url": "https://www.example.org"},
        "version": "1.1.0-production-201108-195630",
        "url": "https://wes.example.org/ga4gh/wes/v1",
        "x-deployment": {"cluster": "k8s-1"},
        "subscription": {
            "images": ["elixircloud/cwl-wes"],
            "stage": "production",
            "callbackUrl": "https://cd.example.org/tagcast",
            "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
        }
    })
}

#[test]
fn a_service_keeps_unknown_top_level_properties() {
    let mut value = registration();
    value.as_object_mut().unwrap().remove("url");
    let service: Service = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(service.service_type.artifact, "wes");
    assert_eq!(service.extra["x-deployment"], json!({"cluster": "k8s-1"}));
    assert!(
        service.extra.contains_key("subscription"),
        "the extension is one more top-level property"
    );
    assert_eq!(serde_json::to_value(&service).unwrap(), value);
}

#[test]
fn a_registration_splits_service_url_and_subscription() {
    let reg: ServiceRegistration = serde_json::from_value(registration()).unwrap();
    assert_eq!(reg.service.url, "https://wes.example.org/ga4gh/wes/v1");
    assert!(!reg.service.service.extra.contains_key("url"));
    assert!(!reg.service.service.extra.contains_key("subscription"));
    let sub = reg.subscription.as_ref().unwrap();
    assert_eq!(sub.images[0].to_string(), "docker.io/elixircloud/cwl-wes");
    assert_eq!(
        sub.requirement(&reg.service.service.service_type).unwrap().to_string(),
        "^1.1.0"
    );
    sub.check().unwrap();
    // Written back, the repository is normalized and nothing else changes.
    let mut expected = registration();
    expected["subscription"]["images"] = json!(["docker.io/elixircloud/cwl-wes"]);
    assert_eq!(serde_json::to_value(&reg).unwrap(), expected);
}

#[test]
fn a_registration_without_required_fields_is_rejected() {
    for field in ["id", "name", "type", "organization", "version", "url"] {
        let mut value = registration();
        value.as_object_mut().unwrap().remove(field);
        let err = serde_json::from_value::<ServiceRegistration>(value).unwrap_err();
        assert_eq!(err.to_string(), format!("missing field `{field}`"));
    }
}

fn subscription(edit: impl FnOnce(&mut serde_json::Value)) -> Subscription {
    let mut value = registration()["subscription"].clone();
    edit(&mut value);
    serde_json::from_value(value).unwrap()
}

#[test]
fn subscription_rules_beyond_the_schema() {
    let cases: Vec<(Subscription, &str)> = vec![
        (
            subscription(|v| v["images"] = json!([])),
            "invalid subscription: images must list at least one repository (API-6)",
        ),
        (
            subscription(|v| v["images"] = json!(["cwl-wes", "docker.io/library/cwl-wes"])),
            "invalid subscription: image docker.io/library/cwl-wes is listed twice (API-6)",
        ),
        (
            subscription(|v| v["callbackUrl"] = json!("ftp://cd.example.org/")),
            r#"invalid subscription: callbackUrl "ftp://cd.example.org/": it must be an absolute http or https URL (API-6)"#,
        ),
        (
            subscription(|v| v["callbackUrl"] = json!("https://user:pw@cd.example.org/")),
            r#"invalid subscription: callbackUrl "https://user:pw@cd.example.org/": it must not carry credentials (API-6)"#,
        ),
        (
            subscription(|v| v["images"] = json!(["harbor.example.org/wes/cwl-wes"])),
            "invalid subscription: image harbor.example.org/wes/cwl-wes is on a host that does not imply a registry kind; give registry.kind (API-9)",
        ),
    ];
    for (sub, message) in cases {
        let err = sub.check().unwrap_err();
        assert_eq!(err.to_string(), message);
        // An error body's detail and requirement name the same rule.
        assert!(message.ends_with(&format!("({})", err.requirement())), "{message}");
    }
    let with_kind = subscription(|v| {
        v["images"] = json!(["harbor.example.org/wes/cwl-wes"]);
        v["registry"] = json!({"kind": "harbor"});
    });
    with_kind.check().unwrap();

    let tesk = ServiceType {
        group: "org.ga4gh".into(),
        artifact: "TES".into(),
        version: "v1.0".into(),
    };
    assert_eq!(
        subscription(|_| {}).requirement(&tesk).unwrap_err(),
        SubscriptionError::NoDefaultRequirement { version: "v1.0".into() }
    );
    let err = subscription(|_| {}).requirement(&tesk).unwrap_err();
    assert!(err.to_string().ends_with(&format!("({})", err.requirement())), "{err}");
}

#[test]
fn registry_kinds() {
    let names: Vec<String> = RegistryKind::ALL.iter().map(|k| k.to_string()).collect();
    assert_eq!(
        names,
        [
            "distribution",
            "dockerhub",
            "harbor",
            "quay",
            "ghcr",
            "gitea",
            "acr",
            "artifactory",
            "ecr",
            "gar",
            "generic"
        ]
    );
    for kind in RegistryKind::ALL {
        assert_eq!(kind.as_str().parse::<RegistryKind>().unwrap(), kind);
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
    }
    assert_eq!(
        "docker".parse::<RegistryKind>().unwrap_err().to_string(),
        r#"invalid registry kind "docker": it must be one of distribution, dockerhub, harbor, quay, ghcr, gitea, acr, artifactory, ecr, gar, generic (API-9)"#
    );
}

#[test]
fn status_codes_classify_attempts() {
    let table = [
        (200, AttemptOutcome::Success),
        (202, AttemptOutcome::Success),
        (204, AttemptOutcome::Success),
        (301, AttemptOutcome::Retry),
        (400, AttemptOutcome::Permanent),
        (401, AttemptOutcome::Permanent),
        (404, AttemptOutcome::Permanent),
        (408, AttemptOutcome::Retry),
        (409, AttemptOutcome::Retry),
        (410, AttemptOutcome::Gone),
        (413, AttemptOutcome::Permanent),
        (429, AttemptOutcome::Retry),
        (500, AttemptOutcome::Retry),
        (503, AttemptOutcome::Retry),
    ];
    for (status, outcome) in table {
        assert_eq!(classify(status), outcome, "{status}");
    }
}

#[test]
fn the_retry_schedule_is_the_contracts() {
    let secs: Vec<u64> = RETRY_SCHEDULE.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [5, 300, 1800, 7200, 18000, 36000, 36000]);
    assert_eq!(MAX_ATTEMPTS, 8);
    for (failed, base) in (1..).zip(RETRY_SCHEDULE) {
        assert_eq!(next_delay(failed, 0.0, None), Some(base));
        assert_eq!(next_delay(failed, -1.0, None), Some(base.mul_f64(0.8)));
        assert_eq!(next_delay(failed, 1.0, None), Some(base.mul_f64(1.2)));
        assert_eq!(
            next_delay(failed, 7.0, None),
            Some(base.mul_f64(1.2)),
            "jitter is clamped"
        );
    }
    assert_eq!(next_delay(0, 0.0, None), None);
    assert_eq!(next_delay(8, 0.0, None), None);
    // Retry-After delays, but never beyond the longest step and never earlier than the schedule.
    assert_eq!(
        next_delay(1, 0.0, Some(Duration::from_secs(60))),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        next_delay(3, 0.0, Some(Duration::from_secs(60))),
        Some(Duration::from_secs(1800))
    );
    assert_eq!(
        next_delay(1, 0.0, Some(Duration::from_secs(86_400))),
        Some(Duration::from_secs(36_000))
    );
}

#[test]
fn error_bodies_are_ga4gh_errors_with_a_code() {
    for code in ErrorCode::ALL {
        let body = ErrorBody::new(code, "x");
        let value = serde_json::to_value(&body).unwrap();
        assert_eq!(value["status"], json!(code.status()));
        assert_eq!(value["code"], json!(code.as_str()));
        assert!(value["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert_eq!(serde_json::from_value::<ErrorBody>(value).unwrap(), body);
    }
    let body =
        ErrorBody::new(ErrorCode::CallbackUrlRefused, "callbackUrl resolves to 10.0.0.7").with_requirement("CB-16");
    assert_eq!(
        body.to_string(),
        "422 Unprocessable Content (callback_url_refused): callbackUrl resolves to 10.0.0.7"
    );
}
