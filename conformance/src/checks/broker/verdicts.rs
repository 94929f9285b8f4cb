//! Judging what the runner's receiver got.

use chrono::Utc;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tagcast_spec::Tag;
use tagcast_spec::event::{CONTENT_TYPE, CloudEvent, ImagePublished};
use tagcast_spec::webhook;
use url::Url;

use super::{Push, Subscriber};
use crate::check::{Evidence, Verdict};
use crate::contract;
use crate::receiver::Received;

/// Whether the receiver's URL names a loopback, private or link-local
/// address (or `localhost`): a broker can only reach it if its operator
/// allowed private callbacks.
pub(super) fn private_receiver(base: &str) -> bool {
    let Ok(url) = Url::parse(base) else { return false };
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost" || domain.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
        None => false,
    }
}

/// The id in a write's answer, for cleaning up what a broker should not
/// have created.
pub(super) fn created_id(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

pub(super) fn digest_of(text: &str) -> String {
    format!("sha256:{:x}", Sha256::digest(text.as_bytes()))
}

pub(super) fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| k == key || has_key(v, key)),
        Value::Array(items) => items.iter().any(|v| has_key(v, key)),
        _ => false,
    }
}

/// The `data.tag` of a callback (for `filter_map`).
pub(super) fn tag_of(received: &Received) -> Option<String> {
    received.tag()
}

/// How many callbacks in `inbox` carry `tag`.
pub(super) fn count_of(inbox: &[Received], tag: &Tag) -> usize {
    let tag = tag.to_string();
    inbox.iter().filter_map(tag_of).filter(|t| *t == tag).count()
}

pub(super) fn count_is(inbox: &[Received], tag: &Tag, expected: usize, sent: &str) -> Verdict {
    let got = count_of(inbox, tag);
    if got == expected {
        Verdict::pass()
    } else {
        Verdict::fail(
            format!("{got} callback(s) of {tag} where {expected} belong"),
            Evidence::new(
                sent,
                format!("{expected} callback(s) of {tag}"),
                format!(
                    "{got}: {}",
                    inbox.iter().filter_map(tag_of).collect::<Vec<_>>().join(", ")
                ),
            ),
        )
    }
}

/// API-16: the same hook request again adds no callback. Judged by what
/// the repeat added, so that how many the first request brought stays
/// one-per-push's business.
pub(super) fn repeat_adds_nothing(before: &[Received], after: &[Received], tag: &Tag) -> Verdict {
    let (before, after) = (count_of(before, tag), count_of(after, tag));
    if before == 0 {
        Verdict::Skip(format!(
            "the first request for {tag} brought no callback: nothing to compare the repeat with"
        ))
    } else if after == before {
        Verdict::pass()
    } else {
        Verdict::fail(
            format!(
                "the repeated hook request brought {} more callback(s) of {tag}",
                after - before
            ),
            Evidence::new(
                "the same generic hook request sent twice",
                format!("{before} callback(s) of {tag}, as after the first request"),
                format!("{after}"),
            ),
        )
    }
}

/// CB-14: a permanent failure is not retried, so no `webhook-id` arrives
/// twice. (Two events of one push are a different flaw, judged by dedup.)
pub(super) fn no_retry(inbox: &[Received], sent: &str) -> Verdict {
    let mut ids: Vec<&str> = inbox
        .iter()
        .map(|r| r.header(webhook::HEADER_ID).unwrap_or("(absent)"))
        .collect();
    if ids.is_empty() {
        return Verdict::fail(
            "the subscriber answering 400 never got a callback",
            Evidence::new(sent, "one attempt", "none"),
        );
    }
    let all = ids.join(", ");
    ids.sort_unstable();
    let attempts = ids.len();
    ids.dedup();
    if ids.len() == attempts {
        Verdict::pass()
    } else {
        Verdict::fail(
            "a callback answered 400 was sent again with the same webhook-id",
            Evidence::new(
                sent,
                "one attempt per webhook-id: 400 is permanent",
                format!("webhook-ids {all}"),
            ),
        )
    }
}

pub(super) fn exactly_one(inbox: &[Received], tag: &Tag, sent: &str) -> Verdict {
    count_is(inbox, tag, 1, sent)
}

/// CB-13 (with CB-12): each inbox answered its first callback `status`
/// with `Retry-After: seconds`; the next attempt carries the same
/// `webhook-id` and arrives no sooner.
pub(super) fn retry_after_verdict(inboxes: &[(u16, &[Received])], seconds: u64) -> Verdict {
    let sent = |status: u16| format!("a push to a subscriber answering {status} with Retry-After: {seconds} once");
    for (status, received) in inboxes {
        // The retry is the next request with the first one's webhook-id;
        // other pushes' callbacks may come between.
        let id = |r: &Received| r.header(webhook::HEADER_ID).map(str::to_owned);
        let retry = received
            .split_first()
            .and_then(|(first, rest)| Some((first, rest.iter().find(|r| id(r) == id(first))?)));
        let Some((first, second)) = retry else {
            let ids: Vec<String> = received
                .iter()
                .map(|r| id(r).unwrap_or_else(|| "(absent)".into()))
                .collect();
            return Verdict::fail(
                format!("a callback answered {status} with Retry-After was not retried within --timeout"),
                Evidence::new(
                    sent(*status),
                    "a second attempt with the same webhook-id",
                    format!("webhook-ids {ids:?}"),
                ),
            );
        };
        let waited = second.at.duration_since(first.at);
        if waited < std::time::Duration::from_secs(seconds) {
            return Verdict::fail(
                format!(
                    "retried {} ms after a {status} that asked for {seconds} s",
                    waited.as_millis()
                ),
                Evidence::new(
                    sent(*status),
                    format!("the next attempt at least {seconds} s later (CB-13)"),
                    format!("{} ms later", waited.as_millis()),
                ),
            );
        }
    }
    Verdict::pass()
}

