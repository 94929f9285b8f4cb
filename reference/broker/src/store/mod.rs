//! Durable state: services, subscriptions, hook sources, the inbound event
//! log and the delivery outbox. One [`Store`] trait, implemented once by
//! [`SqlStore`] over a [`Backend`] ([`SqliteStore`], [`PostgresStore`]): the
//! queries are written once (`sql/`), the backends differ only in their
//! pools and in how rows are locked when claimed.
//!
//! Rows are decoded into the spec's types (`Tag`, `Stage`,
//! `ApiRequirement`, `Repository`, `Digest`) once, here at the edge; a row
//! that does not decode is a [`StoreError::Corrupt`], never skipped.
//! Hooks are written by group commit (`group.rs`): hooks that arrive
//! together share one transaction, and each is answered after it commits.

pub mod backend;
mod group;
mod postgres;
mod sql;
mod sqlite;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

pub use backend::Backend;
pub use postgres::{Postgres, PostgresStore};
pub use sql::SqlStore;
pub use sqlite::{Sqlite, SqliteStore};
use tagcast_spec::delivery::{Decision, DecisionKind};
use tagcast_spec::{ApiRequirement, Digest, Repository, Stage, Tag};

/// Matching's query for the subscribers of one repository: it reads the
/// `subscription_images_repository` index, so its cost does not grow with
/// the subscriptions on other images.
pub const SUBSCRIBERS_SQL: &str = "SELECT s.service_id, s.stage, s.api_requirement, s.registry_url, i.last_tag, i.last_digest \
     FROM subscription_images i JOIN subscriptions s ON s.service_id = i.service_id \
     WHERE i.repository = $1 AND s.enabled = 1 ORDER BY s.service_id";

/// Matching's query for the tags of one repository waiting in outboxes
/// (index `deliveries_repository`).
pub const PENDING_TAGS_SQL: &str = "SELECT service_id, tag FROM deliveries WHERE repository = $1 AND state = 'pending'";

/// What a store call returns.
pub type StoreResult<T> = Result<T, StoreError>;

/// A boxed future, so that [`Store`] can be used as `Arc<dyn Store>`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

/// A failed store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row to create exists already.
    #[error("{0} exists already")]
    Conflict(String),
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not decode: the database was changed behind the
    /// broker's back, or by a bug. Never skipped silently.
    #[error("corrupt row in {table} (row {row}, column {column}): {error}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's key.
        row: String,
        /// The column.
        column: String,
        /// Why it does not decode.
        error: String,
    },
    /// The store's writer has stopped (the broker is shutting down).
    #[error("the store's writer has stopped")]
    WriterStopped,
    /// The database was sealed under another secret key.
    #[error(
        "the database was written under another secret key: its key check value does not match the key from \
         {source_name}{}; start with the key it was written under (to change keys, give the old one as \
         --previous-secret-key-file with the new one)",
        previous.as_ref().map(|p| format!(" nor the previous key from {p}")).unwrap_or_default()
    )]
    WrongKey {
        /// Where the current key came from.
        source_name: String,
        /// Where the previous key came from, if one was given.
        previous: Option<String>,
    },
    /// A database file's mode cannot be set.
    #[error("cannot restrict the database file {path} to its owner (mode 0600)")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The database URL is not one this broker knows.
    #[error("unsupported database URL {0:?}: expected sqlite://PATH, sqlite::memory: or postgres://...")]
    UnsupportedUrl(String),
}

/// Milliseconds since the Unix epoch: every time in the store.
pub type Millis = i64;

/// The current time in milliseconds.
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// A service to create or replace.
#[derive(Debug, Clone)]
pub struct NewService {
    /// The service id.
    pub id: String,
    /// The document as reads show it (no secret, no hooks), JSON.
    pub document: String,
    /// The subscription, if the service has one.
    pub subscription: Option<NewSubscription>,
    /// The hook sources its images need, created in the same transaction
    /// as the service (issue 11, finding 9): a write that fails leaves
    /// neither the service nor a source behind.
    pub hook_sources: Vec<NewHookSource>,
}

