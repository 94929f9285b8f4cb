//! Inbound hooks over real HTTP: tokens, both Distribution envelope media
//! types, what is ignored and why, deduplication, the body limit, generic.

use serde_json::{Value, json};
use tagcast_spec::webhook::{self, Secret};

use crate::support::broker::{Broker, TOKEN};
use crate::support::distribution::{self, MEDIA_TYPE_V1, blob_push, envelope, manifest_push};
use crate::support::receiver::Receiver;
use crate::support::sqlite;

const REPO: &str = "registry.example.org:5000/team/app";

async fn hook_url(broker: &Broker) -> String {
    let receiver = Receiver::start(&[]).await;
    let created = broker.subscribe("svc", &[REPO], "production", &receiver.url).await;
    created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned()
}

async fn post(broker: &Broker, url: &str, media_type: &str, body: String) -> reqwest::Response {
    broker
        .client
        .post(url)
        .header("content-type", media_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn unknown_token_is_404_and_stores_nothing() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let url = hook_url(&broker).await;
    let wrong = format!("{}/hooks/distribution/{}", broker.url, "x".repeat(43));
    let body = envelope(vec![manifest_push(
        "ev-1",
        "team/app",
        Some("1.1.0-production-201108-195630"),
        1,
    )]);
    let r = post(&broker, &wrong, MEDIA_TYPE_V1, body.clone()).await;
    assert_eq!(r.status(), 404);
    // The right token under another kind is unknown too.
    let other_kind = url.replace("/hooks/distribution/", "/hooks/generic/");
    assert_eq!(post(&broker, &other_kind, MEDIA_TYPE_V1, body).await.status(), 404);
    assert!(broker.state.store.inbound_events(10).await.unwrap().is_empty());
    let metrics = broker
        .client
        .get(format!("{}/metrics", broker.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"tagcast_hooks_rejected_total{kind="distribution",reason="unknown_token"} 1"#),
        "{metrics}"
    );
    broker.stop().await;
}

#[tokio::test]
async fn distribution_events_are_accepted_or_ignored_with_a_reason() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let url = hook_url(&broker).await;
    let mut delete = manifest_push("ev-del", "team/app", None, 9);
    delete["action"] = json!("delete");
    let mut pull = manifest_push("ev-pull", "team/app", Some("1.1.0-production-201108-195630"), 8);
    pull["action"] = json!("pull");
    let body = envelope(vec![
        blob_push("team/app", 1),
        manifest_push("ev-untagged", "team/app", None, 2),
        manifest_push("ev-latest", "team/app", Some("latest"), 3),
        delete,
        pull,
        manifest_push("ev-ok", "team/app", Some("1.1.0-production-201108-195630"), 4),
    ]);
    let r = post(&broker, &url, MEDIA_TYPE_V1, body).await;
    assert_eq!(r.status(), 202);
    let answer: Value = r.json().await.unwrap();
    let statuses: Vec<&str> = answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["ignored", "ignored", "ignored", "ignored", "ignored", "accepted"]
    );
    let reasons: Vec<&str> = answer["events"].as_array().unwrap()[..5]
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(reasons[0].starts_with("blob push"), "{reasons:?}");
    assert!(reasons[1].starts_with("untagged manifest"), "{reasons:?}");
    assert!(reasons[2].starts_with("tag outside the grammar"), "{reasons:?}");
    assert!(reasons[3].contains("\"delete\""), "{reasons:?}");
    assert!(reasons[4].contains("\"pull\""), "{reasons:?}");
    for traffic in [0, 4] {
        assert_eq!(answer["events"][traffic]["stored"], false, "{answer}");
        assert!(answer["events"][traffic].get("id").is_none(), "{answer}");
    }

    // The v2 media type (Distribution 3.x) is read the same way; a repeat is a duplicate.
    let again = envelope(vec![manifest_push(
        "ev-ok",
        "team/app",
        Some("1.1.0-production-201108-195630"),
        4,
    )]);
    let r = post(
        &broker,
        &url,
        "application/vnd.docker.distribution.events.v2+json",
        again,
    )
    .await;
    assert_eq!(r.status(), 202);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["events"][0]["status"], "ignored");
    assert!(
        answer["events"][0]["reason"].as_str().unwrap().starts_with("duplicate"),
        "{answer}"
    );

    // A body that is not the kind's format is refused with the error body
    // and stores nothing.
    let r = post(&broker, &url, MEDIA_TYPE_V1, "{\"not\": \"an envelope\"}".into()).await;
    assert_eq!(r.status(), 400);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["code"], "invalid_request");
    assert!(
        error["detail"].as_str().unwrap().contains("not a distribution webhook"),
        "{error}"
    );

    // The event log shows all of it to the admin, except the pull and the
    // blob push: traffic, counted and not stored (issue 11, finding 6).
    let log = Value::Array(broker.events().await);
    assert_eq!(log.as_array().unwrap().len(), 5);
    assert!(log[0]["reason"].as_str().unwrap().starts_with("duplicate"), "{log}");
    assert_eq!(
        broker
            .client
            .get(format!("{}/hooks/events", broker.url))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    broker.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let broker = Broker::start(sqlite().await, |c| c.body_limit = 4096).await;
    let url = hook_url(&broker).await;
    let big = envelope(vec![blob_push("team/app", 1); 40]);
    assert!(big.len() > 4096);
    let r = post(&broker, &url, MEDIA_TYPE_V1, big).await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "payload_too_large");
    assert!(broker.state.store.inbound_events(10).await.unwrap().is_empty());
    broker.stop().await;
}

