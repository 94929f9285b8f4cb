//! Fair delivery (issue 12): a subscriber that accepts connections and
//! never answers holds at most its in-flight limit of the workers; the
//! other subscribers' callbacks keep flowing while its backlog waits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::broker::Broker;
use crate::support::distribution::{MEDIA_TYPE_V1, envelope, manifest_push};
use crate::support::receiver::Receiver;
use crate::support::sqlite;

const IMAGES: u8 = 10;

/// Accepts connections and keeps them open without reading or answering.
async fn stalled() -> (String, Arc<Mutex<Vec<tokio::net::TcpStream>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            keep.lock().unwrap().push(stream);
        }
    });
    (url, held)
}

#[tokio::test]
async fn a_stalled_subscriber_does_not_delay_a_healthy_one() {
    let broker = Broker::start(sqlite().await, |c| {
        c.verify_digests = false;
        c.delivery_concurrency = 4;
        c.delivery_per_subscriber = 2;
        // Longer than the test: the stalled callbacks never time out here.
        c.delivery_timeout = Duration::from_secs(600);
        c.shutdown_timeout = Duration::from_millis(50);
    })
    .await;
    let (stalled_url, held) = stalled().await;
    let healthy = Receiver::start(&[]).await;
    let images: Vec<String> = (1..=IMAGES)
        .map(|n| format!("registry.example.org:5000/team/app-{n}"))
        .collect();
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    let created = broker.subscribe("stalled", &images, "production", &stalled_url).await;
    broker.subscribe("healthy", &images, "production", &healthy.url).await;
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();

    // One push per image: each is one delivery to each subscriber, the
    // stalled one's created first.
    for n in 1..=IMAGES {
        let body = envelope(vec![manifest_push(
            &format!("ev-{n}"),
            &format!("team/app-{n}"),
            Some("1.1.0-production-201108-195630"),
            n,
        )]);
        let r = broker
            .client
            .post(&hook)
            .header("content-type", MEDIA_TYPE_V1)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }

    // Every healthy callback arrives although the stalled subscriber holds
    // connections that never answer.
    let received = healthy.wait_for(usize::from(IMAGES)).await;
    assert_eq!(received.len(), usize::from(IMAGES));
    let store = &broker.state.store;
    let healthy_state = store.subscription_state("healthy").await.unwrap().unwrap();
    let succeeded = healthy_state
        .counts
        .iter()
        .find(|(state, _)| state == "succeeded")
        .map(|(_, n)| *n);
    assert_eq!(succeeded, Some(i64::from(IMAGES)), "{:?}", healthy_state.counts);

    // The stalled subscriber holds its backlog: nothing delivered, at most
    // its limit of connections in flight.
    let stalled_state = store.subscription_state("stalled").await.unwrap().unwrap();
    assert_eq!(
        stalled_state.counts,
        [("pending".to_owned(), i64::from(IMAGES))],
        "the stalled subscriber's deliveries wait"
    );
    let connections = held.lock().unwrap().len();
    assert!(
        (1..=2).contains(&connections),
        "{connections} connections to the stalled subscriber; the limit is 2"
    );
    broker.stop().await;
}
