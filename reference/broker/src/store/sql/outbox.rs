//! The outbox: claims of due deliveries (fair per subscriber), attempts
//! recorded by group commit, the delivery log.

use std::collections::HashMap;

use tagcast_spec::Tag;

use super::super::backend::{Backend, RowRef, Value, placeholders};
use super::super::{
    Attempt, AttemptRecord, Claim, DeliveryRecord, DeliveryState, DueDelivery, Millis, NewerPending, StoreResult,
    now_ms,
};
use crate::matching::is_newer;

const DELIVERY_COLUMNS: &str = "id, event_id, service_id, repository, tag, digest, state, attempts, \
     next_attempt_at, last_status, last_error, created_at, updated_at";

/// Due deliveries a claim looks at, per delivery it may claim: enough for
/// the per-subscriber cap to pass over a few busy subscribers.
const CANDIDATES_PER_CLAIM: i64 = 4;

fn delivery_from(row: RowRef<'_>) -> StoreResult<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: row.string("id")?,
        event_id: row.string("event_id")?,
        service_id: row.string("service_id")?,
        repository: row.string("repository")?,
        tag: row.string("tag")?,
        digest: row.string("digest")?,
        state: row.string("state")?,
        attempts: row.int("attempts")?,
        next_attempt_at: row.opt_int("next_attempt_at")?,
        last_status: row.opt_int("last_status")?,
        last_error: row.opt_string("last_error")?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
        attempt_log: Vec::new(),
    })
}

fn due_from(row: RowRef<'_>) -> StoreResult<DueDelivery> {
    Ok(DueDelivery {
        id: row.string("id")?,
        service_id: row.string("service_id")?,
        repository: row.parse("repository")?,
        tag: row.parse("tag")?,
        digest: row.parse_with("digest", tagcast_spec::Digest::parse)?,
        payload: row.string("payload")?,
        attempts: row.int("attempts")?,
        schedule_offset: row.int("schedule_offset")?,
        manual: row.flag("manual")?,
        created_at: row.int("created_at")?,
        callback_url: row.string("callback_url")?,
        secret: row.string("secret")?,
        previous_secret: row.opt_string("previous_secret")?,
        enabled: row.flag("enabled")?,
        last_tag: row.opt_parse("last_tag")?,
        last_status: row.opt_int("last_status")?,
        newer_pending: None,
    })
}

/// A subscriber's deliveries in flight: claimed, the lease not expired
/// (index `deliveries_in_flight`).
const IN_FLIGHT: &str = "(SELECT COUNT(*) FROM deliveries f WHERE f.service_id = d.service_id \
     AND f.claimed_by IS NOT NULL AND f.claimed_until >= $3)";

