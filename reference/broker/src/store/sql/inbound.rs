//! The event log: hooks recorded by group commit, claimed for matching,
//! completed with their deliveries.

use std::collections::{HashMap, HashSet};

use tagcast_spec::Repository;

use super::super::backend::{Backend, RowRef, Value, placeholders};
use super::super::{
    AcceptedEvent, Disposition, InboundEvent, Matched, Millis, NewInboundEvent, PENDING_TAGS_SQL, SUBSCRIBERS_SQL,
    StoreResult, Subscriber, new_id, now_ms,
};
use crate::inbound::dedup::{Batch, Seen};

const INBOUND_COLUMNS: &str = "id, kind, registry, source_event_id, repository, tag, digest, status, reason, \
     received_at, matched_at, matched";

/// Keys looked up per query: well under both databases' parameter limits.
const KEYS_PER_QUERY: usize = 300;

/// Events inserted per statement (14 parameters each).
const EVENTS_PER_INSERT: usize = 64;

/// Deliveries inserted per statement (8 parameters each).
const DELIVERIES_PER_INSERT: usize = 100;

fn inbound_from(row: RowRef<'_>) -> StoreResult<InboundEvent> {
    Ok(InboundEvent {
        id: row.string("id")?,
        kind: row.string("kind")?,
        registry: row.string("registry")?,
        source_event_id: row.opt_string("source_event_id")?,
        repository: row.opt_string("repository")?,
        tag: row.opt_string("tag")?,
        digest: row.opt_string("digest")?,
        status: row.string("status")?,
        reason: row.opt_string("reason")?,
        received_at: row.int("received_at")?,
        matched_at: row.opt_int("matched_at")?,
        matched: row.opt_int("matched")?,
    })
}

fn accepted_from(row: RowRef<'_>) -> StoreResult<AcceptedEvent> {
    Ok(AcceptedEvent {
        id: row.string("id")?,
        kind: row.string("kind")?,
        registry: row.string("registry")?,
        repository: row.parse("repository")?,
        tag: row.parse("tag")?,
        digest: row.opt_parse_with("digest", tagcast_spec::Digest::parse)?,
        received_at: row.int("received_at")?,
    })
}

/// What the event log holds for the keys of `events`. Event ids (source
/// keys) held by events received before `dedup_since` are released first:
/// they are out of the dedupe window, and the key is unique in the log.
async fn seen<B: Backend>(tx: &mut B::Tx, events: &[&NewInboundEvent], dedup_since: Millis) -> StoreResult<Seen> {
    let keys: Vec<_> = events.iter().map(|e| crate::inbound::dedup::Keys::of(e)).collect();
    let source_keys: Vec<&str> = keys.iter().filter_map(|k| k.source_key.as_deref()).collect();
    for chunk in source_keys.chunks(KEYS_PER_QUERY) {
        let sql = format!(
            "UPDATE inbound_events SET source_key = NULL WHERE source_key IN ({}) AND received_at < $1",
            placeholders(2, chunk.len())
        );
        let mut args: Vec<Value<'_>> = vec![dedup_since.into()];
        args.extend(chunk.iter().map(|k| Value::from(*k)));
        B::execute(tx, &sql, &args).await?;
    }
    let mut seen = Seen::default();
    for (column, wanted) in [
        (
            "source_key",
            keys.iter().filter_map(|k| k.source_key.as_deref()).collect::<Vec<_>>(),
        ),
        (
            "dedup_key",
            keys.iter().filter_map(|k| k.dedup_key.as_deref()).collect::<Vec<_>>(),
        ),
    ] {
        for chunk in wanted.chunks(KEYS_PER_QUERY) {
            let sql = format!(
                "SELECT id, {column} FROM inbound_events WHERE {column} IN ({})",
                placeholders(1, chunk.len())
            );
            let args: Vec<Value<'_>> = chunk.iter().map(|k| Value::from(*k)).collect();
            let rows = B::fetch(tx, &sql, &args).await?;
            let into = if column == "source_key" {
                &mut seen.source_keys
            } else {
                &mut seen.dedup_keys
            };
            for row in rows.iter("inbound_events") {
                into.insert(row.string(column)?, row.string("id")?);
            }
        }
    }
    let channels: HashSet<_> = keys
        .iter()
        .zip(events)
        .filter(|(_, e)| !e.is_index)
        .filter_map(|(k, _)| k.channel.as_ref())
        .collect();
    let channels: Vec<_> = channels.into_iter().collect();
    for chunk in channels.chunks(KEYS_PER_QUERY / 3) {
        let terms: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "(registry = ${} AND repository = ${} AND tag = ${})",
                    3 * i + 1,
                    3 * i + 2,
                    3 * i + 3
                )
            })
            .collect();
        // Only the channel in the WHERE clause, so that the channel index
        // is used (with `status` there, SQLite reads every accepted event);
        // accepted indexes are picked here.
        let sql = format!(
            "SELECT id, registry, repository, tag, digest, status, is_index FROM inbound_events WHERE {}",
            terms.join(" OR ")
        );
        let args: Vec<Value<'_>> = chunk
            .iter()
            .flat_map(|(r, p, t)| [Value::from(r), Value::from(p), Value::from(t)])
            .collect();
        for row in B::fetch(tx, &sql, &args).await?.iter("inbound_events") {
            if row.text("status")? != "accepted" || !row.flag("is_index")? {
                continue;
            }
            seen.indexes.insert(
                (row.string("registry")?, row.string("repository")?, row.string("tag")?),
                row.string("digest")?,
            );
        }
    }
    Ok(seen)
}

