//! Matching: turns each accepted inbound event into one delivery per
//! subscriber to whom the tag is an update (DESIGN.md §2). Runs after the
//! hook was acknowledged, from the durable event log, so a crash between
//! acknowledgement and matching loses nothing.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

use tagcast_spec::delivery::DecisionKind;
use tagcast_spec::event::ImagePublished;

use tagcast_spec::subscription::RegistryKind;
use tagcast_spec::{CloudEvent, Digest, NotAnUpdate, Repository, Tag, UpdatePolicy};
use tokio::sync::watch;

use crate::AppState;
use crate::registries;
use crate::resolve::Resolution;
use crate::store::{AcceptedEvent, Matched, NewDecision, NewDelivery, StoreResult, Subscriber, new_id, now_ms};
use crate::verify;

/// The CloudEvents `source` of this broker's callbacks: its registry base URL.
pub fn event_source(public_url: &str) -> String {
    format!("{public_url}{}", crate::api::BASE_PATH)
}

/// Runs until `shutdown` turns true.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let registry = verify::Verifier::with_policy(state.config.outbound_policy(), &state.config.hosts);
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
/// The batch is read and written in bulk: the subscribers of each
/// repository once, every delivery of the batch in one transaction.
///
/// # Errors
///
/// The store's error.
pub async fn match_pending(state: &AppState, registry: &verify::Verifier) -> StoreResult<usize> {
    let now = now_ms();
    let lease = millis(Duration::from_secs(60));
    let events = state.store.claim_inbound(now, now + lease, 200).await?;
    let source = event_source(&state.config.public_url);
    let mut subscribers: HashMap<Repository, Vec<Subscriber>> = HashMap::new();
    let mut matched = Vec::with_capacity(events.len());
    for event in &events {
        if let Some(reason) = future_dated(&event.tag, chrono::Utc::now()) {
            tracing::warn!(
                event = %event.id,
                registry = %event.registry,
                image = %event.repository,
                tag = %event.tag,
                %reason,
                "event dropped: a future-dated tag would block its channel"
            );
            matched.push(Matched {
                event_id: event.id.clone(),
                deliveries: Vec::new(),
                dropped: Some(format!("dropped: {reason}")),
                note: None,
                decisions: Vec::new(),
            });
            continue;
        }
        if !subscribers.contains_key(&event.repository) {
            let found = state.store.subscribers(&event.repository).await?;
            subscribers.insert(event.repository.clone(), found);
        }
        let of_repository = subscribers.get_mut(&event.repository).expect("inserted above");
        // One verdict per registry API the subscribers are checked against:
        // a subscriber's own `registry.url` decides only its own deliveries.
        let mut bases: Vec<Option<String>> = Vec::new();
        for subscriber in of_repository.iter() {
            let base = check_url(state, event, subscriber.registry_url.as_deref());
            if !bases.contains(&base) {
                bases.push(base);
            }
        }
        if bases.is_empty() {
            bases.push(check_url(state, event, None));
        }
        let mut verdicts = Vec::with_capacity(bases.len());
        for base in &bases {
            verdicts.push(settle(state, registry, event, base.as_deref()).await?);
        }
        let disagreements: Vec<&str> = verdicts
            .iter()
            .filter_map(|v| match v {
                Verdict::Disagree(reason) => Some(reason.as_str()),
                Verdict::Deliver { .. } => None,
            })
            .collect();
        if let Some(reason) = disagreements.first() {
            let grace = millis(state.config.verify_grace);
            if now_ms() - event.received_at < grace {
                // The registry may notify before it links the tag: ask again later.
                let retry = millis(state.config.verify_grace / 4).clamp(50, 5_000);
                tracing::info!(event = %event.id, %reason, "not verified yet; asking the registry again");
                state.store.defer_inbound(&event.id, now_ms() + retry).await?;
                continue;
            }
            for reason in &disagreements {
                tracing::warn!(
                    event = %event.id,
                    registry = %event.registry,
                    image = %event.repository,
                    tag = %event.tag,
                    %reason,
                    "event dropped: not verified against the registry within the grace period"
                );
            }
            if disagreements.len() == verdicts.len() {
                let decisions = of_repository
                    .iter()
                    .map(|subscriber| decide(event, subscriber, DecisionKind::Unverified, unverified(event), None))
                    .collect();
                matched.push(Matched {
                    event_id: event.id.clone(),
                    deliveries: Vec::new(),
                    dropped: Some(format!("dropped: {reason}")),
                    note: None,
                    decisions,
                });
                continue;
            }
        }
        let checked_of = |subscriber: &Subscriber| {
            let base = check_url(state, event, subscriber.registry_url.as_deref());
            let index = bases.iter().position(|b| *b == base)?;
            match &verdicts[index] {
                Verdict::Deliver { digest, unchecked } => digest.clone().map(|d| (d, unchecked.clone())),
                Verdict::Disagree(_) => None,
            }
        };
        let (deliveries, decisions) = deliveries_for(&source, event, &checked_of, of_repository);
        for decision in &decisions {
            log_decision(event, decision);
        }
        let note = report_moved(state, event, &decisions);
        matched.push(Matched {
            event_id: event.id.clone(),
            deliveries,
            dropped: None,
            note,
            decisions,
        });
    }
    let handled = matched.len();
    if matched.is_empty() {
        return Ok(0);
    }
    let added: u64 = state.store.complete_matches(matched, now_ms()).await?.iter().sum();
    tracing::debug!(events = handled, deliveries = added, "batch of events decided");
    Ok(handled)
}

