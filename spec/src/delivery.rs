//! Subscription status, the delivery log and the retry schedule
//! (`spec/service-api.md` API-10 to API-12, `spec/callbacks.md` CB-11 to
//! CB-14).

use std::time::Duration;

use chrono::{DateTime, Utc};
#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::subscription::SubscriptionState;
use crate::{Digest, Repository, Tag};

/// "Retries follow the schedule 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
/// after the first attempt, each delay with ±20 % jitter; after the eighth
/// failed attempt the delivery is dead-lettered" (CB-12).
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// "MUST cap the wait at 10 hours (a longer `Retry-After` is read as 10
/// hours)" (CB-13): the longest wait a `Retry-After` can ask for, whatever
/// the retry schedule in use.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(10 * 3600);

/// The jitter of each retry delay, as a fraction: ±20 % (CB-12).
pub const RETRY_JITTER: f64 = 0.2;

/// Most attempts of one delivery before it is dead-lettered: the first and
/// one per [`RETRY_SCHEDULE`] entry (CB-12).
pub const MAX_ATTEMPTS: u32 = 1 + RETRY_SCHEDULE.len() as u32;

/// "The CD endpoint answers within 10 s" (CB-8); the broker gives up on an
/// attempt after this long and counts it as a retryable failure.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// What one attempt's HTTP status means for the delivery (CB-10, CB-14).
///
/// # Examples
///
/// ```
/// use tagcast_spec::delivery::{AttemptOutcome, classify};
///
/// assert_eq!(classify(204), AttemptOutcome::Success);
/// assert_eq!(classify(429), AttemptOutcome::Retry);
/// assert_eq!(classify(400), AttemptOutcome::Permanent);
/// assert_eq!(classify(410), AttemptOutcome::Gone);
/// assert_eq!(classify(302), AttemptOutcome::Retry); // redirects are not followed
/// ```
pub fn classify(status: u16) -> AttemptOutcome {
    match status {
        200..=299 => AttemptOutcome::Success,
        410 => AttemptOutcome::Gone,
        408 | 409 | 429 => AttemptOutcome::Retry,
        400..=499 => AttemptOutcome::Permanent,
        _ => AttemptOutcome::Retry,
    }
}

/// [`classify`] with CB-14's one exception: a 401 is retried once, since
/// the endpoint may be between two steps of a key rotation (CB-5), and is
/// permanent when the attempt before it was answered 401 too.
///
/// # Examples
///
/// ```
/// use tagcast_spec::delivery::{AttemptOutcome, classify_after};
///
/// assert_eq!(classify_after(401, None), AttemptOutcome::Retry);
/// assert_eq!(classify_after(401, Some(503)), AttemptOutcome::Retry);
/// assert_eq!(classify_after(401, Some(401)), AttemptOutcome::Permanent);
/// assert_eq!(classify_after(400, None), AttemptOutcome::Permanent);
/// ```
pub fn classify_after(status: u16, previous: Option<u16>) -> AttemptOutcome {
    match (status, previous) {
        (401, Some(401)) => AttemptOutcome::Permanent,
        (401, _) => AttemptOutcome::Retry,
        _ => classify(status),
    }
}

/// The delay before the next attempt after `failed` attempts have failed
/// retryably, or `None` when the delivery is to be dead-lettered (CB-12,
/// CB-13).
///
/// `jitter` in `[-1, 1]` (the caller draws it uniformly) scales the ±20 %
/// jitter. "A `Retry-After` on 429 or 503 delays the next attempt to at least
/// that time", up to the schedule's longest step (10 h).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tagcast_spec::delivery::next_delay;
///
/// assert_eq!(next_delay(1, 0.0, None), Some(Duration::from_secs(5)));
/// assert_eq!(next_delay(2, 1.0, None), Some(Duration::from_secs(360)));
/// assert_eq!(next_delay(1, 0.0, Some(Duration::from_secs(120))), Some(Duration::from_secs(120)));
/// assert_eq!(next_delay(8, 0.0, None), None); // dead-lettered
/// ```
pub fn next_delay(failed: u32, jitter: f64, retry_after: Option<Duration>) -> Option<Duration> {
    let index = usize::try_from(failed.checked_sub(1)?).ok()?;
    let base = *RETRY_SCHEDULE.get(index)?;
    let jitter = if jitter.is_finite() {
        jitter.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let delay = base.mul_f64(1.0 + RETRY_JITTER * jitter);
    let longest = RETRY_SCHEDULE[RETRY_SCHEDULE.len() - 1];
    Some(match retry_after {
        Some(after) => delay.max(after.min(longest)),
        None => delay,
    })
}

/// What one attempt's answer means (CB-10, CB-14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum AttemptOutcome {
    /// A 2xx answer: delivered.
    Success,
    /// No answer within 10 s (the attempt timeout), a connection error, a
    /// 3xx, 408, 409, 429 or 5xx: try again on schedule.
    Retry,
    /// Any other 4xx: the endpoint will not accept this event; no retry.
    Permanent,
    /// 410 Gone: the endpoint asks to be unsubscribed.
    Gone,
    /// Refused before connecting: the callback URL resolved to a forbidden
    /// address (CB-16). Retried on schedule, as DNS may change.
    Refused,
}