pub(super) async fn claim_deliveries<B: Backend>(db: &B, claim: Claim<'_>) -> StoreResult<Vec<DueDelivery>> {
    // Candidates: the oldest due deliveries of subscribers below their cap;
    // ranked per subscriber so that one claim does not take a subscriber
    // past its cap either.
    let sql = format!(
        "WITH candidates AS (SELECT d.id, d.service_id, d.next_attempt_at, {IN_FLIGHT} AS in_flight \
         FROM deliveries d WHERE d.state = 'pending' AND d.next_attempt_at <= $3 \
         AND (d.claimed_until IS NULL OR d.claimed_until < $3) AND {IN_FLIGHT} < $5 \
         ORDER BY d.next_attempt_at, d.id LIMIT $6), \
         ranked AS (SELECT id, in_flight + ROW_NUMBER() OVER (PARTITION BY service_id \
         ORDER BY next_attempt_at, id) AS slot FROM candidates) \
         UPDATE deliveries SET claimed_by = $1, claimed_until = $2 WHERE id IN (SELECT id FROM deliveries \
         WHERE id IN (SELECT id FROM ranked WHERE slot <= $5) \
         AND (claimed_until IS NULL OR claimed_until < $3) ORDER BY next_attempt_at, id LIMIT $4{}) RETURNING id",
        B::CLAIM_LOCK
    );
    let mut tx = db.begin().await?;
    let claimed = B::fetch(
        &mut tx,
        &sql,
        &[
            claim.worker.into(),
            claim.lease_until.into(),
            claim.now.into(),
            claim.limit.into(),
            claim.per_subscriber.max(1).into(),
            claim.limit.saturating_mul(CANDIDATES_PER_CLAIM).into(),
        ],
    )
    .await?;
    let ids = claimed
        .iter("deliveries")
        .map(|r| r.string("id"))
        .collect::<StoreResult<Vec<_>>>()?;
    if ids.is_empty() {
        B::commit(tx).await?;
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT d.id, d.service_id, d.repository, d.tag, d.digest, d.payload, d.attempts, \
         d.schedule_offset, d.manual, d.created_at, d.last_status, s.callback_url, s.secret, s.enabled, i.last_tag, \
         CASE WHEN s.previous_secret_until > ${} THEN s.previous_secret END AS previous_secret \
         FROM deliveries d JOIN subscriptions s ON s.service_id = d.service_id \
         LEFT JOIN subscription_images i ON i.service_id = d.service_id \
         AND i.repository = d.repository WHERE d.id IN ({})",
        ids.len() + 1,
        placeholders(1, ids.len())
    );
    let args: Vec<Value<'_>> = ids.iter().map(Value::from).collect();
    let mut with_now = args.clone();
    with_now.push(claim.now.into());
    let rows = B::fetch(&mut tx, &sql, &with_now).await?;
    let mut out = rows.iter("deliveries").map(due_from).collect::<StoreResult<Vec<_>>>()?;
    // The other pending deliveries of the same images to the same
    // subscribers: an older tag waits for a newer one's outcome.
    let sql = format!(
        "SELECT d.id, o.tag, o.next_attempt_at, o.claimed_until FROM deliveries d JOIN deliveries o \
         ON o.service_id = d.service_id AND o.repository = d.repository AND o.state = 'pending' \
         AND o.id <> d.id WHERE d.id IN ({})",
        placeholders(1, ids.len())
    );
    let others = B::fetch(&mut tx, &sql, &args).await?;
    B::commit(tx).await?;
    let mut pending: HashMap<String, Vec<NewerPending>> = HashMap::new();
    for row in others.iter("deliveries") {
        // A tag that does not decode is a corrupt row, as everywhere else.
        let tag: Tag = row.parse("tag")?;
        // In flight: it may end any moment; else at its next attempt.
        let in_flight = row.opt_int("claimed_until")?.is_some_and(|until| until >= claim.now);
        let settles_at = match row.opt_int("next_attempt_at")? {
            Some(next) if !in_flight => next.max(claim.now),
            _ => claim.now,
        };
        pending
            .entry(row.string("id")?)
            .or_default()
            .push(NewerPending { tag, settles_at });
    }
    for due in &mut out {
        due.newer_pending = pending.remove(&due.id).and_then(|others| {
            others
                .into_iter()
                .filter(|o| o.tag.channel_cmp(&due.tag) == Some(std::cmp::Ordering::Greater))
                .min_by_key(|o| o.settles_at)
        });
    }
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(out)
}

/// Records the outcomes of several attempts in one transaction and commits it.
pub(crate) async fn finish_batch<B: Backend>(db: &B, records: &[&AttemptRecord]) -> StoreResult<()> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    for record in records {
        finish_one::<B>(&mut tx, record, now).await?;
    }
    B::commit(tx).await
}

async fn finish_one<B: Backend>(tx: &mut B::Tx, record: &AttemptRecord, now: Millis) -> StoreResult<()> {
    let sql = format!(
        "SELECT id, service_id, repository, tag, digest, attempts FROM deliveries \
         WHERE id = $1 AND claimed_by = $2{}",
        B::ROW_LOCK
    );
    let rows = B::fetch(tx, &sql, &[(&record.delivery_id).into(), (&record.worker).into()]).await?;
    let Some(row) = rows.first("deliveries") else {
        // The claim was lost (lease expired, service deleted): another worker owns it now.
        return Ok(());
    };
    let service_id = row.text("service_id")?;
    let repository = row.text("repository")?;
    let tag: Tag = row.parse("tag")?;
    let digest = row.text("digest")?;
    let mut attempts = row.int("attempts")?;
    if record.attempted {
        attempts += 1;
        B::execute(
            tx,
            "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status, error) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                (&record.delivery_id).into(),
                attempts.into(),
                record.started_at.into(),
                record.duration_ms.into(),
                record.status.into(),
                (&record.error).into(),
            ],
        )
        .await?;
    }
    B::execute(
        tx,
        "UPDATE deliveries SET state = $2, attempts = $3, next_attempt_at = $4, last_status = $5, \
         last_error = $6, claimed_by = NULL, claimed_until = NULL, updated_at = $7 WHERE id = $1",
        &[
            (&record.delivery_id).into(),
            record.state.as_str().into(),
            attempts.into(),
            record.next_attempt_at.into(),
            record.status.into(),
            (&record.error).into(),
            now.into(),
        ],
    )
    .await?;
    if record.state == DeliveryState::Succeeded {
        let sql = format!(
            "SELECT service_id, last_tag FROM subscription_images WHERE service_id = $1 AND repository = $2{}",
            B::ROW_LOCK
        );
        let images = B::fetch(tx, &sql, &[service_id.into(), repository.into()]).await?;
        if let Some(image) = images.first("subscription_images") {
            let current: Option<Tag> = image.opt_parse("last_tag")?;
            if is_newer(&tag, current.as_ref()) {
                let tag = tag.to_string();
                B::execute(
                    tx,
                    "UPDATE subscription_images SET last_tag = $3, last_digest = $4, last_delivered_at = $5 \
                     WHERE service_id = $1 AND repository = $2",
                    &[
                        service_id.into(),
                        repository.into(),
                        tag.as_str().into(),
                        digest.into(),
                        now.into(),
                    ],
                )
                .await?;
            }
        }
    }
    if let Some(reason) = &record.disable_subscription {
        B::execute(
            tx,
            "UPDATE subscriptions SET enabled = 0, disabled_reason = $2, updated_at = $3 WHERE service_id = $1",
            &[service_id.into(), reason.into(), now.into()],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn release_claims<B: Backend>(db: &B, worker: Option<&str>) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    match worker {
        Some(worker) => {
            B::execute(
                &mut tx,
                "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1",
                &[worker.into()],
            )
            .await?;
        }
        None => {
            B::execute(
                &mut tx,
                "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by IS NOT NULL",
                &[],
            )
            .await?;
            B::execute(
                &mut tx,
                "UPDATE inbound_events SET claimed_until = NULL WHERE claimed_until IS NOT NULL",
                &[],
            )
            .await?;
        }
    }
    B::commit(tx).await
}

pub(super) async fn deliveries<B: Backend>(db: &B, service_id: &str, limit: i64) -> StoreResult<Vec<DeliveryRecord>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE service_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    let rows = db.read(&sql, &[service_id.into(), limit.into()]).await?;
    rows.iter("deliveries").map(delivery_from).collect()
}

