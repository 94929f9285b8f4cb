//! Every kind through a real broker: the per-hook-source secret of the
//! kinds whose registries sign (issue 10 item 2) and, for each kind, the
//! fixture of a tagged push in → exactly one signed callback out, carrying
//! the digest the registry's API answers (resolved for the kinds whose
//! events carry none, re-checked for the others); the fixtures that must
//! be ignored deliver nothing.
//!
//! The registry API is a wiremock server answering `HEAD
//! /v2/<name>/manifests/<tag>` with `Docker-Content-Digest`, as the OCI
//! distribution spec documents (`spec.md`, "Checking if content exists in
//! the registry"): these registries cannot run here (Docker Hub and Gitea
//! against a real `docker-registry`: `tests/e2e/registry_config.rs`).

use serde_json::{Value, json};
use tagcast_broker::registries::Registry;
use tagcast_spec::subscription::RegistryKind;
use tagcast_spec::webhook::{self, Secret};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixtures::{event_log, send, table};
use crate::support::broker::{Broker, TOKEN};
use crate::support::receiver::Receiver;
use crate::support::registration;
use crate::support::sqlite;

const TAG: &str = "1.1.0-production-201108-195630";
/// The index digest of the tagged-push fixtures.
const INDEX: &str = "sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6";

fn service(id: &str, images: &[&str], kind: &str, callback: &str) -> Value {
    registration(
        id,
        json!({
            "images": images,
            "stage": "production",
            "callbackUrl": callback,
            "registry": {"kind": kind}
        }),
    )
}

async fn write(broker: &Broker, method: reqwest::Method, path: &str, body: &Value) -> Value {
    let response = broker
        .client
        .request(method, broker.api(path))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{:?}", response.text().await);
    response.json().await.unwrap()
}

