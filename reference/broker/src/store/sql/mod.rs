//! The store, written once over a [`Backend`]: every query of both
//! databases. SQLite and PostgreSQL both accept `$N` parameters,
//! `ON CONFLICT`, `RETURNING`, row values and partial indexes, so the only
//! differences are the backend's pools and its row locks.
//!
//! - `services.rs`: settings, services and subscriptions, hook sources;
//! - `inbound.rs`: the event log, written by group commit, and matching;
//! - `outbox.rs`: deliveries, their claims and attempts.

mod decisions;
mod inbound;
mod keys;
mod managed;
mod outbox;
mod retention;
mod services;

use std::fmt;
use std::sync::Arc;

use super::backend::Backend;
use super::group::{self, Writer};
use crate::keys::Keyring;

use super::{
    AcceptedEvent, AttemptRecord, Claim, DeliveryRecord, Disposition, DueDelivery, HookSource, InboundEvent,
    ManagedHookRow, Matched, Millis, NewDelivery, NewInboundEvent, NewService, Pruned, Store, StoreError, StoreFuture,
    StoreResult, StoredDecision, StoredService, Subscriber, SubscriptionState,
};
use tagcast_spec::Repository;

/// The store over one backend (see [`super::SqliteStore`] and [`super::PostgresStore`]).
///
/// Secrets are sealed here on the way in and opened on the way out, so
/// the queries (`services.rs`, `outbox.rs`, …) only ever see sealed values
/// and token hashes, and the [`Store`] trait only plaintext.
pub struct SqlStore<B: Backend> {
    db: Arc<B>,
    writer: Writer,
    keys: Arc<Keyring>,
}

impl<B: Backend> fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &B::NAME)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> SqlStore<B> {
    /// The store over an opened, migrated backend; starts its group-commit
    /// writer (so it must be called inside a Tokio runtime).
    pub(crate) fn new(db: B, keys: Keyring) -> Self {
        let db = Arc::new(db);
        let writer = group::spawn(db.clone());
        Self {
            db,
            writer,
            keys: Arc::new(keys),
        }
    }

    /// Settles a migrated database with the keys (`keys.rs`) and builds
    /// the store; logs what was sealed or rekeyed, never a secret.
    pub(crate) async fn settled(db: B, keys: &crate::keys::Keys) -> StoreResult<Self> {
        let settled = keys::settle(&db, keys).await?;
        if settled.sealed > 0 {
            tracing::info!(
                sealed = settled.sealed,
                key = %keys.current.source(),
                "sealed secrets stored in plaintext by an older broker"
            );
        }
        if settled.rekeyed {
            tracing::info!(key = %keys.current.source(), "moved every sealed secret and hook token to the new secret key");
        }
        Ok(Self::new(db, keys.current.clone()))
    }

    fn unseal(&self, table: &'static str, row: &str, context: &str, sealed: &str) -> StoreResult<String> {
        self.keys.open(context, sealed).map_err(|err| StoreError::Corrupt {
            table,
            row: row.to_owned(),
            column: context.split(':').next().unwrap_or_default().to_owned(),
            error: err.to_string(),
        })
    }

    /// A hook source as read, its token and secret opened.
    fn open_source(&self, mut source: HookSource) -> StoreResult<HookSource> {
        let row = format!("{}:{}", source.kind, source.registry);
        source.token = self.unseal(
            "hook_sources",
            &row,
            &crate::keys::hook_token_context(&source.kind, &source.registry),
            &source.token,
        )?;
        if let Some(secret) = &source.secret {
            source.secret = Some(self.unseal(
                "hook_sources",
                &row,
                &crate::keys::hook_secret_context(&source.kind, &source.registry),
                secret,
            )?);
        }
        Ok(source)
    }

    async fn hook_source_by_token(&self, token: &str) -> StoreResult<Option<HookSource>> {
        use subtle::ConstantTimeEq as _;
        let hash = self.keys.token_hash(token);
        let Some((source, matched)) = services::hook_source_by_token_hash(&*self.db, &hash, super::now_ms()).await?
        else {
            return Ok(None);
        };
        // The database found the row by the hash; compare it again here
        // in constant time, so a collation or index quirk cannot admit
        // another token.
        if !bool::from(matched.as_bytes().ct_eq(hash.as_bytes())) {
            return Ok(None);
        }
        self.open_source(source).map(Some)
    }

    async fn hook_source_sealed(&self, kind: &str, registry: &str, secret: Option<&str>) -> StoreResult<HookSource> {
        let source = services::hook_source(&*self.db, &self.keys, kind, registry, secret).await?;
        self.open_source(source)
    }

