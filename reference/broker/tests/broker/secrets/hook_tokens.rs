//! Finding 5 of issue 11: hook tokens are rotated (the old one valid for
//! a grace period) and revoked (the old one refused at once) by admin
//! routes, and a hook source goes with its last subscriber.

use std::sync::Arc;

use serde_json::Value;
use tagcast_broker::store::{Store, now_ms};

use super::{REPO, push};
use crate::support::broker::{Broker, TOKEN};
use crate::support::receiver::Receiver;

const REGISTRY: &str = "registry.example.org:5000";

async fn post(broker: &Broker, action: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = broker
        .client
        .post(format!("{}/hooks/sources/distribution/{REGISTRY}/{action}", broker.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn read(broker: &Broker, admin: bool) -> String {
    let mut request = broker.client.get(broker.api("/services/svc"));
    if admin {
        request = request.bearer_auth(TOKEN);
    }
    request.send().await.unwrap().text().await.unwrap()
}

fn token_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

async fn rotation_keeps_the_old_token_for_its_grace_period(store: Arc<dyn Store>) {
    let broker = Broker::start(store.clone(), |_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let created = broker.subscribe("svc", &[REPO], "production", &receiver.url).await;
    let old = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();

    for (token, expected) in [(None, 401), (Some("wrong-admin-token-0123456789"), 403)] {
        let (status, _) = post(&broker, "rotate", token).await;
        assert_eq!(status, expected, "{token:?}");
    }
    let (status, _) = broker
        .client
        .post(format!(
            "{}/hooks/sources/distribution/nowhere.example.org/rotate",
            broker.url
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 404, "no such source");
    let unchanged = store.find_hook_source("distribution", REGISTRY).await.unwrap().unwrap();
    assert_eq!(unchanged.token, token_of(&old), "a refused rotation changes nothing");

    let (status, body) = post(&broker, "rotate", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let new = body["url"].as_str().unwrap().to_owned();
    assert_ne!(token_of(&new), token_of(&old));
    assert!(new.starts_with(&format!("{}/hooks/distribution/", broker.url)), "{new}");
    assert!(body["previousTokenValidUntil"].is_string(), "{body}");
    assert!(
        !read(&broker, false).await.contains(token_of(&new)),
        "never on a public read"
    );
    assert!(
        read(&broker, true).await.contains(&new),
        "the admin read shows the new URL"
    );

    // Before the end of the grace period both tokens are accepted.
    assert_eq!(
        push(&broker, &old, "ev-rot-1", "1.1.0-production-201108-195701", 1).await,
        202
    );
    assert_eq!(
        push(&broker, &new, "ev-rot-2", "1.1.0-production-201108-195702", 2).await,
        202
    );
    receiver.wait_for(2).await;

    // After it: a rotation whose grace period ended a millisecond ago
    // leaves the token it replaced refused, the new one accepted.
    let newest = store
        .rotate_hook_token("distribution", REGISTRY, Some(now_ms() - 1))
        .await
        .unwrap()
        .unwrap();
    let events = broker.events().await.len();
    assert_eq!(
        push(&broker, &new, "ev-rot-3", "1.1.0-production-201108-195703", 3).await,
        404
    );
    assert_eq!(
        push(&broker, &old, "ev-rot-4", "1.1.0-production-201108-195704", 4).await,
        404
    );
    assert_eq!(broker.events().await.len(), events, "a refused hook stores nothing");
    let newest = format!("{}/hooks/distribution/{}", broker.url, newest.token);
    assert_eq!(
        push(&broker, &newest, "ev-rot-5", "1.1.0-production-201108-195705", 5).await,
        202
    );
    broker.stop().await;
}

async fn revocation_refuses_the_old_token_at_once(store: Arc<dyn Store>) {
    let broker = Broker::start(store, |_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let created = broker.subscribe("svc", &[REPO], "production", &receiver.url).await;
    let old = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    let (status, _) = post(&broker, "revoke", None).await;
    assert_eq!(status, 401);
    assert_eq!(
        push(&broker, &old, "ev-rev-0", "1.1.0-production-201108-195700", 1).await,
        202
    );

    let (status, body) = post(&broker, "revoke", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["previousTokenValidUntil"].is_null(), "{body}");
    let new = body["url"].as_str().unwrap().to_owned();
    assert_ne!(token_of(&new), token_of(&old));
    let events = broker.events().await.len();
    assert_eq!(
        push(&broker, &old, "ev-rev-1", "1.1.0-production-201108-195711", 2).await,
        404
    );
    assert_eq!(broker.events().await.len(), events, "the revoked token stored nothing");
    assert_eq!(
        push(&broker, &new, "ev-rev-2", "1.1.0-production-201108-195712", 3).await,
        202
    );
    receiver.wait_for(2).await;
    broker.stop().await;
}

async fn a_hook_source_goes_with_its_last_subscriber(store: Arc<dyn Store>) {
    let broker = Broker::start(store.clone(), |_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let a = broker.subscribe("svc-a", &[REPO], "production", &receiver.url).await;
    let b = broker.subscribe("svc-b", &[REPO], "staging", &receiver.url).await;
    let hook = a["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(b["subscription"]["hooks"][0]["url"], hook.as_str(), "one shared source");
    let delete = |id: &'static str| {
        broker
            .client
            .delete(broker.api(&format!("/services/{id}")))
            .bearer_auth(TOKEN)
            .send()
    };

    assert_eq!(delete("svc-a").await.unwrap().status(), 204);
    assert!(
        store
            .find_hook_source("distribution", REGISTRY)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        push(&broker, &hook, "ev-gone-1", "1.1.0-production-201108-195721", 1).await,
        202
    );

    assert_eq!(delete("svc-b").await.unwrap().status(), 204);
    assert!(
        store
            .find_hook_source("distribution", REGISTRY)
            .await
            .unwrap()
            .is_none(),
        "the row is gone with the last subscriber"
    );
    assert_eq!(
        push(&broker, &hook, "ev-gone-2", "1.1.0-staging-201108-195722", 2).await,
        404
    );

    // A new subscriber gets a new source, with a new token.
    let c = broker.subscribe("svc-c", &[REPO], "production", &receiver.url).await;
    let again = c["subscription"]["hooks"][0]["url"].as_str().unwrap();
    assert_ne!(again, hook, "the old token is not revived");
    assert_eq!(
        push(&broker, again, "ev-gone-3", "1.1.0-production-201108-195723", 3).await,
        202
    );
    broker.stop().await;
}

#[tokio::test]
async fn sqlite_rotation_keeps_the_old_token_for_its_grace_period() {
    rotation_keeps_the_old_token_for_its_grace_period(crate::support::sqlite().await).await;
}

#[tokio::test]
#[ignore = "needs postgres"]
async fn postgres_rotation_keeps_the_old_token_for_its_grace_period() {
    rotation_keeps_the_old_token_for_its_grace_period(crate::support::postgres().await).await;
}

#[tokio::test]
async fn sqlite_revocation_refuses_the_old_token_at_once() {
    revocation_refuses_the_old_token_at_once(crate::support::sqlite().await).await;
}

#[tokio::test]
#[ignore = "needs postgres"]
async fn postgres_revocation_refuses_the_old_token_at_once() {
    revocation_refuses_the_old_token_at_once(crate::support::postgres().await).await;
}

#[tokio::test]
async fn sqlite_a_hook_source_goes_with_its_last_subscriber() {
    a_hook_source_goes_with_its_last_subscriber(crate::support::sqlite().await).await;
}

#[tokio::test]
#[ignore = "needs postgres"]
async fn postgres_a_hook_source_goes_with_its_last_subscriber() {
    a_hook_source_goes_with_its_last_subscriber(crate::support::postgres().await).await;
}