/// A hook source a service write needs: created with a fresh token if it
/// does not exist; `secret` fills one that has none.
#[derive(Clone, PartialEq, Eq)]
pub struct NewHookSource {
    /// The adapter kind.
    pub kind: String,
    /// The registry host.
    pub registry: String,
    /// A generated signing secret, for kinds that sign.
    pub secret: Option<String>,
}

impl std::fmt::Debug for NewHookSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewHookSource")
            .field("kind", &self.kind)
            .field("registry", &self.registry)
            .field("secret", &self.secret.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// What `Debug` shows of a secret: whether there is one, never it.
pub(crate) const REDACTED: &str = "<redacted>";

/// A hook URL (`…/hooks/{kind}/{token}`) with its token hidden, for `Debug`.
pub fn redact_hook_url(url: &str) -> String {
    match url.rsplit_once('/') {
        Some((head, _token)) => format!("{head}/{REDACTED}"),
        None => REDACTED.to_owned(),
    }
}

/// The stored part of a `subscription` object.
#[derive(Clone)]
pub struct NewSubscription {
    /// The subscribed stage, as the grammar spells it.
    pub stage: String,
    /// The API requirement, e.g. `^1.1`.
    pub api_requirement: String,
    /// Where callbacks go.
    pub callback_url: String,
    /// The signing secret, `whsec_…`.
    pub secret: String,
    /// Normalized repositories.
    pub images: Vec<String>,
    /// The registry API base URL the subscriber named
    /// (`subscription.registry.url`), validated; its own, never shared.
    pub registry_url: Option<String>,
}

impl std::fmt::Debug for NewSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSubscription")
            .field("stage", &self.stage)
            .field("api_requirement", &self.api_requirement)
            .field("callback_url", &crate::config::redact_url(&self.callback_url))
            .field("secret", &REDACTED)
            .field("images", &self.images)
            .field("registry_url", &self.registry_url)
            .finish()
    }
}

/// A stored service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredService {
    /// The service id.
    pub id: String,
    /// The document as reads show it, JSON.
    pub document: String,
    /// When it was created.
    pub created_at: Millis,
    /// When it was last replaced.
    pub updated_at: Millis,
}

/// What one [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Inbound events.
    pub events: u64,
    /// Deliveries.
    pub deliveries: u64,
    /// Delivery attempts.
    pub attempts: u64,
}

/// One inbound URL: a kind of registry at one registry host.
#[derive(Clone, PartialEq, Eq)]
pub struct HookSource {
    /// The path token, ≥ 128 random bits.
    pub token: String,
    /// The adapter kind (`distribution`, `generic`, …).
    pub kind: String,
    /// The registry host, as in normalized repositories (`docker.io`, `registry.example.org:5000`).
    pub registry: String,
    /// The secret the registry signs with, for kinds that sign (`generic`).
    pub secret: Option<String>,
}

impl std::fmt::Debug for HookSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookSource")
            .field("token", &REDACTED)
            .field("kind", &self.kind)
            .field("registry", &self.registry)
            .field("secret", &self.secret.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// What became of one event of an inbound hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// A tag to match against subscriptions.
    Accepted,
    /// Recorded in the event log and otherwise ignored.
    Ignored(String),
}

/// One normalized event of an authentic inbound hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInboundEvent {
    /// The adapter kind.
    pub kind: String,
    /// The registry host (from the hook source, never from the payload).
    pub registry: String,
    /// The registry's own event id, if it sends one.
    pub source_event_id: Option<String>,
    /// The normalized repository.
    pub repository: Option<String>,
    /// The tag as pushed.
    pub tag: Option<String>,
    /// The manifest digest.
    pub digest: Option<String>,
    /// The manifest media type.
    pub media_type: Option<String>,
    /// Whether the manifest is an index (multi-arch): it wins over the platform manifests of one push.
    pub is_index: bool,
    /// Accepted or ignored, with the reason.
    pub disposition: Disposition,
}

