//! Re-checking tag -> digest against the registry API before delivering
//! (API-15): the registry is a wiremock server, named by `registry.url`.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::broker::Broker;
use crate::support::distribution::{MEDIA_TYPE_V1, digest, envelope, manifest_push};
use crate::support::receiver::Receiver;
use crate::support::registration;
use crate::support::sqlite;

const TAG: &str = "1.1.0-production-201108-195630";
const MANIFEST_PATH: &str = "/v2/team/app/manifests/1.1.0-production-201108-195630";

async fn setup(registry: &MockServer) -> (Broker, Receiver, String) {
    let broker = Broker::start(sqlite().await, |c| {
        c.verify_digests = true;
        c.verify_grace = Duration::from_millis(600);
    })
    .await;
    let receiver = Receiver::start(&[]).await;
    let body = registration(
        "svc",
        json!({
            "images": ["registry.example.org:5000/team/app"],
            "stage": "production",
            "callbackUrl": receiver.url,
            "registry": {"kind": "distribution", "url": registry.uri()}
        }),
    );
    let created: Value = broker.register(&body).await.json().await.unwrap();
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    (broker, receiver, hook)
}

async fn push(broker: &Broker, hook: &str) {
    let body = envelope(vec![manifest_push("ev-1", "team/app", Some(TAG), 1)]);
    let r = broker
        .client
        .post(hook)
        .header("content-type", MEDIA_TYPE_V1)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

#[tokio::test]
async fn a_confirmed_digest_is_delivered() {
    let registry = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", digest(1).as_str()))
        .expect(1..)
        .mount(&registry)
        .await;
    let (broker, receiver, hook) = setup(&registry).await;
    push(&broker, &hook).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["data"]["digest"], digest(1));
    broker.stop().await;
}

#[tokio::test]
async fn a_tag_the_registry_moved_is_dropped() {
    let registry = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", digest(2).as_str()))
        .mount(&registry)
        .await;
    let (broker, receiver, hook) = setup(&registry).await;
    push(&broker, &hook).await;
    // Past the grace period the event is dropped, with the reason logged.
    let mut dropped = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let log = broker.events().await;
        if let Some(reason) = log[0]["reason"].as_str() {
            dropped = Some(reason.to_owned());
            break;
        }
    }
    let reason = dropped.expect("the event is dropped");
    assert!(reason.starts_with("dropped: the registry says team/app:"), "{reason}");
    assert!(reason.contains(&digest(2)), "{reason}");
    // The subscriber's decision says so, without the registry's answer
    // (the status that shows it is public).
    let event = &broker.events().await[0];
    assert_eq!(event["decisions"][0]["decision"], "unverified", "{event}");
    assert_eq!(event["decisions"][0]["serviceId"], "svc", "{event}");
    assert!(
        !event["decisions"][0]["reason"]
            .as_str()
            .unwrap()
            .contains(&registry.uri()),
        "{event}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty(), "a moved tag is not delivered");
    broker.stop().await;
}

#[tokio::test]
async fn a_registry_that_links_the_tag_late_is_asked_again() {
    let registry = MockServer::start().await;
    // Distribution may notify before the tag link is written: 404 first.
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .respond_with(ResponseTemplate::new(404))
        .up_to_n_times(1)
        .mount(&registry)
        .await;
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .respond_with(ResponseTemplate::new(200).insert_header("docker-content-digest", digest(1).as_str()))
        .mount(&registry)
        .await;
    let (broker, receiver, hook) = setup(&registry).await;
    push(&broker, &hook).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["data"]["tag"], TAG);
    let asked = registry.received_requests().await.unwrap().len();
    assert!(asked >= 2, "asked again after the 404: {asked}");
    broker.stop().await;
}

#[tokio::test]
async fn an_unreachable_registry_does_not_block_delivery() {
    let registry = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&registry)
        .await;
    crate::support::logs::capture();
    let (broker, receiver, hook) = setup(&registry).await;
    push(&broker, &hook).await;
    receiver.wait_for(1).await;
    // Delivered with the event's own digest, and said so: a WARN line and
    // the decision's reason (issue 14, item 1).
    let event = &broker.events().await[0];
    assert_eq!(event["decisions"][0]["decision"], "delivered", "{event}");
    let reason = event["decisions"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("digest not re-checked: the registry could not be asked"),
        "{reason}"
    );
    let warned = crate::support::logs::lines_with(&["WARN", "digest not re-checked", event["id"].as_str().unwrap()]);
    assert_eq!(warned.len(), 1, "{}", crate::support::logs::text());
    broker.stop().await;
}
