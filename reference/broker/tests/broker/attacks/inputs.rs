//! Hostile input on every route (the catalogue's hook, JSON, content-type,
//! name and admin rows): each is refused with the rule named, and nothing
//! changes — no event stored, no service written, no delivery made.

use serde_json::{Value, json};
use tagcast_spec::webhook::{self, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secret};

use super::assert_no_event;
use crate::support::broker::{Broker, TOKEN};
use crate::support::distribution::{MEDIA_TYPE_V1, digest, envelope, manifest_push};
use crate::support::receiver::Receiver;
use crate::support::registration;
use crate::support::sqlite;

const TAG: &str = "1.1.0-production-201108-195630";

fn wes(id: &str, images: &[&str], stage: &str, kind: &str, callback: &str) -> Value {
    registration(
        id,
        json!({"images": images, "stage": stage, "callbackUrl": callback, "registry": {"kind": kind}}),
    )
}

/// A broker with one `generic` subscription: (broker, receiver, hook URL, hook secret).
async fn generic() -> (Broker, Receiver, String, Secret) {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let r = broker
        .register(&wes(
            "svc",
            &["registry.example.org/team/app"],
            "production",
            "generic",
            &receiver.url,
        ))
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let hook = &created["subscription"]["hooks"][0];
    let secret = Secret::parse(hook["secret"].as_str().unwrap()).unwrap();
    (broker, receiver, hook["url"].as_str().unwrap().to_owned(), secret)
}

fn generic_event(id: &str, tag: &str) -> String {
    json!({
        "id": id, "action": "push", "repository": "registry.example.org/team/app", "tag": tag,
        "digest": digest(1), "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "timestamp": "2020-11-08T19:56:30Z"
    })
    .to_string()
}

async fn post_signed(broker: &Broker, url: &str, id: &str, timestamp: i64, signature: &str, body: &str) -> u16 {
    broker
        .client
        .post(url)
        .header("content-type", "application/json")
        .header(HEADER_ID, id)
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_SIGNATURE, signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Nothing was delivered and nothing is queued for `svc`.
async fn assert_no_delivery(broker: &Broker, receiver: &Receiver) {
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(receiver.received().is_empty(), "no callback");
    let queued = broker.state.store.deliveries("svc", 10).await.unwrap();
    assert!(queued.is_empty(), "no delivery: {queued:?}");
}

#[tokio::test]
async fn hooks_with_truncated_tokens_and_signatures_are_refused_and_store_nothing() {
    let (broker, receiver, url, secret) = generic().await;
    let (base, token) = url.rsplit_once('/').unwrap();
    let body = generic_event("push-1", TAG);
    let now = chrono::Utc::now().timestamp();
    let signature = webhook::sign(&secret, "push-1", now, body.as_bytes());
    for truncated in [&token[..token.len() - 1], &token[..token.len() / 2], &token[..1], ""] {
        let status = post_signed(
            &broker,
            &format!("{base}/{truncated}"),
            "push-1",
            now,
            &signature,
            &body,
        )
        .await;
        assert!(status == 404 || status == 405, "token {truncated:?}: {status}");
    }
    for bad in [
        signature[..signature.len() - 1].to_owned(),
        signature[..signature.len() / 2].to_owned(),
        "v1,".to_owned(),
        "v1".to_owned(),
        String::new(),
        webhook::sign(&Secret::generate([7; 32]), "push-1", now, body.as_bytes()),
    ] {
        assert_eq!(
            post_signed(&broker, &url, "push-1", now, &bad, &body).await,
            401,
            "{bad:?}"
        );
    }
    assert_no_event(&broker).await;
    assert_no_delivery(&broker, &receiver).await;
    broker.stop().await;
}

#[tokio::test]
async fn replayed_hooks_are_duplicates_or_stale_and_deliver_once() {
    let (broker, receiver, url, secret) = generic().await;
    let body = generic_event("push-1", TAG);
    let now = chrono::Utc::now().timestamp();
    let signature = webhook::sign(&secret, "push-1", now, body.as_bytes());
    assert_eq!(post_signed(&broker, &url, "push-1", now, &signature, &body).await, 202);
    receiver.wait_for(1).await;
    // The captured request again, within the tolerance: a duplicate.
    assert_eq!(post_signed(&broker, &url, "push-1", now, &signature, &body).await, 202);
    // Signed an hour ago (a captured request replayed late): refused.
    let old = now - 3600;
    let stale = webhook::sign(&secret, "push-1", old, body.as_bytes());
    assert_eq!(post_signed(&broker, &url, "push-1", old, &stale, &body).await, 401);
    let events = broker.state.store.inbound_events(10).await.unwrap();
    assert_eq!(events.len(), 2, "the original and one duplicate: {events:?}");
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref().is_some_and(|r| r.starts_with("duplicate"))),
        "{events:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "delivered once");
    assert_eq!(broker.state.store.deliveries("svc", 10).await.unwrap().len(), 1);
    broker.stop().await;
}

