//! Two brokers on one PostgreSQL database share the work and deliver each
//! event once (claims with `FOR UPDATE SKIP LOCKED`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tagcast_broker::store::{PostgresStore, Store};

use crate::support::broker::Broker;
use crate::support::distribution::{MEDIA_TYPE_V1, envelope, manifest_push};
use crate::support::receiver::Receiver;
use crate::support::{fresh_schema, schema_options};

#[tokio::test]
#[ignore = "needs postgres"]
async fn two_replicas_deliver_each_event_once() {
    let schema = fresh_schema().await;
    let one: Arc<dyn Store> = Arc::new(
        PostgresStore::open_with(schema_options(&schema), &crate::support::keys())
            .await
            .unwrap(),
    );
    let two: Arc<dyn Store> = Arc::new(
        PostgresStore::open_with(schema_options(&schema), &crate::support::keys())
            .await
            .unwrap(),
    );
    let a = Broker::start(one, |c| c.poll_interval = Duration::from_millis(20)).await;
    let b = Broker::start(two, |c| c.poll_interval = Duration::from_millis(20)).await;
    let receiver = Receiver::start(&[]).await;

    // 20 services on 20 images, registered through replica A.
    let mut hooks = Vec::new();
    for i in 0..20 {
        let repo = format!("registry.example.org:5000/team/app{i}");
        let created = a
            .subscribe(&format!("svc-{i}"), &[repo.as_str()], "production", &receiver.url)
            .await;
        hooks.push(created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned());
    }
    assert!(hooks.iter().all(|h| h == &hooks[0]), "one hook per registry");
    // Hooks alternate between the replicas, as behind a load balancer.
    for i in 0..20u8 {
        let (broker, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let url = hooks[0].replace(&a.url, &broker.url);
        let _ = other;
        let body = envelope(vec![manifest_push(
            &format!("ev-{i}"),
            &format!("team/app{i}"),
            Some("1.1.0-production-201108-195630"),
            i + 1,
        )]);
        let r = broker
            .client
            .post(url)
            .header("content-type", MEDIA_TYPE_V1)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    receiver.wait_for(20).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got = receiver.received();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &got {
        *per_id.entry(r.header("webhook-id").to_owned()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 20, "one delivery per event");
    assert!(per_id.values().all(|&n| n == 1), "no event delivered twice: {per_id:?}");
    a.stop().await;
    b.stop().await;
}