/// One INFO line per decision, so that an operator sees at the default
/// level why a push reached a subscriber or not (issue 14, item 1).
fn log_decision(event: &AcceptedEvent, decision: &NewDecision) {
    let what = if decision.kind == DecisionKind::Delivered {
        "delivery created"
    } else {
        "not delivered"
    };
    tracing::info!(
        event = %event.id,
        service = %decision.service_id,
        image = %decision.repository,
        tag = %decision.tag,
        decision = %decision.kind,
        reason = %decision.reason,
        delivery = decision.delivery_id.as_deref().unwrap_or(""),
        "{what}"
    );
}

fn decide(
    event: &AcceptedEvent,
    subscriber: &Subscriber,
    kind: DecisionKind,
    reason: String,
    delivery_id: Option<String>,
) -> NewDecision {
    NewDecision {
        service_id: subscriber.service_id.clone(),
        repository: event.repository.clone(),
        tag: event.tag,
        kind,
        reason,
        delivery_id,
    }
}

/// The reason of an `unverified` decision. The registry's own answer is in
/// the WARN line and the event log (admin), not here: the subscription
/// status that shows this is public, and the answer may name the
/// subscriber's registry URL.
fn unverified(event: &AcceptedEvent) -> String {
    format!(
        "the registry did not confirm the digest of {} within the grace period (API-15); see the event log",
        event.tag
    )
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What to do with an event after asking its registry.
enum Verdict {
    /// Match it, with this digest (the event's or the resolved one);
    /// `unchecked` says why the registry was not asked (re-checks off) or
    /// could not answer, when the event's own digest is used unverified.
    Deliver {
        digest: Option<Digest>,
        unchecked: Option<String>,
    },
    /// Not verified (yet): the reason. Asked again within the grace period,
    /// then dropped.
    Disagree(String),
}

/// Which registry API URL a subscriber's deliveries of `event` are checked
/// against: `None` for one the operator configured (`[[registries]]` with
/// an `api`, or the configured host itself), else the `registry.url` the
/// subscriber named, else `Some(https://<registry>)`: an image's host is
/// the subscriber's choice too.
fn check_url(state: &AppState, event: &AcceptedEvent, registry_url: Option<&str>) -> Option<String> {
    match state.config.registry(&event.registry) {
        Some(configured) if configured.api.is_some() => None,
        Some(_) if registry_url.is_none() => None,
        _ => Some(verify::api_base(&event.registry, registry_url)),
    }
}

/// Asks the event's registry where the tag points now, when the event has
/// no digest (Docker Hub, Quay, Gitea), when re-checks are on, or when the
/// registry is `verify-required`: at `subscriber_base` under the
/// subscriber URL rule, or (`None`) where the operator configured.
async fn settle(
    state: &AppState,
    verifier: &verify::Verifier,
    event: &AcceptedEvent,
    subscriber_base: Option<&str>,
) -> StoreResult<Verdict> {
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
        return Ok(Verdict::Deliver {
            digest: event.digest.clone(),
            unchecked: Some("digest re-checks are off (verify-digests = false)".to_owned()),
        });
    }
    let parsed = &event.repository;
    let tag = event.tag.to_string();
    let (origin, base) = match subscriber_base {
        Some(base) => (verify::Origin::Subscriber, base.to_owned()),
        None => (
            verify::Origin::Operator,
            verify::api_base(&event.registry, configured.and_then(|r| r.api.as_deref())),
        ),
    };
    // Pull credentials go only where the operator configured them.
    let credentials = configured
        .filter(|_| origin == verify::Origin::Operator)
        .and_then(|r| r.pull.as_ref());
    // The registry's answer, its digest decoded like every other.
    let resolution = match verifier
        .resolve_from(origin, &base, parsed.path(), &tag, credentials)
        .await
    {
        Resolution::Digest(found) => Digest::parse(&found)
            .map_err(|err| format!("the registry answered an invalid digest: {err}"))
            .map_err(Resolution::Unresolved),
        other => Err(other),
    };
    let checked = |found: Digest| Verdict::Deliver {
        digest: Some(found),
        unchecked: None,
    };
    Ok(match (resolution, &event.digest) {
        (Ok(found), None) => checked(found),
        (Ok(found), Some(digest)) if &found == digest => checked(found),
        (Ok(found), Some(digest)) => Verdict::Disagree(format!(
            "the registry says {}:{tag} points to {found}, not {digest}",
            parsed.path()
        )),
        (Err(Resolution::NotFound(why)), _) => Verdict::Disagree(why),
        (Err(Resolution::Unresolved(why) | Resolution::Digest(why)), None) => {
            Verdict::Disagree(format!("the digest cannot be resolved: {why}"))
        }
        (Err(Resolution::Unresolved(why) | Resolution::Digest(why)), Some(_)) if required => {
            Verdict::Disagree(format!("verify-required and the registry cannot tell: {why}"))
        }
        (Err(Resolution::Unresolved(why) | Resolution::Digest(why)), Some(digest)) => {
            tracing::warn!(
                event = %event.id,
                registry = %event.registry,
                image = %event.repository,
                tag = %event.tag,
                %digest,
                %why,
                "digest not re-checked: the registry could not be asked; the event's own digest is used"
            );
            Verdict::Deliver {
                digest: event.digest.clone(),
                unchecked: Some(format!("the registry could not be asked ({why})")),
            }
        }
    })
}

