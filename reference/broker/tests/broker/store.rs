//! The store suite: every case runs on SQLite and on PostgreSQL.

use std::sync::Arc;

use tagcast_broker::store::{
    AttemptRecord, Claim, DeliveryState, Disposition, NewDelivery, NewInboundEvent, NewService, NewSubscription, Store,
    StoreError, new_id, now_ms,
};
use tagcast_spec::{Digest, Repository, Tag};

const REPO: &str = "registry.example.org/team/app";
const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn service(id: &str, images: &[&str]) -> NewService {
    NewService {
        id: id.to_owned(),
        document: format!(r#"{{"id":"{id}"}}"#),
        subscription: Some(NewSubscription {
            stage: "production".into(),
            api_requirement: "^1.1".into(),
            callback_url: "https://cd.example.org/hook".into(),
            secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0".into(),
            images: images.iter().map(|s| (*s).to_owned()).collect(),
            registry_url: None,
        }),
        hook_sources: Vec::new(),
    }
}

fn repo() -> Repository {
    Repository::parse(REPO).unwrap()
}

fn tag(s: &str) -> Tag {
    Tag::parse(s).unwrap()
}

fn digest(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

fn claim(worker: &str, now: i64, lease_until: i64, limit: i64) -> Claim<'_> {
    Claim {
        worker,
        now,
        lease_until,
        limit,
        per_subscriber: 8,
    }
}

fn pushed(tag: &str, digest: &str, event_id: Option<&str>) -> NewInboundEvent {
    NewInboundEvent {
        kind: "distribution".into(),
        registry: "registry.example.org".into(),
        source_event_id: event_id.map(str::to_owned),
        repository: Some(REPO.into()),
        tag: Some(tag.into()),
        digest: Some(digest.into()),
        media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
        is_index: false,
        disposition: Disposition::Accepted,
    }
}

async fn services_round_trip(store: Arc<dyn Store>) {
    store.insert_service(service("svc-1", &[REPO])).await.unwrap();
    let err = store.insert_service(service("svc-1", &[REPO])).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.service("svc-1").await.unwrap().unwrap().document,
        r#"{"id":"svc-1"}"#
    );
    assert!(store.service("nope").await.unwrap().is_none());

    let mut replaced = service("svc-1", &["registry.example.org/team/other"]);
    replaced.document = r#"{"id":"svc-1","v":2}"#.into();
    assert!(
        !store.replace_service(replaced).await.unwrap(),
        "an existing service is replaced, not created"
    );
    assert!(store.replace_service(service("svc-2", &[REPO])).await.unwrap());
    let all = store.services().await.unwrap();
    assert_eq!(
        all.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["svc-1", "svc-2"]
    );
    assert_eq!(all[0].document, r#"{"id":"svc-1","v":2}"#);
    // The replaced subscription no longer matches the old image.
    let subs = store.subscribers(&repo()).await.unwrap();
    assert_eq!(
        subs.iter().map(|s| s.service_id.as_str()).collect::<Vec<_>>(),
        ["svc-2"]
    );

    assert!(store.delete_service("svc-2").await.unwrap());
    assert!(!store.delete_service("svc-2").await.unwrap());
    assert!(store.subscribers(&repo()).await.unwrap().is_empty());
}

async fn hook_sources_are_shared(store: Arc<dyn Store>) {
    let a = store
        .hook_source("distribution", "registry.example.org", None)
        .await
        .unwrap();
    let b = store
        .hook_source("distribution", "registry.example.org", None)
        .await
        .unwrap();
    assert_eq!(a, b, "one token per (kind, registry)");
    assert!(a.token.len() >= 22, "at least 128 bits: {}", a.token);
    let c = store
        .hook_source("distribution", "other.example.org", None)
        .await
        .unwrap();
    assert_ne!(a.token, c.token);
    assert_eq!(store.hook_source_by_token(&a.token).await.unwrap(), Some(a));
    assert_eq!(store.hook_source_by_token("unknown").await.unwrap(), None);
}

/// A source created before its kind signed (no secret) gets the secret of
/// the next write that proposes one, and keeps it: later proposals never
/// replace a secret the registry may already be configured with.
async fn hook_sources_get_a_missing_secret(store: Arc<dyn Store>) {
    let old = store.hook_source("ghcr", "ghcr.io", None).await.unwrap();
    assert_eq!(old.secret, None);
    let filled = store.hook_source("ghcr", "ghcr.io", Some("first")).await.unwrap();
    assert_eq!(filled.token, old.token, "the same source, not a new one");
    assert_eq!(filled.secret.as_deref(), Some("first"));
    let kept = store.hook_source("ghcr", "ghcr.io", Some("second")).await.unwrap();
    assert_eq!(
        kept.secret.as_deref(),
        Some("first"),
        "an existing secret is never replaced"
    );
    let read = store.find_hook_source("ghcr", "ghcr.io").await.unwrap().unwrap();
    assert_eq!(read, kept);
}

async fn inbound_deduplicates(store: Arc<dyn Store>) {
    let out = store
        .record_inbound(
            vec![
                pushed("1.1.0-production-201108-195630", DIGEST_A, Some("ev-1")),
                pushed("1.1.0-production-201108-195630", DIGEST_A, Some("ev-2")),
                pushed("1.1.0-production-201109-000000", DIGEST_B, Some("ev-1")),
            ],
            0,
        )
        .await
        .unwrap();
    assert_eq!(out[0].1, Disposition::Accepted);
    let Disposition::Ignored(reason) = &out[1].1 else {
        panic!("{out:?}")
    };
    assert!(
        reason.starts_with("duplicate: registry.example.org/team/app:1.1.0"),
        "{reason}"
    );
    let Disposition::Ignored(reason) = &out[2].1 else {
        panic!("{out:?}")
    };
    assert!(reason.starts_with("duplicate: registry event id ev-1"), "{reason}");

    // A second hook with the same content is a duplicate too.
    let again = store
        .record_inbound(vec![pushed("1.1.0-production-201108-195630", DIGEST_A, None)], 0)
        .await
        .unwrap();
    assert!(matches!(again[0].1, Disposition::Ignored(_)), "{again:?}");

    let log = store.inbound_events(10).await.unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(log.iter().filter(|e| e.status == "accepted").count(), 1);
}

/// Docker Hub, Quay and Gitea events carry no digest: a redelivered body
/// (same event id or body hash) is a duplicate within the dedupe window
/// and a new event after it. The window's start is the caller's clock.
async fn redeliveries_without_digest_are_duplicates_within_the_window(store: Arc<dyn Store>) {
    let bare = || {
        let mut event = pushed("1.1.0-production-201108-195630", DIGEST_A, Some("sha256:body"));
        event.kind = "quay".into();
        event.digest = None;
        event
    };
    let accepted = |out: &[(String, Disposition)]| out.iter().filter(|(_, d)| *d == Disposition::Accepted).count();
    let first = store.record_inbound(vec![bare()], 0).await.unwrap();
    assert_eq!(accepted(&first), 1, "{first:?}");
    let within = store.record_inbound(vec![bare()], 0).await.unwrap();
    let Disposition::Ignored(reason) = &within[0].1 else {
        panic!("a redelivery within the window is recorded again: {within:?}")
    };
    assert!(
        reason.starts_with("duplicate: registry event id sha256:body"),
        "{reason}"
    );
    let log = store.inbound_events(10).await.unwrap();
    assert_eq!(log.iter().filter(|e| e.status == "accepted").count(), 1, "{log:?}");

    // The window starts after the first event: the same body is new.
    let after = store.record_inbound(vec![bare()], now_ms() + 1).await.unwrap();
    assert_eq!(accepted(&after), 1, "{after:?}");
    // ...and is itself the one a redelivery within the window now meets.
    let again = store.record_inbound(vec![bare()], 0).await.unwrap();
    let Disposition::Ignored(reason) = &again[0].1 else {
        panic!("{again:?}")
    };
    assert!(reason.ends_with(&after[0].0), "{reason}");
    let log = store.inbound_events(10).await.unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(log.iter().filter(|e| e.status == "accepted").count(), 2, "{log:?}");
}

async fn index_wins_over_platform_manifests(store: Arc<dyn Store>) {
    let mut index = pushed("1.1.0-production-201108-195630", DIGEST_A, None);
    index.is_index = true;
    let platform = pushed("1.1.0-production-201108-195630", DIGEST_B, None);
    let out = store.record_inbound(vec![index, platform], 0).await.unwrap();
    assert_eq!(out[0].1, Disposition::Accepted);
    let Disposition::Ignored(reason) = &out[1].1 else {
        panic!("{out:?}")
    };
    assert!(reason.contains(DIGEST_A), "{reason}");
}

async fn outbox_claims_once_and_retries(store: Arc<dyn Store>) {
    store.insert_service(service("svc", &[REPO])).await.unwrap();
    let out = store
        .record_inbound(vec![pushed("1.1.0-production-201108-195630", DIGEST_A, None)], 0)
        .await
        .unwrap();
    let now = now_ms();
    let claimed = store.claim_inbound(now, now + 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, out[0].0);
    assert!(
        store.claim_inbound(now, now + 60_000, 10).await.unwrap().is_empty(),
        "claimed once"
    );
    assert_eq!(store.queue_depth().await.unwrap(), 1);

    let delivery = NewDelivery {
        id: new_id(),
        event_id: claimed[0].id.clone(),
        service_id: "svc".into(),
        repository: repo(),
        tag: tag("1.1.0-production-201108-195630"),
        digest: digest(DIGEST_A),
        payload: "{}".into(),
    };
    assert_eq!(
        store
            .complete_inbound(&claimed[0].id, vec![delivery.clone()], now, None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .complete_inbound(&claimed[0].id, vec![delivery.clone()], now, None)
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .claim_inbound(now + 120_000, now + 180_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "matched"
    );

    let subs = store.subscribers(&repo()).await.unwrap();
    assert_eq!(subs[0].pending_tags, [tag("1.1.0-production-201108-195630")]);

    let due = store
        .claim_deliveries(claim("w1", now, now + 60_000, 10))
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, delivery.id);
    assert_eq!(due[0].callback_url, "https://cd.example.org/hook");
    assert!(
        store
            .claim_deliveries(claim("w2", now, now + 60_000, 10))
            .await
            .unwrap()
            .is_empty()
    );

    store
        .finish_attempt(AttemptRecord {
            delivery_id: delivery.id.clone(),
            worker: "w1".into(),
            attempted: true,
            started_at: now,
            duration_ms: 3,
            status: Some(500),
            error: Some("HTTP 500".into()),
            state: DeliveryState::Pending,
            next_attempt_at: Some(now + 5_000),
            disable_subscription: None,
        })
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries(claim("w2", now + 1_000, now + 60_000, 10))
            .await
            .unwrap()
            .is_empty(),
        "not due"
    );
    let due = store
        .claim_deliveries(claim("w2", now + 5_000, now + 60_000, 10))
        .await
        .unwrap();
    assert_eq!(due[0].attempts, 1);
    // A report from a worker that lost its claim is dropped.
    let mut stale = AttemptRecord {
        delivery_id: delivery.id.clone(),
        worker: "w1".into(),
        attempted: true,
        started_at: now,
        duration_ms: 3,
        status: Some(200),
        error: None,
        state: DeliveryState::Succeeded,
        next_attempt_at: None,
        disable_subscription: None,
    };
    store.finish_attempt(stale.clone()).await.unwrap();
    assert_eq!(
        store.delivery("svc", &delivery.id).await.unwrap().unwrap().state,
        "pending"
    );
    stale.worker = "w2".into();
    store.finish_attempt(stale).await.unwrap();

    let record = store.delivery("svc", &delivery.id).await.unwrap().unwrap();
    assert_eq!(record.state, "succeeded");
    assert_eq!(record.attempts, 2);
    assert_eq!(
        record.attempt_log.iter().map(|a| a.status).collect::<Vec<_>>(),
        [Some(500), Some(200)]
    );
    let state = store.subscription_state("svc").await.unwrap().unwrap();
    assert_eq!(
        state.images[0].last_tag.as_deref(),
        Some("1.1.0-production-201108-195630")
    );
    assert_eq!(state.counts, [("succeeded".to_owned(), 1)]);
    assert_eq!(store.queue_depth().await.unwrap(), 0);

    // Manual redelivery makes it due again.
    assert!(store.redeliver("svc", &delivery.id, now + 10_000).await.unwrap());
    assert!(!store.redeliver("other", &delivery.id, now + 10_000).await.unwrap());
    let due = store
        .claim_deliveries(claim("w3", now + 10_000, now + 60_000, 10))
        .await
        .unwrap();
    assert_eq!((due[0].attempts, due[0].schedule_offset), (2, 2));
}

async fn gone_disables_and_claims_release(store: Arc<dyn Store>) {
    store.insert_service(service("svc", &[REPO])).await.unwrap();
    let out = store
        .record_inbound(vec![pushed("1.1.0-production-201108-195630", DIGEST_A, None)], 0)
        .await
        .unwrap();
    let now = now_ms();
    let id = new_id();
    let delivery = NewDelivery {
        id: id.clone(),
        event_id: out[0].0.clone(),
        service_id: "svc".into(),
        repository: repo(),
        tag: tag("1.1.0-production-201108-195630"),
        digest: digest(DIGEST_A),
        payload: "{}".into(),
    };
    store
        .complete_inbound(&out[0].0, vec![delivery], now, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_deliveries(claim("w1", now, now + 60_000, 10))
            .await
            .unwrap()
            .len(),
        1
    );
    store.release_claims(Some("w1")).await.unwrap();
    assert_eq!(
        store
            .claim_deliveries(claim("w2", now, now + 60_000, 10))
            .await
            .unwrap()
            .len(),
        1,
        "released"
    );
    store
        .finish_attempt(AttemptRecord {
            delivery_id: id.clone(),
            worker: "w2".into(),
            attempted: true,
            started_at: now,
            duration_ms: 1,
            status: Some(410),
            error: Some("HTTP 410".into()),
            state: DeliveryState::Failed,
            next_attempt_at: None,
            disable_subscription: Some("the callback URL answered 410 Gone".into()),
        })
        .await
        .unwrap();
    let state = store.subscription_state("svc").await.unwrap().unwrap();
    assert!(!state.enabled);
    assert!(
        store.subscribers(&repo()).await.unwrap().is_empty(),
        "a disabled subscription matches nothing"
    );
    // A PUT of the service enables it again and keeps what was delivered.
    store.replace_service(service("svc", &[REPO])).await.unwrap();
    assert!(store.subscription_state("svc").await.unwrap().unwrap().enabled);
}

async fn settings_initialize_once(store: Arc<dyn Store>) {
    assert_eq!(store.setting("k").await.unwrap(), None);
    assert_eq!(store.init_setting("k", "one").await.unwrap(), "one");
    assert_eq!(store.init_setting("k", "two").await.unwrap(), "one");
    store.ping().await.unwrap();
}

/// A replaced secret is handed out beside the new one until its grace
/// period ends, then no more (CB-5).
async fn a_replaced_secret_expires(store: Arc<dyn Store>) {
    const OLD: &str = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";
    const NEW: &str = "whsec_bmV3c2VjcmV0bmV3c2VjcmV0bmV3c2VjcmV0";
    store.insert_service(service("svc", &[REPO])).await.unwrap();
    let mut replaced = service("svc", &[REPO]);
    replaced.subscription.as_mut().unwrap().secret = NEW.into();
    let before = now_ms();
    assert!(!store.replace_service(replaced).await.unwrap(), "replaced, not created");
    let after = now_ms();
    let out = store
        .record_inbound(vec![pushed("1.1.0-production-201108-195630", DIGEST_A, None)], 0)
        .await
        .unwrap();
    let claimed = store.claim_inbound(after, after + 60_000, 10).await.unwrap();
    assert_eq!(claimed[0].id, out[0].0);
    let delivery = NewDelivery {
        id: new_id(),
        event_id: claimed[0].id.clone(),
        service_id: "svc".into(),
        repository: repo(),
        tag: tag("1.1.0-production-201108-195630"),
        digest: digest(DIGEST_A),
        payload: "{}".into(),
    };
    store
        .complete_inbound(&claimed[0].id, vec![delivery], after, None)
        .await
        .unwrap();
    let grace = i64::try_from(tagcast_spec::webhook::PREVIOUS_SECRET_GRACE.as_millis()).unwrap();
    // Just before the grace ends (counted from the replacement): both.
    let due = store
        .claim_deliveries(claim("w1", before + grace - 1, before + grace + 1_000, 10))
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].secret, NEW);
    assert_eq!(due[0].previous_secret.as_deref(), Some(OLD));
    store.release_claims(Some("w1")).await.unwrap();
    // Once it ended: the new secret alone.
    let due = store
        .claim_deliveries(claim("w2", after + grace, after + grace + 60_000, 10))
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].previous_secret, None);
}

