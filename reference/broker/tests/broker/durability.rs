//! What the store guarantees when the database refuses or holds bad data:
//! a hook whose transaction fails is never acknowledged (5xx, never 2xx),
//! and a row that does not decode is an error naming it, never skipped.

use std::sync::Arc;

use sqlx::Connection as _;
use tagcast_broker::store::{
    Claim, Disposition, NewDelivery, NewInboundEvent, SqliteStore, Store, StoreError, new_id, now_ms,
};
use tagcast_spec::{Digest, Repository, Tag};

use crate::support::broker::{Broker, TOKEN};
use crate::support::distribution::{MEDIA_TYPE_V1, envelope, manifest_push};
use crate::support::receiver::Receiver;
use crate::support::registration;

const REPO: &str = "registry.example.org:5000/team/app";
const POISON: &str = "1.1.0-production-201108-000013";

/// A SQLite file store and a second connection to the same file, for the
/// test to change the database behind the store's back.
async fn file_store(dir: &tempfile::TempDir) -> (Arc<dyn Store>, sqlx::SqliteConnection) {
    let url = format!("sqlite://{}", dir.path().join("broker.db").display());
    let store = SqliteStore::open_keyed(&url, &crate::support::keys()).await.unwrap();
    let side = sqlx::SqliteConnection::connect(&url).await.unwrap();
    (Arc::new(store), side)
}

async fn exec(conn: &mut sqlx::SqliteConnection, sql: &str) {
    sqlx::query(sql).execute(&mut *conn).await.unwrap();
}

#[tokio::test]
async fn a_hook_whose_transaction_fails_is_answered_5xx_and_the_others_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut side) = file_store(&dir).await;
    let broker = Broker::start(store.clone(), |c| c.verify_digests = false).await;
    let receiver = Receiver::start(&[]).await;
    let created = broker.subscribe("svc", &[REPO], "production", &receiver.url).await;
    let hook = created["subscription"]["hooks"][0]["url"].as_str().unwrap().to_owned();
    // The injected failure: the database refuses to record one tag.
    exec(
        &mut side,
        &format!(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON inbound_events WHEN NEW.tag = '{POISON}' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        ),
    )
    .await;

    // Hooks sent together, so that they share groups with the poisoned one.
    let mut sent = tokio::task::JoinSet::new();
    for n in 1..=24u8 {
        let tag = format!("1.1.0-production-201108-0000{n:02}");
        let body = envelope(vec![manifest_push(&format!("ev-{n}"), "team/app", Some(&tag), n)]);
        let (client, hook) = (broker.client.clone(), hook.clone());
        sent.spawn(async move {
            let status = client
                .post(&hook)
                .header("content-type", MEDIA_TYPE_V1)
                .body(body)
                .send()
                .await
                .unwrap()
                .status();
            (tag, status)
        });
    }
    let mut acknowledged = Vec::new();
    while let Some(result) = sent.join_next().await {
        let (tag, status) = result.unwrap();
        if tag == POISON {
            assert!(status.is_server_error(), "the failed hook answered {status}");
        } else {
            assert_eq!(status, 202, "{tag}");
            acknowledged.push(tag);
        }
    }
    assert_eq!(acknowledged.len(), 23);

    // Every acknowledged hook is in the event log; the refused one is not.
    let log = store.inbound_events(100).await.unwrap();
    let mut logged: Vec<_> = log.iter().filter_map(|e| e.tag.clone()).collect();
    logged.sort();
    acknowledged.sort();
    assert_eq!(logged, acknowledged);

    // Once the database accepts it again, the registry's retry is recorded.
    exec(&mut side, "DROP TRIGGER refuse_poison").await;
    let body = envelope(vec![manifest_push("ev-13", "team/app", Some(POISON), 13)]);
    let retried = broker
        .client
        .post(&hook)
        .header("content-type", MEDIA_TYPE_V1)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 202);
    broker.stop().await;
}