#[tokio::test]
async fn oversized_and_deeply_nested_json_is_refused_on_every_route() {
    let (broker, receiver, url, _) = generic().await;
    let created = broker
        .subscribe("svc-distribution", &[super::REPO], "production", &receiver.url)
        .await;
    let distribution = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    let before = broker.state.store.services().await.unwrap();
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(broker.state.config.body_limit + 1));
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let routes = [
        ("POST", broker.api("/services"), "application/json"),
        ("PUT", broker.api("/services/svc"), "application/json"),
        ("POST", url.clone(), "application/json"),
        ("POST", distribution.clone(), MEDIA_TYPE_V1),
        (
            "POST",
            broker.api("/services/svc/deliveries/d/redeliver"),
            "application/json",
        ),
    ];
    for (method, at, content_type) in &routes {
        for (what, body) in [("oversized", &big), ("nested", &nested)] {
            let r = broker
                .client
                .request(method.parse().unwrap(), at)
                .bearer_auth(TOKEN)
                .header("content-type", *content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!((400..500).contains(&status), "{what} {method} {at}: {status} {text}");
            if what == "oversized" && !at.ends_with("/redeliver") {
                assert_eq!(status, 413, "{method} {at}: {text}");
            }
        }
    }
    assert_eq!(
        broker.state.store.services().await.unwrap(),
        before,
        "no service written"
    );
    assert_no_event(&broker).await;
    assert_no_delivery(&broker, &receiver).await;
    broker.stop().await;
}

