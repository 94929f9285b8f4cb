//! The attack catalogue, deployer rows (issue 11; `SECURITY.md` lists each
//! test by name). Every test asserts the answer AND that nothing changed:
//! no hook run, no history row, nothing queued, nothing applied, hold flag
//! untouched. The slow-client rows need a real socket: `server.rs`; the
//! GitOps symlink rows: `gitops.rs`.

use axum::http::HeaderValue;

use crate::*;

const ADMIN: &str = "admin-token-0123456789-abcdef";

/// An exec hook recording its runs, and state in memory.
async fn target() -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with(recording_exec(&dir.path().join("runs"))).await;
    let mut config = (*state.config).clone();
    config.admin_token = Some(ADMIN.to_owned());
    (dir, AppState::new(config, state.store.clone()))
}

/// Nothing happened: no run, no history, no queue, nothing applied, no hold.
async fn assert_unchanged(dir: &tempfile::TempDir, state: &AppState) {
    assert_eq!(run_pending(state).await.unwrap(), 0, "nothing to apply");
    assert!(runs(&dir.path().join("runs")).is_empty(), "the hook never ran");
    let status = state.store.status(100).await.unwrap();
    assert!(status.history.is_empty(), "no history row: {:?}", status.history);
    assert_eq!(status.pending, 0, "nothing queued");
    assert!(status.applied.is_empty(), "nothing applied");
    assert!(!status.hold.held, "hold flag untouched");
}

fn with_header(mut request: Request<Body>, name: &'static str, value: &str) -> Request<Body> {
    request
        .headers_mut()
        .insert(name, HeaderValue::from_str(value).unwrap());
    request
}

#[tokio::test]
async fn callback_without_signature_is_401_and_changes_nothing() {
    let (dir, state) = target().await;
    let mut request = callback("evt_1", V1);
    request.headers_mut().remove("webhook-signature");
    let (status, body) = send(&state, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "invalid_signature");
    assert_unchanged(&dir, &state).await;
}

#[tokio::test]
async fn callback_signed_with_another_secret_is_401_and_changes_nothing() {
    let (dir, state) = target().await;
    let other = Secret::generate([7; 32]);
    let (status, body) = send(&state, signed("evt_1", event("evt_1", IMAGE, V1, None), &other, now())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["detail"], "invalid signature (CB-5)");
    assert_unchanged(&dir, &state).await;
}