/// The decision trail (issue 14, item 1): written with the event's
/// deliveries, read back typed per event and as the latest per image, and
/// gone with the service.
async fn decisions_are_kept_with_their_event(store: Arc<dyn Store>) {
    use tagcast_broker::store::{Matched, NewDecision};
    use tagcast_spec::delivery::DecisionKind;
    store.insert_service(service("svc", &[REPO])).await.unwrap();
    let new = "1.1.0-production-201110-000000";
    let old = "1.1.0-production-201101-000000";
    store
        .record_inbound(vec![pushed(new, DIGEST_A, None), pushed(old, DIGEST_B, None)], 0)
        .await
        .unwrap();
    let now = now_ms();
    let claimed = store.claim_inbound(now, now + 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let delivery_id = new_id();
    let decided = |kind: DecisionKind, t: &str, reason: &str, delivery_id: Option<String>| NewDecision {
        service_id: "svc".into(),
        repository: repo(),
        tag: tag(t),
        kind,
        reason: reason.into(),
        delivery_id,
    };
    let first = Matched {
        event_id: claimed[0].id.clone(),
        deliveries: vec![NewDelivery {
            id: delivery_id.clone(),
            event_id: claimed[0].id.clone(),
            service_id: "svc".into(),
            repository: repo(),
            tag: tag(new),
            digest: digest(DIGEST_A),
            payload: "{}".into(),
        }],
        dropped: None,
        note: None,
        decisions: vec![decided(
            DecisionKind::Delivered,
            new,
            "delivered",
            Some(delivery_id.clone()),
        )],
    };
    let second = Matched {
        event_id: claimed[1].id.clone(),
        deliveries: Vec::new(),
        dropped: None,
        note: None,
        decisions: vec![decided(DecisionKind::NotNewer, old, "not newer", None)],
    };
    store.complete_matches(vec![first], now).await.unwrap();
    store.complete_matches(vec![second], now + 1).await.unwrap();

    let ids = [claimed[0].id.clone(), claimed[1].id.clone()];
    let mut found = store.decisions(&ids).await.unwrap();
    found.sort_by_key(|d| d.decision.decided_at);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].decision.event_id, claimed[0].id);
    assert_eq!(found[0].decision.decision, DecisionKind::Delivered);
    assert_eq!(found[0].decision.delivery_id.as_deref(), Some(delivery_id.as_str()));
    assert_eq!(found[0].repository, repo());
    assert_eq!(found[1].decision.decision, DecisionKind::NotNewer);
    assert_eq!(found[1].decision.tag, tag(old));
    assert_eq!(found[1].decision.reason, "not newer");
    assert_eq!(found[1].service_id, "svc");
    assert_eq!(
        store.inbound_event(&claimed[1].id).await.unwrap().unwrap().id,
        claimed[1].id
    );
    assert!(store.inbound_event("no-such-event").await.unwrap().is_none());

    let state = store.subscription_state("svc").await.unwrap().unwrap();
    let last = state.images[0].last_decision.as_ref().expect("a decision per image");
    assert_eq!(last.event_id, claimed[1].id, "the latest decision");

    assert!(store.delete_service("svc").await.unwrap());
    assert!(store.decisions(&ids).await.unwrap().is_empty(), "gone with the service");
}

