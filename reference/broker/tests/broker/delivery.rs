//! Delivery end to end over real HTTP: signature, data, the update rule,
//! retries with a stable webhook-id, 410, redelivery, replicas.

use std::time::Duration;

use serde_json::Value;
use tagcast_spec::webhook::{self, Secret};

use crate::support::broker::{Broker, TOKEN};
use crate::support::distribution::{MEDIA_TYPE_V1, blob_push, digest, envelope, manifest_push};
use crate::support::receiver::Receiver;
use crate::support::sqlite;

const REPO: &str = "registry.example.org:5000/team/app";

struct Setup {
    broker: Broker,
    receiver: Receiver,
    hook: String,
    secret: Secret,
}

async fn setup(script: &[u16], stage: &str) -> Setup {
    setup_with(script, stage, |_| {}).await
}

async fn setup_with(script: &[u16], stage: &str, tweak: impl FnOnce(&mut tagcast_broker::Config)) -> Setup {
    let broker = Broker::start(sqlite().await, tweak).await;
    let receiver = Receiver::start(script).await;
    let created = broker.subscribe("svc", &[REPO], stage, &receiver.url).await;
    Setup {
        hook: created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned(),
        secret: Secret::parse(created["subscription"]["secret"].as_str().unwrap()).unwrap(),
        broker,
        receiver,
    }
}

async fn push(s: &Setup, id: &str, tag: &str, n: u8) -> Value {
    let body = envelope(vec![
        blob_push("team/app", n),
        manifest_push(id, "team/app", Some(tag), n),
    ]);
    let r = s
        .broker
        .client
        .post(&s.hook)
        .header("content-type", MEDIA_TYPE_V1)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json().await.unwrap()
}