#[tokio::test]
async fn callback_with_truncated_signature_is_401_and_changes_nothing() {
    let (dir, state) = target().await;
    let request = callback("evt_1", V1);
    let full = request.headers()["webhook-signature"].to_str().unwrap().to_owned();
    let truncated = &full[..full.len() / 2];
    let (status, body) = send(&state, with_header(request, "webhook-signature", truncated)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_unchanged(&dir, &state).await;
}

#[tokio::test]
async fn callback_with_a_body_changed_after_signing_is_401_and_changes_nothing() {
    let (dir, state) = target().await;
    let body = event("evt_1", IMAGE, V1, None);
    let signature = sign(&secret(), "evt_1", now(), &body);
    // The signature of V1's body, on V2's body.
    let mut request = signed("evt_1", event("evt_1", IMAGE, V2, None), &secret(), now());
    request = with_header(request, "webhook-signature", &signature);
    let (status, _) = send(&state, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_unchanged(&dir, &state).await;
}

#[tokio::test]
async fn callback_replayed_after_the_tolerance_is_401_and_changes_nothing() {
    let (dir, state) = target().await;
    // A capture from an hour ago, signature intact.
    let old = now() - 3600;
    let (status, body) = send(&state, signed("evt_1", event("evt_1", IMAGE, V1, None), &secret(), old)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["requirement"], "CB-6");
    assert_unchanged(&dir, &state).await;
}

#[tokio::test]
async fn callback_replayed_within_the_tolerance_is_a_duplicate_applied_once() {
    let (dir, state) = target().await;
    let body = event("evt_1", IMAGE, V1, None);
    let at = now();
    let (status, _) = send(&state, signed("evt_1", body.clone(), &secret(), at)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    run_pending(&state).await.unwrap();
    let before = state.store.status(100).await.unwrap();

    let (status, answer) = send(&state, signed("evt_1", body, &secret(), at)).await;
    assert_eq!((status, answer["status"].clone()), (StatusCode::OK, json!("duplicate")));
    assert_eq!(run_pending(&state).await.unwrap(), 0);
    assert_eq!(runs(&dir.path().join("runs")).len(), 1, "applied once");
    let after = state.store.status(100).await.unwrap();
    assert_eq!(after.history, before.history, "no new history row");
    assert_eq!(after.applied, before.applied);
}

/// Issue 11, finding 7: the seen ids survive a restart with a state file,
/// so a captured callback replayed after the restart is not applied again.
#[tokio::test]
async fn callback_replayed_after_a_restart_with_state_is_a_duplicate_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = Config::new(
            vec![secret()],
            vec![Repository::parse(IMAGE).unwrap()],
            policy(),
            recording_exec(&dir.path().join("runs")),
        );
        config.state = Some(dir.path().join("state.db"));
        config
    };
    let body = event("evt_1", IMAGE, V1, None);
    let at = now();
    let first = AppState::open(config()).await.unwrap();
    assert_eq!(
        send(&first, signed("evt_1", body.clone(), &secret(), at)).await.0,
        StatusCode::ACCEPTED
    );
    run_pending(&first).await.unwrap();
    first.store.close().await;

    let restarted = AppState::open(config()).await.unwrap();
    let (status, answer) = send(&restarted, signed("evt_1", body, &secret(), at)).await;
    assert_eq!((status, answer["status"].clone()), (StatusCode::OK, json!("duplicate")));
    assert_eq!(run_pending(&restarted).await.unwrap(), 0);
    assert_eq!(
        runs(&dir.path().join("runs")).len(),
        1,
        "applied once across the restart"
    );
    assert_eq!(
        restarted.store.history(100).await.unwrap().len(),
        1,
        "no new history row"
    );
}

#[tokio::test]
async fn oversized_body_is_413_and_changes_nothing() {
    let (dir, state) = target().await;
    let mut body = event("evt_1", IMAGE, V1, None);
    body.resize(state.config.body_limit + 1, b' ');
    let (status, answer) = send(&state, signed("evt_1", body, &secret(), now())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["code"], "payload_too_large");
    assert_unchanged(&dir, &state).await;
}

#[tokio::test]
async fn deeply_nested_json_is_400_and_changes_nothing() {
    let (dir, state) = target().await;
    // 100 000 levels: a stranger's is refused before it is parsed (the
    // signature is checked on the bytes); a signed one meets the parser's
    // depth limit. Either way an answer, and the stack holds.
    let depth = 100_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
    let stranger = Secret::generate([7; 32]);
    let (status, _) = send(&state, signed("evt_1", nested.clone(), &stranger, now())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, answer) = send(&state, signed("evt_1", nested, &secret(), now())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "invalid_request");
    assert_unchanged(&dir, &state).await;
}

#[tokio::test]
async fn wrong_content_types_are_415_and_change_nothing() {
    let (dir, state) = target().await;
    for content_type in ["text/plain", "application/json", "multipart/form-data; boundary=x", ""] {
        let request = with_header(callback("evt_1", V1), "content-type", content_type);
        let (status, answer) = send(&state, request).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type:?}: {answer}");
        assert_eq!(answer["code"], "unsupported_media_type");
    }
    assert_unchanged(&dir, &state).await;
}

fn admin_request(method: Method, uri: &str, authorization: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn admin_routes_without_or_with_a_wrong_token_are_401_and_change_nothing() {
    let (dir, state) = target().await;
    let longer = format!("{ADMIN}x");
    let wrong = [
        None,
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Bearer {}", &ADMIN[..ADMIN.len() - 1])),
        Some(format!("Bearer {longer}")),
        Some(format!("Basic {ADMIN}")),
        Some(ADMIN.to_owned()),
    ];
    for (method, uri) in [
        (Method::GET, "/status"),
        (Method::POST, "/hold?reason=attack"),
        (Method::POST, "/release"),
    ] {
        for authorization in &wrong {
            let (status, body) = send(&state, admin_request(method.clone(), uri, authorization.as_deref())).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with {authorization:?}"
            );
            assert_eq!(body["code"], "unauthorized");
            assert!(body.get("hold").is_none() && body.get("history").is_none(), "{body}");
        }
    }
    assert_unchanged(&dir, &state).await;
}