/// An event of the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEvent {
    /// The broker's id of the event.
    pub id: String,
    /// The adapter kind.
    pub kind: String,
    /// The registry host.
    pub registry: String,
    /// The registry's own event id.
    pub source_event_id: Option<String>,
    /// The normalized repository.
    pub repository: Option<String>,
    /// The tag as pushed.
    pub tag: Option<String>,
    /// The manifest digest.
    pub digest: Option<String>,
    /// `accepted` or `ignored`.
    pub status: String,
    /// Why it was ignored.
    pub reason: Option<String>,
    /// When the hook arrived.
    pub received_at: Millis,
    /// When matching finished.
    pub matched_at: Option<Millis>,
    /// How many deliveries matching created.
    pub matched: Option<i64>,
}

/// An accepted event of the event log, claimed for matching: every field
/// decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedEvent {
    /// The broker's id of the event.
    pub id: String,
    /// The adapter kind.
    pub kind: String,
    /// The registry host.
    pub registry: String,
    /// The normalized repository.
    pub repository: Repository,
    /// The tag as pushed.
    pub tag: Tag,
    /// The manifest digest, when the registry sends one (Docker Hub, Quay
    /// and Gitea do not: matching resolves it).
    pub digest: Option<Digest>,
    /// When the hook arrived.
    pub received_at: Millis,
}

/// A subscription whose images include a repository, for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The subscribing service.
    pub service_id: String,
    /// The subscribed stage.
    pub stage: Stage,
    /// The API requirement.
    pub api_requirement: ApiRequirement,
    /// The last tag delivered to it for this repository.
    pub last_tag: Option<Tag>,
    /// The digest that tag was delivered with: a push of the same tag with
    /// another digest is a moved tag (TAG-12).
    pub last_digest: Option<Digest>,
    /// Tags of this repository waiting in its outbox.
    pub pending_tags: Vec<Tag>,
    /// The registry API base URL it named, if any: its deliveries are
    /// re-checked there (with the subscriber URL rule), not where another
    /// subscriber pointed.
    pub registry_url: Option<String>,
}

/// A delivery to put in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The delivery id: the CloudEvents `id` and the `webhook-id`.
    pub id: String,
    /// The inbound event.
    pub event_id: String,
    /// The subscriber.
    pub service_id: String,
    /// The normalized repository.
    pub repository: Repository,
    /// The tag as pushed.
    pub tag: Tag,
    /// The digest.
    pub digest: Digest,
    /// The exact body to send on every attempt.
    pub payload: String,
}

/// A claimed delivery with what the worker needs to send it.
#[derive(Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// The delivery id (`webhook-id`).
    pub id: String,
    /// The subscriber.
    pub service_id: String,
    /// The normalized repository.
    pub repository: Repository,
    /// The tag.
    pub tag: Tag,
    /// The digest.
    pub digest: Digest,
    /// The body.
    pub payload: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// Attempts made before the last manual redelivery: the retry schedule starts again there.
    pub schedule_offset: i64,
    /// Whether an operator asked for this attempt (manual redelivery).
    pub manual: bool,
    /// When the delivery was created.
    pub created_at: Millis,
    /// Where to send it.
    pub callback_url: String,
    /// The signing secret.
    pub secret: String,
    /// The secret it replaced, while its grace period lasts
    /// ([`tagcast_spec::webhook::PREVIOUS_SECRET_GRACE`]): callbacks are
    /// signed with both (CB-5).
    pub previous_secret: Option<String>,
    /// Whether the subscription is enabled.
    pub enabled: bool,
    /// The last tag delivered to the subscriber for this repository.
    pub last_tag: Option<Tag>,
    /// The HTTP status of the previous attempt, if it got one (a second
    /// 401 in a row is permanent, CB-14).
    pub last_status: Option<i64>,
    /// The newest pending delivery of a newer tag of the same image to the
    /// same subscriber, if any. Its outcome may not be recorded yet although
    /// the subscriber already accepted it (the broker died between sending
    /// and recording): the older delivery waits for that outcome instead of
    /// risking a step backwards (CB-15 across a crash).
    pub newer_pending: Option<NewerPending>,
}