crate::store_cases!(
    decisions_are_kept_with_their_event,
    services_round_trip,
    hook_sources_are_shared,
    hook_sources_get_a_missing_secret,
    inbound_deduplicates,
    redeliveries_without_digest_are_duplicates_within_the_window,
    index_wins_over_platform_manifests,
    outbox_claims_once_and_retries,
    gone_disables_and_claims_release,
    settings_initialize_once,
    a_replaced_secret_expires,
);

/// Matching's queries read an index by repository (SQLite's plan; the
/// PostgreSQL schema has the same indexes).
#[tokio::test]
async fn matching_is_indexed_by_repository() {
    use sqlx::{Connection as _, Row as _};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("plan.db").display());
    let store = tagcast_broker::store::SqliteStore::open_keyed(&url, &crate::support::keys())
        .await
        .unwrap();
    drop(store);
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for (sql, index) in [
        (tagcast_broker::store::SUBSCRIBERS_SQL, "subscription_images_repository"),
        (tagcast_broker::store::PENDING_TAGS_SQL, "deliveries_repository"),
    ] {
        let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .bind(REPO)
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect();
        assert!(plan.iter().any(|step| step.contains(index)), "{sql}: {plan:?}");
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN")),
            "{sql} scans a table: {plan:?}"
        );
    }
}
