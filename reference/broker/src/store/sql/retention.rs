//! Retention (issue 11, finding 6): what the broker forgets, and when.
//! Only finished work goes: a pending delivery, an event still to match or
//! one a kept delivery points at, and the per-image last-delivered state
//! (`subscription_images`, what the update rule reads) are never pruned.

use super::super::backend::Backend;
use super::super::{Millis, Pruned, StoreResult};

/// The states a delivery never leaves.
const FINISHED: &str = "('succeeded', 'failed', 'dead', 'skipped')";

pub(super) async fn prune<B: Backend>(db: &B, events_before: Millis, deliveries_before: Millis) -> StoreResult<Pruned> {
    let mut tx = db.begin().await?;
    let old = format!("SELECT id FROM deliveries WHERE state IN {FINISHED} AND updated_at < $1");
    let attempts = B::execute(
        &mut tx,
        &format!("DELETE FROM delivery_attempts WHERE delivery_id IN ({old})"),
        &[deliveries_before.into()],
    )
    .await?;
    let deliveries = B::execute(
        &mut tx,
        &format!("DELETE FROM deliveries WHERE state IN {FINISHED} AND updated_at < $1"),
        &[deliveries_before.into()],
    )
    .await?;
    // Settled events only: ignored ones, and accepted ones matched (or
    // dropped); never one a remaining delivery references.
    let events = B::execute(
        &mut tx,
        "DELETE FROM inbound_events WHERE received_at < $1 \
         AND (status <> 'accepted' OR matched_at IS NOT NULL) \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = inbound_events.id)",
        &[events_before.into()],
    )
    .await?;
    B::commit(tx).await?;
    Ok(Pruned {
        events,
        deliveries,
        attempts,
    })
}