/// Records the events of several hooks in one transaction and commits it;
/// returns what became of each event, per hook.
pub(crate) async fn record_batch<B: Backend>(
    db: &B,
    hooks: &[&[NewInboundEvent]],
    dedup_since: Millis,
) -> StoreResult<Vec<Vec<(String, Disposition)>>> {
    let now = now_ms();
    let events: Vec<&NewInboundEvent> = hooks.iter().flat_map(|h| h.iter()).collect();
    let mut tx = db.begin().await?;
    let mut batch = Batch::new(seen::<B>(&mut tx, &events, dedup_since).await?);
    let mut decided = Vec::with_capacity(events.len());
    for event in &events {
        let id = new_id();
        let decision = batch.decide(&id, event);
        decided.push((id, decision));
    }
    let mut inserted = HashSet::with_capacity(events.len());
    for (chunk, decisions) in events.chunks(EVENTS_PER_INSERT).zip(decided.chunks(EVENTS_PER_INSERT)) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", placeholders(1 + 14 * i, 14)))
            .collect();
        let sql = format!(
            "INSERT INTO inbound_events (id, kind, registry, source_event_id, repository, tag, digest, \
             media_type, is_index, status, reason, received_at, source_key, dedup_key) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING id",
            rows.join(", ")
        );
        let mut args = Vec::with_capacity(14 * chunk.len());
        for (event, (id, decision)) in chunk.iter().zip(decisions) {
            let (status, reason) = match &decision.disposition {
                Disposition::Accepted => ("accepted", None),
                Disposition::Ignored(reason) => ("ignored", Some(reason.as_str())),
            };
            args.extend([
                Value::from(id),
                Value::from(&event.kind),
                Value::from(&event.registry),
                Value::from(&event.source_event_id),
                Value::from(&event.repository),
                Value::from(&event.tag),
                Value::from(&event.digest),
                Value::from(&event.media_type),
                Value::from(event.is_index),
                Value::from(status),
                Value::from(reason),
                Value::from(now),
                Value::from(decision.keys.source_key.as_deref()),
                Value::from(decision.keys.dedup_key.as_deref()),
            ]);
        }
        for row in B::fetch(&mut tx, &sql, &args).await?.iter("inbound_events") {
            inserted.insert(row.string("id")?);
        }
    }
    let reason = "duplicate: received concurrently";
    let mut out = Vec::with_capacity(decided.len());
    for (event, (id, decision)) in events.iter().zip(decided) {
        if inserted.contains(&id) {
            out.push((id, decision.disposition));
            continue;
        }
        // Another replica recorded the same event first.
        B::execute(
            &mut tx,
            "INSERT INTO inbound_events (id, kind, registry, source_event_id, repository, tag, digest, \
             media_type, is_index, status, reason, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'ignored', $10, $11)",
            &[
                Value::from(&id),
                Value::from(&event.kind),
                Value::from(&event.registry),
                Value::from(&event.source_event_id),
                Value::from(&event.repository),
                Value::from(&event.tag),
                Value::from(&event.digest),
                Value::from(&event.media_type),
                Value::from(event.is_index),
                Value::from(reason),
                Value::from(now),
            ],
        )
        .await?;
        out.push((id, Disposition::Ignored(reason.to_owned())));
    }
    B::commit(tx).await?;
    let mut out = out.into_iter();
    Ok(hooks.iter().map(|h| out.by_ref().take(h.len()).collect()).collect())
}

pub(super) async fn claim_inbound<B: Backend>(
    db: &B,
    now: Millis,
    lease_until: Millis,
    limit: i64,
) -> StoreResult<Vec<AcceptedEvent>> {
    let sql = format!(
        "UPDATE inbound_events SET claimed_until = $1 WHERE id IN (SELECT id FROM inbound_events \
         WHERE status = 'accepted' AND matched_at IS NULL AND (claimed_until IS NULL OR \
         claimed_until < $2) ORDER BY received_at, id LIMIT $3{}) RETURNING {INBOUND_COLUMNS}",
        B::CLAIM_LOCK
    );
    let mut tx = db.begin().await?;
    let rows = B::fetch(&mut tx, &sql, &[lease_until.into(), now.into(), limit.into()]).await?;
    B::commit(tx).await?;
    let mut events = rows
        .iter("inbound_events")
        .map(accepted_from)
        .collect::<StoreResult<Vec<_>>>()?;
    events.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
    Ok(events)
}

