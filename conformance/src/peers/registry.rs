//! An OCI registry reduced to what the `registry` target exercises — a
//! bearer-token challenge, tag listing with `Link` pagination, monolithic
//! blob uploads, manifests, deletes and Distribution notifications — with
//! switches that break one rule each. In memory; a test peer.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The user name the token endpoint accepts.
pub const USERNAME: &str = "conformance";
/// The password the token endpoint accepts.
pub const PASSWORD: &str = "conformance-password";

const TOKEN: &str = "peer-registry-token";

/// The rule a broken registry breaks; `None` keeps them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Flaw {
    None,
    /// Answers 401 without a challenge.
    NoChallenge,
    /// Its token endpoint fails.
    BrokenTokenEndpoint,
    /// Ignores `n` and sends every tag in one page.
    IgnoresPageSize,
    /// Sends the first page and no `Link`.
    DropsLink,
    /// Does not list what was pushed.
    HidesPushedTags,
    /// `HEAD` answers another digest.
    WrongDigest,
    /// Refuses the manifest push.
    RefusesManifests,
    /// Sends no notifications.
    NoNotifications,
    /// Sends notifications as `application/json`.
    PlainJsonNotifications,
    /// Answers 500 to a delete.
    DeleteFails,
    /// Names the repository in a tag list by its last component only.
    MisnamesList,
    /// Serves the first seeded tag with another manifest than the one it
    /// was seeded with before (a tag moved since an earlier run, TAG-12).
    MovesTag,
    /// Follows each push notification with a second one naming the same
    /// tag with another digest (TAG-12).
    NotifiesMovedTag,
}

#[derive(Default)]
struct Store {
    blobs: HashMap<String, Vec<u8>>,
    manifests: HashMap<String, Vec<u8>>,
    tags: BTreeMap<String, String>,
    pushed: Vec<String>,
}

#[derive(Clone)]
struct Peer {
    flaw: Flaw,
    base: Arc<Mutex<String>>,
    notify: Option<String>,
    store: Arc<Mutex<Store>>,
}

