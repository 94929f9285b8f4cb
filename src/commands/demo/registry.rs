//! The demo's container registry: it sends the notifications that CNCF
//! Distribution (`docker-registry` 2.8) sends for a push — one envelope per
//! blob and one for the tagged manifest, media type
//! `application/vnd.docker.distribution.events.v1+json` — in the shape of
//! `conformance/vectors/registries/distribution-2.8-push.json`, and it
//! answers the part of the OCI distribution API that the broker uses to
//! re-check a tag's digest before delivering (`HEAD
//! /v2/<name>/manifests/<tag>`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::get;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The envelope media type `docker-registry` 2.8 sends.
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";

const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// One push of `repository:tag`: the envelopes, in the order a registry
/// sends them, and the manifest digest.
pub struct Push {
    pub envelopes: Vec<Value>,
    pub digest: String,
}

/// The notifications of pushing `repository:tag` (repository without the
/// registry host, as Distribution names it). The content, and so the
/// digest, is derived from the tag: the same tag pushed twice has the same
/// digest, as a real re-push of the same image would.
pub fn push(host: &str, repository: &str, tag: &str) -> Push {
    let layer = sha256(format!("layer of {repository}:{tag}").as_bytes());
    let config = sha256(format!("config of {repository}:{tag}").as_bytes());
    let manifest = sha256(format!("manifest of {repository}:{tag} {layer} {config}").as_bytes());
    let blob = |digest: &str, size: u64| {
        envelope(event(
            host,
            json!({
                "mediaType": "application/octet-stream",
                "size": size,
                "digest": digest,
                "length": size,
                "repository": repository,
                "url": format!("http://{host}/v2/{repository}/blobs/{digest}"),
            }),
        ))
    };
    let manifest_event = event(
        host,
        json!({
            "mediaType": MANIFEST_MEDIA_TYPE,
            "size": 345,
            "digest": manifest,
            "length": 345,
            "repository": repository,
            "url": format!("http://{host}/v2/{repository}/manifests/{manifest}"),
            "tag": tag,
        }),
    );
    Push {
        envelopes: vec![blob(&layer, 437), blob(&config, 140), envelope(manifest_event)],
        digest: manifest,
    }
}

/// The tags the played registry holds: `name:tag` → manifest digest.
#[derive(Clone, Default)]
pub struct Tags(Arc<Mutex<HashMap<String, String>>>);

impl Tags {
    /// Records that `repository:tag` now points at `digest`.
    pub fn set(&self, repository: &str, tag: &str, digest: &str) {
        let mut tags = self.0.lock().expect("not poisoned");
        tags.insert(format!("{repository}:{tag}"), digest.to_owned());
    }
}

/// The OCI distribution API routes the broker calls: `GET /v2/` and
/// `HEAD`/`GET /v2/<name>/manifests/<tag>`, answering the digest in
/// `Docker-Content-Digest` or 404.
pub fn api(tags: Tags) -> Router {
    Router::new()
        .route("/v2/", get(|| async { StatusCode::OK }))
        .route("/v2/{*rest}", get(manifest))
        .with_state(tags)
}

async fn manifest(State(tags): State<Tags>, Path(rest): Path<String>) -> (StatusCode, HeaderMap) {
    let mut headers = HeaderMap::new();
    let Some((name, tag)) = rest.rsplit_once("/manifests/") else {
        return (StatusCode::NOT_FOUND, headers);
    };
    let digest = tags
        .0
        .lock()
        .expect("not poisoned")
        .get(&format!("{name}:{tag}"))
        .cloned();
    match digest.and_then(|d| HeaderValue::from_str(&d).ok()) {
        Some(digest) => {
            headers.insert("docker-content-digest", digest);
            headers.insert("content-type", HeaderValue::from_static(MANIFEST_MEDIA_TYPE));
            (StatusCode::OK, headers)
        }
        None => (StatusCode::NOT_FOUND, headers),
    }
}

fn sha256(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn envelope(event: Value) -> Value {
    json!({ "events": [event] })
}

fn event(host: &str, target: Value) -> Value {
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
        "action": "push",
        "target": target,
        "request": {
            "id": uuid::Uuid::new_v4().to_string(),
            "addr": "127.0.0.1:40000",
            "host": host,
            "method": "PUT",
            "useragent": "skopeo/1.9.3"
        },
        "actor": {},
        "source": { "addr": host, "instanceID": "7c8f1a5e-9b57-4d0a-9f5e-2d2a3f1c9e11" }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_is_two_blobs_then_the_tagged_manifest() {
        let p = push("localhost:5000", "elixircloud/cwl-wes", "1.1.0-demo-201108-195630");
        assert_eq!(p.envelopes.len(), 3);
        let last = &p.envelopes[2]["events"][0]["target"];
        assert_eq!(last["tag"], "1.1.0-demo-201108-195630");
        assert_eq!(last["digest"], p.digest.as_str());
        assert!(p.envelopes[0]["events"][0]["target"].get("tag").is_none());
        assert!(tagcast_spec::Digest::parse(&p.digest).is_ok());
        let again = push("localhost:5000", "elixircloud/cwl-wes", "1.1.0-demo-201108-195630");
        assert_eq!(again.digest, p.digest, "same tag, same content");
        assert_ne!(again.envelopes[2]["events"][0]["id"], p.envelopes[2]["events"][0]["id"]);
    }
}
