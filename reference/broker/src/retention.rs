//! The periodic prune (issue 11, finding 6): settled inbound events older
//! than `retain-events` and finished deliveries (with their attempts) older
//! than `retain-deliveries` are removed, so that the database of a busy
//! broker stops growing. Pending work and the last delivered tag of each
//! channel are never touched ([`crate::store::Store::prune`]). An event is
//! kept at least as long as the dedupe window, which it serves.

use std::time::Duration;

use tokio::sync::watch;

use crate::AppState;
use crate::store::{Millis, Pruned, StoreResult, now_ms};

/// How often the prune runs.
pub const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Runs until `shutdown` turns true: one prune at start, then every [`PRUNE_EVERY`].
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    if state.config.retain_events.is_none() && state.config.retain_deliveries.is_none() {
        return;
    }
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(err) = prune_once(&state, now_ms()).await {
            tracing::error!(error = %err, "pruning old events and deliveries failed");
        }
        tokio::select! {
            () = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One prune as of `now`.
///
/// # Errors
///
/// The store's error.
pub async fn prune_once(state: &AppState, now: Millis) -> StoreResult<Pruned> {
    let config = &state.config;
    let before = |keep: Option<Duration>| keep.map_or(Millis::MIN, |keep| now.saturating_sub(millis(keep)));
    let events_before = before(config.retain_events.map(|keep| keep.max(config.dedup_window)));
    let deliveries_before = before(config.retain_deliveries);
    let pruned = state.store.prune(events_before, deliveries_before).await?;
    for (what, n) in [
        ("events", pruned.events),
        ("deliveries", pruned.deliveries),
        ("attempts", pruned.attempts),
    ] {
        state.metrics.pruned(what, n);
    }
    if pruned != Pruned::default() {
        tracing::info!(
            events = pruned.events,
            deliveries = pruned.deliveries,
            attempts = pruned.attempts,
            "pruned old events and deliveries"
        );
    }
    Ok(pruned)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
