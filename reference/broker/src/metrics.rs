//! Prometheus metrics, served at `/metrics` in the text format.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of hook metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The registry kind of the hook URL (`unknown` for an unknown kind).
    pub kind: String,
}

/// Labels of rejected hooks.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// The registry kind of the hook URL.
    pub kind: String,
    /// Why: `unknown_token`, `unauthorized`, `too_large`, `unknown_kind`,
    /// `too_many_events`, `rate_limited`.
    pub reason: String,
}

/// Labels of pruned rows.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PrunedLabels {
    /// `events`, `deliveries` or `attempts`.
    pub what: String,
}

/// Labels of rate-limited requests.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// Which limit: `client` (per address) or `hook` (per hook token).
    pub limit: String,
}

/// Labels of delivery attempts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `delivered`, `retry`, `failed`, `gone`, `dead`, `refused`, `skipped`.
    pub outcome: String,
}

/// The broker's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    hooks_received: Family<KindLabels, Counter>,
    events_ignored: Family<KindLabels, Counter>,
    events_accepted: Family<KindLabels, Counter>,
    hooks_rejected: Family<RejectLabels, Counter>,
    deliveries: Family<OutcomeLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    events_not_stored: Family<RejectLabels, Counter>,
    pruned: Family<PrunedLabels, Counter>,
    moved_tags: Counter,
    queue_depth: Gauge<i64, AtomicI64>,
    attempt_duration: Histogram,
    delivery_latency: Histogram,
    hook_duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tagcast");
        let hooks_received = Family::<KindLabels, Counter>::default();
        let events_ignored = Family::<KindLabels, Counter>::default();
        let events_accepted = Family::<KindLabels, Counter>::default();
        let hooks_rejected = Family::<RejectLabels, Counter>::default();
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        let rate_limited = Family::<LimitLabels, Counter>::default();
        let events_not_stored = Family::<RejectLabels, Counter>::default();
        let pruned = Family::<PrunedLabels, Counter>::default();
        let moved_tags = Counter::default();
        let queue_depth = Gauge::<i64, AtomicI64>::default();
        let attempt_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let delivery_latency = Histogram::new(exponential_buckets(0.01, 3.0, 14));
        let hook_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "moved_tags",
            "Pushes of a tag already delivered with another digest (TAG-12), each not delivered to the subscribers that had it",
            moved_tags.clone(),
        );
        registry.register(
            "hooks_received",
            "Authentic inbound hook requests, by registry kind",
            hooks_received.clone(),
        );
        registry.register(
            "hook_events_accepted",
            "Events of inbound hooks accepted for matching, by registry kind",
            events_accepted.clone(),
        );
        registry.register(
            "hook_events_ignored",
            "Events of inbound hooks recorded as ignored (untagged, delete, not of the grammar, duplicate), by registry kind",
            events_ignored.clone(),
        );
        registry.register(
            "hooks_rejected",
            "Inbound hook requests rejected before storing (unknown token, bad signature, too large), by kind and reason",
            hooks_rejected.clone(),
        );
        registry.register(
            "deliveries",
            "Callback delivery attempts and decisions, by outcome",
            deliveries.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests answered 429, by limit (client address or hook token)",
            rate_limited.clone(),
        );
        registry.register(
            "hook_events_not_stored",
            "Events of inbound hooks counted and not stored (pulls, blob pushes: traffic, not releases), by kind and reason",
            events_not_stored.clone(),
        );
        registry.register(
            "pruned",
            "Rows removed by retention (retain-events, retain-deliveries), by what",
            pruned.clone(),
        );
        registry.register(
            "queue_depth",
            "Deliveries pending plus accepted events not yet matched",
            queue_depth.clone(),
        );
        registry.register(
            "delivery_attempt_duration_seconds",
            "Duration of one callback attempt",
            attempt_duration.clone(),
        );
        registry.register(
            "delivery_latency_seconds",
            "Time from an accepted hook to its successful callback",
            delivery_latency.clone(),
        );
        registry.register(
            "hook_duration_seconds",
            "Time to authenticate, store and acknowledge an inbound hook",
            hook_duration.clone(),
        );
        Self {
            registry,
            hooks_received,
            events_ignored,
            events_accepted,
            hooks_rejected,
            deliveries,
            rate_limited,
            events_not_stored,
            pruned,
            moved_tags,
            queue_depth,
            attempt_duration,
            delivery_latency,
            hook_duration,
        }
    }

    /// An authentic hook arrived.
    pub fn hook_received(&self, kind: &str, seconds: f64) {
        self.hooks_received
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
        self.hook_duration.observe(seconds);
    }

    /// One event of a hook was accepted or ignored.
    pub fn hook_event(&self, kind: &str, accepted: bool) {
        let labels = KindLabels { kind: kind.into() };
        if accepted {
            self.events_accepted.get_or_create(&labels).inc();
        } else {
            self.events_ignored.get_or_create(&labels).inc();
        }
    }

    /// An event of a hook was counted and not stored (`reason`: `pull` or `blob`).
    pub fn hook_event_not_stored(&self, kind: &str, reason: &str) {
        self.events_not_stored
            .get_or_create(&RejectLabels {
                kind: kind.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// A push moved a delivered tag to another digest (TAG-12).
    pub fn moved_tag(&self) {
        self.moved_tags.inc();
    }

    /// Retention removed `n` rows of `what`.
    pub fn pruned(&self, what: &str, n: u64) {
        self.pruned.get_or_create(&PrunedLabels { what: what.into() }).inc_by(n);
    }

    /// A request was answered 429.
    pub fn rate_limited(&self, limit: &str) {
        self.rate_limited
            .get_or_create(&LimitLabels { limit: limit.into() })
            .inc();
    }

    /// A hook was rejected before anything was stored.
    pub fn hook_rejected(&self, kind: &str, reason: &str) {
        self.hooks_rejected
            .get_or_create(&RejectLabels {
                kind: kind.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// A delivery attempt ended, or a delivery was decided without one.
    pub fn delivery(&self, outcome: &str, attempt_seconds: Option<f64>) {
        self.deliveries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
        if let Some(seconds) = attempt_seconds {
            self.attempt_duration.observe(seconds);
        }
    }

    /// A callback succeeded this long after the delivery was created.
    pub fn delivered_after(&self, seconds: f64) {
        self.delivery_latency.observe(seconds);
    }

    /// Sets the queue depth gauge.
    pub fn set_queue_depth(&self, depth: i64) {
        self.queue_depth.set(depth);
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
