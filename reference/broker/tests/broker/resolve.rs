//! Tag -> digest with registry credentials (`[[registries]]` `pull`): the
//! bearer-token challenge flow as Docker Hub and GHCR answer it, HTTP Basic,
//! and `verify-required`. The registry and its token service are wiremock
//! servers answering what the Distribution token specification documents
//! (distribution/distribution `docs/content/spec/auth/token.md`): a `401`
//! with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, a token
//! endpoint answering `{"token": …}` or `{"access_token": …}`.

use std::time::Duration;

use serde_json::{Value, json};
use tagcast_broker::registries::{Credentials, Registry, SecretString};
use tagcast_broker::resolve::Resolution;
use tagcast_broker::store::{Disposition, NewInboundEvent};
use tagcast_broker::verify::Verifier;
use tagcast_spec::subscription::RegistryKind;
use wiremock::matchers::{header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::broker::Broker;
use crate::support::distribution::digest;
use crate::support::receiver::Receiver;
use crate::support::registration;
use crate::support::sqlite;

const TAG: &str = "1.1.0-production-201108-195630";
const MANIFEST: &str = "/v2/team/app/manifests/1.1.0-production-201108-195630";
/// `bot:hunter2` in HTTP Basic.
const BOT_BASIC: &str = "Basic Ym90Omh1bnRlcjI=";

fn bot() -> Credentials {
    Credentials::Basic {
        username: "bot".into(),
        password: SecretString::new("hunter2"),
    }
}

fn no_authorization(request: &Request) -> bool {
    !request.headers.contains_key("authorization")
}

/// A registry that challenges anonymous requests with its token service at
/// `/token` (as Docker Hub: realm on another path, service and scope given).
async fn bearer_registry(token_answer: Value, found: u8) -> MockServer {
    let registry = MockServer::start().await;
    let challenge = format!(
        r#"Bearer realm="{}/token",service="registry.example.org",scope="repository:team/app:pull""#,
        registry.uri()
    );
    Mock::given(method("HEAD"))
        .and(path(MANIFEST))
        .and(no_authorization)
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", challenge.as_str()))
        .mount(&registry)
        .await;
    Mock::given(method("HEAD"))
        .and(path(MANIFEST))
        .and(header("authorization", "Bearer t0ken"))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", digest(found).as_str()))
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("service", "registry.example.org"))
        .and(query_param("scope", "repository:team/app:pull"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_answer))
        .mount(&registry)
        .await;
    registry
}

fn token_requests(requests: &[Request]) -> Vec<&Request> {
    requests.iter().filter(|r| r.url.path() == "/token").collect()
}

#[tokio::test]
async fn the_bearer_challenge_is_answered_with_basic_credentials_and_the_token_is_cached() {
    let registry = bearer_registry(json!({"token": "t0ken", "expires_in": 300}), 7).await;
    let verifier = Verifier::new();
    let first = verifier.resolve(&registry.uri(), "team/app", TAG, Some(&bot())).await;
    assert_eq!(first, Resolution::Digest(digest(7)));
    let second = verifier.resolve(&registry.uri(), "team/app", TAG, Some(&bot())).await;
    assert_eq!(second, Resolution::Digest(digest(7)));
    let requests = registry.received_requests().await.unwrap();
    let tokens = token_requests(&requests);
    assert_eq!(tokens.len(), 1, "the token is reused until it expires");
    assert_eq!(
        tokens[0].headers["authorization"], BOT_BASIC,
        "the realm gets the credentials"
    );
    let accept = requests[0].headers["accept"].to_str().unwrap();
    for media_type in [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ] {
        assert!(accept.contains(media_type), "Accept names {media_type}: {accept}");
    }
}

#[tokio::test]
async fn an_anonymous_token_under_access_token_is_used() {
    // OAuth 2.0 compatible answers name it access_token (token.md).
    let registry = bearer_registry(json!({"access_token": "t0ken"}), 3).await;
    let got = Verifier::new().resolve(&registry.uri(), "team/app", TAG, None).await;
    assert_eq!(got, Resolution::Digest(digest(3)));
    let requests = registry.received_requests().await.unwrap();
    assert!(
        !token_requests(&requests)[0].headers.contains_key("authorization"),
        "no credentials configured: anonymous token request"
    );
}

