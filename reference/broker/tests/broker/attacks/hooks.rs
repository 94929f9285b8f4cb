//! Hooks an attacker sends (finding 6 and the catalogue's hook rows).

use std::time::Duration;

use serde_json::Value;
use tagcast_broker::config::Rate;

use super::{assert_no_event, hook_url};
use crate::support::broker::Broker;
use crate::support::distribution::{MEDIA_TYPE_V1, envelope, manifest_push};
use crate::support::receiver::Receiver;
use crate::support::sqlite;

#[tokio::test]
async fn an_envelope_with_too_many_events_gets_413_and_stores_nothing() {
    let broker = Broker::start(sqlite().await, |c| c.max_events_per_hook = 5).await;
    let receiver = Receiver::start(&[]).await;
    let url = hook_url(&broker, &receiver).await;
    let events = (0..6u8)
        .map(|n| {
            manifest_push(
                &format!("ev-{n}"),
                "team/app",
                Some(&format!("1.1.0-production-201108-19563{n}")),
                n,
            )
        })
        .collect();
    let r = broker
        .client
        .post(&url)
        .header("content-type", MEDIA_TYPE_V1)
        .body(envelope(events))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "payload_too_large");
    assert!(body["detail"].as_str().unwrap().contains("at most 5"), "{body}");
    assert_no_event(&broker).await;
    assert!(receiver.received().is_empty());
    broker.stop().await;
}

fn per_hour(count: u32) -> Option<Rate> {
    Some(Rate {
        count,
        per: Duration::from_secs(3600),
    })
}

#[tokio::test]
async fn a_flooding_hook_token_gets_429_with_retry_after_and_nothing_more_is_stored() {
    let broker = Broker::start(sqlite().await, |c| c.hook_rate_limit = per_hour(2)).await;
    let receiver = Receiver::start(&[]).await;
    let url = hook_url(&broker, &receiver).await;
    let post = |n: u8| {
        let body = envelope(vec![manifest_push(
            &format!("ev-{n}"),
            "team/app",
            Some(&format!("1.1.0-production-201108-19563{n}")),
            n,
        )]);
        broker
            .client
            .post(&url)
            .header("content-type", MEDIA_TYPE_V1)
            .body(body)
            .send()
    };
    assert_eq!(post(1).await.unwrap().status(), 202);
    assert_eq!(post(2).await.unwrap().status(), 202);
    let stored = broker.state.store.inbound_events(100).await.unwrap().len();
    let r = post(3).await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait >= 1, "{wait}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "too_many_requests");
    assert_eq!(
        broker.state.store.inbound_events(100).await.unwrap().len(),
        stored,
        "the refused hook stored nothing"
    );
    broker.stop().await;
}

#[tokio::test]
async fn a_flooding_client_address_gets_429_before_any_work() {
    let broker = Broker::start(sqlite().await, |c| c.client_rate_limit = per_hour(3)).await;
    let wrong = format!("{}/hooks/distribution/{}", broker.url, "x".repeat(43));
    for _ in 0..3 {
        let r = broker.client.post(&wrong).body("{}").send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    let r = broker.client.post(&wrong).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let r = broker
        .client
        .get(format!("{}/healthz", broker.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "every route counts");
    let metrics = broker.state.metrics.encode();
    assert!(
        metrics.contains(r#"tagcast_rate_limited_total{limit="client"} 2"#),
        "{metrics}"
    );
    assert!(
        !metrics.contains(r#"reason="unknown_token"} 4"#),
        "the 4th request never reached the token lookup: {metrics}"
    );
    assert_no_event(&broker).await;
    broker.stop().await;
}