/// Reports a push that moved a tag already delivered to a subscriber to
/// another digest (TAG-12), from the event's `movedTag` decisions (whose
/// reason names the tag and both digests): a WARN line per move, the
/// `tagcast_moved_tags_total` counter, and the note returned for the
/// event's `reason` in `GET /hooks/events`.
fn report_moved(state: &AppState, event: &AcceptedEvent, decisions: &[NewDecision]) -> Option<String> {
    // Subscribers that had the same digest share one report.
    let mut moves: Vec<(&str, Vec<&str>)> = Vec::new();
    for d in decisions.iter().filter(|d| d.kind == DecisionKind::MovedTag) {
        match moves.iter_mut().find(|(reason, _)| *reason == d.reason) {
            Some((_, services)) => services.push(&d.service_id),
            None => moves.push((&d.reason, vec![&d.service_id])),
        }
    }
    let mut notes = Vec::with_capacity(moves.len());
    for (reason, services) in moves {
        let services = services.join(", ");
        tracing::warn!(
            event = %event.id,
            registry = %event.registry,
            image = %event.repository,
            tag = %event.tag,
            services = %services,
            "{reason}; not delivered again"
        );
        state.metrics.moved_tag();
        notes.push(format!("{reason}; not delivered again to {services}"));
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// The digest the subscriber received `tag` (or an equivalent tag, TAG-7)
/// with, when `digest` is another one: the tag moved (TAG-12).
fn moved_from<'a>(subscriber: &'a Subscriber, tag: &Tag, digest: &Digest) -> Option<&'a Digest> {
    let last = subscriber.last_tag.as_ref()?;
    let delivered = subscriber.last_digest.as_ref()?;
    (last.is_equivalent(tag) && digest != delivered).then_some(delivered)
}

