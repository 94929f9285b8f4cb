//! What the load generator posts: Distribution notification envelopes shaped
//! like the ones `docker-registry` 2.8 sent while `skopeo` pushed an image
//! (`conformance/vectors/registries/distribution-2.8-push.json`, captured on
//! loopback; the fields follow Distribution's `notifications` package:
//! `events[].id`, `timestamp`, `action`, `target.{mediaType, size, digest,
//! length, repository, url, tag}`, `request`, `actor`, `source`). Each
//! envelope is one tagged manifest push, the event that turns into callbacks;
//! a new tag every time, so that every hook is an update.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use serde_json::{Value, json};

/// The media type Distribution sends envelopes with.
pub const CONTENT_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";

/// The captured envelopes; the manifest push is the template.
const CAPTURE: &str = include_str!("../../../conformance/vectors/registries/distribution-2.8-push.json");

/// The registry host every bench image lives on: never contacted, the bench
/// runs the broker with `--verify-digests false`.
pub const REGISTRY: &str = "registry.bench.test:5000";

/// Hands out tags that are new and increasing across the whole run: one
/// second of tag time per hook, from 2011-01-01, so that a later hook for
/// an image is always an update.
#[derive(Debug)]
pub struct Tags {
    next: AtomicU64,
    base: DateTime<Utc>,
}

impl Tags {
    pub fn new() -> Self {
        Self {
            next: AtomicU64::new(0),
            base: Utc
                .with_ymd_and_hms(2011, 1, 1, 0, 0, 0)
                .single()
                .expect("a valid date"),
        }
    }

    /// The next tag, `1.1.0-production-YYMMDD-HHMMSS`.
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let seconds = i64::try_from(n).unwrap_or(i64::MAX);
        let time = self.base + ChronoDuration::seconds(seconds);
        format!("1.1.0-production-{}", time.format("%y%m%d-%H%M%S"))
    }
}

/// Builds envelopes from the captured template.
#[derive(Debug, Clone)]
pub struct Envelopes {
    template: Value,
}

impl Envelopes {
    pub fn new() -> anyhow::Result<Self> {
        let capture: Value = serde_json::from_str(CAPTURE)?;
        let template = capture["requests"]
            .as_array()
            .and_then(|requests| {
                requests
                    .iter()
                    .find(|r| r["body"]["events"][0]["target"]["tag"].is_string())
            })
            .map(|r| r["body"].clone())
            .ok_or_else(|| anyhow::anyhow!("the captured push has no tagged manifest event"))?;
        Ok(Self { template })
    }

    /// One envelope: `repository` (path within [`REGISTRY`]) got `tag`.
    pub fn manifest_push(&self, repository: &str, tag: &str) -> String {
        let mut body = self.template.clone();
        let event = &mut body["events"][0];
        let id = uuid::Uuid::new_v4();
        let digest = format!("sha256:{}", hex_of(id.as_bytes()));
        event["id"] = json!(id.to_string());
        event["timestamp"] = json!(Utc::now().to_rfc3339());
        event["target"]["repository"] = json!(repository);
        event["target"]["digest"] = json!(digest);
        event["target"]["tag"] = json!(tag);
        event["target"]["url"] = json!(format!("http://{REGISTRY}/v2/{repository}/manifests/{digest}"));
        event["request"]["id"] = json!(uuid::Uuid::new_v4().to_string());
        event["request"]["host"] = json!(REGISTRY);
        body.to_string()
    }
}

/// 64 hex digits from 16 random bytes, repeated: a well-formed digest.
fn hex_of(bytes: &[u8]) -> String {
    let half: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{half}{half}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_new_valid_and_increasing() {
        let tags = Tags::new();
        let a = tagcast_spec::Tag::parse(&tags.next()).unwrap();
        let b = tagcast_spec::Tag::parse(&tags.next()).unwrap();
        assert!(a.timestamp() < b.timestamp(), "{a} then {b}");
    }

    #[test]
    fn envelope_keeps_the_captured_shape() {
        let envelopes = Envelopes::new().unwrap();
        let body: Value =
            serde_json::from_str(&envelopes.manifest_push("bench/app", "1.1.0-production-110101-000000")).unwrap();
        let event = &body["events"][0];
        assert_eq!(event["action"], "push");
        assert_eq!(
            event["target"]["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(event["target"]["repository"], "bench/app");
        assert_eq!(event["target"]["tag"], "1.1.0-production-110101-000000");
        tagcast_spec::Digest::parse(event["target"]["digest"].as_str().unwrap()).unwrap();
    }
}
