//! What an operator sees when a hook or a registration is wrong (issue 14
//! items 2 and 4): a 404 on `/hooks/…` logged at WARN without the token,
//! the served kinds in `service-info` and in the 422 for an unserved kind,
//! and a bad hook body's 400 naming the member that failed.

use serde_json::{Value, json};
use tagcast_spec::webhook::{self, Secret};

use crate::support::broker::Broker;
use crate::support::distribution::{MEDIA_TYPE_V1, envelope, manifest_push};
use crate::support::receiver::Receiver;
use crate::support::{logs, registration, sqlite};

const REPO: &str = "registry.example.org:5000/team/app";

/// Every kind an adapter exists for, as `service-info` must list them.
const SERVED: [&str; 11] = [
    "distribution",
    "generic",
    "ghcr",
    "gitea",
    "artifactory",
    "dockerhub",
    "harbor",
    "quay",
    "acr",
    "ecr",
    "gar",
];

#[tokio::test]
async fn a_404_on_hooks_is_a_warning_without_the_token() {
    logs::capture();
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let created = broker.subscribe("svc-404", &[REPO], "production", &receiver.url).await;
    let url = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    let real_token = url.rsplit('/').next().unwrap().to_owned();
    let wrong_token = format!("wrong{}", uuid::Uuid::new_v4().simple());
    let unknown_kind = format!("nexus{}", uuid::Uuid::new_v4().simple());
    let body = envelope(vec![manifest_push(
        "ev-404",
        "team/app",
        Some("1.1.0-production-201108-195630"),
        1,
    )]);
    for target in [
        format!("{}/hooks/distribution/{wrong_token}", broker.url),
        // A real token under another kind, and under a kind nobody serves.
        format!("{}/hooks/generic/{real_token}", broker.url),
        format!("{}/hooks/{unknown_kind}/{real_token}", broker.url),
    ] {
        let r = broker
            .client
            .post(&target)
            .header("content-type", MEDIA_TYPE_V1)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{target}");
    }
    assert!(broker.state.store.inbound_events(10).await.unwrap().is_empty());
    let warned = logs::lines_with(&["WARN", "inbound hook refused", "unknown token", "kind=\"distribution\""]);
    assert!(
        !warned.is_empty(),
        "a 404 for a wrong token is a WARN line:\n{}",
        logs::text()
    );
    let warned = logs::lines_with(&["WARN", "inbound hook refused", "kind=\"generic\"", "another kind"]);
    assert!(
        !warned.is_empty(),
        "a token of another kind is a WARN line:\n{}",
        logs::text()
    );
    let warned = logs::lines_with(&["WARN", "no such kind", &unknown_kind]);
    assert_eq!(warned.len(), 1, "an unknown kind is a WARN line:\n{}", logs::text());
    assert!(warned[0].contains("served=distribution, generic"), "{}", warned[0]);
    let all = logs::text();
    assert!(!all.contains(&wrong_token), "a wrong token is never logged");
    assert!(!all.contains(&real_token), "a real token is never logged");
    broker.stop().await;
}

#[tokio::test]
async fn service_info_lists_exactly_the_served_kinds() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let info: Value = broker
        .client
        .get(broker.api("/service-info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut listed: Vec<&str> = info["extensions"]["subscription"]["hookKinds"]
        .as_array()
        .expect("hookKinds")
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let mut served = SERVED.to_vec();
    served.sort_unstable();
    assert_eq!(listed, served);
    // Each listed kind has a hook route: an unknown token there is the
    // same 404 as anywhere, never a 405 or a route miss.
    for kind in SERVED {
        let r = broker
            .client
            .post(format!("{}/hooks/{kind}/{}", broker.url, "t".repeat(43)))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{kind}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "not_found", "{kind}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn registering_an_unserved_kind_is_422_naming_the_served_kinds() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let body = registration(
        "svc-nexus",
        json!({
            "images": [REPO],
            "stage": "production",
            "callbackUrl": "https://wes.example.org/hook",
            "registry": {"kind": "nexus"}
        }),
    );
    let r = broker.register(&body).await;
    assert_eq!(r.status(), 422);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["code"], "invalid_subscription", "{error}");
    assert_eq!(error["requirement"], "API-9", "{error}");
    let detail = error["detail"].as_str().unwrap();
    assert!(detail.contains("\"nexus\""), "{detail}");
    assert!(detail.contains("(API-9)"), "the detail cites the same rule: {detail}");
    for kind in SERVED {
        assert!(detail.contains(kind), "{kind} is named: {detail}");
    }
    assert!(
        broker.state.store.services().await.unwrap().is_empty(),
        "nothing stored"
    );
    broker.stop().await;
}