#[tokio::test]
async fn wrong_content_types_are_refused_and_change_nothing() {
    let (broker, receiver, _, _) = generic().await;
    let created = broker
        .subscribe("svc-distribution", &[super::REPO], "production", &receiver.url)
        .await;
    let distribution = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    let before = broker.state.store.services().await.unwrap();
    let service = wes(
        "other",
        &["registry.example.org/team/app"],
        "production",
        "distribution",
        &receiver.url,
    )
    .to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ] {
        let r = broker
            .client
            .post(broker.api("/services"))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(service.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415, "{content_type}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "unsupported_media_type");
        let r = broker
            .client
            .post(&distribution)
            .header("content-type", content_type)
            .body(envelope(vec![manifest_push("ev-1", "team/app", Some(TAG), 1)]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{content_type}");
        let body: Value = r.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("content type"), "{body}");
    }
    assert_eq!(broker.state.store.services().await.unwrap(), before);
    assert_no_event(&broker).await;
    assert_no_delivery(&broker, &receiver).await;
    broker.stop().await;
}

#[tokio::test]
async fn path_traversal_and_control_characters_in_names_and_tags_are_refused() {
    let (broker, receiver, url, secret) = generic().await;
    let before = broker.state.store.services().await.unwrap();
    for image in [
        "registry.example.org/../etc/passwd",
        "registry.example.org/team/../../app",
        "registry.example.org/team/%2e%2e/app",
        "registry.example.org/team/app\n",
        "registry.example.org/team/a\u{0}pp",
        "registry.example.org/team/app\r\nX-Injected: 1",
        "registry.example.org/team\\app",
    ] {
        let r = broker
            .register(&wes("evil", &[image], "production", "generic", &receiver.url))
            .await;
        // 400 where the type refuses it while parsing, 422 where the rule does.
        let status = r.status().as_u16();
        assert!(status == 400 || status == 422, "{image:?}: {status}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{image:?}: {body}"
        );
    }
    for path in ["/services/..%2F..%2Fetc%2Fpasswd", "/services/%00", "/services/a%0Ab"] {
        let r = broker.client.get(broker.api(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    assert_eq!(broker.state.store.services().await.unwrap(), before, "nothing written");
    // Hooks naming such tags: refused or ignored with the reason, never matched.
    let now = chrono::Utc::now().timestamp();
    for (n, tag) in [
        "1.1.0-production-201108-195630\r\nX-Injected: 1",
        "1.1.0-production-201108-195630/../../x",
        "../1.1.0-production-201108-195630",
        "1.1.0-production-201108-19563\u{0}",
    ]
    .iter()
    .enumerate()
    {
        let id = format!("push-{n}");
        let body = generic_event(&id, tag);
        let signature = webhook::sign(&secret, &id, now, body.as_bytes());
        let status = post_signed(&broker, &url, &id, now, &signature, &body).await;
        assert!(status == 202 || status == 400, "{tag:?}: {status}");
    }
    let events = broker.state.store.inbound_events(20).await.unwrap();
    assert!(events.iter().all(|e| e.status != "accepted"), "{events:?}");
    assert_no_delivery(&broker, &receiver).await;
    broker.stop().await;
}

#[tokio::test]
async fn unicode_look_alikes_in_stage_names_are_refused() {
    let (broker, receiver, url, secret) = generic().await;
    // Cyrillic о, Greek ο, a fullwidth ｐ, a zero-width joiner, a dotless ı.
    let looks = [
        "prоduction",
        "prοduction",
        "ｐroduction",
        "produc\u{200d}tion",
        "demo\u{0131}",
    ];
    for stage in looks {
        let r = broker
            .register(&wes(
                "evil",
                &["registry.example.org/team/app"],
                stage,
                "generic",
                &receiver.url,
            ))
            .await;
        let status = r.status().as_u16();
        assert!(status == 400 || status == 422, "{stage:?}: {status}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("expected one of `production`"),
            "{stage:?}: {body}"
        );
        assert!(broker.state.store.service("evil").await.unwrap().is_none());
    }
    let now = chrono::Utc::now().timestamp();
    for (n, stage) in looks.iter().enumerate() {
        let id = format!("push-{n}");
        let body = generic_event(&id, &format!("1.1.0-{stage}-201108-195630"));
        let signature = webhook::sign(&secret, &id, now, body.as_bytes());
        let status = post_signed(&broker, &url, &id, now, &signature, &body).await;
        assert!(status == 202 || status == 400, "{stage:?}: {status}");
    }
    let events = broker.state.store.inbound_events(20).await.unwrap();
    assert!(events.iter().all(|e| e.status != "accepted"), "{events:?}");
    assert_no_delivery(&broker, &receiver).await;
    broker.stop().await;
}

#[tokio::test]
async fn admin_routes_without_or_with_a_wrong_token_are_refused_and_change_nothing() {
    let (broker, receiver, _, _) = generic().await;
    let before = broker.state.store.services().await.unwrap();
    let body = wes(
        "svc",
        &["registry.example.org/team/other"],
        "production",
        "generic",
        &receiver.url,
    );
    let routes = [
        ("POST", broker.api("/services")),
        ("PUT", broker.api("/services/svc")),
        ("DELETE", broker.api("/services/svc")),
        ("GET", broker.api("/services/svc/deliveries")),
        ("POST", broker.api("/services/svc/deliveries/d/redeliver")),
        ("GET", format!("{}/hooks/events", broker.url)),
    ];
    let wrong = [
        None,
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_owned()),
        Some("Bearer ".to_owned()),
    ];
    for (method, at) in &routes {
        for authorization in &wrong {
            let mut request = broker.client.request(method.parse().unwrap(), at).json(&body);
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            assert!(
                status == 401 || status == 403,
                "{method} {at} with {authorization:?}: {status}"
            );
            let text = r.text().await.unwrap();
            assert!(!text.contains(TOKEN), "{text}");
        }
        // The token in the query string is no token.
        let r = broker
            .client
            .request(method.parse().unwrap(), format!("{at}?token={TOKEN}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {at}?token=");
    }
    assert_eq!(
        broker.state.store.services().await.unwrap(),
        before,
        "nothing written or deleted"
    );
    assert_no_event(&broker).await;
    assert_no_delivery(&broker, &receiver).await;
    broker.stop().await;
}