/// The digest a subscriber's delivery carries, and why it was not
/// re-checked against the registry, if it was not.
type Checked = (Digest, Option<String>);

/// The deliveries of one event to the subscribers of its repository, and
/// the decision for each subscriber (delivered or why not). Each subscriber
/// that receives it has the tag added to its waiting tags, so a later event
/// of the same batch sees it.
fn deliveries_for(
    source: &str,
    event: &AcceptedEvent,
    checked_of: &dyn Fn(&Subscriber) -> Option<Checked>,
    subscribers: &mut [Subscriber],
) -> (Vec<NewDelivery>, Vec<NewDecision>) {
    let mut out = Vec::new();
    let mut decisions = Vec::with_capacity(subscribers.len());
    for subscriber in subscribers.iter_mut() {
        let Some((digest, unchecked)) = checked_of(subscriber) else {
            decisions.push(decide(
                event,
                subscriber,
                DecisionKind::Unverified,
                unverified(event),
                None,
            ));
            continue;
        };
        if let Some(delivered) = moved_from(subscriber, &event.tag, &digest) {
            let reason = format!(
                "moved tag (TAG-12): {} was delivered as {delivered} and now points to {digest}",
                event.tag
            );
            decisions.push(decide(event, subscriber, DecisionKind::MovedTag, reason, None));
            continue;
        }
        let previous = match receives(subscriber, &event.tag) {
            Ok(previous) => previous,
            Err((kind, reason)) => {
                decisions.push(decide(event, subscriber, kind, reason, None));
                continue;
            }
        };
        let id = new_id();
        let data = ImagePublished::new(
            subscriber.service_id.clone(),
            event.repository.clone(),
            event.tag,
            digest.clone(),
            previous,
        );
        let payload = serde_json::to_string(&CloudEvent::new(
            id.clone(),
            source.to_owned(),
            chrono::Utc::now(),
            data,
        ))
        .expect("a callback event serializes");
        subscriber.pending_tags.push(event.tag);
        let mut reason = format!("delivery {id} created for {} ({digest})", event.tag);
        if let Some(why) = unchecked {
            reason.push_str(&format!("; digest not re-checked: {why}"));
        }
        decisions.push(decide(
            event,
            subscriber,
            DecisionKind::Delivered,
            reason,
            Some(id.clone()),
        ));
        out.push(NewDelivery {
            id,
            event_id: event.id.clone(),
            service_id: subscriber.service_id.clone(),
            repository: event.repository.clone(),
            tag: event.tag,
            digest,
            payload,
        });
    }
    (out, decisions)
}