#[tokio::test]
async fn a_bad_hook_body_names_the_member() {
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let created = broker.subscribe("svc-400", &[REPO], "production", &receiver.url).await;
    let url = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    let mut second = manifest_push("ev-2", "team/app", Some("1.1.0-production-201108-195630"), 2);
    second["target"]["tag"] = json!(42);
    let body = envelope(vec![
        manifest_push("ev-1", "team/app", Some("1.0.0-production-201108-195630"), 1),
        second,
    ]);
    let r = broker
        .client
        .post(&url)
        .header("content-type", MEDIA_TYPE_V1)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let detail = r.json::<Value>().await.unwrap()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("events[1].target.tag: invalid type"), "{detail}");
    assert!(broker.state.store.inbound_events(10).await.unwrap().is_empty());

    // An enum member: the generic event's action.
    let generic = broker
        .register(&registration(
            "svc-generic-400",
            json!({
                "images": ["registry.example.org/tes/funnel"],
                "stage": "staging",
                "callbackUrl": receiver.url,
                "registry": {"kind": "generic"}
            }),
        ))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let hook = &generic["subscription"]["hooks"][0];
    let secret = Secret::parse(hook["secret"].as_str().unwrap()).unwrap();
    let event = json!({
        "id": "push_1",
        "action": "retag",
        "repository": "registry.example.org/tes/funnel",
        "tag": "1.1.0-staging-240229-235959",
        "digest": crate::support::distribution::digest(7),
        "timestamp": "2024-02-29T23:59:59Z"
    })
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let r = broker
        .client
        .post(hook["url"].as_str().unwrap())
        .header("content-type", "application/json")
        .header("webhook-id", "push_1")
        .header("webhook-timestamp", now.to_string())
        .header(
            "webhook-signature",
            webhook::sign(&secret, "push_1", now, event.as_bytes()),
        )
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let detail = r.json::<Value>().await.unwrap()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("action: unknown variant `retag`"), "{detail}");
    assert!(broker.state.store.inbound_events(10).await.unwrap().is_empty());
    broker.stop().await;
}