pub(super) async fn delivery<B: Backend>(db: &B, service_id: &str, id: &str) -> StoreResult<Option<DeliveryRecord>> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE service_id = $1 AND id = $2");
    let rows = db.read(&sql, &[service_id.into(), id.into()]).await?;
    let Some(row) = rows.first("deliveries") else {
        return Ok(None);
    };
    let mut delivery = delivery_from(row)?;
    let attempts = db
        .read(
            "SELECT delivery_id, attempt, started_at, duration_ms, status, error FROM delivery_attempts \
             WHERE delivery_id = $1 ORDER BY attempt",
            &[id.into()],
        )
        .await?;
    for a in attempts.iter("delivery_attempts") {
        delivery.attempt_log.push(Attempt {
            attempt: a.int("attempt")?,
            started_at: a.int("started_at")?,
            duration_ms: a.int("duration_ms")?,
            status: a.opt_int("status")?,
            error: a.opt_string("error")?,
        });
    }
    Ok(Some(delivery))
}

pub(super) async fn redeliver<B: Backend>(db: &B, service_id: &str, id: &str, now: Millis) -> StoreResult<bool> {
    let mut tx = db.begin().await?;
    let updated = B::execute(
        &mut tx,
        "UPDATE deliveries SET state = 'pending', next_attempt_at = $3, manual = 1, \
         schedule_offset = attempts, claimed_by = NULL, claimed_until = NULL, updated_at = $3 \
         WHERE service_id = $1 AND id = $2",
        &[service_id.into(), id.into(), now.into()],
    )
    .await?;
    B::commit(tx).await?;
    Ok(updated > 0)
}

pub(super) async fn reset_delivered<B: Backend>(db: &B, service_id: &str, repository: &str) -> StoreResult<bool> {
    let mut tx = db.begin().await?;
    let updated = B::execute(
        &mut tx,
        "UPDATE subscription_images SET last_tag = NULL, last_digest = NULL, last_delivered_at = NULL \
         WHERE service_id = $1 AND repository = $2",
        &[service_id.into(), repository.into()],
    )
    .await?;
    B::commit(tx).await?;
    Ok(updated > 0)
}

pub(super) async fn queue_depth<B: Backend>(db: &B) -> StoreResult<i64> {
    let rows = db
        .read(
            "SELECT 'deliveries' AS what, COUNT(*) AS n FROM deliveries WHERE state = 'pending' \
             UNION ALL SELECT 'events' AS what, COUNT(*) AS n FROM inbound_events \
             WHERE status = 'accepted' AND matched_at IS NULL",
            &[],
        )
        .await?;
    let counts: HashMap<String, i64> = rows
        .iter("deliveries")
        .map(|r| Ok((r.string("what")?, r.int("n")?)))
        .collect::<StoreResult<_>>()?;
    Ok(counts.values().sum())
}
