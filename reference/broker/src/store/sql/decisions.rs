//! The decision trail (issue 14, item 1): what matching decided for each
//! event and subscriber, written with the event's deliveries and read by
//! the event log, the explain route and the subscription status.

use chrono::{TimeZone, Utc};
use tagcast_spec::delivery::Decision;

use super::super::backend::{Backend, RowRef, Value, placeholders};
use super::super::{Millis, NewDecision, StoreResult, StoredDecision};

const COLUMNS: &str = "event_id, service_id, repository, tag, decision, reason, delivery_id, decided_at";

/// Rows per multi-row insert: 8 values each, well under both databases'
/// parameter limits.
const PER_INSERT: usize = 100;

/// Event ids per read.
const IDS_PER_QUERY: usize = 300;

/// Writes the decisions of one batch inside the caller's transaction.
pub(super) async fn insert<B: Backend>(
    tx: &mut B::Tx,
    decisions: &[(&str, &NewDecision)],
    now: Millis,
) -> StoreResult<()> {
    for chunk in decisions.chunks(PER_INSERT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", placeholders(1 + 8 * i, 8)))
            .collect();
        let sql = format!(
            "INSERT INTO decisions ({COLUMNS}) VALUES {} ON CONFLICT (event_id, service_id) DO NOTHING",
            rows.join(", ")
        );
        let text: Vec<[String; 2]> = chunk
            .iter()
            .map(|(_, d)| [d.repository.to_string(), d.tag.to_string()])
            .collect();
        let mut args = Vec::with_capacity(8 * chunk.len());
        for ((event_id, d), [repository, tag]) in chunk.iter().zip(&text) {
            args.extend([
                Value::from(*event_id),
                Value::from(&d.service_id),
                Value::from(repository),
                Value::from(tag),
                Value::from(d.kind.as_str()),
                Value::from(&d.reason),
                Value::from(&d.delivery_id),
                Value::from(now),
            ]);
        }
        B::execute(tx, &sql, &args).await?;
    }
    Ok(())
}

fn decision_from(row: &RowRef<'_>) -> StoreResult<StoredDecision> {
    let decided_at = row.int("decided_at")?;
    Ok(StoredDecision {
        service_id: row.string("service_id")?,
        repository: row.parse("repository")?,
        decision: Decision {
            event_id: row.string("event_id")?,
            tag: row.parse("tag")?,
            decision: row.parse("decision")?,
            reason: row.string("reason")?,
            delivery_id: row.opt_string("delivery_id")?,
            decided_at: Utc
                .timestamp_millis_opt(decided_at)
                .single()
                .ok_or_else(|| row.corrupt("decided_at", format!("{decided_at} is not a time")))?,
        },
    })
}

/// The decisions of `event_ids`, by event, then subscriber.
pub(super) async fn of_events<B: Backend>(db: &B, event_ids: &[String]) -> StoreResult<Vec<StoredDecision>> {
    let mut out = Vec::new();
    for chunk in event_ids.chunks(IDS_PER_QUERY) {
        let sql = format!(
            "SELECT {COLUMNS} FROM decisions WHERE event_id IN ({}) ORDER BY event_id, service_id",
            placeholders(1, chunk.len())
        );
        let args: Vec<Value<'_>> = chunk.iter().map(Value::from).collect();
        let rows = db.read(&sql, &args).await?;
        for row in rows.iter("decisions") {
            out.push(decision_from(&row)?);
        }
    }
    Ok(out)
}

/// The latest decision for one subscriber and image (index
/// `decisions_subscriber`).
pub(super) async fn latest<B: Backend>(db: &B, service_id: &str, repository: &str) -> StoreResult<Option<Decision>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM decisions WHERE service_id = $1 AND repository = $2 \
         ORDER BY decided_at DESC, event_id DESC LIMIT 1"
    );
    let rows = db.read(&sql, &[service_id.into(), repository.into()]).await?;
    rows.first("decisions")
        .map(|row| decision_from(&row).map(|d| d.decision))
        .transpose()
}