/// A pending delivery of a newer tag that an older delivery waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewerPending {
    /// Its tag.
    pub tag: Tag,
    /// The earliest moment its outcome can change: now when it is claimed
    /// (in flight), else its next attempt.
    pub settles_at: Millis,
}

impl std::fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueDelivery")
            .field("id", &self.id)
            .field("service_id", &self.service_id)
            .field("repository", &self.repository)
            .field("tag", &self.tag)
            .field("digest", &self.digest)
            .field("attempts", &self.attempts)
            .field("schedule_offset", &self.schedule_offset)
            .field("manual", &self.manual)
            .field("created_at", &self.created_at)
            .field("callback_url", &crate::config::redact_url(&self.callback_url))
            .field("secret", &REDACTED)
            .field("previous_secret", &self.previous_secret.as_ref().map(|_| REDACTED))
            .field("enabled", &self.enabled)
            .field("last_tag", &self.last_tag)
            .field("last_status", &self.last_status)
            .field("newer_pending", &self.newer_pending)
            .finish_non_exhaustive()
    }
}

/// What a delivery worker claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim<'a> {
    /// The worker; only it may record the outcome.
    pub worker: &'a str,
    /// Deliveries due at or before this time.
    pub now: Millis,
    /// Until when the claim holds.
    pub lease_until: Millis,
    /// At most this many.
    pub limit: i64,
    /// At most this many in flight per subscriber, counting those claimed already.
    pub per_subscriber: i64,
}

/// The matching of one claimed event, for [`Store::complete_matches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The event.
    pub event_id: String,
    /// Its deliveries; one per (event, subscriber) is kept.
    pub deliveries: Vec<NewDelivery>,
    /// Dropped after acceptance, with this reason: recorded as ignored.
    pub dropped: Option<String>,
    /// Matched, with this to tell the operator: recorded as the accepted
    /// event's reason (a moved tag, TAG-12).
    pub note: Option<String>,
    /// What was decided for each subscriber of the image, and why.
    pub decisions: Vec<NewDecision>,
}

/// The decision of matching for one event and one subscriber, for
/// [`Matched::decisions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDecision {
    /// The subscriber.
    pub service_id: String,
    /// The normalized repository.
    pub repository: Repository,
    /// The tag as pushed.
    pub tag: Tag,
    /// What was decided.
    pub kind: DecisionKind,
    /// Why, for a person.
    pub reason: String,
    /// The delivery made, when `kind` is `Delivered`.
    pub delivery_id: Option<String>,
}

/// A stored decision with whom it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDecision {
    /// The subscriber.
    pub service_id: String,
    /// The normalized repository.
    pub repository: Repository,
    /// The decision in the spec's shape.
    pub decision: Decision,
}

/// The state of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// The subscriber answered 2xx.
    Succeeded,
    /// A permanent failure (4xx other than 408/409/429, subscription disabled).
    Failed,
    /// The retry schedule is exhausted: dead-lettered.
    Dead,
    /// Not sent: the subscriber already has this tag or a newer one.
    Skipped,
}

impl DeliveryState {
    /// The name stored and shown in the delivery log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Skipped => "skipped",
        }
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a worker reports after handling a claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The delivery.
    pub delivery_id: String,
    /// The worker that claimed it; a report from a worker whose claim was lost is dropped.
    pub worker: String,
    /// Whether a request was made (false for a skip).
    pub attempted: bool,
    /// When the attempt started.
    pub started_at: Millis,
    /// How long it took.
    pub duration_ms: i64,
    /// The HTTP status, if there was an answer.
    pub status: Option<i64>,
    /// Why it failed, if it did (never a secret).
    pub error: Option<String>,
    /// The state after this attempt.
    pub state: DeliveryState,
    /// When to try again (state `pending`).
    pub next_attempt_at: Option<Millis>,
    /// Disable the subscription with this reason (410 Gone).
    pub disable_subscription: Option<String>,
}

