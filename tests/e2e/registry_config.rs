//! The broker's registry configuration against a real container registry,
//! Debian's `docker-registry` (CNCF Distribution 2.8):
//! - `tagcast broker hook-config --kind distribution` output pasted into the
//!   registry's configuration makes its pushes arrive, with the hook token;
//! - a tag event without a digest (what Docker Hub, Quay and Gitea send) is
//!   delivered with the digest the registry resolves, with `[[registries]]`
//!   pointing `docker.io` at the real registry; a tag never pushed delivers
//!   nothing.
//!
//! The broker runs in this process on a listener bound to port 0; images
//! are pushed with the registry's HTTP API (blob uploads, manifest PUT).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tagcast_broker::registries::Registry;
use tagcast_spec::subscription::RegistryKind;

use crate::support::{DockerRegistry, stderr, stdout, tagcast};

const ADMIN: &str = "test-admin-token-0123456789";
const HOOK_TOKEN: &str = "hook-token-0123456789abcdef";
const TAG: &str = "1.1.0-production-201108-195630";
const NEVER: &str = "1.1.1-production-201201-000000";

/// A broker in this process; stopped when dropped.
struct Broker {
    url: String,
    state: tagcast_broker::AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn broker(tweak: impl FnOnce(&mut tagcast_broker::Config)) -> Broker {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = tagcast_broker::Config::for_tests();
    config.listen = addr;
    config.public_url = format!("http://{addr}");
    config.admin_token = Some(ADMIN.into());
    config.verify_grace = Duration::from_secs(1);
    tweak(&mut config);
    let store = tagcast_broker::store::open("sqlite::memory:", &tagcast_broker::keys::Keys::ephemeral())
        .await
        .unwrap();
    let started = tagcast_broker::start(store, config).await.unwrap();
    let state = started.state.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(tagcast_broker::run(listener, started.state, async move {
        let _ = stopped.await;
    }));
    Broker {
        url: format!("http://{addr}"),
        state,
        stop: Some(stop),
    }
}

/// Records the callbacks it receives.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Value>>>,
    url: String,
}