pub(super) async fn subscribers<B: Backend>(db: &B, repository: &Repository) -> StoreResult<Vec<Subscriber>> {
    let repository = repository.to_string();
    let rows = db.read(SUBSCRIBERS_SQL, &[Value::from(&repository)]).await?;
    let pending = db.read(PENDING_TAGS_SQL, &[Value::from(&repository)]).await?;
    let mut pending_by_service: HashMap<&str, Vec<_>> = HashMap::new();
    for row in pending.iter("deliveries") {
        pending_by_service
            .entry(row.text("service_id")?)
            .or_default()
            .push(row.parse("tag")?);
    }
    rows.iter("subscriptions")
        .map(|row| {
            let service_id = row.string("service_id")?;
            Ok(Subscriber {
                pending_tags: pending_by_service.remove(service_id.as_str()).unwrap_or_default(),
                stage: row.parse("stage")?,
                api_requirement: row.parse("api_requirement")?,
                last_tag: row.opt_parse("last_tag")?,
                last_digest: row.opt_parse_with("last_digest", tagcast_spec::Digest::parse)?,
                registry_url: row.opt_string("registry_url")?,
                service_id,
            })
        })
        .collect()
}

pub(super) async fn complete_matches<B: Backend>(db: &B, matched: &[Matched], now: Millis) -> StoreResult<Vec<u64>> {
    let deliveries: Vec<_> = matched
        .iter()
        .flat_map(|m| m.deliveries.iter())
        .map(|d| (d, [d.repository.to_string(), d.tag.to_string(), d.digest.to_string()]))
        .collect();
    let mut added: HashMap<String, u64> = HashMap::new();
    let mut tx = db.begin().await?;
    for chunk in deliveries.chunks(DELIVERIES_PER_INSERT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = 1 + 8 * i;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, 'pending', 0, ${n}, ${n}, ${n})",
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    n = p + 7
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO deliveries (id, event_id, service_id, repository, tag, digest, payload, state, attempts, \
             next_attempt_at, created_at, updated_at) VALUES {} \
             ON CONFLICT (event_id, service_id) DO NOTHING RETURNING id, event_id",
            rows.join(", ")
        );
        let mut args = Vec::with_capacity(8 * chunk.len());
        for (d, [repository, tag, digest]) in chunk {
            args.extend([
                Value::from(&d.id),
                Value::from(&d.event_id),
                Value::from(&d.service_id),
                Value::from(repository),
                Value::from(tag),
                Value::from(digest),
                Value::from(&d.payload),
                Value::from(now),
            ]);
        }
        for row in B::fetch(&mut tx, &sql, &args).await?.iter("deliveries") {
            *added.entry(row.string("event_id")?).or_default() += 1;
        }
    }
    let decided: Vec<(&str, &super::super::NewDecision)> = matched
        .iter()
        .flat_map(|m| m.decisions.iter().map(|d| (m.event_id.as_str(), d)))
        .collect();
    super::decisions::insert::<B>(&mut tx, &decided, now).await?;
    let mut out = Vec::with_capacity(matched.len());
    for m in matched {
        let n = added.get(&m.event_id).copied().unwrap_or(0);
        B::execute(
            &mut tx,
            "UPDATE inbound_events SET matched_at = $2, matched = $3, claimed_until = NULL WHERE id = $1",
            &[
                Value::from(&m.event_id),
                now.into(),
                i64::try_from(n).unwrap_or(i64::MAX).into(),
            ],
        )
        .await?;
        if let Some(note) = &m.note {
            B::execute(
                &mut tx,
                "UPDATE inbound_events SET reason = $2 WHERE id = $1",
                &[Value::from(&m.event_id), Value::from(note)],
            )
            .await?;
        }
        if let Some(reason) = &m.dropped {
            // Dropped after acceptance: no longer a duplicate key, so a
            // genuine re-send is processed again.
            B::execute(
                &mut tx,
                "UPDATE inbound_events SET status = 'ignored', reason = $2, source_key = NULL, \
                 dedup_key = NULL WHERE id = $1",
                &[Value::from(&m.event_id), Value::from(reason)],
            )
            .await?;
        }
        out.push(n);
    }
    B::commit(tx).await?;
    Ok(out)
}

pub(super) async fn defer_inbound<B: Backend>(db: &B, event_id: &str, until: Millis) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    B::execute(
        &mut tx,
        "UPDATE inbound_events SET claimed_until = $2 WHERE id = $1",
        &[event_id.into(), until.into()],
    )
    .await?;
    B::commit(tx).await
}

pub(super) async fn inbound_event<B: Backend>(db: &B, id: &str) -> StoreResult<Option<InboundEvent>> {
    let sql = format!("SELECT {INBOUND_COLUMNS} FROM inbound_events WHERE id = $1");
    let rows = db.read(&sql, &[id.into()]).await?;
    rows.first("inbound_events").map(inbound_from).transpose()
}

pub(super) async fn inbound_events<B: Backend>(db: &B, limit: i64) -> StoreResult<Vec<InboundEvent>> {
    let sql = format!("SELECT {INBOUND_COLUMNS} FROM inbound_events ORDER BY received_at DESC, id DESC LIMIT $1");
    let rows = db.read(&sql, &[limit.into()]).await?;
    rows.iter("inbound_events").map(inbound_from).collect()
}
