//! The queries both stores run, written once. SQLite and PostgreSQL both
//! accept `$N` parameters, `ON CONFLICT`, `RETURNING` and partial indexes,
//! so the only difference is the row lock of a claim
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serializes writers).

/// Implements [`crate::store::Store`] for a store type with a `pool` field.
/// `$claim_lock` is appended to the sub-select that picks rows to claim,
/// `$row_lock` to selects that read a row about to be updated.
macro_rules! impl_store {
    ($store:ty, $db:ty, backend = $backend:literal, claim_lock = $claim_lock:literal, row_lock = $row_lock:literal) => {
        use sqlx::Row as _;

        use $crate::store::{
            Attempt, AttemptRecord, DeliveryRecord, DeliveryState, Disposition, DueDelivery, HookSource, ImageState,
            InboundEvent, Millis, NewDelivery, NewInboundEvent, NewService, Store, StoreError, StoreFuture,
            StoreResult, StoredService, Subscriber, SubscriptionState, new_id, now_ms, random_token,
        };

        type Row = <$db as sqlx::Database>::Row;
        type Tx<'c> = sqlx::Transaction<'c, $db>;

        const INBOUND_COLUMNS: &str = "id, kind, registry, source_event_id, repository, tag, digest, status, reason, \
             received_at, matched_at, matched";
        const DELIVERY_COLUMNS: &str = "id, event_id, service_id, repository, tag, digest, state, attempts, \
             next_attempt_at, last_status, last_error, created_at, updated_at";

        fn service_from(row: &Row) -> StoreResult<StoredService> {
            Ok(StoredService {
                id: row.try_get("id")?,
                document: row.try_get("document")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn hook_source_from(row: &Row) -> StoreResult<HookSource> {
            Ok(HookSource {
                token: row.try_get("token")?,
                kind: row.try_get("kind")?,
                registry: row.try_get("registry")?,
                secret: row.try_get("secret")?,
                api_url: row.try_get("api_url")?,
            })
        }

        fn inbound_from(row: &Row) -> StoreResult<InboundEvent> {
            Ok(InboundEvent {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                registry: row.try_get("registry")?,
                source_event_id: row.try_get("source_event_id")?,
                repository: row.try_get("repository")?,
                tag: row.try_get("tag")?,
                digest: row.try_get("digest")?,
                status: row.try_get("status")?,
                reason: row.try_get("reason")?,
                received_at: row.try_get("received_at")?,
                matched_at: row.try_get("matched_at")?,
                matched: row.try_get("matched")?,
            })
        }

        fn delivery_from(row: &Row) -> StoreResult<DeliveryRecord> {
            Ok(DeliveryRecord {
                id: row.try_get("id")?,
                event_id: row.try_get("event_id")?,
                service_id: row.try_get("service_id")?,
                repository: row.try_get("repository")?,
                tag: row.try_get("tag")?,
                digest: row.try_get("digest")?,
                state: row.try_get("state")?,
                attempts: row.try_get("attempts")?,
                next_attempt_at: row.try_get("next_attempt_at")?,
                last_status: row.try_get("last_status")?,
                last_error: row.try_get("last_error")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                attempt_log: Vec::new(),
            })
        }

        async fn write_subscription(
            tx: &mut Tx<'_>,
            service: &NewService,
            now: Millis,
            replace: bool,
        ) -> StoreResult<()> {
            let Some(sub) = &service.subscription else {
                sqlx::query("DELETE FROM subscriptions WHERE service_id = $1")
                    .bind(&service.id)
                    .execute(&mut **tx)
                    .await?;
                return Ok(());
            };
            if replace {
                sqlx::query(
                    "UPDATE subscriptions SET stage = $2, api_requirement = $3, callback_url = $4, secret = $5, \
                     enabled = 1, disabled_reason = NULL, updated_at = $6 WHERE service_id = $1",
                )
                .bind(&service.id)
                .bind(&sub.stage)
                .bind(&sub.api_requirement)
                .bind(&sub.callback_url)
                .bind(&sub.secret)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO subscriptions (service_id, stage, api_requirement, callback_url, secret, enabled, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6) ON CONFLICT (service_id) DO NOTHING",
            )
            .bind(&service.id)
            .bind(&sub.stage)
            .bind(&sub.api_requirement)
            .bind(&sub.callback_url)
            .bind(&sub.secret)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            let existing: Vec<String> =
                sqlx::query("SELECT repository FROM subscription_images WHERE service_id = $1")
                    .bind(&service.id)
                    .fetch_all(&mut **tx)
                    .await?
                    .iter()
                    .map(|row| row.try_get("repository"))
                    .collect::<Result<_, _>>()?;
            for gone in existing.iter().filter(|r| !sub.images.contains(r)) {
                sqlx::query("DELETE FROM subscription_images WHERE service_id = $1 AND repository = $2")
                    .bind(&service.id)
                    .bind(gone)
                    .execute(&mut **tx)
                    .await?;
            }
            for image in &sub.images {
                sqlx::query(
                    "INSERT INTO subscription_images (service_id, repository) VALUES ($1, $2) \
                     ON CONFLICT (service_id, repository) DO NOTHING",
                )
                .bind(&service.id)
                .bind(image)
                .execute(&mut **tx)
                .await?;
            }
            Ok(())
        }

        /// Whether `candidate` is newer than `current` in its channel; tags
        /// that do not parse or are of another stage do not block.
        fn is_newer(candidate: &str, current: Option<&str>) -> bool {
            let (Ok(candidate), Some(Ok(current))) =
                (tagcast_spec::Tag::parse(candidate), current.map(tagcast_spec::Tag::parse))
            else {
                return true;
            };
            !matches!(
                candidate.channel_cmp(&current),
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            )
        }

        async fn record_one(tx: &mut Tx<'_>, event: &NewInboundEvent, now: Millis) -> StoreResult<(String, Disposition)> {
            let id = new_id();
            let mut disposition = event.disposition.clone();
            let mut source_key = None;
            let mut dedup_key = None;
            if let (Disposition::Accepted, Some(repository), Some(tag), Some(digest)) =
                (&event.disposition, &event.repository, &event.tag, &event.digest)
            {
                source_key = event.source_event_id.as_ref().map(|e| format!("{}\n{}", event.registry, e));
                dedup_key = Some(format!("{}\n{repository}\n{tag}\n{digest}", event.registry));
                if let Some(key) = &source_key {
                    let seen = sqlx::query("SELECT id FROM inbound_events WHERE source_key = $1")
                        .bind(key)
                        .fetch_optional(&mut **tx)
                        .await?;
                    if let Some(row) = seen {
                        let first: String = row.try_get("id")?;
                        disposition = Disposition::Ignored(format!(
                            "duplicate: registry event id {} was received as event {first}",
                            event.source_event_id.as_deref().unwrap_or_default()
                        ));
                    }
                }
                if disposition == Disposition::Accepted {
                    let seen = sqlx::query("SELECT id FROM inbound_events WHERE dedup_key = $1")
                        .bind(dedup_key.as_deref())
                        .fetch_optional(&mut **tx)
                        .await?;
                    if let Some(row) = seen {
                        let first: String = row.try_get("id")?;
                        disposition = Disposition::Ignored(format!(
                            "duplicate: {repository}:{tag}@{digest} was received as event {first}"
                        ));
                    }
                }
                if disposition == Disposition::Accepted && !event.is_index {
                    let index = sqlx::query(
                        "SELECT digest FROM inbound_events WHERE registry = $1 AND repository = $2 AND tag = $3 \
                         AND status = 'accepted' AND is_index = 1",
                    )
                    .bind(&event.registry)
                    .bind(repository)
                    .bind(tag)
                    .fetch_optional(&mut **tx)
                    .await?;
                    if let Some(row) = index {
                        let index: String = row.try_get("digest")?;
                        disposition = Disposition::Ignored(format!(
                            "coalesced: {repository}:{tag} was pushed as the index {index}"
                        ));
                    }
                }
                if disposition != Disposition::Accepted {
                    source_key = None;
                    dedup_key = None;
                }
            }
            let (status, reason) = match &disposition {
                Disposition::Accepted => ("accepted", None),
                Disposition::Ignored(reason) => ("ignored", Some(reason.as_str())),
            };
            let inserted = sqlx::query(
                "INSERT INTO inbound_events (id, kind, registry, source_event_id, repository, tag, digest, \
                 media_type, is_index, status, reason, received_at, source_key, dedup_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(&event.kind)
            .bind(&event.registry)
            .bind(&event.source_event_id)
            .bind(&event.repository)
            .bind(&event.tag)
            .bind(&event.digest)
            .bind(&event.media_type)
            .bind(i64::from(event.is_index))
            .bind(status)
            .bind(reason)
            .bind(now)
            .bind(&source_key)
            .bind(&dedup_key)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                // A concurrent hook recorded the same event first.
                let reason = "duplicate: received concurrently".to_owned();
                sqlx::query(
                    "INSERT INTO inbound_events (id, kind, registry, source_event_id, repository, tag, digest, \
                     media_type, is_index, status, reason, received_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'ignored', $10, $11)",
                )
                .bind(&id)
                .bind(&event.kind)
                .bind(&event.registry)
                .bind(&event.source_event_id)
                .bind(&event.repository)
                .bind(&event.tag)
                .bind(&event.digest)
                .bind(&event.media_type)
                .bind(i64::from(event.is_index))
                .bind(&reason)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                disposition = Disposition::Ignored(reason);
            }
            Ok((id, disposition))
        }

        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn ping(&self) -> StoreFuture<'_, ()> {
                Box::pin(async move {
                    sqlx::query("SELECT 1").execute(&self.pool).await?;
                    Ok(())
                })
            }

            fn setting<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>> {
                Box::pin(async move {
                    let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(row.map(|r| r.try_get("value")).transpose()?)
                })
            }

            fn init_setting<'a>(&'a self, key: &'a str, value: &'a str) -> StoreFuture<'a, String> {
                Box::pin(async move {
                    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                        .bind(key)
                        .bind(value)
                        .execute(&self.pool)
                        .await?;
                    let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
                        .bind(key)
                        .fetch_one(&self.pool)
                        .await?;
                    Ok(row.try_get("value")?)
                })
            }

            fn insert_service(&self, service: NewService) -> StoreFuture<'_, ()> {
                Box::pin(async move {
                    let now = now_ms();
                    let mut tx = self.pool.begin().await?;
                    let inserted = sqlx::query(
                        "INSERT INTO services (id, document, created_at, updated_at) VALUES ($1, $2, $3, $3) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&service.id)
                    .bind(&service.document)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if inserted == 0 {
                        return Err(StoreError::Conflict(format!("service {:?}", service.id)));
                    }
                    write_subscription(&mut tx, &service, now, false).await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn replace_service(&self, service: NewService) -> StoreFuture<'_, bool> {
                Box::pin(async move {
                    let now = now_ms();
                    let mut tx = self.pool.begin().await?;
                    let inserted = sqlx::query(
                        "INSERT INTO services (id, document, created_at, updated_at) VALUES ($1, $2, $3, $3) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&service.id)
                    .bind(&service.document)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if inserted == 0 {
                        sqlx::query("UPDATE services SET document = $2, updated_at = $3 WHERE id = $1")
                            .bind(&service.id)
                            .bind(&service.document)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    write_subscription(&mut tx, &service, now, inserted == 0).await?;
                    tx.commit().await?;
                    Ok(inserted == 1)
                })
            }

            fn delete_service<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await?;
                    for sql in [
                        "DELETE FROM delivery_attempts WHERE delivery_id IN \
                         (SELECT id FROM deliveries WHERE service_id = $1)",
                        "DELETE FROM deliveries WHERE service_id = $1",
                        "DELETE FROM subscription_images WHERE service_id = $1",
                        "DELETE FROM subscriptions WHERE service_id = $1",
                    ] {
                        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                    }
                    let deleted = sqlx::query("DELETE FROM services WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    tx.commit().await?;
                    Ok(deleted > 0)
                })
            }

            fn service<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<StoredService>> {
                Box::pin(async move {
                    let row = sqlx::query("SELECT id, document, created_at, updated_at FROM services WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(service_from).transpose()
                })
            }

            fn services(&self) -> StoreFuture<'_, Vec<StoredService>> {
                Box::pin(async move {
                    let rows = sqlx::query("SELECT id, document, created_at, updated_at FROM services ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(service_from).collect()
                })
            }

            fn hook_source<'a>(
                &'a self,
                kind: &'a str,
                registry: &'a str,
                secret: Option<&'a str>,
                api_url: Option<&'a str>,
            ) -> StoreFuture<'a, HookSource> {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO hook_sources (token, kind, registry, secret, api_url, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, registry) DO NOTHING",
                    )
                    .bind(random_token())
                    .bind(kind)
                    .bind(registry)
                    .bind(secret)
                    .bind(api_url)
                    .bind(now_ms())
                    .execute(&self.pool)
                    .await?;
                    if let Some(api_url) = api_url {
                        sqlx::query("UPDATE hook_sources SET api_url = $3 WHERE kind = $1 AND registry = $2")
                            .bind(kind)
                            .bind(registry)
                            .bind(api_url)
                            .execute(&self.pool)
                            .await?;
                    }
                    self.find_hook_source(kind, registry)
                        .await?
                        .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))
                })
            }

            fn find_hook_source<'a>(&'a self, kind: &'a str, registry: &'a str) -> StoreFuture<'a, Option<HookSource>> {
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT token, kind, registry, secret, api_url FROM hook_sources \
                         WHERE kind = $1 AND registry = $2",
                    )
                    .bind(kind)
                    .bind(registry)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.as_ref().map(hook_source_from).transpose()
                })
            }

            fn hook_source_by_token<'a>(&'a self, token: &'a str) -> StoreFuture<'a, Option<HookSource>> {
                Box::pin(async move {
                    let row = sqlx::query("SELECT token, kind, registry, secret, api_url FROM hook_sources WHERE token = $1")
                        .bind(token)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(hook_source_from).transpose()
                })
            }

            fn record_inbound(&self, events: Vec<NewInboundEvent>) -> StoreFuture<'_, Vec<(String, Disposition)>> {
                Box::pin(async move {
                    let now = now_ms();
                    let mut tx = self.pool.begin().await?;
                    let mut out = Vec::with_capacity(events.len());
                    for event in &events {
                        out.push(record_one(&mut tx, event, now).await?);
                    }
                    tx.commit().await?;
                    Ok(out)
                })
            }

            fn claim_inbound(&self, now: Millis, lease_until: Millis, limit: i64) -> StoreFuture<'_, Vec<InboundEvent>> {
                Box::pin(async move {
                    let sql = format!(
                        "UPDATE inbound_events SET claimed_until = $1 WHERE id IN (SELECT id FROM inbound_events \
                         WHERE status = 'accepted' AND matched_at IS NULL AND (claimed_until IS NULL OR \
                         claimed_until < $2) ORDER BY received_at, id LIMIT $3{}) RETURNING {INBOUND_COLUMNS}",
                        $claim_lock
                    );
                    let rows = sqlx::query(&sql)
                        .bind(lease_until)
                        .bind(now)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                    let mut events = rows.iter().map(inbound_from).collect::<StoreResult<Vec<_>>>()?;
                    events.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
                    Ok(events)
                })
            }

            fn subscribers<'a>(&'a self, repository: &'a str) -> StoreFuture<'a, Vec<Subscriber>> {
                Box::pin(async move {
                    let rows = sqlx::query($crate::store::SUBSCRIBERS_SQL)
                    .bind(repository)
                    .fetch_all(&self.pool)
                    .await?;
                    let pending = sqlx::query($crate::store::PENDING_TAGS_SQL)
                    .bind(repository)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let service_id: String = row.try_get("service_id")?;
                        let mut pending_tags = Vec::new();
                        for p in &pending {
                            if p.try_get::<String, _>("service_id")? == service_id {
                                pending_tags.push(p.try_get("tag")?);
                            }
                        }
                        out.push(Subscriber {
                            service_id,
                            stage: row.try_get("stage")?,
                            api_requirement: row.try_get("api_requirement")?,
                            last_tag: row.try_get("last_tag")?,
                            pending_tags,
                        });
                    }
                    Ok(out)
                })
            }

            fn complete_inbound<'a>(
                &'a self,
                event_id: &'a str,
                deliveries: Vec<NewDelivery>,
                now: Millis,
                dropped: Option<&'a str>,
            ) -> StoreFuture<'a, u64> {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await?;
                    let mut added = 0;
                    for d in &deliveries {
                        added += sqlx::query(
                            "INSERT INTO deliveries (id, event_id, service_id, repository, tag, digest, payload, \
                             state, attempts, next_attempt_at, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $8) \
                             ON CONFLICT (event_id, service_id) DO NOTHING",
                        )
                        .bind(&d.id)
                        .bind(&d.event_id)
                        .bind(&d.service_id)
                        .bind(&d.repository)
                        .bind(&d.tag)
                        .bind(&d.digest)
                        .bind(&d.payload)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    }
                    sqlx::query(
                        "UPDATE inbound_events SET matched_at = $2, matched = $3, claimed_until = NULL WHERE id = $1",
                    )
                    .bind(event_id)
                    .bind(now)
                    .bind(added as i64)
                    .execute(&mut *tx)
                    .await?;
                    if let Some(reason) = dropped {
                        // Dropped after acceptance: no longer a duplicate key,
                        // so a genuine re-send is processed again.
                        sqlx::query(
                            "UPDATE inbound_events SET status = 'ignored', reason = $2, source_key = NULL, \
                             dedup_key = NULL WHERE id = $1",
                        )
                        .bind(event_id)
                        .bind(reason)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(added)
                })
            }

            fn defer_inbound<'a>(&'a self, event_id: &'a str, until: Millis) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query("UPDATE inbound_events SET claimed_until = $2 WHERE id = $1")
                        .bind(event_id)
                        .bind(until)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                })
            }

            fn claim_deliveries<'a>(
                &'a self,
                worker: &'a str,
                now: Millis,
                lease_until: Millis,
                limit: i64,
            ) -> StoreFuture<'a, Vec<DueDelivery>> {
                Box::pin(async move {
                    let sql = format!(
                        "UPDATE deliveries SET claimed_by = $1, claimed_until = $2 WHERE id IN (SELECT id FROM \
                         deliveries WHERE state = 'pending' AND next_attempt_at <= $3 AND (claimed_until IS NULL \
                         OR claimed_until < $3) ORDER BY next_attempt_at, created_at, id LIMIT $4{}) RETURNING id",
                        $claim_lock
                    );
                    let ids: Vec<String> = sqlx::query(&sql)
                        .bind(worker)
                        .bind(lease_until)
                        .bind(now)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?
                        .iter()
                        .map(|r| r.try_get("id"))
                        .collect::<Result<_, _>>()?;
                    let mut out = Vec::with_capacity(ids.len());
                    for id in &ids {
                        let row = sqlx::query(
                            "SELECT d.id, d.service_id, d.repository, d.tag, d.digest, d.payload, d.attempts, \
                             d.schedule_offset, d.manual, d.created_at, s.callback_url, s.secret, s.enabled, i.last_tag \
                             FROM deliveries d JOIN subscriptions s ON s.service_id = d.service_id \
                             LEFT JOIN subscription_images i ON i.service_id = d.service_id \
                             AND i.repository = d.repository WHERE d.id = $1",
                        )
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                        let Some(row) = row else { continue };
                        out.push(DueDelivery {
                            id: row.try_get("id")?,
                            service_id: row.try_get("service_id")?,
                            repository: row.try_get("repository")?,
                            tag: row.try_get("tag")?,
                            digest: row.try_get("digest")?,
                            payload: row.try_get("payload")?,
                            attempts: row.try_get("attempts")?,
                            schedule_offset: row.try_get("schedule_offset")?,
                            manual: row.try_get::<i64, _>("manual")? != 0,
                            created_at: row.try_get("created_at")?,
                            callback_url: row.try_get("callback_url")?,
                            secret: row.try_get("secret")?,
                            enabled: row.try_get::<i64, _>("enabled")? != 0,
                            last_tag: row.try_get("last_tag")?,
                        });
                    }
                    out.sort_by_key(|d| d.created_at);
                    Ok(out)
                })
            }

            fn finish_attempt(&self, record: AttemptRecord) -> StoreFuture<'_, ()> {
                Box::pin(async move {
                    let now = now_ms();
                    let mut tx = self.pool.begin().await?;
                    let sql = format!(
                        "SELECT service_id, repository, tag, digest, attempts FROM deliveries \
                         WHERE id = $1 AND claimed_by = $2{}",
                        $row_lock
                    );
                    let Some(row) = sqlx::query(&sql)
                        .bind(&record.delivery_id)
                        .bind(&record.worker)
                        .fetch_optional(&mut *tx)
                        .await?
                    else {
                        // The claim was lost (lease expired, service deleted): another worker owns it now.
                        return Ok(());
                    };
                    let service_id: String = row.try_get("service_id")?;
                    let repository: String = row.try_get("repository")?;
                    let tag: String = row.try_get("tag")?;
                    let digest: String = row.try_get("digest")?;
                    let mut attempts: i64 = row.try_get("attempts")?;
                    if record.attempted {
                        attempts += 1;
                        sqlx::query(
                            "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status, \
                             error) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                        )
                        .bind(&record.delivery_id)
                        .bind(attempts)
                        .bind(record.started_at)
                        .bind(record.duration_ms)
                        .bind(record.status)
                        .bind(&record.error)
                        .execute(&mut *tx)
                        .await?;
                    }
                    sqlx::query(
                        "UPDATE deliveries SET state = $2, attempts = $3, next_attempt_at = $4, last_status = $5, \
                         last_error = $6, claimed_by = NULL, claimed_until = NULL, updated_at = $7 WHERE id = $1",
                    )
                    .bind(&record.delivery_id)
                    .bind(record.state.as_str())
                    .bind(attempts)
                    .bind(record.next_attempt_at)
                    .bind(record.status)
                    .bind(&record.error)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    if record.state == DeliveryState::Succeeded {
                        let sql = format!(
                            "SELECT last_tag FROM subscription_images WHERE service_id = $1 AND repository = $2{}",
                            $row_lock
                        );
                        let current: Option<Option<String>> = sqlx::query(&sql)
                            .bind(&service_id)
                            .bind(&repository)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|r| r.try_get("last_tag"))
                            .transpose()?;
                        if let Some(current) = current {
                            if is_newer(&tag, current.as_deref()) {
                                sqlx::query(
                                    "UPDATE subscription_images SET last_tag = $3, last_digest = $4, \
                                     last_delivered_at = $5 WHERE service_id = $1 AND repository = $2",
                                )
                                .bind(&service_id)
                                .bind(&repository)
                                .bind(&tag)
                                .bind(&digest)
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                            }
                        }
                    }
                    if let Some(reason) = &record.disable_subscription {
                        sqlx::query(
                            "UPDATE subscriptions SET enabled = 0, disabled_reason = $2, updated_at = $3 \
                             WHERE service_id = $1",
                        )
                        .bind(&service_id)
                        .bind(reason)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn release_claims<'a>(&'a self, worker: Option<&'a str>) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    match worker {
                        Some(worker) => {
                            sqlx::query(
                                "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1",
                            )
                            .bind(worker)
                            .execute(&self.pool)
                            .await?;
                        }
                        None => {
                            sqlx::query(
                                "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL \
                                 WHERE claimed_by IS NOT NULL",
                            )
                            .execute(&self.pool)
                            .await?;
                            sqlx::query(
                                "UPDATE inbound_events SET claimed_until = NULL WHERE claimed_until IS NOT NULL",
                            )
                            .execute(&self.pool)
                            .await?;
                        }
                    }
                    Ok(())
                })
            }

            fn deliveries<'a>(&'a self, service_id: &'a str, limit: i64) -> StoreFuture<'a, Vec<DeliveryRecord>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE service_id = $1 \
                         ORDER BY created_at DESC, id DESC LIMIT $2"
                    );
                    let rows = sqlx::query(&sql).bind(service_id).bind(limit).fetch_all(&self.pool).await?;
                    rows.iter().map(delivery_from).collect()
                })
            }

            fn delivery<'a>(&'a self, service_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<DeliveryRecord>> {
                Box::pin(async move {
                    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE service_id = $1 AND id = $2");
                    let Some(row) = sqlx::query(&sql).bind(service_id).bind(id).fetch_optional(&self.pool).await?
                    else {
                        return Ok(None);
                    };
                    let mut delivery = delivery_from(&row)?;
                    let attempts = sqlx::query(
                        "SELECT attempt, started_at, duration_ms, status, error FROM delivery_attempts \
                         WHERE delivery_id = $1 ORDER BY attempt",
                    )
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?;
                    for a in &attempts {
                        delivery.attempt_log.push(Attempt {
                            attempt: a.try_get("attempt")?,
                            started_at: a.try_get("started_at")?,
                            duration_ms: a.try_get("duration_ms")?,
                            status: a.try_get("status")?,
                            error: a.try_get("error")?,
                        });
                    }
                    Ok(Some(delivery))
                })
            }

            fn redeliver<'a>(&'a self, service_id: &'a str, id: &'a str, now: Millis) -> StoreFuture<'a, bool> {
                Box::pin(async move {
                    let updated = sqlx::query(
                        "UPDATE deliveries SET state = 'pending', next_attempt_at = $3, manual = 1, \
                         schedule_offset = attempts, claimed_by = NULL, claimed_until = NULL, updated_at = $3 \
                         WHERE service_id = $1 AND id = $2",
                    )
                    .bind(service_id)
                    .bind(id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    Ok(updated > 0)
                })
            }

            fn subscription_secret<'a>(&'a self, service_id: &'a str) -> StoreFuture<'a, Option<String>> {
                Box::pin(async move {
                    let row = sqlx::query("SELECT secret FROM subscriptions WHERE service_id = $1")
                        .bind(service_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(row.map(|r| r.try_get("secret")).transpose()?)
                })
            }

            fn subscription_state<'a>(&'a self, service_id: &'a str) -> StoreFuture<'a, Option<SubscriptionState>> {
                Box::pin(async move {
                    let Some(row) =
                        sqlx::query("SELECT enabled, disabled_reason FROM subscriptions WHERE service_id = $1")
                            .bind(service_id)
                            .fetch_optional(&self.pool)
                            .await?
                    else {
                        return Ok(None);
                    };
                    let images = sqlx::query(
                        "SELECT repository, last_tag, last_digest, last_delivered_at FROM subscription_images \
                         WHERE service_id = $1 ORDER BY repository",
                    )
                    .bind(service_id)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(ImageState {
                            repository: r.try_get("repository")?,
                            last_tag: r.try_get("last_tag")?,
                            last_digest: r.try_get("last_digest")?,
                            last_delivered_at: r.try_get("last_delivered_at")?,
                        })
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                    let counts = sqlx::query(
                        "SELECT state, COUNT(*) AS n FROM deliveries WHERE service_id = $1 GROUP BY state \
                         ORDER BY state",
                    )
                    .bind(service_id)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
                    .collect::<StoreResult<Vec<_>>>()?;
                    Ok(Some(SubscriptionState {
                        enabled: row.try_get::<i64, _>("enabled")? != 0,
                        disabled_reason: row.try_get("disabled_reason")?,
                        images,
                        counts,
                    }))
                })
            }

            fn inbound_events(&self, limit: i64) -> StoreFuture<'_, Vec<InboundEvent>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {INBOUND_COLUMNS} FROM inbound_events ORDER BY received_at DESC, id DESC LIMIT $1"
                    );
                    let rows = sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await?;
                    rows.iter().map(inbound_from).collect()
                })
            }

            fn queue_depth(&self) -> StoreFuture<'_, i64> {
                Box::pin(async move {
                    let deliveries: i64 =
                        sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'pending'")
                            .fetch_one(&self.pool)
                            .await?
                            .try_get("n")?;
                    let events: i64 = sqlx::query(
                        "SELECT COUNT(*) AS n FROM inbound_events WHERE status = 'accepted' AND matched_at IS NULL",
                    )
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("n")?;
                    Ok(deliveries + events)
                })
            }
        }
    };
}

pub(crate) use impl_store;

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