/// One attempt of a delivery, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1, 2, …
    pub attempt: i64,
    /// When it started.
    pub started_at: Millis,
    /// How long it took.
    pub duration_ms: i64,
    /// The HTTP status, if there was an answer.
    pub status: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// A delivery of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The delivery id (`webhook-id`).
    pub id: String,
    /// The inbound event.
    pub event_id: String,
    /// The subscriber.
    pub service_id: String,
    /// The normalized repository.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The digest.
    pub digest: String,
    /// `pending`, `succeeded`, `failed`, `dead` or `skipped`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due.
    pub next_attempt_at: Option<Millis>,
    /// The last HTTP status.
    pub last_status: Option<i64>,
    /// The last error.
    pub last_error: Option<String>,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
    /// Its attempts, oldest first (only filled by [`Store::delivery`]).
    pub attempt_log: Vec<Attempt>,
}

/// The last delivered tag of one image of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageState {
    /// The normalized repository.
    pub repository: String,
    /// The last delivered tag.
    pub last_tag: Option<String>,
    /// Its digest.
    pub last_digest: Option<String>,
    /// When it was delivered.
    pub last_delivered_at: Option<Millis>,
    /// The decision on the latest push of the image for this subscriber.
    pub last_decision: Option<Decision>,
}

/// The state of a subscription, for the status resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why it was disabled (410 Gone).
    pub disabled_reason: Option<String>,
    /// Per image.
    pub images: Vec<ImageState>,
    /// Deliveries per state.
    pub counts: Vec<(String, i64)>,
}