async fn read(broker: &Broker, path: &str, admin: bool) -> Value {
    let mut request = broker.client.get(broker.api(path));
    if admin {
        request = request.bearer_auth(TOKEN);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn signing_kinds_get_a_secret_per_hook_source_shown_to_the_admin_only() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let mut secrets = Vec::new();
    for (kind, image) in [
        ("ghcr", "ghcr.io/my-org/app"),
        ("gitea", "git.example.org/org/app"),
        ("artifactory", "art.example.org/docker-local/app"),
    ] {
        let id = format!("svc-{kind}");
        let created = write(
            &broker,
            reqwest::Method::POST,
            "/services",
            &service(&id, &[image], kind, "https://cd.example.org/hook"),
        )
        .await;
        let hook = &created["subscription"]["hooks"][0];
        let secret = hook["secret"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind}: a write shows the secret: {hook}"));
        Secret::parse(secret).unwrap_or_else(|e| panic!("{kind}: a whsec_ secret: {e}"));
        // Admin reads show it, public reads show neither it nor the URL.
        let admin = read(&broker, &format!("/services/{id}"), true).await;
        assert_eq!(admin["subscription"]["hooks"][0]["secret"], secret, "{kind}: {admin}");
        assert_eq!(admin["subscription"]["hooks"][0]["url"], hook["url"]);
        let public = read(&broker, &format!("/services/{id}"), false).await;
        let public_hook = &public["subscription"]["hooks"][0];
        assert_eq!(public_hook["kind"], kind);
        assert!(public_hook.get("secret").is_none(), "{kind}: {public}");
        assert!(public_hook.get("url").is_none(), "{kind}: {public}");
        let listed = broker
            .client
            .get(broker.api("/services"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !listed.contains(secret),
            "{kind}: a public list does not show the secret"
        );
        // Another write, and another subscription on the same registry
        // source, get the same secret: the registry is configured once.
        let rewritten = write(
            &broker,
            reqwest::Method::PUT,
            &format!("/services/{id}"),
            &service(&id, &[image], kind, "https://cd.example.org/other"),
        )
        .await;
        assert_eq!(rewritten["subscription"]["hooks"][0]["secret"], secret, "{kind}");
        let other = write(
            &broker,
            reqwest::Method::POST,
            "/services",
            &service(&format!("{id}-2"), &[image], kind, "https://cd.example.org/hook"),
        )
        .await;
        assert_eq!(other["subscription"]["hooks"][0]["secret"], secret, "{kind}");
        secrets.push(secret.to_owned());
    }
    secrets.dedup();
    assert_eq!(secrets.len(), 3, "one secret per registry source");
    // A kind that does not sign gets no secret.
    let created = write(
        &broker,
        reqwest::Method::POST,
        "/services",
        &service(
            "svc-dist",
            &["registry.example.org/team/app"],
            "distribution",
            "https://cd.example.org/hook",
        ),
    )
    .await;
    assert!(created["subscription"]["hooks"][0].get("secret").is_none(), "{created}");
    broker.stop().await;
}

/// A registry API that says `TAG` of `name` is `digest`.
async fn registry_api(name: &str, digest: &str) -> MockServer {
    let api = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(format!("/v2/{name}/manifests/{TAG}")))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", digest))
        .mount(&api)
        .await;
    api
}

/// Plays `ignored` cases then the `tagged` case of a kind's fixtures, and
/// checks that exactly one signed callback carries the registry's digest.
/// `digest` is what the registry answers (and, for kinds whose events
/// carry one, what the tagged fixture says).
async fn one_callback(kind: RegistryKind, host: &str, name: &str, tagged: &str, ignored: &[&str], digest: &str) {
    let api = registry_api(name, digest).await;
    let uri = api.uri();
    let host_owned = host.to_owned();
    let broker = Broker::start(sqlite().await, move |c| {
        c.hook_token = Some(crate::fixtures::HOOK_TOKEN.into());
        let push_auth = (kind == RegistryKind::Gar)
            .then(|| crate::pubsub::registry(&host_owned, crate::pubsub::jwks_keys()).push_auth)
            .flatten();
        c.registries = vec![Registry {
            host: host_owned,
            kind,
            api: Some(uri),
            verify_required: true,
            pull: None,
            manage: None,
            push_auth,
        }];
    })
    .await;
    let receiver = Receiver::start(&[]).await;
    let image = format!("{host}/{name}");
    let created = write(
        &broker,
        reqwest::Method::POST,
        "/services",
        &service("svc", &[&image], kind.as_str(), &receiver.url),
    )
    .await;
    let subscription_secret = Secret::parse(created["subscription"]["secret"].as_str().unwrap()).unwrap();
    let hook = &created["subscription"]["hooks"][0];
    let (url, secret) = (
        hook["url"].as_str().unwrap(),
        hook["secret"].as_str().unwrap_or_default(),
    );
    let table = table(kind.as_str());
    let case = |name: &str| {
        table["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["body"] == name && c["status"] == 202)
            .unwrap_or_else(|| panic!("{kind}: a case with {name}"))
            .clone()
    };
    for name in ignored {
        let (status, answer) = send(&broker, kind.as_str(), url, secret, &case(name)).await;
        assert_eq!(status, 202, "{kind}: {name}: {answer}");
        assert_eq!(answer["events"][0]["status"], "ignored", "{kind}: {name}: {answer}");
    }
    let (status, answer) = send(&broker, kind.as_str(), url, secret, &case(tagged)).await;
    assert_eq!(status, 202, "{kind}: {answer}");
    assert_eq!(answer["events"][0]["status"], "accepted", "{kind}: {answer}");
    let got = receiver.wait_for(1).await;
    let callback = &got[0];
    webhook::verify(
        std::slice::from_ref(&subscription_secret),
        Some(callback.header("webhook-id")),
        Some(callback.header("webhook-timestamp")),
        Some(callback.header("webhook-signature")),
        &callback.body,
        chrono::Utc::now().timestamp(),
        webhook::DEFAULT_TOLERANCE,
    )
    .expect("a callback signed with the subscription's secret");
    let data = &callback.json()["data"];
    assert_eq!(data["image"], image, "{kind}: {data}");
    assert_eq!(data["tag"], TAG, "{kind}: {data}");
    assert_eq!(
        data["digest"], digest,
        "{kind}: the digest the registry answers: {data}"
    );
    // Every accepted event is matched, and only one led to a delivery.
    let mut settled = None;
    for _ in 0..100 {
        let log = event_log(&broker).await;
        if log
            .iter()
            .all(|e| e["status"] != "accepted" || !e["matchedAt"].is_null())
        {
            settled = Some(log);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = settled.unwrap_or_else(|| panic!("{kind}: the accepted events are matched"));
    let accepted: Vec<_> = log.iter().filter(|e| e["status"] == "accepted").collect();
    assert_eq!(accepted.len(), 1, "{kind}: {log:?}");
    assert_eq!(accepted[0]["deliveries"], 1, "{kind}: {log:?}");
    assert_eq!(receiver.received().len(), 1, "{kind}: exactly one callback");
    assert!(
        !api.received_requests().await.unwrap_or_default().is_empty(),
        "{kind}: the registry API was asked"
    );
    broker.stop().await;
}

#[tokio::test]
async fn ghcr_push_in_one_signed_callback_out() {
    one_callback(
        RegistryKind::Ghcr,
        "ghcr.io",
        "my-org/app",
        "published-index.json",
        &[
            "published-untagged-amd64.json",
            "published-untagged-arm64.json",
            "ping.json",
            "published-npm.json",
        ],
        INDEX,
    )
    .await;
}

#[tokio::test]
async fn gitea_push_in_one_signed_callback_out() {
    one_callback(
        RegistryKind::Gitea,
        "git.example.org",
        "org/app",
        "created-tag.json",
        &[
            "created-platform-amd64.json",
            "created-platform-arm64.json",
            "deleted-tag.json",
            "test-push.json",
        ],
        INDEX,
    )
    .await;
}

#[tokio::test]
async fn artifactory_push_in_one_signed_callback_out() {
    one_callback(
        RegistryKind::Artifactory,
        "art.example.org",
        "docker-local/app",
        "pushed-list-manifest-hmac.json",
        &["deleted.json", "promoted.json", "artifact-deployed.json"],
        INDEX,
    )
    .await;
}

#[tokio::test]
async fn dockerhub_push_in_one_signed_callback_out() {
    one_callback(
        RegistryKind::Dockerhub,
        "docker.io",
        "elixircloud/cwl-wes",
        "push-tagged.json",
        &["push-latest.json"],
        INDEX,
    )
    .await;
}

#[tokio::test]
async fn quay_push_in_one_signed_callback_out() {
    one_callback(
        RegistryKind::Quay,
        "quay.io",
        "elixircloud/cwl-wes",
        "push-tagged.json",
        &["test-notification.json", "other-quay.json", "vulnerability-found.json"],
        INDEX,
    )
    .await;
}

#[tokio::test]
async fn harbor_push_in_one_signed_callback_out() {
    one_callback(
        RegistryKind::Harbor,
        "harbor.example.org",
        "library/cwl-wes",
        "default-push-tagged.json",
        &[
            "default-push-platform-manifest.json",
            "default-delete.json",
            "default-scanning-completed.json",
        ],
        "sha256:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
    )
    .await;
}

#[tokio::test]
async fn acr_push_in_one_signed_callback_out() {
    one_callback(
        RegistryKind::Acr,
        "myregistry.azurecr.io",
        "cwl-wes",
        "push-tagged.json",
        &[
            "push-platform-manifest.json",
            "delete.json",
            "chart-push.json",
            "ping.json",
        ],
        "sha256:d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4",
    )
    .await;
}

#[tokio::test]
async fn ecr_push_in_one_signed_callback_out() {
    one_callback(
        RegistryKind::Ecr,
        "123456789012.dkr.ecr.us-west-2.amazonaws.com",
        "my-repository-name",
        "push-tagged.json",
        &[
            "push-untagged.json",
            "push-failed.json",
            "delete.json",
            "scan.json",
            "other-account.json",
        ],
        "sha256:7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
    )
    .await;
}

#[tokio::test]
async fn gar_push_in_one_signed_callback_out() {
    one_callback(
        RegistryKind::Gar,
        "us-west1-docker.pkg.dev",
        "my-project/my-repo/hello-world",
        "push-tagged.json",
        &["push-untagged.json", "delete.json", "other-registry.json"],
        "sha256:6ec128e26cd5c8b2b2a6aa5e1b6d3b8c3c0e1e2f4a5b6c7d8e9f0a1b2c3d4e5f",
    )
    .await;
}
