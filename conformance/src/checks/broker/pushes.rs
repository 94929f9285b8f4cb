//! The runner as the container registry: pushes through the `generic` hook
//! (signed with the hook's secret), through a wrong token, and through the
//! `distribution` hook.

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};
use tagcast_spec::Tag;
use tagcast_spec::webhook;
use url::Url;

use super::verdicts::digest_of;
use super::{Push, Run};
use crate::exchange::Request;

impl Run<'_> {
    pub(super) async fn push_generic(&self, id: &str, tag: &Tag) -> Result<Push, String> {
        self.push_generic_as(id, tag, false).await
    }

    /// A push through the generic hook; `forged`: the registry API the
    /// runner serves says the tag points to another digest.
    pub(super) async fn push_generic_as(&self, id: &str, tag: &Tag, forged: bool) -> Result<Push, String> {
        let (url, secret) = self.generic_hook.clone().ok_or("no generic hook")?;
        let id = format!("{id}-{}", self.run);
        let digest = digest_of(&format!("{id}{tag}"));
        let actual = if forged {
            digest_of(&format!("actual{id}{tag}"))
        } else {
            digest.clone()
        };
        self.receiver.set_manifest("tagcast/app", &tag.to_string(), &actual);
        let body = serde_json::to_vec(&json!({
            "id": id,
            "action": "push",
            "repository": format!("{}/tagcast/app", self.generic_registry),
            "tag": tag.to_string(),
            "digest": digest,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }))
        .expect("JSON serializes");
        let timestamp = Utc::now().timestamp();
        let request = Request::new(Method::POST, url.parse().map_err(|e| format!("hook URL {url:?}: {e}"))?)
            .header("content-type", "application/json")
            .header(webhook::HEADER_ID, id.clone())
            .header(webhook::HEADER_TIMESTAMP, timestamp.to_string())
            .header(webhook::HEADER_SIGNATURE, webhook::sign(&secret, &id, timestamp, &body))
            .body(body);
        let response = request
            .send(&self.client)
            .await
            .map_err(|e| format!("the generic hook did not answer: {e}"))?;
        if !response.status.is_success() {
            return Err(format!(
                "the generic hook answered {} to a signed push of {tag}: {}",
                response.status,
                response.describe()
            ));
        }
        Ok(Push { tag: *tag, digest })
    }

    pub(super) async fn push_wrong_token(&self, id: &str, tag: &Tag) -> Result<(String, u16, String, Push), String> {
        let (url, secret) = self.generic_hook.clone().ok_or("no generic hook")?;
        let wrong = match url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{}", digest_of(&self.run).trim_start_matches("sha256:")),
            None => return Err(format!("hook URL {url:?} has no token")),
        };
        let id = format!("{id}-{}", self.run);
        let digest = digest_of(&id);
        let body = serde_json::to_vec(&json!({
            "id": id, "action": "push",
            "repository": format!("{}/tagcast/app", self.generic_registry),
            "tag": tag.to_string(), "digest": digest.clone(),
            "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }))
        .expect("JSON serializes");
        let timestamp = Utc::now().timestamp();
        let request = Request::new(Method::POST, wrong.parse().map_err(|e| format!("{e}"))?)
            .header("content-type", "application/json")
            .header(webhook::HEADER_ID, id.clone())
            .header(webhook::HEADER_TIMESTAMP, timestamp.to_string())
            .header(webhook::HEADER_SIGNATURE, webhook::sign(&secret, &id, timestamp, &body))
            .body(body);
        let response = request
            .send(&self.client)
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        Ok((
            request.describe(),
            response.status.as_u16(),
            crate::exchange::excerpt(&String::from_utf8_lossy(&response.body)),
            Push { tag: *tag, digest },
        ))
    }

    pub(super) async fn push_distribution(&self, tag: &Tag) -> Result<Push, String> {
        let url = self.distribution_hook.clone().ok_or("no distribution hook")?;
        let url: Url = url.parse().map_err(|e| format!("hook URL {url:?}: {e}"))?;
        let registry = &self.distribution_registry;
        let blob = digest_of(&format!("blob{}", self.run));
        let manifest = digest_of(&format!("manifest{tag}{}", self.run));
        let event = |media_type: &str, digest: &str, tag: Option<&Tag>, kind: &str| {
            let mut target = json!({
                "mediaType": media_type, "size": 437, "digest": digest, "length": 437,
                "repository": "tagcast/app",
                "url": format!("http://{registry}/v2/tagcast/app/{kind}/{digest}"),
            });
            if let Some(tag) = tag {
                target["tag"] = Value::String(tag.to_string());
            }
            json!({ "events": [{
                "id": uuid::Uuid::new_v4().to_string(),
                "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                "action": "push",
                "target": target,
                "request": { "id": uuid::Uuid::new_v4().to_string(), "addr": "127.0.0.1:51156", "host": registry, "method": "PUT", "useragent": "tagcast-conformance" },
                "actor": {},
                "source": { "addr": "conformance:5000", "instanceID": uuid::Uuid::new_v4().to_string() }
            }]})
        };
        for envelope in [
            event("application/octet-stream", &blob, None, "blobs"),
            event(
                "application/vnd.oci.image.manifest.v1+json",
                &manifest,
                Some(tag),
                "manifests",
            ),
        ] {
            let request = Request::new(Method::POST, url.clone())
                .header("content-type", "application/vnd.docker.distribution.events.v1+json")
                .body(serde_json::to_vec(&envelope).expect("JSON serializes"));
            let response = request
                .send(&self.client)
                .await
                .map_err(|e| format!("the distribution hook did not answer: {e}"))?;
            if !response.status.is_success() {
                return Err(format!(
                    "the distribution hook answered {}: {}",
                    response.status,
                    response.describe()
                ));
            }
        }
        Ok(Push {
            tag: *tag,
            digest: manifest,
        })
    }
}
