//! The kubernetes mode against wiremock as the API server.

use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::*;

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/ga4gh/deployments/cwl-wes";

fn deployment(image: &str, generation: i64, ready: bool) -> Value {
    let n = if ready { 2 } else { 0 };
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "cwl-wes", "namespace": "ga4gh", "generation": generation},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "wes", "image": image},
            {"name": "proxy", "image": "nginx:1.27"}
        ]}}},
        "status": {"observedGeneration": generation, "replicas": 2, "updatedReplicas": n, "availableReplicas": n}
    })
}

async fn mode(server: &MockServer, dir: &Path, container: Option<&str>, rollout: Duration) -> Applier {
    let token = dir.join("token");
    std::fs::write(&token, "sa-token\n").unwrap();
    Applier::Kubernetes(Kubernetes {
        access: Access {
            server: server.uri(),
            token: Some(Token::File(token)),
            ca_pem: None,
            identity_pem: None,
            insecure: false,
        },
        namespace: "ga4gh".into(),
        name: "cwl-wes".into(),
        kind: WorkloadKind::Deployment,
        container: container.map(str::to_owned),
        rollout_timeout: rollout,
        timeout: Duration::from_secs(5),
    })
}

#[tokio::test]
async fn patches_the_matching_container_with_annotations_and_waits() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = digest(V2.len() as u8);
    let reference = format!("{IMAGE}:{V2}@{d}");
    Mock::given(method("GET"))
        .and(path(DEPLOYMENT))
        .and(header("authorization", "Bearer sa-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(deployment(&reference, 8, true)))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(DEPLOYMENT))
        .and(header("content-type", STRATEGIC_MERGE_PATCH))
        .and(header("authorization", "Bearer sa-token"))
        .and(body_json(json!({
            "metadata": {"annotations": {
                "tagcast.elixir-cloud.org/digest": d.to_string(),
                "tagcast.elixir-cloud.org/tag": V2,
                "tagcast.elixir-cloud.org/event-id": "evt_2",
                "kubernetes.io/change-cause": format!("tagcast: {IMAGE} {V1} -> {V2} (event evt_2)")
            }},
            "spec": {"template": {"spec": {"containers": [{"name": "wes", "image": reference}]}}}
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(deployment(&reference, 8, false)))
        .expect(1)
        .mount(&server)
        .await;

    let state = state_with(mode(&server, dir.path(), None, Duration::from_secs(10)).await).await;
    state.store.seed_applied(IMAGE, V1).await.unwrap();
    let (status, _) = send(&state, callback("evt_2", V2)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Applied, "{}", history[0].reason);
    assert_eq!(
        history[0].reason,
        format!("patched deployment ga4gh/cwl-wes (wes) to {reference}; rollout complete")
    );
    server.verify().await;
}

#[tokio::test]
async fn forbidden_is_a_failure_with_the_reason() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    Mock::given(method("PATCH"))
        .and(path(DEPLOYMENT))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "kind": "Status", "message": "deployments.apps \"cwl-wes\" is forbidden"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let state = state_with(mode(&server, dir.path(), Some("wes"), Duration::ZERO).await).await;
    send(&state, callback("evt_1", V1)).await;
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Failed);
    assert!(history[0].reason.contains("403 Forbidden"), "{}", history[0].reason);
    assert!(history[0].reason.contains("is forbidden"), "{}", history[0].reason);
    assert!(state.store.applied(IMAGE).await.unwrap().is_none());
}

#[tokio::test]
async fn no_matching_container_is_a_failure() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    Mock::given(method("GET"))
        .and(path(DEPLOYMENT))
        .respond_with(ResponseTemplate::new(200).set_body_json(deployment("elixircloud/other:1", 1, true)))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let state = state_with(mode(&server, dir.path(), None, Duration::ZERO).await).await;
    send(&state, callback("evt_1", V1)).await;
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Failed);
    assert_eq!(
        history[0].reason,
        format!("kubernetes API: no container of deployment ga4gh/cwl-wes runs {IMAGE}; name one with --container")
    );
    server.verify().await;
}

/// Issue 11, finding 8: a bearer token is never sent over plain HTTP to a
/// non-loopback server; the update fails with a reason naming the rule,
/// before any connection (192.0.2.10 is TEST-NET-1: nothing answers there,
/// so a build that tried would fail with a connection error instead).
#[tokio::test]
async fn bearer_token_over_plain_http_is_refused_and_nothing_is_sent() {
    let access = Access {
        server: "http://192.0.2.10:6443".into(),
        token: Some(Token::Value("sa-token".into())),
        ca_pem: None,
        identity_pem: None,
        insecure: false,
    };
    let err = access.check_transport().unwrap_err();
    assert!(err.contains("plain http://") && err.contains("https://"), "{err}");
    let state = state_with(Applier::Kubernetes(Kubernetes {
        access,
        namespace: "ga4gh".into(),
        name: "cwl-wes".into(),
        kind: WorkloadKind::Deployment,
        container: Some("wes".into()),
        rollout_timeout: Duration::ZERO,
        timeout: Duration::from_secs(5),
    }))
    .await;
    send(&state, callback("evt_1", V1)).await;
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Failed);
    assert!(
        history[0].reason.contains("refusing to send the token unencrypted"),
        "{}",
        history[0].reason
    );
    assert!(state.store.applied(IMAGE).await.unwrap().is_none());
}

#[test]
fn plain_http_is_allowed_without_a_token_or_to_loopback() {
    let access = |server: &str, token: bool| Access {
        server: server.into(),
        token: token.then(|| Token::Value("t".into())),
        ca_pem: None,
        identity_pem: None,
        insecure: false,
    };
    for server in [
        "http://127.0.0.1:8001",
        "http://localhost:8001",
        "http://[::1]:8001",
        "https://k8s.example:6443",
    ] {
        assert!(access(server, true).check_transport().is_ok(), "{server}");
    }
    assert!(access("http://k8s.example", false).check_transport().is_ok());
    for server in [
        "http://k8s.example:6443",
        "http://10.0.0.1",
        "http://[fd00::1]:6443",
        "http://127.0.0.1@k8s.example",
    ] {
        assert!(access(server, true).check_transport().is_err(), "{server}");
    }
}

/// Issue 11, finding 8: a configured CA is the only trust anchor.
#[test]
fn a_configured_ca_replaces_the_public_roots() {
    let mut access = Access {
        server: "https://k8s.example:6443".into(),
        token: None,
        ca_pem: None,
        identity_pem: None,
        insecure: false,
    };
    assert!(access.trusts_public_roots(), "no CA configured: the public roots");
    access.ca_pem = Some(b"-----BEGIN CERTIFICATE-----\n".to_vec());
    assert!(!access.trusts_public_roots(), "a CA configured: only it");
}