#[tokio::test]
async fn a_token_service_refusing_the_credentials_is_unresolved_and_says_why() {
    let registry = MockServer::start().await;
    let challenge = format!(r#"Bearer realm="{}/token",service="s""#, registry.uri());
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", challenge.as_str()))
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        // Without a scope in the challenge, the broker asks for pull on the repository.
        .and(query_param("scope", "repository:team/app:pull"))
        .respond_with(ResponseTemplate::new(401).set_body_string("hunter2 is wrong"))
        .expect(1)
        .mount(&registry)
        .await;
    let got = Verifier::new()
        .resolve(&registry.uri(), "team/app", TAG, Some(&bot()))
        .await;
    let Resolution::Unresolved(why) = got else {
        panic!("{got:?}")
    };
    assert!(why.contains("refused the configured pull credentials (401)"), "{why}");
    assert!(!why.contains("hunter2"), "{why}");
}

#[tokio::test]
async fn a_tag_missing_behind_the_token_is_not_found() {
    let registry = MockServer::start().await;
    let challenge = format!(r#"Bearer realm="{}/token",service="s",scope="x""#, registry.uri());
    Mock::given(method("HEAD"))
        .and(no_authorization)
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", challenge.as_str()))
        .mount(&registry)
        .await;
    Mock::given(method("HEAD"))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": "t"})))
        .mount(&registry)
        .await;
    let got = Verifier::new().resolve(&registry.uri(), "team/app", TAG, None).await;
    assert_eq!(
        got,
        Resolution::NotFound(format!("the registry says team/app:{TAG} does not exist"))
    );
}

#[tokio::test]
async fn a_basic_challenge_is_answered_with_the_password() {
    let registry = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(no_authorization)
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", r#"Basic realm="Registry Realm""#))
        .mount(&registry)
        .await;
    Mock::given(method("HEAD"))
        .and(header("authorization", BOT_BASIC))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", digest(4).as_str()))
        .mount(&registry)
        .await;
    let verifier = Verifier::new();
    assert_eq!(
        verifier.resolve(&registry.uri(), "team/app", TAG, Some(&bot())).await,
        Resolution::Digest(digest(4))
    );
    let anonymous = verifier.resolve(&registry.uri(), "team/app", TAG, None).await;
    assert!(
        matches!(&anonymous, Resolution::Unresolved(why) if why.contains("needs credentials (Basic)")),
        "{anonymous:?}"
    );
}

#[tokio::test]
async fn a_failing_registry_then_success_resolves() {
    let registry = bearer_registry(json!({"token": "t0ken"}), 5).await;
    let verifier = Verifier::new();
    let broken = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&broken)
        .await;
    let got = verifier.resolve(&broken.uri(), "team/app", TAG, Some(&bot())).await;
    assert!(
        matches!(&got, Resolution::Unresolved(why) if why.ends_with("answered 503")),
        "{got:?}"
    );
    assert_eq!(
        verifier.resolve(&registry.uri(), "team/app", TAG, Some(&bot())).await,
        Resolution::Digest(digest(5))
    );
}

/// A broker with `docker.io` configured to be `registry`, and a subscriber
/// of `docker.io/team/app`.
async fn dockerhub_broker(
    registry: &MockServer,
    pull: Option<Credentials>,
    verify_required: bool,
) -> (Broker, Receiver) {
    let api = registry.uri();
    let broker = Broker::start(sqlite().await, move |c| {
        c.verify_grace = Duration::from_millis(600);
        c.registries = vec![Registry {
            host: "docker.io".into(),
            kind: RegistryKind::Dockerhub,
            api: Some(api),
            verify_required,
            pull,
            manage: None,
            push_auth: None,
        }];
    })
    .await;
    let receiver = Receiver::start(&[]).await;
    let created = broker
        .register(&registration(
            "svc",
            json!({
                "images": ["docker.io/team/app"],
                "stage": "production",
                "callbackUrl": receiver.url,
            }),
        ))
        .await;
    assert_eq!(created.status(), 201);
    (broker, receiver)
}

/// Records what a Docker Hub hook reports: a tag, no digest.
async fn tag_without_digest(broker: &Broker, tag: &str) {
    let recorded = broker
        .state
        .store
        .record_inbound(
            vec![NewInboundEvent {
                kind: "dockerhub".into(),
                registry: "docker.io".into(),
                source_event_id: None,
                repository: Some("docker.io/team/app".into()),
                tag: Some(tag.into()),
                digest: None,
                media_type: None,
                is_index: false,
                disposition: Disposition::Accepted,
            }],
            0,
        )
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    broker.state.wake_matcher.notify_one();
}

async fn dropped_reason(broker: &Broker) -> String {
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let log: Vec<Value> = broker.events().await;
        if let Some(reason) = log[0]["reason"].as_str() {
            return reason.to_owned();
        }
    }
    panic!("the event was not dropped");
}

