//! Retention (issue 11, finding 6): the prune forgets finished work and
//! settled events past their age, never pending work, an event a kept
//! delivery points at, or the last delivered tag of a channel. Runs on
//! SQLite and PostgreSQL.

use std::sync::Arc;

use tagcast_broker::store::{
    AttemptRecord, DeliveryState, Disposition, NewDelivery, NewInboundEvent, NewService, NewSubscription, Pruned,
    Store, new_id, now_ms,
};
use tagcast_spec::{Digest, Repository, Tag};

const REPO: &str = "registry.example.org/team/app";

fn service() -> NewService {
    NewService {
        id: "svc".into(),
        document: r#"{"id":"svc"}"#.into(),
        subscription: Some(NewSubscription {
            stage: "production".into(),
            api_requirement: "^1.1".into(),
            callback_url: "https://cd.example.org/hook".into(),
            secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0".into(),
            images: vec![REPO.into()],
            registry_url: None,
        }),
        hook_sources: Vec::new(),
    }
}

fn event(tag: &str, n: u8, accepted: bool) -> NewInboundEvent {
    NewInboundEvent {
        kind: "distribution".into(),
        registry: "registry.example.org".into(),
        source_event_id: Some(format!("ev-{tag}-{n}")),
        repository: Some(REPO.into()),
        tag: Some(tag.into()),
        digest: Some(format!("sha256:{}", format!("{n:02x}").repeat(32))),
        media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
        is_index: false,
        disposition: if accepted {
            Disposition::Accepted
        } else {
            Disposition::Ignored("untagged manifest (pushed by digest)".into())
        },
    }
}

/// Records `tag`, matches it with one delivery to `svc`; the delivery id.
async fn delivered(store: &Arc<dyn Store>, tag: &str, n: u8, outcome: DeliveryState) -> (String, String) {
    let recorded = store.record_inbound(vec![event(tag, n, true)], 0).await.unwrap();
    let now = now_ms();
    let claimed = store.claim_inbound(now, now + 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let id = new_id();
    let delivery = NewDelivery {
        id: id.clone(),
        event_id: claimed[0].id.clone(),
        service_id: "svc".into(),
        repository: Repository::parse(REPO).unwrap(),
        tag: Tag::parse(tag).unwrap(),
        digest: Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap(),
        payload: "{}".into(),
    };
    store
        .complete_inbound(&claimed[0].id, vec![delivery], now, None)
        .await
        .unwrap();
    if outcome != DeliveryState::Pending {
        let due = store
            .claim_deliveries(tagcast_broker::store::Claim {
                worker: "w",
                now,
                lease_until: now + 60_000,
                limit: 10,
                per_subscriber: 8,
            })
            .await
            .unwrap();
        assert_eq!(due.len(), 1);
        store
            .finish_attempt(AttemptRecord {
                delivery_id: id.clone(),
                worker: "w".into(),
                attempted: true,
                started_at: now,
                duration_ms: 3,
                status: Some(204),
                error: None,
                state: outcome,
                next_attempt_at: None,
                disable_subscription: None,
            })
            .await
            .unwrap();
    }
    (recorded[0].0.clone(), id)
}

async fn event_ids(store: &Arc<dyn Store>) -> Vec<String> {
    let mut ids: Vec<String> = store
        .inbound_events(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    ids.sort();
    ids
}

async fn prune_forgets_finished_work_and_keeps_what_is_pending(store: Arc<dyn Store>) {
    store.insert_service(service()).await.unwrap();
    let (done_event, done) = delivered(&store, "1.1.0-production-201108-195630", 1, DeliveryState::Succeeded).await;
    let (pending_event, pending) = delivered(&store, "1.1.0-production-201109-195630", 2, DeliveryState::Pending).await;
    let ignored = store.record_inbound(vec![event("x", 3, false)], 0).await.unwrap()[0]
        .0
        .clone();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let cutoff = now_ms();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let recent = store.record_inbound(vec![event("y", 4, false)], 0).await.unwrap()[0]
        .0
        .clone();
    let last_before = store.subscription_state("svc").await.unwrap().unwrap().images;

    // Nothing is old enough yet: nothing goes.
    assert_eq!(store.prune(0, 0).await.unwrap(), Pruned::default());
    let pruned = store.prune(cutoff, cutoff).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            events: 2,
            deliveries: 1,
            attempts: 1
        }
    );
    let mut kept = vec![pending_event.clone(), recent.clone()];
    kept.sort();
    assert_eq!(
        event_ids(&store).await,
        kept,
        "the delivered and the ignored event went"
    );
    assert!(!kept.contains(&done_event) && !kept.contains(&ignored));
    let deliveries: Vec<String> = store
        .deliveries("svc", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(deliveries, std::slice::from_ref(&pending), "the pending delivery stays");
    assert!(!deliveries.contains(&done));
    assert_eq!(
        store.subscription_state("svc").await.unwrap().unwrap().images,
        last_before,
        "the last delivered tag stays"
    );
    let subscribers = store.subscribers(&Repository::parse(REPO).unwrap()).await.unwrap();
    assert_eq!(
        subscribers[0].pending_tags.len(),
        1,
        "the pending tag still blocks older ones"
    );
    // A second prune finds nothing more.
    assert_eq!(store.prune(cutoff, cutoff).await.unwrap(), Pruned::default());
}

crate::store_cases!(prune_forgets_finished_work_and_keeps_what_is_pending);

/// Pulls and blob pushes are registry traffic, not releases: counted in
/// `tagcast_hook_events_not_stored_total`, never stored, still answered 2xx.
#[tokio::test]
async fn pulls_and_blob_pushes_are_counted_not_stored() {
    use crate::support::broker::Broker;
    use crate::support::distribution::{MEDIA_TYPE_V1, blob_push, envelope, manifest_push};
    use crate::support::receiver::Receiver;

    let broker = Broker::start(crate::support::sqlite().await, |_| {}).await;
    let receiver = Receiver::start(&[]).await;
    let url = crate::attacks::hook_url(&broker, &receiver).await;
    let mut pull = manifest_push("pull-1", "team/app", Some("1.1.0-production-201108-195630"), 1);
    pull["action"] = "pull".into();
    let r = broker
        .client
        .post(&url)
        .header("content-type", MEDIA_TYPE_V1)
        .body(envelope(vec![pull, blob_push("team/app", 2), blob_push("team/app", 3)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["events"].as_array().map_or(0, Vec::len), 3, "{answer}");
    crate::attacks::assert_no_event(&broker).await;
    let metrics = broker
        .client
        .get(format!("{}/metrics", broker.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"tagcast_hook_events_not_stored_total{kind="distribution",reason="pull"} 1"#,
        r#"tagcast_hook_events_not_stored_total{kind="distribution",reason="blob"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    assert!(receiver.received().is_empty());
    broker.stop().await;
}