/// The broker's durable state.
///
/// Implementations must make every write that a hook acknowledgement
/// depends on durable before returning.
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Whether the database answers.
    fn ping(&self) -> StoreFuture<'_, ()>;

    /// A broker setting.
    fn setting<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>>;

    /// Sets a setting unless it exists; returns the value in force.
    fn init_setting<'a>(&'a self, key: &'a str, value: &'a str) -> StoreFuture<'a, String>;

    /// Creates a service; [`StoreError::Conflict`] if the id is taken.
    fn insert_service(&self, service: NewService) -> StoreFuture<'_, ()>;

    /// Creates or replaces a service; true if it was created. The last
    /// delivered tags of images kept in the subscription are kept; a
    /// replaced subscription is enabled again.
    fn replace_service(&self, service: NewService) -> StoreFuture<'_, bool>;

    /// Deletes a service, its subscription and its deliveries; false if there was none.
    fn delete_service<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool>;

    /// One service.
    fn service<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<StoredService>>;

    /// Every service, by id.
    fn services(&self) -> StoreFuture<'_, Vec<StoredService>>;

    /// Up to `limit` services with an id after `after`, by id (a page of
    /// `GET /services`).
    fn services_page<'a>(&'a self, after: Option<&'a str>, limit: i64) -> StoreFuture<'a, Vec<StoredService>>;

    /// Forgets finished deliveries (and their attempts) last changed before
    /// `deliveries_before`, and settled inbound events received before
    /// `events_before` that no delivery references. Never a pending
    /// delivery, an event still to match, or the last delivered tags.
    fn prune(&self, events_before: Millis, deliveries_before: Millis) -> StoreFuture<'_, Pruned>;

    /// The hook source of a kind at a registry, created with a fresh token
    /// the first time; `secret`, if given, is stored when the source has
    /// none (so that a source made before its kind signed gets one) and
    /// never replaces one. It is shared by every subscriber of the
    /// registry, so it holds nothing a subscriber chose.
    fn hook_source<'a>(
        &'a self,
        kind: &'a str,
        registry: &'a str,
        secret: Option<&'a str>,
    ) -> StoreFuture<'a, HookSource>;

    /// The hook source of a kind at a registry, if there is one.
    fn find_hook_source<'a>(&'a self, kind: &'a str, registry: &'a str) -> StoreFuture<'a, Option<HookSource>>;

    /// The hook source of a path token: its current token, or its previous
    /// one until the rotation's grace period ends. Looked up by the
    /// token's keyed hash; the token itself is never stored in plaintext.
    fn hook_source_by_token<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<HookSource>>;

    /// Gives the hook source of a kind at a registry a new token, returned
    /// in the source; the current one stays valid until `previous_until`
    /// (rotation), or is invalid at once with `None` (revocation). `None`
    /// if there is no such source.
    fn rotate_hook_token<'a>(
        &'a self,
        kind: &'a str,
        registry: &'a str,
        previous_until: Option<Millis>,
    ) -> StoreFuture<'a, Option<HookSource>>;

    /// Deletes the hook sources no stored service uses any more (finding 5
    /// of issue 11) and returns them as (kind, registry). `in_use` derives
    /// the sources of one stored service document, as the API does when it
    /// writes the service; it runs inside the prune's transaction, after
    /// the sources are locked, so a service written at the same time that
    /// reuses a source either is seen or recreates the source after.
    fn prune_hook_sources(&self, in_use: SourcesOf) -> StoreFuture<'_, Vec<(String, String)>>;

    /// Records the events of one authentic hook in one transaction,
    /// deduplicating by the registry's event id (or body hash) among the
    /// events received at or after `dedup_since` (the dedupe window's
    /// start: an older event no longer holds its id, so a later identical
    /// body is recorded again) and by (registry, repository, tag, digest)
    /// for good, and coalescing platform manifests into their index.
    /// Returns what became of each.
    fn record_inbound(
        &self,
        events: Vec<NewInboundEvent>,
        dedup_since: Millis,
    ) -> StoreFuture<'_, Vec<(String, Disposition)>>;

    /// Claims accepted events not yet matched, oldest first, until `lease_until`.
    fn claim_inbound(&self, now: Millis, lease_until: Millis, limit: i64) -> StoreFuture<'_, Vec<AcceptedEvent>>;

    /// The enabled subscriptions whose images include `repository`.
    fn subscribers<'a>(&'a self, repository: &'a Repository) -> StoreFuture<'a, Vec<Subscriber>>;

    /// Completes the matching of several claimed events in one
    /// transaction, as [`Store::complete_inbound`] does for one; returns how
    /// many deliveries each added.
    fn complete_matches(&self, matched: Vec<Matched>, now: Millis) -> StoreFuture<'_, Vec<u64>>;

    /// Puts the deliveries of an event in the outbox and marks it matched,
    /// in one transaction; a delivery for an (event, subscriber) that exists
    /// is not added twice. With `dropped`, the event is recorded as ignored
    /// for that reason instead. Returns how many deliveries were added.
    fn complete_inbound<'a>(
        &'a self,
        event_id: &'a str,
        deliveries: Vec<NewDelivery>,
        now: Millis,
        dropped: Option<&'a str>,
    ) -> StoreFuture<'a, u64>;

    /// Leaves a claimed event unmatched until `until`, when it is claimed again.
    fn defer_inbound<'a>(&'a self, event_id: &'a str, until: Millis) -> StoreFuture<'a, ()>;

    /// Claims due deliveries for a worker until `lease_until`; replicas
    /// never claim the same delivery at once. A subscriber never has more
    /// than `per_subscriber` deliveries claimed (in flight) after a claim,
    /// so that one that stalls cannot hold every worker (with several
    /// replicas claiming at the same instant, up to one limit per replica).
    fn claim_deliveries<'a>(&'a self, claim: Claim<'a>) -> StoreFuture<'a, Vec<DueDelivery>>;

    /// Records the outcome of a claimed delivery and releases the claim.
    fn finish_attempt(&self, record: AttemptRecord) -> StoreFuture<'_, ()>;

    /// Releases the claims of a worker (at shutdown), or of every worker
    /// when `worker` is `None` (at start of a single-process store).
    fn release_claims<'a>(&'a self, worker: Option<&'a str>) -> StoreFuture<'a, ()>;

    /// The deliveries of a service, newest first.
    fn deliveries<'a>(&'a self, service_id: &'a str, limit: i64) -> StoreFuture<'a, Vec<DeliveryRecord>>;

    /// One delivery of a service with its attempts.
    fn delivery<'a>(&'a self, service_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<DeliveryRecord>>;

    /// Makes a delivery due now, its retry schedule started again; false if there is none.
    fn redeliver<'a>(&'a self, service_id: &'a str, id: &'a str, now: Millis) -> StoreFuture<'a, bool>;

    /// Forgets the last delivered tag of `repository` for a service's
    /// subscription (API-17); false if the service does not subscribe to it.
    fn reset_delivered<'a>(&'a self, service_id: &'a str, repository: &'a str) -> StoreFuture<'a, bool>;

    /// The signing secret of a service's subscription.
    fn subscription_secret<'a>(&'a self, service_id: &'a str) -> StoreFuture<'a, Option<String>>;

    /// The state of a service's subscription.
    fn subscription_state<'a>(&'a self, service_id: &'a str) -> StoreFuture<'a, Option<SubscriptionState>>;

    /// The event log, newest first.
    fn inbound_events(&self, limit: i64) -> StoreFuture<'_, Vec<InboundEvent>>;

    /// One event of the log.
    fn inbound_event<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<InboundEvent>>;

    /// The decisions of these events, per event in subscriber order.
    fn decisions<'a>(&'a self, event_ids: &'a [String]) -> StoreFuture<'a, Vec<StoredDecision>>;

    /// Deliveries waiting (`pending`) plus accepted events not yet matched.
    fn queue_depth(&self) -> StoreFuture<'_, i64>;

    /// The hooks the broker manages in registries (API-18).
    fn managed_hooks(&self) -> StoreFuture<'_, Vec<ManagedHookRow>>;

    /// Records a hook the broker created or adopted.
    fn put_managed_hook<'a>(&'a self, hook: &'a ManagedHookRow) -> StoreFuture<'a, ()>;

    /// Forgets a hook the broker deleted.
    fn delete_managed_hook<'a>(&'a self, registry: &'a str, scope: &'a str) -> StoreFuture<'a, ()>;
}