/// Issue 11, finding 9: the admin token in the URL is refused, like none.
#[tokio::test]
async fn admin_token_in_the_query_string_is_401_and_changes_nothing() {
    let (dir, state) = target().await;
    for (method, uri) in [
        (Method::GET, format!("/status?token={ADMIN}")),
        (Method::POST, format!("/hold?token={ADMIN}")),
        (Method::POST, format!("/release?token={ADMIN}")),
    ] {
        let (status, body) = send(&state, admin_request(method, &uri, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}: {body}");
        assert!(body.get("hold").is_none(), "no status read: {body}");
    }
    assert_unchanged(&dir, &state).await;
    // The same token as a Bearer header works.
    let (status, _) = send(
        &state,
        admin_request(Method::GET, "/status", Some(&format!("Bearer {ADMIN}"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// Every answer a stranger can get, and the admin's status, never carry
/// the signing secret or the admin token.
#[tokio::test]
async fn reads_never_return_a_secret() {
    let (dir, state) = target().await;
    let secret_text = secret().expose();
    send(&state, callback("evt_1", V1)).await;
    run_pending(&state).await.unwrap();
    let mut answers = Vec::new();
    for request in [
        admin_request(Method::GET, "/healthz", None),
        admin_request(Method::GET, "/metrics", None),
        admin_request(Method::OPTIONS, "/", None),
        admin_request(Method::GET, "/status", None),
        admin_request(Method::GET, "/status", Some(&format!("Bearer {ADMIN}"))),
        callback("evt_1", V1),
        signed("evt_x", b"{}".to_vec(), &Secret::generate([9; 32]), now()),
    ] {
        let response = app(state.clone()).oneshot(request).await.unwrap();
        let headers = format!("{:?}", response.headers());
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        answers.push(format!("{headers}\n{}", String::from_utf8_lossy(&body)));
    }
    for answer in &answers {
        assert!(!answer.contains(&secret_text[6..]), "the secret leaked: {answer}");
        assert!(!answer.contains(ADMIN), "the admin token leaked: {answer}");
    }
    assert!(
        answers[4].contains("\"history\""),
        "the status was read: {}",
        answers[4]
    );
    let debug = format!("{state:?}");
    assert!(!debug.contains(&secret_text[6..]) && !debug.contains(ADMIN), "{debug}");
    assert_eq!(runs(&dir.path().join("runs")).len(), 1);
}

/// Every attack above, at debug level, with the log captured: no secret,
/// token or signature the test used appears in it.
#[tokio::test]
async fn logs_never_carry_a_secret_token_or_signature() {
    // tracing caches per call site whether anyone listens; a site first
    // hit by a parallel test while this test's subscriber was being
    // registered can miss it once. The capture is checked (the rejection
    // and the config lines are there) and the scenario run again if not,
    // so the search below never passes on an empty log.
    let mut attempt = 0;
    let (log, signature, other) = loop {
        attempt += 1;
        let (log, signature, other) = log_every_attack().await;
        let complete =
            log.contains("rejected callback") && log.contains("admin request refused") && log.contains("Config {");
        if complete || attempt == 5 {
            break (log, signature, other);
        }
    };
    assert!(log.contains("rejected callback"), "the log was captured: {log}");
    assert!(log.contains("admin request refused"), "{log}");
    assert!(log.contains("Config {"), "{log}");
    let signature_value = signature.split_once(',').unwrap().1;
    for (what, needle) in [
        ("secret", &secret().expose()[6..]),
        ("other secret", &other.expose()[6..]),
        ("admin token", ADMIN),
        ("wrong token", "wrong-token-0123456789"),
        ("signature", signature_value),
    ] {
        assert!(!log.contains(needle), "the {what} is in the log:\n{log}");
    }
}

/// Issue 11, finding 4: the state file and its `-wal` and `-shm` are
/// created readable by their owner only, and an existing world-readable
/// file is closed down at open.
#[cfg(unix)]
#[tokio::test]
async fn state_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = tagcast_deployer::Store::open(&path).await.unwrap();
    store.set_hold(true, Some("write something")).await.unwrap();
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} is {mode:o}");
    }
    store.close().await;

    let old = dir.path().join("old.db");
    std::fs::write(&old, b"").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = tagcast_deployer::Store::open(&old).await.unwrap();
    assert_eq!(std::fs::metadata(&old).unwrap().permissions().mode() & 0o777, 0o600);
    store.close().await;
}

/// The attacks of the test above, with the log at debug captured; the
/// log, the good signature and the other secret.
async fn log_every_attack() -> (String, String, Secret) {
    let (captured, guard) = capture_logs(tracing::Level::DEBUG);

    let (_dir, state) = target().await;
    let other = Secret::generate([7; 32]);
    let good = callback("evt_1", V1);
    let signature = good.headers()["webhook-signature"].to_str().unwrap().to_owned();
    send(&state, good).await;
    run_pending(&state).await.unwrap();
    send(&state, signed("evt_2", event("evt_2", IMAGE, V2, None), &other, now())).await;
    send(
        &state,
        with_header(callback("evt_3", V2), "webhook-signature", &signature[..10]),
    )
    .await;
    send(
        &state,
        admin_request(Method::GET, &format!("/status?token={ADMIN}"), None),
    )
    .await;
    send(
        &state,
        admin_request(Method::POST, "/hold", Some("Bearer wrong-token-0123456789")),
    )
    .await;
    send(
        &state,
        admin_request(Method::GET, "/status", Some(&format!("Bearer {ADMIN}"))),
    )
    .await;
    tracing::debug!(config = ?state.config, "config");

    drop(guard);
    (captured.text(), signature, other)
}