    async fn rotate_hook_token(
        &self,
        kind: &str,
        registry: &str,
        previous_until: Option<Millis>,
    ) -> StoreResult<Option<HookSource>> {
        let token = services::StoredToken::mint(&self.keys, kind, registry);
        if !services::rotate_hook_token(&*self.db, kind, registry, &token, previous_until).await? {
            return Ok(None);
        }
        let source = services::find_hook_source(&*self.db, kind, registry).await?;
        source.map(|s| self.open_source(s)).transpose()
    }

    /// The backend, for queries of its own (tests, tools).
    pub fn backend_ref(&self) -> &B {
        &self.db
    }
}

/// The embedded migrations of one backend.
pub(crate) fn migrator(migrations: &[(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use std::borrow::Cow;
    sqlx::migrate::Migrator {
        migrations: Cow::Owned(
            migrations
                .iter()
                .map(|(version, description, sql)| {
                    sqlx::migrate::Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        sqlx::migrate::MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect(),
        ),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

impl<B: Backend> Store for SqlStore<B> {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.db.read("SELECT 1 AS one", &[]).await?;
            Ok(())
        })
    }

    fn setting<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(services::setting(&*self.db, key))
    }

    fn init_setting<'a>(&'a self, key: &'a str, value: &'a str) -> StoreFuture<'a, String> {
        Box::pin(services::init_setting(&*self.db, key, value))
    }

    fn insert_service(&self, service: NewService) -> StoreFuture<'_, ()> {
        Box::pin(async move { services::insert_service(&*self.db, &self.keys, &service).await })
    }

    fn replace_service(&self, service: NewService) -> StoreFuture<'_, bool> {
        Box::pin(async move { services::replace_service(&*self.db, &self.keys, &service).await })
    }

    fn delete_service<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(services::delete_service(&*self.db, id))
    }

    fn service<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<StoredService>> {
        Box::pin(services::service(&*self.db, id))
    }

    fn services(&self) -> StoreFuture<'_, Vec<StoredService>> {
        Box::pin(services::services(&*self.db))
    }

    fn services_page<'a>(&'a self, after: Option<&'a str>, limit: i64) -> StoreFuture<'a, Vec<StoredService>> {
        Box::pin(services::services_page(&*self.db, after, limit))
    }

    fn prune(&self, events_before: Millis, deliveries_before: Millis) -> StoreFuture<'_, Pruned> {
        Box::pin(retention::prune(&*self.db, events_before, deliveries_before))
    }

    fn hook_source<'a>(
        &'a self,
        kind: &'a str,
        registry: &'a str,
        secret: Option<&'a str>,
    ) -> StoreFuture<'a, HookSource> {
        Box::pin(self.hook_source_sealed(kind, registry, secret))
    }

    fn find_hook_source<'a>(&'a self, kind: &'a str, registry: &'a str) -> StoreFuture<'a, Option<HookSource>> {
        Box::pin(async move {
            let source = services::find_hook_source(&*self.db, kind, registry).await?;
            source.map(|s| self.open_source(s)).transpose()
        })
    }

    fn hook_source_by_token<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<HookSource>> {
        Box::pin(SqlStore::hook_source_by_token(self, token))
    }

    fn rotate_hook_token<'a>(
        &'a self,
        kind: &'a str,
        registry: &'a str,
        previous_until: Option<Millis>,
    ) -> StoreFuture<'a, Option<HookSource>> {
        Box::pin(SqlStore::rotate_hook_token(self, kind, registry, previous_until))
    }

    fn prune_hook_sources(&self, in_use: super::SourcesOf) -> StoreFuture<'_, Vec<(String, String)>> {
        Box::pin(services::prune_hook_sources(&*self.db, in_use))
    }

    fn record_inbound(
        &self,
        events: Vec<NewInboundEvent>,
        dedup_since: Millis,
    ) -> StoreFuture<'_, Vec<(String, Disposition)>> {
        Box::pin(self.writer.record(events, dedup_since))
    }

    fn claim_inbound(&self, now: Millis, lease_until: Millis, limit: i64) -> StoreFuture<'_, Vec<AcceptedEvent>> {
        Box::pin(inbound::claim_inbound(&*self.db, now, lease_until, limit))
    }

    fn subscribers<'a>(&'a self, repository: &'a Repository) -> StoreFuture<'a, Vec<Subscriber>> {
        Box::pin(inbound::subscribers(&*self.db, repository))
    }

    fn complete_matches(&self, matched: Vec<Matched>, now: Millis) -> StoreFuture<'_, Vec<u64>> {
        Box::pin(async move { inbound::complete_matches(&*self.db, &matched, now).await })
    }

    fn complete_inbound<'a>(
        &'a self,
        event_id: &'a str,
        deliveries: Vec<NewDelivery>,
        now: Millis,
        dropped: Option<&'a str>,
    ) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let matched = [Matched {
                event_id: event_id.to_owned(),
                deliveries,
                dropped: dropped.map(str::to_owned),
                note: None,
                decisions: Vec::new(),
            }];
            let added = inbound::complete_matches(&*self.db, &matched, now).await?;
            Ok(added.first().copied().unwrap_or(0))
        })
    }

    fn defer_inbound<'a>(&'a self, event_id: &'a str, until: Millis) -> StoreFuture<'a, ()> {
        Box::pin(inbound::defer_inbound(&*self.db, event_id, until))
    }

    fn claim_deliveries<'a>(&'a self, claim: Claim<'a>) -> StoreFuture<'a, Vec<DueDelivery>> {
        Box::pin(async move {
            let mut due = outbox::claim_deliveries(&*self.db, claim).await?;
            for delivery in &mut due {
                let context = crate::keys::subscription_context(&delivery.service_id);
                delivery.secret = self.unseal("subscriptions", &delivery.service_id, &context, &delivery.secret)?;
                if let Some(previous) = &delivery.previous_secret {
                    delivery.previous_secret =
                        Some(self.unseal("subscriptions", &delivery.service_id, &context, previous)?);
                }
            }
            Ok(due)
        })
    }

    fn finish_attempt(&self, record: AttemptRecord) -> StoreFuture<'_, ()> {
        Box::pin(self.writer.finish(record))
    }

    fn release_claims<'a>(&'a self, worker: Option<&'a str>) -> StoreFuture<'a, ()> {
        Box::pin(outbox::release_claims(&*self.db, worker))
    }

    fn deliveries<'a>(&'a self, service_id: &'a str, limit: i64) -> StoreFuture<'a, Vec<DeliveryRecord>> {
        Box::pin(outbox::deliveries(&*self.db, service_id, limit))
    }

    fn delivery<'a>(&'a self, service_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<DeliveryRecord>> {
        Box::pin(outbox::delivery(&*self.db, service_id, id))
    }

    fn redeliver<'a>(&'a self, service_id: &'a str, id: &'a str, now: Millis) -> StoreFuture<'a, bool> {
        Box::pin(outbox::redeliver(&*self.db, service_id, id, now))
    }

    fn reset_delivered<'a>(&'a self, service_id: &'a str, repository: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(outbox::reset_delivered(&*self.db, service_id, repository))
    }

    fn subscription_secret<'a>(&'a self, service_id: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let sealed = services::subscription_secret(&*self.db, service_id).await?;
            let context = crate::keys::subscription_context(service_id);
            sealed
                .map(|s| self.unseal("subscriptions", service_id, &context, &s))
                .transpose()
        })
    }

    fn subscription_state<'a>(&'a self, service_id: &'a str) -> StoreFuture<'a, Option<SubscriptionState>> {
        Box::pin(services::subscription_state(&*self.db, service_id))
    }

    fn inbound_events(&self, limit: i64) -> StoreFuture<'_, Vec<InboundEvent>> {
        Box::pin(inbound::inbound_events(&*self.db, limit))
    }

    fn inbound_event<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<InboundEvent>> {
        Box::pin(inbound::inbound_event(&*self.db, id))
    }

    fn decisions<'a>(&'a self, event_ids: &'a [String]) -> StoreFuture<'a, Vec<StoredDecision>> {
        Box::pin(decisions::of_events(&*self.db, event_ids))
    }

    fn queue_depth(&self) -> StoreFuture<'_, i64> {
        Box::pin(outbox::queue_depth(&*self.db))
    }

    fn managed_hooks(&self) -> StoreFuture<'_, Vec<ManagedHookRow>> {
        Box::pin(async move {
            let mut hooks = managed::managed_hooks(&*self.db).await?;
            for hook in &mut hooks {
                let context = crate::keys::managed_hook_context(&hook.registry, &hook.scope);
                hook.url = self.unseal("managed_hooks", &hook.scope, &context, &hook.url)?;
            }
            Ok(hooks)
        })
    }

    fn put_managed_hook<'a>(&'a self, hook: &'a ManagedHookRow) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // The URL carries the hook token: sealed like the token itself.
            let mut sealed = hook.clone();
            sealed.url = self.keys.seal(
                &crate::keys::managed_hook_context(&hook.registry, &hook.scope),
                &hook.url,
            );
            managed::put_managed_hook(&*self.db, &sealed).await
        })
    }

    fn delete_managed_hook<'a>(&'a self, registry: &'a str, scope: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(managed::delete_managed_hook(&*self.db, registry, scope))
    }
}

pub(crate) use inbound::record_batch;
pub(crate) use outbox::finish_batch;
