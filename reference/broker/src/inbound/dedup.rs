//! Deduplication and coalescing of inbound events, as pure functions: the
//! store looks up which keys the event log holds already ([`Seen`]), and
//! [`Batch::decide`] says what becomes of each event of a group of hooks,
//! in order, remembering the ones it accepts so that later events of the
//! same group see them.
//!
//! The rules (DESIGN.md §2): an event whose registry event id (or, for a
//! registry that sends none, the hash of its body) was received within the
//! dedupe window is a duplicate — the window is the store's business, it
//! looks up only the keys received within it; an event whose (registry,
//! repository, tag, digest) was received before is a duplicate; a platform
//! manifest whose tag was pushed as an index (multi-arch) is coalesced into
//! the index. Events without a digest (Docker Hub, Quay, Gitea: resolved
//! before delivery) are deduplicated by their event id alone.

use std::collections::HashMap;

use crate::store::{Disposition, NewInboundEvent};

/// The keys an accepted event is recorded under: unique in the event log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// `registry \n registry event id`.
    pub source_key: Option<String>,
    /// `registry \n repository \n tag \n digest`; none without a digest.
    pub dedup_key: Option<String>,
    /// `(registry, repository, tag)`: the channel an index coalesces; none
    /// without a digest.
    pub channel: Option<(String, String, String)>,
}

impl Keys {
    /// The keys of an event; none for an event that is not accepted.
    pub fn of(event: &NewInboundEvent) -> Self {
        let (Disposition::Accepted, Some(repository), Some(tag)) = (&event.disposition, &event.repository, &event.tag)
        else {
            return Self::default();
        };
        Self {
            source_key: event
                .source_event_id
                .as_ref()
                .map(|id| format!("{}\n{id}", event.registry)),
            dedup_key: event
                .digest
                .as_ref()
                .map(|digest| format!("{}\n{repository}\n{tag}\n{digest}", event.registry)),
            channel: event
                .digest
                .as_ref()
                .map(|_| (event.registry.clone(), repository.clone(), tag.clone())),
        }
    }
}

/// What the event log holds already, for the keys of a group of events.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Source key → the id of the event that holds it.
    pub source_keys: HashMap<String, String>,
    /// Dedup key → the id of the event that holds it.
    pub dedup_keys: HashMap<String, String>,
    /// Channel → the digest of its accepted index.
    pub indexes: HashMap<(String, String, String), String>,
}

/// The decision for one event: its disposition and the keys it is
/// recorded under (none unless accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Accepted or ignored, with the reason.
    pub disposition: Disposition,
    /// The unique keys to record; `None`s unless accepted.
    pub keys: Keys,
}

/// Decides a group of events in order against what is seen.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    seen: Seen,
}

impl Batch {
    /// A batch over what the event log holds.
    pub fn new(seen: Seen) -> Self {
        Self { seen }
    }