fn pushed(tag: &str) -> NewInboundEvent {
    NewInboundEvent {
        kind: "distribution".into(),
        registry: "registry.example.org:5000".into(),
        source_event_id: None,
        repository: Some(REPO.into()),
        tag: Some(tag.into()),
        digest: Some(crate::support::distribution::digest(1)),
        media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
        is_index: false,
        disposition: Disposition::Accepted,
    }
}

fn corrupt(err: StoreError) -> (&'static str, String, String, String) {
    match err {
        StoreError::Corrupt {
            table,
            row,
            column,
            error,
        } => (table, row, column, error),
        other => panic!("expected a corrupt row, got {other:?}"),
    }
}

#[tokio::test]
async fn a_row_that_does_not_decode_is_an_error_naming_table_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut side) = file_store(&dir).await;
    let service = tagcast_broker::store::NewService {
        id: "svc".into(),
        document: r#"{"id":"svc"}"#.into(),
        subscription: Some(tagcast_broker::store::NewSubscription {
            stage: "production".into(),
            api_requirement: "^1.1".into(),
            callback_url: "https://cd.example.org/hook".into(),
            secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0".into(),
            images: vec![REPO.into()],
            registry_url: None,
        }),
        hook_sources: Vec::new(),
    };
    store.insert_service(service).await.unwrap();
    let recorded = store
        .record_inbound(vec![pushed("1.1.0-production-201108-195630")], 0)
        .await
        .unwrap();
    let event_id = recorded[0].0.clone();

    // An accepted event whose tag was changed behind the broker's back.
    exec(&mut side, "UPDATE inbound_events SET tag = 'latest'").await;
    let now = now_ms();
    let (table, row, column, error) = corrupt(store.claim_inbound(now, now + 60_000, 10).await.unwrap_err());
    assert_eq!(
        (table, row.as_str(), column.as_str()),
        ("inbound_events", event_id.as_str(), "tag")
    );
    assert!(error.contains("latest"), "{error}");
    exec(
        &mut side,
        "UPDATE inbound_events SET tag = '1.1.0-production-201108-195630'",
    )
    .await;

    // A subscription whose stage is not one.
    exec(&mut side, "UPDATE subscriptions SET stage = 'prod'").await;
    let repository = Repository::parse(REPO).unwrap();
    let (table, row, column, _) = corrupt(store.subscribers(&repository).await.unwrap_err());
    assert_eq!(
        (table, row.as_str(), column.as_str()),
        ("subscriptions", "svc", "stage")
    );
    exec(&mut side, "UPDATE subscriptions SET stage = 'production'").await;

    // A delivery whose digest is not one: claimed, then refused, not sent.
    let id = new_id();
    let delivery = NewDelivery {
        id: id.clone(),
        event_id: event_id.clone(),
        service_id: "svc".into(),
        repository,
        tag: Tag::parse("1.1.0-production-201108-195630").unwrap(),
        digest: Digest::parse(&crate::support::distribution::digest(1)).unwrap(),
        payload: "{}".into(),
    };
    store
        .complete_inbound(&event_id, vec![delivery], now, None)
        .await
        .unwrap();
    exec(&mut side, "UPDATE deliveries SET digest = 'sha256:short'").await;
    let claim = Claim {
        worker: "w1",
        now,
        lease_until: now + 60_000,
        limit: 10,
        per_subscriber: 8,
    };
    let (table, row, column, _) = corrupt(store.claim_deliveries(claim).await.unwrap_err());
    assert_eq!(
        (table, row.as_str(), column.as_str()),
        ("deliveries", id.as_str(), "digest")
    );
    // Nothing was skipped: the log still shows it pending.
    assert_eq!(store.delivery("svc", &id).await.unwrap().unwrap().state, "pending");

    // A decision that is not one of the spec's kinds.
    exec(
        &mut side,
        &format!(
            "INSERT INTO decisions (event_id, service_id, repository, tag, decision, reason, decided_at) \
             VALUES ('{event_id}', 'svc', '{REPO}', '1.1.0-production-201108-195630', 'matched', 'x', 0)"
        ),
    )
    .await;
    let (table, row, column, error) = corrupt(store.decisions(std::slice::from_ref(&event_id)).await.unwrap_err());
    assert_eq!(
        (table, row.as_str(), column.as_str()),
        ("decisions", event_id.as_str(), "decision")
    );
    assert!(error.contains("matched"), "{error}");
}

