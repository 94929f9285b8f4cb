//! The worker: applies the queued events one at a time, unless on hold.
//!
//! Events are re-checked against the update rule when their turn comes
//! (something newer may have been applied meanwhile), and of several queued
//! updates for one image only the newest is applied; the others are
//! recorded as superseded. A held deployer keeps its queue; `release`
//! applies the newest update per image.

use std::cmp::Ordering;

use tagcast_spec::{CloudEvent, ImagePublished, Tag};
use tokio::sync::watch;

use crate::AppState;
use crate::apply::Update;
use crate::store::{Outcome, StoreError, entry};

/// The [`Update`] an event asks for, given what is deployed.
pub fn update_of(event: &CloudEvent<ImagePublished>, applied_tag: Option<&str>) -> Update {
    let data = &event.data;
    Update {
        event_id: event.id.clone(),
        image: data.image.clone(),
        tag: data.tag,
        tag_text: data.tag.to_string(),
        digest: data.digest.clone(),
        reference: data.reference.to_string(),
        stage: data.stage,
        api_version: data.api_version.canonical(),
        previous_tag: applied_tag
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .or_else(|| data.previous_tag.map(|t| t.to_string())),
    }
}

/// Applies every queued event now, unless on hold. Returns how many events
/// were closed (applied, refused, superseded or failed).
///
/// # Errors
///
/// [`StoreError`] when the state cannot be read or written; the events
/// stay queued.
pub async fn run_pending(state: &AppState) -> Result<usize, StoreError> {
    let store = &state.store;
    if store.hold().await?.held {
        return Ok(0);
    }
    let pending = store.pending().await?;
    let mut events = Vec::with_capacity(pending.len());
    for p in pending {
        match serde_json::from_slice::<CloudEvent<ImagePublished>>(&p.body) {
            Ok(event) => events.push(event),
            Err(err) => {
                // Cannot happen for bodies this version accepted; close it
                // rather than retry forever.
                let line = entry(
                    &p.webhook_id,
                    "",
                    "",
                    None,
                    Outcome::Failed,
                    format!("stored event unreadable: {err}"),
                );
                state.metrics.update(line.outcome);
                store.finish(&line).await?;
            }
        }
    }
    let mut closed = 0;
    for (i, event) in events.iter().enumerate() {
        let data = &event.data;
        let image = data.image.to_string();
        let tag = data.tag.to_string();
        let digest = data.digest.to_string();
        let close = |outcome, reason: String| entry(&event.id, &image, &tag, Some(&digest), outcome, reason);

        if let Some(newer) = events[i + 1..].iter().find(|later| {
            later.data.image == data.image && later.data.tag.channel_cmp(&data.tag) == Some(Ordering::Greater)
        }) {
            let line = close(
                Outcome::Superseded,
                format!("newer tag {} queued (event {})", newer.data.tag, newer.id),
            );
            state.metrics.update(line.outcome);
            store.finish(&line).await?;
            closed += 1;
            continue;
        }

        let applied = store.applied(&image).await?;
        let current = applied.as_ref().and_then(|a| Tag::parse(&a.tag).ok());
        if let Err(why) = state.config.policy.check(current.as_ref(), &data.tag) {
            let line = close(Outcome::Refused, format!("not an update: {why}"));
            state.metrics.update(line.outcome);
            store.finish(&line).await?;
            closed += 1;
            continue;
        }
        // A hold set while this batch ran stops before the next upgrade.
        if store.hold().await?.held {
            break;
        }

        let update = update_of(event, applied.as_ref().map(|a| a.tag.as_str()));
        tracing::info!(event = %event, mode = state.config.applier.name(), "applying");
        let line = match state.config.applier.apply(&update).await {
            Ok(detail) => {
                tracing::info!(event = %event, "applied: {detail}");
                close(Outcome::Applied, detail)
            }
            Err(err) => {
                tracing::error!(event = %event, "apply failed: {err}");
                close(Outcome::Failed, err.to_string())
            }
        };
        state.metrics.update(line.outcome);
        store.finish(&line).await?;
        closed += 1;
    }
    Ok(closed)
}

/// Runs until `stop` turns true: on every wake-up (a new event) and every
/// poll interval (a release by another process), applies what is queued.
/// An upgrade in progress is finished before stopping.
pub(crate) async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(err) = run_pending(&state).await {
            tracing::error!("worker: {err}");
        }
        tokio::select! {
            () = state.wake.notified() => {}
            () = tokio::time::sleep(state.config.poll_interval) => {}
            _ = stop.changed() => {}
        }
    }
}