#[tokio::test]
async fn a_tag_without_digest_is_delivered_with_the_digest_the_registry_resolves() {
    let registry = bearer_registry(json!({"token": "t0ken"}), 9).await;
    let (broker, receiver) = dockerhub_broker(&registry, Some(bot()), true).await;
    tag_without_digest(&broker, TAG).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["data"]["digest"], digest(9));
    assert_eq!(got[0].json()["data"]["image"], "docker.io/team/app");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "exactly one callback");
    broker.stop().await;
}

#[tokio::test]
async fn a_tag_without_digest_that_cannot_be_resolved_is_dropped_after_the_grace_period() {
    // The token service refuses anonymous requests: private repository, no pull credentials.
    let registry = MockServer::start().await;
    let challenge = format!(r#"Bearer realm="{}/token",service="s""#, registry.uri());
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", challenge.as_str()))
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&registry)
        .await;
    let (broker, receiver) = dockerhub_broker(&registry, None, true).await;
    tag_without_digest(&broker, TAG).await;
    let reason = dropped_reason(&broker).await;
    assert!(
        reason.starts_with("dropped: the digest cannot be resolved: the token service of"),
        "{reason}"
    );
    assert!(reason.contains("configure [[registries]] pull credentials"), "{reason}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty(), "nothing unverified is delivered");
    broker.stop().await;
}

#[tokio::test]
async fn verify_required_drops_an_event_with_a_digest_the_registry_cannot_confirm() {
    // Today's default for Distribution delivers when the registry cannot
    // tell; verify-required turns that into a drop after the grace period.
    let registry = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&registry)
        .await;
    let api = registry.uri();
    let broker = Broker::start(sqlite().await, move |c| {
        c.verify_grace = Duration::from_millis(600);
        c.registries = vec![Registry {
            host: "registry.example.org:5000".into(),
            kind: RegistryKind::Distribution,
            api: Some(api),
            verify_required: true,
            pull: None,
            manage: None,
            push_auth: None,
        }];
    })
    .await;
    let receiver = Receiver::start(&[]).await;
    let created: Value = broker
        .register(&registration(
            "svc",
            json!({
                "images": ["registry.example.org:5000/team/app"],
                "stage": "production",
                "callbackUrl": receiver.url,
                "registry": {"kind": "distribution"}
            }),
        ))
        .await
        .json()
        .await
        .unwrap();
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    let body = crate::support::distribution::envelope(vec![crate::support::distribution::manifest_push(
        "ev-1",
        "team/app",
        Some(TAG),
        1,
    )]);
    let status = broker
        .client
        .post(&hook)
        .header("content-type", crate::support::distribution::MEDIA_TYPE_V1)
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
    let reason = dropped_reason(&broker).await;
    assert!(
        reason.starts_with("dropped: verify-required and the registry cannot tell:"),
        "{reason}"
    );
    assert!(reason.ends_with("answered 503"), "{reason}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty());
    broker.stop().await;
}
