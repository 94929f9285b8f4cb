//! Version order under retries (issue 12, item 2): a delivery of an older
//! tag that is still retrying when a newer tag of the same image was
//! delivered is dropped (`superseded`) on its next attempt and on a manual
//! redelivery, also when two replicas share the work.
//!
//! The receiver fails the older tag and accepts the newer one, so whatever
//! the timing of attempts, the only way the older tag reaches it after the
//! newer one is a broker that sends a superseded delivery.
//!
//! And across a crash: while the newer delivery is in flight (sent, its
//! outcome not recorded), the older one is held back, not sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

use crate::support::broker::{Broker, TOKEN};
use crate::support::distribution::{MEDIA_TYPE_V1, envelope, manifest_push};

const REPO: &str = "registry.example.org:5000/team/app";
const OLD: &str = "1.1.0-production-201101-000000";
const NEW: &str = "1.1.0-production-201110-000000";

/// Records the tag of each callback; answers 500 to `OLD`, 200 to the rest.
#[derive(Clone, Default)]
struct Receiver {
    tags: Arc<Mutex<Vec<String>>>,
    url: String,
}

impl Receiver {
    async fn start() -> Self {
        let tags = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().route("/callback", post(receive)).with_state(tags.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/callback", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { tags, url }
    }

    fn tags(&self) -> Vec<String> {
        self.tags.lock().unwrap().clone()
    }
}

async fn receive(State(tags): State<Arc<Mutex<Vec<String>>>>, body: Bytes) -> StatusCode {
    let event: Value = serde_json::from_slice(&body).unwrap();
    let tag = event["data"]["tag"].as_str().unwrap().to_owned();
    let code = if tag == OLD {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    tags.lock().unwrap().push(tag);
    code
}

async fn push(broker: &Broker, hook: &str, id: &str, tag: &str, n: u8) {
    let r = broker
        .client
        .post(hook)
        .header("content-type", MEDIA_TYPE_V1)
        .body(envelope(vec![manifest_push(id, "team/app", Some(tag), n)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

/// The delivery log of `svc`, as the admin sees it.
async fn deliveries(broker: &Broker) -> Vec<Value> {
    broker
        .client
        .get(broker.api("/services/svc/deliveries"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

/// Waits until the delivery of `tag` has `outcome` (or panics after 20 s).
async fn wait_outcome(broker: &Broker, tag: &str, outcome: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        let all = deliveries(broker).await;
        if let Some(d) = all.iter().find(|d| d["tag"] == tag) {
            if d["outcome"] == outcome {
                return d.clone();
            }
            last = d.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the delivery of {tag} never became {outcome}: it is {} after {} attempts",
        last["outcome"],
        last["attempts"].as_array().map_or(0, Vec::len)
    );
}

/// A retry schedule long enough that the older delivery is still retrying
/// when the newer one is delivered, however slow the machine.
fn many_retries(config: &mut tagcast_broker::Config) {
    config.retry_schedule = vec![Duration::from_millis(100); 300];
    config.poll_interval = Duration::from_millis(20);
}

/// The scenario on `a` (which takes the hooks) and `b` (another replica or `a`).
async fn older_retry_is_dropped(a: &Broker, b: &Broker) {
    let receiver = Receiver::start().await;
    let created = a.subscribe("svc", &[REPO], "production", &receiver.url).await;
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();

    push(a, &hook, "ev-old", OLD, 1).await;
    // The older tag failed at least once and is waiting for its next attempt.
    for _ in 0..400 {
        if receiver.tags().contains(&OLD.to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(receiver.tags().contains(&OLD.to_owned()), "the older tag was attempted");
    assert_eq!(wait_outcome(b, OLD, "pending").await["tag"], OLD);

    let hook_b = hook.replace(&a.url, &b.url);
    push(b, &hook_b, "ev-new", NEW, 2).await;
    wait_outcome(a, NEW, "delivered").await;
    // An attempt of the older tag may have been in flight at that moment;
    // none may start after it.
    let olds = |tags: &[String]| tags.iter().filter(|t| *t == OLD).count();
    let at_delivery = olds(&receiver.tags());
    let dropped = wait_outcome(b, OLD, "superseded").await;
    let tags = receiver.tags();
    assert_eq!(tags.iter().filter(|t| *t == NEW).count(), 1, "{tags:?}");
    assert!(
        olds(&tags) <= at_delivery + 1,
        "the older tag was sent again after the newer one was delivered: {tags:?}"
    );

    // A manual redelivery of the older tag is accepted and dropped again.
    let id = dropped["id"].as_str().unwrap();
    let r = a
        .client
        .post(a.api(&format!("/services/svc/deliveries/{id}/redeliver")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let again = wait_outcome(b, OLD, "superseded").await;
    assert_eq!(again["id"], id);
    assert_eq!(
        receiver.tags(),
        tags,
        "nothing was sent for the redelivery of a superseded tag"
    );
}

#[tokio::test]
async fn an_older_delivery_retrying_after_a_newer_one_was_delivered_is_dropped() {
    let broker = Broker::start(crate::support::sqlite().await, many_retries).await;
    older_retry_is_dropped(&broker, &broker).await;
    broker.stop().await;
}

#[tokio::test]
#[ignore = "needs postgres"]
async fn across_two_replicas_an_older_retrying_delivery_is_dropped() {
    use tagcast_broker::store::{PostgresStore, Store};

    use crate::support::{fresh_schema, schema_options};
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
    let a = Broker::start(one, many_retries).await;
    let b = Broker::start(two, many_retries).await;
    older_retry_is_dropped(&a, &b).await;
    a.stop().await;
    b.stop().await;
}

/// Answers 500 to `OLD`; holds the answer to `NEW` until released, then
/// 200. Records each tag on arrival.
#[derive(Clone)]
struct Holding {
    tags: Arc<Mutex<Vec<String>>>,
    release: Arc<tokio::sync::Notify>,
    released: Arc<std::sync::atomic::AtomicBool>,
}

async fn hold_new(State(h): State<Holding>, body: Bytes) -> StatusCode {
    let event: Value = serde_json::from_slice(&body).unwrap();
    let tag = event["data"]["tag"].as_str().unwrap().to_owned();
    h.tags.lock().unwrap().push(tag.clone());
    if tag == OLD {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if !h.released.load(std::sync::atomic::Ordering::SeqCst) {
        let notified = h.release.notified();
        if !h.released.load(std::sync::atomic::Ordering::SeqCst) {
            notified.await;
        }
    }
    StatusCode::OK
}

/// CB-15 across a crash: the subscriber has accepted the newer tag but the
/// broker has not recorded it (here the answer is held back, which leaves
/// the store exactly as a broker killed after sending would: the newer
/// delivery pending and claimed). The older delivery, due for its retry
/// meanwhile, must not be sent; once the newer outcome is recorded it is
/// superseded.
#[tokio::test]
async fn an_older_delivery_is_held_back_while_a_newer_one_is_in_flight() {
    let broker = Broker::start(crate::support::sqlite().await, |c| {
        many_retries(c);
        c.delivery_timeout = Duration::from_secs(120);
    })
    .await;
    let holding = Holding {
        tags: Arc::default(),
        release: Arc::default(),
        released: Arc::default(),
    };
    let app = Router::new()
        .route("/callback", post(hold_new))
        .with_state(holding.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let tags = || holding.tags.lock().unwrap().clone();
    let created = broker.subscribe("svc", &[REPO], "production", &url).await;
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();

    push(&broker, &hook, "ev-old", OLD, 1).await;
    let old = wait_outcome(&broker, OLD, "pending").await;
    let old_id = old["id"].as_str().unwrap().to_owned();
    for _ in 0..400 {
        if tags().contains(&OLD.to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(tags().contains(&OLD.to_owned()), "the older tag was attempted");

    push(&broker, &hook, "ev-new", NEW, 2).await;
    let mut held = false;
    for _ in 0..800 {
        let seen = tags();
        if let Some(at) = seen.iter().position(|t| t == NEW) {
            assert!(
                !seen[at..].contains(&OLD.to_owned()),
                "the older tag was sent while the newer one was in flight: {seen:?}"
            );
            let record = broker.state.store.delivery("svc", &old_id).await.unwrap().unwrap();
            if record
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains(&format!("waiting for the outcome of the newer {NEW}")))
            {
                held = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(held, "the older delivery was looked at and held back: {:?}", tags());

    holding.released.store(true, std::sync::atomic::Ordering::SeqCst);
    holding.release.notify_waiters();
    wait_outcome(&broker, NEW, "delivered").await;
    wait_outcome(&broker, OLD, "superseded").await;
    let seen = tags();
    let at = seen.iter().position(|t| t == NEW).unwrap();
    assert_eq!(seen[at..], [NEW.to_owned()], "nothing after the newer tag: {seen:?}");
    broker.stop().await;
}