    /// What becomes of `event`, which gets the id `id` if recorded.
    pub fn decide(&mut self, id: &str, event: &NewInboundEvent) -> Decision {
        let keys = Keys::of(event);
        let (Some(repository), Some(tag)) = (&event.repository, &event.tag) else {
            return Decision {
                disposition: event.disposition.clone(),
                keys: Keys::default(),
            };
        };
        if event.disposition != Disposition::Accepted {
            return Decision {
                disposition: event.disposition.clone(),
                keys: Keys::default(),
            };
        }
        let ignored = |reason: String| Decision {
            disposition: Disposition::Ignored(reason),
            keys: Keys::default(),
        };
        if let Some(first) = keys.source_key.as_ref().and_then(|k| self.seen.source_keys.get(k)) {
            return ignored(format!(
                "duplicate: registry event id {} was received as event {first}",
                event.source_event_id.as_deref().unwrap_or_default()
            ));
        }
        if let Some(first) = keys.dedup_key.as_ref().and_then(|k| self.seen.dedup_keys.get(k)) {
            let digest = event.digest.as_deref().unwrap_or_default();
            return ignored(format!(
                "duplicate: {repository}:{tag}@{digest} was received as event {first}"
            ));
        }
        if !event.is_index {
            if let Some(index) = keys.channel.as_ref().and_then(|c| self.seen.indexes.get(c)) {
                return ignored(format!("coalesced: {repository}:{tag} was pushed as the index {index}"));
            }
        }
        if let Some(key) = &keys.source_key {
            self.seen.source_keys.insert(key.clone(), id.to_owned());
        }
        if let Some(key) = &keys.dedup_key {
            self.seen.dedup_keys.insert(key.clone(), id.to_owned());
        }
        if event.is_index {
            if let (Some(channel), Some(digest)) = (&keys.channel, &event.digest) {
                self.seen.indexes.insert(channel.clone(), digest.clone());
            }
        }
        Decision {
            disposition: Disposition::Accepted,
            keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "registry.example.org/team/app";
    const TAG: &str = "1.1.0-production-201108-195630";

    fn event(digest: &str, source: Option<&str>, is_index: bool) -> NewInboundEvent {
        NewInboundEvent {
            kind: "distribution".into(),
            registry: "registry.example.org".into(),
            source_event_id: source.map(str::to_owned),
            repository: Some(REPO.into()),
            tag: Some(TAG.into()),
            digest: Some(digest.into()),
            media_type: None,
            is_index,
            disposition: Disposition::Accepted,
        }
    }

    fn reason(d: &Decision) -> &str {
        match &d.disposition {
            Disposition::Ignored(r) => r,
            Disposition::Accepted => panic!("accepted: {d:?}"),
        }
    }

    #[test]
    fn duplicates_within_a_group_and_against_the_log() {
        let mut seen = Seen::default();
        seen.source_keys
            .insert("registry.example.org\nold".into(), "ev-0".into());
        let mut batch = Batch::new(seen);
        let first = batch.decide("ev-1", &event("sha256:a", Some("e1"), false));
        assert_eq!(first.disposition, Disposition::Accepted);
        assert_eq!(first.keys.source_key.as_deref(), Some("registry.example.org\ne1"));
        let same_content = batch.decide("ev-2", &event("sha256:a", Some("e2"), false));
        assert!(
            reason(&same_content).contains("was received as event ev-1"),
            "{same_content:?}"
        );
        assert_eq!(same_content.keys, Keys::default(), "an ignored event holds no key");
        let same_id = batch.decide("ev-3", &event("sha256:b", Some("e1"), false));
        assert!(
            reason(&same_id).starts_with("duplicate: registry event id e1"),
            "{same_id:?}"
        );
        let logged = batch.decide("ev-4", &event("sha256:c", Some("old"), false));
        assert!(reason(&logged).contains("ev-0"), "{logged:?}");
    }

    #[test]
    fn events_without_a_digest_are_duplicates_by_event_id_alone() {
        let mut bare = event("sha256:a", Some("sha256:body"), false);
        bare.digest = None;
        let mut batch = Batch::default();
        let first = batch.decide("ev-1", &bare);
        assert_eq!(first.disposition, Disposition::Accepted);
        assert_eq!(
            first.keys.source_key.as_deref(),
            Some("registry.example.org\nsha256:body")
        );
        assert_eq!(first.keys.dedup_key, None, "no content key without a digest");
        let again = batch.decide("ev-2", &bare);
        assert!(
            reason(&again).starts_with("duplicate: registry event id sha256:body"),
            "{again:?}"
        );
        let mut other = bare.clone();
        other.source_event_id = Some("sha256:other".into());
        assert_eq!(batch.decide("ev-3", &other).disposition, Disposition::Accepted);
    }

    #[test]
    fn an_index_coalesces_its_platform_manifests_in_either_order() {
        let mut batch = Batch::default();
        assert_eq!(
            batch.decide("i", &event("sha256:index", None, true)).disposition,
            Disposition::Accepted
        );
        let platform = batch.decide("p", &event("sha256:amd64", None, false));
        assert!(reason(&platform).starts_with("coalesced:"), "{platform:?}");
        assert!(reason(&platform).contains("sha256:index"));

        // Seen in the log already.
        let mut seen = Seen::default();
        seen.indexes.insert(
            ("registry.example.org".into(), REPO.into(), TAG.into()),
            "sha256:index".into(),
        );
        let platform = Batch::new(seen).decide("p", &event("sha256:arm64", None, false));
        assert!(reason(&platform).starts_with("coalesced:"), "{platform:?}");
    }

    #[test]
    fn ignored_events_stay_ignored_and_hold_no_keys() {
        let mut ignored = event("sha256:a", Some("e1"), false);
        ignored.disposition = Disposition::Ignored("blob".into());
        let mut batch = Batch::default();
        let d = batch.decide("x", &ignored);
        assert_eq!(d.disposition, Disposition::Ignored("blob".into()));
        assert_eq!(
            batch.decide("y", &event("sha256:a", Some("e1"), false)).disposition,
            Disposition::Accepted,
            "an ignored event does not make a later one a duplicate"
        );
    }
}