/// The admin delivery log of service `svc`, those with `outcome` only.
async fn deliveries(s: &Setup, outcome: &str) -> Value {
    s.broker
        .client
        .get(s.broker.api(&format!("/services/svc/deliveries?outcome={outcome}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the outbox is empty.
async fn settle(broker: &Broker) {
    for _ in 0..200 {
        if broker.state.store.queue_depth().await.unwrap() == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if broker.state.store.queue_depth().await.unwrap() == 0 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the outbox did not drain");
}

#[tokio::test]
async fn one_signed_callback_with_the_data_of_the_contract() {
    let s = setup(&[], "production").await;
    push(&s, "ev-1", "1.1-production-201108-195630", 1).await;
    let got = s.receiver.wait_for(1).await;
    settle(&s.broker).await;
    assert_eq!(s.receiver.received().len(), 1, "exactly one callback");
    let cb = &got[0];
    assert_eq!(cb.header("content-type"), "application/cloudevents+json");
    let now = chrono::Utc::now().timestamp();
    webhook::verify(
        std::slice::from_ref(&s.secret),
        Some(cb.header("webhook-id")),
        Some(cb.header("webhook-timestamp")),
        Some(cb.header("webhook-signature")),
        &cb.body,
        now,
        webhook::DEFAULT_TOLERANCE,
    )
    .expect("a valid Standard Webhooks signature");
    let event = cb.json();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["id"], cb.header("webhook-id"));
    assert_eq!(event["type"], "org.elixir-cloud.tagcast.image.published.v1");
    assert_eq!(event["source"], format!("{}/ga4gh/registry/v1", s.broker.url));
    let reference = format!("{REPO}:1.1-production-201108-195630@{}", digest(1));
    assert_eq!(event["subject"], reference);
    let data = &event["data"];
    assert_eq!(data["serviceId"], "svc");
    assert_eq!(data["image"], REPO);
    assert_eq!(data["tag"], "1.1-production-201108-195630");
    assert_eq!(data["digest"], digest(1));
    assert_eq!(data["reference"], reference);
    assert_eq!(data["apiVersion"], "1.1.0");
    assert_eq!(data["stage"], "production");
    assert_eq!(data["timestamp"], "2020-11-08T19:56:30Z");
    assert!(data.get("previousTag").is_none());
    // The parsed event satisfies the spec's own checks.
    serde_json::from_slice::<tagcast_spec::CloudEvent<tagcast_spec::ImagePublished>>(&cb.body).unwrap();

    // The next tag carries the previous one.
    push(&s, "ev-2", "1.1.0-production-201109-000000", 2).await;
    let got = s.receiver.wait_for(2).await;
    assert_eq!(got[1].json()["data"]["previousTag"], "1.1-production-201108-195630");

    let status: Value = s
        .broker
        .client
        .get(s.broker.api("/services/svc/subscription/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "active");
    assert_eq!(status["images"][0]["deliveredTag"], "1.1.0-production-201109-000000");
    assert_eq!(status["deliveries"]["delivered"], 2);
    s.broker.stop().await;
}

#[tokio::test]
async fn the_update_rule_filters_deliveries() {
    let s = setup(&[], "production").await;
    // Another stage never reaches a production subscriber.
    push(&s, "ev-demo", "1.1.0-demo-201110-000000", 1).await;
    // Another major version does not match ^1.1.0.
    push(&s, "ev-major", "2.0.0-production-201110-000000", 2).await;
    push(&s, "ev-new", "1.1.0-production-201110-000000", 3).await;
    s.receiver.wait_for(1).await;
    settle(&s.broker).await;
    // An older tag after a newer one is not delivered.
    push(&s, "ev-old", "1.1.0-production-201101-000000", 4).await;
    // A duplicate notification yields no second delivery.
    push(&s, "ev-new-again", "1.1.0-production-201110-000000", 3).await;
    push(&s, "ev-new", "1.1.0-production-201110-000000", 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    settle(&s.broker).await;
    let got = s.receiver.received();
    assert_eq!(
        got.len(),
        1,
        "{:?}",
        got.iter().map(|r| r.json()["data"]["tag"].clone()).collect::<Vec<_>>()
    );
    assert_eq!(got[0].json()["data"]["tag"], "1.1.0-production-201110-000000");
    s.broker.stop().await;
}

#[tokio::test]
async fn retries_keep_the_webhook_id() {
    let s = setup(&[500, 500, 200], "production").await;
    push(&s, "ev-1", "1.1.0-production-201108-195630", 1).await;
    let got = s.receiver.wait_for(3).await;
    settle(&s.broker).await;
    assert_eq!(s.receiver.received().len(), 3);
    let id = got[0].header("webhook-id");
    assert!(
        got.iter().all(|r| r.header("webhook-id") == id),
        "the same webhook-id on every attempt"
    );
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "the same body on every attempt"
    );
    let r = s
        .broker
        .client
        .get(s.broker.api("/services/svc/deliveries"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the delivery log is for the admin");
    let deliveries: Value = s
        .broker
        .client
        .get(s.broker.api("/services/svc/deliveries"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let d = &deliveries[0];
    assert_eq!(d["id"], id);
    assert_eq!(d["outcome"], "delivered");
    let codes: Vec<u64> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["responseCode"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 200]);

    // Manual redelivery sends it once more, same id.
    let r = s
        .broker
        .client
        .post(s.broker.api(&format!("/services/svc/deliveries/{id}/redeliver")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let got = s.receiver.wait_for(4).await;
    assert_eq!(got[3].header("webhook-id"), id);
    let r = s
        .broker
        .client
        .post(s.broker.api("/services/svc/deliveries/nope/redeliver"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    s.broker.stop().await;
}

#[tokio::test]
async fn permanent_failures_dead_letters_and_gone() {
    // 400 is permanent: one attempt.
    let s = setup(&[400], "production").await;
    push(&s, "ev-1", "1.1.0-production-201108-195630", 1).await;
    s.receiver.wait_for(1).await;
    settle(&s.broker).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.receiver.received().len(), 1);
    s.broker.stop().await;

    // While a delivery is pending, a manual redelivery is a conflict: the
    // next attempt is an hour away, so it is pending whatever the timing.
    let s = setup_with(&[503], "production", |c| {
        c.retry_schedule = vec![Duration::from_secs(3600)]
    })
    .await;
    push(&s, "ev-1", "1.1.0-production-201108-195630", 1).await;
    let first = s.receiver.wait_for(1).await;
    let id = first[0].header("webhook-id").to_owned();
    let r = s
        .broker
        .client
        .post(s.broker.api(&format!("/services/svc/deliveries/{id}/redeliver")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(s.receiver.received().len(), 1, "the conflict sent nothing");
    s.broker.stop().await;

    // 503 on every attempt: 1 + 3 scheduled retries, then dead.
    let s = setup(&[503, 503, 503, 503, 503], "production").await;
    push(&s, "ev-1", "1.1.0-production-201108-195630", 1).await;
    s.receiver.wait_for(4).await;
    settle(&s.broker).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.receiver.received().len(), 4);
    let status: Value = s
        .broker
        .client
        .get(s.broker.api("/services/svc/subscription/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["deliveries"]["dead"], 1, "{status}");
    let dead = deliveries(&s, "dead").await;
    assert_eq!(dead.as_array().unwrap().len(), 1, "{dead}");
    let delivered = deliveries(&s, "delivered").await;
    assert_eq!(delivered, serde_json::json!([]));
    s.broker.stop().await;

    // 410 disables the subscription.
    let s = setup(&[410], "production").await;
    push(&s, "ev-1", "1.1.0-production-201108-195630", 1).await;
    s.receiver.wait_for(1).await;
    settle(&s.broker).await;
    let status: Value = s
        .broker
        .client
        .get(s.broker.api("/services/svc/subscription/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "unsubscribed", "{status}");
    let id = s.receiver.received()[0].header("webhook-id").to_owned();
    let r = s
        .broker
        .client
        .post(s.broker.api(&format!("/services/svc/deliveries/{id}/redeliver")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "no redelivery to an unsubscribed endpoint");
    push(&s, "ev-2", "1.1.0-production-201109-000000", 2).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    settle(&s.broker).await;
    assert_eq!(s.receiver.received().len(), 1, "nothing more after 410");
    s.broker.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    // The schedule says 100 ms; the receiver's 429 says Retry-After: 1
    // (honoured up to the schedule's longest delay, here 5 s).
    let s = setup_with(&[429], "production", |c| {
        c.retry_schedule = vec![Duration::from_millis(100), Duration::from_secs(5)];
    })
    .await;
    push(&s, "ev-1", "1.1.0-production-201108-195630", 1).await;
    let got = s.receiver.wait_for(2).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(900),
        "the retry waited {gap:?}, not Retry-After"
    );
    s.broker.stop().await;
}

#[tokio::test]
async fn a_captured_docker_registry_push_is_delivered_once() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../conformance/vectors/registries/distribution-2.8-push.json"
    );
    let capture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let image = format!(
        "{}/{}",
        capture["registry"].as_str().unwrap(),
        capture["repository"].as_str().unwrap()
    );
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let created = broker
        .subscribe("wes", &[image.as_str()], "production", &receiver.url)
        .await;
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    let mut manifest_digest = String::new();
    for request in capture["requests"].as_array().unwrap() {
        for event in request["body"]["events"].as_array().unwrap() {
            if event["target"]["tag"].is_string() {
                manifest_digest = event["target"]["digest"].as_str().unwrap().to_owned();
            }
        }
        let r = broker
            .client
            .post(&hook)
            .header("content-type", request["contentType"].as_str().unwrap())
            .body(request["body"].to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let got = receiver.wait_for(1).await;
    settle(&broker).await;
    assert_eq!(receiver.received().len(), 1);
    let data = &got[0].json()["data"];
    assert_eq!(data["image"], image.as_str());
    assert_eq!(data["tag"], capture["tag"]);
    assert_eq!(data["digest"], manifest_digest.as_str());
    broker.stop().await;
}

/// CB-14: a 401 is retried once (a key rotation in progress), a second 401
/// in a row is permanent; a 401 followed by a 2xx is delivered.
#[tokio::test]
async fn a_401_is_retried_once() {
    let s = setup(&[401, 401, 204], "production").await;
    push(&s, "ev-1", "1.1.0-production-201108-195630", 1).await;
    s.receiver.wait_for(2).await;
    settle(&s.broker).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let got = s.receiver.received();
    assert_eq!(got.len(), 2, "one retry, then failed");
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let failed = deliveries(&s, "failed").await;
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    s.broker.stop().await;

    let s = setup(&[401, 204], "production").await;
    push(&s, "ev-1", "1.1.0-production-201108-195630", 1).await;
    s.receiver.wait_for(2).await;
    settle(&s.broker).await;
    let delivered = deliveries(&s, "delivered").await;
    assert_eq!(delivered.as_array().unwrap().len(), 1, "{delivered}");
    s.broker.stop().await;
}

/// CB-18: a tag dated more than 15 minutes after the broker's clock is not
/// delivered (it would block the channel), and the event log says why.
#[tokio::test]
async fn a_future_dated_tag_is_not_delivered() {
    let s = setup(&[204], "production").await;
    push(&s, "ev-future", "1.1.0-production-991231-235959", 1).await;
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(5)).format("%y%m%d-%H%M%S");
    push(&s, "ev-soon", &format!("1.1.0-production-{soon}"), 2).await;
    s.receiver.wait_for(1).await;
    settle(&s.broker).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let tags: Vec<String> = s
        .receiver
        .received()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["data"]["tag"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        tags,
        [format!("1.1.0-production-{soon}")],
        "only the tag within the margin"
    );
    let events: Value = s
        .broker
        .client
        .get(format!("{}/hooks/events", s.broker.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = events.to_string();
    assert!(text.contains("CB-18"), "{events}");
    s.broker.stop().await;
}

/// API-17: after the admin reset of an image's last delivered tag, an
/// older tag than the one delivered is delivered again; without the admin
/// token the reset is refused and changes nothing.
#[tokio::test]
async fn the_last_delivered_tag_can_be_reset() {
    let s = setup(&[204, 204], "production").await;
    push(&s, "ev-new", "1.1.0-production-201109-000000", 1).await;
    s.receiver.wait_for(1).await;
    settle(&s.broker).await;
    let image = REPO.replace('/', "%2F").replace(':', "%3A");
    let url = s
        .broker
        .api(&format!("/services/svc/subscription/status/images/{image}"));
    let r = s.broker.client.delete(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s.broker.client.delete(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), 403);
    push(&s, "ev-old", "1.1.0-production-201108-000000", 2).await;
    settle(&s.broker).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.receiver.received().len(),
        1,
        "not reset: the older tag is not delivered"
    );

    let r = s.broker.client.delete(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let unknown = s
        .broker
        .api("/services/svc/subscription/status/images/docker.io%2Fother%2Fimage");
    let r = s
        .broker
        .client
        .delete(&unknown)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    push(&s, "ev-old-again", "1.1.0-production-201108-000000", 3).await;
    let got = s.receiver.wait_for(2).await;
    let body: Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(body["data"]["tag"], "1.1.0-production-201108-000000");
    assert!(body["data"].get("previousTag").is_none(), "{body}");
    s.broker.stop().await;
}

/// Whether a callback verifies with `secret` alone.
fn verifies_with(cb: &crate::support::receiver::Received, secret: &Secret) -> bool {
    webhook::verify(
        std::slice::from_ref(secret),
        Some(cb.header("webhook-id")),
        Some(cb.header("webhook-timestamp")),
        Some(cb.header("webhook-signature")),
        &cb.body,
        chrono::Utc::now().timestamp(),
        webhook::DEFAULT_TOLERANCE,
    )
    .is_ok()
}

#[tokio::test]
async fn a_replaced_secret_signs_beside_the_new_one_for_its_grace_period() {
    // CB-5: the broker signs with every active secret; a secret replaced
    // by a PUT stays active for PREVIOUS_SECRET_GRACE, so an endpoint that
    // holds only the old secret, or only the new one, verifies either way.
    let s = setup(&[], "production").await;
    push(&s, "ev-1", "1.1-production-201108-195630", 1).await;
    let first = s.receiver.wait_for(1).await;
    assert_eq!(
        first[0].header("webhook-signature").split(' ').count(),
        1,
        "one secret, one entry"
    );

    let new = Secret::generate(rand::random());
    let body = crate::support::registration(
        "svc",
        serde_json::json!({
            "images": [REPO],
            "stage": "production",
            "callbackUrl": s.receiver.url,
            "secret": new.expose(),
            "registry": {"kind": "distribution"}
        }),
    );
    let r = s
        .broker
        .client
        .put(s.broker.api("/services/svc"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);

    push(&s, "ev-2", "1.1.0-production-201109-000000", 2).await;
    let got = s.receiver.wait_for(2).await;
    let cb = &got[1];
    assert_eq!(cb.header("webhook-signature").split(' ').count(), 2, "{cb:?}");
    assert!(
        verifies_with(cb, &s.secret),
        "the endpoint that holds the old secret only"
    );
    assert!(verifies_with(cb, &new), "the endpoint that holds the new secret only");

    // The same secret again is no rotation: nothing more to sign with.
    let r = s
        .broker
        .client
        .put(s.broker.api("/services/svc"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    push(&s, "ev-3", "1.1.0-production-201110-000000", 3).await;
    let got = s.receiver.wait_for(3).await;
    assert_eq!(
        got[2].header("webhook-signature").split(' ').count(),
        2,
        "the previous secret's grace goes on"
    );
    s.broker.stop().await;
}
