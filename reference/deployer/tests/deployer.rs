//! Public behaviour of the deployer library: the router driven without a
//! socket, the worker driven by `run_pending`, the apply modes against
//! fakes (a shell hook, wiremock as the Kubernetes API, a git repository).

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tagcast_deployer::apply::Applier;
use tagcast_deployer::apply::exec::Exec;
use tagcast_deployer::apply::gitops::Gitops;
use tagcast_deployer::apply::kubectl::WorkloadKind;
use tagcast_deployer::apply::kubernetes::{Access, Kubernetes, STRATEGIC_MERGE_PATCH, Token};
use tagcast_deployer::store::Outcome;
use tagcast_deployer::{AppState, Config, app, run_pending};
use tagcast_spec::event::CONTENT_TYPE;
use tagcast_spec::webhook::{Secret, sign};
use tagcast_spec::{ApiRequirement, CloudEvent, Digest, ImagePublished, Repository, Stage, Tag, UpdatePolicy};
use tower::ServiceExt as _;

const IMAGE: &str = "docker.io/elixircloud/cwl-wes";
const V1: &str = "1.1.0-production-201108-195630";
const V2: &str = "1.1.0-production-201109-000000";
const V3: &str = "1.2.0-production-201110-000000";

fn secret() -> Secret {
    Secret::generate([42; 32])
}

fn digest(n: u8) -> Digest {
    Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap()
}

/// The body of a callback for `tag`, as a broker sends it.
fn event(id: &str, image: &str, tag: &str, previous: Option<&str>) -> Vec<u8> {
    let data = ImagePublished::new(
        "org.example.wes",
        Repository::parse(image).unwrap(),
        Tag::parse(tag).unwrap(),
        digest(tag.len() as u8),
        previous.map(|p| Tag::parse(p).unwrap()),
    );
    let event = CloudEvent::new(
        id,
        "https://registry.example.org/ga4gh/registry/v1",
        chrono::Utc::now(),
        data,
    );
    serde_json::to_vec(&event).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn signed(id: &str, body: Vec<u8>, secret: &Secret, timestamp: i64) -> Request<Body> {
    Request::post("/")
        .header("content-type", CONTENT_TYPE)
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sign(secret, id, timestamp, &body))
        .body(Body::from(body))
        .unwrap()
}

fn callback(id: &str, tag: &str) -> Request<Body> {
    signed(id, event(id, IMAGE, tag, None), &secret(), now())
}