pub(super) fn retry_verdict(received: &[Received]) -> Verdict {
    let ids: Vec<&str> = received
        .iter()
        .map(|r| r.header(webhook::HEADER_ID).unwrap_or("(absent)"))
        .collect();
    match received {
        [] => Verdict::fail(
            "the retry subscriber never got a callback",
            Evidence::new(
                "a push to a subscriber answering 500 once",
                "a callback, then a retry",
                "nothing",
            ),
        ),
        [_] => Verdict::fail(
            "a callback answered 500 was not retried within --timeout",
            Evidence::new(
                "a push to a subscriber answering 500 once",
                "a second attempt with the same webhook-id",
                "one attempt",
            ),
        ),
        [first, second, ..]
            if first.header(webhook::HEADER_ID) != second.header(webhook::HEADER_ID) || first.body != second.body =>
        {
            Verdict::fail(
                "the retry is not the same event",
                Evidence::new(
                    "a push to a subscriber answering 500 once",
                    "the same webhook-id and body on every attempt",
                    format!("webhook-ids {ids:?}"),
                ),
            )
        }
        _ => Verdict::pass(),
    }
}

pub(super) fn signature_verdict(all: &[(Subscriber, Received)]) -> Verdict {
    if all.is_empty() {
        return Verdict::Skip("no callback arrived".into());
    }
    let now = Utc::now().timestamp();
    let mut problems = Vec::new();
    for (subscriber, received) in all {
        let Some(secret) = &subscriber.secret else { continue };
        let id = received.header(webhook::HEADER_ID);
        let result = webhook::verify(
            std::slice::from_ref(secret),
            id,
            received.header(webhook::HEADER_TIMESTAMP),
            received.header(webhook::HEADER_SIGNATURE),
            &received.body,
            now,
            // Callbacks are checked after the run, so allow for its length.
            webhook::DEFAULT_TOLERANCE,
        );
        if let Err(e) = result {
            problems.push(format!(
                "{} ({}): {e}",
                subscriber.inbox,
                tag_of(received).unwrap_or_default()
            ));
            continue;
        }
        let body_id = serde_json::from_slice::<Value>(&received.body)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned));
        if body_id.as_deref() != id {
            problems.push(format!(
                "{}: webhook-id {id:?} is not the event id {body_id:?}",
                subscriber.inbox
            ));
        }
    }
    if problems.is_empty() {
        Verdict::pass()
    } else {
        Verdict::fail(
            format!("{} of {} callbacks are not correctly signed", problems.len(), all.len()),
            Evidence::new(
                "callbacks to the runner's subscribers",
                "Standard Webhooks v1 signatures with each subscription's secret",
                problems.join("\n"),
            ),
        )
    }
}

pub(super) fn event_verdict(all: &[(Subscriber, Received)], pushes: &[Push]) -> Verdict {
    if all.is_empty() {
        return Verdict::Skip("no callback arrived".into());
    }
    let validator = contract::validator(contract::IMAGE_PUBLISHED);
    let mut problems = Vec::new();
    for (subscriber, received) in all {
        let label = format!("{} ({})", subscriber.inbox, tag_of(received).unwrap_or_default());
        if !received
            .header("content-type")
            .is_some_and(|t| t.starts_with(CONTENT_TYPE))
        {
            problems.push(format!("{label}: content-type {:?}", received.header("content-type")));
        }
        let Ok(json) = serde_json::from_slice::<Value>(&received.body) else {
            problems.push(format!("{label}: not JSON"));
            continue;
        };
        let violations = contract::violations(&validator, &json);
        if !violations.is_empty() {
            problems.push(format!("{label}: {}", violations.join("; ")));
            continue;
        }
        match serde_json::from_value::<CloudEvent<ImagePublished>>(json) {
            Err(e) => problems.push(format!("{label}: {e}")),
            Ok(event) => {
                if event.data.service_id != subscriber.id {
                    problems.push(format!(
                        "{label}: data.serviceId {:?} is not {:?}",
                        event.data.service_id, subscriber.id
                    ));
                }
                match pushes.iter().find(|p| p.tag == event.data.tag) {
                    None => problems.push(format!("{label}: data.tag {} was never pushed", event.data.tag)),
                    Some(push) if push.digest != event.data.digest.to_string() => {
                        problems.push(format!(
                            "{label}: data.digest {} is not the pushed {}",
                            event.data.digest, push.digest
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    if problems.is_empty() {
        Verdict::pass()
    } else {
        Verdict::fail(
            format!(
                "{} of {} callbacks are not the event the push calls for",
                problems.len(),
                all.len()
            ),
            Evidence::new(
                "callbacks to the runner's subscribers",
                "CloudEvents valid against image-published.schema.json, with the pushed tag and digest",
                problems.join("\n"),
            ),
        )
    }
}
