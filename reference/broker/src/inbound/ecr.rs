//! AWS ECR pushes, as EventBridge delivers them through an API destination.
//!
//! ECR has no webhooks: it emits "ECR Image Action" events to EventBridge
//! (https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html),
//! and a rule on `source: aws.ecr`, `detail-type: ECR Image Action` with an
//! API destination target POSTs the event as is:
//! `{"version": "0", "id", "detail-type": "ECR Image Action", "source":
//! "aws.ecr", "account", "time", "region", "resources": [], "detail":
//! {"result": "SUCCESS", "repository-name", "image-digest", "action-type":
//! "PUSH", "image-tag"}}`. `id` is the event id; the registry is
//! `<account>.dkr.ecr.<region>.amazonaws.com`, which must be the hook's.
//! Failed pushes (`result` other than `SUCCESS`), `DELETE` and other ECR
//! events (scans, replication) are acknowledged and ignored.
//!
//! Authentication: the API destination's connection adds an API-key header
//! (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-target-connection-auth.html);
//! `tagcast broker hook-config --kind ecr` names it `Authorization` with the
//! value `Bearer <hook token>`, which the broker requires when
//! `--hook-token` is set, compared in constant time.

use axum::http::HeaderMap;
use serde::Deserialize;
use tagcast_spec::subscription::RegistryKind;

use super::{Adapter, HookAuth, Push, Rejection};
use crate::store::{Disposition, HookSource, NewInboundEvent};

/// The `ecr` adapter.
#[derive(Debug, Clone, Copy)]
pub struct Ecr;

/// An EventBridge event.
#[derive(Debug, Deserialize)]
pub struct Event {
    id: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    account: String,
    region: String,
    detail: serde_json::Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ImageAction {
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    repository_name: Option<String>,
    #[serde(default)]
    image_digest: Option<String>,
    #[serde(default)]
    action_type: Option<String>,
    #[serde(default)]
    image_tag: Option<String>,
}

impl Adapter for Ecr {
    type Payload = Event;

    fn kind(&self) -> RegistryKind {
        RegistryKind::Ecr
    }

    fn parse(&self, _headers: &HeaderMap, body: &[u8]) -> Result<Event, String> {
        super::json(body).map_err(|err| {
            format!("expected an EventBridge event (id, detail-type, source, account, region, detail): {err}")
        })
    }

    fn authenticate(
        &self,
        auth: &HookAuth,
        _source: &HookSource,
        headers: &HeaderMap,
        _body: &[u8],
        _payload: Option<&Event>,
    ) -> Result<(), Rejection> {
        auth.check_bearer(headers)
    }

    fn normalize(&self, source: &HookSource, event: Event) -> Vec<NewInboundEvent> {
        let ignored = |reason: String| {
            vec![NewInboundEvent {
                kind: source.kind.clone(),
                registry: source.registry.clone(),
                source_event_id: Some(event.id.clone()),
                repository: None,
                tag: None,
                digest: None,
                media_type: None,
                is_index: false,
                disposition: Disposition::Ignored(reason),
            }]
        };
        if event.source != "aws.ecr" || event.detail_type != "ECR Image Action" {
            return ignored(format!(
                "{} event {:?} is not an ECR Image Action",
                event.source, event.detail_type
            ));
        }
        let registry = format!("{}.dkr.ecr.{}.amazonaws.com", event.account, event.region);
        if !registry.eq_ignore_ascii_case(&source.registry) {
            return ignored(format!(
                "the event is about the registry {registry}, not the hook's registry {}",
                source.registry
            ));
        }
        let detail: ImageAction = super::json_value(event.detail.clone()).unwrap_or_default();
        if let Some(result) = detail.result.as_deref().filter(|r| *r != "SUCCESS") {
            return ignored(format!("the image action did not succeed (result {result:?})"));
        }
        let action = match detail.action_type.as_deref() {
            Some("PUSH") => "push".to_owned(),
            Some(other) => other.to_ascii_lowercase(),
            None => String::new(),
        };
        vec![
            Push {
                event_id: Some(event.id),
                action,
                repository: detail.repository_name,
                tag: detail.image_tag.filter(|t| !t.is_empty()),
                digest: detail.image_digest.filter(|d| !d.is_empty()),
                media_type: None,
            }
            .normalize(source),
        ]
    }
}