async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, Value) {
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn policy() -> UpdatePolicy {
    UpdatePolicy {
        stage: Stage::Production,
        requirement: ApiRequirement::parse("^1.1").unwrap(),
    }
}

/// An exec hook that appends its environment to `log`, one line per run.
fn recording_exec(log: &Path) -> Applier {
    Applier::Exec(Exec {
        command: format!(
            "printf '%s|%s|%s|%s|%s|%s|%s|%s|%s\\n' \"$TAGCAST_IMAGE\" \"$TAGCAST_TAG\" \"$TAGCAST_DIGEST\" \
             \"$TAGCAST_REFERENCE\" \"$TAGCAST_STAGE\" \"$TAGCAST_API_VERSION\" \"$TAGCAST_PREVIOUS_TAG\" \
             \"$TAGCAST_EVENT_ID\" \"${{TAGCAST_SECRET:-no-secret}}\" >> '{}'",
            log.display()
        ),
        timeout: Duration::from_secs(10),
    })
}

async fn state_with(applier: Applier) -> AppState {
    let config = Config::new(
        vec![secret()],
        vec![Repository::parse(IMAGE).unwrap()],
        policy(),
        applier,
    );
    AppState::open(config).await.unwrap()
}

fn runs(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn signed_update_is_accepted_then_applied_once_with_every_variable() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    let state = state_with(recording_exec(&log)).await;

    let (status, body) = send(&state, callback("evt_1", V1)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "accepted");
    assert!(runs(&log).is_empty(), "applied asynchronously, not in the request");
    assert_eq!(run_pending(&state).await.unwrap(), 1);

    let (status, _) = send(&state, callback("evt_2", V2)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    run_pending(&state).await.unwrap();

    let runs = runs(&log);
    let d2 = digest(V2.len() as u8);
    assert_eq!(
        runs,
        [
            format!(
                "{IMAGE}|{V1}|{}|{IMAGE}:{V1}@{}|production|1.1.0||evt_1|no-secret",
                digest(V1.len() as u8),
                digest(V1.len() as u8)
            ),
            format!("{IMAGE}|{V2}|{d2}|{IMAGE}:{V2}@{d2}|production|1.1.0|{V1}|evt_2|no-secret"),
        ]
    );
    let applied = state.store.applied(IMAGE).await.unwrap().unwrap();
    assert_eq!(applied.tag, V2);
    assert_eq!(applied.event_id, "evt_2");

    // The same delivery again: 200, nothing applied.
    let (status, body) = send(&state, callback("evt_2", V2)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "duplicate");
    assert_eq!(run_pending(&state).await.unwrap(), 0);
    assert_eq!(self::runs(&log).len(), 2);
}

#[tokio::test]
async fn downgrade_other_stage_other_image_and_api_version_are_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    let state = state_with(recording_exec(&log)).await;
    send(&state, callback("evt_1", V2)).await;
    run_pending(&state).await.unwrap();

    let cases = [
        (
            "evt_down",
            IMAGE,
            V1,
            "not an update: 1.1.0-production-201108-195630 is not newer than the current tag 1.1.0-production-201109-000000",
        ),
        (
            "evt_same",
            IMAGE,
            V2,
            "not an update: 1.1.0-production-201109-000000 is not newer than the current tag 1.1.0-production-201109-000000",
        ),
        (
            "evt_stage",
            IMAGE,
            "1.1.0-staging-201201-000000",
            "not an update: stage staging is not the subscribed stage production",
        ),
        (
            "evt_api",
            IMAGE,
            "2.0.0-production-201201-000000",
            "not an update: api-version 2.0.0 does not match the requirement",
        ),
        (
            "evt_image",
            "elixircloud/tes",
            V3,
            "image docker.io/elixircloud/tes is not deployed here",
        ),
    ];
    for (id, image, tag, reason) in cases {
        let request = signed(id, event(id, image, tag, None), &secret(), now());
        let (status, body) = send(&state, request).await;
        assert_eq!(status, StatusCode::OK, "{id}");
        assert_eq!(body["status"], "refused", "{id}");
        assert_eq!(body["reason"], reason, "{id}");
    }
    assert_eq!(run_pending(&state).await.unwrap(), 0);
    assert_eq!(runs(&log).len(), 1);
    let history = state.store.history(10).await.unwrap();
    assert_eq!(history.len(), 6);
    assert!(history[..5].iter().all(|h| h.outcome == Outcome::Refused));
    assert_eq!(history[0].reason, cases[4].3);
    assert_eq!(state.store.applied(IMAGE).await.unwrap().unwrap().tag, V2);
}

#[tokio::test]
async fn authentication_failures_are_401_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    let state = state_with(recording_exec(&log)).await;
    let body = || event("evt_1", IMAGE, V1, None);

    let wrong_secret = Secret::generate([7; 32]);
    let cases: Vec<(Request<Body>, &str)> = vec![
        (
            signed("evt_1", body(), &wrong_secret, now()),
            "invalid signature (CB-5)",
        ),
        (
            signed("evt_1", body(), &secret(), now() - 301),
            "stale header webhook-timestamp",
        ),
        (
            signed("evt_1", body(), &secret(), now() + 301),
            "future header webhook-timestamp",
        ),
        (
            Request::post("/")
                .header("content-type", CONTENT_TYPE)
                .header("webhook-id", "evt_1")
                .header("webhook-timestamp", now().to_string())
                .body(Body::from(body()))
                .unwrap(),
            "missing header webhook-signature (CB-3)",
        ),
        (
            {
                // Signed body, altered in transit.
                let mut request = signed("evt_1", body(), &secret(), now());
                let mut tampered = body();
                let at = tampered.len() - 3;
                tampered[at] = b' ';
                *request.body_mut() = Body::from(tampered);
                request
            },
            "invalid signature (CB-5)",
        ),
    ];
    for (request, message) in cases {
        let (status, body) = send(&state, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{message}");
        // The error body of API-13.
        assert_eq!(body["status"], 401, "{body}");
        assert_eq!(body["title"], "Unauthorized", "{body}");
        assert_eq!(body["code"], "invalid_signature", "{body}");
        assert!(body["requirement"].as_str().unwrap().starts_with("CB-"), "{body}");
        assert!(
            body["detail"].as_str().unwrap().starts_with(message),
            "{body} vs {message}"
        );
    }
    assert!(
        !state.store.seen("evt_1").await.unwrap(),
        "rejected requests are not remembered"
    );
    assert_eq!(run_pending(&state).await.unwrap(), 0);

    // Rotation: a second secret is accepted as well.
    let mut config = (*state.config).clone();
    config.secrets.push(wrong_secret.clone());
    let rotated = AppState::new(config, state.store.clone());
    let (status, _) = send(&rotated, signed("evt_1", body(), &wrong_secret, now())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn content_type_size_and_schema_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with(recording_exec(&dir.path().join("runs"))).await;

    let mut request = callback("evt_1", V1);
    request
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    let (status, body) = send(&state, request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        (body["code"].as_str(), body["requirement"].as_str()),
        (Some("unsupported_media_type"), Some("CB-9"))
    );

    let mut request = callback("evt_1", V1);
    request.headers_mut().insert(
        "content-type",
        "Application/CloudEvents+JSON; charset=utf-8".parse().unwrap(),
    );
    assert_eq!(
        send(&state, request).await.0,
        StatusCode::ACCEPTED,
        "parameters and case are fine"
    );

    let huge = vec![b' '; tagcast_deployer::DEFAULT_BODY_LIMIT + 1];
    let response = app(state.clone())
        .oneshot(signed("evt_big", huge, &secret(), now()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.headers()["connection"],
        "close",
        "the unread body ends the connection"
    );
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap()).unwrap();
    assert_eq!(body["code"], "payload_too_large", "{body}");
    assert_eq!(body["status"], 413);

    let (status, body) = send(&state, signed("evt_2", b"{not json".to_vec(), &secret(), now())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().starts_with("malformed callback"),
        "{body}"
    );

    // Valid JSON, but the event's derived fields disagree (schema-invalid).
    let mut value: Value = serde_json::from_slice(&event("evt_3", IMAGE, V2, None)).unwrap();
    value["data"]["stage"] = json!("demo");
    let (status, body) = send(
        &state,
        signed("evt_3", serde_json::to_vec(&value).unwrap(), &secret(), now()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("stage"), "{body}");

    let mut value: Value = serde_json::from_slice(&event("evt_4", IMAGE, V2, None)).unwrap();
    value["type"] = json!("com.example.other");
    let (status, _) = send(
        &state,
        signed("evt_4", serde_json::to_vec(&value).unwrap(), &secret(), now()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The event id must be the webhook-id.
    let (status, body) = send(
        &state,
        signed("evt_5", event("evt_other", IMAGE, V2, None), &secret(), now()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().contains("differs from webhook-id"),
        "{body}"
    );
    assert_eq!(state.store.status(10).await.unwrap().pending, 1);
}

#[tokio::test]
async fn hold_queues_and_release_applies_only_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    let state = state_with(recording_exec(&log)).await;
    state.store.set_hold(true, Some("incident")).await.unwrap();

    let (status, body) = send(&state, callback("evt_1", V1)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["held"], true);
    send(&state, callback("evt_2", V2)).await;
    assert_eq!(run_pending(&state).await.unwrap(), 0);
    assert!(runs(&log).is_empty(), "nothing applied during a hold");

    state.store.set_hold(false, None).await.unwrap();
    assert_eq!(run_pending(&state).await.unwrap(), 2);
    let runs = runs(&log);
    assert_eq!(runs.len(), 1);
    assert!(runs[0].contains(V2));
    let history = state.store.history(10).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Applied);
    assert_eq!(history[1].outcome, Outcome::Superseded);
    assert_eq!(history[1].reason, format!("newer tag {V2} queued (event evt_2)"));
}

#[tokio::test]
async fn failing_hook_is_recorded_and_not_applied() {
    let state = state_with(Applier::Exec(Exec {
        command: "echo 'cluster unreachable' >&2; exit 4".into(),
        timeout: Duration::from_secs(10),
    }))
    .await;
    send(&state, callback("evt_1", V1)).await;
    run_pending(&state).await.unwrap();
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].outcome, Outcome::Failed);
    assert_eq!(
        history[0].reason,
        "exec command failed (exit status: 4): cluster unreachable"
    );
    assert!(state.store.applied(IMAGE).await.unwrap().is_none());
}

#[tokio::test]
async fn validation_handshake_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with(recording_exec(&dir.path().join("runs"))).await;
    let options = |origin: Option<&str>| {
        let mut builder = Request::builder().method(Method::OPTIONS).uri("/");
        if let Some(origin) = origin {
            builder = builder
                .header("WebHook-Request-Origin", origin)
                .header("WebHook-Request-Rate", "120");
        }
        builder.body(Body::empty()).unwrap()
    };
    let response = app(state.clone())
        .oneshot(options(Some("registry.example.org")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["webhook-allowed-origin"], "registry.example.org");
    assert_eq!(response.headers()["webhook-allowed-rate"], "*");
    assert_eq!(response.headers()["allow"], "POST, OPTIONS");

    let response = app(state.clone()).oneshot(options(None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(!response.headers().contains_key("webhook-allowed-origin"));

    let mut config = (*state.config).clone();
    config.allowed_origins = vec!["registry.example.org".into()];
    let strict = AppState::new(config, state.store.clone());
    let response = app(strict.clone())
        .oneshot(options(Some("evil.example")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!response.headers().contains_key("webhook-allowed-origin"));
    let response = app(strict)
        .oneshot(options(Some("Registry.Example.org")))
        .await
        .unwrap();
    assert_eq!(response.headers()["webhook-allowed-origin"], "Registry.Example.org");

    let (status, body) = send(&state, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn custom_route_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(
        vec![secret()],
        vec![Repository::parse(IMAGE).unwrap()],
        policy(),
        recording_exec(&dir.path().join("runs")),
    );
    config.route = "/hooks/tagcast".into();
    let state = AppState::open(config).await.unwrap();
    let (status, _) = send(&state, callback("evt_1", V1)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut request = callback("evt_1", V1);
    *request.uri_mut() = "/hooks/tagcast".parse().unwrap();
    assert_eq!(send(&state, request).await.0, StatusCode::ACCEPTED);
}

mod kubernetes {
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

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
}

mod gitops {
    use std::process::Command;

    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let output = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn repo(dir: &Path) {
        git(dir, &["init", "--quiet", "--initial-branch=main"]);
        git(dir, &["config", "user.name", "Test"]);
        git(dir, &["config", "user.email", "test@example.org"]);
        std::fs::write(
            dir.join("deployment.yaml"),
            format!(
                "spec:\n  containers:\n    - name: wes\n      image: elixircloud/cwl-wes:{V1}  # pinned by tagcast\n"
            ),
        )
        .unwrap();
        git(dir, &["add", "."]);
        git(dir, &["commit", "--quiet", "-m", "initial"]);
    }

    fn mode(dir: &Path) -> Applier {
        Applier::Gitops(Gitops {
            repo: dir.to_owned(),
            path: "deployment.yaml".into(),
            branch: None,
            remote: None,
            author: "tagcast-deployer <tagcast@localhost>".into(),
            timeout: Duration::from_secs(20),
        })
    }

    #[tokio::test]
    #[ignore = "needs git"]
    async fn commits_once_and_pushes_to_the_remote() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let bare = dir.path().join("remote.git");
        std::fs::create_dir(&work).unwrap();
        repo(&work);
        git(
            dir.path(),
            &[
                "clone",
                "--quiet",
                "--bare",
                work.to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
        );
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);

        let state = state_with(mode(&work)).await;
        send(&state, callback("evt_2", V2)).await;
        run_pending(&state).await.unwrap();
        let history = state.store.history(1).await.unwrap();
        assert_eq!(history[0].outcome, Outcome::Applied, "{}", history[0].reason);

        let message = git(&bare, &["log", "-1", "--format=%B", "main"]);
        assert!(
            message.starts_with(&format!("tagcast: {IMAGE} {V1} -> {V2}")),
            "{message}"
        );
        assert!(message.contains("Event: evt_2"), "{message}");
        let manifest = git(&bare, &["show", "main:deployment.yaml"]);
        assert!(
            manifest.contains(&format!(
                "image: elixircloud/cwl-wes:{V2}@{}  # pinned by tagcast",
                digest(V2.len() as u8)
            )),
            "{manifest}"
        );
        assert_eq!(git(&work, &["rev-list", "--count", "HEAD"]).trim(), "2");
    }

    #[tokio::test]
    #[ignore = "needs git"]
    async fn dirty_repository_is_an_error_not_an_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        repo(dir.path());
        std::fs::write(dir.path().join("deployment.yaml"), "hand edit\n").unwrap();
        let state = state_with(mode(dir.path())).await;
        send(&state, callback("evt_1", V2)).await;
        run_pending(&state).await.unwrap();
        let history = state.store.history(1).await.unwrap();
        assert_eq!(history[0].outcome, Outcome::Failed);
        assert!(
            history[0].reason.contains("work tree is not clean"),
            "{}",
            history[0].reason
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("deployment.yaml")).unwrap(),
            "hand edit\n"
        );
        assert_eq!(git(dir.path(), &["rev-list", "--count", "HEAD"]).trim(), "1");
    }
}

#[tokio::test]
async fn admin_routes_need_the_token_and_exist_only_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    let state = state_with(recording_exec(&log)).await;
    let (status, _) = send(&state, Request::get("/status").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no token configured, no admin routes");

    let token = "0123456789abcdef-admin";
    let mut config = (*state.config).clone();
    config.admin_token = Some(token.into());
    assert!(!format!("{config:?}").contains(token), "Debug never prints the token");
    let admin = AppState::new(config, state.store.clone());
    let req = |method: Method, uri: &str, bearer: Option<&str>| {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(b) = bearer {
            builder = builder.header("authorization", format!("Bearer {b}"));
        }
        builder.body(Body::empty()).unwrap()
    };
    for (method, uri) in [
        (Method::GET, "/status"),
        (Method::POST, "/hold"),
        (Method::POST, "/release"),
    ] {
        assert_eq!(
            send(&admin, req(method.clone(), uri, None)).await.0,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
        let wrong = "0123456789abcdef-admix";
        assert_eq!(
            send(&admin, req(method, uri, Some(wrong))).await.0,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
    }
    let (status, body) = send(&admin, req(Method::POST, "/hold?reason=INC-7", Some(token))).await;
    assert_eq!((status, body["held"].clone()), (StatusCode::OK, json!(true)));
    send(&admin, callback("evt_1", V1)).await;
    run_pending(&admin).await.unwrap();
    let (status, body) = send(&admin, req(Method::GET, &format!("/status?token={token}"), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["hold"]["held"], true);
    assert_eq!(body["hold"]["reason"], "INC-7");
    assert_eq!(body["pending"], 1);
    assert!(runs(&log).is_empty());
    let (status, _) = send(&admin, req(Method::POST, "/release", Some(token))).await;
    assert_eq!(status, StatusCode::OK);
    run_pending(&admin).await.unwrap();
    let (_, body) = send(&admin, req(Method::GET, "/status", Some(token))).await;
    assert_eq!(body["applied"][0]["tag"], V1);
    assert_eq!(body["history"][0]["outcome"], "applied");
    assert_eq!(runs(&log).len(), 1);
}

/// `reference/deploy/`: the example upgrade script and the manifests.
mod deploy_examples {
    use std::path::PathBuf;
    use std::process::Command;

    use super::*;

    fn deploy(file: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(file)
    }

    /// A kubectl stand-in that logs its arguments and fails `rollout status`
    /// when `FAIL_ROLLOUT` is set.
    fn fake_kubectl(dir: &Path) -> PathBuf {
        let path = dir.join("kubectl");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\ncase \"$*\" in *'rollout status'*) [ -z \"${{FAIL_ROLLOUT:-}}\" ] || exit 1;; esac\nexit 0\n",
                dir.join("calls").display()
            ),
        )
        .unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
        path
    }

    fn calls(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn upgrade_script_rolls_out_through_exec_mode() {
        let dir = tempfile::tempdir().unwrap();
        let kubectl = fake_kubectl(dir.path());
        let command = format!(
            "KUBECTL='{}' UPGRADE_NAMESPACE=ga4gh UPGRADE_WORKLOAD=deployment/cwl-wes UPGRADE_CONTAINER=wes '{}'",
            kubectl.display(),
            deploy("upgrade.sh").display()
        );
        let state = state_with(Applier::Exec(Exec {
            command,
            timeout: Duration::from_secs(20),
        }))
        .await;
        state.store.seed_applied(IMAGE, V1).await.unwrap();
        assert_eq!(send(&state, callback("evt_2", V2)).await.0, StatusCode::ACCEPTED);
        run_pending(&state).await.unwrap();
        let history = state.store.history(1).await.unwrap();
        assert_eq!(history[0].outcome, Outcome::Applied, "{}", history[0].reason);
        let d = digest(V2.len() as u8);
        assert_eq!(
            calls(dir.path()),
            [
                format!("--namespace ga4gh set image deployment/cwl-wes wes={IMAGE}:{V2}@{d}"),
                format!(
                    "--namespace ga4gh annotate --overwrite deployment/cwl-wes tagcast.elixir-cloud.org/digest={d} \
                     tagcast.elixir-cloud.org/tag={V2} tagcast.elixir-cloud.org/event-id=evt_2 \
                     kubernetes.io/change-cause=tagcast: {IMAGE} {V1} -> {V2}"
                ),
                "--namespace ga4gh rollout status deployment/cwl-wes --timeout=300s".to_owned(),
            ]
        );
    }

    #[test]
    fn upgrade_script_rolls_back_a_failed_rollout_and_checks_its_input() {
        let dir = tempfile::tempdir().unwrap();
        let kubectl = fake_kubectl(dir.path());
        let d = digest(1);
        let run = |fail: bool, reference: &str| {
            let mut cmd = Command::new("sh");
            cmd.arg(deploy("upgrade.sh"))
                .env("KUBECTL", &kubectl)
                .env("TAGCAST_IMAGE", IMAGE)
                .env("TAGCAST_TAG", V2)
                .env("TAGCAST_DIGEST", d.to_string())
                .env("TAGCAST_REFERENCE", reference)
                .env("TAGCAST_EVENT_ID", "evt_2")
                .env("UPGRADE_TIMEOUT", "5s");
            if fail {
                cmd.env("FAIL_ROLLOUT", "1");
            }
            cmd.output().unwrap()
        };
        let output = run(true, &format!("{IMAGE}:{V2}@{d}"));
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let calls = calls(dir.path());
        assert_eq!(
            calls[0],
            format!("--namespace default set image deployment/cwl-wes cwl-wes={IMAGE}:{V2}@{d}")
        );
        assert_eq!(calls[3], "--namespace default rollout undo deployment/cwl-wes");
        assert!(String::from_utf8_lossy(&output.stderr).contains("rolling back"));

        let output = run(false, &format!("{IMAGE}:{V2}"));
        assert_eq!(output.status.code(), Some(2), "a reference without digest is refused");
        let mut cmd = Command::new("sh");
        let output = cmd
            .arg(deploy("upgrade.sh"))
            .env_remove("TAGCAST_IMAGE")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains("TAGCAST_IMAGE is not set"));
    }

    /// The objects of a manifest file, as kubectl reads them (offline).
    fn objects(file: &str) -> Vec<Value> {
        let output = Command::new("kubectl")
            .args(["label", "--local", "-o", "json", "-f"])
            .arg(deploy(file))
            .arg("tagcast.test/parsed=true")
            .output()
            .expect("kubectl runs");
        assert!(
            output.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::Deserializer::from_slice(&output.stdout)
            .into_iter::<Value>()
            .map(Result::unwrap)
            .collect()
    }

    fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    fn env<'a>(container: &'a Value, name: &str) -> &'a Value {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no env {name}"))
    }

    fn check_deployer(objects: &[Value]) -> (String, String) {
        let deployment = find(objects, "Deployment", "tagcast-deployer");
        let ns = deployment["metadata"]["namespace"].as_str().unwrap().to_owned();
        assert!(
            objects.iter().all(|o| o["metadata"]["namespace"] == ns.as_str()),
            "one namespace"
        );
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "tagcast-deployer");
        assert_eq!(deployment["spec"]["replicas"], 1, "one writer of the state file");
        assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
        let container = &pod["containers"][0];
        assert_eq!(env(container, "TAGCAST_APPLY")["value"], "kubernetes");
        assert_eq!(env(container, "TAGCAST_NAMESPACE")["value"], ns.as_str());
        assert_eq!(
            env(container, "TAGCAST_SECRET")["valueFrom"]["secretKeyRef"]["key"],
            "secret"
        );
        assert!(
            env(container, "TAGCAST_SECRET").get("value").is_none(),
            "no secret in the manifest"
        );
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/healthz");
        let security = &container["securityContext"];
        assert_eq!(security["allowPrivilegeEscalation"], false);
        assert_eq!(security["readOnlyRootFilesystem"], true);
        assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
        assert!(security.get("runAsUser").is_none() && pod["securityContext"].get("runAsUser").is_none());
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let state = env(container, "TAGCAST_STATE")["value"].as_str().unwrap();
        let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
        assert!(
            state.starts_with(&format!("{mount}/")),
            "the state file is on the volume"
        );
        let claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
            .as_str()
            .unwrap();
        find(objects, "PersistentVolumeClaim", claim);

        // The Role may only get and patch the one managed Deployment.
        let workload = env(container, "TAGCAST_DEPLOYMENT")["value"]
            .as_str()
            .unwrap()
            .to_owned();
        let role = find(objects, "Role", "tagcast-deployer");
        assert_eq!(
            role["rules"],
            json!([{"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": [workload], "verbs": ["get", "patch"]}])
        );
        let binding = find(objects, "RoleBinding", "tagcast-deployer");
        assert_eq!(binding["roleRef"]["name"], "tagcast-deployer");
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": "tagcast-deployer", "namespace": ns}])
        );
        let service = find(objects, "Service", "tagcast-deployer");
        assert_eq!(
            service["spec"]["selector"],
            deployment["spec"]["template"]["metadata"]["labels"].clone()
        );
        let route = env(container, "TAGCAST_ROUTE")["value"].as_str().unwrap().to_owned();
        (workload, route)
    }

    #[test]
    #[ignore = "needs kubectl"]
    fn kubernetes_manifests_are_valid_and_least_privilege() {
        let deployer = objects("kubernetes/deployer.yaml");
        let (workload, route) = check_deployer(&deployer);
        let ingress = find(&deployer, "Ingress", "tagcast-deployer");
        assert_eq!(ingress["spec"]["rules"][0]["http"]["paths"][0]["path"], route.as_str());
        assert_eq!(
            ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
            "tagcast-deployer"
        );

        // The managed workload has the container and image the deployer names.
        let wes = objects("kubernetes/cwl-wes.yaml");
        let target = find(&wes, "Deployment", &workload);
        let container = env(
            &find(&deployer, "Deployment", "tagcast-deployer")["spec"]["template"]["spec"]["containers"][0],
            "TAGCAST_CONTAINER",
        )["value"]
            .as_str()
            .unwrap()
            .to_owned();
        let image = target["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == container.as_str())
            .expect("the named container")["image"]
            .as_str()
            .unwrap();
        assert_eq!(
            tagcast_spec::ImageReference::parse(image).unwrap().repository(),
            Repository::parse(IMAGE).unwrap()
        );

        let broker = objects("kubernetes/broker.yaml");
        let deployment = find(&broker, "Deployment", "tagcast-broker");
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            pod["automountServiceAccountToken"], false,
            "the broker has no cluster access"
        );
        find(&broker, "ServiceAccount", pod["serviceAccountName"].as_str().unwrap());
        find(
            &broker,
            "PersistentVolumeClaim",
            pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
                .as_str()
                .unwrap(),
        );
        let c = &pod["containers"][0];
        assert_eq!(c["args"], json!(["broker"]));
        assert_eq!(
            env(c, "TAGCAST_ADMIN_TOKEN")["valueFrom"]["secretKeyRef"]["key"],
            "admin-token"
        );
        assert!(!broker.iter().any(|o| o["kind"] == "Role" || o["kind"] == "RoleBinding"));
    }

    #[test]
    #[ignore = "needs kubectl"]
    fn openshift_manifest_is_the_kubernetes_one_with_a_route() {
        let kubernetes = objects("kubernetes/deployer.yaml");
        let openshift = objects("openshift/deployer.yaml");
        let (_, route) = check_deployer(&openshift);
        let without = |objects: &[Value], kind: &str| -> Vec<Value> {
            objects.iter().filter(|o| o["kind"] != kind).cloned().collect()
        };
        assert_eq!(
            without(&openshift, "Route"),
            without(&kubernetes, "Ingress"),
            "the same objects otherwise"
        );
        let r = find(&openshift, "Route", "tagcast-deployer");
        assert_eq!(r["spec"]["path"], route.as_str());
        assert_eq!(r["spec"]["to"]["name"], "tagcast-deployer");
        assert_eq!(r["spec"]["tls"]["termination"], "edge");
        assert_eq!(r["spec"]["tls"]["insecureEdgeTerminationPolicy"], "Redirect");
    }

    #[test]
    #[ignore = "needs kubectl"]
    fn kubectl_set_image_pins_the_example_workload_offline() {
        let output = Command::new("kubectl")
            .args(["set", "image", "--local", "-o", "json", "-f"])
            .arg(deploy("kubernetes/cwl-wes.yaml"))
            .arg(format!("wes={IMAGE}:{V2}@{}", digest(1)))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let object: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            object["spec"]["template"]["spec"]["containers"][0]["image"],
            format!("{IMAGE}:{V2}@{}", digest(1))
        );
    }
}

mod kubectl {
    use std::process::Command;

    use tagcast_deployer::apply::kubectl::Kubectl;

    use super::*;

    /// A kubectl stand-in logging its arguments; `rollout status` exits
    /// with `status`.
    fn fake(dir: &Path, status: u8) -> std::path::PathBuf {
        let path = dir.join("kubectl");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\ncase \"$*\" in *'rollout status'*) exit {status};; esac\nexit 0\n",
                dir.join("calls").display()
            ),
        )
        .unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
        path
    }

    fn mode(program: &Path, args: &[&str]) -> Applier {
        Applier::Kubectl(Kubectl {
            program: program.as_os_str().to_owned(),
            namespace: Some("ga4gh".into()),
            name: "cwl-wes".into(),
            kind: WorkloadKind::StatefulSet,
            container: Some("wes".into()),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            rollout_timeout: Duration::from_secs(120),
            timeout: Duration::from_secs(10),
        })
    }

    fn calls(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("calls"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn set_image_then_rollout_status() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_with(mode(&fake(dir.path(), 0), &["--context", "prod"])).await;
        send(&state, callback("evt_1", V1)).await;
        run_pending(&state).await.unwrap();
        let d = digest(V1.len() as u8);
        assert_eq!(
            calls(dir.path()),
            [
                format!("--namespace ga4gh set image statefulset/cwl-wes --context prod wes={IMAGE}:{V1}@{d}"),
                "--namespace ga4gh rollout status statefulset/cwl-wes --context prod --timeout=120s".to_owned(),
            ]
        );
        assert_eq!(state.store.history(1).await.unwrap()[0].outcome, Outcome::Applied);
    }

    #[tokio::test]
    async fn failed_rollout_is_undone_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_with(mode(&fake(dir.path(), 1), &[])).await;
        send(&state, callback("evt_1", V1)).await;
        run_pending(&state).await.unwrap();
        let calls = calls(dir.path());
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[2], "--namespace ga4gh rollout undo statefulset/cwl-wes");
        let history = state.store.history(1).await.unwrap();
        assert_eq!(history[0].outcome, Outcome::Failed);
        assert!(
            history[0].reason.starts_with("kubectl rollout failed (rolled back)"),
            "{}",
            history[0].reason
        );
        assert!(state.store.applied(IMAGE).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn with_a_file_the_objects_come_from_it_and_local_skips_the_rollout() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_with(mode(&fake(dir.path(), 1), &["--local", "-f", "m.yaml", "-o", "yaml"])).await;
        send(&state, callback("evt_1", V1)).await;
        run_pending(&state).await.unwrap();
        let d = digest(V1.len() as u8);
        assert_eq!(
            calls(dir.path()),
            [format!(
                "--namespace ga4gh set image --local -f m.yaml -o yaml wes={IMAGE}:{V1}@{d}"
            )]
        );
        assert_eq!(state.store.history(1).await.unwrap()[0].outcome, Outcome::Applied);
    }
}