/// A hook the broker manages in a registry (API-18): one per registry scope.
#[derive(Clone, PartialEq, Eq)]
pub struct ManagedHookRow {
    /// The registry host.
    pub registry: String,
    /// The scope (Harbor project, Quay repository, GitHub or Gitea owner).
    pub scope: String,
    /// The registry kind.
    pub kind: String,
    /// An image path in the scope.
    pub path: String,
    /// The hook URL it points at.
    pub url: String,
}

impl std::fmt::Debug for ManagedHookRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedHookRow")
            .field("registry", &self.registry)
            .field("scope", &self.scope)
            .field("kind", &self.kind)
            .field("path", &self.path)
            .field("url", &redact_hook_url(&self.url))
            .finish()
    }
}

/// The hook sources, (kind, registry), that a stored service document
/// needs; `None` if the document cannot be read (then nothing is pruned).
pub type SourcesOf = fn(&str) -> Option<Vec<(String, String)>>;

/// How many deliveries of one subscriber may be in flight at once, unless configured.
pub const DEFAULT_IN_FLIGHT_PER_SUBSCRIBER: i64 = 8;

/// Opens the store a database URL names, migrates it and settles it with
/// the secret keys (refusing a database written under another key).
///
/// # Errors
///
/// [`StoreError::UnsupportedUrl`] for a URL of another scheme, the
/// database's error, or [`StoreError::WrongKey`].
pub async fn open(url: &str, keys: &crate::keys::Keys) -> StoreResult<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open_keyed(url, keys).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PostgresStore::open_keyed(url, keys).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// A random token of 256 bits, URL-safe.
pub fn random_token() -> String {
    use base64::Engine as _;
    use rand::Rng as _;
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