/// Where a delivery stands (API-11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum DeliveryOutcome {
    /// Waiting for its first or next attempt (`nextAttemptAt`).
    Pending,
    /// An attempt got a 2xx answer.
    Delivered,
    /// An attempt got a permanent 4xx answer (CB-14).
    Failed,
    /// Every attempt of the schedule failed: dead-lettered (CB-12); only a
    /// manual redelivery sends it again (API-12).
    Dead,
    /// The endpoint answered 410 and the subscription ended (CB-10).
    Unsubscribed,
    /// Not sent, because a newer tag of the channel superseded it before its
    /// first attempt (CB-15).
    Superseded,
}

/// One HTTP attempt of a delivery (API-11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// 1 for the first attempt, counting on across manual redeliveries.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub number: u32,
    /// When the attempt started.
    pub started_at: DateTime<Utc>,
    /// How long until the answer, or until the broker gave up.
    pub duration_ms: u64,
    /// The HTTP status, if an answer arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 100, max = 599)))]
    pub response_code: Option<u16>,
    /// What the answer means.
    pub outcome: AttemptOutcome,
    /// Why there was no usable answer (timeout, connection refused, refused
    /// address), for people; not for matching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One event on its way to one subscriber, with its attempts (API-11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", schemars(
    description = "One callback event on its way to one subscriber, with every attempt (spec/service-api.md API-11).",
    example = crate::delivery::example_delivery()
))]
pub struct Delivery {
    /// The event id, equal to the CloudEvent `id` and the `webhook-id`
    /// header; stable across retries and redeliveries (CB-3).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = "^[A-Za-z0-9_-]{1,128}$")))]
    pub id: String,
    /// The subscribed service.
    pub service_id: String,
    /// The repository the tag was pushed to.
    pub image: Repository,
    /// The delivered tag, as pushed.
    pub tag: Tag,
    /// The digest the tag pointed to.
    pub digest: Digest,
    /// Where the delivery stands.
    pub outcome: DeliveryOutcome,
    /// When the broker created the event.
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due, while `outcome` is `pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the latest attempt that got an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 100, max = 599)))]
    pub response_code: Option<u16>,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// The inbound event (the push) it was made for: its id in the
    /// broker's event log, where the decisions of that event are listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// What a broker decided for one pushed tag and one subscriber of its image
/// (API-10): why it was delivered, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum DecisionKind {
    /// A delivery was created (`deliveryId`).
    Delivered,
    /// Not newer than the tag last delivered to the subscriber (TAG-11, CB-15).
    NotNewer,
    /// A delivery of a tag at least as new is still waiting (CB-15).
    NewerPending,
    /// Of another stage than the subscribed one (TAG-11).
    OtherStage,
    /// Its api-version does not satisfy the subscriber's requirement (TAG-10).
    ApiVersion,
    /// The registry did not confirm the tag's digest within the grace
    /// period (API-15): a digest mismatch or no answer.
    Unverified,
    /// The tag was delivered before with another digest (TAG-12).
    MovedTag,
}

impl DecisionKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 7] = [
        Self::Delivered,
        Self::NotNewer,
        Self::NewerPending,
        Self::OtherStage,
        Self::ApiVersion,
        Self::Unverified,
        Self::MovedTag,
    ];

    /// The wire name (`notNewer`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::NotNewer => "notNewer",
            Self::NewerPending => "newerPending",
            Self::OtherStage => "otherStage",
            Self::ApiVersion => "apiVersion",
            Self::Unverified => "unverified",
            Self::MovedTag => "movedTag",
        }
    }
}

impl std::fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DecisionKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown decision {s:?}"))
    }
}

/// One decision of a broker: a pushed tag and a subscriber (API-10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The inbound event (the push), by its id in the broker's event log.
    pub event_id: String,
    /// The pushed tag.
    pub tag: Tag,
    /// What was decided.
    pub decision: DecisionKind,
    /// Why, for a person (`1.1.0-production-201101-000000 is not newer than
    /// the current tag 1.1.0-production-201110-000000`).
    pub reason: String,
    /// The delivery made, when `decision` is `delivered`: its `id` is the
    /// callback's `webhook-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// When the broker decided.
    pub decided_at: DateTime<Utc>,
}

