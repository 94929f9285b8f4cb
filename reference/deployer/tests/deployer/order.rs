//! Version order at apply time (issue 12, item 2): the worker re-checks the
//! update rule when an event's turn comes, so an update queued before a
//! newer one was applied is refused then, and so is `deployer retry` of a
//! failed older update after a newer one was applied. Each test also checks
//! that the hook did not run for the older tag and the applied tag stayed.

use std::path::Path;
use std::time::Duration;

use tagcast_deployer::apply::Applier;
use tagcast_deployer::apply::exec::Exec;
use tagcast_deployer::run_pending;
use tagcast_deployer::store::{HistoryEntry, Outcome};

use super::{IMAGE, V1, V2, callback, runs, send, state_with};

/// An exec hook that fails for `V1` and logs the tag of every other run.
fn failing_for_v1(log: &Path) -> Applier {
    Applier::Exec(Exec {
        command: format!(
            "if [ \"$TAGCAST_TAG\" = '{V1}' ]; then echo 'cluster unreachable' >&2; exit 4; fi; \
             printf '%s\\n' \"$TAGCAST_TAG\" >> '{}'",
            log.display()
        ),
        timeout: Duration::from_secs(10),
    })
}

#[tokio::test]
async fn an_update_queued_before_a_newer_one_was_applied_is_refused_at_apply_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    let state = state_with(failing_for_v1(&log)).await;
    // V1 is accepted and queued (held, so it waits).
    state.store.set_hold(true, Some("maintenance")).await.unwrap();
    assert_eq!(send(&state, callback("evt_1", V1)).await.0, 202);
    // Meanwhile V2 is applied outside this queue (another deployer process
    // on the same state, or an operator's deploy that was recorded).
    state
        .store
        .finish(&HistoryEntry {
            at: chrono::Utc::now().to_rfc3339(),
            event_id: "evt_2".into(),
            image: IMAGE.into(),
            tag: V2.into(),
            digest: None,
            outcome: Outcome::Applied,
            reason: "applied elsewhere".into(),
        })
        .await
        .unwrap();

    state.store.set_hold(false, None).await.unwrap();
    assert_eq!(run_pending(&state).await.unwrap(), 1);
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].event_id, "evt_1");
    assert_eq!(history[0].outcome, Outcome::Refused, "{:?}", history[0]);
    assert!(history[0].reason.starts_with("not an update:"), "{}", history[0].reason);
    assert!(runs(&log).is_empty(), "the hook did not run: {:?}", runs(&log));
    assert_eq!(state.store.applied(IMAGE).await.unwrap().unwrap().tag, V2);
    assert_eq!(state.store.status(10).await.unwrap().pending, 0);
}

#[tokio::test]
async fn retry_of_a_failed_older_update_after_a_newer_one_was_applied_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    let state = state_with(failing_for_v1(&log)).await;
    send(&state, callback("evt_1", V1)).await;
    run_pending(&state).await.unwrap();
    assert_eq!(state.store.history(1).await.unwrap()[0].outcome, Outcome::Failed);
    send(&state, callback("evt_2", V2)).await;
    run_pending(&state).await.unwrap();
    assert_eq!(runs(&log), [V2]);
    assert_eq!(state.store.applied(IMAGE).await.unwrap().unwrap().tag, V2);

    // `tagcast deployer retry evt_1` queues the failed event again ...
    assert_eq!(
        state.store.retry(Some("evt_1")).await.unwrap().as_deref(),
        Some("evt_1")
    );
    assert_eq!(run_pending(&state).await.unwrap(), 1);
    // ... and the worker refuses it: V2 is deployed and newer.
    let history = state.store.history(1).await.unwrap();
    assert_eq!(history[0].event_id, "evt_1");
    assert_eq!(history[0].outcome, Outcome::Refused, "{:?}", history[0]);
    assert!(history[0].reason.starts_with("not an update:"), "{}", history[0].reason);
    assert_eq!(runs(&log), [V2], "the hook ran for nothing older");
    assert_eq!(state.store.applied(IMAGE).await.unwrap().unwrap().tag, V2);
}