/// Issue 11, finding 9: a service and the hook sources its images need are
/// written in one transaction, so a failure on the source leaves no
/// service (and no subscription) behind.
#[tokio::test]
async fn a_service_whose_hook_source_cannot_be_written_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut side) = file_store(&dir).await;
    let broker = Broker::start(store.clone(), |_| {}).await;
    exec(
        &mut side,
        "CREATE TRIGGER refuse_source BEFORE INSERT ON hook_sources \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .await;
    let body = registration(
        "svc",
        serde_json::json!({
            "images": [REPO],
            "stage": "production",
            "callbackUrl": "https://cd.example.org/hook",
            "registry": {"kind": "distribution"}
        }),
    );
    for put in [false, true] {
        let request = if put {
            broker.client.put(broker.api("/services/svc"))
        } else {
            broker.client.post(broker.api("/services"))
        };
        let r = request.bearer_auth(TOKEN).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 500, "put={put}");
        assert!(
            store.services().await.unwrap().is_empty(),
            "put={put}: no service stored"
        );
        assert_eq!(
            store.subscription_secret("svc").await.unwrap(),
            None,
            "put={put}: no subscription"
        );
    }
    broker.stop().await;
}

/// Migration 6 (issue 11, finding 3): a database from before it, whose
/// `registry.url` sat on the shared hook source, gets each subscription's
/// own URL from its stored document, and the shared one is emptied.
#[tokio::test]
async fn the_registry_url_moves_from_the_hook_source_to_its_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut side) = file_store(&dir).await;
    let broker = Broker::start(store.clone(), |_| {}).await;
    let mut body = registration(
        "svc",
        serde_json::json!({
            "images": [REPO],
            "stage": "production",
            "callbackUrl": "https://cd.example.org/hook",
            "registry": {"kind": "distribution", "url": "http://127.0.0.1:5000"}
        }),
    );
    for id in ["svc", "plain"] {
        body["id"] = id.into();
        if id == "plain" {
            body["subscription"]["registry"] = serde_json::json!({"kind": "distribution"});
        }
        let r = broker.register(&body).await;
        assert_eq!(r.status(), 201);
    }
    broker.stop().await;
    drop(store);
    // Back to the schema before migration 6, as an older broker wrote it.
    for sql in [
        "ALTER TABLE subscriptions DROP COLUMN registry_url",
        "UPDATE hook_sources SET api_url = 'http://127.0.0.1:5000'",
        "DELETE FROM _sqlx_migrations WHERE version = 6",
    ] {
        exec(&mut side, sql).await;
    }
    drop(side);
    let url = format!("sqlite://{}", dir.path().join("broker.db").display());
    let reopened = SqliteStore::open_keyed(&url, &crate::support::keys()).await.unwrap();
    let mut side = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT service_id, registry_url FROM subscriptions ORDER BY service_id")
            .fetch_all(&mut side)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("plain".to_owned(), None),
            ("svc".to_owned(), Some("http://127.0.0.1:5000".to_owned()))
        ]
    );
    let shared: Vec<(Option<String>,)> = sqlx::query_as("SELECT api_url FROM hook_sources")
        .fetch_all(&mut side)
        .await
        .unwrap();
    assert!(shared.iter().all(|(u,)| u.is_none()), "{shared:?}");
    let subscribers = reopened.subscribers(&Repository::parse(REPO).unwrap()).await.unwrap();
    let urls: Vec<_> = subscribers.iter().map(|s| s.registry_url.as_deref()).collect();
    assert_eq!(urls, [None, Some("http://127.0.0.1:5000")]);
}