/// Starts a registry holding `repository` with `tags` (each pointing to a
/// manifest of its own); notifications go to `notify` when given.
pub async fn start(flaw: Flaw, repository: &str, tags: &[&str], notify: Option<String>) -> SocketAddr {
    let mut store = Store::default();
    for (i, tag) in tags.iter().enumerate() {
        let moved = if i == 0 && flaw == Flaw::MovesTag { " moved" } else { "" };
        let manifest = format!("{{\"schemaVersion\":2,\"seed\":\"{repository}:{tag}{moved}\"}}").into_bytes();
        let digest = digest(&manifest);
        store.manifests.insert(digest.clone(), manifest);
        store.tags.insert((*tag).to_owned(), digest);
    }
    let peer = Peer {
        flaw,
        base: Arc::default(),
        notify,
        store: Arc::new(Mutex::new(store)),
    };
    let app = Router::new()
        .route("/token", get(token))
        .route("/v2/", get(root))
        .route("/v2/{*path}", any(api))
        .with_state(peer.clone());
    let addr = super::serve(app).await;
    *peer.base.lock().unwrap() = format!("http://{addr}");
    addr
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn challenge(peer: &Peer) -> Response {
    if peer.flaw == Flaw::NoChallenge {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let base = peer.base.lock().unwrap().clone();
    (
        StatusCode::UNAUTHORIZED,
        [(
            "www-authenticate",
            format!(r#"Bearer realm="{base}/token",service="peer-registry",scope="repository:*:pull,push""#),
        )],
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

async fn token(State(peer): State<Peer>, headers: HeaderMap) -> Response {
    use base64::Engine as _;
    if peer.flaw == Flaw::BrokenTokenEndpoint {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:{PASSWORD}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(json!({ "token": TOKEN, "expires_in": 300 })).into_response()
}

async fn root(State(peer): State<Peer>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return challenge(&peer);
    }
    axum::Json(json!({})).into_response()
}

async fn api(
    State(peer): State<Peer>,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return challenge(&peer);
    }
    if let Some(repository) = path.strip_suffix("/tags/list") {
        return list(&peer, repository, &query);
    }
    if let Some((repository, reference)) = path.rsplit_once("/manifests/") {
        return manifest(&peer, &method, repository, reference, body).await;
    }
    if let Some((repository, rest)) = path.split_once("/blobs/uploads/") {
        return match method {
            Method::POST => {
                let base = peer.base.lock().unwrap().clone();
                (
                    StatusCode::ACCEPTED,
                    [(
                        "location",
                        format!("{base}/v2/{repository}/blobs/uploads/{:x}", rand::random::<u64>()),
                    )],
                )
                    .into_response()
            }
            Method::PUT if !rest.is_empty() => {
                let Some(expected) = query.get("digest") else {
                    return StatusCode::BAD_REQUEST.into_response();
                };
                if digest(&body) != *expected {
                    return StatusCode::BAD_REQUEST.into_response();
                }
                peer.store.lock().unwrap().blobs.insert(expected.clone(), body.to_vec());
                StatusCode::CREATED.into_response()
            }
            _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        };
    }
    StatusCode::NOT_FOUND.into_response()
}

fn list(peer: &Peer, repository: &str, query: &HashMap<String, String>) -> Response {
    let store = peer.store.lock().unwrap();
    let all: Vec<&String> = store
        .tags
        .keys()
        .filter(|t| peer.flaw != Flaw::HidesPushedTags || !store.pushed.contains(t))
        .collect();
    let n = query.get("n").and_then(|n| n.parse::<usize>().ok());
    let last = query.get("last");
    let after: Vec<&String> = all.into_iter().filter(|t| last.is_none_or(|l| *t > l)).collect();
    let (page, more) = match n {
        Some(n) if peer.flaw != Flaw::IgnoresPageSize => {
            (after.iter().take(n).copied().collect::<Vec<_>>(), after.len() > n)
        }
        _ => (after, false),
    };
    let name = match peer.flaw {
        Flaw::MisnamesList => repository.rsplit('/').next().unwrap_or(repository),
        _ => repository,
    };
    let body = axum::Json(json!({ "name": name, "tags": page }));
    match (more, page.last(), n) {
        (true, Some(last), Some(n)) if peer.flaw != Flaw::DropsLink => (
            [(
                "link",
                format!("</v2/{repository}/tags/list?n={n}&last={last}>; rel=\"next\""),
            )],
            body,
        )
            .into_response(),
        _ => body.into_response(),
    }
}

async fn manifest(peer: &Peer, method: &Method, repository: &str, reference: &str, body: Bytes) -> Response {
    match *method {
        Method::GET | Method::HEAD => {
            let store = peer.store.lock().unwrap();
            let digest = store
                .tags
                .get(reference)
                .cloned()
                .unwrap_or_else(|| reference.to_owned());
            let Some(manifest) = store.manifests.get(&digest) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            let shown = if peer.flaw == Flaw::WrongDigest {
                self::digest(b"another")
            } else {
                digest
            };
            (
                StatusCode::OK,
                [
                    ("docker-content-digest", shown),
                    ("content-type", super::super::oci::MANIFEST.to_owned()),
                ],
                manifest.clone(),
            )
                .into_response()
        }
        Method::PUT => {
            if peer.flaw == Flaw::RefusesManifests {
                return StatusCode::BAD_REQUEST.into_response();
            }
            let digest = digest(&body);
            {
                let mut store = peer.store.lock().unwrap();
                store.manifests.insert(digest.clone(), body.to_vec());
                store.tags.insert(reference.to_owned(), digest.clone());
                store.pushed.push(reference.to_owned());
            }
            notify(peer, repository, reference, &digest, body.len()).await;
            (StatusCode::CREATED, [("docker-content-digest", digest)]).into_response()
        }
        Method::DELETE => {
            if peer.flaw == Flaw::DeleteFails {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            let mut store = peer.store.lock().unwrap();
            store.manifests.remove(reference);
            store.tags.retain(|_, d| d != reference);
            StatusCode::ACCEPTED.into_response()
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

async fn notify(peer: &Peer, repository: &str, tag: &str, digest: &str, size: usize) {
    let Some(url) = &peer.notify else { return };
    if peer.flaw == Flaw::NoNotifications {
        return;
    }
    let host = peer.base.lock().unwrap().trim_start_matches("http://").to_owned();
    let event: Value = json!({
        "id": format!("{:x}", rand::random::<u64>()),
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "action": "push",
        "target": {
            "mediaType": super::super::oci::MANIFEST, "size": size, "digest": digest, "length": size,
            "repository": repository, "url": format!("http://{host}/v2/{repository}/manifests/{digest}"), "tag": tag,
        },
        "request": { "host": host, "method": "PUT" },
        "actor": {},
        "source": { "addr": host },
    });
    let content_type = if peer.flaw == Flaw::PlainJsonNotifications {
        "application/json"
    } else {
        "application/vnd.docker.distribution.events.v1+json"
    };
    let mut envelopes = vec![json!({ "events": [event.clone()] })];
    if peer.flaw == Flaw::NotifiesMovedTag {
        let mut moved = event;
        moved["id"] = json!(format!("{:x}", rand::random::<u64>()));
        moved["target"]["digest"] = json!(self::digest(b"moved"));
        envelopes.push(json!({ "events": [moved] }));
    }
    for body in envelopes {
        let _ = reqwest::Client::new()
            .post(url)
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await;
    }
}