/// How far a tag's timestamp may be ahead of the broker's clock (CB-18).
pub const FUTURE_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// Why a tag must not be delivered because it is dated in the future
/// (CB-18): once delivered it would be newer than every honest build until
/// that time, and block its channel.
pub fn future_dated(tag: &Tag, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    let built = tag.timestamp().to_datetime();
    (built > now + FUTURE_MARGIN).then(|| {
        format!(
            "the tag's timestamp {} is more than {} minutes after the broker's clock {} (CB-18)",
            built.format("%Y-%m-%dT%H:%M:%SZ"),
            FUTURE_MARGIN.num_minutes(),
            now.format("%Y-%m-%dT%H:%M:%SZ")
        )
    })
}

/// Whether `candidate` is newer than `current` in its channel (TAG-9): the
/// order of [`UpdatePolicy`]'s "not newer" rule. A `current` of another
/// stage cannot be compared and does not block.
pub fn is_newer(candidate: &Tag, current: Option<&Tag>) -> bool {
    current.is_none_or(|current| candidate.channel_cmp(current).is_none_or(|o| o == Ordering::Greater))
}

/// Whether the subscriber receives `candidate` (the update rule, against the
/// last delivered tag; and nothing not newer than a tag already waiting in
/// its outbox): `Ok(previousTag)` if it does, else the decision and why.
fn receives(subscriber: &Subscriber, candidate: &Tag) -> Result<Option<Tag>, (DecisionKind, String)> {
    let policy = UpdatePolicy {
        stage: subscriber.stage,
        requirement: subscriber.api_requirement.clone(),
    };
    let previous = subscriber.last_tag;
    if let Err(why) = policy.check(previous.as_ref(), candidate) {
        let kind = match why {
            NotAnUpdate::OtherStage { .. } => DecisionKind::OtherStage,
            NotAnUpdate::ApiVersion { .. } => DecisionKind::ApiVersion,
            NotAnUpdate::NotNewer { .. } => DecisionKind::NotNewer,
        };
        let reason = match why {
            NotAnUpdate::ApiVersion { .. } => format!("{why} {}", subscriber.api_requirement),
            _ => why.to_string(),
        };
        return Err((kind, reason));
    }
    if let Some(pending) = subscriber.pending_tags.iter().find(|p| !is_newer(candidate, Some(p))) {
        return Err((
            DecisionKind::NewerPending,
            format!("{candidate} is not newer than {pending}, whose delivery is waiting (CB-15)"),
        ));
    }
    // The previous tag is only meaningful in the same channel.
    Ok(previous.filter(|p| p.stage() == candidate.stage()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(last: Option<&str>, pending: &[&str]) -> Subscriber {
        Subscriber {
            service_id: "svc".into(),
            stage: tagcast_spec::Stage::Production,
            api_requirement: tagcast_spec::ApiRequirement::parse("^1.1").unwrap(),
            last_tag: last.map(tag),
            last_digest: None,
            pending_tags: pending.iter().map(|s| tag(s)).collect(),
            registry_url: None,
        }
    }

    fn tag(s: &str) -> Tag {
        Tag::parse(s).unwrap()
    }

    #[test]
    fn a_tag_more_than_the_margin_in_the_future_is_refused() {
        let now = chrono::DateTime::parse_from_rfc3339("2020-11-09T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            future_dated(&tag("1.1.0-production-201109-001500"), now),
            None,
            "at the margin"
        );
        assert_eq!(
            future_dated(&tag("1.1.0-production-201108-235959"), now),
            None,
            "the past"
        );
        let reason = future_dated(&tag("1.1.0-production-201109-001501"), now).expect("past the margin");
        assert!(
            reason.contains("CB-18") && reason.contains("2020-11-09T00:15:01Z"),
            "{reason}"
        );
        assert!(future_dated(&tag("1.1.0-production-991231-235959"), now).is_some());
    }

    #[test]
    fn update_rule() {
        let new = tag("1.1.0-production-201109-000000");
        assert_eq!(receives(&subscriber(None, &[]), &new).ok(), Some(None));
        assert_eq!(
            receives(&subscriber(Some("1.1.0-production-201108-195630"), &[]), &new).ok(),
            Some(Some(tag("1.1.0-production-201108-195630")))
        );
        assert_eq!(
            receives(&subscriber(Some("1.1.0-production-201110-000000"), &[]), &new).ok(),
            None
        );
        assert_eq!(
            receives(&subscriber(Some("1.1.0-production-201109-000000"), &[]), &new).ok(),
            None
        );
        assert_eq!(
            receives(&subscriber(None, &[]), &tag("1.1.0-demo-201109-000000")).ok(),
            None
        );
        assert_eq!(
            receives(&subscriber(None, &[]), &tag("2.0.0-production-201109-000000")).ok(),
            None
        );
        assert_eq!(
            receives(&subscriber(None, &["1.1.0-production-201110-000000"]), &new).ok(),
            None
        );
        assert_eq!(
            receives(&subscriber(None, &["1.1.0-production-201101-000000"]), &new).ok(),
            Some(None)
        );
    }

    #[test]
    fn a_delivered_tag_with_another_digest_has_moved() {
        let digest = |c: char| Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap();
        let mut had = subscriber(Some("1.1.0-production-201109-000000"), &[]);
        had.last_digest = Some(digest('a'));
        let same = tag("1.1.0-production-201109-000000");
        assert_eq!(moved_from(&had, &same, &digest('b')), Some(&digest('a')));
        assert_eq!(
            moved_from(&had, &tag("1.1-production-201109-000000"), &digest('b')),
            Some(&digest('a')),
            "an equivalent tag (TAG-7) moves it too"
        );
        assert_eq!(moved_from(&had, &same, &digest('a')), None, "the same digest again");
        assert_eq!(
            moved_from(&had, &tag("1.1.0-production-201110-000000"), &digest('b')),
            None,
            "another tag"
        );
        assert_eq!(moved_from(&subscriber(None, &[]), &same, &digest('b')), None);
    }

    #[test]
    fn newer_is_the_channel_order() {
        let old = tag("1.1.0-production-201108-195630");
        let new = tag("1.1.0-production-201109-000000");
        assert!(is_newer(&new, Some(&old)));
        assert!(!is_newer(&old, Some(&new)), "never a downgrade");
        assert!(!is_newer(&new, Some(&new)), "the same tag is not newer");
        assert!(
            !is_newer(&tag("1.1-production-201109-000000"), Some(&new)),
            "nor its short form"
        );
        assert!(is_newer(&new, None));
        assert!(
            is_newer(&new, Some(&tag("9.0.0-demo-301109-000000"))),
            "another stage does not block"
        );
        assert!(
            is_newer(&tag("1.2.0-production-201101-000000"), Some(&new)),
            "api-version first"
        );
    }

    #[test]
    fn a_batch_sees_its_own_earlier_deliveries() {
        let event = |t: &str| AcceptedEvent {
            id: new_id(),
            kind: "distribution".into(),
            registry: "registry.example.org".into(),
            repository: Repository::parse("registry.example.org/team/app").unwrap(),
            tag: tag(t),
            digest: None,
            received_at: 0,
        };
        let digest = Digest::parse("sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        let mut subs = vec![subscriber(None, &[])];
        let (newer, _) = deliveries_for(
            "https://b",
            &event("1.1.0-production-201109-000000"),
            &|_: &Subscriber| Some((digest.clone(), None)),
            &mut subs,
        );
        assert_eq!(newer.len(), 1);
        assert_eq!(newer[0].tag, tag("1.1.0-production-201109-000000"));
        let (older, decisions) = deliveries_for(
            "https://b",
            &event("1.1.0-production-201108-000000"),
            &|_: &Subscriber| Some((digest.clone(), None)),
            &mut subs,
        );
        assert_eq!(decisions.len(), 1);
        assert_eq!(decisions[0].kind, DecisionKind::NewerPending, "{:?}", decisions[0]);
        assert!(
            older.is_empty(),
            "an older tag after a newer one in the same batch is not an update"
        );
    }
}