/// TAG-12: a push of a tag already delivered, now with another digest, is
/// not delivered again and is reported to the operator: a WARN line naming
/// the tag and both digests, the event's reason in `GET /hooks/events`, and
/// the `tagcast_moved_tags_total` counter.
#[tokio::test]
async fn a_moved_tag_is_reported_and_not_delivered() {
    use crate::support::distribution::digest;
    logs::capture();
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let created = broker
        .subscribe("svc-moved", &[REPO], "production", &receiver.url)
        .await;
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    let tag = "1.1.0-production-201108-195630";
    let push = |id: &'static str, n: u8| {
        let body = envelope(vec![manifest_push(id, "team/app", Some(tag), n)]);
        let request = broker
            .client
            .post(&hook)
            .header("content-type", MEDIA_TYPE_V1)
            .body(body);
        async move { assert_eq!(request.send().await.unwrap().status(), 202) }
    };
    push("ev-moved-1", 1).await;
    receiver.wait_for(1).await;
    // The delivery is recorded once the receiver's 200 is: wait for the
    // subscription status to name the delivered tag.
    let status_url = broker.api("/services/svc-moved/subscription/status");
    let mut recorded = false;
    for _ in 0..200 {
        let status: Value = broker
            .client
            .get(&status_url)
            .bearer_auth(crate::support::broker::TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status.to_string().contains(tag) {
            recorded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(recorded, "the first delivery was recorded");

    // The same tag again, with the same digest: a duplicate, nothing to report.
    push("ev-moved-2", 1).await;
    // The same tag with another digest: moved.
    push("ev-moved-3", 2).await;
    let mut moved = None;
    for _ in 0..200 {
        moved = broker
            .events()
            .await
            .into_iter()
            .find(|e| e["reason"].as_str().is_some_and(|r| r.contains("TAG-12")));
        if moved.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let Some(moved) = moved else {
        panic!("no event names TAG-12: {:#?}", broker.events().await);
    };
    let reason = moved["reason"].as_str().unwrap();
    assert!(
        reason.contains(tag)
            && reason.contains(&digest(1))
            && reason.contains(&digest(2))
            && reason.contains("svc-moved"),
        "{reason}"
    );
    assert_eq!(moved["deliveries"], 0, "{moved}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "the moved tag was not delivered again");
    let warned = logs::lines_with(&["WARN", "moved tag", tag, &digest(1), &digest(2)]);
    assert_eq!(warned.len(), 1, "one WARN line for the move:\n{}", logs::text());
    let metrics = broker.metrics().await;
    assert!(metrics.contains("tagcast_moved_tags_total 1"), "{metrics}");
}

/// The decision trail (issue 14, item 1): after a newer tag was delivered,
/// an older push, a push of another stage and one outside the api-version
/// requirement each say why they were not delivered — in `/hooks/events`,
/// in the event's own route (what `tagcast broker explain` prints), in the
/// subscription status and in an INFO line; the delivered push links to its
/// delivery and the delivery back to it. Nothing says "matched" for them.
#[tokio::test]
async fn why_a_push_was_not_delivered_is_on_record() {
    use crate::support::broker::TOKEN;
    const NEW: &str = "1.1.0-production-201110-000000";
    const OLD: &str = "1.1.0-production-201101-000000";
    const DEMO: &str = "1.1.0-demo-201111-000000";
    const MAJOR: &str = "2.0.0-production-201112-000000";
    logs::capture();
    let broker = Broker::start(sqlite().await, |_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let body = registration(
        "svc-why",
        json!({
            "images": [REPO],
            "stage": "production",
            "apiVersion": "^1.1",
            "callbackUrl": receiver.url,
            "registry": {"kind": "distribution"}
        }),
    );
    let created: Value = broker.register(&body).await.json().await.unwrap();
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    let push = |id: String, tag: &'static str, n: u8| {
        let request = broker
            .client
            .post(&hook)
            .header("content-type", MEDIA_TYPE_V1)
            .body(envelope(vec![manifest_push(&id, "team/app", Some(tag), n)]));
        async move { assert_eq!(request.send().await.unwrap().status(), 202) }
    };
    let status_url = broker.api("/services/svc-why/subscription/status");
    let status = || async {
        broker
            .client
            .get(&status_url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    push("ev-why-new".into(), NEW, 1).await;
    receiver.wait_for(1).await;
    let mut delivered = false;
    for _ in 0..200 {
        if status().await["images"][0]["deliveredTag"] == NEW {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(delivered, "{}", status().await);
    push("ev-why-demo".into(), DEMO, 2).await;
    push("ev-why-major".into(), MAJOR, 3).await;
    push("ev-why-old".into(), OLD, 4).await;
    let mut events = Vec::new();
    for _ in 0..200 {
        events = broker.events().await;
        if events.len() == 4 && events.iter().all(|e| !e["matchedAt"].is_null()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let of = |tag: &str| {
        events
            .iter()
            .find(|e| e["tag"] == tag)
            .unwrap_or_else(|| panic!("no event of {tag}: {events:#?}"))
            .clone()
    };
    let decision = |tag: &str| {
        let event = of(tag);
        let decisions = event["decisions"].as_array().unwrap().clone();
        assert_eq!(decisions.len(), 1, "{event}");
        assert_eq!(decisions[0]["serviceId"], "svc-why", "{event}");
        decisions[0].clone()
    };
    let old = decision(OLD);
    assert_eq!(old["decision"], "notNewer", "{old}");
    assert_eq!(
        old["reason"],
        format!("{OLD} is not newer than the current tag {NEW}"),
        "{old}"
    );
    assert!(old["deliveryId"].is_null(), "{old}");
    let demo = decision(DEMO);
    assert_eq!(demo["decision"], "otherStage", "{demo}");
    assert!(
        demo["reason"]
            .as_str()
            .unwrap()
            .contains("not the subscribed stage production"),
        "{demo}"
    );
    let major = decision(MAJOR);
    assert_eq!(major["decision"], "apiVersion", "{major}");
    assert!(major["reason"].as_str().unwrap().contains("^1.1"), "{major}");

    // The delivered push links to its delivery, and the delivery back.
    let new = decision(NEW);
    assert_eq!(new["decision"], "delivered", "{new}");
    let delivery_id = new["deliveryId"].as_str().unwrap().to_owned();
    assert_eq!(
        receiver.received()[0].header("webhook-id"),
        delivery_id,
        "the delivery id is the callback's webhook-id"
    );
    let delivery = broker
        .admin_json(&broker.api(&format!("/services/svc-why/deliveries/{delivery_id}")))
        .await;
    assert_eq!(delivery["eventId"], of(NEW)["id"], "{delivery}");

    // One event with its trail and the delivery's outcome (the explain route).
    let event_url = format!("{}/hooks/events/{}", broker.url, of(NEW)["id"].as_str().unwrap());
    let explained = broker.admin_json(&event_url).await;
    assert_eq!(explained["decisions"][0]["deliveryOutcome"], "delivered", "{explained}");
    let unknown = broker
        .client
        .get(format!("{}/hooks/events/no-such-event", broker.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let anonymous = broker.client.get(&event_url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401, "the trail is the admin's");

    // The subscription status shows the decision on the latest push.
    let status = status().await;
    let last = &status["images"][0]["lastDecision"];
    assert_eq!(last["decision"], "notNewer", "{status}");
    assert_eq!(last["tag"], OLD, "{status}");
    assert_eq!(status["images"][0]["deliveredTag"], NEW, "{status}");

    // INFO lines, one per decision; none says "matched".
    let old_id = of(OLD)["id"].as_str().unwrap().to_owned();
    let info = logs::lines_with(&["INFO", "not delivered", &old_id, "decision=notNewer", "svc-why"]);
    assert_eq!(info.len(), 1, "{}", logs::text());
    assert!(
        info[0].contains(&format!("is not newer than the current tag {NEW}")),
        "{}",
        info[0]
    );
    assert!(
        logs::lines_with(&["INFO", "delivery created", "decision=delivered", &delivery_id]).len() == 1,
        "{}",
        logs::text()
    );
    assert!(logs::lines_with(&["matched", "svc-why"]).is_empty(), "{}", logs::text());
    assert!(
        logs::lines_with(&["INFO", "events matched"]).is_empty(),
        "{}",
        logs::text()
    );
}