#[tokio::test]
async fn generic_hooks_are_signed_like_callbacks() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let body = json!({
        "id": "svc-generic",
        "name": "TES",
        "type": {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"},
        "organization": {"name": "Example", "url": "https://example.org"},
        "version": "1.0.0",
        "url": "https://tes.example.org/ga4gh/tes/v1",
        "subscription": {
            "images": ["registry.example.org/tes/funnel"],
            "stage": "staging",
            "callbackUrl": receiver.url,
            "registry": {"kind": "generic"}
        }
    });
    let created: Value = broker.register(&body).await.json().await.unwrap();
    let hook = &created["subscription"]["hooks"][0];
    assert_eq!(hook["kind"], "generic");
    let url = hook["url"].as_str().unwrap();
    let read: Value = broker
        .client
        .get(broker.api("/services/svc-generic"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["subscription"]["hooks"][0]["kind"], "generic");
    assert!(
        read["subscription"]["hooks"][0].get("url").is_none(),
        "a public read does not show the hook's token: {read}"
    );
    assert!(
        read["subscription"]["hooks"][0].get("secret").is_none(),
        "a public read does not show the hook secret: {read}"
    );
    let admin_read: Value = broker
        .client
        .get(broker.api("/services/svc-generic"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        admin_read["subscription"]["hooks"][0]["url"], url,
        "an admin read shows the hook URL"
    );
    assert_eq!(
        admin_read["subscription"]["hooks"][0]["secret"], hook["secret"],
        "an admin read shows the hook secret"
    );
    let secret = Secret::parse(hook["secret"].as_str().expect("the hook secret")).unwrap();
    let event = json!({
        "id": "push_1",
        "action": "push",
        "repository": "registry.example.org/tes/funnel",
        "tag": "1.1.0-staging-240229-235959",
        "digest": distribution::digest(7),
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "timestamp": "2024-02-29T23:59:59Z"
    })
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let send = |signature: String| {
        broker
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", "push_1")
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature)
            .body(event.clone())
            .send()
    };
    let wrong = Secret::generate([9; 32]);
    let r = send(webhook::sign(&wrong, "push_1", now, event.as_bytes()))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_signature");
    assert!(broker.state.store.inbound_events(10).await.unwrap().is_empty());

    let r = send(webhook::sign(&secret, "push_1", now, event.as_bytes()))
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["events"][0]["status"], "accepted", "{answer}");
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["data"]["tag"], "1.1.0-staging-240229-235959");
    broker.stop().await;
}

#[tokio::test]
async fn a_configured_hook_token_is_required_on_distribution_hooks() {
    let broker = Broker::start(sqlite().await, |c| c.hook_token = Some("hook-bearer-0123456789".into())).await;
    let url = hook_url(&broker).await;
    let body = envelope(vec![manifest_push(
        "ev-1",
        "team/app",
        Some("1.1.0-production-201108-195630"),
        1,
    )]);
    let send = |authorization: Option<&'static str>| {
        let mut request = broker
            .client
            .post(&url)
            .header("content-type", MEDIA_TYPE_V1)
            .body(body.clone());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };
    for wrong in [None, Some("Bearer hook-bearer-9876543210"), Some("Basic aG9vaw==")] {
        let r = send(wrong).await.unwrap();
        assert_eq!(r.status(), 401, "{wrong:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_signature");
    }
    assert!(
        broker.state.store.inbound_events(10).await.unwrap().is_empty(),
        "nothing stored"
    );
    let r = send(Some("Bearer hook-bearer-0123456789")).await.unwrap();
    assert_eq!(r.status(), 202);
    broker.stop().await;
}