async fn receiver() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = Receiver {
        url: format!("http://{}/callback", listener.local_addr().unwrap()),
        ..Receiver::default()
    };
    let got = receiver.got.clone();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::post(move |body: String| {
            let got = got.clone();
            async move {
                got.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    receiver
}

impl Receiver {
    fn received(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }
}

/// Subscribes `image`; the answer.
async fn subscribe(http: &reqwest::Client, broker: &Broker, image: &str, callback: &str) -> Value {
    let mut subscription = json!({"images": [image], "stage": "production", "callbackUrl": callback});
    if !image.starts_with("docker.io/") {
        subscription["registry"] = json!({"kind": "distribution"});
    }
    let response = http
        .post(format!("{}/ga4gh/registry/v1/services", broker.url))
        .bearer_auth(ADMIN)
        .json(&json!({
            "id": "org.example.wes",
            "name": "WES",
            "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
            "organization": {"name": "Example", "url": "https://example.org"},
            "version": "1.0.0",
            "url": "https://wes.example.org/ga4gh/wes/v1",
            "subscription": subscription
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Uploads a blob (POST, then PUT with the digest) and returns its descriptor.
async fn upload(
    http: &reqwest::Client,
    registry: SocketAddr,
    repository: &str,
    media_type: &str,
    blob: &[u8],
) -> Value {
    let digest = sha256(blob);
    let started = http
        .post(format!("http://{registry}/v2/{repository}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202, "upload started");
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("http://{registry}{location}")
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let put = http
        .put(format!("{location}{separator}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(blob.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "blob uploaded");
    json!({"mediaType": media_type, "digest": digest, "size": blob.len()})
}

/// Pushes a one-layer OCI image as `repository:tag`; its manifest digest.
async fn push(http: &reqwest::Client, registry: SocketAddr, repository: &str, tag: &str, content: &str) -> String {
    let config = upload(
        http,
        registry,
        repository,
        "application/vnd.oci.image.config.v1+json",
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    )
    .await;
    let layer = upload(
        http,
        registry,
        repository,
        "application/vnd.oci.image.layer.v1.tar",
        content.as_bytes(),
    )
    .await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer],
    }))
    .unwrap();
    let put = http
        .put(format!("http://{registry}/v2/{repository}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "manifest pushed");
    sha256(&manifest)
}

fn registry_config(work: &std::path::Path, addr: SocketAddr) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
        work.join("data").display()
    )
}

async fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker-registry (installed by .ci/install-parts)"]
async fn hook_config_output_pasted_into_docker_registry_makes_its_pushes_arrive() {
    let temp = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let receiver = receiver().await;
    // Digests are checked only where the hook says: this test is about the hook.
    let broker = broker(|c| {
        c.hook_token = Some(HOOK_TOKEN.into());
        c.verify_digests = false;
    })
    .await;
    let image = "registry.example.org:5000/team/app";
    let created = subscribe(&http, &broker, image, &receiver.url).await;
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();

    let output = tagcast()
        .args(["broker", "hook-config", "--kind", "distribution", "--image", image])
        .args(["--hook-url", &hook, "--hook-token", HOOK_TOKEN])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let pasted = stdout(&output);

    let work = temp.path().to_owned();
    let registry = DockerRegistry::start(temp.path(), |addr| format!("{}{pasted}", registry_config(&work, addr)));
    let digest = push(&http, registry.addr, "team/app", TAG, "hello\n").await;
    wait_for("the push to arrive as a callback", || !receiver.received().is_empty()).await;
    let got = receiver.received();
    assert_eq!(got[0]["data"]["image"], image);
    assert_eq!(got[0]["data"]["tag"], TAG);
    assert_eq!(got[0]["data"]["digest"], digest);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1, "one push, one callback");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker-registry (installed by .ci/install-parts)"]
async fn a_docker_hub_tag_event_through_the_hook_delivers_the_digest_the_real_registry_resolves() {
    let temp = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let work = temp.path().to_owned();
    let registry = DockerRegistry::start(temp.path(), |addr| registry_config(&work, addr));
    let digest = push(&http, registry.addr, "elixircloud/cwl-wes", TAG, "hello\n").await;

    let receiver = receiver().await;
    let api = format!("http://{}", registry.addr);
    let broker = broker(move |c| {
        c.registries = vec![Registry {
            host: "docker.io".into(),
            kind: RegistryKind::Dockerhub,
            api: Some(api),
            verify_required: true,
            pull: None,
            manage: None,
            push_auth: None,
        }];
    })
    .await;
    let created = subscribe(&http, &broker, "docker.io/elixircloud/cwl-wes", &receiver.url).await;
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();

    // What Docker Hub posts: a tag, no digest (the adapter's own fixture).
    let fixture = std::fs::read_to_string(crate::support::path(
        "reference/broker/tests/fixtures/dockerhub/push-tagged.json",
    ))
    .unwrap();
    let send = async |tag: &str| {
        let status = http
            .post(&hook)
            .header("content-type", "application/json")
            .body(fixture.replace(TAG, tag))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
    };
    send(TAG).await;
    wait_for("the resolved push", || !receiver.received().is_empty()).await;
    let got = receiver.received();
    assert_eq!(got[0]["data"]["image"], "docker.io/elixircloud/cwl-wes");
    assert_eq!(got[0]["data"]["tag"], TAG);
    assert_eq!(got[0]["data"]["digest"], digest, "the digest the registry answers");

    // A newer tag that was never pushed: dropped after the grace period.
    send(NEVER).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let reason = loop {
        let events = broker.state.store.inbound_events(10).await.unwrap();
        if let Some(reason) = events
            .iter()
            .find(|e| e.tag.as_deref() == Some(NEVER))
            .and_then(|e| e.reason.clone())
        {
            break reason;
        }
        assert!(Instant::now() < deadline, "the never-pushed tag was not dropped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        reason,
        format!("dropped: the registry says elixircloud/cwl-wes:{NEVER} does not exist")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "the never-pushed tag delivers nothing");
}

/// `--registry` and `TAGCAST_REGISTRY` are checked before the broker
/// starts: errors name the host and the rule, never a secret.
#[test]
fn bad_registry_configuration_stops_the_start_with_a_clear_error() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = tagcast();
        command
            // An unopenable database: a configuration the broker wrongly
            // accepted would end there, not serve forever.
            .args(["broker", "--database-url", "sqlite:///nonexistent-dir/broker.db"])
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("TAGCAST_REGISTRY");
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let out = run(&["--registry", "host=registry.example.org"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("invalid registries.kind \"registry.example.org\": the kind of this host cannot be derived"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &[],
        &[(
            "TAGCAST_REGISTRY",
            "host=docker.io,pull-username=bot,pull-password-env=TAGCAST_TEST_NOT_SET;host=ghcr.io",
        )],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "invalid registries.pull \"docker.io\": password-env names TAGCAST_TEST_NOT_SET, which is not set or empty"
        ),
        "{}",
        stderr(&out)
    );
    let out = run(
        &["--registry", "host=docker.io,pull-token-env=HUB,pull-username=bot"],
        &[("HUB", "hunter2-secret-value")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("expected username with"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
}

/// HMAC-SHA256 as Gitea signs: hex of HMAC(secret, body).
fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// A Gitea `package` event carries the tag and no digest: through the hook,
/// the broker resolves it against the registry `[[registries]]` names (the
/// real docker-registry here) and delivers one callback with that digest;
/// a tag never pushed delivers nothing.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker-registry (installed by .ci/install-parts)"]
async fn a_gitea_tag_event_through_the_hook_delivers_the_digest_the_real_registry_resolves() {
    let temp = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let work = temp.path().to_owned();
    let registry = DockerRegistry::start(temp.path(), |addr| registry_config(&work, addr));
    let digest = push(&http, registry.addr, "org/app", TAG, "hello\n").await;

    let receiver = receiver().await;
    let api = format!("http://{}", registry.addr);
    let broker = broker(move |c| {
        c.registries = vec![Registry {
            host: "git.example.org".into(),
            kind: RegistryKind::Gitea,
            api: Some(api),
            verify_required: true,
            pull: None,
            manage: None,
            push_auth: None,
        }];
    })
    .await;
    let response = http
        .post(format!("{}/ga4gh/registry/v1/services", broker.url))
        .bearer_auth(ADMIN)
        .json(&json!({
            "id": "org.example.wes",
            "name": "WES",
            "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
            "organization": {"name": "Example", "url": "https://example.org"},
            "version": "1.0.0",
            "url": "https://wes.example.org/ga4gh/wes/v1",
            "subscription": {"images": ["git.example.org/org/app"], "stage": "production",
                             "callbackUrl": receiver.url, "registry": {"kind": "gitea"}}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let hook = &created["subscription"]["hooks"][0];
    let (url, secret) = (hook["url"].as_str().unwrap(), hook["secret"].as_str().unwrap());

    let fixture = std::fs::read_to_string(crate::support::path(
        "reference/broker/tests/fixtures/gitea/created-tag.json",
    ))
    .unwrap();
    let send = async |tag: &str, delivery: &str| {
        let body = fixture.replace("1.1.0-production-201108-195630", tag);
        let status = http
            .post(url)
            .header("content-type", "application/json")
            .header("x-gitea-event", "package")
            .header("x-gitea-delivery", delivery)
            .header("x-gitea-signature", hmac_sha256_hex(secret.as_bytes(), body.as_bytes()))
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
    };
    send(TAG, "d-1").await;
    wait_for("the resolved push", || !receiver.received().is_empty()).await;
    let got = receiver.received();
    assert_eq!(got[0]["data"]["image"], "git.example.org/org/app");
    assert_eq!(got[0]["data"]["tag"], TAG);
    assert_eq!(got[0]["data"]["digest"], digest, "the digest the registry answers");

    send(NEVER, "d-2").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = broker.state.store.inbound_events(10).await.unwrap();
        let dropped = events
            .iter()
            .find(|e| e.tag.as_deref() == Some(NEVER))
            .and_then(|e| e.reason.clone());
        if let Some(reason) = dropped {
            assert_eq!(
                reason,
                format!("dropped: the registry says org/app:{NEVER} does not exist")
            );
            break;
        }
        assert!(Instant::now() < deadline, "the never-pushed tag was not dropped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "the never-pushed tag delivers nothing");
}