/// The last tag the broker delivered to a subscriber for one image (API-10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImageStatus {
    /// The subscribed repository.
    pub image: Repository,
    /// The tag most recently delivered (2xx), if any; the `previousTag` of
    /// the next event (CB-2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_tag: Option<Tag>,
    /// Its digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_digest: Option<Digest>,
    /// When it was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The decision on the latest push of this image, delivered or not: why
    /// the newest push did (not) arrive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<Decision>,
}

/// How many deliveries of a subscription are in each outcome (API-10).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeliveryCounts {
    /// `pending`.
    pub pending: u64,
    /// `delivered`.
    pub delivered: u64,
    /// `failed`.
    pub failed: u64,
    /// `dead`.
    pub dead: u64,
}

/// `GET /services/{serviceId}/subscription/status` (API-10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", schemars(
    description = "The delivery state of one service's subscription (spec/service-api.md API-10).",
    example = crate::delivery::example_status()
))]
pub struct SubscriptionStatus {
    /// The service.
    pub service_id: String,
    /// Whether callbacks are delivered.
    pub state: SubscriptionState,
    /// Per subscribed image, what was last delivered.
    pub images: Vec<ImageStatus>,
    /// Deliveries per outcome.
    pub deliveries: DeliveryCounts,
    /// The latest delivery, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery: Option<Delivery>,
}

#[cfg(feature = "schema")]
pub(crate) fn example_delivery() -> serde_json::Value {
    serde_json::json!({
        "id": "evt_01JDQ4Z8Y1S0V2W3X4Y5Z6A7B8",
        "serviceId": "org.example.cwl-wes.production",
        "image": "docker.io/elixircloud/cwl-wes",
        "tag": "1.1.0-production-201108-195630",
        "digest": "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
        "outcome": "pending",
        "createdAt": "2020-11-08T19:57:02Z",
        "nextAttemptAt": "2020-11-08T19:57:08Z",
        "responseCode": 503,
        "attempts": [{
            "number": 1,
            "startedAt": "2020-11-08T19:57:02Z",
            "durationMs": 112,
            "responseCode": 503,
            "outcome": "retry"
        }]
    })
}

#[cfg(feature = "schema")]
pub(crate) fn example_status() -> serde_json::Value {
    serde_json::json!({
        "serviceId": "org.example.cwl-wes.production",
        "state": "active",
        "images": [{
            "image": "docker.io/elixircloud/cwl-wes",
            "deliveredTag": "1.1.0-production-201001-120000",
            "deliveredDigest": "sha256:0f1d5e1b6b1ae7b1c7e1a4d57e3c0c8f9d2a1b3c4d5e6f708192a3b4c5d6e7f8",
            "deliveredAt": "2020-10-01T12:00:41Z",
            "lastDecision": {
                "eventId": "01JDQ4Z5K2M3N4P5Q6R7S8T9V0",
                "tag": "1.1.0-production-200901-080000",
                "decision": "notNewer",
                "reason": "1.1.0-production-200901-080000 is not newer than the current tag 1.1.0-production-201001-120000",
                "decidedAt": "2020-10-02T09:15:03Z"
            }
        }],
        "deliveries": {"pending": 1, "delivered": 4, "failed": 0, "dead": 0},
        "lastDelivery": example_delivery()
    })
}
