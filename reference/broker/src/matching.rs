//! Matching: turns each accepted inbound event into one delivery per
//! subscriber to whom the tag is an update (DESIGN.md §2). Runs after the
//! hook was acknowledged, from the durable event log, so a crash between
//! acknowledgement and matching loses nothing.

use std::cmp::Ordering;
use std::time::Duration;

use tagcast_spec::event::ImagePublished;
use tagcast_spec::subscription::RegistryKind;
use tagcast_spec::{ApiRequirement, CloudEvent, Digest, Repository, Stage, Tag, UpdatePolicy};
use tokio::sync::watch;

use crate::AppState;
use crate::registries;
use crate::resolve::Resolution;
use crate::store::{InboundEvent, NewDelivery, StoreResult, Subscriber, new_id, now_ms};
use crate::verify;

/// The CloudEvents `source` of this broker's callbacks: its registry base URL.
pub fn event_source(public_url: &str) -> String {
    format!("{public_url}{}", crate::api::BASE_PATH)
}

/// Runs until `shutdown` turns true.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let registry = verify::Verifier::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let matched = match match_pending(&state, &registry).await {
            Ok(n) => n,
            Err(err) => {
                tracing::error!(error = %err, "matching inbound events failed");
                0
            }
        };
        if matched > 0 {
            state.wake_worker.notify_one();
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(state.config.poll_interval) => {}
            () = state.wake_matcher.notified() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Matches one batch of pending events; returns how many events it handled.
///
/// # Errors
///
/// The store's error.
pub async fn match_pending(state: &AppState, registry: &verify::Verifier) -> StoreResult<usize> {
    let now = now_ms();
    let lease = millis(Duration::from_secs(60));
    let events = state.store.claim_inbound(now, now + lease, 50).await?;
    let mut handled = 0;
    for event in &events {
        let digest = match settle(state, registry, event).await? {
            Verdict::Deliver(digest) => digest,
            Verdict::Disagree(reason) => {
                let grace = millis(state.config.verify_grace);
                if now_ms() - event.received_at < grace {
                    // The registry may notify before it links the tag: ask again later.
                    let retry = millis(state.config.verify_grace / 4).clamp(50, 5_000);
                    tracing::info!(event = %event.id, %reason, "not verified yet; asking the registry again");
                    state.store.defer_inbound(&event.id, now_ms() + retry).await?;
                } else {
                    tracing::warn!(
                        event = %event.id,
                        registry = %event.registry,
                        image = event.repository.as_deref().unwrap_or_default(),
                        tag = event.tag.as_deref().unwrap_or_default(),
                        %reason,
                        "event dropped: not verified against the registry within the grace period"
                    );
                    let reason = format!("dropped: {reason}");
                    state
                        .store
                        .complete_inbound(&event.id, Vec::new(), now_ms(), Some(&reason))
                        .await?;
                    handled += 1;
                }
                continue;
            }
        };
        handled += 1;
        let deliveries = deliveries_for(state, event, digest.as_deref()).await?;
        let added = state
            .store
            .complete_inbound(&event.id, deliveries, now_ms(), None)
            .await?;
        tracing::info!(
            event = %event.id,
            image = event.repository.as_deref().unwrap_or_default(),
            tag = event.tag.as_deref().unwrap_or_default(),
            digest = digest.as_deref().unwrap_or_default(),
            deliveries = added,
            "event matched"
        );
    }
    Ok(handled)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What to do with an event after asking its registry.
enum Verdict {
    /// Match it, with this digest (the event's or the resolved one).
    Deliver(Option<String>),
    /// Not verified (yet): the reason. Asked again within the grace period,
    /// then dropped.
    Disagree(String),
}

/// Asks the event's registry where the tag points now, when the event has
/// no digest (Docker Hub, Quay, Gitea), when re-checks are on, or when the
/// registry is `verify-required`.
async fn settle(state: &AppState, verifier: &verify::Verifier, event: &InboundEvent) -> StoreResult<Verdict> {
    let (Some(repository), Some(tag)) = (&event.repository, &event.tag) else {
        return Ok(Verdict::Deliver(event.digest.clone()));
    };
    let configured = state.config.registry(&event.registry);
    let required = configured.map_or_else(
        || {
            event
                .kind
                .parse::<RegistryKind>()
                .is_ok_and(registries::verify_required_by_default)
        },
        |r| r.verify_required,
    );
    if event.digest.is_some() && !state.config.verify_digests && !required {
        return Ok(Verdict::Deliver(event.digest.clone()));
    }
    let Ok(parsed) = Repository::parse(repository) else {
        return Ok(Verdict::Deliver(event.digest.clone()));
    };
    let api = match configured.and_then(|r| r.api.clone()) {
        Some(api) => Some(api),
        None => state
            .store
            .find_hook_source(&event.kind, &event.registry)
            .await?
            .and_then(|s| s.api_url),
    };
    let base = verify::api_base(&event.registry, api.as_deref());
    let credentials = configured.and_then(|r| r.pull.as_ref());
    let resolution = verifier.resolve(&base, parsed.path(), tag, credentials).await;
    Ok(match (resolution, &event.digest) {
        (Resolution::Digest(found), None) => Verdict::Deliver(Some(found)),
        (Resolution::Digest(found), Some(digest)) if &found == digest => Verdict::Deliver(Some(found)),
        (Resolution::Digest(found), Some(digest)) => Verdict::Disagree(format!(
            "the registry says {}:{tag} points to {found}, not {digest}",
            parsed.path()
        )),
        (Resolution::NotFound(why), _) => Verdict::Disagree(why),
        (Resolution::Unresolved(why), None) => Verdict::Disagree(format!("the digest cannot be resolved: {why}")),
        (Resolution::Unresolved(why), Some(_)) if required => {
            Verdict::Disagree(format!("verify-required and the registry cannot tell: {why}"))
        }
        (Resolution::Unresolved(why), Some(_)) => {
            tracing::debug!(event = %event.id, %why, "tag -> digest not re-checked");
            Verdict::Deliver(event.digest.clone())
        }
    })
}

async fn deliveries_for(state: &AppState, event: &InboundEvent, digest: Option<&str>) -> StoreResult<Vec<NewDelivery>> {
    let (Some(repository), Some(tag), Some(digest)) = (&event.repository, &event.tag, digest) else {
        return Ok(Vec::new());
    };
    let (Ok(image), Ok(candidate), Ok(digest_parsed)) =
        (Repository::parse(repository), Tag::parse(tag), Digest::parse(digest))
    else {
        return Ok(Vec::new());
    };
    let source = event_source(&state.config.public_url);
    let mut out = Vec::new();
    for subscriber in state.store.subscribers(repository).await? {
        let Some(previous) = receives(&subscriber, &candidate) else {
            continue;
        };
        let id = new_id();
        let data = ImagePublished::new(
            subscriber.service_id.clone(),
            image.clone(),
            candidate,
            digest_parsed.clone(),
            previous,
        );
        let payload = serde_json::to_string(&CloudEvent::new(id.clone(), source.clone(), chrono::Utc::now(), data))
            .expect("a callback event serializes");
        out.push(NewDelivery {
            id,
            event_id: event.id.clone(),
            service_id: subscriber.service_id,
            repository: repository.clone(),
            tag: tag.clone(),
            digest: digest.to_owned(),
            payload,
        });
    }
    Ok(out)
}

/// Whether the subscriber receives `candidate` (the update rule, against the
/// last delivered tag; and nothing not newer than a tag already waiting in
/// its outbox). `Some(previousTag)` if it does.
fn receives(subscriber: &Subscriber, candidate: &Tag) -> Option<Option<Tag>> {
    let stage: Stage = subscriber.stage.parse().ok()?;
    let requirement = ApiRequirement::parse(&subscriber.api_requirement).ok()?;
    let previous = subscriber.last_tag.as_deref().and_then(|t| Tag::parse(t).ok());
    let policy = UpdatePolicy { stage, requirement };
    if let Err(why) = policy.check(previous.as_ref(), candidate) {
        tracing::debug!(service = %subscriber.service_id, tag = %candidate, %why, "not an update");
        return None;
    }
    let waiting = subscriber.pending_tags.iter().filter_map(|t| Tag::parse(t).ok());
    for pending in waiting {
        if matches!(candidate.channel_cmp(&pending), Some(Ordering::Less | Ordering::Equal)) {
            tracing::debug!(service = %subscriber.service_id, tag = %candidate, %pending, "a newer tag is waiting");
            return None;
        }
    }
    // The previous tag is only meaningful in the same channel.
    Some(previous.filter(|p| p.stage() == candidate.stage()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(last: Option<&str>, pending: &[&str]) -> Subscriber {
        Subscriber {
            service_id: "svc".into(),
            stage: "production".into(),
            api_requirement: "^1.1".into(),
            last_tag: last.map(str::to_owned),
            pending_tags: pending.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn tag(s: &str) -> Tag {
        Tag::parse(s).unwrap()
    }

    #[test]
    fn update_rule() {
        let new = tag("1.1.0-production-201109-000000");
        assert_eq!(receives(&subscriber(None, &[]), &new), Some(None));
        assert_eq!(
            receives(&subscriber(Some("1.1.0-production-201108-195630"), &[]), &new),
            Some(Some(tag("1.1.0-production-201108-195630")))
        );
        assert_eq!(
            receives(&subscriber(Some("1.1.0-production-201110-000000"), &[]), &new),
            None
        );
        assert_eq!(
            receives(&subscriber(Some("1.1.0-production-201109-000000"), &[]), &new),
            None
        );
        assert_eq!(receives(&subscriber(None, &[]), &tag("1.1.0-demo-201109-000000")), None);
        assert_eq!(
            receives(&subscriber(None, &[]), &tag("2.0.0-production-201109-000000")),
            None
        );
        assert_eq!(
            receives(&subscriber(None, &["1.1.0-production-201110-000000"]), &new),
            None
        );
        assert_eq!(
            receives(&subscriber(None, &["1.1.0-production-201101-000000"]), &new),
            Some(None)
        );
    }
}
